"""End to end in headless Chromium (Debian's package) driven by Playwright: load the page, start
the cats-vs-dogs example with the default settings, see the loss plot and previews fill, wait for
the result grid, and save screenshots (to $SCREENSHOT_DIR, default test-artifacts/)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url():
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    shots = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "test-artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    log = open(shots / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"app exited: {(shots / 'app.log').read_text()}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("app did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def test_example_run_in_chromium(app_url):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "test-artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(app_url)
        expect(page.get_by_text("I2I Unlearning Studio").first).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Example: forget cats, keep dogs").click()
        status = page.locator("#status")
        expect(status).to_contain_text("Step", timeout=120_000)
        # the loss plot draws (vega renders a canvas or svg) and the live preview shows an image
        expect(page.locator("#loss-plot canvas, #loss-plot svg").first).to_be_visible(timeout=60_000)
        expect(page.locator("#loss-plot")).to_contain_text("forget", timeout=60_000)  # the legend: lines drawn
        expect(page.locator("#live-preview img").first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(3000)
        page.screenshot(path=str(shots / "app-running.png"), full_page=True)
        first = status.inner_text()
        expect(status).to_contain_text(re.compile("Done:|Error|failed"), timeout=600_000)
        assert "Done:" in status.inner_text(), (shots / "app.log").read_text()[-3000:]
        assert first != status.inner_text()
        expect(page.locator("#compare img").first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(shots / "app-results.png"), full_page=True)
        browser.close()
    assert (shots / "app-running.png").stat().st_size > 10_000
    assert (shots / "app-results.png").stat().st_size > 10_000
