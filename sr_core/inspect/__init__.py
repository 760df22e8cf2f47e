"""The hallucination inspector: where does a 2.5 m map made from 10 m data invent detail, and can it be trusted?

Instruments (each a function of plain arrays and/or a :class:`~sr_core.patch.Patch`, tested on constructed cases):

* :mod:`.calibration` — reliability curve / ECE of the probability, error rate against uncertainty, date-subset
  ensemble;
* :mod:`.maps` — the 10 m answer, improvement / hallucination / omission map and fractions, consistency with the
  10 m evidence;
* :mod:`.resolution` — skill by distance to the nearest parcel boundary and by parcel size, gap recall;
* :mod:`.probes` — inputs without field information and the structure the model paints on them;
* :mod:`.core` — :func:`inspect_patch` / :func:`inspect_simulated` running all of them, and the text report.

Definitions: ``docs/HALLUCINATIONS.md``. HTML / PDF one-page report: :func:`sr_core.report.render_report`.
"""

from __future__ import annotations

from .calibration import (
    DateEnsemble,
    ReliabilityCounts,
    UncertaintyCounts,
    confidence_uncertainty,
    date_subset_ensemble,
    date_subsets,
    reliability,
    uncertainty_errors,
)
from .core import (
    SIM_SEED0,
    Inspection,
    InspectionCounts,
    SimulatedInspection,
    format_inspection,
    format_simulated,
    inspect_patch,
    inspect_simulated,
    verdicts,
)
from .maps import (
    CONTRADICTION_MARGIN,
    Consistency,
    ConsistencyCounts,
    Outcome,
    OutcomeCounts,
    TenMetreAnswer,
    answer_from_model,
    answer_from_prediction,
    block_mean,
    consistency,
    departure_image,
    departure_map,
    mixed_blocks,
    outcome_counts,
    outcome_image,
    outcome_map,
    repeat_up,
    ten_metre_answer,
)
from .probes import PROBES, ProbeResult, Structure, make_probe, run_probes, structure
from .resolution import (
    DISTANCE_BINS,
    OBJECT_BINS,
    GapCounts,
    ResolutionCounts,
    boundary_distance,
    gap_mask,
    resolution_counts,
)

__all__ = [
    "CONTRADICTION_MARGIN", "DISTANCE_BINS", "OBJECT_BINS", "PROBES", "SIM_SEED0", "Consistency", "ConsistencyCounts",
    "DateEnsemble", "GapCounts", "Inspection", "InspectionCounts", "Outcome", "OutcomeCounts", "ProbeResult",
    "ReliabilityCounts", "ResolutionCounts", "SimulatedInspection", "Structure", "TenMetreAnswer", "UncertaintyCounts",
    "answer_from_model", "answer_from_prediction", "block_mean", "boundary_distance", "confidence_uncertainty",
    "consistency", "date_subset_ensemble", "date_subsets", "departure_image", "departure_map", "format_inspection",
    "format_simulated", "gap_mask", "inspect_patch", "inspect_simulated", "make_probe", "mixed_blocks", "outcome_counts",
    "outcome_image", "outcome_map", "reliability", "repeat_up", "resolution_counts", "run_probes", "structure",
    "ten_metre_answer", "uncertainty_errors", "verdicts",
]  # fmt: skip
