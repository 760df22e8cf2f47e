"""``python -m sr_core clouds PATH``: compute s2cloudless cloud masks and, where real masks exist, print agreement.

For every patch in PATH (an EOPatch folder, a folder of them, or an archive) the masks are computed at 10 m
(:mod:`sr_core.clouds`) with the B10 substitute, and also with the true B10 when the folder has a 13-band cube.
When the patch (or ``--reference``) has real masks, the agreement is printed: accuracy and IoU of the cloud class
of the computed mask against the real ``CLM`` over pixels with data, and the mean absolute difference of the
probability against the real ``CLP``. ``--save OUT`` writes the patch with the computed masks as an EOPatch.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "clouds",
        help="compute cloud masks with s2cloudless; print agreement with real masks where they exist",
        description=(
            "Compute s2cloudless cloud probability and masks at 10 m for each patch (B10 substitute; true B10 too when "
            "the band cube has 13 bands). When real CLM/CLP exist (in the patch or in --reference), print accuracy and "
            "IoU of the cloud class against them."
        ),
    )
    p.add_argument("path", type=Path, help="EOPatch folder, folder of EOPatch folders, or .zip / .tar.gz archive")
    p.add_argument("--reference", type=Path, default=None,
                   help="EOPatch folder whose CLM/CLP are the truth (e.g. the original of a bands-only copy)")
    p.add_argument("--also-b10", type=float, action="append", default=[], metavar="VALUE",
                   help="also compute masks with B10 set to this constant reflectance (repeatable), for comparison")
    p.add_argument("--scale", type=int, default=1, metavar="K",
                   help="classify K × K block means (K=2: 20 m, K=4: 40 m; K² times faster), masks still at 10 m")
    p.add_argument("--overwrite", action="store_true", help="with --save: replace an existing EOPatch folder")
    p.add_argument("--save", type=Path, default=None,
                   help="write the patch with computed masks (B10 true if present, else substitute) as an EOPatch "
                        "folder here (a single patch only)")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=run)
    return p


def _fmt(x: float, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "  n/a"
    return f"{100 * x:5.1f} %" if pct else f"{x:.4f}"


def evaluate(patch: Any, *, b10: Any = None, reference: Any = None, also_b10: list[float] | None = None,
             scale: int = 1, progress: bool = False) -> dict[str, Any]:
    """Compute masks for ``patch`` with each B10 variant and compare them with the real masks of ``reference``
    (default: the patch itself). Returns plain JSON-able facts."""
    import numpy as np

    from .. import clouds

    ref = patch if reference is None else reference
    if reference is not None and reference.shape != patch.shape:
        from ..errors import PatchValidationError

        raise PatchValidationError(
            f"--reference {reference.name} has (T, H, W) = {reference.shape}, the patch has {patch.shape}; "
            "give the folder this patch was made from"
        )
    truth = ref.cloud_mask
    truth_prob = ref.cloud_prob
    valid = patch.data_mask()
    variants: list[tuple[str, Any]] = []
    if b10 is not None:
        variants.append(("true B10", b10))
    variants.append((f"B10 substitute {clouds.B10_SUBSTITUTE:g}", None))
    variants += [(f"B10 constant {v:g}", float(v)) for v in (also_b10 or [])]
    rows = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(variants) * patch.n_dates, desc=f"s2cloudless {patch.name}", unit="date", leave=False)

    def tick(done: int, total: int) -> None:
        if bar is not None:
            bar.update(1)

    for label, value in variants:
        res = clouds.compute_cloud_masks(patch, b10=value, scale=scale, progress=tick)
        row: dict[str, Any] = {
            "variant": label, "b10": res.b10, "seconds": round(res.seconds, 3),
            "cloud_fraction_per_date": [round(float(v), 4) for v in
                                        (res.mask & valid).reshape(patch.n_dates, -1).sum(1)
                                        / np.maximum(valid.reshape(patch.n_dates, -1).sum(1), 1)],
        }
        if truth is not None:
            row["agreement"] = {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 4))
                                for k, v in clouds.mask_agreement(res.mask, truth, valid).items()}
        if truth_prob is not None:
            row["prob_mae_vs_clp"] = round(float(np.abs(res.prob - truth_prob)[valid].mean()), 4) if valid.any() else None
        rows.append(row)
    if bar is not None:
        bar.close()
    out: dict[str, Any] = {
        "name": patch.name, "shape": list(patch.shape), "product_level": patch.info.product_level.value,
        "method": f"s2cloudless {clouds.s2cloudless_version()}",
        "settings": {"threshold": clouds.THRESHOLD, "average_over_px": clouds.AVERAGE_OVER_PX,
                     "dilation_px": clouds.DILATION_PX, "resolution_m": 10 * scale},
        "reference": None if truth is None and truth_prob is None else (ref.name if reference is not None else "patch's own"),
        "reference_cloud_fraction_per_date": None if truth is None else
        [round(float(v), 4) for v in (truth & valid).reshape(patch.n_dates, -1).sum(1)
         / np.maximum(valid.reshape(patch.n_dates, -1).sum(1), 1)],
        "variants": rows,
    }
    return out


def _text(d: dict[str, Any]) -> str:
    T, H, W = d["shape"]
    s = d["settings"]
    lines = [f"{d['name']}  ({d['product_level']}, T={T}, {H} × {W} px): {d['method']} at {s['resolution_m']} m, threshold "
             f"{s['threshold']}, average over {s['average_over_px']} px, dilation {s['dilation_px']} px"]
    if d["reference"] is None:
        lines.append("  no real CLM/CLP to compare with (pass --reference ORIGINAL_FOLDER to measure agreement)")
    else:
        lines.append(f"  reference masks: {d['reference']}; agreement over pixels with data")
        lines.append(f"  {'variant':28s} {'accuracy':>9s} {'IoU cloud':>9s} {'precision':>9s} {'recall':>9s} "
                     f"{'MAE vs CLP':>10s} {'seconds':>8s}")
    for r in d["variants"]:
        a = r.get("agreement") or {}
        mae = r.get("prob_mae_vs_clp")
        lines.append(
            f"  {r['variant']:28s} {_fmt(a.get('accuracy', float('nan'))):>9s} {_fmt(a.get('iou_cloud', float('nan'))):>9s} "
            f"{_fmt(a.get('precision', float('nan'))):>9s} {_fmt(a.get('recall', float('nan'))):>9s} "
            f"{_fmt(float('nan') if mae is None else mae):>10s} {r['seconds']:8.2f}"
        )
    lines.append("  cloud fraction per date:")
    if d["reference_cloud_fraction_per_date"] is not None:
        lines.append(f"    {'real CLM':26s} " + " ".join(_fmt(v, True) for v in d["reference_cloud_fraction_per_date"]))
    for r in d["variants"]:
        lines.append(f"    {r['variant']:26s} " + " ".join(_fmt(v, True) for v in r["cloud_fraction_per_date"]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import sys

    from .. import clouds
    from ..io.archive import iter_patch_folders
    from ..io.eopatch import load_eopatch, read_b10, write_eopatch
    from . import print_json

    path: Path = args.path
    if not path.exists():
        raise FileNotFoundError(2, "no such file or folder", str(path))
    clouds.s2cloudless_version()  # fail early, with the fix, when s2cloudless is missing
    if args.scale < 1:
        from ..errors import ConfigError

        raise ConfigError(f"--scale {args.scale}: must be 1 (10 m) or more")
    if args.save is not None:  # before any work: --save takes one patch, and never replaces a folder unasked
        from ..errors import ConfigError
        from ..io.archive import find_eopatches

        n = len(find_eopatches(path)) if path.is_dir() else 1
        if n > 1:
            raise ConfigError(f"--save writes one patch; {path} holds {n}: run once per patch folder")
        if args.save.exists() and not args.overwrite:
            raise ConfigError(f"{args.save}: already exists; add --overwrite to replace it, or choose another --save")
    reference = load_eopatch(args.reference) if args.reference is not None else None
    facts = []
    saved = 0
    for folder, patch in iter_patch_folders(path):
        b10 = read_b10(folder, patch)
        d = evaluate(patch, b10=b10, reference=reference, also_b10=args.also_b10, scale=args.scale, progress=not args.json)
        facts.append(d)
        if not args.json:
            print(_text(d), flush=True)
        if args.save is not None:
            if saved:
                from ..errors import ConfigError

                raise ConfigError("--save writes one patch; PATH holds several: run once per patch folder")
            bare = patch.replace(cloud_prob=None, cloud_mask=None)
            out = clouds.ensure_cloud_masks(bare, b10=b10, scale=args.scale)
            write_eopatch(out, args.save, overwrite=args.overwrite)
            saved += 1
            print(f"saved {args.save}", file=sys.stderr)
    if args.json:
        print_json(facts[0] if len(facts) == 1 else {"path": str(path), "patches": facts})
    return 0
