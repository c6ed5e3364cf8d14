"""SSH into dom0 and manual reproduction, for real: dropbear in dom0, paramiko in the rig."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from rig.guest.ssh import fingerprint

from .conftest import RETRY, ROOT, SCENARIOS, processes_mentioning, rig, spawn_rig

pytestmark = pytest.mark.boot

SECTIONS = ("dmesg.txt", "iomem.txt", "e820.txt", "pci-resources.txt", "cmdline.txt", "uname.txt")


@pytest.mark.parametrize("role", ["unpatched", "patched"])
def test_ssh_collection_matches_serial_collection(default_ab, role):
    """The default A/B runs with --collect both: judged on SSH, the console's copy kept beside."""
    r = default_ab.result(role)
    assert r["collected_via"] == "ssh", r["ssh"]
    assert r["ssh"]["error"] is None and r["ssh"]["matches_serial"] is True
    job = default_ab.out / role
    for name in SECTIONS:
        assert (job / name).read_text() == (job / "via-serial" / name).read_text(), name
    assert "@@RIG-DONE" in (job / "serial.log").read_text(errors="replace")


def test_lspci_over_ssh_agrees_with_the_final_bars(default_ab):
    """lspci -vvv (only the SSH channel carries it) reads config space in dom0; the final BARs
    come from sysfs. The relocated 1 GiB BAR must be where both say."""
    r = default_ab.result("unpatched")
    (moved,) = r["relocations"]
    lspci = (default_ab.out / "unpatched" / "lspci-vvv.txt").read_text()
    slot = moved["device"].removeprefix("0000:")
    block = lspci.split(f"\n{slot} ", 1)[1].split("\n\n", 1)[0] if not lspci.startswith(slot) else lspci
    index = moved["resource"].split()[-1]
    m = re.search(rf"Region {index}: Memory at ([0-9a-f]+) \(64-bit, prefetchable\) \[size=1G\]", block)
    assert m, block
    assert int(m.group(1), 16) == moved["final"][0] != moved["firmware"][0]
    assert "Ethernet controller" in lspci and "Kernel driver in use: e1000e" in lspci
    sysfs = (default_ab.out / "unpatched" / "pci-sysfs-resources.txt").read_text()
    assert f"# {moved['device']}" in sysfs


def test_dom0_host_key_is_the_one_pinned(default_ab):
    job = default_ab.out / "unpatched"
    r = default_ab.result("unpatched")
    known = (job / "ssh" / "known_hosts").read_text().split()
    assert known[0] == f"[127.0.0.1]:{r['ssh']['port']}"
    # dropbear printed this fingerprint itself; the rig's own computation must agree.
    assert fingerprint(known[2]) == r["ssh"]["host_key"]
    assert oct((job / "ssh" / "id_ed25519").stat().st_mode & 0o777) == "0o600"


def _wait_for(proc: subprocess.Popen, text: str, timeout: float) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            return "".join(seen)
        assert time.monotonic() < deadline, "".join(seen)
    raise AssertionError(f"rig ended before {text!r}:\n{''.join(seen)}")


