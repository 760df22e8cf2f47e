"""Country-scale batch prediction: one Dask task per patch, robust to crashes, with a mosaic and an index.

``run_batch(inputs, out_dir, scheduler="local:2")`` predicts every EOPatch found in ``inputs`` (folders, folders of
them, archives, or a glob) and writes, per patch, the submission GeoTIFF ``<out_dir>/<name>.tif`` (and with
``proba=True`` ``<proba_dir>/<name>_proba.tif``), then a GDAL VRT mosaic over all outputs and an index GeoPackage of
footprints with per-patch status and statistics. The work runs

* in this process (``scheduler=None``), one patch after another;
* on a Dask ``LocalCluster`` of N worker processes (``"local"`` = one per core, ``"local:N"``), one thread each,
  each worker's torch using cores / N threads;
* on an existing Dask scheduler (``"tcp://HOST:PORT"``, or a ``distributed.Client``) whose workers share the
  file system with this machine (same paths), e.g. ``dask scheduler`` + ``dask worker`` (see docs/SCALING.md).

Robustness: every task returns a record instead of raising; a failed patch is resubmitted up to ``retries``
times (input errors, i.e. a corrupt patch, are not retried: they would fail again) and then reported with its error
while the rest complete. A worker that dies mid-task (killed, out of memory) is replaced by its nanny and Dask
reruns the task elsewhere. Outputs appear atomically (temporary file + rename), so a file that exists is whole; a
patch whose valid output exists (opens, one uint8 band, its CRS, bounds and 2.5 m grid) is skipped, ``force=True``
redoes it. The model is loaded once per worker process (a module-level cache keyed by checkpoint and device).

GPU workers: tasks run with ``device="cuda"`` ask Dask for the worker resource ``GPU=1``, so they go only to workers
started with ``--resources GPU=1`` (one per GPU, ``--nthreads 1``); ``device="auto"`` does the same whenever any
worker advertises a GPU, and otherwise lets each worker use the best device it has.

Dask (``dask[distributed]``) is imported only when a scheduler is used.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import sys
import threading
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArchiveError, ConfigError, PatchFormatError, PatchValidationError, SRCoreError
from .geo import BBox

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
#: Output pixel size in metres (the 10 m Sentinel-2 grid, 4× finer).
OUTPUT_RES = 2.5
#: Errors that describe the input itself: retrying would fail the same way, so they are reported at once.
INPUT_ERRORS: tuple[type[BaseException], ...] = (PatchFormatError, PatchValidationError, ArchiveError)
#: Mosaic nodata: pixels no patch covers (the masks themselves are 0/1).
MOSAIC_NODATA = 255
_GLOB_CHARS = set("*?[")


# ---------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class PatchResult:
    """What happened to one patch (one row of the index GeoPackage)."""

    name: str
    source: str  #: the EOPatch folder
    status: str = FAILED  #: "done", "skipped" (valid output already there) or "failed"
    output: str | None = None  #: the submission GeoTIFF
    proba_output: str | None = None
    error: str | None = None  #: "<ExceptionType>: message" of the last attempt, for failed patches
    attempts: int = 1  #: tries by this run (a task rerun by Dask after a worker died counts once)
    seconds: float = 0.0  #: wall time of the task: read + model + write
    read_seconds: float = 0.0
    predict_seconds: float = 0.0
    write_seconds: float = 0.0
    model_load_seconds: float = 0.0  #: > 0 only for the task that loaded the model into its worker
    bytes_read: int = 0  #: on-disk size of the EOPatch folder
    cultivated_share: float | None = None  #: share of 2.5 m pixels predicted cultivated
    n_dates: int | None = None
    shape: tuple[int, int] | None = None  #: output (rows, cols)
    bbox: tuple[float, float, float, float] | None = None
    epsg: int | None = None
    worker: str = "in-process"
    device: str | None = None
    torch_threads: int | None = None
    warnings: list[str] = field(default_factory=list)
    retryable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchSummary:
    """The outcome of :func:`run_batch`. ``patches_per_minute`` counts predicted (not skipped) patches over
    ``compute_seconds`` (first task submitted → last result), ``wall_seconds`` adds cluster start and the
    mosaic / index."""

    out_dir: str
    results: list[PatchResult]
    scheduler: str
    workers: int
    device: str
    model: str
    wall_seconds: float = 0.0
    compute_seconds: float = 0.0
    start_seconds: float = 0.0  #: cluster start / connection
    mosaic: str | None = None
    proba_mosaic: str | None = None
    index: str | None = None
    notes: list[str] = field(default_factory=list)

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def done(self) -> int:
        return self._count(DONE)

    @property
    def skipped(self) -> int:
        return self._count(SKIPPED)

    @property
    def failed(self) -> int:
        return self._count(FAILED)

    @property
    def failures(self) -> list[PatchResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def patches_per_minute(self) -> float:
        return 60.0 * self.done / self.compute_seconds if self.compute_seconds > 0 else 0.0

    @property
    def model_loads(self) -> int:
        return sum(r.model_load_seconds > 0 for r in self.results)

    def to_dict(self, patches: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "out": self.out_dir, "scheduler": self.scheduler, "workers": self.workers, "device": self.device,
            "model": self.model, "patches": len(self.results), "done": self.done, "skipped": self.skipped,
            "failed": self.failed,
            "failures": [{"name": r.name, "error": r.error, "attempts": r.attempts} for r in self.failures],
            "patches_per_minute": round(self.patches_per_minute, 3), "wall_seconds": round(self.wall_seconds, 3),
            "compute_seconds": round(self.compute_seconds, 3), "start_seconds": round(self.start_seconds, 3),
            "model_loads": self.model_loads, "mosaic": self.mosaic, "proba_mosaic": self.proba_mosaic,
            "index": self.index, "notes": list(self.notes),
        }  # fmt: skip
        if patches:
            out["results"] = [r.to_dict() for r in self.results]
        return out


# ---------------------------------------------------------------------------------------------------------------
# Checking an existing output
# ---------------------------------------------------------------------------------------------------------------
def check_output(path: str | Path, bbox: BBox, *, read: bool = True) -> tuple[str | None, float | None]:
    """Is ``path`` a finished output for a patch with ``bbox``? Returns ``(problem, mean)``: ``problem`` None when
    the GeoTIFF opens, has one uint8 band, the bbox's CRS, bounds within 1 % of a pixel and a 2.5 m grid, and (with
    ``read``) its pixels decode; ``mean`` is the band mean (the cultivated share for a 0/1 mask)."""
    import rasterio
    from rasterio.errors import RasterioError

    path = Path(path)
    if not path.is_file():
        return "missing", None
    try:
        with rasterio.open(path) as src:
            if src.count != 1 or src.dtypes[0] != "uint8":
                return f"{src.count} band(s) of {src.dtypes[0] if src.count else '-'}, expected one uint8 band", None
            if src.crs is None or src.crs.to_epsg() != bbox.epsg:
                return f"CRS {src.crs} is not EPSG:{bbox.epsg}", None
            tol = 0.01 * OUTPUT_RES
            want = (bbox.min_x, bbox.min_y, bbox.max_x, bbox.max_y)
            if max(abs(a - b) for a, b in zip(src.bounds, want, strict=True)) > tol:
                return f"bounds {tuple(src.bounds)} differ from the patch bbox {want}", None
            if abs(src.res[0] - OUTPUT_RES) > 1e-6 or abs(src.res[1] - OUTPUT_RES) > 1e-6:
                return f"pixel size {src.res} is not {OUTPUT_RES} m", None
            mean = float(src.read(1).mean()) if read else None
    except (RasterioError, OSError) as exc:
        return f"unreadable ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})", None
    return None, mean


# ---------------------------------------------------------------------------------------------------------------
# The task: runs on a worker (or in this process)
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchJob:
    """What every task needs (small; pickled to the workers with each task)."""

    out_dir: str
    proba_dir: str | None
    model: str  #: checkpoint path, readable on the workers
    device: str = "auto"
    force: bool = False
    tile: int | None = None
    threads: int = 0  #: torch threads per task; 0 = the host's cores / the task slots on that host
    slots_per_host: tuple[tuple[str, int], ...] = ()  #: (host, worker threads on it), for threads=0
    started: float = float("inf")  #: time.time() when the run began: outputs newer than this are its own


_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def _worker_model(path: str, device: str) -> tuple[Any, Any, float]:
    """(network, torch device, seconds spent loading: 0.0 when cached). One load per process and (file, device)."""
    from .inference import get_model, select_device

    dev = select_device(device)
    key = (path, str(dev))
    with _MODELS_LOCK:
        net = _MODELS.get(key)
        if net is not None:
            return net, dev, 0.0
        t0 = time.perf_counter()
        net = get_model(path, dev)
        _MODELS[key] = net
        return net, dev, max(time.perf_counter() - t0, 1e-9)


_PROCESS_READY = False


def _tune_malloc() -> bool:
    """Undo the small glibc trim threshold Dask's nanny gives its workers (``MALLOC_TRIM_THRESHOLD_=65536``): it
    turns off glibc's adaptive mmap threshold, so every array over 128 KiB is mapped and unmapped afresh and the
    model runs ~3× slower. Sets the thresholds glibc would adapt to (mmap 32 MiB, trim 64 MiB). Returns whether
    it changed anything (only on glibc, only when that variable is set)."""
    global _PROCESS_READY
    if _PROCESS_READY:
        return False
    _PROCESS_READY = True
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_") or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, 32 * 1024**2)) and bool(libc.mallopt(m_trim_threshold, 64 * 1024**2))
    except (OSError, AttributeError):  # not glibc
        return False


def _worker_identity() -> tuple[str, str | None]:
    """(worker name, host) of the Dask worker running this task; ("in-process", None) outside Dask."""
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return "in-process", None
    from urllib.parse import urlparse

    who = w.address if str(w.name) == w.address else f"{w.address} ({w.name})"
    return who, urlparse(w.address).hostname


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for f in files:
            with contextlib.suppress(OSError):
                total += Path(root, f).stat().st_size
    return total


def _describe(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def process_patch(folder: str, job: BatchJob) -> PatchResult:
    """Predict one EOPatch folder and write its outputs; never raises for a bad patch (the record says why).

    Skips the patch when its outputs are valid (:func:`check_output`) unless ``job.force``; a valid output written
    after ``job.started`` is this run's own (Dask reran a task whose result was lost with its worker) and is kept as
    done, even under force. The probability map is written before the mask, so a valid mask implies a valid
    probability map.
    """
    import torch

    from .inference import predict
    from .io.eopatch import load_eopatch, read_bbox
    from .io.submission import write_probability, write_submission

    _tune_malloc()
    t0 = time.perf_counter()
    src = Path(folder)
    name = src.resolve().name
    worker, host = _worker_identity()
    rec = PatchResult(name=name, source=str(src), worker=worker)
    out = Path(job.out_dir) / f"{name}.tif"
    proba_out = Path(job.proba_dir) / f"{name}_proba.tif" if job.proba_dir else None
    try:
        bbox = read_bbox(src)
        rec.bbox, rec.epsg = (bbox.min_x, bbox.min_y, bbox.max_x, bbox.max_y), bbox.epsg
        problem, mean = check_output(out, bbox)
        if problem is None and proba_out is not None:
            problem = check_output(proba_out, bbox, read=False)[0]
        # an output written after this run began comes from this run: Dask reruns a finished task whose result
        # was lost with its worker; keep that output even under force
        this_run = problem is None and out.stat().st_mtime > job.started
        if problem is None and (this_run or not job.force):
            rec.status, rec.output, rec.cultivated_share = (DONE if this_run else SKIPPED), str(out), mean
            rec.proba_output = str(proba_out) if proba_out else None
            if this_run:
                rec.warnings.append("written earlier in this run by a worker that was lost; kept, not predicted again")
            rec.seconds = time.perf_counter() - t0
            return rec
        rec.bytes_read = _folder_bytes(src)
        threads = job.threads
        if threads <= 0:
            slots = dict(job.slots_per_host).get(host or "", 1)
            threads = max(1, _cores() // max(slots, 1))
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        rec.torch_threads = threads
        net, dev, load_s = _worker_model(job.model, job.device)
        rec.model_load_seconds, rec.device = load_s, str(dev)
        t1 = time.perf_counter()
        patch = load_eopatch(src)
        t2 = time.perf_counter()
        pred = predict(patch, device=str(dev), model=net, tile=job.tile)
        t3 = time.perf_counter()
        if proba_out is not None:
            write_probability(pred, patch, proba_out.parent, name=name)
        write_submission(pred, patch, out.parent, name=name)
        t4 = time.perf_counter()
        rec.read_seconds, rec.predict_seconds, rec.write_seconds = t2 - t1, t3 - t2, t4 - t3
        rec.status, rec.output = DONE, str(out)
        rec.proba_output = str(proba_out) if proba_out else None
        rec.cultivated_share = float(pred.binary.mean())
        rec.n_dates, rec.shape, rec.warnings = patch.n_dates, tuple(pred.proba.shape), list(pred.warnings)
    except Exception as exc:  # a bad patch must not stop the batch: report it
        rec.status, rec.error = FAILED, _describe(exc)
        rec.retryable = not isinstance(exc, INPUT_ERRORS)
        if not isinstance(exc, SRCoreError):
            rec.warnings.append("".join(traceback.format_exception(exc)[-3:])[-1500:])
    rec.seconds = time.perf_counter() - t0
    return rec


# ---------------------------------------------------------------------------------------------------------------
# Mosaic (VRT) and index (GeoPackage)
# ---------------------------------------------------------------------------------------------------------------
def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.part{path.suffix}")  # GDAL drivers want the suffix


def write_vrt(sources: Sequence[str | Path], path: str | Path, *, nodata: float | None = MOSAIC_NODATA) -> Path:
    """Write a GDAL VRT mosaic over single-band GeoTIFFs that share a CRS and pixel size (opens in QGIS as one
    layer). Source paths are stored relative to the VRT; the extent is the union of the sources; pixels no
    source covers read as ``nodata`` (None: 0 and no nodata declared). A source's band scale is carried over.
    Raises :class:`ConfigError` for an empty list or mixed CRS / pixel size / data type."""
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
    width, height = round((x1 - x0) / rx), round((y1 - y0) / ry)
    gdal_type = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32", "int32": "Int32",
                 "float32": "Float32", "float64": "Float64"}[dtype0]  # fmt: skip

    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    ET.SubElement(root, "SRS").text = crs0.to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in (x0, rx, 0.0, y1, 0.0, -ry))
    band = ET.SubElement(root, "VRTRasterBand", dataType=gdal_type, band="1")
    if nodata is not None:
        ET.SubElement(band, "NoDataValue").text = repr(float(nodata))
    ET.SubElement(band, "ColorInterp").text = "Gray"
    if infos[0][8] not in (None, 1.0):
        ET.SubElement(band, "Offset").text = "0"
        ET.SubElement(band, "Scale").text = repr(float(infos[0][8]))

    def num(v: float) -> str:
        r = round(v)
        return str(r) if abs(v - r) < 1e-6 else f"{v:.6f}"

    for p, _crs, _res, _dt, w, h, b, (bh, bw), _scale in infos:
        s = ET.SubElement(band, "SimpleSource")
        rel = os.path.relpath(p.resolve(), path.resolve().parent)
        ET.SubElement(s, "SourceFilename", relativeToVRT="1").text = Path(rel).as_posix()
        ET.SubElement(s, "SourceBand").text = "1"
        ET.SubElement(s, "SourceProperties", RasterXSize=str(w), RasterYSize=str(h), DataType=gdal_type,
                      BlockXSize=str(bw), BlockYSize=str(bh))
        ET.SubElement(s, "SrcRect", xOff="0", yOff="0", xSize=str(w), ySize=str(h))
        ET.SubElement(s, "DstRect", xOff=num((b.left - x0) / rx), yOff=num((y1 - b.top) / ry),
                      xSize=num((b.right - b.left) / rx), ySize=num((b.top - b.bottom) / ry))
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
    """Write the index GeoPackage: one footprint per patch (its CRS when all patches share one, else WGS84) with
    name, status, error, attempts, seconds, cultivated share, output paths, worker and device. Patches whose bbox
    could not be read get an empty geometry. Written to a temporary file and renamed (atomic)."""
    import geopandas as gpd
    from shapely.geometry import Polygon, box

    from .catalog import lonlat_ring

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
            geoms.append(Polygon(lonlat_ring(r.bbox, r.epsg)))
    rows = [{
        "name": r.name, "status": r.status, "error": r.error or "", "attempts": r.attempts,
        "seconds": round(r.seconds, 4), "predict_seconds": round(r.predict_seconds, 4),
        "cultivated_share": r.cultivated_share, "n_dates": r.n_dates, "bytes_read": r.bytes_read,
        "output": r.output or "", "proba_output": r.proba_output or "", "source": r.source,
        "worker": r.worker, "device": r.device or "", "warnings": " | ".join(r.warnings)[:2000],
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


# ---------------------------------------------------------------------------------------------------------------
# Inputs, model, scheduler
# ---------------------------------------------------------------------------------------------------------------
def resolve_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Input paths from a glob pattern, one path, or a list of them (each may be a patch, a folder or an archive)."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    out: list[Path] = []
    for item in items:
        s = str(item)
        if _GLOB_CHARS & set(s) and not Path(s).exists():
            hits = sorted(glob.glob(s, recursive=True))  # noqa: PTH207 - absolute patterns too
            if not hits:
                raise PatchFormatError(f"{s}: the pattern matches nothing; give EOPatch folders, folders of them or a glob")
            out += [Path(h) for h in hits]
        else:
            out.append(Path(s))
    if not out:
        raise PatchFormatError("no inputs; give EOPatch folders, folders of them, archives or a glob")
    return out


def _expand(paths: list[Path], workdir: Path) -> list[Path]:
    """EOPatch folders in ``paths``; a glob's hits that are not patches (e.g. a README beside them) are ignored."""
    from .io.archive import is_eopatch
    from .io.submission import collect_eopatches

    keep = [p for p in paths if p.is_dir() or p.suffix.lower() in (".zip", ".gz", ".tgz", ".tar") or is_eopatch(p)]
    return collect_eopatches(keep or paths, workdir)


