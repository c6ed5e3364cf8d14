"""`rig import`: lspci -vvv parsing and a field machine's evidence turned back into its host,
on the rig's own dom0s as field machines (tests/data/field/README.md)."""

from pathlib import Path

import pytest

from rig.errors import InputError, ParseError
from rig.parse import lspci
from rig import field_import
from rig.spec import scenario

ROOT = Path(__file__).resolve().parents[2]
FIELD = ROOT / "tests" / "data" / "field"
GiB = 1 << 30


def test_lspci_reads_a_real_dom0_listing():
    devices = {d.bdf: d for d in lspci.parse((FIELD / "bridge" / "lspci-vvv.txt").read_text())}
    port = devices["0000:00:01.0"]
    assert (port.express, port.hotplug, port.secondary, port.subordinate) == ("Root Port", True, 1, 1)
    assert [(w.kind, w.start, w.end) for w in port.windows] == [
        ("io", 0xC000, 0xCFFF), ("mem", 0xFE800000, 0xFE9FFFFF), ("pref", 0x140000000, 0x17FFFFFFF)]
    testdev = devices["0000:01:00.0"]
    assert (testdev.vendor_device, testdev.bus, testdev.is_bridge) == ("1b36:0005", 1, False)
    assert [(b.index, b.kind, b.size, b.is_64, b.prefetch) for b in testdev.bars] == [
        (0, "mem", 4096, False, False), (1, "io", 256, False, False), (2, "mem", GiB, True, True)]
    assert testdev.bars[2].address == 0x140000000     # where the field kernel left it


@pytest.mark.parametrize("text, error", [
    ("00:01.0 PCI bridge [0604]: x [1b36:000c]\n\tRegion 0: Memory at fea44000 (32-bit, non-prefetchable) [size=4Q]\n",
     "a Region line that does not parse"),
    ("00:01.0 PCI bridge [0604]: x [1b36:000c]\n00:02.0 VGA compatible controller [0300]: y [1234:1111]\n",
     r"no detail lines: run `lspci -vvv -nn`"),
    ("00:01.0 PCI bridge [0604]: x [1b36:000c]\n\tMemory behind bridge: fe800000-fe9fffff [size=1M] [32-bit]\n",
     r"window 0xfe800000-0xfe9fffff is not \[size=1M\]"),
    ("Linux version 6.1\n\tRegion 0: Memory at 0 (32-bit, non-prefetchable) [size=4K]\n", "not a device header"),
])
def test_lspci_refuses_what_it_cannot_read_whole(text, error):
    with pytest.raises(ParseError, match=error):
        lspci.parse(text)


def _pci_shape(s: scenario.Scenario) -> list[tuple]:
    """The PCI tree without names: (device, props, the parent's device), in order."""
    by_name = {d.name: d.device for d in s.host.pci if d.name}
    return sorted((d.device, tuple(sorted((k, str(v)) for k, v in d.props.items())),
                   by_name.get(d.parent, "root") if d.parent else "root") for d in s.host.pci)


@pytest.mark.parametrize("field, original", [("default", "bar-clash-64bit"), ("bridge", "bridge-pref64-clash"),
                                             ("switch-pxb", "switch-and-pxb"), ("hole32-6G", "hole32-6G")])
def test_a_rig_dom0_imports_back_into_the_host_it_ran_on(tmp_path, field, original):
    if not (FIELD / field).is_dir():
        pytest.fail(f"tests/data/field/{field} is missing")
    imported = field_import.build(field_import.gather([FIELD / field]), "imported")
    path = tmp_path / "imported.toml"
    path.write_text(imported.toml)
    got = scenario.load(path)
    want = scenario.load(ROOT / "scenarios" / f"{original}.toml")
    assert (got.host.memory, got.xen.dom0_mem, got.xen.version) == (want.host.memory, want.xen.dom0_mem, "4.17")
    assert _pci_shape(got) == _pci_shape(want)
    assert got.expect["unpatched"].relocation_cause == "xen-scratch"     # the field kernel's own evidence
    assert not [n for n in imported.fidelity if n.startswith(("missing", "unusable"))], imported.fidelity


def test_loose_files_import_what_they_can_and_say_what_is_missing(tmp_path):
    dmesg = tmp_path / "pasted.txt"
    dmesg.write_text((FIELD / "default" / "dmesg.txt").read_text())
    imported = field_import.build(field_import.gather([dmesg]), "pasted")
    path = tmp_path / "pasted.toml"
    path.write_text(imported.toml)
    s = scenario.load(path)
    # dom0's BIOS-e820 lines alone give the RAM (2 GiB with what Xen hid); no PCI device.
    assert s.host.memory == 2 * GiB and s.host.pci == []
    missing = [n for n in imported.fidelity if n.startswith("missing")]
    assert any("no lspci -vvv" in n for n in missing) and any("no Xen command line" in n for n in missing)
    assert imported.toml.startswith("# Imported by `rig import`")   # the report rides along as comments


