"""`rig run` and `rig matrix`: resolve artefacts, boot every job, judge, write results.

Usable without the CLI (and, later, from the pytest plugin).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rig.run import bundle, cores, single
from rig.report import compare
from rig.artefacts import archive, initramfs, kernel_build
from rig.spec import matrix, platform
from rig import report
from rig.report.result import Result
from rig.spec import plan as plan_mod
from rig.artefacts.archive import DEBIAN_KERNELS, GuestTools
from rig.artefacts.store import Artefact, Cache
from rig.checks import verdict as verdict_mod
from rig.errors import EXIT_ERROR, EXIT_EXPECTATION_FAILED, EXIT_OK, ArtefactError, CollectError, InputError, LaunchError, ScenarioError
from rig.host import qemu_argv
from rig.spec.scenario import Scenario
from rig.units import format_size


@dataclass
class Options:
    out_dir: Path | None = None
    accel: str = "auto"
    user_kernels: dict[str, Path] = field(default_factory=dict)
    user_modules: dict[str, Path] = field(default_factory=dict)
    user_xen: Path | None = None
    xen_name: str | None = None      # a Debian Xen by name for every scenario (--xen 4.20)
    qemu_name: str | None = None     # a QEMU by name for every scenario (--qemu 10.0)
    fetch: bool = True
    roles: list[str] | None = None   # run only these kernel roles
    timeout_scale: float = 1.0       # multiplies every stage timeout (slow or loaded machines)
    retries: int = 0                 # boot again after an error, keeping each failed attempt
    workers: int = 0                 # boots at once; 0: default_workers(jobs)
    collect_via: str = "auto"        # "auto" (SSH, else serial), "serial", "both" (SSH judged, serial compared)
    keep: single.KeptHosts | None = None   # leave each host running in here after collection
    after: Callable | None = None    # run on the live host after collection instead of powering off
    tools_pins: dict[str, str] | None = None   # exact dom0 tool package versions (a replay)
    pinned_kernels: dict[str, Artefact] = field(default_factory=dict)  # by name, already verified (a replay)
    pinned_xen: Artefact | None = None
    backend: str | None = None       # "qemu" | "libvirt"; None: the scenario's [host] backend

    def __post_init__(self) -> None:
        # Every front end (rig run, shell, repro, bench, the pytest plugin) gets the same refusals.
        if self.retries < 0:
            raise InputError(f"--retries {self.retries}: must be 0 or more")
        if self.timeout_scale <= 0:
            raise InputError(f"--timeout-scale {self.timeout_scale}: must be positive")
        if self.workers < 0:
            raise InputError(f"--workers {self.workers}: must be 0 (one boot per host's worth of cores) or more")
        if self.collect_via not in single.COLLECT_VIA:
            raise InputError(f"--collect {self.collect_via}: want one of {', '.join(single.COLLECT_VIA)}")


def default_workers(jobs: list[matrix.Job] | None = None) -> int:
    """Boots this rig starts at once: the cores divided by the vCPUs of the biggest host.
    Each boot also holds its vCPUs' worth of machine-wide core slots (rig/run/cores.py), so
    other rigs on the machine (pytest-xdist workers, parallel jobs) share the same cores."""
    cpus = max((j.scenario.host.cpus for j in jobs), default=2) if jobs else 2
    return max(1, cores.total() // cpus)


def known_kernels(options: Options, cache: Cache | None = None) -> set[str]:
    return set(DEBIAN_KERNELS) | set(options.user_kernels) | kernel_build.known_names(cache or Cache())


def new_out_dir(name: str, base: Path = Path("runs")) -> Path:
    """runs/<timestamp>-<name>[-N]: created atomically, so parallel runs never share it."""
    base.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    for n in range(1, 1000):
        path = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise InputError(f"{base}: could not create a fresh run directory for {stem}")


def preflight(scenario: Scenario, source: Path | str, backend: str | None = None) -> None:
    """Input errors that only the host can detect, reported before anything boots."""
    if (backend or scenario.host.backend) == "libvirt" and scenario.host.arch != "x86_64":
        raise InputError(f"--backend libvirt: runs x86_64 hosts only, not {scenario.host.arch}")
    if (backend or scenario.host.backend) == "libvirt":
        from rig.host import libvirt
        if not libvirt.available():
            raise LaunchError(libvirt.MISSING_LIBRARY)
    arch = platform.lookup(platform.ARCHES, scenario.host.arch, "architecture")
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if scenario.host.memory > ram:
        # Xen scrubs all of its RAM at boot: QEMU would touch every byte, and this machine has less.
        raise ScenarioError(source, "host.memory", f"{format_size(scenario.host.memory)} is more than this "
                                                   f"machine's RAM ({ram / 2**30:.1f} GiB)")
    check_xen(scenario, source)
    if (backend or scenario.host.backend) == "libvirt" and \
            any(v.qemu not in (None, platform.SYSTEM_QEMU) for v in scenario.variants()):
        raise ScenarioError(source, "host.qemu", "the libvirt backend runs libvirtd's own emulator; "
                                                 "another QEMU needs --backend qemu")
    missing = qemu_argv.unknown_devices(arch.qemu_binary, [d.device for d in scenario.host.pci], arch.qemu_package)
    if missing:
        i = [d.device for d in scenario.host.pci].index(missing[0])
        raise ScenarioError(source, f"host.pci.{i}.device", f"{arch.qemu_binary} has no device {missing[0]!r}")


USER_XEN = "user"   # the Xen name of jobs booted with --xen PATH: their ids never match a Debian Xen's


def with_xen(scenario: Scenario, options: Options) -> Scenario:
    """The scenario with the Xen and QEMU the command line names (--xen 4.20 or PATH,
    --qemu 10.0): one each, in place of the scenario's own (or its list)."""
    name = options.xen_name
    if options.user_xen is not None:
        if scenario.xen.version is not None:
            raise InputError(f"--xen {options.user_xen}: scenario {scenario.name} names Xen {scenario.xen.version} "
                             "(xen.version); a user hypervisor boots only scenarios that name none")
        name = USER_XEN
    if name is not None:
        scenario = scenario.model_copy(update={"xen": scenario.xen.model_copy(update={"version": name})})
    if options.qemu_name is not None:
        scenario = scenario.model_copy(update={"host": scenario.host.model_copy(update={"qemu": options.qemu_name})})
    return scenario


