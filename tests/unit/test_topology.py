"""The PCI topology model: what plugs where, what the rig numbers, what it rejects."""

from pathlib import Path

import pytest

from rig.spec import plan, scenario, topology
from rig.errors import ScenarioError
from rig.host.qemu_argv import qemu_argv
from rig.spec.scenario import PciDevice
from rig.spec.topology import TopologyError, resolve

ROOT = Path(__file__).resolve().parents[2]


def dev(device, name=None, parent=None, **props):
    return PciDevice(device=device, name=name, parent=parent, props=props)


def test_switch_and_pxb_are_numbered_and_addressed():
    placed = resolve([dev("pcie-root-port", "rp1"), dev("x3130-upstream", "up", "rp1"),
                      dev("xio3130-downstream", "dn1", "up"), dev("xio3130-downstream", "dn2", "up"),
                      dev("pci-testdev", None, "dn2", membar="1G"),
                      dev("pxb-pcie", "pxb1"), dev("pcie-root-port", "rp2", "pxb1")])
    by_id = {p.id: p for p in placed}
    assert (by_id["rp1"].bus, by_id["rp1"].addr) == ("pcie.0", 1)
    assert (by_id["up"].bus, by_id["up"].addr) == ("rp1", 0)
    assert [by_id["dn1"].addr, by_id["dn2"].addr] == [0, 1]
    chassis = [by_id[i].props["chassis"] for i in ("rp1", "dn1", "dn2", "rp2")]
    assert len(set(chassis)) == 4 and all(by_id[i].props["slot"] == by_id[i].props["chassis"]
                                          for i in ("rp1", "dn1", "dn2", "rp2"))
    assert by_id["pxb1"].props["bus_nr"] in topology.PXB_BUS_NUMBERS and by_id["pxb1"].addr == 2  # second device on pcie.0
    assert by_id["pcitestdev1"].bus == "dn2"
    assert (by_id["rp2"].bus, by_id["rp2"].addr) == ("pxb1", 0)


@pytest.mark.parametrize("devices, key, words", [
    ([dev("pci-testdev", parent="nowhere")], "host.pci.0.parent", "unknown parent 'nowhere'"),
    ([dev("pcie-root-port", "a"), dev("pcie-root-port", "a")], "host.pci.1.name", "duplicate id 'a'"),
    ([dev("pxb", "x"), dev("pcie-root-port", parent="x")], "host.pci.1.parent", "cannot plug into 'x' (pxb"),
    ([dev("pxb-pcie", "x"), dev("pxb-pcie", parent="x")], "host.pci.1.parent", "pxb-pcie cannot plug into 'x'"),
    ([dev("pcie-root-port", "rp"), dev("e1000e", parent="rp"), dev("e1000e", parent="rp")],
     "host.pci.2.parent", "'rp' takes one device"),
    ([dev("pci-testdev", membar="768M")], "host.pci.0.props.membar", "not a power of two"),
    ([dev("bochs-display", vgamem="lots")], "host.pci.0.props.vgamem", "invalid size"),
    ([dev("pcie-root-port", "rp", "rp")], "host.pci.0.parent", "cannot be its own parent"),
])
def test_impossible_topologies_are_rejected(devices, key, words):
    with pytest.raises(TopologyError) as info:
        resolve(devices)
    assert info.value.key == key and words in info.value.problem


def test_scenario_error_names_file_and_key(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('name = "t"\n[kernels]\na = "debian-6.1"\n[[host.pci]]\ndevice = "pci-testdev"\n'
                    'parent = "rp9"\n')
    with pytest.raises(ScenarioError, match=r"t.toml: host.pci.0.parent: unknown parent 'rp9'"):
        scenario.load(path)


def test_user_addr_and_id_are_respected():
    (p,) = resolve([dev("e1000e", addr="0x5", id="nic0")])
    assert (p.id, p.addr) == ("nic0", 5) and "addr" not in p.props and "id" not in p.props


def test_ivshmem_size_becomes_a_memory_backend():
    s = scenario.Scenario(name="x", kernels={"a": "debian-6.1"},
                          host={"pci": [{"device": "ivshmem-plain", "props": {"size": "256M"}}]})
    p = plan.make(s, "a", "tcg", xen=Path("/x"), kernel=Path("/k"), initrd=Path("/i"))
    argv = qemu_argv(p, console_socket=Path("/c"), qmp_socket=Path("/q"), serial_log=Path("/s"))
    assert "memory-backend-ram,id=ivshmemplain1-mem,size=256M" in argv
    assert "ivshmem-plain,id=ivshmemplain1,bus=pcie.0,addr=0x1,memdev=ivshmemplain1-mem" in argv


def test_memory_hotplug_and_hole64_in_argv():
    s = scenario.Scenario(name="x", kernels={"a": "debian-6.1"},
                          host={"memory": "6G", "maxmem": "16G", "slots": 2, "pci_hole64_size": "64G"})
    p = plan.make(s, "a", "tcg", xen=Path("/x"), kernel=Path("/k"), initrd=Path("/i"))
    argv = qemu_argv(p, console_socket=Path("/c"), qmp_socket=Path("/q"), serial_log=Path("/s"))
    assert argv[argv.index("-m") + 1] == "6144M,slots=2,maxmem=16384M"
    assert "q35-pcihost.pci-hole64-size=65536M" in argv


def test_maxmem_without_slots_is_rejected(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('name = "m"\n[host]\nmaxmem = "8G"\n[kernels]\na = "debian-6.1"\n')
    with pytest.raises(ScenarioError, match="host.slots: maxmem and slots go together"):
        scenario.load(path)


@pytest.mark.parametrize("name", ["bridge-pref64-clash", "switch-and-pxb", "hole32-6G"])
def test_library_topologies_build(name):
    s = scenario.load(ROOT / "scenarios" / f"{name}.toml")
    p = plan.make(s.variant(*s.variants()[0]), "unpatched", "tcg", xen=Path("/x"), kernel=Path("/k"),
                  initrd=Path("/i"))
    argv = qemu_argv(p, console_socket=Path("/c"), qmp_socket=Path("/q"), serial_log=Path("/s"))
    assert argv.count("-device") == len(s.host.pci) + 2  # + the IOMMU + dom0's NIC
