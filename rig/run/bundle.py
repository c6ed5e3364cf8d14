"""Replay bundles: what it takes to boot one job again, exactly, on another machine.

Every job's directory gets bundle.json: the resolved scenario (this variant, this
role), the QEMU argv, the Xen and dom0 command lines, the name, version and sha256
of Xen, the kernel and the initramfs (with the dom0 tool package versions it was
built from), and the rig's version. `rig repro` fetches what is missing by name and
version and refuses to boot on any hash mismatch unless told to.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from rig import __version__
from rig.artefacts import archive
from rig.artefacts.store import Artefact, Cache
from rig.errors import ArtefactError, InputError
from rig.host import qemu_argv
from rig.report.result import Result
from rig.spec.scenario import Scenario

FORMAT = 1
FILE = "bundle.json"


def normalise_argv(argv: list[str], paths: dict[str, str]) -> list[str]:
    """The argv with machine-specific paths replaced by {name} placeholders (pure), so two
    runs of the same job on different machines give the same list."""
    out = []
    for arg in argv:
        for name, path in sorted(paths.items(), key=lambda kv: -len(kv[1])):
            if path:
                arg = arg.replace(path, "{" + name + "}")
        out.append(arg)
    return out


def argv_paths(run_dir: Path, artefacts: dict[str, dict]) -> dict[str, str]:
    paths = {name: rec["path"] for name, rec in artefacts.items() if isinstance(rec, dict) and "path" in rec}
    paths["run"] = str(run_dir)
    return paths


def make(scenario: Scenario, role: str, kernel: str, accel: str, run_dir: Path, artefacts: dict,
         xen_cmdline: str, dom0_cmdline: str, options: dict) -> dict:
    argv_file = run_dir / "qemu-argv.txt"
    argv = shlex.split(argv_file.read_text()) if argv_file.is_file() else []
    paths = argv_paths(run_dir, artefacts)
    paths["sockets"] = qemu_argv.socket_dir(argv)   # a private mkdtemp per run: a placeholder too
    return {
        "format": FORMAT,
        "rig_version": __version__,
        "scenario": scenario.model_dump(mode="json"),
        "role": role,
        "kernel": kernel,
        "accel": accel,
        "qemu_argv": argv,
        "qemu_argv_normalised": normalise_argv(argv, paths),
        "xen_cmdline": xen_cmdline,
        "dom0_cmdline": dom0_cmdline,
        "artefacts": artefacts,
        "options": options,
    }


def write(run_dir: Path, data: dict) -> Path:
    path = run_dir / FILE
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def find_all(path: Path) -> list[Path]:
    """Every job's bundle: a bundle file, a job directory, or a run directory (all its jobs,
    failed attempts left out)."""
    if path.is_file():
        return [path]
    if (path / FILE).is_file():
        return [path / FILE]
    found = sorted(f for f in path.rglob(FILE) if ".failed-" not in str(f.parent)) if path.is_dir() else []
    if not found:
        raise InputError(f"{path}: no {FILE} (not a run directory of rig 0.2 or later?)")
    return found


def find(path: Path) -> Path:
    """A bundle file, a job directory, or a run directory with exactly one job."""
    found = find_all(path)
    if len(found) == 1:
        return found[0]
    jobs = ", ".join(str(f.parent.relative_to(path)) for f in found)
    raise InputError(f"{path}: holds {len(found)} jobs ({jobs}); name one of their directories")


def load(path: Path) -> tuple[Path, dict]:
    file = find(path)
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{file}: not a readable bundle: {exc}") from exc
    if data.get("format") != FORMAT:
        raise InputError(f"{file}: format: {data.get('format')!r} (this rig reads {FORMAT})")
    for key in ("scenario", "role", "kernel", "artefacts", "accel"):
        if key not in data:
            raise InputError(f"{file}: {key}: missing")
    return file, data


@dataclass
class Resolved:
    scenario: Scenario
    kernels: dict[str, Artefact]
    xen: Artefact
    tools_pins: dict[str, str]
    mismatches: list[str]


def _check(name: str, want: dict, got: Artefact, mismatches: list[str]) -> Artefact:
    if got.sha256 != want["sha256"]:
        mismatches.append(f"{name}: bundle has {want.get('version') or want['source']} sha256 {want['sha256'][:16]}..., "
                          f"this machine {got.version or got.source} {got.sha256[:16]}...")
    return got


def resolve(data: dict, cache: Cache, fetch: bool = True, user_kernels: dict[str, Path] | None = None) -> Resolved:
    """The bundle's artefacts on this machine, by name and version; every hash compared.
    Mismatches are returned, not raised: the caller decides whether they stop the replay."""
    from rig.spec import platform

    art = data["artefacts"]
    scenario = Scenario.model_validate(data["scenario"])
    scenario = scenario.model_copy(update={"kernels": {data["role"]: data["kernel"]}})
    arch = platform.lookup(platform.ARCHES, scenario.host.arch, "architecture")
    mismatches: list[str] = []
    kernel_rec = art["kernel"]
    name = data["kernel"]
    if kernel_rec["source"].startswith("debian:"):
        kernel = cache.kernel(name, fetch=fetch, version=kernel_rec["version"], arch=arch)
    elif kernel_rec["source"].startswith("built:") and name.removeprefix("built:") in scenario.builds:
        # Declared in the scenario: rebuild it here (reproducible, or the hash check below says so).
        from rig.artefacts import kernel_build
        b = scenario.builds[name.removeprefix("built:")]
        kernel = kernel_build.build(kernel_build.BuildRequest(
            name.removeprefix("built:"), b.source, tuple(Path(p) for p in b.patches),
            tuple(Path(f) for f in b.fragments), Path(b.config) if b.config else None, arch=arch.name), cache)
    elif user_kernels and name in user_kernels:
        kernel = cache.user_kernel(name, user_kernels[name])
    elif Path(kernel_rec["path"]).is_file():
        kernel = cache.user_kernel(name, Path(kernel_rec["path"]))
    else:
        raise ArtefactError(f"kernel {name!r} was a user file ({kernel_rec['path']}), not on this machine: "
                            f"pass --kernel {name}=PATH")
    _check(f"kernel {name}", kernel_rec, kernel, mismatches)
    xen_rec = art["xen"]
    if xen_rec["source"].startswith("debian:"):
        xen = cache.xen(archive.debian_xen(scenario.xen.version, arch.name), fetch=fetch, version=xen_rec["version"])
    elif Path(xen_rec["path"]).is_file():
        xen = cache.user_xen(Path(xen_rec["path"]))
    else:
        raise ArtefactError(f"xen was a user file ({xen_rec['path']}), not on this machine")
    _check("xen", xen_rec, xen, mismatches)
    if "xen_efi" in art and art["xen_efi"]["source"].startswith("debian:"):
        # xen.efi is not pinned the way the multiboot Xen is: say so if the cache's differs.
        _check("xen_efi", art["xen_efi"], cache.xen_efi(archive.debian_xen(scenario.xen.version, arch.name),
                                                        fetch=fetch), mismatches)
    return Resolved(scenario, {name: kernel}, xen, art.get("tools") or {}, mismatches)


def compare(original: Result, replayed: Result) -> list[str]:
    """What differs between two results of the same job: verdict, firmware and final BARs."""
    out = []
    if original.verdict != replayed.verdict:
        out.append(f"verdict: {original.verdict} -> {replayed.verdict}")
    for which in ("firmware", "final"):
        a = {(r.device, r.resource): getattr(r, which) for r in original.pci_resources}
        b = {(r.device, r.resource): getattr(r, which) for r in replayed.pci_resources}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(f"{which} {key[0]} {key[1]}: {_span(a.get(key))} -> {_span(b.get(key))}")
    return out


def _span(r) -> str:
    return f"{r[0]:#x}-{r[1]:#x}" if r else "absent"
