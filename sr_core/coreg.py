"""Co-registration of the dates of a series: whole 10 m pixel offsets between dates found and undone.

Real Sentinel-2 dates of one place are not perfectly on top of each other: before ESA's geometric refinement on a
Global Reference Image (Europe, spring 2021) the multi-temporal co-registration was 12 m (95 % of products), since then
better than 5 m; the 2019 series of issue 16 show date-to-date shifts of 0.7 px (median) to 1 px. A date one pixel
off moves every field edge by 10 m, which the 2.5 m map cannot afford.
:func:`coregister` finds, per date, the sub-pixel offset that best lines the date's **edges** up with the edges of
the other dates, and moves the date back by one whole pixel along each axis where that offset is half a pixel or more.

* **Edges, not values.** Each date is reduced to the magnitude of its spatial gradient in log reflectance of B04,
  B08 and B11 (:data:`EDGE_BANDS`), smoothed by a Gaussian of :data:`SMOOTH` px: a field edge is an edge whatever
  the crops on either side do that day, while the values themselves change with phenology. Unsmoothed, the sharp
  correlation peak locks to whole pixels (on simulated patches with known offsets the estimate then recovers only
  0.4 of the true offset; smoothed, 0.86, and 0.94 on blurred input).
* **The reference is the other dates.** Each date is compared with the mean edge image of all *other* clear dates
  (leave one out), over the pixels clear on both, after eroding the cloud mask by one pixel. A minority of offset
  dates blurs that reference a little but cannot move it.
* **Sub-pixel estimate, whole-pixel move.** The correlation between the two edge images at the 3 × 3 whole-pixel
  offsets (on at least :data:`MIN_PIXELS` clear pixels) is fitted by one parabola per axis; an axis whose offset is
  at least :data:`MIN_OFFSET` moves by one pixel. Smaller errors are left alone (a whole-pixel move would not make
  them smaller), and nothing is interpolated (interpolation blurs).
* **Cheap.** The offsets are found on the central :data:`CROP` × :data:`CROP` pixels (the error of one acquisition is
  the same over a patch); bands, cloud probability, cloud mask, data mask and SCL then move together, edges held.

**Experimental, off by default.** ``prepare_input(patch, coregister=True)`` applies it and records the moves;
``evaluate --coregister`` scores every predictor that way. It is not the default input path because on the real
Flanders patch it lowered the model's weighted MCC (phase O: 0.690 → 0.667) while it raises the simulated scores
(``docs/EVALUATION.md``, "Co-registration").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import numpy as np
from scipy import ndimage

from .bands import BAND_NAMES
from .patch import DATE_LAYERS, Patch

MIN_OFFSET = 0.5  #: sub-pixel offset (10 m px, per axis) from which a date moves by one whole pixel
SMOOTH = 1.0  #: σ (10 m px) of the Gaussian that smooths the edge images (a sharp peak locks to whole pixels)
MIN_PIXELS = 1000  #: clear pixels a date must share with the reference to be judged
CROP = 256  #: side of the central window the offsets are measured on (10 m pixels)
EDGE_BANDS = ("B04", "B08", "B11")  #: bands whose log-reflectance gradients make the edge image
SAT_MIN_DATES = 3  #: dates each satellite needs for :func:`satellite_split`
PHASE_EPOCH = datetime(2019, 3, 1)  #: origin of the 5-day phases of :func:`satellite_phase` (any fixed day would do)
#: (images, valid) → (edge images, trusted mask), as :func:`edge_images`
EdgeFunction = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def edge_strength(images: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W) edge strength of (T, H, W, C) ``images`` (gradient magnitude summed over C, smoothed by
    :data:`SMOOTH`) and the (T, H, W) mask of pixels it can be trusted on (clear, and so are their neighbours)."""
    b = np.asarray(images, np.float32)
    gy = np.diff(b, axis=1, prepend=b[:, :1])
    gx = np.diff(b, axis=2, prepend=b[:, :, :1])
    g = ndimage.gaussian_filter(np.sqrt(gx * gx + gy * gy).sum(-1, dtype=np.float32), (0, SMOOTH, SMOOTH))
    ok = ndimage.binary_erosion(np.asarray(valid, bool), structure=np.ones((1, 3, 3), bool), border_value=0)
    return g, ok


