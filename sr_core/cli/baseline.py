"""``python -m sr_core baseline {ndvi,pixel} EOPATCH... --out DIR``: write a baseline's submission for patches.

Also ``baseline train-pixel`` (train the 10 m pixel baseline on simulated train-split patches and save its
pickle-free model file) and ``baseline eval-pixel`` (its pooled weighted MCC on fresh simulated test-split patches).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._args import COUNT, NONNEG, SIDE


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
        q.add_argument("--season", type=int, default=None, metavar="YEAR",
                       help="growing season (1 March – 1 September of YEAR) to use from a longer series (default: "
                            "the latest complete one in each patch, as `predict` does)")
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

    q = sub.add_parser(
        "train-pixel", help="train the 10 m pixel baseline on simulated patches (train split) and save it",
        description=(
            "Train the 10 m pixel baseline on simulated patches of the train split (their seeds never share a "
            "random stream with the test split): --members MLPs from seeds --seed, --seed + 1, …, whose probabilities "
            "are averaged; choose the threshold of that average on held-out train-split seeds (pooled "
            "weighted MCC at 2.5 m) and write the pickle-free model file. The bundled model was made with the "
            "defaults and --out models/pixel-baseline.npz (see models/PIXEL_BASELINE.md)."
        ),
    )
    q.add_argument("--train-seeds", default="10000-10031", help="train-split seeds to learn from (default 10000-10031)")
    q.add_argument("--val-seeds", default="20000-20005",
                   help="train-split seeds that choose the threshold, disjoint from --train-seeds (default 20000-20005)")
    q.add_argument("--size", type=SIDE, default=160, help="training patch size in 10 m pixels (default 160)")
    q.add_argument("--val-size", type=SIDE, default=200, help="validation patch size (default 200)")
    q.add_argument("--epochs", type=COUNT, default=20, help="passes over the training pixels (default 20)")
    q.add_argument("--hidden", default="64,64", help="hidden layer widths of the MLP (default 64,64)")
    q.add_argument("--unweighted", action="store_true", help="train without the benchmark weights as row weights")
    q.add_argument("--threads", type=NONNEG, default=1, help="torch CPU threads (default 1)")
    q.add_argument("--seed", type=int, default=0,
                   help="seed of the first member's row sampling and initialisation; member k uses seed + k (default 0)")
    q.add_argument("--members", type=int, default=5,
                   help="MLPs in the ensemble, their probabilities averaged (default 5, the bundled file; 1: one MLP)")
    q.add_argument("--dropout-members", type=int, default=5,
                   help="band-dropout MLPs, which predict when the input path filled a band (trained on every patch "
                        "as it is and with a random set of bands filled); 0: none (default 5, the bundled file)")
    q.add_argument("--out", type=Path, default=None,
                   help="model file to write (default: <SR_CORE_HOME>/models/pixel-baseline.npz)")
    q.add_argument("--overwrite", action="store_true", help="replace the --out file when it exists")
    q.add_argument("--test-seeds", default=None,
                   help="afterwards, score it on these test-split seeds (e.g. 0-5), beside the NDVI baseline")
    q.add_argument("--test-size", type=SIDE, default=500, help="test patch size (default 500)")
    q.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=run_train_pixel)

    q = sub.add_parser(
        "eval-pixel", help="score the pixel baseline (and the NDVI baseline) on fresh simulated test-split patches",
        description="Pooled weighted MCC of the 10 m pixel baseline and the organisers' NDVI baseline on simulated "
                    "patches of the test split (issue 4 calibration target for the pixel baseline: 0.60-0.80).",
    )
    q.add_argument("--seeds", default="0-5",
                   help="test-split seeds (default 0-5, the first six of the ten `simulate --calibrate` uses)")
    q.add_argument("--size", type=SIDE, default=500, help="patch size in 10 m pixels (default 500)")
    q.add_argument("--model", type=Path, default=None, help="pixel-baseline model file (default: the bundled one)")
    q.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=run_eval_pixel)
    return p


def _bar(total: int, quiet: bool, desc: str) -> tuple[Any, Any]:
    """A tqdm bar on stderr and a progress callback (one message = one step) for the pixel-baseline commands."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr, disable=True if quiet else None)

    def step(msg: str) -> None:
        bar.set_postfix_str(msg[-60:], refresh=False)
        bar.update(1)

    return bar, step


def _print_eval(res: dict[str, Any]) -> None:
    print(f"{'seed':>6} {'region':18} {'T':>3} {'pixel wMCC':>10} {'NDVI wMCC':>10} {'pixel s':>8}")
    for r in res["patches"]:
        print(f"{r['seed']:>6} {r['region']!s:18} {r['T']:>3} {r['pixel_wmcc']:>10.4f} {r['ndvi_wmcc']:>10.4f} "
              f"{r['pixel_seconds']:>8.2f}")
    print(f"pooled over {len(res['patches'])} {res['split']}-split patches of {res['size']} px (seeds {res['seeds']}): "
          f"pixel baseline weighted MCC {res['pixel_wmcc']:.4f} (threshold {res['threshold']:.3f}; target 0.60-0.80), "
          f"NDVI baseline {res['ndvi_wmcc']:.4f}")


