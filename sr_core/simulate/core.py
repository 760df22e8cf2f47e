"""``simulate_patch``: one simulated benchmark patch, deterministic per (seed, split).

Seeds: every random draw comes from ``np.random.SeedSequence([seed, SPLIT_IDS[split]])`` and children spawned
from it (placement, landscape, phenology, weather, clouds, noise), so

* the same (seed, split, size, region) gives bit-identical arrays on every run and machine with the same numpy;
* the train and test splits never share a random stream, whatever the seed numbers (seed 7 of ``train`` and
  seed 7 of ``test`` are unrelated patches);
* a different ``size`` draws a different landscape (the layout depends on the extent), so tests and the model's
  small training crops are independent of the 500 × 500 patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from scipy import ndimage

from ..coreg import satellite_phase
from ..geo import BBox
from ..patch import Patch, PatchInfo, ProductLevel, Source, handed_over
from . import clouds as cl
from . import sensor
from .classes import CLASS_KEYS, CLASSES
from .landscape import LABEL_OFFSET_M, Landscape, generate_landscape
from .phenology import Climate, season_cover
from .regions import REGIONS, Region, get_region
from .spectra import segment_spectra

SIMULATOR_VERSION = "2.9"
SPLIT_IDS = {"train": 0, "test": 1}
MAX_CLOUD = 0.5  #: frames whose scene cloud cover exceeds this were never downloaded (benchmark maxcc)
MIN_FRAMES, MAX_FRAMES = 19, 48  #: the frame counts the benchmark's patches have
GRID_M = 5000  #: the benchmark's patch grid
_SOILS = {  # shares of brown, dark, light, red soil per region
    "ljubljana_basin": (0.55, 0.35, 0.08, 0.02), "vipava": (0.45, 0.05, 0.2, 0.3), "podravje": (0.7, 0.05, 0.23, 0.02),
    "pomurje": (0.72, 0.08, 0.18, 0.02),
}  # fmt: skip


def _split_id(split: str) -> int:
    from ..errors import ConfigError

    if split not in SPLIT_IDS:
        raise ConfigError(f"unknown split {split!r}; use one of {', '.join(SPLIT_IDS)}")
    return SPLIT_IDS[split]


def patch_bbox(region: Region, cell_index: int, size: int) -> BBox:
    """The patch footprint: a real 5 km grid cell of ``region``; other sizes start at the cell's lower-left corner."""
    x0, y0 = region.cells[cell_index % len(region.cells)]
    return BBox(float(x0), float(y0), float(x0 + 10 * size), float(y0 + 10 * size))


@dataclass(frozen=True)
class Plan:
    """Where a patch lies and which acquisitions it keeps (cheap: no pixels yet)."""

    region: Region
    bbox: BBox
    split_id: int
    times: list[datetime]  #: every candidate acquisition
    orbit: list[int]  #: orbit index of each candidate
    weather: cl.Weather  #: tile cloud cover and soil wetness of each candidate
    kept: np.ndarray  #: indices of the kept candidates
    guard: int  #: frames added (+) or removed (−) to stay within the benchmark's 19–48
    rngs: tuple[np.random.Generator, ...]  #: landscape, phenology, clouds, noise

    @property
    def kept_times(self) -> list[datetime]:
        return [self.times[i] for i in self.kept]


def _check_args(seed: int, size: int) -> None:
    from ..errors import ConfigError

    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or not 8 <= size <= 2000:
        raise ConfigError(f"size must be an integer between 8 and 2000 pixels, got {size!r}")


def plan_acquisitions(seed: int, size: int = 500, split: str = "train", region: str | None = None) -> Plan:
    """Place a patch and choose its frames: the first, cheap half of :func:`simulate_patch` (same draws)."""
    _check_args(seed, size)
    sid = _split_id(split)
    ss = np.random.SeedSequence([int(seed), sid])
    r_place, r_land, r_pheno, r_weather, r_cloud, r_noise = (np.random.default_rng(s) for s in ss.spawn(6))
    keys = sorted(REGIONS)
    reg = get_region(region) if region is not None else REGIONS[keys[int(r_place.integers(len(keys)))]]
    bbox = patch_bbox(reg, int(r_place.integers(len(reg.cells))), int(size))
    times, orbit = sensor.candidate_dates((bbox.min_x + bbox.max_x) / 2)
    weather = cl.draw_weather(r_weather, times)
    cover = weather.tile_cover
    keep = cover <= MAX_CLOUD
    guard = 0
    if keep.sum() > MAX_FRAMES:  # beyond the benchmark's range: drop the cloudiest kept frames
        order = np.argsort(-np.where(keep, cover, -1))
        drop = order[: int(keep.sum()) - MAX_FRAMES]
        keep[drop] = False
        guard = -int(drop.size)
    if keep.sum() < MIN_FRAMES:  # too few: take back the least cloudy dropped ones (frames just over the limit)
        order = np.argsort(np.where(keep, np.inf, cover))
        add = order[: MIN_FRAMES - int(keep.sum())]
        keep[add] = True
        guard = int(add.size)
    return Plan(reg, bbox, sid, times, orbit, weather, np.flatnonzero(keep), guard, (r_land, r_pheno, r_cloud, r_noise))


