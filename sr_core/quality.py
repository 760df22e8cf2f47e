"""What a patch's series lacks, said plainly; and which product level (L1C / L2A) its reflectance is.

* :func:`series_warnings` lists plain warnings shown with every prediction (single or no usable date, all frames
  cloudy, frames without data, dates outside the March–September season, L1C input, computed cloud masks, no
  cloud layer at all). A prediction is still made: the warnings say how far to trust it.
* :func:`detect_product_level` tells L1C from L2A: first from metadata (``product_level``, or an ``L1C`` / ``L2A``
  token in ``data_collection``, ``processing_level``, ``layer`` …), then from reflectance statistics
  (:func:`reflectance_level`). The loader applies the same logic when the metadata is silent.
* :func:`radiometric_offset` finds processing baseline 04.00's +1000 DN offset (products from 25 January 2022, and
  ESA's reprocessed Collection 1), which read as DN × 1e-4 makes every pixel 0.1 too bright; the loader removes it
  (:func:`remove_offset`) before it judges the level, from the metadata where it states the offset
  (:func:`offset_from_meta`), else from the red of clear vegetation, and :func:`series_warnings` says so.

**Reflectance statistics.** Top-of-atmosphere (L1C) reflectance includes the atmosphere's path radiance, strongest
in the coastal-aerosol and blue bands: over dense vegetation, whose surface reflectance at 443 / 490 nm is only
0.01–0.04 in L2A, L1C shows ≈ 0.08–0.12 in B01 and ≈ 0.06–0.09 in B02. :func:`reflectance_level` takes, per date,
the 5th percentile of B01 and B02 over valid dense-vegetation pixels (NDVI > 0.5, B08 > 0.15: never clouds, which
have NDVI ≈ 0), keeps the clearest (darkest) date, and decides

* **L1C** when B01 ≥ :data:`L1C_MIN_B01` (0.07) and B02 ≥ :data:`L1C_MIN_B02` (0.05),
* **L2A** when B01 ≤ :data:`L2A_MAX_B01` (0.05) and B02 ≤ :data:`L2A_MAX_B02` (0.045),
* otherwise, or with fewer than :data:`MIN_VEGETATION_PIXELS` such pixels, it cannot tell (``unknown``).

Calibration: the real L1C fixture (Slovenian forest, July–September 2015) gives B01 = 0.100 and B02 = 0.070 on its
clearest date; the same frames with the atmosphere removed by dark-object subtraction (the L2A counterpart built
in ``tests/test_quality.py``) and typical Sen2Cor L2A forest values give B01, B02 ≈ 0.01–0.04. The gap between
0.05 and 0.07 is left undecided on purpose; haze and low winter sun raise L2A values toward it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from .bands import BLUE, DEFAULT_NORM_FACTOR, NIR, RED, band_index
from .errors import PatchFormatError
from .patch import Patch, ProductLevel
from .prepare import input_warnings

#: Growing-season months the model was trained on (the challenge period is March–September 2019).
SEASON_MONTHS = frozenset(range(3, 10))
#: A date is "usable" when at least this share of its data pixels is clear. sr_core.features.series_report applies
#: the same fraction to all of a date's pixels (the usable_dates count in Prediction.extra).
USABLE_DATE_FRACTION = 0.5
#: A date is "cloudy" when at least this share of its data pixels is cloud.
CLOUDY_DATE_FRACTION = 0.5
#: What one date is worth, measured on real data (``docs/EVALUATION.md``, "One date"), said with that warning.
SINGLE_DATE_FACT = ("on the real Flanders patch one clear date scores a median weighted MCC of 0.18, 0.06–0.63 by "
                    "date, against 0.71 for its season: a spring date cannot tell winter cereals from grassland, and "
                    "late July and August dates do best")
#: Fewer usable dates than this earns a "weak series" warning.
MIN_USABLE_DATES = 4
#: What a few dates are worth, measured on real data (``docs/EVALUATION.md``, "How many dates"), said with that
#: warning: how the dates spread over the season matters more than how many there are.
FEW_DATES_FACT = ("on the real Flanders patch, random sets of 3, 5 and 8 clear dates give a median weighted MCC of "
                  "0.47, 0.58 and 0.69, and one clear date a month from March to August 0.74, against 0.71 for its "
                  "whole season")
#: A series whose usable dates all fall before this month (of the season) earns the "no late-season date" warning.
LATE_SEASON_MONTH = 7
#: What such a series is worth, measured on real data, said with that warning.
LATE_SEASON_FACT = ("until the cereal harvest winter cereals look like grassland: on the real Flanders patch its 18 "
                    "dates up to June score a weighted MCC of 0.22, against 0.71 for the whole season")

L1C_MIN_B01 = 0.07
L1C_MIN_B02 = 0.05
L2A_MAX_B01 = 0.05
L2A_MAX_B02 = 0.045
MIN_VEGETATION_PIXELS = 25
_B01 = band_index("B01")

L1C_WARNING = (
    "the bundled model was trained on L2A surface reflectance; this is L1C top-of-atmosphere: expect a bias "
    "(hazier, brighter blue bands), so treat the map with caution or supply L2A data"
)

_META_KEYS = ("product_level", "processing_level", "data_collection", "datacollection", "collection", "layer",
              "product_type", "data_source", "service_type")
_LEVEL_TOKEN = re.compile(r"L1C|L2A", re.IGNORECASE)


# -- product level ---------------------------------------------------------------------------------------------------
def _strings(value: Any, depth: int = 0) -> list[str]:
    if depth > 4:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v, depth + 1)]
    if isinstance(value, (list, tuple)):
        return [s for v in value[:50] for s in _strings(v, depth + 1)]
    return []


def level_from_meta(meta: Mapping[str, Any]) -> tuple[ProductLevel | None, str]:
    """Product level stated by metadata, or (None, why not). An explicit ``product_level`` wins; otherwise an
    ``L1C`` / ``L2A`` token in a collection / layer / processing-level entry (e.g. ``SENTINEL2_L1C``,
    ``BANDS-S2-L2A``). Contradicting tokens give None."""
    lower = {str(k).lower(): v for k, v in meta.items()}
    explicit = lower.get("product_level")
    if isinstance(explicit, str) and explicit.upper() in ("L1C", "L2A"):
        return ProductLevel(explicit.upper()), f"meta_info product_level = {explicit!r}"
    found: dict[str, str] = {}
    for key in _META_KEYS:
        if key not in lower:
            continue
        for s in _strings(lower[key]):
            for m in _LEVEL_TOKEN.finditer(s):
                level = m.group(0).upper()
                found.setdefault(level, f"meta_info {key} = {s!r}")
    if len(found) == 1:
        level, why = next(iter(found.items()))
        return ProductLevel(level), why
    if len(found) > 1:
        return None, "metadata mentions both L1C and L2A (" + "; ".join(found.values()) + ")"
    return None, "metadata does not state the product level"


def reflectance_level(bands: np.ndarray, valid: np.ndarray | None = None) -> tuple[ProductLevel, str]:
    """L1C / L2A / unknown from dark dense-vegetation reflectance in B01 and B02 (see the module docs)."""
    bands = np.asarray(bands)
    T = bands.shape[0]
    b01_col = bands[..., _B01]
    no_b01 = not bool(np.any(np.isfinite(b01_col) & (b01_col != 0)))  # B01 never delivered: decide on B02 alone
    best: tuple[float, float, int, int] | None = None  # (b01, b02, date, n)
    for t in range(T):
        b = bands[t]
        nir, red = b[..., NIR].astype(np.float32), b[..., RED].astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = (nir - red) / (nir + red)
        sel = (ndvi > 0.5) & (nir > 0.15) & np.isfinite(b[..., _B01]) & np.isfinite(b[..., BLUE])
        if valid is not None:
            sel &= np.asarray(valid[t], bool)
        n = int(sel.sum())
        if n < MIN_VEGETATION_PIXELS:
            continue
        b01 = float(np.percentile(b[..., _B01][sel], 5))
        b02 = float(np.percentile(b[..., BLUE][sel], 5))
        if best is None or (b02 if no_b01 else b01) < (best[1] if no_b01 else best[0]):
            best = (b01, b02, t, n)
    if best is None:
        return ProductLevel.UNKNOWN, (
            f"reflectance statistics inconclusive: no date has {MIN_VEGETATION_PIXELS} clear dense-vegetation pixels "
            "(NDVI > 0.5) to read the atmosphere's blue path radiance from"
        )
    b01, b02, t, n = best
    facts = (f"darkest 5 % of {n} dense-vegetation pixels on date {t + 1} have B01 = {b01:.3f}, B02 = {b02:.3f} "
             f"(L1C top-of-atmosphere ≥ {L1C_MIN_B01:g} / {L1C_MIN_B02:g}, L2A surface ≤ {L2A_MAX_B01:g} / {L2A_MAX_B02:g})")
    if no_b01:
        facts = facts.replace(f"B01 = {b01:.3f}, ", "") + "; B01 holds no signal, so B02 alone decides"
        b01 = L1C_MIN_B01 if b02 >= L1C_MIN_B02 else (L2A_MAX_B01 if b02 <= L2A_MAX_B02 else (L1C_MIN_B01 + L2A_MAX_B01) / 2)
    if b01 >= L1C_MIN_B01 and b02 >= L1C_MIN_B02:
        return ProductLevel.L1C, f"L1C detected from reflectance: {facts}"
    if b01 <= L2A_MAX_B01 and b02 <= L2A_MAX_B02:
        return ProductLevel.L2A, f"L2A detected from reflectance: {facts}"
    return ProductLevel.UNKNOWN, f"reflectance statistics inconclusive: {facts}"


def detect_product_level(patch: Patch) -> tuple[ProductLevel, str]:
    """(level, reason): from ``patch.info.meta`` when it states the level, else from reflectance statistics."""
    level, why = level_from_meta(patch.info.meta)
    if level is not None:
        return level, f"{level.value} stated by {why}"
    valid = patch.valid_mask() if (patch.cloud_mask is not None or patch.cloud_prob is not None
                                   or patch.is_data is not None) else None
    return reflectance_level(patch.bands, valid)


# -- processing-baseline offset --------------------------------------------------------------------------------------
#: Processing baseline 04.00, in force from 25 January 2022, stores every L1C and L2A digital number 1000 higher
#: (``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET`` = −1000 in the product metadata: reflectance = (DN − 1000) / 10000).
#: ESA's reprocessed Collection 1 carries the same offset into earlier years. Read with the old rule DN / 10000,
#: every pixel of such a product is 0.1 too bright: NDVI collapses towards 0 and every predictor reads nonsense.
PB04_START = datetime(2022, 1, 25)
#: The offset in reflectance at the challenge's DN scale 1e-4.
PB04_OFFSET = 0.1
#: The red reflectance of clear vegetation, which chlorophyll keeps dark in every product: the 1st percentile of
#: B04 over clear pixels whose NIR exceeds red by :data:`OFFSET_VEG_NIR_MINUS_RED` (a difference the offset does
#: not change, so the same pixels are chosen either way), on the date where it is lowest. It reads 0.010–0.012 in
#: L2A (Flanders 2019: 0.010), 0.031 in L1C (Slovenian forest 2015) and 0.009–0.012 on simulated patches; with the
#: offset, 0.11–0.13. Between these two limits the series carries the offset. Bare soil, water, cloud and snow never
#: count, so a scene of bare winter fields under L1C haze cannot be mistaken for an offset.
OFFSET_DARK_MIN = 0.085
OFFSET_DARK_MAX = 0.16
#: NIR − red above this marks vegetation for the offset check.
OFFSET_VEG_NIR_MINUS_RED = 0.15
#: The largest offset (digital numbers) ``meta_info`` may state; ESA's is −1000.
MAX_STATED_OFFSET_DN = 2000
#: A date takes part when it has at least this many clear vegetation pixels.
OFFSET_MIN_PIXELS = 200
_DARK_SAMPLE = 20_000


@dataclasses.dataclass(frozen=True)
class OffsetCheck:
    """What :func:`radiometric_offset` found for one group of dates (before / from :data:`PB04_START`)."""

    dates: tuple[int, ...]  #: indices of the dates in the group
    darkest: float | None  #: the red of clear vegetation on the group's darkest date (as read), None: no date could tell
    offset: float  #: the reflectance to subtract from every band of these dates (0.0: none)
    reason: str  #: the facts, in words


def _vegetation_red(bands: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Per date, the 1st percentile of red (B04) over clear vegetation pixels with data (NIR − red >
    :data:`OFFSET_VEG_NIR_MINUS_RED`); NaN when a date has fewer than :data:`OFFSET_MIN_PIXELS` of them. Read on
    every k-th row and column (≈ 20 000 pixels a date)."""
    T, H, W = bands.shape[:3]
    k = max(1, int(np.sqrt(H * W / _DARK_SAMPLE)))
    out = np.full(T, np.nan)
    for t in range(T):
        red = bands[t, ::k, ::k, RED].astype(np.float32, copy=False)
        nir = bands[t, ::k, ::k, NIR].astype(np.float32, copy=False)
        with np.errstate(invalid="ignore"):
            sel = np.isfinite(red) & np.isfinite(nir) & (red > 0) & (nir - red > OFFSET_VEG_NIR_MINUS_RED)
        if valid is not None:
            sel &= np.asarray(valid[t], bool)[::k, ::k]
        if int(sel.sum()) >= OFFSET_MIN_PIXELS:
            out[t] = float(np.percentile(red[sel], 1))
    return out


