"""Parsers on the real captures, plus old-format lines written from the kernel's format strings."""

import json

import pytest

from rig.guest import collect
from rig.errors import ParseError
from rig.parse import dmesg, e820, iomem, pci, xen
from tests.conftest import RUNS, read_console


def _sections(capture, name):
    return collect.sections(capture(name), required=("dmesg", "iomem", "e820"))


def test_dmesg_new_format_conflict_and_assignment(capture):
    events = dmesg.pci_events(_sections(capture, "unpatched-6.1-testdev1G-relocated")["dmesg"])
    bar2 = [e for e in events if e.device == "0000:00:03.0" and e.index == 2]
    assert [e.action for e in bar2] == ["found", "claim-conflict", "assigned"]
    conflict, assigned = bar2[1], bar2[2]
    assert conflict.conflict_owner == "Xen scratch"
    assert conflict.conflict_range == (0x100000000, 0x107FFFFFF)
    assert (conflict.resource.start, conflict.resource.prefetch, conflict.resource.is_64) == (0x100000000, True, True)
    assert assigned.resource.range == (0x140000000, 0x17FFFFFFF)


def test_dmesg_patched_has_no_conflict(capture):
    events = dmesg.pci_events(_sections(capture, "patched-6.12-testdev1G-clean")["dmesg"])
    assert not [e for e in events if e.action == "claim-conflict"]


def test_dmesg_old_format():
    # The formats of drivers/pci/setup-res.c and probe.c before "resource names in PCI log messages".
    text = "\n".join([
        "[    1.0] pci 0000:00:03.0: reg 0x18: [mem 0x100000000-0x13fffffff 64bit pref]",
        "[    1.1] pci 0000:00:03.0: can't claim BAR 2 [mem 0x100000000-0x13fffffff 64bit pref]: "
        "address conflict with Xen scratch [mem 0x100000000-0x107ffffff]",
        "[    1.2] pci 0000:00:03.0: BAR 2: assigned [mem 0x140000000-0x17fffffff 64bit pref]",
        "[    1.3] pci 0000:00:1c.0: BAR 15: assigned [mem 0x180000000-0x1bfffffff 64bit pref]",
        "[    1.4] pci 0000:01:00.0: BAR 0: no space for [mem size 0x20000000 64bit pref]",
        "[    1.5] pci 0000:01:00.0: BAR 0: failed to assign [mem size 0x20000000 64bit pref]",
    ])
    got = [(e.device, e.index, e.action) for e in dmesg.pci_events(text)]
    assert got == [("0000:00:03.0", 2, "found"), ("0000:00:03.0", 2, "claim-conflict"),
                   ("0000:00:03.0", 2, "assigned"), ("0000:00:1c.0", 15, "assigned"),
                   ("0000:01:00.0", 0, "no-space"), ("0000:01:00.0", 0, "failed-assign")]
    assert dmesg.pci_events(text)[4].resource.start is None
    assert dmesg.pci_events(text)[4].resource.size == 0x20000000


def test_dmesg_claim_failure_without_conflict():
    line = "pci 0000:01:00.0: BAR 2 [mem 0x100000000-0x13fffffff 64bit pref]: can't claim; no compatible bridge window"
    (event,) = dmesg.pci_events(line)
    assert (event.index, event.action, event.conflict_owner) == (2, "claim-failed", None)


def test_dmesg_new_format_bridge_window_index():
    line = "pci 0000:00:1c.0: bridge window [mem 0x100000000-0x13fffffff 64bit pref]: can't claim; " \
           "address conflict with Xen scratch [mem 0x100000000-0x107ffffff]"
    (event,) = dmesg.pci_events(line)
    assert (event.index, event.name, event.action) == (dmesg.BRIDGE_PREF, "bridge window", "claim-conflict")