def test_evidence_of_nothing_known_is_bad_input(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("the NIC vanished after the upgrade\n")
    with pytest.raises(InputError, match="no lspci -vvv, e820/memmap or dmesg found"):
        field_import.gather([junk])


def test_a_garbled_lspci_is_reported_unusable_and_the_rest_imported(tmp_path):
    for name in ("e820.txt", "dmesg.txt", "xl-dmesg.txt"):
        (tmp_path / name).write_text((FIELD / "default" / name).read_text())
    text = (FIELD / "default" / "lspci-vvv.txt").read_text().replace("(64-bit, prefetchable) [size=1G]",
                                                                       "(64-bit, prefetchable) [size=1X]")
    (tmp_path / "lspci-vvv.txt").write_text(text)
    imported = field_import.build(field_import.gather([tmp_path]), "garbled")
    (unusable,) = [n for n in imported.fidelity if n.startswith("unusable")]
    assert "lspci-vvv.txt" in unusable and "Region line that does not parse" in unusable
    assert "dom0_mem=512M" in imported.toml.replace('dom0_mem = "512M"', "dom0_mem=512M")


def test_a_disabled_window_keeps_its_base_limit_pair_and_reads_as_off():
    """From the switch-and-pxb dom0: lspci prints an off window's raw base and limit."""
    (d,) = lspci.parse("40:00.0 PCI bridge [0604]: x [1b36:000c]\n\tBus: primary=40, secondary=41, subordinate=41, "
                       "sec-latency=0\n\tPrefetchable memory behind bridge: 00000000fff00000-00000000000fffff "
                       "[disabled] [64-bit]\n")
    assert d.windows == (lspci.Window("pref", None, None),)


def test_a_dmesg_of_another_machine_is_left_out_and_said(tmp_path):
    for name in ("lspci-vvv.txt", "e820.txt", "xl-dmesg.txt"):
        (tmp_path / name).write_text((FIELD / "bridge" / name).read_text())
    (tmp_path / "dmesg.txt").write_text((FIELD / "switch-pxb" / "dmesg.txt").read_text())   # another host
    imported = field_import.build(field_import.gather([tmp_path]), "mixed")
    (unusable,) = [n for n in imported.fidelity if n.startswith("unusable")]
    assert "is not of the machine lspci listed" in unusable and "0000:01:00.0 is 1b36:0005 in lspci but " \
        "104c:8232 in dmesg" in unusable
    assert "[expect.unpatched]" not in imported.toml      # no expectation from the other machine's kernel


def test_iomem_read_without_root_and_a_wrapped_dmesg_are_said(tmp_path):
    (tmp_path / "iomem.txt").write_text("00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n")
    (tmp_path / "dmesg.txt").write_text("\n".join(
        line for line in (FIELD / "default" / "dmesg.txt").read_text().splitlines() if "Linux version" not in line))
    imported = field_import.build(field_import.gather([tmp_path]), "partial")
    assert any("read without root: every address is 0" in n for n in imported.fidelity if n.startswith("unusable"))
    assert any("does not start at boot" in n for n in imported.fidelity)


@pytest.mark.parametrize("cmdline, want", [
    ("dom0_mem=4g", (4 * GiB, "4g")), ("dom0_mem=524288", (512 << 20, "524288")),   # bare: KiB, as Xen reads it
    ("dom0_mem=1G dom0_mem=256M", (256 << 20, "256M")),                             # the last one wins
    ("dom0_mem=max:4G,1G", (GiB, "max:4G,1G")),
    ("dom0_mem=50%", (None, "50%")), ("dom0_mem=-1G", (None, "-1G")), ("dom0_mem=min:1G,max:4G", (None, "min:1G,max:4G")),
    ("console=com1", (None, "")),
])
def test_dom0_mem_is_read_as_xen_reads_it(cmdline, want):
    assert field_import.dom0_mem_of(cmdline) == want


def test_xl_info_gives_xens_version_and_command_line(tmp_path):
    for name in ("lspci-vvv.txt", "e820.txt", "dmesg.txt"):
        (tmp_path / name).write_text((FIELD / "default" / name).read_text())
    (tmp_path / "xl-info.txt").write_text("host : field\nxen_major : 4\nxen_minor : 20\nxen_extra : .4\n"
                                          "xen_commandline : placeholder dom0_mem=1G,max:1G dom0=pvh\n")
    imported = field_import.build(field_import.gather([tmp_path]), "xlinfo")
    assert 'version = "4.20"' in imported.toml and 'dom0_mem = "1G"' in imported.toml
    assert "exact: Xen 4.20 on the field machine -> Debian's Xen 4.20" in imported.fidelity


def test_without_root_the_port_kinds_are_guessed_and_said(tmp_path):
    text = (FIELD / "switch-pxb" / "lspci-vvv.txt").read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("\t\t")]
    denied = "\n".join("\tCapabilities: <access denied>" if ln.startswith("\tCapabilities:") else ln for ln in lines)
    (tmp_path / "lspci-vvv.txt").write_text(denied + "\n")
    (tmp_path / "dmesg.txt").write_text((FIELD / "switch-pxb" / "dmesg.txt").read_text())
    imported = field_import.build(field_import.gather([tmp_path]), "nonroot")
    devices = [ln.split('"')[1] for ln in imported.toml.splitlines() if ln.startswith("device = ")]
    assert devices.count("pcie-root-port") == 2 and devices.count("x3130-upstream") == 1
    assert devices.count("xio3130-downstream") == 2 and devices.count("pci-testdev") == 3
    assert any("(guessed: no capabilities without root)" in n for n in imported.fidelity)


