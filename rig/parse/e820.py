"""Memory maps: Xen's host e820, the dom0 kernel's BIOS-e820 lines, /sys/firmware/memmap."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rig.errors import ParseError

# One vocabulary for the three sources; the balloon check only cares about ram/unusable.
_TYPES = {
    "usable": "ram", "system ram": "ram", "ram": "ram",
    "reserved": "reserved", "device reserved": "reserved",   # Linux 7.x prints "device reserved"
    "acpi data": "acpi", "acpi tables": "acpi",
    "acpi nvs": "nvs", "acpi non-volatile storage": "nvs",
    "unusable": "unusable", "unusable memory": "unusable",
    "persistent (type 12)": "pmem", "persistent memory": "pmem",
    "soft reserved": "soft-reserved",
}


@dataclass(frozen=True)
class E820Entry:
    start: int
    end: int   # inclusive
    type: str  # ram | reserved | acpi | nvs | unusable | pmem | soft-reserved | other:<raw>


def normalise_type(raw: str) -> str:
    raw = raw.strip().lower()
    return _TYPES.get(raw, f"other:{raw}")


# Addresses exactly as the kernel and Xen print them (%#018Lx, %016lx): a doubled or lost
# digit is a garbled line, not another address.
_BIOS_E820 = re.compile(r"BIOS-e820: \[mem 0x([0-9a-f]{16})-0x([0-9a-f]{16})\] +(\S.*?)\s*$")
# Linux 7.x also prints the holes between entries; they are not entries.
_BIOS_E820_GAP = re.compile(r"BIOS-e820: \[gap 0x[0-9a-f]{16}-0x[0-9a-f]{16}\]\s*$")
_XEN_E820 = re.compile(r"^\(XEN\)(?: \[[0-9a-f]+\])?\s+\[([0-9a-f]{16}), ([0-9a-f]{16})\] \(([A-Za-z ]+)\)\s*$")
# Inside the block every entry is indented ("(XEN) [stamp]  [start, end] (type)"); the
# block ends at the first Xen line whose text starts with a word ("New Xen image base",
# "System RAM:"). An indented line that does not parse is a garbled entry.
_XEN_PREFIX = re.compile(r"^\(XEN\)(?: \[[0-9a-f]{16}\])? ?")


def _xen_entry_shaped(line: str) -> bool:
    rest = _XEN_PREFIX.sub("", line)
    return rest[:1] in tuple(" \t[],0123456789abcdef")
_MEMMAP = re.compile(r"^(0x[0-9a-f]+) (0x[0-9a-f]+) (\S.*?)\s*$")


def _entry(start: str, end: str, kind: str, where: str, line: str) -> E820Entry:
    entry = E820Entry(int(start, 16), int(end, 16), normalise_type(kind))
    if entry.type.startswith("other:") and not re.fullmatch(r"other:type \d+", entry.type):
        raise ParseError(f"{where}: unknown memory type {kind!r} (garbled?): {line.strip()!r}")
    if entry.end < entry.start:
        raise ParseError(f"{where}: entry ends before it starts: {line.strip()!r}")
    return entry


def _ascending(entries: list[E820Entry], where: str) -> list[E820Entry]:
    for a, b in zip(entries, entries[1:]):
        if b.start <= a.end:
            raise ParseError(f"{where}: entries overlap or are out of order: "
                             f"[{a.start:#x}-{a.end:#x}] then [{b.start:#x}-{b.end:#x}]")
    return entries


def from_dmesg(dmesg: str) -> list[E820Entry]:
    """The map the dom0 kernel printed at boot (first block only: dmesg may repeat).
    A BIOS-e820 line that does not parse is an error, not the end of the map."""
    entries: list[E820Entry] = []
    for line in dmesg.splitlines():
        if "BIOS-e820:" not in line:
            if entries:
                break
            continue
        if _BIOS_E820_GAP.search(line):
            continue
        m = _BIOS_E820.search(line)
        if not m:
            raise ParseError(f"dmesg: BIOS-e820 line does not parse: {line.strip()!r}")
        entry = _entry(*m.groups(), "dmesg BIOS-e820", line)
        if entries and entry.start <= entries[-1].start:
            break  # a second copy of the same map
        entries.append(entry)
    return _ascending(entries, "dmesg BIOS-e820")


def from_memmap(text: str) -> list[E820Entry]:
    """The agent's e820 section: 'start end type' from /sys/firmware/memmap/*, every line.
    "absent" (a kernel without that directory: Arm) is no map to judge by."""
    if text.strip() == "absent":
        raise ParseError("e820 section: dom0 has no /sys/firmware/memmap")
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _MEMMAP.match(line.strip())
        if not m:
            raise ParseError(f"e820 section: line does not parse: {line.strip()!r}")
        entries.append(_entry(*m.groups(), "e820 section", line))
    return _ascending(sorted(entries, key=lambda e: e.start), "e820 section")


def from_xen(xen_log: str) -> list[E820Entry]:
    """Xen's view of the host: the 'Xen-e820 RAM map:' block ('EFI RAM map:' under xen.efi). An entry-shaped line that
    does not parse (the serial line doubled or dropped a character) is an error."""
    entries: list[E820Entry] = []
    inside = False
    for line in xen_log.splitlines():
        line = line.rstrip("\r")
        if "Xen-e820 RAM map:" in line or "EFI RAM map:" in line:  # multiboot / xen.efi
            inside, entries = True, []
            continue
        if inside:
            m = _XEN_E820.match(line)
            if m:
                entries.append(_entry(*m.groups(), "Xen-e820 RAM map", line))
            elif line.startswith("(XEN)") and _xen_entry_shaped(line):
                raise ParseError(f"Xen-e820 RAM map: line does not parse: {line.strip()!r}")
            else:
                inside = False
    return _ascending(entries, "Xen-e820 RAM map")


def ranges_of(entries: list[E820Entry], kind: str) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in entries if e.type == kind]
