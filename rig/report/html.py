"""One static HTML file (no network, no CDN) with an SVG memory map per host, A/B stacked.

Lanes, on one shared address axis per host: e820 by type, PCI host and bridge windows,
BARs where firmware put them, BARs where dom0 left them (moved ones marked), Xen
scratch, and RAM the balloon took from UNUSABLE. The axis is ordinal: every range
boundary gets its own slot, so a 4 KiB BAR and a 1 TiB hole are both readable.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from rig.guest.collect import ARTEFACT_FILES
from rig.parse import e820 as e820_parse
from rig.parse import iomem as iomem_parse
from rig.report import result as result_mod
from rig.report.result import Result

WIDTH, LANE, LABEL = 1100, 22, 150
COLOURS = {"ram": "#8fd18f", "reserved": "#c8c8c8", "acpi": "#9ec9f0", "nvs": "#9ec9f0",
           "unusable": "#f3c57a", "window": "#d9d2f0", "bar": "#7a9ee8", "moved": "#e05050",
           "scratch": "#b03aa0", "converted": "#3aa05a"}


def _lanes(run_dir: Path, result: Result) -> list[tuple[str, list[tuple[int, int, str, str]]]]:
    """[(lane name, [(start, end, css class, tooltip)])] for one run."""
    e820_file, iomem_file = run_dir / ARTEFACT_FILES["e820"], run_dir / ARTEFACT_FILES["iomem"]
    e820 = e820_parse.from_memmap(e820_file.read_text()) if e820_file.exists() else []
    tree = iomem_parse.parse(iomem_file.read_text()) if iomem_file.exists() else []
    moved = {(m.device, m.resource) for m in result.relocations}
    bars = [r for r in result.pci_resources if r.kind == "mem"]
    return [
        ("e820", [(e.start, e.end, f"e820-{e.type.split(':')[0]}", f"{e.type}") for e in e820]),
        ("PCI windows", [(w.start, w.end, "window", w.name) for w in iomem_parse.bus_windows(tree)]),
        ("BARs (firmware)", [(*r.firmware, "bar", f"{r.device} {r.resource}") for r in bars if r.firmware]),
        ("BARs (final)", [(*r.final, "bar-moved" if (r.device, r.resource) in moved else "bar",
                           f"{r.device} {r.resource}" + (" MOVED" if (r.device, r.resource) in moved else ""))
                          for r in bars if r.final]),
        ("Xen scratch", [(s, e, "scratch", "Xen scratch") for s, e in result.xen_scratch]),
        ("balloon (converted)", [(s, e, "converted", "UNUSABLE -> RAM") for s, e in result.converted_to_ram]),
    ]


def _axis(all_lanes) -> dict[int, float]:
    points = sorted({p for lanes in all_lanes for _, items in lanes for s, e, _, _ in items for p in (s, e + 1)})
    step = (WIDTH - LABEL - 10) / max(1, len(points) - 1)
    return {p: LABEL + i * step for i, p in enumerate(points)}


def _svg(title: str, lanes, axis: dict[int, float]) -> str:
    height = LANE * (len(lanes) + 2)
    out = [f'<svg class="memmap" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'role="img" aria-label="{html.escape(title)}">']
    for i, (name, items) in enumerate(lanes):
        y = LANE * i + 4
        out.append(f'<text x="4" y="{y + 14}" class="lane">{html.escape(name)}</text>')
        for s, e, cls, tip in items:
            x0, x1 = axis[s], axis[e + 1]
            out.append(f'<rect class="{cls}" x="{x0:.1f}" y="{y}" width="{max(1.0, x1 - x0):.1f}" height="{LANE - 6}">'
                       f'<title>{html.escape(tip)} [{s:#x}-{e:#x}]</title></rect>')
    y = LANE * len(lanes) + 14
    ticks = sorted(axis.items())
    for addr, x in ticks[:: max(1, len(ticks) // 10)]:
        out.append(f'<text x="{x:.1f}" y="{y}" class="tick">{addr:#x}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _css() -> str:
    rules = [f".{k}{{fill:{v}}}" for k, v in COLOURS.items() if k not in ("bar", "moved")]
    rules += [f".e820-{k}{{fill:{v}}}" for k, v in COLOURS.items()]
    rules += [f".bar{{fill:{COLOURS['bar']}}}", f".bar-moved{{fill:{COLOURS['moved']}}}",
              "body{font:14px sans-serif;margin:20px}", ".lane,.tick{font-size:11px}",
              ".pass{color:#070}.fail{color:#b00}.error{color:#b60}", "pre{background:#f4f4f4;padding:6px}"]
    return "\n".join(rules)


def find_results(paths: list[Path]) -> list[tuple[Path, Result]]:
    return [(f.parent, result_mod.load(f)) for p in paths for f in sorted(p.rglob("result.json"))]


def render(paths: list[Path]) -> str:
    runs = find_results(paths)
    hosts: dict[tuple, list[tuple[Path, Result]]] = {}
    for run_dir, r in runs:
        # One host per Xen too: two Xens' maps of the same scenario are not one A/B.
        hosts.setdefault((r.scenario, r.firmware, r.dom0_mem, r.xen.version if r.xen else None), []).append((run_dir, r))
    legend = "".join(f'<svg width="12" height="12"><rect class="{cls}" width="12" height="12"/></svg> {name} &nbsp; '
                     for cls, name in (("e820-ram", "RAM"), ("e820-unusable", "UNUSABLE"), ("e820-reserved", "reserved"),
                                       ("window", "PCI window"), ("bar", "BAR"), ("bar-moved", "moved BAR"),
                                       ("scratch", "Xen scratch"), ("converted", "balloon RAM")))
    body = [f"<h1>xen-pvh-rig report</h1><p>{len(runs)} runs on {len(hosts)} hosts</p><p>{legend}</p>"]
    for (scenario, firmware, dom0_mem, xen), members in hosts.items():
        members.sort(key=lambda m: (m[1].kernel_role != "unpatched", m[1].kernel_role))  # reference first
        lanes = {run_dir: _lanes(run_dir, r) for run_dir, r in members}
        axis = _axis(lanes.values())
        body.append(f'<section class="host"><h2>{html.escape(scenario)} ({firmware}, dom0_mem={dom0_mem}, '
                    f'Xen {html.escape(xen or "?")})</h2>')
        for run_dir, r in members:
            title = f"{r.kernel_role}: {r.kernel} {r.kernel_release or ''}"
            body.append(f'<h3>{html.escape(title)} <span class="{r.verdict}">{r.verdict}</span></h3>')
            if r.error:
                body.append(f"<p class=error>{html.escape(r.error)}</p>")
            else:
                if r.outcome:
                    body.append(f"<p class=outcome>{html.escape(r.outcome.summary)}</p>")
                body.append(_svg(title, lanes[run_dir], axis))
                driver = r.balloon_driver
                if driver:
                    body.append("<p class=balloon>balloon driver: " + html.escape(
                        f"target {driver.target_kb} KiB, current {driver.current_kb} KiB, "
                        f"in balloon {(driver.low_kb or 0) + (driver.high_kb or 0)} KiB; by rule: "
                        + ", ".join(f"{k} {v} KiB" for k, v in driver.rules_kb.items())) + "</p>")
            for f in r.findings:   # Xen's too when the boot failed: often they say why
                body.append(f"<p class=finding>{html.escape(f.kind)}: {html.escape(f.line)}</p>")
            for m in r.relocations:
                body.append(f"<p>{html.escape(m.device)} {html.escape(m.resource)}: {html.escape(m.cause or '')}</p>")
                body.append("<pre>" + html.escape("\n".join(m.evidence)) + "</pre>")
            body.append("<ul>" + "".join(f'<li class="{"pass" if c.passed else "fail"}">{html.escape(c.name)}: '
                                         f'{html.escape(c.detail)}</li>' for c in r.checks) + "</ul>")
        body.append("</section>")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>xen-pvh-rig report</title>"
            f"<style>{_css()}</style></head><body>{''.join(body)}</body></html>\n")


SUMMARY_KEYS = ("job", "scenario", "firmware", "dom0_mem", "kernel_role", "kernel", "kernel_release", "verdict",
                "stage_reached", "error", "relocations", "xen_scratch", "balloon", "balloon_driver", "outcome", "checks", "timings", "run_dir")


def write(paths: list[Path], out_dir: Path) -> Path:
    """report.html and report.json (a summary of every result below `paths`)."""
    out = out_dir / "report.html"
    out.write_text(render(paths))
    summary = [{k: d[k] for k in SUMMARY_KEYS}
               for d in (r.model_dump(mode="json") for _, r in find_results(paths))]
    (out_dir / "report.json").write_text(json.dumps(summary, indent=1) + "\n")
    return out
