import hashlib
from pathlib import Path

import pytest

from rig.guest import collect
from rig.errors import CollectError


def test_sections_from_capture(capture):
    found = collect.sections(capture("unpatched-6.1-testdev1G-relocated"), required=("dmesg", "iomem", "e820"))
    assert found["iomem"].splitlines()[0] == "00000000-00000fff : Reserved"
    assert "100000000-107ffffff : Xen scratch" in found["iomem"]
    assert all(not line.startswith("(XEN)") for line in found["dmesg"].splitlines())
    assert found["dmesg"].startswith("[    0.000000] Linux version 6.1.0-56-amd64")


def test_rig_run_has_every_section(run_data):
    found = collect.sections(run_data("bar-clash-64bit", "unpatched", "serial.log"))
    assert collect.agent_version(run_data("bar-clash-64bit", "unpatched", "serial.log")) == 1
    assert set(collect.SECTIONS_BY_AGENT[1]) <= set(found.sections)
    assert found["uname"].strip() == "6.1.0-56-amd64"


def test_interleaved_xen_line_is_dropped_and_count_still_matches():
    text = "@@RIG-BEGIN iomem\r\r\na\r\r\n(XEN) [1.0] noise\r\nb\r\r\n@@RIG-END iomem 2\r\r\n"
    assert collect.sections(text, required=("iomem",))["iomem"] == "a\nb\n"


def test_line_count_mismatch_is_an_error():
    with pytest.raises(CollectError, match="iomem: agent sent 3 lines, console delivered 2"):
        collect.sections("@@RIG-BEGIN iomem\na\nb\n@@RIG-END iomem 3\n", required=("iomem",))


def test_cut_off_section_is_an_error():
    with pytest.raises(CollectError, match="no @@RIG-END"):
        collect.sections("@@RIG-BEGIN dmesg\na\n", required=("dmesg",))


def test_missing_section_is_an_error():
    with pytest.raises(CollectError, match="section e820: missing"):
        collect.sections("@@RIG-BEGIN iomem\na\n@@RIG-END iomem 1\n", required=("iomem", "e820"))


def test_a_resent_section_replaces_the_garbled_one():
    text = ("@@RIG-BEGIN dmesg\nconsolle\n[ 5.69@@RIG-END dmesg 2\n@@RIG-DONE\nresend dmesg\n"
            "@@RIG-BEGIN dmesg\nconsole\n[ 5.69] x\n@@RIG-END dmesg 2\n@@RIG-DONE\n")
    found, problems = collect.parse_sections(text)
    assert problems == {} and found["dmesg"] == "console\n[ 5.69] x\n"


def test_lost_end_marker_is_noticed_at_the_next_begin():
    found, problems = collect.parse_sections("@@RIG-BEGIN a\nx\n@@RIG-BEGIN b\ny\n@@RIG-END b 1\n")
    assert found == {"b": "y\n"} and "a" in problems


class _FakeAgent:
    """Stands in for the console: answers 'resend NAME' with a clean copy (pure logic test)."""

    def __init__(self, transcript, clean):
        self.transcript, self.clean, self.asked = transcript, clean, []

    def sendline(self, line):
        name = line.split()[1]
        self.asked.append(name)
        self.transcript.write(f"{line}\n" + _section(name, self.clean[name]) + "@@RIG-DONE\n")

    def expect(self, pattern, timeout):
        return 0


def test_gather_asks_for_what_is_broken_or_missing():
    from rig.guest.console import Transcript
    t = Transcript()
    t.write("@@RIG-AGENT 3 6.1\n@@RIG-BEGIN iomem\na\n@@RIG-END iomem 2\n@@RIG-DONE\n")
    agent = _FakeAgent(t, {"iomem": "a\nb\n", "e820": "x\n"})
    got = collect.gather(agent, t, required=("iomem", "e820"))
    assert sorted(agent.asked) == ["e820", "iomem"]
    assert got["iomem"] == "a\nb\n" and got["e820"] == "x\n"


def test_a_real_garbled_pv_console_is_reported_not_judged(run_data):
    # A PV dom0 console that dropped characters three times over, resends included.
    with pytest.raises(CollectError, match="section dmesg"):
        collect.sections(run_data("pv-dom0-garbled", "patched", "serial.log"))


