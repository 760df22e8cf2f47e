"""Benchmark submissions: the format, read and checked. A submission is a set of ``eopatch-XX.tif`` GeoTIFFs.

The format (``docs/CHALLENGE_FACTS.md``): a folder, ``.zip`` or ``.tar.gz`` holding exactly one ``<eopatch-folder>.tif``
per test patch: one band, uint8, values {0, 1} only, the patch's 2.5 m grid (2000 × 2000 for a challenge patch),
EPSG:32633 and bounds equal to the patch's bbox.

* :func:`read_submission` reads the masks of a folder / archive / single file.
* :func:`load_truth` reads what checking needs of a labelled EOPatch (bbox, grid, labels) without its band cube.
* :func:`validate_submission` checks every file and returns a :class:`SubmissionReport` listing *every* problem
  (missing / extra files, not a GeoTIFF, size, band count, dtype, values, CRS, bounds); a bad file never crashes it.

Elsewhere, by concern: writing GeoTIFFs :mod:`sr_core.io.geotiff`; finding patches :mod:`sr_core.io.inputs`;
scoring :mod:`sr_core.scoring`; predicting a folder of patches :mod:`sr_core.pipeline`. Their names are still
importable from here (``from sr_core.io.submission import write_submission`` keeps working).

rasterio is imported inside the functions that need it.
"""
from __future__ import annotations

import os
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
from ..paths import scratch_dir
from .inputs import collect_eopatches

#: Bounds may differ from the patch bbox by at most this fraction of a pixel.
BOUNDS_TOLERANCE_PX = 0.01
#: Archive limits for submissions: sparse 0/1 masks compress far more than EOPatches, so the ratio limit is loose
#: and the total size is what protects the disk (25 uint8 masks of 2000 × 2000 are 100 MB).
SUBMISSION_ARCHIVE_LIMITS: Mapping[str, int] = {"max_files": 1000, "max_total_bytes": 2 * 1024**3, "max_ratio": 100_000}
_TIF_SUFFIXES = (".tif", ".tiff")
#: Codecs a submission file may use (GDAL's COMPRESSION names; uncompressed too): lossless, general-purpose ones. A
#: 0/1 mask has no use for lossy or image codecs (JPEG, WebP, LERC, JPEG-XL), and each is one more decoder that a
#: hostile upload would reach.
_SUBMISSION_CODECS = frozenset({"DEFLATE", "LZW", "ZSTD", "PACKBITS", "LZMA"})
#: A block (tile or strip) may be as large as the image rounded up to whole 16-px tiles, or this many pixels a side
#: (GDAL's COG default, for small images): never more, so reading band 1 never inflates more than the image.
_MAX_SMALL_BLOCK = 512
_IGNORED = (".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass
class _Listing:
    tifs: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)


def _list_submission(folder: Path, max_depth: int = 12) -> _Listing:
    # deep enough for `zip -r ours.zip /home/u/work/pred` (home/u/work/pred/eopatch-01.tif); the archive's file count
    # and size are bounded by SUBMISSION_ARCHIVE_LIMITS
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


def _named_only(exc: BaseException, path: Path) -> str:
    """``exc``'s text with the file's full path (where it was unpacked on the server) cut to its name: the team reads
    this message."""
    text = str(exc)
    for full in sorted({str(path), str(path.absolute()), str(path.resolve())}, key=len, reverse=True):
        text = text.replace(full, path.name)
    return text


