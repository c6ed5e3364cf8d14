"""`rig bisect`: find the commit that changes a verdict, with a scenario as the oracle.

git bisect does the search, in a worktree of its own beside the user's tree, so that
neither the user's working copy nor their own bisect state is touched. Each candidate
commit is handed to an oracle (build the kernel at that commit, boot it in the scenario's
host, judge it) that answers good, bad or skip. Every step is written to bisect.json as it
finishes; after an interruption `--resume` replays the recorded answers into a fresh
bisect and goes on from there, so no step is built or booted twice.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from rig.errors import InputError, RigError

OUTCOMES = ("good", "bad", "skip")


@dataclass
class Step:
    commit: str
    subject: str
    outcome: str                # good | bad | skip
    why: str                    # the verdict, the check, or why it was skipped
    seconds: float
    run_dir: str | None = None


@dataclass
class Bisect:
    tree: str
    good: str                   # full commit ids
    bad: str
    steps: list[Step] = field(default_factory=list)
    first: dict | None = None   # {"commit", "subject"}: the first bad commit
    candidates: list[str] = field(default_factory=list)   # when skipped commits hide the answer
    finished: bool = False
    criteria: dict = field(default_factory=dict)   # what judged each step: a resume must judge alike
    ends_checked: list[str] = field(default_factory=list)   # "good"/"bad": an end judged as the answer needed

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @staticmethod
    def read(path: Path) -> "Bisect":
        data = json.loads(path.read_text())
        return Bisect(**{**data, "steps": [Step(**s) for s in data["steps"]]})


# An oracle: (worktree at the candidate, commit) -> (outcome, why, run directory or None)
Oracle = Callable[[Path, str], tuple[str, str, "str | None"]]
Progress = Callable[[str], None]


def _git(tree: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RigError(f"git {' '.join(args)} in {tree} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc


def commit_of(tree: Path, ref: str, flag: str) -> str:
    proc = _git(tree, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise InputError(f"{flag} {ref}: not a commit of {tree}")
    return proc.stdout.strip()


def run(tree: Path, good: str, bad: str, oracle: Oracle, state: Path, *, resume: bool = False,
        progress: Progress = lambda msg: None, criteria: dict | None = None) -> Bisect:
    """Bisect `tree` between `good` and `bad`; `state` is bisect.json. The worktree lives
    beside it and is removed at the end, also after Ctrl-C. `criteria` (what the oracle
    judges by) is recorded, and a resume under other criteria is refused.

    git bisect takes the ends' labels on trust. When the answer rests on one (the first bad
    commit is `bad` itself, or its parent is `good`), that end is judged too: an end that
    does not answer as labelled is an error, never an answer."""
    if not (tree / ".git").exists():
        raise InputError(f"--tree {tree}: not a git work tree")
    good_id, bad_id = commit_of(tree, good, "--good"), commit_of(tree, bad, "--bad")
    if _git(tree, "merge-base", "--is-ancestor", good_id, bad_id, check=False).returncode != 0:
        raise InputError(f"--good {good} is not an ancestor of --bad {bad}")
    criteria = criteria or {}
    if resume:
        if not state.is_file():
            raise InputError(f"--resume: no {state} to resume")
        b = Bisect.read(state)
        if (b.good, b.bad) != (good_id, bad_id):
            raise InputError(f"--resume: {state} bisects {b.good[:12]}..{b.bad[:12]}, not {good_id[:12]}..{bad_id[:12]}")
        changed = sorted(k for k in {*b.criteria, *criteria} if b.criteria.get(k) != criteria.get(k))
        if changed:
            raise InputError(f"--resume: {state} was judged with other {', '.join(changed)} "
                             f"({', '.join(f'{k}={b.criteria.get(k)!r}' for k in changed)}): start a new --out")
        if b.finished:
            return b
    else:
        if state.is_file():
            raise InputError(f"--out {state.parent}: a bisect is recorded there; --resume it or choose another --out")
        b = Bisect(str(tree), good_id, bad_id, criteria=criteria)
    work = state.parent / "worktree"
    if work.exists():   # left by a rig killed outright: nothing in it is worth keeping
        _git(tree, "worktree", "remove", "--force", str(work), check=False)
        shutil.rmtree(work, ignore_errors=True)
    _git(tree, "worktree", "prune")
    _git(tree, "worktree", "add", "--detach", str(work), bad_id)
    try:
        out = _git(work, "bisect", "start", bad_id, good_id).stdout
        for s in b.steps:   # what was answered before the interruption (not the ends' checks)
            if not s.why.startswith(("--good end:", "--bad end:")):
                out = _answer(work, s.outcome, s.commit)
        while not _done(out, b, work):
            head = _git(work, "rev-parse", "HEAD").stdout.strip()
            subject = _git(work, "log", "-1", "--format=%s", head).stdout.strip()
            # git: "Bisecting: N revisions left to test after this (roughly K steps)": K does not
            # count this step. The range is the commits not yet known good, less the bad end.
            left = re.search(r"\(roughly (\d+) steps?\)", out)
            goods = _git(work, "for-each-ref", "--format=%(refname)", "refs/bisect/good-*").stdout.split()
            candidates = int(_git(work, "rev-list", "--count", "refs/bisect/bad", "--not", *goods).stdout) - 1
            spent = [s.seconds for s in b.steps if s.outcome != "skip"]
            todo = f" ({candidates} candidate commit{'s' * (candidates != 1)}"
            if left:
                steps = int(left.group(1)) + 1
                todo += f", about {steps} step{'s' * (steps != 1)} left"
                todo += f", about {steps * sum(spent) / len(spent) / 60:.0f} min" if spent else ""
            todo += ")"
            progress(f"step {len(b.steps) + 1}: {head[:12]} {subject[:60]}{todo}")
            started = time.monotonic()
            outcome, why, run_dir = oracle(work, head)
            if outcome not in OUTCOMES:
                raise RigError(f"bisect oracle answered {outcome!r} for {head[:12]}")
            b.steps.append(Step(head, subject, outcome, why, round(time.monotonic() - started, 1), run_dir))
            b.write(state)
            progress(f"{head[:12]}: {outcome} ({why})")
            out = _answer(work, outcome, head)
        if b.first:
            _check_ends(b, work, oracle, progress, state)
        b.finished = True
        b.write(state)
        return b
    finally:
        _git(work, "bisect", "reset", check=False)
        _git(tree, "worktree", "remove", "--force", str(work), check=False)
        shutil.rmtree(work, ignore_errors=True)
        _git(tree, "worktree", "prune", check=False)


def _check_ends(b: Bisect, work: Path, oracle: Oracle, progress: Progress, state: Path) -> None:
    """Judge the end the answer rests on (see run); RigError when it is not as labelled."""
    first = b.first["commit"]
    parent = _git(work, "rev-parse", f"{first}^").stdout.strip()
    for label, commit, needed in (("bad", b.bad, first == b.bad), ("good", b.good, parent == b.good)):
        if not needed or label in b.ends_checked:
            continue
        _git(work, "checkout", "-q", "--detach", commit)
        progress(f"checking the --{label} end {commit[:12]}: the answer rests on it")
        started = time.monotonic()
        outcome, why, run_dir = oracle(work, commit)
        b.steps.append(Step(commit, _git(work, "log", "-1", "--format=%s", commit).stdout.strip(), outcome,
                            f"--{label} end: {why}", round(time.monotonic() - started, 1), run_dir))
        if outcome != label:
            b.write(state)
            raise RigError(f"--{label} {commit[:12]} answers {outcome} ({why}): the range does not change "
                           "the verdict as labelled (a wrong --good-when or --check?), so there is no answer")
        b.ends_checked.append(label)
        b.write(state)


def _answer(work: Path, outcome: str, commit: str) -> str:
    """Tell git bisect; its reply. It exits non-zero when only skipped commits are left: an
    answer, not a failure."""
    proc = _git(work, "bisect", outcome, commit, check=False)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 and "only 'skip'ped commits left to test" not in out:
        raise RigError(f"git bisect {outcome} {commit[:12]} failed: {out.strip()[-300:]}")
    return out


def _done(out: str, b: Bisect, work: Path) -> bool:
    """Read git bisect's answer: the first bad commit, or the skipped ones that hide it."""
    if m := re.search(r"^([0-9a-f]{40}(?:[0-9a-f]{24})?) is the first bad commit", out, re.M):   # SHA-1 or SHA-256
        b.first = {"commit": m.group(1), "subject": _git(work, "log", "-1", "--format=%s", m.group(1)).stdout.strip()}
        return True
    if "only 'skip'ped commits left to test" in out:
        b.candidates = re.findall(r"^([0-9a-f]{40}(?:[0-9a-f]{24})?)$", out, re.M)
        return True
    return False


