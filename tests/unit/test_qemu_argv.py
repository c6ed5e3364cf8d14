"""The QEMU command line is a pure function of the plan: checked against reference files.

Regenerate the references after an intended change with RIG_REGEN=1.
"""

import os
from pathlib import Path

import pytest

from rig.spec import plan, scenario
from rig.host.qemu_argv import qemu_argv

ROOT = Path(__file__).resolve().parents[2]
REFS = ROOT / "tests" / "data" / "argv"


def _argv(scenario_file, accel, role="unpatched"):
    s = scenario.load(ROOT / "scenarios" / scenario_file)
    p = plan.make(s, role, accel, xen=Path("/cache/xen"), kernel=Path("/cache/vmlinuz"),
                  initrd=Path("/cache/initrd.gz"))
    return qemu_argv(p, console_socket=Path("/run/c.sock"), qmp_socket=Path("/run/q.sock"),
                     serial_log=Path("/out/serial.log"))


@pytest.mark.parametrize("scenario_file, accel", [("bar-clash-64bit.toml", "tcg"), ("bar-clash-64bit.toml", "kvm"),
                                                  ("controls/no-iommu.toml", "tcg"), ("arm64-bar-64bit.toml", "tcg")])
def test_argv_matches_reference(scenario_file, accel):
    got = "\n".join(_argv(scenario_file, accel)) + "\n"
    ref = REFS / f"{Path(scenario_file).stem}-{accel}.txt"  # controls/x.toml -> x-tcg.txt
    if os.environ.get("RIG_REGEN"):
        ref.write_text(got)
    assert got == ref.read_text()


def test_kvm_uses_host_cpu_and_split_irqchip():
    argv = _argv("bar-clash-64bit.toml", "kvm")
    assert argv[argv.index("-machine") + 1] == "q35,kernel-irqchip=split"
    assert argv[argv.index("-cpu") + 1] == "host"
    assert argv[argv.index("-accel") + 1] == "kvm"


def test_tcg_cpu_has_svm_and_npt_but_no_xsave_features():
    # qemu64 has no RDTSCP (kills dom0 under TCG), no PKU (kills init) and no AVX/XSAVE
    # (6.12 hits "Bad FPU state detected" with `max`); Xen needs svm + npt for PVH.
    argv = _argv("bar-clash-64bit.toml", "tcg")
    assert argv[argv.index("-cpu") + 1] == "qemu64,+svm,+npt"
    assert argv[argv.index("-accel") + 1] == "tcg,thread=multi"


def test_iommu_precedes_pci_devices_and_none_means_none():
    argv = _argv("bar-clash-64bit.toml", "tcg")
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert devices == ["intel-iommu,intremap=on,aw-bits=48", "pci-testdev,id=pcitestdev1,bus=pcie.0,addr=0x1,membar=1G",
                       "e1000e,id=rig-nic,bus=pcie.0,addr=0x1e,netdev=rig-net,romfile="]
    assert not any(a.startswith("intel-iommu") for a in _argv("controls/no-iommu.toml", "tcg"))


def test_network_none_means_no_nic_and_no_netdev(tmp_path):
    s = scenario.load(ROOT / "scenarios" / "bar-clash-64bit.toml")
    s = s.model_copy(update={"host": s.host.model_copy(update={"network": "none"})})
    p = plan.make(s, "patched", "tcg", xen=Path("/x"), kernel=Path("/k"), initrd=Path("/i"))
    argv = qemu_argv(p, console_socket=Path("/c"), qmp_socket=Path("/q"), serial_log=Path("/s"))
    assert "-netdev" not in argv
    assert not any(a.startswith("e1000e") for a in argv)


def test_user_network_is_restricted_and_forwards_nothing_itself():
    argv = _argv("bar-clash-64bit.toml", "tcg")
    assert argv[argv.index("-netdev") + 1] == "user,id=rig-net,restrict=on"  # the SSH forward is added over QMP
    assert not any("hostfwd" in a for a in argv)


def test_multiboot_modules_escape_commas(tmp_path):
    s = scenario.load(ROOT / "scenarios" / "bar-clash-64bit.toml")
    s = s.model_copy(update={"xen": s.xen.model_copy(update={"dom0_cmdline": "pci=realloc,nocrs"})})
    p = plan.make(s, "patched", "tcg", xen=Path("/x"), kernel=Path("/k,1"), initrd=Path("/i"))
    argv = qemu_argv(p, console_socket=Path("/c"), qmp_socket=Path("/q"), serial_log=Path("/s"))
    assert argv[argv.index("-initrd") + 1] == ("/k,,1 console=hvc0 earlyprintk=xen initcall_blacklist=i8042_init "
                                               "pci=realloc,,nocrs,/i")


def test_user_qemu_args_come_last():
    s = scenario.load(ROOT / "scenarios" / "bar-clash-64bit.toml")
    s = s.model_copy(update={"host": s.host.model_copy(update={"qemu_args": ["-global", "x.y=1"]})})
    p = plan.make(s, "patched", "tcg", xen=Path("/x"), kernel=Path("/k"), initrd=Path("/i"))
    argv = qemu_argv(p, console_socket=Path("/c"), qmp_socket=Path("/q"), serial_log=Path("/s"))
    assert argv[-2:] == ["-global", "x.y=1"]


def test_another_qemu_runs_its_own_binary_with_its_own_roms_first():
    s = scenario.load(ROOT / "scenarios" / "bar-clash-64bit.toml")
    q = plan.QemuBinary(Path("/cache/qemu/10.0/root/usr/bin/qemu-system-x86_64"),
                        (Path("/cache/qemu/10.0/root/usr/share/qemu"), Path("/cache/qemu/10.0/root/usr/share/seabios")))
    p = plan.make(s, "unpatched", "tcg", xen=Path("/x"), kernel=Path("/k"), initrd=Path("/i"), qemu=q)
    argv = qemu_argv(p, console_socket=Path("/c"), qmp_socket=Path("/q"), serial_log=Path("/s"))
    assert argv[:5] == ["/cache/qemu/10.0/root/usr/bin/qemu-system-x86_64",
                        "-L", "/cache/qemu/10.0/root/usr/share/qemu", "-L", "/cache/qemu/10.0/root/usr/share/seabios"]
    default = _argv("bar-clash-64bit.toml", "tcg")
    assert default[0] == "qemu-system-x86_64" and "-L" not in default
    assert argv[5:] == qemu_argv(plan.make(s, "unpatched", "tcg", xen=Path("/x"), kernel=Path("/k"), initrd=Path("/i")),
                                 console_socket=Path("/c"), qmp_socket=Path("/q"), serial_log=Path("/s"))[1:]