def check_xen(scenario: Scenario, source: Path | str) -> None:
    """A scenario's xen.version and host.qemu name a Xen and a QEMU the rig knows (bad input,
    before anything boots)."""
    arch = platform.lookup(platform.ARCHES, scenario.host.arch, "architecture")
    for key, names, lookup in (("xen.version", scenario.xen.version, archive.debian_xen),
                               ("host.qemu", scenario.host.qemu, archive.debian_qemu)):
        for name in names if isinstance(names, list) else [names]:
            if name == USER_XEN and key == "xen.version":
                continue
            try:
                lookup(name, arch.name)
            except InputError as exc:
                raise ScenarioError(source, key, str(exc)) from exc


def only_roles(scenario: Scenario, roles: list[str] | None) -> Scenario:
    if not roles:
        return scenario
    unknown = [r for r in roles if r not in scenario.kernels]
    if unknown:
        raise InputError(f"--only {unknown[0]}: no such kernel role (roles: {', '.join(scenario.kernels)})")
    return scenario.model_copy(update={"kernels": {r: scenario.kernels[r] for r in roles}})


@dataclass(frozen=True)
class Artefacts:
    xens: dict[str | None, Artefact]   # by the jobs' Xen name (None: the default)
    kernels: dict[str, Artefact]       # by kernel name
    initramfs: dict[str, Artefact]     # by kernel name: each carries its kernel's NIC modules
    tools: GuestTools
    xen_efis: dict[str | None, Artefact] = field(default_factory=dict)   # for xen-efi (UEFI) jobs, by Xen name
    qemus: dict[str | None, "QemuChoice"] = field(default_factory=dict)  # by the jobs' QEMU name

    def qemu(self, job: matrix.Job) -> "QemuChoice":
        return self.qemus[job.qemu]

    def xen(self, job: matrix.Job) -> Artefact:
        return self.xens[job.xen]

    def xen_efi(self, job: matrix.Job) -> Artefact | None:
        return self.xen_efis.get(job.xen)


@dataclass(frozen=True)
class QemuChoice:
    """The QEMU a job boots with, and what it says it is."""
    binary: plan_mod.QemuBinary | None    # None: the machine's own
    version: str                          # as `qemu-system-* --version` prints it
    record: dict                          # for result.json's artefacts


