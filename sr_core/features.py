"""Per-date input features shared by the model (and usable by baselines): normalised bands, indices, masks.

A date of a patch becomes ``N_DATE_FEATURES`` channels per 10 m pixel:

* the 12 bands as standardised log reflectance ``(log(ρ + LOG_OFFSET) − mean_b) / std_b`` (the per-band
  statistics are stored in each model checkpoint; :data:`DEFAULT_BAND_MEAN` / :data:`DEFAULT_BAND_STD` are typical
  L2A values used until training measures its own);
* NDVI, NDWI (green vs NIR) and NDBI (SWIR1 vs NIR), each in −1…1;
* the s2cloudless cloud probability (0 where the patch has none) and the valid mask (1 = has data, not cloud).

Cloudy and no-data observations keep their values here; the network masks them out of its temporal pooling
(they are used only for a pixel that is never seen clear), and the valid channel tells it which is which. The day
of year travels beside the features (:func:`day_of_year`) and is encoded inside the network.

The numpy helpers (:func:`patch_arrays`, :func:`series_report`) need no torch; :func:`date_features` works on torch
tensors so that it runs on the model's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from .bands import BAND_NAMES, GREEN, N_BANDS, NIR, RED, SWIR1
from .quality import USABLE_DATE_FRACTION, series_warnings

if TYPE_CHECKING:
    import torch

    from .patch import Patch

LOG_OFFSET = 0.01  #: added to reflectance before the log, so dark water / shadow stay finite
INDEX_NAMES: tuple[str, ...] = ("NDVI", "NDWI", "NDBI")
MASK_NAMES: tuple[str, ...] = ("cloud_prob", "valid")
FEATURE_NAMES: tuple[str, ...] = (*BAND_NAMES, *INDEX_NAMES, *MASK_NAMES)
N_DATE_FEATURES = len(FEATURE_NAMES)  #: 17 channels per date

#: Typical mean / std of log(ρ + 0.01) per band for vegetated Slovenian L2A scenes (replaced by measured values
#: in trained checkpoints; see ``normalisation`` in the checkpoint).
DEFAULT_BAND_MEAN: tuple[float, ...] = (-2.9, -2.8, -2.5, -2.6, -2.2, -1.6, -1.4, -1.4, -1.3, -1.4, -1.6, -2.1)
DEFAULT_BAND_STD: tuple[float, ...] = (0.45, 0.5, 0.45, 0.6, 0.45, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.5)


@dataclass(frozen=True)
class PatchArrays:
    """The raw inputs the model reads from a :class:`~sr_core.patch.Patch` (no copies of the band cube)."""

    bands: np.ndarray  #: (T, H, W, 12) float32 reflectance (a read-only view of the patch)
    valid: np.ndarray  #: (T, H, W) bool, has data and not cloud
    cloud_prob: np.ndarray | None  #: (T, H, W) float32 0–1, or None
    doy: np.ndarray  #: (T,) float32 day of year (1–366, fractional)


def day_of_year(timestamps: Sequence[datetime]) -> np.ndarray:
    """(T,) float32 fractional day of year of each timestamp (1.0 = 1 January 00:00)."""
    out = [t.timetuple().tm_yday + (t.hour * 3600 + t.minute * 60 + t.second) / 86400.0 for t in timestamps]
    return np.asarray(out, np.float32)


def patch_arrays(patch: Patch) -> PatchArrays:
    """Everything the network needs from a patch: bands, valid mask, cloud probability and day of year."""
    return PatchArrays(
        bands=patch.bands,
        valid=patch.valid_mask(),
        cloud_prob=patch.cloud_prob,
        doy=day_of_year(patch.timestamps),
    )


def _ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(a − b) / (a + b) for non-negative a, b: within −1…1, and 0 where both are 0."""
    return (a - b) / (a + b + 1e-6)


