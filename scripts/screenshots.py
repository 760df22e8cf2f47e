"""Screenshots of every page on the simulated demo data, for docs/screenshots (small, palette PNGs).

Starts the app on a free port with its own $SR_CORE_HOME (the demo set is built first), drives headless Chromium at
1280 × 800 with no network (scripts/_browser.py), runs the model on the compare page, uploads a demo patch on the
Upload page, and saves the first screen of each page as a PNG.

    nice -n 19 .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--home DIR] [--pages home,upload]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from scripts._browser import WIDTH, chromium, click_button, map_frame, settle, start_app, stop_app  # noqa: E402


def save(d, out: Path, name: str) -> None:
    """The first screen at 1280 × 800 as a palette PNG (small in the repository)."""
    from PIL import Image

    d.switch_to.default_content()
    raw = out / f"{name}.raw.png"
    d.save_screenshot(str(raw))
    im = Image.open(raw).convert("RGB")
    if im.width != WIDTH:
        im = im.resize((WIDTH, round(im.height * WIDTH / im.width)), Image.LANCZOS)
    im.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(out / f"{name}.png", optimize=True)
    raw.unlink()
    print(f"{out / (name + '.png')}: {im.width} × {im.height}, {(out / (name + '.png')).stat().st_size // 1024} KiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    ap.add_argument("--home", default=None, help="SR_CORE_HOME to use (default: a fresh temporary folder)")
    ap.add_argument("--pages", default="home,time-series,compare,upload,hallucinations,leaderboard")
    args = ap.parse_args()
    pages = args.pages.split(",")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    home = args.home or tempfile.mkdtemp(prefix="sr-shots-")
    env = {"SR_CORE_HOME": home}
    subprocess.run([sys.executable, "-m", "sr_core", "demo"], cwd=REPO, env={**os.environ, **env}, check=True)
    proc, url = start_app(env)
    d = chromium()
    try:
        names = sorted(p.name for p in (Path(home) / "demo").iterdir() if p.is_dir())
        patch = names[0]
        if "home" in pages:
            d.get(f"{url}/?patch={patch}")
            settle(d)
            map_frame(d, 0)  # Slovenia with every footprint (no image layer until "Zoom to selection")
            time.sleep(1)
            save(d, out, "home")
        if "time-series" in pages:
            d.get(f"{url}/Time_series?patch={patch}&date=2019-06-01")
            settle(d)
            map_frame(d, 1)
            time.sleep(1)
            save(d, out, "time-series")
        if "compare" in pages:
            d.get(f"{url}/Predict_and_compare?patch={patch}")
            settle(d)
            click_button(d, "Run model")
            settle(d, 900)
            map_frame(d, 3, timeout=300)
            settle(d, 300)  # the baselines' table fills in below the map
            map_frame(d, 3)
            time.sleep(1)
            save(d, out, "compare")
        if "upload" in pages:
            upload(d, url, Path(home) / "demo" / patch)
            save(d, out, "upload")
        if "hallucinations" in pages:
            d.get(f"{url}/Hallucinations?patch={patch}")
            settle(d)
            click_button(d, "Inspect")  # the outcome map over the imagery
            settle(d, 900)
            wait_for_image_map(d, "hallucinations")
            save(d, out, "hallucinations")
        if "leaderboard" in pages:
            d.get(f"{url}/Leaderboard")
            settle(d)
            time.sleep(1)
            save(d, out, "leaderboard")
    finally:
        d.quit()
        stop_app(proc)


def wait_for_image_map(d, page: str) -> None:
    """Wait for the page's map to show an image layer (the screenshot is taken anyway, with a note, if it does not)."""
    try:
        map_frame(d, 1, timeout=120)
    except TimeoutError:
        print(f"{page}: no map with an image layer (saved anyway)")
    time.sleep(1)


def upload(d, url: str, folder: Path) -> None:
    """The Upload page after a valid upload of one demo patch (zipped here), with its map."""
    import shutil

    from selenium.webdriver.common.by import By

    tmp = Path(tempfile.mkdtemp(prefix="sr-shots-up-"))
    archive = Path(shutil.make_archive(str(tmp / folder.name), "zip", folder.parent, folder.name))
    d.get(f"{url}/Upload")
    settle(d)
    d.find_element(By.CSS_SELECTOR, 'input[type="file"]').send_keys(str(archive))
    deadline = time.time() + 300
    while "Validation report" not in d.page_source and time.time() < deadline:
        time.sleep(0.5)
    settle(d, 300)
    wait_for_image_map(d, "upload")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
