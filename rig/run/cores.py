"""Machine-wide core slots: how many guest vCPUs run at once on this machine, across
every rig process (pytest-xdist workers, parallel CI jobs, a second terminal).

Under TCG each vCPU is a thread that keeps a core busy: more vCPUs than cores slow every
boot and stretch its stage timers (two 2-vCPU hosts on 2 cores: 28-30 s each side by side
against 15 s alone). A slot is an flock on one of N files in a directory all the
machine's rigs share; the kernel drops a lock when its holder dies, so a killed rig
never leaks a slot. A boot takes all its slots or none (then waits), so two rigs each
holding half of what they need never block each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from rig.errors import InputError, Interrupted, RigError


def total() -> int:
    """Slots on this machine: $RIG_CORES, else the cores this process may run on."""
    value = os.environ.get("RIG_CORES")
    if value:
        try:
            return max(1, int(value))
        except ValueError as exc:
            raise InputError(f"RIG_CORES={value!r}: not a number of cores") from exc
    return len(os.sched_getaffinity(0)) or 1


def slots_dir() -> Path:
    """Shared by every rig of this user on this machine ($RIG_CORES_DIR to separate them)."""
    return Path(os.environ.get("RIG_CORES_DIR") or Path(tempfile.gettempdir()) / f"rig-cores-{os.getuid()}")


def _try_take(directory: Path, want: int, slots: int) -> list:
    taken = []
    try:
        for i in range(slots):
            if len(taken) == want:
                break
            f = open(directory / f"core-{i}", "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            except BaseException:
                f.close()
                raise
            taken.append(f)
    except OSError as exc:   # out of file descriptors, a directory another user made
        for f in taken:
            f.close()
        raise RigError(f"core slots in {directory}: {exc.strerror or exc}") from exc
    if len(taken) < want:
        for f in taken:
            f.close()   # closing drops the lock
        return []
    return taken


@contextlib.contextmanager
def held(vcpus: int, waiting: Callable[[str], None] = lambda msg: None, poll: float = 0.25,
         cancelled: Callable[[], bool] = lambda: False) -> Iterator[int]:
    """Hold `vcpus` slots (at most every slot there is) for the body; says once through
    `waiting` when it has to wait for other boots, and stops waiting (Interrupted) once
    `cancelled()` is true. Yields the number of slots held."""
    slots = total()
    want = max(1, min(vcpus, slots))
    directory = slots_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise RigError(f"core slots in {directory}: {exc.strerror or exc}") from exc
    taken = _try_take(directory, want, slots)
    if not taken:
        waiting(f"waiting for {want} free core(s): {slots} in use by other boots on this machine")
        while not taken:
            if cancelled():
                raise Interrupted("interrupted while waiting for a free core")
            time.sleep(poll * (1 + random.random()))  # jitter: waiters do not retry in lockstep
            taken = _try_take(directory, want, slots)
    try:
        yield want
    finally:
        for f in taken:
            f.close()
