"""``python -m sr_core info PATH [--json] [--compute-clouds]``: describe an EOPatch folder, a folder of them, or an
archive of them, with plain warnings about what each series lacks (:func:`sr_core.quality.series_warnings`); or a
model checkpoint (``.pt``): its network, how it was trained, its validation history and whether it resumes."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

CHECKPOINT_SUFFIXES = (".pt", ".pth")  #: files ``info`` reads as model checkpoints (weights only, never code)


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info",
        help="describe an EOPatch folder, a folder of EOPatches or a .zip/.tar.gz of them, or a model checkpoint",
        description=(
            "Print band shape, dates, cloud fraction per date, bbox, CRS, features present, product level and "
            "whether the data is simulated or real. With --json: one object for a single EOPatch folder, or "
            '{"path": ..., "patches": [...]} for a folder of patches or an archive. Given a model checkpoint '
            "(.pt, e.g. models/sr-small.pt or a training run's file): its network, bands, threshold, how and on what "
            "it was trained, its validation history and, for a training checkpoint, the step it resumes from."
        ),
    )
    p.add_argument("path", type=Path, help="EOPatch folder, folder of EOPatch folders, .zip / .tar.gz / .tar archive, "
                                           "or model checkpoint (.pt)")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument("--compute-clouds", action="store_true",
                   help="compute cloud masks with s2cloudless for patches that have none (slow: seconds per date on "
                        "a 500 × 500 patch) and describe the patch with them")
    p.set_defaults(func=run)
    return p


def describe(patch: Any) -> dict[str, Any]:
    """Plain, JSON-able facts about a :class:`~sr_core.patch.Patch` (with its series warnings)."""
    from ..bands import BAND_NAMES
    from ..clouds import masks_were_computed
    from ..quality import ground_pixel_size, series_warnings

    T, H, W, C = patch.bands.shape
    cloud = [None if math.isnan(float(c)) else round(float(c), 4) for c in patch.cloud_fraction()]
    px, py, _ = ground_pixel_size(patch)  # on the ground, also for a latitude / longitude grid
    return {
        "name": patch.name,
        "source": patch.info.source.value,
        "product_level": patch.info.product_level.value,
        "shape": [T, H, W, C],
        "T": T,
        "H": H,
        "W": W,
        "n_bands": C,
        "bands": list(BAND_NAMES),
        "dates": [t.isoformat() for t in patch.timestamps],
        "cloud_fraction": cloud,
        "cloud_source": ("cloud_mask" if patch.cloud_mask is not None
                         else "cloud_prob > 0.4" if patch.cloud_prob is not None else None),
        "clouds_computed": masks_were_computed(patch),
        "bbox": list(patch.bbox.bounds),
        "crs": patch.bbox.crs,
        "epsg": patch.bbox.epsg,
        "pixel_size_m": [round(px, 4), round(py, 4)],
        "features": patch.features_present(),
        "label_shape": list(patch.label_shape) if patch.has_labels else None,
        "norm_factor": patch.info.norm_factor,
        "notes": list(patch.info.notes),
        "warnings": series_warnings(patch),
        "meta": dict(patch.info.meta),
    }


def _text(d: dict[str, Any]) -> str:
    lines = [
        f"{d['name']}  ({d['source'].upper()}, {d['product_level']})",
        f"  bands     {tuple(d['shape'])} float32 reflectance: T={d['T']}, {d['H']} × {d['W']} px, {d['n_bands']} bands "
        f"({' '.join(d['bands'])})",
        f"  bbox      {', '.join(f'{v:.2f}' for v in d['bbox'])}  {d['crs']}  "
        f"(pixel {d['pixel_size_m'][0]:g} × {d['pixel_size_m'][1]:g} m)",
        f"  features  {', '.join(d['features'])}",
    ]
    if d["label_shape"]:
        lines.append(f"  labels    {d['label_shape'][0]} × {d['label_shape'][1]} px at 2.5 m")
    src = (f" ({d['cloud_source']}{', computed' if d.get('clouds_computed') else ''})" if d["cloud_source"]
           else " (no cloud layer)")
    lines.append(f"  dates     {d['T']}, cloud fraction per date{src}:")
    for t, c in zip(d["dates"], d["cloud_fraction"], strict=True):
        lines.append(f"    {t.replace('T', ' ')}  {'no data' if c is None else f'{100 * c:5.1f} %'}")
    for n in d["notes"]:
        lines.append(f"  note      {n}")
    for w in d.get("warnings", []):
        lines.append(f"  warning   {w}")
    return "\n".join(lines)


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")


def _checkpoint_text(d: dict[str, Any]) -> str:
    n = d["network"]
    doy = "into the per-date MLP too" if n["doy_hidden"] else "in the attention only"
    lines = [
        f"{d['name']}  (sr_core model checkpoint, {d['format']})",
        f"  network    {d['n_params']:,} parameters: per-date encoder {n['date_channels']} channels ({n['heads']} "
        f"attention heads; day of year as {n['doy_freqs']} harmonics, {doy}); trunk {n['width']} / {n['width20']} / "
        f"{n['width40']} channels at 10 / 20 / 40 m ({n['blocks10']} / {n['blocks20']} / {n['blocks40']} blocks); "
        f"decoder {n['up_channels']} channels at 2.5 m",
        f"  bands      {' '.join(d['bands'])}; cultivated where probability > {d['threshold']:g}",
    ]
    tc = d["train_config"]
    if d["steps"] is not None:
        how = [f"{d['steps']:,} steps"]
        how += [f"{k} {tc[k]}" for k in ("lr", "batch", "precision") if k in tc]
        how += [f"seed {d['seed']}"] if d["seed"] is not None else []
        how += [f"on {d['device']}"] if d["device"] else []
        lines.append(f"  trained    {', '.join(how)}; simulator {d['simulator_version'] or '?'}"
                     + (f"; started from {d['init_from']}" if d["init_from"] else "; from scratch"))
    if d["data"]:
        lines.append(f"  data       {d['data']}")
    made = [x for x in (d["created"], f"git {d['git_commit'][:10]}" if d["git_commit"] else None,
                        f"torch {d['torch']}" if d["torch"] else None) if x]
    if made:
        lines.append(f"  made       {', '.join(made)}")
    if d["history"]:
        lines.append(f"  validation {d['validation'] or ''}".rstrip())
        for h in d["history"]:
            pts = f"  real points MCC {h['points_mcc']:.3f}" if h.get("points_mcc") is not None else ""
            loss, wmcc, thr = (_num(h.get(k)) for k in ("loss", "wmcc@best", "best_threshold"))
            lines.append(f"    step {h.get('step', '?'):>6}  loss {loss:.4f}  weighted MCC {wmcc:.4f} @{thr:.2f}{pts}")
        b = d["best_validation"]
        if b:
            lines.append(f"  best       weighted MCC {b['wmcc']:.4f} at step {b['step']}")
    if d["lineage"]:
        lines.append(f"  lineage    {len(d['lineage'])} phases, {d['lineage_steps'] or 0:,} steps in all: "
                     + ", ".join(f"{p.get('phase', '?')} ({p.get('steps', '?')})" for p in d["lineage"]))
    r = d["resumable"]
    if r:
        total = f" of {r['steps']:,}" if r["steps"] else ""
        lines.append(f"  resumable  yes: training state at step {r['step']:,}{total} (optimizer, random streams, pool); "
                     "continue with the same train command and --resume")
    else:
        lines.append("  resumable  no (weights only: a bundled or best-validation file); fine-tune it with train --init")
    if d["stripped_from"]:
        lines.append(f"  stripped   from {d['stripped_from']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..io.archive import is_eopatch, iter_patch_folders
    from . import print_json

    path: Path = args.path
    if not path.exists():
        raise FileNotFoundError(2, "no such file or folder", str(path))
    if path.is_file() and path.suffix.lower() in CHECKPOINT_SUFFIXES:
        from ..model import describe_checkpoint

        d = describe_checkpoint(path)
        print_json(d) if args.json else print(_checkpoint_text(d))
        return 0
    single = path.is_dir() and is_eopatch(path)
    facts = []
    for folder, patch in iter_patch_folders(path):  # one patch in memory at a time
        if args.compute_clouds and patch.cloud_mask is None:
            patch = _with_clouds(folder, patch, progress=not args.json)
        facts.append(describe(patch))
    if args.json:
        print_json(facts[0] if single else {"path": str(path), "patches": facts})
    else:
        print("\n\n".join(_text(d) for d in facts))
    return 0


def _with_clouds(folder: Path, patch: Any, *, progress: bool) -> Any:
    """``patch`` with cloud masks (s2cloudless; the folder's real B10 when its cube has 13 bands)."""
    from ..clouds import ensure_cloud_masks
    from ..io.eopatch import read_b10

    b10 = read_b10(folder, patch) if patch.cloud_prob is None else None
    if not progress or patch.cloud_prob is not None:
        return ensure_cloud_masks(patch, b10=b10)
    from tqdm import tqdm

    with tqdm(total=patch.n_dates, desc=f"cloud masks {patch.name}", unit="date", leave=False) as bar:
        return ensure_cloud_masks(patch, b10=b10, progress=lambda done, total: bar.update(1))
