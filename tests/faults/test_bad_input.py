"""Every bad-scenario shape, through the real command: exit 2, one line naming file, key
and value, nothing started. No boot: `rig run` must refuse before QEMU exists."""

import pytest

from tests.faults.conftest import rig
from tests.integration.conftest import processes_mentioning

pytestmark = pytest.mark.faults

HEAD = 'name = "x"\n[kernels]\na = "debian-6.1"\n'
BRIDGES = ('[[host.pci]]\ndevice = "pci-bridge"\nname = "b1"\nparent = "b2"\n'
           '[[host.pci]]\ndevice = "pci-bridge"\nname = "b2"\nparent = "b1"\n')

SHAPES = {
    # shape: (scenario text, key named, words said)
    "type": (HEAD + "[host]\ncpus = \"two\"\n", "host.cpus", "invalid value 'two'"),
    "type-table": ('name = "x"\nkernels = "debian-6.1"\n', "kernels", "invalid value"),
    "unknown-key": (HEAD + "[host]\nmemroy = \"2G\"\n", "host.memroy", "unknown key"),
    "unknown-section": (HEAD + "[hots]\nmemory = \"2G\"\n", "hots", "unknown key"),
    "size-unit": (HEAD + "[host]\nmemory = \"2X\"\n", "host.memory", "invalid size '2X'"),
    "size-zero": (HEAD + "[host]\nmemory = \"0\"\n", "host.memory", "invalid size '0'"),
    "dom0_mem-above-memory": (HEAD + "[host]\nmemory = \"2G\"\n[xen]\ndom0_mem = \"3G\"\n",
                              "xen.dom0_mem", "3G is not below host.memory 2G"),
    "dom0_mem-partial-page": (HEAD + "[xen]\ndom0_mem = \"100000\"\n", "xen.dom0_mem", "4 KiB pages"),
    "memory-above-this-machine": (HEAD + "[host]\nmemory = \"64T\"\n", "host.memory", "more than this machine's RAM"),
    "bar-not-power-of-two": (HEAD + "[[host.pci]]\ndevice = \"pci-testdev\"\nprops = { membar = \"3G\" }\n",
                             "host.pci.0.props.membar", "not a power of two"),
    "unknown-device": (HEAD + "[[host.pci]]\ndevice = \"nosuch-dev\"\n", "host.pci.0.device", "no device 'nosuch-dev'"),
    "topology-cycle": (HEAD + BRIDGES, "host.pci.0.parent", "cycle: b1 -> b2 -> b1"),
    "topology-off-a-cycle": (HEAD + '[[host.pci]]\ndevice = "pci-testdev"\nparent = "b2"\n' + BRIDGES,
                             "host.pci.1.parent", "cycle: b1 -> b2 -> b1"),
    "topology-bus-declared-after": (HEAD + '[[host.pci]]\ndevice = "pci-testdev"\nparent = "p"\n'
                                    '[[host.pci]]\ndevice = "pcie-pci-bridge"\nname = "p"\n',
                                    "host.pci.0.parent", "'p' is declared after"),
    "topology-own-parent": (HEAD + '[[host.pci]]\ndevice = "pci-bridge"\nname = "b"\nparent = "b"\n',
                            "host.pci.0.parent", "its own parent"),
    "topology-unknown-parent": (HEAD + '[[host.pci]]\ndevice = "pci-testdev"\nparent = "nowhere"\n',
                                "host.pci.0.parent", "unknown parent 'nowhere'"),
    "kernel-name": ('name = "x"\n[kernels]\na = "debian-6.99"\n', "kernels.a", "unknown kernel 'debian-6.99'"),
    "expect-for-no-role": (HEAD + "[expect.b]\nrelocations = \"none\"\n", "expect.b", "no kernel with role"),
    "expect-value": (HEAD + "[expect.a]\nrelocations = \"lots\"\n", "expect.a.relocations", "lots"),
    "not-toml": ("name = \n", "", "not valid TOML"),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_bad_scenario_is_one_line_and_exit_2_before_anything_starts(tmp_path, shape):
    text, key, words = SHAPES[shape]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "run"
    proc = rig("run", str(path), "--out", str(out), "--no-fetch", timeout=120)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"rig: {path}: {key + ': ' if key else ''}"), line
    assert words in line, line
    assert not (out / "jobs.json").exists() and processes_mentioning(str(out)) == []