def edge_images(bands: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`edge_strength` of the log reflectance of :data:`EDGE_BANDS` of (T, H, W, 12) ``bands``."""
    idx = [BAND_NAMES.index(b) for b in EDGE_BANDS]
    return edge_strength(np.log(np.clip(np.asarray(bands[..., idx], np.float32), 1e-3, None)), valid)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def offset_scores(bands: np.ndarray, valid: np.ndarray, radius: int = 1, crop: int = CROP,
                  edges: EdgeFunction = edge_images) -> np.ndarray:
    """(T, 2r+1, 2r+1) correlation of each date's edge image, moved by (dy, dx) = (i − r, j − r), with the mean
    edge image of the other dates, on the central ``crop`` window; NaN where fewer than :data:`MIN_PIXELS` clear
    pixels are shared. ``edges`` makes the edge images (default: :func:`edge_images` of a band cube; e.g.
    :func:`edge_strength` for a (T, H, W, 1) NDVI series)."""
    T, H, W = np.asarray(valid).shape
    y0, x0 = max(0, (H - crop) // 2), max(0, (W - crop) // 2)
    win = (slice(None), slice(y0, y0 + min(crop, H)), slice(x0, x0 + min(crop, W)))
    g, ok = edges(bands[win], np.asarray(valid)[win])
    w = ok.astype(np.float32)
    total, count = (g * w).sum(0), w.sum(0)
    h, wd = g.shape[1:]
    inner = (slice(radius, h - radius), slice(radius, wd - radius))
    n = 2 * radius + 1
    scores = np.full((T, n, n), np.nan)
    for t in range(T):
        others = count - w[t]
        ref = (total - g[t] * w[t]) / np.maximum(others, 1)
        ref_ok = (others >= 1)[inner]
        ref_in = ref[inner]
        for i, dy in enumerate(range(-radius, radius + 1)):
            for j, dx in enumerate(range(-radius, radius + 1)):
                moved_g = np.roll(g[t], (dy, dx), (0, 1))[inner]
                m = np.roll(ok[t], (dy, dx), (0, 1))[inner] & ref_ok
                if m.sum() >= MIN_PIXELS:
                    scores[t, i, j] = _correlation(moved_g[m], ref_in[m])
    return scores


def _vertex(a: float, b: float, c: float) -> float:
    """Offset of the top of the parabola through (−1, a), (0, b), (1, c), within ±1.5 (0 where it has none)."""
    d = a - 2.0 * b + c
    return 0.0 if not d < 0 else float(np.clip(0.5 * (a - c) / d, -1.5, 1.5))


def subpixel_offsets(bands: np.ndarray, valid: np.ndarray, crop: int = CROP,
                     edges: EdgeFunction = edge_images) -> np.ndarray:
    """(T, 2) sub-pixel (dy, dx) that lines each date up with the others (NaN where it cannot be judged): the top of
    the correlation surface of :func:`offset_scores`, one parabola per axis through the centre."""
    scores = offset_scores(bands, valid, 1, crop, edges)
    out = np.full((len(scores), 2), np.nan)
    for t, s in enumerate(scores):
        if not np.isnan(s).any():
            out[t] = _vertex(s[0, 1], s[1, 1], s[2, 1]), _vertex(s[1, 0], s[1, 1], s[1, 2])
    return out


def estimate_offsets(bands: np.ndarray, valid: np.ndarray, crop: int = CROP,
                     min_offset: float = MIN_OFFSET) -> dict[int, tuple[int, int]]:
    """Date index → the whole-pixel (dy, dx) that lines the date up with the others: each axis whose sub-pixel
    offset (:func:`subpixel_offsets`) is at least ``min_offset`` moves by one pixel (only dates that move)."""
    out: dict[int, tuple[int, int]] = {}
    for t, d in enumerate(subpixel_offsets(bands, valid, crop)):
        if np.isnan(d).any():
            continue
        move = tuple(int(np.sign(v)) if abs(v) >= min_offset else 0 for v in d)
        if move != (0, 0):
            out[t] = (move[0], move[1])
    return out


def move_whole(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` (H, W, ...) translated by whole pixels (dy down, dx right), the edge rows / columns held: the same
    array as ``ndimage.shift(a, (dy, dx, 0…), order=0, mode="nearest")``, several times faster (co-registration and
    the whole-pixel moves of :func:`sr_core.perturb.shift`)."""
    extra = ((0, 0),) * (a.ndim - 2)
    padded = np.pad(a, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), *extra), mode="edge")
    H, W = a.shape[:2]
    y0, x0 = abs(dy) - dy, abs(dx) - dx
    return padded[y0:y0 + H, x0:x0 + W]


