"""result.json's schema: a real file loads whole, a file that is not one is one line naming the field."""

import json

import pytest

from rig.errors import RigError
from rig.report import result as result_mod
from tests.conftest import DATA

REAL = DATA / "results" / "bar-clash-64bit-unpatched.json"   # written by `rig run` of the default A/B


def test_a_real_result_loads_with_its_physics():
    r = result_mod.load(REAL)
    assert (r.job, r.verdict, r.stage_reached) == ("bar-clash-64bit[seabios-512M-unpatched]", "pass", "collected")
    (moved,) = r.relocations
    # The 1 GiB BAR firmware put at 4 GiB, moved up by its own size past Xen's scratch.
    assert (moved.device, moved.resource) == ("0000:00:01.0", "BAR 2")
    assert moved.firmware == (0x100000000, 0x13FFFFFFF) and moved.final == (0x140000000, 0x17FFFFFFF)
    assert r.xen_scratch == [(0x100000000, 0x107FFFFFF)]
    assert r.balloon.dom0_ram_pages == 131071 and r.balloon.converted_pages == 0


def test_what_it_writes_is_what_it_read(tmp_path):
    r = result_mod.load(REAL)
    r.write(tmp_path)
    want = json.loads(REAL.read_text())
    want["ssh"]["matches_serial"] = None     # always present now: null unless --collect both compared
    want["qemu"] = None                      # newer than this result: which QEMU ran is unknown
    want["arch"] = "x86_64"                  # newer too: results before Arm rows were all x86_64
    want["xen"].update(dom0_banks=[], grant_table=None, extended_regions=[])   # Xen on Arm's, newer
    want["foreign_mapping"] = None           # the Arm probe's, newer
    assert json.loads((tmp_path / "result.json").read_text()) == want


@pytest.mark.parametrize("change, names", [
    (lambda d: d.pop("verdict"), "verdict: Field required"),
    (lambda d: d.update(verdict="passed"), "verdict: Input should be"),
    (lambda d: d["relocations"][0].update(firmware="0x100000000"), "relocations.0.firmware"),
    (lambda d: d.update(verdikt="pass"), "verdikt: Extra inputs are not permitted"),
])
def test_a_file_that_is_not_a_result_is_one_line_naming_the_field(tmp_path, change, names):
    data = json.loads(REAL.read_text())
    change(data)
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RigError) as err:
        result_mod.load(path)
    assert str(path) in str(err.value) and names in str(err.value) and "\n" not in str(err.value)


def test_a_cut_file_says_the_run_did_not_finish(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(REAL.read_text()[:200])
    with pytest.raises(RigError, match="did not finish"):
        result_mod.load(path)
