"""Xen's own console lines: version, command line, panic message, dom0 kind."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PREFIX = re.compile(r"^\(XEN\)(?: \[[^\]]*\])? ?")


@dataclass(frozen=True)
class XenLog:
    version: str | None = None
    cmdline: str | None = None
    dom0_kind: str | None = None      # "PVH" | "PV"
    panic: str | None = None          # the message between the asterisk rules
    device_setup_failures: tuple[str, ...] = field(default_factory=tuple)


def xen_lines(serial: str) -> list[str]:
    """Xen's lines from a mixed console, prefix and timestamp removed."""
    return [_PREFIX.sub("", line.rstrip("\r")) for line in serial.splitlines() if line.startswith("(XEN)")]


def parse(serial: str) -> XenLog:
    lines = xen_lines(serial)
    version = cmdline = kind = panic = None
    failures = []
    for i, line in enumerate(lines):
        if version is None and (m := re.match(r"Xen version (\S+)", line)):
            version = m.group(1)
        elif cmdline is None and line.startswith("Command line: "):
            cmdline = line.removeprefix("Command line: ").strip()
        elif m := re.search(r"\*\*\* Building a (PVH|PV) Dom0 \*\*\*", line):
            kind = m.group(1)
        elif m := re.match(r"setup ([0-9a-f:.]+) for d0 failed \((-?\d+)\)", line):
            failures.append(f"{m.group(1)} ({m.group(2)})")
        elif panic is None and re.match(r"Panic on CPU \d+:", line):
            body = []
            for follow in lines[i + 1:]:
                if follow.startswith("****"):
                    break
                body.append(follow.strip())
            panic = " ".join(b for b in body if b)
    return XenLog(version, cmdline, kind, panic, tuple(failures))
