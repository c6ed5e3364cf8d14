"""UEFI: Xen through OVMF and xen.efi from the rig's FAT image, A/B on a host that clashes."""

import json

import pytest

from tests.integration.conftest import RETRY, SCENARIOS, rig

pytestmark = pytest.mark.boot


def test_ovmf_ab_in_the_32bit_hole(tmp_path):
    out = tmp_path / "run"
    proc = rig("run", str(SCENARIOS / "ovmf-hole32-6G.toml"), "--out", str(out), *RETRY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    u = json.loads((out / "unpatched" / "result.json").read_text())
    p = json.loads((out / "patched" / "result.json").read_text())
    assert (u["firmware"], u["verdict"], p["verdict"]) == ("ovmf", "pass", "pass")
    (scratch,) = u["xen_scratch"]
    (moved,) = u["relocations"]
    assert scratch[1] < 1 << 32 and moved["firmware"][0] <= scratch[1] and scratch[0] <= moved["firmware"][1]
    assert p["relocations"] == [] and p["converted_to_ram"] == p["expected_conversion"] != []
    for r in (u, p):   # qemu64,+svm,+npt: no "Bad FPU state" WARNING, unlike -cpu max in the capture
        assert not [f for f in r["findings"] if f["kind"] == "WARNING"]
    assert (out / "unpatched" / "esp.img").stat().st_size > 0
