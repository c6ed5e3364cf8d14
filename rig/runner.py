"""Run a scenario: boot every kernel on the same emulated host, collect, then judge.

Boots never raise past this module for guest-side failures: a boot that fails
becomes a KernelBoot with an error (verdict "error"), its artefacts kept.
Interrupts (Ctrl-C, SIGTERM) do propagate, after the host was torn down.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import collect, console, plan as plan_mod
from .artefacts import Artefact
from .errors import BootError, CollectError, LaunchError, RigError
from .host.qemu import QemuHost
from .scenario import Scenario

log = logging.getLogger(__name__)

POWEROFF_TIMEOUT = 30.0


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


Progress = Callable[[str, str], None]  # (role, message)


def boot(bplan: plan_mod.BootPlan, role: str, kernel: Artefact, run_dir: Path,
         progress: Progress = lambda role, msg: None, timeout_scale: float = 1.0) -> KernelBoot:
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
        with QemuHost(bplan, run_dir) as host:
            host.console.logfile_read = transcript
            progress(role, f"QEMU started (pid {host.pid})")
            console.watch(host.console, transcript, timeout_scale=bplan.timeout_scale * timeout_scale,
                          on_stage=on_stage, timings=result.timings)
            result.final_pci = host.query_pci()
            _write_json(run_dir / "qmp-pci-final.json", result.final_pci)
            host.console.sendline("poweroff")
            if not host.wait_exit(POWEROFF_TIMEOUT):
                log.warning("%s: guest did not power off within %.0f s; stopping QEMU", role, POWEROFF_TIMEOUT)
        result.collected = collect.sections(transcript.text)
        collect.save(result.collected, run_dir)
    except BootError as exc:
        result.stage_reached, result.failure, result.error = exc.stage, exc.failure, str(exc)
    except (CollectError, LaunchError) as exc:
        result.failure, result.error = type(exc).__name__, str(exc)
    finally:
        result.timings["total"] = round(time.monotonic() - started, 2)
        result.serial = transcript.text
    return result


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")


def boot_all(scenario: Scenario, out_dir: Path, *, accel: str, xen: Artefact, kernels: dict[str, Artefact],
             initramfs: Artefact, progress: Progress = lambda role, msg: None,
             timeout_scale: float = 1.0) -> dict[str, KernelBoot]:
    """Boot each kernel role in scenario order, one after another.

    Sequential on purpose: two TCG boots on two cores take as long together as one
    after the other, and the unpatched run's memory map is the reference for the rest.
    """
    boots = {}
    for role, name in scenario.kernels.items():
        bplan = plan_mod.make(scenario, role, accel, xen=xen.path, kernel=kernels[role].path,
                              initrd=initramfs.path)
        progress(role, f"booting {name}")
        boots[role] = boot(bplan, role, kernels[role], out_dir / role, progress, timeout_scale)
        b = boots[role]
        progress(role, f"error: {b.error}" if b.error else f"collected in {b.timings['total']:.1f} s")
    return boots


__all__ = ["KernelBoot", "boot", "boot_all", "RigError"]
