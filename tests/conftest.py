from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CAPTURES = DATA / "captures"   # unmodified copies of ../shared/captures (real Xen 4.17 + QEMU 7.2 boots)
RUNS = DATA / "runs"           # the rig's own captures: serial logs and query-pci of real runs


def read_console(path: Path) -> str:
    """Console bytes as the rig sees them (no universal-newline translation)."""
    return path.read_bytes().decode("utf-8", errors="replace")


@pytest.fixture
def capture():
    return lambda name: read_console(CAPTURES / f"{name}.serial.log")


@pytest.fixture
def run_data():
    return lambda scenario, role, name: read_console(RUNS / scenario / role / name)


pytest_plugins = ["pytester"]


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than cores. Boots queue for machine-wide core slots
    (rig/run/cores.py), so the extra worker never oversubscribes: it is ready with the next boot
    while another worker judges, reports or starts Python."""
    import os
    return len(os.sched_getaffinity(0)) + 1


def make_result(job: str | None = None, **fields):
    """A Result for unit tests of its readers: a job of scenario "s" (seabios, 512M,
    unpatched, passing) with `fields` changed; its job id follows them unless given."""
    from rig.report.result import Result
    from rig.spec.matrix import job_id
    data = dict(scenario="s", kernel="debian-6.1", kernel_role="unpatched", firmware="seabios", dom0_mem="512M",
                verdict="pass")
    data.update(fields)
    data["job"] = job or job_id(data["scenario"], data["firmware"], data["dom0_mem"], data["kernel_role"])
    return Result(**data)
