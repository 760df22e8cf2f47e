"""The benchmark definition: a fixed set of simulated test patches, split into a public and a private half.

Layout under ``$SR_CORE_HOME/benchmark`` (or any ``root``)::

    definition/benchmark.json     n, size, seed, id, the patches (name, split, bbox, dates); admin only
    definition/truth/eopatch-01/  full EOPatch folders *with* labels (CULTIVATED, NOT_DECLARED, ALL_POLYS)
    definition/inputs.zip         the same patches without labels: what participants download
    leaderboard.sqlite            the submissions (see :mod:`sr_core.benchmark.store`)

:func:`create_benchmark` builds ``n`` patches with :func:`sr_core.simulate.simulate_patch` (split ``"test"``), one
seed per patch derived from the benchmark seed, names them ``eopatch-01`` … like the challenge, moves each bbox to
a random 10 m-aligned place in UTM 33N (as the organisers did, to hide where a patch lies) and splits them at
random into a public half (scored live) and a private half (scored, stored, revealed by an admin). The folder is
written aside and renamed into place, so a half-built benchmark is never visible.

Secrets: the labels, which patches are public, and the **seed** (the simulator regenerates the labels from it)
stay in ``definition/``; nothing the page or the inputs archive shows names them. Inputs carry no labels and none
of the simulator's metadata (seed, region, per-frame cloud cover); patches keep only the challenge's
``meta_info`` keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import shutil
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..geo import BBox
from ..patch import Patch, PatchInfo
from ..paths import swap_in_folder

DEFAULT_N = 8  #: patches in the default (demo) benchmark: small enough to build and score in seconds on 2 cores
DEFAULT_SIZE = 128  #: side in 10 m pixels of a default patch (labels 512 × 512); the full-size benchmark is 500
FULL_SIZE = 500  #: the challenge's patch side (5 km; labels 2000 × 2000)
DEFINITION = "definition"
SPEC_FILE = "benchmark.json"
INPUTS_ZIP = "inputs.zip"
PUBLIC, PRIVATE = "public", "private"
#: meta_info keys kept in the exported inputs (the challenge's own); everything else the simulator wrote is dropped.
PUBLIC_META = ("maxcc", "size_x", "size_y", "time_difference", "time_interval")
#: where moved test bboxes may land: inside UTM zone 33N over the Alps-Pannonia latitudes, on the 10 m grid.
_UTM_X = (300_000, 700_000)
_UTM_Y = (5_000_000, 5_300_000)

PatchFactory = Callable[[int, int], Patch]  #: (seed, size) → a labelled Patch


class BenchmarkMissingError(ConfigError):
    """No benchmark has been created under the data home yet."""


@dataclass(frozen=True)
class BenchmarkPatch:
    """One patch of the benchmark: its name, half (``public`` / ``private``), bbox and number of dates."""

    name: str
    split: str
    bbox: tuple[float, float, float, float]
    epsg: int
    n_dates: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark on disk. ``id`` is a content hash (params, names, halves, bboxes and label bytes): rebuilding with
    the same n / size / seed gives the same id, so stored scores stay valid; any change gives a new one."""

    root: Path
    id: str
    n: int
    size: int
    seed: int
    created_at: str
    simulator: str
    patches: tuple[BenchmarkPatch, ...]

    @property
    def folder(self) -> Path:
        return self.root / DEFINITION

    @property
    def truth_dir(self) -> Path:
        return self.folder / "truth"

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.patches]

    @property
    def public(self) -> list[str]:
        return [p.name for p in self.patches if p.split == PUBLIC]

    @property
    def private(self) -> list[str]:
        return [p.name for p in self.patches if p.split == PRIVATE]

    def split_of(self, name: str) -> str:
        for p in self.patches:
            if p.name == name:
                return p.split
        raise KeyError(name)

    def truth_paths(self, split: str | None = None) -> list[Path]:
        """Labelled EOPatch folders (all, or one half), in name order."""
        return [self.truth_dir / p.name for p in self.patches if split is None or p.split == split]

    @property
    def label_shape(self) -> tuple[int, int]:
        return (4 * self.size, 4 * self.size)

    def describe(self) -> str:
        """One public line (no seed, no split membership)."""
        return (f"{self.n} simulated test patches of {self.size} × {self.size} px at 10 m (labels {4 * self.size} × "
                f"{4 * self.size} at 2.5 m), {len(self.public)} scored publicly and {len(self.private)} kept private; "
                f"benchmark id {self.id}")

    def to_dict(self, *, secret: bool = False) -> dict[str, Any]:
        """Plain values; the seed and the halves' membership only with ``secret=True`` (admin)."""
        d: dict[str, Any] = {"id": self.id, "n": self.n, "size": self.size, "created_at": self.created_at,
                             "simulator": self.simulator, "n_public": len(self.public), "n_private": len(self.private),
                             "names": self.names}
        if secret:
            d["seed"] = self.seed
            d["patches"] = [p.to_dict() for p in self.patches]
        return d


