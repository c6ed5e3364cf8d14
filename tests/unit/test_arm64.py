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
    ('', '[expect.k]\nextended_regions = "safe"\n[[expect.k.when]]\ndom0_mem = "512M"\nxen_scratch = "none"',
     "expect.k.when.0.xen_scratch", "not judged on aarch64"),
    ('backend = "libvirt"', '', "host.backend", "x86_64 hosts only"),
    ('pci_hole64_size = "64G"', '', "host.pci_hole64_size", "fixed 64-bit PCI window"),
    ('', '[expect.k]\nforeign_mapping = "anywhere"', "expect.k.foreign_mapping", "'extended-region' or"),
])
def test_what_an_arm_host_cannot_do_is_refused_naming_the_key(tmp_path, host, rest, key, problem):
    text = ARM.format(host=host, rest=rest)
    with pytest.raises(ScenarioError) as exc:
        _load(tmp_path, text)
    assert exc.value.key == key and problem in str(exc.value)


def test_an_arm_host_may_build_its_kernels_and_x86_may_not_ask_where_foreign_maps_land(tmp_path):
    s = _load(tmp_path, ARM.format(host="", rest='[builds.x]\nsource = "debian-6.1"\n[expect.k]\n'
                                               'foreign_mapping = "extended-region"').replace(
        'k = "debian-6.1"', 'k = "built:x"'))
    assert s.builds["x"].source == "debian-6.1" and s.expect["k"].foreign_mapping == "extended-region"
    x86 = ARM.format(host="", rest='[expect.k]\nforeign_mapping = "ballooned-ram"').replace(
        'arch = "aarch64"\nfirmware = "none"\niommu = "none"\n', "")
    with pytest.raises(ScenarioError, match="expect.k.foreign_mapping.*not judged on x86_64 hosts"):
        _load(tmp_path, x86)


def test_x86_firmware_and_iommu_on_arm_and_arm_firmware_on_x86_are_refused(tmp_path):
    text = ARM.format(host="", rest="")
    with pytest.raises(ScenarioError, match=r"host.firmware.*'seabios' does not run aarch64 hosts \(aarch64 has: none, aavmf\)"):
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


def test_x86_hosts_cannot_ask_for_extended_regions(tmp_path):
    with pytest.raises(ScenarioError, match=r"expect.k.extended_regions.*not judged on x86_64"):
        _load(tmp_path, 'name = "x"\n[kernels]\nk = "debian-6.1"\n[expect.k]\nextended_regions = "none"\n')


def test_a_user_kernel_of_the_other_architecture_is_refused(tmp_path):
    from rig.run.batch import check_kernel_image
    image = tmp_path / "Image"
    image.write_bytes(bytes(0x38) + b"ARM\x64" + bytes(0x400))
    check_kernel_image("k", image, platform.ARCHES["aarch64"])
    with pytest.raises(InputError, match=r"kernel k \(.*\): not an x86_64 kernel image"):
        check_kernel_image("k", image, platform.ARCHES["x86_64"])


# -- the check on a real run ------------------------------------------------------------------

HOST_RAM = (0x40000000, 0xBFFFFFFF)   # QEMU virt: 2 GiB at 1 GiB


def _collected(role="unpatched"):
    serial = read_console(RUN / role / "serial.log")
    return collect.sections(serial), serial


def _dt(grant, regions):
    """The agent's xen-devicetree section for these [start, end) entries (2 + 2 cells)."""
    cells = b"".join(a.to_bytes(8, "big") + (b - a).to_bytes(8, "big") for a, b in [grant, *regions])
    return (f"#address-cells 00 00 00 02\n#size-cells 00 00 00 02\n"
            f"hypervisor/reg {' '.join(f'{c:02x}' for c in cells)}\n")


def _with_regions(regions, *, disabled=False, role="unpatched"):
    """The real run with Xen's region lines (and so the device tree Xen writes) replaced:
    what a Xen that chose other regions would have shown."""
    collected, serial = _collected(role)
    lines = [line for line in serial.splitlines() if "extended region" not in line]
    at = next(i for i, line in enumerate(lines) if "Grant table range" in line) + 1
    new = [f"(XEN) d0: extended region {i}: {a:#x}->{b:#x}" for i, (a, b) in enumerate(regions)]
    if disabled:
        new = ["(XEN) d0: extended regions support is disabled"]
    sections = dict(collected.sections)
    sections["xen-devicetree"] = _dt((0x40200000, 0x40240000), regions)
    return collect.Collected(sections), "\n".join(lines[:at] + new + lines[at:]) + "\n"


