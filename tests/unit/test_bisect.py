"""rig bisect's search, on a real git history with a stand-in oracle (the real one builds
and boots: tests/integration). What must hold: the first commit that changes the answer is
found, the user's tree and bisect state are untouched, an interruption resumes without
asking the oracle twice, skipped commits are reported as the candidates they are."""

import json
import re
import subprocess

import pytest

from rig.errors import InputError
from rig.run import bisect


def git(tree, *args):
    return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def history(tmp_path):
    """Ten commits; "fixed" turns 1 at the sixth (the one the bisect must name)."""
    tree = tmp_path / "linux"
    tree.mkdir()
    git(tree, "init", "-q", "-b", "main")
    git(tree, "config", "user.email", "t@example.org")
    git(tree, "config", "user.name", "t")
    ids = []
    for n in range(10):
        (tree / "fixed").write_text("1\n" if n >= 5 else "0\n")
        (tree / "other").write_text(f"{n}\n")
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", f"commit {n}" + (" (the fix)" if n == 5 else ""))
        ids.append(git(tree, "rev-parse", "HEAD"))
    (tree / "user-edit").write_text("uncommitted work\n")   # the user's working copy, dirty
    return tree, ids


def reads_fixed(asked):
    def oracle(work, commit):
        asked.append(commit)
        fixed = (work / "fixed").read_text().strip() == "1"
        return ("bad" if fixed else "good"), ("fixed" if fixed else "not fixed"), None
    return oracle


def test_finds_the_first_commit_that_changes_the_answer(history, tmp_path):
    tree, ids = history
    asked, said = [], []
    b = bisect.run(tree, ids[0], ids[-1], reads_fixed(asked), tmp_path / "bisect.json", progress=said.append)
    assert b.first == {"commit": ids[5], "subject": "commit 5 (the fix)"} and b.finished
    # A line per step with the range left; from the second on, a time estimate.
    starts = [line for line in said if line.startswith("step ")]
    assert len(starts) == len(asked) and starts[0].startswith(f"step 1: {asked[0][:12]} commit ")
    assert "(8 candidate commits, about 3 steps left)" in starts[0]   # ids[1..8]; git: roughly 2 after this
    assert all(" min)" in line for line in starts[1:])
    assert re.search(r"\((\d) candidate commits?", starts[1]).group(1) in "1234"   # halved
    assert len(asked) <= 4 and ids[0] not in asked and ids[-1] not in asked   # log2(9) steps, ends not rebuilt
    saved = json.loads((tmp_path / "bisect.json").read_text())
    assert [s["commit"] for s in saved["steps"]] == asked and saved["first"]["commit"] == ids[5]
    # The user's tree: same HEAD, same dirty file, no bisect of theirs, no worktree left.
    assert git(tree, "rev-parse", "HEAD") == ids[-1] and (tree / "user-edit").is_file()
    assert subprocess.run(["git", "-C", str(tree), "bisect", "log"], capture_output=True).returncode != 0
    assert git(tree, "worktree", "list").count("\n") == 0 and not (tmp_path / "worktree").exists()


def test_an_interrupted_bisect_resumes_without_asking_again(history, tmp_path):
    tree, ids = history
    asked = []
    answer = reads_fixed(asked)

    def interrupted(work, commit):
        if len(asked) == 2:
            raise KeyboardInterrupt
        return answer(work, commit)

    with pytest.raises(KeyboardInterrupt):
        bisect.run(tree, ids[0], ids[-1], interrupted, tmp_path / "bisect.json")
    assert git(tree, "worktree", "list").count("\n") == 0          # cleaned up on Ctrl-C
    before = list(asked)
    b = bisect.run(tree, ids[0], ids[-1], answer, tmp_path / "bisect.json", resume=True)
    assert b.first["commit"] == ids[5]
    assert not set(asked[len(before):]) & set(before)             # no commit asked twice


def test_skipped_commits_that_hide_the_answer_are_the_candidates(history, tmp_path):
    tree, ids = history
    asked = []
    answer = reads_fixed(asked)

    def broken_builds(work, commit):
        if commit in (ids[4], ids[5]):
            return "skip", "build failed", None
        return answer(work, commit)

    b = bisect.run(tree, ids[0], ids[-1], broken_builds, tmp_path / "bisect.json")
    assert b.first is None and set(b.candidates) >= {ids[5]} and b.finished


def test_bad_refs_are_bad_input(history, tmp_path):
    tree, ids = history
    with pytest.raises(InputError, match="--good v9.9: not a commit"):
        bisect.run(tree, "v9.9", ids[-1], reads_fixed([]), tmp_path / "b.json")
    with pytest.raises(InputError, match="is not an ancestor of --bad"):
        bisect.run(tree, ids[-1], ids[0], reads_fixed([]), tmp_path / "b.json")
    with pytest.raises(InputError, match="not a git work tree"):
        bisect.run(tmp_path, ids[0], ids[-1], reads_fixed([]), tmp_path / "b.json")


def always(outcome, asked):
    def oracle(work, commit):
        asked.append(commit)
        return outcome, f"always {outcome}", None
    return oracle


@pytest.mark.parametrize("outcome, end", [("bad", "--good"), ("good", "--bad")])
def test_an_answer_resting_on_a_mislabelled_end_is_an_error_not_an_answer(history, tmp_path, outcome, end):
    """An oracle that never changes its answer (a wrong --good-when, a check that holds at
    both ends): git names the commit next to an end; that end is judged and disowns it."""
    from rig.errors import RigError
    tree, ids = history
    asked = []
    with pytest.raises(RigError, match=f"{end} [0-9a-f]{{12}} answers {outcome}"):
        bisect.run(tree, ids[0], ids[-1], always(outcome, asked), tmp_path / "bisect.json")
    assert (ids[0] if end == "--good" else ids[-1]) in asked
    assert git(tree, "worktree", "list").count("\n") == 0