def test_kernel_release_and_root_windows(capture):
    text = _sections(capture, "unpatched-6.1-testdev1G-relocated")["dmesg"]
    assert dmesg.kernel_release(text) == "6.1.0-56-amd64"
    windows = [(w.resource.start, w.resource.end) for w in dmesg.root_bus_windows(text)
               if w.resource.kind == "mem"]
    assert (0x100000000, 0x8FFFFFFFF) in windows


def test_iomem_tree(capture):
    tree = iomem.parse(_sections(capture, "unpatched-6.1-testdev1G-relocated")["iomem"])
    (scratch,) = iomem.named(tree, "Xen scratch")
    parent = tree[scratch.parent]
    assert parent.name == "PCI Bus 0000:00" and parent.range == (0x100000000, 0x8FFFFFFFF)
    assert iomem.xen_scratch(tree) == [(0x100000000, 0x107FFFFFF)]
    assert tree[0].depth == 0 and iomem.named(tree, "Kernel code")[0].depth == 1


def test_e820_three_sources_agree_for_unpatched(capture):
    text = capture("unpatched-6.1-testdev1G-relocated")
    found = _sections(capture, "unpatched-6.1-testdev1G-relocated")
    from_dmesg = e820.from_dmesg(found["dmesg"])
    from_memmap = e820.from_memmap(found["e820"])
    assert len(from_dmesg) == 10
    # /sys/firmware/memmap rounds the first RAM entry to pages; the types and the rest agree.
    assert [e.type for e in from_dmesg] == [e.type for e in from_memmap]
    assert ("unusable", 0x20061000, 0x7FFDEFFF) in [(e.type, e.start, e.end) for e in from_dmesg]
    host = e820.from_xen(text)
    assert host[0] == e820.E820Entry(0, 0x9FBFF, "ram")
    assert host[-1] == e820.E820Entry(0xFD00000000, 0xFFFFFFFFFF, "reserved")
    assert "unusable" not in {e.type for e in host}  # the host has no UNUSABLE: Xen makes it for dom0


def test_e820_patched_dmesg_already_shows_conversion(capture):
    # The fix rewrites the map before the kernel prints it: the Xen map must come from elsewhere.
    from_dmesg = e820.from_dmesg(_sections(capture, "patched-6.12-testdev1G-clean")["dmesg"])
    assert "unusable" not in {e.type for e in from_dmesg}


def test_xen_log(capture):
    log = xen.parse(capture("unpatched-6.1-testdev1G-relocated"))
    assert log.version == "4.17.7" and log.dom0_kind == "PVH"
    assert "dom0_mem=512M" in log.cmdline
    assert log.panic is None
    assert "0000:00:03.0 (-12)" in log.device_setup_failures
    assert xen.parse(capture("fail-no-iommu-xen-panic")).panic == \
        "Presently, iommu must be enabled for PVH hardware domain"


def test_query_pci_and_sysfs_describe_the_same_bar():
    firmware = pci.from_query_pci((RUNS / "bar-clash-64bit" / "patched" / "qmp-pci-firmware.json").read_text())
    testdev = [r for r in firmware if r.index == 2 and r.is_64]
    assert len(testdev) == 1 and testdev[0].prefetch
    assert testdev[0].end - testdev[0].start + 1 == 1 << 30  # membar=1G
    line = f"{testdev[0].device} 2 {testdev[0].start:#018x} {testdev[0].end:#018x} 0x000000000014220c"
    (final,) = pci.from_sysfs(line)
    assert final == testdev[0]


def test_sysfs_unset_resource_is_unassigned():
    (r,) = pci.from_sysfs("0000:01:00.0 0 0x0000000000000000 0x000000001fffffff 0x0000000020142200")
    assert r.range is None


