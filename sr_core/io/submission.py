"""Benchmark submissions: write, read, validate and score sets of ``eopatch-XX.tif`` GeoTIFFs.

The format (``docs/CHALLENGE.md``): a folder, ``.zip`` or ``.tar.gz`` holding exactly one ``<eopatch-folder>.tif``
per test patch: one band, uint8, values {0, 1} only, the patch's 2.5 m grid (2000 × 2000 for a challenge patch),
EPSG:32633 and bounds equal to the patch's bbox.

* :func:`write_submission` / :func:`write_probability` write one patch's GeoTIFF (rasterio, deflate, exact grid);
  :func:`write_predictions` runs a predictor over many patches and writes the whole submission (progress bar).
* :func:`validate_submission` checks every file and returns a :class:`SubmissionReport` listing *every* problem
  (missing / extra files, not a GeoTIFF, size, band count, dtype, values, CRS, bounds); a bad file never crashes it.
* :func:`score_submission` validates and scores against labelled EOPatches with :func:`sr_core.metrics.evaluate`,
  pooling all pixels of all patches into one weighted MCC (the benchmark score).

rasterio is imported inside the functions that need it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PatchFormatError, SubmissionError
from ..geo import BBox
from ..patch import Patch
from ..prediction import Prediction

#: Bounds may differ from the patch bbox by at most this fraction of a pixel.
BOUNDS_TOLERANCE_PX = 0.01
#: Archive limits for submissions: sparse 0/1 masks compress far more than EOPatches, so the ratio limit is loose
#: and the total size is what protects the disk (25 uint8 masks of 2000 × 2000 are 100 MB).
SUBMISSION_ARCHIVE_LIMITS: Mapping[str, int] = {"max_files": 1000, "max_total_bytes": 2 * 1024**3, "max_ratio": 100_000}
_TIF_SUFFIXES = (".tif", ".tiff")
_IGNORED = (".DS_Store", "Thumbs.db", "desktop.ini")


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------
def _as_binary(values: Any, what: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise SubmissionError(f"{what}: shape {a.shape}; a submission is one 2-D (4H, 4W) map of 0/1")
    if a.dtype == bool:
        return a.astype(np.uint8)
    if a.size and not np.all((a == 0) | (a == 1)):
        raise SubmissionError(
            f"{what}: values other than 0 and 1 (e.g. {np.unique(a[(a != 0) & (a != 1)])[:3].tolist()}); "
            "threshold probabilities first (Prediction.binary does, at Prediction.threshold)"
        )
    return a.astype(np.uint8)


def _target_and_grid(
    values: Any, patch_or_bbox: Patch | BBox | None, name: str | None, what: str
) -> tuple[np.ndarray, BBox, str, Prediction | None]:
    pred = values if isinstance(values, Prediction) else None
    if isinstance(patch_or_bbox, Patch):
        bbox, shape, default = patch_or_bbox.bbox, patch_or_bbox.label_shape, patch_or_bbox.name
    elif isinstance(patch_or_bbox, BBox):
        bbox, shape, default = patch_or_bbox, None, None
    elif patch_or_bbox is None and pred is not None:
        bbox, shape, default = pred.bbox, None, pred.name
    else:
        raise SubmissionError(f"{what}: give the Patch (or its BBox) the map belongs to, got {type(patch_or_bbox).__name__}")
    if pred is not None and default is None:
        default = pred.name
    final = name or default
    if not final:
        raise SubmissionError(f"{what}: no name; pass name='eopatch-01' (the EOPatch folder name)")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", final) or final.endswith("."):
        raise SubmissionError(f"{what}: {final!r} is not a plain file name; use the EOPatch folder name, e.g. 'eopatch-01'")
    arr = values.proba if pred is not None else np.asarray(values)
    if shape is not None and tuple(np.shape(arr)[-2:]) != tuple(shape):
        raise SubmissionError(
            f"{what} {final!r}: map is {np.shape(arr)[-2]} × {np.shape(arr)[-1]} but the patch's 2.5 m grid is "
            f"{shape[0]} × {shape[1]}; predict on the whole patch"
        )
    return arr, bbox, final, pred


def _write_tif(path: Path, band: np.ndarray, bbox: BBox, *, scale: float | None = None, tags: dict | None = None) -> Path:
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    h, w = band.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    profile = {
        "driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": band.dtype.name,
        "crs": CRS.from_epsg(bbox.epsg), "transform": Affine(*bbox.transform(w, h)), "compress": "deflate",
    }  # fmt: skip
    if h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(band, 1)
            if scale is not None:
                dst.scales = (scale,)
            if tags:
                dst.update_tags(1, **tags)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_submission(
    prediction_or_binary: Prediction | np.ndarray,
    patch_or_bbox: Patch | BBox | None = None,
    out_dir: str | Path = ".",
    name: str | None = None,
) -> Path:
    """Write one patch's submission GeoTIFF ``<out_dir>/<name>.tif`` and return its path.

    ``prediction_or_binary``: a :class:`~sr_core.prediction.Prediction` (its ``binary`` is written) or a (4H, 4W)
    array of 0/1 (bool or integer). ``patch_or_bbox``: the :class:`~sr_core.patch.Patch` (grid checked, name taken
    from its EOPatch folder) or its :class:`~sr_core.geo.BBox` (optional for a Prediction, which carries its bbox).
    ``name`` defaults to the patch's (or prediction's) name. Written as one band uint8 {0, 1}, deflate-compressed,
    in the bbox's CRS with the exact 2.5 m transform of the bbox; the file appears atomically.
    """
    arr, bbox, final, pred = _target_and_grid(prediction_or_binary, patch_or_bbox, name, "write_submission")
    binary = pred.binary if pred is not None else _as_binary(arr, f"write_submission {final!r}")
    return _write_tif(Path(out_dir) / f"{final}.tif", binary, bbox)


def write_probability(
    prediction: Prediction | np.ndarray,
    patch_or_bbox: Patch | BBox | None = None,
    out_dir: str | Path = ".",
    name: str | None = None,
    *,
    dtype: str = "uint8",
) -> Path:
    """Write the cultivated-land probability as ``<out_dir>/<name>_proba.tif`` on the same grid as the submission.

    ``dtype="uint8"``: round(p × 255), with the band scale 1/255 recorded (GDAL-aware readers show 0–1);
    ``dtype="float32"``: p as is. Keep these files out of the submission folder (it must hold only the masks).
    """
    arr, bbox, final, _ = _target_and_grid(prediction, patch_or_bbox, name, "write_probability")
    p = np.asarray(arr, np.float32)
    if p.ndim != 2:
        raise SubmissionError(f"write_probability {final!r}: shape {p.shape}; expected a 2-D (4H, 4W) map")
    if p.size and (not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1):
        raise SubmissionError(f"write_probability {final!r}: probabilities must be finite and within 0–1")
    tags = {"meaning": "probability of cultivated land"}
    if dtype == "uint8":
        band = np.rint(p * 255).astype(np.uint8)
        return _write_tif(Path(out_dir) / f"{final}_proba.tif", band, bbox, scale=1 / 255, tags=tags)
    if dtype == "float32":
        return _write_tif(Path(out_dir) / f"{final}_proba.tif", p, bbox, tags=tags)
    raise SubmissionError(f"write_probability: dtype {dtype!r}; choose 'uint8' (0–255) or 'float32' (0–1)")


# ---------------------------------------------------------------------------------------------------------------
# Finding inputs: patch folders / archives, submission folders / archives
# ---------------------------------------------------------------------------------------------------------------
@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh folder under ``$SR_CORE_HOME/uploads`` (archives are extracted there), removed on exit."""
    from ..paths import subdir

    d = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=subdir("uploads")))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def collect_eopatches(inputs: Iterable[str | Path], workdir: str | Path) -> list[Path]:
    """EOPatch folders named by ``inputs``: patch folders, folders of patch folders, or archives of them (safely
    extracted under ``workdir``). Raises when an input holds no patch or two patches share a folder name (their
    submission files would collide)."""
    from .archive import extract_archive, find_eopatches

    found: list[Path] = []
    for i, raw in enumerate(inputs):
        src = Path(raw)
        if not src.exists():
            raise PatchFormatError(f"{src}: no such file or folder; give EOPatch folders, folders of them, or archives")
        if src.is_dir():
            folders = find_eopatches(src)
        else:
            folders = extract_archive(src, Path(workdir) / f"{i:03d}-{_safe(src.name)}")
        if not folders:
            raise PatchFormatError(
                f"{src}: no EOPatch folder in it (a folder with data/ and bbox.geojson or bbox.pkl.gz); "
                "point at a patch folder, a folder of them, or a .zip/.tar.gz archive of them"
            )
        found += folders
    names: dict[str, Path] = {}
    for f in found:
        if f.name in names and names[f.name].resolve() != f.resolve():
            raise PatchFormatError(
                f"two patches are both named {f.name!r} ({names[f.name]} and {f}); their submission files would "
                "collide: rename one folder"
            )
        names[f.name] = f
    return list(names.values())


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60]


