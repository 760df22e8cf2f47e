"""The one nearest-neighbour upsampler: each value repeated over a k × k block (10 m → 2.5 m maps, coarse cloud
fields, enlarged pictures), optionally cropped to a target size."""

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


__all__ = ["upsample_nearest"]
