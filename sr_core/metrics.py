"""The benchmark's metric, exactly: the weight map, weighted confusion counts and weighted MCC, plus diagnostics.

Definitions follow the AI4EO "Enhanced Sentinel-2 for Agriculture" benchmark, as stated in ``docs/CHALLENGE_FACTS.md``:

* :func:`weight_map` — per-pixel weights 0–4 built from the parcels (8-connected components) of ``CULTIVATED``.
* :class:`ConfusionCounts` — weighted (float64) TP / FP / FN / TN; every score is a one-line formula of these, and
  patches are pooled by adding counts (``sum(counts, ConfusionCounts())``), which is how the benchmark pools all
  pixels of all test patches into one weighted MCC.
* :func:`weighted_mcc` — equals ``sklearn.metrics.matthews_corrcoef(y_true, y_pred, sample_weight=w)``.
* :func:`evaluate` → :class:`Scores` — the weighted MCC with the diagnostics users of super-resolution ask for:
  unweighted MCC / F1 / IoU, MCC per parcel-size class and boundary F-scores at 1, 2 and 4 px.

Undefined values (MCC when truth or prediction holds one class only, or nothing is scored) are reported as 0.0,
scikit-learn's convention, and flagged: :func:`weighted_mcc` warns with :class:`UndefinedMetricWarning` and
:class:`Scores` lists the case in ``warnings``. No NaN reaches a user.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy import ndimage

from .errors import PatchValidationError
from .pooling import Poolable

#: Parcels of at least this many 2.5 m pixels weigh 1 (the median Slovenian parcel, ≈ 0.25 ha).
LARGE_PARCEL_PX = 400
#: Radius (pixels) of the disk whose dilation of a parcel, minus the parcel, forms its outer ring.
RING_RADIUS = 2
#: Parcel-size classes used by the diagnostics, in 2.5 m pixels: [low, high).
SIZE_CLASSES: Mapping[str, tuple[int, float]] = MappingProxyType(
    {"small (<50 px)": (1, 50), "medium (50-400 px)": (50, 400), "large (>=400 px)": (400, math.inf)}
)
#: Boundary tolerances (pixels at 2.5 m) of the boundary F-score.
BOUNDARY_TOLERANCES: tuple[int, ...] = (1, 2, 4)

_EIGHT = np.ones((3, 3), bool)  # skimage.measure.label's default connectivity for 2-D (connectivity=2)
_CROSS = ndimage.generate_binary_structure(2, 1)


class UndefinedMetricWarning(UserWarning):
    """A score is mathematically undefined (e.g. MCC with one class only); 0.0 was reported instead."""


# ---------------------------------------------------------------------------------------------------------------
# Weight map
# ---------------------------------------------------------------------------------------------------------------
@cache
def _weight_table() -> np.ndarray:
    from scipy.stats import skewnorm

    f = skewnorm.pdf(np.linspace(1, 400, 400), a=15, loc=35 - 100 / 3.14, scale=100)
    table = 1.0 + f / f.max()
    table.flags.writeable = False
    return table


def parcel_weight(n: int | np.ndarray) -> float | np.ndarray:
    """Weight w(n) of a parcel of ``n`` pixels at 2.5 m: ``1 + f[int(n)] / max f`` for n < 400, else 1.

    ``f`` is the skew-normal pdf (shape 15, loc 35 − 100/3.14, scale 100) on ``linspace(1, 400, 400)``; the index is
    ``int(n)`` itself, which reproduces the benchmark's quoted values (w(1) ≈ 1.44, w(20) ≈ 2.00 peak, w(300) ≈ 1.01).
    """
    table = _weight_table()
    arr = np.asarray(n)
    idx = arr.astype(np.int64)
    if np.any(idx < 0):
        raise ValueError(f"parcel sizes must be non-negative, got {arr.min()}")
    out = np.where(idx < LARGE_PARCEL_PX, table[np.minimum(idx, LARGE_PARCEL_PX - 1)], 1.0)
    return float(out) if out.ndim == 0 else out


def disk(radius: int = RING_RADIUS) -> np.ndarray:
    """Boolean disk footprint ``x² + y² ≤ r²`` (identical to ``skimage.morphology.disk(r)``)."""
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (x * x + y * y) <= radius * radius


def _as_mask(a: Any, name: str) -> np.ndarray:
    m = np.asarray(a)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise PatchValidationError(
            f"{name} has shape {m.shape}; expected a 2-D (H, W) label map (a trailing axis of 1 is accepted)"
        )
    if m.dtype != bool:
        if m.size and (m.min() < 0 or m.max() > 1 or not np.all((m == 0) | (m == 1))):
            raise PatchValidationError(f"{name} holds values other than 0 and 1; pass a boolean mask")
        m = m.astype(bool)
    return m


@dataclass(frozen=True)
class ParcelLayout:
    """Parcels of a label and their rings: what both the weight map and the size-class diagnostics need.

    ``labels`` (H, W) int32, 0 = background, 1..N parcels (8-connected); ``sizes[i]`` pixels of parcel i
    (``sizes[0]`` = background); ``ring_sum`` / ``ring_count`` the sum of 2·w(n) and the number of parcel rings
    covering each pixel; ``ring_classes`` a bit set (bit k = size class k of :data:`SIZE_CLASSES`) of the parcels
    whose ring covers each pixel.
    """

    labels: np.ndarray
    sizes: np.ndarray
    ring_sum: np.ndarray
    ring_count: np.ndarray
    ring_classes: np.ndarray

    @property
    def n_parcels(self) -> int:
        return len(self.sizes) - 1

    def parcel_weights(self) -> np.ndarray:
        """w(n) per label value (index 0, the background, is 1)."""
        w = np.asarray(parcel_weight(self.sizes), np.float64).copy()
        w[0] = 1.0
        return w

    def size_class_of_parcel(self) -> np.ndarray:
        """Size-class index per label value (−1 for the background)."""
        cls = np.full(len(self.sizes), -1, np.int8)
        for k, (lo, hi) in enumerate(SIZE_CLASSES.values()):
            cls[1:][(self.sizes[1:] >= lo) & (self.sizes[1:] < hi)] = k
        return cls


def parcel_layout(cultivated: np.ndarray) -> ParcelLayout:
    """Label the parcels of ``cultivated`` and accumulate their outer rings, one parcel's bounding box at a time.

    The ring of a parcel is its binary dilation by :func:`disk` (radius 2) minus the parcel. Each parcel is
    processed inside its bounding box padded by the radius (clipped to the image), so the cost grows with the
    parcels' area, not with parcels × image size.
    """
    cult = _as_mask(cultivated, "cultivated")
    labels, n = ndimage.label(cult, structure=_EIGHT)
    labels = labels.astype(np.int32, copy=False)
    sizes = np.bincount(labels.ravel(), minlength=n + 1).astype(np.int64)
    H, W = cult.shape
    ring_sum = np.zeros((H, W), np.float64)
    ring_count = np.zeros((H, W), np.int32)
    ring_classes = np.zeros((H, W), np.uint8)
    if n == 0:
        return ParcelLayout(labels, sizes, ring_sum, ring_count, ring_classes)
    two_w = 2.0 * np.asarray(parcel_weight(sizes), np.float64)
    class_bit = np.zeros(n + 1, np.uint8)
    for k, (lo, hi) in enumerate(SIZE_CLASSES.values()):
        class_bit[(sizes >= lo) & (sizes < hi)] = 1 << k
    fp = disk(RING_RADIUS)
    r = RING_RADIUS
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:  # pragma: no cover - ndimage.label numbers parcels consecutively
            continue
        r0, r1 = max(sl[0].start - r, 0), min(sl[0].stop + r, H)
        c0, c1 = max(sl[1].start - r, 0), min(sl[1].stop + r, W)
        parcel = labels[r0:r1, c0:c1] == i
        ring = ndimage.binary_dilation(parcel, structure=fp)
        ring &= ~parcel
        ring_sum[r0:r1, c0:c1][ring] += two_w[i]
        ring_count[r0:r1, c0:c1][ring] += 1
        ring_classes[r0:r1, c0:c1][ring] |= class_bit[i]
    return ParcelLayout(labels, sizes, ring_sum, ring_count, ring_classes)


def _border_and_ignored(weights: np.ndarray, not_declared: np.ndarray | None) -> np.ndarray:
    if not_declared is not None:
        nd = _as_mask(not_declared, "not_declared")
        if nd.shape != weights.shape:
            raise PatchValidationError(
                f"not_declared has shape {nd.shape} but cultivated {weights.shape}; both must be the same 2.5 m grid"
            )
        weights[nd] = 0.0
    weights[0, :] = 0.0
    weights[:, 0] = 0.0
    weights[-2:, :] = 0.0
    weights[:, -2:] = 0.0
    return weights


def weight_map_from_layout(layout: ParcelLayout, not_declared: np.ndarray | None = None) -> np.ndarray:
    """The weight map of an already computed :class:`ParcelLayout` (see :func:`weight_map`)."""
    w = np.ones(layout.labels.shape, np.float64)
    ringed = layout.ring_count > 0
    w[ringed] = layout.ring_sum[ringed] / layout.ring_count[ringed]
    inside = layout.labels > 0
    w[inside] = layout.parcel_weights()[layout.labels[inside]]
    return _border_and_ignored(w, not_declared).astype(np.float32)


def weight_map(cultivated: np.ndarray, not_declared: np.ndarray | None = None) -> np.ndarray:
    """The benchmark's per-pixel weights, float32 (H, W), values 0–4.

    1. Parcels are the 8-connected components of ``cultivated`` (skimage's default connectivity for 2-D).
    2. A parcel of n pixels weighs w(n) (:func:`parcel_weight`: 1 for n ≥ 400, peak 2.0 at n = 20).
    3. Its outer ring (dilation by a radius-2 disk minus the parcel) gets 2·w(n); where rings of several parcels
       overlap, the mean of their 2·w(n) values.
    4. Parcel pixels take their parcel's weight (over any ring); all other pixels weigh 1.
    5. Weight 0 for ``not_declared`` pixels, the first row and column, and the last two rows and columns.
    """
    return weight_map_from_layout(parcel_layout(cultivated), not_declared)


# ---------------------------------------------------------------------------------------------------------------
# Confusion counts and the scores built on them
# ---------------------------------------------------------------------------------------------------------------
def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


@dataclass(frozen=True)
class ConfusionCounts(Poolable):
    """Weighted confusion counts (float64) of a binary map; ``a + b`` pools two sets of pixels.

    Every score returns 0.0 when it is undefined (a zero denominator), scikit-learn's convention;
    :attr:`mcc_defined` and friends tell the two cases apart.
    """

    tp: float = 0.0
    fp: float = 0.0
    fn: float = 0.0
    tn: float = 0.0

    @classmethod
    def from_arrays(cls, y_true: Any, y_pred: Any, weights: Any = None, mask: Any = None) -> ConfusionCounts:
        """Counts of ``y_true`` vs ``y_pred`` (any arrays of 0/1 or bool), each pixel counted with ``weights``
        (default 1), only where ``mask`` is True (default everywhere)."""
        t = np.asarray(y_true)
        p = np.asarray(y_pred)
        if t.shape != p.shape:
            raise PatchValidationError(
                f"y_pred has shape {p.shape} but y_true {t.shape}; predict on the label grid of the truth (4H × 4W)"
            )
        t = t.ravel() != 0
        p = p.ravel() != 0
        w = None
        if weights is not None:
            w = np.asarray(weights, np.float64)
            if w.shape != np.shape(y_true):
                raise PatchValidationError(f"weights have shape {w.shape} but y_true {np.shape(y_true)}; they must match")
            w = w.ravel()
            if w.size and (not np.all(np.isfinite(w)) or w.min() < 0):
                raise PatchValidationError("weights must be finite and non-negative")
        if mask is not None:
            m = np.asarray(mask, bool)
            if m.shape != np.shape(y_true):
                raise PatchValidationError(f"mask has shape {m.shape} but y_true {np.shape(y_true)}; they must match")
            m = m.ravel()
            t, p = t[m], p[m]
            w = None if w is None else w[m]
        return cls._from_code(_outcome_code(t, p), w)

    @classmethod
    def _from_code(cls, code: np.ndarray, w: np.ndarray | None = None, m: np.ndarray | None = None) -> ConfusionCounts:
        if m is not None:
            code = code[m]
            w = None if w is None else w[m]
        c = np.bincount(code, weights=w, minlength=4).astype(np.float64)
        return cls(tp=float(c[3]), fp=float(c[1]), fn=float(c[2]), tn=float(c[0]))

    @property
    def total(self) -> float:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def truth_one_class(self) -> bool:
        """Something is counted and the truth holds one class only (all cultivated or none): no MCC can be defined,
        whatever the prediction (a prediction of one class against a truth of two scores a real 0.0)."""
        return self.total > 0 and ((self.tp + self.fn) == 0 or (self.tn + self.fp) == 0)

    @property
    def mcc_defined(self) -> bool:
        """False when truth or prediction holds one class only (or nothing is counted): MCC is then 0/0."""
        return (self.tp + self.fp) > 0 and (self.tp + self.fn) > 0 and (self.tn + self.fp) > 0 and (self.tn + self.fn) > 0

    @property
    def mcc(self) -> float:
        """Matthews correlation coefficient (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)); 0.0 if undefined."""
        n = self.total
        if n <= 0 or not self.mcc_defined:
            return 0.0
        tp, fp, fn, tn = self.tp / n, self.fp / n, self.fn / n, self.tn / n  # scale to ~1 for precision
        den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
        return 0.0 if den <= 0 else float((tp * tn - fp * fn) / math.sqrt(den))

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def iou(self) -> float:
        return _ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.total)

    def to_dict(self) -> dict[str, float | bool]:
        return {
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn, "mcc": self.mcc, "mcc_defined": self.mcc_defined,
            "precision": self.precision, "recall": self.recall, "f1": self.f1, "iou": self.iou, "accuracy": self.accuracy,
        }  # fmt: skip


def _outcome_code(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Flat int8 outcome per pixel: 0 TN, 1 FP, 2 FN, 3 TP."""
    return (2 * t.ravel().astype(np.int8) + p.ravel().astype(np.int8)).astype(np.int8)


