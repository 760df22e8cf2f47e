"""Where does the 2.5 m map depart from what 10 m data supports, and is the departure right?

**The 10 m answer** ``A`` (:class:`TenMetreAnswer`): the cultivated map a 10 m method gives, on the 2.5 m grid. Either
the 10 m pixel baseline (``sr_core.baselines.pixel``, a per-pixel classifier, upsampled), or — when that is not
installed — the model's own probability averaged over each 4 × 4 block (one 10 m pixel), thresholded and repeated
back to 2.5 m. The second is not independent of the model: it asks "what does the super-resolved detail add to the
model's own 10 m answer?". :attr:`TenMetreAnswer.source` says which one was used.

**Outcome of each scored pixel** (:func:`outcome_map`), with truth ``T``, the 2.5 m map ``P`` and ``A``; a 10 m
block is *mixed* when the truth holds both classes inside it (the truth has sub-10 m detail there):

=================  ===========================================  =============================================
outcome            rule                                         meaning
=================  ===========================================  =============================================
agree              P = A = T                                    nothing to add, nothing added
improvement        P ≠ A and P = T                              the 2.5 m map departs from 10 m and is right
hallucination +    P ≠ A, P ≠ T, P = 1                          invented cultivated detail
hallucination −    P ≠ A, P ≠ T, P = 0                          erased cultivated land the 10 m answer had
omission           P = A ≠ T inside a mixed block               sub-10 m detail of the truth not recovered
shared error       P = A ≠ T inside a pure block                both wrong about a whole 10 m pixel
=================  ===========================================  =============================================

The six outcomes partition the scored pixels (benchmark weight > 0). Rates: *hallucination rate* = hallucinated /
departing pixels (how often a departure from 10 m is wrong); *omission rate* = omitted / (mixed-block pixels where
``A`` is wrong), i.e. the share of the sub-10 m detail the 10 m answer misses that the 2.5 m map misses too (for a
binary map, the rest is exactly the improvement inside mixed blocks). This adapts ESA OpenSR's *opensr-test*
(improvement / omission / hallucination relative to the low-resolution answer) to a binary map, where "closer to"
becomes "equal to".

**Consistency with the input** (:func:`consistency`): the 2.5 m map averaged back to 10 m (its cultivated *cover*
per 10 m pixel, 0–1) against the 10 m evidence (the 10 m answer's probability). A 10 m pixel *contradicts* the data
when ``|cover − evidence| > margin`` (default 0.5): e.g. the evidence says 90 % likely cultivated and the map covers
less than 40 % of the pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from ..errors import PatchValidationError, SRCoreError
from ..patch import SCALE
from ..pooling import Poolable
from ..resample import block_mean, upsample_nearest

CONTRADICTION_MARGIN = 0.5  #: |cover − evidence| above this marks a 10 m pixel as contradicting the data


#: ``repeat_up(a, k=SCALE)``: (H, W) → (k·H, k·W) by repeating each value over its k × k block (nearest neighbour).
repeat_up = upsample_nearest


def mixed_blocks(truth: Any, k: int = SCALE) -> np.ndarray:
    """(k·H, k·W) bool: pixels inside a k × k block where the truth holds both classes (sub-10 m detail)."""
    m = block_mean(np.asarray(truth) != 0, k)
    return repeat_up((m > 0) & (m < 1), k)


# ---------------------------------------------------------------------------------------------------------------
# The 10 m answer
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TenMetreAnswer:
    """A 10 m answer: ``proba10`` (H, W) its probability per 10 m pixel, ``binary`` (4H, 4W) bool its map on the
    2.5 m grid, ``source`` what it is, ``independent`` False when it is derived from the model being inspected."""

    proba10: np.ndarray
    binary: np.ndarray
    source: str
    independent: bool


def answer_from_model(proba: Any, threshold: float = 0.5) -> TenMetreAnswer:
    """The model's own 10 m answer: the probability averaged per 10 m pixel, thresholded, repeated to 2.5 m."""
    p10 = block_mean(proba)
    return TenMetreAnswer(p10, repeat_up(p10 > threshold), "model aggregated to 10 m (4×4 mean), repeated to 2.5 m",
                          independent=False)


