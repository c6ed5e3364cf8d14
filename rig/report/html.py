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
from rig.spec import platform
from rig.report import result as result_mod
from rig.report.result import Result
from rig.units import format_size

# The SVG's own coordinates; it is drawn at the page's full width (viewBox), so these only
# set proportions. AXIS: room for the rotated address labels under the lanes.
WIDTH, LANE, LABEL, AXIS = 1600, 30, 150, 110
CHAR = 6.2   # px per character of the 10px label font, to decide what fits in a box
MIN_GAP = 12  # the narrowest gap between two boundaries, before scaling
TICK_GAP = 18  # between two address labels: their height, 11px, over sin(40 degrees)
COLOURS = {"ram": "#8fd18f", "reserved": "#c8c8c8", "acpi": "#9ec9f0", "nvs": "#9ec9f0",
           "unusable": "#f3c57a", "window": "#d9d2f0", "bar": "#7a9ee8", "moved": "#e05050",
           "scratch": "#b03aa0", "converted": "#3aa05a", "regions": "#2a9d9d"}
E820_NAMES = {"ram": "RAM", "reserved": "rsvd", "acpi": "ACPI", "nvs": "NVS", "unusable": "UNUSABLE"}
FIRMWARE_LANE, FINAL_LANE = "BARs (firmware)", "BARs (final)"

Box = tuple[int, int, str, str]   # start, end (inclusive), css class, label


def _bar_label(device: str, resource: str) -> str:
    """"00:01.0 BAR 2" from "0000:00:01.0", "BAR 2": the domain is always 0000 here."""
    return f"{device.removeprefix('0000:')} {resource}"


def _lanes(run_dir: Path, result: Result) -> list[tuple[str, list[Box]]]:
    """[(lane name, [(start, end, css class, label)])] for one run."""
    e820_file, iomem_file = run_dir / ARTEFACT_FILES["e820"], run_dir / ARTEFACT_FILES["iomem"]
    tree = iomem_parse.parse(iomem_file.read_text()) if iomem_file.exists() else []
    e820_text = e820_file.read_text() if e820_file.exists() else ""
    if e820_text.strip() == "absent":   # Arm: the RAM dom0 has, as /proc/iomem lists it
        e820 = [e820_parse.E820Entry(e.start, e.end, "ram") for e in tree if e.depth == 0 and e.name == "System RAM"]
    else:
        e820 = e820_parse.from_memmap(e820_text) if e820_text else []
    arch = platform.ARCHES.get(result.arch)
    moved = {(m.device, m.resource) for m in result.relocations}
    mem = [r for r in result.pci_resources if r.kind == "mem"]
    bars = [r for r in mem if not r.resource.startswith("bridge window")]
    windows = [r for r in mem if r.resource.startswith("bridge window")]

    def placed(rows, where: str) -> list[Box]:
        out = []
        for r in rows:
            span = getattr(r, where)
            if span:
                was_moved = where == "final" and (r.device, r.resource) in moved
                out.append((*span, "bar-moved" if was_moved else ("window" if r in windows else "bar"),
                            _bar_label(r.device, r.resource) + (" MOVED" if was_moved else "")))
        return out

    # One lane per kind and moment, so that no box hides another's label: host bridge
    # windows from /proc/iomem, bridge windows and BARs where firmware put them and where
    # dom0 left them (from the resource table, which has both).
    return [
        ("e820", [(e.start, e.end, f"e820-{e.type.split(':')[0]}", E820_NAMES.get(e.type, e.type)) for e in e820]),
        ("host windows", [(w.start, w.end, "window", w.name)
                          for w in iomem_parse.bus_windows(tree, arch.host_window_name if arch else None)
                          if w.depth == 0]),
        *([("bridge windows (firmware)", placed(windows, "firmware")),
           ("bridge windows (final)", placed(windows, "final"))] if windows else []),
        (FIRMWARE_LANE, placed(bars, "firmware")),
        (FINAL_LANE, placed(bars, "final")),
        ("Xen scratch", [(s, e, "scratch", "Xen scratch") for s, e in result.xen_scratch]),
        ("balloon (converted)", [(s, e, "converted", "UNUSABLE -> RAM") for s, e in result.converted_to_ram]),
        *([("Xen extended regions", [(s, e, "regions", "extended region") for s, e in result.xen.extended_regions])]
          if result.xen and result.xen.extended_regions else []),
        *([("foreign mapping (probe)", [(fm.address, fm.address + fm.page - 1, "scratch", "mapped page")])]
          if (fm := result.foreign_mapping) and fm.mapped else []),
    ]


