"""Rasters on web maps: warp a patch-grid image from its CRS (any UTM zone) to Web Mercator (EPSG:3857) with rasterio,
so that an image overlay drawn between its south-west and north-east corners (as Leaflet does) lands exactly where
the patch is, instead of stretching the UTM grid over its lat/lon corners.

Pure functions (numpy + rasterio + pyproj); the app's folium maps are built from them in ``ui/maps.py``.
"""

from __future__ import annotations

import base64
import functools
import io
from dataclasses import dataclass

import numpy as np

WEB_MERCATOR = 3857


@dataclass(frozen=True)
class WarpedImage:
    """An RGBA image on a north-up EPSG:3857 grid (alpha 0 outside the patch)."""

    rgba: np.ndarray  #: (h, w, 4) uint8
    transform: tuple[float, float, float, float, float, float]  #: GDAL-ordered affine of the 3857 grid
    bounds_3857: tuple[float, float, float, float]  #: (min_x, min_y, max_x, max_y)

    @property
    def bounds_latlon(self) -> list[list[float]]:
        """``[[south, west], [north, east]]`` as Leaflet's ``ImageOverlay`` takes them. Leaflet projects these two
        corners to 3857 and stretches the image linearly between them, which is exact for a 3857 grid."""
        from pyproj import Transformer

        tr = Transformer.from_crs(WEB_MERCATOR, 4326, always_xy=True)
        x0, y0, x1, y1 = self.bounds_3857
        (w, e), (s, n) = tr.transform([x0, x1], [y0, y1])
        return [[float(s), float(w)], [float(n), float(e)]]

    def png(self, max_colours: int | None = None) -> bytes:
        """PNG with a palette: lossless when the image has at most 256 colours (class maps), else quantised to
        ``max_colours`` (default 128, plenty for a colour ramp on screen; ``0`` keeps full RGBA)."""
        from PIL import Image

        img = Image.fromarray(self.rgba, "RGBA")
        colours = img.getcolors(256)
        if colours is not None:
            img = img.quantize(colors=len(colours), method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        elif max_colours != 0:
            img = img.quantize(colors=max_colours or 128, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=False, compress_level=6)
        return buf.getvalue()

    def data_url(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png()).decode()


def warp_to_web_mercator(img: np.ndarray, bounds: tuple[float, float, float, float], epsg: int,
                         categorical: bool = True, alpha: np.ndarray | None = None,
                         max_size: int | None = None) -> WarpedImage:
    """Warp ``img`` (``(h, w)`` or ``(h, w, 3|4)`` uint8, north-up, covering ``bounds`` in EPSG ``epsg``) to a north-up
    EPSG:3857 grid of the same ground resolution. ``categorical`` uses nearest neighbour (class maps, and 10 m pixels
    that must stay square), else bilinear. ``alpha`` (``(h, w)`` bool/uint8) marks pixels to hide. ``max_size`` caps
    the output's longer side (coarser pixels over the same exact footprint; for smooth layers on screen)."""
    from rasterio.crs import CRS
    from rasterio.warp import Resampling, reproject

    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise ValueError(f"warp_to_web_mercator expects uint8 images, got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    h, w = a.shape[:2]
    if a.shape[2] == 3:
        mask = np.full((h, w), 255, np.uint8) if alpha is None else np.where(np.asarray(alpha, bool), 255, 0).astype(np.uint8)
        a = np.concatenate([a, mask[..., None]], axis=2)
    elif alpha is not None:
        a = a.copy()
        a[..., 3] = np.where(np.asarray(alpha, bool), a[..., 3], 0)
    grid = _grid(tuple(float(b) for b in bounds), int(epsg), h, w, max_size)
    dst_transform, dh, dw = grid.transform, grid.height, grid.width
    if categorical:  # nearest neighbour: one gather through the grid's cached source-pixel index (GDAL's own mapping)
        px = np.concatenate([np.zeros(1, np.uint32), np.ascontiguousarray(a).view(np.uint32).reshape(h * w)])
        dst = px[grid.index()].view(np.uint8).reshape(dh, dw, 4)  # index 0 = outside the patch: transparent
    else:
        src = np.moveaxis(a, 2, 0)
        out = np.zeros((4, dh, dw), np.uint8)
        reproject(src, out, src_transform=grid.src_transform, src_crs=CRS.from_epsg(int(epsg)),
                  dst_transform=dst_transform, dst_crs=CRS.from_epsg(WEB_MERCATOR), resampling=Resampling.bilinear,
                  src_nodata=None, dst_nodata=0)
        out[3] = np.where(out[3] >= 128, 255, 0)  # bilinear alpha blurs the edge: keep it crisp
        dst = np.moveaxis(out, 0, 2)
    x0, y1 = dst_transform.c, dst_transform.f
    x1, y0 = x0 + dst_transform.a * dw, y1 + dst_transform.e * dh
    return WarpedImage(rgba=np.ascontiguousarray(dst), transform=tuple(dst_transform)[:6],
                       bounds_3857=(float(x0), float(y0), float(x1), float(y1)))


class _Grid:
    """The 3857 grid of a patch grid (bounds, EPSG, size) and, computed on first use, the source pixel of every grid
    pixel for nearest-neighbour warps (1-based, 0 outside the patch): rasterio warps a pixel-index raster once, and every
    later class map or frame on the same grid is a single gather instead of a warp."""

    def __init__(self, bounds: tuple[float, float, float, float], epsg: int, h: int, w: int,
                 max_size: int | None) -> None:
        from rasterio.crs import CRS
        from rasterio.transform import from_bounds
        from rasterio.warp import calculate_default_transform

        self.bounds, self.epsg, self.h, self.w = bounds, epsg, h, w
        self.src_transform = from_bounds(*bounds, w, h)
        t, dw, dh = calculate_default_transform(CRS.from_epsg(epsg), CRS.from_epsg(WEB_MERCATOR), w, h, *bounds)
        if max_size and max(dw, dh) > max_size:
            from affine import Affine

            f = max(dw, dh) / max_size
            t = t @ Affine.scale(f)  # composition (affine 3 deprecates `*` for it)
            dw, dh = int(np.ceil(dw / f)), int(np.ceil(dh / f))
        self.transform, self.width, self.height = t, int(dw), int(dh)
        self._index: np.ndarray | None = None

    def index(self) -> np.ndarray:
        if self._index is None:
            from rasterio.crs import CRS
            from rasterio.warp import Resampling, reproject

            src = np.arange(1, self.h * self.w + 1, dtype=np.int32).reshape(1, self.h, self.w)
            dst = np.zeros((1, self.height, self.width), np.int32)
            reproject(src, dst, src_transform=self.src_transform, src_crs=CRS.from_epsg(self.epsg),
                      dst_transform=self.transform, dst_crs=CRS.from_epsg(WEB_MERCATOR),
                      resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
            self._index = dst[0]
            self._index.flags.writeable = False
        return self._index


@functools.lru_cache(maxsize=16)
def _grid(bounds: tuple[float, float, float, float], epsg: int, h: int, w: int, max_size: int | None) -> _Grid:
    return _Grid(bounds, epsg, h, w, max_size)


def footprint_latlon(bounds: tuple[float, float, float, float], epsg: int, densify: int = 8) -> list[list[float]]:
    """The patch outline as ``[[lat, lon], …]`` (edges densified: a UTM square is not a lat/lon square)."""
    from pyproj import Transformer

    tr = Transformer.from_crs(int(epsg), 4326, always_xy=True)
    x0, y0, x1, y1 = bounds
    t = np.linspace(0.0, 1.0, densify + 1)[:-1]
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1), x1 - (x1 - x0) * t, np.full_like(t, x0)])
    ys = np.concatenate([np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y1 - (y1 - y0) * t])
    lon, lat = tr.transform(xs, ys)
    ring = [[float(b), float(a)] for a, b in zip(lon, lat, strict=True)]
    return [*ring, ring[0]]
