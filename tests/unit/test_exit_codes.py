"""Exit codes mean what the README says: 0 held, 1 an expectation failed (every job judged),
2 bad input, 3 error (never read as a pass or a fail), 130 interrupted."""

import pexpect
import pytest

from rig import cli, report
from rig.errors import InputError
from rig.run import batch
from rig.checks import verdict
from tests.conftest import make_result


def _r(verdict):
    return make_result(verdict=verdict)


def test_exit_codes():
    assert batch.exit_code([_r("pass"), _r("pass")]) == 0
    assert batch.exit_code([_r("pass"), _r("fail")]) == 1
    # An error outranks a failure: a boot that did not happen must never read as a verdict.
    assert batch.exit_code([_r("fail"), _r("error")]) == 3
    assert batch.exit_code([]) == 3
    assert batch.exit_code([_r("unjudged"), _r("fail")]) == 1
    assert batch.exit_code([_r("unjudged"), _r("error")]) == 3


def test_a_role_with_no_expectations_is_unjudged_not_pass():
    assert verdict.verdict(None, []) == "unjudged"
    assert verdict.verdict(None, [verdict.Check("relocations", True, "")]) == "pass"
    assert verdict.verdict("hang at stage dom0", []) == "error"
    assert report.verdict_counts([_r("pass"), _r("unjudged")]) == "jobs: 1 pass, 0 fail, 0 error, 1 unjudged"


def test_unjudged_is_skipped_in_junit_not_passed(tmp_path):
    r = make_result(verdict="unjudged", checks=[], timings={"total": 1.0})
    text = report.junit([r], tmp_path / "j.xml").read_text()
    assert 'skipped="1"' in text and "<skipped" in text and 'failures="0"' in text


def _boom(args):
    raise ValueError("a parser met a line it did not expect")


def test_an_unexpected_exception_is_exit_3_with_one_line_and_a_saved_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "cmd_run", _boom)
    assert cli.main(["run", "x.toml", "--out", str(tmp_path)]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err                      # one line, no traceback on the terminal
    assert err.startswith("rig: internal error: ValueError: a parser met a line it did not expect (traceback: ")
    saved = err.rsplit("traceback: ", 1)[1].rstrip(")")
    assert saved.startswith(str(tmp_path)) and "_boom" in open(saved).read()


def test_an_unwritable_out_still_gives_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "cmd_run", _boom)
    assert cli.main(["run", "x.toml", "--out", str(tmp_path / "does-not-exist")]) == 3
    err = capsys.readouterr().err
    assert "internal error: ValueError" in err and "/rig-traceback-" in err


class _BrokenHost:
    """A host whose start fails the way a bug or the machine does (not a RigError)."""

    def __init__(self, exc):
        self.exc = exc

    def __enter__(self):
        raise self.exc

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("exc, failure", [(ValueError("bad"), "internal"), (OSError(28, "No space left on device"),
                                                                            "internal"),
                                          (pexpect.TIMEOUT("t"), "hang"), (pexpect.EOF("e"), "qemu-exit")])
def test_an_unexpected_exception_in_a_boot_is_that_jobs_error_with_its_traceback(tmp_path, monkeypatch, exc, failure):
    from rig.run import single
    from tests.unit.test_libvirt_xml import _plan
    monkeypatch.setattr(single, "open_host", lambda backend, plan, run_dir: _BrokenHost(exc))
    b = single.boot(_plan(), "unpatched", None, tmp_path / "job")
    assert (b.failure, b.stage_reached) == (failure, "firmware")
    assert "at stage firmware" in b.error and "\n" not in b.error
    assert f"(traceback: {tmp_path / 'job' / 'traceback.txt'})" in b.error
    assert type(exc).__name__ in (tmp_path / "job" / "traceback.txt").read_text()


def test_interrupted_still_unwinds_a_boot(tmp_path, monkeypatch):
    from rig.run import single
    from rig.errors import Interrupted
    from tests.unit.test_libvirt_xml import _plan
    monkeypatch.setattr(single, "open_host", lambda backend, plan, run_dir: _BrokenHost(Interrupted("stop")))
    with pytest.raises(Interrupted):
        single.boot(_plan(), "unpatched", None, tmp_path / "job")


def test_the_monitor_limit_follows_the_timeout_scale_down_to_5_s():
    from rig.run.single import qmp_limit
    assert [qmp_limit(s) for s in (0.05, 0.1, 0.2, 0.5, 3)] == [5.0, 5.0, 6.0, 15.0, 90.0]


@pytest.mark.parametrize("command", ["run", "shell", "matrix"])
@pytest.mark.parametrize("option, value, says", [("--timeout-scale", "0", "--timeout-scale 0.0: must be positive"),
                                                 ("--timeout-scale", "-1", "--timeout-scale -1.0: must be positive")])