def _judge(collected, serial, want="safe"):
    a = verdict.analyse_device_tree(collected, serial, HOST_RAM)
    (check,) = verdict.evaluate(Expect(extended_regions=want), a)
    return a, check


def test_the_real_run_passes_with_the_regions_xen_printed_and_wrote():
    collected, serial = _collected()
    assert "hypervisor/reg" in collected["xen-devicetree"]
    a, check = _judge(collected, serial)
    # 2 GiB of host RAM at 0x40000000; dom0's 512 MiB bank at 0x60000000 lies between the two
    # regions, which are the rest of the RAM less Xen's modules and the grant table.
    assert a.extended_regions == [(0x40400000, 0x5FFFFFFF), (0x80000000, 0xBFFFFFFF)]
    assert a.region_overlaps == [] and a.relocations == []
    bar = next(r for r in a.resources if r["device"] == "0000:00:01.0" and r["kind"] == "mem"
               and r["final"] and r["final"][0] >= 1 << 32)
    assert bar["final"] == [0x8000000000, 0x803FFFFFFF] and bar["firmware"] is None   # no firmware placed it
    assert check.passed and "[0x40400000-0x5fffffff], [0x80000000-0xbfffffff]" in check.detail
    assert not _judge(collected, serial, "none")[1].passed


@pytest.mark.parametrize("region, owner", [
    ((0x8000000000, 0x8040000000), "0000:00:01.0 BAR 2"),            # onto the 1 GiB BAR
    ((0x7FF00000, 0xC0000000), "dom0 RAM (Xen BANK[0])"),              # into dom0's bank
    ((0x7FF00000, 0xC0000000), "System RAM"),
    ((0x10000000, 0x20000000), "pcie@10000000"),                      # the 32-bit host window
    ((0x40200000, 0x40201000), "Xen grant table"),
    ((0x00000000, 0x08000000), "space outside the host's RAM"),       # virt's flash: no resource of dom0's
    ((0x09000000, 0x09001000), "space outside the host's RAM"),       # the PL011 Xen keeps for itself
    ((0xBFF00000, 0xC0100000), "space outside the host's RAM"),       # past the top of RAM by 1 MiB
])
def test_a_region_over_anything_of_dom0s_or_outside_ram_fails_naming_it(region, owner):
    _, check = _judge(*_with_regions([(0x40400000, 0x60000000), region]))
    assert not check.passed and re.search(rf"overlaps {re.escape(owner)} \[", check.detail), check.detail


def test_a_region_ending_where_dom0s_ram_starts_touches_nothing():
    # Xen prints ends exclusive: 0x40400000->0x60000000 ends at 0x5fffffff, next to RAM at 0x60000000
    assert _judge(*_with_regions([(0x40400000, 0x60000000)]))[1].passed
    assert not _judge(*_with_regions([(0x40400000, 0x60000001)]))[1].passed


def test_none_needs_xen_to_say_so_and_safe_needs_a_region():
    quiet = _with_regions([])
    assert "Xen gave dom0 none" in _judge(*quiet)[1].detail and not _judge(*quiet)[1].passed
    assert not _judge(*quiet, "none")[1].passed                      # regions lost, Xen said nothing
    said = _with_regions([], disabled=True)
    assert _judge(*said, "none")[1].passed and not _judge(*said, "safe")[1].passed


