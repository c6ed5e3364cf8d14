"""`rig bench`: what the rig costs, against bare QEMU running the same argv.

A job's floor is its own host (the plan the rig boots, the argv the host layer builds)
with an initramfs whose /init only powers off: QEMU, firmware, Xen and the kernel's own
boot, nothing of the agent or of collection. Each round boots every job's floor one after
the other, then runs the A/B as a user does (a command: `rig run` by default, or
`./bootstrap.sh ab`) and reads each job's stage times from its result.json; with
`--firmware-pair` it also boots the first job's floor under SeaBIOS and under OVMF.
Goals are ratios of medians measured in one invocation on one machine, so a slower
or busier machine moves both sides (docs/performance.md).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import platform as host_platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pexpect

from rig.guest import console
from rig.run import cores, single, batch
from rig.artefacts import initramfs
from rig.spec import matrix, plan as plan_mod, platform
from rig.artefacts.store import Cache
from rig.errors import BootError, EXIT_ERROR, EXIT_EXPECTATION_FAILED, EXIT_OK, RigError
from rig.report import result as result_mod
from rig.host import open_host, qemu_argv
from rig.spec.scenario import Scenario

POWEROFF_INIT = initramfs.GUESTS / "poweroff" / "init"
POWERED_OFF = r"reboot: Power down"   # Linux's last line before Xen turns the machine off

# name -> (limit, unit, what it measures)
GOALS = {
    "ab_vs_two_bare": (0.60, "x", "the A/B command's wall time / the job floors booted one after the other"),
    "boot_vs_bare": (1.10, "x", "each job's total in the A/B / its floor, the floors booted side by side "
                                "as the A/B boots its jobs (the rig's own cost, not the machine's contention)"),
    "ovmf_vs_seabios": (1.5, "x", "the first job's floor under OVMF / under SeaBIOS"),
    "suite_minutes": (12.0, "min", "the test command's wall time"),
    "library_minutes": (6.0, "min", "`rig matrix` of the scenario library, wall time"),
}

Progress = Callable[[str], None]


@dataclass
class Round:
    floors: dict[str, dict | None] = field(default_factory=dict)    # job id -> stage seconds (None: no power-off)
    floors_together: dict[str, dict | None] = field(default_factory=dict)  # the same, every job at once
    ab_wall: float | None = None
    ab_exit: int | None = None
    totals: dict[str, float] = field(default_factory=dict)          # job id -> the rig's total
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    steps: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    firmware: dict[str, dict | None] = field(default_factory=dict)  # "seabios"/"ovmf" -> floor stage seconds


INIT_STARTED = r"Run /init as init process"  # the floor's end of stage dom0 (the agent's first line)


def floor_boot(plan: plan_mod.BootPlan, run_dir: Path, timeout: float, live: single.LiveHosts,
               progress: Progress = lambda msg: None) -> dict[str, float] | None:
    """Seconds from launch until dom0 powered off ("total"; the host is then stopped over
    QMP, as the rig stops its hosts once everything is read), with the stage times the rig
    reports (firmware, xen, dom0: until /init); None if it did not power off within
    `timeout` (the serial log in run_dir says where it was)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    transcript = console.Transcript()
    timings: dict[str, float] = {}
    with cores.held(plan.cpus, progress, cancelled=lambda: live.cancelled):
        started = time.monotonic()   # as the rig's total: from before the launch
        with open_host("qemu", plan, run_dir) as host:
            live.add(host)
            try:
                return _watch_floor(host, transcript, timings, started, timeout)
            finally:
                live.discard(host)


def _watch_floor(host, transcript: console.Transcript, timings: dict[str, float], started: float,
                 timeout: float) -> dict[str, float] | None:
    host.console.logfile_read = transcript
    try:
        console.watch(host.console, transcript, until="dom0", timings=timings, since=started)
        host.console.expect(INIT_STARTED, timeout=timeout)
        timings["dom0"] = round(time.monotonic() - started - sum(timings.values()), 2)
        host.console.expect(POWERED_OFF, timeout=timeout)
    except (BootError, pexpect.TIMEOUT, pexpect.EOF):
        return None
    timings["total"] = round(time.monotonic() - started, 2)
    return timings


