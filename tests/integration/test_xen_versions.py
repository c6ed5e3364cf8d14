"""Versions as rows of data, booted for real: trixie's Xen 4.20, the Linux 7.x kernel family
(trixie-backports' 7.3) and bookworm-backports' QEMU 10.0 with its SeaBIOS 1.16.3, each
fetched through the private apt root from the machine's own mirror. One `rig matrix` of two
hosts that boot side by side; the whole version matrix runs nightly (docs/versions.md)."""

import json

import pytest

from tests.integration.conftest import RETRY, SCENARIOS, rig

pytestmark = pytest.mark.boot

GiB = 1 << 30
ROLE = "patched-13-bpo-7"
# Xen's host RAM is [0, 0x9fbff] (159 whole pages) and [1 MiB, 0x7ffdffff]; dom0_mem=512M keeps
# 131072 pages for dom0 and makes the rest of the second range UNUSABLE.
UNUSABLE_PAGES = (0x7FFE0000 - (0x100000 + ((512 << 20) // 4096 - 159) * 4096)) // 4096


def _testdev_bar(r):
    (row,) = [x for x in r["pci_resources"] if x["resource"] == "BAR 2" and x["firmware"]
              and x["firmware"][1] - x["firmware"][0] + 1 == GiB]
    return row


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("versions") / "run"
    proc = rig("matrix", str(SCENARIOS / "versions-default.toml"), str(SCENARIOS / "versions-qemu10.toml"),
               "--xen", "4.20", "--only", ROLE, "--out", str(out), *RETRY)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return {d: json.loads((out / d / ROLE / "result.json").read_text())
            for d in ("versions-default/xen4.20-seabios-512M", "versions-qemu10/xen4.20-qemu10.0-seabios-512M")}


def test_xen_420_and_linux_7_on_the_default_host(results):
    r = results["versions-default/xen4.20-seabios-512M"]
    assert r["job"] == f"versions-default[xen4.20-seabios-512M-{ROLE}]"
    # Which Xen ran: as Xen printed it, and the package it came from (trixie's, deb13).
    assert r["xen"]["version"].startswith("4.20.") and r["xen"]["dom0"] == "PVH"
    assert r["artefacts"]["xen"]["source"].startswith("debian:xen-hypervisor-4.20-amd64=4.20.")
    assert "deb13" in r["artefacts"]["xen"]["version"]
    assert r["kernel_release"].startswith("7.") and r["qemu"].startswith("7.2")   # the machine's own QEMU
    # The BAR stays where SeaBIOS 1.16.2 put it; 7.3 converts all of Xen's UNUSABLE RAM.
    assert _testdev_bar(r)["firmware"] == [0x100000000, 0x13FFFFFFF] == _testdev_bar(r)["final"]
    assert r["relocations"] == [] and r["xen_scratch"] == []
    assert r["balloon"]["converted_pages"] == UNUSABLE_PAGES
    # The balloon driver asks Xen (b13cd24c15d7): 131072 pages less the one shared_info replaced.
    assert r["balloon_driver"]["target_kb"] == r["balloon_driver"]["current_kb"] == 4 * (131072 - 1)
    assert r["verdict"] == "pass"
    # What Xen 4.20 itself said of dom0: its PIRQ limit for one vCPU, and no BAR it refused,
    # no IOMMU fault, no dom0 build failure.
    xen_findings = [(f["kind"], f["line"]) for f in r["findings"] if f["kind"].startswith("xen-")]
    assert xen_findings == [("xen-dom0", "d0 has maximum 208 PIRQs")]


def test_qemu_10_and_its_seabios_put_the_64bit_window_at_the_top(results):
    r = results["versions-qemu10/xen4.20-qemu10.0-seabios-512M"]
    assert r["qemu"].startswith("10.0.") and "bpo12" in r["qemu"]
    assert r["artefacts"]["qemu"]["source"].startswith("debian:qemu-system-x86=1:10.0.")
    assert "seabios=1.16.3" in r["artefacts"]["qemu"]["source"]
    # SeaBIOS 1.16.3 places the 64-bit window at the top of qemu64's 40-bit address space:
    # the 1 GiB BAR is the last GiB below 0xffc0000000, far from Xen scratch's hole at 4 GiB.
    assert _testdev_bar(r)["firmware"] == [0xFF80000000, 0xFFBFFFFFFF] == _testdev_bar(r)["final"]
    assert r["relocations"] == [] and r["balloon"]["converted_pages"] == UNUSABLE_PAGES
    assert r["verdict"] == "pass"
