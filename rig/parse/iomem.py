"""/proc/iomem as a tree: two spaces of indent per level."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rig.errors import ParseError

_LINE = re.compile(r"^(?P<indent> *)(?P<start>[0-9a-f]+)-(?P<end>[0-9a-f]+) : (?P<name>.*?)\s*$")


@dataclass(frozen=True)
class IomemEntry:
    start: int
    end: int
    name: str
    depth: int
    parent: int | None  # index into the list, None for top level

    @property
    def range(self) -> tuple[int, int]:
        return (self.start, self.end)


def parse(text: str) -> list[IomemEntry]:
    entries: list[IomemEntry] = []
    stack: list[int] = []  # indices of the open ancestors, by depth
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LINE.match(line.rstrip("\r"))
        if not m or len(m.group("indent")) % 2 or len(m.group("indent")) // 2 > len(stack):
            raise ParseError(f"iomem: line does not parse: {line.strip()!r}")
        if int(m.group("end"), 16) < int(m.group("start"), 16):
            raise ParseError(f"iomem: range ends before it starts: {line.strip()!r}")
        depth = len(m.group("indent")) // 2
        del stack[depth:]
        parent = stack[-1] if stack else None
        entries.append(IomemEntry(int(m.group("start"), 16), int(m.group("end"), 16),
                                  m.group("name"), depth, parent))
        stack.append(len(entries) - 1)
    return entries


def named(entries: list[IomemEntry], name: str) -> list[IomemEntry]:
    return [e for e in entries if e.name == name]


def xen_scratch(entries: list[IomemEntry]) -> list[tuple[int, int]]:
    return [e.range for e in named(entries, "Xen scratch")]


_BUS = re.compile(r"^PCI Bus [0-9a-f]{4}:[0-9a-f]{2}$")


def bus_windows(entries: list[IomemEntry], host_name: str | None = None) -> list[IomemEntry]:
    """'PCI Bus dddd:bb' entries: host bridge windows at top level, bridge windows nested.
    `host_name`: how the architecture names its host windows when not so (Arm's device
    tree node, "pcie@10000000": platform.Arch.host_window_name), top level only."""
    host = re.compile(f"^(?:{host_name})$") if host_name else None
    return [e for e in entries if _BUS.match(e.name) or (host and e.depth == 0 and host.match(e.name))]
