"""Vector exports: predicted fields as polygons (GeoPackage), footprints. rasterio / geopandas live here, at the edge."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .prediction import Prediction


def field_polygons(prediction: Prediction, min_area_m2: float = 25.0):
    """Connected cultivated regions of the binary map as polygons (GeoDataFrame in the patch CRS).

    Each polygon carries its area (m²), the mean predicted probability inside it and, when present, the mean
    uncertainty. Regions smaller than ``min_area_m2`` (default: 4 pixels at 2.5 m) are dropped.
    """
    import geopandas as gpd
    from rasterio import Affine
    from rasterio.features import shapes
    from scipy import ndimage
    from shapely.geometry import shape

    binary = prediction.binary
    labels, n = ndimage.label(binary, structure=np.ones((3, 3)))
    transform = Affine(*prediction.transform)
    idx = np.arange(1, n + 1)
    mean_p = ndimage.mean(prediction.proba, labels, idx) if n else np.array([])
    mean_u = (ndimage.mean(prediction.uncertainty, labels, idx) if n and prediction.uncertainty is not None
              else np.full(n, np.nan))
    geoms, rows = [], []
    for geom, value in shapes(labels.astype(np.int32), mask=binary.astype(bool), transform=transform, connectivity=8):
        k = int(value)
        poly = shape(geom)
        if poly.area < min_area_m2:
            continue
        geoms.append(poly)
        rows.append({"field_id": k, "area_m2": round(poly.area, 2), "mean_proba": float(mean_p[k - 1]),
                     "mean_uncertainty": float(mean_u[k - 1]), "patch": prediction.name,
                     "predictor": prediction.predictor})
    cols = ["field_id", "area_m2", "mean_proba", "mean_uncertainty", "patch", "predictor"]
    return gpd.GeoDataFrame(rows, columns=cols, geometry=geoms, crs=prediction.bbox.crs)


def write_fields_gpkg(prediction: Prediction, path: str | Path, min_area_m2: float = 25.0) -> Path:
    """Write :func:`field_polygons` to a GeoPackage layer ``fields`` (CRS of the patch)."""
    gdf = field_polygons(prediction, min_area_m2)
    path = Path(path)
    gdf.to_file(path, layer="fields", driver="GPKG")
    return path
