"""Read and write EOPatch folders as :class:`~sr_core.patch.Patch`.

Two layouts are read (see ``docs/CHALLENGE_FACTS.md``):

* **eo-learn 0.9** (the challenge as shipped): ``<type>/<NAME>.npy.gz`` arrays, gzipped pickles ``bbox.pkl.gz``,
  ``timestamp.pkl.gz``, ``meta_info.pkl.gz`` (decoded by :mod:`sr_core.io.legacy_pickle`, never by ``pickle.load``).
* **eo-learn 1.x**: ``.npy`` or ``.npy.gz`` arrays, ``bbox.geojson``, ``timestamps.json``, ``meta_info/<key>.json``.

Features read (all but the band cube optional; any others in the folder are ignored):

=============================  ====================================================================================
``data/BANDS``                 (T, H, W, 12) digital numbers × ``scalar/NORM_FACTORS`` (default 1e-4) → reflectance;
                               a float cube is taken as reflectance already. Product level L2A unless the meta key
                               ``product_level`` says otherwise (the challenge ships L2A without saying so).
``data/BANDS-S2-L1C``          (T, H, W, 13) L1C reflectance: B10 is dropped (noted), product level L1C.
                               Either cube may hold any other set or order of bands when ``meta_info`` ``bands``
                               (or ``band_names``) names them in cube order; absent bands are zero, which the
                               input path fills (:mod:`sr_core.prepare`). Processing baseline 04.00's +1000 DN
                               offset is removed (:func:`sr_core.quality.radiometric_offset`).
``data/CLP``                   cloud probability: uint8 0–255 → /255; float 0–1 as is
``mask/CLM``, ``mask/IS_DATA`` 0/1 masks (``mask/dataMask``, eo-learn 1.x's name, when IS_DATA is absent;
                               a pixel-date 0 in every band is no data either way); ``mask/SCL`` Sen2Cor classes 0–11;
                               ``mask/IS_VALID`` (eo-learn: data and not cloud) as the clear mask when no CLM, CLP
                               or SCL is there
``mask_timeless/CULTIVATED``, ``NOT_DECLARED`` (bool), ``ALL_POLYS`` (uint16): labels at 4× the band grid
=============================  ====================================================================================

Only the benchmark's own label names are read (e.g. ``CULTIVATED_PROXY_RABA1100`` is not taken for
``CULTIVATED``): a proxy label must be renamed deliberately by whoever trusts it.

Arrays are read with ``allow_pickle=False`` semantics (the ``.npy`` header is parsed here; object dtypes are
refused), the declared size is checked against :data:`MAX_ARRAY_BYTES` before anything is allocated, and gzip
streams are read to their end so truncation and CRC errors are caught. The patch as a whole, as the reader widens it
(float32 reflectance, 10 m labels at 2.5 m), must fit :data:`MAX_PATCH_BYTES`, checked from the headers first.

Everything in the folder may come from an upload: metadata is capped (:data:`MAX_META_BYTES` in all,
:data:`MAX_META_FILES` files, :data:`MAX_JSON_DEPTH` levels), the bbox must lie on the Earth in its CRS
(:func:`_on_the_map`), and the records sr_core writes itself (:data:`READER_META_KEYS`) are taken from a file only
in the form it writes them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import json
import math
import os
import re
import shutil
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..bands import BAND_NAMES, DEFAULT_NORM_FACTOR, L1C_B10_INDEX, N_BANDS
from ..errors import PatchFormatError, PatchValidationError
from ..geo import BBox
from ..patch import SCALE, Patch, PatchInfo, ProductLevel, Source, clear_mask, timestamp_groups
from ..paths import swap_in_folder
from ..prepare import choose_season, cloud_layer_conflict, missing_bands, nonfinite_as_no_data
from ..quality import (
    level_from_meta,
    offset_from_meta,
    radiometric_offset,
    reflectance_level,
    remove_offset,
    removed_offset,
)  # fmt: skip
from .legacy_pickle import read_bbox_pickle, read_meta_pickle, read_timestamps_pickle, to_jsonable

#: Largest array (decoded bytes) read from one file. A full challenge band cube (48 × 500 × 500 × 12 uint16) is 288 MB.
MAX_ARRAY_BYTES = 8 * 1024**3
#: Largest JSON metadata file read.
MAX_JSON_BYTES = 16 * 1024**2
#: A gzipped array that decodes to more than :data:`GZ_RATIO_FLOOR_BYTES` may expand at most this many times its
#: file size (a "gzip bomb": a few MB of file declaring GBs of zeros). Real band cubes compress 1.5–3×; masks,
#: which compress far better, stay below the floor (a 48 × 500 × 500 mask is 12 MB).
MAX_GZ_RATIO = 200
GZ_RATIO_FLOOR_BYTES = 64 * 1024**2
#: Most memory one patch may take once decoded, summed from the ``.npy`` headers before any array is read: the band
#: cube as stored, its float32 reflectance (T × H × W × 12 × 4 bytes), every date layer as stored and as kept, and
#: every label as stored and on the 2.5 m grid (a 10 m label is repeated 4 × 4: 16 times its size). A full challenge
#: patch (48 dates of 500 × 500 pixels: 288 MB of uint16 DN, 576 MB of reflectance, 2000 × 2000 labels) takes about
#: 1 GB; its 13-band float64 eo-learn 1.x copy about 1.9 GB.
MAX_PATCH_BYTES = 2 * 1024**3
#: Most bytes of metadata JSON read from one patch, all files together (``meta_info/*.json``, ``meta_info.json``;
#: gzipped ones counted decoded), and the most a legacy ``meta_info.pkl.gz`` may decode to. Real eo-learn metadata
#: is a few kB.
MAX_META_BYTES = 1024**2
#: Most entries in a ``meta_info/`` folder (eo-learn writes one small JSON file per key: a handful).
MAX_META_FILES = 256
#: Deepest nesting of lists / objects in a JSON file of a patch (GeoJSON needs 4; eo-learn metadata 2 or 3).
MAX_JSON_DEPTH = 32

BAND_FEATURES = ("data/BANDS", "data/BANDS-S2-L1C")
OPTIONAL_FEATURES = (
    "data/CLP", "mask/CLM", "mask/IS_DATA", "mask/dataMask", "mask/IS_VALID", "mask/SCL", "scalar/NORM_FACTORS",
    "mask_timeless/CULTIVATED", "mask_timeless/NOT_DECLARED", "mask_timeless/ALL_POLYS",
)  # fmt: skip
_ARRAY_SUFFIXES = (".npy", ".npy.gz")
_CHUNK = 16 * 1024**2


class EOPatchExistsError(PatchFormatError, FileExistsError):
    """:func:`write_eopatch` refused to replace an existing folder (pass ``overwrite=True``)."""


# -- low-level readers ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    """Binary reader of ``path``, transparently gunzipping ``*.gz`` (both handles closed on exit)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise PatchFormatError(f"{path}: cannot open ({exc.strerror or exc})") from None
    with fh:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                yield gz  # type: ignore[misc]
        else:
            yield fh


def _stream_error(path: Path, exc: BaseException) -> PatchFormatError:
    if isinstance(exc, EOFError):
        return PatchFormatError(f"{path}: the gzip stream is truncated (file cut short); copy or download it again")
    if isinstance(exc, gzip.BadGzipFile):
        return PatchFormatError(f"{path}: not a gzip file although named .gz ({exc}); rename it or re-save the patch")
    return PatchFormatError(f"{path}: unreadable ({type(exc).__name__}: {exc}); copy or download it again")


