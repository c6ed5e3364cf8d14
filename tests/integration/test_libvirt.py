"""The libvirt backend against a real libvirtd (qemu:///system): parity with the QEMU
backend, and no domain left behind on any exit path."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import RETRY, SCENARIOS, matrix_result, run_scenario, spawn_rig

pytestmark = pytest.mark.boot


def _rig_domains() -> list[str]:
    out = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"], capture_output=True,
                         text=True, check=True).stdout
    return [n for n in out.split() if n.startswith("rig-")]


def _bars(result: dict, which: str) -> dict:
    return {(r["device"], r["resource"]): r[which] for r in result["pci_resources"]}


@pytest.fixture(scope="module")
def bridge_libvirt(tmp_path_factory):
    return run_scenario("bridge-pref64-clash", tmp_path_factory.mktemp("bl") / "run", "--backend", "libvirt", *RETRY)


@pytest.fixture(scope="module")
def default_libvirt(tmp_path_factory):
    return run_scenario("bar-clash-64bit", tmp_path_factory.mktemp("dl") / "run", "--backend", "libvirt", *RETRY)


# The bridge pair boots a second A/B under libvirt for topology coverage the default pair's
# argv passthrough already implies: it runs nightly (ci/nightly-faults.sh runs -m nightly).
@pytest.mark.parametrize("pair", ["default", pytest.param("bridge", marks=pytest.mark.nightly)])
@pytest.mark.parametrize("role", ["unpatched", "patched"])
def test_both_backends_give_the_same_verdict_and_bars(request, pair, role):
    if pair == "default":
        a = request.getfixturevalue("default_ab").result(role)
    else:   # the library tests' matrix booted this host through QEMU
        a = matrix_result(request.getfixturevalue("library"), "bridge-pref64-clash", "seabios-512M", role)
    libvirt = request.getfixturevalue(f"{pair}_libvirt")
    assert libvirt.returncode == 0, libvirt.stderr[-2000:]
    b = libvirt.result(role)
    assert (a["verdict"], b["verdict"]) == ("pass", "pass")
    assert _bars(b, "firmware") == _bars(a, "firmware")
    assert _bars(b, "final") == _bars(a, "final")
    assert [(m["device"], m["resource"], m["final"]) for m in b["relocations"]] == \
        [(m["device"], m["resource"], m["final"]) for m in a["relocations"]]


def test_libvirt_ran_the_domain_it_was_given(default_libvirt):
    job = default_libvirt.out / "unpatched"
    argv = (job / "qemu-argv.txt").read_text()
    assert "guest=rig-bar-clash-64bit-unpatched-" in argv        # libvirt's own QEMU process
    assert '"driver":"intel-iommu"' in argv and '"aw-bits":48' in argv   # libvirt writes JSON -device
    assert "pci-testdev,id=pcitestdev1,bus=pcie.0,addr=0x1,membar=1G" in argv
    assert "<qemu:commandline>" in (job / "domain.xml").read_text()
    assert json.loads((job / "result.json").read_text())["collected_via"] == "ssh"
    assert _rig_domains() == []


# The SIGKILL case boots twice on the libvirt worker, which is .ci/run's longest chain of
# tests (--dist loadfile): it runs nightly (ci/nightly-faults.sh), SIGINT on every push.
@pytest.mark.parametrize("how", ["sigint", pytest.param("sigkill-then-next-run", marks=pytest.mark.nightly)])
def test_no_domain_is_left_behind(tmp_path, how):
    out = tmp_path / "run"
    proc = spawn_rig("run", str(SCENARIOS / "bar-clash-64bit.toml"), "--only", "unpatched", "--backend", "libvirt",
                     "--out", str(out), start_new_session=True)
    try:
        for line in proc.stderr:
            if "stage dom0" in line:
                break
        assert len(_rig_domains()) == 1
        if how == "sigint":
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 130
            assert _rig_domains() == []
            return
        proc.send_signal(signal.SIGKILL)   # no cleanup at all: the domain outlives the rig
        proc.wait(timeout=30)
        assert len(_rig_domains()) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The next libvirt run finds the dead owner's domain and destroys it before booting.
    again = spawn_rig("run", str(SCENARIOS / "bar-clash-64bit.toml"), "--only", "unpatched", "--backend", "libvirt",
                      "--out", str(tmp_path / "again"), start_new_session=True)
    try:
        for line in again.stderr:
            if "stage xen" in line:
                break
        time.sleep(1)
        assert len(_rig_domains()) == 1   # only the new run's own domain
    finally:
        again.send_signal(signal.SIGINT)
        again.wait(timeout=60)
    assert _rig_domains() == []
    assert not list(Path("/var/tmp").glob(f"rig-libvirt-{proc.pid}-*"))   # its boot files are gone too
