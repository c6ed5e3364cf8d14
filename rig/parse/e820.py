"""Memory maps: Xen's host e820, the dom0 kernel's BIOS-e820 lines, /sys/firmware/memmap."""

from __future__ import annotations

import re
from dataclasses import dataclass

# One vocabulary for the three sources; the balloon check only cares about ram/unusable.
_TYPES = {
    "usable": "ram", "system ram": "ram", "ram": "ram",
    "reserved": "reserved",
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


_BIOS_E820 = re.compile(r"BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (.+?)\s*$")
_XEN_E820 = re.compile(r"^\(XEN\)(?: \[[^\]]*\])?\s+\[([0-9a-f]+), ([0-9a-f]+)\] \((.+)\)\s*$")
_MEMMAP = re.compile(r"^(0x[0-9a-f]+) (0x[0-9a-f]+) (.+?)\s*$")


def from_dmesg(dmesg: str) -> list[E820Entry]:
    """The map the dom0 kernel printed at boot (first block only: dmesg may repeat)."""
    entries: list[E820Entry] = []
    for line in dmesg.splitlines():
        m = _BIOS_E820.search(line)
        if m:
            entry = E820Entry(int(m.group(1), 16), int(m.group(2), 16), normalise_type(m.group(3)))
            if entries and entry.start <= entries[-1].start:
                break  # a second copy of the same map
            entries.append(entry)
        elif entries:
            break
    return entries


def from_memmap(text: str) -> list[E820Entry]:
    """The agent's e820 section: 'start end type' from /sys/firmware/memmap/*."""
    entries = []
    for line in text.splitlines():
        m = _MEMMAP.match(line.strip())
        if m:
            entries.append(E820Entry(int(m.group(1), 16), int(m.group(2), 16), normalise_type(m.group(3))))
    return sorted(entries, key=lambda e: e.start)


def from_xen(xen_log: str) -> list[E820Entry]:
    """Xen's view of the host: the 'Xen-e820 RAM map:' block."""
    entries: list[E820Entry] = []
    inside = False
    for line in xen_log.splitlines():
        if "Xen-e820 RAM map:" in line:
            inside, entries = True, []
            continue
        if inside:
            m = _XEN_E820.match(line.rstrip())
            if not m:
                break
            entries.append(E820Entry(int(m.group(1), 16), int(m.group(2), 16), normalise_type(m.group(3))))
    return entries


def ranges_of(entries: list[E820Entry], kind: str) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in entries if e.type == kind]