def answer_from_prediction(prediction: Any, source: str = "10 m pixel baseline") -> TenMetreAnswer:
    """A 10 m answer from another predictor's 2.5 m :class:`~sr_core.prediction.Prediction` (e.g. the pixel
    baseline, upsampled by its own method): its binary map as given, its probability averaged per 10 m pixel."""
    return TenMetreAnswer(block_mean(prediction.proba), np.asarray(prediction.binary, bool), source, independent=True)


def ten_metre_answer(patch: Any, proba: Any, threshold: float = 0.5, which: str = "auto") -> tuple[TenMetreAnswer, str | None]:
    """The 10 m answer for ``patch``: ``which`` = ``"pixel"`` (the pixel baseline, error if unavailable), ``"model"``
    (the model's own, aggregated), or ``"auto"`` (the pixel baseline when it runs, else the model's own).
    Returns the answer and a note saying why the fallback was used (None otherwise)."""
    if which not in {"auto", "pixel", "model"}:
        raise ValueError(f"which={which!r}: choose auto, pixel or model")
    if which == "model":
        return answer_from_model(proba, threshold), None
    try:
        from ..baselines import get_baseline

        pred = get_baseline("pixel")(patch)
    except SRCoreError as exc:
        if which == "pixel":
            raise
        note = (f"10 m answer: the pixel baseline is unavailable ({exc}); the model's own output aggregated to 10 m "
                "was used instead, so departures measure the detail the 2.5 m map adds to the model's own 10 m answer")
        return answer_from_model(proba, threshold), note
    return answer_from_prediction(pred), None


# ---------------------------------------------------------------------------------------------------------------
# Outcomes against the 10 m answer
# ---------------------------------------------------------------------------------------------------------------
class Outcome(IntEnum):
    """Outcome codes of :func:`outcome_map` (``IGNORED`` = not scored)."""

    AGREE = 0
    IMPROVEMENT = 1
    HALLUCINATION_ADDED = 2
    HALLUCINATION_REMOVED = 3
    OMISSION = 4
    SHARED_ERROR = 5
    IGNORED = 6

    @property
    def label(self) -> str:
        return OUTCOME_LABELS[self]


OUTCOME_LABELS: dict[Outcome, str] = {
    Outcome.AGREE: "agrees with 10 m and truth",
    Outcome.IMPROVEMENT: "improvement (departs, right)",
    Outcome.HALLUCINATION_ADDED: "hallucination: invented cultivated",
    Outcome.HALLUCINATION_REMOVED: "hallucination: erased cultivated",
    Outcome.OMISSION: "omission (sub-10 m detail missed)",
    Outcome.SHARED_ERROR: "shared 10 m error (whole pixel)",
    Outcome.IGNORED: "not scored",
}
#: short legend labels
OUTCOME_SHORT: dict[Outcome, str] = {
    Outcome.AGREE: "agree", Outcome.IMPROVEMENT: "improvement", Outcome.HALLUCINATION_ADDED: "hallucination +",
    Outcome.HALLUCINATION_REMOVED: "hallucination −", Outcome.OMISSION: "omission", Outcome.SHARED_ERROR: "shared 10 m error",
    Outcome.IGNORED: "not scored",
}
OUTCOME_COLOURS: dict[Outcome, tuple[int, int, int]] = {
    Outcome.AGREE: (45, 45, 45),
    Outcome.IMPROVEMENT: (60, 200, 90),
    Outcome.HALLUCINATION_ADDED: (240, 60, 40),
    Outcome.HALLUCINATION_REMOVED: (230, 60, 210),
    Outcome.OMISSION: (60, 140, 255),
    Outcome.SHARED_ERROR: (235, 200, 60),
    Outcome.IGNORED: (150, 150, 150),
}
#: label-free departure codes of :func:`departure_map`
DEPARTURE_LABELS = {0: "same as the 10 m answer", 1: "adds cultivated", 2: "removes cultivated"}
DEPARTURE_COLOURS = {0: (45, 45, 45), 1: (240, 130, 40), 2: (120, 80, 230)}


