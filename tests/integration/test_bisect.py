"""rig bisect for real, nightly: a git history made from Debian's 6.1 source with the backport
series as commits between unrelated ones (tests/integration/linux_history.py), dated now so
that every step is a real build (ccache), each booted in same-base-ab's host. Two bisects,
one per commit of the series: three builds and three boots each. Push CI runs a two-step
bisect (tests/integration/test_kernel_build.py)."""

import json
import subprocess

import pytest

from tests.integration import linux_history
from tests.integration.conftest import SCENARIOS, rig

pytestmark = [pytest.mark.boot, pytest.mark.nightly]


def git(tree, *args):
    return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    tree = tmp_path_factory.mktemp("bisect") / "linux"
    return tree, linux_history.make(tree, date=None)


@pytest.mark.parametrize("check, subject", [("relocations", linux_history.STOPS_THE_MOVE),
                                            ("balloon_converted", linux_history.CONVERTS)])
def test_bisect_finds_the_commit_that_changes_one_check(history, tmp_path, check, subject):
    tree, ids = history
    out = tmp_path / "bisect"
    proc = rig("bisect", str(SCENARIOS / "same-base-ab.toml"), "--tree", str(tree), "--good", ids["base"],
               "--bad", ids["unrelated 3"], "--role", "patched", "--good-when", "fail", "--check", check,
               "--out", str(out), timeout=5400)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout
    assert f"first fixed commit: {ids[subject]} {subject}" in proc.stdout
    b = json.loads((out / "bisect.json").read_text())
    assert b["first"]["commit"] == ids[subject] and 2 <= len(b["steps"]) <= 3
    assert all(s["outcome"] in ("good", "bad") for s in b["steps"])   # every build and boot worked
    assert all(s["why"].startswith(f"{check} ") for s in b["steps"])
    # Each step's outcome is the physics of its commit: the check holds from `subject` on.
    order = list(ids.values())
    for s in b["steps"]:
        assert (s["outcome"] == "bad") == (order.index(s["commit"]) >= order.index(ids[subject])), s
    page = (out / "report.html").read_text()
    assert f"first commit that changes the verdict: {ids[subject][:12]}" in page
    assert git(tree, "status", "--porcelain") == "" and git(tree, "worktree", "list").count("\n") == 0


def test_an_arm64_bisect_names_the_commit_that_maps_outside_the_extended_regions(tmp_path):
    """Every step a cross-built arm64 kernel (rig kernel build --arch aarch64) booted in
    arm64-built's host and judged by where the agent's probe mapping lands. From the
    regression on, the generic allocator takes the first free 128 MiB of /proc/iomem, which
    is not inside Xen's regions."""
    tree = tmp_path / "linux"
    ids = linux_history.make_arm(tree, date=None)
    out = tmp_path / "bisect"
    proc = rig("bisect", str(SCENARIOS / "arm64-built.toml"), "--tree", str(tree), "--good", ids["base"],
               "--bad", ids["unrelated 3"], "--role", "built", "--check", "foreign_mapping", "--out", str(out),
               timeout=5400)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout
    subject = linux_history.IGNORES_REGIONS
    assert f"first bad commit: {ids[subject]} {subject}" in proc.stdout
    b = json.loads((out / "bisect.json").read_text())
    order = list(ids.values())
    for s in b["steps"]:
        assert s["why"].startswith("foreign_mapping ")
        assert (s["outcome"] == "bad") == (order.index(s["commit"]) >= order.index(ids[subject])), s
    print("arm64 bisect steps: " + ", ".join(f"{s['commit'][:12]} {s['outcome']} {s['seconds']:.0f} s"
                                             for s in b["steps"]))
