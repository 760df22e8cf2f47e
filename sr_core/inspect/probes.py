"""Probes: inputs that carry no field information, and how much cultivated structure the model paints on them.

=====================  =================================================================================================
probe                  input
=====================  =================================================================================================
``clouded``            every date fully clouded: bright, smooth cloud reflectance, ``cloud_mask`` True, ``cloud_prob`` 1
                       (a check of the masking rule: ``predict`` paints 0 where no date is clear, whatever the network)
``clouded_unflagged``  the same cloud reflectance with every cloud flag cleared (a mask that missed it): what the
                       *network* paints on cloud texture
``constant``           one spectrum (the patch's median clear spectrum) at every pixel and date, no clouds
``dates_shuffled``     the patch with its timestamps permuted against its bands (phenology out of order)
``pixels_shuffled``    the patch with its 10 m pixels permuted in space (one permutation for all dates and layers)
``forest_simulated``   a forest-only scene: time series of pure-forest 10 m pixels of a simulated patch, drawn at random
``forest_real``        the real forest patch ``real/slovenia-forest-l1c-5frames`` under ``$SR_SHARED_DATA`` (75 %
                       forest, 0.1 % arable; L1C top-of-atmosphere, 5 frames of 2015: also outside the training
                       distribution); the library never looks for it anywhere else
=====================  =================================================================================================

For each probe: the cultivated share painted and a structure measure of the binary map (:func:`structure`): the
number of parcel-like components, their density per km², the edge density, and the share of 10 m pixels the map
splits (sub-10 m detail). On ``clouded``, ``clouded_unflagged``, ``constant`` and the forest scenes a trustworthy
model paints ≈ 0 % cultivated and no parcels; on ``pixels_shuffled`` the parcel structure should collapse; on
``dates_shuffled`` a model that uses phenology should change its answer (agreement with the original map is
reported).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import ConfigError, PatchValidationError, SRCoreError
from ..patch import SCALE, Patch
from ..paths import ENV_SHARED_DATA, real_fixture, shared_data_dir

PROBES: tuple[str, ...] = ("clouded", "clouded_unflagged", "constant", "dates_shuffled", "pixels_shuffled",
                           "forest_simulated", "forest_real")
PROBE_TEXT: dict[str, str] = {
    "clouded": "every date fully clouded (opaque cloud, all masked: checks the masking rule)",
    "clouded_unflagged": "the same clouds, no cloud flag set (checks the network)",
    "constant": "one constant spectrum everywhere, every date",
    "dates_shuffled": "timestamps permuted against the bands",
    "pixels_shuffled": "10 m pixels permuted in space (same for all dates)",
    "forest_simulated": "forest-only scene (simulated forest pixels)",
    "forest_real": "real forest patch, Slovenia (L1C, 2015, 5 frames)",
}
#: probes on which a trustworthy model paints (almost) no cultivated land
NO_FIELD_PROBES = ("clouded", "clouded_unflagged", "constant", "forest_simulated", "forest_real")
MIN_PARCEL_PX = 4  #: components smaller than this (2.5 m pixels) are not counted as painted parcels
FOREST_CODE = 2000  #: RABA land-use code of forest (``sr_core.simulate.classes``)
REAL_FOREST_NAME = "slovenia-forest-l1c-5frames"
MAX_PROBE_SIZE = 128  #: constructed probes are at most this many 10 m pixels a side (keeps the probes quick)


# ---------------------------------------------------------------------------------------------------------------
# Structure of a binary map
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Structure:
    """How much field-like structure a binary 2.5 m map holds."""

    cultivated_fraction: float
    n_parcels: int  #: 8-connected cultivated components of ≥ MIN_PARCEL_PX pixels
    parcels_per_km2: float
    edge_density: float  #: share of 4-neighbour pixel pairs whose classes differ
    split_10m_share: float  #: share of 10 m pixels holding both classes (sub-10 m detail painted)

    def to_dict(self) -> dict[str, float | int]:
        return {"cultivated_fraction": self.cultivated_fraction, "n_parcels": self.n_parcels,
                "parcels_per_km2": self.parcels_per_km2, "edge_density": self.edge_density,
                "split_10m_share": self.split_10m_share}


def structure(binary: Any, pixel_m: float = 2.5, min_px: int = MIN_PARCEL_PX) -> Structure:
    """:class:`Structure` of a binary map (H, W) of 2.5 m pixels (H, W multiples of 4 for the 10 m split share)."""
    b = np.asarray(binary) != 0
    if b.ndim != 2 or b.size == 0:
        raise PatchValidationError(f"structure needs a non-empty 2-D map, got shape {b.shape}")
    labels, n = ndimage.label(b, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    n_parcels = int((sizes >= min_px).sum())
    area_km2 = b.size * pixel_m * pixel_m / 1e6
    pairs = b.shape[0] * (b.shape[1] - 1) + (b.shape[0] - 1) * b.shape[1]
    diff = int((b[:, 1:] != b[:, :-1]).sum() + (b[1:, :] != b[:-1, :]).sum())
    split = 0.0
    H, W = b.shape
    if H % SCALE == 0 and W % SCALE == 0:
        m = b.reshape(H // SCALE, SCALE, W // SCALE, SCALE).mean(axis=(1, 3))
        split = float(((m > 0) & (m < 1)).mean())
    return Structure(float(b.mean()), n_parcels, n_parcels / area_km2, diff / pairs if pairs else 0.0, split)


# ---------------------------------------------------------------------------------------------------------------
# Probe inputs
# ---------------------------------------------------------------------------------------------------------------
def _strip_labels(patch: Patch, name: str, note: str) -> Patch:
    import dataclasses

    info = dataclasses.replace(patch.info, name=f"{patch.name}:{name}").with_note(f"probe {name}: {note}")
    return patch.replace(cultivated=None, not_declared=None, all_polys=None, info=info)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-9)


def _limit(patch: Patch) -> Patch:
    """Crop a large patch to its top-left MAX_PROBE_SIZE square (probes need no more)."""
    if patch.height <= MAX_PROBE_SIZE and patch.width <= MAX_PROBE_SIZE:
        return patch
    return patch.crop(0, 0, min(patch.height, MAX_PROBE_SIZE), min(patch.width, MAX_PROBE_SIZE))


def clouded_probe(patch: Patch, seed: int = 0) -> Patch:
    """Every date fully clouded: opaque, bright, spectrally flat cloud with smooth texture; all pixels masked."""
    p = _limit(patch)
    T, H, W = p.shape
    rng = np.random.default_rng(seed)
    tex = np.stack([_smooth_field(rng, (H, W), max(H, W) / 8) for _ in range(T)])  # (T, H, W)
    base = 0.45 + 0.08 * tex
    tilt = np.linspace(1.05, 0.85, 12, dtype=np.float32)  # clouds are bright and nearly white, a little darker in SWIR
    bands = np.clip(base[..., None] * tilt, 0.05, 1.2).astype(np.float32)
    return _strip_labels(p.replace(bands=bands, cloud_prob=np.ones((T, H, W), np.float32),
                                   cloud_mask=np.ones((T, H, W), bool), is_data=np.ones((T, H, W), bool),
                                   scl=None if p.scl is None else np.full((T, H, W), 9, np.uint8)),
                         "clouded", "all dates opaque cloud, cloud_mask all True")


def clouded_unflagged_probe(patch: Patch, seed: int = 0) -> Patch:
    """:func:`clouded_probe`'s cloud reflectance with every flag cleared (``cloud_mask`` False, ``cloud_prob`` 0,
    SCL vegetation): ``predict`` cannot fall back on its rule for never-clear pixels, so this measures what the network
    itself reads into cloud texture."""
    p = clouded_probe(patch, seed)
    T, H, W = p.shape
    info = p.info.with_note("probe clouded_unflagged: the clouds' flags cleared")
    return p.replace(cloud_prob=np.zeros((T, H, W), np.float32), cloud_mask=np.zeros((T, H, W), bool),
                     scl=None if p.scl is None else np.full((T, H, W), 4, np.uint8), info=info)


def median_clear_spectrum(patch: Patch) -> np.ndarray:
    """(12,) median reflectance over the clear pixels of all dates (all pixels when none is clear)."""
    valid = patch.valid_mask()
    px = patch.bands[valid] if valid.any() else patch.bands.reshape(-1, patch.bands.shape[-1])
    if px.shape[0] > 200_000:  # a subsample is plenty for a median
        px = px[np.random.default_rng(0).choice(px.shape[0], 200_000, replace=False)]
    return np.median(px, axis=0).astype(np.float32)


def constant_probe(patch: Patch) -> Patch:
    """The patch's median clear spectrum at every pixel and date, no clouds."""
    p = _limit(patch)
    T, H, W = p.shape
    bands = np.broadcast_to(median_clear_spectrum(patch), (T, H, W, 12)).astype(np.float32)
    return _strip_labels(p.replace(bands=bands, cloud_prob=np.zeros((T, H, W), np.float32),
                                   cloud_mask=np.zeros((T, H, W), bool), is_data=np.ones((T, H, W), bool), scl=None),
                         "constant", "one spectrum everywhere")


