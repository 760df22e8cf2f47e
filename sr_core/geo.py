"""Georeference value types: a projected bounding box with its CRS, and the pixel grids derived from it.

Kept free of rasterio so the numerical core runs on a bare GPU box; :meth:`BBox.transform` returns the
GDAL-ordered affine coefficients that ``rasterio.Affine`` accepts directly.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import PatchFormatError

#: The CRS of the whole benchmark (UTM zone 33N).
BENCHMARK_EPSG = 32633


@dataclass(frozen=True)
class BBox:
    """Axis-aligned box in a projected CRS (metres), ``(min_x, min_y)`` lower-left, ``(max_x, max_y)`` upper-right."""

    min_x: float
    min_y: float
    max_x: float
    max_y: float
    epsg: int = BENCHMARK_EPSG

    def __post_init__(self) -> None:
        values = (self.min_x, self.min_y, self.max_x, self.max_y)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise PatchFormatError(f"bbox coordinates must be finite numbers, got {values}")
        if not (self.min_x < self.max_x and self.min_y < self.max_y):
            raise PatchFormatError(
                f"bbox {values} is empty or inverted; expected (min_x, min_y, max_x, max_y) with min < max"
            )
        if not isinstance(self.epsg, int) or self.epsg <= 0:
            raise PatchFormatError(f"bbox CRS must be a positive EPSG code, got {self.epsg!r}")

    # -- derived values -------------------------------------------------------------------------------
    @property
    def width(self) -> float:
        return self.max_x - self.min_x

    @property
    def height(self) -> float:
        return self.max_y - self.min_y

    @property
    def crs(self) -> str:
        """``"EPSG:32633"`` style string, as rasterio / pyproj / geopandas accept it."""
        return f"EPSG:{self.epsg}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.min_x, self.min_y, self.max_x, self.max_y)

    def transform(self, width_px: int, height_px: int) -> tuple[float, float, float, float, float, float]:
        """Affine coefficients ``(a, b, c, d, e, f)`` of a north-up grid of ``width_px × height_px`` over the box."""
        return (self.width / width_px, 0.0, self.min_x, 0.0, -self.height / height_px, self.max_y)

    def pixel_size(self, width_px: int, height_px: int) -> tuple[float, float]:
        return (self.width / width_px, self.height / height_px)

    # -- constructors / serialisation -------------------------------------------------------------------
    @classmethod
    def from_geojson(cls, obj: dict[str, Any], source: str = "bbox.geojson") -> BBox:
        """Parse the eo-learn 1.x ``bbox.geojson`` (a Polygon with a ``crs`` member)."""
        try:
            crs_name = str(obj["crs"]["properties"]["name"]).strip()
            if crs_name.upper().replace("::", ":").endswith(("CRS84", "CRS:84")):  # OGC's lon / lat WGS84
                epsg = 4326  # (a BBox in EPSG:4326 holds longitude as x, latitude as y: CRS84's order)
            else:  # urn:ogc:def:crs:EPSG::32633, EPSG:32633, http://www.opengis.net/def/crs/EPSG/0/32633
                epsg = int(re.split(r"[:/]", crs_name)[-1])
            ring = obj["coordinates"][0]
            xs = [float(p[0]) for p in ring]
            ys = [float(p[1]) for p in ring]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise PatchFormatError(
                f"{source}: not a GeoJSON Polygon with a 'crs' name like 'urn:ogc:def:crs:EPSG::32633' ({exc!r}); "
                "rewrite it with eo-learn >= 1.0 or sr_core.io.write_eopatch"
            ) from None
        if not xs:
            raise PatchFormatError(f"{source}: the polygon has no coordinates")
        return cls(min(xs), min(ys), max(xs), max(ys), epsg)

    def to_geojson(self) -> dict[str, Any]:
        ring = [
            [self.min_x, self.min_y],
            [self.min_x, self.max_y],
            [self.max_x, self.max_y],
            [self.max_x, self.min_y],
            [self.min_x, self.min_y],
        ]
        return {
            "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{self.epsg}"}},
            "type": "Polygon",
            "coordinates": [ring],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_geojson(), indent=2)

    def __str__(self) -> str:
        return f"({self.min_x:.2f}, {self.min_y:.2f})–({self.max_x:.2f}, {self.max_y:.2f}) {self.crs}"
