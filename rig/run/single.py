"""Run a scenario: boot every kernel on the same emulated host, collect, then judge.

Boots never raise past this module for guest-side failures: a boot that fails
becomes a KernelBoot with an error (verdict "error"), its artefacts kept.
Interrupts (Ctrl-C, SIGTERM) do propagate, after the host was torn down.
"""

from __future__ import annotations

import contextlib
import json
import re
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pexpect

from rig.guest import collect, console, protocol
from rig.guest import ssh as ssh_mod
from rig.spec import plan as plan_mod
from rig.artefacts.store import Artefact
from rig.errors import BootError, CollectError, Interrupted, LaunchError, MonitorError
from rig.host import Host, open_host

log = logging.getLogger(__name__)

QMP_ANSWER_LIMIT = 30.0   # seconds for QEMU's monitor to answer query-pci, before --timeout-scale


COLLECT_VIA = ("auto", "serial", "both")   # SSH with the console as fallback; the console only; both, compared


def qmp_limit(scale: float) -> float:
    """Seconds a query-pci may take at this timeout scale. QEMU's main loop answers it in
    milliseconds; the limit follows the stage limits' scale but never drops under 5 s."""
    return max(5.0, QMP_ANSWER_LIMIT * scale)


@dataclass
class KernelBoot:
    """What one boot produced: raw material for parsing and judging."""

    role: str
    kernel: Artefact
    run_dir: Path
    plan: plan_mod.BootPlan
    stage_reached: str = "firmware"
    error: str | None = None
    failure: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    collected: collect.Collected | None = None
    firmware_pci: list | None = None
    final_pci: list | None = None
    serial: str = ""
    failed_attempts: list[dict] = field(default_factory=list)  # earlier boots of this job that erred
    collected_via: str | None = None    # "ssh" or "serial"
    ssh: dict = field(default_factory=dict)  # offered, port, host_key, error, extras, matches_serial
    # Seconds of each step of the userspace stage: the agent's (from its marks) and the rig's.
    steps: dict[str, dict[str, float]] = field(default_factory=lambda: {"agent": {}, "rig": {}})


Progress = Callable[[str, str], None]  # (role, message)


class LiveHosts:
    """The hosts running now, so an interrupt in the main thread can stop them all."""

    def __init__(self):
        self._lock = threading.Lock()
        self._hosts: set[Host] = set()
        self.cancelled = False

    def add(self, host: Host) -> None:
        with self._lock:
            if self.cancelled:
                raise Interrupted("interrupted before this boot started")
            self._hosts.add(host)

    def discard(self, host: Host) -> None:
        with self._lock:
            self._hosts.discard(host)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            hosts = list(self._hosts)
        for host in hosts:
            host.kill()


class KeptHosts(contextlib.ExitStack):
    """Hosts left running after collection (rig run --keep); closing this stops them."""

    def __init__(self):
        super().__init__()
        self.hosts: list[Host] = []

    def running(self) -> list[Host]:
        return [h for h in self.hosts if not h.wait_exit(0)]


@dataclass
class HowToBoot:
    """How a boot runs, apart from what it boots (the plan)."""

    backend: str = "qemu"                  # "qemu" | "libvirt"
    timeout_scale: float = 1.0             # times the plan's own scale (the accelerator's)
    collect_via: str = "auto"              # COLLECT_VIA
    progress: Progress = lambda role, msg: None
    live: LiveHosts | None = None          # registered here while it runs (Ctrl-C stops them all)
    keep: KeptHosts | None = None          # leave the host running in here after collection
    after: Callable[[Host, KernelBoot], None] | None = None   # run on the live host instead of stopping it


def boot(bplan: plan_mod.BootPlan, role: str, kernel: Artefact, run_dir: Path,
         how: HowToBoot = HowToBoot()) -> KernelBoot:
    """Boot, collect (SSH when dom0 offers it, else or also the serial console), read QEMU's
    final PCI state, then stop the host, or call `after` (a shell), or leave the host running
    in `keep` (closed by the caller) once everything is collected. Never raises for what the
    guest or the host did: a failure is the KernelBoot's error, its artefacts kept."""
    b = _Boot(bplan, role, kernel, run_dir, how)
    try:
        b.launch_and_watch()
        b.collect()
        b.finish()
    except Interrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - mapped to a failure class, never a verdict
        b.failed(exc)
    finally:
        b.close()
    return b.result