def _pair(pred: Any, answer: Any, truth: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    p = np.asarray(pred) != 0
    a = np.asarray(answer) != 0
    if p.ndim != 2 or a.shape != p.shape:
        raise PatchValidationError(f"the 2.5 m map {p.shape} and the 10 m answer {a.shape} must be the same 2-D grid")
    t = None
    if truth is not None:
        t = np.asarray(truth) != 0
        if t.shape != p.shape:
            raise PatchValidationError(f"truth {t.shape} and prediction {p.shape} must be the same 2.5 m grid")
    return p, a, t


def departure_map(pred: Any, answer: Any) -> np.ndarray:
    """Label-free: (4H, 4W) uint8, 0 where the 2.5 m map equals the 10 m answer, 1 where it adds cultivated land,
    2 where it removes it."""
    p, a, _ = _pair(pred, answer)
    out = np.zeros(p.shape, np.uint8)
    out[p & ~a] = 1
    out[~p & a] = 2
    return out


def outcome_map(pred: Any, answer: Any, truth: Any, scored: Any = None) -> np.ndarray:
    """(4H, 4W) uint8 :class:`Outcome` codes (see the module docstring); pixels outside ``scored`` are IGNORED."""
    p, a, t = _pair(pred, answer, truth)
    assert t is not None
    mixed = mixed_blocks(t)
    out = np.full(p.shape, Outcome.AGREE, np.uint8)
    departs = p != a
    out[departs & (p == t)] = Outcome.IMPROVEMENT
    out[departs & (p != t) & p] = Outcome.HALLUCINATION_ADDED
    out[departs & (p != t) & ~p] = Outcome.HALLUCINATION_REMOVED
    missed = ~departs & (a != t)
    out[missed & mixed] = Outcome.OMISSION
    out[missed & ~mixed] = Outcome.SHARED_ERROR
    if scored is not None:
        out[~np.asarray(scored, bool)] = Outcome.IGNORED
    return out


@dataclass(frozen=True, eq=False)
class OutcomeCounts(Poolable):
    """Pixel counts per :class:`Outcome` (index = code, IGNORED excluded), plain and with the benchmark's weights,
    and the number of mixed-block pixels where the 10 m answer is wrong (``detail_missed_by_answer``, plain and
    weighted). Pool with ``+``."""

    counts: np.ndarray
    weighted: np.ndarray
    detail_missed_by_answer: float = 0.0
    detail_missed_by_answer_w: float = 0.0
    #: hallucinated pixels inside 10 m pixels the 2.5 m map splits (both classes in the block: invented sub-10 m
    #: detail), plain and weighted; the rest are whole 10 m pixels decided differently from the answer (and wrongly)
    hallucinated_split: float | None = None
    hallucinated_split_w: float | None = None

    def _c(self, o: Outcome, weighted: bool) -> float:
        return float((self.weighted if weighted else self.counts)[o])

    def total(self, weighted: bool = False) -> float:
        return float((self.weighted if weighted else self.counts).sum())

    def fractions(self, weighted: bool = False) -> dict[str, float | None]:
        """Share of the scored pixels in each outcome (they sum to 1)."""
        n = self.total(weighted)
        return {o.name.lower(): (self._c(o, weighted) / n if n > 0 else None) for o in Outcome if o is not Outcome.IGNORED}

    def departures(self, weighted: bool = False) -> float:
        return sum(self._c(o, weighted) for o in (Outcome.IMPROVEMENT, Outcome.HALLUCINATION_ADDED,
                                                  Outcome.HALLUCINATION_REMOVED))

    def hallucinated(self, weighted: bool = False) -> float:
        return self._c(Outcome.HALLUCINATION_ADDED, weighted) + self._c(Outcome.HALLUCINATION_REMOVED, weighted)

    def hallucination_fraction(self, weighted: bool = False) -> float | None:
        """Hallucinated pixels / scored pixels."""
        n = self.total(weighted)
        return self.hallucinated(weighted) / n if n > 0 else None

    def sub10m_hallucination_share(self, weighted: bool = False) -> float | None:
        """Share of the hallucinated pixels that lie inside 10 m pixels the map splits: detail finer than 10 m that
        the truth does not hold. The rest are whole 10 m pixels the map decides wrongly where the 10 m answer was
        right (a 10 m-scale error, not invented detail). None when nothing is hallucinated."""
        h = self.hallucinated(weighted)
        split = self.hallucinated_split_w if weighted else self.hallucinated_split
        return split / h if h > 0 and split is not None else None  # None: counted without the map

    def omission_fraction(self, weighted: bool = False) -> float | None:
        """Omitted pixels / scored pixels."""
        n = self.total(weighted)
        return self._c(Outcome.OMISSION, weighted) / n if n > 0 else None

    def hallucination_rate(self, weighted: bool = False) -> float | None:
        """Hallucinated / departing pixels (None when the map never departs from the 10 m answer)."""
        d = self.departures(weighted)
        return self.hallucinated(weighted) / d if d > 0 else None

    def omission_rate(self, weighted: bool = False) -> float | None:
        """Omitted / mixed-block pixels where the 10 m answer is wrong (None when there are none)."""
        d = self.detail_missed_by_answer_w if weighted else self.detail_missed_by_answer
        return self._c(Outcome.OMISSION, weighted) / d if d > 0 else None

    def net_gain(self, weighted: bool = False) -> float | None:
        """(improved − hallucinated) / scored pixels: the accuracy the 2.5 m map gains over the 10 m answer."""
        n = self.total(weighted)
        return (self._c(Outcome.IMPROVEMENT, weighted) - self.hallucinated(weighted)) / n if n > 0 else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pixels": self.total(), "counts": {o.name.lower(): self._c(o, False) for o in Outcome
                                                                  if o is not Outcome.IGNORED}}
        for w in (False, True):
            key = "weighted" if w else "plain"
            out[key] = {"fractions": self.fractions(w), "hallucination_fraction": self.hallucination_fraction(w),
                        "omission_fraction": self.omission_fraction(w), "hallucination_rate": self.hallucination_rate(w),
                        "omission_rate": self.omission_rate(w), "net_gain": self.net_gain(w),
                        "sub10m_hallucination_share": self.sub10m_hallucination_share(w),
                        "departure_fraction": (self.departures(w) / self.total(w)) if self.total(w) > 0 else None}
        return out


