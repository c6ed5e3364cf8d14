"""The serial console as a stage machine: firmware -> xen -> dom0 -> userspace -> collected.

The patterns are data shared by the live watcher (pexpect, while QEMU runs) and
the pure classifier (a finished console log), so both judge a boot the same way.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

import pexpect

from rig.errors import BootError
from rig.guest import protocol
from rig.parse import normalise_newlines, xen

STAGES = ("firmware", "xen", "dom0", "userspace", "collected")

# The line that proves a stage was entered.
STAGE_MARKERS = {
    "xen": r"\(XEN\)",
    "dom0": r"Linux version \S+",
    "userspace": re.escape(protocol.AGENT),
    "collected": re.escape(protocol.DONE),   # after the sections (serial), or acknowledging an SSH collection
}
READY_MARKER = re.escape(protocol.READY)   # the agent has tried its network and snapshotted every section

# Seconds allowed to go from the previous stage to this one, under TCG on 2 cores
# with another boot beside it (a lone boot needs about a third of this).
STAGE_TIMEOUTS = {"xen": 60, "dom0": 120, "userspace": 240, "collected": 180}

# Failure classes, earliest match in the text wins.
FAILURES = {
    "xen-panic": r"\(XEN\)[^\n]*Panic on CPU \d+:",
    "dom0-crash": r"Hardware Dom0 crashed",
    # dom0 powered off, or every vCPU halted with interrupts off: what Linux's early
    # exception handler does before it can print (Xen 4.17 under QEMU 10, docs/versions.md).
    "dom0-halt": r"Hardware Dom0 halted",
    # Xen reports a dom0 triple fault itself, then resets the machine (QEMU exits: -no-reboot).
    "dom0-triple-fault": r"\(XEN\)[^\n]*d0v\d+ Triple fault",
    "kernel-panic": r"Kernel panic - not syncing:[^\r\n]*",
    # The agent could not start (a kernel without script support, a broken archive). Linux
    # would go on to the initramfs's /sbin/init, busybox's, and sit there until a stage limit.
    "init-exec": r"Failed to execute /init \(error -?\d+\)",
}
_FAILURE_RES = {name: re.compile(p) for name, p in FAILURES.items()}
_TAIL_AFTER_FAILURE = 3.0  # seconds of console kept after a failure line, for the message


@dataclass(frozen=True)
class Outcome:
    stage_reached: str
    failure: str | None = None   # a FAILURES key, "hang" or "qemu-exit"
    detail: str | None = None


def stage_reached(text: str) -> str:
    reached = "firmware"
    pos = 0
    for stage in STAGES[1:]:
        m = re.compile(STAGE_MARKERS[stage]).search(text, pos)
        if not m:
            break
        reached, pos = stage, m.end()
    return reached


def _line_at(text: str, pos: int) -> tuple[str, str]:
    """The line containing pos, and the nearest non-empty line before it."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start:end if end >= 0 else len(text)].strip()
    before = [ln.strip() for ln in text[:start].splitlines() if ln.strip()]
    return line, (before[-1] if before else "")


def failure_detail(failure: str, text: str, pos: int) -> str:
    line, previous = _line_at(text, pos)
    if failure == "xen-panic":
        return xen.parse(text[text.rfind("\n", 0, pos) + 1:]).panic or line
    line = re.sub(r"^(\(XEN\)(?: \[[^\]]*\])?|\[\s*\d+\.\d+\])\s*", "", line)
    previous = re.sub(r"^(\(XEN\)(?: \[[^\]]*\])?|\[\s*\d+\.\d+\])\s*", "", previous)
    return f"{line} (after: {previous})" if previous else line


def classify(text: str) -> Outcome:
    """Judge a whole console log: how far it got and, if it failed, how."""
    text = normalise_newlines(text)
    first = None
    for name, pattern in _FAILURE_RES.items():
        m = pattern.search(text)
        if m and (first is None or m.start() < first[1]):
            first = (name, m.start())
    if first:
        name, pos = first
        return Outcome(stage_reached(text[:pos]), name, failure_detail(name, text, pos))
    return Outcome(stage_reached(text))