class _Boot:
    """One boot's state through its phases: launch and watch, collect, finish."""

    def __init__(self, bplan: plan_mod.BootPlan, role: str, kernel: Artefact, run_dir: Path, how: HowToBoot):
        self.plan, self.role, self.run_dir, self.how = bplan, role, run_dir, how
        self.result = KernelBoot(role, kernel, run_dir, bplan)
        self.transcript = console.Transcript()
        self.started = time.monotonic()
        self.entered: dict[str, float] = {}
        self.scale = bplan.timeout_scale * how.timeout_scale
        self.monitor_limit = qmp_limit(self.scale)
        self.stack = contextlib.ExitStack()
        self.host: Host | None = None
        self.steps = _Stopwatch(self.result.steps["rig"])
        self.watch = dict(timeout_scale=self.scale, on_stage=self._on_stage, timings=self.result.timings,
                          extra_seconds=bplan.firmware.extra_seconds)

    def _on_stage(self, stage: str) -> None:
        self.entered[stage] = time.monotonic()
        self.result.stage_reached = stage
        self.how.progress(self.role, f"stage {stage} ({time.monotonic() - self.started:.1f} s)")
        if stage == "xen" and self.plan.firmware.places_bars:
            # Firmware has programmed every BAR and Xen never moves them: this is the baseline.
            # (No firmware, no baseline: Arm's guest-loader leaves every BAR to dom0.)
            self.result.firmware_pci = self.host.query_pci(self.monitor_limit)
            _write_json(self.run_dir / "qmp-pci-firmware.json", self.result.firmware_pci)

    def launch_and_watch(self) -> None:
        """Start the host and follow its console to the agent's READY."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.host = self.stack.enter_context(open_host(self.how.backend, self.plan, self.run_dir))
        self.stack.enter_context(_registered(self.how.live, self.host))
        self.host.console.logfile_read = self.transcript
        self.how.progress(self.role, f"{self.how.backend} host started ({self.host.pid})")
        console.watch(self.host.console, self.transcript, until="userspace", **self.watch)
        ready_limit = (console.STAGE_TIMEOUTS["collected"]
                       + self.plan.firmware.extra_seconds.get("collected", 0.0)) * self.scale
        console.expect_marker(self.host.console, self.transcript, console.READY_MARKER, "userspace",
                              "the agent's READY", ready_limit)
        self.steps = _Stopwatch(self.result.steps["rig"])

    def collect(self) -> None:
        """The sections over SSH (else, or also, the serial console), then QEMU's final PCI state."""
        host, result, how = self.host, self.result, self.how
        via_ssh = None
        if how.collect_via != "serial" and self.plan.network != "none":
            via_ssh = _collect_over_ssh(host, self.transcript, result, self.run_dir, self.scale, self.steps)
            if via_ssh is None:
                how.progress(self.role, f"ssh: {result.ssh['error']}; collecting over the serial console")
        since = dict(start="userspace", since=self.entered["userspace"], **self.watch)
        if via_ssh is None or how.collect_via == "both":
            host.console.sendline(protocol.command(protocol.COLLECT))
            console.watch(host.console, self.transcript, **since)
            serial = collect.gather(host.console, self.transcript)
            self.steps.lap("serial")
            if via_ssh is not None:
                collect.save(serial, self.run_dir / "via-serial")
                result.ssh["matches_serial"] = serial.sections == via_ssh.sections
        else:
            host.console.sendline(protocol.command(protocol.COLLECTED, protocol.VIA_SSH))
            console.watch(host.console, self.transcript, **since)
        result.collected, result.collected_via = (via_ssh, protocol.VIA_SSH) if via_ssh else (serial, "serial")
        collect.save(result.collected, self.run_dir)
        result.final_pci = host.query_pci(self.monitor_limit)
        _write_json(self.run_dir / "qmp-pci-final.json", result.final_pci)
        self.steps.lap("final-pci")

    def finish(self) -> None:
        """Keep the host for the user, hand it to `after`, or stop it."""
        if self.how.keep is not None:
            self.host.console.sendline(protocol.command(protocol.KEEP))
            console.expect_marker(self.host.console, self.transcript, re.escape(protocol.OK), "collected",
                                  "the agent's OK", protocol.ANSWER_SECONDS * self.scale)
            self.how.keep.push(self.stack.pop_all())  # the caller closes the host when the user is done
            self.how.keep.hosts.append(self.host)
        elif self.how.after is not None:
            self.how.after(self.host, self.result)
        else:
            # Nothing is left to read: the host is stopped (QMP quit), which takes milliseconds
            # where dom0's own power-off took 0.2 s, or 10 s and more for a PV dom0.
            self.stack.close()
            self.steps.lap("stop")

    def failed(self, exc: Exception) -> None:
        """The failure class and error of `exc` (called in its except block: tracebacks are saved)."""
        result, host, stage = self.result, self.host, self.result.stage_reached
        if isinstance(exc, BootError):
            result.stage_reached, result.failure, result.error = exc.stage, exc.failure, str(exc)
        elif isinstance(exc, CollectError):
            result.failure, result.error = "collect", str(exc)
        elif isinstance(exc, LaunchError):
            result.failure, result.error = "launch", str(exc)
        elif isinstance(exc, MonitorError):
            # A monitor that went away with its QEMU is QEMU's exit, the cause; one that fails
            # while QEMU runs is the monitor's own failure.
            if host is not None and host.wait_exit(1.0):
                result.failure, result.error = "qemu-exit", f"qemu-exit at stage {stage}: QEMU exited ({exc})"
            else:
                result.failure, result.error = "qmp", f"qmp at stage {stage}: {exc}"
        elif isinstance(exc, pexpect.TIMEOUT):
            # A wait outside the stage machine (an agent's answer, a resend) ran out.
            result.failure, result.error = "hang", f"hang at stage {stage}: the guest stopped answering"
            save_traceback(self.run_dir, result)
        elif isinstance(exc, pexpect.EOF):
            result.failure, result.error = "qemu-exit", f"qemu-exit at stage {stage}: the console closed"
            save_traceback(self.run_dir, result)
        elif isinstance(exc, OSError) and host is not None and host.wait_exit(2.0):
            # Writing to the console of a QEMU that died: its exit is the cause.
            result.failure = "qemu-exit"
            result.error = f"qemu-exit at stage {stage}: QEMU exited ({type(exc).__name__}: {exc})"
            save_traceback(self.run_dir, result)
        else:  # a bug or the machine (disk full): an error, never a verdict
            result.failure = "internal"
            result.error = f"internal error at stage {stage}: {type(exc).__name__}: {exc}"
            save_traceback(self.run_dir, result)

    def close(self) -> None:
        self.stack.close()
        self.result.timings["total"] = round(time.monotonic() - self.started, 2)
        self.result.serial = self.transcript.text
        self.result.steps["agent"] = collect.agent_steps(self.result.serial)