# -- the oracle: build at the commit, boot in the scenario's host, judge -----------------------

def scenario_oracle(scenario, role: str, good_when: str, check: str | None, out_dir: Path, *,
                    fragments: tuple[Path, ...] = (), base_config: Path | None = None,
                    options=None, progress: Progress = lambda msg: None, error_is: str = "skip") -> Oracle:
    """good or bad by the role's expectations: `good_when` "pass" finds a regression (the
    first commit that fails), "fail" a fix (the first that passes); `check` narrows the
    verdict to one named check. A build that fails is skip; an error verdict is booted once
    more, then `error_is`: "skip", or "bad" to find the commit that broke the boot itself
    (a dom0 that halts or panics)."""
    from rig.artefacts import kernel_build
    from rig.artefacts.store import Cache
    from rig.run import batch

    def oracle(work: Path, commit: str) -> tuple[str, str, str | None]:
        name = f"bisect-{commit[:12]}"
        try:
            kernel_build.build(kernel_build.BuildRequest(name, str(work), fragments=fragments,
                                                         base_config=base_config, arch=scenario.host.arch), Cache(),
                               lambda msg: progress(f"  build: {msg}"))
        except (kernel_build.BuildError, kernel_build.PatchError) as exc:
            return "skip", f"build failed: {exc}", None
        candidate = scenario.model_copy(update={"kernels": {role: kernel_build.PREFIX + name},
                                                "expect": {role: scenario.expect[role]}})
        for attempt in (1, 2):
            run_dir = out_dir / f"{commit[:12]}" / (f"attempt-{attempt}" if attempt > 1 else "")
            opts = dataclasses.replace(options or batch.Options(), out_dir=run_dir, roles=[role])
            _, results = batch.run(candidate, opts, lambda _r, m: progress(f"  boot: {m}"))
            r = results[0]
            if r.verdict != "error":
                break
        else:
            return error_is, f"error twice ({r.failure}): {r.error}", r.run_dir
        if check:
            named = [c for c in r.checks if c.name == check]
            if not named:
                raise InputError(f"--check {check}: role {role} has no such check "
                                 f"(it has: {', '.join(c.name for c in r.checks)})")
            passed, why = named[0].passed, f"{check} {'held' if named[0].passed else 'failed'}: {named[0].detail}"
        else:
            passed, why = r.verdict == "pass", f"verdict {r.verdict}"
        return ("good" if passed == (good_when == "pass") else "bad"), why, r.run_dir

    return oracle
