"""Random fields used across the simulator (vectorised, seeded by the caller's generator)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def fractal_noise(shape: tuple[int, int], beta: float, rng: np.random.Generator, cutoff: float = 0.0) -> np.ndarray:
    """Gaussian random field with power spectrum ∝ k^−beta, zero mean and unit standard deviation (float32).

    ``beta`` ≈ 2–3.5 gives cloud- and terrain-like fields; ``cutoff`` (cycles per pixel) removes the largest
    scales below it, which keeps a small field from being one single blob.
    """
    h, w = shape
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.rfftfreq(w)[None, :]
    k = np.sqrt(ky * ky + kx * kx)
    k[0, 0] = 1.0
    amp = k ** (-beta / 2.0)
    amp[0, 0] = 0.0
    if cutoff > 0:
        amp *= 1.0 / (1.0 + (cutoff / k) ** 4)
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    f = np.fft.irfft2(spec, s=(h, w))
    f -= f.mean()
    sd = f.std()
    return (f / sd if sd > 0 else f).astype(np.float32)


def upsample(field: np.ndarray, shape: tuple[int, int], order: int = 1) -> np.ndarray:
    """Resample a coarse 2-D field to ``shape`` (cell-centre aligned, edges held)."""
    h, w = field.shape
    H, W = shape
    ys = (np.arange(H, dtype=np.float32) + 0.5) * (h / H) - 0.5
    xs = (np.arange(W, dtype=np.float32) + 0.5) * (w / W) - 0.5
    if order == 1:
        y0 = np.clip(np.floor(ys).astype(np.int64), 0, h - 1)
        x0 = np.clip(np.floor(xs).astype(np.int64), 0, w - 1)
        y1 = np.minimum(y0 + 1, h - 1)
        x1 = np.minimum(x0 + 1, w - 1)
        fy = np.clip(ys - y0, 0, 1)[:, None].astype(np.float32)
        fx = np.clip(xs - x0, 0, 1)[None, :].astype(np.float32)
        top = field[y0][:, x0] * (1 - fx) + field[y0][:, x1] * fx
        bot = field[y1][:, x0] * (1 - fx) + field[y1][:, x1] * fx
        return (top * (1 - fy) + bot * fy).astype(np.float32)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return ndimage.map_coordinates(field, [yy, xx], order=order, mode="nearest").astype(np.float32)