class _Stopwatch:
    """Laps into a dict: lap(name) records the seconds since the previous lap (or start)."""

    def __init__(self, laps: dict[str, float]):
        self.laps = laps
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self._last, 2)
        self._last = now


def save_traceback(run_dir: Path, result: KernelBoot) -> None:
    """The current exception's traceback as <job>/traceback.txt, named in the error.
    On a full or unwritable disk the error says so instead."""
    text = traceback.format_exc()
    try:
        path = run_dir / "traceback.txt"
        path.write_text(text)
        result.error += f" (traceback: {path})"
    except OSError as exc:
        result.error += f" (traceback not saved: {exc.strerror})"


def _collect_over_ssh(host: Host, transcript: console.Transcript, result: KernelBoot, run_dir: Path,
                      scale: float, steps: _Stopwatch) -> collect.Collected | None:
    """The sections (and the extras) over SSH, or None with result.ssh["error"] saying why."""
    offer, why = ssh_mod.parse_offer(transcript.text)
    result.ssh = {"offered": offer is not None, "port": host.ssh_port,
                  "host_key": offer.fingerprint if offer else None, "error": None}
    try:
        if offer is None:
            raise ssh_mod.SshError(why)
        files = ssh_mod.SshFiles(run_dir / "ssh")
        key = files.new_client_key()
        # The console carries the client key in: it is the wire the rig already trusts.
        host.console.sendline(protocol.command(protocol.AUTHORIZE, key.get_base64()))
        console.expect_marker(host.console, transcript, re.escape(protocol.OK), "userspace", "the agent's OK",
                              protocol.ANSWER_SECONDS * scale)
        steps.lap("authorize")
        files.pin(offer, host.ssh_port)
        client = ssh_mod.connect(host.ssh_port, key, files.known_hosts, timeout=30 * scale)
        steps.lap("ssh-connect")
        try:
            sections, extras = ssh_mod.collect(client, protocol.SECTIONS, steps.lap)
        finally:
            client.close()
    except ssh_mod.SshError as exc:
        result.ssh["error"] = str(exc)
        return None
    for name, filename in ssh_mod.EXTRAS.items():
        if extras.get(name):
            (run_dir / filename).write_text(extras[name])
    result.ssh["extras"] = sorted(ssh_mod.EXTRAS[n] for n, text in extras.items() if text)
    return collect.check_whole(sections, protocol.SECTIONS)


@contextlib.contextmanager
def _registered(live: LiveHosts | None, host: Host):
    if live is None:
        yield
        return
    live.add(host)
    try:
        yield
    finally:
        live.discard(host)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")


__all__ = ["KeptHosts", "KernelBoot", "LiveHosts", "boot"]
