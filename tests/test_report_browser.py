"""``ssmar report`` in a real browser: headless Chromium loads the page without a console message (the
page has no script, so any message is an error: a failed load, a broken data URI) and a screenshot
shows it drawn. ``.ci/run`` installs Chromium (Debian package) and sets SSMAR_REQUIRE_BROWSER=1, so
there the test cannot skip; elsewhere it skips when no Chromium is installed."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from ssmar.cli.main import main
from ssmar.engine.runs import run_training

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def browser() -> str:
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        message = f"no headless browser ({', '.join(BROWSERS)}) on PATH: apt-get install chromium (.ci/run does)"
        if os.environ.get("SSMAR_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def load_in_browser(browser: str, page: Path, screenshot: Path) -> list[str]:
    """Load ``page`` headless, screenshot it; return the console lines Chromium logged."""
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         f"--screenshot={screenshot}", "--window-size=1200,3000", "--hide-scrollbars", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def test_console_messages_are_caught(browser: str, tmp_path: Path) -> None:
    """The check below can fail: a page with a script error is reported."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>console.error('boom'); notDefined();</script>"
                    "</body></html>")
    console = load_in_browser(browser, page, tmp_path / "broken.png")
    assert any("boom" in line for line in console) and any("notDefined" in line for line in console)


def test_report_loads_in_chromium_without_console_errors(browser: str, synth_file: Path, tmp_path: Path) -> None:
    from PIL import Image

    run = tmp_path / "run"
    run_training(tiny_config(synth_file, run, "algorithm.name=fixmatch", "data.labelled_ratio=0.2",
                             "train.epochs=2", "train.steps_per_epoch=2", "train.eval_every=1"))
    assert main(["suggest", str(run), "--strategy", "typiclust", "--budget", "5", "--no-previews"]) == 0
    assert main(["report", str(run)]) == 0

    console = load_in_browser(browser, run / "report.html", tmp_path / "report.png")

    assert console == [], f"console messages while loading the report: {console}"
    shot = np.asarray(Image.open(tmp_path / "report.png").convert("L"), dtype=float)
    assert shot.shape == (3000, 1200) and shot.std() > 10, "the screenshot shows a drawn page, not a blank one"
    shutil.copy(tmp_path / "report.png", run / "report.png")  # kept with the run, for a look by eye
