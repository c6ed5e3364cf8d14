"""Port forwards into dom0 through QEMU's user network (HMP `hostfwd_add`), for either backend."""

from __future__ import annotations

import socket
from pathlib import Path

from rig.errors import LaunchError
from rig.spec.plan import NETDEV_ID


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
