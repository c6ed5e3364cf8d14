"""The `rig` command. The only place that prints errors and chooses exit codes."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from . import (
    __version__,
    compare,
    html_report,
    initramfs,
    matrix,
    platform,
    report,
    session,
)
from . import scenario as scenario_mod
from .artefacts import DEBIAN_KERNELS, Cache
from .errors import InputError, Interrupted, RigError

err = Console(stderr=True, highlight=False, soft_wrap=True)


def _pairs(values: list[str], flag: str) -> dict[str, Path]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise InputError(f"{flag} {v!r}: want NAME=PATH")
        out[name] = Path(path)
    return out


def _progress(label: str, message: str) -> None:
    err.print(f"[bold]{escape('[' + label + ']')}[/bold] {escape(message)}")


@contextlib.contextmanager
def _live_progress():
    """On a terminal: one live row per job with its latest stage. Elsewhere (CI logs,
    pipes): plain lines, one per event."""
    if not err.is_terminal:
        yield _progress
        return
    rows: dict[str, str] = {}
    started = time.monotonic()

    def table() -> Table:
        t = Table(box=None, show_header=False, title=f"{time.monotonic() - started:.0f} s")
        for label, message in rows.items():
            t.add_row(f"[bold]{escape(label)}[/bold]", escape(message))
        return t

    with Live(table(), console=err, refresh_per_second=4) as live:
        def update(label: str, message: str) -> None:
            rows[label] = message
            live.update(table())
        yield update


def _options(args, workers: int) -> session.Options:
    options = session.Options(
        out_dir=args.out, accel=args.accel, user_kernels=_pairs(args.kernel, "--kernel"),
        user_modules=_pairs(args.modules, "--modules"), user_xen=args.xen, fetch=not args.no_fetch,
        roles=args.only or None, timeout_scale=args.timeout_scale, workers=workers, retries=args.retries)
    if args.retries < 0:
        raise InputError(f"--retries {args.retries}: must be 0 or more")
    if args.timeout_scale <= 0:
        raise InputError(f"--timeout-scale {args.timeout_scale}: must be positive")
    if workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    for name, path in options.user_modules.items():
        if name not in options.user_kernels:
            raise InputError(f"--modules {name}={path}: no --kernel {name}=PATH given")
        if not path.is_dir():
            raise InputError(f"--modules {name}={path}: not a directory")
    return options


def cmd_run(args) -> int:
    options = _options(args, args.workers)
    scenario = scenario_mod.load(args.scenario, session.known_kernels(options))
    session.preflight(scenario, args.scenario)
    with _live_progress() as progress:
        out_dir, results = session.run(scenario, options, progress=progress)
    report.summary(results, out_dir)
    html_report.write([out_dir], out_dir)
    report.junit(results, args.junit or out_dir / "junit.xml")
    return session.exit_code(results)


def cmd_matrix(args) -> int:
    options = _options(args, args.workers or session.default_workers())
    shard = matrix.parse_shard(args.shard) if args.shard else None
    scenarios = []
    for path in args.scenarios:
        scenario = scenario_mod.load(path, session.known_kernels(options))
        session.preflight(scenario, path)
        scenarios.append(scenario)
    with _live_progress() as progress:
        out_dir, results = session.run_matrix(scenarios, options, shard, progress=progress)
    if not results:
        return 0  # an empty shard is not an error: there was nothing to judge
    report.summary(results, out_dir)
    html_report.write([out_dir], out_dir)
    report.junit(results, args.junit or out_dir / "junit.xml")
    return session.exit_code(results)


def cmd_report(args) -> int:
    for path in args.runs:
        if not path.is_dir():
            raise InputError(f"{path}: not a run directory")
    if not html_report.find_results(args.runs):
        raise InputError(f"no result.json below {', '.join(map(str, args.runs))}")
    out = html_report.write(args.runs, args.out or args.runs[0])
    print(out)
    return 0


def cmd_compare(args) -> int:
    found = compare.changes(compare.load_baseline(args.baseline), compare.verdicts(args.runs))
    for line in found:
        print(line)
    print(f"{len(found)} verdict change(s) against {args.baseline}")
    return 1 if found else 0


def cmd_fetch(args) -> int:
    cache = Cache()
    arch = platform.ARCHES["x86_64"]
    xen = cache.xen(arch, refresh=args.refresh)
    _progress("fetch", f"xen {xen.version}: {xen.path}")
    for name in args.kernels or sorted(DEBIAN_KERNELS):
        k = cache.kernel(name, refresh=args.refresh)
        _progress("fetch", f"{name} {k.version}: {k.path}")
    agent = initramfs.build(cache)
    _progress("fetch", f"initramfs: {agent.path}")
    return 0


def cmd_validate(args) -> int:
    for path in args.scenarios:
        scenario_mod.load(path, set(DEBIAN_KERNELS) | set(_pairs(args.kernel, "--kernel")))
        print(f"{path}: ok")
    return 0


def _run_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--out", type=Path, help="output directory (default runs/<timestamp>-<name>/)")
    cmd.add_argument("--accel", default="auto", choices=["auto", *platform.ACCELS])
    cmd.add_argument("--kernel", action="append", default=[], metavar="NAME=PATH",
                     help="a user kernel (bzImage) usable by NAME in the scenario's [kernels]")
    cmd.add_argument("--modules", action="append", default=[], metavar="NAME=DIR",
                     help="the modules directory of a --kernel")
    cmd.add_argument("--xen", type=Path, help="a user hypervisor (xen.gz or gunzipped)")
    cmd.add_argument("--only", action="append", metavar="ROLE", help="run only this kernel role (repeatable)")
    cmd.add_argument("--timeout-scale", type=float, default=1.0, metavar="X",
                     help="multiply every stage timeout by X (default 1; stage limits are in docs)")
    cmd.add_argument("--no-fetch", action="store_true", help="fail instead of downloading missing artefacts")
    cmd.add_argument("--retries", type=int, default=0, metavar="N",
                     help="boot a job again up to N times after an error (guest flakes under TCG); "
                          "failed attempts are kept as <role>.failed-K/ and listed in result.json")
    cmd.add_argument("--junit", type=Path, metavar="FILE", help="JUnit XML path (default: <out>/junit.xml)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rig", description="Boot Xen + PVH dom0 in QEMU and judge PCI BARs "
                                                        "and balloon memory, per kernel.")
    p.add_argument("--version", action="version", version=f"rig {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="boot every kernel of a scenario and judge it")
    run.add_argument("scenario", type=Path)
    _run_options(run)
    run.add_argument("--workers", type=int, default=1, help="boots at once (default 1)")
    run.set_defaults(func=cmd_run)

    mat = sub.add_parser("matrix", help="scenario x firmware x dom0_mem x kernel on a pool of workers")
    mat.add_argument("scenarios", nargs="+", type=Path)
    mat.add_argument("--shard", metavar="I/N", help="run only shard I of N (whole hosts, deterministic)")
    _run_options(mat)
    mat.add_argument("--workers", type=int, default=0,
                     help=f"boots at once (default: cores / 2, here {session.default_workers()})")
    mat.set_defaults(func=cmd_matrix)

    rep = sub.add_parser("report", help="write report.html (memory maps, A/B) for run directories")
    rep.add_argument("runs", nargs="+", type=Path)
    rep.add_argument("--out", type=Path, help="where report.html goes (default: the first run directory)")
    rep.set_defaults(func=cmd_report)

    cmp_ = sub.add_parser("compare", help="list verdicts that changed against a baseline (exit 1 if any)")
    cmp_.add_argument("baseline", type=Path, help="JSON: job id -> pass | fail | error")
    cmp_.add_argument("runs", nargs="+", type=Path)
    cmp_.set_defaults(func=cmd_compare)

    fetch = sub.add_parser("fetch", help="download Xen and the named kernels into the cache")
    fetch.add_argument("kernels", nargs="*", help=f"kernel names (default: {', '.join(sorted(DEBIAN_KERNELS))})")
    fetch.add_argument("--refresh", action="store_true", help="fetch again even if cached")
    fetch.set_defaults(func=cmd_fetch)

    validate = sub.add_parser("validate", help="check scenario files without booting anything")
    validate.add_argument("scenarios", nargs="+", type=Path)
    validate.add_argument("--kernel", action="append", default=[], metavar="NAME=PATH")
    validate.set_defaults(func=cmd_validate)
    return p


def _raise_interrupt(signum, frame):
    # SIGTERM/SIGHUP unwind like Ctrl-C, so every context manager tears its QEMU down.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        err.print("rig: interrupted; QEMU stopped, artefacts kept")
        return Interrupted.exit_code
    except RigError as exc:
        err.print(f"rig: {exc}", markup=False)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
