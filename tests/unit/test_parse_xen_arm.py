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


def test_the_hypervisor_node_reg_in_one_or_two_cells():
    from rig.parse import devicetree
    two = ("#address-cells 00 00 00 02\n#size-cells 00 00 00 02\nhypervisor/reg "
           "00 00 00 00 40 20 00 00 00 00 00 00 00 04 00 00 00 00 00 00 80 00 00 00 00 00 00 00 40 00 00 00\n")
    assert devicetree.hypervisor_reg(two) == [(0x40200000, 0x40240000), (0x80000000, 0xC0000000)]
    one = "#address-cells 00 00 00 01\n#size-cells 00 00 00 01\nhypervisor/reg 40 20 00 00 00 04 00 00\n"
    assert devicetree.hypervisor_reg(one) == [(0x40200000, 0x40240000)]
    assert devicetree.hypervisor_reg("absent\n") is None


@pytest.mark.parametrize("text, message", [
    ("#address-cells 00 00 00 02\n#size-cells 00 00 00 02\nhypervisor/reg 00 00 00 00 40 20\n", "not entries of 16"),
    ("#address-cells 00 00 00 02\nhypervisor/reg 00\n", "want #address-cells, #size-cells and hypervisor/reg"),
    ("#address-cells 00 00 00 02\n#address-cells 00 00 00 02\n", "does not parse"),
    ("#address-cells 00 00 00 03\n#size-cells 00 00 00 02\nhypervisor/reg 00\n", "not one cell of 1 or 2"),
    ("#address-cells 00 00 00 01\n#size-cells 00 00 00 01\nhypervisor/reg 40 20 00 00 00 00 00 00\n", "size 0"),
    ("#address-cells 00 00 00 01\n#size-cells 00 00 00 01\nhypervisor/reg 40 2g 00 00\n", "does not parse"),
])
def test_a_garbled_hypervisor_node_is_refused(text, message):
    from rig.parse import devicetree
    with pytest.raises(ParseError, match=message):
        devicetree.hypervisor_reg(text)


@pytest.mark.parametrize("line", [
    "(XEN) d0: extended region 1: 0x80000000->0xc0000000 x",     # junk after it
    "(XEN) d0: extended region 1: 0x80000000-0xc0000000",       # garbled arrow
    "(XEN) BANK[0] 0x00000060000000-0x00000080000000 (512MB",   # cut short
    "(XEN) Grant table range: 0x00000040200000-",
])
def test_a_line_about_dom0s_memory_that_does_not_parse_is_refused(line):
    with pytest.raises(ParseError, match="does not parse"):
        xen.parse("(XEN) d0: extended region 0: 0x40400000->0x60000000\n" + line + "\n")


def test_xen_416s_region_lines_and_the_disabled_line_are_read():
    log = xen.parse("(XEN) Extended region 0: 0x40400000->0x60000000\n")
    assert log.extended_regions == ((0x40400000, 0x60000000),) and not log.regions_disabled
    assert xen.parse("(XEN) d0: extended regions support is disabled\n").regions_disabled