def _resolve_model(model: Any) -> str:
    from .model import default_model_path
    from .model.checkpoint import read_checkpoint

    if model is not None and not isinstance(model, (str, Path)):
        raise ConfigError(
            f"model={type(model).__name__}: batch workers load the model themselves; save it with "
            "sr_core.model.checkpoint.save_checkpoint and pass the checkpoint path"
        )
    path = Path(model) if model is not None else default_model_path()
    read_checkpoint(path)  # fail here (ModelError with the fix) rather than once per patch on the workers
    return str(path.resolve())


def parse_scheduler(scheduler: Any) -> tuple[str, int | None]:
    """``(kind, workers)``: ("none", None), ("local", N) or ("address", None). Raises ConfigError for others."""
    if scheduler is None:
        return "none", None
    if not isinstance(scheduler, str):
        return "client", None
    s = scheduler.strip()
    if s.lower() in ("", "none", "in-process"):
        return "none", None
    if s.lower() == "local":
        return "local", _cores()
    if s.lower().startswith("local:"):
        try:
            n = int(s.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"--scheduler {s!r}: give local:N with N ≥ 1 worker processes (e.g. local:2)")
        return "local", n
    if "://" in s:
        return "address", None
    raise ConfigError(
        f"--scheduler {s!r}: use local (one worker per core), local:N, or the address of a running Dask scheduler "
        "such as tcp://127.0.0.1:8786"
    )


