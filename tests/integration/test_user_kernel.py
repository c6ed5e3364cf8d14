"""A kernel developer's path: their own bzImage by name, no unpatched reference run."""

import pytest

from rig.artefacts.store import Cache
from tests.integration.conftest import RETRY, rig

pytestmark = pytest.mark.boot


def test_user_kernel_judged_against_xens_own_map(tmp_path):
    bzimage = Cache().kernel("debian-bpo-6.12").path  # stands in for a developer's build
    scenario = tmp_path / "mine.toml"
    scenario.write_text(
        'name = "mine"\n'
        '[[host.pci]]\ndevice = "pci-testdev"\nprops = { membar = "1G" }\n'
        '[kernels]\npatched = "mykernel"\n'
        '[expect.patched]\nrelocations = "none"\nballoon_converted = true\n')
    proc = rig("run", str(scenario), "--kernel", f"mykernel={bzimage}", "--out", str(tmp_path / "run"), *RETRY)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    import json
    r = json.loads((tmp_path / "run" / "patched" / "result.json").read_text())
    assert r["kernel"] == "mykernel" and r["artefacts"]["kernel"]["source"] == "user"
    assert r["xen_map_source"].startswith("rebuilt from Xen's host e820 (patched's serial log)")
    assert r["converted_to_ram"] == r["expected_conversion"] != []