def dates_shuffled_probe(patch: Patch, seed: int = 0) -> Patch:
    """Timestamps permuted against the bands (no date keeps its own timestamp when T ≥ 2)."""
    T = patch.n_dates
    if T < 2:
        raise PatchValidationError(f"patch {patch.name!r} has a single date; shuffling dates needs at least 2")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(T)
    while np.any(perm == np.arange(T)):  # a derangement: every date gets another date's timestamp
        perm = rng.permutation(T)
    ts = tuple(patch.timestamps[i] for i in perm)
    return _strip_labels(_limit(patch).replace(timestamps=ts), "dates_shuffled", "timestamps permuted")


def pixels_shuffled_probe(patch: Patch, seed: int = 0) -> Patch:
    """10 m pixels permuted in space, one permutation for all dates and all per-pixel layers."""
    p = _limit(patch)
    T, H, W = p.shape
    perm = np.random.default_rng(seed).permutation(H * W)

    def shuffle(a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        flat = a.reshape(T, H * W, *a.shape[3:])
        return flat[:, perm].reshape(a.shape)

    return _strip_labels(p.replace(bands=shuffle(p.bands), cloud_prob=shuffle(p.cloud_prob),
                                   cloud_mask=shuffle(p.cloud_mask), is_data=shuffle(p.is_data), scl=shuffle(p.scl)),
                         "pixels_shuffled", "pixels permuted in space")


def forest_pixels(patch: Patch, code: int = FOREST_CODE) -> np.ndarray:
    """(N, 2) row/col of the 10 m pixels whose 16 label pixels all carry land-use ``code``."""
    if patch.all_polys is None:
        return np.zeros((0, 2), np.int64)
    H, W = patch.height, patch.width
    pure = (patch.all_polys == code).reshape(H, SCALE, W, SCALE).all(axis=(1, 3))
    return np.argwhere(pure)


def forest_probe(size: int = 64, seed: int = 0, min_pixels: int = 32, tries: int = 8) -> Patch:
    """A simulated forest-only scene of ``size × size`` 10 m pixels: every pixel is the full time series (bands,
    clouds) of a pure-forest pixel drawn at random from a simulated patch of the test split. Labels: all 0."""
    from ..simulate import simulate_patch

    src = None
    px = np.zeros((0, 2), np.int64)
    for i in range(tries):
        cand = simulate_patch(700_000 + seed * 97 + i, size=96, split="test")
        px = forest_pixels(cand)
        if len(px) >= min_pixels:
            src = cand
            break
    if src is None:
        raise ConfigError(f"no simulated patch among {tries} tries held {min_pixels} pure-forest 10 m pixels; "
                          "raise tries or lower min_pixels")
    rng = np.random.default_rng(seed)
    pick = px[rng.integers(len(px), size=size * size)]
    r, c = pick[:, 0].reshape(size, size), pick[:, 1].reshape(size, size)

    def take(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[:, r, c]

    import dataclasses

    from ..geo import BBox

    bbox = BBox(src.bbox.min_x, src.bbox.min_y, src.bbox.min_x + 10 * size, src.bbox.min_y + 10 * size, src.bbox.epsg)
    info = dataclasses.replace(src.info, name="probe:forest_simulated").with_note(
        f"probe forest_simulated: {len(px)} pure-forest pixels of {src.name} drawn at random")
    z = np.zeros((SCALE * size, SCALE * size), bool)
    return Patch(bands=take(src.bands), timestamps=src.timestamps, bbox=bbox, cloud_prob=take(src.cloud_prob),
                 cloud_mask=take(src.cloud_mask), is_data=take(src.is_data), scl=take(src.scl), cultivated=z,
                 not_declared=z, all_polys=np.full(z.shape, FOREST_CODE, np.uint16), info=info)




def real_forest_path(data_dir: str | Path | None = None) -> Path | None:
    """The real forest fixture under ``data_dir`` (default ``$SR_SHARED_DATA``); None when absent."""
    return real_fixture(REAL_FOREST_NAME, data_dir)


def real_forest_probe(path: str | Path | None = None) -> Patch:
    from ..io import load_eopatch

    p = Path(path) if path is not None else real_forest_path()
    if p is None or not p.exists():
        base = shared_data_dir()
        where = f"{base / 'real' / REAL_FOREST_NAME}" if base is not None else f"${ENV_SHARED_DATA} (unset)"
        raise ConfigError(f"the real forest patch {where} is absent; "
                          f"set {ENV_SHARED_DATA} to the folder holding real/{REAL_FOREST_NAME} or skip this probe")
    return load_eopatch(p)


def make_probe(patch: Patch, name: str, seed: int = 0) -> Patch:
    """The input of probe ``name`` (one of :data:`PROBES`) built from ``patch`` (ignored by the forest probes except
    for the simulated forest scene's size)."""
    if name == "clouded":
        return clouded_probe(patch, seed)
    if name == "clouded_unflagged":
        return clouded_unflagged_probe(patch, seed)
    if name == "constant":
        return constant_probe(patch)
    if name == "dates_shuffled":
        return dates_shuffled_probe(patch, seed)
    if name == "pixels_shuffled":
        return pixels_shuffled_probe(patch, seed)
    if name == "forest_simulated":
        return forest_probe(max(16, min(patch.height, patch.width, MAX_PROBE_SIZE)), seed)
    if name == "forest_real":
        return real_forest_probe()
    raise ConfigError(f"unknown probe {name!r}; choose from {', '.join(PROBES)}")


# ---------------------------------------------------------------------------------------------------------------
# Running the probes
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ProbeResult:
    """One probe's outcome: what was fed, what came out (``binary`` kept for display), and a verdict."""

    name: str
    description: str
    structure: Structure | None = None
    mean_proba: float | None = None
    agreement_with_original: float | None = None  #: share of pixels equal to the original map (shuffled dates)
    binary: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None  #: why the probe could not run

    @property
    def cultivated_fraction(self) -> float | None:
        return None if self.structure is None else self.structure.cultivated_fraction

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "mean_proba": self.mean_proba,
                "cultivated_fraction": self.cultivated_fraction, "agreement_with_original": self.agreement_with_original,
                "structure": None if self.structure is None else self.structure.to_dict(), "error": self.error}


def run_probes(
    patch: Patch,
    model: Any = None,
    device: str = "auto",
    names: Sequence[str] = PROBES,
    seed: int = 0,
    threshold: float | None = None,
    original: np.ndarray | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> list[ProbeResult]:
    """Build each probe from ``patch``, predict it, and measure what was painted. ``original`` is the model's binary
    map of ``patch`` (for the agreement of ``dates_shuffled``). A probe that cannot be built (e.g. the real forest
    patch is absent) is returned with ``error`` set instead of failing the whole run."""
    from ..inference import predict

    out = []
    for i, name in enumerate(names):
        desc = PROBE_TEXT.get(name, name)
        try:
            probe = make_probe(patch, name, seed)
            pred = predict(probe, device=device, model=model, threshold=threshold)
        except SRCoreError as exc:
            out.append(ProbeResult(name, desc, error=str(exc)))
        else:
            b = pred.binary.astype(bool)
            agree = None
            if name == "dates_shuffled" and original is not None:
                o = np.asarray(original, bool)[: b.shape[0], : b.shape[1]]
                agree = float((o == b).mean()) if o.shape == b.shape else None
            out.append(ProbeResult(name, desc, structure(b), float(pred.proba.mean()), agree, b))
        if progress is not None:
            progress(i + 1, len(names))
    return out
