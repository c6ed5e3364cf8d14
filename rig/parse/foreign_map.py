"""The agent's foreign-map section: where dom0's foreign-mapping probe
(guests/agent/foreign-map.c) mapped a page it granted itself (pure, strict).

    mapped ref=8 pfn=0x48000 addr=0x48000000 page=4096 pattern=ok
    failed step=gntdev-map errno=12 (Cannot allocate memory)
    absent                      (no probe in this initramfs)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rig.errors import ParseError

_MAPPED = re.compile(r"^mapped ref=(\d+) pfn=(0x[0-9a-f]+) addr=(0x[0-9a-f]+) page=(\d+) pattern=(ok|mismatch)$")
_FAILED = re.compile(r"^failed step=([a-z-]+) errno=(\d+) \((.*)\)$")
# Steps at which the probe found no device to ask (a kernel without gntalloc or gntdev, or
# without their modules): nothing about the kernel's mappings is known then.
UNASKED_STEPS = ("open-gntalloc", "open-gntdev", "open-pagemap")


@dataclass(frozen=True)
class ForeignMap:
    mapped: bool
    address: int | None = None     # the physical address the mapped page landed at
    page: int | None = None        # its size in bytes
    pattern_ok: bool = False       # the mapping reads what the granting side wrote
    step: str = ""                 # where it failed
    errno: int = 0
    reason: str = ""

    @property
    def unasked(self) -> bool:
        return not self.mapped and self.step in UNASKED_STEPS

    def describe(self) -> str:
        if self.mapped:
            return (f"mapped at {self.address:#x} ({self.page}-byte page), "
                    + ("reads back what was granted" if self.pattern_ok else "reads back something else"))
        return f"failed at {self.step}: errno {self.errno} ({self.reason})"


def parse(text: str) -> ForeignMap | None:
    """None when there is no probe ("absent"); one mapped or failed line otherwise."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines == ["absent"]:
        return None
    if len(lines) != 1:
        raise ParseError(f"foreign-map section: want one line, got {len(lines)}")
    if m := _MAPPED.match(lines[0]):
        pfn, addr, page = int(m.group(2), 16), int(m.group(3), 16), int(m.group(4))
        if page <= 0 or page & (page - 1) or addr != pfn * page:
            raise ParseError(f"foreign-map section: address {addr:#x} is not frame {pfn:#x} of {page}-byte pages")
        return ForeignMap(True, addr, page, m.group(5) == "ok")
    if m := _FAILED.match(lines[0]):
        return ForeignMap(False, step=m.group(1), errno=int(m.group(2)), reason=m.group(3))
    raise ParseError(f"foreign-map section: line does not parse: {lines[0][:80]!r}")