def _forest_share(land: Any, H: int, W: int) -> np.ndarray:
    """(H, W) share of tree canopy (forest, trees, coppice surfaces) in each 10 m pixel."""
    trees = np.array([CLASSES[k].surface in ("forest", "trees") for k in CLASS_KEYS], bool)
    at25 = trees[land.seg_class][land.seg].astype(np.float32)  # (4H, 4W)
    return at25[: 4 * H, : 4 * W].reshape(H, 4, W, 4).mean(axis=(1, 3))


def _realism_rng(seed: int, split_id: int) -> np.random.Generator:
    """Simulator 2.0's own stream (climate first, then the sensor's realism draws), apart from the 1.x streams so
    that those stay as they were."""
    return np.random.default_rng([int(seed), split_id, 2])


def _coreg_rng(seed: int, split_id: int, k: int = 0) -> np.random.Generator:
    """Simulator 2.7's co-registration stream (``k`` 0: the patch's draw, 1: its dates'), apart from the others so
    that 2.7 differs from 2.6 in the co-registration of the dates only."""
    return np.random.default_rng([int(seed), split_id, 27, k])


def patch_climate(seed: int, split: str = "train") -> Climate:
    """The :class:`~.phenology.Climate` (calendar shift, winter greenness, summer drought) that
    :func:`simulate_patch` draws for ``seed`` and ``split``, without simulating the patch."""
    return Climate.draw(_realism_rng(seed, _split_id(split)))


def simulated_landscape(seed: int, size: int = 500, split: str = "train", region: str | None = None,
                        label_offset_m: float = LABEL_OFFSET_M) -> Landscape:
    """The landscape (segments, classes and labels at 2.5 m) of the patch :func:`simulate_patch` draws for the same
    arguments, without its spectra (seconds instead of tens of seconds). ``label_offset_m`` = 0 gives the labels
    the sown parcel edges would have: the declared ones minus their digitising offset (``landscape.LABEL_OFFSET_M``)."""
    plan = plan_acquisitions(seed, size, split, region)
    return generate_landscape(plan.rngs[0], int(size), plan.region, label_offset_m)


