"""Is the model's confidence worth anything? Reliability of the probability and error rate against uncertainty.

* :func:`reliability` → :class:`ReliabilityCounts`: pixels binned by predicted probability (10 equal bins on 0–1);
  per bin the mean probability and the observed share of cultivated pixels. The **expected calibration error**
  ``ECE = Σ_b (n_b / N) · |freq_b − mean_p_b|`` (0 = perfectly calibrated) and the Brier score
  ``mean (p − y)²`` summarise it; the per-bin rows are the reliability curve.
* :func:`uncertainty_errors` → :class:`UncertaintyCounts`: a fine histogram of a per-pixel uncertainty (the spread
  of a test-time ensemble, or ``0.5 − |p − threshold|`` when no ensemble ran) for correctly and wrongly classified
  pixels. From it: the error rate in bins of equal pixel count (do uncertain pixels really err more?) and the
  **error-detection AUC** ``P(u_wrong > u_right)`` (+ half the ties): 0.5 = the uncertainty says nothing about where
  the errors are, 1.0 = every error is more uncertain than every correct pixel.
* :func:`date_subset_ensemble`: the model run on random halves of the dates; its spread is a second uncertainty
  (how much the 2.5 m map depends on which acquisitions happened to be clear).

All counts are plain pixel counts over the scored pixels (benchmark weight > 0) and are pooled over patches by
adding them (``a + b``), so pooled figures weigh every pixel equally.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import PatchValidationError
from ..pooling import Poolable

if TYPE_CHECKING:
    from ..patch import Patch

RELIABILITY_BINS = 10  #: equal-width probability bins of the reliability curve
#: Fine uncertainty histogram: 400 bins on 0–0.5 (the largest possible std of values in 0–1), quadratically spaced so
#: the small spreads most pixels have are resolved finely (narrowest bin ≈ 3e-6).
UNCERTAINTY_EDGES: np.ndarray = 0.5 * np.linspace(0.0, 1.0, 401) ** 2
UNCERTAINTY_EDGES.flags.writeable = False


def _flat(a: Any, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.asarray(a)
    if shape is not None and arr.shape != shape:
        raise PatchValidationError(f"{name} has shape {arr.shape}, expected {shape} (the 2.5 m label grid)")
    return arr.ravel()


def _select(proba: Any, truth: Any, mask: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.asarray(proba, np.float64)
    if p.ndim != 2:
        raise PatchValidationError(f"probabilities have shape {p.shape}; pass a 2-D (4H, 4W) map")
    t = _flat(truth, "truth", p.shape) != 0
    m = np.ones(p.size, bool) if mask is None else _flat(mask, "mask", p.shape).astype(bool)
    pf = p.ravel()
    if m.any() and (not np.all(np.isfinite(pf[m])) or pf[m].min() < 0 or pf[m].max() > 1):
        raise PatchValidationError("probabilities must be finite and within 0–1")
    return pf, t, m


# ---------------------------------------------------------------------------------------------------------------
# Reliability of the probability
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ReliabilityCounts(Poolable):
    """Per probability bin: pixel count ``n``, sum of predicted probabilities ``sum_p``, number of truly cultivated
    pixels ``sum_y``; plus the sum of squared errors ``sum_sq`` (Brier). Pool with ``+``."""

    n: np.ndarray
    sum_p: np.ndarray
    sum_y: np.ndarray
    sum_sq: float = 0.0

    @classmethod
    def empty(cls, n_bins: int = RELIABILITY_BINS) -> ReliabilityCounts:
        z = np.zeros(n_bins, np.float64)
        return cls(z, z.copy(), z.copy(), 0.0)

    def __add__(self, other: ReliabilityCounts) -> ReliabilityCounts:
        if not isinstance(other, ReliabilityCounts):
            return NotImplemented
        if len(self.n) != len(other.n):
            raise ValueError("cannot pool reliability counts with different numbers of bins")
        return super().__add__(other)

    @property
    def n_bins(self) -> int:
        return len(self.n)

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, self.n_bins + 1)

    @property
    def total(self) -> float:
        return float(self.n.sum())

    @property
    def mean_proba(self) -> np.ndarray:
        """Mean predicted probability per bin (NaN where the bin is empty)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.sum_p / np.maximum(self.n, 1), np.nan)

    @property
    def frequency(self) -> np.ndarray:
        """Observed share of cultivated pixels per bin (NaN where the bin is empty)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.sum_y / np.maximum(self.n, 1), np.nan)

    @property
    def ece(self) -> float | None:
        """Expected calibration error Σ (n_b/N)·|freq_b − mean_p_b| (None when nothing is counted)."""
        if self.total <= 0:
            return None
        return float(np.abs(self.sum_y - self.sum_p).sum() / self.total)

    @property
    def mce(self) -> float | None:
        """Maximum calibration error over non-empty bins."""
        ok = self.n > 0
        if not ok.any():
            return None
        return float(np.abs(self.frequency[ok] - self.mean_proba[ok]).max())

    @property
    def brier(self) -> float | None:
        return None if self.total <= 0 else float(self.sum_sq / self.total)

    def curve(self) -> list[dict[str, float | None]]:
        """The reliability curve: one row per bin (empty bins have ``None`` values)."""
        e, mp, fr = self.edges, self.mean_proba, self.frequency
        return [{"lo": float(e[i]), "hi": float(e[i + 1]), "n": float(self.n[i]),
                 "mean_proba": None if self.n[i] == 0 else float(mp[i]),
                 "frequency": None if self.n[i] == 0 else float(fr[i])} for i in range(self.n_bins)]

    def to_dict(self) -> dict[str, Any]:
        return {"ece": self.ece, "mce": self.mce, "brier": self.brier, "pixels": self.total, "curve": self.curve()}


def reliability(proba: Any, truth: Any, mask: Any = None, n_bins: int = RELIABILITY_BINS) -> ReliabilityCounts:
    """Reliability counts of probabilities ``proba`` against the binary ``truth`` over the pixels where ``mask``."""
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    p, t, m = _select(proba, truth, mask)
    p, t = p[m], t[m]
    idx = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    n = np.bincount(idx, minlength=n_bins).astype(np.float64)
    sp = np.bincount(idx, weights=p, minlength=n_bins)
    sy = np.bincount(idx, weights=t.astype(np.float64), minlength=n_bins)
    return ReliabilityCounts(n, sp, sy, float(((p - t) ** 2).sum()))


# ---------------------------------------------------------------------------------------------------------------
# Error rate against uncertainty
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class UncertaintyCounts(Poolable):
    """Fine histograms (bins :data:`UNCERTAINTY_EDGES`) of an uncertainty for correct and wrong pixels.

    ``kind`` names the uncertainty (e.g. ``"TTA std"``, ``"0.5 − |p − threshold|"``). Pool with ``+``.
    """

    right: np.ndarray
    wrong: np.ndarray
    kind: str = "uncertainty"

    @property
    def n_right(self) -> float:
        return float(self.right.sum())

    @property
    def n_wrong(self) -> float:
        return float(self.wrong.sum())

    @property
    def error_rate(self) -> float | None:
        n = self.n_right + self.n_wrong
        return None if n <= 0 else self.n_wrong / n

    @property
    def auc(self) -> float | None:
        """P(uncertainty of a wrong pixel > that of a right pixel) + ½ P(same histogram bin); None when there are no
        errors or no correct pixels."""
        nw, nr = self.n_wrong, self.n_right
        if nw <= 0 or nr <= 0:
            return None
        below = np.concatenate([[0.0], np.cumsum(self.right)[:-1]])
        return float((self.wrong * (below + 0.5 * self.right)).sum() / (nw * nr))

    def bins(self, k: int = 5) -> list[dict[str, float]]:
        """Error rate in up to ``k`` bins of (about) equal pixel count, lowest uncertainty first."""
        total = self.right + self.wrong
        n = float(total.sum())
        if n <= 0:
            return []
        cum = np.cumsum(total)
        cuts = sorted({int(np.searchsorted(cum, q * n, side="left")) + 1 for q in np.arange(1, k) / k})
        cuts = [c for c in cuts if 0 < c < len(total)]
        rows = []
        start = 0
        for stop in [*cuts, len(total)]:
            r, w = float(self.right[start:stop].sum()), float(self.wrong[start:stop].sum())
            if r + w > 0:
                rows.append({"lo": float(UNCERTAINTY_EDGES[start]), "hi": float(UNCERTAINTY_EDGES[stop]),
                             "n": r + w, "share": (r + w) / n, "error_rate": w / (r + w)})
            start = stop
        return rows

    def top_share_error(self, share: float = 0.1) -> tuple[float | None, float | None]:
        """Error rate of the ``share`` most uncertain pixels and of the rest (bin granularity)."""
        total = self.right + self.wrong
        n = float(total.sum())
        if n <= 0:
            return None, None
        tail = np.cumsum(total[::-1])[::-1]  # pixels at or above each bin
        start = int(np.flatnonzero(tail >= share * n).max()) if np.any(tail >= share * n) else 0
        hw, hn = float(self.wrong[start:].sum()), float(total[start:].sum())
        lw, ln = float(self.wrong[:start].sum()), float(total[:start].sum())
        return (hw / hn if hn else None), (lw / ln if ln else None)

    def to_dict(self) -> dict[str, Any]:
        hi, lo = self.top_share_error(0.1)
        return {"kind": self.kind, "auc": self.auc, "error_rate": self.error_rate, "pixels": self.n_right + self.n_wrong,
                "error_rate_top10pct_uncertain": hi, "error_rate_rest": lo, "bins": self.bins()}


def uncertainty_errors(uncertainty: Any, pred: Any, truth: Any, mask: Any = None, kind: str = "uncertainty") -> UncertaintyCounts:
    """Histograms of ``uncertainty`` (≥ 0; values above 0.5 fall in the last bin) for the pixels where the binary
    ``pred`` equals ``truth`` and where it does not, over ``mask``."""
    u = np.asarray(uncertainty, np.float64)
    if u.ndim != 2:
        raise PatchValidationError(f"uncertainty has shape {u.shape}; pass a 2-D (4H, 4W) map")
    p = _flat(pred, "prediction", u.shape) != 0
    t = _flat(truth, "truth", u.shape) != 0
    m = np.ones(u.size, bool) if mask is None else _flat(mask, "mask", u.shape).astype(bool)
    uf = u.ravel()[m]
    if uf.size and (not np.all(np.isfinite(uf)) or uf.min() < 0):
        raise PatchValidationError("uncertainty must be finite and non-negative")
    nb = len(UNCERTAINTY_EDGES) - 1
    idx = np.clip(np.searchsorted(UNCERTAINTY_EDGES, uf, side="right") - 1, 0, nb - 1)
    wrong = (p != t)[m]
    return UncertaintyCounts(np.bincount(idx[~wrong], minlength=nb).astype(np.float64),
                             np.bincount(idx[wrong], minlength=nb).astype(np.float64), kind)


def confidence_uncertainty(proba: Any, threshold: float = 0.5) -> np.ndarray:
    """A label-free, ensemble-free uncertainty from the probability alone: ``max(0, 0.5 − |p − threshold|)``
    (0.5 at the decision threshold, falling to 0 half a unit away from it)."""
    p = np.asarray(proba, np.float32)
    return np.clip(0.5 - np.abs(p - np.float32(threshold)), 0.0, 0.5).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Date-subset ensemble
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DateEnsemble:
    """Predictions on random subsets of the dates: ``mean`` and ``std`` (4H, 4W) over the members, and the date
    indices each member used."""

    mean: np.ndarray
    std: np.ndarray
    subsets: tuple[tuple[int, ...], ...]


def date_subsets(n_dates: int, members: int, fraction: float = 0.5, seed: int = 0) -> list[list[int]]:
    """``members`` random, sorted subsets of ``round(fraction · n_dates)`` (at least 1) date indices."""
    if n_dates < 2:
        raise PatchValidationError(f"a date-subset ensemble needs at least 2 dates; the patch has {n_dates}")
    if not 0 < fraction < 1:
        raise ValueError("fraction must lie strictly between 0 and 1")
    k = min(max(1, round(fraction * n_dates)), n_dates - 1)
    rng = np.random.default_rng(seed)
    return [sorted(int(i) for i in rng.choice(n_dates, size=k, replace=False)) for _ in range(members)]


def date_subset_ensemble(
    patch: Patch,
    model: Any = None,
    device: str = "auto",
    members: int = 4,
    fraction: float = 0.5,
    seed: int = 0,
    progress: Callable[[int, int], Any] | None = None,
) -> DateEnsemble:
    """Run the model on ``members`` random subsets of the dates (each ``fraction`` of them) and return the
    mean and standard deviation of the probabilities."""
    from ..inference import predict

    if members < 2:
        raise ValueError("a date-subset ensemble needs at least 2 members")
    subsets = date_subsets(patch.n_dates, members, fraction, seed)
    probs = []
    for i, idx in enumerate(subsets):
        probs.append(predict(patch.select_dates(idx), device=device, model=model).proba)
        if progress is not None:
            progress(i + 1, members)
    stack = np.stack(probs)
    return DateEnsemble(stack.mean(0).astype(np.float32), stack.std(0).astype(np.float32),
                        tuple(tuple(s) for s in subsets))
