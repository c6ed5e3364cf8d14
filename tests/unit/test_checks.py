"""Assertion modules: relocation attribution and the balloon rule, on real runs and small maps."""

import json

import pytest

from rig.guest import collect
from rig.checks import balloon, relocation, verdict
from rig.errors import CollectError, ParseError
from rig.parse import dmesg, e820, pci
from rig.parse.e820 import E820Entry
from rig.spec.scenario import Expect
from tests.conftest import CAPTURES, RUNS, read_console

GiB = 1 << 30
PAGE = 4096


def _run(role):
    base = RUNS / "bar-clash-64bit" / role
    return (collect.sections(read_console(base / "serial.log")),
            json.loads((base / "qmp-pci-firmware.json").read_text()))


def _serials(scenario, *roles):
    return [(role, read_console(RUNS / scenario / role / "serial.log")) for role in roles]


def _xen_map(role="patched"):
    """Xen's map for dom0 as the rig judges every role: from Xen's own log, not a kernel's."""
    return verdict.xen_map(_serials("bar-clash-64bit", role), 512 << 20)


def test_unpatched_run_moved_the_testdev_bar_because_of_scratch():
    collected, firmware = _run("unpatched")
    a = verdict.analyse(collected, firmware, _xen_map("unpatched"))
    (moved,) = a.relocations
    assert moved.resource == "BAR 2"
    assert moved.firmware == (4 * GiB, 5 * GiB - 1)          # SeaBIOS: bottom of the 64-bit window
    assert moved.final[0] >= 4 * GiB and moved.final != moved.firmware
    assert moved.cause.startswith("conflict with Xen scratch")
    assert any("can't claim" in line for line in moved.evidence)
    (scratch,) = a.xen_scratch
    kinds = {(o["kind"], o["owner"]) for o in a.scratch_overlaps}
    assert ("host bridge window", "PCI Bus 0000:00") in kinds
    assert ("BAR", f"{moved.device} BAR 2") in kinds
    assert a.converted == []


def test_patched_run_moved_nothing_and_converted_per_rule():
    collected, firmware = _run("patched")
    a = verdict.analyse(collected, firmware, _xen_map())
    assert a.relocations == [] and a.xen_scratch == []
    assert a.converted == a.expected_conversion != []
    checks = verdict.evaluate(Expect(relocations="none", balloon_converted=True, xen_scratch="none"), a)
    assert [(c.name, c.passed) for c in checks] == [("relocations", True), ("relocation_cause", True),
                                                    ("balloon_converted", True), ("xen_scratch", True)]
    assert verdict.verdict(None, checks) == "pass"


def test_expectations_that_do_not_hold_fail():
    collected, firmware = _run("patched")
    a = verdict.analyse(collected, firmware, _xen_map())
    checks = verdict.evaluate(Expect(relocations="some", balloon_converted=False), a)
    assert {c.name: c.passed for c in checks} == {"relocations": False, "relocation_cause": True,
                                                  "balloon_converted": False}
    assert verdict.verdict(None, checks) == "fail"
    assert verdict.verdict("hang at stage dom0", checks) == "error"


def test_integer_relocation_expectation():
    collected, firmware = _run("unpatched")
    a = verdict.analyse(collected, firmware, _xen_map())
    assert verdict.evaluate(Expect(relocations=1), a)[0].passed
    assert not verdict.evaluate(Expect(relocations=2), a)[0].passed


def test_balloon_cap_splits_the_last_range():
    # 16 pages of RAM -> cap 160 pages; UNUSABLE ranges of 100 and 100 pages: the second is split at 60.
    xen_map = [E820Entry(0, 16 * PAGE - 1, "ram"),
               E820Entry(0x100000, 0x100000 + 100 * PAGE - 1, "unusable"),
               E820Entry(0x200000, 0x200000 + 100 * PAGE - 1, "unusable")]
    want = balloon.expected_conversion(xen_map)
    assert (want.dom0_ram_pages, want.cap_pages, want.unusable_pages) == (16, 160, 200)
    assert want.converted == ((0x100000, 0x100000 + 100 * PAGE - 1), (0x200000, 0x200000 + 60 * PAGE - 1))