def _section(name, body, sha=None):
    """A section as agent 3 prints it: line count and the sha256 dom0 computed."""
    return (f"@@RIG-BEGIN {name}\n{body}@@RIG-END {name} {body.count(chr(10))} "
            f"{sha or hashlib.sha256(body.encode()).hexdigest()}\n")


BAR_LINE = "0000:00:01.0 2 0x0000000100000000 0x000000013fffffff 0x000000000014220c 13\n"


def test_an_altered_hex_digit_with_the_same_line_count_is_refused():
    # The console turned one digit of the default BAR's line into another: same length, same
    # line count. Judged, it would read "moved 0x100000000->0x500000000".
    sent = hashlib.sha256(BAR_LINE.encode()).hexdigest()
    delivered = BAR_LINE.replace("0x0000000100000000", "0x0000000500000000")
    text = "@@RIG-AGENT 3 6.1\n" + _section("pci-resources", delivered, sha=sent)
    found, problems = collect.parse_sections(text)
    assert "pci-resources" not in found
    assert problems["pci-resources"].startswith("sha256 differs")
    with pytest.raises(CollectError, match="section pci-resources: sha256 differs"):
        collect.sections(text, required=("pci-resources",))


def test_agent_3_without_a_checksum_is_refused_and_older_agents_are_held_to_their_protocol():
    bare = "@@RIG-BEGIN iomem\na\n@@RIG-END iomem 1\n"
    assert collect.parse_sections("@@RIG-AGENT 3 6.1\n" + bare)[1] == {
        "iomem": "no line count or sha256 on the END line (console garbled)"}
    # A hash without its line count (the count lost on the console) is refused too.
    sha = hashlib.sha256(b"a\n").hexdigest()
    no_count = f"@@RIG-AGENT 3 6.1\n@@RIG-BEGIN iomem\na\n@@RIG-END iomem {sha}\n"
    assert "iomem" in collect.parse_sections(no_count)[1]
    assert collect.parse_sections("@@RIG-AGENT 2 6.1\n" + bare)[0] == {"iomem": "a\n"}
    # Live collection holds the console to the agent the rig ships, whatever the log claims.
    assert "iomem" in collect.parse_sections("@@RIG-AGENT 2 6.1\n" + bare, agent=collect.AGENT_VERSION)[1]


def test_an_empty_required_section_is_a_collection_error_not_data():
    # An empty pci-resources made every firmware BAR look "left unassigned".
    text = "@@RIG-AGENT 3 6.1\n" + _section("pci-resources", "") + _section("iomem", "a\n")
    with pytest.raises(CollectError, match="section pci-resources: empty"):
        collect.sections(text, required=("pci-resources", "iomem"))


def test_gather_resends_an_altered_section_and_takes_the_clean_copy():
    from rig.guest.console import Transcript
    t = Transcript()
    altered = BAR_LINE.replace("0x0000000100000000", "0x0000000500000000")
    t.write("@@RIG-AGENT 3 6.1\n" + _section("pci-resources", altered, sha=hashlib.sha256(BAR_LINE.encode()).hexdigest()))
    agent = _FakeAgent(t, {"pci-resources": BAR_LINE})
    got = collect.gather(agent, t, required=("pci-resources",))
    assert agent.asked == ["pci-resources"] and got["pci-resources"] == BAR_LINE


def test_agent_steps_from_a_real_console():
    """The marks of a real boot (agent 3 with step marks): the first is dom0's uptime when the
    agent started, the others the seconds between consecutive marks."""
    text = (Path(__file__).parents[1] / "data/runs/agent-steps/serial.log").read_bytes().decode(errors="replace")
    steps = collect.agent_steps(text)
    assert list(steps)[:3] == ["start", "modules", "nic"]
    assert steps["start"] == 10.7            # @@RIG-STEP start 10.70
    assert steps["modules"] == 0.95          # 11.65 - 10.70
    assert list(steps)[-2:] == ["link", "sshd"]


def test_a_garbled_step_mark_is_skipped_not_guessed():
    text = "@@RIG-STEP start 5.00\n@@RIG-STEP modules 5.5x\n@@RIG-STEP nic 6.25\r\n"
    assert collect.agent_steps(text) == {"start": 5.0, "nic": 1.25}
