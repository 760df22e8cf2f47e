"""Rendering of patches and maps to small uint8 RGB(A) images (server-side; pages never ship raw arrays).

Pure numpy (+ matplotlib colormaps only where asked), no streamlit. Every composite states its bands and stretch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bands import band_index
from .resample import upsample_nearest


@dataclass(frozen=True)
class Composite:
    """A band combination shown to users, with its legend text."""

    key: str
    label: str
    bands: tuple[str, str, str]
    description: str


COMPOSITES: dict[str, Composite] = {
    c.key: c
    for c in (
        Composite("true", "True colour", ("B04", "B03", "B02"), "R = B04, G = B03, B = B02"),
        Composite("false", "False colour (NIR)", ("B08", "B04", "B03"), "R = B08 (NIR), G = B04, B = B03: vegetation red"),
        Composite("swir", "SWIR", ("B12", "B08", "B04"), "R = B12, G = B08, B = B04: moisture, bare soil, built-up"),
    )
}

#: Sen2Cor scene classification (SCL) classes and their conventional colours.
SCL_CLASSES: dict[int, tuple[str, str]] = {
    0: ("No data", "#000000"),
    1: ("Saturated / defective", "#ff0000"),
    2: ("Dark area pixels", "#2f2f2f"),
    3: ("Cloud shadows", "#643200"),
    4: ("Vegetation", "#00a000"),
    5: ("Not vegetated", "#ffe65a"),
    6: ("Water", "#0000ff"),
    7: ("Unclassified", "#808080"),
    8: ("Cloud, medium probability", "#c0c0c0"),
    9: ("Cloud, high probability", "#ffffff"),
    10: ("Thin cirrus", "#64c8ff"),
    11: ("Snow / ice", "#ff96ff"),
}

#: Colours of the error map classes (true/false positives/negatives, ignored).
ERROR_COLOURS: dict[str, tuple[int, int, int]] = {
    "true negative": (40, 40, 40),
    "true positive": (90, 200, 90),
    "false positive": (235, 80, 60),
    "false negative": (70, 140, 255),
    "ignored (not declared)": (150, 150, 150),
}


def _hex(c: str) -> tuple[int, int, int]:
    return tuple(int(c[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def stretch_limits(values: np.ndarray, valid: np.ndarray | None = None, lo: float = 2.0, hi: float = 98.0) -> tuple[float, float]:
    """Percentile limits over valid pixels (robust to clouds and no-data when ``valid`` is given)."""
    v = values[valid] if valid is not None and valid.any() else values.ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (0.0, 1.0)
    a, b = np.percentile(v, [lo, hi])
    if b <= a:
        b = a + 1e-6
    return float(a), float(b)


def to_uint8(x: np.ndarray, limits: tuple[float, float], gamma: float = 1.0) -> np.ndarray:
    a, b = limits
    y = np.clip((x - a) / (b - a), 0.0, 1.0)
    if gamma != 1.0:
        y = y ** (1.0 / gamma)
    return np.nan_to_num(y * 255.0).astype(np.uint8)


def composite(frame: np.ndarray, key: str = "true", limits: tuple[float, float] | None = None,
              valid: np.ndarray | None = None, gamma: float = 1.2) -> np.ndarray:
    """(H, W, 12) reflectance → (H, W, 3) uint8 with a common percentile stretch over the three bands.

    Pass ``limits`` (e.g. computed once over the whole series) to keep brightness comparable between dates.
    """
    comp = COMPOSITES[key]
    rgb = np.stack([frame[..., band_index(b)] for b in comp.bands], axis=-1)
    if limits is None:
        limits = stretch_limits(rgb, None if valid is None else np.repeat(valid[..., None], 3, axis=-1))
    return to_uint8(rgb, limits, gamma)


def series_limits(bands: np.ndarray, valid: np.ndarray, key: str = "true") -> tuple[float, float]:
    """Stretch limits for a composite computed over the clear pixels of all dates."""
    comp = COMPOSITES[key]
    idx = [band_index(b) for b in comp.bands]
    v = bands[..., idx][valid]
    return stretch_limits(v) if v.size else (0.0, 0.3)


def colormap(x: np.ndarray, vmin: float, vmax: float, cmap: str = "RdYlGn") -> np.ndarray:
    """Scalar field → (H, W, 3) uint8 with a matplotlib colormap; NaN → black."""
    from matplotlib import colormaps

    y = np.clip((x - vmin) / (vmax - vmin), 0, 1)
    rgb = (colormaps[cmap](np.nan_to_num(y))[..., :3] * 255).astype(np.uint8)
    rgb[~np.isfinite(x)] = 0
    return rgb


def ndvi_image(ndvi: np.ndarray) -> np.ndarray:
    return colormap(ndvi, -0.2, 0.9, "RdYlGn")


def scl_image(scl: np.ndarray) -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    for k, (_, c) in SCL_CLASSES.items():
        lut[k] = _hex(c)
    return lut[scl]


def outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a boolean mask (4-neighbour)."""
    m = mask.astype(bool)
    edge = np.zeros_like(m)
    edge[1:, :] |= m[1:, :] != m[:-1, :]
    edge[:-1, :] |= m[1:, :] != m[:-1, :]
    edge[:, 1:] |= m[:, 1:] != m[:, :-1]
    edge[:, :-1] |= m[:, 1:] != m[:, :-1]
    return edge & m