def _qemu_choice(name: str | None, arch: platform.Arch, cache: Cache, fetch: bool) -> QemuChoice:
    row = archive.debian_qemu(name, arch.name)
    if row is None:
        path = shutil.which(arch.qemu_binary)
        if path is None:
            raise LaunchError(f"{arch.qemu_binary} not found in PATH (install Debian's {arch.qemu_package})")
        version = qemu_argv.printed_version(path)
        return QemuChoice(None, version, {"name": platform.SYSTEM_QEMU, "path": path, "source": "system",
                                          "version": version, "printed": version})
    art = cache.qemu(row, fetch=fetch)
    version = qemu_argv.printed_version(str(art.path))
    return QemuChoice(plan_mod.QemuBinary(art.path, cache.qemu_data_dirs(row)), version,
                      {**art.record(), "printed": version})


def _built_kernel(name: str, jobs: list[matrix.Job], options: Options, cache: Cache,
                  progress: single.Progress) -> Artefact:
    """A "built:NAME" kernel: built (or found identical in the cache) from the scenario's
    [builds.NAME], else the last `rig kernel build NAME`."""
    short = name.removeprefix(kernel_build.PREFIX)
    arch = jobs[0].scenario.host.arch
    declared = next((j.scenario.builds[short] for j in jobs if short in j.scenario.builds), None)
    if declared is None:
        found = kernel_build.lookup(cache, name, arch)
        if found is None:
            flag = "" if arch == "x86_64" else f" --arch {arch}"
            raise ArtefactError(f"kernel {name!r} has not been built here for {arch}: run `rig kernel build {short} "
                                f"--source ...{flag}` or declare [builds.{short}] in the scenario")
        return found
    request = kernel_build.BuildRequest(short, declared.source, tuple(Path(p) for p in declared.patches),
                                        tuple(Path(f) for f in declared.fragments),
                                        Path(declared.config) if declared.config else None, arch=arch)
    if not options.fetch and kernel_build.lookup(cache, name, arch) is None and declared.source.startswith("debian-"):
        raise ArtefactError(f"kernel {name!r} is not built and --no-fetch forbids fetching its source")
    return kernel_build.build(request, cache, lambda msg: progress("build", msg))


def check_kernel_image(name: str, path: Path, arch: platform.Arch) -> None:
    """A user's (or a built) kernel file is an image of the host's architecture (an x86
    bzImage boots on arm64 no more than the other way round): bad input, before any boot."""
    offset, magic = arch.kernel_magic
    with open(path, "rb") as f:
        f.seek(offset)
        if f.read(len(magic)) != magic:
            raise InputError(f"kernel {name} ({path}): not an {arch.name} kernel image (no {magic!r} at {offset:#x})")


def resolve(jobs: list[matrix.Job], options: Options, cache: Cache,
            progress: single.Progress = lambda r, m: None) -> Artefacts:
    """Every file the boots need, fetched if allowed, each verified against its sha256."""
    arch = platform.lookup(platform.ARCHES, jobs[0].scenario.host.arch, "architecture")
    xens = {}
    for name in dict.fromkeys(j.xen for j in jobs):
        if options.pinned_xen:
            xens[name] = options.pinned_xen
        elif name == USER_XEN:
            xens[name] = cache.user_xen(options.user_xen)
        else:
            xens[name] = cache.xen(archive.debian_xen(name, arch.name), fetch=options.fetch)
    kernels = {}
    for name in dict.fromkeys(j.kernel for j in jobs):
        if name in options.pinned_kernels:
            kernels[name] = options.pinned_kernels[name]
        elif name.startswith(kernel_build.PREFIX):
            kernels[name] = _built_kernel(name, jobs, options, cache, progress)
            check_kernel_image(name, kernels[name].path, arch)
        elif name in options.user_kernels:
            kernels[name] = cache.user_kernel(name, options.user_kernels[name])
            check_kernel_image(name, kernels[name].path, arch)
        else:
            kernels[name] = cache.kernel(name, fetch=options.fetch, arch=arch)
    xen_efis = {}
    for name in dict.fromkeys(j.xen for j in jobs   # only xen-efi needs it
                              if (j.scenario.host.boot or platform.FIRMWARES[j.scenario.host.firmware].boot) == "xen-efi"):
        if options.user_xen:
            raise InputError("--xen PATH gives a multiboot hypervisor; UEFI (xen-efi) variants need xen.efi from the cache")
        xen_efis[name] = cache.xen_efi(archive.debian_xen(name, arch.name), fetch=options.fetch)
    for firmware in {j.scenario.host.firmware for j in jobs}:
        row = platform.FIRMWARES[firmware]
        for f in (row.code, row.vars):
            if f and not Path(f).is_file():
                raise ArtefactError(f"{f} not found: install Debian's {row.package} for firmware {firmware!r}")
    qemus = {name: _qemu_choice(name, arch, cache, options.fetch) for name in dict.fromkeys(j.qemu for j in jobs)}
    tools = cache.guest_tools(options.tools_pins, fetch=options.fetch, debian_arch=arch.debian_arch)
    initrds = {name: agent_initramfs(cache, tools, arch, kernel, options.user_modules.get(name)
                                     if name in options.user_kernels else cache.modules_dir(kernel))
               for name, kernel in kernels.items()}
    return Artefacts(xens, kernels, initrds, tools, xen_efis, qemus)


