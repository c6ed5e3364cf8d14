"""Host backends: own a running emulated machine and expose its console and PCI state.

Every backend is a context manager whose cleanup is idempotent and runs after a
failed start too. Only this package knows how a backend is driven (QEMU argv,
sockets, processes).
"""

from __future__ import annotations

from typing import Protocol

import pexpect


class Host(Protocol):
    console: pexpect.spawnbase.SpawnBase
    ssh_port: int | None

    def __enter__(self) -> "Host": ...
    def __exit__(self, *exc) -> None: ...
    def query_pci(self, timeout: float) -> list[dict]: ...
    def wait_exit(self, timeout: float) -> bool: ...
    def close(self) -> None: ...
    def kill(self) -> None: ...


class Lifecycle:
    """The context-manager half every backend shares: launch on enter, and close() after a
    failed launch as after success (close() is idempotent)."""

    def _launch(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        try:
            self._launch()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def backends() -> dict[str, type]:
    """Backend name -> host class. A new backend is a new row here."""
    from rig.host.libvirt import LibvirtHost
    from rig.host.qemu import QemuHost
    return {"qemu": QemuHost, "libvirt": LibvirtHost}


BACKEND_NAMES = ("qemu", "libvirt")


def open_host(backend: str, plan, run_dir):
    try:
        return backends()[backend](plan, run_dir)
    except KeyError as exc:
        from rig.errors import InputError
        raise InputError(f"unknown backend {backend!r} (available: {', '.join(BACKEND_NAMES)})") from exc
