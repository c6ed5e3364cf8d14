"""Which BARs and bridge windows dom0 moved, and why.

Firmware and Xen never move BARs; dom0 Linux does. So every resource whose final
address (sysfs) differs from its firmware address (query-pci at Xen start) was
moved by dom0, and each move is attributed to its evidence: a claim conflict and
its owner (e.g. "Xen scratch"), or the move of the bridge window above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rig.parse import Range, overlaps
from rig.parse.dmesg import BRIDGE_IO, PciEvent
from rig.parse.pci import PciResource


# Why a resource moved, as a scenario names it (relocation_cause): the root cause, so a BAR
# that followed its moved bridge window has the window's cause.
CAUSES = ("xen-scratch", "other-conflict", "unassigned", "absent", "unexplained")
UNEXPLAINED = ("unexplained", "absent")   # fail a relocations expectation unless allowed by name


@dataclass(frozen=True)
class Relocation:
    device: str
    resource: str            # "BAR 2", "bridge window", ...
    index: int
    firmware: Range
    final: Range | None      # None: left unassigned, or the device is absent
    cause: str               # in words, with the evidence's owner and range
    evidence: tuple[str, ...] = field(default_factory=tuple)
    root_cause: str = "unexplained"   # one of CAUSES

    def describe(self) -> str:
        final = f"{self.final[0]:#x}" if self.final else "unassigned"
        return f"{self.device} {self.resource} {self.firmware[0]:#x} -> {final} ({self.cause})"


def _contains(outer: Range, inner: Range) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def relocations(firmware: list[PciResource], final: list[PciResource], events: list[PciEvent]) -> list[Relocation]:
    final_by_key = {r.key: r for r in final}
    final_devices = {r.device for r in final}
    moved: list[tuple[PciResource, PciResource | None]] = []
    for fw in firmware:
        if fw.range is None:
            continue  # firmware left it unassigned: nothing for dom0 to move
        fin = final_by_key.get(fw.key)
        if fin is None or fin.range != fw.range:
            moved.append((fw, fin))
    moved_windows = [fw for fw, _ in moved if fw.index >= BRIDGE_IO]

    def parent_of(fw: PciResource) -> PciResource | None:
        return min((w for w in moved_windows if w.device != fw.device and w.kind == fw.kind
                    and _contains(w.range, fw.range)), key=lambda w: w.end - w.start, default=None)

    def own_cause(fw: PciResource, fin: PciResource | None) -> tuple[str, str]:
        # A lost device is "absent" even when a conflict started it: a scenario names it to allow it.
        if fw.device not in final_devices:
            return "absent: the device is gone from dom0's PCI list", "absent"
        conflict = next((e for e in events if (e.device, e.index) == fw.key and e.action == "claim-conflict"), None)
        if conflict is not None:
            cs, ce = conflict.conflict_range
            kind = "xen-scratch" if conflict.conflict_owner == "Xen scratch" else "other-conflict"
            return f"conflict with {conflict.conflict_owner} [{cs:#x}-{ce:#x}]", kind
        if fin is None or fin.range is None:
            return "left unassigned", "unassigned"
        return "unexplained (no conflict line in dmesg)", "unexplained"

    def root(fw: PciResource, fin: PciResource | None, depth: int = 0) -> str:
        parent = parent_of(fw)
        # A lost device stays "absent" whatever moved above it: a scenario must allow it by name.
        if parent is None or depth > 16 or fw.device not in final_devices or _has_conflict(fw, events):
            return own_cause(fw, fin)[1]
        return root(parent, final_by_key.get(parent.key), depth + 1)

    out = []
    for fw, fin in moved:
        mine = [e for e in events if (e.device, e.index) == fw.key and e.action != "found"]
        parent = parent_of(fw)
        cause, _ = own_cause(fw, fin)
        if parent is not None and not _has_conflict(fw, events) and fw.device in final_devices:
            cause = f"parent window moved ({parent.device} {parent.name})"
        out.append(Relocation(fw.device, fw.name, fw.index, fw.range, fin.range if fin else None, cause,
                              tuple(e.line for e in mine), root(fw, fin)))
    return out


def _has_conflict(fw: PciResource, events: list[PciEvent]) -> bool:
    return any((e.device, e.index) == fw.key and e.action == "claim-conflict" for e in events)


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
