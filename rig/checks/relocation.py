"""Which BARs and bridge windows dom0 moved, and why.

Firmware and Xen never move BARs; dom0 Linux does. So every resource whose final
address (sysfs) differs from its firmware address (query-pci at Xen start) was
moved by dom0, and each move is attributed to its evidence: a claim conflict and
its owner (e.g. "Xen scratch"), or the move of the bridge window above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..parse import Range, overlaps
from ..parse.dmesg import BRIDGE_IO, PciEvent
from ..parse.pci import PciResource


@dataclass(frozen=True)
class Relocation:
    device: str
    resource: str            # "BAR 2", "bridge window", ...
    index: int
    firmware: Range
    final: Range | None      # None: left unassigned
    cause: str
    evidence: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        final = f"{self.final[0]:#x}" if self.final else "unassigned"
        return f"{self.device} {self.resource} {self.firmware[0]:#x} -> {final} ({self.cause})"


def _contains(outer: Range, inner: Range) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def relocations(firmware: list[PciResource], final: list[PciResource], events: list[PciEvent]) -> list[Relocation]:
    final_by_key = {r.key: r for r in final}
    moved: list[tuple[PciResource, PciResource | None]] = []
    for fw in firmware:
        if fw.range is None:
            continue  # firmware left it unassigned: nothing for dom0 to move
        fin = final_by_key.get(fw.key)
        if fin is None or fin.range != fw.range:
            moved.append((fw, fin))
    moved_windows = [fw for fw, _ in moved if fw.index >= BRIDGE_IO]

    out = []
    for fw, fin in moved:
        mine = [e for e in events if (e.device, e.index) == fw.key and e.action != "found"]
        conflict = next((e for e in mine if e.action == "claim-conflict"), None)
        parent = min((w for w in moved_windows if w.device != fw.device and w.kind == fw.kind
                      and _contains(w.range, fw.range)), key=lambda w: w.end - w.start, default=None)
        if conflict is not None:
            cs, ce = conflict.conflict_range
            cause = f"conflict with {conflict.conflict_owner} [{cs:#x}-{ce:#x}]"
        elif parent is not None:
            cause = f"parent window moved ({parent.device} {parent.name})"
        elif fin is None or fin.range is None:
            cause = "left unassigned"
        else:
            cause = "unexplained (no conflict line in dmesg)"
        out.append(Relocation(fw.device, fw.name, fw.index, fw.range, fin.range if fin else None, cause,
                              tuple(e.line for e in mine)))
    return out


def resource_table(firmware: list[PciResource], final: list[PciResource]) -> list[dict]:
    """Every resource seen at either end, firmware vs final: the report's BAR map."""
    fw_by_key = {r.key: r for r in firmware}
    fin_by_key = {r.key: r for r in final}
    rows = []
    for key in sorted(set(fw_by_key) | set(fin_by_key)):
        fw, fin = fw_by_key.get(key), fin_by_key.get(key)
        ref = fw or fin
        rows.append({"device": key[0], "resource": ref.name, "index": key[1], "kind": ref.kind,
                     "prefetch": ref.prefetch, "firmware": list(fw.range) if fw and fw.range else None,
                     "final": list(fin.range) if fin and fin.range else None})
    return rows


def scratch_overlaps(scratch: list[Range], firmware: list[PciResource],
                     host_windows: list[tuple[str, Range]]) -> list[dict]:
    """What each Xen scratch range overlaps: host bridge windows (where it was carved
    from), and the bridge windows and BARs firmware had already placed there (the clash)."""
    out = []
    for s in scratch:
        for name, window in host_windows:
            if overlaps(s, window):
                out.append({"scratch": list(s), "kind": "host bridge window", "owner": name, "range": list(window)})
        for r in firmware:
            if r.kind == "mem" and r.range and overlaps(s, r.range):
                kind = "bridge window" if r.index >= BRIDGE_IO else "BAR"
                out.append({"scratch": list(s), "kind": kind, "owner": f"{r.device} {r.name}", "range": list(r.range)})
    return out