def agent_initramfs(cache: Cache, tools: GuestTools, arch: platform.Arch, kernel: Artefact,
                    modules_dir: Path | None) -> Artefact:
    """The agent's initramfs for one kernel: with its NIC's modules when it has a modules
    directory (a Debian kernel's, or a user kernel's --modules), else serial-only."""
    modules = initramfs.KernelModules(modules_dir, cache.kernel_modules_dep(modules_dir)) if modules_dir else None
    probes = {name: initramfs.probe_binary(cache, name, arch.multiarch, arch.probe_compiler_packages)
              for name in arch.dom0_probes}
    return initramfs.build(cache, tools, modules, arch.nic_modules + arch.probe_modules, arch.multiarch,
                           probes=probes)


def run(scenario: Scenario, options: Options, progress: single.Progress = lambda r, m: None,
        cache: Cache | None = None) -> tuple[Path, list[dict]]:
    """`rig run`: one scenario, every variant, results in <out>/<role>/ when there is one variant."""
    scenario = with_xen(only_roles(scenario, options.roles), options)
    out_dir = options.out_dir or new_out_dir(scenario.name)
    jobs = matrix.expand([scenario], flat=True)
    one_variant = len(scenario.variants()) == 1
    label = (lambda j: j.role) if one_variant else (lambda j: j.id)  # short labels when unambiguous
    with claimed(out_dir):
        _write_plan(out_dir, jobs, jobs, None)
        return out_dir, run_jobs(jobs, out_dir, options, progress, cache, label=label)


