"""Scenario x firmware x dom0_mem x kernel -> jobs; deterministic shards for CI fan-out.

A "host" is one scenario variant (scenario, firmware, dom0_mem): the kernels booted
on it are compared with each other, and its `unpatched` role is the reference for
Xen's memory map, so shards never split a host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rig.errors import InputError
from rig.spec import platform
from rig.spec.scenario import Scenario
from rig.units import format_size, parse_size


@dataclass(frozen=True, eq=False)
class Job:
    scenario: Scenario      # one variant: firmware and dom0_mem are scalars here
    role: str
    kernel: str
    rel_dir: Path           # where its artefacts go, below the run's output directory

    @property
    def firmware(self) -> str:
        return self.scenario.host.firmware

    @property
    def dom0_mem(self) -> int:
        return self.scenario.xen.dom0_mem

    @property
    def host(self) -> tuple[str, str, int, str | None, str | None]:
        """The machine this job boots on: its kernels are judged together (one Xen, one map)."""
        return (self.scenario.name, self.firmware, self.dom0_mem, self.xen, self.qemu)

    @property
    def xen(self) -> str | None:
        """The Xen named for this job; None for the default (ids without a Xen tag)."""
        version = self.scenario.xen.version
        return None if version in (None, platform.DEFAULT_XEN) else version

    @property
    def qemu(self) -> str | None:
        """The QEMU named for this job; None for the machine's own (ids without a QEMU tag)."""
        name = self.scenario.host.qemu
        return None if name in (None, platform.SYSTEM_QEMU) else name

    @property
    def variant(self) -> str:
        """The host's part of the id: "xen4.20-qemu10.0-seabios-512M" (its directory too)."""
        return variant_name(self.firmware, format_size(self.dom0_mem), self.xen, self.qemu)

    @property
    def id(self) -> str:
        return job_id(self.scenario.name, self.firmware, format_size(self.dom0_mem), self.role, self.xen, self.qemu)


def variant_name(firmware: str, dom0_mem: str, xen: str | None = None, qemu: str | None = None) -> str:
    """A Xen or QEMU named other than by default comes first; the defaults leave no tag, so
    the ids ci/baseline.json holds stay as they were."""
    return f"{f'xen{xen}-' if xen else ''}{f'qemu{qemu}-' if qemu else ''}{firmware}-{dom0_mem}"


def job_id(scenario: str, firmware: str, dom0_mem: str, role: str, xen: str | None = None,
           qemu: str | None = None) -> str:
    """A job's one name, wherever it is shown or matched: result.json's "job", summaries,
    baselines, JUnit test names, pytest items, bench directories. dom0_mem as written: "512M":
    "s[xen4.20-qemu10.0-seabios-512M-unpatched]"."""
    return f"{scenario}[{variant_name(firmware, dom0_mem, xen, qemu)}-{role}]"


def expand(scenarios: list[Scenario], *, flat: bool = False) -> list[Job]:
    """Every job, in scenario file order. `flat`: one scenario with one variant keeps
    the plain <out>/<role>/ layout of `rig run`."""
    names = [s.name for s in scenarios]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise InputError(f"two scenarios are named {dup!r}; names must be unique in a matrix")
    jobs = []
    for s in scenarios:
        variants = s.variants()
        for vrow in variants:
            v = s.variant(*vrow)
            for role, kernel in v.kernels.items():
                variant = Job(v, role, kernel, Path(role)).variant
                if flat and len(scenarios) == 1 and len(variants) == 1:
                    rel = Path(role)
                elif flat and len(scenarios) == 1:
                    rel = Path(variant) / role
                else:
                    rel = Path(s.name) / variant / role
                jobs.append(Job(v, role, kernel, rel))
    return jobs


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise InputError(f"--shard {text!r}: want I/N with 1 <= I <= N, e.g. 2/4")
    return int(m.group(1)), int(m.group(2))


def shard(jobs: list[Job], index: int, count: int) -> list[Job]:
    """Shard `index` of `count` (1-based): whole hosts, dealt round-robin in a stable order."""
    hosts = sorted({j.host for j in jobs}, key=lambda h: (h[0], h[1], h[2], h[3] or "", h[4] or ""))
    mine = {h for i, h in enumerate(hosts) if i % count == index - 1}
    return [j for j in jobs if j.host in mine]


def one_job(scenario: Scenario, kernel: str | None, firmware: str | None, dom0_mem: str | None,
            kernel_names: set[str]) -> Scenario:
    """The scenario cut down to one host variant and one kernel (rig shell), chosen by role or by
    one of `kernel_names`."""
    variants = scenario.variants()
    if firmware is not None:
        variants = [v for v in variants if v.firmware == firmware] or _no_variant("--firmware", firmware, scenario)
    if dom0_mem is not None:
        size = parse_size(dom0_mem)
        variants = [v for v in variants if v.dom0_mem == size] or _no_variant("--dom0-mem", dom0_mem, scenario)
    one = scenario.variant(*variants[0])
    role = kernel or next(iter(one.kernels))
    if role not in one.kernels:
        by_kernel = [r for r, k in one.kernels.items() if k == role]
        if by_kernel:
            role = by_kernel[0]
        elif role in kernel_names:
            return one.model_copy(update={"kernels": {"shell": role}, "expect": {}})
        else:
            raise InputError(f"--kernel {role}: neither a role ({', '.join(one.kernels)}) nor a kernel name "
                             f"({', '.join(sorted(kernel_names))})")
    return one.model_copy(update={"kernels": {role: one.kernels[role]}})


def _no_variant(flag: str, value: str, scenario: Scenario):
    have = ", ".join(f"{v.firmware}/{format_size(v.dom0_mem)}" for v in scenario.variants())
    raise InputError(f"{flag} {value}: the scenario has no such variant (firmware/dom0_mem: {have})")
