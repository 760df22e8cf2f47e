"""The products over a whole batch: a GDAL VRT mosaic of the per-patch GeoTIFFs and an index GeoPackage of the
patches' footprints with their status and statistics; both written atomically."""

from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from .results import PatchResult

#: Mosaic nodata: pixels no patch covers (the masks themselves are 0/1).
MOSAIC_NODATA = 255


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.part{path.suffix}")  # GDAL drivers want the suffix


def write_vrt(sources: Sequence[str | Path], path: str | Path, *, nodata: float | None = MOSAIC_NODATA,
              mask: bool = False) -> Path:
    """Write a GDAL VRT mosaic over single-band GeoTIFFs that share a CRS and pixel size (opens in QGIS as one
    layer). Source paths are stored relative to the VRT; the extent is the union of the sources; pixels no
    source covers read as ``nodata`` (None: 0 and no nodata declared). With ``mask`` (for maps whose every value
    is data, such as a 0–255 probability) the mosaic gets a mask band built from the sources' own masks instead:
    pixels no source covers, and those a source marks as no data, are left out. A source's band scale and
    description are carried over. Raises :class:`ConfigError` for an empty list or mixed CRS / pixel size / data
    type."""
    import rasterio

    path = Path(path)
    if not sources:
        raise ConfigError(f"{path.name}: no rasters to mosaic")
    infos = []
    for s in sources:
        with rasterio.open(s) as src:
            if src.transform.b != 0 or src.transform.d != 0:
                raise ConfigError(f"{s}: rotated grid; a VRT mosaic needs north-up rasters")
            infos.append((Path(s), src.crs, src.res, src.dtypes[0], src.width, src.height, src.bounds,
                          src.block_shapes[0], src.scales[0]))
            if len(infos) == 1:
                description = src.descriptions[0]
    _, crs0, res0, dtype0 = infos[0][:4]
    for p, crs, res, dtype, *_ in infos[1:]:
        if crs != crs0 or abs(res[0] - res0[0]) > 1e-9 * res0[0] or abs(res[1] - res0[1]) > 1e-9 * res0[1]:
            raise ConfigError(f"{p}: CRS {crs} / pixel {res} differ from {infos[0][0]} ({crs0} / {res0}); "
                              "mosaic rasters of one grid only")
        if dtype != dtype0:
            raise ConfigError(f"{p}: data type {dtype} differs from {dtype0}; mosaic rasters of one type only")
    x0 = min(i[6].left for i in infos)
    x1 = max(i[6].right for i in infos)
    y0 = min(i[6].bottom for i in infos)
    y1 = max(i[6].top for i in infos)
    rx, ry = res0
    for p, *_rest, b, _blk, _sc in infos:  # a VRT places whole pixels: a source off the grid would be resampled
        for v in ((b.left - x0) / rx, (y1 - b.top) / ry, (b.right - b.left) / rx, (b.top - b.bottom) / ry):
            if abs(v - round(v)) > 1e-6:
                raise ConfigError(f"{p.name}: its pixels are off {infos[0][0].name}'s grid by a fraction of a pixel "
                                  "(patches at arbitrary places, e.g. the challenge's moved test bboxes); open the "
                                  "GeoTIFFs side by side instead of as one mosaic")
    width, height = round((x1 - x0) / rx), round((y1 - y0) / ry)
    gdal_type = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32", "int32": "Int32",
                 "float32": "Float32", "float64": "Float64"}[dtype0]  # fmt: skip

    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    ET.SubElement(root, "SRS").text = crs0.to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in (x0, rx, 0.0, y1, 0.0, -ry))
    band = ET.SubElement(root, "VRTRasterBand", dataType=gdal_type, band="1")
    if description:
        ET.SubElement(band, "Description").text = f"{description} (mosaic of {len(infos)})"
    if nodata is not None:
        ET.SubElement(band, "NoDataValue").text = repr(float(nodata))
    ET.SubElement(band, "ColorInterp").text = "Gray"
    if infos[0][8] not in (None, 1.0):
        ET.SubElement(band, "Offset").text = "0"
        ET.SubElement(band, "Scale").text = repr(float(infos[0][8]))

    def num(v: float) -> str:
        r = round(v)
        return str(r) if abs(v - r) < 1e-6 else f"{v:.6f}"

    def sources_into(parent: ET.Element, source_band: str, data_type: str) -> None:
        for p, _crs, _res, _dt, w, h, b, (bh, bw), _scale in infos:
            s = ET.SubElement(parent, "SimpleSource")
            rel = os.path.relpath(p.resolve(), path.resolve().parent)
            ET.SubElement(s, "SourceFilename", relativeToVRT="1").text = Path(rel).as_posix()
            ET.SubElement(s, "SourceBand").text = source_band
            ET.SubElement(s, "SourceProperties", RasterXSize=str(w), RasterYSize=str(h), DataType=data_type,
                          BlockXSize=str(bw), BlockYSize=str(bh))
            ET.SubElement(s, "SrcRect", xOff="0", yOff="0", xSize=str(w), ySize=str(h))
            ET.SubElement(s, "DstRect", xOff=num((b.left - x0) / rx), yOff=num((y1 - b.top) / ry),
                          xSize=num((b.right - b.left) / rx), ySize=num((b.top - b.bottom) / ry))

    sources_into(band, "1", gdal_type)
    if mask:  # 255 where a source has data, 0 elsewhere (a VRT band reads 0 where no source writes)
        mask_band = ET.SubElement(ET.SubElement(band, "MaskBand"), "VRTRasterBand", dataType="Byte")
        sources_into(mask_band, "mask,1", "Byte")
    ET.indent(root)
    tmp = _atomic_target(path)
    try:
        ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=False)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_index(results: Sequence[PatchResult], path: str | Path, *, layer: str = "patches") -> Path:
    """Write the index GeoPackage: one footprint per patch (its CRS when all patches share one, else WGS84, the edges
    densified) with name, status, error, attempts, seconds, cultivated share, output paths, worker, device and the
    patch's own EPSG code and bbox. Patches whose bbox
    could not be read get an empty geometry. Written to a temporary file and renamed (atomic)."""
    import geopandas as gpd
    from shapely.geometry import Polygon, box

    from ..catalog import lonlat_ring

    path = Path(path)
    epsgs = {r.epsg for r in results if r.epsg is not None}
    same = len(epsgs) <= 1
    crs = f"EPSG:{next(iter(epsgs))}" if same and epsgs else "EPSG:4326"
    geoms = []
    for r in results:
        if r.bbox is None or r.epsg is None:
            geoms.append(None)
        elif same:
            geoms.append(box(*r.bbox))
        else:
            geoms.append(Polygon(lonlat_ring(r.bbox, r.epsg, per_edge=32)))  # the UTM edges' curve, to ≈ 1 mm
    rows = [{
        "name": r.name, "status": r.status, "error": r.error or "", "attempts": r.attempts,
        "seconds": round(r.seconds, 4), "predict_seconds": round(r.predict_seconds, 4),
        "cultivated_share": r.cultivated_share, "n_dates": r.n_dates, "bytes_read": r.bytes_read,
        "output": r.output or "", "proba_output": r.proba_output or "", "source": r.source,
        "worker": r.worker, "device": r.device or "", "warnings": " | ".join(r.warnings)[:2000],
        # the patch's own grid, whatever CRS the layer is in (WGS84 when the patches' UTM zones differ)
        "epsg": r.epsg, **dict(zip(("min_x", "min_y", "max_x", "max_y"), r.bbox or (None,) * 4, strict=True)),
    } for r in results]  # fmt: skip
    gdf = gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)
    tmp = _atomic_target(path)
    try:
        gdf.to_file(tmp, driver="GPKG", layer=layer)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def default_mosaic_path(out_dir: str | Path, proba: bool = False) -> Path:
    """``<out>_mosaic.vrt`` beside the output folder (the submission folder itself keeps only the masks)."""
    out = Path(out_dir).resolve()  # `.` has no name of its own
    return out.with_name(f"{out.name}_{'proba_' if proba else ''}mosaic.vrt")


def default_index_path(out_dir: str | Path) -> Path:
    """``<out>_index.gpkg`` beside the output folder."""
    out = Path(out_dir).resolve()
    return out.with_name(f"{out.name}_index.gpkg")


__all__ = ["MOSAIC_NODATA", "default_index_path", "default_mosaic_path", "write_index", "write_vrt"]