def run_train_pixel(args: argparse.Namespace) -> int:
    from ..baselines import pixel
    from ..errors import ConfigError
    from ..paths import subdir
    from . import print_json

    train, val = pixel.parse_seeds(args.train_seeds), pixel.parse_seeds(args.val_seeds)
    test = pixel.parse_seeds(args.test_seeds) if args.test_seeds else []
    try:
        hidden = tuple(int(h) for h in args.hidden.split(",") if h.strip())
    except ValueError:
        hidden = ()
    if not hidden or min(hidden) < 1:
        raise ConfigError(f"--hidden {args.hidden!r}: give positive layer widths, e.g. 64,64")
    if args.members < 1:
        raise ConfigError(f"--members {args.members}: give at least 1 (the number of MLPs averaged)")
    if args.dropout_members < 0:
        raise ConfigError(f"--dropout-members {args.dropout_members}: give 0 (none) or more")
    out = args.out if args.out is not None else subdir("models") / "pixel-baseline.npz"
    if out.exists() and not args.overwrite:  # minutes of training do not replace a model file unasked
        raise ConfigError(f"{out}: a model file is already there; add --overwrite to replace it, or choose another --out")
    bar, step = _bar(len(train) + args.epochs * (args.members + args.dropout_members) + len(val) + len(test), args.quiet,
                     "train pixel baseline")
    try:
        model = pixel.train_pixel_baseline(train, val, size=args.size, val_size=args.val_size, hidden=hidden,
                                           epochs=args.epochs, weighted=not args.unweighted, seed=args.seed,
                                           members=args.members, dropout_members=args.dropout_members,
                                           threads=args.threads, progress=step)
        path = pixel.save_pixel_baseline(model, out)
        res = pixel.evaluate_simulated(test, size=args.test_size, model=model, progress=step) if test else None
    finally:
        bar.close()
    summary = {"model": str(path), "bytes": path.stat().st_size, "parameters": model.n_parameters,
               "threshold": model.threshold, "config": model.config, "test": res,
               "dropout": None if model.dropout is None else {"threshold": model.dropout.threshold,
                                                              "config": model.dropout.config}}
    if args.json:
        print_json(summary)
        return 0
    v = model.config["validation"]
    print(f"wrote {path} ({summary['bytes'] / 1024:.0f} KiB, {model.n_parameters} parameters) in "
          f"{model.config['train_seconds']:.0f} s; threshold {model.threshold:.3f}, pooled weighted MCC "
          f"{v['pooled_weighted_mcc']:.4f} on validation seeds {v['seeds']} ({v['size']} px, train split)")
    if "member_pooled_weighted_mcc" in v:
        each = ", ".join(f"{x:.4f}" for x in v["member_pooled_weighted_mcc"])
        print(f"{len(model.members)} members (seeds {model.config['ensemble']['seeds'][0]}–"
              f"{model.config['ensemble']['seeds'][-1]}), each alone at its own best threshold: {each}")
    if model.dropout is not None:
        dv = model.dropout.config["validation"]
        ten = dv["ten_m_only"]
        print(f"{len(model.dropout.members)} band-dropout members (used when a band is filled): threshold "
              f"{model.dropout.threshold:.3f}, pooled weighted MCC {dv['pooled_weighted_mcc']:.4f} on the validation "
              f"seeds each with a random set of bands missing; with the 10 m bands only {ten['dropout_members']:.4f} "
              f"(the other members: {ten['clean_members']:.4f})")
    if res is not None:
        _print_eval(res)
    return 0


def run_eval_pixel(args: argparse.Namespace) -> int:
    from ..baselines import pixel
    from . import print_json

    seeds = pixel.parse_seeds(args.seeds)
    model = pixel.load_pixel_baseline(args.model)
    bar, step = _bar(len(seeds), args.quiet, "eval pixel baseline")
    try:
        res = pixel.evaluate_simulated(seeds, size=args.size, model=model, progress=step)
    finally:
        bar.close()
    if args.json:
        print_json(res)
    else:
        _print_eval(res)
    return 0


def predict_to_submission(args: argparse.Namespace, predict: Any, desc: str) -> int:
    """Shared by the baseline sub-commands (and usable by other predict commands): expand inputs, prepare each patch
    as the model's input path does (:func:`sr_core.prepare.prepare_input`: growing season ``args.season`` or the
    latest complete one, missing bands filled, SCL clouds), predict it, write the submission, and say per patch which
    season and dates were used, with the warnings."""
    from ..pipeline import predict_submission
    from ..prepare import input_record, input_warnings, prepare_input
    from .predict import FolderRun, input_summary

    season = getattr(args, "season", None)
    last: dict[str, Any] = {}

    def run_one(patch: Any) -> Any:
        prepared = prepare_input(patch, season)
        last.update(record=input_record(prepared), warnings=input_warnings(prepared))
        return predict(prepared)

    def report(name: str, pred: Any, path: Path) -> None:
        if args.quiet:
            return
        print(f"{name}{input_summary(last.get('record'))} -> {path}")
        for w in dict.fromkeys([*last.get("warnings", ()), *getattr(pred, "warnings", ())]):
            print(f"warning: {w}", file=sys.stderr)

    folder_run = FolderRun(args.out)
    paths = predict_submission(args.eopatches, run_one, args.out, probability_dir=args.proba_dir,
                               progress=not args.quiet, desc=desc, on_result=report, on_error=folder_run.on_error)
    print(f"wrote {len(paths)} submission file(s) to {args.out}"
          + (f"; probability maps in {args.proba_dir}" if args.proba_dir and paths else ""))
    return folder_run.finish(paths)


def run_ndvi(args: argparse.Namespace) -> int:
    from ..baselines import load_baseline

    return predict_to_submission(args, load_baseline("ndvi"), "baseline ndvi")


def run_pixel(args: argparse.Namespace) -> int:
    from ..baselines import load_baseline

    return predict_to_submission(args, load_baseline("pixel", args.model), "baseline pixel")