@dataclass
class _Listing:
    tifs: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)


def _list_submission(folder: Path, max_depth: int = 3) -> _Listing:
    out = _Listing()
    base = len(folder.parts)
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX"
                         and len(Path(root, d).parts) - base < max_depth)
        for f in sorted(files):
            p = Path(root, f)
            rel = p.relative_to(folder).as_posix()
            if f in _IGNORED or f.startswith("._"):
                continue
            if p.is_symlink() or not p.is_file():
                out.others.append(f"{rel}: a link or special file, not a GeoTIFF; remove it")
                continue
            low = f.lower()
            if not low.endswith(_TIF_SUFFIXES):
                out.others.append(f"{rel}: not a .tif file; a submission holds only the eopatch-XX.tif masks")
                continue
            stem = f[: -len(".tiff")] if low.endswith(".tiff") else f[: -len(".tif")]
            if stem in out.tifs:
                out.problems.setdefault(stem, []).append(
                    f"appears twice ({out.tifs[stem].relative_to(folder).as_posix()} and {rel}); keep one")
                continue
            if not f.endswith(".tif"):
                out.problems.setdefault(stem, []).append(f"named {f!r}; rename it to {stem}.tif")
            out.tifs[stem] = p
    return out


@contextmanager
def _opened_submission(source: str | Path) -> Iterator[tuple[Path, _Listing]]:
    """The submission's folder and its files; archives are extracted (safely) into a temporary folder."""
    from .archive import extract_archive

    src = Path(source)
    if not src.exists():
        raise SubmissionError(f"{src}: no such submission; give a folder, .zip or .tar.gz of eopatch-XX.tif files")
    if src.is_dir():
        yield src, _list_submission(src)
        return
    if src.name.lower().endswith(_TIF_SUFFIXES):
        listing = _Listing()
        stem = src.name.rsplit(".", 1)[0]
        listing.tifs[stem] = src
        yield src.parent, listing
        return
    with scratch_dir("submission") as tmp:
        dest = tmp / "x"
        extract_archive(src, dest, **SUBMISSION_ARCHIVE_LIMITS)
        yield dest, _list_submission(dest)


