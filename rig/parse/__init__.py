"""Pure parsers: text in, frozen dataclasses out. No I/O, no knowledge of QEMU.

Addresses are integers and every range is inclusive [start, end], as the
kernel prints them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Range = tuple[int, int]

# "[mem 0x100000000-0x13fffffff 64bit pref]", "[io  0xc000-0xc0ff]",
# "[mem size 0x40000000 64bit pref]" (an unassigned resource)
RESOURCE = re.compile(
    r"\[(?P<kind>mem|io)\s+(?:(?P<start>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)|size (?P<size>0x[0-9a-f]+))"
    r"(?P<flags>[^\]]*)\]"
)


@dataclass(frozen=True)
class Resource:
    kind: str                 # "mem" | "io"
    start: int | None         # None when only a size is known (unassigned)
    end: int | None
    size: int
    prefetch: bool
    is_64: bool

    @property
    def range(self) -> Range | None:
        return None if self.start is None else (self.start, self.end)


def parse_resource(m: re.Match) -> Resource:
    flags = m.group("flags").split()
    if m.group("size"):
        start = end = None
        size = int(m.group("size"), 16)
    else:
        start, end = int(m.group("start"), 16), int(m.group("end"), 16)
        size = end - start + 1
    return Resource(m.group("kind"), start, end, size, "pref" in flags, "64bit" in flags)


def normalise_newlines(text: str) -> str:
    """Console text -> '\n' lines. Userspace output reaches the serial log as '\r\r\n'
    (the tty's ONLCR, then Xen's serial driver), kernel output as '\r\n'."""
    return re.sub(r"\r+\n", "\n", text).replace("\r", "")


def overlaps(a: Range, b: Range) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def strip_printk_time(line: str) -> str:
    """'[    5.98] text' -> 'text'."""
    return re.sub(r"^\[\s*\d+\.\d+\]\s?", "", line)
