"""The fault suite: real runs with a real fault injected, and what the rig must then say.

Mechanisms (all real): tests/faults/qemu-fault first on PATH (signals QEMU at a console
line, or cuts its QMP connection), fault points of the dom0 agent switched on by
`rig.fault=` on dom0's command line, small or read-only tmpfs mounts (root, as CI), a
cache copy with one file damaged, and a second rig or lock holder started beside the first.
docs/faults.md has the table these tests hold the rig to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, SCENARIOS, processes_mentioning

WRAPPER = Path(__file__).with_name("qemu-fault")
DEFAULT = SCENARIOS / "bar-clash-64bit.toml"


@dataclass
class Faulted:
    returncode: int
    stdout: str
    stderr: str
    out: Path

    def result(self, role: str = "unpatched") -> dict:
        return json.loads((self.out / role / "result.json").read_text())

    @property
    def said(self) -> str:
        return self.stdout + self.stderr


def qemu_fault_env(tmp_path: Path, fault: str) -> dict[str, str]:
    """The environment of a rig whose QEMU is tests/faults/qemu-fault with RIG_FAULT_QEMU=fault."""
    bindir = tmp_path / "fault-bin"
    bindir.mkdir(exist_ok=True)
    link = bindir / "qemu-system-x86_64"
    if not link.exists():
        link.symlink_to(WRAPPER)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "RIG_FAULT_QEMU": fault}


def rig(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rig.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=timeout)


def run_faulted(tmp_path: Path, *args: str, scenario: Path = DEFAULT, env: dict | None = None) -> Faulted:
    out = tmp_path / "run"
    proc = rig("run", str(scenario), "--only", "unpatched", "--out", str(out), *args, env=env)
    return Faulted(proc.returncode, proc.stdout, proc.stderr, out)


def scenario_with_dom0_cmdline(tmp_path: Path, words: str) -> Path:
    """The default A/B scenario, with `words` added to dom0's command line (the agent's
    fault points read it)."""
    text = DEFAULT.read_text()
    assert '\ncmdline = ""\n' in text
    path = tmp_path / "bar-clash-64bit.toml"
    path.write_text(text.replace('\ncmdline = ""\n', f'\ncmdline = ""\ndom0_cmdline = "{words}"\n', 1))
    return path


def assert_error_kept(run: Faulted, stage: str, failure: str) -> dict:
    """The common promise: exit 3, verdict error with this stage and failure class, the serial
    log kept, nothing judged, no traceback on the terminal, no process of the run left."""
    assert run.returncode == 3, run.said
    r = run.result()
    assert (r["verdict"], r["stage_reached"], r["failure"]) == ("error", stage, failure), r["error"]
    assert r["checks"] == []
    assert (run.out / "unpatched" / "serial.log").is_file()
    assert (run.out / "unpatched" / "result.json").is_file() and (run.out / "summary.json").is_file()
    assert "Traceback" not in run.said
    assert processes_mentioning(str(run.out)) == []
    return r


@pytest.fixture
def tmpfs(tmp_path):
    """mount a tmpfs with the given options (needs root, as CI runs)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounts = []

    def mount(options: str) -> Path:
        mnt = tmp_path / f"mnt{len(mounts)}"
        mnt.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)], capture_output=True, text=True)
        if proc.returncode != 0:  # root in an unprivileged container
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounts.append(mnt)
        return mnt
    yield mount
    for mnt in mounts:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def cache_copy(tmp_path):
    """A cache of the rig's own (RIG_CACHE) whose files are hard links to the real cache's:
    a test replaces a file (new inode) to damage it without touching the original."""
    from rig.artefacts.store import cache_dir
    real = cache_dir()
    copy = tmp_path / "cache"
    copy.mkdir()
    for part in ("xen", "kernels", "guest", "initramfs"):
        if (real / part).exists():
            subprocess.run(["cp", "-al", str(real / part), str(copy / part)], check=True)
    # What the rig rewrites in place is copied, never linked: the real cache stays as it was.
    if (real / "apt").exists():
        subprocess.run(["cp", "-a", str(real / "apt"), str(copy / "apt")], check=True)
    for small in [copy / "guest" / "current.json", *(copy / "initramfs").glob("*.sha256")]:
        if small.exists():
            data = small.read_bytes()
            small.unlink()
            small.write_bytes(data)
    return copy


def damage(path: Path, how: str) -> None:
    """Replace `path` by a damaged copy: "truncate" keeps the first half, "flip" changes one byte."""
    data = bytearray(path.read_bytes())
    path.unlink()   # a new inode: the hard-linked original stays whole
    if how == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


__all__ = ["Faulted", "assert_error_kept", "damage", "qemu_fault_env", "rig", "run_faulted",
           "scenario_with_dom0_cmdline"]
