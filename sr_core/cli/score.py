"""``python -m sr_core score SUBMISSION --truth DIR [--json]``: validate a submission and compute the benchmark score."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import EXIT_FAILURE, print_json


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "score",
        help="validate a submission (folder/.zip/.tar.gz of eopatch-XX.tif) and score it against labelled EOPatches",
        description=(
            "Check every file of SUBMISSION against the EOPatches in --truth (names, size, dtype, 0/1 values, CRS, "
            "bounds) and print every problem (exit 1) or the scores: the pooled weighted MCC (the benchmark score), "
            "a per-patch table (weighted MCC, MCC, F1, IoU), MCC per parcel-size class and boundary F1 at 1/2/4 px."
        ),
    )
    p.add_argument("submission", type=Path, help="folder, .zip or .tar.gz of eopatch-XX.tif files (or one .tif)")
    p.add_argument("--truth", type=Path, required=True,
                   help="folder (or archive) of labelled EOPatch folders named like the files (eopatch-01, ...)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--no-diagnostics", action="store_true",
                   help="skip size-class and boundary scores (faster; the weighted MCC is unchanged)")
    p.set_defaults(func=run)
    return p


def _f(x: float | None, width: int = 7) -> str:
    return f"{'n/a':>{width}}" if x is None else f"{x:{width}.4f}"


def format_report(result: Any) -> str:
    """Human-readable text of a :class:`~sr_core.io.submission.ScoreReport`."""
    v = result.validation
    if not v.ok:
        return str(v)
    pooled = result.pooled
    width = max([len("pooled"), *(len(s.name) for s in result.patches)])
    lines = [f"{v.source}: {len(result.patches)} patch(es) scored in {result.seconds:.1f} s", ""]
    lines.append(f"{'patch':<{width}}  {'wMCC':>7}  {'MCC':>7}  {'F1':>7}  {'IoU':>7}")
    for s in result.patches:
        lines.append(f"{s.name:<{width}}  {_f(s.wmcc)}  {_f(s.mcc)}  {_f(s.f1)}  {_f(s.iou)}")
    lines.append(f"{'pooled':<{width}}  {_f(pooled.wmcc)}  {_f(pooled.mcc)}  {_f(pooled.f1)}  {_f(pooled.iou)}")
    lines.append("")
    lines.append(f"weighted MCC (benchmark score): {pooled.wmcc:.4f}")
    if pooled.size_classes:
        lines.append("MCC per parcel-size class (weighted; parcel + its ring + shared background):")
        for name, mcc in pooled.size_class_mcc().items():
            lines.append(f"  {name:<20} {_f(mcc)}  ({pooled.parcels.get(name, 0)} parcels)")
    if pooled.boundary:
        parts = [f"{k} px {_f(f1, 0)}" for k, f1 in pooled.boundary_f1().items()]
        lines.append("boundary F1: " + ", ".join(parts))
    for s in [pooled, *result.patches]:
        for w in s.warnings:
            lines.append(f"warning: {w}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..scoring import score_submission

    result = score_submission(args.submission, args.truth, diagnostics=not args.no_diagnostics,
                              progress=not args.json and sys.stderr.isatty())
    if args.json:
        print_json(result.to_dict())
    else:
        print(format_report(result))
    return 0 if result.ok else EXIT_FAILURE