def read_submission(source: str | Path) -> dict[str, np.ndarray]:
    """Arrays of a submission (folder, ``.zip``, ``.tar.gz`` or one ``.tif``) keyed by name (``eopatch-01``).

    Reads band 1 of every ``.tif``; raises :class:`SubmissionError` for a file that is not a readable GeoTIFF.
    Use :func:`validate_submission` for a full check against the patches.
    """
    import rasterio
    from rasterio.errors import RasterioError

    out = {}
    with _opened_submission(source) as (_, listing):
        for name, path in sorted(listing.tifs.items()):
            try:
                with rasterio.open(path) as src:
                    out[name] = src.read(1)
            except (RasterioError, OSError) as exc:
                raise SubmissionError(
                    f"{path.name}: not a readable GeoTIFF ({exc}); re-export it with write_submission"
                ) from None
    return out


# ---------------------------------------------------------------------------------------------------------------
# Truth patches
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TruthPatch:
    """What scoring needs of a labelled patch: its name, bbox, 2.5 m grid and labels (None if unlabelled)."""

    name: str
    bbox: BBox
    shape: tuple[int, int]
    cultivated: np.ndarray | None = None
    not_declared: np.ndarray | None = None

    @classmethod
    def from_patch(cls, patch: Patch) -> TruthPatch:
        return cls(patch.name, patch.bbox, patch.label_shape, patch.cultivated, patch.not_declared)