def benchmark_root(root: str | Path | None = None) -> Path:
    """``root`` or ``$SR_CORE_HOME/benchmark`` (created)."""
    if root is not None:
        r = Path(root).expanduser()
        r.mkdir(parents=True, exist_ok=True)
        return r
    from ..paths import subdir

    return subdir("benchmark")


def benchmark_exists(root: str | Path | None = None) -> bool:
    return (benchmark_root(root) / DEFINITION / SPEC_FILE).is_file()


def load_benchmark(root: str | Path | None = None) -> Benchmark:
    """The benchmark under ``root`` (default ``$SR_CORE_HOME/benchmark``)."""
    r = benchmark_root(root)
    spec = r / DEFINITION / SPEC_FILE
    if not spec.is_file():
        raise BenchmarkMissingError(
            f"no benchmark in {r}; build one with `python -m sr_core benchmark create` (default {DEFAULT_N} patches of "
            f"{DEFAULT_SIZE} px; `--size {FULL_SIZE}` for the full-size benchmark)"
        )
    try:
        d = json.loads(spec.read_text(encoding="utf-8"))
        patches = tuple(BenchmarkPatch(p["name"], p["split"], tuple(p["bbox"]), int(p["epsg"]), int(p["n_dates"]))
                        for p in d["patches"])
        return Benchmark(r, d["id"], int(d["n"]), int(d["size"]), int(d["seed"]), d["created_at"], d["simulator"], patches)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{spec}: unreadable benchmark definition ({exc}); rebuild it with `benchmark create --force`"
        ) from None


def patch_names(n: int) -> list[str]:
    """``eopatch-01`` … (two digits at least, like the challenge's 25 test patches)."""
    width = max(2, len(str(n)))
    return [f"eopatch-{i:0{width}d}" for i in range(1, n + 1)]


