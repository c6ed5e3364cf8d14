"""The round trip, booted: a rig dom0 taken as a field machine (the library's bridge host),
imported with `rig import` and booted again, must come up with the same machine: the same
firmware BARs and bridge windows, the same RAM and the same map Xen gives dom0."""

import json

import pytest

from rig.parse import pci
from tests.integration.conftest import RETRY, rig

pytestmark = pytest.mark.boot


def _firmware(job):
    return sorted((r.device, r.index, r.start, r.end, r.prefetch, r.is_64)
                  for r in pci.from_query_pci((job / "qmp-pci-firmware.json").read_text()) if r.kind == "mem")


def test_an_imported_bridge_host_boots_into_the_same_machine(library, tmp_path):
    field = library.out / "bridge-pref64-clash" / "seabios-512M" / "unpatched"
    scenario = tmp_path / "field-bridge.toml"
    proc = rig("import", str(field), "-o", str(scenario))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "missing" not in proc.stdout and "unusable" not in proc.stdout
    assert (tmp_path / "field-bridge.fidelity.txt").is_file()
    run = rig("run", str(scenario), "--only", "unpatched", "--out", str(tmp_path / "run"), *RETRY)
    assert run.returncode == 0, run.stderr + run.stdout     # the field kernel's move, found again
    again = tmp_path / "run" / "unpatched"
    # Where SeaBIOS put every memory BAR and window: the root port's 1 GiB pref window at
    # 0x100000000 and the BAR behind it among them.
    assert _firmware(again) == _firmware(field)
    assert ("0000:01:00.0", 2, 0x100000000, 0x13FFFFFFF, True, True) in _firmware(again)
    assert (again / "e820.txt").read_text() == (field / "e820.txt").read_text()
    r = json.loads((again / "result.json").read_text())
    assert r["verdict"] == "pass" and {m["root_cause"] for m in r["relocations"]} == {"xen-scratch"}