def test_kept_host_answers_rig_ssh_refuses_a_wrong_key_and_is_gone_after_ctrl_c(tmp_path):
    out = tmp_path / "kept"
    proc = spawn_rig("run", str(SCENARIOS / "bar-clash-64bit.toml"), "--only", "unpatched", "--keep", "--out",
                     str(out), *RETRY, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(proc, "Ctrl-C stops them", 600)
        job = out / "unpatched"
        assert processes_mentioning(str(out)), "the kept QEMU should be running"

        answer = rig("ssh", str(out), "--", "cat", "/proc/iomem", timeout=120)
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout == (job / "iomem.txt").read_text()
        status = rig("ssh", str(job), "--", "sh", "-c", "exit 7", timeout=120)
        assert status.returncode == 7

        # Pin a different (valid) ed25519 key: the real server's key must now be refused.
        known = job / "ssh" / "known_hosts"
        host, kind, blob = known.read_text().split()
        other = (ROOT / "tests" / "data" / "ssh" / "other_host_key.pub").read_text().split()[1]
        known.write_text(f"{host} {kind} {other}\n")
        refused = rig("ssh", str(job), "--", "true", timeout=120)
        assert refused.returncode == 3
        assert "refused" in refused.stderr and fingerprint(blob) in refused.stderr

        os.killpg(proc.pid, signal.SIGINT)   # Ctrl-C at the terminal reaches the whole group
        assert proc.wait(timeout=60) == 0    # the verdict's exit code: the run itself passed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert processes_mentioning(str(out)) == []
    known.write_text(f"{host} {kind} {blob}\n")
    gone = rig("ssh", str(job), "--", "true", timeout=60)
    assert gone.returncode == 3 and "only `rig run --keep` leaves it running" in gone.stderr


def test_rig_shell_runs_a_command_in_dom0_and_powers_off_on_exit(tmp_path):
    out = tmp_path / "shell"
    child = pexpect.spawn(sys.executable, ["-m", "rig.cli", "shell", str(SCENARIOS / "bar-clash-64bit.toml"),
                                           "--kernel", "patched", "--out", str(out)],
                          cwd=str(ROOT), encoding="utf-8", timeout=300, dimensions=(40, 200))
    try:
        child.expect("powers the host off")
        child.expect(r"# ")
        child.sendline("echo answer-$((6*7)) $(cat /proc/sys/kernel/osrelease)")
        child.expect(r"answer-42 (\S+)\r")
        release = child.match.group(1)
        child.sendline("exit")
        child.expect(pexpect.EOF, timeout=120)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    r = json.loads((out / "patched" / "result.json").read_text())
    assert r["verdict"] == "pass" and r["collected_via"] == "ssh"
    assert r["kernel_release"] == release
    assert processes_mentioning(str(out)) == []
    assert "answer-42" in (out / "patched" / "serial.log").read_text(errors="replace")


def _replayed_as_recorded(default_ab, out, role):
    """The replay of `role` has the original's verdict (a pass), firmware and final BARs and argv."""
    original, replayed = default_ab.result(role), json.loads((out / role / "result.json").read_text())
    assert replayed["verdict"] == original["verdict"] == "pass"
    bars = lambda r, which: {(p["device"], p["resource"]): p[which] for p in r["pci_resources"]}  # noqa: E731
    assert bars(replayed, "firmware") == bars(original, "firmware")
    assert bars(replayed, "final") == bars(original, "final")
    assert json.loads((out / role / "bundle.json").read_text())["qemu_argv_normalised"] == \
        json.loads((default_ab.out / role / "bundle.json").read_text())["qemu_argv_normalised"]


def test_bundle_replays_to_the_same_verdict_and_bars(default_ab, tmp_path):
    job = default_ab.out / "unpatched"
    bundle = json.loads((job / "bundle.json").read_text())
    assert bundle["xen_cmdline"] in (job / "serial.log").read_text(errors="replace")
    assert bundle["artefacts"]["kernel"]["sha256"] == default_ab.result("unpatched")["artefacts"]["kernel"]["sha256"]

    out = tmp_path / "replay"
    proc = rig("repro", str(job), "--out", str(out), *RETRY, timeout=900)
    assert proc.returncode == 0, proc.stderr
    _replayed_as_recorded(default_ab, out, "unpatched")
    assert "same verdict, firmware BARs and final BARs" in proc.stderr


@pytest.mark.nightly   # two more boots; one job's replay above runs on every push
def test_a_whole_run_replays_to_the_same_verdicts_and_bars(default_ab, tmp_path):
    """`rig repro RUN_DIR`: every job of the A/B (a nightly's downloaded artefacts), one table."""
    out = tmp_path / "replay"
    proc = rig("repro", str(default_ab.out), "--out", str(out), *RETRY, timeout=900)
    assert proc.returncode == 0, proc.stderr
    for role in ("unpatched", "patched"):
        _replayed_as_recorded(default_ab, out, role)
        assert f"bar-clash-64bit[seabios-512M-{role}]: pass, matches" in proc.stdout
    assert proc.stderr.count("same verdict, firmware BARs and final BARs") == 2
    assert "2 jobs replayed: 2 match the original run" in proc.stdout


def test_replay_refuses_a_hash_mismatch_before_booting(default_ab, tmp_path):
    bundle = json.loads((default_ab.out / "patched" / "bundle.json").read_text())
    bundle["artefacts"]["kernel"]["sha256"] = "0" * 64
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    started = time.monotonic()
    proc = rig("repro", str(path), "--out", str(tmp_path / "never"), timeout=300)
    assert proc.returncode == 3
    assert "kernel debian-bpo-6.12: bundle has" in proc.stderr and "--allow-mismatch" in proc.stderr
    assert not (tmp_path / "never").exists()
    assert time.monotonic() - started < 60  # refused before any boot


def test_a_taken_port_is_skipped_when_forwarding_ssh(tmp_path, monkeypatch):
    """Another process takes the port between the rig's probe and QEMU's bind: the rig asks
    QEMU for the next one instead of failing the launch."""
    import socket

    from rig.artefacts import archive
    from rig.spec import plan, scenario
    from rig.artefacts.store import Cache
    from rig.host import ports as ports_mod, qemu

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1], ports_mod.free_port()])
    monkeypatch.setattr(ports_mod, "free_port", lambda: next(ports))
    cache = Cache()
    s = scenario.load(SCENARIOS / "bar-clash-64bit.toml")
    p = plan.make(s, "unpatched", "tcg", xen=cache.xen(archive.debian_xen(None, "x86_64"), fetch=False).path,
                  kernel=cache.kernel("debian-6.1", fetch=False).path, initrd=Path("/dev/null"))
    try:
        with qemu.QemuHost(p, tmp_path) as host:
            assert host.ssh_port not in (None, taken.getsockname()[1])
            assert (tmp_path / "ssh-port").read_text().strip() == str(host.ssh_port)
    finally:
        taken.close()
    assert processes_mentioning(str(tmp_path)) == []


def test_without_a_nic_driver_the_console_collects_and_the_ssh_failure_is_reported(tmp_path):
    """e1000e's init blacklisted in dom0: no interface, so no SSH. The run must still be
    judged (over the console) and say why SSH was not used."""
    text = (SCENARIOS / "bar-clash-64bit.toml").read_text()
    text = text.replace("[xen]", '[xen]\ndom0_cmdline = "initcall_blacklist=e1000_init_module"', 1)
    assert "initcall_blacklist=e1000_init_module" in text
    path = tmp_path / "no-nic-driver.toml"
    path.write_text(text)
    out = tmp_path / "run"
    proc = rig("run", str(path), "--only", "unpatched", "--out", str(out), *RETRY)
    assert proc.returncode == 0, proc.stderr
    r = json.loads((out / "unpatched" / "result.json").read_text())
    assert r["verdict"] == "pass" and r["collected_via"] == "serial"
    assert r["ssh"]["offered"] is False and "no network interface" in r["ssh"]["error"]
    assert "collecting over the serial console" in proc.stderr
    assert not (out / "unpatched" / "lspci-vvv.txt").exists()
