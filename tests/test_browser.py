"""A real browser: headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) opens the app served on
a free local port, picks a patch, opens the compare page, runs the model and saves screenshots. Fails on any Streamlit
exception box or blank image. Skips with the reason when Chromium or its driver is not installed (CI installs them)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from scripts._browser import CHROMIUM, DRIVER, chromium, settle, start_app, stop_app

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="Debian packages chromium and chromium-driver are not installed"
)
SHOTS = Path(os.environ.get("SR_SCREENSHOTS", REPO / "out" / "screenshots"))


@pytest.fixture
def server(tmp_path):
    from tests.helpers_app import write_served

    root = write_served(tmp_path / "real")[0].parent  # the same small labelled patches as the AppTest suite
    try:
        proc, url = start_app({"SR_CORE_DATA": str(root), "SR_CORE_DEMO": "off", "SR_CORE_HOME": str(tmp_path / "home")})
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield url
    stop_app(proc)


@pytest.fixture
def driver():
    d = chromium()  # 1280 × 800, every non-local host unreachable
    yield d
    d.quit()


def _settle(d, timeout: float = 60) -> None:
    """Wait until Streamlit has finished running the script (no 'running' indicator) and something rendered."""
    settle(d, timeout)


def _wait_text(d, text: str, timeout: float = 60) -> None:
    """Wait until ``text`` is in the page (a slow machine may take a while to run the script the first time)."""
    deadline = time.time() + timeout
    while text not in d.page_source:
        if time.time() > deadline:
            pytest.fail(f"{text!r} never appeared in the page; it ends with: {d.page_source[-1500:]}")
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


def _leaflet(d, name: str, min_images: int, timeout: float = 60) -> None:
    """A live Leaflet map (served by the app, no CDN) with at least ``min_images`` loaded image layers."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    seen = (0, 0)
    while time.time() < deadline:
        for f in d.find_elements(By.CSS_SELECTOR, 'iframe[src*="st_folium"]'):
            d.switch_to.frame(f)
            seen = d.execute_script(
                "return [document.querySelectorAll('.leaflet-container .leaflet-map-pane').length, "
                "Array.from(document.querySelectorAll('img.leaflet-image-layer'))"
                ".filter(i => i.complete && i.naturalWidth > 0).length, typeof L === 'undefined' ? '' : L.version]")
            d.switch_to.default_content()
            if seen[0] and seen[1] >= min_images:
                assert seen[2] == "1.9.4"
                return
        time.sleep(0.3)
    pytest.fail(f"{name}: no live Leaflet map with {min_images} image layer(s) (saw {seen})")


def test_a_fresh_servers_first_visit_to_a_page_link_gets_the_apps_pages(server, driver):
    """A bookmarked page URL opened first on a freshly started server runs through app.py's navigation (icons, "Predict &
    compare", no "app" entry), on the page it names and with its patch, not Streamlit's pages-folder sidebar."""
    from selenium.webdriver.common.by import By

    d = driver
    for _ in range(2):  # the first visit, and the next one (before anybody has opened the root URL)
        d.get(f"{server}/Time_series?patch=eopatch-02")
        _settle(d)
        _wait_text(d, "eopatch-02")
        nav = [a.text.split("\n")[-1] for a in d.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')]
        assert nav[:4] == ["Home", "Time series", "Predict & compare", "Upload"], nav
        assert "app" not in nav
        assert "Time series" in d.find_element(By.TAG_NAME, "h1").text
        assert "patch=eopatch-02" in d.current_url


def test_deep_links_to_server_folders_show_nothing(server, driver):
    from selenium.webdriver.common.by import By

    d = driver
    for link in ("/etc", "../..", "/tmp"):
        d.get(f"{server}/Time_series?patch={link}")
        _settle(d)
        deadline = time.time() + 30
        while "catalogue" not in (body := d.find_element(By.TAG_NAME, "body").text) and time.time() < deadline:
            time.sleep(0.3)
        assert "catalogue" in body and "Home" in body, body[-800:]
        assert "passwd" not in body and "/etc" not in body and "eopatch-0" not in body.split("Selected patch")[0]
        assert not d.find_elements(By.CSS_SELECTOR, 'iframe[src*="st_folium"]')


def test_pick_patch_compare_and_screenshots(server, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = driver
    d.get(server)
    _settle(d)
    _wait_text(d, "Sentinel-2 super-resolution")
    _leaflet(d, "home", 0)
    _check(d, "home")
    # the online basemap cannot load here (no network): the map says so instead of staying blank
    d.find_element(By.CSS_SELECTOR, ".st-key-home_basemap label").click()
    _settle(d)
    deadline, warned = time.time() + 30, ""
    while time.time() < deadline and not warned:
        for f in d.find_elements(By.CSS_SELECTOR, 'iframe[src*="st_folium"]'):
            d.switch_to.frame(f)
            warned = d.execute_script("const w = document.querySelector('.sr-warning'); return w ? w.textContent : ''")
            d.switch_to.default_content()
        time.sleep(0.3)
    assert "could not be loaded" in warned
    d.find_element(By.CSS_SELECTOR, ".st-key-home_basemap label").click()
    _settle(d)
    # pick a patch with the name picker (keyboard: open, type, enter)
    box = d.find_element(By.CSS_SELECTOR, '.st-key-patch_by_name input')
    box.click()
    box.send_keys("eopatch-02")
    box.send_keys(Keys.ENTER)
    _settle(d)
    _wait_text(d, "eopatch-02")
    deadline = time.time() + 60
    while "Selected eopatch-02" not in (body := d.find_element(By.TAG_NAME, "body").text) and time.time() < deadline:
        time.sleep(0.3)
    assert "Selected eopatch-02" in body, body[-1500:]
    _check(d, "home-selected")
    d.get(f"{server}/Time_series?patch=eopatch-02")
    _settle(d)
    _wait_text(d, "eopatch-02")
    _leaflet(d, "time series", 1)
    _check(d, "time-series")
    d.get(f"{server}/Predict_and_compare?patch=eopatch-02")
    _settle(d)
    _wait_text(d, "Run model")  # a loaded machine may render the page header well before the controls
    buttons = [b for b in d.find_elements(By.TAG_NAME, "button") if "Run model" in b.text]
    assert buttons, "the Run button is missing"
    buttons[0].click()
    deadline = time.time() + 120
    while time.time() < deadline and "Scores on this patch" not in d.find_element(By.TAG_NAME, "body").text:
        time.sleep(1)
    _settle(d)
    body = d.find_element(By.TAG_NAME, "body").text
    assert "Scores on this patch" in body, body[-1500:]
    _leaflet(d, "compare", 3)  # true colour, prediction, label
    _check(d, "compare")
