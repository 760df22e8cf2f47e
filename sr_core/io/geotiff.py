"""GeoTIFFs on a patch's 2.5 m grid: the submission mask, the probability and the uncertainty maps, written
atomically (temporary file + rename, so a file that exists is whole), and the check that an existing output is
finished (what lets a batch skip a patch already done).

* :func:`write_submission`: one band uint8 {0, 1}, the submission format (``docs/CHALLENGE_FACTS.md``).
* :func:`write_probability`: ``<name>_proba.tif``, uint8 0–255 with scale 1/255 (or float32).
* :func:`write_uncertainty`: ``<name>_uncertainty.tif``, float32.
* :func:`check_output`: is a GeoTIFF a finished output for a bbox?

rasterio is imported inside the functions that need it.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SubmissionError
from ..geo import BBox
from ..patch import Patch
from ..prediction import Prediction

#: Output pixel size in metres (the 10 m Sentinel-2 grid, 4× finer).
OUTPUT_RES = 2.5


def _as_binary(values: Any, what: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise SubmissionError(f"{what}: shape {a.shape}; a submission is one 2-D (4H, 4W) map of 0/1")
    if a.dtype == bool:
        return a.astype(np.uint8)
    if a.size and not np.all((a == 0) | (a == 1)):
        raise SubmissionError(
            f"{what}: values other than 0 and 1 (e.g. {np.unique(a[(a != 0) & (a != 1)])[:3].tolist()}); "
            "threshold probabilities first (Prediction.binary does, at Prediction.threshold)"
        )
    return a.astype(np.uint8)


def _target_and_grid(
    values: Any, patch_or_bbox: Patch | BBox | None, name: str | None, what: str
) -> tuple[np.ndarray, BBox, str, Prediction | None]:
    pred = values if isinstance(values, Prediction) else None
    if isinstance(patch_or_bbox, Patch):
        bbox, shape, default = patch_or_bbox.bbox, patch_or_bbox.label_shape, patch_or_bbox.name
    elif isinstance(patch_or_bbox, BBox):
        bbox, shape, default = patch_or_bbox, None, None
    elif patch_or_bbox is None and pred is not None:
        bbox, shape, default = pred.bbox, None, pred.name
    else:
        raise SubmissionError(f"{what}: give the Patch (or its BBox) the map belongs to, got {type(patch_or_bbox).__name__}")
    if pred is not None and pred.bbox is not None and pred.bbox != bbox:
        raise SubmissionError(
            f"{what}: the prediction belongs to {pred.bbox} but the map would be written on {bbox}; "
            "pass the patch it was predicted from (or no patch: the prediction carries its own grid)"
        )
    if pred is not None and default is None:
        default = pred.name
    final = name or default
    if not final:
        raise SubmissionError(f"{what}: no name; pass name='eopatch-01' (the EOPatch folder name)")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", final) or final.endswith("."):
        raise SubmissionError(f"{what}: {final!r} is not a plain file name; use the EOPatch folder name, e.g. 'eopatch-01'")
    arr = values.proba if pred is not None else np.asarray(values)
    if shape is not None and tuple(np.shape(arr)[-2:]) != tuple(shape):
        raise SubmissionError(
            f"{what} {final!r}: map is {np.shape(arr)[-2]} × {np.shape(arr)[-1]} but the patch's 2.5 m grid is "
            f"{shape[0]} × {shape[1]}; predict on the whole patch"
        )
    return arr, bbox, final, pred


def _write_tif(path: Path, band: np.ndarray, bbox: BBox, *, description: str, scale: float | None = None,
               tags: dict | None = None, dataset_tags: dict | None = None, no_data: np.ndarray | None = None) -> Path:
    """``no_data``: a bool map of the pixels without data: NaN with a NaN nodata value in a float band, the file's
    internal mask in an integer one, where every value is data (GDAL's mask band: QGIS and rasterio's
    ``read(masked=True)`` leave those pixels out)."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    h, w = band.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    profile = {
        "driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": band.dtype.name,
        "crs": CRS.from_epsg(bbox.epsg), "transform": Affine(*bbox.transform(w, h)), "compress": "deflate",
    }  # fmt: skip
    if h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    floating = band.dtype.kind == "f"
    if no_data is not None and floating:
        band = np.where(no_data, np.array(np.nan, band.dtype), band)
        profile["nodata"] = float("nan")
    try:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tmp, "w", **profile) as dst:
            dst.write(band, 1)
            if no_data is not None and not floating:
                dst.write_mask(np.where(no_data, 0, 255).astype(np.uint8))
            dst.set_band_description(1, description)  # the band's name in QGIS and gdalinfo
            if scale is not None:
                dst.scales = (scale,)
            if tags:
                dst.update_tags(1, **tags)
            if dataset_tags:
                dst.update_tags(**dataset_tags)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def provenance_tags(pred: Prediction | None, patch: Any = None) -> dict[str, str]:
    """GeoTIFF metadata saying what made a map: the predictor and its threshold, the input's season, dates, cloud
    source and filled bands, and the prediction's warnings (QGIS shows them under Layer Properties → Information);
    with the :class:`~sr_core.patch.Patch` it was made from, whether that input was real or simulated (a map of a
    simulated patch is never passed on as a map of real fields). Empty for a bare array. File paths never appear: the
    predictor is named by its file name only."""
    if pred is None:
        return {}
    kind, _, ckpt = pred.predictor.partition(":")
    tags = {"SR_PREDICTOR": kind if not ckpt else f"{kind}:{Path(ckpt).name}", "SR_THRESHOLD": f"{pred.threshold:g}"}
    rec = pred.extra.get("input") if isinstance(pred.extra, dict) else None
    if isinstance(rec, dict):
        tags["SR_SEASON"] = str(rec.get("season", ""))
        tags["SR_DATES"] = (f"{rec.get('first_date', '?')} … {rec.get('last_date', '?')} "
                            f"({rec.get('dates_used', '?')} of {rec.get('dates_total', '?')} dates)")
        tags["SR_CLOUD_SOURCE"] = str(rec.get("cloud_source", ""))
        filled = rec.get("filled_bands") or {}
        tags["SR_FILLED_BANDS"] = ", ".join(f"{m}<-{f}" for m, f in filled.items()) or "none"
    extra = pred.extra if isinstance(pred.extra, dict) else {}
    if isinstance(extra.get("tta"), int):
        tags["SR_TTA"] = str(extra["tta"])
    if pred.no_data is not None:
        tags["SR_NO_DATA"] = (f"{float(pred.no_data.mean()):.2%} of the pixels were never seen clear: probability 0 by "
                              "rule, no data in the probability and uncertainty maps")
    if pred.warnings:
        tags["SR_WARNINGS"] = " | ".join(pred.warnings)[:4000]
    if isinstance(patch, Patch):
        tags["SR_INPUT_SOURCE"] = ("SIMULATED by sr_core's farmland simulator (not observed by Sentinel-2)"
                                   if patch.is_simulated else "real")
    return tags