def split_halves(names: Sequence[str], seed: int) -> dict[str, str]:
    """name → ``public`` / ``private``: a seeded random half (``n // 2``, at least one) is public."""
    n = len(names)
    order = np.random.default_rng([int(seed), 0x5B117]).permutation(n)
    n_public = max(1, n // 2)
    public = {names[i] for i in order[:n_public]}
    return {name: (PUBLIC if name in public else PRIVATE) for name in names}


def _moved_bbox(bbox: BBox, rng: np.random.Generator) -> BBox:
    w, h = bbox.width, bbox.height
    x = float(rng.integers(_UTM_X[0] // 10, (_UTM_X[1] - int(w)) // 10)) * 10
    y = float(rng.integers(_UTM_Y[0] // 10, (_UTM_Y[1] - int(h)) // 10)) * 10
    return BBox(x, y, x + w, y + h, bbox.epsg)


def _simulated(seed: int, size: int) -> Patch:
    from ..simulate import simulate_patch

    return simulate_patch(seed, size, split="test")


def strip_labels(patch: Patch, benchmark_id: str | None = None) -> Patch:
    """The participant's copy of a benchmark patch: no CULTIVATED / NOT_DECLARED / ALL_POLYS, and only the challenge's
    meta_info keys (the simulator's seed, region and per-frame cloud figures would give the labels away)."""
    meta = {k: patch.info.meta[k] for k in PUBLIC_META if k in patch.info.meta}
    if benchmark_id:
        meta["benchmark"] = benchmark_id
    info = PatchInfo(name=patch.name, source=patch.info.source, product_level=patch.info.product_level,
                     norm_factor=patch.info.norm_factor, notes=("benchmark test input: labels withheld",), meta=meta)
    return patch.replace(cultivated=None, not_declared=None, all_polys=None, info=info)


def _content_id(n: int, size: int, rows: list[BenchmarkPatch], labels: list[tuple[np.ndarray, np.ndarray | None]]) -> str:
    h = hashlib.sha256(json.dumps({"n": n, "size": size, "patches": [r.to_dict() for r in rows]}, sort_keys=True).encode())
    for cult, nd in labels:
        h.update(np.ascontiguousarray(cult, bool).tobytes())
        h.update(b"-" if nd is None else np.ascontiguousarray(nd, bool).tobytes())
    return f"bm-{h.hexdigest()[:12]}"


def create_benchmark(
    n: int = DEFAULT_N,
    size: int = DEFAULT_SIZE,
    seed: int | None = None,
    *,
    root: str | Path | None = None,
    force: bool = False,
    patch_factory: PatchFactory | None = None,
    progress: bool = False,
    build_inputs: bool = True,
) -> Benchmark:
    """Build the benchmark: ``n`` labelled test patches of ``size`` px, halves, definition file, inputs archive.

    ``seed`` None draws a secret one (recorded in the definition); give one to rebuild a benchmark exactly.
    ``patch_factory(seed, size)`` replaces the simulator (tests). An existing benchmark is replaced only with
    ``force=True``; submissions to the old one stay in the database under its id, out of the new table.
    """
    if not isinstance(n, int) or not 2 <= n <= 200:
        raise ConfigError(f"--n {n}: a benchmark needs 2–200 patches (a public and a private half)")
    if not isinstance(size, int) or not 16 <= size <= 2000:
        raise ConfigError(f"--size {size}: choose 16–2000 px at 10 m ({DEFAULT_SIZE} demo, {FULL_SIZE} full size)")
    if seed is None:
        seed = secrets.randbelow(2**62)
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed {seed!r}: give a non-negative integer")
    r = benchmark_root(root)
    final = r / DEFINITION
    if (final / SPEC_FILE).exists() and not force:
        raise ConfigError(
            f"a benchmark already exists in {final} ({load_benchmark(r).id}); pass --force to replace it "
            "(its submissions stay in the database under the old id)"
        )
    factory = patch_factory or _simulated
    from ..io.eopatch import write_eopatch

    names = patch_names(n)
    halves = split_halves(names, seed)
    ss = np.random.SeedSequence([int(seed), 0xBE7C])
    patch_seeds = [int(s) for s in ss.generate_state(n, dtype=np.uint64) >> np.uint64(2)]
    place = np.random.default_rng([int(seed), 0xB0C5])
    tmp = r / f".{DEFINITION}-build-{uuid.uuid4().hex[:8]}"
    rows: list[BenchmarkPatch] = []
    labels: list[tuple[np.ndarray, np.ndarray | None]] = []
    items: Any = list(zip(names, patch_seeds, strict=True))
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="benchmark", unit="patch", leave=False)
    try:
        for name, pseed in items:
            p = factory(pseed, size)
            if p.cultivated is None:
                raise ConfigError(f"the patch factory returned {p.name!r} without CULTIVATED labels; benchmark patches need them")
            bbox = _moved_bbox(p.bbox, place)
            p = p.replace(bbox=bbox, info=dataclasses.replace(p.info, name=name))
            write_eopatch(p, tmp / "truth" / name)
            rows.append(BenchmarkPatch(name, halves[name], bbox.bounds, bbox.epsg, p.n_dates))
            labels.append((p.cultivated, p.not_declared))
            del p
        bid = _content_id(n, size, rows, labels)
        simulator = "custom"
        if patch_factory is None:
            from ..simulate import SIMULATOR_VERSION

            simulator = f"sr_core.simulate {SIMULATOR_VERSION}"
        spec = {"id": bid, "n": n, "size": size, "seed": int(seed),
                "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "simulator": simulator,
                "patches": [x.to_dict() for x in rows]}
        (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=1), encoding="utf-8")
        swap_in_folder(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    bm = load_benchmark(r)
    if build_inputs:
        inputs_archive(bm)
    return bm


# ---------------------------------------------------------------------------------------------------------------
# Inputs for participants
# ---------------------------------------------------------------------------------------------------------------
def export_inputs(out_dir: str | Path, benchmark: Benchmark | None = None, *, overwrite: bool = False,
                  progress: bool = False) -> list[Path]:
    """Write every benchmark patch without its labels as an EOPatch folder ``<out_dir>/eopatch-XX``; returns them."""
    from ..io.eopatch import load_eopatch, write_eopatch

    bm = benchmark or load_benchmark()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items: Any = bm.truth_paths()
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="inputs", unit="patch", leave=False)
    written = []
    for folder in items:
        p = strip_labels(load_eopatch(folder), bm.id)
        written.append(write_eopatch(p, out / folder.name, overwrite=overwrite))
    return written


def inputs_archive(benchmark: Benchmark | None = None, *, rebuild: bool = False) -> Path:
    """``definition/inputs.zip``: the label-free EOPatch folders under ``benchmark-inputs/`` (built once, atomically).

    Array files are already gzip-compressed, so they are stored as they are; JSON files are deflated. Entries
    carry a fixed date, so the archive is the same bytes for the same benchmark.
    """
    bm = benchmark or load_benchmark()
    target = bm.folder / INPUTS_ZIP
    if target.is_file() and not rebuild:
        return target
    work = bm.folder / f".inputs-{uuid.uuid4().hex[:8]}"
    part = bm.folder / f".{INPUTS_ZIP}.{uuid.uuid4().hex[:8]}.part"
    try:
        folders = export_inputs(work, bm)
        with zipfile.ZipFile(part, "w") as zf:
            for folder in folders:
                for f in sorted(folder.rglob("*")):
                    if not f.is_file():
                        continue
                    arc = f"benchmark-inputs/{folder.name}/{f.relative_to(folder).as_posix()}"
                    info = zipfile.ZipInfo(arc, date_time=(2019, 9, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_STORED if f.name.endswith(".gz") else zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, f.read_bytes())
        part.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        part.unlink(missing_ok=True)
    return target


def expected_submission_names(benchmark: Benchmark) -> list[str]:
    """The files a submission must hold: ``eopatch-XX.tif`` per benchmark patch."""
    return [f"{n}.tif" for n in benchmark.names]


__all__ = [
    "DEFAULT_N", "DEFAULT_SIZE", "FULL_SIZE", "PRIVATE", "PUBLIC", "Benchmark", "BenchmarkMissingError", "BenchmarkPatch",
    "benchmark_exists", "benchmark_root", "create_benchmark", "expected_submission_names", "export_inputs",
    "inputs_archive", "load_benchmark", "patch_names", "split_halves", "strip_labels",
]  # fmt: skip
