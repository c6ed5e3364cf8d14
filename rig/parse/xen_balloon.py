"""The balloon driver's own view: the agent's xen-balloon section, from
/sys/devices/system/xen_memory/xen_memory0 (drivers/xen/xen-balloon.c)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rig.errors import ParseError

FIELDS = ("target_kb", "current_kb", "low_kb", "high_kb")
_LINE = re.compile(r"^(target_kb|current_kb|low_kb|high_kb) (\d+)$")


@dataclass(frozen=True)
class BalloonDriver:
    target_kb: int     # what the driver steers dom0's reservation to
    current_kb: int    # dom0's reservation as the driver counts it
    low_kb: int        # pages parked in the balloon (lowmem)
    high_kb: int       # (highmem; always 0 on x86-64)


def parse(text: str) -> BalloonDriver | None:
    """None when the kernel has no balloon driver ("absent"); every field exactly once otherwise."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines == ["absent"]:
        return None
    values: dict[str, int] = {}
    for line in lines:
        m = _LINE.match(line)
        if not m or m.group(1) in values:
            raise ParseError(f"xen-balloon: line does not parse: {line!r}")
        values[m.group(1)] = int(m.group(2))
    missing = [f for f in FIELDS if f not in values]
    if missing:
        raise ParseError(f"xen-balloon: no {missing[0]}")
    return BalloonDriver(**values)