def apply_offsets(patch: Patch, offsets: Mapping[int, tuple[int, int]]) -> Patch:
    """``patch`` with each date ``t`` of ``offsets`` translated by its (dy, dx): the bands and every per-date mask
    move together, so the valid mask follows the bands; edge rows / columns are held. Labels and footprint stay."""
    if not offsets:
        return patch
    changes = {}
    for name in ("bands", *DATE_LAYERS):
        a = getattr(patch, name)
        if a is None:
            continue
        a = np.array(a)
        for t, (dy, dx) in offsets.items():
            a[t] = move_whole(a[t], int(dy), int(dx))
        changes[name] = a
    return patch.replace(**changes)


def satellite_phase(times: Sequence[datetime]) -> np.ndarray:
    """(T,) 0 / 1: which of the two Sentinel-2 satellites took each date, by the date's 5-day phase. S2A and S2B fly
    the same relative orbit 5 days apart, each on a 10-day repeat, so the dates of one satellite over a place fall on
    one 5-day phase of a 10-day cycle (real Flanders 2018–19 and Slovenia 2017: days ≡ 0 or 5 mod 10). Which phase is
    S2A is not decided here: what matters is that the two groups can sit apart (``docs/SIMULATOR.md``)."""
    return np.array([((t - PHASE_EPOCH).days // 5) % 2 for t in times], dtype=np.int8)


def satellite_split(offsets: np.ndarray, satellite: np.ndarray, min_dates: int = SAT_MIN_DATES) -> tuple[float, float]:
    """(separation, scatter) of the dates' ``offsets`` (T, 2; NaN rows ignored) grouped by ``satellite`` (0 / 1,
    :func:`satellite_phase`): the distance between the two groups' mean offsets, and the rms per axis of the dates
    about their own group's mean (NaN when a group has fewer than ``min_dates`` dates; the scatter of one group
    alone when only it has)."""
    ok = ~np.isnan(offsets).any(axis=1)
    off, sat = np.asarray(offsets)[ok], np.asarray(satellite)[ok]
    groups = [off[sat == k] for k in (0, 1) if (sat == k).sum() >= min_dates]
    if not groups:
        return float("nan"), float("nan")
    res = np.concatenate([g - g.mean(axis=0) for g in groups])
    scatter = float(np.sqrt((res**2).mean()))
    if len(groups) < 2:
        return float("nan"), scatter
    return float(np.hypot(*(groups[1].mean(axis=0) - groups[0].mean(axis=0)))), scatter


LABEL_OFFSET_CROP = 160  #: side (10 m px) of the central window :func:`label_offset` fits on
LABEL_OFFSET_WARN = 0.5  #: |offset| (10 m px) from which the labels are said to sit off the imagery


def label_offset(patch: Patch, crop: int = LABEL_OFFSET_CROP) -> dict[str, float | int] | None:
    """Where a labelled patch's ``CULTIVATED`` edges sit against its imagery: the (dy, dx) in 10 m px (+ = the labels
    lie down / right of the imagery's edges; tested with labels moved by a known amount) of the step-edge fit of
    :func:`sr_core.simulate.realism.edge_blur_sigma` on B08 over the clear dates, the labels taken as the 10 m
    majority of their 4 × 4 blocks (not-declared land left out), on the central ``crop`` × ``crop`` pixels. A
    diagnostic for scoring: labels off by half a pixel or more cost every predictor boundary pixels (the real
    Flanders patch: 1.3 px north). None without labels, or where no date has enough clear edge pixels. Also
    ``sigma`` (the edge blur against the labels, px), ``dates`` and ``pixels`` used."""
    from .resample import block_mean
    from .simulate.realism import edge_blur_sigma

    if patch.cultivated is None:
        return None
    H, W = patch.height, patch.width
    r0, c0 = max(0, (H - crop) // 2), max(0, (W - crop) // 2)
    p = patch.crop(r0, c0, min(crop, H), min(crop, W)) if max(H, W) > crop else patch
    codes = 1 + (block_mean(p.cultivated) > 0.5).astype(np.int64)
    if p.not_declared is not None:
        codes[block_mean(p.not_declared) > 0.5] = 0
    if len(np.unique(codes[codes > 0])) < 2:
        return None
    try:
        fit = edge_blur_sigma(p.bands[..., BAND_NAMES.index("B08")], codes, p.valid_mask(), ignore=(0,))
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):  # a degenerate fit: a diagnostic, never a failure
        return None
    if fit.n_dates == 0 or not np.isfinite(fit.sigma):
        return None
    return {"dy": float(fit.shift[0]), "dx": float(fit.shift[1]), "sigma": float(fit.sigma), "dates": int(fit.n_dates),
            "pixels": int(fit.n_pixels)}


def measured_label_offset(patch: Patch, season: int | None = None) -> dict[str, float | int] | None:
    """:func:`label_offset` of ``patch`` as the model reads it (:func:`sr_core.prepare.prepare_input`: one season,
    bands filled, clouds from CLM / CLP / SCL); None where the input path refuses the patch (its own errors are for
    the predictors to report)."""
    from .errors import SRCoreError
    from .prepare import prepare_input

    try:
        return label_offset(prepare_input(patch, season))
    except (SRCoreError, ValueError):
        return None


def labels_off(off: Mapping[str, float | int] | None) -> bool:
    """Whether a :func:`label_offset` result puts the labels :data:`LABEL_OFFSET_WARN` px or more off the imagery."""
    return off is not None and max(abs(off["dy"]), abs(off["dx"])) >= LABEL_OFFSET_WARN


def offset_words(off: Mapping[str, float | int]) -> str:
    """A :func:`label_offset` result in words: where the labels sit against the imagery's field edges."""
    dy, dx = off["dy"], off["dx"]
    return (f"the labels sit {abs(dy):.2f} px {'south' if dy > 0 else 'north'} and {abs(dx):.2f} px "
            f"{'east' if dx > 0 else 'west'} of the imagery's field edges (10 m px)")


def coregister(patch: Patch) -> tuple[Patch, dict[int, tuple[int, int]]]:
    """``patch`` with its dates lined up (see the module docstring) and the offsets applied."""
    offsets = estimate_offsets(patch.bands, patch.valid_mask())
    return apply_offsets(patch, offsets), offsets


__all__ = ["CROP", "EDGE_BANDS", "LABEL_OFFSET_CROP", "LABEL_OFFSET_WARN", "MIN_OFFSET", "MIN_PIXELS", "PHASE_EPOCH",
           "SAT_MIN_DATES", "SMOOTH", "EdgeFunction", "apply_offsets", "coregister", "edge_images", "edge_strength",
           "estimate_offsets", "label_offset", "labels_off", "measured_label_offset", "move_whole", "offset_scores",
           "offset_words", "satellite_phase", "satellite_split", "subpixel_offsets"]
