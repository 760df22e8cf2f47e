"""``python -m sr_core evaluate``: weighted MCC of the model and both baselines, per patch and pooled."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

EVAL_SEED0 = 0  #: evaluate --simulate uses split="test" seeds 0…N−1 (training uses split="train"; validation 900000+)


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="score the model and the baselines on labelled patches (real or freshly simulated)",
        description=(
            "Predicts every labelled patch with the model, the NDVI baseline and the 10 m pixel baseline (when "
            "installed) and prints per-patch and pooled weighted MCC (all pixels of all patches pooled, as the "
            "benchmark does), plus the weighted MCC per parcel-size class. Patches: --data DIR (EOPatch folders with "
            "CULTIVATED labels) or, without --data, --simulate N fresh simulated test patches (split 'test', seeds "
            "0..N-1: never used in training)."
        ),
    )
    p.add_argument("--data", type=Path, default=None, help="folder / archive of labelled EOPatches")
    p.add_argument("--n", type=int, default=None, help="use at most N patches from --data")
    p.add_argument("--simulate", type=int, default=8, metavar="N", help="without --data: N simulated test patches")
    p.add_argument("--size", type=int, default=500, help="side of simulated patches in 10 m px (default 500)")
    p.add_argument("--seed0", type=int, default=EVAL_SEED0, help="first simulated test seed (default 0)")
    p.add_argument("--model", type=Path, default=None, help="checkpoint (default: the bundled weights)")
    p.add_argument("--device", default="auto", help="auto (cuda → mps → cpu), cpu, cuda or mps")
    p.add_argument("--threshold", type=float, default=None, help="override the checkpoint's tuned threshold")
    p.add_argument("--tta", type=int, default=1, metavar="N",
                   help="average the model over N flips / rotations (1–8; default 1, as predict does)")
    p.add_argument("--no-baselines", action="store_true", help="score the model only")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: all cores)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)
    return p


def _patches(args: argparse.Namespace) -> Any:
    if args.data is not None:
        from ..io.archive import iter_patches

        n = 0
        for patch in iter_patches(args.data):
            if patch.cultivated is None:
                print(f"note: {patch.name} has no CULTIVATED label: skipped", file=sys.stderr)
                continue
            yield patch
            n += 1
            if args.n is not None and n >= args.n:
                return
        return
    from ..simulate import simulate_patch

    for i in range(args.simulate):
        yield simulate_patch(args.seed0 + i, size=args.size, split="test")


def _fmt(x: float | None) -> str:
    return "   -  " if x is None else f"{x:6.3f}"


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..inference import get_model, predict, select_device
    from ..metrics import Scores, evaluate_patch
    from . import print_json

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    dev = select_device(args.device)
    model = get_model(args.model, dev)
    predictors: dict[str, Any] = {
        "model": lambda p: predict(p, device=str(dev), model=model, threshold=args.threshold, tta=args.tta)}
    notes: list[str] = []
    if not args.no_baselines:
        from ..baselines.ndvi import ndvi_baseline

        predictors["ndvi"] = ndvi_baseline
        try:
            import importlib

            pixel = importlib.import_module("sr_core.baselines.pixel")
            pix_model = pixel.load_pixel_baseline(None)
            predictors["pixel"] = lambda p: pixel.pixel_baseline(p, model=pix_model)
        except ModuleNotFoundError as exc:
            if exc.name != "sr_core.baselines.pixel":
                raise
            notes.append("pixel baseline skipped: sr_core.baselines.pixel is not installed")
    source = (f"{args.data}" if args.data is not None else
              f"{args.simulate} simulated test patches of {args.size} x {args.size} px (split 'test', seeds "
              f"{args.seed0}..{args.seed0 + args.simulate - 1})")
    scores: dict[str, list[Any]] = {k: [] for k in predictors}
    seconds: dict[str, float] = dict.fromkeys(predictors, 0.0)
    rows: list[dict[str, Any]] = []
    total = args.n if args.data is not None else args.simulate
    bar = tqdm(_patches(args), total=total, desc="evaluate", unit="patch", disable=args.json, file=sys.stderr)
    for patch in bar:
        row: dict[str, Any] = {"name": patch.name, "dates": patch.n_dates}
        for name, fn in predictors.items():
            t0 = time.perf_counter()
            pred = fn(patch)
            seconds[name] += time.perf_counter() - t0
            s = evaluate_patch(patch, pred)
            scores[name].append(s)
            row[name] = s.wmcc
            row[f"{name}_cultivated"] = float(pred.binary.mean())
        row["true_cultivated"] = float(patch.cultivated.mean())
        rows.append(row)
        bar.set_postfix({k: f"{row[k]:.3f}" for k in predictors})
        del patch
    if not rows:
        from ..errors import ConfigError

        raise ConfigError(f"no labelled patch found in {source}; evaluation needs CULTIVATED labels")
    pooled = {k: Scores.pool(v) for k, v in scores.items()}
    out = {
        "source": source, "device": str(dev), "n_patches": len(rows),
        "model": getattr(getattr(model, "info", None), "path", ""), "threshold": args.threshold, "tta": args.tta,
        "pooled": {k: {"weighted_mcc": s.wmcc, "mcc": s.mcc, "f1": s.f1, "iou": s.iou,
                       "size_class_mcc": s.size_class_mcc(), "seconds_per_patch": seconds[k] / len(rows)}
                   for k, s in pooled.items()},
        "patches": rows, "notes": notes,
    }
    if "pixel" in pooled:
        out["model_minus_pixel"] = pooled["model"].wmcc - pooled["pixel"].wmcc
    if args.json:
        print_json(out)
        return 0
    names = list(predictors)
    print(f"{len(rows)} patches: {source}; device {dev}")
    print(f"{'patch':<28}" + "".join(f"{n:>10}" for n in names) + f"{'truth %':>10}")
    for r in rows:
        print(f"{r['name'][:28]:<28}" + "".join(f"{r[n]:>10.3f}" for n in names) + f"{100 * r['true_cultivated']:>9.1f}%")
    print(f"{'pooled weighted MCC':<28}" + "".join(f"{pooled[n].wmcc:>10.3f}" for n in names))
    for cls in pooled["model"].size_class_mcc():
        print(f"{'  ' + cls:<28}" + "".join(f"{_fmt(pooled[n].size_class_mcc().get(cls)):>10}" for n in names))
    print(f"{'seconds per patch':<28}" + "".join(f"{seconds[n] / len(rows):>10.2f}" for n in names))
    if "model_minus_pixel" in out:
        print(f"model - pixel baseline: {out['model_minus_pixel']:+.3f}")
    for n in notes:
        print(f"note: {n}")
    return 0