def test_query_pci_bridge_windows():
    data = [{"bus": 0, "devices": [{"bus": 0, "slot": 28, "function": 0, "regions": [],
             "pci_bridge": {"bus": {"number": 0, "secondary": 1, "subordinate": 1,
                                    "io_range": {"base": 4096, "limit": 8191},
                                    "memory_range": {"base": 0xFE800000, "limit": 0xFE9FFFFF},
                                    "prefetchable_range": {"base": 0xFFF00000, "limit": 0xFFFFF}},  # closed
                            "devices": [{"bus": 1, "slot": 0, "function": 0, "regions": [
                                {"bar": 0, "type": "memory", "address": 0xFE800000, "size": 4096,
                                 "prefetch": False, "mem_type_64": False}]}]}}]}]
    got = {(r.device, r.index): r.range for r in pci.from_query_pci(json.dumps(data))}
    assert got == {("0000:00:1c.0", 13): (4096, 8191), ("0000:00:1c.0", 14): (0xFE800000, 0xFE9FFFFF),
                   ("0000:01:00.0", 0): (0xFE800000, 0xFE800FFF)}


def test_findings_from_the_ovmf_capture(capture):
    # That capture's dom0 logged a "Bad FPU state detected" WARNING.
    text = collect.sections(capture("ovmf-xenefi-6.1-testdev1G-noclash"), required=("dmesg",))["dmesg"]
    found = dmesg.findings(text)
    assert [f.kind for f in found] == ["WARNING"]
    assert found[0].line.startswith("WARNING: CPU: ")  # Xen's "(XEN) WARNING: PVH is experimental" is not one


def test_findings_on_a_clean_boot(run_data):
    text = collect.sections(run_data("bar-clash-64bit", "patched", "serial.log"))["dmesg"]
    assert dmesg.findings(text) == []


def test_findings_kinds():
    text = "[ 1.0] Oops: general protection fault, probably for non-canonical address\n" \
           "[ 2.0] BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
    assert [f.kind for f in dmesg.findings(text)] == ["Oops", "BUG"]


def test_bridge_windows_of_a_kernel_without_pci_iov_keep_their_names():
    """A tinyconfig-based 6.1 (no CONFIG_PCI_IOV) prints a bridge's windows at sysfs lines 7-9
    of 11; Debian's kernels at 13-15 of 17. Both must come out as bridge windows."""
    from rig.parse import pci
    without_iov = ("0000:00:01.0 0 0x00000000fea44000 0x00000000fea44fff 0x0000000000040200 11\n"
                   "0000:00:01.0 7 0x000000000000c000 0x000000000000cfff 0x0000000000000100 11\n"
                   "0000:00:01.0 9 0x0000000100000000 0x000000013fffffff 0x0000000000102201 11\n"
                   "0000:01:00.0 2 0x0000000140000000 0x000000017fffffff 0x000000000014220c 7\n")
    with_iov = ("0000:00:01.0 13 0x000000000000c000 0x000000000000cfff 0x0000000000000100 17\n"
                "0000:00:01.0 15 0x0000000100000000 0x000000013fffffff 0x0000000000102201 17\n"
                "0000:01:00.0 7 0x0000000200000000 0x00000002000fffff 0x000000000014220c 13\n")
    a = {(r.device, r.index): r for r in pci.from_sysfs(without_iov)}
    assert a[("0000:00:01.0", 15)].name == "bridge window" and a[("0000:00:01.0", 15)].prefetch
    assert a[("0000:00:01.0", 13)].kind == "io"
    assert ("0000:00:01.0", 0) in a and ("0000:01:00.0", 2) in a   # BARs keep their index
    b = {(r.device, r.index) for r in pci.from_sysfs(with_iov)}
    assert b == {("0000:00:01.0", 13), ("0000:00:01.0", 15), ("0000:01:00.0", 7)}  # an IOV BAR stays 7


# --- strict inside a block: a garbled line is refused, never the end of a shorter map ---------

