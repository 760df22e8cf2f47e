"""Time the benchmark engine: ``weight_map`` on a realistic 2000 × 2000 label and scoring 25 such patches (pooled).

Run: ``.venv/bin/python bench/bench_metrics.py [--patches 25] [--size 2000] [--no-diagnostics]``

The labels imitate the challenge's: a mosaic of rectangular fields (areas log-uniform from a few dozen to tens of
thousands of 2.5 m pixels), each shrunk by a 1–2 px gap like the −2.5 m inward buffer, about half of them
cultivated, so a 2000 × 2000 label holds ~1000 cultivated parcels. Predictions are the truth with realistic
errors: boundaries shifted by one pixel, some parcels missed, some false fields.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def field_layout(size: int = 2000, seed: int = 0, min_area: int = 200, max_area: int = 100000) -> np.ndarray:
    """(size, size) bool CULTIVATED label: rectangles from recursive splits, 1–2 px gaps, ~50 % cultivated."""
    rng = np.random.default_rng(seed)
    cult = np.zeros((size, size), bool)
    stack = [(0, 0, size, size, float(np.exp(rng.uniform(np.log(min_area), np.log(max_area)))))]
    while stack:
        r, c, h, w, target = stack.pop()
        if h * w <= target or min(h, w) < 8:
            if rng.random() < 0.5:
                g0, g1 = rng.integers(1, 3, 2)  # inward buffer: 1–2 px gaps between neighbours
                cult[r + g0:r + h - 1, c + g1:c + w - 1] = True
            continue
        vertical = w > h if abs(w - h) > 0.3 * max(w, h) else rng.random() < 0.5
        n = w if vertical else h
        cut = int(n * rng.uniform(0.3, 0.7))
        child_target = float(np.exp(rng.uniform(np.log(min_area), np.log(max_area))))
        if vertical:
            stack += [(r, c, h, cut, child_target), (r, c + cut, h, w - cut, target)]
        else:
            stack += [(r, c, cut, w, child_target), (r + cut, c, h - cut, w, target)]
    return cult


def corrupt(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """A plausible prediction: boundaries shifted by one pixel, 10 % of parcels missed, a few false blobs."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    pred = np.roll(truth, 1, axis=int(rng.integers(0, 2)))
    lab, n = ndimage.label(pred)
    drop = rng.random(n + 1) < 0.1
    drop[0] = False
    pred = pred & ~drop[lab]
    for _ in range(50):
        r, c = rng.integers(0, truth.shape[0] - 40, 2)
        pred[r:r + rng.integers(5, 40), c:c + rng.integers(5, 40)] = True
    return pred


def main(argv: list[str] | None = None) -> int:
    from scipy import ndimage

    from sr_core.metrics import Scores, evaluate, weight_map

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=25)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--no-diagnostics", action="store_true")
    ap.add_argument("--files", action="store_true",
                    help="also time score_submission end to end: 25 GeoTIFFs vs 25 EOPatch folders (1 date each) on disk")
    args = ap.parse_args(argv)

    truth = field_layout(args.size, seed=0)
    n_parcels = ndimage.label(truth, structure=np.ones((3, 3)))[1]
    nd = np.zeros_like(truth)
    nd[100:300, 100:400] = True
    weight_map(truth[:200, :200], nd[:200, :200])  # warm-up (scipy.stats import, caches)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        weight_map(truth, nd)
        times.append(time.perf_counter() - t0)
    print(f"weight_map {args.size}x{args.size}, {n_parcels} parcels: best {min(times):.3f} s, median "
          f"{sorted(times)[1]:.3f} s (of 3)")

    labels = [field_layout(args.size, seed=s) for s in range(args.patches)]
    preds = [corrupt(t, seed=s) for s, t in enumerate(labels)]
    for diagnostics in ([False] if args.no_diagnostics else [False, True]):
        t0 = time.perf_counter()
        pooled = Scores.pool(evaluate(t, p, nd, name=f"p{i}", diagnostics=diagnostics)
                             for i, (t, p) in enumerate(zip(labels, preds, strict=True)))
        dt = time.perf_counter() - t0
        what = "with size classes + boundary F" if diagnostics else "weighted + unweighted counts only"
        print(f"score {args.patches} patches ({what}): {dt:.2f} s ({dt / args.patches:.3f} s/patch), "
              f"pooled wMCC {pooled.wmcc:.4f}, MCC {pooled.mcc:.4f}")
    if args.files:
        _bench_files(labels, preds, nd, args.no_diagnostics)
    return 0


def _bench_files(labels: list[np.ndarray], preds: list[np.ndarray], nd: np.ndarray, no_diagnostics: bool) -> None:
    """Write truth EOPatches (one date, labels) and a submission to a temporary folder and time the scoring."""
    import tempfile
    from datetime import datetime

    from sr_core import BBox, Patch, PatchInfo
    from sr_core.io.eopatch import write_eopatch
    from sr_core.io.submission import score_submission, write_submission

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (t, p) in enumerate(zip(labels, preds, strict=True), start=1):
            h, w = t.shape[0] // 4, t.shape[1] // 4
            x0 = 500_000.0 + 5000 * i
            bbox = BBox(x0, 5_100_000.0, x0 + 10 * w, 5_100_000.0 + 10 * h)
            patch = Patch(bands=np.zeros((1, h, w, 12), np.float32), timestamps=[datetime(2019, 6, 1)], bbox=bbox,
                          cultivated=t, not_declared=nd, info=PatchInfo(name=f"eopatch-{i:02d}"))
            write_eopatch(patch, root / "truth" / patch.name)
            write_submission(p, bbox, root / "sub", name=patch.name)
        for diagnostics in ([False] if no_diagnostics else [False, True]):
            t0 = time.perf_counter()
            result = score_submission(root / "sub", root / "truth", diagnostics=diagnostics)
            dt = time.perf_counter() - t0
            print(f"score_submission from disk ({len(labels)} GeoTIFFs + EOPatch labels, diagnostics={diagnostics}): "
                  f"{dt:.2f} s, valid={result.validation.ok}, pooled wMCC {result.pooled.wmcc:.4f}")


if __name__ == "__main__":
    raise SystemExit(main())
