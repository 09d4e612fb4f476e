"""A real browser renders the report: headless Chromium takes a screenshot, which must not
be blank, and logs no console error (any network request is made to fail, so a page that
fetched anything would log one). Skips, saying so, where no Chromium can be found
(.ci/run installs it from the system packages when it can)."""

import shutil
import subprocess

import numpy as np
import pytest

import sweepbt as sb

pytestmark = pytest.mark.slow  # a real browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no headless browser on PATH (looked for {', '.join(BROWSERS)}); "
                ".ci/run installs chromium from the system packages where it can")


@pytest.mark.parametrize("kind", ["backtest", "sweep"])
def test_report_renders_in_chromium(kind, tmp_path, demo_ab):
    image = pytest.importorskip("matplotlib.image")
    browser = _browser()
    data = demo_ab.slice_bars(0, 1500)
    if kind == "backtest":
        result = sb.backtest(data, "sma_cross", fast=10, slow=50)
    else:
        result = sb.sweep(data, "sma_cross", fast=[5, 10, 20], slow=[50, 100])
    page = tmp_path / "report.html"
    sb.report(result, page)
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,2400",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert shot.exists(), run.stderr[-3000:]
    console = [line for line in run.stderr.splitlines()
               if "CONSOLE" in line or "Failed to load resource" in line]
    assert console == [], console
    pixels = image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1000
    dark = np.mean(pixels.min(axis=2) < 0.5)  # text, lines, axes
    colours = np.unique((pixels * 15).astype(np.uint8).reshape(-1, 3), axis=0).shape[0]
    assert dark > 0.005 and colours > 20, (dark, colours)
