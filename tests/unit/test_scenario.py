"""Scenario schema: good files load, bad ones give one line naming file, key and value; exit 2."""

from pathlib import Path

import pytest

from rig import cli
from rig.spec import scenario
from rig.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[2]
KNOWN = {"debian-6.1", "debian-bpo-6.12"}


def write(tmp_path, body):
    path = tmp_path / "s.toml"
    path.write_text(body)
    return path


def test_default_scenario_loads():
    s = scenario.load(ROOT / "scenarios" / "bar-clash-64bit.toml", KNOWN)
    assert s.host.memory == 2 << 30 and s.xen.dom0_mem == 512 << 20
    assert s.host.pci[0].device == "pci-testdev" and s.host.pci[0].props == {"membar": "1G"}
    assert s.kernels == {"unpatched": "debian-6.1", "patched": "debian-bpo-6.12"}
    assert s.expect["patched"].balloon_converted is True


@pytest.mark.parametrize("body, key, words", [
    ('name="x"\n[kernels]\na="debian-6.1"\n[host]\nmemroy="2G"\n', "host.memroy", "unknown key"),
    ('name="x"\n[kernels]\na="debian-6.1"\n[host]\nmemory="2X"\n', "host.memory", "invalid size '2X'"),
    ('name="x"\n[kernels]\na="debian-7"\n', "kernels.a", "unknown kernel 'debian-7'"),
    ('name="x"\n[kernels]\na="debian-6.1"\n[expect.b]\nrelocations="none"\n', "expect.b", "no kernel with role"),
    ('name="x"\n[kernels]\na="debian-6.1"\n[expect.a]\nrelocations="lots"\n', "expect.a.relocations", "lots"),
    ('name="x"\n[kernels]\na="debian-6.1"\n[host]\niommu="amd"\n', "host.iommu", "amd"),
    ('name="x"\n[kernels]\na="debian-6.1"\n[host]\nfirmware="coreboot"\n', "host.firmware", "coreboot"),
    ('[kernels]\na="debian-6.1"\n', "name", "missing"),
    ('name="x"\n', "kernels", "missing"),
])
def test_bad_input_names_file_key_and_value(tmp_path, body, key, words):
    path = write(tmp_path, body)
    with pytest.raises(ScenarioError) as info:
        scenario.load(path, KNOWN)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: ") and words in message
    assert "\n" not in message


def test_not_toml(tmp_path):
    with pytest.raises(ScenarioError, match="not valid TOML"):
        scenario.load(write(tmp_path, "name = \n"), KNOWN)


def test_cli_exit_code_2_and_one_line(tmp_path, capsys):
    path = write(tmp_path, 'name="x"\n[kernels]\na="debian-6.1"\n[host]\nmemory="lots"\n')
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "host.memory" in err and "lots" in err


def test_cli_usage_error_is_2(capsys):
    assert cli.main(["run"]) == 2


def test_cli_missing_scenario_file_is_2(tmp_path, capsys):
    assert cli.main(["validate", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("text, size", [("512M", 512 << 20), ("2G", 2 << 30), ("2GiB", 2 << 30), (4096, 4096)])
def test_sizes(text, size):
    assert scenario.parse_size(text) == size


def test_format_size_round_trips():
    assert scenario.format_size(512 << 20) == "512M" and scenario.format_size(3 << 30) == "3G"


def test_unknown_qemu_device_is_bad_input_before_any_boot(tmp_path, capsys):
    path = write(tmp_path, 'name="x"\n[kernels]\na="debian-6.1"\n[[host.pci]]\ndevice="pci-testdevv"\n')
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path}: host.pci.0.device:" in err and "'pci-testdevv'" in err
    assert not (tmp_path / "out").exists()


def test_qemu_device_help_parser():
    from rig.host.qemu_argv import parse_device_help
    text = 'Network devices:\nname "e1000e", bus PCI, desc "Intel 82574L GbE Controller"\n' \
           'name "pci-testdev", bus PCI, desc "PCI Test Device"\n'
    assert parse_device_help(text) == {"e1000e", "pci-testdev"}


@pytest.mark.parametrize("body, words", [
    ('[xen]\ndom0_mem = "536870913"\n', "not a whole number of 4 KiB pages"),   # Xen would read KiB
    ('[xen]\ncmdline = "dom0_mem=1G"\n', "dom0_mem belongs in xen.dom0_mem"),  # the checks read dom0_mem
])
def test_dom0_mem_is_what_xen_gets_and_what_the_checks_read(tmp_path, body, words):
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\n[kernels]\nunpatched = "debian-6.1"\n' + body)
    with pytest.raises(ScenarioError, match=words):
        scenario.load(path)
