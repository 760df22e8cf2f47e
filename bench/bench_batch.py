"""Throughput of batch prediction (sr_core.batch): in-process vs a Dask LocalCluster of 1 and 2 worker processes.

Run: ``.venv/bin/python bench/bench_batch.py [--patches 6] [--size 250] [--model PATH] [--runs none local:1 local:2]``

Simulated patches (``sr_core.simulate``, ``--size`` × ``--size`` 10 m pixels, 19–48 dates as in the benchmark) are
written once under ``$SR_CORE_HOME/bench-batch`` (or ``--data DIR``, a folder of EOPatch folders, e.g. the demo
data) and predicted with the bundled model (or ``--model``) by each scheduler in turn, every run with ``force`` so
every patch is predicted. Workers are started and warmed (imports, model loaded) before the timed run, as they
are after the first minute of a long batch. Printed per run: patches/min over the compute phase (first task →
last result), the cluster start + warm-up, wall time, mean per-patch read / model / write seconds and the load
average, because other jobs sharing the CPU change the figures. ``--json`` prints one JSON document instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_patches(folder: Path, n: int, size: int) -> list[Path]:
    """``n`` simulated test-split patches of ``size`` px (seeds 9001…), reused when already there."""
    from sr_core.io.archive import is_eopatch
    from sr_core.io.eopatch import write_eopatch
    from sr_core.simulate import simulate_patch

    out = []
    for i in range(n):
        path = folder / f"size{size}" / f"eopatch-{i:03d}"
        if not is_eopatch(path):
            write_eopatch(simulate_patch(9001 + i, size=size, split="test"), path, overwrite=True)
        out.append(path)
    return out


def _warm(model: str, device: str) -> str:
    """On a worker (or here): import everything and load the model into the worker's cache."""
    from sr_core.batch import _worker_model

    return str(_worker_model(model, device)[1])


@contextlib.contextmanager
def warm_scheduler(sched: str, model: str, device: str) -> Iterator[tuple[Any, float]]:
    """(what to pass as ``scheduler``, seconds to start it and load the model everywhere): a LocalCluster started
    and warmed here for ``local:N`` (so the timed run measures steady-state throughput, as on a long batch),
    ``None`` warmed for in-process, a connected client for an address."""
    from distributed import Client, LocalCluster

    from sr_core.batch import parse_scheduler

    t = time.perf_counter()
    kind, n = parse_scheduler(sched)
    if kind == "none":
        _warm(model, device)
        yield None, time.perf_counter() - t
        return
    if kind == "local":
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR) as lc, Client(lc) as client:
            client.run(_warm, model, device)
            yield client, time.perf_counter() - t
        return
    with Client(sched) as client:
        client.run(_warm, model, device)
        yield client, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=6)
    ap.add_argument("--size", type=int, default=250, help="patch side in 10 m pixels (the challenge's is 500)")
    ap.add_argument("--data", type=Path, default=None, help="a folder of EOPatch folders to use instead")
    ap.add_argument("--model", type=Path, default=None, help="checkpoint (default: the bundled weights)")
    ap.add_argument("--runs", nargs="+", default=["none", "local:1", "local:2"],
                    help="schedulers to time: none (in-process), local:N, tcp://HOST:PORT")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per task (0: cores / worker processes)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from sr_core.batch import run_batch
    from sr_core.model import default_model_path
    from sr_core.paths import subdir

    if args.data is not None:
        patches = [args.data]
        label = str(args.data)
    else:
        t = time.perf_counter()
        patches = make_patches(subdir("bench-batch"), args.patches, args.size)
        label = f"{args.patches} simulated patches of {args.size} × {args.size} px"
        if not args.json:
            print(f"data: {label} ready in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    model = work / "model.pt"  # a snapshot: a training run may replace the bundled file meanwhile
    shutil.copy(args.model or default_model_path(), model)
    rows = []
    try:
        for sched in args.runs:
            with warm_scheduler(sched, str(model), args.device) as (target, start_s):
                load0 = os.getloadavg()[0]
                s = run_batch(patches, work / f"out-{sched.replace(':', '-').replace('/', '_')}", scheduler=target,
                              device=args.device, model=model, force=True, progress=False, mosaic="vrt", index=True,
                              threads=args.threads)
            done = [r for r in s.results if r.status == "done"]
            n = max(len(done), 1)
            rows.append({
                "scheduler": sched if sched.startswith("local") else s.scheduler, "workers": s.workers,
                "patches": len(s.results), "done": s.done,
                "failed": s.failed, "torch_threads": sorted({r.torch_threads for r in done if r.torch_threads}),
                "patches_per_minute": round(s.patches_per_minute, 2), "compute_s": round(s.compute_seconds, 2),
                "start_s": round(start_s, 2), "wall_s": round(s.wall_seconds, 2),
                "read_s": round(sum(r.read_seconds for r in done) / n, 3),
                "model_s": round(sum(r.predict_seconds for r in done) / n, 3),
                "write_s": round(sum(r.write_seconds for r in done) / n, 3),
                "model_load_s": round(sum(r.model_load_seconds for r in done), 3),
                "mb_read_per_patch": round(sum(r.bytes_read for r in done) / n / 1e6, 2),
                "dates": sorted({r.n_dates for r in done if r.n_dates}),
                "loadavg_before": round(load0, 2), "loadavg_after": round(os.getloadavg()[0], 2),
            })  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = {"data": label, "cores": os.cpu_count(), "device": args.device, "model": str(args.model or default_model_path()),
            "runs": rows}
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"{label}; {os.cpu_count()} cores; device {args.device}; threads {args.threads or 'auto'}; model {info['model']}")
    head = ("scheduler", "workers", "torch_threads", "patches_per_minute", "compute_s", "start_s", "wall_s", "read_s",
            "model_s", "write_s", "mb_read_per_patch", "loadavg_before")
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(str(r[h]) for h in head))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
