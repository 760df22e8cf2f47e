"""Argument types that refuse nonsense where it is typed: ``--threads -1`` or ``--threshold 7`` is a usage error
naming the flag and the range, not a traceback (or a silent zero score) after minutes of work."""

from __future__ import annotations

import argparse
from collections.abc import Callable

#: The smallest patch or crop side in 10 m pixels the library works on (the model's receptive field, the weight map's
#: rings and a 2 px border all need room).
MIN_SIDE = 8


def at_least(lo: int) -> Callable[[str], int]:
    """A whole number ≥ ``lo``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be {lo} or more, got {v}")
        return v

    parse.__name__ = f"whole number ≥ {lo}"
    return parse


def between(lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False) -> Callable[[str], float]:
    """A finite number in [lo, hi], either end open on request."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (lo < v if open_lo else lo <= v) or not (v < hi if open_hi else v <= hi):
            raise argparse.ArgumentTypeError(
                f"must lie in {'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}, got {text}")
        return v

    parse.__name__ = "number"
    return parse


COUNT = at_least(1)  #: how many (patches, runs, steps, members, …)
NONNEG = at_least(0)  #: 0 means none or auto (threads, retries, crop, …)
SIDE = at_least(MIN_SIDE)  #: a patch, crop or tile side in 10 m pixels
FRACTION = between(0.0, 1.0)  #: a probability or share, 0–1
OPEN_FRACTION = between(0.0, 1.0, open_lo=True, open_hi=True)  #: a threshold strictly inside 0–1
MARGIN = between(0.0, 1.0, open_hi=True)  #: a margin in [0, 1)
positive = between(0.0, float("inf"), open_lo=True, open_hi=True)  #: a finite number > 0 (a rate, a time limit)
NONNEG_F = between(0.0, float("inf"), open_hi=True)  #: a finite weight ≥ 0
TTA = at_least(1)  #: flips / rotations; above 8 the library says how many there are
