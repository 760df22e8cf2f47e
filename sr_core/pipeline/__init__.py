"""Predict a folder of EOPatches to GeoTIFFs: the one pipeline behind ``predict``, ``baseline``, the app's downloads,
the benchmark's reference submissions and country-scale batches on Dask.

The single per-patch step is :func:`.one.predict_one` (file names, skip-if-done by
:func:`~sr_core.io.geotiff.check_output` on the mask, probability and uncertainty maps, predict, atomic writes with
the mask last). Both loops call it for every patch: :func:`write_predictions` / :func:`predict_submission` (any
predictor, in this process; they overwrite unless ``force=False``) and :func:`sr_core.batch.process_patch` (the
model, under :func:`run_batch`; skips finished patches unless ``force``).

=========================  ===========================================================================================
module                     concern
=========================  ===========================================================================================
:mod:`sr_core.io.inputs`   which patches: folders, folders of them, archives, globs
:mod:`sr_core.io.geotiff`  one patch's outputs (mask, probability, uncertainty), atomic; is an output finished?
:mod:`.one`                one patch: are its outputs done, predict, write (:func:`~.one.predict_one`)
:mod:`.folder`             many patches in this process with any predictor (:func:`predict_submission`)
:mod:`sr_core.batch`       many patches with the model, skip-if-done, retries, in process or on Dask (:func:`run_batch`)
:mod:`.cluster`            where a batch runs (``--scheduler``), Dask connection and layout
:mod:`.results`            per-patch records and the batch summary
:mod:`.mosaic`             the VRT mosaic and the index GeoPackage over a batch
=========================  ===========================================================================================
"""

from __future__ import annotations

from typing import Any

from .folder import predict_submission, write_predictions
from .mosaic import write_index, write_vrt
from .one import PatchOutcome, predict_one
from .results import BatchSummary, PatchResult


def __getattr__(name: str) -> Any:  # the batch imports this package; import it back only on demand
    if name in ("run_batch", "process_patch", "BatchJob"):
        from .. import batch

        return getattr(batch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BatchJob", "BatchSummary", "PatchOutcome", "PatchResult", "predict_one", "predict_submission", "process_patch",
    "run_batch", "write_index", "write_predictions", "write_vrt",
]  # fmt: skip
