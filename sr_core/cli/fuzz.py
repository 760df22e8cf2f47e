"""``python -m sr_core fuzz --cases N [--seed S]``: the nightly-style fuzzing of the EOPatch and archive readers.

Builds N random (mostly broken) EOPatch folders and archives (``tools/fuzz_readers.py``) and checks that the
readers return a valid patch or raise the project's own errors, within a time limit per case, without writing
outside their target. Prints the outcome counts and every failing case with the command that reproduces it;
exits 1 when a case fails. Everything is written under a temporary folder (``--work`` to choose it) and removed.
The harness is a development tool that ships with the source checkout, not with the installed package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._args import COUNT, NONNEG, positive


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fuzz",
        help="fuzz the EOPatch / archive readers with random broken inputs (nightly-style check)",
        description=(
            "Build random EOPatch folders and archives (truncated files, random bytes, odd arrays and headers, wrong "
            "JSON, odd pickles, hostile archive members, bombs) and check that the readers either return a valid "
            "patch or raise an sr_core error, never hang and never write outside their folder. Exit code 1 when "
            "any case fails."
        ),
    )
    p.add_argument("--cases", type=COUNT, default=1000, help="number of random cases (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="run seed: the same seed replays the same cases (default 0)")
    p.add_argument("--case", type=NONNEG, default=None, metavar="I", help="run only case I of this seed (to reproduce)")
    p.add_argument("--time-limit", type=positive, default=20.0, metavar="S",
                   help="seconds one case may take before it counts as a hang (default 20)")
    p.add_argument("--work", type=Path, default=None, help="folder for the cases (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    p.set_defaults(func=run)
    return p


def _harness() -> Any:
    """``tools/fuzz_readers.py`` of the checkout this package runs from."""
    import importlib.util

    from ..errors import ConfigError
    from ..paths import REPO_DIR

    path = REPO_DIR / "tools" / "fuzz_readers.py"
    if not path.is_file():
        raise ConfigError("the reader fuzzing harness ships with the source checkout (tools/fuzz_readers.py), not with "
                          "the installed package; run `python -m sr_core fuzz` from a checkout")
    spec = importlib.util.spec_from_file_location("sr_core_fuzz_readers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def run(args: argparse.Namespace) -> int:
    import tempfile
    import warnings

    from . import EXIT_FAILURE, print_json

    run_fuzz = _harness().run_fuzz

    bar = None
    if not args.json:
        from tqdm import tqdm

        bar = tqdm(total=1 if args.case is not None else args.cases, desc="fuzz", unit="case", file=sys.stderr)

    def tick(done: int, total: int) -> None:
        if bar is not None:
            bar.update(1)

    with tempfile.TemporaryDirectory(prefix="sr-core-fuzz-", dir=args.work) as work, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices in deliberately broken cubes
        report = run_fuzz(args.cases, args.seed, Path(work), seconds=args.time_limit, only=args.case, progress=tick)
    if bar is not None:
        bar.close()
    if args.json:
        print_json({"seed": args.seed, **report.as_dict()})
    else:
        print(f"fuzz: {report.cases} cases (seed {args.seed}) in {report.seconds:.1f} s; slowest case "
              f"{report.slowest[0]:.2f} s (case {report.slowest[1]})")
        for outcome, n in report.outcomes.most_common():
            print(f"  {n:6d}  {outcome}")
        if report.bugs:
            print(f"{len(report.bugs)} failing case(s):")
            for i, kind, detail in report.bugs:
                print(f"  case {i} ({kind}): {detail}")
                print(f"    reproduce: python -m sr_core fuzz --seed {args.seed} --case {i}")
        else:
            print("no failures: every case returned a valid patch or raised an sr_core error, in time, inside its folder")
    return EXIT_FAILURE if report.bugs else 0