def load_truth(folder: str | Path) -> TruthPatch:
    """Read the bbox and labels of an EOPatch folder without its band cube (fast). A folder without
    ``CULTIVATED`` is read whole (to learn its grid) and returned with ``cultivated=None``."""
    from .eopatch import feature_file, load_eopatch, read_bbox, read_npy

    folder = Path(folder)
    f = feature_file(folder, "mask_timeless/CULTIVATED")
    if f is None:
        return TruthPatch.from_patch(load_eopatch(folder))
    bbox = read_bbox(folder)

    def label(path: Path, what: str) -> np.ndarray:
        a = read_npy(path)
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        if a.ndim != 2:
            raise PatchFormatError(f"{folder.name}/{what}: shape {a.shape}, expected (4H, 4W, 1)")
        if a.dtype != bool and a.size and (a.min() < 0 or a.max() > 1):
            raise PatchFormatError(f"{folder.name}/{what}: values outside 0/1; it must be a boolean mask")
        return a.astype(bool)

    cult = label(f, "mask_timeless/CULTIVATED")
    nd = None
    nf = feature_file(folder, "mask_timeless/NOT_DECLARED")
    if nf is not None:
        nd = label(nf, "mask_timeless/NOT_DECLARED")
        if nd.shape != cult.shape:
            raise PatchFormatError(f"{folder.name}: NOT_DECLARED {nd.shape} and CULTIVATED {cult.shape} differ in shape")
    return TruthPatch(folder.resolve().name, bbox, cult.shape, cult, nd)


TruthSource = str | Path | Patch | TruthPatch | Sequence[Any] | Mapping[str, Any]


@contextmanager
def _truth_items(truth: TruthSource) -> Iterator[list[tuple[str, Callable[[], TruthPatch]]]]:
    """(name, loader) per truth patch; folders load lazily, one at a time."""

    def from_obj(obj: Any) -> Callable[[], TruthPatch]:
        if isinstance(obj, TruthPatch):
            return lambda: obj
        if isinstance(obj, Patch):
            return lambda: TruthPatch.from_patch(obj)
        if isinstance(obj, (str, Path)):
            return lambda: load_truth(obj)
        raise SubmissionError(f"truth: cannot use a {type(obj).__name__}; give EOPatch folders or Patch objects")

    def name_of(obj: Any) -> str:
        if isinstance(obj, (Patch, TruthPatch)):
            return obj.name
        return Path(obj).resolve().name

    if isinstance(truth, Mapping):
        yield [(str(k), from_obj(v)) for k, v in truth.items()]
        return
    if isinstance(truth, (Patch, TruthPatch)):
        yield [(truth.name, from_obj(truth))]
        return
    if isinstance(truth, (str, Path)):
        with scratch_dir("truth") as tmp:
            folders = collect_eopatches([truth], tmp)
            yield [(f.name, from_obj(f)) for f in folders]
        return
    items = list(truth)
    yield [(name_of(o), from_obj(o)) for o in items]


