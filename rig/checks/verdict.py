"""From a finished boot to findings, checks and a verdict.

verdict: "error" when the boot, the collection or the judging failed (never pass or
fail); "unjudged" when the scenario asks nothing of the role; otherwise "fail" if any
expectation check failed, else "pass".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rig.errors import CollectError, ParseError
from rig.parse import Range
from rig.parse import dmesg as dmesg_parse
from rig.parse import e820 as e820_parse
from rig.parse import iomem as iomem_parse
from rig.parse import pci as pci_parse
from rig.parse import xen as xen_parse
from rig.parse import xen_balloon
from rig.spec.scenario import Expect
from rig.checks import balloon, relocation
from rig.parse import foreign_map as foreign_map_parse


@dataclass(frozen=True)
class XenMap:
    """The e820 Xen gave dom0, and how we know it."""

    entries: list[e820_parse.E820Entry]
    source: str
    dom0_pages: int | None = None   # the pages Xen populated for dom0 (dom0_mem), when known
    pvh: bool = True                # a PV dom0 gets another map; kernels are not compared with this one


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Analysis:
    kernel_release: str | None
    relocations: list[relocation.Relocation]
    resources: list[dict]
    xen_scratch: list[Range]
    scratch_overlaps: list[dict]
    unusable: list[Range]
    converted: list[Range]
    expected_conversion: list[Range]
    balloon: dict
    xen_map_source: str
    findings: list[dmesg_parse.Finding] = field(default_factory=list)
    balloon_driver: xen_balloon.BalloonDriver | None = None   # None: absent, or not collected
    balloon_driver_collected: bool = False
    dom0_pages: int | None = None
    scratch_outside_converted: list[Range] = field(default_factory=list)
    final_map_disagreement: str | None = None   # the kernel's final map vs Xen's, outside UNUSABLE
    # Xen on Arm: the extended regions Xen gave dom0 and what in dom0 each one overlaps
    extended_regions: list[Range] = field(default_factory=list)
    region_overlaps: list[dict] = field(default_factory=list)
    regions_disabled: bool = False   # Xen said it gives none (ext_regions=off)
    dom0_banks: list[Range] = field(default_factory=list)   # the RAM Xen gave dom0 (BANK lines)
    # Where dom0's foreign-mapping probe mapped a page (parse/foreign_map.py); None: no probe
    foreign_map: foreign_map_parse.ForeignMap | None = None
    foreign_map_collected: bool = False
    probe_marked: bool = False                 # dmesg has the agent's mark before the probe
    probe_findings: list[dmesg_parse.Finding] = field(default_factory=list)   # WARNINGs etc. from it on
    kernel_image: list[Range] = field(default_factory=list)   # Kernel code/data in /proc/iomem


def xen_map(serials: list[tuple[str, str]], dom0_mem: int) -> XenMap:
    """The e820 Xen gave dom0, rebuilt from Xen's host e820 and dom0_mem: independent of
    every dom0 kernel, so no kernel is judged against its own account of the map.

    `serials`: (whose, serial log) of boots of the same host, this boot's first. Every
    boot of a host prints the same host e820; a block garbled on the serial line is
    refused (ParseError), and the next boot's copy is used. Copies that parse must agree.
    """
    maps, problems = [], []
    for whose, serial in serials:
        try:
            found = e820_parse.from_xen(serial)
        except ParseError as exc:
            problems.append(f"{whose}: {exc}")
            continue
        if found:
            maps.append((whose, found))
        else:
            problems.append(f"{whose}: no Xen-e820 RAM map block")
    if not maps:
        raise CollectError("Xen's host e820: " + "; ".join(problems))
    whose, host_map = maps[0]
    for other, m in maps[1:]:
        if m != host_map:
            raise CollectError(f"Xen's host e820 differs between the serial logs of {whose} and {other} "
                               "of the same host")
    source = f"rebuilt from Xen's host e820 ({whose}'s serial log) and dom0_mem"
    if problems and problems[0].startswith(serials[0][0] + ":"):
        source += f"; this boot's copy was refused ({problems[0]})"
    pvh = xen_parse.parse(serials[0][1]).dom0_kind != "PV"
    if not pvh:
        source += "; as for a PVH dom0 (this dom0 is PV: its own map is not compared with it)"
    return XenMap(balloon.reconstruct_xen_map(host_map, dom0_mem // balloon.PAGE), source,
                  dom0_mem // balloon.PAGE, pvh)


def map_disagreement(xen: XenMap, kernel_map: list[e820_parse.E820Entry], what: str) -> str | None:
    """Where a kernel's map disagrees with Xen's about RAM outside Xen's UNUSABLE ranges
    (the only RAM any kernel may add is in those): None when they agree (pure)."""
    unusable = tuple(e820_parse.ranges_of(xen.entries, "unusable"))
    want = balloon.whole_ram_pages(xen.entries, unusable)
    got = balloon.whole_ram_pages(kernel_map, unusable)
    if want == got:
        return None

    def show(frames):
        return ", ".join(f"[{a * balloon.PAGE:#x}-{(b + 1) * balloon.PAGE - 1:#x}]" for a, b in frames) or "none"
    return (f"{what} disagrees with Xen's map on RAM outside UNUSABLE: Xen {show(want)} "
            f"({sum(b - a + 1 for a, b in want)} pages), kernel {show(got)} ({sum(b - a + 1 for a, b in got)} pages)")


def analyse(collected, firmware_pci: list | None, xen_map: XenMap) -> Analysis:
    if not firmware_pci:  # without where firmware put the BARs, "nothing moved" would be a guess
        raise CollectError("no firmware PCI snapshot (query-pci when Xen started): relocations cannot be judged")
    firmware = pci_parse.from_query_pci_data(firmware_pci)
    if not any(r.range for r in firmware):
        raise CollectError("the firmware PCI snapshot places no BAR or window at all: relocations cannot be judged")
    final = pci_parse.from_sysfs(collected["pci-resources"])
    events = dmesg_parse.pci_events(collected["dmesg"])
    tree = iomem_parse.parse(collected["iomem"])
    scratch = iomem_parse.xen_scratch(tree)
    expectation = balloon.expected_conversion(xen_map.entries)
    final_map = e820_parse.from_memmap(collected["e820"])
    converted = balloon.observed_conversion(expectation.unusable, final_map)
    return Analysis(
        kernel_release=(collected["uname"].strip() or dmesg_parse.kernel_release(collected["dmesg"])),
        relocations=relocation.relocations(firmware, final, events),
        resources=relocation.resource_table(firmware, final),
        xen_scratch=scratch,
        scratch_overlaps=relocation.scratch_overlaps(
            scratch, firmware, [(e.name, e.range) for e in iomem_parse.bus_windows(tree) if e.depth == 0]),
        unusable=list(expectation.unusable),
        converted=converted,
        expected_conversion=list(expectation.converted),
        balloon={"dom0_ram_pages": expectation.dom0_ram_pages, "cap_pages": expectation.cap_pages,
                 "unusable_pages": expectation.unusable_pages,
                 "converted_pages": sum(balloon.pages(r) for r in converted),
                 "expected_converted_pages": sum(balloon.pages(r) for r in expectation.converted)},
        xen_map_source=xen_map.source,
        findings=dmesg_parse.findings(collected["dmesg"]) + _map_findings(xen_map, collected, final_map),
        balloon_driver=xen_balloon.parse(collected["xen-balloon"]) if "xen-balloon" in collected.sections else None,
        balloon_driver_collected="xen-balloon" in collected.sections,
        dom0_pages=xen_map.dom0_pages,
        scratch_outside_converted=[s for s in scratch if not _covered(s, converted)],
        final_map_disagreement=(map_disagreement(xen_map, final_map, "the kernel's final map")
                                if xen_map.pvh else None),
    )


def analyse_device_tree(collected, serial: str, host_ram: Range) -> Analysis:
    """A host without firmware or e820 (Arm virt, guest-loader): nothing placed BARs before
    dom0 and there is no UNUSABLE to convert. What is judged is Xen's own account, which
    does not come from the kernel: the lines Xen printed (BANK, grant table, extended
    regions), checked against the hypervisor node Xen wrote into dom0's device tree, then
    the regions against everything dom0 has and against the host's RAM `host_ram`
    ([start, end], from the scenario and the Arch row: every other address of the host is
    device space that dom0 may not even see, such as the UART Xen keeps for itself)."""
    from rig.parse import devicetree
    xen_log = xen_parse.parse(serial)   # a garbled region line is a ParseError: never judged
    if not xen_log.dom0_banks or xen_log.grant_table is None:
        raise CollectError("Xen's serial log has no BANK and grant table lines for dom0: its account of "
                           "dom0's memory is missing or cut short")
    if "xen-devicetree" not in collected.sections:
        raise CollectError("no xen-devicetree section (an agent older than 5): Xen's regions cannot be cross-checked")
    reg = devicetree.hypervisor_reg(collected["xen-devicetree"])
    if reg is None:
        raise CollectError("dom0's device tree has no hypervisor node: not a Xen on Arm dom0")
    if reg[0] != xen_log.grant_table or reg[1:] != list(xen_log.extended_regions):
        raise CollectError(f"Xen's serial log and dom0's device tree disagree: log grant table "
                           f"{_ranges([xen_log.grant_table])} regions {_ranges(xen_log.extended_regions)}, "
                           f"device tree reg {_ranges(reg)} (ends exclusive)")
    tree = iomem_parse.parse(collected["iomem"])
    if not any(e.depth == 0 and e.name == "System RAM" for e in tree):
        raise CollectError("/proc/iomem has no System RAM: not dom0's (or cut short)")
    final = pci_parse.from_sysfs(collected["pci-resources"])
    regions = [(a, b - 1) for a, b in xen_log.extended_regions]   # [start, end) -> [start, end]
    # What dom0 has: dom0's RAM as Xen gave it, every top-level /proc/iomem resource (RAM,
    # device MMIO, the PCI host windows and ECAM; bridge windows and BARs nest inside
    # them), every BAR and window from sysfs, and the grant table frames. Not Xen scratch:
    # that is dom0 using the regions, judged below and by the foreign_mapping check.
    scratch = iomem_parse.xen_scratch(tree)
    used = [(f"dom0 RAM (Xen BANK[{i}])", (a, b - 1)) for i, (a, b) in enumerate(xen_log.dom0_banks)]
    used += [(e.name, e.range) for e in tree if e.depth == 0 and e.name != "Xen scratch"]
    # ... but anything nested inside a Xen scratch is something else sitting in the regions
    used += [(e.name, e.range) for e in tree if e.parent is not None and tree[e.parent].name == "Xen scratch"]
    used += [(f"{r.device} {r.name}", r.range) for r in final if r.range and r.kind == "mem"]
    used.append(("Xen grant table", (xen_log.grant_table[0], xen_log.grant_table[1] - 1)))
    overlaps = [{"region": list(reg_), "owner": name, "range": list(rng)}
                for reg_ in regions for name, rng in used if reg_[0] <= rng[1] and rng[0] <= reg_[1]]
    overlaps += [{"region": list(reg_), "owner": "space outside the host's RAM", "range": list(host_ram)}
                 for reg_ in regions if not (host_ram[0] <= reg_[0] and reg_[1] <= host_ram[1])]
    scratch_clashes = [{"scratch": list(s), "kind": "dom0's", "owner": name, "range": list(rng)}
                       for s in scratch for name, rng in used if s[0] <= rng[1] and rng[0] <= s[1]]
    return Analysis(
        kernel_release=(collected["uname"].strip() or dmesg_parse.kernel_release(collected["dmesg"])),
        relocations=[], resources=relocation.resource_table([], final), xen_scratch=scratch,
        scratch_overlaps=scratch_clashes, unusable=[], converted=[], expected_conversion=[], balloon={},
        xen_map_source="Xen's serial log (BANK, grant table, extended regions) = dom0's device tree",
        findings=dmesg_parse.findings(collected["dmesg"]),
        balloon_driver=xen_balloon.parse(collected["xen-balloon"]) if "xen-balloon" in collected.sections else None,
        balloon_driver_collected="xen-balloon" in collected.sections,
        extended_regions=regions, region_overlaps=overlaps, regions_disabled=xen_log.regions_disabled,
        dom0_banks=[(a, b - 1) for a, b in xen_log.dom0_banks],
        foreign_map=(foreign_map_parse.parse(collected["foreign-map"]) if "foreign-map" in collected.sections
                     else None),
        foreign_map_collected="foreign-map" in collected.sections,
        probe_marked=foreign_map_parse.MARK in collected["dmesg"],
        probe_findings=dmesg_parse.findings(collected["dmesg"].partition(foreign_map_parse.MARK)[2]),
        kernel_image=[e.range for e in tree if e.name.startswith("Kernel ")])


def _covered(r: Range, by: list[Range]) -> bool:
    """Is every byte of r inside the union of `by`?"""
    start = r[0]
    for a, b in sorted(by):
        if a <= start <= b:
            start = b + 1
        if start > r[1]:
            return True
    return False


def _map_findings(xen_map: XenMap, collected, final_map) -> list[dmesg_parse.Finding]:
    """The kernel's boot map (BIOS-e820) and its final map against Xen's own view."""
    out = []
    if not xen_map.pvh:
        return out
    for what, kernel_map in (("the kernel's BIOS-e820 map", e820_parse.from_dmesg(collected["dmesg"])),
                             ("the kernel's final map (/sys/firmware/memmap)", final_map)):
        problem = map_disagreement(xen_map, kernel_map, what)
        if problem:
            out.append(dmesg_parse.Finding("xen-map-disagreement", problem))
    return out


def _ranges(rs) -> str:
    return ", ".join(f"[{a:#x}-{b:#x}]" for a, b in rs) or "none"


def check_names(expect: Expect | None) -> list[str]:
    """The checks `evaluate` makes for these expectations, in its order (pure): known
    before anything boots, so the pytest plugin can name its items."""
    if expect is None:
        return []
    wanted = {"relocations": expect.relocations is not None,
              "relocation_cause": expect.relocation_cause is not None or expect.relocations is not None,
              "balloon_converted": expect.balloon_converted is not None,
              "balloon_target": expect.balloon_target is not None,
              "xen_scratch_safe": expect.xen_scratch_safe is not None,
              "xen_scratch": expect.xen_scratch is not None,
              "extended_regions": expect.extended_regions is not None,
              "foreign_mapping": expect.foreign_mapping is not None}
    return [name for name, on in wanted.items() if on]


def evaluate(expect: Expect | None, a: Analysis) -> list[Check]:
    checks: list[Check] = []
    if expect is None:
        return checks
    if expect.relocations is not None:
        n = len(a.relocations)
        want = expect.relocations
        passed = n == 0 if want == "none" else n > 0 if want == "some" else n == want
        moved = "; ".join(r.describe() for r in a.relocations) or "nothing moved"
        checks.append(Check("relocations", passed, f"want {want}, got {n}: {moved}"))
    if expect.relocation_cause is not None or expect.relocations is not None:
        checks.append(_cause_check(expect, a))
    if expect.balloon_converted is not None:
        pages = a.balloon["converted_pages"]
        if expect.balloon_converted:
            passed = pages > 0 and a.converted == a.expected_conversion
            detail = (f"converted {_ranges(a.converted)} ({pages} pages); the kernel's rule "
                      f"(cap {a.balloon['cap_pages']} pages, last range split) gives {_ranges(a.expected_conversion)}")
        else:
            passed = pages == 0
            detail = f"want UNUSABLE left alone; converted {_ranges(a.converted)} ({pages} pages)"
        if a.final_map_disagreement:  # RAM outside UNUSABLE changed: the conversion is not the rule's
            passed, detail = False, f"{detail}; {a.final_map_disagreement}"
        checks.append(Check("balloon_converted", passed, detail))
    if expect.balloon_target is not None:
        checks.append(_balloon_target_check(expect.balloon_target, a))
    if expect.xen_scratch_safe is not None:
        checks.append(_scratch_safe_check(expect.xen_scratch_safe, a))
    if expect.xen_scratch is not None:
        n = len(a.xen_scratch)
        passed = n == 0 if expect.xen_scratch == "none" else n > 0
        checks.append(Check("xen_scratch", passed, f"want {expect.xen_scratch}, got {_ranges(a.xen_scratch)}"))
    if expect.extended_regions is not None:
        checks.append(_regions_check(expect.extended_regions, a))
    if expect.foreign_mapping is not None:
        checks.append(_foreign_mapping_check(expect.foreign_mapping, a))
    return checks


def _foreign_mapping_check(want: str, a: Analysis) -> Check:
    """Where the page dom0's probe mapped landed, and what the kernel took to map it.
    "extended-region": inside an extended region and a Xen scratch resource, every Xen
    scratch inside the regions and over nothing dom0 has; "ballooned-ram": inside dom0's
    RAM (a page ballooned out to map over), no Xen scratch at all. Either needs a mapping
    that reads back what was granted. No probe, or one that found no gntalloc or gntdev
    to ask, is no evidence: an error, never a verdict."""
    if not a.foreign_map_collected:
        raise CollectError("no foreign-map section (an agent older than 6): where foreign mappings land is unknown")
    fm = a.foreign_map
    if fm is None:
        raise CollectError("dom0's initramfs has no foreign-mapping probe (its architecture row asks for none)")
    if fm.unasked:
        raise CollectError(f"the foreign-mapping probe could not ask dom0's kernel: {fm.describe()} "
                           "(no gntalloc/gntdev: built without them, or their modules missing)")
    if not a.probe_marked:
        raise CollectError("dmesg lacks the agent's mark before the foreign-mapping probe: cut short or not this boot's")
    said = "; ".join(f.line for f in a.probe_findings)
    if not fm.mapped or not fm.pattern_ok or said:
        return Check("foreign_mapping", False, f"want {want}; the mapping {fm.describe()}"
                     + (f"; the kernel said while it ran: {said}" if said else ""))
    if fm.address == fm.granted:   # the granted page itself handed back: nothing was mapped
        return Check("foreign_mapping", False, f"want {want}; {fm.describe()}: the granted page itself")
    page = (fm.address, fm.address + fm.page - 1)

    def holding(ranges: list[Range]) -> Range | None:
        return next((r for r in ranges if r[0] <= page[0] and page[1] <= r[1]), None)

    region, scratch, bank = holding(a.extended_regions), holding(a.xen_scratch), holding(a.dom0_banks)
    image = next((r for r in a.kernel_image if r[0] <= page[1] and page[0] <= r[1]), None)
    landed = (f"extended region [{region[0]:#x}-{region[1]:#x}]" if region and scratch
              else f"the kernel's own image [{image[0]:#x}-{image[1]:#x}]" if image
              else f"dom0's RAM, ballooned out (bank [{bank[0]:#x}-{bank[1]:#x}])" if bank and not scratch
              else "neither an extended region's Xen scratch nor dom0's RAM")
    outside = [s for s in a.xen_scratch if not any(r[0] <= s[0] and s[1] <= r[1] for r in a.extended_regions)]
    clashes = "; ".join(f"Xen scratch [{o['scratch'][0]:#x}-{o['scratch'][1]:#x}] overlaps {o['owner']}"
                        for o in a.scratch_overlaps)
    if want == "extended-region":
        held = bool(region and scratch) and not outside and not a.scratch_overlaps
    else:
        held = bool(bank) and not image and not a.xen_scratch
    detail = (f"want {want}; {fm.describe()}: in {landed}"
              + f"; Xen scratch {_ranges(a.xen_scratch)}"
              + (f", outside the extended regions: {_ranges(outside)}" if outside else "")
              + (f"; {clashes}" if clashes else ""))
    return Check("foreign_mapping", held, detail)


def _regions_check(want: str, a: Analysis) -> Check:
    """"safe": Xen named at least one extended region and none overlaps what dom0 has or
    leaves the host's RAM. "none": Xen said it gives none (ext_regions=off) and gave none.
    Regions missing without Xen saying so satisfy neither."""
    clashes = "; ".join(f"[{o['region'][0]:#x}-{o['region'][1]:#x}] overlaps {o['owner']} "
                        f"[{o['range'][0]:#x}-{o['range'][1]:#x}]" for o in a.region_overlaps)
    listed = f"extended regions {_ranges(a.extended_regions)}"
    if want == "safe":
        held = bool(a.extended_regions) and not a.region_overlaps
        detail = listed + (f"; {clashes}" if clashes else "; inside the host's RAM, overlapping nothing of dom0's"
                           if a.extended_regions else " (Xen gave dom0 none)")
    else:
        held = not a.extended_regions and a.regions_disabled
        detail = listed + ("; Xen: extended regions support is disabled" if a.regions_disabled
                           else "; Xen did not say it disabled them")
    return Check("extended_regions", held, f"want {want}; {detail}")


def balloon_rules(a: Analysis) -> dict[str, int]:
    """current_kb values a correct kernel may report, by rule (pure). Page 0 is Linux's own
    (trim_bios_range), so get_num_physpages() counts Xen's whole RAM pages less one;
    converted pages are balloon space, never part of dom0's reservation."""
    if "dom0_ram_pages" not in a.balloon:   # Arm: no rule measured yet
        return {}
    rules = {"physpages": 4 * (a.balloon["dom0_ram_pages"] - 1)}   # 6.1; 6.12 with 87af633689ce
    if a.dom0_pages is not None:
        # b13cd24c15d7 (7.x; 6.12.y as e99f40f14005): XENMEM_current_reservation, Xen's
        # tot_pages. Xen populates dom0_mem's pages (the copied ACPI tables' page included);
        # xen_hvm_guest_init() maps shared_info over one RAM gfn and Xen frees that page.
        rules["reservation"] = 4 * (a.dom0_pages - SHARED_INFO_PAGES)
    return rules