@contextlib.contextmanager
def claimed(out_dir: Path):
    """Hold <out>/.rig.lock while a rig writes into `out_dir`: a second rig given the same
    --out stops at once (bad input, exit 2) instead of interleaving its files with ours."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = open(out_dir / LOCK_FILE, "a+")
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot write there: {exc.strerror}") from exc
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            raise InputError(f"--out {out_dir}: another rig (pid {holder}) is writing there; "
                             "wait for it or choose another --out") from exc
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


LOCK_FILE = ".rig.lock"


def _write_plan(out_dir: Path, planned: list[matrix.Job], every: list[matrix.Job], shard) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    compare.write_plan(out_dir, [j.id for j in planned], [j.id for j in every], shard)


def run_matrix(scenarios: list[Scenario], options: Options, shard: tuple[int, int] | None = None,
               progress: single.Progress = lambda r, m: None, cache: Cache | None = None) -> tuple[Path, list[dict]]:
    every = matrix.expand([with_xen(only_roles(s, options.roles), options) for s in scenarios])
    jobs = matrix.shard(every, *shard) if shard else every
    out_dir = options.out_dir or new_out_dir("matrix" if len(scenarios) > 1 else scenarios[0].name)
    with claimed(out_dir):
        _write_plan(out_dir, jobs, every, shard)
        if not jobs:
            progress("rig", f"shard {shard[0]}/{shard[1]} has no jobs" if shard else "no jobs")
            return out_dir, []
        return out_dir, run_jobs(jobs, out_dir, options, progress, cache, label=lambda j: j.id)


def run_jobs(jobs: list[matrix.Job], out_dir: Path, options: Options, progress: single.Progress,
             cache: Cache | None, label) -> list[dict]:
    cache = cache or Cache()
    choice = platform.detect_accel(options.accel)
    progress("rig", choice.reason)
    for a in dict.fromkeys(j.scenario.host.arch for j in jobs):   # --accel kvm for arm64: refused before any boot
        platform.accel_for(choice, platform.ARCHES[a])
    # Artefacts per architecture: an x86_64 and an aarch64 "debian-6.1" are other files.
    arts = {a: resolve([j for j in jobs if j.scenario.host.arch == a], options, cache, progress)
            for a in dict.fromkeys(j.scenario.host.arch for j in jobs)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for s in {j.scenario.name: j.scenario for j in jobs}.values():
        (out_dir / f"{s.name}.scenario.json").write_text(s.model_dump_json(indent=1) + "\n")

    def boot(job: matrix.Job) -> single.KernelBoot:
        art = arts[job.scenario.host.arch]
        accel = platform.accel_for(choice, platform.ARCHES[job.scenario.host.arch]).accel
        bplan = plan_mod.make(job.scenario, job.role, accel, xen=art.xen(job).path,
                              kernel=art.kernels[job.kernel].path, initrd=art.initramfs[job.kernel].path,
                              xen_efi=art.xen_efi(job).path if art.xen_efi(job) else None,
                              qemu=art.qemu(job).binary)
        say = lambda _role, message: progress(label(job), message)  # noqa: E731
        run_dir = out_dir / job.rel_dir
        failed: list[dict] = []
        for attempt in range(options.retries + 1):
            with cores.held(bplan.cpus, lambda msg: say(None, msg), cancelled=lambda: live.cancelled):
                say(None, f"booting {job.kernel}" + (f" (attempt {attempt + 1})" if attempt else ""))
                b = single.boot(bplan, job.role, art.kernels[job.kernel], run_dir, single.HowToBoot(
                    backend=options.backend or job.scenario.host.backend, timeout_scale=options.timeout_scale,
                    collect_via=options.collect_via, progress=say, live=live, keep=options.keep,
                    after=options.after))
            say(None, f"error: {b.error}" if b.error else f"collected in {b.timings['total']:.1f} s")
            if b.error is None or attempt == options.retries or live.cancelled:
                break
            # Keep the failed attempt whole, beside the job's directory, and boot again.
            kept = run_dir.with_name(f"{run_dir.name}.failed-{attempt + 1}")
            shutil.rmtree(kept, ignore_errors=True)  # left by an earlier run into the same --out
            run_dir.rename(kept)
            failed.append({"error": b.error, "failure": b.failure, "stage_reached": b.stage_reached,
                           "run_dir": str(kept)})
        b.failed_attempts = failed
        return b

    live = single.LiveHosts()
    boots: list[single.KernelBoot | None] = [None] * len(jobs)
    results: list[Result | None] = [None] * len(jobs)

    def judge_host_when_complete(host) -> None:
        # Judged as soon as every kernel of the host is back, so an interrupted matrix
        # keeps the verdicts of the hosts it finished.
        members = [i for i, j in enumerate(jobs) if j.host == host]
        if any(boots[i] is None for i in members):
            return
        pairs = [(jobs[i], boots[i]) for i in members]
        for i in members:
            arch = jobs[i].scenario.host.arch
            results[i] = judge(jobs[i], boots[i], pairs, arts[arch],
                               platform.accel_for(choice, platform.ARCHES[arch]).reason, options)

    if options.keep is not None:
        # Kept hosts outlive this function; QEMU's PDEATHSIG fires when the *thread* that
        # started it exits, so they are booted here, in the caller's thread, one by one.
        for i, j in enumerate(jobs):
            boots[i] = boot(j)
            judge_host_when_complete(j.host)
        return _summarise(results, out_dir)
    workers = options.workers or default_workers(jobs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(boot, j): i for i, j in enumerate(jobs)}
        try:
            for future in concurrent.futures.as_completed(futures):
                i = futures[future]
                boots[i] = future.result()
                judge_host_when_complete(jobs[i].host)
        except KeyboardInterrupt:
            live.cancel()  # kill every QEMU now; workers unwind on EOF and start nothing new
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return _summarise(results, out_dir)


SUMMARY_FIELDS = ("job", "scenario", "firmware", "dom0_mem", "kernel_role", "kernel", "kernel_release",
                  "verdict", "stage_reached", "error")


def _summarise(results: list[Result], out_dir: Path) -> list[Result]:
    (out_dir / "summary.json").write_text(json.dumps(
        [{k: getattr(r, k) for k in SUMMARY_FIELDS} for r in results], indent=1) + "\n")
    return results


def judge(job: matrix.Job, boot: single.KernelBoot, boots: list[tuple[matrix.Job, single.KernelBoot]],
          art: Artefacts, accel_reason: str, options: Options) -> Result:
    analysis, checks = None, []
    if boot.error is None:
        try:
            if boot.plan.arch.memory_map == "device-tree":
                ram = boot.plan.arch.ram_base
                analysis = verdict_mod.analyse_device_tree(boot.collected, boot.serial,
                                                           (ram, ram + job.scenario.host.memory - 1))
            else:
                analysis = verdict_mod.analyse(boot.collected, boot.firmware_pci, _xen_map(job, boot, boots))
            checks = verdict_mod.evaluate(job.scenario.expect.get(job.role), analysis)
        except CollectError as exc:  # garbled or empty evidence is never judged
            boot.error, boot.failure = str(exc), "collect"
        except Exception as exc:  # noqa: BLE001 - a bug in judging is an error of this job, not a verdict
            analysis, checks = None, []
            boot.failure = "internal"
            boot.error = f"internal error while judging: {type(exc).__name__}: {exc}"
            single.save_traceback(boot.run_dir, boot)
    artefacts = {"xen": art.xen(job).record(), "kernel": art.kernels[job.kernel].record(),
                 "initramfs": art.initramfs[job.kernel].record(), "tools": art.tools.packages,
                 "qemu": art.qemu(job).record}
    if job.kernel in options.user_modules:
        artefacts["modules"] = str(options.user_modules[job.kernel])
    try:
        data = report.result_of(job.id, job.scenario, boot, job.kernel, accel_reason, analysis, checks,
                                verdict_mod.verdict(boot.error, checks), artefacts)
    except Exception as exc:  # noqa: BLE001 - a result that does not fit its schema errs this job, not the run
        boot.failure = "internal"
        boot.error = f"internal error while writing the result: {type(exc).__name__}: {str(exc)[:300]}"
        single.save_traceback(boot.run_dir, boot)
        data = Result(job=job.id, scenario=job.scenario.name, kernel=job.kernel, kernel_role=job.role,
                      firmware=job.firmware, dom0_mem=format_size(job.dom0_mem), verdict="error",
                      stage_reached=boot.stage_reached, failure=boot.failure, error=boot.error,
                      artefacts=artefacts, run_dir=str(boot.run_dir))
    try:
        _write_job(job, boot, data, artefacts, art, options)
    except OSError as exc:  # a full or unwritable --out: the verdict cannot be kept, so it is no verdict
        data.verdict, data.failure = "error", "internal"
        data.error = f"internal error: cannot write the job's results: {exc} (traceback not saved)"
    return data


def _write_job(job: matrix.Job, boot: single.KernelBoot, data: Result, artefacts: dict, art: Artefacts,
               options: Options) -> None:
    report.write(boot.run_dir, data)
    bundle.write(boot.run_dir, bundle.make(
        job.scenario.model_copy(update={"kernels": {job.role: job.kernel}}), job.role, job.kernel,
        boot.plan.accel.name, boot.run_dir, {**artefacts, **({"xen_efi": art.xen_efi(job).record()} if art.xen_efi(job) else {})},
        boot.plan.xen_cmdline, boot.plan.dom0_cmdline,
        {"timeout_scale": options.timeout_scale, "collect": options.collect_via}))


def _xen_map(job: matrix.Job, boot: single.KernelBoot,
             boots: list[tuple[matrix.Job, single.KernelBoot]]) -> verdict_mod.XenMap:
    """The map Xen gave dom0, rebuilt from Xen's host e820: this boot's serial log first,
    then those of the other kernels booted on the same host."""
    serials = [(job.role, boot.serial)] + [(j.role, b.serial) for j, b in boots
                                           if j.host == job.host and b is not boot and b.serial]
    return verdict_mod.xen_map(serials, job.dom0_mem)


def exit_code(results: list[Result]) -> int:
    """3 if anything was not judged because it erred (or nothing ran); else 1 if an
    expectation failed; else 0 (every expectation held, or a role had none: unjudged)."""
    verdicts = {r.verdict for r in results}
    if "error" in verdicts or not results:
        return EXIT_ERROR
    return EXIT_EXPECTATION_FAILED if "fail" in verdicts else EXIT_OK