def _storage_problems(src: Any) -> list[str]:
    """Problems of how a one-band file stores its pixels: blocks larger than the image (one 33 KB tile declared
    32768 × 32768 makes GDAL inflate 1 GB to give a 512 × 512 band) or a codec other than :data:`_SUBMISSION_CODECS`."""
    out = []
    h, w = src.height, src.width
    bh, bw = src.block_shapes[0]
    if bh > max(-(-h // 16) * 16, _MAX_SMALL_BLOCK) or bw > max(-(-w // 16) * 16, _MAX_SMALL_BLOCK):
        out.append(f"is stored in {bh} × {bw} px blocks, larger than its {h} × {w} px image; write it untiled or "
                   f"with 256 × 256 tiles, as sr_core.io.write_submission does")
    codec = src.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION")
    if codec is not None and codec.upper() not in _SUBMISSION_CODECS:
        out.append(f"is compressed with {codec[:40]}; write it uncompressed or with DEFLATE, LZW or ZSTD "
                   f"(sr_core.io.write_submission writes DEFLATE)")
    return out


def _check_file(path: Path, truth: TruthPatch, read: bool = True) -> tuple[list[str], np.ndarray | None]:
    """Problems of one submission file against its patch, and its band (None when it cannot be scored)."""
    import rasterio
    from rasterio._err import CPLE_BaseError
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
            if src.count != 1:  # its pixels are never read: a thousand interleaved bands inflate a thousand times
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
            if src.count == 1:
                problems.extend(_storage_problems(src))
            band = None
            # Pixels are decoded only from a file whose header is right in every respect above (1 band, uint8, the
            # patch's exact grid, CRS, bounds, plain blocks and codec): what GDAL inflates is then one label grid
            # (rounded up to whole tiles), never what a hostile header declares. A file with any problem is refused
            # whatever its values; they are checked once the header is fixed.
            if read and not problems:
                band = src.read(1)
                bad = (band != 0) & (band != 1)
                if bad.any():
                    vals = np.unique(band[bad])[:5].tolist()
                    problems.append(f"holds values other than 0 and 1 ({bad.sum()} px, e.g. {vals}); write a 0/1 mask")
    except (RasterioError, OSError) as exc:
        return [f"not a readable GeoTIFF ({(_named_only(exc, path).splitlines() or [type(exc).__name__])[0][:200]})"], None
    except (CPLE_BaseError, ValueError) as exc:  # GDAL's own errors and malformed values: the file's problem
        return [f"could not be read ({type(exc).__name__}: {_named_only(exc, path)[:200]})"], None
    # anything else (a bug, memory) is ours, not the file's: it propagates, and the benchmark reports it as our error
    return problems, (band if not problems else None)


def _check_listing(report: SubmissionReport, listing: _Listing, expected: Sequence[str]) -> None:
    for line in listing.others:
        report.add("", line)
    for name, probs in listing.problems.items():
        for p in probs:
            report.add(name, p)
    exp = set(expected)
    by_case = {n.casefold(): n for n in exp}
    for name in sorted(set(listing.tifs) - exp):
        meant = by_case.get(name.casefold())
        if meant is not None and meant not in listing.tifs:
            report.add(name, f"named {name!r}: rename it {meant}.tif (file names are case-sensitive)")
        else:
            report.add(name, f"extra file; no patch named {name!r} among the {len(exp)} expected: remove it")
    for name in sorted(exp - set(listing.tifs)):
        report.add(name, "missing; the submission needs one file per patch")


def validate_submission(source: str | Path, truth: TruthSource) -> SubmissionReport:
    """Check a submission (folder, ``.zip``, ``.tar.gz`` or one ``.tif``) against the patches it is for.

    ``truth``: a folder (or archive) of EOPatch folders, or Patch objects (a list, a mapping name → Patch, or one).
    Reports missing and extra files and, per file: not a GeoTIFF, band count, size, dtype, values outside {0, 1},
    CRS, bounds ≠ the patch bbox (tolerance :data:`BOUNDS_TOLERANCE_PX` of a pixel), rotated grids, a nodata value
    of 0 or 1, blocks larger than the image, a codec other than plain lossless ones. Pixel values are read only from a
    file with none of those problems (what a hostile header declares is never inflated). Never raises on a bad file;
    raises :class:`SubmissionError` only when ``source`` does not exist or cannot be opened at all.
    """
    report, _ = _run(source, truth, score=False)
    return report


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------
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
        bar = _progress(todo, "validate", progress)
        ready = []  # every file is checked before any is scored: an archive with one bad file costs no scoring
        for name, load in bar:
            truth_patch = load()
            if score and truth_patch.cultivated is None:
                report.add(name, "cannot be scored: its truth patch has no CULTIVATED label")
            probs, band = _check_file(listing.tifs[name], truth_patch, read=True)
            for p in probs:
                report.add(name, p)
            if score and band is not None and truth_patch.cultivated is not None and report.ok:
                ready.append((name, band, truth_patch.cultivated, truth_patch.not_declared))
            del truth_patch, band
        if score and report.ok:
            for name, band, cultivated, not_declared in _progress(ready, "score", progress):
                scores.append(evaluate(cultivated, band, not_declared, name=name, diagnostics=diagnostics))
    return report, scores


def _progress(items: Sequence[Any], desc: str, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="patch", leave=False)


#: Names that moved to the module of their concern, still importable from here.
_MOVED = {
    "write_submission": "sr_core.io.geotiff", "write_probability": "sr_core.io.geotiff",
    "write_uncertainty": "sr_core.io.geotiff", "ScoreReport": "sr_core.scoring", "score_submission": "sr_core.scoring",
    "write_predictions": "sr_core.pipeline", "predict_submission": "sr_core.pipeline",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BOUNDS_TOLERANCE_PX", "SUBMISSION_ARCHIVE_LIMITS", "SubmissionReport", "TruthPatch", "collect_eopatches",
    "load_truth", "read_submission", "scratch_dir", "validate_submission", *_MOVED,
]  # fmt: skip
