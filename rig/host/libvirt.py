"""libvirt backend: the same BootPlan as a transient libvirt domain, through libvirt-python.

The domain XML carries what libvirt models: domain type (qemu or kvm), q35, CPU,
memory, the intel IOMMU, the serial console (a pty, logged by virtlogd), no default
devices. The rest goes through <qemu:commandline>, exactly as the QEMU backend
writes it (host/qemu_argv.py guest_argv): libvirt has no model for pci-testdev and would
escape the commas of a multiboot module list (`-initrd "vmlinuz args,initrd"`), and
passing the same arguments keeps the two backends' machines identical, which the
parity test checks. A boot ISO (grub-mkrescue) was the other route for Xen; it
would change the firmware's boot path and the memory map between backends.

QEMU runs as libvirt-qemu: the boot files are hard-linked or copied into a
world-readable staging directory per boot. Domains are transient, named
rig-<plan>-<random>, tagged with the rig's pid in their metadata, and destroyed on
every exit path; a domain left by a rig that was killed with SIGKILL is destroyed by
the next rig that starts a libvirt host.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import tty
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pexpect.fdpexpect

from rig.errors import InputError, LaunchError, MonitorError
from rig.spec.plan import BootPlan
from rig.host import Lifecycle
from rig.host.media import Media
from rig.host.ports import forward_ssh
from rig.host.qemu_argv import guest_argv

log = logging.getLogger(__name__)

DEFAULT_URI = "qemu:///system"
METADATA_NS = "https://github.com/xen-pvh-rig/owner"
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
STAGING_ROOT = Path("/var/tmp")  # QEMU (user libvirt-qemu) must reach the boot files


MISSING_LIBRARY = ("the libvirt backend needs libvirt-python, which `./bootstrap.sh ab` does not install: "
                   "apt-get install libvirt-dev pkg-config && .venv/bin/pip install -e '.[libvirt]'")


def available() -> bool:
    try:
        import libvirt  # noqa: F401
        import libvirt_qemu  # noqa: F401
    except ImportError:
        return False
    return True


def _libvirt():
    try:
        import libvirt
        import libvirt_qemu
    except ImportError as exc:
        raise LaunchError(MISSING_LIBRARY) from exc
    # libvirt prints every error to stderr by default; the rig turns the ones that matter
    # into its own messages (and a domain that powered off is "not found", as expected).
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    return libvirt, libvirt_qemu


def _cpu_xml(plan: BootPlan) -> str:
    model = plan.arch.cpu[plan.accel.name]
    if model == "host":
        return "<cpu mode='host-passthrough'/>"
    name, *features = model.split(",")
    feats = "".join(f"<feature policy='{'require' if f[0] == '+' else 'disable'}' name={quoteattr(f[1:])}/>"
                    for f in features)
    return f"<cpu mode='custom' match='exact'><model fallback='forbid'>{escape(name)}</model>{feats}</cpu>"


def _iommu_xml(plan: BootPlan) -> str:
    devices = plan.arch.iommus[plan.iommu]
    if not devices:
        return ""
    props = dict(p.split("=", 1) for p in devices[0].split(",")[1:])
    model = devices[0].split(",")[0].removesuffix("-iommu")
    return (f"<iommu model={quoteattr(model)}><driver intremap={quoteattr(props.get('intremap', 'off'))} "
            f"aw_bits={quoteattr(props.get('aw-bits', '39'))}/></iommu>")


def domain_xml(plan: BootPlan, name: str, staged: BootPlan, serial_log: Path, owner_pid: int) -> str:
    """The transient domain for `plan` (pure). `staged` is the plan with its boot files in
    the staging directory."""
    if plan.maxmem is not None:
        raise InputError(f"{plan.name}: memory hotplug (maxmem) is not supported by the libvirt backend yet")
    if plan.firmware.code:
        raise InputError(f"{plan.name}: firmware {plan.firmware.name!r} is not supported by the libvirt "
                         "backend yet (seabios is)")
    args = "".join(f"<qemu:arg value={quoteattr(a)}/>" for a in guest_argv(staged, Media()))
    domain_type = "kvm" if plan.accel.name == "kvm" else "qemu"
    return f"""<domain type='{domain_type}' xmlns:qemu='{QEMU_NS}'>
  <name>{escape(name)}</name>
  <metadata><rig:owner xmlns:rig='{METADATA_NS}' pid='{owner_pid}'/></metadata>
  <memory unit='MiB'>{plan.memory >> 20}</memory>
  <vcpu>{plan.cpus}</vcpu>
  <os><type arch={quoteattr(plan.arch.name)} machine={quoteattr(plan.arch.machine)}>hvm</type></os>
  <features><acpi/><apic/>{"<ioapic driver='qemu'/>" if plan.iommu != "none" else ""}</features>
  {_cpu_xml(plan)}
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <controller type='usb' model='none'/>
    <serial type='pty'><log file={quoteattr(str(serial_log))} append='off'/><target port='0'/></serial>
    <memballoon model='none'/>
    {_iommu_xml(plan)}
  </devices>
  <qemu:commandline>{args}</qemu:commandline>
