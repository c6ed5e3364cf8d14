"""Real boots: real QEMU, real Xen 4.17, real Debian kernels, through the `rig` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


# Guests under TCG flake now and then (a few in ~150 boots: an int3 Oops, a hang); the
# tests that expect a good boot allow one retry, which the rig reports in result.json.
RETRY = ("--retries", "1")


@dataclass
class RigRun:
    returncode: int
    stdout: str
    stderr: str
    out: Path

    def result(self, role: str) -> dict:
        return json.loads((self.out / role / "result.json").read_text())


def rig(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rig.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def spawn_rig(*args: str, **popen) -> subprocess.Popen:
    """`rig ARGS` in the background, as a terminal would start it: SIGINT at its default even
    when this test run itself was started in the background (where shells ignore SIGINT
    for their children, and Python then never raises KeyboardInterrupt)."""
    return subprocess.Popen([sys.executable, "-m", "rig.cli", *args], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen)


def run_scenario(name: str, out: Path, *extra: str) -> RigRun:
    proc = rig("run", str(SCENARIOS / f"{name}.toml"), "--out", str(out), *extra)
    return RigRun(proc.returncode, proc.stdout, proc.stderr, out)


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains `text` (e.g. a run's unique output directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return [pid for pid in found if pid != os.getpid()]


@pytest.fixture(scope="session")
def default_ab(tmp_path_factory) -> RigRun:
    """One A/B run of the default scenario, shared by every test that reads it."""
    # --collect both: judged on what came over SSH, with the console's copy kept to compare.
    return run_scenario("bar-clash-64bit", tmp_path_factory.mktemp("ab") / "run", *RETRY, "--collect", "both")