def date_features(
    bands: torch.Tensor,
    valid: torch.Tensor,
    cloud_prob: torch.Tensor | None,
    band_mean: torch.Tensor,
    band_std: torch.Tensor,
) -> torch.Tensor:
    """Per-date feature stack, channels last.

    bands (..., 12) reflectance; valid (...) bool; cloud_prob (...) 0–1 or None (any leading shape, e.g.
    (B, H, W, T)); band_mean / band_std (12,) statistics of log(ρ + LOG_OFFSET). Returns float32 (..., 17) in
    :data:`FEATURE_NAMES` order.
    """
    import torch

    if bands.shape[-1] != N_BANDS:
        raise ValueError(f"date_features: bands have {bands.shape[-1]} channels on the last axis, expected {N_BANDS}")
    x = bands.float().clamp_min(0.0)
    logb = (torch.log(x + LOG_OFFSET) - band_mean) / band_std
    nir, red, green, swir = x[..., NIR], x[..., RED], x[..., GREEN], x[..., SWIR1]
    idx = torch.stack([_ratio(nir, red), _ratio(green, nir), _ratio(swir, nir)], dim=-1)  # (..., 3)
    v = valid.to(torch.float32).unsqueeze(-1)  # (..., 1)
    cp = torch.zeros_like(v) if cloud_prob is None else cloud_prob.to(torch.float32).unsqueeze(-1)
    return torch.cat([logb, idx, cp, v], dim=-1)


def log_band_stats(samples: np.ndarray) -> dict[str, list[float]]:
    """Mean / std of log(ρ + LOG_OFFSET) per band of (N, 12) reflectance samples (clear pixels of training data),
    as ``{"band_mean": [...], "band_std": [...]}`` (the defaults when there are no samples)."""
    x = np.asarray(samples, np.float64).reshape(-1, N_BANDS)
    if x.shape[0] == 0:
        return {"band_mean": list(DEFAULT_BAND_MEAN), "band_std": list(DEFAULT_BAND_STD)}
    x = np.log(np.clip(x, 0, None) + LOG_OFFSET)
    return {"band_mean": [float(v) for v in x.mean(0)], "band_std": [float(max(v, 1e-3)) for v in x.std(0)]}


@dataclass(frozen=True)
class SeriesReport:
    """How much usable information a patch's time series holds (drives the warnings shown with a prediction)."""

    n_dates: int
    usable_dates: int  #: dates with ≥ USABLE_DATE_FRACTION valid pixels
    valid_fraction: float  #: share of all (date, pixel) observations that are valid
    blind: np.ndarray  #: (H, W) 10 m mask of the pixels never observed clear on any date
    warnings: tuple[str, ...]

    @property
    def blind_fraction(self) -> float:
        """Share of pixels never observed clear on any date."""
        return float(self.blind.mean()) if self.blind.size else 1.0


def series_report(patch: Patch, valid: np.ndarray | None = None) -> SeriesReport:
    """Count usable dates and never-seen pixels, with the warnings a user can act on.

    The wording comes from :func:`sr_core.quality.series_warnings` (one source for ``info``, the Upload page and
    every prediction; predictions leave out the list of partly cloudy frames), plus a warning for pixels that are
    never seen clear, which only a pixel-level count reveals.
    """
    valid = patch.valid_mask() if valid is None else valid
    T = valid.shape[0]
    per_date = valid.reshape(T, -1).mean(axis=1) if valid.size else np.zeros(T)
    usable = int((per_date >= USABLE_DATE_FRACTION).sum())
    blind = ~valid.any(axis=0)
    blind_fraction = float(blind.mean()) if blind.size else 1.0
    warns = series_warnings(patch, list_cloudy_frames=False)
    if blind_fraction > 0.01:
        warns.append(
            f"{blind_fraction:.1%} of the pixels are never seen clear (cloud or no data on every date); "
            "with no evidence there, the model maps them as not cultivated"
        )
    return SeriesReport(T, usable, float(valid.mean()) if valid.size else 0.0, blind, tuple(warns))