def overlay(rgb: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], alpha: float = 1.0) -> np.ndarray:
    out = rgb.astype(np.float32).copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour, np.float32)
    return out.astype(np.uint8)


#: Nearest-neighbour enlargement ``upscale(img, factor)`` (keeps pixels visible as squares).
upscale = upsample_nearest


def binary_image(mask: np.ndarray, on: tuple[int, int, int] = (90, 200, 90), off: tuple[int, int, int] = (30, 30, 30),
                 ignore: np.ndarray | None = None) -> np.ndarray:
    out = np.empty((*mask.shape, 3), np.uint8)
    out[:] = off
    out[mask.astype(bool)] = on
    if ignore is not None:
        out[ignore] = ERROR_COLOURS["ignored (not declared)"]
    return out


def error_classes(truth: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray:
    """(H, W) uint8 codes 0 TN, 1 TP, 2 FP, 3 FN, 4 ignored."""
    t, p = truth.astype(bool), pred.astype(bool)
    codes = np.zeros(t.shape, np.uint8)
    codes[t & p] = 1
    codes[~t & p] = 2
    codes[t & ~p] = 3
    if ignore is not None:
        codes[ignore.astype(bool)] = 4
    return codes


def error_image(truth: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray:
    lut = np.array(list(ERROR_COLOURS.values()), np.uint8)
    return lut[error_classes(truth, pred, ignore)]


def blend(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    return ((1 - alpha) * a.astype(np.float32) + alpha * b.astype(np.float32)).astype(np.uint8)


def swipe(left: np.ndarray, right: np.ndarray, position: float) -> np.ndarray:
    """Left image up to ``position`` (0–1 of the width), right image beyond, with a white divider."""
    w = left.shape[1]
    cut = round(float(np.clip(position, 0, 1)) * w)
    out = right.copy()
    out[:, :cut] = left[:, :cut]
    if 0 < cut < w:
        out[:, max(cut - 1, 0) : cut + 1] = 255
    return out


__all__ = [
    "COMPOSITES", "ERROR_COLOURS", "SCL_CLASSES", "binary_image", "blend", "colormap", "composite", "error_classes",
    "error_image", "ndvi_image", "outline", "overlay", "scl_image", "series_limits", "stretch_limits", "swipe", "upscale",
]  # fmt: skip



def export_animation(frames: list[np.ndarray], path: str, fps: float = 2.0) -> str:
    """Write RGB uint8 frames as an animated GIF or an MP4 (by the file suffix). Returns the path.

    MP4 uses the ffmpeg binary shipped inside the ``imageio-ffmpeg`` wheel (no system ffmpeg needed); frame sizes
    are padded to even numbers as H.264 requires.
    """
    import imageio.v2 as imageio

    if not frames:
        raise ValueError("no frames to export; relax the cloud filter so at least one date remains")
    if str(path).lower().endswith(".mp4"):
        h, w = frames[0].shape[:2]
        ph, pw = h + h % 2, w + w % 2
        padded = [np.pad(f, ((0, ph - h), (0, pw - w), (0, 0))) for f in frames]
        with imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=1) as wr:
            for f in padded:
                wr.append_data(f)
    else:
        imageio.mimsave(path, frames, duration=1000.0 / fps, loop=0)
    return str(path)


def label_frame(img: np.ndarray, text: str) -> np.ndarray:
    """Burn a caption (date, band combination) into the top-left corner of an RGB frame."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, 8 + 7 * len(text), 16], fill=(0, 0, 0))
    d.text((4, 3), text, fill=(255, 255, 255))
    return np.asarray(im)
