"""rig repro: boot a job again exactly as its bundle.json recorded it, and say what differs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rig.artefacts.store import Cache
from rig.errors import ArtefactError
from rig.report import result as result_mod
from rig.report.result import Result
from rig.run import batch, bundle, single
from rig.spec import matrix


@dataclass
class Replay:
    out_dir: Path
    results: list[Result]
    argv_identical: bool        # QEMU's argv, normalised, as the bundle's
    new_bundle: Path
    differences: list[str] | None   # against the result.json beside the bundle (None: there is none)
    mismatches: list[str]       # artefacts that differ from the bundle's (booted anyway: allowed)


def run(file: Path, data: dict, *, out_dir: Path | None, accel: str | None, timeout_scale: float | None,
        retries: int, fetch: bool, user_kernels: dict[str, Path], allow_mismatch: bool,
        say: single.Progress, progress: single.Progress) -> Replay:
    """Resolve the bundle's artefacts (exact versions), refuse if one differs unless
    `allow_mismatch`, boot, then compare the argv and the result with the original run."""
    cache = Cache()
    resolved = bundle.resolve(data, cache, fetch=fetch, user_kernels=user_kernels)
    recorded = data.get("options", {})
    options = batch.Options(
        out_dir=out_dir, accel=accel or data["accel"], fetch=fetch,
        timeout_scale=timeout_scale or recorded.get("timeout_scale", 1.0),
        collect_via=recorded.get("collect", "auto"), retries=retries,
        tools_pins=resolved.tools_pins or None, pinned_kernels=resolved.kernels, pinned_xen=resolved.xen)
    jobs = matrix.expand([resolved.scenario], flat=True)
    art = batch.resolve(jobs, options, cache)
    mismatches = list(resolved.mismatches)
    want = data["artefacts"]["initramfs"]
    got = art.initramfs[data["kernel"]]
    if got.sha256 != want["sha256"]:
        mismatches.append(f"initramfs: bundle has {want['sha256'][:16]}... ({want.get('version')}), "
                          f"rebuilt here {got.sha256[:16]}... ({got.version})")
    for m in mismatches:
        say("repro", m)
    if mismatches and not allow_mismatch:
        raise ArtefactError(f"{file}: {len(mismatches)} artefact(s) differ from the bundle; "
                            "not replaying (--allow-mismatch boots anyway)")
    say("repro", f"replaying {data['scenario']['name']} {data['role']} from {file}")
    out, results = batch.run(resolved.scenario, options, progress=progress)
    # its own job directory: a whole run's replay puts the jobs of one host side by side
    new_file, new = bundle.load(out / data["role"] if (out / data["role"] / bundle.FILE).is_file() else out)
    original = file.parent / "result.json"
    replay = Replay(out, results, new["qemu_argv_normalised"] == data.get("qemu_argv_normalised"), new_file,
                    bundle.compare(result_mod.load(original), results[0]) if original.is_file() else None,
                    mismatches)
    (out / "replay.json").write_text(json.dumps(
        {"bundle": str(file), "argv_identical": replay.argv_identical, "mismatches_allowed": mismatches,
         "differences": replay.differences}, indent=1) + "\n")
    return replay