def _cuda_here() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        return False


@contextlib.contextmanager
def _connect(scheduler: Any, device: str) -> Iterator[tuple[Any, str]]:
    """A ``distributed.Client`` (and the cluster it owns, closed on exit) plus a label for reports."""
    kind, n = parse_scheduler(scheduler)
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigError(
            f"--scheduler needs Dask distributed ({exc}); install it with pip install 'dask[distributed]' "
            "or run without --scheduler (in-process)"
        ) from None
    if kind == "client":
        yield scheduler, str(getattr(scheduler.scheduler, "address", "client"))
        return
    if kind == "local":
        # the nannies write Dask's worker environment (OMP_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_, ...) into this
        # process's os.environ before spawning; put ours back afterwards so later subprocesses are unaffected
        saved_env = dict(os.environ)
        gpu = device in ("auto", "cuda") and _cuda_here()
        cluster = client = None
        try:
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR, resources={"GPU": 1} if gpu else None)
            client = Client(cluster)
            yield client, f"local:{n}"
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
            os.environ.clear()
            os.environ.update(saved_env)
        return
    try:
        client = Client(scheduler, timeout="30s")
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with `dask scheduler` and workers "
            "with `dask worker ADDRESS`, or use --scheduler local:N"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise ConfigError(
                f"the Dask scheduler at {scheduler} has no workers after 60 s; start some with "
                f"`dask worker {scheduler} --nthreads 1`"
            ) from None
        yield client, str(scheduler)
    finally:
        client.close()


