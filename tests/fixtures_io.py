"""Helpers for the I/O tests: write small EOPatch folders in the challenge's eo-learn 0.9 layout.

The legacy pickles are produced the way eo-learn 0.9 produced them (``pickle.dump`` of a sentinelhub ``BBox``, a
list of datetimes stamped with ``dateutil.tz.tzlocal()``, a meta dict), using stand-in ``sentinelhub`` modules
registered in ``sys.modules`` only while pickling (so sentinelhub need not be installed). The pickle stream then
names ``sentinelhub.geometry.BBox`` and ``sentinelhub.constants.CRS`` exactly as the real files do.
"""

from __future__ import annotations

import contextlib
import gzip
import pickle
import sys
import types
from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np


def save_npy_gz(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
    return path


def save_pickle_gz(path: Path, obj: Any, protocol: int = 5) -> Path:
    with _fake_sentinelhub():
        data = pickle.dumps(_as_sentinelhub(obj), protocol=protocol)
    path.write_bytes(gzip.compress(data))
    return path


class _FakeCRS(Enum):
    UTM_33N = "32633"
    WGS84 = "4326"


class _FakeBBox:
    """Carries the same instance state as sentinelhub's BBox (min_x, max_x, min_y, max_y, _crs)."""

    def __init__(self, min_x: float, min_y: float, max_x: float, max_y: float, crs: _FakeCRS) -> None:
        self.min_x, self.max_x, self.min_y, self.max_y, self._crs = min_x, max_x, min_y, max_y, crs


@contextlib.contextmanager
def _fake_sentinelhub() -> Iterator[None]:
    pkg, geometry, constants = (types.ModuleType(n) for n in ("sentinelhub", "sentinelhub.geometry", "sentinelhub.constants"))
    _FakeBBox.__module__, _FakeBBox.__qualname__ = "sentinelhub.geometry", "BBox"
    _FakeCRS.__module__, _FakeCRS.__qualname__ = "sentinelhub.constants", "CRS"
    geometry.BBox = _FakeBBox  # type: ignore[attr-defined]
    constants.CRS = _FakeCRS  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("sentinelhub", "sentinelhub.geometry", "sentinelhub.constants")}
    sys.modules.update({"sentinelhub": pkg, "sentinelhub.geometry": geometry, "sentinelhub.constants": constants})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _as_sentinelhub(obj: Any) -> Any:
    from sr_core.geo import BBox

    if isinstance(obj, BBox):
        crs = {32633: _FakeCRS.UTM_33N, 4326: _FakeCRS.WGS84}[obj.epsg]
        return _FakeBBox(obj.min_x, obj.min_y, obj.max_x, obj.max_y, crs)
    return obj


def tzlocal_stamped(times: list[datetime]) -> list[datetime]:
    """UTC wall-clock times stamped with dateutil's tzlocal, as eo-learn 0.9 stored them."""
    from dateutil.tz import tzlocal

    return [t.replace(tzinfo=tzlocal()) for t in times]


def make_challenge_patch(
    folder: Path, *, T: int = 3, H: int = 6, W: int = 5, seed: int = 0, labels: bool = True, scl: bool = True,
) -> dict[str, Any]:
    """Write a small, realistic challenge-layout EOPatch (uint16 DN cube etc.); return what was written."""
    from sr_core.geo import BBox

    rng = np.random.default_rng(seed)
    dn = rng.integers(100, 6000, (T, H, W, 12), dtype=np.uint16)
    clp = rng.integers(0, 256, (T, H, W, 1), dtype=np.uint8)
    clm = (clp > 150).astype(np.uint8)
    is_data = np.ones((T, H, W, 1), bool)
    is_data[0, 0, 0, 0] = False
    ts = [datetime(2019, 3, 5, 10, 0, 31) + timedelta(days=5 * i, minutes=7 * i) for i in range(T)]
    bbox = BBox(535000.0, 5120000.0, 535000.0 + 10 * W, 5120000.0 + 10 * H)
    save_npy_gz(folder / "data" / "BANDS.npy.gz", dn)
    save_npy_gz(folder / "data" / "CLP.npy.gz", clp)
    save_npy_gz(folder / "mask" / "CLM.npy.gz", clm)
    save_npy_gz(folder / "mask" / "IS_DATA.npy.gz", is_data)
    if scl:
        save_npy_gz(folder / "mask" / "SCL.npy.gz", rng.integers(0, 12, (T, H, W, 1), dtype=np.uint8))
    save_npy_gz(folder / "scalar" / "NORM_FACTORS.npy.gz", np.full((T, 1), 1e-4, np.float32))
    out: dict[str, Any] = {"dn": dn, "clp": clp, "clm": clm, "is_data": is_data, "timestamps": ts, "bbox": bbox}
    if labels:
        cult = rng.uniform(size=(4 * H, 4 * W, 1)) > 0.6
        nd = np.zeros((4 * H, 4 * W, 1), bool)
        nd[:2] = True
        polys = rng.integers(0, 3000, (4 * H, 4 * W, 1)).astype(np.uint16)
        save_npy_gz(folder / "mask_timeless" / "CULTIVATED.npy.gz", cult)
        save_npy_gz(folder / "mask_timeless" / "NOT_DECLARED.npy.gz", nd)
        save_npy_gz(folder / "mask_timeless" / "ALL_POLYS.npy.gz", polys)
        out.update(cultivated=cult[..., 0], not_declared=nd[..., 0], all_polys=polys[..., 0])
    save_pickle_gz(folder / "bbox.pkl.gz", bbox)
    save_pickle_gz(folder / "timestamp.pkl.gz", tzlocal_stamped(ts))
    meta = {"maxcc": 0.5, "size_x": W, "size_y": H, "time_difference": timedelta(hours=2),
            "time_interval": (datetime(2019, 3, 1), datetime(2019, 9, 1))}
    save_pickle_gz(folder / "meta_info.pkl.gz", meta)
    return out
