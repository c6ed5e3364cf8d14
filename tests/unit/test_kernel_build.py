"""Kernel builds from source: fragment verification, patch errors, series order, cache keys."""

import subprocess
from pathlib import Path

import pytest

from rig.artefacts import kernel_build as kb
from rig.spec import scenario
from rig.errors import InputError, ScenarioError
from tests.conftest import DATA

ROOT = DATA.parent.parent
SERIES = ROOT / "guests" / "patches" / "6.1-pvh-balloon"


def test_fragment_options_missing_from_the_final_config_are_named():
    fragment = kb.parse_config("CONFIG_XEN=y\nCONFIG_XEN_UNPOPULATED_ALLOC=y\n# CONFIG_MODULES is not set\n"
                               "CONFIG_CMDLINE=\"console=hvc0\"\n")
    final = "CONFIG_XEN=y\n# CONFIG_XEN_UNPOPULATED_ALLOC is not set\nCONFIG_CMDLINE=\"console=hvc0\"\n"
    assert kb.unmet_options(fragment, final) == [("CONFIG_XEN_UNPOPULATED_ALLOC", "y", "n")]
    assert kb.unmet_options(fragment, final + "CONFIG_XEN_UNPOPULATED_ALLOC=y\n") == []
    assert kb.unmet_options({"CONFIG_ZONE_DEVICE": "y"}, "") == [("CONFIG_ZONE_DEVICE", "y", "n")]


def test_the_rigs_fragment_parses_and_asks_for_the_pvh_dom0_essentials():
    wanted = kb.parse_config(kb.BuildRequest("x", "debian-6.1").fragment_files()[0].read_text())
    for opt in ("CONFIG_XEN_PVH", "CONFIG_XEN_DOM0", "CONFIG_XEN_UNPOPULATED_ALLOC", "CONFIG_E1000E",
                "CONFIG_FIRMWARE_MEMMAP", "CONFIG_HVC_XEN", "CONFIG_BLK_DEV_INITRD"):
        assert wanted[opt] == "y", opt


def test_an_arm64_build_gets_the_arm64_fragment_with_the_probes_devices_built_in():
    [fragment] = kb.BuildRequest("x", "debian-6.1", arch="aarch64").fragment_files()
    assert fragment.name == "arm64-dom0.config"
    wanted = kb.parse_config(fragment.read_text())
    # the ECAM host bridge of virt, the unpopulated allocator and what the foreign-map probe opens
    for opt in ("CONFIG_PCI_HOST_GENERIC", "CONFIG_XEN", "CONFIG_XEN_UNPOPULATED_ALLOC", "CONFIG_XEN_GNTDEV",
                "CONFIG_XEN_GRANT_DEV_ALLOC", "CONFIG_HVC_XEN", "CONFIG_E1000E", "CONFIG_MIGRATION"):
        assert wanted[opt] == "y", opt
    assert not any(k.startswith("CONFIG_X86") or k == "CONFIG_ACPI" for k in wanted)


def test_a_foreign_architecture_is_cross_compiled_with_debians_cross_gcc(monkeypatch):
    from rig.spec import platform
    arm = platform.ARCHES["aarch64"]
    monkeypatch.setattr(kb.os, "uname", lambda: type("U", (), {"machine": "x86_64"})())
    assert kb.cross_prefix(arm) == "aarch64-linux-gnu-"
    assert kb.cross_prefix(platform.ARCHES["x86_64"]) == ""
    monkeypatch.setattr(kb.shutil, "which", lambda tool: None if tool == "aarch64-linux-gnu-gcc" else "/usr/bin/x")
    assert kb._missing_tools(arm) == ["gcc-aarch64-linux-gnu"]
    assert kb._missing_tools(platform.ARCHES["x86_64"]) == []
    env = kb._env(kb.Cache(Path("/nonexistent")), arm)
    assert (env["ARCH"], env["CROSS_COMPILE"]) == ("arm64", "aarch64-linux-gnu-")
    monkeypatch.setenv("CROSS_COMPILE", "leftover-")
    native = kb._env(kb.Cache(Path("/nonexistent")), platform.ARCHES["x86_64"])
    assert (native["ARCH"], native["CROSS_COMPILE"]) == ("x86", "")   # Kbuild's own ARCH on x86_64


