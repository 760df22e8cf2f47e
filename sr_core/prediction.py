"""The output type of every predictor (model and baselines): a 2.5 m probability map with its georeference."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import PatchValidationError
from .geo import BBox
from .patch import read_only


@dataclass(frozen=True, eq=False, repr=False)
class Prediction:
    """Cultivated-land prediction at 2.5 m for one patch.

    ``proba`` (4H, 4W) float32 in 0–1; ``binary`` is ``proba > threshold``. ``uncertainty`` (same shape, optional)
    is a per-pixel spread (e.g. the standard deviation over a test-time ensemble). ``bbox`` is the patch footprint,
    so ``transform`` places the map exactly on the patch's 2.5 m label grid. ``no_data`` (optional) marks the pixels
    with no evidence at all (never seen clear). The maps are stored read-only, and
    the caller's arrays are left as they were (copied when writeable, as a :class:`~sr_core.patch.Patch` does).
    """

    proba: np.ndarray
    bbox: BBox
    name: str = "patch"
    threshold: float = 0.5
    uncertainty: np.ndarray | None = None
    predictor: str = "model"  #: "model:<checkpoint>", "baseline:ndvi", "baseline:pixel", ...
    device: str = "cpu"
    seconds: float = float("nan")
    warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    #: (4H, 4W) bool, optional: pixels with no evidence (never seen clear on any date), whose probability the
    #: predictor set to 0 by rule; written files mark them as no data (an internal mask, or NaN for float maps)
    no_data: np.ndarray | None = None

    def __post_init__(self) -> None:
        p = np.asarray(self.proba)
        if p.ndim != 2:
            raise PatchValidationError(f"Prediction.proba has shape {p.shape}; expected a 2-D (4H, 4W) map")
        if not np.issubdtype(p.dtype, np.floating) and p.dtype != bool:
            raise PatchValidationError(f"Prediction.proba dtype {p.dtype}; expected float probabilities 0–1")
        p = read_only(p.astype(np.float32, copy=False), self.proba)
        object.__setattr__(self, "proba", p)
        if self.uncertainty is not None:
            if np.shape(self.uncertainty) != p.shape:
                raise PatchValidationError(
                    f"Prediction.uncertainty has shape {np.shape(self.uncertainty)}, proba {p.shape}; they must match"
                )
            u = np.asarray(self.uncertainty)
            object.__setattr__(self, "uncertainty", read_only(u, self.uncertainty))
        if self.no_data is not None:
            if np.shape(self.no_data) != p.shape:
                raise PatchValidationError(
                    f"Prediction.no_data has shape {np.shape(self.no_data)}, proba {p.shape}; they must match"
                )
            nd = np.asarray(self.no_data, bool)
            object.__setattr__(self, "no_data", read_only(nd, self.no_data) if nd.any() else None)
        object.__setattr__(self, "warnings", tuple(self.warnings))

    @property
    def binary(self) -> np.ndarray:
        """(4H, 4W) uint8 map of {0, 1}: the benchmark's submission values."""
        return (self.proba > self.threshold).astype(np.uint8)

    @property
    def shape(self) -> tuple[int, int]:
        return self.proba.shape  # type: ignore[return-value]

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        h, w = self.proba.shape
        return self.bbox.transform(w, h)

    def __repr__(self) -> str:
        return (
            f"Prediction({self.name!r}, {self.predictor}, {self.shape[0]}×{self.shape[1]} @2.5 m, "
            f"cultivated {self.binary.mean():.1%}, device={self.device}, {self.seconds:.2f} s)"
        )
