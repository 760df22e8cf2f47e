"""The one nearest-neighbour upsampler: each value repeated over a k × k block (10 m → 2.5 m maps, coarse cloud
fields, enlarged pictures), optionally cropped to a target size; and its inverse, the mean of each k × k block
(2.5 m → 10 m)."""

from __future__ import annotations

from typing import Any

import numpy as np

#: 10 m → 2.5 m (the same factor as :data:`sr_core.patch.SCALE`).
DEFAULT_FACTOR = 4


def upsample_nearest(
    a: Any, k: int = DEFAULT_FACTOR, h: int | None = None, w: int | None = None, axes: tuple[int, int] = (0, 1)
) -> np.ndarray:
    """Repeat each value of ``a`` ``k`` times along both ``axes`` (rows, columns), so (H, W) → (k·H, k·W); with
    ``h`` / ``w``, crop those axes to h × w (a coarse grid that overhangs the fine one)."""
    out = np.asarray(a)
    if k != 1:
        out = np.repeat(np.repeat(out, k, axis=axes[0]), k, axis=axes[1])
    if h is None and w is None:
        return out
    sl = [slice(None)] * out.ndim
    sl[axes[0]] = slice(0, h)
    sl[axes[1]] = slice(0, w)
    return out[tuple(sl)]


def block_mean(a: Any, k: int = DEFAULT_FACTOR) -> np.ndarray:
    """(k·H, k·W) → (H, W) float32 mean of each k × k block (e.g. 2.5 m → 10 m)."""
    from .errors import PatchValidationError

    x = np.asarray(a, np.float32)
    if x.ndim != 2 or x.shape[0] % k or x.shape[1] % k:
        raise PatchValidationError(f"map of shape {x.shape} does not tile into {k} × {k} blocks; pass a 2.5 m (4H, 4W) map")
    h, w = x.shape[0] // k, x.shape[1] // k
    return x.reshape(h, k, w, k).mean(axis=(1, 3))


__all__ = ["block_mean", "upsample_nearest"]