def offset_from_meta(meta: Mapping[str, Any], norm_factor: float | None) -> tuple[float | None, str]:
    """The offset stated by metadata (``boa_add_offset`` or ``radio_add_offset`` in DN, as ESA writes it, e.g.
    −1000; ``harmonized`` / ``harmonize_values`` true: none), or (None, why not)."""
    lower = {str(k).lower(): v for k, v in meta.items()}
    for key in ("harmonized", "harmonize_values", "harmonizevalues"):
        if lower.get(key) is True:
            return 0.0, f"meta_info {key} = true (the offset was removed when the patch was exported)"
    for key in ("boa_add_offset", "radio_add_offset"):
        v = lower.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or abs(v) > MAX_STATED_OFFSET_DN:
            raise PatchFormatError(f"meta_info {key} = {v!r}: expected the product's offset in digital numbers, "
                                   f"-1000 for processing baseline 04.00 and later or 0 (at most ±{MAX_STATED_OFFSET_DN})")
        scale = DEFAULT_NORM_FACTOR if norm_factor is None else norm_factor
        return float(-v * scale), f"meta_info {key} = {v:g}"
    return None, "metadata does not state the offset"


def radiometric_offset(bands: np.ndarray, timestamps: Sequence[datetime], valid: np.ndarray | None = None,
                       ) -> list[OffsetCheck]:
    """Is the series 0.1 too bright (processing baseline 04.00's +1000 DN read as DN / 10000)? One
    :class:`OffsetCheck` per group of dates, before and from :data:`PB04_START` (a group only where it has dates):
    the group carries the offset when the red of its clear vegetation (:func:`_vegetation_red`, on the group's
    darkest date) lies in [:data:`OFFSET_DARK_MIN`, :data:`OFFSET_DARK_MAX`]."""
    dark = _vegetation_red(np.asarray(bands), valid)
    after = np.array([t.replace(tzinfo=None) >= PB04_START for t in timestamps], bool)
    checks = []
    for grp in (np.flatnonzero(~after), np.flatnonzero(after)):
        if grp.size == 0:
            continue
        d = dark[grp]
        span = f"{timestamps[grp[0]]:%Y-%m-%d} … {timestamps[grp[-1]]:%Y-%m-%d}"
        if not np.any(np.isfinite(d)):
            checks.append(OffsetCheck(tuple(grp.tolist()), None, 0.0,
                                      f"dates {span}: no date has {OFFSET_MIN_PIXELS} clear vegetation pixels to "
                                      "check the processing-baseline offset on"))
            continue
        k = int(np.nanargmin(d))
        low = float(d[k])
        facts = (f"dates {span}: clear vegetation's red (B04) reads {low:.3f} at its darkest "
                 f"({timestamps[grp[k]]:%Y-%m-%d}); it is 0.01–0.04 in real products, or 0.11–0.14 with the +1000 DN "
                 "offset of processing baseline 04.00")
        if OFFSET_DARK_MIN <= low <= OFFSET_DARK_MAX:
            checks.append(OffsetCheck(tuple(grp.tolist()), low, PB04_OFFSET, facts))
        elif low > OFFSET_DARK_MAX:
            checks.append(OffsetCheck(tuple(grp.tolist()), low, 0.0,
                                      facts + "; brighter than either: left as it is (thick haze on every date?)"))
        else:
            checks.append(OffsetCheck(tuple(grp.tolist()), low, 0.0, facts))
    return checks


