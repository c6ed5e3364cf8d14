"""UEFI: Xen through OVMF and xen.efi from the rig's FAT image (3 to 4 minutes under TCG)."""

import json

import pytest

from tests.integration.conftest import SCENARIOS, rig

pytestmark = pytest.mark.boot

GiB = 1 << 30


def test_ovmf_places_the_64bit_window_away_from_xen_scratch(tmp_path):
    out = tmp_path / "run"
    proc = rig("run", str(SCENARIOS / "ovmf-bar-noclash.toml"), "--only", "unpatched", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads((out / "unpatched" / "result.json").read_text())
    assert (r["firmware"], r["verdict"], r["stage_reached"]) == ("ovmf", "pass", "collected")
    (scratch,) = r["xen_scratch"]
    (bar,) = [x for x in r["pci_resources"] if x["firmware"] and x["firmware"][1] - x["firmware"][0] + 1 == GiB]
    assert bar["firmware"][0] > scratch[1]           # OVMF's 64-bit window is far above Xen scratch
    assert bar["final"] == bar["firmware"] and r["relocations"] == []
    assert not [f for f in r["findings"] if f["kind"] == "WARNING"]  # qemu64: no "Bad FPU state" WARNING
    assert (out / "unpatched" / "esp.img").stat().st_size > 0
