"""The default A/B scenario, booted for real: the product's reason to exist."""

import json

import pytest

from rig.parse import pci

pytestmark = pytest.mark.boot

GiB = 1 << 30
# SeaBIOS on q35 with 2 GiB of RAM maps a 64-bit prefetchable BAR too big for the
# 32-bit window at the bottom of the 64-bit window: 4 GiB. Xen scratch lands there too.
TESTDEV_FIRMWARE = [4 * GiB, 5 * GiB - 1]


def _testdev_bar(result):
    (row,) = [r for r in result["pci_resources"] if r["resource"] == "BAR 2" and r["prefetch"]
              and r["firmware"] and r["firmware"][1] - r["firmware"][0] + 1 == GiB]
    return row


def test_exit_code_and_summary(default_ab):
    assert default_ab.returncode == 0, default_ab.stderr
    assert "role=unpatched" in default_ab.stdout and "role=patched" in default_ab.stdout


def test_unpatched_moves_the_bar_because_of_xen_scratch(default_ab):
    r = default_ab.result("unpatched")
    assert (r["verdict"], r["stage_reached"]) == ("pass", "collected")
    assert r["kernel_release"].startswith("6.1.")
    bar = _testdev_bar(r)
    assert bar["firmware"] == TESTDEV_FIRMWARE
    assert bar["final"] != bar["firmware"]
    (moved,) = [m for m in r["relocations"] if m["device"] == bar["device"]]
    assert moved["firmware"] == TESTDEV_FIRMWARE and moved["final"] == bar["final"]
    assert "Xen scratch" in moved["cause"]
    (scratch,) = r["xen_scratch"]
    assert scratch[0] <= TESTDEV_FIRMWARE[1] and TESTDEV_FIRMWARE[0] <= scratch[1]   # the clash
    assert not (scratch[0] <= bar["final"][1] and bar["final"][0] <= scratch[1])     # moved clear of it
    assert r["unusable"] and r["converted_to_ram"] == [] and r["balloon"]["converted_pages"] == 0


def test_patched_keeps_every_firmware_bar_and_converts_unusable(default_ab):
    r = default_ab.result("patched")
    assert (r["verdict"], r["stage_reached"]) == ("pass", "collected")
    assert r["kernel_release"].startswith("6.12.")
    assert r["relocations"] == [] and r["xen_scratch"] == []
    assert _testdev_bar(r)["final"] == TESTDEV_FIRMWARE
    for row in r["pci_resources"]:
        if row["firmware"]:
            assert row["final"] == row["firmware"], row
    b = r["balloon"]
    # dom0_mem=512M of 2G: 10 x dom0's pages is far above what Xen hid, so all of it converts.
    assert b["cap_pages"] == 10 * b["dom0_ram_pages"] > b["unusable_pages"] > 0
    assert b["converted_pages"] == b["unusable_pages"]
    assert r["converted_to_ram"] == r["unusable"] == default_ab.result("unpatched")["unusable"]


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
                 "dmesg.txt", "iomem.txt", "e820.txt", "result.json"):
        assert (d / name).stat().st_size > 0, name
    r = default_ab.result(role)
    assert set(r["timings"]) == {"firmware", "xen", "dom0", "userspace", "total"}
    assert r["accel"] in ("tcg", "kvm") and r["accel_reason"]
    assert json.loads((default_ab.out / "bar-clash-64bit.scenario.json").read_text())["name"] == "bar-clash-64bit"


def test_junit_from_rig_run(default_ab):
    import xml.etree.ElementTree as ET
    root = ET.parse(default_ab.out / "junit.xml").getroot()
    names = sorted(c.get("name") for c in root.iter("testcase"))
    assert len(names) == 6 and "bar-clash-64bit[debian-6.1-512M]::relocations" in names
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