def remove_offset(bands: np.ndarray, dates: Sequence[int], offset: float) -> np.ndarray:
    """``bands`` with ``offset`` subtracted on ``dates``, clipped at 0 (as Sentinel Hub's harmonizeValues does);
    pixels that are 0 on every band (no data) stay 0. In place on a writeable float array, which is returned."""
    for t in dates:
        b = bands[t]
        nodata = np.all(b == 0, axis=-1)
        np.subtract(b, np.float32(offset), out=b, casting="unsafe")
        np.maximum(b, 0, out=b)
        b[nodata] = 0
    return bands


def removed_offset(patch: Patch) -> tuple[float, list[int], str]:
    """What the reader's offset removal (``info.meta["radiometric_offset"]``) means for ``patch`` as it is now (it may
    have been cut to a season since): the reflectance subtracted, the indices of the patch's dates it was subtracted
    from (empty: none), and how the offset was found."""
    rec = patch.info.meta.get("radiometric_offset")
    if not isinstance(rec, dict) or patch.info.meta.get("harmonized") is True:  # saved as corrected: none now
        return 0.0, [], ""
    fixed = set(rec.get("dates", []))
    dates = [t for t, ts in enumerate(patch.timestamps) if f"{ts:%Y-%m-%d}" in fixed]
    return float(rec.get("subtracted", PB04_OFFSET)), dates, str(rec.get("source", "reflectance statistics"))


