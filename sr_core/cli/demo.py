"""``python -m sr_core demo [--force] [--json]``: build the built-in demo dataset ahead of time (the app builds it on
first start otherwise) and list its patches."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="build the simulated demo dataset (under $SR_CORE_HOME/demo) if missing, and list it",
        description=(
            "Build the demo dataset: six simulated, labelled 250 × 250 patches over six Slovenian regions (half train, "
            "half test seeds). Nothing is rebuilt when it is already there, unless --force."
        ),
    )
    p.add_argument("--force", action="store_true", help="rebuild even when the demo data is present and current")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..demo import DEMO_RECIPE, ensure_demo
    from ..paths import demo_dir

    bar = tqdm(total=len(DEMO_RECIPE), desc="demo", unit="patch", file=sys.stderr, disable=None)

    def progress(done: int, total: int, message: str) -> None:
        bar.n = done
        bar.set_postfix_str(message[:60])
        bar.refresh()

    try:
        paths = ensure_demo(progress=progress, force=args.force)
    finally:
        bar.close()
    if args.json:
        from . import print_json

        print_json({"folder": str(demo_dir()), "patches": [str(p) for p in paths]})
    else:
        print(f"demo data in {demo_dir()}:")
        for p in paths:
            print(f"  {p}")
    return 0
