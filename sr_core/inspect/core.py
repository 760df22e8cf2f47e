"""One call that runs every instrument on a patch (:func:`inspect_patch`) or on a fresh simulated test set
(:func:`inspect_simulated`), plus the plain-text report and the honest verdicts."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import Scores, evaluate, parcel_layout, weight_map_from_layout
from ..patch import Patch
from ..pooling import Poolable
from ..prediction import Prediction
from .calibration import (
    ReliabilityCounts,
    UncertaintyCounts,
    confidence_uncertainty,
    date_subset_ensemble,
    reliability,
    uncertainty_errors,
)
from .maps import (
    CONTRADICTION_MARGIN,
    Consistency,
    ConsistencyCounts,
    Outcome,
    OutcomeCounts,
    TenMetreAnswer,
    consistency,
    departure_map,
    outcome_counts,
    outcome_map,
    ten_metre_answer,
)
from .probes import NO_FIELD_PROBES, PROBES, ProbeResult, Structure, run_probes, structure
from .resolution import ResolutionCounts, gap_mask, resolution_counts

Progress = Callable[[str, int, int], Any]  #: progress(stage, done, total)
MIN_SUPPORT = 500  #: pixels a rate needs before a verdict is drawn from it
SIM_SEED0 = 500_000  #: first seed of ``inspect --simulate`` (split "test"; disjoint from evaluate's 0…N−1 and training)


@dataclass(frozen=True, eq=False)
class InspectionCounts(Poolable):
    """Everything poolable about one or more inspected patches (counts summed over patches)."""

    consistency: ConsistencyCounts
    departures: tuple[float, float, float] = (0.0, 0.0, 0.0)  #: label-free: pixels, added, removed
    outcomes: OutcomeCounts | None = None
    reliability: ReliabilityCounts | None = None
    uncertainty: UncertaintyCounts | None = None  #: the ensemble spread (None when no ensemble ran)
    confidence: UncertaintyCounts | None = None  #: 0.5 − |p − threshold|
    scores: Scores | None = None
    resolution: ResolutionCounts | None = None
    #: simulated patches only: per kind of error ("wrong", "hallucination", "omission"), (weight of such pixels,
    #: weight of those where the map follows the parcel's sown edge and the declared label does not)
    sown: Mapping[str, tuple[float, float]] | None = None
    n_patches: int = 1
    n_labelled: int = 0

    @property
    def departure_fraction(self) -> float | None:
        n = self.departures[0]
        return (self.departures[1] + self.departures[2]) / n if n > 0 else None

    def headline(self) -> dict[str, float | None]:
        """The figures the issue asks for, flat (None where they need labels or an ensemble)."""
        o, r, u, c, s = self.outcomes, self.resolution, self.uncertainty, self.confidence, self.scores
        bf = s.boundary_f1() if s is not None else {}
        return {
            "weighted_mcc": None if s is None else s.wmcc,
            "departure_fraction": self.departure_fraction,
            "hallucination_fraction": None if o is None else o.hallucination_fraction(),
            "hallucination_rate": None if o is None else o.hallucination_rate(),
            "sub10m_hallucination_share": None if o is None else o.sub10m_hallucination_share(),
            "omission_fraction": None if o is None else o.omission_fraction(),
            "omission_rate": None if o is None else o.omission_rate(),
            "improvement_fraction": None if o is None else o.fractions().get("improvement"),
            "net_gain_over_10m": None if o is None else o.net_gain(),
            "gap_recall": None if r is None else r.gaps.recall,
            "gap_recall_weighted": None if r is None else r.gaps.recall_weighted,
            "boundary_f1_1px": bf.get(1), "boundary_f1_2px": bf.get(2), "boundary_f1_4px": bf.get(4),
            "ece": None if self.reliability is None else self.reliability.ece,
            "brier": None if self.reliability is None else self.reliability.brier,
            "uncertainty_error_auc": None if u is None else u.auc,
            "confidence_error_auc": None if c is None else c.auc,
            "contradiction_share": self.consistency.contradiction_share,
            "mean_abs_cover_gap": self.consistency.mean_abs_cover_gap,
            "errors_on_label_offset": self.sown_share("wrong"),
            "hallucinations_on_label_offset": self.sown_share("hallucination"),
        }

    def sown_share(self, kind: str) -> float | None:
        """Share (by benchmark weight) of the ``kind`` pixels where the map follows the sown edge and only the
        declared label's digitising offset makes them wrong (simulated patches; None elsewhere or with none)."""
        if self.sown is None or kind not in self.sown or self.sown[kind][0] <= 0:
            return None
        n, k = self.sown[kind]
        return k / n

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_patches": self.n_patches, "n_labelled": self.n_labelled, "headline": self.headline(),
            "outcomes": None if self.outcomes is None else self.outcomes.to_dict(),
            "consistency": self.consistency.to_dict(),
            "reliability": None if self.reliability is None else self.reliability.to_dict(),
            "uncertainty": None if self.uncertainty is None else self.uncertainty.to_dict(),
            "confidence": None if self.confidence is None else self.confidence.to_dict(),
            "scores": None if self.scores is None else self.scores.to_dict(),
            "resolution": None if self.resolution is None else self.resolution.to_dict(),
            "sown": None if self.sown is None else {k: list(v) for k, v in self.sown.items()},
        }


