"""The `rig` command. The only place that prints errors and chooses exit codes."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import shlex
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from rig.run import bench, bundle, replay, single, batch, soak
from rig import __version__, report
from rig.artefacts import archive, kernel_build
from rig.report import compare, html
from rig.report.result import Result
from rig.spec import matrix, platform
from rig.guest import terminal
from rig.host import BACKEND_NAMES
from rig.spec import scenario as scenario_mod
from rig.guest import ssh as ssh_mod
from rig.artefacts.archive import DEBIAN_KERNELS, DEFAULT_XEN, GUEST_PACKAGES, XEN_NAMES
from rig.artefacts.store import Cache
from rig.errors import EXIT_ERROR, InputError, Interrupted, RigError
from rig.units import parse_size

GUESTS = Path(__file__).resolve().parents[1] / "guests"

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


def _xen(value: str | None) -> tuple[str | None, Path | None]:
    """--xen NAME|PATH: (a Debian Xen's name, a user hypervisor's path)."""
    if value is None:
        return None, None
    if value in XEN_NAMES:
        return value, None
    if Path(value).is_file():
        return None, Path(value)
    raise InputError(f"--xen {value}: neither a Xen name ({', '.join(XEN_NAMES)}) nor a file")


def _options(args, workers: int) -> batch.Options:
    xen_name, user_xen = _xen(args.xen)
    options = batch.Options(
        out_dir=args.out, accel=args.accel, user_kernels=_pairs(args.kernel, "--kernel"),
        user_modules=_pairs(args.modules, "--modules"), user_xen=user_xen, xen_name=xen_name,
        qemu_name=args.qemu, fetch=not args.no_fetch,
        roles=args.only or None, timeout_scale=args.timeout_scale, workers=workers, retries=args.retries,
        collect_via=args.collect, backend=args.backend)
    for name, path in options.user_modules.items():
        if name not in options.user_kernels:
            raise InputError(f"--modules {name}={path}: no --kernel {name}=PATH given")
        if not path.is_dir():
            raise InputError(f"--modules {name}={path}: not a directory")
    return options


def cmd_run(args) -> int:
    options = _options(args, args.workers)
    scenario = scenario_mod.load(args.scenario, batch.known_kernels(options))
    batch.preflight(scenario, args.scenario, args.backend)
    with single.KeptHosts() as kept:
        if args.keep:
            options.keep = kept
        with _live_progress() as progress:
            out_dir, results = batch.run(scenario, options, progress=progress)
        _write_reports(results, out_dir, args.junit)
        if args.keep:
            _hold(kept, results)
    return batch.exit_code(results)


def _write_reports(results: list[dict], out_dir: Path, junit: Path | None) -> None:
    report.summary(results, out_dir)
    html.write([out_dir], out_dir)
    report.junit(results, junit or out_dir / "junit.xml")


def _hold(kept: single.KeptHosts, results: list[Result]) -> None:
    """--keep: the hosts stay up until Ctrl-C (or SIGTERM), or until every one has powered off."""
    if not kept.hosts:
        err.print("rig: --keep: no host reached collection; nothing kept")
        return
    for r in results:
        if (Path(r.run_dir) / "ssh" / "port").is_file() and r.error is None:
            err.print(f"kept {r.job}: rig ssh {r.run_dir}   (OpenSSH: ssh -F {r.run_dir}/ssh/config dom0)",
                      markup=False)
        elif r.error is None:
            err.print(f"kept {r.job} (no SSH: {r.ssh.error if r.ssh else None})", markup=False)
    err.print("hosts are up; Ctrl-C stops them")
    try:
        while kept.running():
            time.sleep(1.0)
        err.print("rig: every kept host has powered off")
    except KeyboardInterrupt:
        err.print("rig: stopping kept hosts")


def cmd_soak(args) -> int:
    if args.summarize:
        tallies = soak.summarize(args.summarize)
        out_dir = args.summarize
    else:
        if args.scenario is None:
            raise InputError("soak: a scenario is needed (or --summarize DIR)")
        options = _options(args, args.workers)
        scenario = scenario_mod.load(args.scenario, batch.known_kernels(options))
        batch.preflight(scenario, args.scenario, args.backend)
        out_dir = args.out or batch.new_out_dir(f"soak-{scenario.name}")
        args.out = out_dir   # where a traceback of the rig itself goes

        def after_round(i: int, results: list[Result]) -> None:
            line = ", ".join(f"{r.kernel_role} {r.verdict}" + (f" ({r.failure})" if r.failure else "")
                             + f" {r.total_seconds:.0f} s" for r in results)
            err.print(f"round {i}: {line}", markup=False)

        tallies = soak.run(scenario, args.rounds, out_dir, options, progress=_progress, after_round=after_round)
    path = soak.write(out_dir, tallies)
    for line in soak.lines(tallies):
        print(line)
    print(f"soak: {path}")
    return soak.exit_code(tallies)


def cmd_bench(args) -> int:
    if args.rounds < 1:
        raise InputError(f"bench: rounds {args.rounds}: must be 1 or more")
    scenario = scenario_mod.load(args.scenario, batch.known_kernels(batch.Options()))
    batch.preflight(scenario, args.scenario)
    out_dir = args.out or batch.new_out_dir(f"bench-{scenario.name}")
    args.out = out_dir
    library = sorted(Path("scenarios").glob("*.toml")) if args.library else None
    with batch.claimed(out_dir):
        summary = bench.run(scenario, args.scenario, args.rounds, out_dir,
                            ab_command=shlex.split(args.ab_command) if args.ab_command else None,
                            firmware_pair=not args.no_firmware_pair, floor_timeout=args.floor_timeout,
                            suite_command=shlex.split(args.suite) if args.suite else None, library=library,
                            progress=lambda msg: err.print(f"bench: {msg}", markup=False))
    for line in bench.lines(summary):
        print(line)
    print(f"bench: {out_dir / 'bench.json'}")
    return bench.exit_code(summary)


def cmd_shell(args) -> int:
    options = batch.Options(out_dir=args.out, accel=args.accel, timeout_scale=args.timeout_scale,
                              fetch=not args.no_fetch, collect_via=args.collect)
    scenario = scenario_mod.load(args.scenario, batch.known_kernels(options))
    batch.preflight(scenario, args.scenario)
    scenario = matrix.one_job(scenario, args.kernel, args.firmware, args.dom0_mem, set(DEBIAN_KERNELS))
    options.after = lambda host, boot: terminal.shell_on_console(host, boot, err)
    out_dir, results = batch.run(scenario, options, progress=_progress)
    _write_reports(results, out_dir, None)
    return batch.exit_code(results)


def _job_dir_with_ssh(path: Path) -> Path:
    if (path / "ssh" / "port").is_file():
        return path
    found = sorted(p.parent.parent for p in path.rglob("ssh/port") if ".failed-" not in str(p)) if path.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(f"{path}: no SSH details (ssh/port); was dom0 reached over SSH in this run?")
    raise InputError(f"{path}: {len(found)} hosts ({', '.join(str(f.relative_to(path)) for f in found)}); "
                     "name one of their directories")


def cmd_ssh(args) -> int:
    job_dir = _job_dir_with_ssh(args.run_dir)
    files = ssh_mod.SshFiles(job_dir / "ssh")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        client = ssh_mod.connect(files.port(), files.client_key(), files.known_hosts, timeout=args.timeout)
    except ssh_mod.SshError as exc:
        if str(exc).startswith("nothing answers"):
            raise ssh_mod.SshError(f"{exc}: is the host still up? only `rig run --keep` leaves it running") from exc
        raise
    try:
        return ssh_mod.interactive(client, shlex.join(command) if command else None)
    finally:
        client.close()


def cmd_repro(args) -> int:
    """One job's bundle, or every job of a run (a nightly's artefacts): each replayed in turn,
    then one table of what matched."""
    files = bundle.find_all(args.bundle)
    several = len(files) > 1
    out_root = args.out or (batch.new_out_dir("repro") if several else None)
    rows, codes, everything = [], [], []
    for file in files:
        file, data = bundle.load(file)
        # Every job replays where it ran in the original layout: <out>/<scenario>/<variant>/<role>.
        out = out_root / file.parent.parent.relative_to(args.bundle) if several else out_root
        with _live_progress() as progress:
            r = replay.run(file, data, out_dir=out, accel=args.accel, timeout_scale=args.timeout_scale,
                           retries=args.retries, fetch=not args.no_fetch, user_kernels=_pairs(args.kernel, "--kernel"),
                           allow_mismatch=args.allow_mismatch, say=_progress, progress=progress)
        everything += r.results
        if not several:
            _write_reports(r.results, r.out_dir, None)
        _progress("repro", "QEMU argv: " + ("identical to the bundle's" if r.argv_identical
                                            else f"differs from the bundle's (see {r.new_bundle})"))
        if r.differences is None:
            _progress("repro", f"no result.json beside {file}: nothing to compare")
        for d in r.differences or []:
            _progress("repro", f"differs: {d}")
        if r.differences == []:
            _progress("repro", "same verdict, firmware BARs and final BARs as the original run")
        codes.append(batch.exit_code(r.results))
        rows.append((r.results[0].job if r.results else str(file.parent), r.results[0].verdict if r.results else "?",
                     "no original" if r.differences is None else "matches" if not r.differences
                     else f"{len(r.differences)} difference(s)", str(r.out_dir)))
    if several:
        _write_reports(everything, out_root, None)   # one report, summary and JUnit for the whole replay
        for job, verdict, match, where in rows:
            print(f"{job}: {verdict}, {match} ({where})")
        print(f"{len(rows)} jobs replayed: {sum(m == 'matches' for _, _, m, _ in rows)} match the original run")
    return max(codes)


def cmd_matrix(args) -> int:
    options = _options(args, args.workers)
    shard = matrix.parse_shard(args.shard) if args.shard else None
    scenarios = []
    for path in args.scenarios:
        scenario = scenario_mod.load(path, batch.known_kernels(options))
        batch.preflight(scenario, path, args.backend)
        scenarios.append(scenario)
    with _live_progress() as progress:
        out_dir, results = batch.run_matrix(scenarios, options, shard, progress=progress)
    if not results:
        return 0  # an empty shard is not an error: there was nothing to judge
    _write_reports(results, out_dir, args.junit)
    return batch.exit_code(results)


def cmd_report(args) -> int:
    for path in args.runs:
        if not path.is_dir():
            raise InputError(f"{path}: not a run directory")
    if not html.find_results(args.runs):
        raise InputError(f"no result.json below {', '.join(map(str, args.runs))}")
    out = html.write(args.runs, args.out or args.runs[0])
    print(out)
    return 0


def cmd_compare(args) -> int:
    baseline = compare.load_baseline(args.baseline)
    run = compare.read_runs(args.runs)
    if not run.verdicts and not run.planned:
        raise RigError(f"{', '.join(map(str, args.runs))}: no job was planned or judged; nothing to compare")
    found = compare.changes(baseline, run, partial=args.partial)
    for line in found:
        print(line)
    print(f"{len(found)} verdict change(s) against {args.baseline} ({len(run.verdicts)} job result(s) read)")
    return 1 if found else 0


def cmd_fetch(args) -> int:
    cache = Cache()
    arch = platform.ARCHES[args.arch]
    for name in args.xen or [None]:
        xen = cache.xen(archive.debian_xen(name, arch.name), refresh=args.refresh)
        _progress("fetch", f"xen {xen.version}: {xen.path}")
    for name in args.qemu or []:
        qemu = cache.qemu(archive.debian_qemu(name, arch.name))
        _progress("fetch", f"qemu {name} ({qemu.source}): {qemu.path}")
    tools = cache.guest_tools(refresh=args.refresh, debian_arch=arch.debian_arch)
    _progress("fetch", f"dom0 tools {tools.digest}: {', '.join(f'{p}={v}' for p, v in sorted(tools.packages.items()) if p in GUEST_PACKAGES)}")
    for name in args.kernels or DEFAULT_FETCH:
        k = cache.kernel(name, refresh=args.refresh, arch=arch)
        _progress("fetch", f"{name} {k.version}: {k.path}")
        agent = batch.agent_initramfs(cache, tools, arch, k, cache.modules_dir(k))
        _progress("fetch", f"initramfs for {name}: {agent.path}")
    return 0


def cmd_kernel_build(args) -> int:
    request = kernel_build.BuildRequest(
        kernel_build.check_name(args.name), args.source, tuple(args.patch), tuple(args.config_fragment),
        args.config, args.jobs or (os.cpu_count() or 2), args.arch)
    art = kernel_build.build(request, Cache(), lambda msg: _progress("build", msg))
    print(f"{art.name} {art.version} {art.path}")
    return 0


def cmd_kernel_list(args) -> int:
    cache = Cache()
    for arch in platform.ARCHES:
        for name in sorted(kernel_build.known_names(cache, arch)):
            art = kernel_build.lookup(cache, name, arch)
            if art is not None:
                print(f"{name} {arch} {art.version} {art.source} {art.path}")
    return 0


def cmd_import(args) -> int:
    from rig import field_import
    name = args.name or (args.output.stem if args.output else "imported")
    imported = field_import.build(field_import.gather(args.evidence), name,
                                  parse_size(args.max_memory) if args.max_memory else None)
    out = args.output or Path(f"{name}.toml")
    # Checked as a scenario before it is written: a file on disk is one the rig runs.
    draft = out.with_name(f".{out.name}.draft")
    draft.write_text(imported.toml)
    try:
        scenario_mod.load(draft, batch.known_kernels(batch.Options()))
    except InputError as exc:
        raise RigError(f"rig import wrote a scenario it cannot run (a bug; kept in {draft}): {exc}") from exc
    draft.rename(out)
    fidelity = out.with_suffix(".fidelity.txt")
    fidelity.write_text("\n".join(imported.fidelity) + "\n")
    counts = {k: sum(n.startswith(k) for n in imported.fidelity)
              for k in ("exact", "approximated", "not modelled", "missing", "unusable")}
    print(f"{out}: {', '.join(f'{v} {k}' for k, v in counts.items() if v)} (fidelity report: {fidelity})")
    for note in imported.fidelity:
        if note.startswith(("missing", "unusable")):
            print(f"  {note}")
    return 0


def cmd_bisect(args) -> int:
    from rig.run import bisect
    scenario = scenario_mod.load(args.scenario, batch.known_kernels(batch.Options()))
    role = args.role or next(iter(scenario.expect), None)
    if role not in scenario.expect:
        raise InputError(f"--role {role}: the scenario has no expectations for it "
                         f"(roles with expectations: {', '.join(scenario.expect) or 'none'})")
    if len(scenario.variants()) != 1:
        raise InputError(f"{args.scenario}: bisect boots one host; the scenario has {len(scenario.variants())} "
                         "variants (firmware, dom0_mem, xen or qemu lists)")
    from rig.checks.verdict import check_names
    names = check_names(scenario.expect[role].resolve(scenario.variants()[0]))
    if not names:   # every boot would be "unjudged": no verdict to bisect by
        raise InputError(f"--role {role}: the scenario expects nothing of it")
    if args.check and args.check not in names:
        raise InputError(f"--check {args.check}: role {role} has no such check (it has: {', '.join(names)})")
    batch.preflight(scenario, args.scenario)
    out = args.out or batch.new_out_dir(f"bisect-{scenario.name}")
    out.mkdir(parents=True, exist_ok=True)
    oracle = bisect.scenario_oracle(scenario, role, args.good_when, args.check, out,
                                    fragments=tuple(args.config_fragment), base_config=args.config,
                                    options=batch.Options(timeout_scale=args.timeout_scale),
                                    progress=lambda m: _progress("bisect", m), error_is=args.error_is)
    criteria = {"scenario": hashlib.sha256(Path(args.scenario).read_bytes()).hexdigest()[:16], "role": role,
                "good_when": args.good_when, "check": args.check, "error_is": args.error_is,
                "config": str(args.config) if args.config else None,
                "fragments": [str(f) for f in args.config_fragment]}
    b = bisect.run(args.tree.resolve(), args.good, args.bad, oracle, out / "bisect.json", resume=args.resume,
                   progress=lambda m: _progress("bisect", m), criteria=criteria)
    html.write([out], out, bisect=b)
    for s in b.steps:
        print(f"{s.commit[:12]} {s.outcome:4} {s.seconds:6.0f} s  {s.subject[:60]}  ({s.why[:80]})")
    if b.first:
        print(f"first {'bad' if args.good_when == 'pass' else 'fixed'} commit: {b.first['commit']} {b.first['subject']}")
        return 0
    print("skipped commits hide the answer; it is one of: " + ", ".join(c[:12] for c in b.candidates))
    return EXIT_ERROR


def cmd_field_script(args) -> int:
    sys.stdout.write((GUESTS / "field" / "collect.sh").read_text())
    return 0


def cmd_validate(args) -> int:
    for path in args.scenarios:
        scenario = scenario_mod.load(path, batch.known_kernels(batch.Options(user_kernels=_pairs(args.kernel, "--kernel"))))
        batch.check_xen(scenario, path)
        print(f"{path}: ok")
    return 0


# Every option that more than one command takes, declared once: name -> (flags, argparse
# settings). A command lists the ones it takes; `_option(cmd, name, **changes)` adapts one
# (rig repro defaults to the bundle's values).
OPTIONS = {
    "out": (("--out",), dict(type=Path, help="output directory (default runs/<timestamp>-<name>/)")),
    "accel": (("--accel",), dict(default="auto", choices=["auto", *platform.ACCELS])),
    "kernel": (("--kernel",), dict(action="append", default=[], metavar="NAME=PATH",
                                   help="a user kernel (x86_64: bzImage; aarch64: Image) usable by NAME in the scenario's [kernels]")),
    "modules": (("--modules",), dict(action="append", default=[], metavar="NAME=DIR",
                                     help="the modules directory of a --kernel")),
    "xen": (("--xen",), dict(metavar="NAME|PATH", help="a Debian Xen by name (" + ", ".join(XEN_NAMES)
                                                       + "; default: the scenario's, else " + DEFAULT_XEN
                                                       + "), or a user hypervisor (xen.gz or gunzipped)")),
    "qemu": (("--qemu",), dict(metavar="NAME", choices=[platform.SYSTEM_QEMU, *archive.DEBIAN_QEMUS],
                               help="the QEMU to boot with: " + platform.SYSTEM_QEMU + " (the machine's own, "
                                    "default) or " + ", ".join(archive.DEBIAN_QEMUS) + " (Debian's, unpacked "
                                    "into the cache; the system's stays); default: the scenario's [host] qemu")),
    "only": (("--only",), dict(action="append", metavar="ROLE", help="run only this kernel role (repeatable)")),
    "timeout-scale": (("--timeout-scale",), dict(type=float, default=1.0, metavar="X",
                                                 help="multiply every stage timeout by X (default 1; stage limits "
                                                      "are in docs)")),
    "no-fetch": (("--no-fetch",), dict(action="store_true",
                                       help="fail instead of downloading missing artefacts")),
    "retries": (("--retries",), dict(type=int, default=0, metavar="N",
                                     help="boot a job again up to N times after an error (guest flakes under TCG); "
                                          "failed attempts are kept as <role>.failed-K/ and listed in result.json")),
    "junit": (("--junit",), dict(type=Path, metavar="FILE", help="JUnit XML path (default: <out>/junit.xml)")),
    "backend": (("--backend",), dict(choices=list(BACKEND_NAMES),
                                     help="run QEMU directly (default) or through libvirtd (qemu:///system, or "
                                          "$RIG_LIBVIRT_URI); default: the scenario's [host] backend")),
    "collect": (("--collect",), dict(choices=list(single.COLLECT_VIA), default="auto",
                                     help="how artefacts leave dom0: auto = SSH, the serial console if SSH fails "
                                          "(default); both = SSH judged, serial kept in via-serial/ and compared")),
    "workers": (("--workers",), dict(type=int, default=0, metavar="N",
                                     help="boots at once (default: the cores / the biggest host's vCPUs; every boot "
                                          "also holds its vCPUs' worth of the machine's core slots)")),
}
# What `rig fetch` gets unasked: the bookworm kernels the library's A/B scenarios name. Debian
# 13's and sid's come when a scenario asks for them.
DEFAULT_FETCH = sorted(n for n, k in DEBIAN_KERNELS.items() if k.codename == archive.CODENAME)
RUN_OPTIONS = ("out", "accel", "kernel", "modules", "xen", "qemu", "only", "timeout-scale", "no-fetch", "retries", "junit",
               "backend", "collect", "workers")   # rig run, matrix and soak


def _option(cmd: argparse.ArgumentParser, name: str, **changes) -> None:
    flags, settings = OPTIONS[name]
    cmd.add_argument(*flags, **{**settings, **changes})


def _options_of(cmd: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        _option(cmd, name)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rig", description="Boot Xen + PVH dom0 in QEMU and judge PCI BARs "
                                                        "and balloon memory, per kernel.")
    p.add_argument("--version", action="version", version=f"rig {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="boot every kernel of a scenario and judge it")
    run.add_argument("scenario", type=Path)
    _options_of(run, *RUN_OPTIONS)
    run.add_argument("--keep", action="store_true",
                     help="leave each host running after collection until Ctrl-C (reach it with `rig ssh`)")
    run.set_defaults(func=cmd_run)

    shell = sub.add_parser("shell", help="boot one kernel of a scenario and hand over dom0's console")
    shell.add_argument("scenario", type=Path)
    shell.add_argument("--kernel", metavar="NAME", help="a role of the scenario or a kernel name (default: first role)")
    shell.add_argument("--firmware", help="which firmware variant (default: the first)")
    shell.add_argument("--dom0-mem", metavar="SIZE", help="which dom0_mem variant (default: the first)")
    _options_of(shell, "out", "accel", "timeout-scale", "no-fetch", "collect")
    shell.set_defaults(func=cmd_shell)

    ssh = sub.add_parser("ssh", help="SSH into the dom0 of a run kept with --keep (or run one command)")
    ssh.add_argument("run_dir", type=Path, help="the job's directory (or a run directory with one host)")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND...: run it and exit with its status")
    ssh.add_argument("--timeout", type=float, default=30.0, help="seconds to connect (default 30)")
    ssh.set_defaults(func=cmd_ssh)

    repro = sub.add_parser("repro", help="replay a run's job from its bundle.json, exactly")
    repro.add_argument("bundle", type=Path, help="bundle.json, its job directory, or a run directory (every job of it, replayed in turn)")
    _option(repro, "out")
    _option(repro, "accel", choices=list(platform.ACCELS), default=None, help="default: the bundle's")
    _option(repro, "kernel", help="where a user kernel of the bundle is on this machine")
    repro.add_argument("--allow-mismatch", action="store_true",
                       help="boot even if an artefact's sha256 differs from the bundle's")
    _option(repro, "timeout-scale", default=None, help="default: the bundle's")
    _options_of(repro, "retries", "no-fetch")
    repro.set_defaults(func=cmd_repro)

    mat = sub.add_parser("matrix", help="scenario x firmware x dom0_mem x kernel on a pool of workers")
    mat.add_argument("scenarios", nargs="+", type=Path)
    mat.add_argument("--shard", metavar="I/N", help="run only shard I of N (whole hosts, deterministic)")
    _options_of(mat, *RUN_OPTIONS)
    mat.set_defaults(func=cmd_matrix)

    bench_ = sub.add_parser("bench", help="time the rig against bare QEMU with the same argv (floors, the A/B, "
                                          "ratios against the speed goals; docs/performance.md)")
    bench_.add_argument("scenario", type=Path, nargs="?", default=Path("scenarios/bar-clash-64bit.toml"),
                        help="the A/B to time (default: the default scenario)")
    bench_.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians (default 3)")
    _option(bench_, "out", help="output directory (default runs/<timestamp>-bench-<name>/)")
    bench_.add_argument("--ab-command", metavar="CMD", help="the command timed as the A/B, given --out DIR "
                        "(default: rig run SCENARIO; ci/bench.sh times ./bootstrap.sh ab)")
    bench_.add_argument("--no-firmware-pair", action="store_true",
                        help="skip the first job's floor under SeaBIOS and OVMF")
    bench_.add_argument("--floor-timeout", type=float, default=240.0, metavar="S",
                        help="seconds a floor boot may take before it counts as not powered off (default 240)")
    bench_.add_argument("--suite", metavar="CMD", help="also time this test command once (e.g. './bootstrap.sh test')")
    bench_.add_argument("--library", action="store_true", help="also time `rig matrix scenarios/*.toml` once")
    bench_.set_defaults(func=cmd_bench)

    soak_ = sub.add_parser("soak", help="boot a scenario's host N times: outcomes, failure classes and "
                                        "boot times per kernel (the flake rate)")
    soak_.add_argument("rounds", type=int, nargs="?", default=10, help="runs of the scenario (default 10)")
    soak_.add_argument("scenario", type=Path, nargs="?", help="the scenario to boot (needed unless --summarize)")
    _options_of(soak_, *RUN_OPTIONS)
    soak_.add_argument("--summarize", type=Path, metavar="DIR", help="count an existing soak directory again "
                       "(exit 0: every boot reached a verdict; 3: a boot erred)")
    soak_.set_defaults(func=cmd_soak)

    rep = sub.add_parser("report", help="write report.html (memory maps, A/B) for run directories")
    rep.add_argument("runs", nargs="+", type=Path)
    rep.add_argument("--out", type=Path, help="where report.html goes (default: the first run directory)")
    rep.set_defaults(func=cmd_report)

    cmp_ = sub.add_parser("compare", help="list verdicts that changed against a baseline (exit 1 if any)")
    cmp_.add_argument("baseline", type=Path, help="JSON: job id -> pass | fail | error | unjudged")
    cmp_.add_argument("runs", nargs="+", type=Path)
    cmp_.add_argument("--partial", action="store_true",
                      help="the runs cover only some scenarios on purpose: leave out baseline jobs of the others")
    cmp_.set_defaults(func=cmd_compare)

    fetch = sub.add_parser("fetch", help="download Xen and the named kernels into the cache")
    fetch.add_argument("kernels", nargs="*", help=f"kernel names (default: {', '.join(DEFAULT_FETCH)}; also "
                                                  f"{', '.join(sorted(set(DEBIAN_KERNELS) - set(DEFAULT_FETCH)))}, "
                                                  "which a run fetches when it needs them)")
    fetch.add_argument("--refresh", action="store_true", help="fetch again even if cached")
    fetch.add_argument("--xen", action="append", choices=list(XEN_NAMES),
                       help=f"a Debian Xen to fetch (repeatable; default: {DEFAULT_XEN})")
    fetch.add_argument("--qemu", action="append", choices=list(archive.DEBIAN_QEMUS),
                       help="another QEMU to unpack into the cache (repeatable)")
    fetch.add_argument("--arch", default="x86_64", choices=list(platform.ARCHES),
                       help="the hosts' architecture: its Xen, kernels and dom0 tools (default x86_64)")
    fetch.set_defaults(func=cmd_fetch)

    kernel = sub.add_parser("kernel", help="dom0 kernels built from source")
    ksub = kernel.add_subparsers(dest="kernel_command", required=True)
    kbuild = ksub.add_parser("build", help="build a dom0 kernel, usable as built:NAME in scenarios")
    kbuild.add_argument("name")
    kbuild.add_argument("--source", required=True,
                        help=f"{' | '.join(kernel_build.DEBIAN_SOURCES)} | a source tree | a tarball")
    kbuild.add_argument("--patch", action="append", default=[], type=Path, metavar="FILE|DIR",
                        help="a patch, or a directory of them (its `series` order); repeatable, applied in order")
    kbuild.add_argument("--config-fragment", action="append", default=[], type=Path, metavar="FILE",
                        help="Kconfig fragment(s) merged on the base (default: guests/kernel/pvh-dom0.config; "
                             "aarch64: arm64-dom0.config)")
    kbuild.add_argument("--config", type=Path, metavar="FILE", help="a base .config instead of tinyconfig")
    kbuild.add_argument("--jobs", type=int, default=0, help="make -j (default: cores)")
    kbuild.add_argument("--arch", default="x86_64", choices=list(platform.ARCHES),
                        help="the dom0's architecture (default x86_64); another than this machine's is "
                             "built with Debian's cross compiler")
    kbuild.set_defaults(func=cmd_kernel_build)
    klist = ksub.add_parser("list", help="kernels built so far")
    klist.set_defaults(func=cmd_kernel_list)

    imp = sub.add_parser("import", help="write a scenario from a field machine's evidence (rig field-script's "
                                        "tarball, a run directory, or loose lspci -vvv / dmesg / e820 files)")
    imp.add_argument("evidence", nargs="+", type=Path, metavar="TARBALL|DIR|FILE")
    imp.add_argument("-o", "--output", type=Path, metavar="FILE", help="the scenario to write (default NAME.toml)")
    imp.add_argument("--name", help="the scenario's name (default: the output file's stem)")
    imp.add_argument("--max-memory", metavar="SIZE", help="scale the host's RAM down to this (e.g. 8G)")
    imp.set_defaults(func=cmd_import)

    bis = sub.add_parser("bisect", help="find the commit of a kernel tree that changes a scenario's verdict")
    bis.add_argument("scenario", type=Path)
    bis.add_argument("--tree", type=Path, required=True, help="a Linux git tree (left untouched: a worktree of its own)")
    bis.add_argument("--good", required=True, metavar="REF")
    bis.add_argument("--bad", required=True, metavar="REF")
    bis.add_argument("--role", help="the kernel role whose expectations judge (default: the first with some)")
    bis.add_argument("--error-is", choices=["skip", "bad"], default="skip",
                     help="a commit whose boot errs twice: skip it (default), or count it bad to find the "
                          "commit that broke the boot itself")
    bis.add_argument("--good-when", choices=["pass", "fail"], default="pass",
                     help="pass: find the first commit that fails (a regression); fail: the first that passes (a fix)")
    bis.add_argument("--check", metavar="NAME", help="judge by this one check (e.g. balloon_converted), not the verdict")
    bis.add_argument("--config-fragment", action="append", default=[], type=Path, metavar="FILE")
    bis.add_argument("--config", type=Path, metavar="FILE", help="a base .config instead of tinyconfig")
    bis.add_argument("--timeout-scale", type=float, default=1.0, metavar="X")
    bis.add_argument("--out", type=Path, help="output directory (default runs/<timestamp>-bisect-<name>/)")
    bis.add_argument("--resume", action="store_true", help="go on from the bisect.json in --out")
    bis.set_defaults(func=cmd_bisect)

    fs = sub.add_parser("field-script", help="print the POSIX sh script that collects a field machine's evidence")
    fs.set_defaults(func=cmd_field_script)

    validate = sub.add_parser("validate", help="check scenario files without booting anything")
    validate.add_argument("scenarios", nargs="+", type=Path)
    _option(validate, "kernel")
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
    if not args.verbose:
        # paramiko logs a traceback at ERROR for a handshake that fails in its thread, and
        # qemu.qmp an ERROR line for a monitor whose QEMU died; the rig reports both failures
        # itself (result.json's ssh.error, the job's error), in one line.
        for library in ("paramiko", "qemu.qmp"):
            logging.getLogger(library).setLevel(logging.CRITICAL)
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
    except Exception as exc:  # noqa: BLE001 - a bug or the machine failing: an error (3), never "an expectation failed"
        err.print(f"rig: internal error: {type(exc).__name__}: {exc} ({_save_traceback(args)})", markup=False)
        return EXIT_ERROR


def _save_traceback(args) -> str:
    """Where the traceback went: the run's --out if it takes it, else the temp directory."""
    text = traceback.format_exc()
    out = getattr(args, "out", None)
    for folder in ([out] if out else []) + [Path(tempfile.gettempdir())]:
        try:
            path = Path(folder) / f"rig-traceback-{os.getpid()}.txt"
            path.write_text(text)
            return f"traceback: {path}"
        except OSError:
            continue
    return "traceback not saved: no writable directory"


if __name__ == "__main__":
    sys.exit(main())
