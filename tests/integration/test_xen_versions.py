"""Xen as a named artefact: the default A/B's unpatched kernel under trixie's Xen 4.20,
fetched through the private apt root from the machine's own mirror, booted for real."""

import json

import pytest

from tests.integration.conftest import RETRY, SCENARIOS, rig

pytestmark = pytest.mark.boot


def test_xen_420_from_trixie_shows_the_same_clash(tmp_path):
    out = tmp_path / "run"
    proc = rig("run", str(SCENARIOS / "bar-clash-64bit.toml"), "--xen", "4.20", "--only", "unpatched",
               "--out", str(out), *RETRY)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    r = json.loads((out / "unpatched" / "result.json").read_text())
    assert r["job"] == "bar-clash-64bit[xen4.20-seabios-512M-unpatched]"
    # Which Xen ran: as Xen printed it, and the package it came from (trixie's, deb13).
    assert r["xen"]["version"].startswith("4.20.") and r["xen"]["dom0"] == "PVH"
    assert r["artefacts"]["xen"]["source"].startswith("debian:xen-hypervisor-4.20-amd64=4.20.")
    assert "deb13" in r["artefacts"]["xen"]["version"]
    # The same physics as under 4.17: the 1 GiB BAR at 4 GiB meets Xen's scratch and moves up by its size.
    assert r["xen_scratch"] == [[0x100000000, 0x107FFFFFF]]
    (moved,) = r["relocations"]
    assert (moved["device"], moved["resource"], moved["root_cause"]) == ("0000:00:01.0", "BAR 2", "xen-scratch")
    assert (moved["firmware"], moved["final"]) == ([0x100000000, 0x13FFFFFFF], [0x140000000, 0x17FFFFFFF])
    assert r["balloon"]["converted_pages"] == 0 and r["verdict"] == "pass"
    # What Xen 4.20 itself said of dom0: its PIRQ limit for one vCPU, and no BAR it refused,
    # no IOMMU fault, no dom0 build failure.
    xen_findings = [(f["kind"], f["line"]) for f in r["findings"] if f["kind"].startswith("xen-")]
    assert xen_findings == [("xen-dom0", "d0 has maximum 208 PIRQs")]
