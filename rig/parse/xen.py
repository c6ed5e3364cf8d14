"""Xen's own console lines: version, command line, panic message, dom0 kind, and what
Xen says about dom0's devices and memory (findings)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rig.errors import ParseError

# "(XEN) [    1.75] ", "(XEN) [000000001e0fd789] ", "(XEN) [2026-11-29 12:00:00.123] ":
# the timestamp's characters only, so that "(XEN) [VT-D]DMAR:..." keeps its "[VT-D]".
_PREFIX = re.compile(r"^\(XEN\)(?: \[[\s0-9a-f.:-]*\])? ?")


@dataclass(frozen=True)
class XenLog:
    version: str | None = None
    cmdline: str | None = None
    dom0_kind: str | None = None      # "PVH" | "PV"
    panic: str | None = None          # the message between the asterisk rules
    device_setup_failures: tuple[str, ...] = field(default_factory=tuple)
    findings: tuple[tuple[str, str], ...] = field(default_factory=tuple)   # (kind, line)
    # Xen on Arm: where dom0's RAM is, the grant table's frames, and the "extended regions"
    # Xen tells dom0 are safe for foreign and grant mappings. [start, end) each, as Xen
    # prints them (start -> start + size).
    dom0_banks: tuple[tuple[int, int], ...] = field(default_factory=tuple)
    grant_table: tuple[int, int] | None = None
    extended_regions: tuple[tuple[int, int], ...] = field(default_factory=tuple)
    regions_disabled: bool = False    # "d0: extended regions support is disabled" (ext_regions=off)


# What Xen says of dom0's BARs, memory and DMA, by kind. The message texts are Xen's own
# (4.17 to 4.21); gdprintk lines carry a "file.c:NNN:d0v0 " prefix, hence search, not match.
FINDINGS = [
    # vPCI refuses to map a BAR dom0 enabled (xen/drivers/vpci/header.c, modify_bars)
    ("xen-bar", re.compile(r"\S+: not mapping BAR \[[0-9a-f]+, [0-9a-f]+\] invalid position")),
    # Xen disables a device's decoding at boot (xen/drivers/passthrough/pci.c, check_pdev)
    ("xen-bar", re.compile(r"\S+ disabled: \S*BAR\S* \[[^\]]+[\])] overlaps with memory map")),
    ("xen-bar", re.compile(r"Failed to add \[[0-9a-f]+, [0-9a-f]+\]: -?\d+")),
    # the IOMMU context for a device could not be set up for dom0 (pci.c, setup_hwdom_pci_devices)
    ("xen-device", re.compile(r"setup [0-9a-f:.]+ for d0 failed \(-?\d+\)")),
    # dom0=pf-fixup: Xen maps a page dom0 touched that was not in its p2m (hvm/emulate.c)
    ("xen-p2m", re.compile(r"fixup p2m mapping for page [0-9a-f]+ (?:added|already present)")),
    ("xen-p2m", re.compile(r"unable to fixup memory .*")),
    # DMA a device did that the IOMMU refused (VT-d, AMD-Vi)
    ("xen-iommu-fault", re.compile(r"\[VT-D\]DMAR:\[DMA (?:Read|Write)\] Request device \[[0-9a-f:.]+\] fault addr [0-9a-f]+")),
    ("xen-iommu-fault", re.compile(r"\[VT-D\]DMAR: reason [0-9a-f]+ - .+")),
    ("xen-iommu-fault", re.compile(r"AMD-Vi: IO_PAGE_FAULT: .+")),
    # Xen on Arm tells dom0 of no safe space for foreign mappings (ext_regions=off; domain_build.c)
    ("xen-dom0", re.compile(r"d0: extended regions support is disabled")),
    # dom0's limits as Xen set them (dom0_build.c, physdev.c)
    ("xen-dom0", re.compile(r"(?:Dom0|d0) has maximum \d+ (?:VCPUs|PIRQs)")),
]
# Xen's dom0 builder reports what it could not do as "Failed to ..." / "Unable to ..."
# (dom0_construct_pvh and its helpers): read only between its banner and dom0's start.
_BUILD_FAILURE = re.compile(r"^(?:Failed to|Unable to|Could not) .+")
_BUILD_START = re.compile(r"\*\*\* Building a (?:PVH|PV) Dom0 \*\*\*")
_BUILD_END = re.compile(r"\*\*\* Serial input to DOM0|Freed \d+kB init memory|Panic on CPU")


def findings(lines: list[str]) -> list[tuple[str, str]]:
    """(kind, line) for each line of Xen's that says something about dom0's devices,
    memory or build (pure). `lines`: Xen's lines, prefix removed (xen_lines)."""
    out, building = [], False
    for line in lines:
        if _BUILD_START.search(line):
            building = True
            continue
        if building and _BUILD_END.search(line):
            building = False
        if building and (m := _BUILD_FAILURE.match(line)):
            out.append(("xen-dom0-build", m.group(0).strip()))
            continue
        for kind, pattern in FINDINGS:
            if m := pattern.search(line):
                out.append((kind, m.group(0).strip()))
                break
    return out


