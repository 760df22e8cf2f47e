"""Perturbations of a Sentinel-2 series that real products bring and the simulator alone does not.

One set of functions serves two purposes: **domain randomisation** in training (:mod:`sr_core.train` applies them
at random to every crop) and the **robustness gate** (``evaluate --stress`` applies each one, and all together, to
simulated test patches). Each works on plain arrays so that both can use it:

==================  ====================================================================================================
``gain_offset``      per-band gain (× 1 ± ``gain``) and offset (± ``offset`` reflectance): calibration and
                     atmospheric-correction differences between products and dates
``shift``            a whole-pixel or sub-pixel translation of some dates (co-registration error, ≈ 1 px in real series)
``blur``             extra Gaussian blur of every band (σ in 10 m pixels): a softer PSF than the simulator's
``haze``             a semi-transparent grey layer, not flagged as cloud (thin cloud and haze Sen2Cor / CLM miss)
``l1c``              crude top-of-atmosphere look: added path radiance strongest in the blue bands, slight gain
``band_fill``        bands replaced by their nearest-wavelength substitute (:func:`sr_core.prepare.fill_bands`)
``calendar``         every date's day of year shifted by the same number of days (an earlier or later year / region)
``few_dates``        keep only ``k`` dates (the clearest ones first when ``clearest`` is set)
==================  ====================================================================================================

Arrays follow :class:`~sr_core.patch.Patch`: bands (T, H, W, 12) reflectance, valid (T, H, W) bool, doy (T,).
Every function returns new arrays and never changes its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .bands import BAND_NAMES
from .coreg import move_whole
from .prepare import fill_bands

#: Path radiance added by :func:`l1c` per band (reflectance units): blue bands most, SWIR least (typical mid-latitude
#: summer values, the difference between the real L1C forest fixture and its L2A counterpart).
L1C_PATH = np.array([0.085, 0.055, 0.035, 0.02, 0.018, 0.015, 0.012, 0.01, 0.01, 0.01, 0.004, 0.002], np.float32)


def gain_offset(bands: np.ndarray, rng: np.random.Generator, gain: float = 0.05, offset: float = 0.02,
                per_date: bool = False) -> np.ndarray:
    """Per-band gain 1 ± ``gain`` and offset ± ``offset`` (uniform draws); the same for every date unless ``per_date``."""
    T = bands.shape[0]
    shape = (T, 1, 1, bands.shape[-1]) if per_date else (1, 1, 1, bands.shape[-1])
    g = rng.uniform(1 - gain, 1 + gain, shape).astype(np.float32)
    o = rng.uniform(-offset, offset, shape).astype(np.float32)
    return np.clip(bands * g + o, 0.0, None).astype(np.float32)


def shift(bands: np.ndarray, valid: np.ndarray, rng: np.random.Generator, fraction: float = 0.3,
          pixels: float = 1.0, subpixel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Translate a random ``fraction`` of the dates by ``pixels`` (10 m px) in a random direction (edges held).
    Whole pixels by default; ``subpixel`` draws the offset uniformly in ±``pixels`` and interpolates bilinearly."""
    T = bands.shape[0]
    out_b, out_v = bands.copy(), valid.copy()
    n = round(fraction * T)
    if n == 0:
        return out_b, out_v
    for t in rng.choice(T, size=n, replace=False):
        if subpixel:
            dy, dx = rng.uniform(-pixels, pixels, 2)
        else:
            ang = rng.choice(8) * np.pi / 4
            dy, dx = np.round(pixels * np.sin(ang)), np.round(pixels * np.cos(ang))
        if subpixel:
            out_b[t] = ndimage.shift(bands[t], (dy, dx, 0), order=1, mode="nearest")
            out_v[t] = ndimage.shift(valid[t].astype(np.uint8), (dy, dx), order=0, mode="nearest").astype(bool)
        else:
            out_b[t], out_v[t] = move_whole(bands[t], int(dy), int(dx)), move_whole(valid[t], int(dy), int(dx))
    return out_b, out_v


