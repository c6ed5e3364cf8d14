"""Verdict changes between a baseline and a run: what a nightly job fails on.

A scenario whose verdict is known to be `error` (a control, or a case that does not
boot yet) stays green as long as it keeps that verdict; anything that changes is
reported, in either direction, so fixes get noticed too.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError


def load_baseline(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read baseline: {exc}") from None
    if not isinstance(data, dict) or not all(v in ("pass", "fail", "error") for v in data.values()):
        raise InputError(f"{path}: want a JSON object of job id -> pass | fail | error")
    return data


def verdicts(run_dirs: list[Path]) -> dict[str, str]:
    found = {}
    for d in run_dirs:
        for f in sorted(d.rglob("result.json")):
            r = json.loads(f.read_text())
            found[r.get("job") or f"{r['scenario']}[{r['firmware']}-{r['dom0_mem']}-{r['kernel_role']}]"] = r["verdict"]
    return found


def changes(baseline: dict[str, str], current: dict[str, str]) -> list[str]:
    """One line per job whose verdict differs from the baseline; jobs not in the run are
    ignored (a shard runs a slice), jobs new to the baseline are listed."""
    out = []
    for job, verdict in sorted(current.items()):
        want = baseline.get(job)
        if want is None:
            out.append(f"{job}: new job, verdict {verdict} (add it to the baseline)")
        elif want != verdict:
            out.append(f"{job}: {want} -> {verdict}")
    return out