def confusion_counts(y_true: Any, y_pred: Any, weights: Any = None) -> ConfusionCounts:
    """Weighted confusion counts of two binary maps (see :meth:`ConfusionCounts.from_arrays`)."""
    return ConfusionCounts.from_arrays(y_true, y_pred, weights)


def _warn_undefined(what: str, stacklevel: int = 3) -> None:
    warnings.warn(f"{what} is undefined (one class only, or no weight); reported as 0.0", UndefinedMetricWarning,
                  stacklevel=stacklevel)


def weighted_mcc(y_true: Any, y_pred: Any, weights: Any = None) -> float:
    """Weighted Matthews correlation coefficient: equals ``sklearn.metrics.matthews_corrcoef(y_true, y_pred,
    sample_weight=weights)``. Returns 0.0 with an :class:`UndefinedMetricWarning` when it is undefined (truth or
    prediction holds one class only, the input is empty, or all weights are zero)."""
    c = ConfusionCounts.from_arrays(y_true, y_pred, weights)
    if not c.mcc_defined:
        _warn_undefined("MCC")
    return c.mcc


# ---------------------------------------------------------------------------------------------------------------
# Diagnostics: size classes and boundary F-score
# ---------------------------------------------------------------------------------------------------------------
def size_class_masks(layout: ParcelLayout) -> dict[str, np.ndarray]:
    """For each class of :data:`SIZE_CLASSES`, the pixels that belong to it.

    A pixel belongs to class c when (a) it lies in a parcel (of the *true* label) whose size is in c, or
    (b) it lies outside every parcel and inside the outer ring (radius 2) of at least one parcel of class c, or
    (c) it lies outside every parcel and every ring: the shared background, counted in every class.
    A parcel pixel belongs only to its own parcel's class, even where another parcel's ring reaches it. So the
    MCC of class c scores how well parcels of that size are found and delimited, with the false positives far
    from any parcel charged to every class alike.
    """
    cls_of = layout.size_class_of_parcel()
    inside = layout.labels > 0
    pixel_class = cls_of[layout.labels]
    background = ~inside & (layout.ring_classes == 0)
    out = {}
    for k, name in enumerate(SIZE_CLASSES):
        ring_k = (layout.ring_classes & np.uint8(1 << k)) != 0
        out[name] = np.where(inside, pixel_class == k, ring_k | background)
    return out


