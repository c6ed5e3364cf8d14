"""Accelerator choice is a pure decision; the probe only feeds it."""

import pytest

from rig.spec import platform
from rig.errors import InputError


def test_pvm_style_kvm_without_svm_or_vmx_picks_tcg_and_says_why():
    choice = platform.choose_accel("auto", kvm_creates_vm=True, cpu_flags={"fpu", "sse2"})
    assert choice.accel == "tcg" and "neither svm nor vmx" in choice.reason


def test_no_kvm_picks_tcg():
    assert platform.choose_accel("auto", False, {"vmx"}).accel == "tcg"


@pytest.mark.parametrize("flag", ["vmx", "svm"])
def test_real_kvm_picks_kvm(flag):
    choice = platform.choose_accel("auto", True, {flag, "fpu"})
    assert choice.accel == "kvm" and flag in choice.reason


def test_override_is_obeyed_and_checked():
    assert platform.choose_accel("tcg", True, {"vmx"}).accel == "tcg"
    with pytest.raises(InputError, match="unknown accelerator 'hvf'.*kvm, tcg"):
        platform.choose_accel("hvf", True, {"vmx"})


def test_cpu_flags_from_cpuinfo():
    text = "processor\t: 0\nflags\t\t: fpu vme svm lm\nbugs\t\t:\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    assert platform.cpu_flags(text) == {"fpu", "vme", "svm", "lm"}


def test_probe_of_missing_device_is_false(tmp_path):
    assert platform.probe_kvm(str(tmp_path / "kvm")) is False


def test_lookup_lists_valid_names():
    with pytest.raises(InputError, match="unknown firmware 'uboot' \\(available: aavmf, none, ovmf, seabios\\)"):
        platform.lookup(platform.FIRMWARES, "uboot", "firmware")


def test_firmware_time_allowances_name_real_stages():
    from rig.guest.console import STAGE_TIMEOUTS
    for firmware in platform.FIRMWARES.values():
        assert set(firmware.extra_seconds) <= set(STAGE_TIMEOUTS), firmware.name
    # Under OVMF the slow part is dom0's TSC calibration: between "Linux version" and the agent.
    assert platform.FIRMWARES["ovmf"].extra_seconds["userspace"] > 0
