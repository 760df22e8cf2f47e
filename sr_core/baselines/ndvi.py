"""The organisers' NDVI-threshold baseline ("dummy" submission, weighted MCC 0.534 on the test set), reproduced.

The challenge's starter pack does, per patch:

1. valid pixels = ``IS_DATA`` and not ``CLM``; keep the frames whose valid fraction is **> 0.95**;
2. NDVI = (B08 − B04) / (B08 + B04) per kept frame, and its temporal mean ``np.nanmean`` (over *all* pixels of the
   kept frames, not only the valid ones);
3. upsample ×4 with OpenCV's ``cv2.resize(..., fx=4, fy=4, interpolation=cv2.INTER_CUBIC)``;
4. cultivated where **0.4 < NDVI ≤ 0.6**.

Here: validity is :meth:`Patch.valid_mask` (``is_data`` and not ``cloud_mask``; ``cloud_prob > 0.4`` stands in for a
missing cloud mask). Step 3 is :func:`upsample_bicubic`, a numpy re-implementation of OpenCV's INTER_CUBIC (Keys
cubic convolution with a = −0.75, pixel-centre alignment, edge pixels replicated) in float64 — OpenCV works in
float32, so values agree to ~1e-7 and only pixels within that of a threshold can differ. Where no frame reaches
95 % valid pixels (the starter pack would then average nothing and predict no cultivated land), the least cloudy
frame(s) are used instead and the prediction carries a warning.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..bands import NIR, RED
from ..patch import SCALE, Patch
from ..prediction import Prediction
from ..prepare import input_record, input_warnings, prepare_input

VALID_FRACTION = 0.95  #: a frame is used when more than this share of its pixels is valid
NDVI_LOW = 0.4  #: cultivated where NDVI_LOW < NDVI ≤ NDVI_HIGH
NDVI_HIGH = 0.6
CUBIC_A = -0.75  #: OpenCV's cubic convolution parameter


def _cubic_weights(t: np.ndarray, a: float = CUBIC_A) -> np.ndarray:
    """(n, 4) Keys weights for taps at floor(x) − 1 … floor(x) + 2, given the fractional offsets ``t``."""
    t = np.asarray(t, np.float64)
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    u = 1 - t
    w2 = ((a + 2) * u - (a + 3)) * u * u + 1
    w3 = 1 - w0 - w1 - w2
    return np.stack([w0, w1, w2, w3], axis=1)


def _resize_axis(x: np.ndarray, axis: int, factor: int) -> np.ndarray:
    n = x.shape[axis]
    dst = np.arange(n * factor)
    src = (dst + 0.5) / factor - 0.5  # pixel-centre alignment, as cv2.resize and skimage
    base = np.floor(src).astype(np.int64)
    w = _cubic_weights(src - base)
    out = None
    for k in range(4):
        idx = np.clip(base - 1 + k, 0, n - 1)  # BORDER_REPLICATE
        shape = [1] * x.ndim
        shape[axis] = -1
        term = np.take(x, idx, axis=axis) * w[:, k].reshape(shape)
        out = term if out is None else out + term
    assert out is not None
    return out


def upsample_bicubic(image: np.ndarray, factor: int = SCALE) -> np.ndarray:
    """Bicubic ×``factor`` upsampling of a 2-D float image, as OpenCV's ``INTER_CUBIC`` (see module docstring).

    Separable: rows, then columns. NaN spreads to the output pixels whose 4 × 4 neighbourhood contains it, as in
    OpenCV. Returns float32 of shape (factor·H, factor·W).
    """
    a = np.asarray(image, np.float64)
    if a.ndim != 2:
        raise ValueError(f"upsample_bicubic: expected a 2-D image, got shape {a.shape}")
    return _resize_axis(_resize_axis(a, 0, factor), 1, factor).astype(np.float32)


def select_frames(patch: Patch, min_valid: float = VALID_FRACTION) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Indices of the frames with valid fraction > ``min_valid``, every frame's valid fraction, and warnings.

    Falls back to the least cloudy frame(s) (all frames tied at the highest valid fraction) when none qualifies.
    """
    valid = patch.valid_mask()
    frac = valid.reshape(valid.shape[0], -1).mean(axis=1)
    idx = np.flatnonzero(frac > min_valid)
    notes: list[str] = []
    if idx.size == 0:
        best = frac.max()
        idx = np.flatnonzero(frac == best)
        dates = ", ".join(f"{patch.timestamps[i]:%Y-%m-%d}" for i in idx)
        notes.append(
            f"{patch.name}: no frame has more than {min_valid:.0%} valid (cloud-free, with data) pixels; the NDVI "
            f"baseline used the least cloudy frame(s) instead ({dates}, {best:.0%} valid)"
        )
    return idx, frac, notes


def mean_ndvi(patch: Patch, frames: np.ndarray) -> np.ndarray:
    """(H, W) float32 temporal mean of NDVI over ``frames`` (NaN where B08 + B04 = 0 in every frame)."""
    nir = patch.bands[frames, :, :, NIR].astype(np.float64)
    red = patch.bands[frames, :, :, RED].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = (nir - red) / (nir + red)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice" where every frame is 0/0
        return np.nanmean(ndvi, axis=0).astype(np.float32)


def ndvi_baseline(patch: Patch, *, low: float = NDVI_LOW, high: float = NDVI_HIGH, season: int | None = None) -> Prediction:
    """The organisers' dummy predictor: cultivated where ``low`` < bicubic-upsampled mean NDVI ≤ ``high``.

    The patch goes through the model's input path first (:func:`sr_core.prepare.prepare_input`: one growing
    season, SCL clouds where CLM / CLP are absent), so both see the same dates.

    ``proba`` is the 0/1 map (as float32); ``extra`` holds ``ndvi`` (the upsampled mean NDVI, 4H × 4W float32),
    ``mean_ndvi_10m`` (H × W), ``frames_used`` (indices into the season's dates, which ``extra['input']``
    describes), ``dates_used`` (their ISO dates) and ``valid_fraction`` (per season date).
    """
    t0 = time.perf_counter()
    patch = prepare_input(patch, season)
    frames, frac, notes = select_frames(patch)
    ndvi10 = mean_ndvi(patch, frames)
    ndvi25 = upsample_bicubic(ndvi10, SCALE)
    with np.errstate(invalid="ignore"):
        binary = (ndvi25 > low) & (ndvi25 <= high)
    return Prediction(
        proba=binary.astype(np.float32),
        bbox=patch.bbox,
        name=patch.name,
        threshold=0.5,
        predictor="baseline:ndvi",
        device="cpu",
        seconds=time.perf_counter() - t0,
        warnings=tuple([*input_warnings(patch), *notes]),
        extra={"ndvi": ndvi25, "mean_ndvi_10m": ndvi10, "frames_used": tuple(int(i) for i in frames),
               "dates_used": tuple(patch.timestamps[int(i)].date().isoformat() for i in frames),
               "valid_fraction": frac.astype(np.float32), "input": input_record(patch)},
    )


__all__ = ["NDVI_HIGH", "NDVI_LOW", "VALID_FRACTION", "mean_ndvi", "ndvi_baseline", "select_frames", "upsample_bicubic"]
