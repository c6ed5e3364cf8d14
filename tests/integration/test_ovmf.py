"""UEFI: Xen through OVMF and xen.efi from the rig's FAT image, A/B on a host that clashes:
6 GiB of RAM push Xen scratch into the 32-bit hole, where OVMF put a BAR (the push CI's
only 32-bit-hole host; the SeaBIOS one, hole32-6G, runs nightly)."""

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
    assert moved["final"][1] < scratch[0] or moved["final"][0] > scratch[1]   # moved clear of scratch
    assert p["relocations"] == [] and p["converted_to_ram"] == p["expected_conversion"] != []
    assert any(u[0] >= 1 << 32 for u in p["converted_to_ram"])   # above-4G UNUSABLE converted too
    for r in (u, p):   # qemu64,+svm,+npt: no "Bad FPU state" WARNING, unlike -cpu max in the capture
        assert not [f for f in r["findings"] if f["kind"] == "WARNING"]
    assert (out / "unpatched" / "esp.img").stat().st_size > 0
