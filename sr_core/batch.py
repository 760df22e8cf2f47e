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

import contextlib
import logging
import os
import sys
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, SRCoreError
from .io.geotiff import OUTPUT_RES, check_output
from .io.inputs import expand_inputs, resolve_inputs
from .paths import scratch_dir
from .pipeline.cluster import cluster_layout, connect, cores, parse_scheduler
from .pipeline.mosaic import MOSAIC_NODATA, default_index_path, default_mosaic_path, write_index, write_vrt
from .pipeline.one import predict_one
from .pipeline.results import DONE, FAILED, INPUT_ERRORS, SKIPPED, BatchSummary, PatchResult

log = logging.getLogger(__name__)


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
    uncertainty_dir: str | None = None  #: predict with the 8-fold ensemble, write ``<name>_uncertainty.tif`` there


def _worker_model(path: str, device: str) -> tuple[Any, Any, float]:
    """(network, torch device, seconds spent loading: 0.0 when cached), from the process's one model cache
    (:mod:`sr_core.model.cache`: a checkpoint replaced on disk is loaded afresh)."""
    from .inference import load_cached, select_device

    dev = select_device(device)
    net, seconds = load_cached(path, dev)
    return net, dev, seconds


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


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for f in files:
            with contextlib.suppress(OSError):
                total += Path(root, f).stat().st_size
    return total


