"""``python -m sr_core info PATH [--json] [--compute-clouds]``: describe an EOPatch folder, a folder of them, or an
archive of them, with plain warnings about what each series lacks (:func:`sr_core.quality.series_warnings`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info",
        help="describe an EOPatch folder, a folder of EOPatches or a .zip/.tar.gz of them",
        description=(
            "Print band shape, dates, cloud fraction per date, bbox, CRS, features present, product level and "
            "whether the data is simulated or real. With --json: one object for a single EOPatch folder, or "
            '{"path": ..., "patches": [...]} for a folder of patches or an archive.'
        ),
    )
    p.add_argument("path", type=Path, help="EOPatch folder, folder of EOPatch folders, or .zip / .tar.gz / .tar archive")
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


def run(args: argparse.Namespace) -> int:
    from ..io.archive import is_eopatch, iter_patch_folders
    from . import print_json

    path: Path = args.path
    if not path.exists():
        raise FileNotFoundError(2, "no such file or folder", str(path))
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
