"""Scoring a submission: validate it (:func:`sr_core.io.submission.validate_submission`'s checks) and compute the
benchmark's weighted MCC per patch and pooled over all pixels of all patches (:mod:`sr_core.metrics`), the number
``python -m sr_core score`` and the leaderboard report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .io.submission import SubmissionReport, TruthSource, _run


@dataclass
class ScoreReport:
    """Validation plus scores: ``pooled`` is the benchmark score (None when the submission is invalid)."""

    validation: SubmissionReport
    patches: list[Any] = field(default_factory=list)  #: sr_core.metrics.Scores per patch, in name order
    pooled: Any = None  #: sr_core.metrics.Scores over all pixels of all patches
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.validation.ok and self.pooled is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.validation.ok,
            "validation": self.validation.to_dict(),
            "weighted_mcc": None if self.pooled is None else self.pooled.wmcc,
            "pooled": None if self.pooled is None else self.pooled.to_dict(),
            "patches": [s.to_dict() for s in self.patches],
            "seconds": self.seconds,
        }


def score_submission(
    source: str | Path, truth: TruthSource, *, diagnostics: bool = True, progress: bool = False
) -> ScoreReport:
    """Validate a submission and score it against labelled patches (see :func:`validate_submission` for both
    arguments). Scores are computed only while the submission is valid; ``pooled`` pools all pixels of all
    patches (the benchmark's weighted MCC). Truth folders are read one at a time, without their band cubes."""
    from .metrics import Scores

    t0 = time.perf_counter()
    report, scores = _run(source, truth, score=True, diagnostics=diagnostics, progress=progress)
    pooled = Scores.pool(scores) if report.ok and scores else None
    return ScoreReport(report, scores if report.ok else [], pooled, time.perf_counter() - t0)


__all__ = ["ScoreReport", "score_submission"]