def _cluster_layout(client: Any) -> tuple[int, tuple[tuple[str, int], ...], bool]:
    """(number of workers, task slots per host, whether any worker advertises a GPU resource)."""
    from urllib.parse import urlparse

    workers = client.scheduler_info(n_workers=-1)["workers"]
    slots: dict[str, int] = {}
    gpu = False
    for addr, info in workers.items():
        host = urlparse(addr).hostname or ""
        slots[host] = slots.get(host, 0) + int(info.get("nthreads", 1))
        gpu = gpu or float((info.get("resources") or {}).get("GPU", 0)) > 0
    return len(workers), tuple(sorted(slots.items())), gpu


# ---------------------------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------------------------
def default_mosaic_path(out_dir: str | Path, proba: bool = False) -> Path:
    """``<out>_mosaic.vrt`` beside the output folder (the submission folder itself keeps only the masks)."""
    out = Path(out_dir)
    return out.with_name(f"{out.name}_{'proba_' if proba else ''}mosaic.vrt")


def default_index_path(out_dir: str | Path) -> Path:
    """``<out>_index.gpkg`` beside the output folder."""
    out = Path(out_dir)
    return out.with_name(f"{out.name}_index.gpkg")


def run_batch(
    inputs: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    scheduler: Any = "local:2",
    device: str = "auto",
    model: str | Path | None = None,
    force: bool = False,
    retries: int = 1,
    progress: bool = True,
    proba: bool = False,
    proba_dir: str | Path | None = None,
    tile: int | None = None,
    threads: int = 0,
    mosaic: str | None = "vrt",
    index: str | Path | bool | None = True,
) -> BatchSummary:
    """Predict every EOPatch in ``inputs`` and write ``<out_dir>/<name>.tif`` per patch, a VRT mosaic and an index.

    ``inputs``: EOPatch folders, folders of them, ``.zip`` / ``.tar.gz`` archives, or a glob (``"data/*/eopatch-*"``).
    ``scheduler``: None (in this process), ``"local"`` / ``"local:N"`` (a LocalCluster of N processes, 1 thread
    each), ``"tcp://HOST:PORT"`` (a running Dask scheduler whose workers see the same paths) or a
    ``distributed.Client``. ``device``: auto / cpu / cuda / mps, resolved on each worker; ``cuda`` tasks require the
    Dask resource ``GPU``. ``model``: checkpoint path (default: the bundled weights), read by every worker.
    ``force``: redo patches whose valid outputs exist (otherwise skipped). ``retries``: extra attempts for a failed
    patch (input errors are not retried). ``proba``: also write ``<proba_dir>/<name>_proba.tif`` (default folder
    ``<out>-proba``). ``threads``: torch threads per task (0: cores / task slots of the host). ``mosaic``: "vrt"
    writes ``<out>_mosaic.vrt`` (and ``<out>_proba_mosaic.vrt``) beside ``out_dir``, None skips it. ``index``: True
    writes ``<out>_index.gpkg``, a path writes there, False / None skips it.
    Returns a :class:`BatchSummary`; raises :class:`SRCoreError` only for unusable arguments (no inputs, bad
    checkpoint, unreachable scheduler), never for a bad patch.
    """
    from .io.submission import scratch_dir

    t_start = time.perf_counter()
    if retries < 0:
        raise ConfigError(f"retries={retries}: give 0 or more extra attempts")
    if str(device).split(":")[0].lower() not in ("auto", "cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {device!r}; choose auto, cpu, cuda or mps")
    if mosaic not in (None, "none", "vrt"):
        raise ConfigError(f"mosaic={mosaic!r}: choose 'vrt' or None")
    kind, _ = parse_scheduler(scheduler)
    if kind == "none":
        from .inference import select_device

        select_device(device)  # an absent explicit device fails now
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pdir = (Path(proba_dir) if proba_dir else out.with_name(out.name + "-proba")) if proba else None
    model_path = _resolve_model(model)
    paths = resolve_inputs(inputs)

    with scratch_dir("batch") as work:
        folders = _expand(paths, work)
        job = BatchJob(out_dir=str(out.resolve()), proba_dir=str(pdir.resolve()) if pdir else None, model=model_path,
                       device=str(device), force=force, tile=tile, threads=int(threads), started=time.time())
        if kind == "none":
            t_ready = time.perf_counter()
            results = _run_in_process(folders, job, retries, progress)
            label, n_workers = "in-process", 1
        else:
            with _connect(scheduler, str(device)) as (client, label):
                n_workers, slots, any_gpu = _cluster_layout(client)
                gpu = str(device).startswith("cuda") or (device == "auto" and any_gpu)
                if gpu and not any_gpu:
                    raise ConfigError(
                        f"device={device!r} but no worker of {label} advertises a GPU; start GPU workers with "
                        "`dask worker ADDRESS --nthreads 1 --resources GPU=1` (one per GPU) or use --device auto"
                    )
                job = BatchJob(**{**asdict(job), "slots_per_host": slots})
                t_ready = time.perf_counter()
                results = _run_distributed(client, folders, job, retries, progress, {"GPU": 1} if gpu else None, label)
    t_done = time.perf_counter()
    results.sort(key=lambda r: r.name)
    summary = BatchSummary(out_dir=str(out), results=results, scheduler=label, workers=n_workers, device=str(device),
                           model=model_path, compute_seconds=t_done - t_ready, start_seconds=t_ready - t_start)
    _write_products(summary, out, pdir, mosaic, index)
    summary.wall_seconds = time.perf_counter() - t_start
    return summary


