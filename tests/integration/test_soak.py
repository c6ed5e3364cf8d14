"""`rig soak` on a real host: rounds kept whole, figures printed and in soak.json."""

import json

import pytest

from tests.integration.conftest import SCENARIOS, processes_mentioning, rig

pytestmark = pytest.mark.boot


def test_soak_counts_a_real_round_and_counts_it_again_from_files(tmp_path):
    """A round of a host whose Xen panics (5 s, where a good boot costs 25): the soak counts it
    by failure class, names its run directory, exits 3, and counts the same from the files."""
    out = tmp_path / "soak"
    proc = rig("soak", "1", str(SCENARIOS / "controls" / "no-iommu.toml"), "--out", str(out))
    assert proc.returncode == 3, proc.stderr
    (kernel,) = json.loads((out / "soak.json").read_text())["kernels"]
    r = json.loads((out / "round-001" / "unpatched" / "result.json").read_text())
    assert (r["verdict"], r["failure"]) == ("error", "xen-panic")
    assert (kernel["role"], kernel["kernel"], kernel["boots"]) == ("unpatched", "debian-6.1", 1)
    assert (kernel["outcomes"], kernel["failures"]) == ({"error": 1}, {"xen-panic": 1})
    assert kernel["examples"] == {"xen-panic": str(out / "round-001" / "unpatched")}
    assert kernel["seconds"] is None   # a boot that never reached collection has no boot time
    assert proc.stdout.splitlines()[0].startswith("no-iommu[seabios-512M-unpatched] (debian-6.1): 1 boots: ")
    # Counting again from the files gives the same figures (an interrupted soak still counts).
    again = rig("soak", "--summarize", str(out))
    assert again.returncode == 3 and again.stdout.splitlines()[0] == proc.stdout.splitlines()[0]
    assert processes_mentioning(str(out)) == []
