"""``python -m sr_core predict PATH... --out DIR``: the model's submission GeoTIFFs for EOPatches."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict",
        help="predict cultivated land at 2.5 m with the model and write submission GeoTIFFs",
        description=(
            "Runs the super-resolution model on EOPatch folders (or folders / .zip / .tar.gz archives of them) and "
            "writes <folder-name>.tif into --out: one band, uint8 {0, 1}, the patch's 2.5 m grid, CRS and bounds "
            "(the benchmark's submission format). --proba and --uncertainty write extra GeoTIFFs into --proba-dir "
            "(default <out>-proba), so the submission folder holds the masks only."
        ),
    )
    p.add_argument("paths", nargs="+", type=Path, help="EOPatch folders, folders of them, or archives of them")
    p.add_argument("--out", type=Path, required=True, help="submission folder for the <folder-name>.tif files")
    p.add_argument("--device", default="auto", help="auto (cuda → mps → cpu), cpu, cuda or mps")
    p.add_argument("--model", type=Path, default=None, help="checkpoint (default: the bundled weights)")
    p.add_argument("--proba", action="store_true", help="also write <name>_proba.tif (probability, uint8 0–255)")
    p.add_argument("--uncertainty", action="store_true",
                   help="8-fold flip/rotation ensemble; also write <name>_uncertainty.tif (std of the ensemble)")
    p.add_argument("--tta", type=int, default=None, metavar="N",
                   help="average over N flips / rotations (1–8; default 1, or 8 with --uncertainty); N× slower")
    p.add_argument("--proba-dir", type=Path, default=None, help="folder for probability / uncertainty maps")
    p.add_argument("--tile", type=int, default=None, help="tile side in 10 m px (default 272 on CPU, 512 on GPU)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: all cores)")
    p.add_argument("--compute-clouds", action="store_true",
                   help="compute s2cloudless cloud masks for patches that have none (recorded in the outputs' notes)")
    p.add_argument("--json", action="store_true", help="print one JSON line with the results")
    p.add_argument("--quiet", action="store_true", help="no progress bar or warnings on stderr")
    p.set_defaults(func=run)
    from ..batch import add_batch_arguments

    add_batch_arguments(p)  # --scheduler local[:N] | tcp://HOST:PORT, --force, --retries, --mosaic, --index
    return p


def write_float_tif(array: Any, bbox: Any, path: Path, meaning: str) -> Path:
    """A float32 single-band GeoTIFF on the bbox's grid (CRS + exact transform)."""
    import numpy as np
    import rasterio
    from rasterio.transform import Affine

    a = np.asarray(array, np.float32)
    h, w = a.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=1, dtype="float32", crs=bbox.crs,
                       transform=Affine(*bbox.transform(w, h)), compress="deflate") as dst:
        dst.write(a, 1)
        dst.update_tags(1, meaning=meaning)
    return path


def run(args: argparse.Namespace) -> int:
    if getattr(args, "scheduler", None):  # batch on Dask: one task per patch, idempotent, retried, mosaic + index
        from ..batch import run_batch_from_args

        if args.compute_clouds:
            from ..errors import ConfigError

            raise ConfigError("--compute-clouds is not supported with --scheduler yet; run `python -m sr_core clouds` first")
        return run_batch_from_args(args)
    import torch

    from ..inference import get_model, predict, select_device
    from ..io.submission import predict_submission
    from . import print_json

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    dev = select_device(args.device)
    model = get_model(args.model, dev)  # load once (and fail early on a bad checkpoint)
    extra_dir = args.proba_dir or args.out.with_name(args.out.name + "-proba")
    results: list[dict[str, Any]] = []

    def run_one(patch: Any) -> Any:
        if args.compute_clouds:
            from ..clouds import ensure_cloud_masks

            patch = ensure_cloud_masks(patch)
        return predict(patch, device=str(dev), model=model, tile=args.tile, uncertainty=args.uncertainty, tta=args.tta)

    def on_result(name: str, pred: Any, path: Path) -> None:
        rec: dict[str, Any] = {"name": name, "submission": str(path), "device": pred.device,
                               "seconds": round(pred.seconds, 3), "cultivated_fraction": float(pred.binary.mean()),
                               "threshold": pred.threshold, "warnings": list(pred.warnings)}
        if args.proba:
            rec["proba"] = str(extra_dir / f"{name}_proba.tif")
        if args.uncertainty and pred.uncertainty is not None:
            up = write_float_tif(pred.uncertainty, pred.bbox, extra_dir / f"{name}_uncertainty.tif",
                                 "std of the cultivated probability over 8 flips/rotations")
            rec["uncertainty"] = str(up)
            rec["mean_uncertainty"] = float(pred.uncertainty.mean())
        results.append(rec)
        if not args.quiet and not args.json:
            for w in pred.warnings:
                print(f"warning: {name}: {w}", file=sys.stderr)

    paths = predict_submission(args.paths, run_one, args.out, probability_dir=extra_dir if args.proba else None,
                               progress=not args.quiet and not args.json, desc=f"predict ({dev})", on_result=on_result)
    if args.json:
        print_json({"out": str(args.out), "device": str(dev), "model": getattr(getattr(model, "info", None), "path", ""),
                    "patches": results})
    else:
        for r in results:
            print(f"{r['name']}: {r['cultivated_fraction']:.1%} cultivated, {r['seconds']:.2f} s on {r['device']}"
                  f" -> {r['submission']}")
        print(f"wrote {len(paths)} submission file(s) to {args.out}"
              + (f"; probability / uncertainty maps in {extra_dir}" if args.proba or args.uncertainty else ""))
    return 0
