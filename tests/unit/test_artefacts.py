"""Cache bookkeeping, apt source derivation and the reproducible initramfs."""

import gzip
import subprocess

import pytest

from rig.artefacts import initramfs
from rig.artefacts.apt import AptSource, newest, parse_sources
from rig.artefacts.apt import rig_sources as _rig_sources
from rig.artefacts.archive import CODENAME
from rig.artefacts.store import Artefact, Cache, sha256_file
from rig.errors import ArtefactError, CorruptArtefactError, InputError


def rig_sources(sources):
    return _rig_sources(sources, CODENAME)   # the codename the rig's kernels come from

DEB822 = """Types: deb
URIs: http://mirror.example/pub/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/pub/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://mirror.example/pub/debian
Suites: bookworm
Components: main
"""


def test_backports_reuse_the_configured_mirror():
    sources = rig_sources(parse_sources({"debian.sources": DEB822}))
    backports = [s for s in sources if "bookworm-backports" in s.suites]
    assert len(backports) == 1
    assert backports[0].uris == ("http://mirror.example/pub/debian",)
    assert backports[0].signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert {suite for s in sources for suite in s.suites} == {
        "bookworm", "bookworm-updates", "bookworm-security", "bookworm-backports"}


def test_one_line_sources_and_foreign_entries():
    text = ("deb [signed-by=/k.gpg] http://m.example/pub/debian bookworm main contrib\n"
            "# deb http://m.example/pub/debian bookworm-backports main\n"
            "deb https://packages.example/apt cloud-sdk main\n")
    sources = rig_sources(parse_sources({"sources.list": text}))
    assert [s.suites for s in sources] == [("bookworm",), ("bookworm-backports",)]
    assert sources[1] == AptSource(("http://m.example/pub/debian",), ("bookworm-backports",), ("main", "contrib"), "/k.gpg")


def test_existing_backports_entry_is_not_duplicated():
    text = "deb http://m.example/pub/debian bookworm main\ndeb http://m.example/pub/debian bookworm-backports main\n"
    sources = rig_sources(parse_sources({"sources.list": text}))
    assert sum("bookworm-backports" in s.suites for s in sources) == 1


def test_no_debian_source_is_a_clear_error():
    with pytest.raises(ArtefactError, match="no apt source for Debian bookworm"):
        rig_sources(parse_sources({"sources.list": "deb http://x.example/pub/ubuntu jammy main\n"}))


def test_newest_uses_debian_version_order():
    versions = [("6.1.176-1", "bookworm"), ("6.1.192-2", "bookworm-security"), ("6.12.95-1~bpo12+1", "bookworm-backports")]
    assert newest(versions, {"bookworm", "bookworm-security"}) == "6.1.192-2"
    assert newest(versions, {"bookworm-backports"}) == "6.12.95-1~bpo12+1"
    assert newest(versions, {"trixie"}) is None


def test_corrupt_cached_file_is_refused(tmp_path):
    f = tmp_path / "vmlinuz"
    f.write_bytes(b"kernel")
    art = Artefact("k", f, sha256_file(f), "test")
    assert art.verify() is art
    f.write_bytes(b"kernel, tampered")
    with pytest.raises(CorruptArtefactError, match="sha256 mismatch"):
        art.verify()
    f.unlink()
    with pytest.raises(ArtefactError, match="missing"):
        art.verify()


def test_uncached_kernel_without_fetch_is_a_clear_error(tmp_path):
    with pytest.raises(ArtefactError, match="debian-6.1 is not in the cache.*rig fetch"):
        Cache(tmp_path).kernel("debian-6.1", fetch=False)
    with pytest.raises(InputError, match="unknown kernel 'debian-9'"):
        Cache(tmp_path).kernel("debian-9")


def test_user_xen_is_gunzipped_once_and_keyed_by_content(tmp_path):
    src = tmp_path / "xen.gz"
    src.write_bytes(gzip.compress(b"hypervisor"))
    cache = Cache(tmp_path / "cache")
    art = cache.user_xen(src)
    assert art.path.read_bytes() == b"hypervisor"
    assert cache.user_xen(src).path == art.path


def test_static_elf_detection():
    assert initramfs.is_static_elf(initramfs.find_busybox().read_bytes())
    assert not initramfs.is_static_elf(open("/bin/sh", "rb").read())  # dash is dynamic on Debian
    assert not initramfs.is_static_elf(b"#!/bin/sh\n")


def test_initramfs_is_reproducible_and_holds_the_agent(tmp_path):
    first = initramfs.build(Cache(tmp_path / "a"))
    second = initramfs.build(Cache(tmp_path / "b"))
    assert first.sha256 == second.sha256
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=first.path.read_bytes(),
                             capture_output=True, check=True).stdout.decode().split()
    assert {"init", "bin/busybox", "proc", "sys", "dev"} <= set(listing)
    unpacked = subprocess.run(["cpio", "-i", "--quiet", "--to-stdout", "init"],
                              input=first.path.read_bytes(), capture_output=True, check=True)
    assert unpacked.stdout == initramfs.AGENT.read_bytes()


def test_initramfs_rebuilds_when_the_agent_changes(tmp_path):
    agent = tmp_path / "init"
    agent.write_text(initramfs.AGENT.read_text() + "\n# changed\n")
    cache = Cache(tmp_path / "c")
    assert initramfs.build(cache).path != initramfs.build(cache, agent=agent).path


