"""Scenario files (TOML) -> a validated, frozen Scenario.

Every schema problem becomes one ScenarioError line naming file, key and value.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from . import platform
from .errors import ScenarioError

_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(value: Any) -> int:
    """'512M', '2G', '2GiB', 1073741824 -> bytes."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r} (want e.g. 512M, 2G)")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"invalid size {value!r} (must be positive)")
        return value
    m = _SIZE.match(str(value))
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"invalid size {value!r} (want e.g. 512M, 2G)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def format_size(n: int) -> str:
    """Bytes -> the shortest exact 'K/M/G/T' form; also what Xen and QEMU accept."""
    for unit in ("T", "G", "M", "K"):
        if n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{unit}"
    return str(n)


Size = Annotated[int, BeforeValidator(parse_size)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PciDevice(_Strict):
    device: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    props: dict[str, Union[str, int, bool]] = {}


class Host(_Strict):
    arch: str = "x86_64"
    firmware: str = "seabios"
    boot: str = "multiboot"
    memory: Size = 2 << 30
    cpus: int = Field(default=2, ge=1, le=64)
    iommu: Literal["intel", "none"] = "intel"
    qemu_args: list[str] = []
    pci: list[PciDevice] = []


class Xen(_Strict):
    dom0_mem: Size = 512 << 20
    cmdline: str = ""       # extra Xen arguments, appended to the rig's
    dom0_cmdline: str = ""  # extra dom0 kernel arguments


Relocations = Union[Literal["none", "some"], Annotated[int, Field(ge=0)]]


class Expect(_Strict):
    relocations: Relocations | None = None
    balloon_converted: bool | None = None
    xen_scratch: Literal["none", "some"] | None = None


class Scenario(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    host: Host = Host()
    xen: Xen = Xen()
    kernels: dict[str, str] = Field(min_length=1)
    expect: dict[str, Expect] = {}

    @field_validator("kernels")
    @classmethod
    def _role_names(cls, v: dict[str, str]) -> dict[str, str]:
        for role in v:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", role):
                raise ValueError(f"kernel role {role!r} must be letters, digits, '.', '_' or '-'")
        return v


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
    except FileNotFoundError:
        raise ScenarioError(path, "", "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, "", f"not valid TOML: {exc}") from None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        key, problem = _describe(exc.errors())
        raise ScenarioError(path, key, problem) from None
    for role in scenario.expect:
        if role not in scenario.kernels:
            raise ScenarioError(path, f"expect.{role}",
                                f"no kernel with role {role!r} (roles: {', '.join(scenario.kernels)})")
    for key, value, table in (("host.arch", scenario.host.arch, platform.ARCHES),
                              ("host.firmware", scenario.host.firmware, platform.FIRMWARES),
                              ("host.boot", scenario.host.boot, platform.BOOT_METHODS)):
        if value not in table:
            raise ScenarioError(path, key, f"unknown value {value!r} (available: {', '.join(sorted(table))})")
    if known_kernels is not None:
        for role, name in scenario.kernels.items():
            if name not in known_kernels:
                raise ScenarioError(path, f"kernels.{role}",
                                    f"unknown kernel {name!r} (known: {', '.join(sorted(known_kernels))}; "
                                    "or pass --kernel NAME=PATH)")
    return scenario
