"""Sizes as users write them (512M, 2G) and as Xen and QEMU take them."""

from __future__ import annotations

import re
from typing import Any

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
