"""Regenerate docs/gallery/*.png: screenshots of the three HTML reports on the demo data.

Run from the repository root: ``python docs/make_gallery.py`` (needs matplotlib and a
Chromium on PATH). Each report is written to a temporary folder and photographed by headless
Chromium with network access blocked; docs/gallery.md shows the pictures.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tempfile

import sweepbt as sb

OUT = pathlib.Path(__file__).parent / "gallery"
WINDOW = "1050,1500"


def results():
    data = sb.demo().select(["ALPHA", "BRAVO"])
    yield "backtest", sb.backtest(data, "sma_cross", fast=20, slow=100, stop_loss=0.08,
                                  fees=0.001)
    yield "sweep", sb.sweep(data, "sma_cross", fast=range(5, 55, 5), slow=range(20, 220, 20),
                            stop_loss=[0.05, None], constraint="fast < slow", fees=0.001)
    yield "walk_forward", sb.walk_forward(data, "sma_cross", train="4Y", test="1Y",
                                          fast=range(5, 55, 10), slow=range(50, 250, 50),
                                          fees=0.001)


def main():
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    if browser is None:
        sys.exit("make_gallery: no chromium on PATH")
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, result in results():
            page = pathlib.Path(tmp) / f"{name}.html"
            sb.report(result, page)
            shot = OUT / f"{name}.png"
            subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                            "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND",
                            f"--user-data-dir={tmp}/profile", f"--window-size={WINDOW}",
                            f"--screenshot={shot}", page.as_uri()],
                           check=True, capture_output=True, timeout=300)
            print(f"{shot} ({shot.stat().st_size:,} bytes; the report: "
                  f"{page.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
