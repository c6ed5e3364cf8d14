import json

import pytest

from rig import cli, compare
from rig.errors import InputError


def test_changes_in_both_directions_and_new_jobs():
    baseline = {"a[seabios-512M-unpatched]": "pass", "b[seabios-512M-unpatched]": "error", "c[x]": "pass"}
    current = {"a[seabios-512M-unpatched]": "fail", "b[seabios-512M-unpatched]": "pass", "d[x]": "pass"}
    assert compare.changes(baseline, current) == [
        "a[seabios-512M-unpatched]: pass -> fail",
        "b[seabios-512M-unpatched]: error -> pass",
        "d[x]: new job, verdict pass (add it to the baseline)"]


def test_a_known_error_that_stays_an_error_is_no_change():
    assert compare.changes({"x": "error"}, {"x": "error"}) == []


def test_cli_compare_exit_codes(tmp_path, capsys):
    run = tmp_path / "run" / "j"
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps({"job": "j", "verdict": "pass"}))
    base = tmp_path / "b.json"
    base.write_text(json.dumps({"j": "pass"}))
    assert cli.main(["compare", str(base), str(tmp_path / "run")]) == 0
    base.write_text(json.dumps({"j": "error"}))
    assert cli.main(["compare", str(base), str(tmp_path / "run")]) == 1
    assert "j: error -> pass" in capsys.readouterr().out


def test_bad_baseline(tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text('{"j": "green"}')
    with pytest.raises(InputError, match="pass | fail | error"):
        compare.load_baseline(bad)
