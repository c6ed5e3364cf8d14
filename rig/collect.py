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


def parse_sections(console: str) -> tuple[dict[str, str], dict[str, str]]:
    """Pure: (sections whose line count checks out, {name: problem} for the rest).

    Xen's lines are dropped first: its console is muxed into the same serial line.
    A later good copy of a section (a resend) replaces a broken earlier one.
    """
    found: dict[str, str] = {}
    problems: dict[str, str] = {}
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
                problems[current] = f"agent sent {m.group(2)} lines, console delivered {len(body)}"
            else:
                found[current] = "\n".join(body) + ("\n" if body else "")
                problems.pop(current, None)
            current = None
        elif line.startswith("(XEN)"):
            continue
        elif _BEGIN.match(line):  # a new section began: the END of the last one was lost
            problems[current] = "no @@RIG-END marker (console garbled)"
            current, body = _BEGIN.match(line).group(1), []
        else:
            body.append(line)
    if current is not None:
        problems[current] = "no @@RIG-END marker (console cut off)"
    return found, problems


def sections(console: str, required: tuple[str, ...] = REQUIRED) -> Collected:
    """Every required section from a finished console log, or a CollectError: we never
    judge partial data."""
    found, problems = parse_sections(console)
    for name in required:
        if name not in found and name not in problems:
            problems[name] = "missing"
    if problems:
        raise CollectError("; ".join(f"section {n}: {p}" for n, p in sorted(problems.items())))
    return Collected(found)


RESEND_ATTEMPTS = 3


def gather(console, transcript, required: tuple[str, ...] = REQUIRED, timeout: float = 120.0) -> Collected:
    """Sections from the live console, asking the agent to resend any that came back
    garbled or missing (up to RESEND_ATTEMPTS times each)."""
    for _ in range(RESEND_ATTEMPTS):
        found, problems = parse_sections(transcript.text)
        broken = sorted(set(problems) | {n for n in required if n not in found})
        if not broken:
            return Collected(found)
        for name in broken:
            console.sendline(f"resend {name}")
            console.expect(r"@@RIG-DONE", timeout=timeout)
    return sections(transcript.text, required)


ARTEFACT_FILES = {"dmesg": "dmesg.txt", "iomem": "iomem.txt", "e820": "e820.txt",
                  "pci-resources": "pci-resources.txt", "cmdline": "cmdline.txt", "uname": "uname.txt"}


def save(collected: Collected, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, filename in ARTEFACT_FILES.items():
        if name in collected.sections:
            (run_dir / filename).write_text(collected.sections[name])
