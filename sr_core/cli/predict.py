"""``python -m sr_core predict PATH... --out DIR``: the model's submission GeoTIFFs for EOPatches."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ._args import NONNEG, SIDE, TTA


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
    p.add_argument("--tta", type=TTA, default=None, metavar="N",
                   help="average over N flips / rotations (1–8; default 1, or 8 with --uncertainty); N× slower")
    p.add_argument("--proba-dir", type=Path, default=None, help="folder for probability / uncertainty maps")
    p.add_argument("--tile", type=SIDE, default=None, help="tile side in 10 m px (default 272 on CPU, 512 on GPU)")
    p.add_argument("--threads", type=NONNEG, default=0, help="torch CPU threads (default: all cores)")
    p.add_argument("--season", type=int, default=None, metavar="YEAR",
                   help="growing season (1 March – 1 September of YEAR) to use from a longer series (default: the "
                        "latest complete one in each patch); dates outside it are left out")
    p.add_argument("--compute-clouds", action="store_true",
                   help="compute s2cloudless cloud masks for patches that have none (recorded in the outputs' notes)")
    p.add_argument("--json", action="store_true", help="print one JSON line with the results")
    p.add_argument("--quiet", action="store_true", help="no progress bar or warnings on stderr")
    p.set_defaults(func=run)
    add_batch_arguments(p)  # --scheduler local[:N] | tcp://HOST:PORT, --force, --retries, --mosaic, --index
    return p


def add_batch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the batch options to the ``predict`` parser: --scheduler, --force, --retries, --mosaic, --index."""
    g = parser.add_argument_group("batch (many patches, Dask distributed)")
    g.add_argument("--scheduler", default=None, metavar="local[:N]|tcp://HOST:PORT",
                   help="run one task per patch on a Dask LocalCluster of N worker processes (local = one per core) "
                        "or on a running Dask scheduler; default: in this process")
    g.add_argument("--force", action="store_true",
                   help="with --scheduler: redo patches whose valid output already exists (default there: skip); "
                        "without --scheduler every patch is rewritten and the replaced files are listed")
    g.add_argument("--retries", type=NONNEG, default=1, help="extra attempts for a failed patch (default 1)")
    g.add_argument("--mosaic", choices=("vrt", "none"), default="vrt",
                   help="write <out>_mosaic.vrt over all outputs beside --out (default vrt)")
    g.add_argument("--index", default=None, metavar="PATH.gpkg",
                   help="index GeoPackage of footprints with per-patch status (default <out>_index.gpkg; 'none': skip)")
    return parser


def run_batch_from_args(args: argparse.Namespace) -> int:
    """Run :func:`run_batch` from parsed ``predict`` arguments; print a summary (one JSON line with ``--json``).
    Returns 0 when every patch has an output, 1 when some failed."""
    from ..batch import run_batch
    from ..pipeline.results import FAILED
    from . import print_json
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
        uncertainty=bool(getattr(args, "uncertainty", False)),
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


def input_summary(rec: dict[str, Any] | None) -> str:
    """", season 2019: 28 of 72 dates (2019-03-07 … 2019-08-29)" for a prediction's ``extra["input"]``, plus the
    filled bands and the cloud source when they are worth saying; "" when there is no record."""
    if not rec:
        return ""
    out = (f", season {rec['season']}: {rec['dates_used']} of {rec['dates_total']} dates "
           f"({rec['first_date']} … {rec['last_date']})")
    if rec.get("filled_bands"):
        out += ", filled " + " ".join(f"{m}←{s}" for m, s in rec["filled_bands"].items())
    if rec.get("cloud_source") not in (None, "CLM"):
        out += f", clouds from {rec['cloud_source']}"
    return out


