"""What goes into dom0's initramfs: ELF library closures and kernel modules in load order."""

import lzma

import pytest

from rig.artefacts import initramfs
from rig.errors import ArtefactError

LIB_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64")

DEP = """kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.xz: kernel/drivers/ptp/ptp.ko.xz kernel/drivers/pps/pps_core.ko.xz
kernel/drivers/ptp/ptp.ko.xz: kernel/drivers/pps/pps_core.ko.xz
kernel/drivers/pps/pps_core.ko.xz:
kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko kernel/drivers/net/net_failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
"""


def test_modules_load_after_their_dependencies():
    order, missing = initramfs.load_order(initramfs.parse_modules_dep(DEP), ("e1000e", "virtio-net", "nvme"))
    assert order == ["kernel/drivers/pps/pps_core.ko.xz", "kernel/drivers/ptp/ptp.ko.xz",
                     "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.xz",
                     "kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko",
                     "kernel/drivers/net/virtio_net.ko"]
    assert missing == ["nvme"]


def test_module_names_drop_compression_and_dashes():
    assert initramfs.module_name("kernel/x/snd-hda-intel.ko.zst") == "snd_hda_intel"
    assert initramfs.module_name("a/e1000e.ko") == "e1000e"


def test_library_closure_of_a_dynamic_binary_on_this_machine():
    """/bin/ls of this Debian machine as the 'package tree': libc and the loader must come along."""
    from pathlib import Path
    files = initramfs.library_closure(Path("/"), ["usr/bin/ls"], LIB_DIRS)
    names = {p.rsplit("/", 1)[-1] for p in files}
    assert {"ls", "libc.so.6", "ld-linux-x86-64.so.2", "libselinux.so.1"} <= names
    assert all(src.is_file() and not src.is_symlink() for src in files.values())


def test_symlinks_resolve_inside_the_tree_not_on_this_machine(tmp_path):
    root = tmp_path / "root"
    (root / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    (root / "lib" / "x86_64-linux-gnu" / "libz.so.1.2.13").write_bytes(b"tree's own")
    (root / "lib" / "x86_64-linux-gnu" / "libz.so.1").symlink_to("libz.so.1.2.13")
    (root / "lib64").mkdir()
    (root / "lib64" / "abs").symlink_to("/lib/x86_64-linux-gnu/libz.so.1")  # absolute: read inside root
    assert initramfs.resolve_in_root(root, "/lib64/abs").read_bytes() == b"tree's own"
    (root / "lib64" / "escape").symlink_to("../../../../../../etc/passwd")
    assert initramfs.resolve_in_root(root, "lib64/escape") is None


def test_a_missing_library_names_the_binary_and_the_soname(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "ls").write_bytes(open("/usr/bin/ls", "rb").read())
    with pytest.raises(ArtefactError, match=r"usr/bin/ls needs lib\S+, which no package"):
        initramfs.library_closure(root, ["usr/bin/ls"], LIB_DIRS)


def test_modules_are_stored_uncompressed_in_load_order(tmp_path):
    import subprocess
    mods = tmp_path / "lib" / "modules" / "6.12.0-test"
    for rel in ("kernel/drivers/pps/pps_core.ko.xz", "kernel/drivers/ptp/ptp.ko.xz",
                "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.xz"):
        (mods / rel).parent.mkdir(parents=True, exist_ok=True)
        (mods / rel).write_bytes(lzma.compress(f"module {rel}".encode()))
    from rig.artefacts.store import Cache
    art = initramfs.build(Cache(tmp_path / "cache"), None, initramfs.KernelModules(mods, DEP), ("e1000e",))
    cpio = art.path.read_bytes()
    order = subprocess.run(["cpio", "-i", "--quiet", "--to-stdout", initramfs.MODULE_LIST], input=cpio,
                           capture_output=True, check=True).stdout.decode().split()
    assert order == ["kernel/drivers/pps/pps_core.ko", "kernel/drivers/ptp/ptp.ko",
                     "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko"]
    body = subprocess.run(["cpio", "-i", "--quiet", "--to-stdout", f"lib/modules/6.12.0-test/{order[2]}"],
                          input=cpio, capture_output=True, check=True).stdout
    assert body == b"module kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.xz"
    assert "modules=6.12.0-test:pps_core,ptp,e1000e" in art.version


def test_applet_links_point_at_busybox_from_where_they_sit():
    links = initramfs.applet_links(initramfs.find_busybox())
    # The agent's own commands, by the paths its PATH finds them at.
    assert links["bin/sh"] == "busybox"
    assert links["usr/bin/awk"] == "../../bin/busybox"
    assert links["sbin/insmod"] == "../bin/busybox"
    assert "bin/busybox" not in links


def test_a_busybox_this_machine_cannot_run_gives_no_links(tmp_path):
    """Another architecture's busybox: the agent installs its applets itself."""
    foreign = tmp_path / "busybox"
    foreign.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(57))  # an ELF header the kernel refuses
    foreign.chmod(0o755)
    assert initramfs.applet_links(foreign) == {}


