"""The app in a real browser, shared by bench/bench_maps_browser.py, scripts/screenshots.py and tests/test_browser.py:
start Streamlit on a free local port, start headless Chromium (Debian's chromium + chromium-driver, Selenium) at
1280 × 800 with every non-local host unreachable, wait for a page to settle, find a Leaflet map's frame."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
WIDTH, HEIGHT = 1280, 800  # a projector: the main map or image belongs in this first screen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict[str, str], timeout: float = 90, log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` on a free port of 127.0.0.1 with ``env`` added to this process's environment; returns
    the process and its URL once it answers its health check (RuntimeError with the server's output otherwise)."""
    port = free_port()
    out = open(log, "wb") if log else subprocess.PIPE  # noqa: SIM115 (the child writes to it until it ends)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    proc.kill()
    said = proc.stdout.read().decode(errors="replace")[-2000:] if proc.stdout else ""
    raise RuntimeError(f"streamlit did not start: {said}")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def chromium(offline: bool = True, performance_log: bool = False):
    """Headless Chromium at 1280 × 800 CSS pixels (device scale 1); ``offline``: every host but 127.0.0.1 unreachable."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and DRIVER):
        raise RuntimeError("Debian packages chromium and chromium-driver are not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--window-size={WIDTH},{HEIGHT}"]
    if offline:
        args.append("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    for a in args:
        opts.add_argument(a)
    if performance_log:
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    d.set_page_load_timeout(60)
    return d


def settle(d, timeout: float = 90) -> bool:
    """Wait until Streamlit has finished running the script (no 'running' indicator) and the page's own elements are
    there (the shell renders before the script has sent anything). False when ``timeout`` passed first."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    time.sleep(1.0)
    while time.time() < deadline:
        running = d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        app = d.find_elements(By.CSS_SELECTOR, '[data-testid="stMain"] [data-testid="stElementContainer"]')
        if app and not running:
            time.sleep(0.5)
            if not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'):
                return True
        time.sleep(0.2)
    return False


def loaded_map_images(d) -> tuple[int, int]:
    """(Leaflet maps, loaded image layers) in the current frame."""
    return tuple(d.execute_script(
        "return [document.querySelectorAll('.leaflet-container').length, "
        "Array.from(document.querySelectorAll('img.leaflet-image-layer'))"
        ".filter(i => i.complete && i.naturalWidth > 0).length]"))


def map_frame(d, min_images: int = 0, timeout: float = 60):
    """Switch into the first streamlit-folium iframe whose Leaflet map has ≥ ``min_images`` loaded image layers and
    return it (TimeoutError, back in the page, when none does in time)."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while time.time() < deadline:
        d.switch_to.default_content()
        for f in d.find_elements(By.CSS_SELECTOR, 'iframe[src*="st_folium"]'):
            d.switch_to.frame(f)
            maps, imgs = loaded_map_images(d)
            if maps and imgs >= min_images:
                return f
            d.switch_to.default_content()
        time.sleep(0.1)
    d.switch_to.default_content()
    raise TimeoutError(f"no Leaflet map with {min_images} image layer(s) on {d.current_url}")


def click_button(d, text: str, timeout: float = 180) -> None:
    """Click the first button whose label contains ``text`` (waiting for it to appear)."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while time.time() < deadline:
        for b in d.find_elements(By.TAG_NAME, "button"):
            if text in b.text:
                b.click()
                return
        time.sleep(0.3)
    raise TimeoutError(f"no button {text!r} on {d.current_url}")


def simulate(out: Path, size: int, seed: int = 3, split: str = "train") -> None:
    """One simulated patch (labelled for split 'train') written under ``out`` by the command line."""
    subprocess.run([sys.executable, "-m", "sr_core", "simulate", "--out", str(out), "--n", "1", "--seed", str(seed),
                    "--size", str(size), "--split", split], check=True, cwd=REPO, capture_output=True,
                   env={**os.environ, "SR_CORE_DEMO": "off"})