def test_tampered_cache_is_an_error_not_a_crash(tmp_path, monkeypatch, capsys):
    """A cached kernel whose bytes no longer match its manifest stops the run with exit 3."""
    import json

    from rig import cli
    base = tmp_path / "kernels" / "debian-6.1"
    (base / "root" / "boot").mkdir(parents=True)
    vmlinuz = base / "root" / "boot" / "vmlinuz-6.1.0-1-amd64"
    vmlinuz.write_bytes(b"original")
    (base / "manifest.json").write_text(json.dumps({
        "name": "debian-6.1", "source": "debian:test", "version": "1", "boot_file": "root/boot/vmlinuz-6.1.0-1-amd64",
        "files": {"root/boot/vmlinuz-6.1.0-1-amd64": sha256_file(vmlinuz)}}))
    vmlinuz.write_bytes(b"tampered")
    xen = tmp_path / "xen"
    xen.write_bytes(b"not gzipped")
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "x"\n[kernels]\nunpatched = "debian-6.1"\n')
    monkeypatch.setenv("RIG_CACHE", str(tmp_path))
    assert cli.main(["run", str(scenario), "--no-fetch", "--xen", str(xen), "--out", str(tmp_path / "o")]) == 3
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("rig: ") and "vmlinuz-6.1.0-1-amd64: sha256 mismatch" in last


def test_a_truncated_package_is_an_artefact_error_naming_dpkg_deb(tmp_path):
    from rig.artefacts.apt import dpkg_deb
    deb = tmp_path / "xen.deb"
    deb.write_bytes(b"!<arch>\ndebian-binary   ")   # cut short, as a full disk leaves it
    with pytest.raises(ArtefactError, match=r"dpkg-deb -x .*xen\.deb .* failed: "):
        dpkg_deb("-x", str(deb), str(tmp_path / "root"))


def test_another_release_comes_from_the_same_mirrors_with_its_suites_renamed():
    """Xen 4.20 is trixie's: the machine's bookworm entries, each suite renamed, keys kept."""
    sources = _rig_sources(parse_sources({"debian.sources": DEB822}), "trixie", CODENAME)
    by_suites = {s.suites: s for s in sources}
    assert set(by_suites) == {("trixie", "trixie-updates"), ("trixie-security",), ("trixie-backports",)}
    assert by_suites[("trixie", "trixie-updates")].uris == ("http://mirror.example/pub/debian",)
    assert by_suites[("trixie-security",)].uris == ("http://mirror.example/pub/debian-security",)
    assert all(s.signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg" for s in sources)


def test_an_unknown_xen_lists_the_known_ones():
    from rig.artefacts import archive
    assert archive.debian_xen(None, "x86_64").package == "xen-hypervisor-4.17-amd64"   # the default
    assert archive.debian_xen("4.20", "x86_64").codename == "trixie"
    with pytest.raises(InputError, match=r"unknown Xen '4.19' for x86_64 \(known: 4.17, 4.20; or --xen PATH"):
        archive.debian_xen("4.19", "x86_64")


def test_a_vendor_repository_is_not_renamed_to_another_release():
    text = ("deb http://m.example/pub/debian bookworm main\n"
            "deb https://vendor.example/apt bookworm stable\n")
    sources = _rig_sources(parse_sources({"sources.list": text}), "trixie", CODENAME)
    assert [s.uris for s in sources] == [("http://m.example/pub/debian",), ("http://m.example/pub/debian",)]
    assert [s.suites for s in sources] == [("trixie",), ("trixie-backports",)]


def test_sid_has_one_suite_on_the_main_mirror():
    """unstable has no -updates, -security nor -backports: asking for them fails apt's update."""
    sources = _rig_sources(parse_sources({"debian.sources": DEB822}), "sid", CODENAME)
    assert sources == [AptSource(("http://mirror.example/pub/debian",), ("sid",), ("main",),
                                 "/usr/share/keyrings/debian-archive-keyring.gpg")]


@pytest.mark.parametrize("layout", ["lib/modules", "usr/lib/modules"])
def test_a_debian_kernels_modules_are_found_in_either_layout(tmp_path, layout):
    """bookworm ships /lib/modules, trixie (merged /usr) /usr/lib/modules: a kernel whose modules
    were missed would boot without its NIC and quietly lose the SSH channel."""
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "vmlinuz-6.12.118+deb13-amd64").write_bytes(b"k")
    (root / layout / "6.12.118+deb13-amd64").mkdir(parents=True)
    art = Artefact("debian-13-6.12", root / "boot" / "vmlinuz-6.12.118+deb13-amd64", "x", "debian:linux-image=1")
    assert Cache.modules_dir(art) == root / layout / "6.12.118+deb13-amd64"


def test_a_debian_kernel_without_modules_is_an_error_not_a_serial_only_boot(tmp_path):
    (tmp_path / "root" / "boot").mkdir(parents=True)
    art = Artefact("debian-x", tmp_path / "root" / "boot" / "vmlinuz-1", "x", "debian:linux-image=1")
    with pytest.raises(ArtefactError, match=r"debian-x: no lib/modules/<release> .* beside "):
        Cache.modules_dir(art)
