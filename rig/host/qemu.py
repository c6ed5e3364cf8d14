"""QEMU backend: the process that runs the argv of rig/host/qemu_argv.py, its QMP and console.

Lifecycle, after QEMU's own python/qemu/machine: the constructor stores settings,
__enter__ launches in steps (bind QMP, start QEMU paused, accept QMP, attach the
console, `cont`), and one close() tears down after success and failure alike,
escalating from QMP `quit` to SIGTERM to SIGKILL.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pexpect.fdpexpect
from qemu.qmp import ExecuteError, QMPClient

from rig.errors import LaunchError, MonitorError
from rig.spec.plan import BootPlan
from rig.host import Lifecycle
from rig.host.media import Media, prepare_media
from rig.host.ports import forward_ssh
from rig.host.qemu_argv import qemu_argv

log = logging.getLogger(__name__)


class _Monitor:
    """A synchronous face on qemu.qmp's QMPClient, with a private event loop.

    Unlike qemu.qmp.legacy, accepting the connection races QEMU's exit, so a QEMU
    that dies on a bad argument fails the launch at once instead of after a timeout.
    """

    def __init__(self, path: Path, name: str):
        self._loop = asyncio.new_event_loop()
        self._client = QMPClient(name)
        self._run(self._client.start_server(str(path)))

    def _run(self, coro, timeout: float | None = None):
        return self._loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def accept(self, proc: subprocess.Popen, timeout: float) -> None:
        async def accept_or_exit():
            exited = self._loop.create_future()
            pidfd = os.pidfd_open(proc.pid)
            self._loop.add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
            accept = asyncio.ensure_future(self._client.accept())
            try:
                await asyncio.wait({accept, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._loop.remove_reader(pidfd)
                os.close(pidfd)
            if not accept.done():
                accept.cancel()
                await asyncio.gather(accept, return_exceptions=True)
                raise ConnectionError("QEMU exited" if exited.done() else f"no connection within {timeout:.0f} s")
            accept.result()
        self._loop.run_until_complete(accept_or_exit())

    def cmd(self, name: str, timeout: float = 30.0, **args):
        try:
            return self._run(self._client.execute(name, args or None), timeout)
        except Exception as exc:  # noqa: BLE001 - qemu.qmp raises several kinds for one fact
            raise MonitorError(f"QMP {name}: {_monitor_failure(exc, timeout)}") from exc

    def close(self) -> None:
        try:
            self._run(self._client.disconnect(), 5.0)
        finally:
            self._loop.close()


def _monitor_failure(exc: Exception, timeout: float) -> str:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer within {timeout:.0f} s"
    if isinstance(exc, ExecuteError):
        return f"QEMU refused it: {exc}"
    return f"the connection closed ({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})"


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the rig itself dies without cleaning up (kill -9)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class QemuHost(Lifecycle):
    """One QEMU process: `with QemuHost(plan, run_dir) as host: host.console.expect(...)`."""

    QMP_ACCEPT_TIMEOUT = 30.0
    QUIT_TIMEOUT = 5.0

    def __init__(self, plan: BootPlan, run_dir: Path):
        self.plan = plan
        self.run_dir = run_dir
        self.serial_log = run_dir / "serial.log"
        self.argv_file = run_dir / "qemu-argv.txt"
        self.qemu_log = run_dir / "qemu.log"
        self.console: pexpect.fdpexpect.fdspawn | None = None
        self._proc: subprocess.Popen | None = None
        self._qmp: _Monitor | None = None
        self._sock: socket.socket | None = None
        self._sockdir: Path | None = None
        self.argv: list[str] = []
        self.ssh_port: int | None = None   # on 127.0.0.1, when the plan has a network

    # -- launch -------------------------------------------------------------------------
    def _launch(self) -> None:
        binary = self.plan.qemu_binary
        if shutil.which(binary) is None:
            raise LaunchError(f"{binary} not found in PATH (install Debian's {self.plan.arch.qemu_package})")
        # Unix socket paths are limited to 108 bytes, so they live in a short private dir.
        self._sockdir = Path(tempfile.mkdtemp(prefix="rig-"))
        console_sock, qmp_sock = self._sockdir / "console.sock", self._sockdir / "qmp.sock"
        media = Media.for_plan(self.plan, self.run_dir)
        prepare_media(self.plan, media)
        self.argv = qemu_argv(self.plan, console_socket=console_sock, qmp_socket=qmp_sock,
                              serial_log=self.serial_log, media=media)
        self.argv_file.write_text(" ".join(_shell_quote(a) for a in self.argv) + "\n")

        self._qmp = _Monitor(qmp_sock, self.plan.name)
        with open(self.qemu_log, "wb") as qemu_log:
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=qemu_log,
                                          stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        try:
            self._qmp.accept(self._proc, self.QMP_ACCEPT_TIMEOUT)
        except Exception as exc:
            self._wait_briefly()
            raise LaunchError(f"QEMU did not connect to QMP: {self._failure_text()}",
                              self.argv, self.qemu_log) from exc
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(str(console_sock))
        self.console = pexpect.fdpexpect.fdspawn(self._sock, encoding="utf-8", codec_errors="replace",
                                                 maxread=65536, use_poll=True)
        try:
            if self.plan.network == "user":
                self.ssh_port = self._forward_ssh()
            self._qmp.cmd("cont")
        except MonitorError as exc:
            self._wait_briefly()
            raise LaunchError(f"{exc} ({self._failure_text()})", self.argv, self.qemu_log) from exc
        log.info("QEMU pid %d started: %s", self._proc.pid, self.plan.name)

    FORWARD_ATTEMPTS = 10

    def _forward_ssh(self) -> int:
        return forward_ssh(lambda line: self._qmp.cmd("human-monitor-command", **{"command-line": line}),
                           self.run_dir, self.FORWARD_ATTEMPTS)

    def _wait_briefly(self) -> None:
        if self._proc:
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass

    def _failure_text(self) -> str:
        status = "still running" if self._proc and self._proc.poll() is None else \
            f"exit status {self._proc.returncode if self._proc else '?'}"
        try:
            tail = self.qemu_log.read_text(errors="replace").strip().splitlines()[-1:]
        except OSError:
            tail = []
        return f"{status}" + (f": {tail[0]}" if tail else "")

    # -- running ------------------------------------------------------------------------
    def query_pci(self, timeout: float) -> list[dict]:
        assert self._qmp is not None
        return self._qmp.cmd("query-pci", timeout=timeout)

    def wait_exit(self, timeout: float) -> bool:
        """Wait for QEMU to exit by itself (guest power-off); True if it did."""
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # -- teardown -----------------------------------------------------------------------
    def kill(self) -> None:
        """From another thread: stop QEMU at once; the owner's close() does the rest."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def close(self) -> None:
        """Idempotent: safe after a failed launch, twice, or from a signal handler path."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            self._quit_via_qmp()
            try:
                proc.wait(timeout=self.QUIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=self.QUIT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._qmp is not None:
            qmp, self._qmp = self._qmp, None
            try:
                qmp.close()
            except Exception:  # the peer is gone; nothing left to say to it
                pass
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)
            self._sockdir = None

    def _quit_via_qmp(self) -> None:
        if self._qmp is None:
            return
        try:
            self._qmp.cmd("quit", timeout=2.0)
        except Exception:  # QMP may already be gone; the signals below still apply
            pass


def _shell_quote(arg: str) -> str:
    return shlex.quote(arg)