def reflectance_formula(patch: Patch) -> str:
    """How the patch's reflectance was made from its file, in one line: the DN scale, and the processing-baseline
    offset where the reader removed one (e.g. ``"reflectance = DN × 0.0001 − 0.1 (processing-baseline offset, 28 of
    28 dates)"``); a cube stored as reflectance says so."""
    if patch.info.norm_factor is None:
        base = "reflectance as stored (a float cube)"
    else:
        base = f"reflectance = DN × {patch.info.norm_factor:g}"
    subtracted, dates, _ = removed_offset(patch)
    if dates:
        base += f" − {subtracted:g} (processing-baseline offset, {len(dates)} of {patch.n_dates} dates)"
    return base


# -- the band grid ---------------------------------------------------------------------------------------------------
#: The model and both baselines were built for a 10 m band grid (output 2.5 m). A grid outside this range (metres on
#: the ground, either axis) earns a warning: e.g. a patch exported at 20 m would be predicted at 5 m.
GRID_M_RANGE = (8.0, 12.5)
_GEOGRAPHIC_EPSG = frozenset({4326, 4258, 4269, 4283, 4617, 4674})  # when pyproj is not installed


def is_geographic(epsg: int) -> bool:
    """Whether EPSG ``epsg`` is a latitude / longitude CRS (degrees), by pyproj where installed."""
    try:
        from pyproj import CRS
    except ImportError:  # the numerical core runs without pyproj
        return epsg in _GEOGRAPHIC_EPSG
    try:
        return bool(CRS.from_epsg(epsg).is_geographic)
    except Exception:  # an EPSG code pyproj does not know: the reader's own checks speak for it
        return epsg in _GEOGRAPHIC_EPSG