def _npy_header(fh: IO[bytes], path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) from the ``.npy`` header at the start of ``fh``; refuses non-numeric dtypes."""
    try:
        version = np.lib.format.read_magic(fh)
    except ValueError:
        raise PatchFormatError(
            f"{path}: not a .npy array file (bad magic bytes); eo-learn stores arrays with numpy.save"
        ) from None
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise PatchFormatError(f"{path}: unsupported .npy version {version}")
    try:  # the header is untrusted text parsed by numpy: any failure there means a bad header
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
            else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(fh, max_header_size=100_000)
    except (EOFError, OSError, zlib.error):
        raise
    except Exception as exc:  # ValueError, SyntaxError, tokenize.TokenError, TypeError … from numpy
        raise PatchFormatError(
            f"{path}: invalid .npy header ({type(exc).__name__}: {exc}); re-save the array with numpy.save"
        ) from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        raise PatchFormatError(
            f"{path}: array dtype {dtype} is not a plain numeric type (object / structured / text arrays are "
            "refused: they can carry pickled code); re-save it as a numeric array"
        )
    return tuple(shape), bool(fortran), dtype


def read_npy_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """The (shape, dtype) a ``.npy`` / ``.npy.gz`` file declares, read from its header alone (nothing allocated)."""
    path = Path(path)
    with _open(path) as fh:
        try:
            shape, _, dtype = _npy_header(fh, path)
        except PatchFormatError:
            raise
        except (EOFError, OSError, zlib.error, ValueError, SyntaxError) as exc:
            raise _stream_error(path, exc) from None
    return shape, dtype


def read_npy(path: str | Path, *, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """Read one ``.npy`` / ``.npy.gz`` file safely: no pickles, size checked before allocation, gzip CRC verified."""
    path = Path(path)
    with _open(path) as raw:
        fh = raw
        try:
            shape, fortran, dtype = _npy_header(fh, path)
            count = math.prod(shape)  # Python ints: no overflow for absurd headers
            nbytes = count * dtype.itemsize
            if any(s < 0 for s in shape) or nbytes > max_bytes:
                raise PatchFormatError(
                    f"{path}: header declares a {shape} {dtype} array ({nbytes / 1e9:.1f} GB), over the "
                    f"{max_bytes / 1e9:.1f} GB limit; this is not a Sentinel-2 patch feature"
                )
            if isinstance(fh, gzip.GzipFile):
                packed = path.stat().st_size
                if nbytes > GZ_RATIO_FLOOR_BYTES and nbytes > MAX_GZ_RATIO * packed:
                    raise PatchFormatError(
                        f"{path}: header declares {nbytes / 1e6:.0f} MB from a {packed / 1e6:.1f} MB gzip file "
                        f"(over {MAX_GZ_RATIO}× expansion); refused as a possible gzip bomb. If it is genuine (e.g. an "
                        "almost empty cube), store it uncompressed as .npy"
                    )
            else:
                left = os.fstat(fh.fileno()).st_size - fh.tell()
                if left < nbytes:
                    raise PatchFormatError(
                        f"{path}: file holds {left} data bytes, its header declares {nbytes}; the file is truncated"
                    )
            arr = np.empty(count, dtype=dtype)
            view = memoryview(arr.view(np.uint8))
            pos = 0
            while pos < nbytes:
                n = fh.readinto(view[pos:pos + _CHUNK])
                if not n:
                    raise PatchFormatError(
                        f"{path}: data ends after {pos} of {nbytes} bytes declared by its header; the file is truncated"
                    )
                pos += n
            if fh.read(1):
                raise PatchFormatError(f"{path}: extra bytes after the array data; the file is corrupt")
        except PatchFormatError:
            raise
        except (EOFError, OSError, zlib.error, ValueError, SyntaxError) as exc:
            raise _stream_error(path, exc) from None
    try:
        arr = arr.reshape(shape, order="F" if fortran else "C")
    except ValueError as exc:  # e.g. more than 64 axes, or a zero-size shape too large to index
        raise PatchFormatError(f"{path}: header shape {str(shape)[:80]} is not a usable array shape ({exc})") from None
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _read_text(path: Path, max_bytes: int = MAX_JSON_BYTES, too_big: str | None = None) -> str:
    """UTF-8 text of ``path`` (gunzipped), at most ``max_bytes`` decoded bytes; beyond that ``too_big`` (or a
    default message) is raised without reading the rest."""
    try:
        with _open(path) as fh:
            data = fh.read(max_bytes + 1)
            if len(data) <= max_bytes:
                fh.read(1)
    except PatchFormatError:
        raise
    except (EOFError, OSError, zlib.error) as exc:
        raise _stream_error(path, exc) from None
    if len(data) > max_bytes:
        raise PatchFormatError(too_big or f"{path}: larger than {max_bytes} bytes; not eo-learn metadata")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PatchFormatError(f"{path}: not UTF-8 text") from None


def _read_json(path: Path, text: str | None = None) -> Any:
    if text is None:
        text = _read_text(path)
    try:
        obj = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer literal over Python's 4300-digit limit
        raise PatchFormatError(f"{path}: invalid JSON ({str(exc)[:200]}); re-save the patch with eo-learn >= 1.0") from None
    except RecursionError:  # deeper than the interpreter's stack: certainly too deep
        too_deep = True
    else:
        too_deep = _nested_deeper(obj, MAX_JSON_DEPTH)
    if too_deep:
        raise PatchFormatError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} levels deep; not eo-learn metadata "
                               "(remove the file, or flatten what it holds)")
    return obj


def _nested_deeper(obj: Any, limit: int) -> bool:
    """Whether ``obj`` (parsed JSON) nests more than ``limit`` lists / objects deep (iterative: no recursion)."""
    stack: list[Iterator[Any]] = [iter((obj,))]
    while stack:
        for v in stack[-1]:
            if isinstance(v, dict):
                v = v.values()
            elif not isinstance(v, list):
                continue
            if len(stack) > limit:
                return True
            stack.append(iter(v))
            break
        else:
            stack.pop()
    return False


def _one_of(folder: Path, *names: str) -> Path | None:
    """The single existing file among ``names`` (error if two exist, e.g. both ``.npy`` and ``.npy.gz``)."""
    found = [folder / n for n in names if (folder / n).is_file()]
    if len(found) > 1:
        raise PatchFormatError(
            f"{folder}: both {found[0].name} and {found[1].name} exist; keep only one of them"
        )
    return found[0] if found else None


def feature_file(folder: Path, feature: str) -> Path | None:
    """The file holding ``feature`` (e.g. ``"mask_timeless/CULTIVATED"``) in any array suffix, or None when absent."""
    return _one_of(folder, *(feature + s for s in _ARRAY_SUFFIXES))


def _rel(folder: Path, path: Path) -> str:
    return f"{folder.name}/{path.relative_to(folder).as_posix()}"


# -- metadata ------------------------------------------------------------------------------------------------------
def read_bbox(folder: Path) -> BBox:
    """The footprint and CRS of an EOPatch folder (``bbox.geojson`` or the legacy ``bbox.pkl.gz``), without its arrays.
    The CRS must be one that PROJ knows (any UTM zone, latitude / longitude, …) and the box must lie on the Earth in
    it, within reach of the web map (:func:`_on_the_map`): every map and output needs it."""
    geo = _one_of(folder, "bbox.geojson", "bbox.geojson.gz")
    pkl = _one_of(folder, "bbox.pkl.gz", "bbox.pkl")
    if geo is not None:
        obj = _read_json(geo)
        if not isinstance(obj, dict):
            raise PatchFormatError(f"{geo}: expected a GeoJSON object")
        try:
            bbox = _known_crs(BBox.from_geojson(obj, source=str(geo)), geo)
        except (OverflowError, ValueError, TypeError) as exc:
            if isinstance(exc, PatchFormatError):
                raise
            raise PatchFormatError(f"{geo}: coordinates are not usable numbers ({exc}); rewrite bbox.geojson") from None
        return _on_the_map(bbox, geo)
    if pkl is not None:
        return _on_the_map(_known_crs(read_bbox_pickle(pkl), pkl), pkl)
    raise PatchFormatError(
        f"{folder}: no bbox (bbox.geojson or bbox.pkl.gz); an EOPatch needs its footprint and CRS"
    )


@functools.lru_cache(maxsize=64)
def _crs_problem(epsg: int) -> str | None:
    """Why PROJ cannot use ``EPSG:epsg`` (None when it can, or when pyproj is not installed)."""
    try:
        from pyproj import CRS
        from pyproj.exceptions import CRSError
    except ImportError:  # a bare numerical install: nothing to check against
        return None
    try:
        crs = CRS.from_epsg(epsg)
    except CRSError as exc:
        return (str(exc).splitlines() or ["unknown code"])[0][:120]
    if not (crs.is_projected or crs.is_geographic):  # e.g. a vertical or geocentric CRS: no place on a map
        return f"{crs.name} is not a map projection or latitude / longitude"
    return None


def _known_crs(bbox: BBox, source: Path) -> BBox:
    if (why := _crs_problem(bbox.epsg)) is not None:
        raise PatchFormatError(
            f"{source}: EPSG:{bbox.epsg} is not a coordinate reference system PROJ knows ({why}); the bbox must name a "
            "real EPSG code, e.g. EPSG:32633 (UTM zone 33N, the challenge's) or the patch's own UTM zone"
        )
    return bbox


#: Farthest latitude a patch may reach: the web map (EPSG:3857) ends at 85.0511°, and Sentinel-2 images nothing beyond
#: about 84° N / 84° S anyway.
MAX_MAP_LATITUDE = 85.0511


def _on_the_map(bbox: BBox, source: Path) -> BBox:
    """``bbox`` when its outline (edges densified, as the maps draw it) transforms to finite latitude / longitude
    within ±:data:`MAX_MAP_LATITUDE` / ±180°; else :class:`PatchFormatError` naming the box and its CRS (such a box
    would read, then break every map of the patch). Unchecked where pyproj is not installed."""
    try:
        from pyproj import Transformer
    except ImportError:
        return bbox
    x0, y0, x1, y1 = bbox.bounds
    t = np.linspace(0.0, 1.0, 9)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1), x1 - (x1 - x0) * t, np.full_like(t, x0)])
    ys = np.concatenate([np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y1 - (y1 - y0) * t])
    try:
        with np.errstate(all="ignore"):
            lon, lat = (np.asarray(v, np.float64) for v in
                        Transformer.from_crs(bbox.epsg, 4326, always_xy=True).transform(xs, ys))
    except Exception:  # pyproj's ProjError and kin: no lat / lon for this box in this CRS
        lon = lat = np.full(1, np.nan)
    fix = (f"check that the coordinates are in {bbox.crs} (metres east / north for UTM, e.g. EPSG:32633; longitude, "
           "latitude in degrees for EPSG:4326) and rewrite the bbox with the patch's real footprint and CRS")
    where = f"{source.parent.name}/{source.name}"
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()) or np.abs(lon).max() > 180 or np.abs(lat).max() > 90:
        raise PatchFormatError(f"{where}: bbox {bbox} does not lie on the Earth in {bbox.crs} (its outline has no "
                               f"latitude / longitude within ±90° / ±180°); {fix}")
    if np.abs(lat).max() > MAX_MAP_LATITUDE:
        raise PatchFormatError(f"{where}: bbox {bbox} reaches latitude {float(np.abs(lat).max()):.4g}°, beyond the "
                               f"±{MAX_MAP_LATITUDE}° the map can show (Sentinel-2 images nothing there); {fix}")
    return bbox


def _read_timestamps(folder: Path) -> tuple[list[datetime], list[str]]:
    # eo-learn ≥ 1.5 writes timestamps.json; eo-learn 1.0–1.4 wrote timestamp.json (1.5 still reads it), which a
    # folder saved again by a newer eo-learn may still hold beside the new file: the new name wins
    js = _one_of(folder, "timestamps.json", "timestamps.json.gz") or _one_of(folder, "timestamp.json",
                                                                              "timestamp.json.gz")
    pkl = _one_of(folder, "timestamp.pkl.gz", "timestamp.pkl")
    if js is not None:
        obj = _read_json(js)
        if not isinstance(obj, list):
            raise PatchFormatError(f"{js}: expected a JSON list of ISO dates")
        out = []
        for i, s in enumerate(obj):
            try:
                t = datetime.fromisoformat(str(s).replace("Z", "+00:00"))
                if t.tzinfo is not None:
                    t = t.astimezone(UTC).replace(tzinfo=None)
            except (ValueError, OverflowError):
                raise PatchFormatError(
                    f"{js}: entry {i} {str(s)[:60]!r} is not an ISO date like 2019-03-04T10:00:00 (in years 1–9999 UTC)"
                ) from None
            out.append(t)
        return out, []
    if pkl is not None:
        return read_timestamps_pickle(pkl)
    raise PatchFormatError(
        f"{folder}: no timestamps (timestamps.json, timestamp.json or timestamp.pkl.gz); each date of the band cube "
        "needs one"
    )


def _read_meta(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """The patch's metadata (legacy ``meta_info.pkl.gz``, then ``meta_info.json``, then ``meta_info/<key>.json``) and
    notes on how it was read. At most :data:`MAX_META_FILES` entries in ``meta_info/`` and :data:`MAX_META_BYTES` of
    JSON in all are read: metadata is a few kB, and every byte of it is kept with the patch."""
    meta: dict[str, Any] = {}
    notes: list[str] = []
    pkl = _one_of(folder, "meta_info.pkl.gz", "meta_info.pkl")
    if pkl is not None:
        meta, notes = read_meta_pickle(pkl, max_bytes=MAX_META_BYTES)
    files: list[tuple[str | None, Path]] = []
    single = _one_of(folder, "meta_info.json", "meta_info.json.gz")
    if single is not None:
        files.append((None, single))
    mdir = folder / "meta_info"
    if mdir.is_dir():
        entries: list[Path] = []
        try:
            with os.scandir(mdir) as it:
                for entry in it:  # counted as listed: a folder of a million files is refused at the first few hundred
                    if len(entries) >= MAX_META_FILES:
                        raise PatchFormatError(
                            f"{folder.name}/meta_info: more than {MAX_META_FILES} files; eo-learn writes one small "
                            "JSON file per metadata key (a handful): remove the others"
                        )
                    entries.append(Path(entry.path))
        except OSError as exc:
            raise PatchFormatError(f"{folder.name}/meta_info: cannot list it ({exc.strerror or exc})") from None
        for f in sorted(entries):
            if f.is_file() and (f.name.endswith(".json") or f.name.endswith(".json.gz")):
                files.append((f.name.removesuffix(".gz").removesuffix(".json"), f))
    left = MAX_META_BYTES
    for key, f in files:
        where = _rel(folder, f)
        text = _read_text(f, max_bytes=left, too_big=(
            f"{where}: the metadata JSON of this patch comes to more than {MAX_META_BYTES / 1024**2:g} MB in all; eo-learn "
            "metadata is a few kB: remove the large files from meta_info (or meta_info.json)"))
        left -= len(text.encode("utf-8"))
        obj = _read_json(f, text)
        if key is None:
            if isinstance(obj, dict):
                meta.update(obj)
        else:
            meta[key] = obj
    return meta, notes


# -- feature checks ------------------------------------------------------------------------------------------------
def _squeeze_channel(a: np.ndarray, ndim: int, where: str, shape_doc: str) -> np.ndarray:
    if a.ndim == ndim + 1 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != ndim:
        raise PatchFormatError(
            f"{where}: array has {a.ndim} dimensions {a.shape}, expected {shape_doc}; re-save it with that shape"
        )
    return a


def _check_frames(a: np.ndarray, where: str, bands_where: str, thw: tuple[int, int, int]) -> np.ndarray:
    a = _squeeze_channel(a, 3, where, "(T, H, W, 1)")
    if a.shape[0] != thw[0]:
        raise PatchValidationError(
            f"{where}: has T={a.shape[0]} dates but {bands_where} has T={thw[0]}; every temporal feature needs "
            "one layer per date of the band cube"
        )
    if a.shape[1:] != thw[1:]:
        coarse = [k for k in (2, 6) if a.shape[1] * k == thw[1] and a.shape[2] * k == thw[2]]
        raise PatchValidationError(
            f"{where}: grid {a.shape[1]} × {a.shape[2]} differs from the band grid {thw[1]} × {thw[2]} of {bands_where}"
            + (f"; it is the band grid at {10 * coarse[0]} m (Sen2Cor delivers SCL at 20 and 60 m): resample it to the "
               f"10 m grid first (nearest neighbour, each pixel repeated {coarse[0]} × {coarse[0]})" if coarse else "")
        )
    return a


def _check_mask01(a: np.ndarray, where: str, notes: list[str] | None = None) -> np.ndarray:
    """A 0/1 mask as bool. Also read, with a note: 0/255 integer masks (an image's black / white) and float masks
    holding only 0.0 and 1.0. Anything else is refused, naming the values found."""
    if a.dtype == bool:
        return a
    if a.dtype.kind not in "iuf":
        raise PatchFormatError(f"{where}: dtype {a.dtype}, expected bool or uint8 0/1")
    if not a.size:
        return a.astype(bool)
    lo, hi = a.min(), a.max()
    if a.dtype.kind == "f":
        if not (np.isfinite(lo) and np.isfinite(hi)) or not np.all((a == 0) | (a == 1)):
            raise PatchFormatError(f"{where}: float values other than 0 and 1 (e.g. {_odd_value(a)}); store the mask "
                                   "as bool or uint8 0/1")
        return a == 1
    if lo >= 0 and hi <= 1:
        return a.astype(bool)
    if lo >= 0 and hi == 255 and np.all((a == 0) | (a == 255)):
        if notes is not None:
            notes.append(f"{where}: a 0/255 mask, read as 0/1")
        return a == 255
    raise PatchFormatError(f"{where}: values {lo}–{hi}, expected 0/1 only (or 0/255"
                           + ("; a CULTIVATED label may hold 0 / 1 / 2 with 2 = not declared, the challenge's mapping)"
                              if "CULTIVATED" in where else ")"))


def _odd_value(a: np.ndarray) -> str:
    odd = a[~((a == 0) | (a == 1))]
    return f"{odd.flat[0]:g}" if odd.size else "–"


def _check_label(a: np.ndarray, where: str, bands_where: str, hw: tuple[int, int],
                 notes: list[str] | None = None) -> tuple[np.ndarray, bool]:
    """A timeless label on the 2.5 m grid (4H × 4W), and whether it came on the 10 m band grid itself (H × W: an LPIS
    rasterised onto the Sentinel-2 pixels, as real labelled extractions often come): such a label is repeated 4 × 4,
    with a note."""
    a = _squeeze_channel(a, 2, where, "(4H, 4W, 1)")
    want = (SCALE * hw[0], SCALE * hw[1])
    if a.shape == tuple(hw) and a.shape != want:
        if notes is not None:
            notes.append(f"{where}: labels on the 10 m band grid ({hw[0]} × {hw[1]}), repeated 4 × 4 to the 2.5 m "
                         "grid: scores on them measure which land is cultivated, not 2.5 m detail")
        return np.repeat(np.repeat(a, SCALE, axis=0), SCALE, axis=1), True
    if a.shape != want:
        raise PatchValidationError(
            f"{where}: label grid {a.shape[0]} × {a.shape[1]} is neither 4× the {hw[0]} × {hw[1]} band grid of "
            f"{bands_where} (expected {want[0]} × {want[1]} at 2.5 m) nor that grid itself (10 m labels)"
        )
    return a, False


def _bands_to_reflectance(
    raw: np.ndarray, where: str, folder: Path, notes: list[str]
) -> tuple[np.ndarray, float | None]:
    """DN → reflectance with NORM_FACTORS (integer cubes); float cubes are reflectance already."""
    T = raw.shape[0]
    if raw.dtype.kind == "f":
        if raw.size and np.nanpercentile(raw[:, ::8, ::8], 99) > 10:
            raise PatchFormatError(
                f"{where}: float cube with values up to {np.nanmax(raw):.0f}: digital numbers stored as float? "
                "store them as uint16 with scalar/NORM_FACTORS, or as reflectance (0–1)"
            )
        if feature_file(folder, "scalar/NORM_FACTORS") is not None:
            notes.append(f"{where} is float: read as reflectance, scalar/NORM_FACTORS ignored")
        return raw.astype(np.float32, copy=False), None
    if raw.dtype.kind not in "iu":
        raise PatchFormatError(f"{where}: dtype {raw.dtype}, expected uint16 digital numbers or float reflectance")
    nf_file = feature_file(folder, "scalar/NORM_FACTORS")
    if nf_file is None:
        factors = np.full(T, DEFAULT_NORM_FACTOR, np.float64)
        notes.append(f"no scalar/NORM_FACTORS: reflectance = DN × {DEFAULT_NORM_FACTOR:g} (the challenge's scale)")
    else:
        nwhere = _rel(folder, nf_file)
        nf = read_npy(nf_file)
        if nf.dtype.kind not in "fiu":
            raise PatchFormatError(f"{nwhere}: dtype {nf.dtype}, expected float32")
        if nf.ndim == 2 and nf.shape[1] == 1:
            nf = nf[:, 0]
        if nf.ndim != 1:
            raise PatchFormatError(f"{nwhere}: shape {nf.shape}, expected (T, 1)")
        if nf.shape[0] != T:
            raise PatchValidationError(f"{nwhere}: has T={nf.shape[0]} factors but {where} has T={T} dates")
        factors = nf.astype(np.float64)
        if not np.all(np.isfinite(factors)) or np.any(factors <= 0):
            raise PatchFormatError(f"{nwhere}: factors must be positive finite numbers, got {factors.tolist()}")
    out = np.empty(raw.shape, np.float32)
    for t in range(T):  # per date: keeps peak memory at one extra float32 cube
        np.multiply(raw[t], factors[t], out=out[t], casting="unsafe")
    if out.size and np.nanpercentile(out[:, ::8, ::8], 99) > 10:  # reflectance lies within 0–1.5 or so
        raise PatchFormatError(
            f"{where}: digital numbers × {'scalar/NORM_FACTORS' if nf_file is not None else 'the default factor'} "
            f"({factors.min():g}{'' if factors.min() == factors.max() else f'–{factors.max():g}'}) give reflectance up to "
            f"{np.nanpercentile(out[:, ::8, ::8], 99):.0f}, not 0–1: the factors are wrong for these DN; Sentinel-2 L1C / "
            f"L2A DN are reflectance × 10 000, so write NORM_FACTORS = 1e-4 (or store the cube as float reflectance)"
        )
    f32 = factors.astype(np.float32)
    if np.all(f32 == f32[0]):
        norm = float(f"{f32[0]:.7g}")  # the float32 value as written, e.g. 1e-4 (not 9.9999997e-05)
    else:
        norm = None
        notes.append(f"NORM_FACTORS vary by date ({factors.min():g}–{factors.max():g}); applied per date")
    return out, norm


def _harmonise(bands: np.ndarray, timestamps: Sequence[datetime], valid: np.ndarray, meta: Mapping[str, Any],
               norm: float | None, notes: list[str]) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Bands with processing baseline 04.00's +1000 DN offset removed where the metadata states it or the red of
    clear vegetation shows it (:func:`sr_core.quality.radiometric_offset`), and the record of what was done (None: nothing)."""
    if not bands.flags.writeable:
        bands = bands.copy()
    stated, why = offset_from_meta(meta, norm)
    if stated is not None:
        if stated == 0:
            return bands, None
        remove_offset(bands, range(bands.shape[0]), stated)
        notes.append(f"processing-baseline offset: {stated:g} subtracted from every band of every date ({why})")
        return bands, {"subtracted": stated, "dates": [f"{t:%Y-%m-%d}" for t in timestamps], "source": why}
    fixed = [c for c in radiometric_offset(bands, timestamps, valid) if c.offset > 0]
    if not fixed:
        return bands, None
    dates: list[str] = []
    for c in fixed:
        remove_offset(bands, c.dates, c.offset)
        dates += [f"{timestamps[t]:%Y-%m-%d}" for t in c.dates]
        notes.append(f"processing-baseline offset: {c.offset:g} subtracted from every band of {len(c.dates)} "
                     f"date(s): {c.reason}, so they were stored as DN + 1000 and read as DN × 1e-4 (to skip this "
                     "check, state meta_info boa_add_offset or harmonized)")
    return bands, {"subtracted": fixed[0].offset, "dates": dates, "darkest": [c.darkest for c in fixed],
                   "source": "reflectance statistics"}


#: meta_info keys that state the processing-baseline offset or its absence (:func:`sr_core.quality.offset_from_meta`).
_OFFSET_KEYS = ("boa_add_offset", "radio_add_offset", "harmonized", "harmonize_values", "harmonizevalues")

#: meta_info keys that may name the band cube's bands, in order (e.g. ``["B02", "B03", "B04", "B08"]``).
BAND_NAME_KEYS = ("bands", "band_names")
_BAND_NAME = re.compile(r"B0?(\d{1,2})|B0?8A")


def _band_name(s: str) -> str | None:
    """``"B8A"`` / ``"b08a"`` → ``"B8A"``, ``"B2"`` / ``"b02"`` → ``"B02"``; None for anything that is not a
    Sentinel-2 MSI band (B01 … B12, B8A)."""
    u = s.strip().upper()
    m = _BAND_NAME.fullmatch(u)
    if m is None:
        return None
    if m.group(1) is None:
        return "B8A"
    n = int(m.group(1))
    return f"B{n:02d}" if 1 <= n <= 12 else None


def stated_band_names(meta: Mapping[str, Any], n_bands: int, where: str) -> tuple[list[str], str] | None:
    """The band names ``meta_info`` gives for a cube of ``n_bands`` bands, in cube order, and the key that gave
    them; None where it names none. Names that are not Sentinel-2 bands, repeated names or a count that is not the
    cube's raise :class:`PatchFormatError` naming the fix."""
    lower = {str(k).lower(): v for k, v in meta.items()}
    for key in BAND_NAME_KEYS:
        if key not in lower:
            continue
        given = lower[key]
        example = 'e.g. ["B02", "B03", "B04", "B08"]'
        if not isinstance(given, list) or not given or not all(isinstance(x, str) for x in given):
            raise PatchFormatError(f"meta_info {key}: expected a list of band names in cube order, {example}; "
                                   f"got {type(given).__name__}")
        names = [_band_name(x) for x in given]
        bad = [x for x, n in zip(given, names, strict=True) if n is None]
        if bad:
            raise PatchFormatError(f"meta_info {key}: {', '.join(repr(b) for b in bad[:4])} "
                                   f"{'is' if len(bad) == 1 else 'are'} not Sentinel-2 band names (B01 … B12, B8A)")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise PatchFormatError(f"meta_info {key}: {', '.join(dup)} named more than once")
        if len(names) != n_bands:
            raise PatchFormatError(f"meta_info {key} names {len(names)} bands but {where} has {n_bands}; "
                                   "name every band of the cube, in order")
        if not any(n in names for n in BAND_NAMES):
            raise PatchFormatError(f"meta_info {key}: only B10 (cirrus), which the model does not use")
        return [str(n) for n in names], key
    return None


def _to_band_order(raw: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """A cube whose bands are ``names`` (any order, any subset, B10 allowed) as the challenge's 12 bands; absent
    bands are zero, which the input path fills (:func:`sr_core.prepare.missing_bands`)."""
    out = np.zeros((*raw.shape[:3], N_BANDS), raw.dtype)
    for j, name in enumerate(BAND_NAMES):
        if name in names:
            out[..., j] = raw[..., names.index(name)]
    return out


# -- metadata sr_core writes itself ------------------------------------------------------------------------------------
#: ``meta_info`` keys that sr_core computes itself when it reads or prepares a patch, and writes back with it
#: (:func:`write_eopatch` saves the whole ``info.meta``). From a file they are taken only in the form the library
#: writes them; ``radiometric_offset`` only beside ``harmonized: true`` (how the writer saves a corrected cube: the
#: record is then history, nothing is subtracted again); ``input`` only when preparing the patch again would change
#: none of its data (:func:`_input_record_problem`). Anything else is dropped with a note, so an upload cannot steer
#: the input path or break what reads these records (``sr_core.prepare``, ``sr_core.quality``).
READER_META_KEYS = ("radiometric_offset", "non_finite", "labels_10m", "band_layout", "cloud_masks", "input")
_LABEL_FEATURES = {"CULTIVATED": "cultivated", "NOT_DECLARED": "not_declared", "ALL_POLYS": "all_polys"}
_INPUT_FIELDS = frozenset({"season", "season_complete", "seasons_in_series", "dates_used", "dates_total", "first_date",
                           "last_date", "filled_bands", "cloud_source", "coregistered", "non_finite", "season_given",
                           "complete_seasons", "cloud_layer_ignored"})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_share(v: Any) -> bool:
    """A finite number in 0–1 (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


def _str_list(v: Any, allowed: Sequence[str] | None = None) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and (allowed is None or x in allowed) for x in v)


def _flat(v: Any) -> bool:
    """A JSON scalar, or a list of scalars."""
    scalar = (str, int, float, bool, type(None))
    return isinstance(v, scalar) or (isinstance(v, list) and all(isinstance(x, scalar) for x in v))


def _reader_record_problem(key: str, value: Any, meta: Mapping[str, Any]) -> str | None:
    """Why ``meta_info`` ``key`` (one of :data:`READER_META_KEYS` but ``input``) cannot be taken from a file; None
    when it is what sr_core writes."""
    if key == "radiometric_offset":
        if meta.get("harmonized") is not True:
            return ("it is the reader's own record of a processing-baseline offset it removed, and this patch does not "
                    "say harmonized: true (saved as corrected); the offset is checked afresh")
        sub = value.get("subtracted", 0.0) if isinstance(value, dict) else None
        ok = (isinstance(value, dict) and isinstance(sub, (int, float)) and not isinstance(sub, bool) and math.isfinite(sub)
              and _str_list(value.get("dates", [])) and isinstance(value.get("source", ""), str)
              and all(_flat(v) for v in value.values()))
        return None if ok else "not the record the reader writes (subtracted, dates, source)"
    if key == "non_finite":
        return None if _is_share(value) else "expected the share of pixel-dates that held NaN / inf, a number 0–1"
    if key == "labels_10m":
        return None if _str_list(value, tuple(_LABEL_FEATURES)) and value else \
            f"expected a list of label names among {', '.join(_LABEL_FEATURES)}"
    if key == "band_layout":
        ok = (isinstance(value, dict) and set(value) <= {"stated", "absent"}
              and _str_list(value.get("stated", []), (*BAND_NAMES, "B10")) and _str_list(value.get("absent", []), BAND_NAMES))
        return None if ok else "expected {\"stated\": [band names], \"absent\": [band names]}"
    if key == "cloud_masks":  # what is read from it: computed (masks_were_computed), method and b10 (the warning)
        ok = (isinstance(value, dict) and isinstance(value.get("computed"), bool)
              and all(isinstance(value.get(k, ""), (str, type(None))) for k in ("method", "b10"))
              and _str_list(value.get("layers", []), ("cloud_prob", "cloud_mask")))
        return None if ok else "not the record sr_core.clouds writes (computed: true / false, method and b10 as text)"
    return None


def _checked_reader_keys(meta: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """``meta`` without the :data:`READER_META_KEYS` records that are not what sr_core writes (each with a note)."""
    out = dict(meta)
    for key in READER_META_KEYS:
        if key == "input" or key not in out:
            continue
        if (why := _reader_record_problem(key, out[key], out)) is not None:
            del out[key]
            notes.append(f"meta_info {key} ignored: {why}")
    return out


def _input_record_problem(patch: Patch, rec: Any) -> str | None:
    """Why the ``input`` record a file carries (what :func:`sr_core.prepare.prepare_input` did before the patch was
    saved) cannot stand for ``patch``; None when it is well formed, describes this patch, and preparing the patch
    again would change none of its data (its dates lie in the record's season, no band is left to fill; the reader
    has already sorted the dates, merged repeated ones and taken NaN as no data). Only then may the input path skip
    it, as it skips a patch it prepared itself."""
    if not isinstance(rec, dict):
        return f"a {type(rec).__name__}, not the record sr_core.prepare writes"
    if extra := sorted(str(k) for k in rec if k not in _INPUT_FIELDS):
        return f"unknown field {extra[0][:40]!r}"
    if missing := [k for k in ("season", "dates_used", "dates_total", "first_date", "last_date") if k not in rec]:
        return f"no {missing[0]}"
    season = rec["season"]
    if not _is_int(season) or not 1 <= season <= 9999:
        return f"season {str(season)[:40]} is not a year"
    T = patch.n_dates
    if not _is_int(rec["dates_used"]) or rec["dates_used"] != T or not _is_int(rec["dates_total"]) \
            or rec["dates_total"] < T:
        return f"dates_used / dates_total do not describe this patch's {T} dates"
    if rec["first_date"] != f"{patch.timestamps[0]:%Y-%m-%d}" or rec["last_date"] != f"{patch.timestamps[-1]:%Y-%m-%d}":
        return "first_date / last_date are not this patch's"
    seasons = rec.get("seasons_in_series", [])
    complete = rec.get("complete_seasons", [])
    if not isinstance(rec.get("season_complete", False), bool) or \
            not isinstance(rec.get("season_given", False), bool) or \
            not (isinstance(seasons, list) and all(_is_int(y) for y in seasons)) or \
            not (isinstance(complete, list) and all(_is_int(y) for y in complete)):
        return "season_complete / season_given / seasons_in_series / complete_seasons are not what sr_core.prepare writes"
    filled = rec.get("filled_bands", {})
    if not (isinstance(filled, dict) and all(k in BAND_NAMES and v in BAND_NAMES for k, v in filled.items())):
        return "filled_bands is not a mapping of band names"
    if rec.get("cloud_source", patch.cloud_source or "none") != (patch.cloud_source or "none"):
        return f"cloud_source {str(rec.get('cloud_source'))[:20]!r} is not this patch's ({patch.cloud_source or 'none'})"
    moved = rec.get("coregistered")
    if moved is not None and not (isinstance(moved, dict) and all(
            isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v) for v in moved.values())):
        return "coregistered is not a mapping of dates to [dy, dx] pixel shifts"
    if not _is_share(rec.get("non_finite", 0.0)):
        return "non_finite is not a share 0–1"
    if not isinstance(rec.get("cloud_layer_ignored"), (str, type(None))):
        return "cloud_layer_ignored is not a text"
    if rec.get("cloud_layer_ignored") is not None and (patch.cloud_mask is not None or patch.cloud_prob is not None):
        return "it says the cloud layer was ignored, but the patch still carries one"
    if rec.get("cloud_layer_ignored") is None and cloud_layer_conflict(patch) is not None:
        return "its cloud layer contradicts the patch's SCL, which preparing it again would catch"
    try:
        choice = choose_season(patch.timestamps)
    except PatchValidationError:
        return "the patch's dates span several years with no growing season"
    if not choice.whole_series or choice.year != season:
        return f"the patch's dates are not all in the {season} growing season"
    missing_now = missing_bands(patch.bands, patch.data_mask())
    if 0 < len(missing_now) < N_BANDS:
        return f"band(s) {', '.join(missing_now)} hold no signal and were never filled"
    return None


# -- memory budget -------------------------------------------------------------------------------------------------
def _declared(f: Path) -> tuple[tuple[int, ...], np.dtype, int] | None:
    """(shape, dtype, bytes) a feature file's header declares; None when the header is unusable (its reader then
    refuses it with its own message)."""
    try:
        shape, dtype = read_npy_header(f)
    except PatchFormatError:
        return None
    if any(n < 0 for n in shape):
        return None
    return shape, dtype, math.prod(shape) * dtype.itemsize


def _check_patch_memory(folder: Path, bfile: Path, bwhere: str, *, layers: bool = True) -> None:
    """Refuse, before any array is allocated, a patch whose arrays would take more than :data:`MAX_PATCH_BYTES` once
    decoded (see there): a few MB of gzip can declare GBs, and the reader widens what it reads (uint8 DN → float32
    reflectance, 10 m labels → 2.5 m). ``layers=False``: the band cube alone (:func:`read_b10`)."""
    got = _declared(bfile)
    if got is None or len(got[0]) != 4:  # read_npy's own limits, then the shape check, refuse it
        return
    shape, dtype, raw = got
    thw = (shape[0], shape[1], shape[2])
    parts = [(raw + math.prod(thw) * N_BANDS * 4, f"{bwhere} {shape} {dtype} as stored and as float32 reflectance")]
    if layers:
        has_is_data = feature_file(folder, "mask/IS_DATA") is not None
        for feature in OPTIONAL_FEATURES:
            f = feature_file(folder, feature)
            if f is None or (feature == "mask/dataMask" and has_is_data) or (got := _declared(f)) is None:
                continue
            fshape, _, fbytes = got
            squeezed = fshape[:-1] if len(fshape) in (3, 4) and fshape[-1] == 1 else fshape
            n = math.prod(squeezed)
            what = _rel(folder, f)
            if feature.startswith("mask_timeless/"):
                if tuple(squeezed) == thw[1:]:
                    n *= SCALE * SCALE
                    what += " (10 m labels, repeated 4 × 4)"
                kept = n * (2 if feature.endswith("ALL_POLYS") else 1)
            else:
                kept = n * (4 if feature == "data/CLP" else 1)
            parts.append((fbytes + kept, what))
    total = sum(b for b, _ in parts)
    budget = max_patch_bytes()
    if total > budget:
        parts.sort(reverse=True)
        biggest = "; ".join(f"{what}: {b / 1e9:.2f} GB" for b, what in parts[:3])
        raise PatchValidationError(
            f"{folder.name}: reading this patch would take {total / 1e9:.1f} GB of memory ({biggest}), over the "
            f"{budget / 1e9:.1f} GB one patch may use (a full challenge patch, 48 dates of 500 × 500 "
            f"pixels, takes about 1 GB); split it into smaller patches or fewer dates (the operator of a machine with "
            f"the memory may raise ${ENV_MAX_PATCH_GB})"
        )


#: Raises the per-patch memory budget (GB) where a machine has the memory; uploads are read under it too.
ENV_MAX_PATCH_GB = "SR_CORE_MAX_PATCH_GB"


def max_patch_bytes() -> int:
    """The per-patch decoded-memory budget: ``$SR_CORE_MAX_PATCH_GB`` GB, else :data:`MAX_PATCH_BYTES` (2 GiB)."""
    import os

    from ..paths import _env_amount

    if not os.environ.get(ENV_MAX_PATCH_GB, "").strip():
        return MAX_PATCH_BYTES
    return int(_env_amount(ENV_MAX_PATCH_GB, 0, f"a size in GB; set e.g. {ENV_MAX_PATCH_GB}=4") * 1e9)


# -- public: load --------------------------------------------------------------------------------------------------
def _check_cube_shape(raw: np.ndarray, where: str) -> None:
    if raw.ndim != 4:
        raise PatchFormatError(f"{where}: array has {raw.ndim} dimensions {raw.shape}, expected (T, H, W, bands)")
    if raw.shape[0] == 0:
        raise PatchValidationError(f"{where}: the band cube has no date (shape {raw.shape}, T = 0); a patch needs at "
                                   "least one date of imagery: export it with its dates (and their timestamps)")


def _describe(folder: Path) -> str:
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        names = sorted({f.name.split(".")[0] for f in sub.iterdir() if f.is_file()})
        if names:
            found.append(f"{sub.name}/: {', '.join(names)}")
    return "; ".join(found) or "no feature folders"


def load_eopatch(path: str | Path) -> Patch:
    """Read an EOPatch folder (eo-learn 0.9 challenge layout or eo-learn 1.x) into a validated :class:`Patch`.

    Raises :class:`PatchFormatError` for missing / unreadable / ill-typed files and :class:`PatchValidationError`
    for features that disagree with the band cube (dates, grid, label scale); messages name the file at fault.
    """
    folder = Path(path)
    if not folder.exists():
        raise PatchFormatError(f"{folder}: no such EOPatch folder")
    if not folder.is_dir():
        raise PatchFormatError(
            f"{folder}: is a file, not an EOPatch folder; for an archive use sr_core.io.open_patches "
            "or `python -m sr_core info` (they extract it safely)"
        )
    notes: list[str] = []
    files = {f: feature_file(folder, f) for f in BAND_FEATURES}
    if files["data/BANDS"] is None and files["data/BANDS-S2-L1C"] is None:
        data_dir = folder / "data"
        names = {p.name.split(".")[0] for p in data_dir.glob("*.npy*")} if data_dir.is_dir() else set()
        others = sorted(o for o in names if f"data/{o}" not in OPTIONAL_FEATURES)  # CLP is not a band cube
        hint = (f"; if data/{others[0]} is the band cube (eo-learn lets each export name it), rename it to data/BANDS "
                "(L2A) or data/BANDS-S2-L1C (L1C)" if len(others) == 1 else
                f"; if one of data/{', data/'.join(others[:6])} is the band cube, rename it to data/BANDS (L2A) or "
                "data/BANDS-S2-L1C (L1C)" if others else "")
        raise PatchFormatError(
            f"{folder}: no band cube (data/BANDS.npy[.gz] or data/BANDS-S2-L1C.npy[.gz]); found {_describe(folder)}. "
            f"sr_core needs the 12 Sentinel-2 bands per date: export the patch with its band cube{hint}"
        )
    meta, meta_notes = _read_meta(folder)
    notes += meta_notes
    meta = _checked_reader_keys(meta, notes)
    stored_notes = meta.get("notes")
    prior_notes = [str(n) for n in stored_notes] if isinstance(stored_notes, list) else []

    level: ProductLevel | None = None
    if files["data/BANDS"] is not None:
        bfile = files["data/BANDS"]
        if files["data/BANDS-S2-L1C"] is not None:
            notes.append("data/BANDS-S2-L1C ignored: data/BANDS read instead")
        level_meta = meta.get("product_level")
        if level_meta is None:
            level, level_why = level_from_meta(meta)  # e.g. data_collection = "SENTINEL2_L1C"
            if level is not None:
                notes.append(f"product level {level.value} from {level_why}")
        else:
            try:
                level = ProductLevel(str(level_meta))
            except ValueError:
                raise PatchFormatError(
                    f"{folder}: meta_info product_level {level_meta!r} is not one of L1C, L2A, unknown"
                ) from None
    else:
        bfile = files["data/BANDS-S2-L1C"]
        level = ProductLevel.L1C
    assert bfile is not None
    bwhere = _rel(folder, bfile)
    _check_patch_memory(folder, bfile, bwhere)
    raw = read_npy(bfile)
    _check_cube_shape(raw, bwhere)
    C = raw.shape[-1]
    stated = stated_band_names(meta, C, bwhere)
    if stated is not None:
        names, key = stated
        meta = {k: v for k, v in meta.items() if str(k).lower() not in BAND_NAME_KEYS}  # the cube is now in order
        if names != list(BAND_NAMES):
            raw = _to_band_order(raw, names)
            absent = [b for b in BAND_NAMES if b not in names]
            notes.append(f"{bwhere}: {C} bands in the order meta_info {key} gives ({' '.join(names)})"
                         + ("; B10 (cirrus) dropped" if "B10" in names else "")
                         + (f"; absent: {', '.join(absent)}, filled from the nearest band in wavelength (see the "
                            "warnings)" if absent else ""))
            meta["band_layout"] = {"stated": names, "absent": absent}
    elif C == N_BANDS + 1:
        raw = np.delete(raw, L1C_B10_INDEX, axis=-1)
        notes.append(f"{bfile.parent.name}/{bfile.name.split('.')[0]}: 13 bands, dropped B10 (cirrus)")
    elif C != N_BANDS:
        raise PatchFormatError(
            f"{bwhere}: {C} bands, expected 12 (B01…B12 without B10) or 13 (with B10); a cube with other bands is "
            "read when meta_info names them in order, e.g. meta_info/bands.json = "
            '["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"] (absent bands are filled from '
            "the nearest band in wavelength, with a warning)"
        )
    bands, norm = _bands_to_reflectance(raw, bwhere, folder, notes)
    del raw
    T, H, W, _ = bands.shape

    timestamps, ts_notes = _read_timestamps(folder)
    notes += ts_notes
    if len(timestamps) != T:
        raise PatchValidationError(
            f"{folder}: {len(timestamps)} timestamps but {bwhere} has T={T} dates; the files do not belong together"
        )
    bbox = read_bbox(folder)

    layers: dict[str, np.ndarray | None] = {}

    def frame_feature(feature: str) -> tuple[np.ndarray, str] | None:
        f = feature_file(folder, feature)
        if f is None:
            return None
        where = _rel(folder, f)
        return _check_frames(read_npy(f), where, bwhere, (T, H, W)), where

    if (got := frame_feature("data/CLP")) is not None:
        a, where = got
        if a.dtype.kind in "iu":
            if a.size and (a.min() < 0 or a.max() > 255):
                raise PatchFormatError(f"{where}: values {a.min()}–{a.max()}, expected 0–255 (s2cloudless CLP)")
            layers["cloud_prob"] = a.astype(np.float32) / np.float32(255)
        elif a.dtype.kind == "f":
            if a.size and (np.nanmin(a) < 0 or np.nanmax(a) > 1):
                raise PatchFormatError(f"{where}: float values outside 0–1; store CLP as uint8 0–255 or float 0–1")
            layers["cloud_prob"] = a.astype(np.float32)
        else:
            raise PatchFormatError(f"{where}: dtype {a.dtype}, expected uint8 0–255 or float 0–1")
    for feature, name in (("mask/CLM", "cloud_mask"), ("mask/IS_DATA", "is_data")):
        if (got := frame_feature(feature)) is not None:
            layers[name] = _check_mask01(*got, notes)
    if layers.get("is_data") is None and (got := frame_feature("mask/dataMask")) is not None:
        layers["is_data"] = _check_mask01(*got, notes)  # eo-learn 1.x SentinelHubInputTask's name for it
        notes.append("mask/dataMask read as the data mask (IS_DATA)")
    # a pixel-date whose every band is exactly 0 is no data in every Sentinel-2 product (L1C and L2A store no data
    # as 0): without a data mask it would be read as a black observation
    empty = np.stack([~np.any(bands[t] != 0, axis=-1) for t in range(T)])  # date by date: no cube-sized temporary
    if empty.any():
        share = float(empty.mean())
        if layers.get("is_data") is None:
            layers["is_data"] = ~empty
            notes.append(f"no data mask: {share:.1%} of the pixel-dates are 0 in every band, taken as no data")
        elif (layers["is_data"] & empty).any():
            n_fixed = float((layers["is_data"] & empty).mean())
            layers["is_data"] = layers["is_data"] & ~empty
            notes.append(f"{n_fixed:.1%} of the pixel-dates are 0 in every band although the data mask says data: "
                         "taken as no data")
    if all(layers.get(k) is None for k in ("cloud_mask", "cloud_prob")) and feature_file(folder, "mask/SCL") is None \
            and (got := frame_feature("mask/IS_VALID")) is not None:
        # eo-learn's IS_VALID (data and not cloud, e.g. from its cloud-masking tasks): the only cloud information here
        ok = _check_mask01(*got, notes)
        layers["cloud_mask"] = ~ok if layers.get("is_data") is None else (layers["is_data"] & ~ok)
        notes.append("mask/IS_VALID read as the clear mask (cloud = not valid where there is data): the patch has no "
                     "CLM, CLP or SCL")
    if (got := frame_feature("mask/SCL")) is not None:
        a, where = got
        if a.dtype.kind not in "iu":
            raise PatchFormatError(f"{where}: dtype {a.dtype}, expected uint8 Sen2Cor classes 0–11")
        if a.size and (a.min() < 0 or a.max() > 11):
            raise PatchFormatError(f"{where}: values {a.min()}–{a.max()}, expected Sen2Cor classes 0–11")
        layers["scl"] = a.astype(np.uint8)

    labels_10m: list[str] = []  # timeless labels given on the 10 m band grid, repeated 4 × 4
    label_twos: np.ndarray | None = None  # class 2 of a 0 / 1 / 2 CULTIVATED, when the patch has its own NOT_DECLARED
    for feature, name in (("mask_timeless/CULTIVATED", "cultivated"), ("mask_timeless/NOT_DECLARED", "not_declared"),
                          ("mask_timeless/ALL_POLYS", "all_polys")):
        f = feature_file(folder, feature)
        if f is None:
            continue
        where = _rel(folder, f)
        a, on_10m = _check_label(read_npy(f), where, bwhere, (H, W), notes)
        if on_10m:
            labels_10m.append(feature.split("/")[-1])
        if name == "all_polys":
            if a.dtype.kind not in "iu":
                raise PatchFormatError(f"{where}: dtype {a.dtype}, expected uint16 land-use codes")
            if a.size and (a.min() < 0 or a.max() > np.iinfo(np.uint16).max):
                raise PatchFormatError(f"{where}: codes {a.min()}–{a.max()} do not fit uint16")
            layers[name] = a.astype(np.uint16)
        elif name == "cultivated" and a.dtype.kind in "iu" and a.size and a.min() >= 0 and a.max() == 2:
            # the challenge's own mapping (cultivated-mapping.json): 0 not cultivated, 1 cultivated, 2 = code 100,
            # cultivated land not declared
            layers[name] = a == 1
            if feature_file(folder, "mask_timeless/NOT_DECLARED") is None:
                layers["not_declared"] = a == 2
                notes.append(f"{where}: classes 0 / 1 / 2 read as not cultivated / cultivated / not declared (the "
                             "challenge's mapping: 2 = land-use code 100), the last as NOT_DECLARED")
            else:
                label_twos = a == 2  # joined with the patch's own NOT_DECLARED once that is read
                notes.append(f"{where}: classes 0 / 1 / 2 read as not cultivated / cultivated / not declared; class 2 "
                             "is joined to the patch's own NOT_DECLARED")
        else:
            layers[name] = _check_mask01(a, where, notes)

    if label_twos is not None and layers.get("not_declared") is not None:
        layers["not_declared"] = layers["not_declared"] | label_twos
    if labels_10m:
        meta = {**meta, "labels_10m": labels_10m}
    elif "labels_10m" in meta and any(layers.get(_LABEL_FEATURES[n]) is None for n in meta["labels_10m"]):
        meta = {k: v for k, v in meta.items() if k != "labels_10m"}  # a record of labels this patch does not have
        notes.append("meta_info labels_10m ignored: it names labels this patch does not have")
    valid = clear_mask((T, H, W), *(layers.get(k) for k in ("is_data", "cloud_mask", "cloud_prob", "scl")))
    bands, offset_record = _harmonise(bands, timestamps, valid, meta, norm, notes)
    if offset_record is not None:
        meta = {**meta, "radiometric_offset": offset_record}
    if bfile.parent.name + "/" + bfile.name.split(".")[0] == "data/BANDS":  # the cube's name does not say the level
        stat_level, stat_why = reflectance_level(bands, valid)
        if level is None or level is ProductLevel.UNKNOWN:
            if stat_level is not ProductLevel.UNKNOWN:
                level = stat_level
                notes.append(f"product level {stat_why} (meta_info does not say)")
            elif level is None:
                level = ProductLevel.L2A
                notes.append(f"product level L2A assumed (the challenge's convention; meta_info does not say): {stat_why}")
        elif stat_level is not ProductLevel.UNKNOWN and stat_level is not level:
            notes.append(f"meta_info says {level.value} but the reflectance looks {stat_level.value}: {stat_why}")
    assert level is not None

    if layers.get("scl") is not None and layers.get("cloud_mask") is None and layers.get("cloud_prob") is None:
        from ..prepare import SCL_NOTE

        notes.append(SCL_NOTE)
    source = Source.SIMULATED if str(meta.get("source", "")).lower() == Source.SIMULATED.value else Source.REAL
    info = PatchInfo(
        name=folder.resolve().name, source=source, product_level=level, norm_factor=norm,
        notes=tuple(dict.fromkeys([*prior_notes, *notes])), meta=to_jsonable(meta),
    )
    for a in (bands, *layers.values()):  # read from disk here, held by nobody else: the Patch takes them without a copy
        a.flags.writeable = False
    patch, sorted_note = Patch(bands=bands, timestamps=timestamps, bbox=bbox, info=info, **layers).in_time_order()
    late: list[str] = [] if sorted_note is None else [sorted_note]
    patch, nonfinite = nonfinite_as_no_data(patch, late)  # NaN marks no data in xarray-built cubes
    patch, merged_note = patch.merged_duplicate_dates()  # two granules of one pass: one date
    if merged_note is not None:
        late.append(merged_note)
    stale_input = None if "input" not in patch.info.meta else _input_record_problem(patch, patch.info.meta["input"])
    if stale_input is not None:
        late.append(f"meta_info input ignored: {stale_input}; the input is prepared afresh")
    if not late:
        return patch
    info = patch.info
    for n in late:
        info = info.with_note(n)
    if nonfinite or stale_input is not None:
        meta = {k: v for k, v in info.meta.items() if stale_input is None or k != "input"}
        info = dataclasses.replace(info, meta={**meta, "non_finite": nonfinite} if nonfinite else meta)
    return patch.replace(info=info)


def read_b10(path: str | Path, patch: Patch | None = None) -> np.ndarray | None:
    """The cirrus band B10 of an EOPatch folder as (T, H, W) float32 reflectance, or None when its band cube has no
    B10 (12 bands, as in the challenge). :func:`load_eopatch` drops B10; this reads it back for the cloud detector
    (:func:`sr_core.clouds.ensure_cloud_masks` ``b10=``).

    Give the ``patch`` :func:`load_eopatch` read from the same folder to get B10 on *its* dates: the reader may have
    sorted them, merged repeated timestamps or removed the processing-baseline offset, and B10 follows (its zeros on a
    merged date are filled from the other entries of that timestamp). Without ``patch``: the file's order, as
    stored."""
    folder = Path(path)
    bfile = feature_file(folder, "data/BANDS") or feature_file(folder, "data/BANDS-S2-L1C")
    if bfile is None:
        raise PatchFormatError(f"{folder}: no band cube (data/BANDS or data/BANDS-S2-L1C) to read B10 from")
    where = _rel(folder, bfile)
    _check_patch_memory(folder, bfile, where, layers=False)
    raw = read_npy(bfile)
    _check_cube_shape(raw, where)
    stated = stated_band_names(_read_meta(folder)[0], raw.shape[-1], where)
    if stated is not None:
        if "B10" not in stated[0]:
            return None
        i = stated[0].index("B10")
    elif raw.shape[-1] != N_BANDS + 1:
        return None
    else:
        i = L1C_B10_INDEX
    b10, _ = _bands_to_reflectance(np.ascontiguousarray(raw[..., i:i + 1]), where, folder, [])
    b10 = b10[..., 0]
    if patch is None:
        return b10
    at = timestamp_groups(_read_timestamps(folder)[0])
    out = np.zeros((patch.n_dates, *b10.shape[1:]), np.float32)
    for t, ts in enumerate(patch.timestamps):
        src = at.get(ts.replace(tzinfo=None))
        if not src:
            raise PatchFormatError(f"{folder}: the patch's date {ts:%Y-%m-%d %H:%M} is not in the folder's timestamps; "
                                   "pass the patch read from this folder")
        out[t] = b10[src[0]]
        for j in src[1:]:
            hole = out[t] == 0
            out[t][hole] = b10[j][hole]
    subtracted, dates, _ = removed_offset(patch)
    remove_offset(out[..., None], dates, subtracted)
    return out


# -- public: write -------------------------------------------------------------------------------------------------
def _write_npy(path: Path, arr: np.ndarray, compress_level: int) -> None:
    if compress_level > 0:
        with open(path.with_name(path.name + ".gz"), "wb") as raw, \
                gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=compress_level, mtime=0) as fh:
            np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)
    else:
        with open(path, "wb") as fh:
            np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")


def _reflectance_to_dn(bands: np.ndarray, norm: float) -> np.ndarray:
    out = np.empty(bands.shape, np.uint16)
    for t in range(bands.shape[0]):
        dn = np.rint(np.nan_to_num(bands[t].astype(np.float64) / norm, nan=0.0))
        np.clip(dn, 0, np.iinfo(np.uint16).max, out=dn)
        out[t] = dn
    return out


def write_eopatch(patch: Patch, path: str | Path, *, overwrite: bool = False, compress_level: int = 1) -> Path:
    """Write ``patch`` as an eo-learn 1.x EOPatch folder (readable by current eo-learn and by :func:`load_eopatch`).

    Bands go to ``data/BANDS`` as uint16 digital numbers (reflectance / 1e-4, rounded, clipped to 0…65535) with
    ``scalar/NORM_FACTORS`` (T, 1) float32 = 1e-4, like the challenge; ``data/CLP`` uint8 (prob × 255),
    ``mask/CLM`` uint8, ``mask/IS_DATA`` bool, ``mask/SCL`` uint8, labels under ``mask_timeless`` ((4H, 4W, 1));
    ``bbox.geojson``, ``timestamps.json`` and ``meta_info/<key>.json`` (the patch's meta plus ``source``,
    ``product_level`` and ``notes``). Arrays are ``.npy.gz`` (``compress_level`` 1–9) or ``.npy`` (0).

    The folder is written under a temporary name beside ``path`` and renamed into place, so readers never see a
    half-written patch. An existing ``path`` is replaced only with ``overwrite=True``.
    """
    if not isinstance(patch, Patch):
        raise PatchValidationError(f"write_eopatch: expected a sr_core.Patch, got {type(patch).__name__}")
    if not 0 <= compress_level <= 9:
        raise PatchValidationError(f"write_eopatch: compress_level {compress_level} outside 0–9")
    target = Path(path)
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise EOPatchExistsError(f"{target}: already exists; choose another folder, or replace it (--overwrite on "
                                     "the command line, overwrite=True in Python)")
        if target.is_symlink() or not target.is_dir() or not (is_eopatch(target) or not any(target.iterdir())):
            raise EOPatchExistsError(
                f"{target}: exists and is not an EOPatch folder; refusing to replace it even with overwrite=True "
                "(choose a new folder)"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    norm = DEFAULT_NORM_FACTOR
    T = patch.n_dates
    try:
        for sub in ("data", "mask", "mask_timeless", "scalar", "meta_info"):
            (tmp / sub).mkdir(parents=True)
        _write_npy(tmp / "data" / "BANDS.npy", _reflectance_to_dn(patch.bands, norm), compress_level)
        _write_npy(tmp / "scalar" / "NORM_FACTORS.npy", np.full((T, 1), norm, np.float32), compress_level)
        if patch.cloud_prob is not None:
            clp = np.clip(np.rint(np.nan_to_num(patch.cloud_prob, nan=0.0) * 255), 0, 255).astype(np.uint8)
            _write_npy(tmp / "data" / "CLP.npy", clp[..., None], compress_level)
        for name, feature, dtype in (("cloud_mask", "CLM", np.uint8), ("is_data", "IS_DATA", bool), ("scl", "SCL", np.uint8)):
            a = getattr(patch, name)
            if a is not None:
                _write_npy(tmp / "mask" / f"{feature}.npy", a.astype(dtype)[..., None], compress_level)
        for name, feature, dtype in (("cultivated", "CULTIVATED", bool), ("not_declared", "NOT_DECLARED", bool),
                                     ("all_polys", "ALL_POLYS", np.uint16)):
            a = getattr(patch, name)
            if a is not None:
                _write_npy(tmp / "mask_timeless" / f"{feature}.npy", a.astype(dtype)[..., None], compress_level)
        _write_json(tmp / "bbox.geojson", patch.bbox.to_geojson())
        _write_json(tmp / "timestamps.json", [t.isoformat() for t in patch.timestamps])
        meta = dict(to_jsonable(dict(patch.info.meta)))
        if "radiometric_offset" in meta:  # the bands are written as corrected: a second read must not subtract again
            meta = {k: v for k, v in meta.items() if str(k).lower() not in _OFFSET_KEYS}
            meta["harmonized"] = True
        meta.update(source=patch.info.source.value, product_level=patch.info.product_level.value,
                    notes=list(patch.info.notes))
        for key, value in meta.items():
            safe = str(key)
            if not safe or safe.startswith(".") or any(c in safe for c in "/\\\0"):
                raise PatchValidationError(f"write_eopatch: meta key {key!r} is not a valid file name")
            _write_json(tmp / "meta_info" / f"{safe}.json", value)
        for sub in ("mask", "mask_timeless", "meta_info"):
            if not any((tmp / sub).iterdir()):
                (tmp / sub).rmdir()
        swap_in_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def iter_feature_files(folder: str | Path) -> Iterator[Path]:
    """Array files (``*.npy``, ``*.npy.gz``) of an EOPatch folder, sorted."""
    folder = Path(folder)
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name.endswith(_ARRAY_SUFFIXES):
            yield f




# -- finding patch folders -----------------------------------------------------------------------------------------------
#: A folder holding one of these (and a data/ folder) is an EOPatch.
_BBOX_FILES = ("bbox.geojson", "bbox.geojson.gz", "bbox.pkl.gz", "bbox.pkl")


def is_eopatch(folder: str | Path) -> bool:
    """A folder with a ``data/`` sub-folder and a bbox file (``bbox.geojson`` or ``bbox.pkl.gz``)."""
    folder = Path(folder)
    return (folder / "data").is_dir() and any((folder / b).is_file() for b in _BBOX_FILES)


def find_eopatches(folder: str | Path, *, max_depth: int = 4) -> list[Path]:
    """EOPatch folders at or under ``folder``, at most ``max_depth`` levels down (sorted; links not followed;
    hidden folders, ``__MACOSX`` and the insides of EOPatch folders are not searched)."""
    folder = Path(folder)
    if is_eopatch(folder):
        return [folder]
    found = []
    base_depth = len(folder.parts)
    for root, dirs, _files in os.walk(folder, followlinks=False):
        keep = []
        for d in sorted(dirs):
            p = Path(root) / d
            if d.startswith(".") or d == "__MACOSX" or p.is_symlink():
                continue
            if is_eopatch(p):
                found.append(p)
            elif len(p.parts) - base_depth < max_depth:
                keep.append(d)
        dirs[:] = keep
    return sorted(found)


__all__ = [
    "EOPatchExistsError", "feature_file", "find_eopatches", "is_eopatch", "iter_feature_files", "load_eopatch",
    "read_b10", "read_bbox", "read_npy", "write_eopatch",
]  # fmt: skip