def outcome_counts(outcomes: np.ndarray, answer: Any, truth: Any, weights: Any, pred: Any = None) -> OutcomeCounts:
    """Counts of an :func:`outcome_map` (pixels with weight 0 are not counted). With ``pred`` (the 2.5 m binary map)
    the hallucinated pixels inside 10 m pixels the map splits are counted apart
    (:meth:`OutcomeCounts.sub10m_hallucination_share`)."""
    codes = np.asarray(outcomes).ravel()
    w = np.asarray(weights, np.float64).ravel()
    keep = (codes != Outcome.IGNORED) & (w > 0)
    n_out = len(Outcome) - 1
    counts = np.bincount(codes[keep], minlength=n_out)[:n_out].astype(np.float64)
    weighted = np.bincount(codes[keep], weights=w[keep], minlength=n_out)[:n_out]
    t = np.asarray(truth) != 0
    a = np.asarray(answer) != 0
    dm = (mixed_blocks(t) & (a != t)).ravel() & keep
    if pred is None:
        return OutcomeCounts(counts, weighted, float(dm.sum()), float(w[dm].sum()))
    halluc = np.isin(codes, (Outcome.HALLUCINATION_ADDED, Outcome.HALLUCINATION_REMOVED))
    split_h = halluc & mixed_blocks(np.asarray(pred) != 0).ravel() & keep
    return OutcomeCounts(counts, weighted, float(dm.sum()), float(w[dm].sum()), float(split_h.sum()),
                         float(w[split_h].sum()))


