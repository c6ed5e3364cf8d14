"""Scenario files (TOML) -> a validated, frozen Scenario.

Every schema problem becomes one ScenarioError line naming file, key and value.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal, NamedTuple, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from rig.spec import platform, topology
from rig.errors import ScenarioError
from rig.units import format_size, parse_size

Size = Annotated[int, BeforeValidator(parse_size)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PciDevice(_Strict):
    device: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    name: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")  # its id; children name it
    parent: str | None = None   # a bus: the root bus (default) or another device's name
    props: dict[str, Union[str, int, bool]] = {}


class Host(_Strict):
    arch: str = "x86_64"
    firmware: Union[str, Annotated[list[str], Field(min_length=1)]] = "seabios"  # a list makes a matrix
    boot: str | None = None  # default: the firmware's own boot method
    memory: Size = 2 << 30
    maxmem: Size | None = None          # memory hotplug ceiling (needs slots)
    slots: int | None = Field(default=None, ge=1, le=256)
    pci_hole64_size: Size | None = None  # size of the 64-bit PCI window the machine reserves
    # One vCPU by default: with two, QEMU 7.2's multi-threaded TCG races corrupt dom0 now and
    # then (a triple fault, an int3 Oops; docs/triple-fault.md), and two 1-vCPU hosts boot at once.
    cpus: int = Field(default=1, ge=1, le=64)
    iommu: Literal["intel", "none"] = "intel"
    # "user": dom0 gets a NIC on QEMU's isolated user-mode network and the rig reaches its
    # SSH server through a forward on 127.0.0.1; "none": no NIC, the serial console only.
    network: Literal["user", "none"] = "user"
    backend: Literal["qemu", "libvirt"] = "qemu"   # `--backend` overrides it
    # "system" (default): the machine's own qemu-system-*; "10.0": bookworm-backports', unpacked
    # into the cache (rig/artefacts/archive.py). A list makes a matrix; `--qemu` overrides it.
    qemu: Union[str, Annotated[list[str], Field(min_length=1)], None] = None
    qemu_args: list[str] = []
    pci: list[PciDevice] = []


class Xen(_Strict):
    # a Debian Xen by name ("4.20"); None: the rig's default (4.17). A list makes a matrix.
    version: Union[str, Annotated[list[str], Field(min_length=1)], None] = None
    dom0_mem: Union[Size, Annotated[list[Size], Field(min_length=1)]] = 512 << 20  # a list makes a matrix
    cmdline: str = ""       # extra Xen arguments, appended to the rig's
    dom0_cmdline: str = ""  # extra dom0 kernel arguments

    @field_validator("dom0_mem")
    @classmethod
    def _whole_pages(cls, value):
        # Xen reads a bare number as KiB, and the rig rebuilds Xen's map from this value.
        for size in value if isinstance(value, list) else [value]:
            if size % 4096:
                raise ValueError(f"{size} bytes is not a whole number of 4 KiB pages")
        return value

    @field_validator("cmdline")
    @classmethod
    def _no_dom0_mem(cls, value: str):
        if re.search(r"(^|\s)dom0_mem=", value):
            raise ValueError("dom0_mem belongs in xen.dom0_mem, which the checks read (not in xen.cmdline)")
        return value


Relocations = Union[Literal["none", "some"], Annotated[int, Field(ge=0)]]


RelocationCause = Literal["xen-scratch", "other-conflict", "unassigned", "absent", "unexplained"]


class _Expectations(_Strict):
    relocations: Relocations | None = None
    # The root causes every moved resource must have (checks/relocation.py CAUSES). Unset:
    # any cause but "unexplained" and "absent", which always need naming here.
    relocation_cause: Union[RelocationCause, list[RelocationCause]] | None = None
    balloon_converted: bool | None = None
    # The balloon driver's target and current reservation equal dom0's reservation by the
    # kernel's rule (checks/verdict.py balloon_rules), converted pages not counted in it.
    balloon_target: bool | None = None
    # Every Xen scratch range lies inside converted RAM and in no PCI window or BAR.
    xen_scratch_safe: bool | None = None
    xen_scratch: Literal["none", "some"] | None = None
    # Xen on Arm: "safe": Xen named extended regions, all inside the host's RAM and none
    # over anything dom0 has (its RAM, the grant table, PCI windows, BARs, device MMIO);
    # "none": Xen said it gives none (ext_regions=off) and gave none.
    extended_regions: Literal["safe", "none"] | None = None
    # Xen on Arm: where the page dom0's probe maps through gntdev lands (the agent maps a
    # page dom0 granted itself): "extended-region", inside a Xen extended region and the
    # Xen scratch the kernel carved from them; "ballooned-ram", over a page of dom0's RAM
    # ballooned out for it (a kernel without XEN_UNPOPULATED_ALLOC, or no regions).
    foreign_mapping: Literal["extended-region", "ballooned-ram"] | None = None
    reason: str = ""  # why this outcome is expected: read by people, shown in docs


class ExpectWhen(_Expectations):
    """Overrides that apply only to some variants of the host."""

    firmware: str | None = None
    dom0_mem: Size | None = None
    xen: str | None = None      # a Xen version of the scenario's list
    qemu: str | None = None     # a QEMU of the scenario's list


class Variant(NamedTuple):
    """One host of a scenario's matrix. xen and qemu are None when the scenario names none."""
    firmware: str
    dom0_mem: int
    xen: str | None = None
    qemu: str | None = None


