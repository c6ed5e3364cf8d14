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
