"""The machine under the rig failing: a damaged cache, a full or read-only --out, and a
second rig beside the first."""

import fcntl
import signal
import threading
import time

import pytest

from rig.spec import matrix, scenario as scenario_mod
from rig.run import batch
from rig.artefacts.store import Cache
from tests.faults.conftest import DEFAULT, damage, rig, run_faulted
from tests.integration.conftest import processes_mentioning, spawn_rig

pytestmark = [pytest.mark.boot, pytest.mark.faults]


def _resolved(cache_root):
    jobs = matrix.expand([scenario_mod.load(DEFAULT)], flat=True)
    return batch.resolve([j for j in jobs if j.role == "unpatched"],
                           batch.Options(fetch=False), Cache(cache_root))


@pytest.mark.parametrize("what,how", [("xen", "truncate"), ("kernel", "flip"), ("initramfs", "flip"),
                                      ("initramfs", "truncate")])
def test_damaged_cached_artefact_is_refused_before_booting(tmp_path, cache_copy, monkeypatch, what, how):
    art = _resolved(cache_copy)
    path = {"xen": art.xens[None], "kernel": art.kernels["debian-6.1"], "initramfs": art.initramfs["debian-6.1"]}[what].path
    damage(path, how)
    monkeypatch.setenv("RIG_CACHE", str(cache_copy))
    run = run_faulted(tmp_path, "--no-fetch")
    assert run.returncode == 3, run.said
    # One line of the rig's own (after the accelerator line): the file, the fault, the way out.
    (line,) = [ln for ln in run.stderr.splitlines() if ln.startswith("rig: ")]
    assert run.stderr.strip().splitlines()[-1] == line
    assert line.startswith(f"rig: {path}: sha256 mismatch (recorded "), line
    assert ("the next run builds it again" if what == "initramfs" else "rig fetch --refresh") in line
    assert not (run.out / "unpatched" / "serial.log").exists()   # nothing booted
    assert processes_mentioning(str(run.out)) == []


def test_out_on_a_full_filesystem_is_an_error_not_a_failed_expectation(tmp_path, tmpfs):
    # Was: an OSError traceback from rig/guest/ssh.py and exit 1 ("an expectation failed").
    out = tmpfs("size=96k") / "run"
    proc = rig("run", str(DEFAULT), "--only", "unpatched", "--out", str(out))
    said = proc.stdout + proc.stderr
    assert proc.returncode == 3, said
    assert "Traceback" not in said
    # Said once, in one line: as the job's error (summary) or as the run's (stderr), with where
    # the traceback went or why it could not be written.
    lines = [line for line in said.splitlines() if "No space left on device" in line]
    assert lines and all("traceback" in line for line in lines), lines
    assert (out / "jobs.json").is_file()   # what was written before the disk filled is kept
    assert processes_mentioning(str(out)) == []


def test_read_only_out_is_bad_input_before_booting(tmp_path, tmpfs):
    out = tmpfs("ro,size=1m") / "run"
    proc = rig("run", str(DEFAULT), "--only", "unpatched", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"rig: --out {out}: cannot write there: Read-only file system"
    assert processes_mentioning(str(out)) == []


def test_second_rig_on_the_same_out_stops_at_once(tmp_path):
    out = tmp_path / "run"
    first = spawn_rig("run", str(DEFAULT), "--only", "unpatched", "--out", str(out))
    try:
        for line in first.stderr:
            if "stage xen" in line:
                break
        started = time.monotonic()
        second = rig("run", str(DEFAULT), "--only", "unpatched", "--out", str(out))
        assert second.returncode == 2, second.stderr
        assert time.monotonic() - started < 30
        assert second.stderr.strip() == (f"rig: --out {out}: another rig (pid {first.pid}) is writing there; "
                                         "wait for it or choose another --out")
        assert first.poll() is None   # the first rig goes on, its files untouched
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 130
    finally:
        first.kill()
        first.wait()
    assert (out / "unpatched" / "serial.log").stat().st_size > 0
    assert processes_mentioning(str(out)) == []


def test_second_rig_waits_for_the_cache_lock_and_says_so(tmp_path, cache_copy, monkeypatch):
    # The first rig is fetching debian-6.1 (this test holds the lock as it would); the second
    # needs the same kernel, waits, and uses what the first fetched instead of fetching again.
    manifest = cache_copy / "kernels" / "debian-6.1" / "manifest.json"
    kernel = _resolved(cache_copy).kernels["debian-6.1"].path
    inode = kernel.stat().st_ino
    kept = manifest.read_bytes()
    manifest.unlink()
    monkeypatch.setenv("RIG_CACHE", str(cache_copy))
    with open(cache_copy / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write("4242\n")
        lock.flush()
        second = spawn_rig("fetch", "debian-6.1")
        said = _lines_until(second, "waiting for the cache lock", deadline=120)
        assert "held by pid 4242" in said[-1], said
        assert second.poll() is None
        manifest.write_bytes(kept)    # the first rig's fetch lands
    assert second.wait(timeout=120) == 0
    # It used what "the first rig" put there: the kernel was not downloaded again.
    assert kernel.stat().st_ino == inode


def _lines_until(proc, text: str, deadline: float) -> list[str]:
    """proc's stderr lines up to the first containing `text`; fails after `deadline` seconds."""
    found: list[str] = []
    threading.Thread(target=lambda: found.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    end = time.monotonic() + deadline
    while not any(text in ln for ln in found):
        assert time.monotonic() < end and proc.poll() is None, found
        time.sleep(0.2)
    return found[:next(i for i, ln in enumerate(found) if text in ln) + 1]
