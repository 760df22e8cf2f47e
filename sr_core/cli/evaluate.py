"""``python -m sr_core evaluate``: weighted MCC of the model and both baselines, per patch and pooled; on real
labelled patches (``--real``); and the robustness gate on perturbed simulated patches (``--stress``).

A thin layer over :mod:`sr_core.evaluation`: argument parsing, a progress bar and printing."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ._args import NONNEG, OPEN_FRACTION, SIDE, TTA

EVAL_SEED0 = 0  #: = sr_core.evaluation.EVAL_SEED0: test seeds 0…N−1 (training uses split="train"; validation 900000+)
SIMULATE_N, SIMULATE_SIZE = 8, 500  #: defaults of --simulate (plain evaluation)


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="score the model and the baselines on labelled patches (real or freshly simulated); robustness gate",
        description=(
            "Predicts every labelled patch with the model, the NDVI baseline and the 10 m pixel baseline (when "
            "installed) and prints per-patch and pooled weighted MCC (all pixels of all patches pooled, as the "
            "benchmark does), plus the weighted MCC per parcel-size class. Patches: --real PATH... (real labelled "
            "EOPatches: also the cultivated shares, the dates and cloud source used, filled bands and the model's "
            "warnings, under a 'REAL data' heading), --points DIR (real labelled monthly points: plain MCC on the "
            "points held out of train --points), --data DIR (EOPatch folders with CULTIVATED labels) or, "
            "without either, --simulate N fresh simulated test patches (split 'test', seeds 0..N-1: never used in "
            "training). --stress: the robustness gate: model and pixel baseline on simulated test patches under "
            "each perturbation (few dates, one date, gain/offset, 1 px shift, blur, haze, L1C, missing bands) and "
            "all together (target: combined >= 0.80); defaults --simulate 4 --size 160 (a few minutes on 2 cores), "
            "full gate --simulate 16 --size 500."
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--real", type=Path, nargs="+", default=None, metavar="PATH",
                     help="real labelled EOPatch folders, folders of them or archives")
    src.add_argument("--data", type=Path, default=None, help="folder / archive of labelled EOPatches")
    src.add_argument("--points", type=Path, default=None, metavar="DIR",
                     help="real labelled monthly points (a WorldCereal-style folder: S2_monthly.npy.gz + labels.csv): "
                          "MCC of the model and both baselines on the 20 %% that train --points never trains on")
    p.add_argument("--stress", action="store_true",
                   help="robustness gate on simulated test patches (see --simulate, --size, --seed0); with --real "
                        "PATH... or --data: on those labelled patches instead")
    p.add_argument("--n", type=int, default=None, help="use at most N patches from --data / --real")
    p.add_argument("--draws", type=int, default=1, metavar="K",
                   help="with --stress: apply every random scenario K times to each patch and pool them (default 1; "
                        "one small real patch under one draw is a noisy figure: e.g. --real PATH --draws 10)")
    p.add_argument("--all-points", action="store_true",
                   help="with --points: score every point (a model trained with --points on them has seen 80 %%)")
    p.add_argument("--simulate", type=int, default=None, metavar="N",
                   help=f"simulated test patches (default {SIMULATE_N}; --stress: 4)")
    p.add_argument("--size", type=SIDE, default=None,
                   help=f"side of simulated patches in 10 m px (default {SIMULATE_SIZE}; --stress: 160)")
    p.add_argument("--seed0", type=int, default=EVAL_SEED0, help="first simulated test seed (default 0)")
    p.add_argument("--season", type=int, default=None, metavar="YEAR",
                   help="growing season (1 March - 1 September of YEAR) to use; default: the latest complete one")
    p.add_argument("--model", type=Path, default=None, help="checkpoint (default: the bundled weights)")
    p.add_argument("--device", default="auto", help="auto (cuda → mps → cpu), cpu, cuda or mps")
    p.add_argument("--threshold", type=OPEN_FRACTION, default=None, help="override the checkpoint's tuned threshold")
    p.add_argument("--tta", type=TTA, default=1, metavar="N",
                   help="average the model over N flips / rotations (1–8; default 1, as predict does)")
    p.add_argument("--no-baselines", action="store_true", help="score the model only")
    p.add_argument("--pixel-model", type=Path, default=None, metavar="FILE",
                   help="the 10 m pixel baseline's model file (default: the bundled one; e.g. one written by "
                        "`baseline train-pixel --seed N --out FILE`)")
    p.add_argument("--coregister", action="store_true",
                   help="EXPERIMENTAL: line the dates up by whole 10 m pixels (sr_core.coreg) before every predictor; "
                        "not what predict does (it raises simulated scores and lowers the real Flanders one)")
    p.add_argument("--oracles", action="store_true",
                   help="also score the label oracles (they READ THE LABELS: the ceilings of a perfect 10 m unmixer "
                        "and a perfect 10 m classifier, to tell classification from 2.5 m geometry; with --simulate "
                        "also a perfect model's, the labels redrawn from the sown parcel edges; not with --stress)")
    p.add_argument("--compute-clouds", action="store_true",
                   help="compute s2cloudless cloud masks for patches that have no cloud layer (CLM, CLP or SCL), as "
                        "predict --compute-clouds does, before every predictor")
    p.add_argument("--threads", type=NONNEG, default=0, help="torch CPU threads (default: all cores)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from .. import evaluation as ev
    from ..errors import ConfigError

    if args.n is not None and args.n < 1:
        raise ConfigError(f"--n {args.n}: give at least 1")
    if args.simulate is not None and args.simulate < 1:
        raise ConfigError(f"--simulate {args.simulate}: give at least 1 patch")
    if args.all_points and args.points is None:
        raise ConfigError("--all-points goes with --points DIR")
    if args.season is not None and args.points is not None:
        raise ConfigError("--season does not apply to --points: each point's March-August months are read as one "
                          "season, whatever calendar year they come from")
    if args.oracles and args.points is not None:
        raise ConfigError("--oracles does not apply to --points: a point has one label and no geometry")
    if args.draws != 1 and not args.stress:
        raise ConfigError("--draws goes with --stress (it repeats the gate's random perturbations)")
    if args.draws < 1:
        raise ConfigError(f"--draws {args.draws}: give at least 1")
    if args.stress and args.points is not None:
        raise ConfigError("--stress does not apply to --points: a point is a uniform tile, which blur and shifts do "
                          "not change; run the gate with --real PATH... or on simulated patches")
    if args.oracles and args.stress:
        raise ConfigError("--oracles does not apply to --stress: the oracles read the labels, which no perturbation "
                          "changes; run them with --simulate / --data / --real")
    given = [f for f, on in (("--real", args.real is not None), ("--data", args.data is not None),
                             ("--points", args.points is not None)) if on]
    if given and not args.stress:
        simulated_only = [f for f, on in (("--simulate", args.simulate is not None), ("--size", args.size is not None),
                                          ("--seed0", args.seed0 != EVAL_SEED0)) if on]
        if simulated_only:
            raise ConfigError(f"{', '.join(simulated_only)} choose{'s' if len(simulated_only) == 1 else ''} simulated "
                              f"patches; with {given[0]} the patches given are scored (use --n to take fewer)")
    if args.points is not None and not args.points.is_dir():
        raise ConfigError(f"--points {args.points}: no such folder (the WorldCereal points folder holds "
                          "S2_monthly.npy.gz and labels.csv)")
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if args.stress:
        baselines = () if args.no_baselines else ("pixel",)
    else:
        baselines = () if args.no_baselines else ("ndvi", "pixel")
    preds = ev.build_predictors(args.model, args.device, threshold=args.threshold, tta=args.tta, season=args.season,
                                baselines=baselines, oracles=args.oracles, coregister=args.coregister,
                                pixel_model=args.pixel_model, compute_clouds=args.compute_clouds,
                                simulated=args.real is None and args.data is None and not args.stress)
    # (the gate's patches are labelled; the model's "simulated" flag only decides the oracle columns, unused there)

    if args.points is not None:
        from ..points import HOLDOUT, load_points

        pts = load_points(args.points)  # a folder that cannot be read fails here, before any work
        total = len(pts) if args.all_points else len(pts.holdout(HOLDOUT)[1])
        pbar = tqdm(total=total, desc="evaluate (points)", unit="point", disable=args.json, file=sys.stderr)
        try:
            doc = ev.evaluate_points(args.points, preds, held_out=not args.all_points,
                                     progress=lambda _n, _c: pbar.update(1), points=pts)
        finally:
            pbar.close()
        _emit(doc, ev.points_table, args.json)
        return 0

    if args.stress:
        n = args.simulate or ev.STRESS_N
        size = args.size or ev.STRESS_SIZE
        given = args.real if args.real is not None else [args.data] if args.data is not None else None
        total = n * len(ev.STRESS_SCENARIOS) if given is None else None
        bar = tqdm(total=total, desc="stress", unit="run", disable=args.json, file=sys.stderr)

        def step(name: str, scenario: str) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{name} {scenario}")

        try:
            if given is None:
                doc = ev.evaluate_stress(preds, n=n, seed0=args.seed0, size=size, progress=step, draws=args.draws)
            else:
                if args.simulate is not None or args.size is not None or args.seed0 != EVAL_SEED0:
                    raise ConfigError("--simulate / --size / --seed0 choose simulated patches; with --real or --data "
                                      "the gate runs on the patches given (use --n to take fewer)")
                skipped: list[str] = []
                where = ", ".join(map(str, given))
                doc = ev.evaluate_stress(preds, progress=step, source=where, draws=args.draws,
                                         patches=ev.labelled_patches(given, limit=args.n, skipped=skipped))
                doc["notes"] += skipped
        finally:
            bar.close()
        _emit(doc, ev.stress_table, args.json)
        return 0

    if args.real is not None:
        bar = tqdm(total=args.n, desc="evaluate (real)", unit="patch", disable=args.json, file=sys.stderr)
    else:
        total = args.n if args.data is not None else (args.simulate or SIMULATE_N)
        bar = tqdm(total=total, desc="evaluate", unit="patch", disable=args.json, file=sys.stderr)

    def progress(_name: str, scores: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in scores.items()})

    try:
        if args.real is not None:
            doc = ev.evaluate_real(args.real, preds, limit=args.n, progress=progress)
            table = ev.real_table
        elif args.data is not None:
            skipped: list[str] = []
            doc = ev.evaluate_labelled(ev.labelled_patches([args.data], args.n, skipped), preds, str(args.data),
                                       progress=progress, skipped=skipped)
            table = ev.labelled_table
        else:
            n, size = args.simulate or SIMULATE_N, args.size or SIMULATE_SIZE
            source = (f"{n} simulated test patches of {size} x {size} px (split 'test', seeds "
                      f"{args.seed0}..{args.seed0 + n - 1})")
            doc = ev.evaluate_labelled(ev.simulated_test_patches(n, args.seed0, size), preds, source, progress=progress)
            table = ev.labelled_table
    finally:
        bar.close()
    _emit(doc, table, args.json)
    return 0


def _emit(doc: dict[str, Any], table: Any, as_json: bool) -> None:
    from . import print_json

    if as_json:
        print_json(doc)
    else:
        print(table(doc))
