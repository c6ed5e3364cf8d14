"""The agent (guests/agent/init) speaks exactly rig/guest/protocol.py, and the rig spells the
protocol nowhere else."""

import ast
import re
from pathlib import Path

import pytest

from rig.guest import protocol

ROOT = Path(__file__).resolve().parents[2]
AGENT = (ROOT / "guests" / "agent" / "init").read_text()


def test_the_agent_prints_exactly_the_protocols_markers():
    printed = set(re.findall(r"@@RIG-[A-Z]+(?:-[A-Z]+)*", AGENT))
    assert printed == set(protocol.MARKERS)


def test_the_agent_announces_the_protocols_version():
    (version,) = re.findall(r'echo "' + re.escape(protocol.AGENT) + r' (\d+) ', AGENT)
    assert int(version) == protocol.AGENT_VERSION


def test_the_agent_snapshots_and_sends_exactly_the_protocols_sections():
    (listed,) = re.findall(r'^SECTIONS="([^"]*)"$', AGENT, re.MULTILINE)
    assert tuple(listed.split()) == protocol.SECTIONS     # the order collect prints them in
    snapshotted = re.findall(r"^snapshot (\S+) ", AGENT, re.MULTILINE)
    assert sorted(snapshotted) == sorted(protocol.SECTIONS)


def test_the_agent_takes_exactly_the_protocols_commands():
    loop = AGENT[AGENT.index("while read $timeout command arg; do"):]
    loop = loop[:loop.index("\ndone\n")]
    labels = re.findall(r"^ {8}([a-z]+)\)", loop, re.MULTILINE)
    assert sorted(labels) == sorted(protocol.COMMANDS)
    assert "        *) break ;;" in loop            # anything else: power-off


def test_the_agent_makes_exactly_the_protocols_extras_where_it_says():
    made = set(re.findall(re.escape(f"{protocol.RUN_DIR}/{protocol.EXTRAS_DIR}/") + r"([a-z-]+)", AGENT))
    assert made == set(protocol.EXTRAS)


def test_the_agents_silence_limit_is_the_protocols():
    (seconds,) = re.findall(r"RIG_POWEROFF_TIMEOUT:-(\d+)", AGENT)
    assert int(seconds) == protocol.SILENCE_SECONDS


def test_only_commands_of_the_protocol_can_be_sent():
    assert protocol.command(protocol.RESEND, "iomem") == "resend iomem"
    with pytest.raises(ValueError, match="not an agent command: 'reboot'"):
        protocol.command("reboot")


def _string_literals(path: Path):
    """String constants in code, docstrings left out (they may quote the protocol)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_no_module_but_the_protocol_spells_a_marker():
    spelled = [f"{path.relative_to(ROOT)}:{line}" for path in sorted((ROOT / "rig").rglob("*.py"))
               if path.name != "protocol.py"
               for line, text in _string_literals(path) if "@@RIG-" in text]
    assert spelled == []