def xen_lines(serial: str) -> list[str]:
    """Xen's lines from a mixed console, prefix and timestamp removed."""
    return [_PREFIX.sub("", line.rstrip("\r")) for line in serial.splitlines() if line.startswith("(XEN)")]


# xen/arch/arm/domain_build.c (4.16 to 4.21): allocate_memory_11, make_hypervisor_node,
# find_unallocated_memory / find_memory_holes.
_BANK = re.compile(r"BANK\[(\d+)\] (0x[0-9a-f]+)-(0x[0-9a-f]+) \(\d+[KMG]B\)$")
_GRANT_TABLE = re.compile(r"Grant table range: (0x[0-9a-f]+)-(0x[0-9a-f]+)$")
# 4.17+: "d0: extended region N: ..."; 4.16 printed it without the domain.
_EXTENDED = re.compile(r"(?:d0: )?[Ee]xtended region (\d+): (0x[0-9a-f]+)->(0x[0-9a-f]+)$")
_NO_REGIONS = re.compile(r"d0: extended regions support is disabled$")
# Xen's other words about regions: they must parse as one of the above or be one of these,
# so that a garbled region line is an error, never a region quietly left out.
_OTHER_REGION_LINES = re.compile(r"d\d+: (?:extended regions not supported for 32-bit guests"
                                 r"|failed to allocate extended regions)$")
_MENTIONS = re.compile(r"extended region|BANK\[|Grant table range", re.I)


def _span(start: str, end: str, line: str) -> tuple[int, int]:
    lo, hi = int(start, 16), int(end, 16)
    if hi <= lo:
        raise ParseError(f"Xen's range runs backwards: {line!r}")
    return lo, hi


def parse(serial: str) -> XenLog:
    lines = xen_lines(serial)
    version = cmdline = kind = panic = grant_table = None
    no_regions = False
    failures, banks, regions = [], [], []
    for i, line in enumerate(lines):
        if m := _BANK.match(line):
            banks.append(_span(m.group(2), m.group(3), line))
            continue
        if m := _GRANT_TABLE.match(line):
            grant_table = _span(m.group(1), m.group(2), line)
            continue
        if m := _EXTENDED.match(line):
            if int(m.group(1)) != len(regions):   # numbered from 0 in order: a gap is a lost line
                raise ParseError(f"extended region {m.group(1)} follows {len(regions)} others: {line!r}")
            regions.append(_span(m.group(2), m.group(3), line))
            continue
        if _NO_REGIONS.match(line):
            no_regions = True
            continue
        if _MENTIONS.search(line) and not _OTHER_REGION_LINES.match(line):
            raise ParseError(f"Xen's line about dom0's memory does not parse: {line[:120]!r}")
        if version is None and (m := re.match(r"Xen version (\S+)", line)):
            version = m.group(1)
        elif cmdline is None and line.startswith("Command line: "):
            cmdline = line.removeprefix("Command line: ").strip()
        elif m := re.search(r"\*\*\* Building a (PVH|PV) Dom0 \*\*\*", line):
            kind = m.group(1)
        elif m := re.match(r"setup ([0-9a-f:.]+) for d0 failed \((-?\d+)\)", line):
            failures.append(f"{m.group(1)} ({m.group(2)})")
        elif panic is None and re.match(r"Panic on CPU \d+:", line):
            body = []
            for follow in lines[i + 1:]:
                if follow.startswith("****"):
                    break
                body.append(follow.strip())
            panic = " ".join(b for b in body if b)
    return XenLog(version, cmdline, kind, panic, tuple(failures), tuple(findings(lines)),
                  tuple(banks), grant_table, tuple(regions), no_regions)
