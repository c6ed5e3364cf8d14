"""The default A/B scenario, booted for real: the product's reason to exist."""

import json

import pytest

from rig.parse import pci

pytestmark = pytest.mark.boot

GiB = 1 << 30
MiB = 1 << 20
PAGE = 4096
# SeaBIOS on q35 with 2 GiB of RAM maps a 64-bit prefetchable BAR too big for the
# 32-bit window at the bottom of the 64-bit window: 4 GiB. Xen scratch lands there too.
TESTDEV_FIRMWARE = [4 * GiB, 5 * GiB - 1]
# An unpatched dom0's unpopulated allocator takes one memory section (128 MiB on x86-64)
# from the first free space of the 64-bit window: 4 GiB.
SCRATCH = [4 * GiB, 4 * GiB + 128 * MiB - 1]
# Linux re-places the 1 GiB BAR at the first 1 GiB-aligned address above the scratch.
TESTDEV_MOVED = [5 * GiB, 6 * GiB - 1]
# Xen's host map: RAM [0, 0x9fbff] (159 whole pages) and [1 MiB, 0x7ffdffff] (SeaBIOS keeps the
# top 128 KiB of the low 2 GiB). dom0_mem=512M: dom0 keeps 131072 pages, the rest is UNUSABLE.
DOM0_END = 0x100000 + ((512 * MiB) // PAGE - 159) * PAGE
UNUSABLE = [[DOM0_END, 0x7FFDFFFF]]
UNUSABLE_PAGES = (0x7FFE0000 - DOM0_END) // PAGE
# The balloon driver's reservation: 131072 pages less the one holding the ACPI tables Xen
# copied for dom0, less page 0, which Linux keeps: 4 KiB each.
RESERVATION_KB = 4 * ((512 * MiB) // PAGE - 2)


def _testdev_bar(result):
    (row,) = [r for r in result["pci_resources"] if r["resource"] == "BAR 2" and r["prefetch"]
              and r["firmware"] and r["firmware"][1] - r["firmware"][0] + 1 == GiB]
    return row


def test_exit_code_and_summary(default_ab):
    assert default_ab.returncode == 0, default_ab.stderr
    assert "role=unpatched" in default_ab.stdout and "role=patched" in default_ab.stdout
    assert "jobs: 2 pass, 0 fail, 0 error, 0 unjudged" in default_ab.stdout


def test_unpatched_moves_the_bar_because_of_xen_scratch(default_ab):
    r = default_ab.result("unpatched")
    assert (r["verdict"], r["stage_reached"]) == ("pass", "collected")
    assert r["kernel_release"].startswith("6.1.")
    bar = _testdev_bar(r)
    assert (bar["firmware"], bar["final"]) == (TESTDEV_FIRMWARE, TESTDEV_MOVED)
    (moved,) = r["relocations"]
    assert moved["device"] == bar["device"] and moved["root_cause"] == "xen-scratch"
    assert moved["cause"] == f"conflict with Xen scratch [{SCRATCH[0]:#x}-{SCRATCH[1]:#x}]"
    assert any("can't claim" in line for line in moved["evidence"])
    assert r["xen_scratch"] == [SCRATCH]
    assert r["unusable"] == UNUSABLE and r["converted_to_ram"] == [] and r["balloon"]["converted_pages"] == 0
    assert (r["balloon_driver"]["target_kb"], r["balloon_driver"]["current_kb"]) == (RESERVATION_KB,) * 2
    assert not [f for f in r["findings"] if f["kind"] == "xen-map-disagreement"]


def test_patched_keeps_every_firmware_bar_and_converts_unusable(default_ab):
    r = default_ab.result("patched")
    assert (r["verdict"], r["stage_reached"]) == ("pass", "collected")
    assert r["kernel_release"].startswith("6.12.")
    assert r["relocations"] == [] and r["xen_scratch"] == []
    assert _testdev_bar(r)["final"] == TESTDEV_FIRMWARE
    for row in r["pci_resources"]:
        if row["firmware"]:
            assert row["final"] == row["firmware"], row
    # dom0_mem=512M of 2G: 10 x dom0's pages is far above what Xen hid, so all of it converts.
    assert r["converted_to_ram"] == UNUSABLE
    assert r["balloon"]["converted_pages"] == UNUSABLE_PAGES == 393087
    # The converted pages are balloon space, not dom0's: the reservation is the unpatched one.
    assert (r["balloon_driver"]["target_kb"], r["balloon_driver"]["current_kb"]) == (RESERVATION_KB,) * 2
    assert r["xen_map_source"].startswith("rebuilt from Xen's host e820")
    assert not [f for f in r["findings"] if f["kind"] == "xen-map-disagreement"]


@pytest.mark.parametrize("role", ["unpatched", "patched"])
def test_linux_view_matches_the_hardware_view(default_ab, role):
    """sysfs (what Linux believes) and QEMU's final config space (what the device decodes) agree."""
    r = default_ab.result(role)
    hardware = {(x.device, x.index): list(x.range) if x.range else None
                for x in pci.from_query_pci((default_ab.out / role / "qmp-pci-final.json").read_text())}
    for row in r["pci_resources"]:
        if row["index"] < 6 and (row["device"], row["index"]) in hardware:
            assert hardware[(row["device"], row["index"])] == row["final"], row


@pytest.mark.parametrize("role", ["unpatched", "patched"])
def test_artefacts_are_all_there(default_ab, role):
    d = default_ab.out / role
    for name in ("serial.log", "qemu-argv.txt", "qmp-pci-firmware.json", "qmp-pci-final.json",
                 "dmesg.txt", "iomem.txt", "e820.txt", "xen-balloon.txt", "result.json", "bundle.json"):
        assert (d / name).stat().st_size > 0, name
    r = default_ab.result(role)
    assert set(r["timings"]) == {"firmware", "xen", "dom0", "userspace", "total"}
    assert r["accel"] in ("tcg", "kvm") and r["accel_reason"]
    assert json.loads((default_ab.out / "bar-clash-64bit.scenario.json").read_text())["name"] == "bar-clash-64bit"


def test_junit_from_rig_run(default_ab):
    import xml.etree.ElementTree as ET
    root = ET.parse(default_ab.out / "junit.xml").getroot()
    names = sorted(c.get("name") for c in root.iter("testcase"))
    assert len(names) == 11 and "bar-clash-64bit[seabios-512M-unpatched]::relocation_cause" in names
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
