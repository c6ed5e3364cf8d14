"""Real boots: real QEMU, real Xen 4.17, real Debian kernels, through the `rig` command."""

from __future__ import annotations

import fcntl
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


def shared_run(tmp_path_factory, key: str, *args: str) -> RigRun:
    """`rig ARGS --out DIR` once per test session, also under pytest-xdist: the first worker
    to ask runs it, the others wait on a lock and read the same run."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent   # shared by the workers of this session
    record = root / f"shared-{key}.json"
    with open(root / f"shared-{key}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.exists():
            d = json.loads(record.read_text())
            return RigRun(d["returncode"], d["stdout"], d["stderr"], Path(d["out"]))
        out = root / f"shared-{key}" / "run"
        proc = rig(*args, "--out", str(out))
        record.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                      "stderr": proc.stderr, "out": str(out)}))
        return RigRun(proc.returncode, proc.stdout, proc.stderr, out)


@pytest.fixture(scope="session")
def default_ab(tmp_path_factory) -> RigRun:
    """One A/B run of the default scenario, shared by every test that reads it."""
    # --collect both: judged on what came over SSH, with the console's copy kept to compare.
    return shared_run(tmp_path_factory, "default-ab", "run", str(SCENARIOS / "bar-clash-64bit.toml"), *RETRY,
                      "--collect", "both")


@pytest.fixture(scope="session")
def library(tmp_path_factory) -> RigRun:
    """A slice of the scenario library through `rig matrix` (a bridge window and its child),
    shared by the library tests and the libvirt parity test."""
    return shared_run(tmp_path_factory, "library", "matrix", str(SCENARIOS / "bridge-pref64-clash.toml"), *RETRY)


def matrix_result(run: RigRun, scenario: str, variant: str, role: str) -> dict:
    return json.loads((run.out / scenario / variant / role / "result.json").read_text())
