"""SSH into dom0 with paramiko: a per-run client key, the host key pinned from the console.

dom0's dropbear makes its host key at boot and the agent prints it on the serial
console, which the rig trusts (it owns that wire). The key is pinned for exactly
[127.0.0.1]:port; any other key is refused (paramiko RejectPolicy), never added.
The files in <run>/ssh/ also work with OpenSSH: `ssh -F <run>/ssh/config dom0`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import select
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rig.errors import RigError
from rig.guest import protocol

OFFER = re.compile(protocol.marker_re(protocol.SSH_OFFER, r"(\S+) ([A-Za-z0-9+/=]+) (SHA256:\S+)\s*$"), re.MULTILINE)
NO_OFFER = re.compile(rf"^{re.escape(protocol.SSH_NONE)} ?(.*?)\s*$", re.MULTILINE)
USER = "root"
HOST = "127.0.0.1"


class SshError(RigError):
    """dom0's SSH server could not be reached, refused us, or presented the wrong key."""


@dataclass(frozen=True)
class HostKey:
    type: str
    base64: str
    fingerprint: str    # as dropbear printed it: SHA256:<unpadded base64>

    def line(self) -> str:
        return f"{self.type} {self.base64}"


def fingerprint(key_base64: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    digest = hashlib.sha256(base64.b64decode(key_base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_offer(console: str) -> tuple[HostKey | None, str]:
    """(the host key the agent offered, or None and why not) from console text (pure).

    A key whose printed fingerprint does not match its blob came through a garbled
    console and is not offered at all."""
    m = OFFER.search(console)
    if m:
        key = HostKey(m.group(1), m.group(2), m.group(3))
        try:
            if fingerprint(key.base64) == key.fingerprint:
                return key, ""
        except ValueError:
            pass
        return None, "the host key line arrived garbled (fingerprint does not match)"
    m = NO_OFFER.search(console)
    if m:
        return None, m.group(1) or "the agent started no SSH server"
    return None, "the agent offered no SSH server"


# --- client key and files for a run ------------------------------------------------------

@dataclass(frozen=True)
class SshFiles:
    """<run>/ssh/: id_ed25519 (0600), id_ed25519.pub, known_hosts, port, config."""

    dir: Path

    @property
    def key_file(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def port_file(self) -> Path:
        return self.dir / "port"

    def new_client_key(self) -> paramiko.Ed25519Key:
        # paramiko cannot generate ed25519 keys; cryptography (paramiko's own backend) can.
        self.dir.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        key = paramiko.Ed25519Key(file_obj=io.StringIO(pem.decode()))
        (self.dir / "id_ed25519.pub").write_text(f"{key.get_name()} {key.get_base64()} rig\n")
        return key

    def client_key(self) -> paramiko.Ed25519Key:
        return paramiko.Ed25519Key.from_private_key_file(str(self.key_file))

    def pin(self, host_key: HostKey, port: int) -> None:
        self.known_hosts.write_text(f"[{HOST}]:{port} {host_key.line()}\n")
        self.port_file.write_text(f"{port}\n")
        (self.dir / "config").write_text(
            f"Host dom0\n  HostName {HOST}\n  Port {port}\n  User {USER}\n  IdentityFile {self.key_file}\n"
            f"  UserKnownHostsFile {self.known_hosts}\n  StrictHostKeyChecking yes\n  IdentitiesOnly yes\n")

    def port(self) -> int:
        return int(self.port_file.read_text())


# --- the connection ----------------------------------------------------------------------

def connect(port: int, client_key: paramiko.PKey, known_hosts: Path, timeout: float = 30.0) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))  # the pinned key only; ~/.ssh is never consulted
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(HOST, port=port, username=USER, pkey=client_key, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout, allow_agent=False,
                       look_for_keys=False)
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise SshError(f"dom0 at {HOST}:{port} presented host key {fingerprint(exc.key.get_base64())}, "
                       f"not the pinned {fingerprint(exc.expected_key.get_base64())}: refused") from exc
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        client.close()
        raise SshError(f"nothing answers on {HOST}:{port}") from exc
    except (paramiko.SSHException, OSError, EOFError) as exc:  # EOFError: the server went mid-handshake
        client.close()
        raise SshError(f"ssh to dom0 at {HOST}:{port} failed: {type(exc).__name__}: {exc}") from exc
    return client


def run(client: paramiko.SSHClient, command: str, timeout: float = 60.0) -> tuple[int, bytes]:
    """(exit status, stdout+stderr) of one command in dom0."""
    try:
        _, stdout, _ = client.exec_command(command, timeout=timeout, get_pty=False)
        stdout.channel.set_combine_stderr(True)
        data = stdout.read()
        # recv_exit_status() would wait forever for a status a frozen dom0 never sends.
        if not stdout.channel.status_event.wait(timeout):
            raise TimeoutError(f"no exit status within {timeout:.0f} s")
        return stdout.channel.recv_exit_status(), data
    except (paramiko.SSHException, OSError, TimeoutError, EOFError) as exc:
        raise SshError(f"ssh command {command!r} failed: {exc}") from exc


# Beyond the serial sections, what only a fast channel carries (protocol.EXTRAS): extra in
# dom0 -> file in the run directory.
EXTRAS = {"lspci": "lspci-vvv.txt", "pci-sysfs": "pci-sysfs-resources.txt", "kernel-config": "kernel-config.txt"}
assert EXTRAS.keys() == protocol.EXTRAS.keys()


def _tar(client: paramiko.SSHClient, command: str) -> dict[str, str]:
    """Files that `command` writes to stdout as a tar archive: one round trip for many files
    (each exec costs a fork in dom0, slow under TCG)."""
    status, data = run(client, command)
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return {m.name.removeprefix("./"): tar.extractfile(m).read().decode(errors="replace")
                    for m in tar.getmembers() if m.isfile()}
    except tarfile.TarError as exc:
        raise SshError(f"dom0 answered {command!r} with no tar archive (exit {status}): "
                       f"{data[:200].decode(errors='replace').strip()}") from exc


def collect(client: paramiko.SSHClient, sections: tuple[str, ...],
            lap=lambda step: None) -> tuple[dict[str, str], dict[str, str]]:
    """(the agent's sections, {extra name: text}) read over SSH in one round trip. A missing
    section is an SshError; an extra the agent did not make (kernel-config is often absent)
    is empty. `lap(step)` is called when the round trip ends (timings)."""
    # stderr dropped: it would land inside the archive (a missing extra is not an error).
    found = _tar(client, f"cd {protocol.RUN_DIR} && tar -cf - {' '.join(sections)} {protocol.EXTRAS_DIR} 2>/dev/null")
    lap("ssh-collect")
    missing = [n for n in sections if n not in found]
    if missing:
        raise SshError(f"dom0 has no {protocol.RUN_DIR}/{missing[0]}")
    return {n: found[n] for n in sections}, {n: found.get(f"{protocol.EXTRAS_DIR}/{n}", "") for n in EXTRAS}


def interactive(client: paramiko.SSHClient, command: str | None = None) -> int:
    """A terminal session (or one command) in dom0. Hand-written because paramiko ships
    its interactive loop only as a demo; this is that loop, with the local tty raw."""
    if command is not None:
        status, data = run(client, command, timeout=3600)
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return status
    import termios
    import tty
    size = os.get_terminal_size() if sys.stdin.isatty() else os.terminal_size((80, 24))
    chan = client.invoke_shell(term=os.environ.get("TERM", "vt100"), width=size.columns, height=size.lines)
    saved = termios.tcgetattr(sys.stdin) if sys.stdin.isatty() else None
    try:
        if saved is not None:
            tty.setraw(sys.stdin.fileno())
        while True:
            ready, _, _ = select.select([chan, sys.stdin], [], [])
            if chan in ready:
                data = chan.recv(4096)
                if not data:
                    break
                os.write(sys.stdout.fileno(), data)
            if sys.stdin in ready:
                data = os.read(sys.stdin.fileno(), 1024)
                if not data:
                    break
                chan.send(data)
    finally:
        if saved is not None:
            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)
    return chan.recv_exit_status() if chan.exit_status_ready() else 0