def test_an_expectation_only_for_a_device_the_host_has(tmp_path):
    """A dmesg alone: the field kernel's conflict is said, but no emulated device stands for it."""
    dmesg = tmp_path / "dmesg.txt"
    dmesg.write_text((FIELD / "default" / "dmesg.txt").read_text())
    imported = field_import.build(field_import.gather([dmesg]), "alone")
    assert "[expect.unpatched]" not in imported.toml
    assert any(n.startswith("missing: the field kernel could not claim 0000:00:01.0 BAR 2") for n in imported.fidelity)


def test_a_console_log_is_both_xens_log_and_the_kernels(tmp_path):
    serial = tmp_path / "console.txt"
    serial.write_text((FIELD / "default" / "xl-dmesg.txt").read_text() + (FIELD / "default" / "dmesg.txt").read_text())
    ev = field_import.gather([serial])
    assert ev.sources == {"xen_log": str(serial), "dmesg": str(serial)}
    assert "(XEN)" not in ev.dmesg and "Command line:" in ev.xen_log


def test_names_and_paths_cannot_break_the_toml(tmp_path):
    odd = tmp_path / 'dmesg "boot 2"\nx.txt'
    odd.write_text((FIELD / "default" / "dmesg.txt").read_text())
    imported = field_import.build(field_import.gather([odd]), 'my"bug')
    import tomllib
    data = tomllib.loads(imported.toml)
    assert data["name"] == 'my"bug' and 'dmesg "boot 2"\nx.txt' in data["description"]


def test_other_segments_are_said_and_left_out():
    ev = field_import.Evidence(lspci=(FIELD / "bridge" / "lspci-vvv.txt").read_text() +
                               "0001:00:03.0 VGA compatible controller [0300]: x [10de:1234]\n"
                               "\tRegion 0: Memory at 400000000 (64-bit, prefetchable) [size=256M]\n")
    imported = field_import.build(ev, "segments")
    assert any("PCI segment(s) 0001" in n for n in imported.fidelity)
    assert imported.toml.count('device = "pci-testdev"') == 1


def test_what_qemu_cannot_build_is_fitted_or_left_out_and_said(tmp_path):
    port = ("00:1c.0 PCI bridge [0604]: Intel Root Port [8086:a110]\n\tBus: primary=00, secondary=01, "
            "subordinate=01, sec-latency=0\n\tCapabilities: [40] Express (v2) Root Port (Slot+), MSI 00\n")
    nic = ("01:00.{f} Ethernet controller [0200]: Intel X710 [8086:1572]\n"
           "\tRegion 0: Memory at 6000000000 (64-bit, prefetchable) [size=8M]\n")
    gpu = ("00:02.0 VGA compatible controller [0300]: x [1234:1111]\n"
           "\tRegion 0: Memory at c0000000 (32-bit, prefetchable) [size=512M]\n")
    imported = field_import.build(field_import.Evidence(lspci=port + nic.format(f=0) + nic.format(f=1) + gpu), "fit")
    path = tmp_path / "fit.toml"
    path.write_text(imported.toml)
    s = scenario.load(path)                                # a scenario the rig can boot
    assert [(d.device, d.props) for d in s.host.pci] == [
        ("bochs-display", {"vgamem": "256M"}), ("pcie-root-port", {}), ("pci-testdev", {"membar": "8M"})]
    assert any("0000:01:00.1" in n and "a second function or device behind one port" in n for n in imported.fidelity)
    assert any("approximated: 0000:00:02.0" in n and "vgamem=256M" in n for n in imported.fidelity)


def test_a_rig_run_directory_imports_without_mistaking_its_other_files(tmp_path):
    """A job directory also holds pci-resources.txt ("0000:00:01.0 2 0x... 0x..."): that is no
    plain lspci. Caught by the booted round trip in .ci/run."""
    for name in ("lspci-vvv.txt", "e820.txt", "dmesg.txt", "xl-dmesg.txt"):
        (tmp_path / name).write_text((FIELD / "bridge" / name).read_text())
    (tmp_path / "pci-resources.txt").write_text(
        "0000:00:01.0 0 0x00000000fea44000 0x00000000fea44fff 0x0000000000040200 12\n")
    (tmp_path / "lspci.txt").write_text("00:01.0 PCI bridge: Red Hat, Inc. QEMU PCIe Root port\n")
    imported = field_import.build(field_import.gather([tmp_path]), "rundir")
    unusable = [n for n in imported.fidelity if n.startswith("unusable")]
    assert len(unusable) == 1 and "lspci.txt: an lspci without -vvv" in unusable[0], unusable
    assert any(n.startswith("skipped:") and "pci-resources.txt" in n for n in imported.fidelity)
