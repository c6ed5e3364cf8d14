"""The pytest plugin booting for real: checks pass, a failed boot is an ERROR, JUnit carries properties."""

import shutil
import xml.etree.ElementTree as ET

import pytest

from rig.artefacts.store import cache_dir
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.boot


@pytest.fixture(autouse=True)
def this_cache(monkeypatch):
    """pytester points HOME at a temporary directory, where the rig would find an empty cache
    and download Xen and both kernels again (most of a minute per test): keep this one."""
    monkeypatch.setenv("RIG_CACHE", str(cache_dir()))


def test_default_ab_and_a_failed_boot_through_pytest(pytester, tmp_path):
    # The default host with its unpatched kernel only: the two-kernel host is the same batch
    # code the CLI's default A/B boots in every .ci/run (test_default_ab.py); one boot less here.
    text = (ROOT / "scenarios" / "bar-clash-64bit.toml").read_text()
    text = text.replace('patched = "debian-bpo-6.12"\n', "").split("[expect.patched]")[0]
    (pytester.path / "bar-clash-64bit.toml").write_text(text)
    shutil.copy(ROOT / "scenarios" / "controls" / "no-iommu.toml", pytester.path)
    junit = tmp_path / "rig.xml"
    result = pytester.runpytest_subprocess("--rig-scenarios", str(pytester.path), "--rig-out", str(tmp_path / "out"),
                                           f"--junitxml={junit}", "--rig-retries", "1", "-p", "no:cacheprovider", timeout=900)
    # bar-clash-64bit: the 5 checks of unpatched pass; no-iommu's relocations and
    # relocation_cause items are ERRORs (the boot failed: nothing judged).
    result.assert_outcomes(passed=5, errors=2)
    result.stdout.fnmatch_lines(["*ERROR at setup of no-iommu[[]seabios-512M-unpatched[]]::relocations*",
                                 "*xen-panic at stage xen*"])
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    case = cases["bar-clash-64bit[seabios-512M-unpatched]::relocations"]
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["kernel_release"].startswith("6.1.") and props["verdict"] == "pass"
    assert float(props["time_total"]) > 0 and props["run_dir"]


def test_xdist_boots_each_host_once_in_its_own_directory(pytester, tmp_path):
    for name in ("first", "second"):
        text = (ROOT / "scenarios" / "controls" / "no-iommu.toml").read_text()
        (pytester.path / f"{name}.toml").write_text(text.replace('name = "no-iommu"', f'name = "{name}"'))
    out = tmp_path / "out"
    result = pytester.runpytest_subprocess("--rig-scenarios", str(pytester.path), "--rig-out", str(out),
                                           "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(errors=4)   # two hosts x (relocations, relocation_cause)
    logs = sorted(out.rglob("serial.log"))
    assert len(logs) == 2 and all(log.parts[len(out.parts)].startswith("gw") for log in logs)


def test_rig_results_fixture_for_own_tests(pytester):
    scenario = ROOT / "scenarios" / "controls" / "no-iommu.toml"
    pytester.makepyfile(f"""
def test_mine(rig_results):
    results = rig_results({str(scenario)!r})
    (r,) = results.values()
    assert (r["verdict"], r["stage_reached"], r["failure"]) == ("error", "xen", "xen-panic")
""")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300).assert_outcomes(passed=1)