def test_an_arm64_key_names_its_architecture_and_x86_keys_are_as_before():
    args = ("debian:linux-source-6.1=6.1.192-3", [], [b"CONFIG_XEN=y\n"], None, "gcc (Debian 12.2.0-14) 12.2.0")
    assert kb.cache_key(*args) == kb.cache_key(*args, "x86_64") != kb.cache_key(*args, "aarch64")
    # the x86_64 key of this input as the rig before architectures were rows (05618da) made it
    assert kb.cache_key(*args) == "62a7f7f04135b22280f5dfb7"


def test_a_build_of_another_architecture_is_never_served(tmp_path):
    import json
    out = tmp_path / "k"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"arch": "aarch64", "image": "Image", "sha256": "0" * 64,
                                                   "key": "k", "source": "s", "release": "6.1"}))
    with pytest.raises(kb.ArtefactError, match="a aarch64 kernel where an x86_64 one was built"):
        kb._artefact(out, "foo", "x86_64")


def test_built_names_are_kept_per_architecture(tmp_path):
    cache = kb.Cache(tmp_path)
    kb._name(cache, "foo", "k1", "x86_64")
    kb._name(cache, "foo", "k2", "aarch64")
    assert (tmp_path / "builds" / "names" / "foo.json").read_text() == '{"key": "k1"}\n'
    assert (tmp_path / "builds" / "names-arm64" / "foo.json").read_text() == '{"key": "k2"}\n'
    assert kb.known_names(cache, "aarch64") == {"built:foo"} == kb.known_names(cache)
    assert kb.lookup(cache, "built:foo", "aarch64") is None   # no manifest under k2: not built, not the x86 one


def _tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "drivers").mkdir(parents=True)
    (tree / "drivers" / "x.c").write_text("one\ntwo\nthree\n")
    return tree


def _patch(tmp_path, name, old, new):
    p = tmp_path / name
    p.write_text(f"--- a/drivers/x.c\n+++ b/drivers/x.c\n@@ -1,3 +1,3 @@\n one\n-{old}\n+{new}\n three\n")
    return p