def write_submission(
    prediction_or_binary: Prediction | np.ndarray,
    patch_or_bbox: Patch | BBox | None = None,
    out_dir: str | Path = ".",
    name: str | None = None,
) -> Path:
    """Write one patch's submission GeoTIFF ``<out_dir>/<name>.tif`` and return its path.

    ``prediction_or_binary``: a :class:`~sr_core.prediction.Prediction` (its ``binary`` is written) or a (4H, 4W)
    array of 0/1 (bool or integer). ``patch_or_bbox``: the :class:`~sr_core.patch.Patch` (grid checked, name taken
    from its EOPatch folder) or its :class:`~sr_core.geo.BBox` (optional for a Prediction, which carries its bbox).
    ``name`` defaults to the patch's (or prediction's) name. Written as one band uint8 {0, 1}, deflate-compressed,
    in the bbox's CRS with the exact 2.5 m transform of the bbox; the file appears atomically.
    """
    arr, bbox, final, pred = _target_and_grid(prediction_or_binary, patch_or_bbox, name, "write_submission")
    binary = pred.binary if pred is not None else _as_binary(arr, f"write_submission {final!r}")
    return _write_tif(Path(out_dir) / f"{final}.tif", binary, bbox, description="cultivated (1) or not (0)",
                      dataset_tags=provenance_tags(pred, patch_or_bbox))


def write_probability(
    prediction: Prediction | np.ndarray,
    patch_or_bbox: Patch | BBox | None = None,
    out_dir: str | Path = ".",
    name: str | None = None,
    *,
    dtype: str = "uint8",
) -> Path:
    """Write the cultivated-land probability as ``<out_dir>/<name>_proba.tif`` on the same grid as the submission.

    ``dtype="uint8"``: round(p × 255), with the band scale 1/255 recorded (GDAL-aware readers show 0–1);
    ``dtype="float32"``: p as is. Keep these files out of the submission folder (it must hold only the masks).
    """
    arr, bbox, final, pred = _target_and_grid(prediction, patch_or_bbox, name, "write_probability")
    p = np.asarray(arr, np.float32)
    if p.ndim != 2:
        raise SubmissionError(f"write_probability {final!r}: shape {p.shape}; expected a 2-D (4H, 4W) map")
    if p.size and (not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1):
        raise SubmissionError(f"write_probability {final!r}: probabilities must be finite and within 0–1")
    tags = {"meaning": "probability of cultivated land"}
    no_data = pred.no_data if pred is not None else None
    if dtype == "uint8":
        band = np.rint(p * 255).astype(np.uint8)
        return _write_tif(Path(out_dir) / f"{final}_proba.tif", band, bbox, scale=1 / 255, tags=tags,
                          description="P(cultivated) x 255 (scale 1/255)",
                          dataset_tags=provenance_tags(pred, patch_or_bbox), no_data=no_data)
    if dtype == "float32":
        return _write_tif(Path(out_dir) / f"{final}_proba.tif", p, bbox, tags=tags, description="P(cultivated), 0-1",
                          dataset_tags=provenance_tags(pred, patch_or_bbox), no_data=no_data)
    raise SubmissionError(f"write_probability: dtype {dtype!r}; choose 'uint8' (0–255) or 'float32' (0–1)")


