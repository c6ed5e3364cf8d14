"""`rig import`: a field machine's evidence in, a scenario out, with a fidelity report.

Evidence is whatever the user has: the tarball of `rig field-script`, a directory of a rig
run, or loose files from a bug report (a pasted dmesg alone, lspci alone). Each file is
recognised by its content, not its name. What is rebuilt, and from what:

- RAM: its size from the machine's e820 (or dom0's, where UNUSABLE is RAM Xen hid), which
  also says where RAM below 4 GiB ends and whether RAM lies above 4 GiB: QEMU's q35 puts
  its 64-bit PCI window right above the RAM, as the field firmware did.
- The PCI tree from `lspci -vvv`: PCIe root ports, switch ports and extra root buses as
  the machine has them; each endpoint with a prefetchable BAR becomes the stock device
  whose one big BAR has that kind and size (pci-testdev's membar: 64-bit; bochs-display's
  framebuffer: 32-bit), the BARs Xen scratch lands on. Everything else is listed in the
  fidelity report as not modelled, with why.
- Xen: dom0_mem and the nearest Xen the rig has, from Xen's command line.
- Expectations: the resources the field kernel could not claim because of Xen scratch.

Pure except `gather`, which reads the files.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from rig.errors import InputError, ParseError
from rig.parse import dmesg as dmesg_parse
from rig.parse import e820 as e820_parse
from rig.parse import lspci
from rig.spec import platform
from rig.units import format_size, parse_size

FOUR_GIB = 1 << 32
MiB = 1 << 20


@dataclass
class Evidence:
    lspci: str | None = None
    memmap: str | None = None         # /sys/firmware/memmap as "start end type" lines
    dmesg: str | None = None
    xen_log: str | None = None        # xl dmesg, or a serial log with Xen's lines
    xl_info: str | None = None
    sources: dict[str, str] = field(default_factory=dict)   # kind -> file it came from
    unusable: list[str] = field(default_factory=list)      # one line per input that could not be used
    skipped: list[str] = field(default_factory=list)       # files that are none of the above, or second copies


# -- recognising evidence -------------------------------------------------------------------

_LSPCI = re.compile(r"^(?:[0-9a-f]{4,5}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] [^\n]+\n[\t ]", re.M)
_MEMMAP = re.compile(r"^0x[0-9a-f]+ 0x[0-9a-f]+ \S", re.M)
# a kernel log: its banner, its e820 lines, or (the banner wrapped away) printk-timestamped lines
_DMESG = re.compile(r"Linux version \S+|BIOS-e820: \[mem |(?:^\[ *\d+\.\d+\] .*\n){3}", re.M)
_XEN = re.compile(r"^\(XEN\)", re.M)
_XL_INFO = re.compile(r"^xen_commandline\s*:", re.M)
_IOMEM = re.compile(r"^ *[0-9a-f]+-[0-9a-f]+ : ", re.M)


def kind_of(text: str) -> str | None:
    """What a file of evidence is, from its content."""
    if _XL_INFO.search(text):
        return "xl_info"
    if _LSPCI.search(text):
        return "lspci"
    if _MEMMAP.search(text) and not _DMESG.search(text):
        return "memmap"
    if _XEN.search(text) and "Command line:" in text:
        return "serial" if _DMESG.search(text) else "xen_log"   # a console has both, xl dmesg Xen's only
    if _DMESG.search(text):
        return "dmesg"
    if _IOMEM.search(text):
        return "iomem"
    return None


def gather(paths: list[Path]) -> Evidence:
    """Every file below `paths` (directories, tarballs, loose files) sorted into evidence."""
    ev = Evidence()
    for name, text in _files(paths):
        kind = kind_of(text)
        if kind == "serial":   # a console: Xen's lines, and the kernel's (its dmesg) between them
            kernel = "\n".join(line for line in text.splitlines() if not line.startswith("(XEN)"))
            for k, part in (("xen_log", text), ("dmesg", kernel)):
                _take(ev, k, part, name)
            continue
        if kind == "iomem":
            if all(set(a) <= {"0"} for a in re.findall(r"^ *([0-9a-f]+)-[0-9a-f]+ : ", text, re.M)):
                ev.unusable.append(f"{name}: /proc/iomem read without root: every address is 0")
            continue
        if kind is None:
            if lspci.HEADER.match(text.lstrip().split("\n", 1)[0]):
                ev.unusable.append(f"{name}: an lspci without -vvv (no BARs, no windows): run `lspci -vvv -nn`")
            elif text.strip() and not name.endswith((".err", "MANIFEST")):
                ev.skipped.append(f"{name}: not recognised as lspci -vvv, an e820, dmesg or Xen's log")
            continue
        _take(ev, kind, text, name)
    if not any((ev.lspci, ev.memmap, ev.dmesg)):
        raise InputError(f"{', '.join(map(str, paths))}: no lspci -vvv, e820/memmap or dmesg found "
                         "(run `rig field-script` on the machine, or give those files)")
    return ev


def _take(ev: Evidence, kind: str, text: str, name: str) -> None:
    if getattr(ev, kind) is None:
        setattr(ev, kind, text)
        ev.sources[kind] = name
    else:   # one machine, one boot: the first copy is used, the others named
        ev.skipped.append(f"{name}: a second {kind} (the first, {ev.sources[kind]}, is the one used)")


def _files(paths: list[Path]):
    for path in paths:
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file() and p.stat().st_size < 64 << 20):
                yield str(f), f.read_text(errors="replace")
        elif path.is_file() and tarfile.is_tarfile(path):
            with tarfile.open(path) as tar:
                for m in tar.getmembers():
                    if m.isfile() and m.size < 64 << 20:
                        yield f"{path}:{m.name}", tar.extractfile(m).read().decode(errors="replace")
        elif path.is_file():
            yield str(path), path.read_text(errors="replace")
        else:
            raise InputError(f"rig import {path}: no such file or directory")


# -- building the scenario ------------------------------------------------------------------

@dataclass
class Imported:
    toml: str
    fidelity: list[str]        # "exact: ...", "approximated: ...", "not modelled: ...", "missing: ..."


def build(ev: Evidence, name: str, max_memory: int | None = None) -> Imported:
    notes: list[str] = [f"unusable: {u}" for u in ev.unusable] + [f"skipped: {k}" for k in ev.skipped]
    _check_dmesg(ev, notes)
    host = _memory(ev, notes, max_memory)
    pci = _pci(ev, notes)
    xen_version, dom0_mem = _xen(ev, notes, host)
    expect = _expectations(ev, notes, pci)
    lines = [f"name = {_toml(name)}",
             "description = " + _toml("Imported by rig import from "
                                      + ", ".join(sorted({Path(v).name for v in ev.sources.values()}))),
             "", "[host]", f'memory = "{format_size(host)}"', "cpus = 1", ""]
    for dev in pci:
        lines += ["[[host.pci]]"] + [f"{k} = {_toml(v)}" for k, v in dev.items()
                                     if v not in (None, {}) and k != "bdf"] + [""]
    lines += ["[xen]", f'version = "{xen_version}"', f'dom0_mem = "{format_size(dom0_mem)}"', "",
              "[kernels]", 'unpatched = "debian-6.1"', 'patched = "debian-bpo-6.12"', ""]
    for role, keys in expect.items():
        lines += [f"[expect.{role}]"] + [f"{k} = {_toml(v)}" for k, v in keys.items()] + [""]
    header = ["# Imported by `rig import`. Fidelity (what stands in for what on the field machine):"]
    header += ["#   " + " ".join(n.split()) for n in notes] + [""]   # one comment line each, whatever a name held
    return Imported("\n".join(header + lines), notes)


_ENUMERATED = re.compile(r"pci (?P<bdf>[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]): \[(?P<ids>[0-9a-f]{4}:[0-9a-f]{4})\] type")


def _check_dmesg(ev: Evidence, notes: list[str]) -> None:
    """A dmesg that does not start at boot, or of another machine than the lspci: said, and
    (for another machine) left out, so that neither the tree nor the expectations mix two."""
    if not ev.dmesg:
        return
    if not re.search(r"Linux version \S+", ev.dmesg):
        notes.append(f"approximated: {ev.sources.get('dmesg')} does not start at boot (no 'Linux version'; "
                     "the ring buffer wrapped?): its e820 and PCI enumeration lines may be missing")
    if not ev.lspci:
        return
    try:
        listed = {d.bdf: d.vendor_device for d in lspci.parse(ev.lspci)}
    except ParseError:
        return
    enumerated = {m.group("bdf"): m.group("ids") for m in _ENUMERATED.finditer(ev.dmesg)}
    if not enumerated:
        return
    common = set(listed) & set(enumerated)
    differ = [b for b in common if listed[b] and listed[b] != enumerated[b]]
    if differ or len(common) < len(listed) / 2:
        why = (f"{differ[0]} is {listed[differ[0]]} in lspci but {enumerated[differ[0]]} in dmesg" if differ
               else f"only {len(common)} of lspci's {len(listed)} devices are in it")
        notes.append(f"unusable: {ev.sources.get('dmesg')} is not of the machine lspci listed ({why}): "
                     "left out; the scenario has no e820 or expectations from it")
        ev.dmesg = None


def _toml(v) -> str:
    """A TOML value; strings through JSON, whose escapes TOML's basic strings share."""
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


