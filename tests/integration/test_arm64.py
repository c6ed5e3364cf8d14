"""The aarch64 row for real: Debian's arm64 Xen 4.17 and kernels under qemu-system-aarch64
(TCG, QEMU virt with EL2 and a GICv3), dom0 loaded by guest-loader, the same agent and the
same SSH channel as on x86. Push CI boots one kernel; the nightly the rest of the arm64
library (the whole library runs in ci/nightly.sh), ext_regions=off and a kernel built
with `rig kernel build --arch aarch64` here."""

from __future__ import annotations

import pytest

from .conftest import RETRY, run_scenario

pytestmark = pytest.mark.boot

GIB = 1 << 30


@pytest.fixture(scope="module")
def arm_run(tmp_path_factory):
    return run_scenario("arm64-bar-64bit", tmp_path_factory.mktemp("arm64") / "run", "--only", "patched", *RETRY)


def test_an_arm64_host_boots_and_is_judged_by_xens_extended_regions(arm_run):
    assert arm_run.returncode == 0, arm_run.stderr[-3000:]
    r = arm_run.result("patched")
    assert (r["verdict"], r["arch"], r["accel"], r["firmware"]) == ("pass", "aarch64", "tcg", "none")
    assert r["kernel_release"].endswith("-arm64") and r["xen"]["version"].startswith("4.17.")
    assert r["collected_via"] == "ssh", r["ssh"]          # e1000e on virt's PCIe root, no IOMMU in the way
    # The physics: QEMU virt puts 2 GiB of RAM at 1 GiB; Xen gives dom0 512 MiB 1:1 at
    # 0x60000000 and names the rest of the RAM, less its modules and the grant table, as
    # extended regions. The 1 GiB BAR sits at the bottom of virt's 64-bit window (512 GiB).
    assert r["xen"]["dom0_banks"] == [[0x60000000, 0x7FFFFFFF]]
    assert r["xen"]["grant_table"] == [0x40200000, 0x4023FFFF]
    assert r["xen"]["extended_regions"] == [[0x40400000, 0x5FFFFFFF], [0x80000000, 0xBFFFFFFF]]
    bar = next(p for p in r["pci_resources"] if p["device"] == "0000:00:01.0" and p["final"]
               and p["final"][1] - p["final"][0] + 1 == GIB)
    assert bar["final"][0] == 512 * GIB and bar["firmware"] is None   # dom0 placed it; no firmware did
    assert r["relocations"] == [] and r["balloon"] is None             # neither is a thing on Arm
    # The agent's probe mapped a page dom0 granted itself: 6.12's unpopulated allocator
    # carved one 128 MiB memory section from the first region, at its first 128 MiB
    # boundary, and handed out its top page first (a last-in first-out free list).
    assert r["xen_scratch"] == [[0x48000000, 0x4FFFFFFF]]
    fm = r["foreign_mapping"]
    assert (fm["mapped"], fm["pattern_ok"], fm["address"], fm["page"]) == (True, True, 0x4FFFF000, 4096)
    assert 0x60000000 <= fm["granted"] <= 0x7FFFF000      # the page dom0 granted: its own RAM
    assert {c["name"]: c["passed"] for c in r["checks"]} == {"extended_regions": True, "foreign_mapping": True}
    page = (arm_run.out / "report.html").read_text()
    assert "Xen extended regions" in page and "pcie@10000000" in page and "foreign mapping (probe)" in page
    # Xen's lines agree with the hypervisor node it wrote into dom0's device tree
    assert "hypervisor/reg" in (arm_run.out / "patched" / "xen-devicetree.txt").read_text()


@pytest.mark.nightly
def test_with_ext_regions_off_xen_names_none_and_the_check_says_so(tmp_path):
    run = run_scenario("arm64-ext-regions-off", tmp_path / "run", *RETRY)
    assert run.returncode == 0, run.stderr[-3000:]
    for role in ("unpatched", "patched"):
        r = run.result(role)
        assert r["verdict"] == "pass" and r["xen"]["extended_regions"] == []
        assert {"kind": "xen-dom0", "line": "d0: extended regions support is disabled"} in r["findings"]
        checks = {c["name"]: c for c in r["checks"]}
        assert "Xen: extended regions support is disabled" in checks["extended_regions"]["detail"]
        # What the kernel falls back to: a page of dom0's own RAM, ballooned out to map over
        fm = r["foreign_mapping"]
        assert fm["mapped"] and 0x60000000 <= fm["address"] <= 0x7FFFF000 and r["xen_scratch"] == []
        assert checks["foreign_mapping"]["passed"]
    # 6.12 has the unpopulated allocator and says why it does not use it
    assert "No extended regions are found" in (run.out / "patched" / "dmesg.txt").read_text()


@pytest.mark.nightly
def test_a_kernel_built_for_arm64_boots_as_dom0_and_maps_in_the_extended_regions(tmp_path):
    """`rig kernel build --arch aarch64` (Debian's cross compiler) through the scenario's
    [builds]: Debian's 6.1 source with the rig's arm64 fragment, which turns on the
    unpopulated allocator Debian's arm64 6.1 lacks, so 6.1 too maps inside a region."""
    run = run_scenario("arm64-built", tmp_path / "run", *RETRY)
    assert run.returncode == 0, run.stderr[-3000:]
    r = run.result("built")
    assert r["verdict"] == "pass" and r["kernel_release"].startswith("6.1.")
    assert r["artefacts"]["kernel"]["source"].startswith("built:")
    assert r["xen_scratch"] == [[0x48000000, 0x4FFFFFFF]] and r["foreign_mapping"]["address"] == 0x4FFFF000