def _write_products(summary: BatchSummary, out: Path, pdir: Path | None, mosaic: str | None, index: Any) -> None:
    good = [r for r in summary.results if r.status in (DONE, SKIPPED) and r.output]
    if mosaic == "vrt":
        if good:
            try:
                summary.mosaic = str(write_vrt([r.output for r in good], default_mosaic_path(out)))
                probas = [r.proba_output for r in good if r.proba_output]
                if pdir is not None and probas:
                    summary.proba_mosaic = str(write_vrt(probas, default_mosaic_path(out, proba=True), nodata=None))
            except ConfigError as exc:
                summary.notes.append(f"no mosaic: {exc}")
        else:
            summary.notes.append("no mosaic: no patch has an output")
    if index not in (None, False, "none"):
        target = default_index_path(out) if index is True else Path(index)
        if summary.results:
            summary.index = str(write_index(summary.results, target))


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="patch", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _run_in_process(folders: list[Path], job: BatchJob, retries: int, progress: bool) -> list[PatchResult]:
    results = []
    with _bar(len(folders), "predict (in-process)", progress) as bar:
        for folder in folders:
            attempt = 1
            while True:
                rec = process_patch(str(folder), job)
                if rec.status != FAILED or not rec.retryable or attempt > retries:
                    break
                attempt += 1
            rec.attempts = attempt
            results.append(rec)
            bar.update(1)
            bar.set_postfix(failed=sum(r.status == FAILED for r in results), refresh=False)
    return results