def ground_pixel_size(patch: Patch) -> tuple[float, float, bool]:
    """(x, y) size of a band-grid pixel on the ground in metres, and whether the CRS is geographic (a degree grid,
    measured at the box's centre latitude on the WGS 84 ellipsoid, to a fraction of a percent)."""
    px, py = patch.bbox.pixel_size(patch.width, patch.height)
    if not is_geographic(patch.bbox.epsg):
        return px, py, False
    lat = np.radians((patch.bbox.min_y + patch.bbox.max_y) / 2)
    m_lat = 111132.92 - 559.82 * np.cos(2 * lat) + 1.175 * np.cos(4 * lat)  # metres per degree of latitude
    m_lon = 111412.84 * np.cos(lat) - 93.5 * np.cos(3 * lat)  # and of longitude
    return float(px * m_lon), float(py * m_lat), True


def grid_warning(patch: Patch) -> str | None:
    """A warning when the band grid is not about 10 m on the ground, else None."""
    gx, gy, geo = ground_pixel_size(patch)
    lo, hi = GRID_M_RANGE
    if lo <= gx <= hi and lo <= gy <= hi:
        return None
    where = f" ({patch.bbox.crs} is in degrees; measured on the ground)" if geo else f" ({patch.bbox.crs})"
    return (f"the band grid is {gx:.1f} × {gy:.1f} m{where}, not 10 m: the model and the baselines were built for "
            f"10 m pixels, so every field looks {10 / ((gx + gy) / 2):.2g}× its true size to them and the 4× output is "
            f"{gx / 4:.2g} m, not 2.5 m; export the bands at 10 m")


