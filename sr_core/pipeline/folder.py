"""Predict a set of patches to GeoTIFFs, one after another in this process, with any predictor (the model, a
baseline, a callable): the path of ``predict`` without ``--scheduler``, ``baseline``, the app's downloads and the
benchmark's reference submissions. Each patch goes through :func:`sr_core.pipeline.one.predict_one`, the single
per-patch step (file names, skip-if-done, predict, atomic writes with the mask last) that the batch's
:func:`sr_core.batch.process_patch` calls too, so both write the same files by the same rules. This module adds the
loop around it: loading folders or taking Patch objects, the progress bar, ``on_result`` and, in
:func:`predict_submission`, expanding user inputs and refusing colliding names."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PatchFormatError, SRCoreError
from ..io.inputs import collect_eopatches
from ..patch import Patch
from ..paths import scratch_dir
from ..prediction import Prediction
from .one import predict_one


def _progress(items: Sequence[Any], desc: str, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="patch", leave=False)


PatchSource = str | Path | Patch


def write_predictions(
    sources: Iterable[PatchSource],
    predict: Callable[[Patch], Prediction | np.ndarray],
    out_dir: str | Path,
    *,
    probability_dir: str | Path | None = None,
    uncertainty_dir: str | Path | None = None,
    progress: bool = True,
    desc: str = "predict",
    on_result: Callable[[str, Prediction | np.ndarray, Path], None] | None = None,
    force: bool = True,
    on_error: Callable[[str, Exception], None] | None = None,
) -> list[Path]:
    """Predict each patch and write ``<out_dir>/<folder-name>.tif``; return the submission paths (written now or,
    without ``force``, already there).

    ``sources``: EOPatch folders (loaded one at a time, named after the folder) or Patch objects (named by
    ``patch.name``); use :func:`collect_eopatches` to expand folders of patches and archives first. ``predict``
    maps a Patch to a :class:`~sr_core.prediction.Prediction` or a (4H, 4W) 0/1 array. With ``probability_dir``,
    Predictions' probabilities are also written there (:func:`~sr_core.io.geotiff.write_probability`), with
    ``uncertainty_dir`` their uncertainty maps (when predicted with uncertainty); every file is written atomically
    and the mask last (:func:`~sr_core.io.geotiff.write_outputs`). ``force`` (default): predict and overwrite every
    patch; ``force=False``: skip a patch whose outputs are finished (the mask, and the probability / uncertainty maps
    asked for, pass :func:`~sr_core.io.geotiff.check_output`; a companion the predictor does not give counts as
    missing), as a batch does. Each patch is one :func:`~sr_core.pipeline.one.predict_one`. ``on_result(name,
    prediction, path)`` is called after each predicted patch (not for skipped ones; e.g. to print warnings). With
    ``on_error(name, exc)``, a patch that cannot be read, predicted or written (an :class:`~sr_core.errors.SRCoreError`
    or an ``OSError``) is handed to it and the others go on; without it the first such error ends the run. A tqdm
    bar on stderr shows progress.
    """
    items = list(sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in _progress(items, desc, progress):
        try:
            outcome = predict_one(src, predict, out_dir, proba_dir=probability_dir, uncertainty_dir=uncertainty_dir,
                                  force=force)
        except (SRCoreError, OSError) as exc:
            if on_error is None:
                raise
            on_error(src.name if isinstance(src, Patch) else Path(src).name, exc)
            continue
        written.append(outcome.submission)
        if on_result is not None and outcome.prediction is not None:
            on_result(outcome.name, outcome.prediction, outcome.submission)
        del outcome
    return written


def predict_submission(
    inputs: Iterable[str | Path | Patch],
    predict: Callable[[Patch], Prediction | np.ndarray],
    out_dir: str | Path,
    **kwargs: Any,
) -> list[Path]:
    """:func:`write_predictions` for user inputs: EOPatch folders, folders of them and archives of them (extracted
    safely into a scratch folder, removed afterwards) or Patch objects. ``kwargs`` go to :func:`write_predictions`
    (``force=False`` skips patches whose outputs are finished; default: overwrite)."""
    items = list(inputs)
    patches = [x for x in items if isinstance(x, Patch)]
    paths = [x for x in items if not isinstance(x, Patch)]
    with scratch_dir("predict") as tmp:
        folders = collect_eopatches(paths, tmp) if paths else []
        names = [f.name for f in folders] + [p.name for p in patches]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise PatchFormatError(f"several patches are named {', '.join(dup)}; their submission files would collide")
        return write_predictions([*folders, *patches], predict, out_dir, **kwargs)


__all__ = ["PatchSource", "predict_submission", "write_predictions"]
