"""One job's result: the schema of result.json, and the one thing every reader reads.

The summary, JUnit, the HTML report, `rig compare`, soak, bench, replay and the pytest
plugin take a Result (from the run, or `load`ed from a result.json), never a dict by key,
so a renamed or missing field fails here, when the file is read, not as a KeyError in a
report. Ranges are [first, last] address pairs, inclusive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from rig.errors import RigError

Verdict = Literal["pass", "fail", "error", "unjudged"]
VERDICTS: tuple[str, ...] = Verdict.__args__
Range = tuple[int, int]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Relocation(_Part):
    device: str
    resource: str                     # "BAR 2", "window 1"
    firmware: Optional[Range]         # where firmware put it (QMP, before dom0 ran)
    final: Optional[Range]            # where it was after dom0 (None: unassigned)
    cause: Optional[str]
    root_cause: Optional[str]         # "xen-scratch", ...
    evidence: list[str]               # dmesg lines


class PciResource(_Part):
    device: str
    resource: str
    index: int
    kind: str                         # "mem", "io"
    prefetch: bool
    firmware: Optional[Range]
    final: Optional[Range]


class ScratchOverlap(_Part):
    scratch: Range
    kind: str                         # "BAR", "host bridge window", ...
    owner: str
    range: Range


class Balloon(_Part):
    dom0_ram_pages: int
    cap_pages: int
    unusable_pages: int
    converted_pages: int
    expected_converted_pages: int


class BalloonDriver(_Part):
    target_kb: Optional[int]
    current_kb: Optional[int]
    low_kb: Optional[int]
    high_kb: Optional[int]
    rules_kb: dict[str, int]          # what each kernel rule says the target should be


class Outcome(_Part):
    unusable_converted: bool
    xen_scratch_in_holes: bool
    relocated: int
    summary: str


class Finding(_Part):
    kind: str
    line: str


class CheckResult(_Part):
    name: str
    passed: bool
    detail: str


class XenLog(_Part):
    version: Optional[str]
    cmdline: Optional[str]
    # Xen on Arm: dom0's RAM banks, the grant table and the extended regions, [start, end]
    dom0_banks: list[Range] = []
    grant_table: Optional[Range] = None
    extended_regions: list[Range] = []
    dom0: Optional[str]               # "PVH", "PV"
    panic: Optional[str]


class ForeignMapping(_Part):
    """Where dom0's probe mapped a page it granted itself (parse/foreign_map.py)."""
    mapped: bool
    address: Optional[int] = None
    page: Optional[int] = None
    granted: Optional[int] = None     # the page dom0 granted itself
    pattern_ok: bool = False
    step: str = ""                    # where it failed
    errno: int = 0
    reason: str = ""


class Ssh(_Part):
    offered: bool = False
    port: Optional[int] = None
    host_key: Optional[str] = None
    error: Optional[str] = None
    extras: list[str] = []
    matches_serial: Optional[bool] = None   # --collect both


class FailedAttempt(_Part):
    error: Optional[str]
    failure: Optional[str]
    stage_reached: str
    run_dir: str


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: str                          # spec.matrix.job_id: the one name of this job
    scenario: str
    kernel: str                       # the kernel's name in the scenario ("debian-6.1")
    kernel_role: str                  # "unpatched", "patched", ...
    kernel_release: Optional[str] = None
    arch: str = "x86_64"
    accel: str = "tcg"
    accel_reason: str = ""
    firmware: str = "seabios"
    dom0_mem: str = "512M"            # as written in the scenario
    verdict: Verdict
    stage_reached: str = "firmware"
    failure: Optional[str] = None     # the failure class of an error
    error: Optional[str] = None
    relocations: list[Relocation] = []
    xen_scratch: list[Range] = []
    xen_scratch_overlaps: list[ScratchOverlap] = []
    unusable: list[Range] = []
    converted_to_ram: list[Range] = []
    expected_conversion: list[Range] = []
    balloon: Optional[Balloon] = None
    balloon_driver: Optional[BalloonDriver] = None
    foreign_mapping: Optional[ForeignMapping] = None   # Arm: the agent's foreign-map probe
    outcome: Optional[Outcome] = None
    xen_map_source: Optional[str] = None
    findings: list[Finding] = []
    checks: list[CheckResult] = []
    timings: dict[str, float] = {}    # seconds per stage, and "total"
    steps: dict[str, dict[str, float]] = {}   # the userspace stage step by step: {"agent": ..., "rig": ...}
    collected_via: Optional[str] = None       # "ssh" or "serial"
    ssh: Optional[Ssh] = None
    failed_attempts: list[FailedAttempt] = []  # earlier boots of this job that erred (--retries)
    pci_resources: list[PciResource] = []
    xen: Optional[XenLog] = None
    qemu: Optional[str] = None        # as the emulator prints its version: "10.0.2 (Debian 1:10.0.2+ds-...)"
    dom0_cmdline: str = ""
    artefacts: dict[str, object] = {}  # name -> the cache's record (path, sha256, source, version)
    run_dir: str = ""

    @property
    def total_seconds(self) -> float:
        return self.timings.get("total", 0.0)

    def write(self, run_dir: Path) -> Path:
        if not self.run_dir:
            self.run_dir = str(run_dir)
        path = run_dir / "result.json"
        path.write_text(self.model_dump_json(indent=1) + "\n")
        return path


def load(path: Path) -> Result:
    """A result.json as a Result; a file that is not one is a RigError naming it."""
    try:
        return Result.model_validate(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise RigError(f"{path}: unreadable ({exc}); the run that wrote it did not finish") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise RigError(f"{path}: not a result.json of this rig: {where}: {first['msg']}") from exc
