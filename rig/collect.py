"""Cut the agent's artefact sections out of the console text (pure), and save them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import CollectError
from .parse import normalise_newlines

REQUIRED = ("uname", "cmdline", "dmesg", "iomem", "e820", "pci-resources")
_BEGIN = re.compile(r"^@@RIG-BEGIN (\S+)\s*$")
_END = re.compile(r"^@@RIG-END (\S+)(?: (\d+))?\s*$")


@dataclass(frozen=True)
class Collected:
    sections: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.sections.get(name, "")


def sections(console: str, required: tuple[str, ...] = REQUIRED) -> Collected:
    """Split `console` into named sections, dropping interleaved Xen lines.

    A section whose line count differs from the one the agent announced, or a
    required one that is missing, is a CollectError: we never judge partial data.
    """
    found: dict[str, str] = {}
    current: str | None = None
    body: list[str] = []
    for line in normalise_newlines(console).split("\n"):
        if current is None:
            m = _BEGIN.match(line)
            if m:
                current, body = m.group(1), []
            continue
        m = _END.match(line)
        if m and m.group(1) == current:
            if m.group(2) is not None and int(m.group(2)) != len(body):
                raise CollectError(f"section {current}: agent sent {m.group(2)} lines, "
                                   f"console delivered {len(body)}")
            found[current] = "\n".join(body) + ("\n" if body else "")
            current = None
        elif line.startswith("(XEN)"):
            continue  # Xen's console is muxed into the same serial line
        else:
            body.append(line)
    if current is not None:
        raise CollectError(f"section {current}: no @@RIG-END marker (console cut off)")
    missing = [name for name in required if name not in found]
    if missing:
        raise CollectError(f"missing sections: {', '.join(missing)}")
    return Collected(found)


ARTEFACT_FILES = {"dmesg": "dmesg.txt", "iomem": "iomem.txt", "e820": "e820.txt",
                  "pci-resources": "pci-resources.txt", "cmdline": "cmdline.txt", "uname": "uname.txt"}


def save(collected: Collected, run_dir: Path) -> None:
    for name, filename in ARTEFACT_FILES.items():
        if name in collected.sections:
            (run_dir / filename).write_text(collected.sections[name])
