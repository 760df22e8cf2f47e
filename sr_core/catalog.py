"""The catalogue of patches the app can show: the built-in simulated demo set plus configured folders of real EOPatches.

Summaries (footprint, dates, cloud cover, cultivated share) are computed once per patch folder and cached in
``$SR_CORE_HOME/cache/catalog.json`` keyed by the folder's path and modification time, so the map page opens fast.
Real folders come from ``$SR_CORE_DATA`` (one or more folders separated by ``os.pathsep``) and from the app's
settings (:func:`save_real_folders`).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .errors import SRCoreError

ENV_DATA = "SR_CORE_DATA"
_SETTINGS = "settings.json"
_CACHE_VERSION = 2


@dataclass
class PatchSummary:
    path: str
    name: str
    source: str  #: "simulated" | "real"
    product_level: str
    n_dates: int
    height: int
    width: int
    first_date: str
    last_date: str
    epsg: int
    bounds: tuple[float, float, float, float]
    lonlat_ring: list[tuple[float, float]]
    cloud_cover: float  #: mean per-date cloud fraction
    cultivated_share: float | None  #: share of 2.5 m pixels labelled cultivated (None without labels)
    has_labels: bool
    region: str = ""
    features: list[str] = field(default_factory=list)
    error: str = ""  #: set when the folder could not be read (shown, not hidden)

    @property
    def centre_lonlat(self) -> tuple[float, float]:
        if not self.lonlat_ring:
            return (14.9, 46.1)
        ring = np.asarray(self.lonlat_ring[:-1] or self.lonlat_ring)
        return float(ring[:, 0].mean()), float(ring[:, 1].mean())


def _fingerprint(folder: Path) -> str:
    stamps = [folder.stat().st_mtime_ns]
    for sub in ("data", "mask", "mask_timeless"):
        p = folder / sub
        if p.exists():
            stamps.append(p.stat().st_mtime_ns)
    return "-".join(map(str, stamps))


def lonlat_ring(bounds: tuple[float, float, float, float], epsg: int, per_edge: int = 1) -> list[tuple[float, float]]:
    """Footprint in WGS84 (lon, lat), closed ring: the corners, and ``per_edge - 1`` points between them on each edge
    (a straight UTM edge is slightly curved in lon/lat: about 0.5 m off the chord on a 5 km patch)."""
    from pyproj import Transformer

    tr = Transformer.from_crs(epsg, 4326, always_xy=True)
    x0, y0, x1, y1 = bounds
    t = np.linspace(0.0, 1.0, max(1, int(per_edge)) + 1)[:-1]
    xs = np.concatenate([np.full_like(t, x0), x0 + t * (x1 - x0), np.full_like(t, x1), x1 - t * (x1 - x0), [x0]])
    ys = np.concatenate([y0 + t * (y1 - y0), np.full_like(t, y1), y1 - t * (y1 - y0), np.full_like(t, y0), [y0]])
    lon, lat = tr.transform(xs, ys)
    return [(round(float(a), 7), round(float(b), 7)) for a, b in zip(lon, lat, strict=True)]


def summarise(folder: Path) -> PatchSummary:
    """Read a patch folder and compute its summary (raises SRCoreError on unreadable input)."""
    from .io import load_eopatch

    p = load_eopatch(folder)
    cf = p.cloud_fraction()
    share = float(p.cultivated.mean()) if p.cultivated is not None else None
    return PatchSummary(
        path=str(folder), name=p.name, source=p.info.source.value, product_level=p.info.product_level.value,
        n_dates=p.n_dates, height=p.height, width=p.width,
        first_date=p.timestamps[0].isoformat(), last_date=p.timestamps[-1].isoformat(), epsg=p.bbox.epsg,
        bounds=p.bbox.bounds, lonlat_ring=lonlat_ring(p.bbox.bounds, p.bbox.epsg),
        cloud_cover=float(np.nanmean(cf)) if np.isfinite(cf).any() else float("nan"),
        cultivated_share=share, has_labels=p.has_labels, region=str(p.info.meta.get("region", "")),
        features=p.features_present(),
    )


def _settings_path() -> Path:
    return paths.data_home() / _SETTINGS


def load_settings() -> dict[str, Any]:
    try:
        return json.loads(_settings_path().read_text())
    except (OSError, ValueError):
        return {}


def save_real_folders(folders: list[str]) -> None:
    s = load_settings()
    s["real_folders"] = [str(Path(f).expanduser()) for f in folders if f.strip()]
    _settings_path().write_text(json.dumps(s, indent=2))


def real_folders() -> list[Path]:
    """Configured folders of real EOPatches: ``$SR_CORE_DATA`` first, then the app's settings."""
    raw = [p for p in os.environ.get(ENV_DATA, "").split(os.pathsep) if p.strip()]
    raw += load_settings().get("real_folders", [])
    out: list[Path] = []
    for r in raw:
        path = Path(r).expanduser()
        if path not in out:
            out.append(path)
    return out


def patch_folders(folder: Path) -> list[Path]:
    """EOPatch folders at or below ``folder`` (the folder itself when it is one)."""
    from .io.archive import find_eopatches

    return find_eopatches(folder)


def build_catalog(extra_folders: list[Path] | None = None, include_demo: bool = True) -> list[PatchSummary]:
    """Summaries of every available patch (demo set + real folders), using and refreshing the cache."""
    cache_file = paths.cache_dir() / "catalog.json"
    try:
        cache = json.loads(cache_file.read_text())
        if cache.get("version") != _CACHE_VERSION:
            cache = {}
    except (OSError, ValueError):
        cache = {}
    entries: dict[str, Any] = cache.get("entries", {})
    roots: list[Path] = []
    if include_demo:
        roots.append(paths.demo_dir())
    roots += real_folders() + list(extra_folders or [])
    out: list[PatchSummary] = []
    seen: set[str] = set()
    for root in roots:
        if not root.exists():
            continue
        for folder in patch_folders(root):
            key = str(folder.resolve())
            if key in seen:
                continue
            seen.add(key)
            fp = _fingerprint(folder)
            hit = entries.get(key)
            if hit and hit.get("fingerprint") == fp:
                out.append(PatchSummary(**hit["summary"]))
                continue
            try:
                s = summarise(folder)
            except SRCoreError as exc:
                s = PatchSummary(path=key, name=folder.name, source="real", product_level="unknown", n_dates=0, height=0,
                                 width=0, first_date="", last_date="", epsg=0, bounds=(0, 0, 0, 0), lonlat_ring=[],
                                 cloud_cover=float("nan"), cultivated_share=None, has_labels=False, error=str(exc))
            entries[key] = {"fingerprint": fp, "summary": asdict(s)}
            out.append(s)
    with contextlib.suppress(OSError):
        cache_file.write_text(json.dumps({"version": _CACHE_VERSION, "entries": entries}))
    return out