class FolderRun:
    """What a ``predict`` / ``baseline`` run without ``--scheduler`` must tell at the end: the patches that failed
    (the others went on) and the existing files in ``--out`` it replaced (a run rewrites every patch)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.before = {f.name for f in out.glob("*.tif")} if out.is_dir() else set()
        self.failed: list[tuple[str, str]] = []

    def on_error(self, name: str, exc: Exception) -> None:
        from tqdm import tqdm

        from . import os_error_text

        msg = os_error_text(exc) if isinstance(exc, OSError) else str(exc)
        self.failed.append((name, msg))
        tqdm.write(f"failed: {name}: {msg}", file=sys.stderr)

    def exit_code(self, paths: list[Path]) -> int:
        """0 when every patch has its file, 1 when some failed, 2 (a usage error, as before) when none was predicted."""
        return 0 if not self.failed else (1 if paths else 2)

    def finish(self, paths: list[Path]) -> int:
        """Print the summary lines (stderr for failures, stdout for the rest) and return :meth:`exit_code`."""
        replaced = sorted(p.name for p in paths if p.name in self.before)
        if replaced:  # said even with --quiet, as the "wrote" line is
            print(f"replaced {len(replaced)} existing file(s) in {self.out}: {', '.join(replaced[:5])}"
                  + (" …" if len(replaced) > 5 else ""))
        if self.failed and not paths:  # nothing came out: as for one bad patch, the input is the user's to fix
            print(f"error: no patch was predicted ({len(self.failed)} failed, above)", file=sys.stderr)
        elif self.failed:
            print(f"{len(self.failed)} patch(es) failed: {', '.join(n for n, _ in self.failed)}", file=sys.stderr)
        return self.exit_code(paths)


def _check_folder_run(args: argparse.Namespace) -> None:
    """Options that mean something only with --scheduler, or only without it, are refused rather than ignored."""
    from ..errors import ConfigError

    if args.proba_dir is not None and not (args.proba or args.uncertainty):
        raise ConfigError("--proba-dir is where --proba / --uncertainty maps go: add one of them (or drop --proba-dir)")
    if args.uncertainty and args.tta is not None and args.tta < 2:
        raise ConfigError("--uncertainty is the spread over flips / rotations: it needs --tta 2 or more (default 8)")
    if getattr(args, "scheduler", None):
        if args.tta is not None:
            raise ConfigError("--tta is not supported with --scheduler yet; drop --tta, or predict without --scheduler")
        return
    batch_only = [flag for flag, on in (("--retries", args.retries != 1), ("--mosaic", args.mosaic != "vrt"),
                                        ("--index", args.index is not None)) if on]
    if batch_only:
        raise ConfigError(f"{', '.join(batch_only)} appl{'ies' if len(batch_only) == 1 else 'y'} to batch runs only: "
                          "add --scheduler local (or drop them)")


def run(args: argparse.Namespace) -> int:
    _check_folder_run(args)
    if getattr(args, "scheduler", None):  # batch on Dask: one task per patch, idempotent, retried, mosaic + index
        if args.compute_clouds:
            from ..errors import ConfigError

            raise ConfigError("--compute-clouds is not supported with --scheduler yet; run `python -m sr_core clouds` first")
        if args.season is not None:
            from ..errors import ConfigError

            raise ConfigError("--season is not supported with --scheduler yet (batch prediction uses each patch's "
                              "latest complete season); drop --season, or predict without --scheduler")
        return run_batch_from_args(args)
    import torch

    from ..inference import get_model, predict, select_device
    from ..pipeline import predict_submission
    from . import print_json

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    dev = select_device(args.device)
    model = get_model(args.model, dev)  # load once (and fail early on a bad checkpoint)
    out_abs = args.out.resolve()  # `--out .` has no name of its own to put -proba after
    extra_dir = args.proba_dir or out_abs.with_name(out_abs.name + "-proba")
    results: list[dict[str, Any]] = []

    def run_one(patch: Any) -> Any:
        if args.compute_clouds:
            from ..clouds import ensure_cloud_masks

            patch = ensure_cloud_masks(patch)
        return predict(patch, device=str(dev), model=model, tile=args.tile, uncertainty=args.uncertainty, tta=args.tta,
                       season=args.season)

    def on_result(name: str, pred: Any, path: Path) -> None:
        rec: dict[str, Any] = {"name": name, "submission": str(path), "device": pred.device,
                               "seconds": round(pred.seconds, 3), "cultivated_fraction": float(pred.binary.mean()),
                               "threshold": pred.threshold, "warnings": list(pred.warnings),
                               "input": pred.extra.get("input")}
        if args.proba:
            rec["proba"] = str(extra_dir / f"{name}_proba.tif")
        if args.uncertainty and pred.uncertainty is not None:  # written by the pipeline, before the mask
            rec["uncertainty"] = str(extra_dir / f"{name}_uncertainty.tif")
            rec["mean_uncertainty"] = float(pred.uncertainty.mean())
        results.append(rec)
        if not args.quiet and not args.json:
            from tqdm import tqdm

            for w in pred.warnings:  # above the progress bar, not on its line
                tqdm.write(f"warning: {name}: {w}", file=sys.stderr)

    # skip-if-done (and so --force) applies with --scheduler; without it `predict` rewrites every patch, as it always
    # has, and says which existing files it replaced
    folder_run = FolderRun(args.out)
    paths = predict_submission(args.paths, run_one, args.out, probability_dir=extra_dir if args.proba else None,
                               uncertainty_dir=extra_dir if args.uncertainty else None, force=True,
                               progress=not args.quiet and not args.json, desc=f"predict ({dev})", on_result=on_result,
                               on_error=folder_run.on_error)
    if args.json:
        print_json({"out": str(args.out), "device": str(dev), "model": getattr(getattr(model, "info", None), "path", ""),
                    "patches": results, "failed": [{"name": n, "error": e} for n, e in folder_run.failed]})
        return folder_run.exit_code(paths)
    for r in results:
        print(f"{r['name']}: {r['cultivated_fraction']:.1%} cultivated{input_summary(r['input'])}, "
              f"{r['seconds']:.2f} s on {r['device']} -> {r['submission']}")
    extras = [w for w, on in (("probability", args.proba), ("uncertainty", args.uncertainty)) if on]
    print(f"wrote {len(paths)} submission file(s) to {args.out}"
          + (f"; {' / '.join(extras)} maps in {extra_dir}" if extras and paths else ""))
    return folder_run.finish(paths)
