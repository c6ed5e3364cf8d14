"""Balloon-reserved memory: what the Xen-provided UNUSABLE ranges became.

The patched kernel (38620fc4e893, xen_reserve_extra_memory()) turns UNUSABLE e820
ranges into RAM, in address order, up to EXTRA_MEM_RATIO x dom0's RAM pages,
splitting the last range. This module computes that expectation exactly as the
kernel does and compares it with what the kernel's final map shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.parse import Range
from rig.parse.e820 import E820Entry

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


FOUR_GIB = 1 << 32


def reconstruct_xen_map(host_map: list[E820Entry], dom0_pages: int) -> list[E820Entry]:
    """The e820 Xen 4.17 gives a PVH dom0, from its host e820 and dom0_mem (pure).

    pvh_setup_e820(): host RAM, rounded inward to whole pages (an entry of less than a
    page is dropped), kept for dom0 until dom0_pages, the entry where they run out split
    at a page, every later RAM entry UNUSABLE with its own, unrounded bounds.
    pvh_setup_acpi(): Xen copies dom0's MADT, XSDT and RSDP (together far less than a
    page for any QEMU host here) to the top of the last RAM entry below 4 GiB and marks
    them ACPI, so that entry loses its last whole page. The tables' byte bounds depend
    on the MADT's size and are not modelled: the ACPI entry is that whole page; every
    RAM and UNUSABLE page count is exact. Checked entry by entry against the BIOS-e820
    lines of 24 real 6.1 and 6.12 dom0s (SeaBIOS and OVMF, dom0_mem 128M to 1G).
    Not modelled: Intel VMX without unrestricted guest, where Xen also takes a TSS and
    an identity page table from the same entry.
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
    below_4g = [i for i, e in enumerate(out) if e.type == "ram" and e.end < FOUR_GIB and e.end - e.start >= PAGE]
    if below_4g:  # the copied ACPI tables
        i = below_4g[-1]
        ram = out[i]
        out[i:i + 1] = [E820Entry(ram.start, ram.end - PAGE, "ram"), E820Entry(ram.end - PAGE + 1, ram.end, "acpi")]
        if out[i].end < out[i].start:
            del out[i]
    return out


def whole_ram_pages(entries: list[E820Entry], outside: tuple[Range, ...] = ()) -> list[Range]:
    """The whole RAM pages of a map as merged page-frame ranges [first, last], leaving out
    every page that touches a range in `outside` (pure): what two maps must agree on."""
    frames: list[Range] = []
    for e in sorted((e for e in entries if e.type == "ram"), key=lambda e: e.start):
        first, last = pfn_up(e.start), pfn_down(e.end + 1) - 1
        if first > last:
            continue
        if frames and frames[-1][1] + 1 == first:
            frames[-1] = (frames[-1][0], last)
        else:
            frames.append((first, last))
    for o in outside:
        cut = (pfn_down(o[0]), pfn_down(o[1]))
        frames = [piece for f in frames for piece in _minus(f, cut)]
    return frames


def _minus(r: Range, cut: Range) -> list[Range]:
    if cut[1] < r[0] or r[1] < cut[0]:
        return [r]
    return [p for p in ((r[0], cut[0] - 1), (cut[1] + 1, r[1])) if p[0] <= p[1]]
