"""Screenshots for the README: a landing page at 360 and 1280 px, and the preview index.

Usage: .venv/bin/python tools/screenshots.py   (builds the bundled site into a temporary folder,
serves it with `serve`'s preview server on 127.0.0.1, and writes docs/*.png with Debian's chromium)
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from denialpages.serve import PreviewServer

REPO = Path(__file__).resolve().parent.parent
PAGE = "/help/cigna/lumbar-spinal-fusion/step-therapy/"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
SHOTS = [("landing-360.png", PAGE, 360, 1600), ("landing-1280.png", PAGE, 1280, 1000),
         ("preview-index.png", "/_preview/", 1280, 800)]


def main() -> None:
    """Write the screenshots into docs/."""
    with tempfile.TemporaryDirectory() as folder:
        server = PreviewServer(REPO, Path(folder) / "out", port=0)
        server.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
                for name, path, width, height in SHOTS:
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(server.url + path)
                    page.screenshot(path=REPO / "docs" / name)
                    page.close()
                browser.close()
        finally:
            server.close()


if __name__ == "__main__":
    main()