def _lost_record(folder: Path, exc: BaseException) -> PatchResult:
    rec = PatchResult(name=folder.resolve().name, source=str(folder), error=_describe(exc))
    rec.warnings.append("the task did not return (its worker died repeatedly, or the task could not run)")
    return rec


def _run_distributed(client: Any, folders: list[Path], job: BatchJob, retries: int, progress: bool,
                     resources: dict[str, int] | None, label: str) -> list[PatchResult]:
    from distributed import as_completed

    meta: dict[str, tuple[Path, int]] = {}
    run_id = uuid.uuid4().hex[:8]

    def submit(folder: Path, attempt: int) -> Any:
        key = f"sr-predict-{folder.resolve().name}-{run_id}-{attempt}"
        fut = client.submit(process_patch, str(folder), job, key=key, pure=False, resources=resources)
        meta[fut.key] = (folder, attempt)
        return fut

    results: list[PatchResult] = []
    ac = as_completed([submit(f, 1) for f in folders])
    failed = 0
    try:
        with _bar(len(folders), f"predict ({label})", progress) as bar:
            for fut in ac:
                folder, attempt = meta.pop(fut.key)
                try:
                    rec = fut.result()
                except Exception as exc:  # KilledWorker, or the task could not be deserialised
                    rec = _lost_record(folder, exc)
                fut.release()
                if rec.status == FAILED and rec.retryable and attempt <= retries:
                    ac.add(submit(folder, attempt + 1))
                    continue
                rec.attempts = attempt
                results.append(rec)
                failed += rec.status == FAILED
                bar.update(1)
                bar.set_postfix(failed=failed, refresh=False)
    except BaseException:
        client.cancel(list(ac.futures))
        raise
    return results


