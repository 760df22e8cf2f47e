"""One patch, one predictor, its GeoTIFFs: the single per-patch step of every predict-a-folder path.

:func:`predict_one` is what both :func:`sr_core.pipeline.write_predictions` (``predict`` without ``--scheduler``,
``baseline``, the app's downloads, the benchmark's reference submissions) and :func:`sr_core.batch.process_patch`
(``run_batch``, in process and on Dask) call for each patch. It owns the steps they share, so each exists once:

1. the file names (:func:`output_paths`: ``<out>/<name>.tif``, ``<proba>/<name>_proba.tif``,
   ``<uncertainty>/<name>_uncertainty.tif``);
2. skip-if-done (:func:`outputs_done`): the outputs are finished when the mask, and the probability and uncertainty
   maps asked for, pass :func:`~sr_core.io.geotiff.check_output`; finished outputs are skipped unless ``force``, and
   finished outputs newer than ``started`` are this run's own (kept even under ``force``);
3. read the patch, predict;
4. write atomically, the mask last (:func:`~sr_core.io.geotiff.write_outputs`).

What surrounds it stays with the callers: the batch's records, timing, threads, model cache and its rule never to
raise for a bad patch; the folder loop's progress bar and name collisions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..geo import BBox
from ..io.geotiff import check_output, write_outputs, write_submission
from ..patch import Patch
from ..prediction import Prediction
from .results import DONE, SKIPPED

log = logging.getLogger(__name__)

Predictor = Callable[[Patch], Prediction | np.ndarray]


def output_paths(
    name: str, out_dir: str | Path, proba_dir: str | Path | None = None, uncertainty_dir: str | Path | None = None
) -> dict[str, Path]:
    """The files of patch ``name``: ``submission`` always, ``proba`` / ``uncertainty`` when their folder is given
    (the names :func:`~sr_core.io.geotiff.write_outputs` writes)."""
    paths = {"submission": Path(out_dir) / f"{name}.tif"}
    if proba_dir is not None:
        paths["proba"] = Path(proba_dir) / f"{name}_proba.tif"
    if uncertainty_dir is not None:
        paths["uncertainty"] = Path(uncertainty_dir) / f"{name}_uncertainty.tif"
    return paths


def outputs_done(paths: dict[str, Path], bbox: BBox) -> tuple[str | None, float | None]:
    """Are a patch's outputs (from :func:`output_paths`) finished for ``bbox``? ``(problem, mean)``: ``problem``
    None when the mask and every companion pass :func:`~sr_core.io.geotiff.check_output` (uncertainty as float32),
    else what is wrong with the first that fails; ``mean`` the mask's mean (the cultivated share)."""
    problem, mean = check_output(paths["submission"], bbox)
    if problem is None and "proba" in paths:
        problem = check_output(paths["proba"], bbox, read=False)[0]
    if problem is None and "uncertainty" in paths:
        problem = check_output(paths["uncertainty"], bbox, read=False, dtype="float32")[0]
    return problem, (mean if problem is None else None)


@dataclass
class PatchOutcome:
    """What :func:`predict_one` did for one patch."""

    name: str
    status: str  #: DONE (predicted and written now) or SKIPPED (finished outputs already there)
    paths: dict[str, Path]  #: the patch's outputs by kind (submission, proba, uncertainty)
    cultivated_share: float | None = None  #: mean of the mask (written or found)
    this_run: bool = False  #: skipped because the outputs were written after ``started`` (by this run)
    problem: str | None = None  #: why existing outputs were not kept ("missing", "unreadable …"); None if not checked
    patch: Patch | None = None  #: the patch read (None when skipped)
    prediction: Prediction | np.ndarray | None = None  #: the predictor's result (None when skipped)
    read_seconds: float = 0.0
    predict_seconds: float = 0.0
    write_seconds: float = 0.0
    written: dict[str, Path] = field(default_factory=dict)  #: the files written now

    @property
    def submission(self) -> Path:
        return self.paths["submission"]


def predict_one(
    source: str | Path | Patch,
    predict: Predictor,
    out_dir: str | Path,
    *,
    name: str | None = None,
    proba_dir: str | Path | None = None,
    uncertainty_dir: str | Path | None = None,
    force: bool = True,
    started: float = float("inf"),
    bbox: BBox | None = None,
    prepare: Callable[[], None] | None = None,
) -> PatchOutcome:
    """Predict one patch and write its outputs, unless they are already finished; the one per-patch step.

    ``source``: an EOPatch folder (read only when it is predicted; named after the folder) or a Patch (named by
    ``patch.name``); ``name`` overrides. ``predict`` maps the Patch to a :class:`~sr_core.prediction.Prediction`
    (mask, and the probability / uncertainty maps when ``proba_dir`` / ``uncertainty_dir`` are given) or a (4H, 4W)
    0/1 array (mask only). Skip-if-done: unless ``force``, finished outputs (:func:`outputs_done`) are kept and the
    patch is not read or predicted; with ``force`` they are checked only when ``started`` is given, to keep outputs
    written after ``started`` (this run's own, e.g. by a Dask task rerun after its worker died) instead of
    predicting twice. ``bbox``: the patch's, when the caller has it (else read from the folder's metadata, cheaply).
    ``prepare()`` runs once the patch is to be predicted, before it is read (e.g. load the model). Writes are atomic,
    the mask last (:func:`~sr_core.io.geotiff.write_outputs`), so a finished mask implies finished companions.
    Raises what reading, predicting or writing raises.
    """
    from ..io.eopatch import load_eopatch, read_bbox

    patch = source if isinstance(source, Patch) else None
    final = name or (patch.name if patch is not None else Path(source).resolve().name)
    paths = output_paths(final, out_dir, proba_dir, uncertainty_dir)
    problem = None
    if not force or started != float("inf"):
        if bbox is None:
            bbox = patch.bbox if patch is not None else read_bbox(source)
        problem, mean = outputs_done(paths, bbox)
        this_run = problem is None and paths["submission"].stat().st_mtime > started
        if problem is None and (this_run or not force):
            if not this_run:
                log.info("%s: skipped, a valid output is already there (%s)", final, paths["submission"])
            return PatchOutcome(final, SKIPPED, paths, cultivated_share=mean, this_run=this_run)
    if prepare is not None:
        prepare()
    t0 = time.perf_counter()
    if patch is None:
        patch = load_eopatch(source)
    t1 = time.perf_counter()
    pred = predict(patch)
    t2 = time.perf_counter()
    if isinstance(pred, Prediction):
        written = write_outputs(pred, patch, out_dir, name=final, proba_dir=proba_dir, uncertainty_dir=uncertainty_dir)
        share = float(pred.binary.mean())
    else:
        written = {"submission": write_submission(pred, patch, out_dir, name=final)}
        share = float(np.asarray(pred).mean())
    t3 = time.perf_counter()
    return PatchOutcome(final, DONE, paths, cultivated_share=share, problem=problem, patch=patch, prediction=pred,
                        read_seconds=t1 - t0, predict_seconds=t2 - t1, write_seconds=t3 - t2, written=written)


__all__ = ["PatchOutcome", "Predictor", "output_paths", "outputs_done", "predict_one"]