@pytest.mark.parametrize("run, garbled", [
    ("balloon-cap-split-128M/patched", "[[00000000000f0000"),      # recorded: a doubled bracket
    ("bridge-pref64-clash/unpatched", "00000000b0000000,,"),        # recorded: a doubled comma
])
def test_recorded_garbled_xen_e820_lines_are_refused(run, garbled):
    text = read_console(RUNS / run / "serial.log")
    assert garbled in text
    with pytest.raises(ParseError, match="Xen-e820 RAM map: line does not parse"):
        e820.from_xen(text)


def test_xen_e820_under_xen_efi_is_the_efi_ram_map(capture):
    host = e820.from_xen(capture("ovmf-xenefi-6.1-testdev1G-noclash"))
    assert host[0] == e820.E820Entry(0, 0x9FFFF, "ram")
    assert e820.E820Entry(0x806000, 0x807FFF, "nvs") in host


@pytest.mark.parametrize("text, where", [
    ("0x0 0x9fbff System RAM\n0x100000 0x7ffdefff System RAM\n0x7ffdf000 0x7ff", "e820 section"),
    ("0x0 0x9fbff System RAM\n0x90000 0x9ffff Reserved\n", "e820 section"),       # overlapping entries
])
def test_memmap_lines_must_all_parse(text, where):
    with pytest.raises(ParseError, match=where):
        e820.from_memmap(text)


def test_dmesg_bios_e820_with_an_extra_digit_is_refused():
    text = ("[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable\n"
            "[    0.000000] BIOS-e820: [mem 0x00000000fed1c000-0x00000000fed11ffff] reserved\n")
    with pytest.raises(ParseError, match="BIOS-e820 line does not parse"):
        e820.from_dmesg(text)


@pytest.mark.parametrize("text", [
    "00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n  garbage\n",
    "00000000-00000fff : Reserved\n    00001000-00001fff : too deep\n",             # skips a level
    "00100000-000fffff : ends before it starts\n",
])
def test_iomem_lines_must_all_parse(text):
    with pytest.raises(ParseError, match="iomem"):
        iomem.parse(text)


@pytest.mark.parametrize("line", [
    "0000:00:01.0 2 0x0000000100000000 0x000000013fffffff",                            # a field lost
    "0000:00:01.0 2 0x00000001000000000 0x000000013fffffff 0x000000000014220c 13",     # a digit doubled
    "0000:00:0x.0 2 0x0000000100000000 0x000000013fffffff 0x000000000014220c 13",
])
def test_pci_resource_lines_must_all_parse(line):
    with pytest.raises(ParseError, match="pci-resources"):
        pci.from_sysfs(line + "\n")


@pytest.mark.parametrize("capture", ["debian-13/bpo7", "debian-sid/7.2"])
def test_linux_7_prints_e820_with_new_names_and_gaps(capture):
    """Real Debian 7.3 (trixie-backports) and 7.2 (sid) boots: "System RAM", "device reserved",
    two spaces and "[gap ...]" lines between entries. Its map is the one /sys/firmware/memmap holds."""
    run = RUNS / capture
    from_dmesg = e820.from_dmesg((run / "dmesg.txt").read_text())
    from_memmap = e820.from_memmap((run / "e820.txt").read_text())
    assert [(e.start, e.end, e.type) for e in from_dmesg] == [(e.start, e.end, e.type) for e in from_memmap]
    assert len(from_dmesg) == 10
    assert (0x20061000, 0x7FFDFFFF, "ram") in [(e.start, e.end, e.type) for e in from_dmesg]   # converted, as in 6.12
    assert (0x9FC00, 0xFFFFF, "reserved") in [(e.start, e.end, e.type) for e in from_dmesg]


def test_a_garbled_gap_line_is_refused_not_skipped():
    text = ("[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009efff]  System RAM\n"
            "[    0.000000] BIOS-e820: [gap 0x000000000009f000-0x00000000009fbff]\n")
    with pytest.raises(ParseError, match="BIOS-e820 line does not parse"):
        e820.from_dmesg(text)