def _apply(tree, patch):
    proc = subprocess.run(["patch", "-p1", "--forward", "--batch", "--dry-run", "-i", str(patch)], cwd=tree,
                          capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def test_a_failing_hunk_is_named_with_its_patch_and_file(tmp_path):
    tree = _tree(tmp_path)
    bad = _patch(tmp_path, "0002-bad.patch", "TWO", "2")
    rc, out = _apply(tree, bad)
    assert rc != 0
    assert kb.patch_failure(bad, out) == f"{bad}: hunk #1 for drivers/x.c does not apply (at line 1)"


def test_an_already_applied_patch_and_garbage_are_named(tmp_path):
    tree = _tree(tmp_path)
    good = _patch(tmp_path, "0001.patch", "two", "2")
    assert _apply(tree, good)[0] == 0
    subprocess.run(["patch", "-p1", "-i", str(good)], cwd=tree, check=True, capture_output=True)
    rc, out = _apply(tree, good)
    assert rc != 0 and "already applied to drivers/x.c" in kb.patch_failure(good, out)
    junk = tmp_path / "junk.patch"
    junk.write_text("this is not a diff\n")
    rc, out = _apply(tree, junk)
    assert rc != 0 and kb.patch_failure(junk, out).startswith(f"{junk}: not a patch")


def test_a_series_directory_applies_in_series_order():
    patches = kb.expand_patches([SERIES])
    assert [p.name for p in patches] == [
        "0001-x86-xen-attempt-to-inflate-the-memory-balloon-on-PVH.patch",
        "0002-xen-x86-add-extra-pages-to-unpopulated-alloc-if-available.patch"]
    with pytest.raises(InputError, match="no such file or directory"):
        kb.expand_patches([SERIES / "0003-missing.patch"])


def test_backport_headers_name_their_upstream_commits():
    first, second = kb.expand_patches([SERIES])
    assert "Upstream-commit: 38620fc4e8934f1801c7811ef39a041914ac4c1d" in first.read_text()
    assert "Upstream-commit: a6aa4eb994ee9ced905743817c5de8451d26b911" in second.read_text()
    assert "4c006734898a" in (SERIES / "README.md").read_text()


def test_cache_key_changes_with_every_input_and_only_then():
    base = dict(source_id="debian:linux-source-6.1=6.1.192-2", patches=[b"p1"], fragments=[b"CONFIG_XEN=y\n"],
                base_config=None, toolchain="gcc 12.2.0")
    key = kb.cache_key(**base)
    assert kb.cache_key(**base) == key
    for change in (dict(source_id="debian:linux-source-6.1=6.1.193-1"), dict(patches=[b"p1", b"p2"]),
                   dict(patches=[b"p1 "]), dict(fragments=[b"CONFIG_XEN=n\n"]), dict(base_config=b"x"),
                   dict(toolchain="gcc 13")):
        assert kb.cache_key(**{**base, **change}) != key, change


def test_build_names_are_checked():
    assert kb.check_name("6.1-balloon") == "6.1-balloon"
    with pytest.raises(InputError, match="kernel build name"):
        kb.check_name("../evil")


def test_scenario_builds_resolve_relative_to_the_file_and_name_bad_paths(tmp_path):
    s = scenario.load(ROOT / "scenarios" / "same-base-ab.toml", {"debian-6.1"})
    assert s.builds["6.1-balloon"].patches == [str(SERIES)]
    assert s.kernels["patched"] == "built:6.1-balloon"
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[builds.k]\nsource = "debian-6.1"\npatches = ["nope.patch"]\n'
                   '[kernels]\na = "built:k"\n')
    with pytest.raises(ScenarioError, match=r"bad.toml: builds.k.patches.0: 'nope.patch': no such file"):
        scenario.load(bad, set())
    undeclared = tmp_path / "u.toml"
    undeclared.write_text('name = "u"\n[kernels]\na = "built:nothing"\n')
    with pytest.raises(ScenarioError, match="kernels.a: unknown kernel 'built:nothing'"):
        scenario.load(undeclared, set())


def test_a_git_tree_is_its_commit_and_diff_wherever_it_lies(tmp_path):
    """A bisect builds in a worktree that moves every run: the same commit must be the same
    source (one build), an uncommitted change or another commit another one."""
    def git(tree, *args):
        subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True)

    tree = tmp_path / "linux"
    (tree / "arch" / "x86").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\n")
    (tree / "arch" / "x86" / "Kconfig").write_text("")
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "-m", "one")
    git(tree, "worktree", "add", "-q", "--detach", str(tmp_path / "elsewhere"), "HEAD")
    ident = lambda p: kb.source_tree(str(p), None, print)[1]
    here = ident(tree)
    assert here.startswith("tree:git:") and str(tmp_path) not in here
    assert ident(tmp_path / "elsewhere") == here
    (tmp_path / "elsewhere" / "Makefile").write_text("VERSION = 7\n")
    assert ident(tmp_path / "elsewhere") != here
    git(tmp_path / "elsewhere", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "-am", "two")
    assert ident(tmp_path / "elsewhere") != here
    # an untracked file the build would copy: the same commit, but no longer a shared build
    (tree / "localversion-mine").write_text("-mine\n")
    assert ident(tree) != here and str(tree) in ident(tree)


def test_two_kernel_trees_inside_one_repository_are_two_sources(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    for version in ("6.1", "6.6"):
        tree = tmp_path / "src" / f"linux-{version}"
        (tree / "arch" / "x86").mkdir(parents=True)
        (tree / "arch" / "x86" / "Kconfig").write_text("")
        (tree / "Makefile").write_text(f"VERSION = {version}\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "-m", "both")
    ids = {kb.source_tree(str(tmp_path / "src" / f"linux-{v}"), None, print)[1] for v in ("6.1", "6.6")}
    assert len(ids) == 2
