"""The agent's foreign-map section: where dom0's foreign-mapping probe
(guests/agent/foreign-map.c) mapped a page it granted itself (pure, strict).

    mapped ref=8 pfn=0x4ffff addr=0x4ffff000 page=4096 granted=0x6fe3c pattern=ok
    failed step=gntdev-map errno=12 (Cannot allocate memory)
    absent                      (no probe in this initramfs)

The agent marks dmesg with MARK just before the probe runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rig.errors import ParseError

MARK = "rig: foreign-map probe starts"
_MAPPED = re.compile(r"^mapped ref=([0-9]+) pfn=(0x[0-9a-f]+) addr=(0x[0-9a-f]+) page=([0-9]+) granted=(0x[0-9a-f]+) "
                     r"pattern=(ok|mismatch)$", re.ASCII)
_FAILED = re.compile(r"^failed step=([a-z-]+) errno=([0-9]+) \((.*)\)$", re.ASCII)
PAGE_SIZES = (4096, 16384, 65536)   # arm64's and x86's base pages
PFN_BITS = 55                       # /proc/self/pagemap's frame field
# The steps of guests/agent/foreign-map.c. At these the mapping itself failed: the kernel's
# doing, a verdict. At the others the probe found nothing to ask (no gntalloc or gntdev, a
# grant it could not make, a frame it could not read): no evidence either way.
MAPPING_STEPS = ("gntdev-map", "gntdev-mmap", "gntdev-munmap", "gntdev-unmap", "gntalloc-dealloc")
UNASKED_STEPS = ("open-gntalloc", "gntalloc", "gntalloc-mmap", "open-gntdev", "open-pagemap", "pagemap")


@dataclass(frozen=True)
class ForeignMap:
    mapped: bool
    address: int | None = None     # the physical address the mapped page landed at
    page: int | None = None        # its size in bytes
    granted: int | None = None     # the physical address of the page dom0 granted
    pattern_ok: bool = False       # each side reads what the other wrote
    step: str = ""                 # where it failed
    errno: int = 0
    reason: str = ""

    @property
    def unasked(self) -> bool:
        return not self.mapped and self.step in UNASKED_STEPS

    def describe(self) -> str:
        if self.mapped:
            return (f"mapped at {self.address:#x} ({self.page}-byte page, granted page at {self.granted:#x}), "
                    + ("each side reads what the other wrote" if self.pattern_ok
                       else "the two sides read back something else"))
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
        granted = int(m.group(5), 16)
        if page not in PAGE_SIZES:
            raise ParseError(f"foreign-map section: page={page} is no page size ({', '.join(map(str, PAGE_SIZES))})")
        if addr != pfn * page or max(pfn, granted) >> PFN_BITS:
            raise ParseError(f"foreign-map section: address {addr:#x} is not frame {pfn:#x} of {page}-byte pages")
        return ForeignMap(True, addr, page, granted * page, m.group(6) == "ok")
    if m := _FAILED.match(lines[0]):
        if m.group(1) not in MAPPING_STEPS + UNASKED_STEPS:
            raise ParseError(f"foreign-map section: no such step of the probe: {m.group(1)!r}")
        return ForeignMap(False, step=m.group(1), errno=int(m.group(2)), reason=m.group(3))
    raise ParseError(f"foreign-map section: line does not parse: {lines[0][:80]!r}")
