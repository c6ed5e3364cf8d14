"""result.json per kernel and the summary table on stdout."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .checks.verdict import Analysis, Check
from .parse import xen as xen_parse
from .runner import KernelBoot
from .scenario import Scenario, format_size


def _pair(r):
    return list(r) if r is not None else None


def result(scenario: Scenario, boot: KernelBoot, kernel_name: str, accel_reason: str,
           analysis: Analysis | None, checks: list[Check], verdict: str, artefacts: dict) -> dict:
    xen_log = xen_parse.parse(boot.serial) if boot.serial else None
    a = analysis
    return {
        "scenario": scenario.name,
        "kernel": kernel_name,
        "kernel_role": boot.role,
        "kernel_release": a.kernel_release if a else None,
        "accel": boot.plan.accel.name,
        "accel_reason": accel_reason,
        "firmware": boot.plan.firmware.name,
        "dom0_mem": format_size(scenario.xen.dom0_mem),
        "verdict": verdict,
        "stage_reached": boot.stage_reached,
        "failure": boot.failure,
        "error": boot.error,
        "relocations": [{"device": r.device, "resource": r.resource, "firmware": _pair(r.firmware),
                         "final": _pair(r.final), "cause": r.cause, "evidence": list(r.evidence)}
                        for r in (a.relocations if a else [])],
        "xen_scratch": [list(r) for r in (a.xen_scratch if a else [])],
        "xen_scratch_clashes": a.scratch_clashes if a else [],
        "unusable": [list(r) for r in (a.unusable if a else [])],
        "converted_to_ram": [list(r) for r in (a.converted if a else [])],
        "expected_conversion": [list(r) for r in (a.expected_conversion if a else [])],
        "balloon": a.balloon if a else None,
        "xen_map_source": a.xen_map_source if a else None,
        "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in checks],
        "timings": boot.timings,
        "pci_resources": a.resources if a else [],
        "xen": {"version": xen_log.version, "cmdline": xen_log.cmdline, "dom0": xen_log.dom0_kind,
                "panic": xen_log.panic} if xen_log else None,
        "dom0_cmdline": boot.plan.dom0_cmdline,
        "artefacts": artefacts,
    }


def write(run_dir: Path, data: dict) -> Path:
    path = run_dir / "result.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def _hex(rs) -> str:
    return " ".join(f"{a:#x}-{b:#x}" for a, b in rs) or "-"


def summary(results: list[dict], out_dir: Path, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"{results[0]['scenario']}  ({out_dir})" if results else str(out_dir))
    for col in ("role", "kernel", "release", "verdict", "stage", "moved", "Xen scratch", "converted pages",
                "wall s", "why"):
        table.add_column(col)
    for r in results:
        failed = [c for c in r["checks"] if not c["passed"]]
        why = r["error"] or ("; ".join(f"{c['name']}: {c['detail']}" for c in failed)) or \
            ", ".join(c["name"] for c in r["checks"]) + " held"
        moved = "; ".join(f"{m['device']} {m['resource']} {m['firmware'][0]:#x}->"
                          f"{m['final'][0]:#x}" if m["final"] else f"{m['device']} {m['resource']} unassigned"
                          for m in r["relocations"]) or "none"
        style = {"pass": "green", "fail": "red", "error": "yellow"}[r["verdict"]]
        table.add_row(r["kernel_role"], r["kernel"], r["kernel_release"] or "?",
                      f"[{style}]{r['verdict']}[/{style}]", r["stage_reached"], moved,
                      _hex([tuple(x) for x in r["xen_scratch"]]),
                      str(r["balloon"]["converted_pages"]) if r["balloon"] else "-",
                      f"{r['timings'].get('total', 0):.1f}", why)
    console.print(table)
