"""Effective resolution: how fine is the detail the 2.5 m map gets right?

* **Distance to the nearest parcel boundary** (:func:`boundary_distance`): a *boundary pixel* is a pixel of the truth
  with a 4-neighbour of the other class (both sides of every edge; the image border is no edge). Each pixel's
  distance (Euclidean, in 2.5 m pixels) to the nearest boundary pixel is binned ``0, 1, 2, 3, 4–7, 8+`` (bin "0" =
  the boundary pixels themselves, "1" = distance in [1, 2), ...). Accuracy / MCC / recall per bin show how far from an
  edge the map must be to be right: a map with 10 m effective resolution errs up to ~2 px from every edge.
* **Parcel size**: the benchmark's size classes (:data:`sr_core.metrics.SIZE_CLASSES`, weighted MCC from
  :func:`sr_core.metrics.evaluate`) and an object view: a true parcel (8-connected component) is *detected* when
  at least half its pixels are predicted cultivated; detection rate per size bin (:data:`OBJECT_BINS`).
* **Gaps between touching parcels** (:func:`gap_mask`): scored pixels labelled 0 that lie within the outer ring
  (radius 2) of two or more distinct parcels — the 1–2 px strips the −2.5 m buffer leaves between neighbouring
  parcels, where the benchmark's weight is 2·w. *Gap recall* = share of gap pixels predicted 0 (the parcels are kept
  apart), plain and weighted.
* **Boundary F-score** at 1, 2, 4 px: :func:`sr_core.metrics.boundary_counts`, carried in the :class:`Scores`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..metrics import ConfusionCounts, ParcelLayout, boundary
from ..pooling import Poolable

#: Distance-to-boundary bins in 2.5 m pixels: (label, low, high) with low ≤ d < high.
DISTANCE_BINS: tuple[tuple[str, float, float], ...] = (
    ("0", 0, 1), ("1", 1, 2), ("2", 2, 3), ("3", 3, 4), ("4-7", 4, 8), ("8+", 8, math.inf),
)
#: Parcel-size bins (2.5 m pixels) of the object-detection view: one 10 m pixel is 16 px.
OBJECT_BINS: tuple[tuple[str, float, float], ...] = (
    ("<16 px (< one 10 m px)", 1, 16), ("16-49 px", 16, 50), ("50-99 px", 50, 100), ("100-399 px", 100, 400),
    (">=400 px", 400, math.inf),
)
DETECTED_SHARE = 0.5  #: a parcel counts as detected when at least this share of its pixels is predicted cultivated


def boundary_distance(truth: Any) -> np.ndarray:
    """(H, W) float32 distance of every pixel to the nearest boundary pixel of ``truth`` (inf when it has none)."""
    t = np.asarray(truth) != 0
    edge = boundary(t) | boundary(~t)
    if not edge.any():
        return np.full(t.shape, np.inf, np.float32)
    return ndimage.distance_transform_edt(~edge).astype(np.float32)


def distance_bin_index(distance: np.ndarray) -> np.ndarray:
    """Index into :data:`DISTANCE_BINS` of every pixel."""
    lows = np.array([lo for _, lo, _ in DISTANCE_BINS[1:]], np.float64)
    return np.searchsorted(lows, np.asarray(distance, np.float64), side="right")


def gap_mask(layout: ParcelLayout, scored: Any = None) -> np.ndarray:
    """Gap pixels: not in a parcel, within the ring of ≥ 2 parcels, and scored (when ``scored`` is given)."""
    g = (layout.labels == 0) & (layout.ring_count >= 2)
    return g if scored is None else g & np.asarray(scored, bool)


@dataclass(frozen=True, eq=False)
class GapCounts(Poolable):
    """Gap pixels and how many were predicted 0 (open), plain and weighted. Pool with ``+``."""

    n: float = 0.0
    open: float = 0.0
    n_w: float = 0.0
    open_w: float = 0.0

    @property
    def recall(self) -> float | None:
        return self.open / self.n if self.n > 0 else None

    @property
    def recall_weighted(self) -> float | None:
        return self.open_w / self.n_w if self.n_w > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"gap_pixels": self.n, "open": self.open, "recall": self.recall, "recall_weighted": self.recall_weighted}


@dataclass(frozen=True, eq=False)
class ResolutionCounts(Poolable):
    """Per distance bin (label → :class:`ConfusionCounts`, unweighted over scored pixels); per object bin
    (label → [parcels, detected]); gap counts. Pool with ``+``."""

    distance: dict[str, ConfusionCounts] = field(default_factory=dict)
    objects: dict[str, tuple[int, int]] = field(default_factory=dict)
    gaps: GapCounts = field(default_factory=GapCounts)

    def distance_table(self) -> list[dict[str, Any]]:
        rows = []
        for k, c in self.distance.items():
            rows.append({"distance_px": k, "pixels": c.total, "accuracy": c.accuracy if c.total else None,
                         "mcc": c.mcc if c.mcc_defined else None,
                         "recall": c.recall if (c.tp + c.fn) > 0 else None,
                         "precision": c.precision if (c.tp + c.fp) > 0 else None})
        return rows

    def object_table(self) -> list[dict[str, Any]]:
        return [{"size": k, "parcels": n, "detected": d, "detection_rate": (d / n if n else None)}
                for k, (n, d) in self.objects.items()]

    def to_dict(self) -> dict[str, Any]:
        return {"by_distance": self.distance_table(), "by_parcel_size": self.object_table(), "gaps": self.gaps.to_dict()}


def resolution_counts(truth: Any, pred: Any, layout: ParcelLayout, weights: Any) -> ResolutionCounts:
    """Distance-bin confusion counts, object detection per size bin and gap counts of ``pred`` against ``truth``
    (``layout`` = :func:`sr_core.metrics.parcel_layout` of the truth; pixels with weight 0 are not scored)."""
    t = np.asarray(truth) != 0
    p = np.asarray(pred) != 0
    w = np.asarray(weights, np.float64)
    scored = w > 0
    bins = distance_bin_index(boundary_distance(t))
    distance = {label: ConfusionCounts.from_arrays(t, p, mask=scored & (bins == i))
                for i, (label, _, _) in enumerate(DISTANCE_BINS)}
    sizes = layout.sizes[1:]
    hit = np.bincount(layout.labels.ravel(), weights=p.ravel().astype(np.float64), minlength=len(layout.sizes))[1:]
    detected = hit >= DETECTED_SHARE * np.maximum(sizes, 1)
    objects = {label: (int(((sizes >= lo) & (sizes < hi)).sum()), int((detected & (sizes >= lo) & (sizes < hi)).sum()))
               for label, lo, hi in OBJECT_BINS}
    g = gap_mask(layout, scored)
    gaps = GapCounts(float(g.sum()), float((g & ~p).sum()), float(w[g].sum()), float(w[g & ~p].sum()))
    return ResolutionCounts(distance, objects, gaps)
