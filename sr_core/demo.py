"""The built-in demo dataset: a few simulated, labelled patches over several Slovenian regions.

Built on first use under ``sr_core.paths.demo_dir()`` (``$SR_CORE_HOME/demo``), never inside the code; the app
calls :func:`ensure_demo` at start with a progress callback, and ``python -m sr_core demo`` builds it ahead of
time. Six 250 × 250 px patches (2.5 km × 2.5 km, labels 1000 × 1000), half from the ``train`` seed stream and half
from ``test``, build in well under two minutes on two cores. A ``demo.json`` manifest written last records what
was built; a dataset whose manifest is missing, stale (another simulator version or recipe) or names a missing
folder is rebuilt.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .paths import demo_dir

MANIFEST = "demo.json"
DEMO_SIZE = 250
#: (folder name, region, split, seed) of every demo patch
DEMO_RECIPE: tuple[tuple[str, str, str, int], ...] = (
    ("eopatch-01", "pomurje", "train", 101),
    ("eopatch-02", "podravje", "test", 102),
    ("eopatch-03", "ljubljana_basin", "train", 103),
    ("eopatch-04", "savinja", "test", 104),
    ("eopatch-05", "krsko", "train", 105),
    ("eopatch-06", "vipava", "test", 106),
)
_LOCK = ".building"
_STALE_LOCK_S = 600.0

ProgressCallback = Callable[[int, int, str], None]


def _recipe_json() -> list[dict[str, Any]]:
    return [{"name": n, "region": r, "split": s, "seed": seed, "size": DEMO_SIZE} for n, r, s, seed in DEMO_RECIPE]


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_current(folder: Path) -> bool:
    from .simulate import SIMULATOR_VERSION

    m = _read_manifest(folder)
    if not m or m.get("simulator_version") != SIMULATOR_VERSION or m.get("recipe") != _recipe_json():
        return False
    return all((folder / p["name"]).is_dir() for p in m["recipe"])


def demo_patch_paths() -> list[Path]:
    """The demo EOPatch folders, in recipe order; empty when the dataset has not been built (or is stale)."""
    folder = demo_dir()
    if not _is_current(folder):
        return []
    return [folder / name for name, *_ in DEMO_RECIPE]


def _acquire_lock(folder: Path, progress: ProgressCallback | None) -> bool:
    """Take the build lock; when another process holds it, wait for it to finish. True if we hold the lock."""
    lock = folder / _LOCK
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                age = time.time() - lock.stat().st_mtime
            except OSError:
                continue
            if age > _STALE_LOCK_S:
                lock.unlink(missing_ok=True)
                continue
            if progress:
                progress(0, len(DEMO_RECIPE), "another process is building the demo data; waiting")
            time.sleep(1.0)
            if _is_current(folder):
                return False
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True


def ensure_demo(progress: ProgressCallback | None = None, force: bool = False) -> list[Path]:
    """Build the demo dataset if it is missing or stale (or ``force``), and return its EOPatch folders.

    ``progress(done, total, message)`` is called before and after each patch.
    """
    from .io import write_eopatch
    from .simulate import SIMULATOR_VERSION, simulate_patch

    folder = demo_dir()
    if not force and _is_current(folder):
        paths = demo_patch_paths()
        if progress:
            progress(len(paths), len(paths), "demo data ready")
        return paths
    if not _acquire_lock(folder, progress):
        return demo_patch_paths()
    total = len(DEMO_RECIPE)
    try:
        (folder / MANIFEST).unlink(missing_ok=True)
        t0 = time.perf_counter()
        for i, (name, region, split, seed) in enumerate(DEMO_RECIPE):
            if progress:
                progress(i, total, f"simulating {name} ({region}, {split} seed {seed})")
            patch = simulate_patch(seed, size=DEMO_SIZE, split=split, region=region)
            write_eopatch(patch, folder / name, overwrite=True)
        manifest = {
            "simulator_version": SIMULATOR_VERSION,
            "recipe": _recipe_json(),
            "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(time.perf_counter() - t0, 1),
            "note": "simulated data (sr_core.simulate), not real Sentinel-2 observations",
        }
        tmp = folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        tmp.replace(folder / MANIFEST)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the demo data under {folder} ({exc.strerror or exc}); set SR_CORE_HOME to a writable folder"
        ) from exc
    finally:
        (folder / _LOCK).unlink(missing_ok=True)
    if progress:
        progress(total, total, "demo data ready")
    return demo_patch_paths()