def boundary(mask: np.ndarray) -> np.ndarray:
    """Inner boundary of a binary mask: its pixels with a 4-neighbour outside it (the image edge is not a boundary)."""
    m = np.asarray(mask, bool)
    return m & ~ndimage.binary_erosion(m, structure=_CROSS, border_value=1)


@dataclass(frozen=True)
class BoundaryCounts(Poolable):
    """Boundary pixels matched within a tolerance: predicted boundary pixels near a true boundary (precision) and
    true boundary pixels near a predicted boundary (recall). Add to pool; scores are ``None`` when undefined."""

    matched_pred: int = 0
    n_pred: int = 0
    matched_true: int = 0
    n_true: int = 0

    @property
    def precision(self) -> float | None:
        return self.matched_pred / self.n_pred if self.n_pred else None

    @property
    def recall(self) -> float | None:
        return self.matched_true / self.n_true if self.n_true else None

    @property
    def f1(self) -> float | None:
        """Harmonic mean of boundary precision and recall; ``None`` when neither map has a boundary, 0.0 when only
        one has."""
        p, r = self.precision, self.recall
        if p is None and r is None:
            return None
        if p is None or r is None or p + r == 0:
            return 0.0
        return 2 * p * r / (p + r)

    def to_dict(self) -> dict[str, float | int | None]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "matched_pred": self.matched_pred,
                "n_pred": self.n_pred, "matched_true": self.matched_true, "n_true": self.n_true}


