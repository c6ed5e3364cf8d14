"""Machine-wide core slots (rig/run/cores.py) with real flocks in a private directory."""

import signal
import subprocess
import sys
import threading
import time

import pytest

from rig.run import cores
from rig.errors import Interrupted


@pytest.fixture
def two_cores(tmp_path, monkeypatch):
    monkeypatch.setenv("RIG_CORES", "2")
    monkeypatch.setenv("RIG_CORES_DIR", str(tmp_path / "cores"))
    return tmp_path / "cores"


def _in_thread(vcpus, started, release, messages):
    def body():
        with cores.held(vcpus, messages.append, poll=0.01):
            started.set()
            release.wait(10)
    t = threading.Thread(target=body)
    t.start()
    return t


def test_a_third_boot_waits_until_one_of_two_ends(two_cores):
    release_a, release_b, messages = threading.Event(), threading.Event(), []
    a, b = threading.Event(), threading.Event()
    ta, tb = _in_thread(1, a, release_a, messages), _in_thread(1, b, release_b, messages)
    assert a.wait(5) and b.wait(5)
    c, release_c = threading.Event(), threading.Event()
    tc = _in_thread(1, c, release_c, messages)
    assert not c.wait(0.3), "a third 1-vCPU boot ran beside two on two cores"
    assert messages == ["waiting for 1 free core(s): 2 in use by other boots on this machine"]
    release_a.set()
    assert c.wait(5)
    for e in (release_b, release_c):
        e.set()
    for t in (ta, tb, tc):
        t.join(5)


def test_a_two_vcpu_boot_takes_both_slots_or_none(two_cores):
    release_a, a, messages = threading.Event(), threading.Event(), []
    ta = _in_thread(1, a, release_a, messages)
    assert a.wait(5)
    big, release_big = threading.Event(), threading.Event()
    tbig = _in_thread(2, big, release_big, messages)
    assert not big.wait(0.3)
    # While it waits it holds nothing: another 1-vCPU boot still gets the free slot.
    small, release_small = threading.Event(), threading.Event()
    tsmall = _in_thread(1, small, release_small, messages)
    assert small.wait(5)
    release_a.set()
    release_small.set()
    assert big.wait(5)
    release_big.set()
    for t in (ta, tbig, tsmall):
        t.join(5)


def test_more_vcpus_than_cores_take_every_core(two_cores):
    with cores.held(8) as n:
        assert n == 2
        assert len(list(two_cores.iterdir())) == 2


def test_a_killed_holder_frees_its_slot(two_cores, monkeypatch):
    holder = subprocess.Popen([sys.executable, "-c", "from rig.run import cores\nimport time\n"
                               "with cores.held(2):\n    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        waited = []
        t0 = time.monotonic()
        killer = threading.Timer(0.5, holder.send_signal, (signal.SIGKILL,))
        killer.start()
        with cores.held(1, waited.append, poll=0.01):
            assert time.monotonic() - t0 >= 0.5
        assert waited, "the slot was free while its holder lived"
    finally:
        holder.kill()
        holder.wait()


def test_waiting_stops_when_the_run_is_cancelled(two_cores):
    with cores.held(2):
        flag = threading.Event()
        threading.Timer(0.2, flag.set).start()
        with pytest.raises(Interrupted, match="waiting for a free core"):
            with cores.held(1, poll=0.01, cancelled=flag.is_set):
                pass


def test_a_core_count_that_is_not_a_number_is_bad_input(monkeypatch):
    from rig.errors import InputError
    monkeypatch.setenv("RIG_CORES", "two")
    with pytest.raises(InputError, match=r"RIG_CORES='two': not a number of cores"):
        cores.total()


def test_a_slot_directory_that_cannot_be_made_is_one_error(tmp_path, monkeypatch):
    from rig.errors import RigError
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("RIG_CORES_DIR", str(tmp_path / "file" / "cores"))
    with pytest.raises(RigError, match="core slots in .*: Not a directory"):
        with cores.held(1):
            pass