def _describe(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())[:500]  # every line: Dask's hints follow its first
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def process_patch(folder: str, job: BatchJob) -> PatchResult:
    """Predict one EOPatch folder with the model and write its outputs; never raises for a bad patch (the record
    says why).

    The per-patch step itself (file names, skip-if-done, predict, atomic writes) is
    :func:`sr_core.pipeline.one.predict_one`, the same as :func:`sr_core.pipeline.write_predictions`'s: the patch is
    skipped when its outputs are valid (:func:`check_output`) unless ``job.force``; a valid output written after
    ``job.started`` is this run's own (Dask reran a task whose result was lost with its worker) and is kept as done,
    even under force. The probability and uncertainty maps are written before the mask
    (:func:`~sr_core.io.geotiff.write_outputs`), so a valid mask implies valid companions. This function adds the
    record, the timing, the torch threads and the worker's model cache.
    """
    import torch

    from .inference import predict
    from .io.eopatch import read_bbox

    _tune_malloc()
    t0 = time.perf_counter()
    src = Path(folder)
    name = src.resolve().name
    worker, host = _worker_identity()
    rec = PatchResult(name=name, source=str(src), worker=worker)
    model: dict[str, Any] = {}

    def prepare() -> None:  # only for a patch to predict: threads and the model, before the patch is read
        rec.bytes_read = _folder_bytes(src)
        threads = job.threads
        if threads <= 0:
            slots = dict(job.slots_per_host).get(host or "", 1)
            threads = max(1, cores() // max(slots, 1))
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        rec.torch_threads = threads
        model["net"], model["dev"], rec.model_load_seconds = _worker_model(job.model, job.device)
        rec.device = str(model["dev"])

    def run_model(patch: Any) -> Any:
        return predict(patch, device=str(model["dev"]), model=model["net"], tile=job.tile,
                       uncertainty=job.uncertainty_dir is not None)

    try:
        bbox = read_bbox(src)
        rec.bbox, rec.epsg = (bbox.min_x, bbox.min_y, bbox.max_x, bbox.max_y), bbox.epsg
        oc = predict_one(src, run_model, job.out_dir, name=name, proba_dir=job.proba_dir,
                         uncertainty_dir=job.uncertainty_dir, force=job.force, started=job.started, bbox=bbox,
                         prepare=prepare)
        rec.output = str(oc.paths["submission"])
        rec.proba_output = str(oc.paths["proba"]) if "proba" in oc.paths else None
        rec.uncertainty_output = str(oc.paths["uncertainty"]) if "uncertainty" in oc.paths else None
        rec.cultivated_share = oc.cultivated_share
        if oc.status == SKIPPED:
            rec.status = DONE if oc.this_run else SKIPPED
            if oc.this_run:
                rec.warnings.append("written earlier in this run by a worker that was lost; kept, not predicted again")
        else:
            pred = oc.prediction
            rec.status, rec.read_seconds = DONE, oc.read_seconds
            rec.predict_seconds, rec.write_seconds = oc.predict_seconds, oc.write_seconds
            rec.n_dates, rec.shape, rec.warnings = oc.patch.n_dates, tuple(pred.proba.shape), list(pred.warnings)
    except Exception as exc:  # a bad patch must not stop the batch: report it
        rec.status, rec.error = FAILED, _describe(exc)
        rec.retryable = not isinstance(exc, INPUT_ERRORS)
        if isinstance(exc, SRCoreError):
            log.warning("%s: failed: %s", name, rec.error)
        else:
            log.error("%s: failed with an unexpected error", name, exc_info=exc)
            rec.warnings.append("".join(traceback.format_exception(exc)[-3:])[-1500:])
    rec.seconds = time.perf_counter() - t0
    return rec


# ---------------------------------------------------------------------------------------------------------------
# The model, the batch
# ---------------------------------------------------------------------------------------------------------------
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
    uncertainty: bool = False,
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
    writes ``<out>_index.gpkg``, a path writes there, False / None skips it. ``uncertainty``: predict with the
    8-fold flip/rotation ensemble and also write ``<proba_dir>/<name>_uncertainty.tif``.
    Returns a :class:`BatchSummary`; raises :class:`SRCoreError` only for unusable arguments (no inputs, bad
    checkpoint, unreachable scheduler), never for a bad patch.
    """
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
    extra = Path(proba_dir) if proba_dir else out.resolve().with_name(out.resolve().name + "-proba")
    pdir = extra if proba else None
    model_path = _resolve_model(model)
    paths = resolve_inputs(inputs)

    with scratch_dir("batch") as work:
        folders = expand_inputs(paths, work)
        job = BatchJob(out_dir=str(out.resolve()), proba_dir=str(pdir.resolve()) if pdir else None, model=model_path,
                       uncertainty_dir=str(extra.resolve()) if uncertainty else None,
                       device=str(device), force=force, tile=tile, threads=int(threads), started=time.time())
        if kind == "none":
            t_ready = time.perf_counter()
            results = _run_in_process(folders, job, retries, progress)
            label, n_workers = "in-process", 1
        else:
            with connect(scheduler, str(device)) as (client, label):
                n_workers, slots, any_gpu = cluster_layout(client)
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
                    summary.proba_mosaic = str(write_vrt(probas, default_mosaic_path(out, proba=True), nodata=None,
                                                         mask=True))
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
            attempt, earlier = 1, []
            while True:
                rec = process_patch(str(folder), job)
                if rec.status != FAILED or not rec.retryable or attempt > retries:
                    break
                earlier.append(f"attempt {attempt} failed: {rec.error}")
                attempt += 1
            rec.attempts = attempt
            rec.warnings[:0] = earlier
            results.append(rec)
            bar.update(1)
            bar.set_postfix(failed=sum(r.status == FAILED for r in results), refresh=False)
    return results


#: ``PatchResult.worker`` of a task whose result never came back (no worker can be named for it).
LOST_WORKER = "unknown: the task did not return"


def _lost_record(folder: Path, exc: BaseException) -> PatchResult:
    rec = PatchResult(name=folder.resolve().name, source=str(folder), error=_describe(exc), worker=LOST_WORKER)
    rec.warnings.append("the task did not return (its worker died repeatedly, the connection to it was lost, "
                        "or the task could not run)")
    return rec


def _run_distributed(client: Any, folders: list[Path], job: BatchJob, retries: int, progress: bool,
                     resources: dict[str, int] | None, label: str) -> list[PatchResult]:
    from distributed import as_completed

    meta: dict[str, tuple[Path, int]] = {}
    earlier: dict[Path, list[str]] = {}  # what went wrong in a patch's earlier attempts, for its final record
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
                    earlier.setdefault(folder, []).append(f"attempt {attempt} failed on {rec.worker}: {rec.error}")
                    ac.add(submit(folder, attempt + 1))
                    continue
                rec.attempts = attempt
                rec.warnings[:0] = earlier.pop(folder, [])
                results.append(rec)
                failed += rec.status == FAILED
                bar.update(1)
                bar.set_postfix(failed=failed, refresh=False)
    except BaseException:
        client.cancel(list(ac.futures))
        raise
    return results


__all__ = [
    "DONE", "FAILED", "INPUT_ERRORS", "MOSAIC_NODATA", "OUTPUT_RES", "SKIPPED", "BatchJob", "BatchSummary",
    "PatchResult", "check_output", "default_index_path", "default_mosaic_path", "parse_scheduler", "process_patch",
    "resolve_inputs", "run_batch", "write_index", "write_vrt",
]  # fmt: skip