def test_an_answer_next_to_the_good_end_is_confirmed_by_judging_that_end(tmp_path, history):
    tree, ids = history
    asked = []

    def fixed_at_1(work, commit):
        asked.append(commit)
        return ("bad" if ids.index(commit) >= 1 else "good"), "", None

    b = bisect.run(tree, ids[0], ids[-1], fixed_at_1, tmp_path / "bisect.json")
    assert b.first["commit"] == ids[1] and b.ends_checked == ["good"] and asked[-1] == ids[0]
    assert b.steps[-1].why.startswith("--good end:")


def test_a_resume_must_judge_alike_and_a_new_run_never_overwrites_a_recorded_one(history, tmp_path):
    tree, ids = history
    state = tmp_path / "bisect.json"
    bisect.run(tree, ids[0], ids[-1], reads_fixed([]), state, criteria={"check": "relocations"})
    with pytest.raises(InputError, match="a bisect is recorded there"):
        bisect.run(tree, ids[0], ids[-1], reads_fixed([]), state, criteria={"check": "relocations"})
    with pytest.raises(InputError, match=r"judged with other check \(check='relocations'\)"):
        bisect.run(tree, ids[0], ids[-1], reads_fixed([]), state, resume=True, criteria={"check": "balloon_converted"})
    assert bisect.run(tree, ids[0], ids[-1], reads_fixed([]), state, resume=True,
                      criteria={"check": "relocations"}).first["commit"] == ids[5]


# -- the scenario oracle's decisions, with the build and the boot replaced (the real ones run in
# tests/integration/test_kernel_build.py and test_bisect.py) ----------------------------------

def _oracle(monkeypatch, tmp_path, verdicts, *, good_when="pass", check=None, error_is="skip", builds=True):
    """scenario_oracle over fake builds and boots: each boot answers the next of `verdicts`
    ("pass", "fail", "error"); returns (oracle, boots)."""
    from rig.artefacts import kernel_build
    from rig.run import batch
    from rig.spec import scenario as scenario_mod
    from tests.conftest import make_result
    boots = []

    def build(request, cache, progress):
        if not builds:
            raise kernel_build.BuildError("make: *** [vmlinux] Error 2")
    monkeypatch.setattr(kernel_build, "build", build)

    def run(candidate, opts, progress):
        verdict = verdicts[len(boots)]
        boots.append((candidate.kernels, opts.out_dir))
        checks = [] if verdict == "error" else [
            {"name": "relocations", "passed": verdict == "pass", "detail": "d"},
            {"name": "balloon_converted", "passed": True, "detail": "d"}]
        return opts.out_dir, [make_result(verdict=verdict, checks=checks, run_dir=str(opts.out_dir / "patched"),
                                          failure="dom0-halt" if verdict == "error" else None,
                                          error="dom0 halted" if verdict == "error" else None)]
    monkeypatch.setattr(batch, "run", run)
    s = scenario_mod.Scenario.model_validate({"name": "s", "kernels": {"patched": "debian-6.1"},
                                              "expect": {"patched": {"relocations": "none"}}})
    return bisect.scenario_oracle(s, "patched", good_when, check, tmp_path, error_is=error_is), boots


def test_the_oracle_boots_the_commits_build_in_the_role_and_reads_the_verdict(monkeypatch, tmp_path):
    oracle, boots = _oracle(monkeypatch, tmp_path, ["pass", "fail"])
    assert oracle(tmp_path, "a" * 40)[0] == "good"
    assert oracle(tmp_path, "b" * 40)[:2] == ("bad", "verdict fail")
    assert boots[0][0] == {"patched": "built:bisect-aaaaaaaaaaaa"}   # that commit's build, in that role
    fix, _ = _oracle(monkeypatch, tmp_path / "f", ["pass"], good_when="fail")
    assert fix(tmp_path, "c" * 40)[0] == "bad"                       # --good-when fail: passing is the new state


def test_a_named_check_decides_and_an_unknown_one_is_bad_input(monkeypatch, tmp_path):
    oracle, _ = _oracle(monkeypatch, tmp_path, ["fail", "fail"], check="balloon_converted")
    assert oracle(tmp_path, "a" * 40)[:2] == ("good", "balloon_converted held: d")   # the verdict failed; the check held
    unknown, _ = _oracle(monkeypatch, tmp_path / "u", ["pass"], check="xen_scratch")
    with pytest.raises(InputError, match="--check xen_scratch: role patched has no such check"):
        unknown(tmp_path, "b" * 40)


def test_an_error_is_booted_again_then_skipped_or_counted_bad(monkeypatch, tmp_path):
    once, boots = _oracle(monkeypatch, tmp_path, ["error", "pass"])
    assert once(tmp_path, "a" * 40)[0] == "good" and len(boots) == 2          # a flake: the second boot decides
    assert boots[1][1].name == "attempt-2"
    twice, _ = _oracle(monkeypatch, tmp_path / "t", ["error", "error"])
    outcome, why, _ = twice(tmp_path, "b" * 40)
    assert outcome == "skip" and why.startswith("error twice (dom0-halt)")
    broke, _ = _oracle(monkeypatch, tmp_path / "b", ["error", "error"], error_is="bad")
    assert broke(tmp_path, "c" * 40)[0] == "bad"                               # finding the commit that broke the boot
    unbuilt, boots = _oracle(monkeypatch, tmp_path / "n", [], builds=False)
    assert unbuilt(tmp_path, "d" * 40)[:2] == ("skip", "build failed: make: *** [vmlinux] Error 2") and boots == []