def test_xen_findings_on_a_real_boot(capture):
    """Xen 4.17 under q35: each device whose IOMMU context Xen could not set up for dom0
    (ENOMEM, -12) and dom0's PIRQ limit, in the order Xen printed them."""
    found = xen.parse(capture("unpatched-6.1-testdev1G-relocated")).findings
    assert found == (
        ("xen-dom0", "d0 has maximum 416 PIRQs"),
        *[("xen-device", f"setup 0000:00:{dev} for d0 failed (-12)")
          for dev in ("01.0", "02.0", "03.0", "1f.0", "1f.2", "1f.3")],
    )


# Lines as Xen printed them on field machines, quoted in xen-devel threads (BARs Xen would
# not map, a BAR over a reserved EFI range, dom0=pf-fixup, a VT-d fault without a timestamp).
FIELD_LINES = """\
(XEN) [    8.470205] 0000:02:00.0: not mapping BAR [fea00, fea03] invalid position
(XEN) 0000:00:1f.5 disabled: BAR [0xfe010, 0xfe010] overlaps with memory map
(XEN) [    5.418855] arch/x86/hvm/emulate.c:391:d0v0 fixup p2m mapping for page fedc7 added
(XEN) [VT-D]DMAR:[DMA Write] Request device [0000:65:00.0] fault addr 1200000000
(XEN) [   37.201164] [VT-D]DMAR: reason 02 - Present bit in context entry is clear
(XEN) [    1.806828] *** Building a PVH Dom0 ***
(XEN) [    1.900000] Failed to setup Dom0 physical memory map
(XEN) [    4.445721] *** Serial input to DOM0 (type 'CTRL-a' three times to switch input)
(XEN) [    5.000000] Failed to add [fe010, fe010]: -17
(XEN) [    6.000000] Failed to frobnicate
"""


def test_xen_findings_from_field_lines():
    assert xen.parse(FIELD_LINES).findings == (
        ("xen-bar", "0000:02:00.0: not mapping BAR [fea00, fea03] invalid position"),
        ("xen-bar", "0000:00:1f.5 disabled: BAR [0xfe010, 0xfe010] overlaps with memory map"),
        ("xen-p2m", "fixup p2m mapping for page fedc7 added"),
        ("xen-iommu-fault", "[VT-D]DMAR:[DMA Write] Request device [0000:65:00.0] fault addr 1200000000"),
        ("xen-iommu-fault", "[VT-D]DMAR: reason 02 - Present bit in context entry is clear"),
        ("xen-dom0-build", "Failed to setup Dom0 physical memory map"),   # inside the build only:
        ("xen-bar", "Failed to add [fe010, fe010]: -17"),                   # vPCI's, after it
    )   # "Failed to frobnicate" after dom0 started is no build failure, and no finding


def test_a_bracketed_tag_is_not_taken_for_a_timestamp():
    assert xen.xen_lines("(XEN) [VT-D]DMAR: reason 05 - PTE Write access is not set\n(XEN) [  1.5] x\n") == \
        ["[VT-D]DMAR: reason 05 - PTE Write access is not set", "x"]


def test_xen_417_under_qemu_10_refuses_the_bar_seabios_1_16_3_put_in_the_ht_hole():
    """Real capture: SeaBIOS 1.16.3 (QEMU 10.0's) puts the 1 GiB BAR at 0xff80000000, inside
    the AMD HyperTransport range QEMU reserves [0xfd00000000-0xffffffffff]; vPCI will not map it."""
    log = xen.parse(read_console(RUNS / "qemu10-xen417-halt" / "serial.log"))
    assert ("xen-bar", "0000:00:01.0: not mapping BAR [ff80000, ffbffff] invalid position") in log.findings
    assert "[000000fd00000000, 000000ffffffffff] (reserved)" in read_console(RUNS / "qemu10-xen417-halt" / "serial.log")
