"""The JUnit writer: test names are job ids (as the pytest plugin's items), errors never counted as failures."""

import xml.etree.ElementTree as ET

from rig import report
from tests.conftest import make_result


def _result(verdict, checks, error=None, firmware="seabios"):
    return make_result(firmware=firmware, verdict=verdict, checks=checks, error=error, timings={"total": 12.5},
                       kernel_release="6.1.0", stage_reached="collected", run_dir="/x")


def test_junit_cases_failures_and_errors(tmp_path):
    results = [_result("fail", [{"name": "relocations", "passed": False, "detail": "want none, got 1"},
                                {"name": "xen_scratch", "passed": True, "detail": "ok"}]),
               _result("error", [], error="hang at stage dom0", firmware="ovmf")]
    root = ET.parse(report.junit(results, tmp_path / "j.xml")).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    names = [c.get("name") for c in root.iter("testcase")]
    assert names == ["s[seabios-512M-unpatched]::relocations", "s[seabios-512M-unpatched]::xen_scratch",
                     "s[ovmf-512M-unpatched]::boot"]
    (err,) = root.iter("error")
    assert err.get("message") == "hang at stage dom0"


def test_outcome_tells_the_three_same_base_states_apart():
    from rig.report import outcome
    base = outcome(0, [(0x100000000, 0x107FFFFFF)], [{"device": "0000:00:01.0"}])
    only_balloon = outcome(393087, [(0x100000000, 0x107FFFFFF)], [])
    fixed = outcome(393087, [], [])
    assert (base["unusable_converted"], base["xen_scratch_in_holes"], base["relocated"]) == (False, True, 1)
    assert (only_balloon["unusable_converted"], only_balloon["xen_scratch_in_holes"]) == (True, True)
    assert (fixed["unusable_converted"], fixed["xen_scratch_in_holes"], fixed["relocated"]) == (True, False, 0)
    assert len({base["summary"], only_balloon["summary"], fixed["summary"]}) == 3


def test_the_matrix_has_a_row_per_host_variant_and_a_column_per_xen_and_kernel():
    import re
    from pathlib import Path
    from rig.report import html
    moved = dict(device="0000:00:01.0", resource="BAR 2", firmware=(0x100000000, 0x13FFFFFFF),
                 final=(0x140000000, 0x17FFFFFFF), cause="xen-scratch", root_cause="xen-scratch", evidence=[])
    runs = [(Path("a"), make_result(xen=dict(version="4.17.7", cmdline=None, dom0=None, panic=None),
                                    relocations=[moved])),
            (Path("b"), make_result(xen=dict(version="4.20.5-pre", cmdline=None, dom0=None, panic=None),
                                    kernel="debian-13-bpo-7", kernel_role="patched")),
            (Path("c"), make_result(xen=dict(version="4.20.5-pre", cmdline=None, dom0=None, panic=None),
                                    dom0_mem="1G", verdict="error", failure="dom0-halt", error="dom0 halted"))]
    anchors = {html._host_key(r): f"host-{i}" for i, (_, r) in enumerate(runs)}
    table = html.matrix_table(runs, anchors)
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    assert [re.search(r"<th>(.*?)</th>", r).group(1) for r in rows[1:]] == ["s / seabios / 512M", "s / seabios / 1G"]
    heads = re.findall(r"<th>(Xen.*?)</th>", rows[0])
    assert heads == ["Xen 4.17.7<br>debian-6.1", "Xen 4.20.5-pre<br>debian-6.1", "Xen 4.20.5-pre<br>debian-13-bpo-7"]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[1])
    assert 'href="#host-0">pass' in cells[0] and "00:01.0 BAR 2 0x100000000→0x140000000" in cells[0]
    assert cells[1] == "" and "nothing moved" in cells[2]
    assert '<td class="error"><a href="#host-2">error</a><div class="moved">dom0-halt</div></td>' in rows[2]


def test_a_bisect_heads_the_page_and_each_step_links_its_own_map(tmp_path):
    """Two steps, two boots: each step's row links the anchor of the h3 above that step's
    map (not the other's), and the answer names the first commit."""
    import re
    from rig.report import html
    from rig.run.bisect import Bisect, Step
    dirs = [tmp_path / "aaaa" / "patched", tmp_path / "bbbb" / "patched"]
    for d, kernel in zip(dirs, ("built:bisect-aaaa", "built:bisect-bbbb")):
        d.mkdir(parents=True)
        make_result(kernel=kernel, kernel_role="patched", run_dir=str(d)).write(d)
    b = Bisect("/t", "1" * 40, "2" * 40, [Step("b" * 40, "second", "bad", "relocations held", 120.4, str(dirs[1])),
                                          Step("a" * 40, "first", "good", "relocations failed", 99.0, str(dirs[0]))],
               first={"commit": "b" * 40, "subject": "second"}, finished=True)
    page = html.render([tmp_path], b)
    assert "first commit that changes the verdict: bbbbbbbbbbbb second" in page
    rows = re.findall(r"<tr><td>(\d)</td><td><code>(\w+)</code>.*?href=\"#(run-\d)\"", page)
    assert [(n, c) for n, c, _ in rows] == [("1", "bbbbbbbbbbbb"), ("2", "aaaaaaaaaaaa")]
    for _, commit, anchor in rows:
        heading = re.search(rf'<h3 id="{anchor}">(.*?)</h3>', page).group(1)
        assert f"built:bisect-{commit[:4]}" in heading
    assert page.index("<h2>bisect") < page.index('<table class="matrix"><tr><th>scenario')


def test_a_xen_that_printed_no_version_still_gets_a_matrix_cell():
    """A boot that failed before Xen's banner (or whose banner was garbled) has xen.version
    None: the report says "?" instead of crashing the whole run's report."""
    from pathlib import Path
    from rig.report import html
    r = make_result(xen=dict(version=None, cmdline=None, dom0=None, panic=None), verdict="error",
                    failure="xen-panic", error="xen-panic at stage xen")
    table = html.matrix_table([(Path("a"), r)], {html._host_key(r): "host-0"})
    assert "<th>Xen ?<br>debian-6.1</th>" in table


def test_x86_and_arm64_rows_say_their_arch_when_side_by_side():
    from pathlib import Path
    from rig.report import html
    x86 = make_result()
    arm = make_result(scenario="arm64-s", arch="aarch64", firmware="none")
    runs = [(Path("a"), x86), (Path("b"), arm)]
    table = html.matrix_table(runs, {html._host_key(r): f"host-{i}" for i, (_, r) in enumerate(runs)})
    assert "<th>s / seabios / 512M (x86_64)</th>" in table and "<th>arm64-s / none / 512M (aarch64)</th>" in table
    assert "(x86_64)" not in html.matrix_table(runs[:1], {html._host_key(x86): "host-0"})
