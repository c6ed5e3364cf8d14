"""The HTML report of the default A/B, rendered by a real headless Chromium."""

import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.boot

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(*args, profile):
    binary = shutil.which("chromium")
    assert binary, "chromium is installed by ./bootstrap.sh test"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_report_draws_both_worlds(default_ab, tmp_path):
    report = default_ab.out / "report.html"
    assert report.stat().st_size > 0       # rig run writes it, with a JSON summary beside it
    import json
    summary = json.loads((default_ab.out / "report.json").read_text())
    assert sorted(s["kernel_role"] for s in summary) == ["patched", "unpatched"]
    dom = chromium("--dump-dom", report.as_uri(), profile=tmp_path / "p1").stdout
    svgs = re.findall(r"<svg class=\"memmap\".*?</svg>", dom, re.S)
    assert len(svgs) == 2                  # unpatched and patched, same host
    unpatched, patched = svgs              # the reference is drawn first
    assert 'class="bar-moved"' in unpatched and 'class="scratch"' in unpatched
    assert 'class="bar-moved"' not in patched and 'class="converted"' in patched
    assert "can&#x27;t claim" in dom or "can't claim" in dom   # the evidence line is under the map
    shot = default_ab.out / "report.png"   # kept with the run as an artefact
    chromium(f"--screenshot={shot}", "--window-size=1200,900", report.as_uri(), profile=tmp_path / "p2")
    assert shot.stat().st_size > 10_000
