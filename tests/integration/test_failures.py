"""Boots that fail must end as errors (exit 3) with the stage, never as a pass or a fail,
and must leave no QEMU behind, whether they fail, hang or are interrupted."""

import signal

import pytest

from tests.integration.conftest import (
    SCENARIOS,
    processes_mentioning,
    run_scenario,
    spawn_rig,
)

pytestmark = pytest.mark.boot


def test_no_iommu_is_an_error_at_stage_xen(tmp_path):
    run = run_scenario("controls/no-iommu", tmp_path / "run")
    assert run.returncode == 3, run.stderr
    r = run.result("unpatched")
    assert (r["verdict"], r["stage_reached"], r["failure"]) == ("error", "xen", "xen-panic")
    assert "iommu must be enabled for PVH hardware domain" in r["error"]
    assert r["checks"] == []  # nothing was judged
    assert "Panic on CPU" in (tmp_path / "run" / "unpatched" / "serial.log").read_text()
    assert processes_mentioning(str(tmp_path)) == []


def test_hang_is_an_error_naming_the_stage(tmp_path):
    run = run_scenario("controls/hang-no-agent", tmp_path / "run", "--timeout-scale", "0.1")
    assert run.returncode == 3, run.stderr
    r = run.result("unpatched")
    assert (r["verdict"], r["failure"], r["stage_reached"]) == ("error", "hang", "dom0")
    assert "userspace" in r["error"]
    assert (tmp_path / "run" / "unpatched" / "serial.log").stat().st_size > 0
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_no_qemu(tmp_path, sig):
    out = tmp_path / "run"
    proc = spawn_rig("run", str(SCENARIOS / "bar-clash-64bit.toml"), "--out", str(out))
    try:
        for line in proc.stderr:
            if "stage dom0" in line:
                booting = line.split("]")[0].strip("[ ")   # "[unpatched] stage dom0 (6.0 s)"
                break
        qemu = processes_mentioning(str(out))
        assert qemu, "QEMU should be running while dom0 boots"
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
        proc.wait()
    assert processes_mentioning(str(out)) == []
    # Artefacts kept: the job that was booting (the other may still have been waiting for a core).
    assert (out / booting / "serial.log").stat().st_size > 0


def test_retries_keep_every_failed_attempt(tmp_path):
    run = run_scenario("controls/no-iommu", tmp_path / "run", "--retries", "1")
    assert run.returncode == 3
    r = run.result("unpatched")
    assert r["verdict"] == "error"                       # still an error: never a pass
    (attempt,) = r["failed_attempts"]
    assert attempt["failure"] == "xen-panic" and (tmp_path / "run" / "unpatched.failed-1" / "serial.log").exists()
    assert "after 1 failed boot(s)" in run.stdout
