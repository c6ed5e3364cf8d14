"""A representative slice of the scenario library, booted for real through `rig matrix`.
The whole library runs in the nightly job (ci/nightly.sh). The 32-bit hole under SeaBIOS
runs nightly only: the push CI pins the same physics under OVMF (test_ovmf.py)."""

import json

import pytest

from tests.integration.conftest import RETRY, SCENARIOS, RigRun, matrix_result, rig

pytestmark = pytest.mark.boot

GiB = 1 << 30


result = matrix_result


def test_every_expectation_held(library):
    assert library.returncode == 0, library.stdout + library.stderr
    summary = json.loads((library.out / "summary.json").read_text())
    assert len(summary) == 2 and {s["verdict"] for s in summary} == {"pass"}


def test_bridge_window_moves_and_takes_its_child_along(library):
    r = result(library, "bridge-pref64-clash", "seabios-512M", "unpatched")
    by_resource = {m["resource"]: m for m in r["relocations"]}
    window, bar = by_resource["bridge window"], by_resource["BAR 2"]
    assert window["firmware"][0] == 4 * GiB and "Xen scratch" in window["cause"]
    assert bar["cause"] == f"parent window moved ({window['device']} bridge window)"
    assert window["final"][0] <= bar["final"][0] and bar["final"][1] <= window["final"][1]
    assert result(library, "bridge-pref64-clash", "seabios-512M", "patched")["relocations"] == []


@pytest.fixture(scope="module")
def hole32(tmp_path_factory):
    out = tmp_path_factory.mktemp("hole32") / "run"
    run = rig("matrix", str(SCENARIOS / "hole32-6G.toml"), "--out", str(out), *RETRY)
    assert run.returncode == 0, run.stdout + run.stderr
    return RigRun(run.returncode, run.stdout, run.stderr, out)


@pytest.mark.nightly
def test_32bit_hole_pressure_with_ram_above_4g(hole32):
    r = result(hole32, "hole32-6G", "seabios-1G", "unpatched")
    (scratch,) = r["xen_scratch"]
    assert scratch[1] < 4 * GiB                     # RAM above 4 GiB pushed scratch into the 32-bit hole
    (moved,) = r["relocations"]
    assert moved["firmware"][1] < 4 * GiB and moved["firmware"][0] <= scratch[1]
    assert moved["final"][1] < scratch[0] or moved["final"][0] > scratch[1]
    p = result(hole32, "hole32-6G", "seabios-1G", "patched")
    assert p["relocations"] == [] and p["converted_to_ram"] == p["expected_conversion"]
    assert any(u[0] >= 4 * GiB for u in p["converted_to_ram"])   # above-4G UNUSABLE converted too