def outcome_image(codes: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 picture of :class:`Outcome` codes (colours :data:`OUTCOME_COLOURS`)."""
    lut = np.zeros((256, 3), np.uint8)
    for o, c in OUTCOME_COLOURS.items():
        lut[o] = c
    return lut[np.asarray(codes, np.uint8)]


def departure_image(codes: np.ndarray) -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    for k, c in DEPARTURE_COLOURS.items():
        lut[k] = c
    return lut[np.asarray(codes, np.uint8)]


# ---------------------------------------------------------------------------------------------------------------
# Consistency with the 10 m evidence
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ConsistencyCounts(Poolable):
    """10 m pixels compared, how many contradict the evidence, sums of |cover − evidence| and |p̄ − evidence|
    (the latter only meaningful with independent evidence). Pool with ``+``."""

    n: float = 0.0
    contradicting: float = 0.0
    sum_abs_cover_gap: float = 0.0
    sum_abs_proba_gap: float = 0.0
    independent: bool = True
    #: whether a contradiction is possible at all: against the model's own 10 m aggregate |cover − evidence| ≤
    #: max(t, 1 − t) for its threshold t, so a margin at or above that can never be exceeded
    can_contradict: bool = True

    @property
    def contradiction_share(self) -> float | None:
        """Share of the 10 m pixels whose cover departs from the evidence by more than the margin; None (n/a) where
        no pixel could (:attr:`can_contradict` false), where "0 %" would read as a pass."""
        return self.contradicting / self.n if self.n > 0 and self.can_contradict else None

    @property
    def mean_abs_cover_gap(self) -> float | None:
        return self.sum_abs_cover_gap / self.n if self.n > 0 else None

    @property
    def mean_abs_proba_gap(self) -> float | None:
        """Mean |4×4 mean of the 2.5 m probability − evidence|; None with non-independent evidence (it is 0 by
        construction when the evidence is the model's own aggregate)."""
        return self.sum_abs_proba_gap / self.n if self.n > 0 and self.independent else None

    def to_dict(self) -> dict[str, Any]:
        return {"pixels_10m": self.n, "contradicting": self.contradicting, "contradiction_share": self.contradiction_share,
                "mean_abs_cover_gap": self.mean_abs_cover_gap, "mean_abs_proba_gap": self.mean_abs_proba_gap,
                "independent_evidence": self.independent, "can_contradict": self.can_contradict}


@dataclass(frozen=True, eq=False)
class Consistency:
    """Maps at 10 m: ``cover`` (share of each 10 m pixel the 2.5 m binary map calls cultivated), ``proba10``
    (4×4 mean of the 2.5 m probability), ``evidence`` (the 10 m answer's probability), ``contradicts`` (bool)."""

    cover: np.ndarray
    proba10: np.ndarray
    evidence: np.ndarray
    contradicts: np.ndarray
    margin: float
    counts: ConsistencyCounts

    @property
    def gap(self) -> np.ndarray:
        """cover − evidence, −1…1 (positive: the map paints more cultivated land than the evidence supports)."""
        return self.cover - self.evidence


def consistency(proba: Any, binary: Any, evidence: Any, margin: float = CONTRADICTION_MARGIN, independent: bool = True,
                valid: Any = None, threshold: float | None = None) -> Consistency:
    """Compare the 2.5 m map aggregated to 10 m with the 10 m ``evidence`` (H, W probabilities); only 10 m pixels
    where ``valid`` (H, W) is True are counted (default all). With non-independent evidence (the model's own
    aggregate, thresholded at ``threshold``) a contradiction is possible only below a margin of max(t, 1 − t); at or
    above it (or with no threshold given) the contradiction share is n/a."""
    if not 0 <= margin < 1:
        raise ValueError("margin must lie in [0, 1)")
    cover = block_mean(np.asarray(binary) != 0)
    p10 = block_mean(proba)
    ev = np.asarray(evidence, np.float32)
    if ev.shape != cover.shape:
        raise PatchValidationError(f"evidence has shape {ev.shape}; expected the 10 m grid {cover.shape}")
    v = np.ones(cover.shape, bool) if valid is None else np.asarray(valid, bool)
    gap = np.abs(cover - ev)
    contra = (gap > margin) & v
    can = independent or (threshold is not None and margin < max(threshold, 1 - threshold))
    counts = ConsistencyCounts(float(v.sum()), float(contra.sum()), float(gap[v].sum()),
                               float(np.abs(p10 - ev)[v].sum()), independent, can)
    return Consistency(cover, p10, ev, contra, float(margin), counts)
