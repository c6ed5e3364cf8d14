"""Assertion modules: relocation attribution and the balloon rule, on real runs and small maps."""

import json

from rig import collect
from rig.checks import balloon, relocation, verdict
from rig.parse import dmesg, e820, pci
from rig.parse.e820 import E820Entry
from rig.scenario import Expect
from tests.conftest import RUNS, read_console

GiB = 1 << 30
PAGE = 4096


def _run(role):
    base = RUNS / "bar-clash-64bit" / role
    return (collect.sections(read_console(base / "serial.log")),
            json.loads((base / "qmp-pci-firmware.json").read_text()))


def _xen_map():
    unpatched, _ = _run("unpatched")
    return verdict.xen_map_from_unpatched(unpatched["dmesg"], "unpatched")


def test_unpatched_run_moved_the_testdev_bar_because_of_scratch():
    collected, firmware = _run("unpatched")
    a = verdict.analyse(collected, firmware, _xen_map())
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
    assert [c.passed for c in checks] == [True, True, True]
    assert verdict.verdict(None, checks) == "pass"


def test_expectations_that_do_not_hold_fail():
    collected, firmware = _run("patched")
    a = verdict.analyse(collected, firmware, _xen_map())
    checks = verdict.evaluate(Expect(relocations="some", balloon_converted=False), a)
    assert [c.passed for c in checks] == [False, False]
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


def test_reconstructed_map_matches_the_real_unpatched_map(capture):
    text = capture("unpatched-6.1-testdev1G-relocated")
    real = e820.from_dmesg(collect.sections(text, required=("dmesg",))["dmesg"])
    rebuilt = balloon.reconstruct_xen_map(e820.from_xen(text), (512 << 20) // PAGE)
    real_unusable = [(e.start, e.end) for e in real if e.type == "unusable"]
    assert [(e.start, e.end) for e in rebuilt if e.type == "unusable"] == real_unusable
    # Xen carves dom0's ACPI tables out of its RAM; the reconstruction does not, hence at most one page.
    assert abs(balloon.expected_conversion(rebuilt).dom0_ram_pages
               - balloon.expected_conversion(real).dom0_ram_pages) <= 1


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


def test_unassigned_after_boot_is_a_relocation():
    fw = [pci.PciResource("0000:00:03.0", 2, "mem", 0x100000000, 0x13FFFFFFF, True)]
    final = [pci.PciResource("0000:00:03.0", 2, "mem", None, None, True)]
    (r,) = relocation.relocations(fw, final, [])
    assert r.final is None and r.cause == "left unassigned"


def test_real_cap_split_matches_the_kernel_rule():
    """balloon-cap-split at dom0_mem=128M on a 4 GiB host, as a real 6.12 dom0 did it."""
    base = RUNS / "balloon-cap-split-128M"
    unpatched = collect.sections(read_console(base / "unpatched" / "serial.log"))
    patched = collect.sections(read_console(base / "patched" / "serial.log"))
    firmware = json.loads((base / "patched" / "qmp-pci-firmware.json").read_text())
    a = verdict.analyse(patched, firmware, verdict.xen_map_from_unpatched(unpatched["dmesg"], "unpatched"))
    b = a.balloon
    assert b["cap_pages"] == 10 * b["dom0_ram_pages"] < b["unusable_pages"]   # the cap binds
    (first, second) = a.unusable                                              # below and above 4 GiB
    (converted,) = a.converted
    assert converted[0] == first[0] and converted[1] < first[1]               # split inside the first
    assert b["converted_pages"] == b["cap_pages"]
    assert a.converted == a.expected_conversion
    assert not any(balloon.pages((max(s, second[0]), min(e, second[1]))) for s, e in a.converted)


def test_real_ovmf_run_clashes_in_the_32bit_hole():
    base = RUNS / "ovmf-hole32-6G"
    unpatched = collect.sections(read_console(base / "unpatched" / "serial.log"))
    firmware = json.loads((base / "unpatched" / "qmp-pci-firmware.json").read_text())
    a = verdict.analyse(unpatched, firmware, verdict.xen_map_from_unpatched(unpatched["dmesg"], "unpatched"))
    (scratch,) = a.xen_scratch
    (moved,) = a.relocations
    assert scratch[1] < 1 << 32 and moved.firmware[0] <= scratch[1] and scratch[0] <= moved.firmware[1]
    assert moved.cause.startswith("conflict with Xen scratch")
    assert "EFI" in read_console(base / "unpatched" / "serial.log")  # it really went through xen.efi