def test_balloon_counts_pages_as_the_kernel_does():
    # PFN_DOWN(end) - PFN_UP(start): partial pages at either edge do not count.
    assert balloon.pages((0x1800, 0x4800 - 1)) == 2
    assert balloon.pages((0x0, 0x9FBFF)) == 0x9F


def test_observed_conversion_is_the_unusable_part_now_ram():
    unusable = ((0x1000, 0x8FFF),)
    final = [E820Entry(0, 0x4FFF, "ram"), E820Entry(0x5000, 0x8FFF, "unusable")]
    assert balloon.observed_conversion(unusable, final) == [(0x1000, 0x4FFF)]


XEN_MAP_LOGS = [  # (serial log, dom0_mem, kernel prints Xen's map unchanged)
    (CAPTURES / "unpatched-6.1-default-q35.serial.log", 512 << 20, True),
    (CAPTURES / "unpatched-6.1-testdev1G-relocated.serial.log", 512 << 20, True),
    (CAPTURES / "libvirt-qemu64svm-6.1-testdev1G-relocated.serial.log", 512 << 20, True),
    (CAPTURES / "ovmf-xenefi-6.1-testdev1G-noclash.serial.log", 512 << 20, True),     # EFI RAM map
    (CAPTURES / "patched-6.12-testdev1G-clean.serial.log", 512 << 20, False),
    (RUNS / "bar-clash-64bit/unpatched/serial.log", 512 << 20, True),
    (RUNS / "bar-clash-64bit/patched/serial.log", 512 << 20, False),
    (RUNS / "hole32-6G/unpatched/serial.log", 1 << 30, True),                          # RAM above 4 GiB
    (RUNS / "hole32-6G/patched/serial.log", 1 << 30, False),
    (RUNS / "ovmf-hole32-6G/unpatched/serial.log", 1 << 30, True),
    (RUNS / "ovmf-hole32-6G/patched/serial.log", 1 << 30, False),
]


@pytest.mark.parametrize("log, dom0_mem, unchanged", XEN_MAP_LOGS, ids=lambda v: getattr(v, "parent", v))
def test_xen_map_rebuilt_from_xen_log_agrees_with_real_dom0_maps(log, dom0_mem, unchanged):
    """Xen's map for dom0, rebuilt from Xen's lines alone, against what real 6.1 and 6.12 dom0s
    printed: the same RAM pages outside UNUSABLE; for 6.1 also the same UNUSABLE ranges."""
    text = read_console(log)
    xen_map = verdict.xen_map([("this", text)], dom0_mem)
    kernel = e820.from_dmesg(collect.sections(text, required=("dmesg",))["dmesg"])
    assert verdict.map_disagreement(xen_map, kernel, "k") is None
    # Xen copies dom0's ACPI tables into its last page of RAM below 4 GiB: one whole page fewer.
    assert balloon.expected_conversion(xen_map.entries).dom0_ram_pages == dom0_mem // PAGE - 1
    if unchanged:
        assert e820.ranges_of(xen_map.entries, "unusable") == e820.ranges_of(kernel, "unusable")


def test_a_kernel_map_with_a_page_more_or_less_is_a_disagreement():
    text = read_console(XEN_MAP_LOGS[0][0])
    xen_map = verdict.xen_map([("this", text)], 512 << 20)
    kernel = e820.from_dmesg(collect.sections(text, required=("dmesg",))["dmesg"])
    ram = next(i for i, e in enumerate(kernel) if e.type == "ram" and e.start == 0x100000)
    grown = kernel[:ram] + [E820Entry(kernel[ram].start, kernel[ram].end + PAGE, "ram")] + kernel[ram + 1:]
    assert "131071 pages), kernel" in verdict.map_disagreement(xen_map, grown, "k")


def test_a_garbled_xen_e820_with_no_other_boot_of_the_host_is_an_error():
    text = read_console(RUNS / "balloon-cap-split-128M/patched/serial.log")
    with pytest.raises(CollectError, match=r"Xen's host e820: patched: Xen-e820 RAM map: line does not parse"):
        verdict.xen_map([("patched", text)], 128 << 20)


