import json

import pytest

from rig import cli
from rig.report import compare
from rig.errors import InputError
from tests.conftest import make_result

A, B, C = "a[seabios-512M-unpatched]", "a[seabios-512M-patched]", "c[seabios-512M-unpatched]"


def _run(tmp_path, results: dict[str, str], planned=None, matrix=None, name="run"):
    """A run directory as `rig matrix` leaves it: jobs.json first, then one result.json per job."""
    run = tmp_path / name
    run.mkdir()
    planned = list(results) if planned is None else planned
    compare.write_plan(run, planned, planned if matrix is None else matrix, None)
    for i, (job, verdict) in enumerate(results.items()):
        (run / str(i)).mkdir()
        (run / str(i) / "result.json").write_text(make_result(job=job, verdict=verdict).model_dump_json())
    return run


def test_changes_in_both_directions_and_new_jobs(tmp_path):
    baseline = {A: "pass", B: "error"}
    run = compare.read_runs([_run(tmp_path, {A: "fail", B: "pass", C: "pass"})])
    assert compare.changes(baseline, run) == [
        f"{B}: error -> pass",
        f"{A}: pass -> fail",
        f"{C}: new job, verdict pass (add it to the baseline)"]


def test_a_known_error_that_stays_an_error_is_no_change(tmp_path):
    assert compare.changes({A: "error"}, compare.read_runs([_run(tmp_path, {A: "error"})])) == []


def test_a_planned_job_without_a_result_is_missing(tmp_path):
    # The run crashed after booting A: B was planned, never judged. Never green.
    run = compare.read_runs([_run(tmp_path, {A: "pass"}, planned=[A, B])])
    assert compare.changes({A: "pass", B: "pass"}, run) == [
        f"{B}: pass -> missing (planned, but the run has no result for it)"]


def test_other_shards_jobs_are_not_missing_but_a_vanished_scenario_is(tmp_path):
    # Shard 1/2 planned A only; B is in the matrix (the other shard); C is in the baseline
    # but in no scenario of the run: the scenario was removed or renamed.
    run = compare.read_runs([_run(tmp_path, {A: "pass"}, planned=[A], matrix=[A, B])])
    assert compare.changes({A: "pass", B: "pass", C: "pass"}, run) == [
        f"{C}: pass -> missing (not in the run's matrix: scenario or variant gone?)"]
    # --partial: a subset of scenarios was run on purpose.
    assert compare.changes({A: "pass", B: "pass", C: "pass"}, run, partial=True) == []


def test_cli_compare_exit_codes(tmp_path, capsys):
    run = _run(tmp_path, {"j": "pass"})
    base = tmp_path / "b.json"
    base.write_text(json.dumps({"j": "pass"}))
    assert cli.main(["compare", str(base), str(run)]) == 0
    base.write_text(json.dumps({"j": "error"}))
    assert cli.main(["compare", str(base), str(run)]) == 1
    assert "j: error -> pass" in capsys.readouterr().out


@pytest.mark.parametrize("make", ["absent", "empty", "garbled"])
def test_an_empty_absent_or_garbled_run_never_compares_green(tmp_path, capsys, make):
    base = tmp_path / "b.json"
    base.write_text(json.dumps({"j": "pass"}))
    run = tmp_path / "run"
    if make != "absent":
        run.mkdir()
    if make == "garbled":  # the rig died while writing it
        (run / "result.json").write_text('{"job": "j", "verd')
    assert cli.main(["compare", str(base), str(run)]) == 3
    err = capsys.readouterr().err
    assert str(run) in err and err.count("\n") == 1


def test_an_empty_plan_is_nothing_to_compare(tmp_path, capsys):
    base = tmp_path / "b.json"
    base.write_text(json.dumps({"j": "pass"}))
    assert cli.main(["compare", str(base), str(_run(tmp_path, {}))]) == 3
    assert "nothing to compare" in capsys.readouterr().err


def test_bad_baseline(tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text('{"j": "green"}')
    with pytest.raises(InputError, match="pass | fail | error"):
        compare.load_baseline(bad)
    bad.write_text('{}')
    with pytest.raises(InputError, match="non-empty"):
        compare.load_baseline(bad)


def test_a_known_error_of_a_named_class_must_stay_that_class(tmp_path):
    run = _run(tmp_path, {A: "error"})
    (tmp_path / "run" / "0" / "result.json").write_text(
        make_result(job=A, verdict="error", failure="internal").model_dump_json())
    contents = compare.read_runs([run])
    assert compare.changes({A: "error:xen-panic"}, contents) == [f"{A}: error:xen-panic -> error:internal"]
    assert compare.changes({A: "error"}, contents) == []          # any error, as the baseline says