def write_uncertainty(prediction: Prediction | np.ndarray, patch_or_bbox: Patch | BBox | None = None,
                      out_dir: str | Path = ".", name: str | None = None) -> Path:
    """Write an uncertainty map (a Prediction's ``uncertainty``: the std of the probability over the flip/rotation
    ensemble, or a (4H, 4W) array) as float32 ``<out_dir>/<name>_uncertainty.tif`` on the submission's grid."""
    arr, bbox, final, pred = _target_and_grid(prediction, patch_or_bbox, name, "write_uncertainty")
    if pred is not None and pred.uncertainty is None:
        raise SubmissionError(f"write_uncertainty {final!r}: no uncertainty; predict with uncertainty=True")
    u = np.asarray(pred.uncertainty if pred is not None else arr, np.float32)
    if u.ndim != 2:
        raise SubmissionError(f"write_uncertainty {final!r}: shape {u.shape}; expected a 2-D (4H, 4W) map")
    n = pred.extra.get("tta") if pred is not None and isinstance(pred.extra, dict) else None
    over = f"{n} flips / rotations" if isinstance(n, int) else "a test-time ensemble"
    tags = {"meaning": f"std of the cultivated probability over {over}"}
    return _write_tif(Path(out_dir) / f"{final}_uncertainty.tif", u, bbox,
                      description=f"std of P(cultivated) over {over}", tags=tags,
                      dataset_tags=provenance_tags(pred, patch_or_bbox),
                      no_data=pred.no_data if pred is not None else None)


def write_outputs(
    prediction: Prediction,
    patch_or_bbox: Patch | BBox | None,
    out_dir: str | Path,
    name: str | None = None,
    *,
    proba_dir: str | Path | None = None,
    uncertainty_dir: str | Path | None = None,
) -> dict[str, Path]:
    """All of one patch's outputs, each atomic: ``proba`` (with ``proba_dir``), ``uncertainty`` (with
    ``uncertainty_dir``, when the prediction has one), then ``submission`` last, so that a finished mask implies
    finished companions. Returns the written paths by kind."""
    out: dict[str, Path] = {}
    if proba_dir is not None:
        out["proba"] = write_probability(prediction, patch_or_bbox, proba_dir, name=name)
    if uncertainty_dir is not None and prediction.uncertainty is not None:
        out["uncertainty"] = write_uncertainty(prediction, patch_or_bbox, uncertainty_dir, name=name)
    out["submission"] = write_submission(prediction, patch_or_bbox, out_dir, name=name)
    return out


def check_output(
    path: str | Path, bbox: BBox, *, read: bool = True, dtype: str = "uint8"
) -> tuple[str | None, float | None]:
    """Is ``path`` a finished output for a patch with ``bbox``? Returns ``(problem, mean)``: ``problem`` None when
    the GeoTIFF opens, has one band of ``dtype`` (uint8: masks and probabilities; float32: uncertainty), the bbox's
    CRS, bounds within 1 % of a pixel and a 2.5 m grid, and (with ``read``) its pixels decode; ``mean`` is the band
    mean (the cultivated share for a 0/1 mask)."""
    import rasterio
    from rasterio.errors import RasterioError

    path = Path(path)
    if not path.is_file():
        return "missing", None
    try:
        with rasterio.open(path) as src:
            if src.count != 1 or src.dtypes[0] != dtype:
                return f"{src.count} band(s) of {src.dtypes[0] if src.count else '-'}, expected one {dtype} band", None
            if src.crs is None or src.crs.to_epsg() != bbox.epsg:
                return f"CRS {src.crs} is not EPSG:{bbox.epsg}", None
            tol = 0.01 * OUTPUT_RES
            want = (bbox.min_x, bbox.min_y, bbox.max_x, bbox.max_y)
            if max(abs(a - b) for a, b in zip(src.bounds, want, strict=True)) > tol:
                return f"bounds {tuple(src.bounds)} differ from the patch bbox {want}", None
            # the grid divides the bbox evenly, a quarter of its 10 m pixels: 2.5 m, or a little off it where the
            # bbox is no whole number of 10 m pixels (a patch's grid follows its bbox)
            even = bbox.pixel_size(src.width, src.height)
            if any(abs(r - e) > 1e-6 or abs(r - OUTPUT_RES) > 0.05 * OUTPUT_RES for r, e in zip(src.res, even, strict=True)):
                return f"pixel size {src.res} is not the patch's {OUTPUT_RES} m grid", None
            if read:  # over the pixels with data (a map's no-data pixels are left out)
                m = src.read(1, masked=True)
                mean = float(m.astype(np.float64).mean()) if m.count() else float("nan")
            else:
                mean = None
    except (RasterioError, OSError) as exc:
        return f"unreadable ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})", None
    return None, mean


__all__ = [
    "OUTPUT_RES", "check_output", "write_outputs", "write_probability", "write_submission", "write_uncertainty",
]  # fmt: skip
