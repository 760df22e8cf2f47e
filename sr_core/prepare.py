"""Real products in, model input out: season choice, missing bands and the cloud source, said in plain words.

Real Sentinel-2 extractions do not come as the challenge ships them. :func:`prepare_input` turns any
:class:`~sr_core.patch.Patch` into what the model, both baselines and the inspector were built for, and records
what it did (``info.notes`` and ``info.meta["input"]``) so that every prediction can show it:

* **Growing season.** The model reads the day of year of every date, so dates of two years must never meet in one
  series. The season is 1 March – 1 September (the challenge's 2019-03-01 … 2019-09-01) of one year. By default
  it is the **latest complete** season in the series (the series reaches to within :data:`COMPLETE_SLACK_DAYS`
  of both ends of the window); where none is complete, the season with the most dates (a warning says so);
  ``season=YEAR`` chooses one. Dates outside the chosen window are left out, and the notes say which were used.
  A series that lies wholly inside one window (the challenge's, the simulator's) is left as it is.
* **Missing bands.** A band that holds no signal (zero, or not finite, on every pixel with data: e.g. B01 and B09
  are never delivered by some L2A extractions) is detected per band and **filled from the nearest present band in
  wavelength** (:data:`BAND_WAVELENGTH_NM`; B01 ← B02, B09 ← B8A, B05 ← B04 …). The bundled model is trained with
  the same substitution applied at random (band dropout, :func:`fill_bands`), so a filled band is an input it has
  seen. Red (B04) and NIR (B08) carry the most weight; a warning says so when either is filled.
* **No data as NaN.** Non-finite band values (how xarray-built cubes mark no data) are taken as no data: the
  pixel-date is zeroed and marked in ``is_data`` (a band non-finite everywhere is a missing band, filled as below).
  Without this a single NaN spreads through the network's convolutions over the whole map.
* **Cloud source.** CLM, else CLP > 0.4, else Sen2Cor SCL classes (:data:`sr_core.patch.SCL_UNUSABLE`), else
  none (every pixel taken as clear, with a warning): see :meth:`sr_core.patch.Patch.valid_mask`.
* **Co-registration (experimental, off by default).** With ``coregister=True`` dates whose field edges sit half a
  10 m pixel or more off the other dates' are moved back by one whole pixel, with their masks (:mod:`sr_core.coreg`),
  and the notes say which dates moved and how. It is not part of the default input path: it raises the simulated
  scores but lowers the bundled model's score on the real Flanders patch (``docs/EVALUATION.md``).

Preparing is idempotent: a prepared patch carries ``info.meta["input"]`` and is returned unchanged (unless another
season is asked for, which needs the original series).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from .bands import BAND_NAMES, NIR, RED
from .errors import PatchValidationError
from .patch import SCL_UNUSABLE, Patch, handed_over

#: Centre wavelength of each band of a Patch (nm, Sentinel-2A), used to pick the substitute of a missing band.
BAND_WAVELENGTH_NM: dict[str, float] = {
    "B01": 443, "B02": 490, "B03": 560, "B04": 665, "B05": 705, "B06": 740, "B07": 783, "B08": 842,
    "B8A": 865, "B09": 945, "B11": 1610, "B12": 2190,
}  # fmt: skip
SEASON_START = (3, 1)  #: (month, day) the growing season starts
SEASON_END = (9, 1)  #: (month, day) it ends, inclusive (the whole day)
#: A season counts as complete when the series reaches to within this many days of both ends of the window.
COMPLETE_SLACK_DAYS = 20
#: More missing land bands (all but B01 / B09) than this are outside what the bundled model was trained with (band
#: dropout: B01 / B09 with P = 0.5, any other band with P = 0.04, ``sr_core.train.AUGMENT``; and, since phase S,
#: the 10 m bands only in 15 % of the draws, :data:`TEN_M_ONLY_LAND`), and a warning says so.
MAX_TRAINED_MISSING = 2
#: The land bands a 10 m-only export lacks (B02 B03 B04 B08 kept): trained for since phase S (``train --ten-m-only``).
TEN_M_ONLY_LAND = ("B05", "B06", "B07", "B8A", "B11", "B12")
#: What such an export is worth, measured on real data, said with its note.
TEN_M_ONLY_FACT = "the real Flanders patch with only its 10 m bands scores 0.69, against 0.71 with every band"
#: The note a patch carries when SCL is its cloud source.
SCL_NOTE = ("no CLM / CLP: clouds, shadows and no data taken from the Sen2Cor SCL classes ("
            + ", ".join(f"{k} {v}" for k, v in SCL_UNUSABLE.items()) + ")")


def season_window(year: int) -> tuple[datetime, datetime]:
    """[start, end) of the growing season of ``year``: 1 March 00:00 to 2 September 00:00."""
    return datetime(year, *SEASON_START), datetime(year, *SEASON_END) + timedelta(days=1)


def _in_window(timestamps: Sequence[datetime], year: int) -> np.ndarray:
    lo, hi = season_window(year)
    return np.array([lo <= t < hi for t in timestamps], bool)


def season_is_complete(timestamps: Sequence[datetime], year: int) -> bool:
    """True when the series starts no later than 1 March + slack and ends no earlier than 1 September − slack."""
    if not len(timestamps):
        return False
    lo, hi = season_window(year)
    slack = timedelta(days=COMPLETE_SLACK_DAYS)
    return min(timestamps) <= lo + slack and max(timestamps) >= hi - timedelta(days=1) - slack


@dataclasses.dataclass(frozen=True)
class SeasonChoice:
    year: int
    index: np.ndarray  #: indices of the dates kept, in series order
    complete: bool
    candidates: tuple[int, ...]  #: years with at least one date in their window
    whole_series: bool  #: True when every date is kept (nothing left out)


def choose_season(timestamps: Sequence[datetime], season: int | None = None) -> SeasonChoice:
    """Which dates feed the model: see the module docstring. Raises PatchValidationError when ``season`` has no
    date in its window, or when no date of the series falls in any growing season."""
    ts = list(timestamps)
    years = sorted({t.year for t in ts})
    candidates = tuple(y for y in years if _in_window(ts, y).any())
    if season is not None:
        year = int(season)
        if year not in candidates:
            have = ", ".join(map(str, candidates)) or "none"
            raise PatchValidationError(
                f"season {year}: no date of the series falls in 1 March – 1 September {year} (the series runs "
                f"{min(ts):%Y-%m-%d} … {max(ts):%Y-%m-%d}; seasons with dates: {have}); choose one of those"
            )
    elif not candidates:
        if len(years) == 1:  # one year, all dates off-season (e.g. a winter scene): keep them, the warnings say so
            return SeasonChoice(years[0], np.arange(len(ts)), False, (), True)
        raise PatchValidationError(
            f"no date of the series ({min(ts):%Y-%m-%d} … {max(ts):%Y-%m-%d}) falls in a 1 March – 1 September "
            "growing season, and its dates span several years; give a series of one season"
        )
    else:
        complete = [y for y in candidates if season_is_complete(ts, y)]
        if complete:
            year = complete[-1]
        else:
            year = max(candidates, key=lambda y: (int(_in_window(ts, y).sum()), y))
    keep = _in_window(ts, year)
    idx = np.flatnonzero(keep)
    return SeasonChoice(year, idx, season_is_complete(ts, year), candidates, len(idx) == len(ts))


def missing_bands(bands: np.ndarray, data: np.ndarray | None = None) -> list[str]:
    """Names of the bands with no signal: zero or not finite on every pixel with data (all pixels when ``data``
    is None). A patch with no data pixel at all reports nothing (there is nothing to judge)."""
    b = np.asarray(bands)
    nb = b.shape[-1]
    d = None if data is None else np.asarray(data, bool)
    if d is not None and not d.any():
        return []
    # Frame by frame with an early exit: a band is settled as soon as one data pixel carries a finite, non-zero value,
    # so a normal patch is decided on its first frame instead of copying the whole (T, H, W, 12) cube.
    chunks = [b] if b.ndim < 3 else list(range(b.shape[0]))
    remaining = list(range(nb))
    for c in chunks:
        if isinstance(c, int):
            sel = b[c][d[c]] if d is not None else b[c].reshape(-1, nb)
        else:
            sel = c[d] if d is not None else c.reshape(-1, nb)
        if sel.size == 0:
            continue
        remaining = [i for i in remaining if not (np.isfinite(sel[:, i]) & (sel[:, i] != 0)).any()]
        if not remaining:
            break
    return [BAND_NAMES[i] for i in remaining]


def fill_source(band: str, missing: Sequence[str]) -> str:
    """The present band nearest in wavelength to ``band`` (ties: the shorter wavelength)."""
    present = [b for b in BAND_NAMES if b not in set(missing)]
    if not present:
        raise PatchValidationError("every band is empty (zero on all pixels with data); the patch holds no imagery")
    w = BAND_WAVELENGTH_NM[band]
    return min(present, key=lambda b: (abs(BAND_WAVELENGTH_NM[b] - w), BAND_WAVELENGTH_NM[b]))


def fill_bands(bands: Any, missing: Sequence[str]) -> Any:
    """A copy of ``bands`` (…, 12; numpy or torch) with each band in ``missing`` replaced by its
    :func:`fill_source`. The one substitution rule shared by prediction and training (band dropout)."""
    out = bands.clone() if hasattr(bands, "clone") else np.array(bands, copy=True)
    for name in missing:
        src = fill_source(name, missing)
        out[..., BAND_NAMES.index(name)] = bands[..., BAND_NAMES.index(src)]
    return out


def _listed(items: Sequence[str], limit: int) -> str:
    """The first ``limit`` items, comma-separated, and how many more there are."""
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _dates(ts: Sequence[datetime], limit: int = 3) -> str:
    return _listed([f"{t:%Y-%m-%d}" for t in ts], limit)


def _direction(dy: int, dx: int) -> str:
    """How a date was moved, in words: 'up', 'down left', ..."""
    return " ".join(w for w in ({-1: "up", 1: "down"}.get(dy, ""), {-1: "left", 1: "right"}.get(dx, "")) if w)


def nonfinite_as_no_data(patch: Patch, notes: list[str]) -> tuple[Patch, float]:
    """NaN / inf in the band cube (how xarray-built cubes mark no data) taken as no data: a band non-finite on most
    pixel-dates where some other band is finite becomes zero (a missing band, filled next), so that one such band
    does not wipe out the patch; a pixel-date with any other non-finite band is zeroed and marked as no data in
    ``is_data``. Returns the patch and the share of pixel-dates so marked."""
    b = patch.bands
    if np.isfinite(np.sum(b, dtype=np.float64)):  # one pass, no cube-sized temporary
        return patch, 0.0
    bands = np.array(b, dtype=np.float32)
    finite = np.isfinite(bands)
    seen = finite.any(axis=-1)  # pixel-dates where some band has a value
    n_seen = max(int(seen.sum()), 1)
    whole = np.array([finite[..., i][seen].sum() < 0.5 * n_seen for i in range(bands.shape[-1])])
    bands[..., whole] = 0
    finite[..., whole] = True
    bad = ~finite.all(axis=-1)
    bands[bad] = 0
    share = float(bad.mean())
    notes.append(f"non-finite values (NaN / inf) in the band cube: {share:.1%} of the pixel-dates taken as no data"
                 + (f"; {', '.join(n for n, w in zip(BAND_NAMES, whole, strict=True) if w)} non-finite on most "
                    "pixels, treated as missing" if whole.any() else ""))
    return patch.replace(bands=handed_over(bands), is_data=handed_over(patch.data_mask() & ~bad)), share


#: Sen2Cor classes a cloud layer is checked against (:func:`cloud_layer_conflict`): clear vegetation / bare soil and
#: cloud of medium / high probability; the fewest pixel-dates of each that make the check
SCL_CLEAR_LAND, SCL_CLOUD, MIN_CHECK_PIXELS = (4, 5), (8, 9), 200
#: a cloud layer that flags more than this share of SCL's clear land as cloud, or finds less than
#: :data:`MIN_CLOUD_RECALL` of SCL's clouds, contradicts the scene classification
MAX_CLEAR_FLAGGED, MIN_CLOUD_RECALL = 0.5, 0.25


def cloud_layer_conflict(patch: Patch) -> str | None:
    """Why ``patch``'s CLM (else CLP > 0.4) cannot be the cloud source when its Sen2Cor SCL says otherwise: it flags
    most of what SCL calls clear vegetation or bare soil (an inverted mask, 1 = clear), or misses most of what SCL
    calls cloud (a probability on another scale, a mask of other dates). None when they broadly agree, or when either
    is absent or there is too little of each class to tell."""
    if patch.scl is None or (patch.cloud_mask is None and patch.cloud_prob is None):
        return None
    layer = "mask/CLM" if patch.cloud_mask is not None else "data/CLP (> 0.4)"
    cloud = np.asarray(patch.cloud_mask, bool) if patch.cloud_mask is not None else np.asarray(patch.cloud_prob) > 0.4
    data = patch.data_mask()
    land = np.isin(patch.scl, SCL_CLEAR_LAND) & data
    cl = np.isin(patch.scl, SCL_CLOUD) & data
    n_land, n_cl = int(land.sum()), int(cl.sum())
    if n_land >= MIN_CHECK_PIXELS:
        flagged = float((cloud & land).sum() / n_land)
        found = float((cloud & cl).sum() / n_cl) if n_cl >= MIN_CHECK_PIXELS else None
        # haze that Sen2Cor calls land would make a right mask flag much of SCL's land, but it would still find
        # SCL's own clouds: only a layer that also misses those (or, with few of them, flags nearly all land) is wrong
        if flagged > MAX_CLEAR_FLAGGED and (found < 0.5 if found is not None else flagged > 0.8):
            return (f"{layer} flags {flagged:.0%} of the pixels SCL calls clear vegetation or bare soil as cloud"
                    + (f" and finds {found:.0%} of SCL's clouds" if found is not None else "")
                    + ": it looks inverted (1 = clear?) or belongs to other dates")
    if n_cl >= MIN_CHECK_PIXELS and n_cl >= 0.02 * max(int(data.sum()), 1):
        found = float((cloud & cl).sum() / n_cl)
        if found < MIN_CLOUD_RECALL:
            return (f"{layer} finds only {found:.0%} of the {n_cl} pixel-dates SCL calls cloud (medium / high "
                    "probability): a probability on another scale (0–100?) or a mask of other dates")
    return None


def input_record(patch: Patch) -> dict[str, Any] | None:
    """What :func:`prepare_input` did to ``patch`` (``info.meta["input"]``), or None for an unprepared patch."""
    rec = patch.info.meta.get("input")
    return dict(rec) if isinstance(rec, dict) else None


def prepare_input(patch: Patch, season: int | None = None, coregister: bool = False) -> Patch:
    """``patch`` as the model and the baselines read it: one growing season, missing bands filled, the cloud
    source named, the dates co-registered. See the module docstring for the rules; ``info.meta["input"]`` records
    the outcome: ``season``, ``season_complete``, ``dates_used`` / ``dates_total``, ``first_date`` /
    ``last_date``, ``filled_bands`` ({missing: source}), ``cloud_source``, ``coregistered`` ({date: [dy, dx]}
    in 10 m pixels, + = down / right; None unless ``coregister``)."""
    if not isinstance(patch, Patch):
        raise TypeError(f"prepare_input expects a sr_core.Patch, got {type(patch).__name__}")
    rec = input_record(patch)
    if rec is not None and (season is None or rec.get("season") == season):
        return patch
    if rec is not None:
        raise PatchValidationError(
            f"{patch.name}: already prepared for season {rec.get('season')}; prepare the original patch for season {season}"
        )
    notes: list[str] = []
    patch, sorted_note = patch.in_time_order()
    notes += [sorted_note] if sorted_note is not None else []
    patch, nonfinite = nonfinite_as_no_data(patch, notes)  # before merging: a NaN half of a granule is no data
    nonfinite = nonfinite or float(patch.info.meta.get("non_finite") or 0.0)  # or the reader's
    patch, merged_note = patch.merged_duplicate_dates()
    notes += [merged_note] if merged_note is not None else []
    choice = choose_season(patch.timestamps, season)
    out = patch
    if not choice.whole_series:
        dropped = [t for i, t in enumerate(patch.timestamps) if i not in set(choice.index.tolist())]
        kept = [patch.timestamps[i] for i in choice.index]
        why = ("chosen" if season is not None else
               "the latest complete season" if choice.complete else "no season is complete; the one with most dates")
        notes.append(
            f"growing season {choice.year} ({why}): {len(kept)} of {patch.n_dates} dates used, "
            f"{kept[0]:%Y-%m-%d} … {kept[-1]:%Y-%m-%d}; {len(dropped)} outside 1 March – 1 September {choice.year} "
            f"left out ({_dates(dropped)})"
        )
        out = out.select_dates(choice.index)
    missing = missing_bands(out.bands, out.data_mask())
    filled: dict[str, str] = {}
    if len(missing) == len(BAND_NAMES):  # nothing to fill from: leave it; the maps will show no signal
        notes.append("every band is zero on all pixels with data: the band cube holds no imagery "
                     "(check the export and its NORM_FACTORS)")
    elif missing:
        filled = {m: fill_source(m, missing) for m in missing}
        out = out.replace(bands=handed_over(fill_bands(out.bands, missing)))  # a new cube: no second copy
        notes.append("bands with no signal (zero on every pixel) filled from the nearest band in wavelength: "
                     + ", ".join(f"{m} ← {s}" for m, s in filled.items()))
    ignored = cloud_layer_conflict(out)
    if ignored is not None:  # the scene classification is the evidence both layers are read against
        out = out.replace(cloud_mask=None, cloud_prob=None)
        notes.append(f"cloud layer ignored: {ignored}; clouds taken from SCL instead")
    src = out.cloud_source
    if src == "SCL":
        notes.append(SCL_NOTE)
    moved: dict[str, list[int]] | None = None
    if coregister:
        from .coreg import coregister as _coregister

        out, offsets = _coregister(out)
        moved = {f"{out.timestamps[t]:%Y-%m-%d}": [dy, dx] for t, (dy, dx) in sorted(offsets.items())}
        if moved:
            notes.append(f"co-registration: {len(moved)} of {out.n_dates} dates moved by one 10 m pixel to line their "
                         "field edges up with the other dates ("
                         + _listed([f"{d} {_direction(*o)}" for d, o in moved.items()], 6) + ")")
    kept_ts = out.timestamps
    record = {
        "season": int(choice.year), "season_complete": bool(choice.complete), "seasons_in_series": list(choice.candidates),
        "dates_used": len(kept_ts), "dates_total": patch.n_dates,
        "first_date": f"{kept_ts[0]:%Y-%m-%d}", "last_date": f"{kept_ts[-1]:%Y-%m-%d}",
        "filled_bands": filled, "cloud_source": src or "none", "coregistered": moved, "non_finite": nonfinite,
        "season_given": season is not None, "cloud_layer_ignored": ignored,
        "complete_seasons": [int(y) for y in choice.candidates if season_is_complete(patch.timestamps, y)],
    }
    meta = dict(out.info.meta)
    meta["input"] = record
    info = out.info
    for n in notes:
        if n not in info.notes:
            info = info.with_note(n)
    return out.replace(info=dataclasses.replace(info, meta=meta))


def input_warnings(patch: Patch) -> list[str]:
    """Warnings about how the input was prepared (shown with every prediction): incomplete season, filled bands."""
    rec = input_record(patch)
    if rec is None:
        return []
    warns = []
    if rec.get("dates_used") != rec.get("dates_total"):
        warns.append(f"season {rec['season']}: {rec['dates_used']} of {rec['dates_total']} dates used "
                     f"({rec['first_date']} … {rec['last_date']}); the rest fall outside 1 March – 1 September")
    if not rec.get("season_complete") and rec.get("seasons_in_series"):
        warns.append(f"the {rec['season']} growing season is incomplete in this series "
                     f"({rec['first_date']} … {rec['last_date']}): expect reduced skill")
    complete = [y for y in rec.get("complete_seasons") or [] if isinstance(y, int)]
    if len(complete) > 1 and not rec.get("season_given"):
        warns.append(f"the series holds {len(complete)} complete growing seasons ({', '.join(map(str, complete))}); "
                     f"the latest, {rec['season']}, was mapped: give --season YEAR (the app: Growing season) for "
                     "another, e.g. the year the labels or your question belong to")
    if isinstance(why := rec.get("cloud_layer_ignored"), str):
        warns.append(f"the patch's cloud layer contradicts its Sen2Cor SCL and was not used: {why}; clouds were taken "
                     "from SCL (fix or drop the layer to silence this)")
    if (nf := rec.get("non_finite") or 0.0) > 0:
        warns.append(f"{nf:.1%} of the pixel-dates hold NaN / inf in the band cube: taken as no data")
    filled = rec.get("filled_bands") or {}
    if filled:
        key = [b for b in filled if b in (BAND_NAMES[RED], BAND_NAMES[NIR])]
        txt = ", ".join(f"{m} ← {s}" for m, s in filled.items())
        warns.append(f"{len(filled)} band(s) missing (no signal), filled from the nearest band: {txt}"
                     + (f"; {' and '.join(key)} carry most of the model's evidence: treat the map with caution" if key else ""))
        land = [b for b in filled if b not in ("B01", "B09")]
        if set(land) == set(TEN_M_ONLY_LAND):
            warns.append(f"only the 10 m bands B02 B03 B04 B08 hold data, an export the model was trained for "
                         f"({TEN_M_ONLY_FACT})")
        elif len(land) > MAX_TRAINED_MISSING:
            warns.append(f"{len(land)} of the 10 land bands are missing; the model was trained with one or two missing "
                         "at a time, or the 10 m bands only: expect reduced skill")
    return warns


__all__ = [
    "BAND_WAVELENGTH_NM", "COMPLETE_SLACK_DAYS", "MAX_TRAINED_MISSING", "SCL_NOTE", "TEN_M_ONLY_FACT", "TEN_M_ONLY_LAND",
    "SeasonChoice", "choose_season", "cloud_layer_conflict", "fill_bands", "fill_source", "input_record",
    "input_warnings", "missing_bands", "nonfinite_as_no_data", "prepare_input", "season_is_complete", "season_window",
]  # fmt: skip