# ---------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class SubmissionReport:
    """Result of :func:`validate_submission`: every problem, per file (``""`` for the submission as a whole)."""

    source: str
    expected: tuple[str, ...]
    found: tuple[str, ...]
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    @property
    def missing(self) -> list[str]:
        return sorted(set(self.expected) - set(self.found))

    @property
    def extra(self) -> list[str]:
        return sorted(set(self.found) - set(self.expected))

    def add(self, name: str, problem: str) -> None:
        self.problems.setdefault(name, []).append(problem)

    def lines(self) -> list[str]:
        """One line per problem, ``<file>: <problem>``."""
        out = []
        for name in sorted(self.problems):
            for p in self.problems[name]:
                out.append(f"{name}.tif: {p}" if name else p)
        return out

    def __str__(self) -> str:
        if self.ok:
            return f"{self.source}: valid submission ({len(self.found)} files)"
        lines = self.lines()
        return f"{self.source}: {len(lines)} problem(s)\n" + "\n".join(f"  - {x}" for x in lines)

    def raise_if_invalid(self) -> None:
        if not self.ok:
            raise SubmissionError(str(self))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "valid": self.ok, "expected": list(self.expected), "found": list(self.found),
                "missing": self.missing, "extra": self.extra, "problems": self.lines()}