def _axis(all_lanes) -> dict[int, float]:
    """x of every range boundary: ordinal (a 4 KiB BAR and a 1 TiB hole both readable), each
    gap between neighbouring boundaries as wide as the labels of the boxes that span it ask
    for, then all scaled into the drawing's width."""
    # a box's label is two lines, its name over its size
    boxes = [(s, e + 1, max(label, _size(e - s + 1), key=len)) for lanes in all_lanes
             for _, items in lanes for s, e, _, label in items]
    points = sorted({p for s, end, _ in boxes for p in (s, end)})
    index = {p: i for i, p in enumerate(points)}
    want = [MIN_GAP] * max(0, len(points) - 1)
    for s, end, text in boxes:
        gaps = range(index[s], index[end])
        share = (len(text) * CHAR + 8) / max(1, len(gaps))
        for g in gaps:
            want[g] = max(want[g], share)
    scale = (WIDTH - LABEL - 10) / max(1.0, sum(want))
    xs, x = {}, float(LABEL)
    for i, p in enumerate(points):
        xs[p] = x
        if i < len(want):
            x += want[i] * scale
    return xs


def _size(n: int) -> str:
    """A size to read at a glance: "1G", "128K", "1.5G", "511.4M", "218B" (hover has it exact)."""
    for unit, factor in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= factor:
            value = n / factor
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return f"{n}B"


def _fit(text: str, width: float) -> str:
    """The first of `text`, its first word, its first four letters that fits in `width` px;
    "" if none does (the box's tooltip still names it)."""
    for candidate in (text, text.split(" ")[0], text[:4]):
        if len(candidate) * CHAR + 6 <= width:
            return candidate
    return ""


