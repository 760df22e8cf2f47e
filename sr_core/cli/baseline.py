"""``python -m sr_core baseline {ndvi,pixel} EOPATCH... --out DIR``: write a baseline's submission for patches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "baseline",
        help="predict patches with a reference baseline and write a submission (eopatch-XX.tif files)",
        description="Run a baseline predictor over EOPatches and write one submission GeoTIFF per patch into --out.",
    )
    sub = p.add_subparsers(dest="baseline", metavar="BASELINE", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("eopatches", nargs="+", type=Path,
                       help="EOPatch folders, folders of them, or .zip/.tar.gz archives of them")
        q.add_argument("--out", type=Path, required=True, help="folder for the <eopatch-folder>.tif files")
        q.add_argument("--proba-dir", type=Path, default=None,
                       help="also write <name>_proba.tif probability maps here (keep it apart from --out)")
        q.add_argument("--quiet", action="store_true", help="no progress bar or per-patch lines")

    q = sub.add_parser("ndvi", help="the organisers' dummy: mean NDVI of clear frames, bicubic x4, 0.4 < NDVI <= 0.6",
                       description="The organisers' NDVI-threshold baseline (weighted MCC 0.534 on the test set).")
    common(q)
    q.set_defaults(func=run_ndvi)
    q = sub.add_parser("pixel", help="per-pixel classifier at 10 m trained on simulated patches (needs its model)",
                       description="The 10 m pixel baseline (sr_core.baselines.pixel), upsampled to 2.5 m.")
    common(q)
    q.add_argument("--model", type=Path, default=None, help="pixel-baseline model file (default: the bundled one)")
    q.set_defaults(func=run_pixel)
    return p


def predict_to_submission(args: argparse.Namespace, predict: Any, desc: str) -> int:
    """Shared by the baseline sub-commands (and usable by other predict commands): expand inputs, predict each
    patch, write the submission, report where it went."""
    from ..io.submission import predict_submission

    def report(name: str, pred: Any, path: Path) -> None:
        if args.quiet:
            return
        for w in getattr(pred, "warnings", ()):
            print(f"warning: {w}", file=sys.stderr)

    paths = predict_submission(args.eopatches, predict, args.out, probability_dir=args.proba_dir,
                               progress=not args.quiet, desc=desc, on_result=report)
    print(f"wrote {len(paths)} submission file(s) to {args.out}")
    return 0


def run_ndvi(args: argparse.Namespace) -> int:
    from ..baselines.ndvi import ndvi_baseline

    return predict_to_submission(args, ndvi_baseline, "baseline ndvi")


def run_pixel(args: argparse.Namespace) -> int:
    from ..errors import ModelError

    try:
        from ..baselines import pixel
    except ModuleNotFoundError as exc:
        if exc.name != "sr_core.baselines.pixel":
            raise
        raise ModelError(
            "the pixel baseline (sr_core.baselines.pixel) is not part of this installation; "
            "update sr_core, or use `python -m sr_core baseline ndvi`"
        ) from None
    model = pixel.load_pixel_baseline(args.model)
    return predict_to_submission(args, lambda patch: pixel.pixel_baseline(patch, model=model), "baseline pixel")
