"""One `rig run`: resolve artefacts, boot every kernel, judge, write results.

Usable without the CLI (and, later, from the pytest plugin).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import initramfs, platform, report, runner
from .artefacts import DEBIAN_KERNELS, Artefact, Cache
from .checks import verdict as verdict_mod
from .errors import CollectError, InputError, ScenarioError
from .host import qemu
from .scenario import Scenario

UNPATCHED_ROLE = "unpatched"


@dataclass
class Options:
    out_dir: Path | None = None
    accel: str = "auto"
    user_kernels: dict[str, Path] = field(default_factory=dict)
    user_modules: dict[str, Path] = field(default_factory=dict)
    user_xen: Path | None = None
    fetch: bool = True
    roles: list[str] | None = None   # run only these kernel roles
    timeout_scale: float = 1.0       # multiplies every stage timeout (slow or loaded machines)


def known_kernels(options: Options) -> set[str]:
    return set(DEBIAN_KERNELS) | set(options.user_kernels)


def new_out_dir(scenario: Scenario, base: Path = Path("runs")) -> Path:
    """runs/<timestamp>-<name>[-N]: created atomically, so parallel runs never share it."""
    base.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario.name}"
    for n in range(1, 1000):
        path = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise InputError(f"{base}: could not create a fresh run directory for {stem}")


def preflight(scenario: Scenario, source: Path | str) -> None:
    """Input errors that only the host can detect, reported before anything boots."""
    arch = platform.lookup(platform.ARCHES, scenario.host.arch, "architecture")
    missing = qemu.unknown_devices(arch.qemu_binary, [d.device for d in scenario.host.pci])
    if missing:
        i = [d.device for d in scenario.host.pci].index(missing[0])
        raise ScenarioError(source, f"host.pci.{i}.device", f"{arch.qemu_binary} has no device {missing[0]!r}")


def resolve(scenario: Scenario, options: Options, cache: Cache) -> tuple[Artefact, dict[str, Artefact], Artefact]:
    """Every file the boots need, fetched if allowed, each verified against its sha256."""
    arch = platform.lookup(platform.ARCHES, scenario.host.arch, "architecture")
    xen = cache.user_xen(options.user_xen) if options.user_xen else cache.xen(arch, fetch=options.fetch)
    kernels = {}
    for role, name in scenario.kernels.items():
        if name in options.user_kernels:
            kernels[role] = cache.user_kernel(name, options.user_kernels[name])
        else:
            kernels[role] = cache.kernel(name, fetch=options.fetch)
    return xen, kernels, initramfs.build(cache)


def run(scenario: Scenario, options: Options, progress: runner.Progress = lambda r, m: None,
        cache: Cache | None = None) -> tuple[Path, list[dict]]:
    cache = cache or Cache()
    if options.roles:
        unknown = [r for r in options.roles if r not in scenario.kernels]
        if unknown:
            raise InputError(f"--only {unknown[0]}: no such kernel role (roles: {', '.join(scenario.kernels)})")
        scenario = scenario.model_copy(update={"kernels": {r: scenario.kernels[r] for r in options.roles}})
    choice = platform.detect_accel(options.accel)
    progress("rig", choice.reason)
    xen, kernels, initrd = resolve(scenario, options, cache)
    out_dir = options.out_dir or new_out_dir(scenario)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scenario.json").write_text(scenario.model_dump_json(indent=1) + "\n")

    boots = runner.boot_all(scenario, out_dir, accel=choice.accel, xen=xen, kernels=kernels,
                            initramfs=initrd, progress=progress, timeout_scale=options.timeout_scale)
    xen_map = _xen_map(scenario, boots)
    results = []
    for role, boot in boots.items():
        analysis, checks = None, []
        if boot.error is None:
            try:
                analysis = verdict_mod.analyse(boot.collected, boot.firmware_pci or [], xen_map(boot))
                checks = verdict_mod.evaluate(scenario.expect.get(role), analysis)
            except CollectError as exc:
                boot.error, boot.failure = str(exc), "CollectError"
        artefacts = {"xen": xen.record(), "kernel": kernels[role].record(), "initramfs": initrd.record()}
        if role in scenario.kernels and scenario.kernels[role] in options.user_modules:
            artefacts["modules"] = str(options.user_modules[scenario.kernels[role]])
        data = report.result(scenario, boot, scenario.kernels[role], choice.reason, analysis, checks,
                             verdict_mod.verdict(boot.error, checks), artefacts)
        report.write(boot.run_dir, data)
        results.append(data)
    (out_dir / "summary.json").write_text(json.dumps(
        [{k: r[k] for k in ("kernel_role", "kernel", "kernel_release", "verdict", "stage_reached", "error")}
         for r in results], indent=1) + "\n")
    return out_dir, results


def _xen_map(scenario: Scenario, boots: dict[str, runner.KernelBoot]):
    """The map Xen gave dom0: from the unpatched run when it collected, else reconstructed."""
    reference = boots.get(UNPATCHED_ROLE)
    if reference is not None and reference.error is None and reference.collected is not None:
        shared = verdict_mod.xen_map_from_unpatched(reference.collected["dmesg"], UNPATCHED_ROLE)
        return lambda boot: shared
    return lambda boot: verdict_mod.xen_map_reconstructed(boot.serial, scenario.xen.dom0_mem)


def exit_code(results: list[dict]) -> int:
    from .errors import EXIT_ERROR, EXIT_EXPECTATION_FAILED, EXIT_OK
    verdicts = {r["verdict"] for r in results}
    if "error" in verdicts or not results:
        return EXIT_ERROR
    return EXIT_EXPECTATION_FAILED if "fail" in verdicts else EXIT_OK
