"""`lspci -vvv [-nn]` as a field machine prints it: devices, their BARs, bridge windows and
PCIe port kinds (pure, strict). What `rig import` rebuilds a machine's PCI tree from.

Strict: a device header or a Region/window line that does not parse is an error naming the
line, never a device with fewer BARs. Without -vvv (or -v) there are no Region lines at
all: that is an error too, since sizes are the whole point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rig.errors import ParseError

HEADER = re.compile(   # a device's first line; also what plain `lspci` prints

    r"^(?:(?P<domain>[0-9a-f]{4,5}):)?(?P<bus>[0-9a-f]{2}):(?P<dev>[0-9a-f]{2})\.(?P<fn>[0-7]) "
    r"(?P<cls>[^:]+?)(?: \[(?P<class_id>[0-9a-f]{4})\])?: (?P<rest>.*)$")
_IDS = re.compile(r"\[(?P<vendor>[0-9a-f]{4}):(?P<device>[0-9a-f]{4})\]")
_SIZE = r"\[size=(?P<size>\d+)(?P<unit>[KMGT]?)\]"
# Flags lspci may print before the size: [disabled], [virtual] (SR-IOV), [enhanced] (EA).
_FLAGS = r"(?: \[(?:disabled|virtual|enhanced|disabled by cmd)\])*"
_REGION = re.compile(
    r"^\tRegion (?P<index>[0-5]): (?:(?P<mem>Memory at) (?P<maddr>[0-9a-f]+|<unassigned>|<ignored>) "
    r"\((?P<bits>32|64|low-1M)(?:-bit)?, (?P<pref>non-prefetchable|prefetchable)\)|(?P<io>I/O ports at) "
    r"(?P<iaddr>[0-9a-f]+|<unassigned>|<ignored>))" + _FLAGS + " " + _SIZE + r"$")
_ROM = re.compile(r"^\tExpansion ROM at (?P<addr>[0-9a-f]+|<unassigned>|<ignored>)" + _FLAGS + " " + _SIZE + r"$")
# A window that is off reads "[disabled]" (or "[empty]"), after its base-limit pair or alone.
_WINDOW = re.compile(r"^\t(?P<kind>I/O|Memory|Prefetchable memory) behind bridge: "
                     r"(?:(?P<start>[0-9a-f]+)-(?P<end>[0-9a-f]+) " + _SIZE + r"|(?:[0-9a-f]+-[0-9a-f]+ )?"
                     r"\[(?:disabled|empty)\])(?: \[(?P<bits>16|32|64)-bit\])?$")
_BUS = re.compile(r"^\tBus: primary=(?P<primary>[0-9a-f]{2}), secondary=(?P<secondary>[0-9a-f]{2}), "
                  r"subordinate=(?P<subordinate>[0-9a-f]{2})")
_EXPRESS = re.compile(r"^\tCapabilities: \[[0-9a-f]+\] Express \(v\d\) (?P<port>Root Port|Upstream Port|Downstream Port|"
                      r"Endpoint|Legacy Endpoint|Root Complex Integrated Endpoint|PCI-Express to PCI/PCI-X Bridge|"
                      r"PCI/PCI-X to PCI-Express Bridge|Root Complex Event Collector)")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True)
class Bar:
    index: int            # 0-5; 6 is the expansion ROM
    kind: str             # "mem" | "io" | "rom"
    size: int
    is_64: bool = False
    prefetch: bool = False
    address: int | None = None   # where the kernel that ran lspci had it (None: unassigned)


@dataclass(frozen=True)
class Window:
    kind: str             # "io" | "mem" | "pref"
    start: int | None     # None: disabled
    end: int | None


@dataclass(frozen=True)
class Device:
    bdf: str              # "0000:00:01.0"
    class_name: str       # "PCI bridge", "VGA compatible controller", ...
    class_id: str | None  # "0604" (with -nn)
    vendor_device: str | None   # "1b36:000c" (with -nn)
    description: str
    bars: tuple[Bar, ...] = ()
    windows: tuple[Window, ...] = ()
    secondary: int | None = None      # a bridge's secondary bus
    subordinate: int | None = None
    express: str | None = None        # the PCIe port kind, when capabilities were readable
    hotplug: bool = False             # a slot with HotPlug+
    capabilities_denied: bool = False  # lspci run without root

    @property
    def bus(self) -> int:
        return int(self.bdf.split(":")[1], 16)

    @property
    def slot(self) -> int:
        return int(self.bdf.split(":")[2].split(".")[0], 16)

    @property
    def function(self) -> int:
        return int(self.bdf.rsplit(".", 1)[1])

    @property
    def is_bridge(self) -> bool:
        return self.secondary is not None


def _size(m: re.Match) -> int:
    return int(m.group("size")) * _UNITS[m.group("unit")]


def _address(text: str) -> int | None:
    return None if text.startswith("<") else int(text, 16)


def parse(text: str) -> list[Device]:
    """Every device of an `lspci -vvv` listing, in its order."""
    devices: list[dict] = []
    verbose = False
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if re.match(r"^[0-9a-f]{2,3}: (?:[0-9a-f]{2} ?)+$", line):
            continue   # lspci -x's config space dump
        if not line.startswith(("\t", " ")):
            m = HEADER.match(line)
            if not m:
                raise ParseError(f"lspci line {n}: not a device header: {line[:80]!r}")
            ids = _IDS.findall(m.group("rest"))
            devices.append(dict(
                bdf=f"{m.group('domain') or '0000'}:{m.group('bus')}:{m.group('dev')}.{m.group('fn')}",
                class_name=m.group("cls"), class_id=m.group("class_id"),
                vendor_device=":".join(ids[-1]) if ids else None, description=m.group("rest"),
                bars=[], windows=[]))
            continue
        if not devices:
            raise ParseError(f"lspci line {n}: detail before any device header")
        if not line.startswith("\t"):
            # lspci indents its details with tabs; spaces mean a re-wrapped copy (a web page,
            # a mail), where a Region or Bus line could be missed: refused, not guessed
            raise ParseError(f"lspci line {n}: indented with spaces, not lspci's tabs (a re-wrapped copy?): "
                             f"{line.strip()[:70]!r}")
        verbose = True
        d = devices[-1]
        if line.startswith("\tRegion "):
            m = _REGION.match(line)
            if not m:
                raise ParseError(f"lspci line {n}: a Region line that does not parse: {line.strip()[:90]!r}")
            if m.group("mem"):
                d["bars"].append(Bar(int(m.group("index")), "mem", _size(m), m.group("bits") == "64",
                                     m.group("pref") == "prefetchable", _address(m.group("maddr"))))
            else:
                d["bars"].append(Bar(int(m.group("index")), "io", _size(m), address=_address(m.group("iaddr"))))
        elif line.startswith("\tExpansion ROM at "):
            m = _ROM.match(line)
            if not m:
                raise ParseError(f"lspci line {n}: an Expansion ROM line that does not parse: {line.strip()[:90]!r}")
            d["bars"].append(Bar(6, "rom", _size(m), address=_address(m.group("addr"))))
        elif " behind bridge: " in line:
            m = _WINDOW.match(line)
            if not m:
                raise ParseError(f"lspci line {n}: a bridge window line that does not parse: {line.strip()[:90]!r}")
            kind = {"I/O": "io", "Memory": "mem", "Prefetchable memory": "pref"}[m.group("kind")]
            start = int(m.group("start"), 16) if m.group("start") else None
            end = int(m.group("end"), 16) if m.group("end") else None
            if start is not None and (end < start or end - start + 1 != _size(m)):
                raise ParseError(f"lspci line {n}: window {start:#x}-{end:#x} is not [size={m.group('size')}"
                                 f"{m.group('unit')}]: {line.strip()[:90]!r}")
            d["windows"].append(Window(kind, start, end))
        elif line.startswith("\tBus: "):
            m = _BUS.match(line)
            if not m or int(m.group("subordinate"), 16) < int(m.group("secondary"), 16):
                raise ParseError(f"lspci line {n}: a Bus line that does not parse: {line.strip()[:90]!r}")
            d["secondary"], d["subordinate"] = int(m.group("secondary"), 16), int(m.group("subordinate"), 16)
        elif line.startswith("\tCapabilities: ") and "Express (" in line:
            m = _EXPRESS.match(line)
            if m:
                d["express"] = m.group("port")
        elif line.startswith("\tCapabilities: <access denied>"):
            d["capabilities_denied"] = True
        elif "SltCap:" in line and "HotPlug+" in line:
            d["hotplug"] = True
    if not devices:
        raise ParseError("lspci: no device in the text")
    bdfs = [d["bdf"] for d in devices]
    if len(set(bdfs)) != len(bdfs):
        dup = next(b for b in bdfs if bdfs.count(b) > 1)
        raise ParseError(f"lspci: {dup} is listed twice (two listings in one file?)")
    if not verbose:
        raise ParseError("lspci: no detail lines: run `lspci -vvv -nn` (plain lspci has no BARs or windows)")
    return [Device(**{**d, "bars": tuple(d["bars"]), "windows": tuple(d["windows"])}) for d in devices]