def test_a_bad_option_is_refused_the_same_by_every_command(capsys, command, option, value, says):
    from pathlib import Path
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "bar-clash-64bit.toml"
    assert cli.main([command, str(scenario), option, value]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


@pytest.mark.parametrize("option, value, says", [("--retries", "-1", "--retries -1: must be 0 or more"),
                                                 ("--workers", "-2", "--workers -2: must be 0")])
def test_bad_run_options_are_one_line_exit_2(capsys, option, value, says):
    from pathlib import Path
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "bar-clash-64bit.toml"
    assert cli.main(["run", str(scenario), option, value]) == 2
    assert says in capsys.readouterr().err


def test_xen_is_a_name_or_a_file_else_one_line_exit_2(tmp_path, capsys):
    from pathlib import Path
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "bar-clash-64bit.toml"
    assert cli._xen("4.20") == ("4.20", None)
    hypervisor = tmp_path / "xen.gz"
    hypervisor.write_bytes(b"\x1f\x8b")
    assert cli._xen(str(hypervisor)) == (None, hypervisor)
    assert cli.main(["run", str(scenario), "--xen", "4.19"]) == 2
    err = capsys.readouterr().err
    assert "--xen 4.19: neither a Xen name (4.17, 4.20) nor a file" in err and err.count("\n") == 1


def test_a_scenario_naming_an_unknown_xen_is_refused_naming_file_and_key(tmp_path, capsys):
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "scenarios" / "bar-clash-64bit.toml").read_text()
    assert "\n[xen]\n" in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("\n[xen]\n", '\n[xen]\nversion = "4.19"\n', 1))
    assert cli.main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "xen.version" in err and "unknown Xen '4.19'" in err and err.count("\n") == 1


def test_a_user_hypervisor_is_never_filed_under_a_debian_xen(tmp_path):
    from pathlib import Path
    from rig.spec import matrix, scenario as scenario_mod
    s = scenario_mod.load(Path(__file__).resolve().parents[2] / "scenarios" / "bar-clash-64bit.toml")
    user = batch.with_xen(s, batch.Options(user_xen=tmp_path / "xen.gz"))
    assert matrix.expand([user])[0].id == "bar-clash-64bit[xenuser-seabios-512M-unpatched]"
    named = s.model_copy(update={"xen": s.xen.model_copy(update={"version": "4.20"})})
    with pytest.raises(InputError, match=r"names Xen 4.20 \(xen.version\); a user hypervisor boots only"):
        batch.with_xen(named, batch.Options(user_xen=tmp_path / "xen.gz"))


def test_validate_refuses_an_unknown_xen_as_run_does(tmp_path, capsys):
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "scenarios" / "bar-clash-64bit.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("\n[xen]\n", '\n[xen]\nversion = "4.19"\n', 1))
    assert cli.main(["validate", str(bad)]) == 2
    assert "xen.version" in capsys.readouterr().err


def test_a_result_that_breaks_its_schema_errs_its_job_not_the_run(tmp_path):
    """What judging builds is checked by result.json's schema; a bug that breaks it must leave
    an error for that job (exit 3 for the run, the other jobs judged), not a crashed rig."""
    from rig.artefacts.archive import GuestTools
    from rig.artefacts.store import Artefact
    from rig.run import batch, single
    from rig.spec import matrix, plan as plan_mod, scenario as scenario_mod
    s = scenario_mod.Scenario(name="s", kernels={"unpatched": "debian-6.1"})
    (job,) = matrix.expand([s], flat=True)
    art_file = Artefact("k", tmp_path / "k", "0" * 64, "debian:k=1", "1")
    plan = plan_mod.make(job.scenario, "unpatched", "tcg", xen=tmp_path / "x", kernel=tmp_path / "k",
                         initrd=tmp_path / "i")
    boot = single.KernelBoot("unpatched", art_file, tmp_path / "unpatched", plan, error="hang at stage xen",
                             failure="hang", ssh={"not-a-field": True})   # Ssh forbids unknown keys
    (tmp_path / "unpatched").mkdir()
    art = batch.Artefacts({None: art_file}, {"debian-6.1": art_file}, {"debian-6.1": art_file},
                          GuestTools(tmp_path, {}, "tools-0"),
                          qemus={None: batch.QemuChoice(None, "7.2.22", {"name": "system", "printed": "7.2.22"})})
    r = batch.judge(job, boot, [(job, boot)], art, "TCG", batch.Options())
    assert (r.verdict, r.failure) == ("error", "internal")
    assert r.error.startswith("internal error while writing the result: ValidationError") and "traceback" in r.error
    assert (tmp_path / "unpatched" / "result.json").is_file() and (tmp_path / "unpatched" / "traceback.txt").is_file()
    assert batch.exit_code([r]) == 3
