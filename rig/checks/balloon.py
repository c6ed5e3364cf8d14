"""Balloon-reserved memory: what the Xen-provided UNUSABLE ranges became.

The patched kernel (38620fc4e893, xen_reserve_extra_memory()) turns UNUSABLE e820
ranges into RAM, in address order, up to EXTRA_MEM_RATIO x dom0's RAM pages,
splitting the last range. This module computes that expectation exactly as the
kernel does and compares it with what the kernel's final map shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..parse import Range
from ..parse.e820 import E820Entry

PAGE = 4096
EXTRA_MEM_RATIO = 10
E820_MAX_ENTRIES_ZEROPAGE = 128  # boot_params e820_table size: no room left means no split


def pfn_up(addr: int) -> int:
    return (addr + PAGE - 1) // PAGE


def pfn_down(addr: int) -> int:
    return addr // PAGE


def pages(r: Range) -> int:
    """Whole pages in an inclusive range, counted as the kernel counts them."""
    return max(0, pfn_down(r[1] + 1) - pfn_up(r[0]))


@dataclass(frozen=True)
class BalloonExpectation:
    dom0_ram_pages: int
    cap_pages: int
    unusable: tuple[Range, ...]
    unusable_pages: int
    converted: tuple[Range, ...]   # what a kernel with the fix turns into RAM


def expected_conversion(xen_map: list[E820Entry]) -> BalloonExpectation:
    ram_pages = sum(pages((e.start, e.end)) for e in xen_map if e.type == "ram")
    extra = cap = EXTRA_MEM_RATIO * ram_pages
    unusable = tuple((e.start, e.end) for e in sorted(xen_map, key=lambda e: e.start) if e.type == "unusable")
    entries = len(xen_map)
    converted = []
    for start, end in unusable:
        if not extra:
            break
        full = pages((start, end))
        take = min(extra, full)
        if take != full:
            if entries == E820_MAX_ENTRIES_ZEROPAGE:
                continue
            entries += 1
            end = pfn_up(start) * PAGE + take * PAGE - 1
        converted.append((start, end))
        extra -= take
    return BalloonExpectation(ram_pages, cap, unusable, sum(pages(r) for r in unusable), tuple(converted))


def observed_conversion(unusable: tuple[Range, ...], final_map: list[E820Entry]) -> list[Range]:
    """Parts of the Xen-provided UNUSABLE ranges that the kernel's final map calls RAM."""
    out = []
    for u in unusable:
        for e in final_map:
            if e.type == "ram" and e.start <= u[1] and u[0] <= e.end:
                out.append((max(u[0], e.start), min(u[1], e.end)))
    return out


def reconstruct_xen_map(host_map: list[E820Entry], dom0_pages: int) -> list[E820Entry]:
    """Xen's pvh_setup_e820(): host RAM kept for dom0 until dom0_pages, the rest UNUSABLE.

    Used only when no unpatched run of the same host shows Xen's map directly.
    It does not model the pages Xen carves out for dom0's ACPI tables, so its
    page counts can differ from the real map by a page or so.
    """
    out, have = [], 0
    for e in host_map:
        if e.type != "ram":
            out.append(e)
            continue
        if have == dom0_pages:
            out.append(E820Entry(e.start, e.end, "unusable"))
            continue
        start, end = pfn_up(e.start) * PAGE, pfn_down(e.end + 1) * PAGE
        if start >= end:
            continue
        n = (end - start) // PAGE
        if have + n > dom0_pages:
            split = start + (dom0_pages - have) * PAGE
            out += [E820Entry(start, split - 1, "ram"), E820Entry(split, end - 1, "unusable")]
            have = dom0_pages
        else:
            out.append(E820Entry(start, end - 1, "ram"))
            have += n
    return out
