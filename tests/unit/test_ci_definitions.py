"""The nightly CI definitions validate offline against the published schemas (bundled
with check-jsonschema), so a typo is caught here, not at 2 a.m."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(sys.executable).with_name("check-jsonschema")


@pytest.mark.parametrize("schema, path", [("vendor.github-workflows", "ci/github/nightly.yml"),
                                          ("vendor.gitlab-ci", "ci/gitlab/nightly.yml")])
def test_ci_definition_is_valid(schema, path):
    proc = subprocess.run([str(CHECK), "--builtin-schema", schema, str(ROOT / path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_broken_definition_is_caught(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text((ROOT / "ci/github/nightly.yml").read_text().replace("runs-on:", "runs_on:"))
    proc = subprocess.run([str(CHECK), "--builtin-schema", "vendor.github-workflows", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