def test_the_archive_carries_applet_links_beside_busybox(tmp_path):
    import subprocess
    from rig.artefacts.store import Cache
    art = initramfs.build(Cache(tmp_path / "cache"))
    listing = subprocess.run(["cpio", "-itv", "--quiet"], input=art.path.read_bytes(),
                             capture_output=True, check=True).stdout.decode().splitlines()
    entry = {line.split()[8]: line for line in listing}
    assert entry["usr/bin/awk"].startswith("l") and entry["usr/bin/awk"].endswith("-> ../../bin/busybox")
    assert entry["bin/busybox"].startswith("-")
    assert entry["init"].startswith("-")


def test_a_busybox_that_hangs_gives_no_links(tmp_path):
    stuck = tmp_path / "busybox"
    stuck.write_text("#!/bin/sh\nexec sleep 60\n")
    stuck.chmod(0o755)
    assert initramfs.applet_links(stuck, timeout=0.5) == {}


def _listing(art):
    import subprocess
    out = subprocess.run(["cpio", "-itv", "--quiet"], input=art.path.read_bytes(), capture_output=True, check=True)
    return {line.split()[8]: line for line in out.stdout.decode().splitlines()}


def test_an_applet_never_replaces_a_file_the_archive_carries(tmp_path, monkeypatch):
    from rig.artefacts.store import Cache
    monkeypatch.setattr(initramfs, "applet_links", lambda busybox: {"init": "bin/busybox", "usr/bin/x": "../../bin/busybox"})
    entry = _listing(initramfs.build(Cache(tmp_path / "cache")))
    assert entry["init"].startswith("-")                 # the agent, not a link to busybox
    assert entry["usr/bin/x"].endswith("-> ../../bin/busybox")


def test_the_links_are_part_of_the_cache_key(tmp_path, monkeypatch):
    """An archive built without links (agent installs them) is never reused as one with them."""
    from rig.artefacts.store import Cache
    cache = Cache(tmp_path / "cache")
    with_links = initramfs.build(cache)
    monkeypatch.setattr(initramfs, "applet_links", lambda busybox: {})
    without = initramfs.build(cache)
    assert with_links.path != without.path
    assert "applets=installed-by-agent" in without.version and "applets=installed-by-agent" not in with_links.version


def test_the_same_bytes_under_any_umask(tmp_path):
    import os
    from rig.artefacts.store import Cache
    digests = []
    for umask in (0o022, 0o077):
        old = os.umask(umask)
        try:
            digests.append(initramfs.build(Cache(tmp_path / f"cache-{umask:o}")).sha256)
        finally:
            os.umask(old)
    assert digests[0] == digests[1]


def test_an_arch_rows_probe_is_built_for_it_and_carried_executable(tmp_path):
    """aarch64's foreign-map probe, built static by Debian's cross gcc (installed by
    `./bootstrap.sh test`), lands as bin/rig-foreign-map; x86 asks for none."""
    from rig.artefacts.store import Cache
    from rig.spec import platform
    arm = platform.ARCHES["aarch64"]
    assert arm.dom0_probes == ("foreign-map",) and platform.ARCHES["x86_64"].dom0_probes == ()
    cache = Cache(tmp_path / "cache")
    probe = initramfs.probe_binary(cache, "foreign-map", arm.multiarch, arm.probe_compiler_packages)
    head = probe.read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183   # EM_AARCH64
    assert initramfs.is_static_elf(probe.read_bytes()[:65536])
    assert initramfs.probe_binary(cache, "foreign-map", arm.multiarch, arm.probe_compiler_packages) == probe   # cached
    entry = _listing(initramfs.build(cache, probes={"foreign-map": probe}))
    assert entry["bin/rig-foreign-map"].startswith("-rwx")
    assert "bin/rig-foreign-map" not in _listing(initramfs.build(cache))


def test_a_missing_cross_compiler_is_named_with_its_packages(tmp_path, monkeypatch):
    from rig.artefacts.store import Cache
    from rig.errors import ArtefactError
    monkeypatch.setenv("PATH", str(tmp_path))   # no compiler at all
    with pytest.raises(ArtefactError, match="aarch64-linux-gnu-gcc not found: dom0's foreign-map probe is built "
                                            "with Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross"):
        initramfs.probe_binary(Cache(tmp_path / "c"), "foreign-map", "aarch64-linux-gnu",
                               ("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"))