def _median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def _total(timings: dict | None) -> float | None:
    return timings.get("total") if timings else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _timed(command: list[str], log: Path) -> tuple[float, int]:
    """(wall seconds, exit code) of a command, its output in `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log, "wb") as f:
        rc = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT).returncode
    return round(time.monotonic() - started, 2), rc


def rig_command() -> list[str]:
    return [sys.executable, "-m", "rig.cli"]


def run(scenario: Scenario, scenario_path: Path, rounds: int, out_dir: Path, *,
        ab_command: list[str] | None = None, firmware_pair: bool = True, floor_timeout: float = 240.0,
        suite_command: list[str] | None = None, library: list[Path] | None = None,
        progress: Progress = lambda msg: None, cache: Cache | None = None) -> dict:
    cache = cache or Cache()
    jobs = matrix.expand([scenario], flat=True)
    pair = [matrix.expand([scenario.variant(f, scenario.xen.dom0_mem, scenario.xen.version, scenario.host.qemu)],
                          flat=True)[0] for f in ("seabios", "ovmf")] \
        if firmware_pair else []
    options = batch.Options()
    art = batch.resolve(jobs + pair, options, cache, lambda _r, m: progress(m))
    floor_initrd = initramfs.build(cache, agent=POWEROFF_INIT)
    accel = platform.detect_accel("auto").accel

    def floor_plan(job: matrix.Job) -> plan_mod.BootPlan:
        return plan_mod.make(job.scenario, job.role, accel, xen=art.xen(job).path, kernel=art.kernels[job.kernel].path,
                             initrd=floor_initrd.path, xen_efi=art.xen_efi(job).path if art.xen_efi(job) else None,
                             qemu=art.qemu(job).binary)

    ab = ab_command or [*rig_command(), "run", str(scenario_path)]
    out_dir.mkdir(parents=True, exist_ok=True)
    live = single.LiveHosts()
    try:
        done = _rounds(rounds, jobs, pair, floor_plan, ab, out_dir, floor_timeout, live, progress)
    except KeyboardInterrupt:
        live.cancel()   # every floor's QEMU now; threads waiting for a core give up
        raise
    once = {}
    if suite_command:
        progress(f"suite: {shlex.join(suite_command)}")
        once["suite"] = _timed(suite_command, out_dir / "suite.log")
    if library:
        progress(f"library: {len(library)} scenarios")
        once["library"] = _timed([*rig_command(), "matrix", *map(str, library), "--out",
                                  str((out_dir / "library").resolve())], out_dir / "library.log")
    summary = summarize(done, [j.id for j in jobs], once)
    summary["machine"] = machine(floor_plan(jobs[0]).qemu_binary)
    summary["scenario"] = str(scenario_path)
    summary["ab_command"] = shlex.join(ab)
    (out_dir / "bench.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _rounds(rounds: int, jobs: list[matrix.Job], pair: list[matrix.Job], floor_plan, ab: list[str], out_dir: Path,
            floor_timeout: float, live: single.LiveHosts, progress: Progress) -> list[Round]:
    done: list[Round] = []
    for i in range(1, rounds + 1):
        r = Round()
        for job in jobs:
            progress(f"round {i}/{rounds}: floor of {job.id}")
            r.floors[job.id] = floor_boot(floor_plan(job), out_dir / f"round-{i:02d}" / "floor" / job.id, floor_timeout,
                                          live, progress)
        progress(f"round {i}/{rounds}: the floors side by side")
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs))
        try:
            together = {job.id: pool.submit(floor_boot, floor_plan(job), out_dir / f"round-{i:02d}" / "floor-together" /
                                            job.id, floor_timeout, live, progress) for job in jobs}
            r.floors_together = {j: f.result() for j, f in together.items()}
        except KeyboardInterrupt:
            live.cancel()   # before waiting for the threads: their QEMUs go now
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for job in pair:
            progress(f"round {i}/{rounds}: floor of {job.id} under {job.firmware}")
            r.firmware[job.firmware] = floor_boot(floor_plan(job), out_dir / f"round-{i:02d}" / "floor-firmware" /
                                                  job.firmware, floor_timeout, live, progress)
        ab_out = out_dir / f"round-{i:02d}" / "ab"
        shutil.rmtree(ab_out, ignore_errors=True)   # an earlier bench's results are not this round's
        progress(f"round {i}/{rounds}: {shlex.join(ab)}")
        r.ab_wall, r.ab_exit = _timed([*ab, "--out", str(ab_out.resolve())], ab_out.with_suffix(".log"))
        for job in jobs:
            if r.ab_exit not in (0, 1):   # 2: refused, 3: erred, 130: interrupted: no timing
                r.verdicts[job.id] = f"exit {r.ab_exit}"
                continue
            try:
                result = result_mod.load(ab_out / job.rel_dir / "result.json")
            except RigError:
                r.verdicts[job.id] = "missing"
                continue
            r.verdicts[job.id] = result.verdict
            r.totals[job.id] = result.timings.get("total")
            r.stages[job.id] = result.timings
            r.steps[job.id] = result.steps
        done.append(r)
        (out_dir / "rounds.json").write_text(json.dumps([dataclasses.asdict(x) for x in done], indent=1) + "\n")
    return done


def summarize(rounds: list[Round], job_ids: list[str], once: dict[str, tuple[float, int]] | None = None) -> dict:
    """Medians per job and the goals' ratios (pure: rounds in, figures out). A round whose A/B
    erred (or left a job without a result) gives no A/B figures: an error is not a timing."""
    once = once or {}
    good = [r for r in rounds if all(r.verdicts.get(j) in ("pass", "fail", "unjudged") for j in job_ids)]
    floors = {j: _median([_total(r.floors.get(j)) for r in rounds]) for j in job_ids}
    floors_together = {j: _median([_total(r.floors_together.get(j)) for r in rounds]) for j in job_ids}
    jobs = {}
    for j in job_ids:
        stage_names = dict.fromkeys(s for r in good for s in r.stages.get(j, {}))
        step_names = {kind: dict.fromkeys(s for r in good for s in r.steps.get(j, {}).get(kind, {}))
                      for kind in ("agent", "rig")}
        jobs[j] = {
            "floor_s": floors[j],
            "floor_side_by_side_s": floors_together[j],
            "floor_stages_s": {s: _median([(r.floors.get(j) or {}).get(s) for r in rounds])
                               for s in ("firmware", "xen", "dom0", "total")},
            "total_s": _median([r.totals.get(j) for r in good]),
            "stages_s": {s: _median([r.stages[j].get(s) for r in good if j in r.stages]) for s in stage_names},
            "steps_s": {kind: {s: _median([r.steps[j].get(kind, {}).get(s) for r in good if j in r.steps])
                               for s in names} for kind, names in step_names.items()},
            "verdicts": [r.verdicts.get(j) for r in rounds],
        }
    two_floors = round(sum(floors.values()), 2) if all(floors.values()) else None
    ab = _median([r.ab_wall for r in good])
    measured = {
        "ab_vs_two_bare": _ratio(ab, two_floors),
        **{f"boot_vs_bare {j}": _ratio(jobs[j]["total_s"], floors_together[j]) for j in job_ids},
    }
    seabios = _median([_total(r.firmware.get("seabios")) for r in rounds])
    ovmf = _median([_total(r.firmware.get("ovmf")) for r in rounds])
    if any(r.firmware for r in rounds):
        measured["ovmf_vs_seabios"] = _ratio(ovmf, seabios)
    for name in ("suite", "library"):
        if name in once:   # a command that failed is no figure: it may have stopped early
            seconds, rc = once[name]
            measured[f"{name}_minutes"] = round(seconds / 60, 2) if rc == 0 else None
    goals = []
    for name, value in measured.items():
        limit, unit, what = GOALS[name.split()[0]]
        goals.append({"goal": name, "value": value, "limit": limit, "unit": unit, "what": what,
                      "met": value is not None and value <= limit})
    return {
        "rounds": len(rounds), "rounds_judged": len(good),
        "ab_wall_s": ab, "two_floors_s": two_floors,
        "firmware_floor_s": {"seabios": seabios, "ovmf": ovmf} if any(r.firmware for r in rounds) else None,
        "jobs": jobs, "goals": goals,
        "once": {k: {"wall_s": v[0], "exit": v[1]} for k, v in once.items()},
    }


def exit_code(summary: dict) -> int:
    """3 if a figure could not be measured (a floor did not power off, the A/B erred in any
    round: the figures would rest on the rounds that went well), 1 if a goal was missed, 0
    if every goal was met."""
    if summary["rounds_judged"] < summary["rounds"] or any(g["value"] is None for g in summary["goals"]):
        return EXIT_ERROR
    return EXIT_OK if all(g["met"] for g in summary["goals"]) else EXIT_EXPECTATION_FAILED


def lines(summary: dict) -> list[str]:
    out = []
    for j, d in summary["jobs"].items():
        stages = " ".join(f"{k}={v}" for k, v in d["stages_s"].items())
        floor = " ".join(f"{k}={v}" for k, v in d["floor_stages_s"].items())
        out.append(f"job {j}: floor {d['floor_s']} s alone ({floor}), {d['floor_side_by_side_s']} s side by side")
        out.append(f"  rig total {d['total_s']} s ({stages})")
        for kind, steps in d["steps_s"].items():
            if steps:
                out.append(f"  {kind} steps: " + " ".join(f"{k}={v}" for k, v in steps.items()))
    out.append(f"A/B wall {summary['ab_wall_s']} s; job floors one after the other {summary['two_floors_s']} s")
    if summary["firmware_floor_s"]:
        fw = summary["firmware_floor_s"]
        out.append(f"first job's floor: seabios {fw['seabios']} s, ovmf {fw['ovmf']} s")
    for k, v in summary["once"].items():
        out.append(f"{k}: {v['wall_s']} s wall, exit {v['exit']}")
    for g in summary["goals"]:
        value = "not measured" if g["value"] is None else f"{g['value']}{g['unit']}"
        out.append(f"goal {g['goal']}: {value} (limit {g['limit']}{g['unit']}) "
                   f"{'met' if g['met'] else 'MISSED'}")
    out.append(f"rounds: {summary['rounds']} ({summary['rounds_judged']} with every job judged)")
    return out


def machine(qemu_binary: str) -> dict:
    return {"cores": os.cpu_count(), "qemu": qemu_argv.printed_version(qemu_binary), "python": host_platform.python_version(),
            "kernel": host_platform.release(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
