"""PCI topology: the scenario's devices, each naming its parent, resolved into a tree
with ids, buses, slot addresses and chassis/slot/bus numbers assigned by the rig.

Pure and backend-agnostic: it says what plugs where; the host layer says how.
Device kinds are data: what bus each kind provides to its children, which buses it
fits into, and which of its properties QEMU needs as powers of two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rig.errors import InputError
from rig.units import parse_size

if TYPE_CHECKING:
    from rig.spec.scenario import PciDevice

# Bus kinds. "pcie-main" is the machine's own root bus (pcie.0), which alone takes pxb-pcie.
PCIE_MAIN, PCIE_ROOT, PCIE_PORT, SWITCH, PCI = "pcie-main", "pcie-root", "pcie-port", "switch", "pci"
ENDPOINT_FITS = (PCIE_MAIN, PCIE_ROOT, PCIE_PORT, PCI)


@dataclass(frozen=True)
class DeviceKind:
    provides: tuple[str, ...] = ()          # bus kinds its children see ("" = not a bus)
    fits: tuple[str, ...] = ENDPOINT_FITS    # bus kinds it may plug into
    numbering: tuple[str, ...] = ()          # properties the rig assigns (chassis, slot, chassis_nr, bus_nr)
    pow2_props: tuple[str, ...] = ()         # size properties QEMU rejects unless a power of two
    backing_size_prop: str | None = None     # a size the host turns into a memory backend


KINDS: dict[str, DeviceKind] = {
    "pcie-root-port": DeviceKind(provides=(PCIE_PORT,), fits=(PCIE_MAIN, PCIE_ROOT), numbering=("chassis", "slot")),
    "x3130-upstream": DeviceKind(provides=(SWITCH,), fits=(PCIE_PORT,)),
    "xio3130-downstream": DeviceKind(provides=(PCIE_PORT,), fits=(SWITCH,), numbering=("chassis", "slot")),
    "pcie-pci-bridge": DeviceKind(provides=(PCI,), fits=(PCIE_MAIN, PCIE_ROOT, PCIE_PORT)),
    "pci-bridge": DeviceKind(provides=(PCI,), fits=(PCI,), numbering=("chassis_nr",)),
    "pxb-pcie": DeviceKind(provides=(PCIE_ROOT,), fits=(PCIE_MAIN,), numbering=("bus_nr",)),
    # The conventional-PCI expander: its bus cannot take PCIe ports.
    "pxb": DeviceKind(provides=(PCI,), fits=(PCIE_MAIN,), numbering=("bus_nr",)),
    "pci-testdev": DeviceKind(pow2_props=("membar",)),
    "bochs-display": DeviceKind(pow2_props=("vgamem",)),
    "ivshmem-plain": DeviceKind(backing_size_prop="size"),
}
ENDPOINT = DeviceKind()

# Slots a child may take on each bus kind. pcie.0: 0 is the host bridge, 0x1f the ICH9 LPC/SATA/SMBus.
SLOTS = {PCIE_MAIN: range(1, 0x1F), PCIE_ROOT: range(0, 32), PCIE_PORT: range(0, 1), SWITCH: range(0, 32),
         PCI: range(1, 32)}
PXB_BUS_NUMBERS = (0x40, 0x80, 0xC0)  # leaves each root bus room for 63 buses below it


@dataclass(frozen=True)
class PlacedDevice:
    id: str
    device: str
    bus: str                 # id of the bus it plugs into
    addr: int                # slot on that bus
    props: dict = field(default_factory=dict)   # user props + the rig's numbering, without id/bus/addr
    backing_size: int | None = None


def kind_of(device: str) -> DeviceKind:
    return KINDS.get(device, ENDPOINT)


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class TopologyError(InputError):
    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


def resolve(devices: list[PciDevice], root_bus: str = "pcie.0") -> list[PlacedDevice]:
    """Place every device; raise TopologyError(key, problem) for what cannot be built."""
    ids: dict[str, int] = {}
    names: list[str] = []
    counts: dict[str, int] = {}
    for i, d in enumerate(devices):
        name = d.name or str(d.props.get("id") or "")
        if not name:
            counts[d.device] = counts.get(d.device, 0) + 1
            name = f"{re.sub(r'[^A-Za-z0-9]', '', d.device)}{counts[d.device]}"
        if name in ids or name == root_bus:
            raise TopologyError(f"host.pci.{i}.name", f"duplicate id {name!r}")
        ids[name] = i
        names.append(name)

    bus_kinds = {root_bus: (PCIE_MAIN, PCIE_ROOT)}
    for i, d in enumerate(devices):
        if kind_of(d.device).provides:
            bus_kinds[names[i]] = kind_of(d.device).provides

    parent_of = {names[i]: d.parent or str(d.props.get("bus") or "") or root_bus for i, d in enumerate(devices)}
    for i, name in enumerate(names):
        chain, parent = [name], parent_of[name]
        while parent in ids and parent in bus_kinds and parent not in chain:
            chain.append(parent)
            parent = parent_of[parent]
        if parent in chain and len(chain) > 1:
            loop = chain[chain.index(parent):]
            first = min(loop, key=ids.__getitem__)   # blame the cycle's first device in the file
            at = loop.index(first)
            cycle = " -> ".join(loop[at:] + loop[:at] + [first])
            raise TopologyError(f"host.pci.{ids[first]}.parent", f"the buses form a cycle: {cycle}")
        if parent_of[name] in bus_kinds and ids.get(parent_of[name], -1) > i:
            # QEMU creates devices in argv order: a bus must exist before what plugs into it.
            raise TopologyError(f"host.pci.{i}.parent", f"{parent_of[name]!r} is declared after {name!r}; "
                                                        "declare a bus before the devices on it")

    used: dict[str, set[int]] = {}
    numbers = {"chassis": iter(range(1, 256)), "chassis_nr": iter(range(1, 256)), "bus_nr": iter(PXB_BUS_NUMBERS)}
    placed = []
    for i, d in enumerate(devices):
        key = f"host.pci.{i}"
        kind = kind_of(d.device)
        parent = d.parent or str(d.props.get("bus") or "") or root_bus
        if parent not in bus_kinds:
            known = ", ".join([root_bus, *(n for n in names if n in bus_kinds)])
            raise TopologyError(f"{key}.parent", f"unknown parent {parent!r} (buses: {known})")
        if parent == names[i]:
            raise TopologyError(f"{key}.parent", f"{names[i]!r} cannot be its own parent")
        if not set(kind.fits) & set(bus_kinds[parent]):
            parent_device = devices[ids[parent]].device if parent in ids else "the root bus"
            raise TopologyError(f"{key}.parent", f"{d.device} cannot plug into {parent!r} ({parent_device}, "
                                                 f"a {bus_kinds[parent][0]} bus); it fits {', '.join(kind.fits)}")
        props = {k: v for k, v in d.props.items() if k not in ("id", "bus")}
        for prop in kind.pow2_props:
            if prop in props:
                try:
                    size = parse_size(props[prop])
                except ValueError as exc:
                    raise TopologyError(f"{key}.props.{prop}", str(exc)) from exc
                if not _is_pow2(size):
                    raise TopologyError(f"{key}.props.{prop}", f"{props[prop]!r} is not a power of two, "
                                                               f"which {d.device} requires")
        backing = None
        if kind.backing_size_prop and kind.backing_size_prop in props:
            try:
                backing = parse_size(props.pop(kind.backing_size_prop))
            except ValueError as exc:
                raise TopologyError(f"{key}.props.{kind.backing_size_prop}", str(exc)) from exc
        addr = _slot(props, parent, bus_kinds[parent][0], used, key, d.device)
        for prop in kind.numbering:
            if prop not in props:
                counter = "chassis" if prop == "slot" else prop
                if prop == "slot":
                    props[prop] = props["chassis"]
                    continue
                try:
                    props[prop] = next(numbers[counter])
                except StopIteration as exc:
                    raise TopologyError(key, f"too many {d.device} devices (out of {prop} numbers)") from exc
        placed.append(PlacedDevice(names[i], d.device, parent, addr, props, backing))
    return placed


def _slot(props: dict, parent: str, bus_kind: str, used: dict[str, set[int]], key: str, device: str) -> int:
    taken = used.setdefault(parent, set())
    if "addr" in props:
        raw = props.pop("addr")
        try:
            addr = int(str(raw).split(".")[0], 0)
        except ValueError as exc:
            raise TopologyError(f"{key}.props.addr", f"invalid slot address {raw!r}") from exc
        if addr in taken:
            raise TopologyError(f"{key}.props.addr", f"slot {addr:#x} on {parent!r} is already taken")
    else:
        free = [s for s in SLOTS[bus_kind] if s not in taken]
        if not free:
            limit = "takes one device" if bus_kind == PCIE_PORT else "is full"
            raise TopologyError(f"{key}.parent", f"{parent!r} {limit}; {device} needs another port")
        addr = free[0]
    taken.add(addr)
    return addr