_WHEN_KEYS = ("firmware", "dom0_mem", "xen", "qemu")


class Expect(_Expectations):
    when: list[ExpectWhen] = []

    def resolve(self, v: Variant) -> "Expect":
        """The expectations for one variant: the base, then each matching `when` in order."""
        values = self.model_dump(exclude={"when"})
        for w in self.when:
            if all(getattr(w, k) in (None, getattr(v, k)) for k in _WHEN_KEYS):
                values.update(w.model_dump(exclude=set(_WHEN_KEYS), exclude_none=True, exclude_defaults=True))
        return Expect(**values)


class KernelBuild(_Strict):
    """A kernel the rig builds from source (rig/artefacts/kernel_build.py), named "built:NAME" in [kernels].
    Paths are relative to the scenario file."""

    source: str                     # "debian-6.1", a source tree or a tarball
    patches: list[str] = []         # patch files or series directories, applied in order
    fragments: list[str] = []       # config fragments (default: the architecture's, guests/kernel/)
    config: str | None = None       # a base .config instead of tinyconfig


class Scenario(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    host: Host = Host()
    # [host] firmware may also be a list; handled by variants()
    xen: Xen = Xen()
    kernels: dict[str, str] = Field(min_length=1)
    builds: dict[str, KernelBuild] = {}
    expect: dict[str, Expect] = {}

    def variants(self) -> list[Variant]:
        """Every host this scenario asks for, in file order: Xen, QEMU, firmware, dom0_mem."""
        return [Variant(f, m, x, q) for x in _listed(self.xen.version) for q in _listed(self.host.qemu)
                for f in _listed(self.host.firmware) for m in _listed(self.xen.dom0_mem)]

    def variant(self, firmware: str, dom0_mem: int, xen: str | None = None, qemu: str | None = None) -> "Scenario":
        """This scenario for one variant (scalars everywhere), expectations resolved."""
        v = Variant(firmware, dom0_mem, xen, qemu)
        return self.model_copy(update={
            "host": self.host.model_copy(update={"firmware": firmware, "qemu": qemu}),
            "xen": self.xen.model_copy(update={"dom0_mem": dom0_mem, "version": xen}),
            "expect": {role: e.resolve(v) for role, e in self.expect.items()},
        })

    @field_validator("kernels")
    @classmethod
    def _role_names(cls, v: dict[str, str]) -> dict[str, str]:
        for role in v:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", role):
                raise ValueError(f"kernel role {role!r} must be letters, digits, '.', '_' or '-'")
        return v


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


_UNION_TAGS = {"int", "str", "bool", "float", "list", "dict"}


def _key(loc: tuple) -> str:
    """Dotted key of an error location, without pydantic's union member tags."""
    parts = []
    for p in loc:
        if isinstance(p, str) and (p in _UNION_TAGS or "[" in p):
            break
        parts.append(str(p))
    return ".".join(parts)


def _describe(errors: list[dict]) -> tuple[str, str]:
    first = errors[0]
    key = _key(first["loc"])
    kind, value = first["type"], first.get("input")
    if kind == "extra_forbidden":
        return key, "unknown key"
    if kind == "missing":
        return key, "missing required key"
    # A union reports one error per member: say them together.
    msgs = [e["msg"].removeprefix("Value error, ") for e in errors if _key(e["loc"]) == key]
    if kind == "value_error" and len(msgs) == 1:
        return key, msgs[0]
    return key, f"invalid value {value!r} ({'; or '.join(dict.fromkeys(msgs))})"


def load(path: Path | str, known_kernels: set[str] | None = None) -> Scenario:
    """Read and validate a scenario file. `known_kernels` checks [kernels] values."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ScenarioError(path, "", "no such file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, "", f"not valid TOML: {exc}") from exc
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        key, problem = _describe(exc.errors())
        raise ScenarioError(path, key, problem) from exc
    for role in scenario.expect:
        if role not in scenario.kernels:
            raise ScenarioError(path, f"expect.{role}",
                                f"no kernel with role {role!r} (roles: {', '.join(scenario.kernels)})")
    firmwares = {v.firmware for v in scenario.variants()}
    for key, value, table in (("host.arch", scenario.host.arch, platform.ARCHES),
                              *(("host.firmware", f, platform.FIRMWARES) for f in sorted(firmwares)),
                              ("host.boot", scenario.host.boot or "multiboot", platform.BOOT_METHODS)):
        if value not in table:
            raise ScenarioError(path, key, f"unknown value {value!r} (available: {', '.join(sorted(table))})")
    _check_arch(scenario, path)
    if scenario.host.boot is not None:
        fits = platform.BOOT_METHODS[scenario.host.boot].firmwares
        for f in sorted(firmwares - set(fits)):
            raise ScenarioError(path, "host.boot", f"{scenario.host.boot!r} does not boot with firmware {f!r} "
                                                   f"(it needs {', '.join(fits)})")
    for role, expect in scenario.expect.items():
        for i, w in enumerate(expect.when):
            if w.firmware is not None and w.firmware not in firmwares:
                raise ScenarioError(path, f"expect.{role}.when.{i}.firmware",
                                    f"{w.firmware!r} is not among this scenario's firmwares")
            if w.dom0_mem is not None and w.dom0_mem not in {v.dom0_mem for v in scenario.variants()}:
                raise ScenarioError(path, f"expect.{role}.when.{i}.dom0_mem",
                                    f"{format_size(w.dom0_mem)} is not among this scenario's dom0_mem values")
            for key, have in (("xen", scenario.xen.version), ("qemu", scenario.host.qemu)):
                if getattr(w, key) is not None and getattr(w, key) not in _listed(have):
                    raise ScenarioError(path, f"expect.{role}.when.{i}.{key}",
                                        f"{getattr(w, key)!r} is not among this scenario's "
                                        f"{'xen.version' if key == 'xen' else 'host.qemu'} values")
    if (scenario.host.maxmem is None) != (scenario.host.slots is None):
        raise ScenarioError(path, "host.maxmem" if scenario.host.maxmem is None else "host.slots",
                            "maxmem and slots go together (memory hotplug)")
    if scenario.host.maxmem is not None and scenario.host.maxmem < scenario.host.memory:
        raise ScenarioError(path, "host.maxmem", f"{format_size(scenario.host.maxmem)} is below memory "
                                                 f"{format_size(scenario.host.memory)}")
    mems = scenario.xen.dom0_mem if isinstance(scenario.xen.dom0_mem, list) else [scenario.xen.dom0_mem]
    for i, mem in enumerate(mems):
        if mem >= scenario.host.memory:
            # Xen would quietly give dom0 less than asked, and the checks would judge a
            # dom0_mem that never was.
            key = "xen.dom0_mem" + (f".{i}" if isinstance(scenario.xen.dom0_mem, list) else "")
            raise ScenarioError(path, key, f"{format_size(mem)} is not below host.memory "
                                           f"{format_size(scenario.host.memory)}")
    try:
        topology.resolve(list(scenario.host.pci), platform.ARCHES[scenario.host.arch].pci_root_bus)
    except topology.TopologyError as exc:
        raise ScenarioError(path, exc.key, exc.problem) from exc
    scenario = _resolve_builds(scenario, path)
    if known_kernels is not None:
        known_kernels = known_kernels | {f"built:{n}" for n in scenario.builds}
        for role, name in scenario.kernels.items():
            if name not in known_kernels:
                raise ScenarioError(path, f"kernels.{role}",
                                    f"unknown kernel {name!r} (known: {', '.join(sorted(known_kernels))}; "
                                    "or pass --kernel NAME=PATH)")
    return scenario


def _check_arch(scenario: Scenario, path) -> None:
    """What the scenario asks of its host architecture, against that row's data: the
    firmwares, IOMMUs and expectations that exist there."""
    arch = platform.ARCHES[scenario.host.arch]
    for f in sorted({v.firmware for v in scenario.variants()}):
        if arch.name not in platform.FIRMWARES[f].arches:
            fits = [n for n, row in platform.FIRMWARES.items() if arch.name in row.arches]
            raise ScenarioError(path, "host.firmware", f"{f!r} does not run {arch.name} hosts "
                                                       f"({arch.name} has: {', '.join(fits)})")
    if scenario.host.iommu not in arch.iommus:
        raise ScenarioError(path, "host.iommu", f"{scenario.host.iommu!r} is not an IOMMU of {arch.name} hosts "
                                                f"(they have: {', '.join(arch.iommus)})")
    if scenario.host.pci_hole64_size is not None and not arch.pci_hole64_global:
        raise ScenarioError(path, "host.pci_hole64_size", f"{arch.name} hosts have a fixed 64-bit PCI window")
    if scenario.host.maxmem is not None and not arch.memory_hotplug:
        raise ScenarioError(path, "host.maxmem", f"{arch.name} hosts have no memory hotplug here")
    if scenario.host.backend == "libvirt" and arch.name != "x86_64":
        raise ScenarioError(path, "host.backend", f"the libvirt backend runs x86_64 hosts only, not {arch.name}")
    for role, expect in scenario.expect.items():
        for i, e in enumerate([expect, *expect.when]):
            for key, value in e.model_dump(exclude={"when", "reason", *_WHEN_KEYS}).items():
                if value is not None and key not in arch.expectations:
                    where = f"expect.{role}" + (f".when.{i - 1}" if i else "")
                    raise ScenarioError(path, f"{where}.{key}", f"not judged on {arch.name} hosts "
                                                                f"(there: {', '.join(arch.expectations)})")


def _resolve_builds(scenario: Scenario, path: Path) -> Scenario:
    """[builds.NAME] paths made absolute (relative to the scenario file) and checked."""
    if not scenario.builds:
        return scenario
    base = path.resolve().parent
    builds = {}
    for name, b in scenario.builds.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
            raise ScenarioError(path, f"builds.{name}", "a build name is letters, digits, '.', '_', '+' or '-'")

        def absolute(value: str, key: str) -> str:
            p = (base / value).resolve()
            if not p.exists():
                raise ScenarioError(path, key, f"{value!r}: no such file or directory")
            return str(p)

        source = b.source if b.source.startswith("debian-") else absolute(b.source, f"builds.{name}.source")
        builds[name] = b.model_copy(update={
            "source": source,
            "patches": [absolute(v, f"builds.{name}.patches.{i}") for i, v in enumerate(b.patches)],
            "fragments": [absolute(v, f"builds.{name}.fragments.{i}") for i, v in enumerate(b.fragments)],
            "config": absolute(b.config, f"builds.{name}.config") if b.config else None})
    return scenario.model_copy(update={"builds": builds})