def _svg(title: str, lanes, axis: dict[int, float], moves: list[tuple[str, str]]) -> str:
    height = LANE * len(lanes) + AXIS
    out = [f'<svg class="memmap" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
           f'width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="{html.escape(title)}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" markerHeight="5" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>']
    centres: dict[tuple[str, str], tuple[float, float]] = {}
    labels: list[str] = []
    for i, (name, items) in enumerate(lanes):
        y = LANE * i + 4
        out.append(f'<text x="4" y="{y + 17}" class="lane">{html.escape(name)}</text>')
        for s, e, cls, label in items:
            x0, x1 = axis[s], axis[e + 1]
            w = max(1.0, x1 - x0)
            out.append(f'<g class="box"><rect class="{cls}" x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{LANE - 6}">'
                       f'<title>{html.escape(label)}: [{s:#x}-{e:#x}], {format_size(e - s + 1)}</title></rect></g>')
            line1, line2 = _fit(label, w), _fit(_size(e - s + 1), w)
            if line1 or line2:   # drawn after every box, so that an overlapping box never hides it
                cx = f"{x0 + w / 2:.1f}"
                labels.append(f'<text class="label" x="{cx}" y="{y + 10}" text-anchor="middle">'
                              f'<tspan x="{cx}" y="{y + 10}">{html.escape(line1)}</tspan>'
                              f'<tspan x="{cx}" y="{y + 21}">{html.escape(line2)}</tspan></text>')
            centres[(name, label.removesuffix(" MOVED"))] = (x0 + w / 2, y + (LANE - 6) / 2)
    out += labels
    for device_bar in dict.fromkeys(f"{_bar_label(d, r)}" for d, r in moves):
        firmware_lane, final_lane = ((FIRMWARE_LANE, FINAL_LANE) if "bridge window" not in device_bar else
                                     ("bridge windows (firmware)", "bridge windows (final)"))
        a, b = centres.get((firmware_lane, device_bar)), centres.get((final_lane, device_bar))
        if a and b:   # from where the firmware put it to where dom0 left it
            # down from the firmware box, along the gap between the lanes, down into the final box
            bottom, top = a[1] + (LANE - 6) / 2, b[1] - (LANE - 6) / 2
            out.append(f'<path class="move-arrow" d="M{a[0]:.1f},{bottom:.1f} V{top - 3:.1f} H{b[0]:.1f} '
                       f'V{top + 1:.1f}" marker-end="url(#arrow)"><title>{html.escape(device_bar)} moved: from '
                       f'its firmware address to its final one</title></path>')
    # Address labels, rotated so that none overlaps its neighbour, anchored at their end so
    # that none runs past the right edge; the first sits right of the lane names.
    y = LANE * len(lanes) + 8
    shown: list[tuple[int, float]] = []
    for addr, x in sorted(axis.items()):   # a label only where it has room from the last one
        if not shown or x - shown[-1][1] >= TICK_GAP:
            shown.append((addr, x))
    for addr, x in shown:
        out.append(f'<line class="tick-mark" x1="{x:.1f}" y1="{y - 6}" x2="{x:.1f}" y2="{y - 2}"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 4}" class="tick" text-anchor="end" '
                   f'transform="rotate(-40 {x:.1f} {y + 4})">{addr:#x}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _css() -> str:
    rules = [f".{k}{{fill:{v}}}" for k, v in COLOURS.items() if k not in ("bar", "moved")]
    rules += [f".e820-{k}{{fill:{v}}}" for k, v in COLOURS.items()]
    rules += [f".bar{{fill:{COLOURS['bar']}}}", f".bar-moved{{fill:{COLOURS['moved']}}}",
              "body{font:14px sans-serif;margin:20px}", ".lane,.tick{font-size:11px}", ".label{font-size:10px}",
              ".label{pointer-events:none;fill:#111}", ".box rect{stroke:#fff;stroke-width:0.5}",
              ".box:hover rect{stroke:#000;stroke-width:1.5}",
              ".move-arrow{stroke:#900;stroke-width:2.5;fill:none}", ".arrowhead{fill:#900}",
              ".tick-mark{stroke:#666}", "svg.memmap{display:block;max-width:100%}",
              ".pass{color:#070}.fail{color:#b00}.error{color:#b60}", "pre{background:#f4f4f4;padding:6px}",
              "table.matrix{border-collapse:collapse;margin:10px 0 20px}",
              "table.matrix th,table.matrix td{border:1px solid #bbb;padding:4px 8px;vertical-align:top}",
              "table.matrix td.pass{background:#e6f4e6}table.matrix td.fail{background:#fbe3e3}",
              "table.matrix td.error{background:#fdf0dc}table.matrix .moved{font-size:12px;color:#333}"]
    return "\n".join(rules)


def find_results(paths: list[Path]) -> list[tuple[Path, Result]]:
    return [(f.parent, result_mod.load(f)) for p in paths for f in sorted(p.rglob("result.json"))]


def _qemu(r: Result) -> str:
    return (r.qemu or "?").split()[0]


def _host_key(r: Result) -> tuple:
    # One host per Xen and per QEMU too: two Xens' maps of the same scenario are not one A/B.
    return (r.scenario, r.firmware, r.dom0_mem, r.xen.version if r.xen else None, _qemu(r))


def _reference_first(r: Result) -> tuple:
    return (not r.kernel_role.startswith("unpatched"), r.kernel_role)


def _moved_text(r: Result) -> str:
    if r.error:
        return r.failure or "error"
    return "; ".join(f"{_bar_label(m.device, m.resource)} {m.firmware[0]:#x}→"
                     + (f"{m.final[0]:#x}" if m.final else "unassigned") for m in r.relocations) or "nothing moved"


def matrix_table(runs: list[tuple[Path, Result]], anchors: dict[tuple, str]) -> str:
    """Rows scenario x firmware x dom0_mem, columns Xen (x QEMU, when more than one ran) x
    kernel: each cell the verdict and what moved, linked to its host's memory map."""
    qemus = {_qemu(r) for _, r in runs}
    def column(r: Result) -> tuple:
        return ((r.xen.version if r.xen else None) or "?", _qemu(r) if len(qemus) > 1 else "", r.kernel)
    rows = list(dict.fromkeys((r.scenario, r.firmware, r.dom0_mem) for _, r in runs))
    arch_of = {(r.scenario, r.firmware, r.dom0_mem): r.arch for _, r in runs}   # x86 and arm64 side by side
    arches = set(arch_of.values())
    kernels = list(dict.fromkeys(r.kernel for _, r in sorted(runs, key=lambda x: _reference_first(x[1]))))
    cols = sorted({column(r) for _, r in runs}, key=lambda c: (c[0], c[1], kernels.index(c[2])))
    cells: dict[tuple, list[Result]] = {}
    for _, r in runs:
        cells.setdefault(((r.scenario, r.firmware, r.dom0_mem), column(r)), []).append(r)
    head = "".join(f"<th>Xen {html.escape(x)}{f'<br>QEMU {html.escape(q)}' if q else ''}<br>{html.escape(k)}</th>"
                   for x, q, k in cols)
    out = [f'<table class="matrix"><tr><th>scenario / firmware / dom0_mem</th>{head}</tr>']
    for row in rows:
        out.append(f"<tr><th>{html.escape(' / '.join(row) + (f' ({arch_of[row]})' if len(arches) > 1 else ''))}</th>")
        for col in cols:
            members = cells.get((row, col), [])
            if not members:
                out.append("<td></td>")
                continue
            worst = next((v for v in ("error", "fail", "unjudged", "pass") if any(m.verdict == v for m in members)))
            parts = [f'<a href="#{anchors[_host_key(m)]}">{html.escape(m.verdict)}</a>'
                     f'<div class="moved">{html.escape(_moved_text(m))}</div>' for m in members]
            out.append(f'<td class="{worst}">{"".join(parts)}</td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def bisect_table(bisect, anchors: dict[Path, str]) -> str:
    """A bisect's steps in the order they ran, each linked to its boot's memory map; the
    answer (or the skipped commits hiding it) above them."""
    if bisect.first:
        answer = f"first commit that changes the verdict: {bisect.first['commit'][:12]} {bisect.first['subject']}"
    elif bisect.finished:
        answer = "skipped commits hide the answer; it is one of: " + ", ".join(c[:12] for c in bisect.candidates)
    else:
        answer = "not finished: go on with --resume"
    out = [f"<h2>bisect {html.escape(bisect.good[:12])}..{html.escape(bisect.bad[:12])}</h2>",
           f"<p class=outcome>{html.escape(answer)}</p>",
           '<table class="matrix"><tr><th>step</th><th>commit</th><th>subject</th><th>outcome</th>'
           "<th>why</th><th>seconds</th></tr>"]
    for i, s in enumerate(bisect.steps, 1):
        anchor = anchors.get(Path(s.run_dir).resolve()) if s.run_dir else None
        why = html.escape(s.why)
        if anchor:
            why = f'<a href="#{anchor}">{why}</a>'
        cls = {"good": "pass", "bad": "fail"}.get(s.outcome, "error")
        out.append(f"<tr><td>{i}</td><td><code>{html.escape(s.commit[:12])}</code></td><td>{html.escape(s.subject)}</td>"
                   f'<td class="{cls}">{html.escape(s.outcome)}</td>'
                   f"<td>{why}</td><td>{s.seconds:.0f}</td></tr>")
    out.append("</table>")
    return "".join(out)


def render(paths: list[Path], bisect=None) -> str:
    runs = find_results(paths)
    run_anchors = {run_dir.resolve(): f"run-{i}" for i, (run_dir, _) in enumerate(runs)}
    hosts: dict[tuple, list[tuple[Path, Result]]] = {}
    for run_dir, r in runs:
        hosts.setdefault(_host_key(r), []).append((run_dir, r))
    anchors = {key: f"host-{i}" for i, key in enumerate(hosts)}
    legend = "".join(f'<svg width="12" height="12"><rect class="{cls}" width="12" height="12"/></svg> {name} &nbsp; '
                     for cls, name in (("e820-ram", "RAM"), ("e820-unusable", "UNUSABLE"), ("e820-reserved", "reserved"),
                                       ("window", "PCI window"), ("bar", "BAR"), ("bar-moved", "moved BAR"),
                                       ("scratch", "Xen scratch"), ("converted", "balloon RAM"),
                                       ("regions", "Xen extended region")))
    body = [f"<h1>xen-pvh-rig report</h1><p>{len(runs)} runs on {len(hosts)} hosts</p>",
            bisect_table(bisect, run_anchors) if bisect else "",
            matrix_table(runs, anchors) if runs else "", f"<p>{legend}</p>"]
    for key, members in hosts.items():
        scenario, firmware, dom0_mem, xen, qemu = key
        members.sort(key=lambda m: _reference_first(m[1]))
        lanes = {run_dir: _lanes(run_dir, r) for run_dir, r in members}
        axis = _axis(lanes.values())
        body.append(f'<section class="host" id="{anchors[key]}"><h2>{html.escape(scenario)} ({firmware}, '
                    f'dom0_mem={dom0_mem}, Xen {html.escape(xen or "?")}, QEMU {html.escape(qemu)})</h2>')
        for run_dir, r in members:
            title = f"{r.kernel_role}: {r.kernel} {r.kernel_release or ''}"
            body.append(f'<h3 id="{run_anchors[run_dir.resolve()]}">{html.escape(title)} '
                        f'<span class="{r.verdict}">{r.verdict}</span></h3>')
            if r.error:
                body.append(f"<p class=error>{html.escape(r.error)}</p>")
            else:
                if r.outcome:
                    body.append(f"<p class=outcome>{html.escape(r.outcome.summary)}</p>")
                body.append(_svg(title, lanes[run_dir], axis, [(m.device, m.resource) for m in r.relocations]))
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


def write(paths: list[Path], out_dir: Path, bisect=None) -> Path:
    """report.html and report.json (a summary of every result below `paths`); with a
    bisect (rig.run.bisect.Bisect), its steps head the page."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "report.html"
    out.write_text(render(paths, bisect))
    summary = [{k: d[k] for k in SUMMARY_KEYS}
               for d in (r.model_dump(mode="json") for _, r in find_results(paths))]
    (out_dir / "report.json").write_text(json.dumps(summary, indent=1) + "\n")
    return out
