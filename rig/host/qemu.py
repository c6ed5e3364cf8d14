"""QEMU backend: the argv (pure, from a BootPlan) and the process that runs it.

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
import re
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
from rig.spec.plan import NETDEV_ID, BootPlan
from rig.spec.topology import PlacedDevice
from rig.host import Lifecycle
from rig.host.media import Media, prepare_media

log = logging.getLogger(__name__)


def _mb_escape(value: str) -> str:
    """QEMU splits the multiboot module list on ','; a literal comma is written ',,'."""
    return value.replace(",", ",,")


def _multiboot(plan: BootPlan, media: Media) -> list[str]:
    modules = f"{_mb_escape(str(plan.kernel))} {_mb_escape(plan.dom0_cmdline)},{_mb_escape(str(plan.initrd))}"
    return ["-kernel", str(plan.xen), "-append", plan.xen_cmdline, "-initrd", modules]


def _xen_efi(plan: BootPlan, media: Media) -> list[str]:
    # On q35 `if=ide` is the built-in ICH9 AHCI: no extra PCI device that would change
    # the topology between firmwares. A FAT image boots far faster than fat:rw:DIR.
    return ["-drive", f"file={media.esp},format=raw,if=ide,index=0"]


# Boot method name -> argv builder. A new boot method is a new row here and in platform.BOOT_METHODS.
BOOT_ARGV = {"multiboot": _multiboot, "xen-efi": _xen_efi}


def _firmware(plan: BootPlan, media: Media) -> list[str]:
    if not plan.firmware.code:
        return []
    return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={plan.firmware.code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={media.firmware_vars}"]


def _value(v) -> str:
    return ("on" if v else "off") if isinstance(v, bool) else str(v)


def _pci_args(dev: PlacedDevice) -> list[str]:
    props = {"id": dev.id, "bus": dev.bus, "addr": f"{dev.addr:#x}", **dev.props}
    args = []
    if dev.backing_size is not None:
        args += ["-object", f"memory-backend-ram,id={dev.id}-mem,size={dev.backing_size >> 20}M"]
        props["memdev"] = f"{dev.id}-mem"
    return args + ["-device", ",".join([dev.device, *(f"{k}={_value(v)}" for k, v in props.items())])]


def _memory(plan: BootPlan) -> str:
    size = f"{plan.memory >> 20}M"
    if plan.maxmem is not None:
        size += f",slots={plan.slots},maxmem={plan.maxmem >> 20}M"
    return size


def qemu_argv(plan: BootPlan, *, console_socket: Path, qmp_socket: Path, serial_log: Path,
              media: Media = Media()) -> list[str]:
    """The whole QEMU command line for `plan`. Pure: same plan and paths, same argv."""
    machine = ",".join([plan.arch.machine, *plan.arch.machine_props.get(plan.accel.name, ())])
    argv = [
        plan.arch.qemu_binary,
        "-name", f"rig-{plan.name},process=rig-{plan.name}",
        "-machine", machine,
        *plan.accel.qemu_args,
        "-cpu", plan.arch.cpu[plan.accel.name],
        "-m", _memory(plan),
        "-smp", str(plan.cpus),
        "-nodefaults", "-display", "none", "-no-reboot",
        "-S",  # start paused: the console and QMP are attached before the first instruction
        *_firmware(plan, media),
        "-chardev", f"socket,id=console,path={console_socket},server=on,wait=off,"
                    f"logfile={serial_log},logappend=off",
        "-serial", "chardev:console",
        "-chardev", f"socket,id=qmp,path={qmp_socket}",
        "-mon", "chardev=qmp,mode=control",
    ]
    for dev in plan.arch.iommus[plan.iommu]:  # the IOMMU goes before any PCI device
        argv += ["-device", dev]
    return argv + guest_argv(plan, media)


def guest_argv(plan: BootPlan, media: Media = Media()) -> list[str]:
    """The part of the argv that makes this host what it is: network, PCI topology, the Xen
    boot and the user's raw arguments. Shared with the libvirt backend, which passes it
    through <qemu:commandline> so both backends build the same machine."""
    argv = []
    if plan.network == "user":
        # restrict=on: dom0 reaches nothing outside; the rig adds its SSH forward at launch.
        argv += ["-netdev", f"user,id={NETDEV_ID},restrict=on"]
    if plan.pci_hole64_size is not None:
        argv += ["-global", f"{plan.arch.pci_hole64_global}={plan.pci_hole64_size >> 20}M"]
    for pci in plan.pci:
        argv += _pci_args(pci)
    argv += BOOT_ARGV[plan.boot.name](plan, media)
    argv += list(plan.qemu_args)  # raw user arguments come last, so they can override
    return argv


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


def parse_device_help(text: str) -> set[str]:
    """Device names from `-device help` output: 'name "pci-testdev", bus PCI, desc ...'."""
    return {m.group(1) for m in re.finditer(r'^name "([^"]+)"', text, re.MULTILINE)}


def unknown_devices(binary: str, names: list[str]) -> list[str]:
    """The names this QEMU cannot create, so a typo is bad input, not a failed boot."""
    if shutil.which(binary) is None:
        raise LaunchError(f"{binary} not found in PATH (install Debian's qemu-system-x86)")
    out = subprocess.run([binary, "-device", "help"], capture_output=True, text=True, timeout=60)
    known = parse_device_help(out.stdout + out.stderr)
    return [n for n in names if n not in known]


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
        binary = self.plan.arch.qemu_binary
        if shutil.which(binary) is None:
            raise LaunchError(f"{binary} not found in PATH (install Debian's qemu-system-x86)")
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


def forward_ssh(hmp, run_dir: Path, attempts: int = 10) -> int:
    """Forward a free port on 127.0.0.1 (only) to dom0's port 22 through the HMP command
    `hostfwd_add`. The port is picked by binding it, so another process can take it
    before QEMU does: try the next one then."""
    problem = ""
    for _ in range(attempts):
        port = free_port()
        answer = hmp(f"hostfwd_add {NETDEV_ID} tcp:127.0.0.1:{port}-:22")
        if not answer.strip():
            (run_dir / "ssh-port").write_text(f"{port}\n")
            return port
        problem = answer.strip()
    raise LaunchError(f"could not forward a port to dom0's SSH server: {problem}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shell_quote(arg: str) -> str:
    return shlex.quote(arg)
