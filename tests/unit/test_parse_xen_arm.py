"""Xen on Arm's own account of dom0's memory, from a real capture (Xen 4.17.7 arm64,
Debian 6.1 arm64 dom0, QEMU virt with 2 GiB at 0x40000000, dom0_mem=512M)."""

import pytest

from rig.errors import ParseError
from rig.parse import xen
from tests.conftest import DATA

CAPTURE = DATA / "captures" / "arm64-xen417-6.1-virt-guestloader.serial.log"


def test_banks_grant_table_and_extended_regions_as_xen_printed_them():
    log = xen.parse(CAPTURE.read_text())
    assert log.version == "4.17.7"
    assert log.dom0_banks == ((0x60000000, 0x80000000),)                  # 512 MiB, 1:1
    assert log.grant_table == (0x40200000, 0x40240000)                    # 64 frames
    # The host RAM dom0 was not given (0x40000000-0xc0000000 less Xen's modules and the
    # grant table, less dom0's bank): what Xen 4.17 offers when the IOMMU is off.
    assert log.extended_regions == ((0x40400000, 0x60000000), (0x80000000, 0xC0000000))


def test_x86_logs_have_no_arm_memory_account():
    log = xen.parse((DATA / "captures" / "unpatched-6.1-default-q35.serial.log").read_text(errors="replace"))
    assert (log.dom0_banks, log.grant_table, log.extended_regions) == ((), None, ())


@pytest.mark.parametrize("line, message", [
    ("(XEN) d0: extended region 1: 0x80000000->0xc0000000", "follows 0 others"),
    ("(XEN) d0: extended region 0: 0x80000000->0x70000000", "runs backwards"),
])
def test_a_lost_or_garbled_region_line_is_refused(line, message):
    with pytest.raises(ParseError, match=message):
        xen.parse(line + "\n")