def boundary_counts(
    y_true: Any, y_pred: Any, tolerances: Sequence[int] = BOUNDARY_TOLERANCES, valid: Any = None
) -> dict[int, BoundaryCounts]:
    """Boundary matches at each tolerance between the true and predicted cultivated masks.

    Boundaries are the masks' inner boundaries (:func:`boundary`). A boundary pixel is matched at tolerance k when
    a boundary pixel of the other map lies within Euclidean distance k (nearest neighbours by a k-d tree over the
    boundary pixels). Only boundary pixels where ``valid`` is True (e.g. weight > 0) are counted; they may match a
    boundary pixel anywhere.
    """
    from scipy.spatial import cKDTree

    t = boundary(np.asarray(y_true) != 0)
    p = boundary(np.asarray(y_pred) != 0)
    v = np.ones(t.shape, bool) if valid is None else np.asarray(valid, bool)
    tv, pv = t & v, p & v
    n_true, n_pred = int(tv.sum()), int(pv.sum())
    tols = [int(k) for k in tolerances]
    if not n_true or not n_pred or not tols:
        return {k: BoundaryCounts(0, n_pred, 0, n_true) for k in tols}
    reach = max(tols) + 0.5
    d_pred, _ = cKDTree(np.argwhere(t)).query(np.argwhere(pv), distance_upper_bound=reach)  # inf beyond reach
    d_true, _ = cKDTree(np.argwhere(p)).query(np.argwhere(tv), distance_upper_bound=reach)
    return {k: BoundaryCounts(int((d_pred <= k).sum()), n_pred, int((d_true <= k).sum()), n_true) for k in tols}


