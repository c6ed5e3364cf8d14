"""The libvirt backend's domain XML (pure): what libvirt models, and the rest passed through."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rig.spec import plan, scenario
from rig.errors import InputError
from rig.host.libvirt import QEMU_NS, domain_xml
from rig.host.qemu_argv import guest_argv

ROOT = Path(__file__).resolve().parents[2]


def _plan(name="bar-clash-64bit.toml", accel="tcg", **host):
    s = scenario.load(ROOT / "scenarios" / name)
    if host:
        s = s.model_copy(update={"host": s.host.model_copy(update=host)})
    s = s.variant(*s.variants()[0])
    return plan.make(s, "unpatched", accel, xen=Path("/c/xen"), kernel=Path("/c/vmlinuz"), initrd=Path("/c/initrd"))


def test_tcg_domain_has_the_rigs_cpu_iommu_and_no_default_devices():
    p = _plan()
    root = ET.fromstring(domain_xml(p, "rig-x-1", p, Path("/r/serial.log"), 42))
    assert root.get("type") == "qemu"
    assert root.find("memory").text == "2048"
    cpu = root.find("cpu")
    assert cpu.find("model").text == "qemu64"
    assert {f.get("name"): f.get("policy") for f in cpu.findall("feature")} == {"svm": "require", "npt": "require"}
    iommu = root.find("devices/iommu")
    assert iommu.get("model") == "intel"
    assert (iommu.find("driver").get("intremap"), iommu.find("driver").get("aw_bits")) == ("on", "48")
    assert root.find("features/ioapic").get("driver") == "qemu"
    assert root.find("devices/memballoon").get("model") == "none"
    assert root.find("devices/serial/log").get("file") == "/r/serial.log"
    assert root.find("metadata")[0].get("pid") == "42"


def test_topology_and_xen_boot_pass_through_exactly_as_the_qemu_backend_writes_them():
    p = _plan("bridge-pref64-clash.toml")
    root = ET.fromstring(domain_xml(p, "rig-x-1", p, Path("/r/serial.log"), 1))
    passed = [a.get("value") for a in root.find(f"{{{QEMU_NS}}}commandline")]
    assert passed == guest_argv(p)
    assert passed[passed.index("-initrd") + 1] == ("/c/vmlinuz console=hvc0 earlyprintk=xen "
                                                   "initcall_blacklist=i8042_init,/c/initrd")


def test_kvm_uses_host_passthrough_and_domain_type_kvm():
    p = _plan(accel="kvm")
    root = ET.fromstring(domain_xml(p, "rig-x-1", p, Path("/s"), 1))
    assert root.get("type") == "kvm" and root.find("cpu").get("mode") == "host-passthrough"


def test_no_iommu_means_no_iommu_element():
    p = _plan(iommu="none")
    root = ET.fromstring(domain_xml(p, "rig-x-1", p, Path("/s"), 1))
    assert root.find("devices/iommu") is None and root.find("features/ioapic") is None


def test_what_libvirt_cannot_do_yet_is_an_input_error():
    p = _plan(firmware="ovmf")
    with pytest.raises(InputError, match="not supported by the libvirt backend yet"):
        domain_xml(p, "n", p, Path("/s"), 1)