@pytest.mark.parametrize("change, error, message", [
    # a lost last region line: the device tree still has it
    (lambda s, c: ("\n".join(x for x in s.splitlines() if "extended region 1:" not in x), c),
     CollectError, "disagree"),
    # junk after a region line, a split region line, a garbled BANK: never a region left out
    (lambda s, c: (s.replace("0x80000000->0xc0000000", "0x80000000->0xc0000000 x"), c), ParseError, "does not parse"),
    (lambda s, c: (s.replace("0x80000000->0xc0000000", "0x80000000->0xc00000\n(XEN) 00"), c), ParseError,
     "runs backwards"),
    (lambda s, c: (s.replace("0x80000000->0xc0000000", "0x80000000->0xb0000000"), c), CollectError,
     "disagree"),   # a digit garbled into another that still parses: the device tree has the real one
    (lambda s, c: (s.replace("(512MB)", "(512MB"), c), ParseError, "does not parse"),
    # Xen's account of dom0's memory cut short
    (lambda s, c: ("\n".join(x for x in s.splitlines() if "BANK[" not in x), c), CollectError, "no BANK"),
    # evidence of another kind
    (lambda s, c: (s, {**c, "xen-devicetree": "absent\n"}), CollectError, "no hypervisor node"),
    (lambda s, c: (s, {**c, "xen-devicetree": c["xen-devicetree"].replace("#size-cells 00 00 00 02", "")}),
     ParseError, "want #address-cells"),
    (lambda s, c: (s, {k: v for k, v in c.items() if k != "xen-devicetree"}), CollectError, "older than 5"),
    (lambda s, c: (s, {**c, "iomem": "".join(x + "\n" for x in c["iomem"].splitlines() if "System RAM" not in x)}),
     CollectError, "no System RAM"),
])
def test_lost_garbled_or_foreign_evidence_is_never_judged(change, error, message):
    collected, serial = _collected()
    changed = change(serial, dict(collected.sections))
    assert changed != (serial, dict(collected.sections))   # the change took: the test is not vacuous
    serial, sections = changed
    with pytest.raises(error, match=message):
        verdict.analyse_device_tree(collect.Collected(sections), serial, HOST_RAM)
    assert issubclass(ParseError, CollectError)   # so the job errs (collect), never passes or fails


def test_an_arm_dom0_says_it_has_no_memmap_and_an_x86_parse_refuses_that():
    from rig.parse import e820
    collected, _ = _collected()
    assert collected["e820"].strip() == "absent"
    with pytest.raises(ParseError, match="no /sys/firmware/memmap"):
        e820.from_memmap(collected["e820"])


def test_aavmf_boots_xen_efi_from_a_virtio_mmio_disk_with_acpi_off(tmp_path):
    """UEFI on Arm virt: the same xen-efi boot method as OVMF on q35, with Arm's loader name
    and a disk that adds no PCI device to the topology judged."""
    from rig.host.media import Media
    from rig.host.qemu_argv import qemu_argv
    from rig.spec import plan
    s = scenario.load(ROOT / "scenarios" / "arm64-aavmf.toml")
    p = plan.make(s, "unpatched", "tcg", xen=Path("/c/xen"), kernel=Path("/c/Image"), initrd=Path("/c/i"),
                  xen_efi=Path("/c/xen.efi"))
    argv = qemu_argv(p, console_socket=Path("/r/c"), qmp_socket=Path("/r/q"), serial_log=Path("/o/s"),
                     media=Media(firmware_vars=tmp_path / "vars.fd", esp=tmp_path / "esp.img"))
    assert argv[argv.index("-machine") + 1] == "virt,virtualization=on,gic-version=3,acpi=off"
    assert f"if=none,id=esp,format=raw,file={tmp_path / 'esp.img'}" in argv and "virtio-blk-device,drive=esp" in argv
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd" in argv
    assert not any("guest-loader" in a or "if=ide" in a for a in argv)
    assert p.arch.efi_boot_name == "BOOTAA64" and not p.firmware.places_bars


def test_arm_firmware_on_x86_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match=r"'aavmf' does not run x86_64 hosts"):
        _load(tmp_path, 'name = "x"\n[host]\nfirmware = "aavmf"\n[kernels]\nk = "debian-6.1"\n')


# -- where a foreign mapping lands (the agent's foreign-map probe, same real run) --------------

SECTION = 128 << 20   # arm64 with 4 KiB pages: one memory section, what the allocator carves


def _mapping(role, want, **sections):
    collected, serial = _collected(role)
    collected = collect.Collected({**collected.sections, **sections})
    a = verdict.analyse_device_tree(collected, serial, HOST_RAM)
    (check,) = verdict.evaluate(Expect(foreign_mapping=want), a)
    return a, check


