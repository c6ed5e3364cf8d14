"""The agent's section functions, run by dom0's own busybox (from the rig's cache) on this
machine: what they print is what the rig accepts, byte for byte. No QEMU needed, but the
cache must hold dom0's tools (`rig fetch`), so it sits with the boot tests."""

import re
import subprocess
from pathlib import Path

import pytest

from rig.guest import collect, protocol
from rig.parse import e820, pci
from rig.artefacts.store import Cache
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.boot


def _agent_functions(run: str) -> str:
    """The agent's step mark and its section functions, /run/rig moved to `run`."""
    text = (ROOT / "guests" / "agent" / "init").read_text()
    step = text[text.index("step() {"):text.index("\n", text.index("step() {")) + 1]
    start, end = text.index("memmap() {"), text.index("nic_up() {")
    return step + text[start:end].replace("/run/rig", run)


def _busybox_bin(tmp_path):
    busybox = Cache().guest_tools(fetch=False).root / "bin" / "busybox"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for applet in ("sh", "cat", "wc", "sha256sum", "tr", "awk", "od"):
        (bindir / applet).symlink_to(busybox)
    return busybox, bindir


def test_sections_as_busybox_prints_them_are_accepted_with_their_checksums(tmp_path):
    busybox, bindir = _busybox_bin(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "agent.sh").write_text(_agent_functions(str(tmp_path / "run")))
    # A dmesg with raw bytes (as Xen's XSDT copy puts there) and sections of every shape.
    script = (". ./agent.sh\n"
              "dmesg() { printf '[ 0.1] ACPI: XSDT \\201\\377 (v01)\\n[ 0.2] tab\\there\\n'; }\n"
              "snapshot uname echo 6.1.0-57-amd64\nsnapshot cmdline echo 'console=hvc0'\n"
              "snapshot dmesg ascii_dmesg\nsnapshot iomem printf '00000000-00000fff : Reserved\\n'\n"
              "snapshot e820 printf '0x0 0x9fbff System RAM\\n'\nsnapshot pci-resources printf ''\n"
              "snapshot xen-balloon printf 'target_kb 1\\ncurrent_kb 1\\nlow_kb 0\\nhigh_kb 0\\n'\n"
              "snapshot xen-devicetree xen_devicetree\n"   # this x86 machine has no device tree: "absent"
              "snapshot foreign-map foreign_map\n"         # nor the arm64 probe: "absent"
              "checksum\nfor name in $SECTIONS; do emit $name; done\n")
    out = subprocess.run([str(busybox), "sh", "-c", script], cwd=tmp_path, env={"PATH": str(bindir)},
                         capture_output=True, check=True).stdout
    assert out.isascii()
    found, problems = collect.parse_sections(f"@@RIG-AGENT {protocol.AGENT_VERSION} x\n" + out.decode())
    # The empty section is delivered faithfully (and refused later as empty, never judged).
    assert problems == {} and found["pci-resources"] == ""
    assert found["dmesg"] == "[ 0.1] ACPI: XSDT ?? (v01)\n[ 0.2] tab\there\n"
    assert set(found) == set(collect.REQUIRED) and found["xen-devicetree"] == "absent\n"
    assert found["foreign-map"] == "absent\n"
    assert re.search(rb"@@RIG-END dmesg 2 [0-9a-f]{64}\n", out)


def test_sysfs_sections_from_this_machine_parse_strictly(tmp_path):
    """memmap and pci_resources read sysfs with dom0's busybox awk (one process each, not a
    byte-per-call shell loop): on this machine's real sysfs their output is what the strict
    parsers accept, one entry per memmap directory and one line per non-empty resource."""
    busybox, bindir = _busybox_bin(tmp_path)
    (tmp_path / "agent.sh").write_text(_agent_functions(str(tmp_path)))
    out = subprocess.run([str(busybox), "sh", "-c", ". ./agent.sh\nmemmap; echo @@; pci_resources"], cwd=tmp_path,
                         env={"PATH": str(bindir)}, capture_output=True, check=True, text=True).stdout
    memmap, resources = out.split("@@\n")
    entries = e820.from_memmap(memmap)
    assert len(entries) == len(list(Path("/sys/firmware/memmap").iterdir()))
    non_empty = sum(1 for f in Path("/sys/bus/pci/devices").glob("*/resource")
                    for line in f.read_text().splitlines() if line.split()[2] != "0x0000000000000000")
    if non_empty == 0:
        pytest.skip("this machine has no PCI resources to read")
    assert len(pci.from_sysfs(resources)) == non_empty
