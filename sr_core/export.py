"""Vector exports: predicted fields as polygons (GeoPackage), footprints. rasterio / geopandas live here, at the edge."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .prediction import Prediction


def field_polygons(prediction: Prediction, min_area_m2: float = 25.0):
    """Connected cultivated regions of the binary map as polygons (GeoDataFrame in the patch CRS).

    A region is 8-connected (pixels touching at a corner belong together, as the benchmark's parcels do); it is
    written as one valid MultiPolygon whose parts are its 4-connected pieces, every vertex on a 2.5 m pixel corner
    (a single ring that touched itself at a corner would be invalid, and GIS overlay tools refuse it). Each carries
    its area (m²), the mean predicted probability inside it and, when present, the mean uncertainty. Regions
    smaller than ``min_area_m2`` (default: 4 pixels at 2.5 m) are dropped.
    """
    import geopandas as gpd
    import shapely
    from rasterio import Affine
    from rasterio.features import shapes
    from scipy import ndimage
    from shapely.geometry import MultiPolygon, shape

    binary = prediction.binary
    labels, n = ndimage.label(binary, structure=np.ones((3, 3)))
    transform = Affine(*prediction.transform)
    idx = np.arange(1, n + 1)
    mean_p = ndimage.mean(prediction.proba, labels, idx) if n else np.array([])
    mean_u = (ndimage.mean(prediction.uncertainty, labels, idx) if n and prediction.uncertainty is not None
              else np.full(n, np.nan))
    parts: dict[int, list] = {}
    for geom, value in shapes(labels.astype(np.int32), mask=binary.astype(bool), transform=transform, connectivity=4):
        parts.setdefault(int(value), []).append(shape(geom))
    geoms, rows = [], []
    for k in sorted(parts):
        polys = [q for p in parts[k] for q in (p.geoms if hasattr(p, "geoms") else [p])]
        field = MultiPolygon(polys)
        if not field.is_valid:  # 4-connected pieces of one region touch at corners only; a net for anything else
            field = shapely.make_valid(field)
            field = MultiPolygon([g for g in getattr(field, "geoms", [field]) if g.geom_type == "Polygon"])
        if field.area < min_area_m2:
            continue
        geoms.append(field)
        rows.append({"field_id": k, "area_m2": round(field.area, 2), "mean_proba": float(mean_p[k - 1]),
                     "mean_uncertainty": float(mean_u[k - 1]), "patch": prediction.name,
                     "predictor": prediction.predictor})
    cols = ["field_id", "area_m2", "mean_proba", "mean_uncertainty", "patch", "predictor"]
    return gpd.GeoDataFrame(rows, columns=cols, geometry=gpd.GeoSeries(geoms, crs=prediction.bbox.crs),
                            crs=prediction.bbox.crs)


def write_fields_gpkg(prediction: Prediction, path: str | Path, min_area_m2: float = 25.0, patch=None) -> Path:
    """Write :func:`field_polygons` to a GeoPackage layer ``fields`` (CRS of the patch, MultiPolygon geometries).
    The layer's metadata say what made the map (:func:`sr_core.io.geotiff.provenance_tags`: predictor, threshold,
    season, dates, warnings; with ``patch``, whether the input was real or simulated)."""
    from .io.geotiff import provenance_tags

    gdf = field_polygons(prediction, min_area_m2)
    path = Path(path)
    meta = {"SR_LAYER": "fields: 8-connected regions of the cultivated map (cultivated = proba > threshold)",
            **provenance_tags(prediction, patch)}
    gdf.to_file(path, layer="fields", driver="GPKG", engine="pyogrio", geometry_type="MultiPolygon",
                layer_metadata=meta)
    return path
