"""PCI resources from the two ends of a run, in one shape so they can be compared:

- firmware: QMP `query-pci`, read when Xen starts (firmware has programmed the BARs,
  no Linux has run yet);
- final: the agent's `pci-resources` section, from /sys/bus/pci/devices/*/resource.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from rig.errors import ParseError

from rig.parse.dmesg import BRIDGE_IO, BRIDGE_MEM, BRIDGE_PREF, resource_name

# include/linux/ioport.h
IORESOURCE_IO = 0x100
IORESOURCE_MEM = 0x200
IORESOURCE_PREFETCH = 0x2000
IORESOURCE_MEM_64 = 0x100000
IORESOURCE_DISABLED = 0x10000000
IORESOURCE_UNSET = 0x20000000
_UNMAPPED = (1 << 64) - 1  # QEMU's PCI_BAR_UNMAPPED as query-pci reports it


@dataclass(frozen=True)
class PciResource:
    device: str      # "0000:00:03.0"
    index: int       # Linux resource index (0-5 BARs, 13-15 bridge windows)
    kind: str        # "mem" | "io"
    start: int | None  # None: unassigned
    end: int | None
    prefetch: bool = False
    is_64: bool = False

    @property
    def name(self) -> str:
        return resource_name(self.index)

    @property
    def key(self) -> tuple[str, int]:
        return (self.device, self.index)

    @property
    def range(self) -> tuple[int, int] | None:
        return None if self.start is None else (self.start, self.end)


def _bdf(bus: int, slot: int, function: int) -> str:
    return f"0000:{bus:02x}:{slot:02x}.{function:x}"


def _walk(devices: list[dict], out: list[PciResource]) -> None:
    for dev in devices:
        name = _bdf(dev["bus"], dev["slot"], dev["function"])
        for region in dev.get("regions", []):
            address, size = region["address"], region["size"]
            if address in (_UNMAPPED, -1, 0) or size == 0:  # -1: how QEMU 7.2 reports an unmapped ROM
                start = end = None
            else:
                start, end = address, address + size - 1
            out.append(PciResource(name, region["bar"], "io" if region["type"] == "io" else "mem",
                                   start, end, bool(region.get("prefetch")), bool(region.get("mem_type_64"))))
        bridge = dev.get("pci_bridge")
        if bridge:
            ranges = bridge.get("bus", bridge)  # QEMU puts the windows inside pci_bridge.bus
            for key, index, kind, pref in (("io_range", BRIDGE_IO, "io", False),
                                           ("memory_range", BRIDGE_MEM, "mem", False),
                                           ("prefetchable_range", BRIDGE_PREF, "mem", True)):
                window = ranges.get(key)
                if window and window["base"] <= window["limit"]:
                    out.append(PciResource(name, index, kind, window["base"], window["limit"], pref))
            _walk(bridge.get("devices", []), out)


def from_query_pci(text: str) -> list[PciResource]:
    """QMP `query-pci` return value (JSON text of the list of buses, or a whole response)."""
    data = json.loads(text)
    return from_query_pci_data(data["return"] if isinstance(data, dict) else data)


def from_query_pci_data(data: list[dict]) -> list[PciResource]:
    out: list[PciResource] = []
    for bus in data:
        _walk(bus.get("devices", []), out)
    return out


# Linux's resource indices with CONFIG_PCI_IOV (Debian's kernels): BARs 0-5, ROM 6, IOV 7-12,
# bridge windows 13-16. Without it the windows follow the ROM (7-10). sysfs prints every
# slot of a bridge (DEVICE_COUNT_RESOURCE: 17 lines, 11 without IOV) and the slots before
# the windows for other devices (13, or 7 without IOV).
BRIDGE_LINES_WITHOUT_IOV = 11
IOV_SLOTS = 6


def canonical_index(index: int, lines: int | None) -> int:
    """The resource index as a kernel with PCI_IOV numbers it (pure)."""
    if lines == BRIDGE_LINES_WITHOUT_IOV and index >= BRIDGE_LINES_WITHOUT_IOV - 4:
        return index + IOV_SLOTS
    return index


_SYSFS_LINE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] \d+ 0x[0-9a-f]{16} 0x[0-9a-f]{16} 0x[0-9a-f]{16}( \d+)?$")


def from_sysfs(text: str) -> list[PciResource]:
    """Agent lines 'BDF INDEX START END FLAGS [LINES]' (hex), one per non-empty resource slot;
    LINES (newer agents) is the length of the device's sysfs resource file."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not _SYSFS_LINE.match(line.strip()):
            raise ParseError(f"pci-resources: line does not parse: {line.strip()!r}")
        parts = line.split()
        lines = int(parts[5]) if len(parts) == 6 else None
        parts = parts[:5]
        device, index = parts[0], canonical_index(int(parts[1]), lines)
        start, end, flags = (int(p, 16) for p in parts[2:])
        if not flags & (IORESOURCE_IO | IORESOURCE_MEM):
            continue
        kind = "io" if flags & IORESOURCE_IO else "mem"
        assigned = start != 0 and not flags & (IORESOURCE_UNSET | IORESOURCE_DISABLED)
        out.append(PciResource(device, index, kind, start if assigned else None, end if assigned else None,
                               bool(flags & IORESOURCE_PREFETCH), bool(flags & IORESOURCE_MEM_64)))
    return out
