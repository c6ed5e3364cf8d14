"""`rig soak`: boot one scenario's host N times and count what happened, per kernel.

The figure a nightly user needs beside every verdict: how often a boot fails for reasons
that have nothing to do with the kernel under test, and how long a boot takes. Each
round is an ordinary `rig run` into <out>/round-NNN/, so every failed boot keeps its
serial log, result.json and traceback like any other run; the summary is rebuilt from
those files (`rig soak --summarize DIR`), so an interrupted soak still counts.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rig.run import batch
from rig.errors import EXIT_ERROR, EXIT_OK, InputError, RigError
from rig.report import compare
from rig.report import result as result_mod
from rig.spec.scenario import Scenario

ROUND_PREFIX = "round-"


@dataclass
class KernelTally:
    """One job's boots in a soak (one kernel role of one firmware and dom0_mem variant)."""

    job: str
    role: str
    kernel: str
    outcomes: Counter = field(default_factory=Counter)   # pass / fail / error / unjudged / interrupted
    failures: Counter = field(default_factory=Counter)   # failure class of each error
    totals: list[float] = field(default_factory=list)    # seconds, boots that reached collection
    examples: dict[str, str] = field(default_factory=dict)  # failure class -> first run dir with it

    @property
    def boots(self) -> int:
        """Boots that ended by themselves (an interrupted one says nothing of the rig or guest)."""
        return sum(n for k, n in self.outcomes.items() if k != "interrupted")

    def as_dict(self) -> dict:
        t = sorted(self.totals)
        return {"job": self.job, "role": self.role, "kernel": self.kernel, "boots": self.boots,
                "outcomes": dict(self.outcomes), "failures": dict(self.failures), "examples": self.examples,
                "seconds": {"median": statistics.median(t), "min": t[0], "max": t[-1],
                            "p10": _quantile(t, 0.1), "p90": _quantile(t, 0.9)} if t else None}


def _quantile(sorted_values: list[float], q: float) -> float:
    # Nearest rank: with the ~100 boots a soak has, interpolation would pretend precision.
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


INTERRUPTED = "interrupted"   # marker file in a round that Ctrl-C or SIGTERM cut short


def run(scenario: Scenario, rounds: int, out_dir: Path, options: batch.Options,
        progress: Callable[[str, str], None] = lambda r, m: None,
        after_round: Callable[[int, list[dict]], None] = lambda i, results: None) -> dict[str, KernelTally]:
    """`rounds` runs of `scenario` into <out_dir>/round-NNN/; soak.json is written whatever
    happens (an interrupt or a crash of the rig keeps the count of the rounds that ran)."""
    if rounds < 1:
        raise InputError(f"soak: {rounds} rounds: must be at least 1")
    with batch.claimed(out_dir):
        first = _next_round(out_dir)  # a soak resumed into the same directory adds rounds
        try:
            for i in range(first, first + rounds):
                options.out_dir = out_dir / f"{ROUND_PREFIX}{i:03d}"
                try:
                    _, results = batch.run(scenario, options, progress=progress)
                except KeyboardInterrupt:
                    if options.out_dir.is_dir():
                        (options.out_dir / INTERRUPTED).touch()
                    raise
                after_round(i, results)
        finally:
            if any(out_dir.glob(f"{ROUND_PREFIX}[0-9]*")):
                write(out_dir, summarize(out_dir))
    return summarize(out_dir)


def _next_round(out_dir: Path) -> int:
    numbers = [int(p.name[len(ROUND_PREFIX):]) for p in out_dir.glob(f"{ROUND_PREFIX}[0-9]*")
               if p.name[len(ROUND_PREFIX):].isdigit()]
    return max(numbers, default=0) + 1


def summarize(out_dir: Path) -> dict[str, KernelTally]:
    """Tallies per job from every round's result.json (a failed attempt kept by --retries
    counts as the error it was; a planned job without a result is an error, "no-result",
    unless its round was interrupted)."""
    rounds = sorted(p for p in out_dir.glob(f"{ROUND_PREFIX}[0-9]*") if p.is_dir())
    if not rounds:
        raise InputError(f"{out_dir}: no {ROUND_PREFIX}NNN directories: not a soak")
    tallies: dict[str, KernelTally] = {}
    missing: list[tuple[str, Path]] = []
    for round_dir in rounds:
        plan_file = round_dir / compare.PLAN_FILE
        planned = json.loads(plan_file.read_text())["planned"] if plan_file.is_file() else []
        found = set()
        for path in sorted(round_dir.glob("**/result.json")):
            try:
                r = result_mod.load(path)
            except RigError:  # counted below as its planned job's missing result
                if not planned:
                    missing.append((f"{path.parent.name} (unreadable {path.name})", round_dir))
                continue
            found.add(r.job)
            t = tallies.setdefault(r.job, KernelTally(r.job, r.kernel_role, r.kernel))
            for attempt in r.failed_attempts:
                _count_error(t, attempt.failure or "unknown", attempt.run_dir)
            if r.verdict == "error":
                _count_error(t, r.failure or "unknown", str(path.parent))
            else:
                t.outcomes[r.verdict] += 1
                if r.total_seconds:
                    t.totals.append(r.total_seconds)
        missing += [(job, round_dir) for job in planned if job not in found]
    for job, round_dir in missing:
        t = tallies.setdefault(job, KernelTally(job, "?", "?"))
        if (round_dir / INTERRUPTED).exists():
            t.outcomes[INTERRUPTED] += 1
        else:
            _count_error(t, "no-result", str(round_dir))
    return tallies


def exit_code(tallies: dict[str, KernelTally]) -> int:
    """0: every boot reached a verdict; 3: a boot erred, or nothing booted (never green)."""
    if not tallies or any(t.boots == 0 or t.outcomes["error"] for t in tallies.values()):
        return EXIT_ERROR
    return EXIT_OK


def _count_error(t: KernelTally, failure: str, where: str) -> None:
    t.outcomes["error"] += 1
    t.failures[failure] += 1
    t.examples.setdefault(failure, where)


def write(out_dir: Path, tallies: dict[str, KernelTally]) -> Path:
    path = out_dir / "soak.json"
    path.write_text(json.dumps({"written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                "kernels": [t.as_dict() for t in tallies.values()]}, indent=1) + "\n")
    return path


def lines(tallies: dict[str, KernelTally]) -> list[str]:
    """The soak's figures as plain text, one kernel a line, then one failure class a line."""
    out = []
    for t in tallies.values():
        d = t.as_dict()
        outcomes = ", ".join(f"{n} {k}" for k, n in sorted(t.outcomes.items()))
        s = d["seconds"]
        timing = (f"median {s['median']:.1f} s, p10-p90 {s['p10']:.1f}-{s['p90']:.1f} s, "
                  f"range {s['min']:.1f}-{s['max']:.1f} s") if s else "no boot reached collection"
        out.append(f"{t.job} ({t.kernel}): {t.boots} boots: {outcomes}; {timing}")
        for failure, n in t.failures.most_common():
            out.append(f"  {failure}: {n} (first: {t.examples[failure]})")
    return out
