"""`rig soak` on a real host: rounds kept whole, figures printed and in soak.json."""

import json

import pytest

from tests.integration.conftest import SCENARIOS, processes_mentioning, rig

pytestmark = pytest.mark.boot


def test_soak_counts_a_real_round_and_counts_it_again_from_files(tmp_path):
    out = tmp_path / "soak"
    proc = rig("soak", "1", str(SCENARIOS / "bar-clash-64bit.toml"), "--only", "unpatched", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (kernel,) = json.loads((out / "soak.json").read_text())["kernels"]
    r = json.loads((out / "round-001" / "unpatched" / "result.json").read_text())
    assert (kernel["role"], kernel["kernel"], kernel["boots"]) == ("unpatched", "debian-6.1", 1)
    if r["verdict"] == "pass":
        assert kernel["outcomes"] == {"pass": 1} and kernel["seconds"]["median"] == r["timings"]["total"]
    else:  # a TCG flake is counted as what it was, by class
        assert kernel["failures"] == {r["failure"]: 1}
    assert proc.stdout.splitlines()[0].startswith("bar-clash-64bit[seabios-512M-unpatched] (debian-6.1): 1 boots: ")
    # Counting again from the files gives the same figures (an interrupted soak still counts).
    again = rig("soak", "--summarize", str(out))
    assert again.returncode == 0 and again.stdout.splitlines()[0] == proc.stdout.splitlines()[0]
    assert processes_mentioning(str(out)) == []
