"""The SSH channel's pure parts: the agent's key offer, fingerprints, the run's key files."""

import stat

import paramiko
import pytest

from rig.guest import console, ssh
from tests.conftest import RUNS, read_console

SERIAL = RUNS / "ssh-bar-clash-64bit" / "unpatched" / "serial.log"


def test_dropbear_offer_from_a_real_boot_is_accepted():
    """dropbear computed the fingerprint in dom0; the rig's own computation must agree."""
    key, why = ssh.parse_offer(read_console(SERIAL))
    assert why == "" and key is not None
    assert key.type == "ssh-ed25519"
    assert ssh.fingerprint(key.base64) == key.fingerprint
    assert paramiko.Ed25519Key(data=__import__("base64").b64decode(key.base64)).get_base64() == key.base64


def test_a_garbled_offer_is_not_trusted():
    text = read_console(SERIAL)
    key, _ = ssh.parse_offer(text)
    flipped = key.base64[:40] + ("A" if key.base64[40] != "A" else "B") + key.base64[41:]
    garbled, why = ssh.parse_offer(text.replace(key.base64, flipped))
    assert garbled is None and "garbled" in why


def test_no_offer_says_why():
    assert ssh.parse_offer("@@RIG-AGENT 2 6.1\n@@RIG-SSH-NONE no network interface (modules: )\n") == \
        (None, "no network interface (modules: )")
    assert ssh.parse_offer("@@RIG-AGENT 1 6.1\n") == (None, "the agent offered no SSH server")


def test_real_v2_console_reaches_collected_after_an_ssh_collection():
    text = read_console(SERIAL)
    assert console.classify(text) == console.Outcome("collected")
    assert "@@RIG-DONE ssh" in text and "@@RIG-BEGIN" not in text  # nothing went over the console


def test_run_key_files_are_private_and_pin_one_host(tmp_path):
    files = ssh.SshFiles(tmp_path / "ssh")
    key = files.new_client_key()
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    assert files.client_key().get_base64() == key.get_base64()
    assert (files.dir / "id_ed25519.pub").read_text().split()[:2] == ["ssh-ed25519", key.get_base64()]
    offer, _ = ssh.parse_offer(read_console(SERIAL))
    files.pin(offer, 40022)
    hosts = paramiko.HostKeys(str(files.known_hosts))
    assert list(hosts.keys()) == ["[127.0.0.1]:40022"]
    assert hosts.lookup("[127.0.0.1]:40022")["ssh-ed25519"].get_base64() == offer.base64
    assert files.port() == 40022
    assert "Port 40022" in (files.dir / "config").read_text()


def test_nobody_listening_is_an_ssh_error(tmp_path):
    from rig.host.ports import free_port
    files = ssh.SshFiles(tmp_path / "ssh")
    key = files.new_client_key()
    files.known_hosts.write_text("")
    with pytest.raises(ssh.SshError, match="nothing answers on 127.0.0.1"):
        ssh.connect(free_port(), key, files.known_hosts, timeout=5)