def simulate_patch(seed: int, size: int = 500, split: str = "train", region: str | None = None) -> Patch:
    """A simulated Sentinel-2 L2A patch of ``size × size`` 10 m pixels with 2.5 m labels.

    ``seed`` is any non-negative integer; ``split`` ("train" or "test") enters the seed derivation so the
    splits never share a random stream; ``region`` picks one of :data:`REGIONS` (drawn from the seed when None).
    """
    plan = plan_acquisitions(seed, size, split, region)
    reg, bbox, sid = plan.region, plan.bbox, plan.split_id
    r_land, r_pheno, r_cloud, r_noise = plan.rngs
    times, orbit, weather, kept, ts = plan.times, plan.orbit, plan.weather, plan.kept, plan.kept_times
    cover = weather.tile_cover
    H = W = int(size)
    T = len(ts)
    days = np.array([(t - datetime(2019, 3, 1)).total_seconds() / 86400 for t in ts])

    # -- landscape, phenology, spectra ------------------------------------------------------------------------
    land = generate_landscape(r_land, H, reg)
    models = [CLASSES[CLASS_KEYS[c]].pheno for c in land.seg_class]
    r_real = _realism_rng(seed, sid)
    climate = Climate.draw(r_real)
    realism = sensor.Realism.draw(r_real)
    cover_frac = season_cover(models, days, r_pheno, land.seg_variant, climate=climate)
    refl, tex = segment_spectra(land.seg_class, land.seg_variant, cover_frac, weather.wetness[kept], r_pheno,
                                soil_mix=_SOILS.get(reg.key, (0.7, 0.1, 0.15, 0.05)))
    shifts = sensor.draw_shifts(r_noise, T)
    native = sensor.render_native(land.seg, land.texture, refl, tex, shifts, (H, W))
    del refl, tex
    forest = _forest_share(land, H, W)
    satellite = satellite_phase(ts)
    coregistration = sensor.Coregistration.draw(_coreg_rng(seed, sid))
    native, coreg = sensor.apply_realism(native, r_real, realism,
                                         coregistration.offsets(satellite, _coreg_rng(seed, sid, 1)), forest)
    hazy = r_real.random(T) < realism.haze_share
    grey = r_real.random(T) < realism.grey_share

    # -- atmosphere, clouds, noise, products (each band group on its native grid) -----------------------------
    bands = np.empty((T, H, W, 12), np.float32)
    is_data = np.ones((T, H, W), bool)
    edge_orbit = int(r_cloud.integers(len(sensor.ORBITS))) if r_cloud.random() < 0.08 else -1
    edge_share = r_cloud.uniform(0.05, 0.5)
    clp = np.zeros((T, H, W), np.float32)
    clm = np.zeros((T, H, W), bool)
    scl = np.zeros((T, H, W), np.uint8)
    band_off = np.array([0.010, 0.008, 0.005, 0.004, 0.003, 0.002, 0.002, 0.002, 0.002, 0.003, 0.001, 0.001], np.float32)
    local = []
    for j, i in enumerate(kept):
        gain = (r_noise.uniform(0.97, 1.03) * r_noise.uniform(0.99, 1.01, 12)).astype(np.float32)
        offset = band_off * np.float32(r_noise.normal(0, 0.6))
        lc = cl.local_cover(r_cloud, float(cover[i]))
        local.append(lc)
        layer = cl.draw_clouds(r_cloud, ts[j], lc, (H, W))
        groups = []
        haze = sensor.haze_layer(r_real, (H, W), realism.haze_opacity) if hazy[j] else None
        for g, (idx, _k) in enumerate(sensor.GROUPS):
            x = native[g][j] * gain[idx] + offset[idx]
            if haze is not None:  # thin haze that no cloud mask flags: the surface seen through a grey veil
                a = sensor.on_grid(haze, _k, x.shape[0], x.shape[1])[..., None]
                x = (1 - a) * x + a * sensor.HAZE_REFLECTANCE[idx]
            x = cl.apply_clouds_group(x, layer, idx, _k)
            x += r_noise.standard_normal(x.shape, dtype=np.float32) * (np.float32(0.0025) + np.float32(0.01) * x)
            np.clip(x, 0.0, 1.6, out=x)
            groups.append(np.round(x * 1e4) / 1e4)  # digital numbers of 1e-4, as the benchmark stores them
        frame = sensor.assemble(groups, (H, W))
        if orbit[i] == edge_orbit:
            is_data[j] = cl.swath_edge(np.random.default_rng([int(seed), sid, 99]), (H, W), edge_share)
            frame[~is_data[j]] = 0.0
        bands[j] = frame
        clp[j], clm[j], scl[j] = cl.cloud_products(r_cloud, layer, frame, is_data[j])
        if haze is not None or grey[j]:  # s2cloudless reads haze and bright soil as a little cloudy: grey values
            g_ = sensor.haze_layer(r_real, (H, W), realism.grey_level) if haze is None else haze * r_real.uniform(0.8, 1.6)
            clp[j] = np.where(clm[j], clp[j], np.clip(np.maximum(clp[j], g_), 0.0, 0.39)) * is_data[j]
        # the delivered mask is dilated (s2cloudless: 2 px at 10 m), so its rim covers thin cloud and clear land
        clm[j] = ndimage.binary_dilation(clm[j], iterations=2) & is_data[j]
    del native

    info = PatchInfo(
        name=f"eopatch-{split}-{int(seed):06d}",
        source=Source.SIMULATED,
        product_level=ProductLevel.L2A,
        norm_factor=1e-4,
        notes=(f"simulated by sr_core.simulate {SIMULATOR_VERSION} (seed {int(seed)}, split {split}, region {reg.key})",),
        meta={
            "source": "simulated", "simulator": "sr_core.simulate", "simulator_version": SIMULATOR_VERSION,
            "seed": int(seed), "split": split, "seed_entropy": [int(seed), sid], "region": reg.key,
            "region_title": reg.title, "size_x": W, "size_y": H, "maxcc": MAX_CLOUD, "time_difference": 7200,
            "time_interval": ["2019-03-01T00:00:00", "2019-09-01T23:59:59"], "n_candidates": len(times),
            "frames_guard": plan.guard, "tile_cloud_cover": [round(float(cover[i]), 4) for i in kept],
            "patch_cloud_cover": [round(x, 4) for x in local], "misregistration_px_2p5m": shifts.tolist(),
            "coregistration_px_10m": np.round(coreg, 3).tolist(), "satellite": satellite.tolist(),
            "coregistration": {k: round(v, 4) for k, v in vars(coregistration).items()},
            "hazy_dates": [int(j) for j in np.flatnonzero(hazy)],
            "climate": {"shift_days": round(climate.shift_days, 2), "winter_green": round(climate.winter_green, 3),
                        "summer_dry": round(climate.summer_dry, 3)},
            "realism": {k: round(v, 4) for k, v in vars(realism).items()},
        },
    )
    for a in (bands, clp, clm, is_data, scl):  # made here, held by nobody else: the Patch takes them without a copy
        handed_over(a)
    return Patch(
        bands=bands, timestamps=ts, bbox=bbox, cloud_prob=clp, cloud_mask=clm, is_data=is_data, scl=scl,
        cultivated=land.cultivated, not_declared=land.not_declared, all_polys=land.all_polys, info=info,
    )
