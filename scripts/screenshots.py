"""Screenshots of every page on the simulated demo data, for docs/screenshots (small, palette PNGs).

Starts the app on a free port with its own $SR_CORE_HOME (the demo set is built on first start), drives headless
Chromium with Selenium, runs the model on the compare page, and saves one PNG per page.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settle(d, timeout: float = 180) -> None:
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    time.sleep(1.5)
    while time.time() < deadline:
        if not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'):
            time.sleep(1.0)
            if not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'):
                return
        time.sleep(0.5)


def save(d, out: Path, name: str, width: int = 1100) -> None:
    from PIL import Image

    raw = out / f"{name}.raw.png"
    d.save_screenshot(str(raw))
    im = Image.open(raw).convert("RGB")
    im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    im.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out / f"{name}.png", optimize=True)
    raw.unlink()
    print(f"{out / (name + '.png')}: {(out / (name + '.png')).stat().st_size // 1024} KiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    ap.add_argument("--home", default=None, help="SR_CORE_HOME to use (default: a fresh temporary folder)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    home = args.home or tempfile.mkdtemp(prefix="sr-shots-")
    env = {**os.environ, "SR_CORE_HOME": home}
    subprocess.run([sys.executable, "-m", "sr_core", "demo"], cwd=REPO, env=env, check=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true", "--server.address", "127.0.0.1"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
              "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1500,1150"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        names = sorted(p.name for p in (Path(home) / "demo").iterdir() if p.is_dir())
        patch = names[0]
        d.get(url)
        settle(d)
        save(d, out, "home")
        d.get(f"{url}/Time_series?patch={patch}&date=2019-06-01")
        settle(d)
        save(d, out, "time-series")
        d.get(f"{url}/Predict_and_compare?patch={patch}")
        settle(d)
        for b in d.find_elements(By.TAG_NAME, "button"):
            if "Run model" in b.text:
                b.click()
                break
        settle(d, 600)
        d.execute_script("window.scrollTo(0, 420)")
        time.sleep(1)
        save(d, out, "compare")
        d.get(f"{url}/Upload")
        settle(d)
        save(d, out, "upload")
        d.get(f"{url}/Hallucinations?patch={patch}")
        settle(d)
        save(d, out, "hallucinations")
        d.get(f"{url}/Leaderboard")
        settle(d)
        save(d, out, "leaderboard")
    finally:
        d.quit()
        proc.terminate()


if __name__ == "__main__":
    main()
