"""Reference predictors the model is compared with.

* ``ndvi`` — the organisers' dummy: mean NDVI over clear frames, bicubic ×4, cultivated where 0.4 < NDVI ≤ 0.6
  (:func:`sr_core.baselines.ndvi.ndvi_baseline`; weighted MCC 0.534 on the challenge's test set).
* ``pixel`` — a per-pixel classifier at 10 m (``sr_core.baselines.pixel``: ``load_pixel_baseline(path=None)``,
  ``pixel_baseline(patch, model=None)``), trained on simulated labelled patches.

Every baseline maps a :class:`~sr_core.patch.Patch` to a :class:`~sr_core.prediction.Prediction`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..errors import ModelError

#: name → (module, function) of each baseline predictor ``f(patch, ...) -> Prediction``.
BASELINES: dict[str, tuple[str, str]] = {
    "ndvi": ("sr_core.baselines.ndvi", "ndvi_baseline"),
    "pixel": ("sr_core.baselines.pixel", "pixel_baseline"),
}


def get_baseline(name: str) -> Callable[..., Any]:
    """The predictor function of baseline ``name`` (imported on first use)."""
    if name not in BASELINES:
        raise ModelError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    module, func = BASELINES[name]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise ModelError(
            f"the {name!r} baseline ({module}) is not part of this installation; update sr_core or use "
            "`python -m sr_core baseline ndvi`"
        ) from None
    return getattr(mod, func)


def load_baseline(name: str, model: Any = None, **kwargs: Any) -> Callable[[Any], Any]:
    """A ready predictor ``f(patch) -> Prediction`` for baseline ``name``: its model file (``model``, default the
    bundled one; the pixel baseline only) loaded once, ``kwargs`` (e.g. ``season``) passed on every call. Raises
    :class:`ModelError` for an unknown or absent baseline, or an unreadable model file."""
    fn = get_baseline(name)
    if name == "pixel":
        weights = importlib.import_module(BASELINES[name][0]).load_pixel_baseline(model)
        return lambda patch: fn(patch, model=weights, **kwargs)
    return lambda patch: fn(patch, **kwargs)


__all__ = ["BASELINES", "get_baseline", "load_baseline"]
