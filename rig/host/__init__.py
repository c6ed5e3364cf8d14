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

    def __enter__(self) -> "Host": ...
    def __exit__(self, *exc) -> None: ...
    def query_pci(self) -> list[dict]: ...
    def wait_exit(self, timeout: float) -> bool: ...
    def close(self) -> None: ...