# -- series warnings -------------------------------------------------------------------------------------------------
#: Land seen by Sentinel-2, whatever it is (crops, grass, forest, soil; L1C or L2A): B8A reads close to B08 (the
#: same near-infrared plateau), and B11 above B12 (water absorbs more at 2.2 µm). The medians over a patch's clear
#: pixels outside these bounds say the cube's bands are not in the order assumed.
NIR_NARROW_RATIO = (0.75, 1.35)
SWIR_RATIO_MIN = 0.9
#: Patches narrower than this (10 m pixels) get a warning: the network's context reaches past their edges.
SMALL_PATCH_PX = 64


def band_order_warning(patch: Patch, valid: np.ndarray | None = None) -> str | None:
    """A warning when the medians of ``patch``'s clear pixels do not look like B01…B12 in the challenge order (a cube
    exported in another order reads as a wrong map with no other sign: model 0.54 and NDVI −0.09 on Flanders with
    its bands shifted by one); None when they do, or when there is too little land to tell. ``valid``: the patch's
    :meth:`~sr_core.patch.Patch.valid_mask` when the caller has it."""
    from .bands import band_index
    from .prepare import input_record

    filled = set((input_record(patch) or {}).get("filled_bands") or {})
    layout = patch.info.meta.get("band_layout")  # bands the cube lacks by its own stated order (read as zeros)
    if isinstance(layout, dict):
        filled |= {str(b) for b in layout.get("absent") or []}
    valid = patch.valid_mask() if valid is None else valid
    n = int(valid.sum())
    if n < 100:
        return None
    idx = np.flatnonzero(valid.ravel())[:: max(1, n // 20000)]  # ≈ 20 000 pixel-dates: no copy of the whole cube
    px = np.asarray(patch.bands).reshape(-1, patch.bands.shape[-1])[idx]
    if float(np.median(px, axis=0).max()) < 0.05:
        return None  # water or a dark, empty scene, whatever the order: the land rules do not apply
    med = {b: float(np.median(px[:, band_index(b)])) for b in ("B08", "B8A", "B11", "B12")}
    problems = []
    filled |= {b for b, v in med.items() if v <= 0}  # zero: not delivered (the input path fills it)
    if not {"B08", "B8A"} & filled:
        r = med["B8A"] / med["B08"]
        if not NIR_NARROW_RATIO[0] <= r <= NIR_NARROW_RATIO[1]:
            problems.append(f"B8A / B08 = {r:.2f} (land reads about 1)")
    if not {"B11", "B12"} & filled and med["B12"] > 0.02 and med["B11"] < SWIR_RATIO_MIN * med["B12"]:
        problems.append(f"B12 ({med['B12']:.3f}) above B11 ({med['B11']:.3f}) (land reads B11 higher)")
    if not problems:
        return None
    return ("the bands do not look like B01 … B12 in the challenge order (median over the clear pixels: "
            + "; ".join(problems) + "): if the cube holds them in another order, name it in meta_info/bands.json, e.g. "
            '["B01", "B02", …, "B8A", "B09", "B11", "B12"]; the map is not to be trusted until then')


def _dates(patch: Patch, idx: np.ndarray | list[int], limit: int = 4) -> str:
    idx = [int(i) for i in idx]
    shown = ", ".join(f"{patch.timestamps[i]:%Y-%m-%d}" for i in idx[:limit])
    return shown + (f" and {len(idx) - limit} more" if len(idx) > limit else "")


def series_warnings(patch: Patch, *, list_cloudy_frames: bool = True) -> list[str]:
    """Plain warnings about what ``patch``'s series lacks (empty list: nothing to warn about).

    ``list_cloudy_frames=False`` leaves out the list of mostly cloudy frames when some frames are still clear: a
    third of a Sentinel-2 series under cloud is normal and the model masks it, so predictions don't repeat it.
    """
    from .clouds import masks_were_computed

    T = patch.n_dates
    warns: list[str] = []
    data = patch.data_mask()
    n_data = data.reshape(T, -1).sum(axis=1)
    empty = np.flatnonzero(n_data == 0)
    has_clouds = patch.cloud_source is not None
    clear = patch.valid_mask()
    with np.errstate(invalid="ignore", divide="ignore"):
        clear_frac = np.where(n_data > 0, clear.reshape(T, -1).sum(axis=1) / np.maximum(n_data, 1), 0.0)
    cloud_frac = patch.cloud_fraction()
    usable = int((clear_frac >= USABLE_DATE_FRACTION).sum())

    if T == 1:
        warns.append("a single date (T = 1): no seasonal change to learn crops from")
    if usable == 0:
        warns.append(f"no usable date: none of the {T} dates is at least {USABLE_DATE_FRACTION:.0%} clear with data; "
                     "the prediction rests on cloudy or empty frames: treat it as a guess")
    elif usable == 1:
        warns.append("1 usable date: expect weak skill (" + SINGLE_DATE_FACT + ")")
    elif usable < MIN_USABLE_DATES:
        warns.append(f"{usable} usable dates of {T}: expect reduced skill (the model saw series of about 20–48 dates; "
                     + FEW_DATES_FACT + ")")
    usable_months = [patch.timestamps[t].month for t in np.flatnonzero(clear_frac >= USABLE_DATE_FRACTION)]
    if usable_months and max(usable_months) < LATE_SEASON_MONTH:
        warns.append(f"no usable date from July on: {LATE_SEASON_FACT}")
    if len(empty):
        if len(empty) == T:
            warns.append(f"no frame holds any data (is_data is false everywhere on all {T} dates)")
        else:
            warns.append(f"{len(empty)} of {T} frames hold no data (is_data false everywhere): {_dates(patch, empty)}; "
                         "they are ignored")
    if has_clouds:
        with np.errstate(invalid="ignore"):
            cloudy = np.flatnonzero(np.nan_to_num(cloud_frac, nan=0.0) >= CLOUDY_DATE_FRACTION)
        with_data = int((n_data > 0).sum())
        if with_data and len(cloudy) == with_data:
            warns.append(f"all {with_data} frames with data are mostly cloudy (≥ {CLOUDY_DATE_FRACTION:.0%} cloud)")
        elif len(cloudy) and list_cloudy_frames:
            warns.append(f"{len(cloudy)} of {T} frames are mostly cloudy: {_dates(patch, cloudy)}")
        if patch.cloud_source == "CLP" and patch.cloud_prob is not None and patch.cloud_prob.size:
            top = float(np.nanmax(patch.cloud_prob))
            if 50 / 255 <= top <= 100 / 255 + 1e-6 and np.allclose(patch.cloud_prob[::4, ::4, ::4] * 255,
                                                                  np.rint(patch.cloud_prob[::4, ::4, ::4] * 255), atol=1e-3):
                warns.append(f"the cloud probability CLP never exceeds {round(top * 255)} of 255 ({top:.2f}), so no pixel "
                             "reaches the 0.4 cloud threshold: if it is a percentage (0–100, e.g. Google Earth Engine's "
                             "s2cloudless), every cloud reads as clear; store it as uint8 0–255 or float 0–1")
    else:
        warns.append("no cloud layer (CLM, CLP or SCL): every pixel is taken as clear; compute s2cloudless masks with "
                     "`predict --compute-clouds` / `evaluate --compute-clouds` (or `python -m sr_core clouds`, the "
                     "Upload page's button, sr_core.clouds.ensure_cloud_masks), or supply them")
    off = [i for i, t in enumerate(patch.timestamps) if t.month not in SEASON_MONTHS]
    if off:
        if len(off) == T:
            warns.append(f"no date falls in the March–September growing season the model was trained on "
                         f"({_dates(patch, off)})")
        else:
            warns.append(f"{len(off)} of {T} dates fall outside the March–September growing season: {_dates(patch, off)}")
    if patch.info.product_level is ProductLevel.L1C:
        warns.append(L1C_WARNING)
    elif patch.info.product_level is ProductLevel.UNKNOWN:
        warns.append("product level unknown (neither metadata nor reflectance statistics tell L1C from L2A); "
                     "the model expects L2A surface reflectance")
    if (grid := grid_warning(patch)) is not None:
        warns.append(grid)
    if (order := band_order_warning(patch, clear)) is not None:
        warns.append(order)
    _, H, W = patch.shape
    if min(H, W) < SMALL_PATCH_PX:
        warns.append(f"a small patch ({H} × {W} px at 10 m): the network reads the surroundings of each pixel up to a "
                     "few hundred metres, and near the edges there are none; a small extract maps less well than the "
                     "same ground cut from a larger one (−0.05 weighted MCC on a 37 × 53 px cut of the real Flanders "
                     f"patch): extract at least {SMALL_PATCH_PX} px, or with a margin, and crop the map")
    subtracted, fixed, how = removed_offset(patch)
    if fixed:
        warns.append(f"processing-baseline offset removed: {subtracted:g} subtracted from every band of {len(fixed)} "
                     f"of {T} dates (DN + 1000 of processing baseline 04.00 and later; found from {how}); if this "
                     "export was already harmonised, state meta_info harmonized: true")
    warns.extend(input_warnings(patch))
    if masks_were_computed(patch):
        rec = patch.info.meta.get("cloud_masks", {})
        how = rec.get("method", "s2cloudless") if isinstance(rec, dict) else "s2cloudless"
        b10 = rec.get("b10") if isinstance(rec, dict) else None
        warns.append(f"cloud masks were computed ({how}{f', B10: {b10}' if b10 else ''}), not delivered with the data; "
                     "they may miss thin cloud and shadows")
    return warns


__all__ = [
    "FEW_DATES_FACT", "GRID_M_RANGE", "L1C_WARNING", "LATE_SEASON_FACT", "LATE_SEASON_MONTH", "OFFSET_DARK_MAX",
    "OFFSET_DARK_MIN", "PB04_OFFSET", "PB04_START", "SINGLE_DATE_FACT", "SMALL_PATCH_PX", "OffsetCheck",
    "band_order_warning", "detect_product_level",
    "grid_warning", "ground_pixel_size", "is_geographic", "level_from_meta", "offset_from_meta", "radiometric_offset",
    "reflectance_formula", "reflectance_level", "remove_offset", "removed_offset", "series_warnings",
]  # fmt: skip