# ---------------------------------------------------------------------------------------------------------------
# One evaluation result used by the CLI and the app
# ---------------------------------------------------------------------------------------------------------------
def _fmt(x: float | None) -> float | None:
    return None if x is None else float(x)


@dataclass(frozen=True)
class Scores(Poolable):
    """Scores of one patch, or of many pooled with ``+`` / :meth:`pool` (counts are summed, then scores recomputed).

    ``weighted`` — counts with the benchmark's weight map (→ :attr:`wmcc`, the benchmark score);
    ``unweighted`` — plain counts over the scored pixels (weight > 0, i.e. not the not-declared land or the border);
    ``size_classes`` — weighted counts per parcel-size class (:func:`size_class_masks` defines membership);
    ``boundary`` — boundary matches per tolerance in pixels.
    """

    weighted: ConfusionCounts
    unweighted: ConfusionCounts
    size_classes: Mapping[str, ConfusionCounts] = field(default_factory=dict)
    boundary: Mapping[int, BoundaryCounts] = field(default_factory=dict)
    name: str = "patch"
    n_patches: int = 1
    parcels: Mapping[str, int] = field(default_factory=dict)  #: number of true parcels per size class
    warnings: tuple[str, ...] = ()

    @property
    def wmcc(self) -> float:
        """The benchmark score: weighted MCC (0.0 when undefined, see ``warnings``)."""
        return self.weighted.mcc

    @property
    def truth_one_class(self) -> bool:
        """The weighted truth holds one class only (:attr:`ConfusionCounts.truth_one_class`)."""
        return self.weighted.truth_one_class

    @property
    def mcc(self) -> float:
        return self.unweighted.mcc

    @property
    def f1(self) -> float:
        return self.unweighted.f1

    @property
    def iou(self) -> float:
        return self.unweighted.iou

    @property
    def precision(self) -> float:
        return self.unweighted.precision

    @property
    def recall(self) -> float:
        return self.unweighted.recall

    def size_class_mcc(self) -> dict[str, float | None]:
        """Weighted MCC per size class (``None`` where the class has no parcel)."""
        return {k: (c.mcc if self.parcels.get(k, 0) else None) for k, c in self.size_classes.items()}

    def boundary_f1(self) -> dict[int, float | None]:
        return {k: b.f1 for k, b in self.boundary.items()}

    def __add__(self, other: Scores) -> Scores:
        if not isinstance(other, Scores):
            return NotImplemented
        pooled = self.pooled_fields(other)
        defined = pooled["weighted"].mcc_defined
        pooled.update(name="pooled", warnings=() if defined else
                      ("pooled weighted MCC is undefined (one class only); reported as 0.0",))
        return Scores(**pooled)

    @classmethod
    def pool(cls, scores: Iterable[Scores]) -> Scores:
        """All pixels of all patches pooled into one set of counts (the benchmark's way of averaging)."""
        it = iter(scores)
        try:
            total = next(it)
        except StopIteration:
            raise ValueError("no scores to pool") from None
        for s in it:
            total = total + s
        return total if total.n_patches > 1 else dataclasses.replace(total, name="pooled")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (no NaN: undefined diagnostics are ``None``)."""
        return {
            "name": self.name,
            "n_patches": self.n_patches,
            "weighted_mcc": self.wmcc,
            "mcc": self.mcc,
            "f1": self.f1,
            "iou": self.iou,
            "precision": self.precision,
            "recall": self.recall,
            "weighted": self.weighted.to_dict(),
            "unweighted": self.unweighted.to_dict(),
            "size_class_mcc": {k: _fmt(v) for k, v in self.size_class_mcc().items()},
            "size_classes": {k: {**c.to_dict(), "parcels": self.parcels.get(k, 0)} for k, c in self.size_classes.items()},
            "boundary_f1": {str(k): _fmt(v) for k, v in self.boundary_f1().items()},
            "boundary": {str(k): b.to_dict() for k, b in self.boundary.items()},
            "warnings": list(self.warnings),
        }


def evaluate(
    y_true: Any,
    y_pred: Any,
    not_declared: Any = None,
    *,
    weights: Any = None,
    name: str = "patch",
    diagnostics: bool = True,
    tolerances: Sequence[int] = BOUNDARY_TOLERANCES,
    layout: ParcelLayout | None = None,
) -> Scores:
    """Score a predicted cultivated map against the truth with the benchmark's weighted MCC and diagnostics.

    ``y_true`` / ``y_pred`` (H, W) bool or 0/1 (``y_pred`` may be a :class:`~sr_core.prediction.Prediction`, its
    ``binary`` is used); ``not_declared`` (H, W) bool or None; ``weights`` a precomputed :func:`weight_map` (else
    computed). ``diagnostics=False`` skips size classes and boundary F-scores (the weighted and unweighted counts
    are always computed). ``layout`` a precomputed :func:`parcel_layout` of ``y_true`` (several predictions scored
    against one truth share it).
    """
    if hasattr(y_pred, "binary") and hasattr(y_pred, "proba"):
        y_pred = y_pred.binary
    t = _as_mask(y_true, "y_true")
    p = _as_mask(y_pred, f"{name}: prediction")
    if p.shape != t.shape:
        raise PatchValidationError(
            f"{name}: prediction has shape {p.shape} but the truth {t.shape}; predict on the 2.5 m label grid (4H × 4W)"
        )
    if layout is None and (weights is None or diagnostics):
        layout = parcel_layout(t)
    if weights is None:
        assert layout is not None
        w = weight_map_from_layout(layout, not_declared)
    else:
        w = np.asarray(weights, np.float32)
        if w.shape != t.shape:
            raise PatchValidationError(f"{name}: weights have shape {w.shape} but the truth {t.shape}; they must match")
    scored = w > 0
    code = _outcome_code(t, p)
    wf = w.ravel().astype(np.float64)
    if wf.size and (not np.all(np.isfinite(wf)) or wf.min() < 0):
        raise PatchValidationError(f"{name}: weights must be finite and non-negative")
    weighted = ConfusionCounts._from_code(code, wf)
    unweighted = ConfusionCounts._from_code(code, None, scored.ravel())
    notes: list[str] = []
    if not weighted.mcc_defined:
        what = "nothing is scored" if weighted.total == 0 else (
            "the truth holds one class only" if weighted.truth_one_class else "the prediction holds one class only")
        notes.append(f"{name}: weighted MCC is undefined ({what}); reported as 0.0")
    size_classes: dict[str, ConfusionCounts] = {}
    parcels: dict[str, int] = {}
    bd: dict[int, BoundaryCounts] = {}
    if diagnostics:
        assert layout is not None
        cls_of = layout.size_class_of_parcel()[1:]
        for k, (cname, member) in enumerate(size_class_masks(layout).items()):
            size_classes[cname] = ConfusionCounts._from_code(code, wf, member.ravel())
            parcels[cname] = int((cls_of == k).sum())
        bd = boundary_counts(t, p, tolerances, valid=scored)
    return Scores(weighted=weighted, unweighted=unweighted, size_classes=size_classes, boundary=bd, name=name,
                  parcels=parcels, warnings=tuple(notes))


def evaluate_patch(patch: Any, prediction: Any, *, diagnostics: bool = True, layout: ParcelLayout | None = None) -> Scores:
    """:func:`evaluate` a prediction (a :class:`~sr_core.prediction.Prediction` or a (4H, 4W) 0/1 array) against the
    labels of a :class:`~sr_core.patch.Patch`."""
    if patch.cultivated is None:
        raise PatchValidationError(
            f"patch {patch.name!r} has no CULTIVATED label; score against labelled (training or simulated) patches"
        )
    return evaluate(patch.cultivated, prediction, patch.not_declared, name=patch.name, diagnostics=diagnostics,
                    layout=layout)