SHARED_INFO_PAGES = 1   # the RAM page a PVH dom0's shared_info mapping replaces


def _balloon_target_check(want: bool, a: Analysis) -> Check:
    d = a.balloon_driver
    if d is None:
        why = "no balloon driver in dom0" if a.balloon_driver_collected else "the agent did not send xen-balloon"
        return Check("balloon_target", False, f"want the balloon driver's view; {why}")
    rules = balloon_rules(a)
    matched = [name for name, kb in rules.items() if kb == d.current_kb]
    converted_kb = 4 * a.balloon["converted_pages"]
    held = d.target_kb == d.current_kb and bool(matched)
    detail = (f"target_kb {d.target_kb}, current_kb {d.current_kb}, low_kb {d.low_kb}; rules: "
              + ", ".join(f"{n} {kb}" for n, kb in rules.items())
              + (f"; matches {matched[0]}" if matched else "")
              + ("; current counts the converted pages (87af633689ce missing?)"
                 if converted_kb and d.current_kb - converted_kb in rules.values() else ""))
    return Check("balloon_target", held == want, ("want target = current = dom0's reservation; " if want
                                                  else "want the reservation wrong; ") + detail)


def _scratch_safe_check(want: bool, a: Analysis) -> Check:
    """Xen scratch (where a kernel still shows one) lies inside converted RAM, in no PCI
    window or BAR, at firmware or final addresses."""
    in_pci = list(a.scratch_overlaps)
    final_bars = [r for r in a.resources if r["final"] and r["kind"] == "mem"]
    for s in a.xen_scratch:
        for r in final_bars:
            if s[0] <= r["final"][1] and r["final"][0] <= s[1]:
                in_pci.append({"scratch": list(s), "owner": f"{r['device']} {r['resource']} (final)"})
    safe = not in_pci and not a.scratch_outside_converted
    detail = (f"Xen scratch {_ranges(a.xen_scratch)}; outside converted RAM: {_ranges(a.scratch_outside_converted)}; "
              f"in PCI space: {'; '.join(o['owner'] for o in in_pci) or 'none'}")
    return Check("xen_scratch_safe", safe == want, detail)


def _cause_check(expect: Expect, a: Analysis) -> Check:
    """Every moved resource's root cause is one the scenario names (or, unnamed, one that
    is explained: a conflict or a failed assignment, never an unexplained move or a lost device)."""
    named = expect.relocation_cause
    allowed = set([named] if isinstance(named, str) else named) if named is not None else \
        set(relocation.CAUSES) - set(relocation.UNEXPLAINED)
    wrong = [r for r in a.relocations if r.root_cause not in allowed]
    want = " | ".join(sorted(allowed))
    if wrong:
        return Check("relocation_cause", False, f"want every move caused by {want}; "
                     + "; ".join(f"{r.describe()}: {r.root_cause}" for r in wrong))
    got = ", ".join(sorted({r.root_cause for r in a.relocations})) or "nothing moved"
    return Check("relocation_cause", True, f"want {want}; got {got}")


def verdict(error: str | None, checks: list[Check]) -> str:
    """error: not judged because the boot or collection failed; unjudged: nothing was
    asked of this role; else fail if any check failed, pass if every one held."""
    if error:
        return "error"
    if not checks:
        return "unjudged"
    return "pass" if all(c.passed for c in checks) else "fail"
