"""The GPU path in one call: time per patch, peak GPU memory and agreement with the CPU's float32 output.

Run: ``bash bench/gpu_check.sh`` (or ``python bench/gpu_check.py [--size 500] [--dates 38] [--repeats 3]
[--json PATH]``) on a machine with a CUDA GPU. It simulates one test patch (``--size`` × ``--size`` 10 m pixels,
``--dates`` dates, seed ``--seed``), predicts it with the bundled model once on the CPU in float32 (the reference,
the CPU's own chunked path) and then on the GPU under float16 (the default), bfloat16 and float32 autocast, and
prints per precision:

- seconds per patch, end to end (``sr_core.predict``: input preparation, copies, network, blending; median of
  ``--repeats`` after one warm-up run) and for the network alone (CUDA-synchronised);
- peak GPU memory of one prediction (``torch.cuda.max_memory_allocated`` above what was allocated before) and the
  pixels per date-axis chunk the free-memory bound chose;
- agreement with the CPU float32 reference: largest and mean absolute probability difference, share of 2.5 m
  pixels whose binary call agrees.

Without a GPU it says so and exits with status 2 (nothing measured). ``--device cpu`` runs the same steps on the
CPU (the reduced-precision, single-chunk path: a dry run of this script, and the CPU stand-in of the GPU path).

``--cpu-memory`` measures instead the CPU stand-in of the GPU memory figure in docs/SCALING.md: the peak resident
memory added by one forward pass of the bundled network over a whole ``--size`` patch of ``--dates`` dates in a
single date-axis chunk (the GPU's path), float32 and bfloat16 autocast, above the input tensors already in memory
(Linux: the peak is reset through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EXIT_NO_GPU = 2
PRECISIONS = ("float16", "bfloat16", "float32")


def make_patch(size: int, dates: int, seed: int) -> Any:
    """A simulated test patch with ``dates`` dates spread evenly over its season (all of them when it has fewer)."""
    from sr_core.simulate import simulate_patch

    patch = simulate_patch(seed, size=size, split="test")
    if patch.n_dates > dates:
        patch = patch.select_dates(np.unique(np.linspace(0, patch.n_dates - 1, dates).round().astype(int)))
    return patch


def agreement(pred: Any, ref: Any) -> dict[str, float]:
    """Probability differences and binary agreement of ``pred`` against ``ref`` (same threshold)."""
    d = np.abs(pred.proba.astype(np.float64) - ref.proba)
    return {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
            "binary_agreement": float((pred.binary == ref.binary).mean())}


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_start(device: Any) -> int:
    """Reset the peak-memory counter; returns the bytes in use now."""
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return int(torch.cuda.memory_allocated(device))
    _reset_rss_peak()
    return _rss_kb("VmRSS") * 1024


def _peak_bytes(device: Any, start: int) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)) - start
    return _rss_kb("VmHWM") * 1024 - start


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _reset_rss_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _network_seconds(net: Any, patch: Any, device: Any, precision: str, repeats: int, chunk: int | None) -> float:
    """Median seconds of the network alone over the whole prepared patch (inputs already on the device)."""
    import torch

    from sr_core.features import patch_arrays
    from sr_core.model.precision import resolve_precision
    from sr_core.prepare import prepare_input

    arr = patch_arrays(prepare_input(patch))
    b, v, d = (torch.from_numpy(np.array(a))[None].to(device) for a in (arr.bands, arr.valid, arr.doy))
    c = None if arr.cloud_prob is None else torch.from_numpy(np.array(arr.cloud_prob))[None].to(device)
    prec = resolve_precision(device, precision)
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first run warms up
            _sync(device)
            t0 = time.perf_counter()
            with prec.autocast():
                net(b, v, d, c, chunk=chunk)
            _sync(device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def _progress(msg: str) -> None:
    print(f"... {msg}", file=sys.stderr, flush=True)  # progress, so a run cut short still shows how far it got


def check_device(device_name: str, size: int, dates: int, seed: int, repeats: int) -> dict[str, Any]:
    import torch

    from sr_core.inference import get_model, predict

    device = torch.device(device_name)
    out: dict[str, Any] = {"device": device_name, "torch": torch.__version__, "size": size, "seed": seed}
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        out.update(gpu=torch.cuda.get_device_name(device), gpu_free_gb=free / 1e9, gpu_total_gb=total / 1e9)
    t0 = time.perf_counter()
    patch = make_patch(size, dates, seed)
    out["simulate_seconds"] = time.perf_counter() - t0
    _progress(f"simulated {patch.n_dates} dates in {out['simulate_seconds']:.1f} s; CPU float32 reference")
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    ref = predict(patch, device="cpu", precision="float32")
    out.update(cpu_float32_seconds=time.perf_counter() - t0, n_dates=ref.extra["n_dates"],
               cpu_threads=torch.get_num_threads())
    net = get_model(None, device)
    single = size * size if device.type == "cpu" else None  # on the CPU: the GPU's single chunk, forced
    out["precisions"] = {}
    for prec in PRECISIONS:
        _progress(f"{device_name} {prec}")
        predict(patch, device=device_name, precision=prec, chunk=single)  # warm-up: kernels, allocator
        start = _peak_start(device)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            pred = predict(patch, device=device_name, precision=prec, chunk=single)
            times.append(time.perf_counter() - t0)
        peak = _peak_bytes(device, start)
        out["precisions"][prec] = {
            "seconds_per_patch": statistics.median(times),
            "network_seconds": _network_seconds(net, patch, device, prec, repeats, single),
            "peak_memory_gb": peak / 1e9, "chunk_pixels": net.last_chunk_pixels,
            "tiles": pred.extra["tiles"], **agreement(pred, ref),
        }  # fmt: skip
    return out


def cpu_memory(size: int, dates: int, seed: int) -> dict[str, Any]:
    """Peak resident memory of one single-chunk forward pass on the CPU (the GPU path's working memory)."""
    import torch

    from sr_core.inference import get_model
    from sr_core.model.precision import Precision

    net = get_model(None, "cpu")
    rng = np.random.default_rng(seed)
    b = torch.from_numpy(rng.uniform(0.01, 0.5, (1, dates, size, size, 12)).astype(np.float32))
    v = torch.from_numpy(rng.uniform(size=(1, dates, size, size)) > 0.3)
    d = torch.from_numpy(np.linspace(60, 240, dates).astype(np.float32))[None]
    c = torch.from_numpy(rng.uniform(0, 1, (1, dates, size, size)).astype(np.float32))
    inputs = sum(t.numel() * t.element_size() for t in (b, v, d, c))
    out: dict[str, Any] = {"size": size, "dates": dates, "input_gb": inputs / 1e9, "runs": {}}
    for name, dtype, chunk in (("float32, single chunk", None, size * size), ("bfloat16, single chunk", "bfloat16",
                               size * size), ("float32, CPU chunks", None, None)):
        start = _peak_start(torch.device("cpu"))
        t0 = time.perf_counter()
        with torch.inference_mode(), Precision("cpu", dtype).autocast():
            net(b, v, d, c, chunk=chunk)
        seconds = time.perf_counter() - t0
        out["runs"][name] = {"peak_extra_gb": _peak_bytes(torch.device("cpu"), start) / 1e9, "seconds": seconds,
                             "chunk_pixels": net.last_chunk_pixels}
    one = out["runs"]["float32, single chunk"]["peak_extra_gb"] * 1e9
    out["bytes_per_pixel_date_channel"] = one / (size * size * dates * net.config.date_channels)
    return out


def _print_device(r: dict[str, Any]) -> None:
    gpu = f"{r['gpu']} ({r['gpu_free_gb']:.1f} of {r['gpu_total_gb']:.1f} GB free), " if "gpu" in r else ""
    print(f"device {r['device']}: {gpu}torch {r['torch']}")
    print(f"patch: simulated test seed {r['seed']}, {r['size']} x {r['size']} px, {r['n_dates']} dates "
          f"(simulated in {r['simulate_seconds']:.1f} s)")
    print(f"CPU float32 reference: {r['cpu_float32_seconds']:.2f} s on {r['cpu_threads']} threads")
    print(f"{'precision':<10} {'s/patch':>8} {'network s':>10} {'peak GB':>8} {'chunk px':>9} {'max |dp|':>9} "
          f"{'mean |dp|':>10} {'binary agree':>13}")
    for name, p in r["precisions"].items():
        print(f"{name:<10} {p['seconds_per_patch']:>8.3f} {p['network_seconds']:>10.3f} {p['peak_memory_gb']:>8.2f} "
              f"{p['chunk_pixels']:>9d} {p['max_abs_diff']:>9.4f} {p['mean_abs_diff']:>10.5f} "
              f"{p['binary_agreement']:>12.3%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run of the same steps)")
    ap.add_argument("--size", type=int, default=500, help="patch side in 10 m pixels (default 500)")
    ap.add_argument("--dates", type=int, default=None, help="dates per patch (default 38; 48 with --cpu-memory)")
    ap.add_argument("--seed", type=int, default=605, help="simulator seed of the test patch (default 605: 38 dates at 500 px)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per precision (default 3)")
    ap.add_argument("--cpu-memory", action="store_true", help="measure the single-chunk path's memory on the CPU")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    import torch

    if args.cpu_memory:
        res = cpu_memory(args.size, args.dates or 48, args.seed)
        print(f"CPU stand-in, bundled model, {res['size']} x {res['size']} px, {res['dates']} dates, inputs "
              f"{res['input_gb']:.2f} GB; peak memory above the inputs of one forward pass:")
        for name, r in res["runs"].items():
            print(f"  {name:<24} {r['peak_extra_gb']:6.2f} GB  ({r['chunk_pixels']} px per chunk, {r['seconds']:.1f} s)")
        print(f"  = {res['bytes_per_pixel_date_channel']:.1f} bytes per pixel, date and date channel (float32)")
    else:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            print(f"no CUDA GPU here (torch {torch.__version__} sees none): nothing measured. Run this on a machine "
                  "with a GPU, or with --device cpu for a dry run of the same steps on the CPU.", file=sys.stderr)
            return EXIT_NO_GPU
        res = check_device(args.device, args.size, args.dates or 38, args.seed, args.repeats)
        _print_device(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
