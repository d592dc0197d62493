"""The README's images, from one real run: `python scripts/readme_images.py RUN_DIR` (e.g. the demo's run).

Writes docs/img/demo_reward.png (the static report's reward chart, `openrft report`) and docs/img/dashboard.png
(the dashboard's job page in headless Chromium, as the browser tests drive it: scripts/setup_browser.sh).
"""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from openrft.dashboard import build_report
from openrft.dashboard.web import create_app

IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def main(run_dir: Path) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    report = build_report(run_dir)
    shutil.copyfile(report.parent / "reward.png", IMG / "demo_reward.png")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app([run_dir.parent]), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/dashboard/#/job/{run_dir.name}")
            page.wait_for_function("document.body.dataset.ready === '1'", timeout=30000)
            page.screenshot(path=str(IMG / "dashboard.png"))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    print(f"wrote {IMG / 'demo_reward.png'} and {IMG / 'dashboard.png'}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python scripts/readme_images.py RUN_DIR")
    main(Path(sys.argv[1]).resolve())
