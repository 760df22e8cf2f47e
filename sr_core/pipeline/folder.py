"""Predict a set of patches to GeoTIFFs, one after another in this process, with any predictor (the model, a
baseline, a callable): the path of ``predict`` without ``--scheduler``, ``baseline``, the app's downloads and the
benchmark's reference submissions. The per-patch outputs are the same files, written by the same atomic writers
(:func:`sr_core.io.geotiff.write_outputs`), as the batch's (:mod:`sr_core.batch`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PatchFormatError
from ..io.geotiff import write_outputs, write_submission
from ..io.inputs import collect_eopatches
from ..patch import Patch
from ..paths import scratch_dir
from ..prediction import Prediction


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
) -> list[Path]:
    """Predict each patch and write ``<out_dir>/<folder-name>.tif``; return the written paths.

    ``sources``: EOPatch folders (loaded one at a time, named after the folder) or Patch objects (named by
    ``patch.name``); use :func:`collect_eopatches` to expand folders of patches and archives first. ``predict``
    maps a Patch to a :class:`~sr_core.prediction.Prediction` or a (4H, 4W) 0/1 array. With ``probability_dir``,
    Predictions' probabilities are also written there (:func:`~sr_core.io.geotiff.write_probability`), with
    ``uncertainty_dir`` their uncertainty maps (when predicted with uncertainty); every file is written atomically
    and the mask last (:func:`~sr_core.io.geotiff.write_outputs`). ``on_result(name, prediction,
    path)`` is called after each patch (e.g. to print warnings). A tqdm bar on stderr shows progress.
    """
    from ..io.eopatch import load_eopatch

    items = list(sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in _progress(items, desc, progress):
        if isinstance(src, Patch):
            patch, name = src, src.name
        else:
            patch, name = load_eopatch(src), Path(src).resolve().name
        pred = predict(patch)
        if isinstance(pred, Prediction):
            path = write_outputs(pred, patch, out_dir, name=name, proba_dir=probability_dir,
                                 uncertainty_dir=uncertainty_dir)["submission"]
        else:
            path = write_submission(pred, patch, out_dir, name=name)
        written.append(path)
        if on_result is not None:
            on_result(name, pred, path)
        del patch, pred
    return written


def predict_submission(
    inputs: Iterable[str | Path | Patch],
    predict: Callable[[Patch], Prediction | np.ndarray],
    out_dir: str | Path,
    **kwargs: Any,
) -> list[Path]:
    """:func:`write_predictions` for user inputs: EOPatch folders, folders of them and archives of them (extracted
    safely into a scratch folder, removed afterwards) or Patch objects. ``kwargs`` go to :func:`write_predictions`."""
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
