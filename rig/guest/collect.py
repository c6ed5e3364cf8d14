"""Cut the agent's artefact sections out of the console text (pure), and save them.

Evidence is judged only when it is whole: every section the agent's protocol version
requires, none empty, each with the line count and (agent 3 on) the sha256 that dom0
computed of the file. A console that altered a character keeps the count but not the
hash: such a section is resent, then refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rig.errors import CollectError
from rig.guest import protocol
from rig.parse import normalise_newlines

SECTIONS_BY_AGENT = protocol.SECTIONS_BY_AGENT
AGENT_VERSION = protocol.AGENT_VERSION
REQUIRED = protocol.SECTIONS
_AGENT = re.compile(protocol.marker_re(protocol.AGENT, r"(\d+) "), re.MULTILINE)
_STEP = re.compile(protocol.marker_re(protocol.STEP, r"(\S+) (\d+\.\d+)\s*$"), re.MULTILINE)
_BEGIN = re.compile(protocol.marker_re(protocol.BEGIN, r"(\S+)\s*$"))
_END = re.compile(protocol.marker_re(protocol.END, r"(\S+)(?: (\d+))?(?: ([0-9a-f]{64}))?\s*$"))


@dataclass(frozen=True)
class Collected:
    sections: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.sections.get(name, "")


def agent_version(console: str) -> int:
    """The protocol version a recorded console's agent announced (0: no banner). Live
    collection does not ask: it knows the agent it shipped (AGENT_VERSION)."""
    m = _AGENT.search(normalise_newlines(console))
    return int(m.group(1)) if m else 0


def agent_steps(console: str) -> dict[str, float]:
    """Seconds each agent step took, from its "@@RIG-STEP NAME UPTIME" marks (pure): the
    first mark ("start") is dom0's uptime when the agent began, the others the seconds since
    the mark before. A mark a console garbled is skipped, never guessed."""
    steps: dict[str, float] = {}
    previous = None
    for m in _STEP.finditer(normalise_newlines(console)):
        uptime = float(m.group(2))
        steps[m.group(1)] = round(uptime - previous if previous is not None else uptime, 2)
        previous = uptime
    return steps


def required_sections(agent: int) -> tuple[str, ...]:
    return SECTIONS_BY_AGENT.get(agent, REQUIRED)


def digest(body: str) -> str:
    """sha256 of a section as the file in dom0 held it (what `sha256sum < file` printed)."""
    return hashlib.sha256(body.encode()).hexdigest()


def parse_sections(console: str, agent: int | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Pure: (sections whose line count and checksum check out, {name: problem} for the rest).
    `agent`: the protocol version to hold the console to (None: as its banner says).

    Xen's lines are dropped first: its console is muxed into the same serial line.
    A later good copy of a section (a resend) replaces a broken earlier one.
    """
    agent = agent_version(console) if agent is None else agent
    want_checksum = agent >= protocol.CHECKSUMS_FROM_AGENT
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
            text = "\n".join(body) + ("\n" if body else "")
            if m.group(2) is not None and int(m.group(2)) != len(body):
                problems[current] = f"agent sent {m.group(2)} lines, console delivered {len(body)}"
            elif want_checksum and (m.group(2) is None or m.group(3) is None):
                problems[current] = "no line count or sha256 on the END line (console garbled)"
            elif m.group(3) is not None and digest(text) != m.group(3):
                problems[current] = (f"sha256 differs: dom0 sent {m.group(3)[:12]}..., console delivered "
                                     f"{digest(text)[:12]}... (a character was altered)")
            else:
                found[current] = text
                problems.pop(current, None)
            current = None
        elif line.startswith("(XEN)"):
            continue
        elif _BEGIN.match(line):  # a new section began: the END of the last one was lost
            problems[current] = f"no {protocol.END} marker (console garbled)"
            current, body = _BEGIN.match(line).group(1), []
        else:
            body.append(line)
    if current is not None:
        problems[current] = f"no {protocol.END} marker (console cut off)"
    return found, problems


def check_whole(found: dict[str, str], required: tuple[str, ...],
                problems: dict[str, str] | None = None) -> Collected:
    """Collected, or a CollectError naming every section that is missing, broken or
    empty: an empty dmesg or PCI list is a failed collection, never data."""
    problems = dict(problems or {})
    for name in required:
        if name not in found and name not in problems:
            problems[name] = "missing"
        elif name in found and not found[name].strip():
            problems[name] = "empty (the agent's command printed nothing)"
    if problems:
        raise CollectError("; ".join(f"section {n}: {p}" for n, p in sorted(problems.items())))
    return Collected(found)


def sections(console: str, required: tuple[str, ...] | None = None, agent: int | None = None) -> Collected:
    """Every required section from a finished console log, or a CollectError: we never
    judge partial data. `agent` as in parse_sections; `required`: default, its sections."""
    agent = agent_version(console) if agent is None else agent
    found, problems = parse_sections(console, agent)
    return check_whole(found, required_sections(agent) if required is None else required, problems)


RESEND_ATTEMPTS = 3


def gather(console, transcript, required: tuple[str, ...] = REQUIRED, timeout: float = 120.0,
           agent: int = AGENT_VERSION) -> Collected:
    """Sections from the live console of the agent this rig ships, asking it to resend
    any that came back garbled or missing (up to RESEND_ATTEMPTS times each)."""
    for _ in range(RESEND_ATTEMPTS):
        found, problems = parse_sections(transcript.text, agent)
        broken = sorted(set(problems) | {n for n in required if n not in found})
        if not broken:
            break
        for name in broken:
            console.sendline(protocol.command(protocol.RESEND, name))
            console.expect(re.escape(protocol.DONE), timeout=timeout)
    return sections(transcript.text, required, agent)


ARTEFACT_FILES = {name: f"{name}.txt" for name in protocol.SECTIONS}   # section -> file in the run directory


def save(collected: Collected, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, filename in ARTEFACT_FILES.items():
        if name in collected.sections:
            (run_dir / filename).write_text(collected.sections[name])
