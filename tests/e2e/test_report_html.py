"""report.html as a person opens it: in a real browser (headless Chromium from
Debian's packages; scripts/install_browser.sh installs it, .ci/run calls that).

Without the browser the test is skipped on a developer's machine but fails in
CI (CI=true), so the check cannot silently vanish there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vidpipe_local.cli import main

pytestmark = pytest.mark.e2e

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Appended to a COPY of the report (the report itself has no script): it measures what the
# browser laid out and decoded, and leaves the figures in the DOM that --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const shots = [...document.querySelectorAll("section.shot")];
  const images = [...document.images];
  const result = {
    shots: shots.map(s => Number(s.dataset.shot)),
    shots_shown: shots.filter(shown).length,
    strip: [...document.querySelectorAll(".strip-shot")].filter(shown).map(a => a.textContent),
    images: images.length,
    images_decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    emulator_note: !!document.getElementById("emulator-note") && shown(document.getElementById("emulator-note")),
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDPIPE_STATE_DIR", str(tmp_path / "state"))


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    message = f"no headless browser ({', '.join(BROWSERS)}): run scripts/install_browser.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def chromium(binary: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=5000", *args], capture_output=True, text=True, timeout=120,
                          check=True)


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_an_analyzed_video_when_report_html_opens_in_chromium_then_every_shot_shows_with_its_picture(
        tmp_path):
    from vidpipe_local import samples

    binary = browser()
    video = tmp_path / "four shots.mp4"
    truth = samples.sample_with_cuts_and_fade(video)
    out = tmp_path / "report"
    assert main(["analyze", str(video), "--sampling", "scene", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    page = (out / "report.html").read_text()

    # Self-contained: every picture inline, nothing fetched, no script.
    assert "<script" not in page.lower()
    assert re.findall(r'(?:src|href)="(?!data:image/|#)', page) == []
    assert re.findall(r"url\(", page) == []

    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = chromium(binary, "--dump-dom", probed.as_uri()).stdout
    result = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1).replace("&quot;", '"'))

    scenes = report["scenes"]
    assert len(scenes) == len(truth.shots)  # 4 shots, cleanly cut: each is a scene of the report
    assert result["shots"] == [s["index"] + 1 for s in scenes]
    assert result["shots_shown"] == len(scenes)
    assert [label.split(" · ")[0] for label in result["strip"]] == [str(s["index"] + 1) for s in scenes]
    assert result["images"] == 2 * len(scenes) and result["images_decoded"] == result["images"]
    assert result["emulator_note"] is True  # the answers came from the emulator, and the page says so

    screenshot = out / "report.png"
    chromium(binary, "--window-size=1200,1600", f"--screenshot={screenshot}", (out / "report.html").as_uri())
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
