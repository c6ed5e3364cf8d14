"""Run a scenario: boot every kernel on the same emulated host, collect, then judge.

Boots never raise past this module for guest-side failures: a boot that fails
becomes a KernelBoot with an error (verdict "error"), its artefacts kept.
Interrupts (Ctrl-C, SIGTERM) do propagate, after the host was torn down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import collect, console
from . import plan as plan_mod
from .artefacts import Artefact
from .errors import BootError, CollectError, Interrupted, LaunchError
from .host.qemu import QemuHost

log = logging.getLogger(__name__)

POWEROFF_TIMEOUT = 10.0  # a PV dom0 takes longer than this to reach S5; QMP quit is as good


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


Progress = Callable[[str, str], None]  # (role, message)


class LiveHosts:
    """The hosts running now, so an interrupt in the main thread can stop them all."""

    def __init__(self):
        self._lock = threading.Lock()
        self._hosts: set[QemuHost] = set()
        self.cancelled = False

    def add(self, host: QemuHost) -> None:
        with self._lock:
            if self.cancelled:
                raise Interrupted("interrupted before this boot started")
            self._hosts.add(host)

    def discard(self, host: QemuHost) -> None:
        with self._lock:
            self._hosts.discard(host)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            hosts = list(self._hosts)
        for host in hosts:
            host.kill()


def boot(bplan: plan_mod.BootPlan, role: str, kernel: Artefact, run_dir: Path,
         progress: Progress = lambda role, msg: None, timeout_scale: float = 1.0,
         live: LiveHosts | None = None) -> KernelBoot:
    run_dir.mkdir(parents=True, exist_ok=True)
    result = KernelBoot(role, kernel, run_dir, bplan)
    transcript = console.Transcript()
    started = time.monotonic()

    def on_stage(stage: str) -> None:
        result.stage_reached = stage
        progress(role, f"stage {stage} ({time.monotonic() - started:.1f} s)")
        if stage == "xen":
            # Firmware has programmed every BAR and Xen never moves them: this is the baseline.
            result.firmware_pci = host.query_pci()
            _write_json(run_dir / "qmp-pci-firmware.json", result.firmware_pci)

    try:
        with QemuHost(bplan, run_dir) as host, _registered(live, host):
            host.console.logfile_read = transcript
            progress(role, f"QEMU started (pid {host.pid})")
            console.watch(host.console, transcript, timeout_scale=bplan.timeout_scale * timeout_scale,
                          on_stage=on_stage, timings=result.timings,
                          extra_seconds=bplan.firmware.extra_seconds)
            result.collected = collect.gather(host.console, transcript)
            result.final_pci = host.query_pci()
            _write_json(run_dir / "qmp-pci-final.json", result.final_pci)
            host.console.sendline("poweroff")
            if not host.wait_exit(POWEROFF_TIMEOUT):
                log.info("%s: guest did not power off within %.0f s; stopping QEMU", role, POWEROFF_TIMEOUT)
        collect.save(result.collected, run_dir)
    except BootError as exc:
        result.stage_reached, result.failure, result.error = exc.stage, exc.failure, str(exc)
    except (CollectError, LaunchError) as exc:
        result.failure, result.error = type(exc).__name__, str(exc)
    finally:
        result.timings["total"] = round(time.monotonic() - started, 2)
        result.serial = transcript.text
    return result


@contextlib.contextmanager
def _registered(live: LiveHosts | None, host: QemuHost):
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


__all__ = ["KernelBoot", "LiveHosts", "boot"]
