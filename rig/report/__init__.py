"""The results of a run: each job's Result (result_of; its schema in result.py), the summary table, JUnit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig.checks.verdict import Analysis, Check, balloon_rules
from rig.errors import ParseError
from rig.parse import xen as xen_parse
from rig.report.result import VERDICTS, Result
from rig.run.single import KernelBoot
from rig.spec.scenario import Scenario, format_size


def _pair(r):
    return list(r) if r is not None else None


OUTCOMES = {
    # (UNUSABLE converted, Xen scratch in holes) -> what the kernel did, in words
    (False, True): "UNUSABLE kept, Xen scratch in holes (no balloon fix)",
    (True, True): "UNUSABLE converted, but Xen scratch still in holes (balloon fix without unpopulated-alloc use)",
    (True, False): "UNUSABLE converted, no Xen scratch in holes (balloon fix complete)",
    (False, False): "UNUSABLE kept, no Xen scratch in holes",
}


def outcome(converted_pages: int, scratch: list, relocations: list) -> dict:
    """The three states same-base builds must tell apart, plus the BAR effect (pure)."""
    converted, in_holes = converted_pages > 0, bool(scratch)
    return {"unusable_converted": converted, "xen_scratch_in_holes": in_holes, "relocated": len(relocations),
            "summary": OUTCOMES[(converted, in_holes)] + (f"; {len(relocations)} BAR/window(s) moved"
                                                           if relocations else "; nothing moved")}


def _inclusive(r: tuple[int, int]) -> list[int]:
    """Xen prints [start, end); results hold [start, end] like every other range."""
    return [r[0], r[1] - 1]


def result_of(job_id: str, scenario: Scenario, boot: KernelBoot, kernel_name: str, accel_reason: str,
           analysis: Analysis | None, checks: list[Check], verdict: str, artefacts: dict) -> Result:
    try:
        xen_log = xen_parse.parse(boot.serial) if boot.serial else None
    except ParseError:   # a garbled region line: the analysis said so already, or the boot failed first
        xen_log = None
    a = analysis
    return Result(
        job=job_id,
        scenario=scenario.name,
        kernel=kernel_name,
        kernel_role=boot.role,
        kernel_release=a.kernel_release if a else None,
        arch=boot.plan.arch.name,
        accel=boot.plan.accel.name,
        accel_reason=accel_reason,
        firmware=boot.plan.firmware.name,
        dom0_mem=format_size(scenario.xen.dom0_mem),
        verdict=verdict,
        stage_reached=boot.stage_reached,
        failure=boot.failure,
        error=boot.error,
        relocations=[dict(device=r.device, resource=r.resource, firmware=r.firmware, final=r.final, cause=r.cause,
                          root_cause=r.root_cause, evidence=list(r.evidence)) for r in (a.relocations if a else [])],
        xen_scratch=a.xen_scratch if a else [],
        xen_scratch_overlaps=a.scratch_overlaps if a else [],
        unusable=a.unusable if a else [],
        converted_to_ram=a.converted if a else [],
        expected_conversion=a.expected_conversion if a else [],
        balloon=(a.balloon or None) if a else None,   # Arm: no e820 balloon model
        # The balloon driver's own view (sysfs) and what each kernel rule says it should be.
        balloon_driver=({**dataclasses.asdict(a.balloon_driver), "rules_kb": balloon_rules(a)}
                        if a and a.balloon_driver else None),
        foreign_mapping=dataclasses.asdict(a.foreign_map) if a and a.foreign_map else None,
        outcome=outcome(a.balloon.get("converted_pages", 0), a.xen_scratch, a.relocations) if a and a.balloon else None,
        xen_map_source=a.xen_map_source if a else None,
        # Xen's own findings first (kept for a boot that never reached dom0), then the kernel's.
        findings=[dict(kind=k, line=line) for k, line in (xen_log.findings if xen_log else ())]
        + [dict(kind=f.kind, line=f.line) for f in (a.findings if a else [])],
        checks=[dict(name=c.name, passed=c.passed, detail=c.detail) for c in checks],
        timings=boot.timings,
        steps=boot.steps,
        collected_via=boot.collected_via,
        ssh=boot.ssh or None,
        failed_attempts=boot.failed_attempts,
        pci_resources=a.resources if a else [],
        xen=dict(version=xen_log.version, cmdline=xen_log.cmdline, dom0=xen_log.dom0_kind,
                 panic=xen_log.panic, dom0_banks=[_inclusive(r) for r in xen_log.dom0_banks],
                 grant_table=_inclusive(xen_log.grant_table) if xen_log.grant_table else None,
                 extended_regions=[_inclusive(r) for r in xen_log.extended_regions]) if xen_log else None,
        qemu=(artefacts.get("qemu") or {}).get("printed"),
        dom0_cmdline=boot.plan.dom0_cmdline,
        artefacts=artefacts,
        run_dir=str(boot.run_dir),
    )


def write(run_dir: Path, data: Result) -> Path:
    return data.write(run_dir)


def _hex(rs) -> str:
    return " ".join(f"{a:#x}-{b:#x}" for a, b in rs) or "-"


def _row(r: Result) -> dict[str, str]:
    failed = [c for c in r.checks if not c.passed]
    if r.error:
        why = r.error
    elif failed:
        why = "; ".join(f"{c.name}: {c.detail}" for c in failed)
    else:
        why = (", ".join(c.name for c in r.checks) + " held") if r.checks else "no expectations"
    moved = "; ".join(f"{m.device} {m.resource} {m.firmware[0]:#x}->"
                      + (f"{m.final[0]:#x}" if m.final else "unassigned") for m in r.relocations)
    return {"scenario": r.scenario, "firmware": r.firmware, "dom0_mem": r.dom0_mem,
            "role": r.kernel_role, "kernel": r.kernel, "release": r.kernel_release or "?",
            "xen": (r.xen.version if r.xen else None) or "?",
            "qemu": (r.qemu or "?").split()[0],
            "verdict": r.verdict, "stage": r.stage_reached, "moved": moved or "none",
            "Xen scratch": _hex(r.xen_scratch),
            "converted pages": str(r.balloon.converted_pages) if r.balloon else "-",
            "outcome": r.outcome.summary if r.outcome else "-",
            "wall s": f"{r.total_seconds:.1f}",
            "why": why + (f" (after {len(r.failed_attempts)} failed boot(s): "
                          f"{r.failed_attempts[0].error})" if r.failed_attempts else "")}


def summary(results: list[Result], out_dir: Path, console: Console | None = None) -> None:
    """A table on a terminal; on a pipe or CI log, one plain key=value line per kernel."""
    console = console or Console(soft_wrap=True)
    rows = [_row(r) for r in results]
    if not console.is_terminal:
        for row in rows:
            console.print(" ".join(f"{k.replace(' ', '_')}={v!r}" if " " in v or not v else
                                   f"{k.replace(' ', '_')}={v}" for k, v in row.items()),
                          markup=False, highlight=False)
        console.print(f"results: {out_dir}", markup=False, highlight=False)
        console.print(verdict_counts(results), markup=False, highlight=False)
        return
    table = Table(title=str(out_dir))
    for col in rows[0] if rows else ():
        table.add_column(col, overflow="fold")
    styles = {"pass": "green", "fail": "red", "error": "yellow", "unjudged": "cyan"}
    for row in rows:
        cells = dict(row, verdict=f"[{styles[row['verdict']]}]{row['verdict']}[/]")
        table.add_row(*cells.values())
    console.print(table)
    console.print(verdict_counts(results), markup=False, highlight=False)


def verdict_counts(results: list[Result]) -> str:
    """'jobs: 2 pass, 0 fail, 0 error, 1 unjudged' (unjudged: the scenario asked nothing of it)."""
    return "jobs: " + ", ".join(f"{sum(r.verdict == v for r in results)} {v}" for v in VERDICTS)


def junit(results: list[Result], path: Path) -> Path:
    """JUnit XML for `rig run`/`rig matrix`: one testcase per job x check, named by the job
    id (as the pytest plugin's items); a job that did not boot is one <error> testcase, never
    a pass or a failure. (The same names come from `pytest --rig-scenarios --junitxml`.)"""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name="xen-pvh-rig")
    counts = {"tests": 0, "failures": 0, "errors": 0}
    for r in results:
        # (name, passed: True/False, None for an error, "skipped" for unjudged, detail)
        if r.verdict == "error":
            cases = [(r.checks[0].name if r.checks else "boot", None, r.error)]
        elif not r.checks:
            cases = [("boot", "skipped", "unjudged: no expectations")]
        else:
            cases = [(c.name, c.passed, c.detail) for c in r.checks]
        for check, passed, detail in cases:
            case = ET.SubElement(suite, "testcase", classname=f"{r.scenario}.toml", name=f"{r.job}::{check}",
                                 time=f"{r.total_seconds:.1f}")
            props = ET.SubElement(case, "properties")
            for key in ("kernel_release", "accel", "firmware", "dom0_mem", "verdict", "stage_reached", "run_dir"):
                ET.SubElement(props, "property", name=key, value=str(getattr(r, key)))
            ET.SubElement(props, "property", name="xen_version", value=str(r.xen.version if r.xen else None))
            ET.SubElement(props, "property", name="qemu_version", value=str(r.qemu))
            for stage, seconds in r.timings.items():
                ET.SubElement(props, "property", name=f"time_{stage}", value=str(seconds))
            counts["tests"] += 1
            if passed == "skipped":
                ET.SubElement(case, "skipped", message=detail)
                counts["skipped"] = counts.get("skipped", 0) + 1
            elif passed is None:
                ET.SubElement(case, "error", message=detail or "boot failed").text = detail
                counts["errors"] += 1
            elif not passed:
                ET.SubElement(case, "failure", message=detail).text = detail
                counts["failures"] += 1
    for k, v in counts.items():
        suite.set(k, str(v))
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
    return path
