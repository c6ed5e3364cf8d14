"""The pytest plugin's collection: names that read like the failure (no boot here)."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_items_are_file_job_id_check(pytester):
    shutil.copy(ROOT / "scenarios" / "balloon-cap-split.toml", pytester.path)
    shutil.copy(ROOT / "scenarios" / "ovmf-hole32-6G.toml", pytester.path)
    result = pytester.runpytest("--rig-scenarios", str(pytester.path), "--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    # The job id of rig run/matrix (scenario[firmware-dom0_mem-role]): the files say seabios
    # (the default) with dom0_mem 128M and 256M, and ovmf with 1G.
    assert "balloon-cap-split.toml::balloon-cap-split[seabios-128M-unpatched]::relocations" in ids
    assert "balloon-cap-split.toml::balloon-cap-split[seabios-256M-patched]::balloon_converted" in ids
    assert "ovmf-hole32-6G.toml::ovmf-hole32-6G[ovmf-1G-patched]::xen_scratch" in ids
    assert "balloon-cap-split.toml::balloon-cap-split[seabios-256M-patched]::xen_scratch_safe" in ids
    # balloon-cap-split, per dom0_mem: unpatched relocations, relocation_cause, balloon_converted,
    # balloon_target, xen_scratch; patched the same + xen_scratch_safe. ovmf-hole32-6G: unpatched has
    # no balloon_converted.
    assert len(ids) == 2 * (5 + 6) + (4 + 6)


def test_firmware_filter_and_boot_item_without_expectations(pytester):
    shutil.copy(ROOT / "scenarios" / "ovmf-hole32-6G.toml", pytester.path)
    (pytester.path / "bare.toml").write_text('name = "bare"\n[kernels]\nunpatched = "debian-6.1"\n')
    result = pytester.runpytest("--rig-scenarios", str(pytester.path), "--rig-firmware", "seabios",
                                "--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == ["bare.toml::bare[seabios-512M-unpatched]::boot"]


def test_bad_scenario_is_a_collection_error_naming_key(pytester):
    (pytester.path / "bad.toml").write_text('name = "bad"\n[kernels]\nunpatched = "debian-7"\n')
    result = pytester.runpytest("--rig-scenarios", str(pytester.path), "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*kernels.unpatched: unknown kernel 'debian-7'*"])
    assert result.ret != 0


def test_plugin_is_inert_without_scenarios(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    pytester.runpytest("-q").assert_outcomes(passed=1)
