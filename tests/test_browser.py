"""A real browser: headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) opens the app served on
a free local port, picks a patch, opens the compare page, runs the model and saves screenshots. Fails on any Streamlit
exception box or blank image. Skips with the reason when Chromium or its driver is not installed (CI installs them)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="Debian packages chromium and chromium-driver are not installed"
)
SHOTS = Path(os.environ.get("SR_SCREENSHOTS", REPO / "out" / "screenshots"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    from sr_core.io import write_eopatch
    from tests.test_app import _patch  # the same small labelled patches as the AppTest suite

    root = tmp_path / "real"
    for i in (1, 2):
        write_eopatch(_patch(f"eopatch-{i:02d}", i), root / f"eopatch-{i:02d}")
    port = _free_port()
    env = {**os.environ, "SR_CORE_DATA": str(root), "SR_CORE_DEMO": "off", "SR_CORE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {proc.stdout.read().decode()[-2000:] if proc.stdout else ''}")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def _settle(d, timeout: float = 60) -> None:
    """Wait until Streamlit has finished running the script (no 'running' indicator) and something rendered."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    time.sleep(1.0)
    while time.time() < deadline:
        running = d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        app = d.find_elements(By.CSS_SELECTOR, '[data-testid="stAppViewContainer"]')
        if app and not running:
            time.sleep(0.5)
            if not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'):
                return
        time.sleep(0.3)


def _check(d, name: str) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By

    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    d.save_screenshot(str(path))
    boxes = d.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not boxes, f"{name}: Streamlit exception shown: {boxes[0].text[:500]}"
    for img in d.find_elements(By.CSS_SELECTOR, '[data-testid="stMain"] img'):
        w = d.execute_script("return arguments[0].complete ? arguments[0].naturalWidth : -1", img)
        assert w and w > 0, f"{name}: an image did not load"
    shot = np.asarray(Image.open(path).convert("L"), np.float32)
    assert shot.std() > 5, f"{name}: the page looks blank"


def test_pick_patch_compare_and_screenshots(server, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = driver
    d.get(server)
    _settle(d)
    assert "Sentinel-2 super-resolution" in d.page_source
    _check(d, "home")
    # pick a patch with the name picker (keyboard: open, type, enter)
    box = d.find_element(By.CSS_SELECTOR, '.st-key-patch_by_name input')
    box.click()
    box.send_keys("eopatch-02")
    box.send_keys(Keys.ENTER)
    _settle(d)
    assert "Selected **eopatch-02**" in d.page_source or "Selected eopatch-02" in d.find_element(By.TAG_NAME, "body").text
    _check(d, "home-selected")
    d.get(f"{server}/Time_series?patch=eopatch-02")
    _settle(d)
    assert "eopatch-02" in d.find_element(By.TAG_NAME, "body").text
    _check(d, "time-series")
    d.get(f"{server}/Predict_and_compare?patch=eopatch-02")
    _settle(d)
    buttons = [b for b in d.find_elements(By.TAG_NAME, "button") if "Run model" in b.text]
    assert buttons, "the Run button is missing"
    buttons[0].click()
    deadline = time.time() + 120
    while time.time() < deadline and "Scores on this patch" not in d.find_element(By.TAG_NAME, "body").text:
        time.sleep(1)
    _settle(d)
    body = d.find_element(By.TAG_NAME, "body").text
    assert "Scores on this patch" in body, body[-1500:]
    _check(d, "compare")
