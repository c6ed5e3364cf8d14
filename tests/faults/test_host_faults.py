"""QEMU killed or frozen in every stage, and its monitor failing, in real runs."""

import pytest

from tests.faults.conftest import assert_error_kept, qemu_fault_env, run_faulted

pytestmark = [pytest.mark.boot, pytest.mark.faults]

# (stage the rig must report, when the fault strikes). The firmware stage lasts a third of
# a second: the strike comes as QEMU answers the rig's `cont` (the CPUs run, nothing is
# printed yet). In the xen stage it comes as QEMU answers the firmware snapshot's
# query-pci (after it, only console lines). "@@RIG-OK" acknowledges the rig's SSH key:
# that strike lands during the SSH collection.
STRIKE_POINTS = {
    "firmware": ("firmware", "qmp:{sig}:cont"),
    "xen": ("xen", "qmp:{sig}:query-pci"),
    "dom0": ("dom0", "signal:{sig}:Linux version"),
    "userspace": ("userspace", "signal:{sig}:@@RIG-AGENT"),
    "collection": ("userspace", "signal:{sig}:@@RIG-OK"),
}


def struck(run, what: str) -> bool:
    """The wrapper's own record that it struck (so a real crash cannot pass for the fault)."""
    return f"qemu-fault: {what}" in (run.out / "unpatched" / "qemu.log").read_text(errors="replace")


@pytest.mark.parametrize("point", list(STRIKE_POINTS))
def test_qemu_killed(tmp_path, point):
    stage, fault = STRIKE_POINTS[point]
    run = run_faulted(tmp_path, env=qemu_fault_env(tmp_path, fault.format(sig="KILL")))
    assert struck(run, "sent SIGKILL"), run.said
    r = assert_error_kept(run, stage, "qemu-exit")
    assert r["error"].startswith(f"qemu-exit at stage {stage}")
    if point == "collection":  # the SSH collection was under way and failed first
        assert r["ssh"]["offered"] and r["ssh"]["error"], r["ssh"]


@pytest.mark.nightly
@pytest.mark.parametrize("point", list(STRIKE_POINTS))
def test_qemu_frozen_hits_the_stage_limit(tmp_path, point):
    # A frozen QEMU answers nothing, not even QMP's quit: the stage limit fires and the
    # teardown escalates to SIGKILL (which a stopped process still takes). Half the limits:
    # still twice what a lone boot needs, so only the freeze can make the stage run out.
    stage, fault = STRIKE_POINTS[point]
    run = run_faulted(tmp_path, "--timeout-scale", "0.5", env=qemu_fault_env(tmp_path, fault.format(sig="STOP")))
    assert struck(run, "sent SIGSTOP"), run.said
    r = assert_error_kept(run, stage, "hang")
    assert r["error"].startswith(f"hang at stage {stage}")


def test_qmp_closing_during_query_pci(tmp_path):
    run = run_faulted(tmp_path, env=qemu_fault_env(tmp_path, "qmp:close:query-pci"))
    assert struck(run, "closed QMP at 'query-pci'")
    r = assert_error_kept(run, "xen", "qmp")
    assert "QMP query-pci: the connection closed" in r["error"]


def test_qmp_not_answering_query_pci(tmp_path):
    # The monitor's limit follows --timeout-scale (30 s x 0.2 under TCG; KVM would halve it
    # again): the stall is still a thousand times what query-pci takes, and the test does not
    # wait out 30 s.
    run = run_faulted(tmp_path, "--accel", "tcg", "--timeout-scale", "0.2",
                      env=qemu_fault_env(tmp_path, "qmp:stall:query-pci"))
    assert struck(run, "stalled QMP at 'query-pci'")
    r = assert_error_kept(run, "xen", "qmp")
    assert "QMP query-pci: no answer within 6 s" in r["error"]


def test_console_closing_mid_section(tmp_path):
    # The serial collection is under way (iomem is being printed) when the console goes.
    run = run_faulted(tmp_path, "--collect", "serial",
                      env=qemu_fault_env(tmp_path, "signal:KILL:@@RIG-BEGIN iomem"))
    assert struck(run, "sent SIGKILL at serial line '@@RIG-BEGIN iomem'")
    r = assert_error_kept(run, "userspace", "qemu-exit")
    assert not (run.out / "unpatched" / "iomem.txt").exists()   # half a section is never kept as evidence
    assert r["error"].startswith("qemu-exit at stage userspace")