def test_6_12_maps_inside_a_section_it_carved_from_the_first_extended_region():
    a, check = _mapping("patched", "extended-region")
    first = a.extended_regions[0]
    start = -(-first[0] // SECTION) * SECTION           # the first section boundary in the region
    assert a.xen_scratch == [(start, start + SECTION - 1)] == [(0x48000000, 0x4FFFFFFF)]
    # the allocator's free list is last in, first out: the first page handed out is the top one
    assert (a.foreign_map.address, a.foreign_map.page) == (start + SECTION - 4096, 4096)
    assert a.foreign_map.pattern_ok and check.passed, check.detail
    assert "in extended region [0x40400000-0x5fffffff]; Xen scratch [0x48000000-0x4fffffff]" in check.detail
    # and it is no overlap for the regions check: Xen scratch is the regions in use
    assert a.region_overlaps == []
    assert not _mapping("patched", "ballooned-ram")[1].passed


def test_6_1_without_the_unpopulated_allocator_maps_over_a_page_of_dom0s_ram():
    a, check = _mapping("unpatched", "ballooned-ram")
    bank = (0x60000000, 0x7FFFFFFF)                      # BANK[0], 512 MiB: dom0_mem
    assert a.dom0_banks == [bank] and a.xen_scratch == []
    assert bank[0] <= a.foreign_map.address and a.foreign_map.address + 4095 <= bank[1]
    assert check.passed and "dom0's RAM, ballooned out (bank [0x60000000-0x7fffffff])" in check.detail
    assert not _mapping("unpatched", "extended-region")[1].passed


GRANTED = "granted=0x6fe3c"   # a page of dom0's bank


@pytest.mark.parametrize("probe, problem", [
    (f"mapped ref=8 pfn=0x4ffff addr=0x4ffff000 page=4096 {GRANTED} pattern=mismatch", "read back something else"),
    ("failed step=gntdev-map errno=12 (Cannot allocate memory)", "failed at gntdev-map: errno 12"),
    ("failed step=gntdev-mmap errno=14 (Bad address)", "failed at gntdev-mmap"),
    ("failed step=gntdev-unmap errno=22 (Invalid argument)", "failed at gntdev-unmap"),   # teardown
    # a page in an extended region but in no Xen scratch: not where the kernel's allocator put it
    (f"mapped ref=8 pfn=0x40500 addr=0x40500000 page=4096 {GRANTED} pattern=ok", "neither an extended region's"),
    # a page in the 1 GiB BAR: the bug this rig exists for
    (f"mapped ref=8 pfn=0x8000000 addr=0x8000000000 page=4096 {GRANTED} pattern=ok", "neither"),
    # the granted page itself handed back as the "mapping"
    ("mapped ref=8 pfn=0x6fe3c addr=0x6fe3c000 page=4096 granted=0x6fe3c pattern=ok", "the granted page itself"),
])
def test_a_mapping_that_failed_misread_or_landed_elsewhere_fails(probe, problem):
    _, check = _mapping("patched", "extended-region", **{"foreign-map": probe + "\n"})
    assert not check.passed and problem in check.detail, check.detail


def test_a_page_straddling_the_end_of_its_scratch_is_not_inside_it():
    collected, _ = _collected("patched")
    short = collected["iomem"].replace("48000000-4fffffff : Xen scratch", "48000000-4fff7fff : Xen scratch")
    probe = f"mapped ref=8 pfn=0x4fff addr=0x4fff0000 page=65536 {GRANTED} pattern=ok\n"   # 64 KiB
    _, check = _mapping("patched", "extended-region", iomem=short, **{"foreign-map": probe})
    assert not check.passed and "neither an extended region's Xen scratch" in check.detail


def test_a_page_ballooned_from_the_kernels_own_image_or_beside_a_scratch_is_no_ballooned_page():
    collected, _ = _collected("unpatched")
    code = next(ln for ln in collected["iomem"].splitlines() if ln.strip().endswith(": Kernel code"))
    start = int(code.strip().split("-")[0], 16)
    in_code = f"mapped ref=8 pfn={start >> 12:#x} addr={start:#x} page=4096 {GRANTED} pattern=ok\n"
    _, check = _mapping("unpatched", "ballooned-ram", **{"foreign-map": in_code})
    assert not check.passed and "the kernel's own image" in check.detail
    scratch = collected["iomem"] + "80000000-87ffffff : Xen scratch\n"
    _, check = _mapping("unpatched", "ballooned-ram", iomem=scratch)
    assert not check.passed and "Xen scratch [0x80000000-0x87ffffff]" in check.detail


def test_what_the_kernel_says_once_the_probe_starts_fails_the_mapping():
    collected, _ = _collected("patched")
    warned = collected["dmesg"] + "[    9.000000] WARNING: CPU: 0 PID: 99 at drivers/xen/gntdev.c:1 x+0x0/0x4\n"
    _, check = _mapping("patched", "extended-region", dmesg=warned)
    assert not check.passed and "the kernel said while it ran: WARNING: CPU: 0 PID: 99" in check.detail
    # the same line before the mark (6.1's MSI warnings at boot are such) is not the probe's
    mark = "rig: foreign-map probe starts"
    early = collected["dmesg"].replace(mark, "WARNING: CPU: 0 PID: 1 at drivers/pci/msi/msi.h:17 y\n" + mark)
    assert _mapping("patched", "extended-region", dmesg=early)[1].passed


def test_xen_scratch_outside_the_regions_or_over_a_bar_fails_even_with_the_page_inside_one():
    collected, _ = _collected("patched")
    # a second scratch section, on the BAR (the page still in the first, inside a region)
    moved = collected["iomem"] + "8000000000-8007ffffff : Xen scratch\n"
    _, check = _mapping("patched", "extended-region", iomem=moved)
    assert not check.passed and "outside the extended regions: [0x8000000000-0x8007ffffff]" in check.detail
    assert "overlaps pcie@10000000" in check.detail or "overlaps 0000:00:01.0 BAR 2" in check.detail


@pytest.mark.parametrize("sections, problem", [
    ({"foreign-map": "absent\n"}, "no foreign-mapping probe"),
    ({"foreign-map": "failed step=open-gntalloc errno=2 (No such file or directory)\n"}, "could not ask"),
    ({"foreign-map": "failed step=open-gntdev errno=2 (No such file or directory)\n"}, "could not ask"),
    ({"foreign-map": "failed step=gntalloc errno=28 (No space left on device)\n"}, "could not ask"),
    ({"foreign-map": "failed step=pagemap errno=14 (Bad address)\n"}, "could not ask"),
    ({"dmesg": "[    0.000000] Booting Linux on physical CPU 0x0\n"}, "lacks the agent's mark"),
])
def test_no_probe_or_no_device_to_ask_is_an_error_never_a_verdict(sections, problem):
    with pytest.raises(CollectError, match=problem):
        _mapping("patched", "extended-region", **sections)


def test_an_agent_without_the_section_is_an_error():
    collected, serial = _collected("patched")
    older = collect.Collected({k: v for k, v in collected.sections.items() if k != "foreign-map"})
    a = verdict.analyse_device_tree(older, serial, HOST_RAM)
    with pytest.raises(CollectError, match="agent older than 6"):
        verdict.evaluate(Expect(foreign_mapping="extended-region"), a)


@pytest.mark.parametrize("text", [
    "mapped ref=8 pfn=0x4ffff addr=0x4fff0000 page=4096 pattern=ok\n",   # address is not pfn x page
    "mapped ref=8 pfn=0x4ffff addr=0x4ffff000 page=4000 pattern=ok\n",   # not a page size
    "mapped ref=8 pfn=0x4ffff addr=0x4ffff000 page=4096 pattern=ok\nmapped again\n",
    "mapped ref=8 pfn=0x4ffff addr=0x4ffff000 page=4096\n",               # cut short
    "mapped ref=8 pfn=0x4gfff addr=0x4ffff000 page=4096 pattern=ok\n",   # garbled digit
    "\n",
])
def test_a_garbled_or_cut_probe_line_is_never_judged(text):
    from rig.parse import foreign_map
    with pytest.raises(ParseError, match="foreign-map section"):
        foreign_map.parse(text)


def test_something_nested_inside_a_xen_scratch_is_an_overlap_of_the_regions():
    collected, serial = _collected("patched")
    nested = collected["iomem"].replace("48000000-4fffffff : Xen scratch\n",
                                        "48000000-4fffffff : Xen scratch\n  49000000-49000fff : some-device\n")
    assert nested != collected["iomem"]
    a = verdict.analyse_device_tree(collect.Collected({**collected.sections, "iomem": nested}), serial, HOST_RAM)
    (check,) = verdict.evaluate(Expect(extended_regions="safe"), a)
    assert not check.passed and "overlaps some-device [0x49000000-0x49000fff]" in check.detail


def test_the_mapped_and_granted_pages_of_the_real_runs_are_apart():
    for role in ("unpatched", "patched"):
        a, _ = _mapping(role, "extended-region" if role == "patched" else "ballooned-ram")
        fm = a.foreign_map
        assert fm.granted != fm.address and 0x60000000 <= fm.granted <= 0x7FFFF000   # granted from dom0's bank
        assert not any(r[0] <= fm.address <= r[1] for r in a.kernel_image)