def _ram_map(ev: Evidence, notes: list[str]) -> list[e820_parse.E820Entry]:
    for kind, text, reader in (("memmap", ev.memmap, e820_parse.from_memmap),
                               ("dmesg", ev.dmesg, e820_parse.from_dmesg)):
        if text:
            try:
                entries = reader(text)
            except ParseError as exc:
                notes.append(f"unusable: {ev.sources.get(kind)}: {exc}")
                continue
            if entries:
                notes.append(f"read: the RAM layout, from {kind} ({ev.sources.get(kind)})")
                return entries
    notes.append("missing: no e820 (/sys/firmware/memmap or the dmesg BIOS-e820 lines): RAM is the rig's 2G")
    return []


def _memory(ev: Evidence, notes: list[str], max_memory: int | None) -> int:
    """The host's RAM: RAM plus UNUSABLE (in a PVH dom0's map UNUSABLE is RAM that Xen hid),
    rounded up to whole MiB (firmware keeps a few KiB here and there)."""
    entries = _ram_map(ev, notes)
    if not entries:
        return 2 << 30
    ram = [(e.start, e.end) for e in entries if e.type in ("ram", "unusable")]
    total = sum(b - a + 1 for a, b in ram)
    size = -(-total // MiB) * MiB
    low_top = max((b for a, b in ram if b < FOUR_GIB), default=0)
    above = sum(b - max(a, FOUR_GIB) + 1 for a, b in ram if b >= FOUR_GIB)
    notes.append(f"approximated: RAM {format_size(size)} ({total} bytes in the map); below 4 GiB it ends at "
                 f"{low_top:#x} on the field machine, where q35 ends it at 2 GiB (or all of RAM, if "
                 f"less than 2.75 GiB), less what SeaBIOS keeps; {format_size(above) if above else 'none'} "
                 "above 4 GiB, so the 64-bit PCI window starts right above it on both")
    if max_memory is not None and size > max_memory:
        notes.append(f"approximated: RAM scaled down from {format_size(size)} to {format_size(max_memory)} "
                     "(--max-memory): dom0_mem and the 64-bit window still sit above RAM as on the field "
                     "machine, but the UNUSABLE RAM the balloon fix converts is smaller")
        size = max_memory
    return size


RIG_NIC_IDS = {"8086:10d3"}   # the e1000e the rig itself gives dom0 at its NIC slot


PORTS = {"Root Port": "pcie-root-port", "Upstream Port": "x3130-upstream", "Downstream Port": "xio3130-downstream"}
VGAMEM = (4 << 20, 256 << 20)   # the framebuffer sizes QEMU's bochs-display accepts
ROOT_SLOTS = 0x1E - 1           # pcie.0's slots 1-0x1e, less 0x1e: the rig's NIC
MAX_EXTRA_ROOTS = 3             # the pxb-pcie bus numbers the rig hands out (spec/topology.py)


def _pci(ev: Evidence, notes: list[str]) -> list[dict]:
    """host.pci entries for the field machine's tree. `rebuilt` (returned in each entry's
    "bdf") says which field device each stands for, for the expectations."""
    if not ev.lspci:
        notes.append("missing: no lspci -vvv: the host has no PCI devices of the field machine's")
        return []
    try:
        devices = lspci.parse(ev.lspci)
    except ParseError as exc:
        notes.append(f"unusable: {ev.sources.get('lspci')}: {exc}")
        return []
    devices = _with_lost_bars(devices, ev, notes)
    other_domains = sorted({d.bdf.rsplit(":", 2)[0] for d in devices} - {"0000"})
    if other_domains:
        notes.append(f"not modelled: PCI segment(s) {', '.join(other_domains)} and everything on them: the rig "
                     "builds one segment")
        devices = [d for d in devices if d.bdf.startswith("0000:")]
    denied = any(d.capabilities_denied for d in devices)
    bridges = {d.secondary: d for d in devices if d.is_bridge}
    owned = {b for d in devices if d.is_bridge for b in range(d.secondary, d.subordinate + 1)}
    extra_roots = sorted({d.bus for d in devices} - owned - {0})
    names: dict[str, str] = {}
    out: list[dict] = []
    for bus in extra_roots[:MAX_EXTRA_ROOTS]:
        names[f"root:{bus}"] = f"pxb{bus:02x}"
        out.append({"name": f"pxb{bus:02x}", "device": "pxb-pcie"})
        notes.append(f"approximated: root bus {bus:02x} becomes a pxb-pcie extra root bus (its number is the rig's)")
    for bus in extra_roots[MAX_EXTRA_ROOTS:]:
        notes.append(f"not modelled: root bus {bus:02x} and its devices: the rig makes at most {MAX_EXTRA_ROOTS} "
                     "extra root buses")

    def parent_of(d: lspci.Device) -> str | None:
        if d.bus == 0:
            return None
        if d.bus in bridges:
            return names.get(bridges[d.bus].bdf, "")
        return names.get(f"root:{d.bus}", "")

    def port_kind(d: lspci.Device) -> str | None:
        if d.express or not denied:
            return d.express
        # lspci without root shows no capabilities: a bridge on a root bus is a root port, one
        # whose own bus holds bridges a switch's upstream port, one on such a bus a downstream port
        if d.bus == 0 or d.bus in extra_roots:
            return "Root Port"
        if any(b.bus == d.secondary for b in devices if b.is_bridge):
            return "Upstream Port"
        return "Downstream Port"

    taken: dict[str | None, int] = {None: len(out)}   # the pxb-pcie host bridges sit on pcie.0 too
    rig_nic = platform.ARCHES["x86_64"]
    for d in sorted(devices, key=lambda d: (d.bus, d.slot, d.function)):
        parent = parent_of(d)
        if parent == "":
            notes.append(f"not modelled: {d.bdf} {d.description[:60]}: behind a device that is not modelled")
            continue
        if d.vendor_device in RIG_NIC_IDS and d.bus == 0 and d.slot == rig_nic.nic_slot:
            notes.append(f"not modelled: {d.bdf} {d.description[:60]}: the rig's own NIC (it adds it again)")
            continue
        if d.is_bridge:
            kind = port_kind(d)
            device = PORTS.get(kind or "")
            if device is None:
                notes.append(f"not modelled: {d.bdf} {d.class_name} ({kind or 'conventional PCI'}) and what is "
                             "behind it: only PCIe root ports and switch ports are rebuilt")
                continue
            entry = {"name": f"br{d.bus:02x}{d.slot:02x}{d.function}", "device": device, "parent": parent}
            note = (f"{'approximated' if denied and not d.express else 'exact'}: {d.bdf} {kind} -> {device} "
                    f"{entry['name']}" + (" (guessed: no capabilities without root)" if denied and not d.express
                                          else "")
                    + (" (hot-plug slot; its window reserves are QEMU's, not the field firmware's)"
                       if d.hotplug else ""))
        else:
            pref = [b for b in d.bars if b.kind == "mem" and b.prefetch]
            if not pref:
                small = sum(b.size for b in d.bars if b.kind == "mem")
                why = ("a host bridge or chipset function (q35 has its own)" if d.bus == 0 and
                       (d.class_name in ("Host bridge", "ISA bridge", "SMBus") or d.slot in (0, 0x1F))
                       else f"no prefetchable BAR ({format_size(small) if small else 'no'} non-prefetchable "
                            "memory, which firmware puts low in the 32-bit hole)")
                notes.append(f"not modelled: {d.bdf} {d.description[:60]}: {why}")
                continue
            largest = max(pref, key=lambda b: b.size)
            size = 1 << (largest.size - 1).bit_length()
            # The stock device whose one big BAR has this kind: pci-testdev's membar is 64-bit
            # prefetchable, bochs-display's framebuffer 32-bit prefetchable (4M to 256M).
            if largest.is_64:
                device, prop = "pci-testdev", "membar"
            else:
                device, prop, size = "bochs-display", "vgamem", min(max(size, VGAMEM[0]), VGAMEM[1])
            entry = {"device": device, "parent": parent, "props": {prop: format_size(size)}}
            others = [b for b in d.bars if b is not largest]
            exact = size == largest.size and not [b for b in others if b.size >= 1 << 20]
            note = (f"{'exact' if exact else 'approximated'}: {d.bdf} {d.description[:50]}: BAR {largest.index} "
                    f"({format_size(largest.size)}, {'64' if largest.is_64 else '32'}-bit prefetchable) -> "
                    f"{device} {prop}={format_size(size)}"
                    + (f"; its other BARs ({', '.join(f'{b.index}:{format_size(b.size)}' for b in others)}) "
                       f"become {device}'s own small ones" if others else ""))
        # What the emulated buses can hold: a PCIe port one device (function 0: the rig makes
        # no multi-function devices), pcie.0 its free slots.
        limit = 1 if parent and not parent.startswith("pxb") and parent in {e.get("name") for e in out
                                                                            if e["device"] != "x3130-upstream"} \
            else 32 if parent else ROOT_SLOTS
        if taken.get(parent, 0) >= limit:
            notes.append(f"not modelled: {d.bdf} {d.description[:60]}: "
                         + ("a second function or device behind one port" if limit == 1
                            else "no free slot left on its emulated bus"))
            continue
        taken[parent] = taken.get(parent, 0) + 1
        if entry.get("name"):
            names[d.bdf] = entry["name"]
        notes.append(note)
        out.append({**entry, "bdf": d.bdf})
    for e in out:
        if e.get("parent") is None:
            e.pop("parent", None)
    return out


def _with_lost_bars(devices: list[lspci.Device], ev: Evidence, notes: list[str]) -> list[lspci.Device]:
    """lspci shows what the kernel kept: a BAR it could not assign (the bug itself) is gone
    from its listing. The kernel's enumeration lines in dmesg still give its size and kind."""
    if not ev.dmesg:
        return devices
    try:
        events = dmesg_parse.pci_events(ev.dmesg)
    except ParseError:
        return devices     # reported where the expectations read it
    found: dict[str, dict[int, dmesg_parse.PciEvent]] = {}
    for e in events:
        if e.action == "found" and e.index < 6 and e.resource.kind == "mem":
            found.setdefault(e.device, {}).setdefault(e.index, e)
    out = []
    for d in devices:
        have = {b.index for b in d.bars}
        lost = [e for i, e in sorted(found.get(d.bdf, {}).items()) if i not in have]
        for e in lost:
            notes.append(f"read: {d.bdf} {e.name} ({format_size(e.resource.size)}) from dmesg: lspci no longer shows "
                         "it (the field kernel left it unassigned)")
        out.append(dataclasses.replace(d, bars=d.bars + tuple(
            lspci.Bar(e.index, "mem", e.resource.size, e.resource.is_64, e.resource.prefetch) for e in lost)))
    return out


_XEN_VERSION = re.compile(r"Xen version (\d+)\.(\d+)")


def dom0_mem_of(cmdline: str) -> tuple[int | None, str]:
    """dom0_mem as Xen reads it (the last one wins; a bare number is KiB; units in either
    case): (bytes, what was read); None when it is no plain size ("50%", "-1G", only min:/max:)."""
    values = re.findall(r"(?:^|\s)dom0_mem=(\S+)", cmdline)
    if not values:
        return None, ""
    raw = values[-1]
    plain = [part for part in raw.split(",") if not part.startswith(("min:", "max:"))]
    if len(plain) == 1 and (m := re.fullmatch(r"(\d+)([kKmMgGtT]?)", plain[0])):
        return parse_size(m.group(1) + (m.group(2).upper() or "K")), raw
    return None, raw


def _xen(ev: Evidence, notes: list[str], memory: int) -> tuple[str, int]:
    cmdline = ""
    if ev.xl_info and (m := re.search(r"^xen_commandline\s*:\s*(.*)$", ev.xl_info, re.M)):
        cmdline = m.group(1)
    elif ev.xen_log and (m := re.search(r"Command line: (.*)$", ev.xen_log, re.M)):
        cmdline = m.group(1)
    dom0_mem, raw = dom0_mem_of(cmdline)
    if dom0_mem is not None:
        notes.append(f"exact: dom0_mem={raw} from Xen's command line")
    elif raw:
        notes.append(f"approximated: dom0_mem={raw} is no plain size the rig can give Xen: the rig's 512M")
    elif cmdline:
        notes.append("approximated: Xen's command line has no dom0_mem (Xen then gives dom0 nearly all RAM): "
                     "the rig's 512M")
    else:
        notes.append("missing: no Xen command line (xl info, xl dmesg): dom0_mem is the rig's 512M")
    dom0_mem = dom0_mem or 512 << 20
    if dom0_mem >= memory:
        notes.append(f"approximated: dom0_mem {format_size(dom0_mem)} is not below the host's RAM: "
                     f"{format_size(memory // 4)}")
        dom0_mem = memory // 4
    from rig.artefacts.archive import XEN_NAMES
    field_v = None
    if ev.xl_info and (ma := re.search(r"^xen_major\s*:\s*(\d+)", ev.xl_info, re.M)) and \
            (mi := re.search(r"^xen_minor\s*:\s*(\d+)", ev.xl_info, re.M)):
        field_v = (int(ma.group(1)), int(mi.group(1)))
    elif ev.xen_log and (m := _XEN_VERSION.search(ev.xen_log)):
        field_v = (int(m.group(1)), int(m.group(2)))
    version = platform.DEFAULT_XEN
    if field_v:
        version = min(XEN_NAMES, key=lambda v: abs(100 * int(v.split(".")[0]) + int(v.split(".")[1])
                                                     - 100 * field_v[0] - field_v[1]))
        notes.append(f"{'exact' if field_v == tuple(map(int, version.split('.'))) else 'approximated'}: "
                     f"Xen {field_v[0]}.{field_v[1]} on the field machine -> Debian's Xen {version}")
    else:
        notes.append(f"missing: no Xen version in the evidence: Xen {version}")
    return version, dom0_mem


def _expectations(ev: Evidence, notes: list[str], pci: list[dict]) -> dict[str, dict]:
    patched = {"relocations": "none", "xen_scratch": "none", "balloon_converted": True}
    if not ev.dmesg:
        notes.append("missing: no dmesg: no expectation for the field kernel's role")
        return {"patched": patched}
    release = dmesg_parse.kernel_release(ev.dmesg) or "?"
    try:
        events = dmesg_parse.pci_events(ev.dmesg)
    except ParseError as exc:
        notes.append(f"unusable: {ev.sources.get('dmesg')}: {exc}")
        return {"patched": patched}
    if not events:
        notes.append(f"approximated: {ev.sources.get('dmesg')} has no PCI line the rig reads (journalctl or "
                     "dmesg -T output?): no expectation from it")
        return {"patched": patched}
    scratch = [e for e in events if e.action == "claim-conflict" and e.conflict_owner == "Xen scratch"]
    if not scratch:
        notes.append(f"approximated: the field kernel ({release}) shows no claim conflict with Xen scratch: "
                     "the unpatched role has no expectation")
        return {"patched": patched}
    rebuilt = {e.get("bdf") for e in pci}
    kept = [e for e in scratch if e.device in rebuilt]
    for e in scratch:
        if e.device not in rebuilt:
            notes.append(f"missing: the field kernel could not claim {e.device} {e.name} (Xen scratch), but "
                         "that device is not modelled: no expectation from it")
    if not kept:
        return {"patched": patched}
    moved = ", ".join(f"{e.device} {e.name}" for e in kept)
    notes.append(f"exact: the field kernel ({release}) could not claim {moved} (Xen scratch): the unpatched "
                 "role expects a move with that cause")
    return {"unpatched": {"relocations": "some", "relocation_cause": "xen-scratch", "xen_scratch": "some",
                          "balloon_converted": False}, "patched": patched}
