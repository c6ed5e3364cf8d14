"""Stage detection and failure classification, on real serial captures."""


import pexpect
import pytest

from rig.guest import console
from rig.errors import BootError
from tests.conftest import CAPTURES, RUNS, read_console


@pytest.mark.parametrize("name, stage, failure, words", [
    ("fail-no-iommu-xen-panic", "xen", "xen-panic", "iommu must be enabled for PVH hardware domain"),
    ("fail-rdtscp-dom0-crash", "dom0", "dom0-crash", "SVM Insn len emulation failed"),
    ("fail-pku-init-bad-frame", "dom0", "kernel-panic", "bad frame in rt_sigreturn"),
])
def test_classify_failures(capture, name, stage, failure, words):
    outcome = console.classify(capture(name))
    assert (outcome.stage_reached, outcome.failure) == (stage, failure)
    assert words in outcome.detail


@pytest.mark.parametrize("name", ["unpatched-6.1-testdev1G-relocated", "patched-6.12-testdev1G-clean",
                                  "fail-awbits39-e1000e-probe", "ovmf-xenefi-6.1-testdev1G-noclash"])
def test_good_boots_have_no_failure(capture, name):
    # These captures predate the agent banner, so they stop at dom0 by the rig's markers.
    assert console.classify(capture(name)) == console.Outcome("dom0")


def test_a_dom0_that_halts_is_an_error_at_once_not_a_hang():
    """Xen 4.17 under QEMU 10.0 (real capture): dom0 halts before it prints a line."""
    outcome = console.classify(read_console(RUNS / "qemu10-xen417-halt" / "serial.log"))
    assert (outcome.stage_reached, outcome.failure) == ("xen", "dom0-halt")
    assert outcome.detail.startswith("Hardware Dom0 halted: halting machine (after: Freed 656kB init memory)")


def test_rig_run_reaches_collected():
    text = read_console(RUNS / "bar-clash-64bit" / "patched" / "serial.log")
    assert console.classify(text) == console.Outcome("collected")


def test_stage_order_matters():
    # An agent banner without a Linux banner before it does not count as userspace.
    assert console.stage_reached("(XEN) hi\n@@RIG-AGENT 1 x\nLinux version 6.1\n") == "dom0"


def _feed(path, extra="", timeout_scale=1.0):
    """Replay a capture through a real pexpect child, as QEMU's socket would deliver it."""
    cmd = f"cat {path}; {extra}"
    child = pexpect.spawn("/bin/sh", ["-c", cmd], encoding="utf-8", codec_errors="replace")
    transcript = console.Transcript()
    child.logfile_read = transcript
    return child, transcript


def test_watch_reports_stages_in_order():
    child, transcript = _feed(RUNS / "bar-clash-64bit" / "unpatched" / "serial.log")
    seen = []
    timings = console.watch(child, transcript, on_stage=seen.append)
    assert seen == ["xen", "dom0", "userspace", "collected"]
    assert set(timings) == {"firmware", "xen", "dom0", "userspace"}
    child.close()


def test_watch_raises_xen_panic_with_message():
    child, transcript = _feed(CAPTURES / "fail-no-iommu-xen-panic.serial.log", "sleep 30")
    with pytest.raises(BootError) as info:
        console.watch(child, transcript)
    assert (info.value.failure, info.value.stage) == ("xen-panic", "xen")
    assert "iommu must be enabled" in info.value.detail
    assert "Panic on CPU 0" in info.value.console_tail
    child.close(force=True)


def test_watch_hang_names_the_stage():
    child, transcript = _feed(CAPTURES / "unpatched-6.1-default-q35.serial.log", "sleep 30")
    with pytest.raises(BootError) as info:
        console.watch(child, transcript, timeout_scale=0.01)  # 2.4 s for userspace
    assert (info.value.failure, info.value.stage) == ("hang", "dom0")
    assert "userspace" in info.value.detail
    child.close(force=True)


def test_watch_qemu_exit():
    child, transcript = _feed(CAPTURES / "unpatched-6.1-default-q35.serial.log")
    with pytest.raises(BootError) as info:
        console.watch(child, transcript)
    assert (info.value.failure, info.value.stage) == ("qemu-exit", "dom0")


def test_oops_that_kills_dom0_is_a_kernel_panic_at_dom0():
    # A real MTTCG flake: "Oops: int3" in sched_clock_cpu, then "Fatal exception in interrupt".
    text = read_console(RUNS / "mttcg-int3-oops" / "patched" / "serial.log")
    outcome = console.classify(text)
    assert (outcome.stage_reached, outcome.failure) == ("dom0", "kernel-panic")
    assert "Fatal exception in interrupt" in outcome.detail


def test_a_dom0_triple_fault_is_named_with_the_stage_it_hit():
    """Seen once in ~6 boots of the built 6.1 + 0001 kernel: Xen reports the triple fault
    and resets; QEMU (-no-reboot) exits. That is a dom0 failure at userspace, not a QEMU exit."""
    text = read_console(RUNS / "triple-fault-balloon-only" / "serial.log")
    outcome = console.classify(text)
    assert (outcome.stage_reached, outcome.failure) == ("userspace", "dom0-triple-fault")
    assert "d0v0 Triple fault" in outcome.detail


@pytest.mark.parametrize("run, stage", [("triple-fault-before-agent", "dom0"),
                                        ("triple-fault-debian-6.1", "userspace")])
def test_triple_faults_of_debian_61_are_named_with_their_stage(run, stage):
    outcome = console.classify(read_console(RUNS / run / "serial.log"))
    assert (outcome.stage_reached, outcome.failure) == (stage, "dom0-triple-fault")


def test_an_agent_the_kernel_cannot_execute_is_init_exec_at_dom0_not_a_hang():
    # A real console cut where the agent would start, then the line init/main.c prints when
    # run_init_process("/init") fails (-8: ENOEXEC, a kernel without script support). Linux
    # would go on to the archive's /sbin/init (busybox's) and sit there.
    text = read_console(RUNS / "agent-steps" / "serial.log")
    cut = text.index("Run /init as init process") + len("Run /init as init process\n")
    outcome = console.classify(text[:cut] + "[   11.2] Failed to execute /init (error -8)\n"
                                            "[   11.3] Run /sbin/init as init process\n")
    assert (outcome.stage_reached, outcome.failure) == ("dom0", "init-exec")
    assert "Failed to execute /init (error -8)" in outcome.detail
