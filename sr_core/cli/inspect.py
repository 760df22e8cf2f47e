"""``python -m sr_core inspect PATH | --simulate N``: the hallucination inspector on one patch or a simulated test set.

Prints the uncertainty calibration, the improvement / hallucination / omission fractions against the 10 m answer,
the consistency with the 10 m evidence, effective-resolution figures (skill by distance to the boundary and by
parcel size, gap recall, boundary F1) and, with ``--probes``, what the model paints on inputs without field
information. ``--report OUT.html|OUT.pdf`` writes the one-page report of a single patch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import print_json
from ._args import COUNT, MARGIN, NONNEG, SIDE, TTA


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "inspect",
        help="hallucination inspector: uncertainty, hallucination/omission vs the 10 m answer, effective resolution, probes",
        description=(
            "Inspect where the 2.5 m map departs from what 10 m data supports. PATH is an EOPatch folder; "
            "--simulate N inspects N freshly simulated test-split patches and prints pooled figures (counts summed). "
            "Definitions: docs/HALLUCINATIONS.md."
        ),
    )
    p.add_argument("path", nargs="?", type=Path, help="EOPatch folder (omit with --simulate)")
    p.add_argument("--simulate", type=COUNT, metavar="N", default=None, help="inspect N fresh simulated test patches")
    p.add_argument("--size", type=SIDE, default=128, help="simulated patch side in 10 m pixels (default 128)")
    p.add_argument("--seed", type=int, default=None,
                   help="first simulation seed (default 500000: disjoint from training and `evaluate --simulate`)")
    p.add_argument("--model", type=Path, default=None, help="model checkpoint (default: the bundled weights)")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, mps")
    p.add_argument("--tta", type=TTA, default=8, help="test-time flips/rotations for the uncertainty (1 = none; default 8)")
    p.add_argument("--date-members", type=NONNEG, default=0,
                   help="members of the date-subset ensemble (random halves of the dates; 0 = off, e.g. 4)")
    p.add_argument("--answer", choices=("auto", "pixel", "model"), default="auto",
                   help="the 10 m answer: pixel baseline, the model aggregated to 10 m, or auto (pixel when available)")
    p.add_argument("--margin", type=MARGIN, default=0.5,
                   help="|cover − 10 m evidence| above this marks a 10 m pixel as contradicting the data (default 0.5)")
    p.add_argument("--probes", action="store_true", help="also run the probes (on the first patch with --simulate)")
    p.add_argument("--report", type=Path, default=None, metavar="OUT", help="write a one-page report (.html or .pdf)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(func=run)
    return p


class _Bar:
    """A tqdm bar on stderr per stage (silent when stderr is not a terminal or --json is set)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if stage != self.stage or self.bar is None:
            self.close()
            self.bar = tqdm(total=total, desc=stage, file=sys.stderr, leave=False)
            self.stage = stage
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    if (args.path is None) == (args.simulate is None):
        raise ConfigError("give either an EOPatch PATH or --simulate N (not both)")
    bar = _Bar(not args.json and sys.stderr.isatty())
    try:
        if args.simulate is not None:
            return _run_simulated(args, bar)
        return _run_patch(args, bar)
    finally:
        bar.close()


def _run_patch(args: argparse.Namespace, bar: _Bar) -> int:
    from ..errors import ConfigError
    from ..inspect import format_inspection, inspect_patch
    from ..io import load_eopatch
    from ..io.archive import find_eopatches

    if args.report is not None and args.report.suffix.lower() not in {".html", ".htm", ".pdf"}:  # before the work
        raise ConfigError(f"--report {args.report}: unknown format {args.report.suffix or '(none)'}; name it .html or "
                          ".pdf")
    if args.path.is_dir() and not (args.path / "data").is_dir():
        inside = find_eopatches(args.path)
        if inside:
            raise ConfigError(f"inspect takes one patch folder; {args.path} holds {len(inside)} (e.g. "
                              f"{inside[0].relative_to(args.path)}): name one of them")
    patch = load_eopatch(args.path)
    ins = inspect_patch(patch, model=args.model, device=args.device, tta=args.tta, date_members=args.date_members,
                        answer=args.answer, margin=args.margin, probes=args.probes, progress=bar)
    bar.close()
    out = None
    if args.report is not None:
        from ..report import render_report

        out = render_report(patch, ins, args.report)
    if args.json:
        print_json({**ins.to_dict(), "report": None if out is None else str(out)})
    else:
        print(format_inspection(ins))
        if out is not None:
            print(f"report written to {out}")
    return 0


def _run_simulated(args: argparse.Namespace, bar: _Bar) -> int:
    from ..errors import ConfigError
    from ..inspect import SIM_SEED0, format_simulated, inspect_simulated

    if args.report is not None:
        raise ConfigError("--report describes one patch; run `python -m sr_core inspect EOPATCH --report OUT.html` "
                          "on a single patch (the pooled figures of --simulate are printed)")
    res = inspect_simulated(args.simulate, args.size, model=args.model, device=args.device,
                            seed0=SIM_SEED0 if args.seed is None else args.seed, tta=args.tta,
                            date_members=args.date_members, answer=args.answer, margin=args.margin, probes=args.probes,
                            progress=bar)
    bar.close()
    if args.json:
        print_json(res.to_dict())
    else:
        print(format_simulated(res))
    return 0