# ---------------------------------------------------------------------------------------------------------------
# CLI glue (sr_core/cli/predict.py calls these)
# ---------------------------------------------------------------------------------------------------------------
def add_batch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the batch options to the ``predict`` parser: --scheduler, --force, --retries, --mosaic, --index."""
    g = parser.add_argument_group("batch (many patches, Dask distributed)")
    g.add_argument("--scheduler", default=None, metavar="local[:N]|tcp://HOST:PORT",
                   help="run one task per patch on a Dask LocalCluster of N worker processes (local = one per core) "
                        "or on a running Dask scheduler; default: in this process")
    g.add_argument("--force", action="store_true", help="redo patches whose valid output already exists (default: skip)")
    g.add_argument("--retries", type=int, default=1, help="extra attempts for a failed patch (default 1)")
    g.add_argument("--mosaic", choices=("vrt", "none"), default="vrt",
                   help="write <out>_mosaic.vrt over all outputs beside --out (default vrt)")
    g.add_argument("--index", default=None, metavar="PATH.gpkg",
                   help="index GeoPackage of footprints with per-patch status (default <out>_index.gpkg; 'none': skip)")
    return parser


def run_batch_from_args(args: argparse.Namespace) -> int:
    """Run :func:`run_batch` from parsed ``predict`` arguments; print a summary (one JSON line with ``--json``).
    Returns 0 when every patch has an output, 1 when some failed."""
    from .cli import print_json

    if getattr(args, "uncertainty", False):
        raise ConfigError("--uncertainty is not supported by batch prediction yet; drop it, or predict without --scheduler")
    inputs = getattr(args, "paths", None) or getattr(args, "inputs", None)
    quiet, as_json = bool(getattr(args, "quiet", False)), bool(getattr(args, "json", False))
    index_arg = getattr(args, "index", None)
    proba = bool(getattr(args, "proba", False))
    summary = run_batch(
        inputs, args.out, scheduler=getattr(args, "scheduler", None), device=getattr(args, "device", "auto"),
        model=getattr(args, "model", None), force=bool(getattr(args, "force", False)),
        retries=int(getattr(args, "retries", 1)), progress=not quiet and not as_json, proba=proba,
        proba_dir=getattr(args, "proba_dir", None), tile=getattr(args, "tile", None),
        threads=int(getattr(args, "threads", 0) or 0),
        mosaic=None if getattr(args, "mosaic", "vrt") == "none" else "vrt",
        index=True if index_arg is None else (None if str(index_arg).lower() == "none" else index_arg),
    )  # fmt: skip
    if as_json:
        print_json(summary.to_dict())
    else:
        for r in summary.failures:
            print(f"failed: {r.name} after {r.attempts} attempt(s): {r.error}", file=sys.stderr)
        if not quiet:
            for r in summary.results:
                for w in r.warnings if r.status != FAILED else []:
                    print(f"warning: {r.name}: {w}", file=sys.stderr)
        print(f"{summary.done} predicted, {summary.skipped} skipped (already done), {summary.failed} failed on "
              f"{summary.scheduler} ({summary.workers} worker(s)); {summary.patches_per_minute:.1f} patches/min, "
              f"{summary.wall_seconds:.1f} s wall")
        for what, p in (("mosaic", summary.mosaic), ("probability mosaic", summary.proba_mosaic),
                        ("index", summary.index)):
            if p:
                print(f"{what}: {p}")
        for n in summary.notes:
            print(f"note: {n}")
    return 0 if summary.ok else 1


__all__ = [
    "DONE", "FAILED", "INPUT_ERRORS", "MOSAIC_NODATA", "OUTPUT_RES", "SKIPPED", "BatchJob", "BatchSummary",
    "PatchResult", "add_batch_arguments", "check_output", "default_index_path", "default_mosaic_path",
    "parse_scheduler", "process_patch", "resolve_inputs", "run_batch", "run_batch_from_args", "write_index",
    "write_vrt",
]  # fmt: skip