@dataclass
class Transcript:
    """Everything read from the console so far (pexpect's logfile_read target)."""

    chunks: list[str] = field(default_factory=list)

    def write(self, data: str) -> None:
        self.chunks.append(data)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text.splitlines()[-lines:])


def watch(console: pexpect.spawnbase.SpawnBase, transcript: Transcript, *, until: str = "collected",
          start: str = "firmware", timeout_scale: float = 1.0,
          on_stage: Callable[[str], None] = lambda stage: None,
          timings: dict[str, float] | None = None, extra_seconds: dict[str, float] | None = None,
          clock: Callable[[], float] = time.monotonic, since: float | None = None) -> dict[str, float]:
    """Follow the console from stage `start` (entered at `since`) to stage `until`, filling
    `timings` with the seconds spent in each stage as it is left (so a failed boot keeps
    the timings it had).

    Raises BootError (stage reached, failure class, detail, console tail) otherwise.
    """
    timings = {} if timings is None else timings
    reached = start
    last = clock() if since is None else since
    for stage in STAGES[STAGES.index(start) + 1:STAGES.index(until) + 1]:
        limit = (STAGE_TIMEOUTS[stage] + (extra_seconds or {}).get(stage, 0.0)) * timeout_scale
        expect_marker(console, transcript, STAGE_MARKERS[stage], reached, f"stage {stage}", limit)
        now = clock()
        timings[reached] = round(now - last, 2)
        last, reached = now, stage
        on_stage(stage)
    return timings


def expect_marker(console: pexpect.spawnbase.SpawnBase, transcript: Transcript, marker: str,
                  reached: str, what: str, limit: float) -> None:
    """Wait for `marker` on the console; a failure line, EOF or `limit` seconds of waiting
    raise BootError at stage `reached`."""
    failure_names = list(FAILURES)
    patterns = [marker, *FAILURES.values(), pexpect.EOF, pexpect.TIMEOUT]
    i = console.expect(patterns, timeout=limit)
    if i == 0:
        return
    if i <= len(failure_names):
        # Let the rest of the message arrive (Xen prints the panic text after the banner).
        console.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=_TAIL_AFTER_FAILURE)
        outcome = classify(transcript.text)
        raise BootError(outcome.failure or failure_names[i - 1], reached, outcome.detail or "", transcript.tail())
    if patterns[i] is pexpect.EOF:
        raise BootError("qemu-exit", reached, f"QEMU exited while waiting for {what}", transcript.tail())
    raise BootError("hang", reached, f"no sign of {what} within {limit:.0f} s", transcript.tail())


ESCAPE = b"\x1d"  # Ctrl-]: leave an interactive console, as telnet does


def interact(spawn: pexpect.spawnbase.SpawnBase, stdin_fd: int, stdout_fd: int) -> str:
    """Join the console to a terminal until the guest goes away ("eof") or the user types
    Ctrl-] ("escape"). pexpect's interact() exists only for pty children, not for the
    socket the console is, so this is its loop. The caller puts the terminal in raw mode."""
    import os
    import select

    pending = spawn.buffer  # what pexpect had read past its last match (the shell's prompt)
    spawn.buffer = ""
    if pending:
        os.write(stdout_fd, pending.encode())
    fd = spawn.child_fd
    while True:
        ready, _, _ = select.select([fd, stdin_fd], [], [])
        if fd in ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                return "eof"
            if spawn.logfile_read is not None:
                spawn.logfile_read.write(data.decode(errors="replace"))
            os.write(stdout_fd, data)
        if stdin_fd in ready:
            data = os.read(stdin_fd, 1024)
            if not data or ESCAPE in data:
                return "escape"
            os.write(fd, data)
