"""``python -m sr_core bench``: time the model on a full 500 × 500, T = 38 patch against an EagleEyes-size SRResNet."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from typing import Any

from ._args import COUNT, NONNEG, SIDE


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench",
        help="time the model on a full patch vs. an EagleEyes-size SRResNet",
        description=(
            "Times sr_core's model on a full 500 x 500 px, T = 38 patch of synthetic input (median of --runs, after "
            "one warm-up), and in the same process an SRResNet of the 3rd-place size (49 blocks x 125 channels, two "
            "x2 pixel shuffles, 104 input channels). The SRResNet is timed on a crop and scaled by pixel count (its "
            "cost is linear in area). Prints the speedup and the peak memory."
        ),
    )
    p.add_argument("--device", default="auto", help="auto (cuda → mps → cpu), cpu, cuda or mps")
    p.add_argument("--runs", type=COUNT, default=3, help="timed runs of each model (median reported)")
    p.add_argument("--model", default=None, help="checkpoint to time (default: the bundled weights)")
    p.add_argument("--size", type=SIDE, default=500, help="patch side in 10 m pixels (default 500)")
    p.add_argument("--dates", type=COUNT, default=38, help="number of dates T (default 38)")
    p.add_argument("--crop", type=NONNEG, default=0, help="SRResNet crop side in 10 m px (default 64 on CPU, 256 on GPU)")
    p.add_argument("--threads", type=NONNEG, default=0, help="torch CPU threads (default: all cores)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=run)
    return p


def _peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)  # bytes on macOS, KiB on Linux


def synthetic_patch(size: int, dates: int, seed: int = 0) -> Any:
    """A random but plausible input (reflectance 0–0.5, ~20 % cloud) of the benchmark's shape."""
    from datetime import datetime, timedelta

    import numpy as np

    from ..geo import BBox
    from ..patch import Patch, PatchInfo, Source

    rng = np.random.default_rng(seed)
    bands = rng.random((dates, size, size, 12), dtype=np.float32) * 0.5
    cloud = rng.random((dates, size, size), dtype=np.float32)
    return Patch(
        bands=bands, timestamps=[datetime(2019, 3, 2) + timedelta(days=5 * i) for i in range(dates)],
        bbox=BBox(500000.0, 5100000.0, 500000.0 + 10 * size, 5100000.0 + 10 * size),
        cloud_prob=cloud, cloud_mask=cloud > 0.8,
        info=PatchInfo(name="bench", source=Source.SIMULATED),
    )


def _sync(dev: Any) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def run(args: argparse.Namespace) -> int:
    import torch

    from ..inference import get_model, predict, select_device
    from ..model import SRNet, SRNetConfig, default_model_path
    from ..model.srresnet import SRResNet
    from . import print_json

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    dev = select_device(args.device)
    notes: list[str] = []
    path = args.model or default_model_path()
    if args.model is None and not default_model_path().is_file():
        model: Any = SRNet(SRNetConfig())
        notes.append("bundled weights absent: timed an untrained network of the default config (same cost)")
    else:
        model = get_model(path, dev)
    patch = synthetic_patch(args.size, args.dates)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))

    log(f"model: {getattr(getattr(model, 'info', None), 'name', 'untrained')}, {model.n_params():,} parameters, "
        f"device {dev}, {torch.get_num_threads()} threads; patch {args.size} x {args.size}, T = {args.dates}")
    predict(patch.crop(0, 0, min(64, args.size), min(64, args.size)), device=str(dev), model=model)  # warm-up
    times = []
    for i in range(max(args.runs, 1)):
        t0 = time.perf_counter()
        pred = predict(patch, device=str(dev), model=model)
        times.append(time.perf_counter() - t0)
        log(f"  model run {i + 1}: {times[-1]:.2f} s ({pred.extra['tiles']} tiles of {pred.extra['tile_size']})")
    model_s = statistics.median(times)
    peak_model = _peak_rss_mb()

    crop = args.crop or (256 if dev.type == "cuda" else 64)
    crop = min(crop, args.size)
    net = SRResNet().to(dev).eval()
    if dev.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    x = torch.rand(1, 104, crop, crop, device=dev)
    if dev.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    rtimes = []
    from ..model.precision import resolve_precision

    with torch.inference_mode(), resolve_precision(dev).autocast():  # float16 on CUDA, as sr_core.predict
        net(x)
        _sync(dev)
        for _ in range(max(args.runs, 1)):
            t0 = time.perf_counter()
            net(x)
            _sync(dev)
            rtimes.append(time.perf_counter() - t0)
    scale = (args.size * args.size) / (crop * crop)
    srres_s = statistics.median(rtimes) * scale
    notes.append(f"SRResNet timed on a {crop} x {crop} crop and scaled x{scale:.1f} by pixel count")
    out = {
        "model_seconds": round(model_s, 4),
        "srresnet_seconds": round(srres_s, 4),
        "speedup": round(srres_s / model_s, 2),
        "peak_rss_mb": round(peak_model, 1),
        "device": str(dev),
        "params": model.n_params(),
        "srresnet_params": net.n_params(),
        "size": args.size,
        "dates": args.dates,
        "runs": len(times),
        "threads": torch.get_num_threads(),
        "notes": notes,
    }
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
        out["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    if args.json:
        print_json(out)
    else:
        print(f"model    {model_s:8.2f} s per {args.size}x{args.size} T={args.dates} patch "
              f"(median of {len(times)}; {out['params']:,} params; peak RSS {peak_model:,.0f} MB; device {dev})")
        print(f"SRResNet {srres_s:8.2f} s per patch ({net.n_params():,} params; {notes[-1]})")
        print(f"speedup  {out['speedup']:8.1f}x")
        for n in notes[:-1]:
            print(f"note: {n}")
    return 0
