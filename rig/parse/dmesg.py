"""dom0 dmesg: kernel release and the PCI resource story (probe, claim conflicts, assignment).

Both message formats are parsed: v6.8+ (and stable series that took "resource names
in PCI log messages"), e.g.
    pci 0000:00:03.0: BAR 2 [mem ...]: can't claim; address conflict with Xen scratch [mem ...]
    pci 0000:00:03.0: BAR 2 [mem ...]: assigned
and the older one:
    pci 0000:00:03.0: can't claim BAR 2 [mem ...]: address conflict with Xen scratch [mem ...]
    pci 0000:00:03.0: BAR 2: assigned [mem ...]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rig.parse import RESOURCE, Range, Resource, parse_resource, strip_printk_time

# Linux resource indices (include/linux/pci.h): 0-5 BARs, 6 ROM, 7-12 SR-IOV, 13-16 bridge windows.
ROM_INDEX = 6
BRIDGE_IO, BRIDGE_MEM, BRIDGE_PREF = 13, 14, 15


def resource_name(index: int) -> str:
    if index < 6:
        return f"BAR {index}"
    if index == ROM_INDEX:
        return "ROM"
    if index < 13:
        return f"VF BAR {index - 7}"
    return "bridge window"


def bridge_window_index(res: Resource) -> int:
    if res.kind == "io":
        return BRIDGE_IO
    return BRIDGE_PREF if res.prefetch else BRIDGE_MEM


@dataclass(frozen=True)
class PciEvent:
    device: str              # "0000:00:03.0"
    index: int               # Linux resource index
    action: str              # found | claim-conflict | claim-failed | assigned | no-space | failed-assign
    resource: Resource
    conflict_owner: str | None = None
    conflict_range: Range | None = None
    line: str = ""           # the dmesg line, printk time stripped: the evidence

    @property
    def name(self) -> str:
        return resource_name(self.index)


_DEV = r"pci (?P<dev>[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]):\s+"
_NAME = r"(?P<name>BAR \d+|ROM|bridge window|VF BAR \d+)"
_RES = RESOURCE.pattern
_CONFLICT = r"address conflict with (?P<owner>.+?) \[(?:mem|io)\s+(?P<cs>0x[0-9a-f]+)-(?P<ce>0x[0-9a-f]+)[^\]]*\]"

# (action, regex); first match wins, so specific forms come before the bare "found" form.
_PATTERNS = [
    ("claim-conflict", re.compile(_DEV + _NAME + r" " + _RES + r": can't claim; " + _CONFLICT)),
    ("claim-conflict", re.compile(_DEV + r"can't claim " + _NAME + r" " + _RES + r": " + _CONFLICT)),
    ("claim-failed", re.compile(_DEV + _NAME + r" " + _RES + r": can't claim; (?P<reason>.+)$")),
    ("claim-failed", re.compile(_DEV + r"can't claim " + _NAME + r" " + _RES + r": (?P<reason>.+)$")),
    ("assigned", re.compile(_DEV + _NAME + r" " + _RES + r": assigned")),
    ("assigned", re.compile(_DEV + _NAME + r": assigned " + _RES)),
    ("no-space", re.compile(_DEV + _NAME + r" " + _RES + r": can't assign; no space")),
    ("no-space", re.compile(_DEV + _NAME + r": no space for " + _RES)),
    ("failed-assign", re.compile(_DEV + _NAME + r" " + _RES + r": failed to assign")),
    ("failed-assign", re.compile(_DEV + _NAME + r": failed to assign " + _RES)),
    ("found", re.compile(_DEV + _NAME + r" " + _RES + r"\s*$")),
    ("found", re.compile(_DEV + r"reg 0x(?P<reg>[0-9a-f]+): " + _RES + r"\s*$")),
]


def _index(m: re.Match, res: Resource) -> int:
    groups = m.groupdict()
    if groups.get("reg"):
        reg = int(groups["reg"], 16)
        return ROM_INDEX if reg in (0x30, 0x38) else (reg - 0x10) // 4
    name = groups["name"]
    if name == "ROM":
        return ROM_INDEX
    if name == "bridge window":
        return bridge_window_index(res)
    number = int(name.split()[-1])
    if name.startswith("VF BAR"):
        return 7 + number
    return number  # "BAR n"; old kernels also say "BAR 13..16" for bridge windows


def pci_events(dmesg: str) -> list[PciEvent]:
    events = []
    for raw in dmesg.splitlines():
        line = strip_printk_time(raw.rstrip("\r"))
        if not line.startswith("pci "):
            continue
        for action, pattern in _PATTERNS:
            m = pattern.search(line)
            if not m:
                continue
            res = parse_resource(m)
            groups = m.groupdict()
            conflict = (int(groups["cs"], 16), int(groups["ce"], 16)) if groups.get("cs") else None
            events.append(PciEvent(m.group("dev"), _index(m, res), action, res,
                                   groups.get("owner"), conflict, line))
            break
    return events


_RELEASE = re.compile(r"Linux version (\S+)")


def kernel_release(dmesg: str) -> str | None:
    m = _RELEASE.search(dmesg)
    return m.group(1) if m else None


@dataclass(frozen=True)
class HostBridgeWindow:
    bus: str
    resource: Resource


_ROOT_WINDOW = re.compile(r"pci_bus (?P<bus>[0-9a-f]{4}:[0-9a-f]{2}): root bus resource " + _RES)


def root_bus_windows(dmesg: str) -> list[HostBridgeWindow]:
    out = []
    for line in dmesg.splitlines():
        m = _ROOT_WINDOW.search(line)
        if m and "window" in m.group("flags"):
            out.append(HostBridgeWindow(m.group("bus"), parse_resource(m)))
    return out


@dataclass(frozen=True)
class Finding:
    kind: str   # "WARNING" | "Oops" | "BUG" | "panic" | "balloon" | "xen-map-disagreement"
    line: str


_FINDINGS = [
    ("WARNING", re.compile(r"WARNING: CPU: \d+ PID: \d+ at .+")),
    ("Oops", re.compile(r"Oops: .+")),
    ("BUG", re.compile(r"BUG: .+")),
    ("panic", re.compile(r"Kernel panic - not syncing: .+")),
    # drivers/xen/balloon.c (87af633689ce): the initial target would go below zero
    ("balloon", re.compile(r"(?:Released|Extra) pages underflow current target.*")),
]


def findings(dmesg: str) -> list[Finding]:
    """Kernel WARNINGs, Oopses, BUGs and panics: worth a look whatever the verdict."""
    out = []
    for raw in dmesg.splitlines():
        line = strip_printk_time(raw.rstrip("\r"))
        for kind, pattern in _FINDINGS:
            m = pattern.search(line)
            if m:
                out.append(Finding(kind, m.group(0)))
                break
    return out
