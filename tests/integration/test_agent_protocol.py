"""The agent's section functions, run by dom0's own busybox (from the rig's cache) on this
machine: what they print is what the rig accepts, byte for byte. No QEMU needed, but the
cache must hold dom0's tools (`rig fetch`), so it sits with the boot tests."""

import re
import subprocess

import pytest

from rig import collect
from rig.artefacts import Cache
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.boot


def _agent_functions(run: str) -> str:
    text = (ROOT / "guests" / "agent" / "init").read_text()
    start, end = text.index("ascii_dmesg() {"), text.index("network() {")
    return text[start:end].replace("/run/rig", run)


def test_sections_as_busybox_prints_them_are_accepted_with_their_checksums(tmp_path):
    busybox = Cache().guest_tools(fetch=False).root / "bin" / "busybox"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for applet in ("sh", "cat", "wc", "sha256sum", "tr"):
        (bindir / applet).symlink_to(busybox)
    (tmp_path / "run").mkdir()
    (tmp_path / "agent.sh").write_text(_agent_functions(str(tmp_path / "run")))
    # A dmesg with raw bytes (as Xen's XSDT copy puts there) and sections of every shape.
    script = (". ./agent.sh\n"
              "dmesg() { printf '[ 0.1] ACPI: XSDT \\201\\377 (v01)\\n[ 0.2] tab\\there\\n'; }\n"
              "snapshot uname echo 6.1.0-57-amd64\nsnapshot cmdline echo 'console=hvc0'\n"
              "snapshot dmesg ascii_dmesg\nsnapshot iomem printf '00000000-00000fff : Reserved\\n'\n"
              "snapshot e820 printf '0x0 0x9fbff System RAM\\n'\nsnapshot pci-resources printf ''\n"
              "snapshot xen-balloon printf 'target_kb 1\\ncurrent_kb 1\\nlow_kb 0\\nhigh_kb 0\\n'\n"
              "checksum\nfor name in $SECTIONS; do emit $name; done\n")
    out = subprocess.run([str(busybox), "sh", "-c", script], cwd=tmp_path, env={"PATH": str(bindir)},
                         capture_output=True, check=True).stdout
    assert out.isascii()
    found, problems = collect.parse_sections("@@RIG-AGENT 3 x\n" + out.decode())
    # The empty section is delivered faithfully (and refused later as empty, never judged).
    assert problems == {} and found["pci-resources"] == ""
    assert found["dmesg"] == "[ 0.1] ACPI: XSDT ?? (v01)\n[ 0.2] tab\there\n"
    assert set(found) == set(collect.REQUIRED)
    assert re.search(rb"@@RIG-END dmesg 2 [0-9a-f]{64}\n", out)