</domain>
"""


def reap_orphans(conn) -> list[str]:
    """Destroy rig domains whose owning rig process is gone (killed with SIGKILL)."""
    import re
    reaped = []
    for dom in conn.listAllDomains():
        if not dom.name().startswith("rig-"):
            continue
        try:
            meta = dom.metadata(2, METADATA_NS)  # VIR_DOMAIN_METADATA_ELEMENT
        except Exception:  # not ours after all: no rig metadata
            continue
        m = re.search(r"pid=['\"](\d+)", meta)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            try:
                dom.destroy()
                reaped.append(dom.name())
            except Exception:  # gone meanwhile
                pass
    for staging in STAGING_ROOT.glob("rig-libvirt-*-*"):  # boot files of those rigs
        pid = staging.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(staging, ignore_errors=True)
    return reaped


class LibvirtHost(Lifecycle):
    """One transient libvirt domain: `with LibvirtHost(plan, run_dir) as host: host.console...`."""

    def __init__(self, plan: BootPlan, run_dir: Path, uri: str | None = None):
        self.plan = plan
        self.run_dir = run_dir
        self.uri = uri or os.environ.get("RIG_LIBVIRT_URI", DEFAULT_URI)
        self.serial_log = run_dir / "serial.log"
        self.console: pexpect.fdpexpect.fdspawn | None = None
        self.ssh_port: int | None = None
        self.name = f"rig-{plan.name}-{secrets.token_hex(4)}"
        self._conn = None
        self._dom = None
        self._fd: int | None = None
        self._staging: Path | None = None

    @property
    def pid(self) -> str:
        return self.name

    def _stage(self) -> BootPlan:
        """Boot files where libvirt-qemu can read them (root's cache is private)."""
        self._staging = Path(tempfile.mkdtemp(prefix=f"rig-libvirt-{os.getpid()}-", dir=STAGING_ROOT))
        os.chmod(self._staging, 0o755)
        staged = {}
        for field in ("xen", "kernel", "initrd"):
            src = Path(getattr(self.plan, field))
            dest = self._staging / f"{field}-{src.name}"
            try:
                os.link(src, dest)
            except OSError:
                shutil.copy(src, dest)
            os.chmod(dest, 0o644)
            staged[field] = dest
        from dataclasses import replace
        return replace(self.plan, **staged)

    def _launch(self) -> None:
        libvirt, _ = _libvirt()
        try:
            self._conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise LaunchError(f"cannot connect to libvirt at {self.uri}: {exc.get_error_message()} "
                              "(is libvirtd running? ./bootstrap.sh test starts it)") from exc
        for name in reap_orphans(self._conn):
            log.warning("destroyed %s, left by a rig that no longer runs", name)
        xml = domain_xml(self.plan, self.name, self._stage(), self.serial_log, os.getpid())
        (self.run_dir / "domain.xml").write_text(xml)
        try:
            self._dom = self._conn.createXML(xml, libvirt.VIR_DOMAIN_START_PAUSED)
        except libvirt.libvirtError as exc:
            raise LaunchError(f"libvirt refused domain {self.name}: {exc.get_error_message()}",
                              log=self.run_dir / "domain.xml") from exc
        self._write_argv()
        pty = self._pty_path()
        self._fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._fd)  # no echo, no line discipline: the guest's bytes as they are
        self.console = pexpect.fdpexpect.fdspawn(self._fd, encoding="utf-8", codec_errors="replace",
                                                 maxread=65536, use_poll=True)
        if self.plan.network == "user":
            self.ssh_port = forward_ssh(self._hmp, self.run_dir)
        self._dom.resume()
        log.info("libvirt domain %s started", self.name)

    def _pty_path(self) -> str:
        import xml.etree.ElementTree as ET
        root = ET.fromstring(self._dom.XMLDesc(0))
        source = root.find("./devices/serial/source")
        if source is None or not source.get("path"):
            raise LaunchError(f"libvirt gave {self.name} no serial pty")
        return source.get("path")

    def _write_argv(self) -> None:
        # What libvirt ran, for the record (the QEMU backend writes qemu-argv.txt too).
        pid_file = Path(f"/run/libvirt/qemu/{self.name}.pid")
        try:
            pid = pid_file.read_text().strip()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            import shlex
            (self.run_dir / "qemu-argv.txt").write_text(" ".join(shlex.quote(a.decode()) for a in argv if a) + "\n")
        except OSError:
            pass

    def _monitor(self, command: str, hmp: bool = False) -> str:
        _, libvirt_qemu = _libvirt()
        return libvirt_qemu.qemuMonitorCommand(self._dom, command, 1 if hmp else 0)

    def _hmp(self, line: str) -> str:
        return self._monitor(line, hmp=True)

    def query_pci(self, timeout: float) -> list[dict]:
        # libvirt's monitor call waits for QEMU's answer without a deadline: it runs in a
        # thread of its own, and a stalled monitor is an error after `timeout` (the teardown's
        # destroy then ends the call).
        libvirt, _ = _libvirt()
        answer: dict = {}

        def ask() -> None:
            try:
                answer["text"] = self._monitor('{"execute": "query-pci"}')
            except libvirt.libvirtError as exc:
                answer["error"] = exc

        asking = threading.Thread(target=ask, name="rig-libvirt-query-pci", daemon=True)
        asking.start()
        asking.join(timeout)
        if asking.is_alive():
            raise MonitorError(f"QMP query-pci: no answer within {timeout:.0f} s")
        if "error" in answer:
            raise MonitorError(f"QMP query-pci through libvirt: {answer['error']}") from answer["error"]
        return json.loads(answer["text"])["return"]

    def wait_exit(self, timeout: float | None) -> bool:
        """Wait for the domain to stop by itself (guest power-off); True if it did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._dom is None or not self._active():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def _active(self) -> bool:
        try:
            return bool(self._dom.isActive())
        except Exception:  # a transient domain that stopped no longer exists
            return False

    def kill(self) -> None:
        """From another thread: stop the domain at once; the owner's close() does the rest."""
        dom = self._dom
        if dom is not None:
            try:
                dom.destroy()
            except Exception:  # already gone
                pass

    def close(self) -> None:
        """Idempotent: destroy the domain, close the console and the connection, unstage."""
        dom, self._dom = self._dom, None
        if dom is not None:
            try:
                if dom.isActive():
                    dom.destroy()
            except Exception:  # already gone
                pass
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
