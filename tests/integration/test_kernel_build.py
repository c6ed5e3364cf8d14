"""Same-base A/B for real: dom0 kernels built here from Debian's 6.1 source, with and
without the backport series, booted on the default topology."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from rig.artefacts.store import Cache

from .conftest import RETRY, SCENARIOS, rig, run_scenario

pytestmark = pytest.mark.boot


def _ccache_stats(cache: Cache) -> dict[str, int]:
    out = subprocess.run(["ccache", "--print-stats"], capture_output=True, text=True, check=True,
                         env=dict(os.environ, CCACHE_DIR=str(cache.root / "ccache"))).stdout
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line)
            if v.isdigit()}


@pytest.fixture(scope="module")
def same_base(tmp_path_factory):
    """Base and base + the whole series (the build of the second reuses the first's objects)."""
    before = _ccache_stats(Cache())
    started = time.monotonic()
    run = run_scenario("same-base-ab", tmp_path_factory.mktemp("same-base") / "run",
                       "--only", "unpatched", "--only", "patched", *RETRY)
    run.seconds = time.monotonic() - started
    run.ccache = {k: _ccache_stats(Cache()).get(k, 0) - before.get(k, 0) for k in ("direct_cache_hit",
                                                                                 "preprocessed_cache_hit",
                                                                                 "cache_miss")}
    print(f"same-base run (builds included): {run.seconds:.0f} s, ccache since start: {run.ccache}")
    return run


def test_base_and_series_tell_the_patch_apart(same_base):
    assert same_base.returncode == 0, same_base.stderr[-3000:]
    base, fixed = same_base.result("unpatched"), same_base.result("patched")
    assert base["kernel_release"] == fixed["kernel_release"]          # the same source ...
    assert base["artefacts"]["kernel"]["sha256"] != fixed["artefacts"]["kernel"]["sha256"]  # ... built twice
    assert base["outcome"]["unusable_converted"] is False and base["outcome"]["xen_scratch_in_holes"] is True
    assert base["relocations"] and "Xen scratch" in base["relocations"][0]["cause"]
    assert fixed["outcome"] == {**fixed["outcome"], "unusable_converted": True, "xen_scratch_in_holes": False,
                                "relocated": 0}
    assert fixed["balloon"]["converted_pages"] == fixed["balloon"]["expected_converted_pages"] > 0


def test_built_kernels_run_the_ssh_channel(same_base):
    """The fragment builds e1000e in: no modules, and SSH still collects."""
    for role in ("unpatched", "patched"):
        r = same_base.result(role)
        assert r["collected_via"] == "ssh", r["ssh"]
        assert "modules=" not in r["artefacts"]["initramfs"]["version"]
        assert "CONFIG_XEN_UNPOPULATED_ALLOC=y" in (same_base.out / role / "kernel-config.txt").read_text()


def test_the_second_build_reused_the_first_builds_objects(same_base):
    hits = same_base.ccache["direct_cache_hit"] + same_base.ccache["preprocessed_cache_hit"]
    assert hits > 0 or same_base.ccache["cache_miss"] == 0, same_base.ccache


def test_an_identical_build_request_is_served_from_the_cache(same_base):
    started = time.monotonic()
    proc = rig("kernel", "build", "6.1-base", "--source", "debian-6.1", timeout=300)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "identical build in the cache" in proc.stderr
    base = same_base.result("unpatched")
    assert proc.stdout.split()[2] == base["artefacts"]["kernel"]["path"]
    print(f"identical `rig kernel build`: {seconds:.1f} s")


def test_a_patch_that_does_not_apply_is_one_line_naming_file_and_hunk(tmp_path):
    bad = tmp_path / "0001-bad.patch"
    bad.write_text("--- a/arch/x86/xen/enlighten_pvh.c\n+++ b/arch/x86/xen/enlighten_pvh.c\n"
                   "@@ -1,3 +1,3 @@\n-// no such first line\n+// replaced\n #include <linux/acpi.h>\n"
                   " #include <linux/export.h>\n")
    proc = rig("kernel", "build", "bad", "--source", "debian-6.1", "--patch", str(bad), timeout=600)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()[-1:]
    assert line == f"rig: {bad}: hunk #1 for arch/x86/xen/enlighten_pvh.c does not apply (at line 1)"


def test_build_manifests_record_what_was_built(same_base):
    cache = Cache()
    names = json.loads((cache.root / "builds" / "names" / "6.1-balloon.json").read_text())
    manifest = json.loads((cache.root / "builds" / names["key"] / "manifest.json").read_text())
    assert manifest["source"].startswith("debian:linux-source-6.1=")
    assert [p.rsplit("/", 1)[-1] for p in manifest["patches"]] == [
        "0001-x86-xen-attempt-to-inflate-the-memory-balloon-on-PVH.patch",
        "0002-xen-x86-add-extra-pages-to-unpopulated-alloc-if-available.patch"]
    assert (cache.root / "builds" / names["key"] / "build.log").stat().st_size > 0
    print(f"build of 6.1-balloon: {manifest['seconds']} s")


def test_a_two_step_bisect_names_the_commit_that_converts(same_base, tmp_path):
    """rig bisect end to end in push CI, kept to two steps: between "base" and "unrelated 2"
    of tests/integration/linux_history.py, same-base-ab's patched role judged by
    balloon_converted alone finds the 0001 commit. The history has fixed dates, so on a
    machine that keeps the rig's cache both steps' builds are cache hits and the steps cost
    their boots; elsewhere they are real builds with ccache warm from same_base. The nightly
    (tests/integration/test_bisect.py) builds every step."""
    from tests.integration import linux_history
    assert same_base.returncode == 0   # it fetched the source and warmed ccache
    tree, ids = linux_history.cached()
    out = tmp_path / "bisect"
    proc = rig("bisect", str(SCENARIOS / "same-base-ab.toml"), "--tree", str(tree), "--good", ids["base"],
               "--bad", ids["unrelated 2"], "--role", "patched", "--good-when", "fail",
               "--check", "balloon_converted", "--out", str(out), timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout
    converts = ids[linux_history.CONVERTS]
    assert f"first fixed commit: {converts} {linux_history.CONVERTS}" in proc.stdout
    b = json.loads((out / "bisect.json").read_text())
    # unrelated 1 does not convert (good), 0001 does (bad): exactly these two were judged.
    assert {(s["commit"], s["outcome"]) for s in b["steps"]} == {(ids["unrelated 1"], "good"), (converts, "bad")}
    assert all(s["why"].startswith("balloon_converted ") for s in b["steps"]), b["steps"]
    assert "step 1:" in proc.stderr and "(2 candidate commits, about 2 steps left)" in proc.stderr   # the progress lines
    page = (out / "report.html").read_text()
    assert f"first commit that changes the verdict: {converts[:12]}" in page
    assert page.count('<a href="#run-') == 2
    status = subprocess.run(["git", "-C", str(tree), "worktree", "list"], capture_output=True, text=True)
    assert status.stdout.count("\n") == 1   # the bisect's worktree is gone again
    print("bisect steps: " + ", ".join(f"{s['commit'][:12]} {s['outcome']} {s['seconds']:.0f} s" for s in b["steps"]))
