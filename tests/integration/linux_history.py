"""A git history made from Debian's 6.1 source for the bisect tests: the backport series in
guests/patches/6.1-pvh-balloon as separate commits between unrelated ones.

    base, unrelated 1, 0001 (38620fc4e893: converts), unrelated 2,
    0002 (a6aa4eb994ee: scratch leaves the holes), unrelated 3

and, for arm64 (make_arm), a regression between unrelated commits: Arm's override that
hands the unpopulated allocator Xen's extended regions compiled out, so the generic one
carves Xen scratch from any free space of /proc/iomem instead.

    base, unrelated 1, IGNORES_REGIONS, unrelated 2, unrelated 3

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
IGNORES_REGIONS = "arm/xen: the unpopulated allocator ignores the extended regions (a made-up regression)"
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
    first, second = sorted(SERIES.glob("0*.patch"))[:2]
    return _history(dest, date, [("base", None), ("unrelated 1", _note(dest, 1)), (CONVERTS, _apply(dest, first)),
                                 ("unrelated 2", _note(dest, 2)), (STOPS_THE_MOVE, _apply(dest, second)),
                                 ("unrelated 3", _note(dest, 3))])


def make_arm(dest: Path, date: str | None) -> dict[str, str]:
    """The arm64 history: IGNORES_REGIONS compiles out arch_xen_unpopulated_init in
    arch/arm/xen/enlighten.c, leaving the weak default (all of iomem_resource)."""
    def ignore_regions():
        path = dest / "arch" / "arm" / "xen" / "enlighten.c"
        text = path.read_text()
        guard = '#ifdef CONFIG_XEN_UNPOPULATED_ALLOC\n/*\n * A type-less specific Xen resource'
        assert text.count(guard) == 1, "6.1's arch/arm/xen/enlighten.c changed"
        path.unlink()   # a hard link into the cached source: write a file of its own
        path.write_text(text.replace(guard, "#if 0" + guard.removeprefix("#ifdef CONFIG_XEN_UNPOPULATED_ALLOC")))
    return _history(dest, date, [("base", None), ("unrelated 1", _note(dest, 1)), (IGNORES_REGIONS, ignore_regions),
                                 ("unrelated 2", _note(dest, 2)), ("unrelated 3", _note(dest, 3))])


def _note(dest: Path, n: int):
    return lambda: (dest / "Documentation" / f"rig-note-{n}.txt").write_text(f"unrelated change {n}\n")


def _apply(dest: Path, patch: Path):
    return lambda: subprocess.run(["patch", "-p1", "-s", "-i", str(patch)], cwd=dest, check=True)


def _history(dest: Path, date: str | None, commits) -> dict[str, str]:
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

    for subject, change in commits:
        commit(subject, change)
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
