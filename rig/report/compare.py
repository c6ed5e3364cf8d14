"""Verdict changes between a baseline and a run: what a nightly job fails on.

A scenario whose verdict is known to be `error` (a control, or a case that does not
boot yet) stays green as long as it keeps that verdict; anything that changes is
reported, in either direction, so fixes get noticed too. A baseline job the run was
asked to do but has no result for is a change (`missing`): an empty, cut-short or
crashed run never compares green.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rig.errors import InputError, RigError
from rig.report import result as result_mod
from rig.report.result import VERDICTS
PLAN_FILE = "jobs.json"   # written by every run before it boots: what it was asked to do


def load_baseline(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read baseline: {exc}") from exc
    if not isinstance(data, dict) or not data or not all(
            v in VERDICTS or (isinstance(v, str) and v.startswith("error:")) for v in data.values()):
        raise InputError(f"{path}: want a non-empty JSON object of job id -> {' | '.join(VERDICTS)} "
                         "(or error:CLASS, an error of that failure class only)")
    return data


def write_plan(out_dir: Path, planned: list[str], matrix: list[str], shard: tuple[int, int] | None) -> None:
    """`planned`: the jobs this run boots; `matrix`: every job of its scenarios before sharding."""
    (out_dir / PLAN_FILE).write_text(json.dumps(
        {"planned": planned, "matrix": matrix, "shard": list(shard) if shard else None}, indent=1) + "\n")


@dataclass
class RunContents:
    verdicts: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str | None] = field(default_factory=dict)   # an error's failure class
    planned: set[str] = field(default_factory=set)
    matrix: set[str] = field(default_factory=set)


def read_runs(run_dirs: list[Path]) -> RunContents:
    """Verdicts and plans of run directories. A directory that is absent, holds no plan
    and no result, or holds an unreadable one is an error: nothing to compare is not green."""
    out = RunContents()
    for d in run_dirs:
        if not d.is_dir():
            raise RigError(f"{d}: no such run directory")
        plans = sorted(d.rglob(PLAN_FILE))
        results = sorted(d.rglob("result.json"))
        if not plans and not results:
            raise RigError(f"{d}: no {PLAN_FILE} and no result.json: the run did not start or wrote nothing")
        for f in plans:
            plan = _read_json(f)
            out.planned |= set(plan["planned"])
            out.matrix |= set(plan["matrix"])
        loaded = [result_mod.load(f) for f in results]
        for r in loaded:
            out.verdicts[r.job] = r.verdict
            out.failures[r.job] = r.failure
        if not plans:  # a run from before plans were written: it planned what it has
            out.planned |= {r.job for r in loaded}
            out.matrix |= out.planned
    return out




def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RigError(f"{path}: unreadable ({exc}); the run that wrote it did not finish") from exc


def changes(baseline: dict[str, str], run: RunContents, partial: bool = False) -> list[str]:
    """One line per job whose verdict differs from the baseline, in either direction;
    `missing` for a baseline job the run planned (its shard) but has no result for, or
    that is not in the run's matrix at all (unless `partial`: a subset of scenarios was
    run on purpose, and baseline jobs of scenarios not run are left out)."""
    out = []
    scenarios_run = {job.split("[", 1)[0] for job in run.matrix}
    for job, want in sorted(baseline.items()):
        got = run.verdicts.get(job)
        if got is not None:
            if got == "error" and want.startswith("error:"):  # a known error must stay that error
                got = f"error:{run.failures.get(job)}"
            if got != want:
                out.append(f"{job}: {want} -> {got}")
        elif job in run.planned:
            out.append(f"{job}: {want} -> missing (planned, but the run has no result for it)")
        elif job not in run.matrix and (not partial or job.split("[", 1)[0] in scenarios_run):
            out.append(f"{job}: {want} -> missing (not in the run's matrix: scenario or variant gone?)")
    for job, verdict in sorted(run.verdicts.items()):
        if job not in baseline:
            out.append(f"{job}: new job, verdict {verdict} (add it to the baseline)")
    return out
