"""rig bisect for real: a git history made from Debian's 6.1 source with the backport series
in guests/patches/6.1-pvh-balloon as commits between unrelated ones; each step builds the
kernel (ccache) and boots it in same-base-ab's host. Nightly: three builds and three boots."""

import json
import shutil
import subprocess

import pytest

from rig.artefacts.store import Cache
from tests.integration.conftest import ROOT, SCENARIOS, rig

pytestmark = [pytest.mark.boot, pytest.mark.nightly]
SERIES = ROOT / "guests" / "patches" / "6.1-pvh-balloon"


def git(tree, *args):
    return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    pointer = Cache().root / "sources" / "linux-source-6.1.json"
    if not pointer.is_file():
        rig("kernel", "build", "bisect-fetch", "--source", "debian-6.1", timeout=3600)   # fetches the source
    source = json.loads(pointer.read_text())["tree"]
    tree = tmp_path_factory.mktemp("bisect") / "linux"
    subprocess.run(["cp", "-al", source, str(tree)], check=True)
    git(tree, "init", "-q", "-b", "main")
    git(tree, "config", "user.email", "rig@example.org")
    git(tree, "config", "user.name", "rig")
    ids = {}

    def commit(name, change):
        change()
        git(tree, "add", "-A", "--force")   # Debian's linux-source .gitignore ends in "/*"
        git(tree, "commit", "-q", "-m", name)
        ids[name] = git(tree, "rev-parse", "HEAD")

    def note(n):
        return lambda: (tree / "Documentation" / f"rig-note-{n}.txt").write_text(f"unrelated change {n}\n")

    def apply(patch):
        return lambda: subprocess.run(["patch", "-p1", "-s", "-i", str(patch)], cwd=tree, check=True)

    patches = sorted(SERIES.glob("0*.patch"))
    commit("base", lambda: None)
    commit("unrelated 1", note(1))
    commit("balloon: convert UNUSABLE (38620fc4e893)", apply(patches[0]))
    commit("unrelated 2", note(2))
    commit("unpopulated-alloc: use the extra pages (a6aa4eb994ee)", apply(patches[1]))
    commit("unrelated 3", note(3))
    return tree, ids


def test_bisect_finds_the_commit_that_stops_the_move(history, tmp_path):
    tree, ids = history
    out = tmp_path / "bisect"
    proc = rig("bisect", str(SCENARIOS / "same-base-ab.toml"), "--tree", str(tree), "--good", ids["base"],
               "--bad", ids["unrelated 3"], "--role", "patched", "--good-when", "fail", "--check", "relocations",
               "--out", str(out), timeout=5400)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout
    fix = ids["unpopulated-alloc: use the extra pages (a6aa4eb994ee)"]
    assert f"first fixed commit: {fix} unpopulated-alloc: use the extra pages (a6aa4eb994ee)" in proc.stdout
    b = json.loads((out / "bisect.json").read_text())
    assert b["first"]["commit"] == fix and 2 <= len(b["steps"]) <= 3
    assert all(s["outcome"] in ("good", "bad") for s in b["steps"])   # every build and boot worked
    assert (out / "report.html").is_file()
    assert git(tree, "status", "--porcelain") == "" and git(tree, "worktree", "list").count("\n") == 0
    shutil.rmtree(out / "worktree", ignore_errors=True)
