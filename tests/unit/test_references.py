"""The pure builders beside the QEMU argv (tests/unit/test_qemu_argv.py), each against a
reference file in tests/data/references/: the libvirt domain XML, Xen's and dom0's command
lines, xen.efi's BOOTX64.cfg. A change to any of them shows up here as a diff to review.
Regenerate the references after an intended change with RIG_REGEN=1, and read the diff.
"""

import os
from pathlib import Path

import pytest

from rig.host.libvirt import domain_xml
from rig.host.media import xen_efi_config
from rig.spec import plan, scenario

ROOT = Path(__file__).resolve().parents[2]
REFS = ROOT / "tests" / "data" / "references"


def _plan(scenario_file: str, role: str, accel: str = "tcg"):
    s = scenario.load(ROOT / "scenarios" / scenario_file)
    s = s.variant(*s.variants()[0])
    return plan.make(s, role, accel, xen=Path("/cache/xen"), kernel=Path("/cache/vmlinuz"),
                     initrd=Path("/cache/initrd"), xen_efi=Path("/cache/xen.efi"))


def _check(name: str, got: str) -> None:
    ref = REFS / name
    if os.environ.get("RIG_REGEN"):
        ref.write_text(got)
    assert got == ref.read_text()


@pytest.mark.parametrize("scenario_file, role", [("bar-clash-64bit.toml", "unpatched"),
                                                 ("bar-clash-64bit.toml", "patched"),
                                                 ("balloon-cap-split.toml", "patched")])
def test_xen_and_dom0_command_lines(scenario_file, role):
    p = _plan(scenario_file, role)
    _check(f"{Path(scenario_file).stem}-{role}.cmdlines",
           f"xen: {p.xen_cmdline}\ndom0: {p.dom0_cmdline}\n")


@pytest.mark.parametrize("accel", ["tcg", "kvm"])
def test_libvirt_domain_xml(accel):
    p = _plan("bar-clash-64bit.toml", "unpatched", accel)
    _check(f"bar-clash-64bit-{accel}.domain.xml",
           domain_xml(p, "rig-bar-clash-64bit-unpatched-0000", p, Path("/out/serial.log"), 42) + "\n")


def test_xen_efi_bootx64_cfg():
    p = _plan("ovmf-bar-noclash.toml", "unpatched")
    _check("ovmf-bar-noclash-unpatched.BOOTX64.cfg", xen_efi_config(p))