def test_a_fixed_kernel_in_the_reference_role_fails_balloon_converted_false():
    # Judged against its own BIOS-e820 (which the fix rewrites before printing) it passed.
    collected, firmware = _run("patched")
    a = verdict.analyse(collected, firmware, _xen_map("patched"))
    (check,) = verdict.evaluate(Expect(balloon_converted=False), a)
    # Host RAM [1 MiB, 0x7ffdffff]; dom0 keeps 512 MiB (159 pages below 640 KiB): the rest is UNUSABLE.
    unusable_pages = (0x7ffe0000 - (0x100000 + ((512 << 20) // PAGE - 159) * PAGE)) // PAGE
    assert not check.passed and f"({unusable_pages} pages)" in check.detail


def test_child_of_moved_window_is_attributed_to_the_window():
    fw = [pci.PciResource("0000:00:1c.0", 15, "mem", 0x100000000, 0x1FFFFFFFF, True),
          pci.PciResource("0000:01:00.0", 2, "mem", 0x100000000, 0x13FFFFFFF, True)]
    final = [pci.PciResource("0000:00:1c.0", 15, "mem", 0x200000000, 0x2FFFFFFFF, True),
             pci.PciResource("0000:01:00.0", 2, "mem", 0x200000000, 0x23FFFFFFF, True)]
    conflict = dmesg.pci_events(
        "pci 0000:00:1c.0: bridge window [mem 0x100000000-0x1ffffffff 64bit pref]: can't claim; "
        "address conflict with Xen scratch [mem 0x100000000-0x107ffffff]")
    window, child = relocation.relocations(fw, final, conflict)
    assert window.cause.startswith("conflict with Xen scratch")
    assert child.cause == "parent window moved (0000:00:1c.0 bridge window)"
    assert (window.root_cause, child.root_cause) == ("xen-scratch", "xen-scratch")  # the child inherits it


def test_unassigned_after_boot_is_a_relocation():
    fw = [pci.PciResource("0000:00:03.0", 2, "mem", 0x100000000, 0x13FFFFFFF, True)]
    final = [pci.PciResource("0000:00:03.0", 2, "mem", None, None, True)]
    (r,) = relocation.relocations(fw, final, [])
    assert r.final is None and r.cause == "left unassigned"


def test_real_cap_split_matches_the_kernel_rule():
    """balloon-cap-split at dom0_mem=128M on a 4 GiB host, as a real 6.12 dom0 did it. The
    patched boot's own Xen e820 block is garbled on the serial line ('[['), so Xen's map comes
    from the unpatched boot of the same host; the kernel's rule then gives the exact split."""
    base = RUNS / "balloon-cap-split-128M"
    patched = collect.sections(read_console(base / "patched" / "serial.log"))
    firmware = json.loads((base / "patched" / "qmp-pci-firmware.json").read_text())
    xen_map = verdict.xen_map(_serials("balloon-cap-split-128M", "patched", "unpatched"), 128 << 20)
    assert xen_map.source.startswith("rebuilt from Xen's host e820 (unpatched's serial log)")
    assert "this boot's copy was refused" in xen_map.source
    a = verdict.analyse(patched, firmware, xen_map)
    b = a.balloon
    # 128 MiB = 32768 pages; Xen copies dom0's ACPI tables into the last one: 32767 whole RAM pages.
    assert (b["dom0_ram_pages"], b["cap_pages"]) == (32767, 327670)
    assert b["cap_pages"] < b["unusable_pages"]                               # the cap binds
    (first, second) = a.unusable                                              # below and above 4 GiB
    # Xen's host RAM: [0, 0x9fbff] (159 whole pages), then from 1 MiB: 32768 - 159 pages more.
    split = 0x100000 + (32768 - 159) * PAGE
    assert first == (split, 0x7ffdffff) and second == (4 * GiB, 0x17fffffff)
    (converted,) = a.converted
    assert converted == (split, split + 327670 * PAGE - 1)
    assert b["converted_pages"] == b["cap_pages"] == 327670
    assert a.converted == a.expected_conversion
    assert not any(balloon.pages((max(s, second[0]), min(e, second[1]))) for s, e in a.converted)
    assert not [f for f in a.findings if f.kind == "xen-map-disagreement"]


def test_recorded_doubled_digit_in_a_reference_map_is_refused():
    # balloon-cap-split-128M/unpatched, dmesg section (line count matched, agent 1 sent no
    # checksum): 'BIOS-e820: [mem 0x00000000fed1c000-0x00000000fed11ffff]' and
    # '0x00000000008060f16'. Judging it would shrink or shift the reference map.
    unpatched = collect.sections(read_console(RUNS / "balloon-cap-split-128M" / "unpatched" / "serial.log"))
    with pytest.raises(ParseError, match="BIOS-e820 line does not parse"):
        e820.from_dmesg(unpatched["dmesg"])


def test_real_ovmf_run_clashes_in_the_32bit_hole():
    base = RUNS / "ovmf-hole32-6G"
    unpatched = collect.sections(read_console(base / "unpatched" / "serial.log"))
    firmware = json.loads((base / "unpatched" / "qmp-pci-firmware.json").read_text())
    a = verdict.analyse(unpatched, firmware, verdict.xen_map(_serials("ovmf-hole32-6G", "unpatched"), 1 << 30))
    (scratch,) = a.xen_scratch
    (moved,) = a.relocations
    assert scratch[1] < 1 << 32 and moved.firmware[0] <= scratch[1] and scratch[0] <= moved.firmware[1]
    assert moved.cause.startswith("conflict with Xen scratch")
    assert "EFI" in read_console(base / "unpatched" / "serial.log")  # it really went through xen.efi


# --- relocation causes: "some" must not pass for the wrong reason ---------------------------

def _fw_final(final_start, device="0000:00:03.0"):
    fw = [pci.PciResource("0000:00:03.0", 2, "mem", 0x100000000, 0x13FFFFFFF, True)]
    final = [pci.PciResource(device, 2, "mem", final_start, None if final_start is None else final_start + GiB - 1,
                             True)]
    return fw, final


def _judge(relocations, expect):
    a = verdict.Analysis("6.1", relocations, [], [], [], [], [], [], {}, "x")
    return {c.name: c for c in verdict.evaluate(expect, a)}


def test_real_clash_is_caused_by_xen_scratch_and_a_wrong_named_cause_fails():
    collected, firmware = _run("unpatched")
    a = verdict.analyse(collected, firmware, _xen_map("unpatched"))
    assert [r.root_cause for r in a.relocations] == ["xen-scratch"]
    ok = {c.name: c for c in verdict.evaluate(Expect(relocations="some", relocation_cause="xen-scratch"), a)}
    assert ok["relocations"].passed and ok["relocation_cause"].passed
    wrong = {c.name: c for c in verdict.evaluate(Expect(relocations="some", relocation_cause="unassigned"), a)}
    assert wrong["relocations"].passed and not wrong["relocation_cause"].passed


def test_a_move_without_a_conflict_line_fails_some_unless_allowed():
    (r,) = relocation.relocations(*_fw_final(0x200000000), [])
    assert r.root_cause == "unexplained"
    checks = _judge([r], Expect(relocations="some"))
    assert checks["relocations"].passed and not checks["relocation_cause"].passed
    assert _judge([r], Expect(relocations="some", relocation_cause="unexplained"))["relocation_cause"].passed


def test_a_bar_left_unassigned_is_not_a_xen_scratch_move():
    (r,) = relocation.relocations(*_fw_final(None), [])
    assert (r.root_cause, r.final) == ("unassigned", None)
    assert _judge([r], Expect(relocations="some"))["relocation_cause"].passed   # explained, allowed by default
    assert not _judge([r], Expect(relocations="some", relocation_cause="xen-scratch"))["relocation_cause"].passed


def test_a_device_missing_from_dom0_is_absent_not_unassigned():
    (r,) = relocation.relocations(*_fw_final(0x100000000, device="0000:00:04.0"), [])
    assert r.root_cause == "absent" and r.cause.startswith("absent")
    assert not _judge([r], Expect(relocations="some"))["relocation_cause"].passed



# --- the balloon driver's own view -------------------------------------------------------------

def _with_driver(target_kb, current_kb, role="patched"):
    import dataclasses
    from rig.parse.xen_balloon import BalloonDriver
    collected, firmware = _run(role)
    a = verdict.analyse(collected, firmware, _xen_map(role))
    return dataclasses.replace(a, balloon_driver=BalloonDriver(target_kb, current_kb, 0, 0),
                               balloon_driver_collected=True)


# dom0_mem=512M: Xen populates 131072 pages; dom0's map has 131071 whole RAM pages (one holds the
# ACPI tables Xen copied); Linux keeps page 0 for itself: get_num_physpages() = 131070.
PHYSPAGES_KB = 4 * ((512 << 20) // PAGE - 2)


# b13cd24c15d7 (6.12.y as e99f40f14005, 7.x): current = XENMEM_current_reservation = Xen's
# tot_pages. dom0_construct_pvh allocates nr_pages = 131072 (the ACPI page stays dom0's);
# xen_hvm_guest_init() then maps shared_info over a RAM gfn and Xen frees that page: 131071.
RESERVATION_KB = 4 * ((512 << 20) // PAGE - 1)


def test_balloon_target_holds_for_the_physpages_rule_and_the_reservation_rule():
    for kb in (PHYSPAGES_KB, RESERVATION_KB):
        (check,) = verdict.evaluate(Expect(balloon_target=True), _with_driver(kb, kb))
        assert check.passed, check.detail
    for kb in (4 * ((512 << 20) // PAGE), PHYSPAGES_KB - 4):   # dom0_mem itself; a page short
        (check,) = verdict.evaluate(Expect(balloon_target=True), _with_driver(kb, kb))
        assert not check.passed, check.detail


@pytest.mark.parametrize("capture", ["debian-13/trixie", "debian-13/bpo7", "debian-sid/7.2"])
def test_debian_13_and_sid_kernels_report_xens_reservation(capture):
    """Real boots of 6.12.118, 7.3.4 and 7.2.13 (default host, dom0_mem=512M): the driver says
    524284 KiB, which is the reservation rule, not dom0_mem's 524288 nor physpages' 524280."""
    from rig.parse import xen_balloon
    driver = xen_balloon.parse((RUNS / capture / "xen-balloon.txt").read_text())
    assert (driver.target_kb, driver.current_kb) == (RESERVATION_KB, RESERVATION_KB)
    (check,) = verdict.evaluate(Expect(balloon_target=True), _with_driver(driver.target_kb, driver.current_kb))
    assert check.passed and "matches reservation" in check.detail, check.detail


def test_balloon_target_fails_when_current_counts_the_converted_pages():
    # 6.12 before 87af633689ce: current = get_num_physpages(), which includes the converted RAM.
    a = _with_driver(0, 0)
    wrong = PHYSPAGES_KB + 4 * a.balloon["converted_pages"]
    (check,) = verdict.evaluate(Expect(balloon_target=True), _with_driver(wrong, wrong))
    assert not check.passed and "87af633689ce" in check.detail


def test_balloon_target_fails_when_target_and_current_differ_or_the_driver_is_missing():
    (check,) = verdict.evaluate(Expect(balloon_target=True), _with_driver(PHYSPAGES_KB + 4, PHYSPAGES_KB))
    assert not check.passed
    collected, firmware = _run("patched")      # recorded by agent 1: no xen-balloon section
    (check,) = verdict.evaluate(Expect(balloon_target=True),
                                verdict.analyse(collected, firmware, _xen_map("patched")))
    assert not check.passed and "did not send xen-balloon" in check.detail


def test_xen_scratch_safe_fails_for_scratch_in_the_64bit_window_and_holds_without_scratch():
    collected, firmware = _run("unpatched")
    (check,) = verdict.evaluate(Expect(xen_scratch_safe=True), verdict.analyse(collected, firmware,
                                                                              _xen_map("unpatched")))
    assert not check.passed and "PCI Bus 0000:00" in check.detail and "[0x100000000-0x107ffffff]" in check.detail
    collected, firmware = _run("patched")
    (check,) = verdict.evaluate(Expect(xen_scratch_safe=True), verdict.analyse(collected, firmware,
                                                                              _xen_map("patched")))
    assert check.passed


def test_xen_balloon_section_parser_is_strict():
    from rig.parse import xen_balloon
    assert xen_balloon.parse("target_kb 524280\ncurrent_kb 524280\nlow_kb 0\nhigh_kb 0\n").current_kb == 524280
    assert xen_balloon.parse("absent\n") is None
    for bad in ("target_kb 524280\ncurrent_kb 52428O\nlow_kb 0\nhigh_kb 0\n",   # a letter O
                "target_kb 1\ncurrent_kb 1\nlow_kb 0\n",                         # a field lost
                "target_kb 1\ntarget_kb 1\ncurrent_kb 1\nlow_kb 0\nhigh_kb 0\n"):
        with pytest.raises(ParseError, match="xen-balloon"):
            xen_balloon.parse(bad)


def test_balloon_underflow_warnings_are_findings():
    found = dmesg.findings("[    1.0] Released pages underflow current target\n")
    assert [(f.kind, f.line) for f in found] == [("balloon", "Released pages underflow current target")]


def test_check_names_are_exactly_the_checks_evaluate_makes():
    collected, firmware = _run("unpatched")
    a = verdict.analyse(collected, firmware, _xen_map("unpatched"))
    for expect in (Expect(relocations="some", balloon_converted=False, xen_scratch="some"),
                   Expect(balloon_target=True, xen_scratch_safe=False), Expect(relocation_cause="xen-scratch"),
                   Expect()):
        assert [c.name for c in verdict.evaluate(expect, a)] == verdict.check_names(expect)


def test_a_pv_dom0_is_not_compared_with_the_pvh_map():
    # dom0=pv: Xen builds another map for it; comparing would invent disagreements.
    xen_map = verdict.xen_map(_serials("pv-dom0-garbled", "patched"), 512 << 20)
    assert not xen_map.pvh and "this dom0 is PV" in xen_map.source
    assert verdict._map_findings(xen_map, collect.Collected({"dmesg": "", "e820": ""}), []) == []


# --- found by an independent audit: inputs that passed when they should not -----------------

@pytest.mark.parametrize("old, new", [
    ("[0000000100000000, 00000001ffffffff]", "[0000000100000000 00000001ffffffff]"),   # comma lost
    ("[0000000100000000, 00000001ffffffff]", "[00000001000000o0, 00000001ffffffff]"),  # a digit garbled
    ("00000001ffffffff] (usable)", "00000001ffffffff] (usabe)"),                       # the type garbled
    ("[000000001a33ef9a]  [0000000100000000", "[[000000001a33ef9a]  [0000000100000000"),  # the stamp
])
def test_a_garbled_xen_entry_never_shortens_or_retypes_the_host_map(old, new):
    text = read_console(RUNS / "hole32-6G/patched/serial.log")
    assert old in text
    with pytest.raises(ParseError, match="Xen-e820 RAM map"):
        e820.from_xen(text.replace(old, new))


def test_ram_outside_unusable_in_the_final_map_fails_balloon_converted():
    # The kernel turned the MMCONFIG window into RAM: UNUSABLE converted as the rule says, but
    # the map is not the rule's.
    collected, firmware = _run("patched")
    sections = dict(collected.sections)
    assert "0xb0000000 0xbfffffff Reserved" in sections["e820"]
    sections["e820"] = sections["e820"].replace("0xb0000000 0xbfffffff Reserved", "0xb0000000 0xbfffffff System RAM")
    a = verdict.analyse(collect.Collected(sections), firmware, _xen_map("patched"))
    (check,) = verdict.evaluate(Expect(balloon_converted=True), a)
    assert not check.passed and "disagrees with Xen's map" in check.detail


def test_a_lost_device_is_absent_even_when_a_conflict_started_it():
    collected, firmware = _run("unpatched")
    sections = dict(collected.sections)
    sections["pci-resources"] = "".join(line + "\n" for line in sections["pci-resources"].splitlines()
                                        if not line.startswith("0000:00:01.0 "))
    a = verdict.analyse(collect.Collected(sections), firmware, _xen_map("unpatched"))
    lost = [r for r in a.relocations if r.device == "0000:00:01.0"]
    assert lost and {r.root_cause for r in lost} == {"absent"}
    checks = {c.name: c for c in verdict.evaluate(Expect(relocations="some", relocation_cause="xen-scratch"), a)}
    assert not checks["relocation_cause"].passed


def test_a_firmware_snapshot_without_any_placed_resource_is_an_error():
    collected, _ = _run("unpatched")
    with pytest.raises(CollectError, match="places no BAR or window"):
        verdict.analyse(collected, [{"bus": 0, "devices": []}], _xen_map("unpatched"))
