"""rig soak's counting, from round directories shaped as `rig run` writes them."""

import json

import pytest

from rig.run import soak
from rig.errors import InputError
from tests.conftest import make_result


def _round(base, n, results, planned=None):
    d = base / f"round-{n:03d}"
    d.mkdir(parents=True)
    ids = []
    for r in results:
        job = f"s[seabios-512M-{r['kernel_role']}]"
        ids.append(job)
        (d / r["kernel_role"]).mkdir()
        (d / r["kernel_role"] / "result.json").write_text(make_result(job=job, **r).model_dump_json())
    (d / "jobs.json").write_text(json.dumps({"planned": planned or ids, "matrix": planned or ids, "shard": None}))


def _r(role, verdict, total=30.0, failure=None, failed_attempts=()):
    return {"kernel_role": role, "kernel": f"k-{role}", "verdict": verdict, "failure": failure,
            "timings": {"total": total}, "failed_attempts": list(failed_attempts)}


def test_counts_per_kernel_with_failure_classes_and_times(tmp_path):
    _round(tmp_path, 1, [_r("a", "pass", 30), _r("b", "pass", 40)])
    _round(tmp_path, 2, [_r("a", "error", 12, "dom0-triple-fault"), _r("b", "fail", 42)])
    _round(tmp_path, 3, [_r("a", "pass", 34, failed_attempts=[{"error": "hang at stage dom0", "failure": "hang", "stage_reached": "dom0",
                                               "run_dir": "x"}]),
                         _r("b", "pass", 38)])
    t = soak.summarize(tmp_path)
    a, b = t["s[seabios-512M-a]"].as_dict(), t["s[seabios-512M-b]"].as_dict()
    # a: 2 passes, the triple fault and the retried hang are 2 errors; a failed boot's time is not a boot time.
    assert (a["boots"], a["outcomes"], a["failures"]) == (4, {"pass": 2, "error": 2},
                                                          {"dom0-triple-fault": 1, "hang": 1})
    assert a["seconds"]["median"] == 32.0 and (a["seconds"]["min"], a["seconds"]["max"]) == (30, 34)
    assert a["examples"]["dom0-triple-fault"].endswith("round-002/a")
    assert (b["boots"], b["outcomes"], b["seconds"]["median"]) == (3, {"pass": 2, "fail": 1}, 40)
    text = "\n".join(soak.lines(t))
    assert "s[seabios-512M-a] (k-a): 4 boots: 2 error, 2 pass; median 32.0 s" in text
    assert "  dom0-triple-fault: 1 (first: " in text
    assert soak.exit_code(t) == 3   # a flake is an error: the weekly job shows it


def test_all_verdicts_exit_0_and_nothing_counted_is_never_green(tmp_path):
    _round(tmp_path, 1, [_r("a", "pass"), _r("b", "fail")])
    assert soak.exit_code(soak.summarize(tmp_path)) == 0
    assert soak.exit_code({}) == 3


def test_an_interrupted_round_is_not_a_flake(tmp_path):
    _round(tmp_path, 1, [_r("a", "pass"), _r("b", "pass")])
    _round(tmp_path, 2, [_r("a", "pass")], planned=["s[seabios-512M-a]", "s[seabios-512M-b]"])
    (tmp_path / "round-002" / "interrupted").touch()
    b = soak.summarize(tmp_path)["s[seabios-512M-b]"].as_dict()
    assert (b["boots"], b["outcomes"]) == (1, {"pass": 1, "interrupted": 1})


def test_an_unreadable_result_is_an_error_not_a_crash(tmp_path):
    _round(tmp_path, 1, [_r("a", "pass")])
    (tmp_path / "round-001" / "a" / "result.json").write_text("{garbled")
    (t,) = soak.summarize(tmp_path).values()
    assert t.outcomes == {"error": 1} and t.failures == {"no-result": 1}


def test_a_planned_job_without_result_is_counted_as_no_result(tmp_path):
    _round(tmp_path, 1, [_r("a", "pass"), _r("b", "pass")])
    _round(tmp_path, 2, [_r("a", "pass")], planned=["s[seabios-512M-a]", "s[seabios-512M-b]"])
    b = soak.summarize(tmp_path)["s[seabios-512M-b]"].as_dict()
    assert (b["boots"], b["failures"]) == (2, {"no-result": 1})


def test_not_a_soak_directory(tmp_path):
    with pytest.raises(InputError, match="not a soak"):
        soak.summarize(tmp_path)
