"""Replay bundles: argv normalisation, finding a bundle, comparing two runs of a job."""

import json

import pytest

from rig.run import bundle
from rig import cli
from rig.errors import EXIT_BAD_INPUT, InputError
from tests.conftest import make_result


def test_argv_paths_become_placeholders_longest_first():
    argv = ["-kernel", "/c/xen/xen-4.17", "-initrd", "/c/k/vmlinuz console=hvc0,/c/i/agent.cpio.gz",
            "-chardev", "socket,id=console,path=/tmp/rig-ab/console.sock,logfile=/runs/x/unpatched/serial.log"]
    paths = {"xen": "/c/xen/xen-4.17", "kernel": "/c/k/vmlinuz", "initramfs": "/c/i/agent.cpio.gz",
             "run": "/runs/x/unpatched", "sockets": "/tmp/rig-ab"}
    assert bundle.normalise_argv(argv, paths) == [
        "-kernel", "{xen}", "-initrd", "{kernel} console=hvc0,{initramfs}",
        "-chardev", "socket,id=console,path={sockets}/console.sock,logfile={run}/serial.log"]


def _result(verdict, firmware, final):
    return make_result(verdict=verdict, pci_resources=[
        {"device": "0000:00:01.0", "resource": "BAR 2", "index": 2, "kind": "mem", "prefetch": True,
         "firmware": firmware, "final": final}])


def test_compare_names_verdict_and_bar_differences():
    a = _result("pass", [0x100000000, 0x13FFFFFFF], [0x140000000, 0x17FFFFFFF])
    assert bundle.compare(a, a) == []
    b = _result("fail", [0x100000000, 0x13FFFFFFF], None)
    assert bundle.compare(a, b) == ["verdict: pass -> fail",
                                    "final 0000:00:01.0 BAR 2: 0x140000000-0x17fffffff -> absent"]


def test_find_wants_exactly_one_job(tmp_path):
    for role in ("unpatched", "patched"):
        (tmp_path / role).mkdir()
        (tmp_path / role / bundle.FILE).write_text("{}")
    (tmp_path / "patched.failed-1").mkdir()
    (tmp_path / "patched.failed-1" / bundle.FILE).write_text("{}")
    with pytest.raises(InputError, match="holds 2 jobs .*name one of their directories"):
        bundle.find(tmp_path)
    assert bundle.find(tmp_path / "patched") == tmp_path / "patched" / bundle.FILE
    with pytest.raises(InputError, match="no bundle.json"):
        bundle.find(tmp_path / "patched.failed-1" / "nothing")


def test_bad_bundles_are_input_errors_with_their_key(tmp_path, capsys):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"format": 99}))
    assert cli.main(["repro", str(path)]) == EXIT_BAD_INPUT
    assert f"{path}: format: 99" in capsys.readouterr().err
    path.write_text(json.dumps({"format": bundle.FORMAT, "scenario": {}, "role": "a", "kernel": "k", "accel": "tcg"}))
    assert cli.main(["repro", str(path)]) == EXIT_BAD_INPUT
    assert f"{path}: artefacts: missing" in capsys.readouterr().err


def test_rig_ssh_without_ssh_details_is_bad_input(tmp_path, capsys):
    (tmp_path / "unpatched").mkdir()
    assert cli.main(["ssh", str(tmp_path), "--", "true"]) == EXIT_BAD_INPUT
    assert "no SSH details" in capsys.readouterr().err


def test_shell_picks_one_job_by_role_or_kernel_name():
    from rig.artefacts.archive import DEBIAN_KERNELS
    from rig.spec import matrix, scenario
    from tests.conftest import DATA
    s = scenario.load(DATA.parent.parent / "scenarios" / "balloon-cap-split.toml")
    one = matrix.one_job(s, "debian-bpo-6.12", None, "256M", set(DEBIAN_KERNELS))
    assert (list(one.kernels.items()), one.xen.dom0_mem) == ([("patched", "debian-bpo-6.12")], 256 << 20)
    with pytest.raises(InputError, match="--dom0-mem 1G: the scenario has no such variant"):
        matrix.one_job(s, None, None, "1G", set(DEBIAN_KERNELS))
    with pytest.raises(InputError, match="--kernel nope: neither a role"):
        matrix.one_job(s, "nope", None, None, set(DEBIAN_KERNELS))


def test_a_run_directory_gives_every_jobs_bundle_failed_attempts_left_out(tmp_path):
    for role in ("unpatched", "patched", "patched.failed-1"):
        (tmp_path / role).mkdir()
        (tmp_path / role / bundle.FILE).write_text("{}")
    assert bundle.find_all(tmp_path) == [tmp_path / "patched" / bundle.FILE, tmp_path / "unpatched" / bundle.FILE]
    assert bundle.find_all(tmp_path / "patched") == [tmp_path / "patched" / bundle.FILE]
