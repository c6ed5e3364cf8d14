"""A git history made from Debian's 6.1 source for the bisect tests: the backport series in
guests/patches/6.1-pvh-balloon as separate commits between unrelated ones.

    base, unrelated 1, 0001 (38620fc4e893: converts), unrelated 2,
    0002 (a6aa4eb994ee: scratch leaves the holes), unrelated 3

With a fixed date the commit ids are the same on every run, so the rig's build cache
(keyed by commit) serves a step built before: push CI keeps that history in the rig's
cache and pays the boots. The nightly makes a history of its own dated now, so every
step there is a real build."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from rig.artefacts.store import Cache
from tests.integration.conftest import ROOT, rig

SERIES = ROOT / "guests" / "patches" / "6.1-pvh-balloon"
CONVERTS = "balloon: convert UNUSABLE (38620fc4e893)"
STOPS_THE_MOVE = "unpopulated-alloc: use the extra pages (a6aa4eb994ee)"
FIXED_DATE = "2026-11-30T00:00:00+0000"
LAYOUT = "1"   # bump when make() changes what it commits


def source_tree() -> tuple[Path, str]:
    pointer = Cache().root / "sources" / "linux-source-6.1.json"
    if not pointer.is_file():
        rig("kernel", "build", "bisect-fetch", "--source", "debian-6.1", timeout=3600)   # fetches the source
    data = json.loads(pointer.read_text())
    return Path(data["tree"]), data["version"]


def make(dest: Path, date: str | None) -> dict[str, str]:
    """The history in `dest` (hard links into the cached source: nothing is copied);
    subject -> commit id."""
    source, _ = source_tree()
    subprocess.run(["cp", "-al", str(source), str(dest)], check=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="rig", GIT_AUTHOR_EMAIL="rig@example.org",
               GIT_COMMITTER_NAME="rig", GIT_COMMITTER_EMAIL="rig@example.org")
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)

    def git(*args):
        return subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "core.looseCompression", "0")   # 1.5 GB of sources: writing, not zlib, is the cost
    ids = {}

    def commit(subject, change=None):
        if change:
            change()
        git("add", "-A", "--force")   # Debian's linux-source .gitignore ends in "/*"
        git("commit", "-q", "-m", subject)
        ids[subject] = git("rev-parse", "HEAD")

    def note(n):
        return lambda: (dest / "Documentation" / f"rig-note-{n}.txt").write_text(f"unrelated change {n}\n")

    def apply(patch):
        return lambda: subprocess.run(["patch", "-p1", "-s", "-i", str(patch)], cwd=dest, check=True)

    first, second = sorted(SERIES.glob("0*.patch"))[:2]
    commit("base")
    commit("unrelated 1", note(1))
    commit(CONVERTS, apply(first))
    commit("unrelated 2", note(2))
    commit(STOPS_THE_MOVE, apply(second))
    commit("unrelated 3", note(3))
    return ids


def cached() -> tuple[Path, dict[str, str]]:
    """The fixed-date history, made once per source version and series in the rig's cache."""
    _, version = source_tree()
    h = hashlib.sha256(f"{LAYOUT} {version}".encode())
    for patch in sorted(SERIES.glob("0*.patch")):
        h.update(patch.read_bytes())
    cache = Cache()
    home = cache.root / "tests" / f"linux-history-{h.hexdigest()[:16]}"
    if not (home / "ids.json").is_file():
        with cache.locked():   # two test runs sharing the cache make it once
            if not (home / "ids.json").is_file():
                home.parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=home.parent))
                ids = make(tmp / "linux", FIXED_DATE)
                (tmp / "ids.json").write_text(json.dumps(ids, indent=1) + "\n")
                shutil.rmtree(home, ignore_errors=True)
                tmp.rename(home)   # whole, or not there
    return home / "linux", json.loads((home / "ids.json").read_text())
