"""Real labelled Sentinel-2 pixels with monthly time series: real phenology for training and checking the model.

The format is that of the WorldCereal "presto" test points (a folder with ``S2_monthly.npy.gz``, an (N, 12, 10)
uint16 array of monthly L2A composites, DN × 1e-4 reflectance, 0 = no data, bands B02 B03 B04 B05 B06 B07 B08 B8A
B11 B12; and ``labels.csv`` with ``lat``, ``lon``, ``start_date`` (first month of the 12), ``LANDCOVER_LABEL`` and
``pixelids``). Only arrays and CSV text are read (no pickle).

What a point becomes. Its months inside the growing season the model is given (March … August, as
:func:`sr_core.prepare.prepare_input` keeps 1 March – 1 September) are dated on the 15th of the month, in the
calendar year of that month; B01 and B09, which these composites lack, are filled by the model's documented rule
(:func:`sr_core.prepare.fill_bands`: B01 ← B02, B09 ← B8A). The land-cover label maps to the benchmark's classes:
annual crops (11) are cultivated; perennial crops (12: orchards, vineyards), grassland (13), herbaceous and shrub
vegetation, trees, bare land, built-up and water are not (as in the challenge's mapping); unknown classes (10, 99)
are left out. Points outside Europe's temperate latitudes are left out by default (another hemisphere or climate
has another calendar).

In training (``train --points DIR``) each point is a small uniform tile: the network must call it from its spectra
and their course over the season alone, which is what decides crop against grassland on real land.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .bands import BAND_NAMES
from .errors import ConfigError

if TYPE_CHECKING:
    from .patch import Patch

#: bands of the monthly composites, in their order
POINT_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
SEASON_MONTHS: tuple[int, ...] = (3, 4, 5, 6, 7, 8)  #: months inside the 1 March – 1 September season
CULTIVATED_CODES = frozenset({11})
NOT_CULTIVATED_CODES = frozenset({12, 13, 20, 30, 40, 41, 42, 50, 60, 70, 80})
EUROPE = (35.0, 62.0, -11.0, 32.0)  #: lat_min, lat_max, lon_min, lon_max of the default region


@dataclass(frozen=True)
class PointSet:
    """N real pixels, each a short series of monthly composites in the model's 12-band layout."""

    bands: np.ndarray  # (N, T, 12) float32 reflectance
    valid: np.ndarray  # (N, T) bool
    doy: np.ndarray  # (N, T) float32 day of year of each composite
    label: np.ndarray  # (N,) float32: 1 cultivated, 0 not
    landcover: np.ndarray  # (N,) int: the source land-cover code
    ids: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def subset(self, idx: np.ndarray) -> PointSet:
        idx = np.asarray(idx)
        return PointSet(self.bands[idx], self.valid[idx], self.doy[idx], self.label[idx], self.landcover[idx],
                        tuple(self.ids[i] for i in idx))

    def holdout(self, fraction: float = 0.2) -> tuple[PointSet, PointSet]:
        """(train, held out): a fixed split by a hash of each point's id (the same on every machine and run)."""
        h = np.array([int(hashlib.sha256(i.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for i in self.ids])
        return self.subset(np.flatnonzero(h >= fraction)), self.subset(np.flatnonzero(h < fraction))


def _month_dates(start: date) -> list[datetime]:
    out = []
    for m in range(12):
        y, mo = start.year + (start.month - 1 + m) // 12, (start.month - 1 + m) % 12 + 1
        out.append(datetime(y, mo, 15))
    return out


def load_points(path: str | Path, region: tuple[float, float, float, float] | None = EUROPE,
                months: tuple[int, ...] = SEASON_MONTHS) -> PointSet:
    """Read a monthly-points folder (see the module docstring) → :class:`PointSet` of the labelled points in
    ``region`` (None = all), with the composites of ``months`` only."""
    from .features import day_of_year
    from .prepare import fill_bands

    root = Path(path)
    arr_path, csv_path = root / "S2_monthly.npy.gz", root / "labels.csv"
    for p in (arr_path, csv_path):
        if not p.is_file():
            raise ConfigError(f"{root.name}: no {p.name}; a points folder holds S2_monthly.npy.gz and labels.csv")
    try:
        with gzip.open(arr_path, "rb") as f:
            dn = np.load(f, allow_pickle=False)  # never unpickle: object arrays are refused
    except (ValueError, OSError, EOFError) as exc:
        raise ConfigError(f"{root.name}: S2_monthly.npy.gz is not a gzipped plain numeric .npy array ({exc}); "
                          "write it with np.save of a (points, months, bands) uint16 array, gzipped") from None
    if not np.issubdtype(dn.dtype, np.number):
        raise ConfigError(f"{root.name}: S2_monthly.npy.gz holds {dn.dtype} values; expected uint16 digital numbers")
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{root.name}: labels.csv is not a readable UTF-8 CSV ({exc})") from None
    missing = [c for c in ("lat", "lon", "start_date", "LANDCOVER_LABEL") if rows and c not in rows[0]]
    if missing:
        raise ConfigError(f"{root.name}: labels.csv lacks the column(s) {', '.join(missing)}")
    if dn.ndim != 3 or dn.shape[0] != len(rows) or dn.shape[2] != len(POINT_BANDS):
        raise ConfigError(f"{root.name}: S2_monthly has shape {dn.shape}; expected ({len(rows)}, months, "
                          f"{len(POINT_BANDS)}) to match labels.csv")
    src = [POINT_BANDS.index(b) if b in POINT_BANDS else -1 for b in BAND_NAMES]
    keep, bands, valid, doys, labels, codes, ids = [], [], [], [], [], [], []
    for i, r in enumerate(rows):
        try:
            code = int(float(r["LANDCOVER_LABEL"]))
            lat, lon = float(r["lat"]), float(r["lon"])
            start = date.fromisoformat(str(r["start_date"])[:10])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{root.name}: labels.csv row {i + 2} is not readable ({exc}): LANDCOVER_LABEL, lat "
                              "and lon must be numbers, start_date a date (YYYY-MM-DD)") from None
        if code not in CULTIVATED_CODES | NOT_CULTIVATED_CODES:
            continue
        if region is not None and not (region[0] <= lat <= region[1] and region[2] <= lon <= region[3]):
            continue
        dates = _month_dates(start)
        sel = [m for m, d in enumerate(dates) if d.month in months]
        x = dn[i, sel].astype(np.float32) * 1e-4  # (T, 10)
        b12 = np.zeros((len(sel), len(BAND_NAMES)), np.float32)
        for j, s in enumerate(src):
            if s >= 0:
                b12[:, j] = x[:, s]
        b12 = np.asarray(fill_bands(b12[:, None, None, :], ["B01", "B09"]))[:, 0, 0]
        keep.append(i)
        bands.append(b12)
        valid.append((dn[i, sel] > 0).all(axis=1))
        doys.append(day_of_year([dates[m] for m in sel]).astype(np.float32))
        labels.append(1.0 if code in CULTIVATED_CODES else 0.0)
        codes.append(code)
        ids.append(str(r.get("pixelids") or i) + f"@{lat:.5f},{lon:.5f}")
    if not keep:
        raise ConfigError(f"{root.name}: no labelled point in the region {region}")
    if len({b.shape[0] for b in bands}) != 1:
        raise ConfigError(f"{root.name}: points cover different numbers of season months")
    return PointSet(np.stack(bands), np.stack(valid), np.stack(doys), np.asarray(labels, np.float32),
                    np.asarray(codes), tuple(ids))


POINT_TILE = 16  #: a real point is a uniform tile of this side (10 m px) in training and scoring; its centre is read
#: share of the points :meth:`PointSet.holdout` keeps out of ``train --points`` (and ``evaluate --points`` scores)
HOLDOUT = 0.2
#: nominal year the months of a point are dated in by :func:`point_patch` (its series may span two calendar years;
#: the model sees its months as one season, as ``train --points`` does through their days of the year)
NOMINAL_YEAR = 2019
LANDCOVER_NAMES: dict[int, str] = {11: "annual crop", 12: "perennial crop", 13: "grassland", 20: "wetland",
                                   30: "herbaceous / shrub", 40: "trees", 41: "trees", 42: "trees", 50: "bare",
                                   60: "built-up", 70: "snow", 80: "water"}


def point_patch(points: PointSet, i: int, tile: int = POINT_TILE) -> Patch:
    """Point ``i`` as a uniform ``tile`` × ``tile`` patch of its season months (dated on their day of the year in
    :data:`NOMINAL_YEAR`; months without data are masked as no data), for any predictor that takes a Patch. Its
    footprint is nominal (the point's own location is not a 10 m grid): the patch is for scoring, never written."""
    from datetime import timedelta

    from .geo import BBox
    from .patch import Patch, PatchInfo

    doy = points.doy[i]
    ts = [datetime(NOMINAL_YEAR, 1, 1) + timedelta(days=float(d) - 1.0) for d in doy]
    bands = np.ascontiguousarray(np.broadcast_to(points.bands[i][:, None, None, :], (len(ts), tile, tile, 12)),
                                 np.float32)
    ok = np.ascontiguousarray(np.broadcast_to(points.valid[i][:, None, None], (len(ts), tile, tile)))
    return Patch(bands=bands * ok[..., None], timestamps=ts, bbox=BBox(0.0, 0.0, 10.0 * tile, 10.0 * tile),
                 cloud_mask=np.zeros_like(ok), is_data=ok.copy(),
                 info=PatchInfo(name=f"point-{points.ids[i]}", meta={"source": "real", "kind": "monthly point"}))


def point_tiles(points: PointSet, idx: np.ndarray, tile: int = 8) -> tuple[np.ndarray, ...]:
    """Uniform ``tile`` × ``tile`` patches of the points ``idx``: (bands (B,T,t,t,12), valid (B,T,t,t), doy (B,T),
    label (B,1,4t,4t))."""
    from .patch import SCALE

    b = points.bands[idx][:, :, None, None, :]
    bands = np.ascontiguousarray(np.broadcast_to(b, (len(idx), b.shape[1], tile, tile, b.shape[-1])))
    valid = np.ascontiguousarray(np.broadcast_to(points.valid[idx][:, :, None, None], bands.shape[:4]))
    label = np.broadcast_to(points.label[idx][:, None, None, None], (len(idx), 1, SCALE * tile, SCALE * tile))
    return bands.astype(np.float32), valid, points.doy[idx].astype(np.float32), np.ascontiguousarray(label, np.float32)
