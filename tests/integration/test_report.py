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
    # Every box says what it is: the moved BAR by device and BAR, Xen scratch by name; an
    # arrow goes from the BAR's firmware address to its final one; exact ranges on hover.
    labels = [" ".join(t for t in re.findall(r"<tspan[^>]*>([^<]*)</tspan>", text) if t)
              for text in re.findall(r'<text class="label".*?</text>', unpatched)]
    assert {"00:01.0 BAR 2 1G", "00:01.0 BAR 2 MOVED 1G", "Xen scratch 128M", "UNUSABLE 1.5G"} <= set(labels), labels
    assert unpatched.count('class="move-arrow"') == 1 and 'class="move-arrow"' not in patched
    assert "<title>00:01.0 BAR 2: [0x100000000-0x13fffffff], 1G</title>" in unpatched
    # The matrix: one row for the host, a column per kernel, each cell linked to the map.
    (table,) = re.findall(r'<table class="matrix">.*?</table>', dom, re.S)
    assert table.count('href="#host-0"') == 2 and "00:01.0 BAR 2 0x100000000→0x140000000" in table
    shot = default_ab.out / "report.png"   # kept with the run as an artefact
    chromium(f"--screenshot={shot}", "--window-size=1200,900", report.as_uri(), profile=tmp_path / "p2")
    assert shot.stat().st_size > 10_000


# Run in the real browser on a copy of the report: every text of every map (box labels, lane
# names, address labels) must lie inside its SVG's drawing area, or it is clipped.
CLIP_CHECK = """<script>
window.addEventListener('load', () => {
  let clipped = [], texts = 0;
  for (const svg of document.querySelectorAll('svg.memmap')) {
    const vb = svg.viewBox.baseVal;
    for (const t of svg.querySelectorAll('text')) {
      texts++;
      const m = t.getCTM(), b = t.getBBox();
      const corners = [[b.x, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height], [b.x + b.width, b.y]]
        .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
      if (corners.some(([x, y]) => x < vb.x - 0.5 || y < vb.y - 0.5 || x > vb.x + vb.width + 0.5 || y > vb.y + vb.height + 0.5))
        clipped.push(t.textContent);
    }
  }
  document.body.setAttribute('data-texts', texts);
  document.body.setAttribute('data-clipped', JSON.stringify(clipped));
});
</script></body>"""


def test_no_label_of_the_map_is_clipped(default_ab, tmp_path):
    page = tmp_path / "report-checked.html"
    page.write_text((default_ab.out / "report.html").read_text().replace("</body>", CLIP_CHECK))
    dom = chromium("--dump-dom", "--virtual-time-budget=5000", page.as_uri(), profile=tmp_path / "p3").stdout
    texts = int(re.search(r'data-texts="(\d+)"', dom).group(1))
    clipped = re.search(r'data-clipped="([^"]*)"', dom).group(1)
    assert texts > 40 and clipped == "[]", clipped
