"""``python -m sr_core simulate``: write simulated EOPatches, or print the simulator's calibration.

* ``simulate --out DIR --n N --seed S [--size 500] [--split train|test] [--region KEY]`` writes N EOPatch
  folders ``DIR/eopatch-01`` … (patch i uses seed S + i − 1), each marked as simulated in its metadata.
* ``simulate --calibrate [--n N] [--json]`` simulates fresh test patches and prints every calibration figure
  beside its target and whether it is in range, then the realism statistics of the simulator alone
  (see docs/SIMULATOR.md).
* ``simulate --calibrate --real DIR [--n 16] [--size 200] [--json]`` measures every realism statistic
  (:mod:`sr_core.simulate.realism`) on the real files under DIR and on fresh simulated test patches, and prints
  them side by side with the target and OK / OUT. The real data is read only from DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._args import COUNT, SIDE


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "simulate",
        help="write simulated Sentinel-2 farmland patches (EOPatch folders), or print the calibration (--calibrate)",
        description=(
            "Simulate Slovenian farmland as Sentinel-2 L2A sees it, with 2.5 m labels, in the benchmark's EOPatch "
            "layout. Deterministic per (seed, split); train and test never share a random stream. With --calibrate: "
            "compare the simulator's figures with their real targets."
        ),
    )
    p.add_argument("--out", type=Path, help="folder to write eopatch-01 … into (created if missing)")
    p.add_argument("--n", type=COUNT, default=None,
                   help="number of patches (default 1; with --calibrate 10; for the realism statistics 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first patch; patch i uses seed + i (default 0)")
    p.add_argument("--size", type=SIDE, default=None,
                   help="patch size in 10 m pixels (default 500 = 5 km; for the realism statistics 200)")
    p.add_argument("--split", choices=("train", "test"), default="train", help="seed stream (default train)")
    p.add_argument("--region", default=None, help="region key (default: drawn from the seed); see --list-regions")
    p.add_argument("--list-regions", action="store_true", help="list the regions and exit")
    p.add_argument("--overwrite", action="store_true", help="replace existing eopatch-XX folders")
    p.add_argument("--compress", type=int, default=1, choices=range(0, 10), metavar="0-9",
                   help="gzip level of the arrays (0 = plain .npy; default 1)")
    p.add_argument("--calibrate", action="store_true", help="print the calibration figures against their targets")
    p.add_argument("--real", type=Path, default=None, metavar="DIR",
                   help="with --calibrate: measure the realism statistics on the real files under DIR (e.g. "
                        "../shared/data/real) next to the simulator's, with targets and OK / OUT")
    p.add_argument("--quick", action="store_true",
                   help="with --calibrate: skip the slow figures (baselines, speed) and the realism statistics")
    p.add_argument("--landscapes", type=COUNT, default=8, metavar="N",
                   help="with --calibrate: label-only 5 km landscapes the parcel-geometry rows are measured on "
                        "(default 8, about 6 s each; 0: measure them on the --n patches, which biases them low)")
    p.add_argument("--pixel-model", type=Path, default=None,
                   help="with --calibrate: score the 10 m pixel baseline with this model file (default: the bundled one)")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=run)
    return p


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="patch", file=sys.stderr, disable=None)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..simulate import REGIONS

    if args.list_regions:
        rows = [r.describe() | {"title": r.title} for r in REGIONS.values()]
        if args.json:
            from . import print_json

            print_json(rows)
        else:
            for r in rows:
                print(f"{r['key']:18s} {r['title']} ({r['cells']} cells)")
        return 0
    if args.region is not None and args.region not in REGIONS:
        raise ConfigError(f"--region {args.region!r} is unknown; choose one of {', '.join(REGIONS)}")
    if args.real is not None and not args.calibrate:
        raise ConfigError("--real DIR goes with --calibrate (it names the real data the simulator is compared with)")
    if args.calibrate:
        return _realism(args) if args.real is not None else _calibrate(args)
    if args.out is None:
        raise ConfigError("simulate needs --out DIR (where to write the patches) or --calibrate")
    n = 1 if args.n is None else args.n
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be non-negative, got {args.seed}")
    if args.size is None:
        args.size = 500
    return _write(args, n)


def _write(args: argparse.Namespace, n: int) -> int:
    from ..io import write_eopatch
    from ..simulate import simulate_patch

    out: Path = args.out
    width = max(2, len(str(n)))
    written = []
    bar = _progress(n, "simulate")
    try:
        for i in range(n):
            seed = args.seed + i
            name = f"eopatch-{i + 1:0{width}d}"
            bar.set_postfix_str(f"{name} seed {seed}")
            patch = simulate_patch(seed, size=args.size, split=args.split, region=args.region)
            path = write_eopatch(patch, out / name, overwrite=args.overwrite, compress_level=args.compress)
            written.append({"path": str(path), "name": name, "seed": seed, "split": args.split,
                            "region": patch.info.meta["region"], "T": patch.n_dates, "bbox": list(patch.bbox.bounds)})
            bar.update(1)
    finally:
        bar.close()
    if args.json:
        from . import print_json

        print_json({"out": str(out), "patches": written})
    else:
        for w in written:
            print(f"{w['path']}  seed {w['seed']} ({w['split']})  {w['region']}  T={w['T']}")
    return 0


def _bar_progress(desc: str) -> tuple[Any, Any]:
    """A (progress callback, closer) pair drawing one tqdm bar on stderr."""
    state: dict[str, Any] = {"bar": None}

    def progress(done: int, total: int, message: str) -> None:
        if state["bar"] is None or state["bar"].total != total:
            if state["bar"] is not None:
                state["bar"].close()
            state["bar"] = _progress(total, desc)
        state["bar"].n = done
        state["bar"].set_postfix_str(message[:60])
        state["bar"].refresh()

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return progress, close


def _realism_args(args: argparse.Namespace, n_default: int = 16) -> tuple[int, int]:
    from ..errors import ConfigError

    n = n_default if args.n is None else args.n
    size = 200 if args.size is None else args.size
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if size < 32:
        raise ConfigError(f"--size must be at least 32 px for the realism statistics, got {size}")
    if args.landscapes < 0:
        raise ConfigError(f"--landscapes must be 0 or more, got {args.landscapes}")
    return n, size


def _realism(args: argparse.Namespace) -> int:
    """``--calibrate --real DIR``: the realism statistics, real next to simulated."""
    from ..errors import ConfigError
    from ..simulate.realism import format_realism, realism_report

    if not args.real.is_dir():
        raise ConfigError(f"--real {args.real}: no such folder; give the folder that holds flanders-2019-fields-lpis, "
                          "slovenia-forest-l1c-5frames, … (e.g. ../shared/data/real)")
    n, size = _realism_args(args)
    progress, close = _bar_progress("realism")
    try:
        report = realism_report(args.real, n=n, size=size, seed=args.seed, progress=progress,
                                landscapes=args.landscapes)
    finally:
        close()
    if args.json:
        from . import print_json

        print_json(report)
    else:
        print(format_realism(report))
    return 0 if report["all_in_range"] else 1


def _calibrate(args: argparse.Namespace) -> int:
    from ..simulate.calibrate import format_table, run_calibration

    n = 10 if args.n is None else args.n
    progress, close = _bar_progress("calibrate")
    try:
        report = run_calibration(n_test=n, seed=args.seed, quick=args.quick, progress=progress,
                                 pixel_model=args.pixel_model)
        realism = None
        if not args.quick:  # the simulator's side of the realism statistics; the real side needs --real DIR
            from ..simulate.realism import realism_report

            rn, size = _realism_args(argparse.Namespace(n=None, size=args.size, landscapes=args.landscapes))
            realism = realism_report(None, n=rn, size=size, seed=args.seed, progress=progress,
                                     landscapes=args.landscapes)
    finally:
        close()
    if args.json:
        from . import print_json

        print_json(report if realism is None else {**report, "realism": realism})
    else:
        print(format_table(report))
        if realism is not None:
            from ..simulate.realism import format_realism

            print()
            print(format_realism(realism))
    return 0 if report["all_in_range"] else 1
