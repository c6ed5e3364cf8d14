"""Evidence that comes back wrong from dom0 (fault points of the agent, `rig.fault=` on
dom0's command line), and dom0's SSH server dying mid-collection."""

import pytest

from rig.guest.collect import RESEND_ATTEMPTS
from tests.conftest import read_console
from tests.faults.conftest import assert_error_kept, run_faulted, scenario_with_dom0_cmdline
from tests.integration.conftest import processes_mentioning

pytestmark = [pytest.mark.boot, pytest.mark.faults]


def test_garbled_section_with_the_right_line_count_is_refused(tmp_path):
    # Every digit of iomem changed on the wire, each time the rig asks again: the line
    # count still matches, the sha256 does not, so nothing is judged. The agent sent
    # everything (@@RIG-DONE), so the stage is "collected"; the evidence is what failed.
    scenario = scenario_with_dom0_cmdline(tmp_path, "rig.fault=garble:iomem")
    run = run_faulted(tmp_path, "--collect", "serial", scenario=scenario)
    r = assert_error_kept(run, "collected", "collect")
    assert "iomem" in r["error"] and "sha256" in r["error"], r["error"]
    serial = read_console(run.out / "unpatched" / "serial.log")
    assert serial.count("@@RIG-BEGIN iomem") == 1 + RESEND_ATTEMPTS   # asked again, refused again
    assert not (run.out / "unpatched" / "iomem.txt").exists()


@pytest.mark.parametrize("collect_via, stage", [("auto", "userspace"), ("serial", "collected")])
def test_empty_section_is_refused(tmp_path, collect_via, stage):
    # Over SSH the sections are refused before the agent is told the rig is done (stage
    # userspace); over the console the agent has sent them all (stage collected).
    scenario = scenario_with_dom0_cmdline(tmp_path, "rig.fault=empty:e820")
    run = run_faulted(tmp_path, "--collect", collect_via, scenario=scenario)
    r = assert_error_kept(run, stage, "collect")
    assert "e820" in r["error"] and "empty" in r["error"], r["error"]
    assert r["collected_via"] is None


def test_ssh_server_killed_mid_collection_hands_over_to_the_console(tmp_path):
    scenario = scenario_with_dom0_cmdline(tmp_path, "rig.fault=kill-sshd")
    run = run_faulted(tmp_path, scenario=scenario)
    r = run.result()
    # The server died as the rig's first SSH command started (the agent says so on the
    # console); the console took over, the boot is judged as usual, and result.json says why.
    assert "@@RIG-FAULT kill-sshd" in read_console(run.out / "unpatched" / "serial.log")
    assert (run.returncode, r["verdict"], r["collected_via"]) == (0, "pass", "serial"), run.said
    assert r["ssh"]["offered"] and "no tar archive" in r["ssh"]["error"], r["ssh"]
    assert "Traceback" not in run.said
    assert processes_mentioning(str(run.out)) == []