def _check_file(path: Path, truth: TruthPatch, read: bool = True) -> tuple[list[str], np.ndarray | None]:
    """Problems of one submission file against its patch, and its band (None when it cannot be scored)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    problems: list[str] = []
    H, W = truth.shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # reported below as a CRS / bounds problem
            src = rasterio.open(path)
        with src:
            if src.driver != "GTiff":
                return [f"not a GeoTIFF (GDAL reads it as {src.driver}); write it with sr_core.io.write_submission"], None
            if src.count != 1:
                problems.append(f"has {src.count} bands; a submission file has exactly 1")
            if (src.height, src.width) != (H, W):
                problems.append(f"is {src.height} × {src.width} px; the patch's 2.5 m grid is {H} × {W}")
            dtype = src.dtypes[0]
            if dtype != "uint8":
                problems.append(f"dtype {dtype}; must be uint8")
            if src.crs is None:
                problems.append(f"has no CRS; it must be EPSG:{truth.bbox.epsg}")
            else:
                epsg = src.crs.to_epsg()
                if epsg != truth.bbox.epsg:
                    problems.append(f"CRS is {src.crs.to_string()}; it must be EPSG:{truth.bbox.epsg}")
            t = src.transform
            if t.b != 0 or t.d != 0 or t.e >= 0:
                problems.append("pixel grid is rotated or not north-up; write the patch's grid (no rotation, rows north→south)")
            px = min(truth.bbox.width / W, truth.bbox.height / H)
            tol = BOUNDS_TOLERANCE_PX * px
            got = src.bounds
            want = truth.bbox.bounds
            off = max(abs(g - w) for g, w in zip((got.left, got.bottom, got.right, got.top), want, strict=True))
            if off > tol:
                problems.append(
                    f"bounds ({got.left:.2f}, {got.bottom:.2f}, {got.right:.2f}, {got.top:.2f}) differ from the patch "
                    f"bbox ({want[0]:.2f}, {want[1]:.2f}, {want[2]:.2f}, {want[3]:.2f}) by {off:.3g} m (> {tol:.3g} m)"
                )
            if src.nodata is not None and src.nodata in (0, 1):
                problems.append(f"declares nodata = {src.nodata:g}, which marks real class pixels as missing; unset nodata")
            band = None
            if read and src.count >= 1 and src.height * src.width <= 4 * H * W:
                band = src.read(1)
                bad = (band != 0) & (band != 1)
                if bad.any():
                    vals = np.unique(band[bad])[:5].tolist()
                    problems.append(f"holds values other than 0 and 1 ({bad.sum()} px, e.g. {vals}); write a 0/1 mask")
            elif read and src.count >= 1:
                problems.append("was not read: far larger than the patch grid")
    except (RasterioError, OSError) as exc:
        return [f"not a readable GeoTIFF ({str(exc).splitlines()[0][:200]})"], None
    except Exception as exc:  # a malformed file must never crash validation
        return [f"could not be read ({type(exc).__name__}: {str(exc)[:200]})"], None
    return problems, (band if not problems else None)


def _check_listing(report: SubmissionReport, listing: _Listing, expected: Sequence[str]) -> None:
    for line in listing.others:
        report.add("", line)
    for name, probs in listing.problems.items():
        for p in probs:
            report.add(name, p)
    exp = set(expected)
    for name in sorted(set(listing.tifs) - exp):
        report.add(name, f"extra file; no patch named {name!r} among the {len(exp)} expected: remove it")
    for name in sorted(exp - set(listing.tifs)):
        report.add(name, "missing; the submission needs one file per patch")


def validate_submission(source: str | Path, truth: TruthSource) -> SubmissionReport:
    """Check a submission (folder, ``.zip``, ``.tar.gz`` or one ``.tif``) against the patches it is for.

    ``truth``: a folder (or archive) of EOPatch folders, or Patch objects (a list, a mapping name → Patch, or one).
    Reports missing and extra files and, per file: not a GeoTIFF, band count, size, dtype, values outside {0, 1},
    CRS, bounds ≠ the patch bbox (tolerance :data:`BOUNDS_TOLERANCE_PX` of a pixel), rotated grids, a nodata value
    of 0 or 1. Never raises on a bad file; raises :class:`SubmissionError` only when ``source`` does not exist or
    cannot be opened at all.
    """
    report, _ = _run(source, truth, score=False)
    return report


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ScoreReport:
    """Validation plus scores: ``pooled`` is the benchmark score (None when the submission is invalid)."""

    validation: SubmissionReport
    patches: list[Any] = field(default_factory=list)  #: sr_core.metrics.Scores per patch, in name order
    pooled: Any = None  #: sr_core.metrics.Scores over all pixels of all patches
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.validation.ok and self.pooled is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.validation.ok,
            "validation": self.validation.to_dict(),
            "weighted_mcc": None if self.pooled is None else self.pooled.wmcc,
            "pooled": None if self.pooled is None else self.pooled.to_dict(),
            "patches": [s.to_dict() for s in self.patches],
            "seconds": self.seconds,
        }


def _run(
    source: str | Path, truth: TruthSource, *, score: bool, diagnostics: bool = True, progress: bool = False
) -> tuple[SubmissionReport, list[Any]]:
    from ..metrics import evaluate

    scores: list[Any] = []
    with _opened_submission(source) as (_, listing), _truth_items(truth) as items:
        names = [n for n, _ in items]
        report = SubmissionReport(str(source), tuple(sorted(names)), tuple(sorted(listing.tifs)))
        if not names:
            report.add("", "no truth patches to check the submission against; give a folder of EOPatch folders")
        dup = {n for n in names if names.count(n) > 1}
        for n in sorted(dup):
            report.add("", f"two truth patches are named {n!r}; each needs a unique folder name")
        _check_listing(report, listing, names)
        todo = [(n, load) for n, load in sorted(items, key=lambda x: x[0]) if n in listing.tifs]
        bar = _progress(todo, "score" if score else "validate", progress)
        for name, load in bar:
            truth_patch = load()
            if score and truth_patch.cultivated is None:
                report.add(name, "cannot be scored: its truth patch has no CULTIVATED label")
            probs, band = _check_file(listing.tifs[name], truth_patch, read=True)
            for p in probs:
                report.add(name, p)
            if score and band is not None and truth_patch.cultivated is not None and report.ok:
                scores.append(evaluate(truth_patch.cultivated, band, truth_patch.not_declared, name=name,
                                       diagnostics=diagnostics))
            del truth_patch, band
    return report, scores


def _progress(items: Sequence[Any], desc: str, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="patch", leave=False)


def score_submission(
    source: str | Path, truth: TruthSource, *, diagnostics: bool = True, progress: bool = False
) -> ScoreReport:
    """Validate a submission and score it against labelled patches (see :func:`validate_submission` for both
    arguments). Scores are computed only while the submission is valid; ``pooled`` pools all pixels of all
    patches (the benchmark's weighted MCC). Truth folders are read one at a time, without their band cubes."""
    from ..metrics import Scores

    t0 = time.perf_counter()
    report, scores = _run(source, truth, score=True, diagnostics=diagnostics, progress=progress)
    pooled = Scores.pool(scores) if report.ok and scores else None
    return ScoreReport(report, scores if report.ok else [], pooled, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------------------------
# Predict many patches → a submission
# ---------------------------------------------------------------------------------------------------------------
PatchSource = str | Path | Patch


def write_predictions(
    sources: Iterable[PatchSource],
    predict: Callable[[Patch], Prediction | np.ndarray],
    out_dir: str | Path,
    *,
    probability_dir: str | Path | None = None,
    progress: bool = True,
    desc: str = "predict",
    on_result: Callable[[str, Prediction | np.ndarray, Path], None] | None = None,
) -> list[Path]:
    """Predict each patch and write ``<out_dir>/<folder-name>.tif``; return the written paths.

    ``sources``: EOPatch folders (loaded one at a time, named after the folder) or Patch objects (named by
    ``patch.name``); use :func:`collect_eopatches` to expand folders of patches and archives first. ``predict``
    maps a Patch to a :class:`~sr_core.prediction.Prediction` or a (4H, 4W) 0/1 array. With ``probability_dir``,
    Predictions' probabilities are also written there (:func:`write_probability`). ``on_result(name, prediction,
    path)`` is called after each patch (e.g. to print warnings). A tqdm bar on stderr shows progress.
    """
    from .eopatch import load_eopatch

    items = list(sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in _progress(items, desc, progress):
        if isinstance(src, Patch):
            patch, name = src, src.name
        else:
            patch, name = load_eopatch(src), Path(src).resolve().name
        pred = predict(patch)
        path = write_submission(pred, patch, out_dir, name=name)
        if probability_dir is not None and isinstance(pred, Prediction):
            write_probability(pred, patch, probability_dir, name=name)
        written.append(path)
        if on_result is not None:
            on_result(name, pred, path)
        del patch, pred
    return written


def predict_submission(
    inputs: Iterable[str | Path | Patch],
    predict: Callable[[Patch], Prediction | np.ndarray],
    out_dir: str | Path,
    **kwargs: Any,
) -> list[Path]:
    """:func:`write_predictions` for user inputs: EOPatch folders, folders of them and archives of them (extracted
    safely into a scratch folder, removed afterwards) or Patch objects. ``kwargs`` go to :func:`write_predictions`."""
    items = list(inputs)
    patches = [x for x in items if isinstance(x, Patch)]
    paths = [x for x in items if not isinstance(x, Patch)]
    with scratch_dir("predict") as tmp:
        folders = collect_eopatches(paths, tmp) if paths else []
        names = [f.name for f in folders] + [p.name for p in patches]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise PatchFormatError(f"several patches are named {', '.join(dup)}; their submission files would collide")
        return write_predictions([*folders, *patches], predict, out_dir, **kwargs)


__all__ = [
    "BOUNDS_TOLERANCE_PX", "ScoreReport", "SubmissionReport", "TruthPatch", "collect_eopatches", "load_truth",
    "predict_submission", "read_submission", "score_submission", "scratch_dir", "validate_submission",
    "write_predictions", "write_probability", "write_submission",
]  # fmt: skip
