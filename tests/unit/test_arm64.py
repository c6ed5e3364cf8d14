"""The aarch64 row: what a scenario may ask of it, how its host is chosen and fetched, and
the extended-regions check on a real run (tests/data/runs/arm64-bar-64bit: Xen 4.17.7 arm64,
QEMU virt with 2 GiB at 0x40000000 and a 1 GiB BAR, dom0_mem=512M, collected over serial)."""

import re
from pathlib import Path

import pytest

from rig.artefacts import archive
from rig.artefacts.apt import Apt
from rig.checks import verdict
from rig.errors import CollectError, InputError, ParseError, ScenarioError
from rig.guest import collect
from rig.spec import platform, scenario
from rig.spec.scenario import Expect
from tests.conftest import RUNS, read_console

ROOT = Path(__file__).resolve().parents[2]
RUN = RUNS / "arm64-bar-64bit"


def _load(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return scenario.load(path)


ARM = '''name = "a"
[host]
arch = "aarch64"
firmware = "none"
iommu = "none"
{host}
[kernels]
k = "debian-6.1"
{rest}
'''


@pytest.mark.parametrize("host, rest, key, problem", [
    ('', '[expect.k]\nrelocations = "none"', "expect.k.relocations", "not judged on aarch64 hosts"),
    ('', '[expect.k]\nballoon_converted = true', "expect.k.balloon_converted", "not judged on aarch64"),
    ('', '[expect.k]\nextended_regions_safe = true\n[[expect.k.when]]\ndom0_mem = "512M"\nxen_scratch = "none"',
     "expect.k.when.0.xen_scratch", "not judged on aarch64"),
    ('', '[builds.x]\nsource = "debian-6.1"', "builds", "x86_64 kernels only"),
    ('backend = "libvirt"', '', "host.backend", "x86_64 hosts only"),
    ('pci_hole64_size = "64G"', '', "host.pci_hole64_size", "fixed 64-bit PCI window"),
])
def test_what_an_arm_host_cannot_do_is_refused_naming_the_key(tmp_path, host, rest, key, problem):
    with pytest.raises(ScenarioError) as exc:
        _load(tmp_path, ARM.format(host=host, rest=rest))
    assert exc.value.key == key and problem in str(exc.value)


def test_x86_firmware_and_iommu_on_arm_and_arm_firmware_on_x86_are_refused(tmp_path):
    text = ARM.format(host="", rest="")
    with pytest.raises(ScenarioError, match=r"host.firmware.*'seabios' does not run aarch64 hosts \(aarch64 has: none\)"):
        _load(tmp_path, text.replace('firmware = "none"', 'firmware = "seabios"'))
    with pytest.raises(ScenarioError, match=r"host.iommu.*'intel' is not an IOMMU of aarch64 hosts"):
        _load(tmp_path, text.replace('iommu = "none"\n', ''))   # the default, intel
    with pytest.raises(ScenarioError, match=r"'none' does not run x86_64 hosts"):
        _load(tmp_path, text.replace('arch = "aarch64"\n', ''))


def test_the_library_scenario_validates():
    s = scenario.load(ROOT / "scenarios" / "arm64-bar-64bit.toml")
    assert (s.host.arch, s.host.firmware, s.host.iommu) == ("aarch64", "none", "none")


def test_kvm_narrows_to_tcg_for_another_architecture_and_an_explicit_request_is_refused():
    arm, x86 = platform.ARCHES["aarch64"], platform.ARCHES["x86_64"]
    kvm = platform.AccelChoice("kvm", "KVM: /dev/kvm creates VMs and the CPU has vmx")
    assert platform.accel_for(kvm, x86) is kvm
    narrowed = platform.accel_for(kvm, arm)
    assert narrowed.accel == "tcg" and "aarch64" in narrowed.reason
    with pytest.raises(InputError, match="--accel kvm: aarch64 hosts run under tcg only"):
        platform.accel_for(platform.choose_accel("kvm", True, {"vmx"}), arm)


def test_arm_packages_come_from_an_arm64_apt_root_of_their_own(tmp_path):
    opts = " ".join(map(str, Apt(tmp_path, "arm64")._opts()))
    assert "APT::Architecture=arm64" in opts and "APT::Architectures=arm64" in opts
    assert f"Dir::State::status={tmp_path / 'status'}" in opts   # not this machine's amd64 dpkg status
    assert "APT::Architecture" not in " ".join(Apt(tmp_path)._opts())
    assert archive.debian_xen("4.17", "aarch64").package == "xen-hypervisor-4.17-arm64"
    assert archive.debian_xen("4.17", "x86_64").package == "xen-hypervisor-4.17-amd64"
    # the same package names and versions, other bytes: another cache entry
    pins = {"busybox-static": "1:1.35.0-4+b3"}
    assert archive.pins_digest(pins) != archive.pins_digest(pins, "arm64")


def test_an_arm_kernel_has_its_own_cache_entry(tmp_path, monkeypatch):
    from rig.artefacts.store import Cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(Exception, match="kernel debian-6.1-arm64 is not in the cache"):
        Cache().kernel("debian-6.1", fetch=False, arch=platform.ARCHES["aarch64"])


# -- the check on a real run ------------------------------------------------------------------

def _collected(role="unpatched", serial=None):
    text = serial if serial is not None else read_console(RUN / role / "serial.log")
    return collect.sections(text), text


def test_the_real_run_passes_with_the_regions_xen_printed():
    collected, serial = _collected()
    a = verdict.analyse_device_tree(collected, serial)
    # 2 GiB of host RAM at 0x40000000; dom0's 512 MiB bank at 0x60000000 lies between the two
    # regions, which are the rest of the RAM less Xen's modules and the grant table.
    assert a.extended_regions == [(0x40400000, 0x5FFFFFFF), (0x80000000, 0xBFFFFFFF)]
    assert a.region_overlaps == [] and a.relocations == []
    bar = next(r for r in a.resources if r["device"] == "0000:00:01.0" and r["kind"] == "mem"
               and r["final"] and r["final"][0] >= 1 << 32)
    assert bar["final"] == [0x8000000000, 0x803FFFFFFF] and bar["firmware"] is None   # no firmware placed it
    (check,) = verdict.evaluate(Expect(extended_regions_safe=True), a)
    assert check.passed and "[0x40400000-0x5fffffff], [0x80000000-0xbfffffff]" in check.detail


LINE = "d0: extended region 1: 0x80000000->0xc0000000"


@pytest.mark.parametrize("replacement, owner", [
    ("d0: extended region 1: 0x8000000000->0x8040000000", "0000:00:01.0 BAR 2"),   # onto the 1 GiB BAR
    ("d0: extended region 1: 0x7ff00000->0xc0000000", "System RAM"),              # into dom0's bank
    ("d0: extended region 1: 0x10000000->0x20000000", "pcie@10000000"),           # the 32-bit host window
    ("d0: extended region 1: 0x40200000->0x40201000", "Xen grant table"),
])
def test_a_region_over_anything_of_dom0s_fails_naming_it(replacement, owner):
    collected, serial = _collected()
    assert LINE in serial
    a = verdict.analyse_device_tree(collected, serial.replace(LINE, replacement))
    (check,) = verdict.evaluate(Expect(extended_regions_safe=True), a)
    assert not check.passed and re.search(rf"overlaps {re.escape(owner)} \[", check.detail), check.detail


def test_no_regions_is_not_safe_and_a_garbled_one_is_never_judged():
    collected, serial = _collected()
    bare = "\n".join(line for line in serial.splitlines() if "extended region" not in line)
    (check,) = verdict.evaluate(Expect(extended_regions_safe=True), verdict.analyse_device_tree(collected, bare))
    assert not check.passed and "Xen gave dom0 none" in check.detail
    with pytest.raises(ParseError):
        verdict.analyse_device_tree(collected, serial.replace(LINE, LINE.replace("region 1", "region 2")))
    assert issubclass(ParseError, CollectError)   # so the job errs (collect), never passes or fails


def test_an_arm_dom0_says_it_has_no_memmap_and_an_x86_parse_refuses_that():
    from rig.parse import e820
    collected, _ = _collected()
    assert collected["e820"].strip() == "absent"
    with pytest.raises(ParseError, match="no /sys/firmware/memmap"):
        e820.from_memmap(collected["e820"])
