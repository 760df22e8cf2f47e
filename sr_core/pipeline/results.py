"""What a batch run reports: one :class:`PatchResult` per patch (a row of the index GeoPackage) and the
:class:`BatchSummary` of the run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ArchiveError, PatchFormatError, PatchValidationError

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
#: Errors that describe the input itself: retrying would fail the same way, so they are reported at once.
INPUT_ERRORS: tuple[type[BaseException], ...] = (PatchFormatError, PatchValidationError, ArchiveError)


@dataclass
class PatchResult:
    """What happened to one patch (one row of the index GeoPackage)."""

    name: str
    source: str  #: the EOPatch folder
    status: str = FAILED  #: "done", "skipped" (valid output already there) or "failed"
    output: str | None = None  #: the submission GeoTIFF
    proba_output: str | None = None
    uncertainty_output: str | None = None
    error: str | None = None  #: "<ExceptionType>: message" of the last attempt, for failed patches
    attempts: int = 1  #: tries by this run (a task rerun by Dask after a worker died counts once)
    seconds: float = 0.0  #: wall time of the task: read + model + write
    read_seconds: float = 0.0
    predict_seconds: float = 0.0
    write_seconds: float = 0.0
    model_load_seconds: float = 0.0  #: > 0 only for the task that loaded the model into its worker
    bytes_read: int = 0  #: on-disk size of the EOPatch folder
    cultivated_share: float | None = None  #: share of 2.5 m pixels predicted cultivated
    n_dates: int | None = None
    shape: tuple[int, int] | None = None  #: output (rows, cols)
    bbox: tuple[float, float, float, float] | None = None
    epsg: int | None = None
    worker: str = "in-process"
    device: str | None = None
    torch_threads: int | None = None
    warnings: list[str] = field(default_factory=list)
    retryable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchSummary:
    """The outcome of :func:`run_batch`. ``patches_per_minute`` counts predicted (not skipped) patches over
    ``compute_seconds`` (first task submitted → last result), ``wall_seconds`` adds cluster start and the
    mosaic / index."""

    out_dir: str
    results: list[PatchResult]
    scheduler: str
    workers: int
    device: str
    model: str
    wall_seconds: float = 0.0
    compute_seconds: float = 0.0
    start_seconds: float = 0.0  #: cluster start / connection
    mosaic: str | None = None
    proba_mosaic: str | None = None
    index: str | None = None
    notes: list[str] = field(default_factory=list)

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def done(self) -> int:
        return self._count(DONE)

    @property
    def skipped(self) -> int:
        return self._count(SKIPPED)

    @property
    def failed(self) -> int:
        return self._count(FAILED)

    @property
    def failures(self) -> list[PatchResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def patches_per_minute(self) -> float:
        return 60.0 * self.done / self.compute_seconds if self.compute_seconds > 0 else 0.0

    @property
    def model_loads(self) -> int:
        return sum(r.model_load_seconds > 0 for r in self.results)

    def to_dict(self, patches: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "out": self.out_dir, "scheduler": self.scheduler, "workers": self.workers, "device": self.device,
            "model": self.model, "patches": len(self.results), "done": self.done, "skipped": self.skipped,
            "failed": self.failed,
            "failures": [{"name": r.name, "error": r.error, "attempts": r.attempts} for r in self.failures],
            "patches_per_minute": round(self.patches_per_minute, 3), "wall_seconds": round(self.wall_seconds, 3),
            "compute_seconds": round(self.compute_seconds, 3), "start_seconds": round(self.start_seconds, 3),
            "model_loads": self.model_loads, "mosaic": self.mosaic, "proba_mosaic": self.proba_mosaic,
            "index": self.index, "notes": list(self.notes),
        }  # fmt: skip
        if patches:
            out["results"] = [r.to_dict() for r in self.results]
        return out


__all__ = ["DONE", "FAILED", "INPUT_ERRORS", "SKIPPED", "BatchSummary", "PatchResult"]