def blur(bands: np.ndarray, sigma: float = 0.7) -> np.ndarray:
    """Gaussian blur of every date and band with ``sigma`` 10 m pixels (edges reflected)."""
    if sigma <= 0:
        return bands.copy()
    return ndimage.gaussian_filter(bands, sigma=(0, sigma, sigma, 0), mode="reflect").astype(np.float32)


def haze(bands: np.ndarray, rng: np.random.Generator, fraction: float = 0.3, opacity: tuple[float, float] = (0.05, 0.3),
         scale_px: float = 12.0) -> np.ndarray:
    """Add semi-transparent haze to a random ``fraction`` of the dates: a smooth random opacity field (peak within
    ``opacity``) mixing the surface with a bright grey-white layer. The valid mask is left as it was: the haze is
    not flagged, as thin haze often is not in real products."""
    T, H, W, C = bands.shape
    out = bands.copy()
    n = round(fraction * T)
    cloud = np.array([0.30, 0.30, 0.30, 0.30, 0.31, 0.32, 0.33, 0.33, 0.33, 0.30, 0.26, 0.20], np.float32)[:C]
    for t in (rng.choice(T, size=n, replace=False) if n else []):
        field = ndimage.gaussian_filter(rng.standard_normal((H, W)).astype(np.float32), scale_px, mode="wrap")
        field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
        a = (rng.uniform(*opacity) * field)[..., None]
        out[t] = (1 - a) * bands[t] + a * cloud
    return out.astype(np.float32)


def l1c(bands: np.ndarray, rng: np.random.Generator | None = None, strength: float = 1.0) -> np.ndarray:
    """A crude top-of-atmosphere look: ``strength`` × :data:`L1C_PATH` added, a 3 % gain, (± 20 % per date)."""
    T = bands.shape[0]
    k = np.full((T, 1, 1, 1), strength, np.float32)
    if rng is not None:
        k = k * rng.uniform(0.8, 1.2, (T, 1, 1, 1)).astype(np.float32)
    return (bands * 1.03 + k * L1C_PATH[: bands.shape[-1]]).astype(np.float32)


def band_fill(bands: np.ndarray, missing: Sequence[str] = ("B01", "B09")) -> np.ndarray:
    """Bands in ``missing`` replaced by their substitute, as prediction does for bands that hold no signal."""
    return np.asarray(fill_bands(bands, list(missing)), np.float32)


def calendar(doy: np.ndarray, days: float) -> np.ndarray:
    """Every date moved by ``days`` (positive: later in the year)."""
    return (np.asarray(doy, np.float32) + np.float32(days)).astype(np.float32)


def few_dates(valid: np.ndarray, k: int, rng: np.random.Generator, clearest: bool = False) -> np.ndarray:
    """Indices (sorted) of ``k`` dates to keep: the ``k`` clearest when ``clearest``, else a random draw."""
    T = valid.shape[0]
    k = max(1, min(int(k), T))
    if clearest:
        frac = valid.reshape(T, -1).mean(axis=1)
        idx = np.argsort(-frac, kind="stable")[:k]
    else:
        idx = rng.choice(T, size=k, replace=False)
    return np.sort(idx)


def random_band_dropout(bands: np.ndarray, rng: np.random.Generator, p_b01_b09: float = 0.5,
                        p_other: float = 0.05) -> np.ndarray:
    """Training's band dropout: B01 and B09 (often missing in L2A extractions) replaced by their substitute with
    probability ``p_b01_b09`` each, any other band with ``p_other``; never B04 and B08 together."""
    missing = [b for b in ("B01", "B09") if rng.random() < p_b01_b09]
    missing += [b for b in BAND_NAMES if b not in ("B01", "B09") and rng.random() < p_other]
    if "B04" in missing and "B08" in missing:
        missing.remove("B08")
    return band_fill(bands, missing) if missing else bands


__all__ = [
    "L1C_PATH", "band_fill", "blur", "calendar", "few_dates", "gain_offset", "haze", "l1c", "random_band_dropout",
    "shift",
]  # fmt: skip
