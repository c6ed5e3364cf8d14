"""The agent's xen-devicetree section: the hypervisor node Xen on Arm wrote into dom0's
device tree, read back through /proc/device-tree (pure, strict).

    #address-cells 00 00 00 02
    #size-cells 00 00 00 02
    hypervisor/reg 00 00 00 00 40 20 00 00 00 00 00 00 00 04 00 00 ...

reg entry 0 is the grant table frames, entries 1.. the extended regions (Xen's
make_hypervisor_node; Linux's arch/arm/xen/enlighten.c reads them the same way).
"""

from __future__ import annotations

import re

from rig.errors import ParseError

_LINE = re.compile(r"^(#address-cells|#size-cells|hypervisor/reg)((?: [0-9a-f]{2})+)$")


def hypervisor_reg(text: str) -> list[tuple[int, int]] | None:
    """[start, end) of each reg entry; None when dom0 has no hypervisor node ("absent")."""
    if text.strip() == "absent":
        return None
    fields: dict[str, bytes] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LINE.match(line.strip())
        if not m or m.group(1) in fields:
            raise ParseError(f"xen-devicetree section: line does not parse: {line.strip()[:80]!r}")
        fields[m.group(1)] = bytes.fromhex(m.group(2).replace(" ", ""))
    if len(fields) != 3:
        raise ParseError(f"xen-devicetree section: want #address-cells, #size-cells and hypervisor/reg, "
                         f"got {', '.join(sorted(fields)) or 'nothing'}")
    cells = {}
    for name in ("#address-cells", "#size-cells"):
        if len(fields[name]) != 4 or not 1 <= int.from_bytes(fields[name], "big") <= 2:
            raise ParseError(f"xen-devicetree section: {name} is not one cell of 1 or 2")
        cells[name] = int.from_bytes(fields[name], "big") * 4
    width = cells["#address-cells"] + cells["#size-cells"]
    reg = fields["hypervisor/reg"]
    if len(reg) % width:
        raise ParseError(f"xen-devicetree section: hypervisor/reg has {len(reg)} bytes, not entries of {width}")
    out = []
    for i in range(0, len(reg), width):
        start = int.from_bytes(reg[i:i + cells["#address-cells"]], "big")
        size = int.from_bytes(reg[i + cells["#address-cells"]:i + width], "big")
        if size == 0:
            raise ParseError(f"xen-devicetree section: reg entry {i // width} has size 0")
        out.append((start, start + size))
    return out
