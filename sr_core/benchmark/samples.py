"""Sample submissions for a benchmark: noisy copies of the truth (known scores) and a catalogue of bad archives.

Used by the tests and ``bench/bench_leaderboard.py`` (and handy for rehearsing an event): every function writes
real GeoTIFFs on the benchmark's exact grids, so they go through the same validation as a participant's upload.
"""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from .definition import PRIVATE, PUBLIC, Benchmark

_DATE = (2021, 6, 1, 0, 0, 0)


def noisy_masks(benchmark: Benchmark, flip: float, seed: int) -> dict[str, np.ndarray]:
    """The truth of every patch with a seeded fraction ``flip`` of its pixels inverted (uint8 0/1)."""
    from ..io.submission import load_truth

    rng = np.random.default_rng([int(seed), 0xF11B])
    out = {}
    for folder in benchmark.truth_paths():
        t = load_truth(folder)
        assert t.cultivated is not None
        out[t.name] = (t.cultivated ^ (rng.random(t.shape) < flip)).astype(np.uint8)
    return out


def expected_scores(benchmark: Benchmark, masks: dict[str, np.ndarray]) -> dict[str, float]:
    """Public / private / overall weighted MCC of ``masks`` computed straight from the arrays with
    :func:`sr_core.metrics.evaluate` (no files involved): the reference the stored scores are checked against."""
    from ..io.submission import load_truth
    from ..metrics import Scores, evaluate

    scores = {}
    for folder in benchmark.truth_paths():
        t = load_truth(folder)
        scores[t.name] = evaluate(t.cultivated, masks[t.name], t.not_declared, name=t.name, diagnostics=False)
    names = sorted(scores)
    return {
        PUBLIC: Scores.pool(scores[n] for n in names if n in benchmark.public).wmcc,
        PRIVATE: Scores.pool(scores[n] for n in names if n in benchmark.private).wmcc,
        "overall": Scores.pool(scores[n] for n in names).wmcc,
    }


def write_masks(benchmark: Benchmark, masks: dict[str, np.ndarray], folder: str | Path,
                names: dict[str, str] | None = None) -> Path:
    """Write ``masks`` as submission GeoTIFFs on each patch's grid into ``folder`` (``names`` renames files)."""
    from ..geo import BBox
    from ..io.submission import write_submission

    folder = Path(folder)
    for p in benchmark.patches:
        if p.name in masks:
            write_submission(masks[p.name], BBox(*p.bbox, epsg=p.epsg), folder, name=(names or {}).get(p.name, p.name))
    return folder


def zip_folder(folder: str | Path, out: str | Path, *, prefix: str = "") -> Path:
    """Zip every file of ``folder`` (sorted, fixed dates: the same files give the same bytes) under ``prefix``."""
    out = Path(out)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(Path(folder).rglob("*")):
            if f.is_file():
                info = zipfile.ZipInfo(prefix + f.relative_to(folder).as_posix(), date_time=_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, f.read_bytes())
    return out


def noisy_submission(benchmark: Benchmark, out: str | Path, *, flip: float = 0.05, seed: int = 0) -> Path:
    """A valid ``.zip`` submission: the truth with ``flip`` of its pixels inverted (``out`` is the zip's path)."""
    out = Path(out)
    work = out.with_name(out.name + ".d")
    try:
        write_masks(benchmark, noisy_masks(benchmark, flip, seed), work)
        return zip_folder(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bad_archives(benchmark: Benchmark, folder: str | Path, *, bomb_mib: int = 100) -> dict[str, Path]:
    """Archives a benchmark must refuse, by what is wrong with them (each otherwise looks like a real submission).

    ``wrong names`` (``eopatch-1.tif``), ``wrong size`` (one mask at half resolution), ``path traversal`` (a
    ``../`` member), ``huge expansion`` (a real zip of ``bomb_mib`` MiB of zeros, ~1000× compressed),
    ``huge declared size`` (a tar.gz whose header claims 3 GiB), ``not TIFF`` (PNG bytes named ``.tif`` and a
    text file), ``not an archive`` (random bytes named ``.zip``).
    """
    from ..geo import BBox
    from ..io.submission import write_submission

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    masks = noisy_masks(benchmark, 0.02, 1)
    out: dict[str, Path] = {}

    renamed = {n: n.replace("eopatch-0", "eopatch-") for n in masks}
    write_masks(benchmark, masks, folder / "names2", names=renamed)
    out["wrong names"] = zip_folder(folder / "names2", folder / "wrong-names.zip")

    small = dict(masks)
    first = benchmark.patches[0]
    small[first.name] = masks[first.name][::2, ::2]
    work = folder / "small"
    write_masks(benchmark, {k: v for k, v in small.items() if k != first.name}, work)
    write_submission(small[first.name], BBox(*first.bbox, epsg=first.epsg), work, name=first.name)
    out["wrong size"] = zip_folder(work, folder / "wrong-size.zip")

    good = write_masks(benchmark, masks, folder / "good")
    trav = folder / "path-traversal.zip"
    with zipfile.ZipFile(trav, "w") as zf:
        for f in sorted(good.glob("*.tif")):
            name = f"../{f.name}" if f.name.startswith(first.name) else f.name
            zf.writestr(zipfile.ZipInfo(name, date_time=_DATE), f.read_bytes())
    out["path traversal"] = trav

    bomb = folder / "huge-expansion.zip"
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for f in sorted(good.glob("*.tif")):
            if not f.name.startswith(first.name):
                zf.write(f, f.name)
        info = zipfile.ZipInfo(f"{first.name}.tif", date_time=_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as dst:
            for _ in range(bomb_mib):
                dst.write(chunk)
    out["huge expansion"] = bomb

    declared = tarfile.TarInfo(f"{first.name}.tif")
    declared.size = 3 * 1024**3
    header = folder / "huge-declared-size.tar.gz"
    header.write_bytes(gzip.compress(declared.tobuf(format=tarfile.GNU_FORMAT), mtime=0))
    out["huge declared size"] = header

    nontif = folder / "not-tiff.zip"
    png = _png_bytes()
    with zipfile.ZipFile(nontif, "w") as zf:
        for f in sorted(good.glob("*.tif")):
            data = png if f.name.startswith(first.name) else f.read_bytes()
            zf.writestr(zipfile.ZipInfo(f.name, date_time=_DATE), data)
        zf.writestr(zipfile.ZipInfo("README.txt", date_time=_DATE), b"our method: thresholds\n")
    out["not TIFF"] = nontif

    junk = folder / "not-an-archive.zip"
    junk.write_bytes(np.random.default_rng(5).bytes(4096))
    out["not an archive"] = junk
    shutil.rmtree(folder / "names2", ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(good, ignore_errors=True)
    return out


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


__all__ = ["bad_archives", "expected_scores", "noisy_masks", "noisy_submission", "write_masks", "zip_folder"]