@dataclass(eq=False)
class Inspection:
    """All instruments on one patch: the maps (for display and the report) and the poolable :attr:`counts`."""

    name: str
    source: str
    prediction: Prediction
    answer: TenMetreAnswer
    departure: np.ndarray  #: label-free departure codes (:func:`departure_map`)
    consistency: Consistency
    counts: InspectionCounts
    uncertainty: np.ndarray | None = None  #: the ensemble spread shown as the uncertainty map
    uncertainty_kind: str = "none"
    date_std: np.ndarray | None = None
    outcomes: np.ndarray | None = None  #: :class:`~sr_core.inspect.maps.Outcome` codes (with labels)
    gaps: np.ndarray | None = None  #: gap pixels (with labels)
    structure: Structure | None = None  #: of the prediction
    truth_structure: Structure | None = None
    probes: list[ProbeResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def has_labels(self) -> bool:
        return self.outcomes is not None

    def verdicts(self) -> list[str]:
        return verdicts(self.counts, self.probes, self.prediction.predictor)

    def to_dict(self) -> dict[str, Any]:
        p = self.prediction
        return {
            "name": self.name, "source": self.source, "predictor": p.predictor, "device": p.device,
            "threshold": p.threshold, "seconds": self.seconds, "answer_source": self.answer.source,
            "uncertainty_kind": self.uncertainty_kind,
            "structure": None if self.structure is None else self.structure.to_dict(),
            "truth_structure": None if self.truth_structure is None else self.truth_structure.to_dict(),
            **self.counts.to_dict(),
            "probes": [r.to_dict() for r in self.probes],
            "notes": list(self.notes), "verdicts": self.verdicts(),
        }


def _combine(tta_std: np.ndarray | None, date_std: np.ndarray | None, n_tta: int, n_dates: int) -> tuple[np.ndarray | None, str]:
    if tta_std is not None and date_std is not None:
        return np.sqrt(tta_std ** 2 + date_std ** 2).astype(np.float32), (
            f"√(TTA std² + date-subset std²) ({n_tta} flips/rotations, {n_dates} date subsets)")
    if tta_std is not None:
        return tta_std.astype(np.float32), f"std over {n_tta} test-time flips/rotations"
    if date_std is not None:
        return date_std.astype(np.float32), f"std over {n_dates} random halves of the dates"
    return None, "none"


def sown_attribution(patch: Patch, binary: np.ndarray, outcomes: np.ndarray,
                     weights: np.ndarray) -> dict[str, tuple[float, float]] | None:
    """On a patch of the current simulator, how much of the map's error is the declared labels' digitising offset:
    per kind ("wrong": every error; "hallucination", "omission": those outcomes), the benchmark weight of its pixels
    and of those where the map equals the labels redrawn from the parcels' sown edges
    (:func:`sr_core.oracles.sown_oracle`). None on any other patch."""
    from ..errors import ConfigError
    from ..oracles import sown_oracle

    try:
        sown = sown_oracle(patch).binary.astype(bool)
    except ConfigError:
        return None
    t = np.asarray(patch.cultivated, bool)
    follows = binary == sown
    kinds = {"wrong": (binary != t) & (weights > 0),
             "hallucination": np.isin(outcomes, (Outcome.HALLUCINATION_ADDED, Outcome.HALLUCINATION_REMOVED)),
             "omission": outcomes == Outcome.OMISSION}
    return {k: (float(weights[m].sum()), float(weights[m & follows].sum())) for k, m in kinds.items()}


def label_offset_note(patch: Patch) -> str | None:
    """A note when the patch's labels sit half a pixel or more off its imagery (:func:`sr_core.coreg.label_offset`):
    then part of every outcome near an edge is the labels' position, not the map."""
    from ..coreg import labels_off, measured_label_offset, offset_words

    off = measured_label_offset(patch)
    if off is None or not labels_off(off):
        return None
    return (f"{offset_words(off)} (B08 edge fit, {off['dates']} dates): part of every outcome near an edge "
            "(hallucination, omission, improvement) is the labels' position, not the map")


def inspect_patch(
    patch: Patch,
    *,
    model: Any = None,
    device: str = "auto",
    prediction: Prediction | None = None,
    tta: int = 8,
    date_members: int = 0,
    answer: str = "auto",
    margin: float = CONTRADICTION_MARGIN,
    probes: bool = False,
    probe_names: Sequence[str] = PROBES,
    seed: int = 0,
    progress: Progress | None = None,
) -> Inspection:
    """Run every instrument on ``patch``.

    ``model``: an SRNet or checkpoint path (None = the bundled weights). ``prediction``: reuse an existing one (its
    ``uncertainty`` is then the TTA spread) instead of predicting. ``tta``: test-time transforms (1 = none).
    ``date_members``: members of the date-subset ensemble (0 = off). ``answer``: the 10 m answer (``auto`` / ``pixel``
    / ``model``, see :func:`~sr_core.inspect.maps.ten_metre_answer`). ``probes``: also run the probes.
    The label-dependent parts (outcomes, reliability, effective resolution) run when the patch has labels.
    """
    from ..inference import predict

    t0 = time.perf_counter()

    def tick(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    notes: list[str] = []
    if prediction is None:
        prediction = predict(patch, device=device, model=model, uncertainty=tta > 1, tta=max(1, tta),
                             progress=lambda d, n: tick("predict", d, n))
    elif prediction.shape != patch.label_shape:
        from ..errors import PatchValidationError

        raise PatchValidationError(f"prediction {prediction.shape} does not match the patch's 2.5 m grid {patch.label_shape}")
    n_tta = int(prediction.extra.get("tta", tta if prediction.uncertainty is not None else 1))
    thr = prediction.threshold
    proba = prediction.proba
    binary = prediction.binary.astype(bool)
    date_std = None
    if date_members >= 2:
        if patch.n_dates >= 2:
            ens = date_subset_ensemble(patch, model=model, device=device, members=date_members, seed=seed,
                                       progress=lambda d, n: tick("date subsets", d, n))
            date_std = ens.std
        else:
            notes.append("date-subset ensemble skipped: the patch has a single date")
    unc, kind = _combine(prediction.uncertainty, date_std, n_tta, date_members)

    tick("10 m answer", 0, 1)
    ans, note = ten_metre_answer(patch, proba, thr, answer)
    if note:
        notes.append(note)
    tick("10 m answer", 1, 1)
    dep = departure_map(binary, ans.binary)
    valid10 = patch.valid_mask().any(axis=0)
    # pixels never seen clear are painted 0 by rule, not by the network: no contradiction is counted there
    cons = consistency(proba, binary, ans.proba10, margin, ans.independent, valid=valid10, threshold=thr)
    if not valid10.all():
        notes.append(f"{(~valid10).mean():.1%} of the 10 m pixels are never seen clear: the model has no evidence there")

    counts = InspectionCounts(cons.counts, (float(dep.size), float((dep == 1).sum()), float((dep == 2).sum())))
    outcomes = gaps = None
    truth_structure = None
    if patch.has_labels:
        layout = parcel_layout(patch.cultivated)
        w = weight_map_from_layout(layout, patch.not_declared)
        scored = w > 0
        t = patch.cultivated
        outcomes = outcome_map(binary, ans.binary, t, scored)
        gaps = gap_mask(layout, scored)
        conf = confidence_uncertainty(proba, thr)
        counts = dataclasses.replace(
            counts,
            outcomes=outcome_counts(outcomes, ans.binary, t, w, pred=binary),
            reliability=reliability(proba, t, scored),
            uncertainty=None if unc is None else uncertainty_errors(unc, binary, t, scored, kind),
            confidence=uncertainty_errors(conf, binary, t, scored, f"0.5 − |p − {thr:g}|"),
            scores=evaluate(t, binary, patch.not_declared, weights=w, name=patch.name),
            resolution=resolution_counts(t, binary, layout, w),
            n_labelled=1,
        )
        truth_structure = structure(t)
        sown = sown_attribution(patch, binary, outcomes, w)
        if sown is not None:
            counts = dataclasses.replace(counts, sown=sown)
        off_note = label_offset_note(patch)
        if off_note:
            notes.append(off_note)
    else:
        notes.append("no labels: outcomes, reliability and effective resolution need CULTIVATED; label-free parts shown")

    probe_results: list[ProbeResult] = []
    if probes:
        probe_results = run_probes(patch, model=model, device=device, names=probe_names, seed=seed, threshold=thr,
                                   original=binary, progress=lambda d, n: tick("probes", d, n))
    return Inspection(
        name=patch.name, source=patch.info.source.value, prediction=prediction, answer=ans, departure=dep,
        consistency=cons, counts=counts, uncertainty=unc, uncertainty_kind=kind, date_std=date_std, outcomes=outcomes,
        gaps=gaps, structure=structure(binary), truth_structure=truth_structure, probes=probe_results, notes=notes,
        seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------------------------------------------------
# A fresh simulated test set
# ---------------------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class SimulatedInspection:
    """Pooled counts over simulated patches, one headline row per patch, the probes (run on the first patch)."""

    counts: InspectionCounts
    rows: list[dict[str, Any]]
    probes: list[ProbeResult]
    predictor: str
    device: str
    size: int
    seeds: tuple[int, ...]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def verdicts(self) -> list[str]:
        return verdicts(self.counts, self.probes, self.predictor)

    def to_dict(self) -> dict[str, Any]:
        return {"predictor": self.predictor, "device": self.device, "size": self.size, "split": "test",
                "seeds": list(self.seeds), "seconds": self.seconds, "pooled": self.counts.to_dict(), "patches": self.rows,
                "probes": [r.to_dict() for r in self.probes], "notes": self.notes, "verdicts": self.verdicts()}


def inspect_simulated(
    n: int,
    size: int = 128,
    *,
    model: Any = None,
    device: str = "auto",
    seed0: int = SIM_SEED0,
    tta: int = 8,
    date_members: int = 0,
    answer: str = "auto",
    margin: float = CONTRADICTION_MARGIN,
    probes: bool = True,
    progress: Progress | None = None,
) -> SimulatedInspection:
    """Inspect ``n`` freshly simulated test-split patches (seeds ``seed0 … seed0 + n − 1``) and pool the counts."""
    from ..errors import ConfigError
    from ..simulate import simulate_patch

    if n < 1:
        raise ConfigError(f"--simulate {n}: simulate at least one patch")
    t0 = time.perf_counter()
    total: InspectionCounts | None = None
    rows: list[dict[str, Any]] = []
    probe_results: list[ProbeResult] = []
    notes: list[str] = []
    predictor = device_used = ""
    for i in range(n):
        patch = simulate_patch(seed0 + i, size=size, split="test")
        ins = inspect_patch(patch, model=model, device=device, tta=tta, date_members=date_members, answer=answer,
                            margin=margin, probes=probes and i == 0, seed=i)
        total = ins.counts if total is None else total + ins.counts
        rows.append({"name": ins.name, "answer_source": ins.answer.source, **ins.counts.headline()})
        if i == 0:
            probe_results = ins.probes
            notes = list(ins.notes)
            predictor, device_used = ins.prediction.predictor, ins.prediction.device
        if progress is not None:
            progress("patches", i + 1, n)
    assert total is not None
    sources = list(dict.fromkeys(r["answer_source"] for r in rows))
    notes.insert(0, f"10 m answer: {sources[0]}" if len(sources) == 1 else
                 "10 m answer NOT the same on every patch, so the pooled departures mix two references: "
                 + "; ".join(f"{s} ({sum(r['answer_source'] == s for r in rows)} patches)" for s in sources))
    return SimulatedInspection(total, rows, probe_results, predictor, device_used, size,
                               tuple(range(seed0, seed0 + n)), notes, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------------------------
# Verdicts and text
# ---------------------------------------------------------------------------------------------------------------
def verdicts(counts: InspectionCounts, probes: Sequence[ProbeResult] = (), predictor: str = "") -> list[str]:
    """Plain sentences on what the figures say, with what would fix the bad ones."""
    out: list[str] = []
    if predictor.endswith(("untrained", "in-memory")):
        out.append("The model is an in-memory / untrained network: these figures describe it, not the bundled weights.")
    h = counts.headline()
    hr, orate, gr, ece, auc = (h["hallucination_rate"], h["omission_rate"], h["gap_recall"], h["ece"],
                               h["uncertainty_error_auc"])
    o, r = counts.outcomes, counts.resolution
    few = []
    if o is not None and hr is not None and o.departures() < MIN_SUPPORT:
        few.append(f"{o.departures():.0f} departing pixels")
        hr = None
    if o is not None and orate is not None and o.detail_missed_by_answer < MIN_SUPPORT:
        few.append(f"{o.detail_missed_by_answer:.0f} sub-10 m detail pixels")
        orate = None
    if r is not None and gr is not None and r.gaps.n < MIN_SUPPORT:
        few.append(f"{r.gaps.n:.0f} gap pixels")
        gr = None
    if few:
        out.append(f"Too few pixels to judge some rates ({', '.join(few)}; at least {MIN_SUPPORT} needed): pool more "
                   "patches (`inspect --simulate N`).")
    if hr is not None:
        if hr > 0.5:
            out.append(f"BAD: {hr:.0%} of the pixels where the 2.5 m map departs from the 10 m answer are wrong — most "
                       "added detail is invented. Fix: train on more small-parcel data with the benchmark weights, or fall "
                       "back to the 10 m answer where the uncertainty is high.")
        elif hr > 0.25:
            out.append(f"MIXED: {hr:.0%} of the departures from the 10 m answer are wrong (hallucinated).")
        else:
            out.append(f"GOOD: only {hr:.0%} of the departures from the 10 m answer are wrong.")
    if orate is not None and orate > 0.5:
        out.append(f"BAD: the map misses {orate:.0%} of the sub-10 m detail the 10 m answer gets wrong (omission). "
                   "Fix: a finer decoder / more training on mixed 10 m pixels.")
    if gr is not None:
        if gr < 0.5:
            out.append(f"BAD: only {gr:.0%} of the thin gaps between touching parcels are kept open — neighbouring "
                       "parcels merge, and these pixels weigh double in the benchmark. Fix: weight gap pixels in the "
                       "loss (2·w as the benchmark does) and add a boundary term.")
        else:
            out.append(f"Gap recall {gr:.0%}: thin gaps between touching parcels are mostly kept open.")
    if ece is not None and ece > 0.05:
        out.append(f"The probabilities are miscalibrated (ECE {ece:.3f} > 0.05). Fix: temperature scaling or a tuned "
                   "threshold on held-out simulated patches.")
    if auc is not None and auc < 0.7:
        out.append(f"The uncertainty map flags errors weakly (error-detection AUC {auc:.2f}; 0.5 = no better than "
                   "chance). Fix: add the date-subset ensemble or train an explicit variance output.")
    cs = h["contradiction_share"]
    if cs is not None and cs > 0.05:
        out.append(f"{cs:.1%} of the 10 m pixels contradict the 10 m evidence by more than the margin.")
    for r in probes:
        cf = r.cultivated_fraction
        if (r.name in NO_FIELD_PROBES and cf is not None and r.structure is not None
                and (cf > 0.05 or r.structure.parcels_per_km2 > 5)):
            out.append(f"BAD: on the '{r.name}' probe ({r.description}) the model paints {cf:.1%} cultivated land "
                       f"and {r.structure.n_parcels} parcel(s) with no field information. Fix: train with such "
                       "negatives (fully clouded series, forest-only scenes) labelled non-cultivated.")
    return out


def _f(x: Any, fmt: str = ".4f") -> str:
    return "n/a" if x is None else format(x, fmt)


def format_counts(c: InspectionCounts) -> list[str]:
    """Text lines of the figures in ``c``."""
    h = c.headline()
    lines = [f"departs from the 10 m answer: {_f(h['departure_fraction'], '.2%')} of the pixels",
             f"consistency with 10 m evidence: {_f(h['contradiction_share'], '.2%')} of 10 m pixels contradict it "
             f"(mean |cover − evidence| {_f(h['mean_abs_cover_gap'], '.3f')})"]
    if c.outcomes is not None:
        fr = c.outcomes.fractions()
        lines.append("outcomes vs the 10 m answer (share of scored pixels):")
        for k, v in fr.items():
            lines.append(f"  {k:<22} {_f(v, '.2%')}")
        lines.append(f"hallucination fraction {_f(h['hallucination_fraction'], '.2%')}, rate (of departures) "
                     f"{_f(h['hallucination_rate'], '.1%')}, inside 10 m pixels the map splits (invented sub-10 m "
                     f"detail) {_f(h['sub10m_hallucination_share'], '.1%')}; omission fraction "
                     f"{_f(h['omission_fraction'], '.2%')}, rate "
                     f"(of sub-10 m detail missed at 10 m) {_f(h['omission_rate'], '.1%')}; net gain over 10 m "
                     f"{_f(h['net_gain_over_10m'], '+.2%')}")
    if c.sown is not None:
        lines.append(f"labels' digitising offset (simulated: the sown edges are known): "
                     f"{_f(h['errors_on_label_offset'], '.1%')} of the weighted errors and "
                     f"{_f(h['hallucinations_on_label_offset'], '.1%')} of the hallucination pixels are where the map "
                     "follows the sown edge and only the declared label says otherwise")
    if c.scores is not None:
        s = c.scores
        lines.append(f"weighted MCC {s.wmcc:.4f}; boundary F1 " + ", ".join(
            f"{k} px {_f(v, '.3f')}" for k, v in s.boundary_f1().items()))
        lines.append("weighted MCC by parcel size: " + ", ".join(f"{k} {_f(v, '.3f')}" for k, v in s.size_class_mcc().items()))
    if c.resolution is not None:
        r = c.resolution
        lines.append(f"gap recall (thin gaps kept open): {_f(r.gaps.recall, '.1%')} of {r.gaps.n:.0f} gap pixels "
                     f"(weighted {_f(r.gaps.recall_weighted, '.1%')})")
        lines.append("by distance to the nearest boundary (px): " + ", ".join(
            f"{row['distance_px']}: acc {_f(row['accuracy'], '.3f')}" for row in r.distance_table()))
        lines.append("parcels detected (≥ half their pixels) by size: " + ", ".join(
            f"{row['size']}: {_f(row['detection_rate'], '.0%')} of {row['parcels']}" for row in r.object_table()))
    if c.reliability is not None:
        rel = c.reliability
        lines.append(f"calibration of the probability: ECE {_f(rel.ece, '.4f')}, Brier {_f(rel.brier, '.4f')}")
        lines.append("  reliability curve (mean p → observed): " + ", ".join(
            f"{r['mean_proba']:.2f}→{r['frequency']:.2f}" for r in rel.curve() if r["n"] > 0))
    for u in (c.uncertainty, c.confidence):
        if u is not None:
            hi, lo = u.top_share_error(0.1)
            lines.append(f"uncertainty [{u.kind}]: error-detection AUC {_f(u.auc, '.3f')}; error rate of the 10 % most "
                         f"uncertain pixels {_f(hi, '.1%')} vs the rest {_f(lo, '.1%')}")
    return lines


def format_probes(probes: Sequence[ProbeResult]) -> list[str]:
    if not probes:
        return []
    lines = ["probes (inputs without field information):",
             f"  {'probe':<18} {'cultivated':>10} {'mean p':>7} {'parcels':>7} {'/km²':>7} {'edges':>7} {'split10m':>8}"]
    for r in probes:
        s = r.structure
        if s is None:
            lines.append(f"  {r.name:<18} not run: {r.error}")
            continue
        agree = r.agreement_with_original
        extra = f"  (agrees with original map on {agree:.1%})" if agree is not None else ""
        lines.append(f"  {r.name:<18} {s.cultivated_fraction:>10.2%} {_f(r.mean_proba, '.3f'):>7} {s.n_parcels:>7d} "
                     f"{s.parcels_per_km2:>7.1f} {s.edge_density:>7.4f} {s.split_10m_share:>8.2%}{extra}")
    return lines


def format_inspection(ins: Inspection) -> str:
    p = ins.prediction
    lines = [f"{ins.name} ({ins.source}) · {p.predictor} on {p.device} · threshold {p.threshold:g} · {ins.seconds:.1f} s",
             f"10 m answer: {ins.answer.source}", f"uncertainty: {ins.uncertainty_kind}"]
    if ins.structure is not None:
        s = ins.structure
        lines.append(f"map: {s.cultivated_fraction:.1%} cultivated, {s.n_parcels} parcels, "
                     f"{s.split_10m_share:.1%} of 10 m pixels split")
    lines += format_counts(ins.counts) + format_probes(ins.probes)
    lines += [f"note: {n}" for n in ins.notes] + [f"verdict: {v}" for v in ins.verdicts()]
    return "\n".join(lines)


def format_simulated(res: SimulatedInspection) -> str:
    lines = [f"fresh simulated test set: {len(res.rows)} patches of {res.size}×{res.size} px (split 'test', seeds "
             f"{res.seeds[0]}…{res.seeds[-1]}) · {res.predictor} on {res.device} · {res.seconds:.1f} s",
             f"{'patch':<22} {'wMCC':>7} {'halluc':>7} {'h.rate':>7} {'omiss':>7} {'o.rate':>7} {'gapRec':>7} {'ECE':>7}"]
    for r in res.rows:
        lines.append(f"{r['name']:<22} {_f(r['weighted_mcc'], '.4f'):>7} {_f(r['hallucination_fraction'], '.2%'):>7} "
                     f"{_f(r['hallucination_rate'], '.1%'):>7} {_f(r['omission_fraction'], '.2%'):>7} "
                     f"{_f(r['omission_rate'], '.1%'):>7} {_f(r['gap_recall'], '.1%'):>7} {_f(r['ece'], '.4f'):>7}")
    lines.append("pooled (counts summed over all patches):")
    lines += ["  " + x for x in format_counts(res.counts)]
    lines += format_probes(res.probes)
    lines += [f"note: {n}" for n in res.notes] + [f"verdict: {v}" for v in res.verdicts()]
    return "\n".join(lines)
