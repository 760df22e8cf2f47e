"""Weather, clouds and their shadows, and the cloud products that come with an L2A frame (CLP, CLM, SCL).

**Weather.** A daily latent AR(1) series with a monthly climatology gives each acquisition a *tile* cloud
cover (the scene-level figure the benchmark filtered on: frames above 50 % were never downloaded) and a soil
wetness (rain on the preceding days darkens bare soil). The cover over the patch itself varies around the tile
figure, so a kept frame can still be overcast over the patch and a dropped one clear, as in the real data.

**Clouds.** Thresholded fractal noise (power law k^−3.3) on a 40 m grid around the patch, refined with 10 m
detail, gives cumulus and stratus fields with realistic shapes and soft edges; optical thickness grows inward
from the edge, opacity = 1 − exp(−τ). Some frames also carry a thin cirrus veil. **Shadows** are the same
field displaced away from the sun (azimuth and elevation at the acquisition time, cloud base 0.8–3 km).

**Products.** ``CLP`` mimics s2cloudless: a smoothed, saturating function of the opacity (thin cirrus only
partly detected, bright roofs and soils give small false positives); ``CLM`` = CLP averaged over 4 px,
thresholded at 0.4 and dilated by 2 px (the s2cloudless defaults). ``SCL`` follows Sen2Cor's classes at 20 m:
clouds of high/medium probability, thin cirrus, cloud shadows, water, vegetation, not vegetated, dark areas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy import ndimage
from scipy.special import ndtr

from .noise import fractal_noise
from .sensor import upsample_nearest

COARSE_M = 40.0  #: cloud field grid
MARGIN_M = 2500.0  #: room around the patch for shadows of clouds outside it
LATITUDE = 46.1
#: monthly shift of the latent cloudiness (Mar … Sep): spring 2019 was wet, May very wet
_MONTH_SHIFT = {3: 0.1, 4: 0.25, 5: 0.45, 6: -0.05, 7: -0.1, 8: -0.05, 9: 0.05}
#: monthly shift of the soil wetness (simulator 2.8): soils come out of winter recharged and dry as evaporation
#: rises, so bare soil is darker in the SWIR in March–April than in summer. Calibrated against the WorldCereal points'
#: March B11 / B12 of winter cereals and grassland (``simulate --calibrate``, the SWIR rows); no random number is drawn.
#: Simulator 2.9 dried June further (−0.1 → −0.2: the soil between young maize rows, B12 in June).
_MONTH_WET = {3: 0.35, 4: 0.2, 5: 0.05, 6: -0.2, 7: -0.15, 8: -0.15}
_Q0, _Q1 = 0.25, 0.85  #: latent quantiles mapped to 0 % and 100 % tile cover
#: share of diffuse light that still reaches a shadowed surface, per band (more at short wavelengths)
_DIFFUSE = np.array([0.45, 0.42, 0.36, 0.32, 0.3, 0.27, 0.26, 0.25, 0.25, 0.22, 0.16, 0.13], np.float32)
_CLOUD = np.array([0.56, 0.56, 0.56, 0.56, 0.57, 0.57, 0.57, 0.57, 0.57, 0.46, 0.40, 0.30], np.float32)
_CIRRUS = np.array([0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.18, 0.22, 0.16], np.float32)

# Sen2Cor scene classes
SCL_NO_DATA, SCL_DARK, SCL_SHADOW, SCL_VEG, SCL_NOT_VEG, SCL_WATER, SCL_UNCLASSIFIED = 0, 2, 3, 4, 5, 6, 7
SCL_CLOUD_MED, SCL_CLOUD_HIGH, SCL_CIRRUS = 8, 9, 10


@dataclass(frozen=True)
class Weather:
    tile_cover: np.ndarray  #: (N,) scene cloud cover of each candidate acquisition, 0–1
    wetness: np.ndarray  #: (N,) soil wetness 0–1


def draw_weather(rng: np.random.Generator, times: list[datetime]) -> Weather:
    """Tile cloud cover and soil wetness for acquisitions at ``times`` (sorted)."""
    days = 200
    z = np.empty(days)
    z[0] = rng.standard_normal()
    rho = 0.72
    eps = rng.standard_normal(days) * np.sqrt(1 - rho * rho)
    for i in range(1, days):
        z[i] = rho * z[i - 1] + eps[i]
    start = datetime(2019, 3, 1)
    idx = np.array([(t - start).days for t in times], int)
    months = [t.month for t in times]
    shift = np.array([_MONTH_SHIFT.get(m, 0.0) for m in months])
    q = ndtr(z[idx] + shift + rng.normal(0, 0.25, idx.size))
    cover = np.clip((q - _Q0) / (_Q1 - _Q0), 0, 1)
    rain = ndtr(z + 0.3)  # cloudiness of every day
    wet_daily = np.convolve(rain, np.exp(-np.arange(6) / 2.0)[::-1] / 2.5, mode="full")[:days]
    seasonal = np.array([_MONTH_WET.get(m, 0.0) for m in months])
    wet = np.clip(wet_daily[idx] - 0.35 + seasonal, 0, 1)
    return Weather(cover, wet)


def local_cover(rng: np.random.Generator, tile_cover: float, kappa: float = 1.3) -> float:
    """Cloud share over the patch for a scene with ``tile_cover``: overcast (a stratus deck or front over the
    patch), clear, or Beta-distributed around the scene figure."""
    c = float(np.clip(tile_cover, 0.0, 1.0))
    if c <= 0.005:
        return 0.0 if rng.random() < 0.85 else float(rng.uniform(0, 0.1))
    if c >= 0.995:
        return 1.0
    u = rng.random()
    p_over = 0.95 * c**1.1
    p_clear = 0.45 * (1 - c) ** 2
    if u < p_over:
        return 1.0
    if u < p_over + p_clear:
        return 0.0
    return float(rng.beta(max(c * kappa, 0.05), max((1 - c) * kappa, 0.05)))


def sun_position(t: datetime, lat: float = LATITUDE, lon: float = 15.0) -> tuple[float, float]:
    """Solar zenith and azimuth (degrees, azimuth clockwise from north) at UTC time ``t``."""
    doy = t.timetuple().tm_yday
    g = 2 * np.pi / 365 * (doy - 1 + (t.hour - 12) / 24)
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eqt = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g) - 0.014615 * np.cos(2 * g)
                    - 0.040849 * np.sin(2 * g))
    tst = t.hour * 60 + t.minute + eqt + 4 * lon
    ha = np.radians(tst / 4 - 180)
    la = np.radians(lat)
    cz = np.sin(la) * np.sin(decl) + np.cos(la) * np.cos(decl) * np.cos(ha)
    zen = np.arccos(np.clip(cz, -1, 1))
    az = np.arctan2(np.sin(ha), np.cos(ha) * np.sin(la) - np.tan(decl) * np.cos(la))
    return float(np.degrees(zen)), float((np.degrees(az) + 180) % 360)


def _sample(field: np.ndarray, y0: float, x0: float, step: float, H: int, W: int) -> np.ndarray:
    """Bilinear samples of a coarse field at an H × W grid starting at coarse coordinates (y0, x0)."""
    h, w = field.shape
    ys = y0 + (np.arange(H, dtype=np.float32) + 0.5) * step - 0.5
    xs = x0 + (np.arange(W, dtype=np.float32) + 0.5) * step - 0.5
    ys = np.clip(ys, 0, h - 1.001)
    xs = np.clip(xs, 0, w - 1.001)
    i0 = ys.astype(np.int64)
    j0 = xs.astype(np.int64)
    fy = (ys - i0)[:, None]
    fx = (xs - j0)[None, :]
    a = field[i0][:, j0]
    b = field[i0][:, j0 + 1]
    c = field[i0 + 1][:, j0]
    d = field[i0 + 1][:, j0 + 1]
    return ((a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy).astype(np.float32)


@dataclass
class CloudLayer:
    opacity: np.ndarray  #: (H, W) thick cloud opacity 0–1
    cirrus: np.ndarray  #: (H, W) thin cirrus opacity 0–1
    shadow: np.ndarray  #: (H, W) shadow strength 0–1
    brightness: float


def draw_clouds(rng: np.random.Generator, t: datetime, cover: float, size: tuple[int, int], pixel_m: float = 10.0) -> CloudLayer:
    """Cloud opacity, cirrus veil and shadow over an H × W patch with local cloud share ``cover``."""
    H, W = size
    zeros = np.zeros((H, W), np.float32)
    cirrus = zeros
    if rng.random() < 0.18:
        ch = max(8, int(H * pixel_m / 160))
        cw = max(8, int(W * pixel_m / 160))
        veil = _sample(fractal_noise((ch, cw), 2.5, rng), 0, 0, ch / H, H, W)
        cirrus = (rng.uniform(0.03, 0.14) * np.clip(veil * 0.6 + 0.6, 0, 1.2)).astype(np.float32)
    if cover <= 0:
        return CloudLayer(zeros, cirrus, zeros, 1.0)
    ext_h = H * pixel_m + 2 * MARGIN_M
    ext_w = W * pixel_m + 2 * MARGIN_M
    nh, nw = int(np.ceil(ext_h / COARSE_M)), int(np.ceil(ext_w / COARSE_M))
    n = max(nh, nw)
    big = fractal_noise((n, n), 3.3, rng, cutoff=1.0 / 400.0)[:nh, :nw]
    step = pixel_m / COARSE_M
    m0 = MARGIN_M / COARSE_M
    f = _sample(big, m0, m0, step, H, W)
    detail_n = max(16, min(512, int(2 ** np.ceil(np.log2(max(H, W))))))
    detail = fractal_noise((detail_n, detail_n), 2.3, rng)[:H, :W]
    if detail.shape != (H, W):
        detail = np.resize(detail, (H, W))
    f = f + 0.18 * detail
    if cover >= 0.999:
        thr = float(f.min()) - 0.5
    else:
        thr = float(np.quantile(f[:: max(1, H // 128), :: max(1, W // 128)], 1 - cover))
    k = rng.uniform(1.5, 5.0)
    tau = np.clip(f - thr, 0, None) * k
    # real masked clouds are seldom opaque: the ground shows through (real NDVI under the mask 0.09–0.31 over
    # vegetation), so each cloud field saturates at its own top opacity
    opacity = (rng.uniform(0.55, 0.92) * (1 - np.exp(-tau * 3.0))).astype(np.float32)
    # shadows: the field displaced away from the sun by h·tan(zenith)
    zen, az = sun_position(t)
    h = rng.uniform(800, 3000)
    dist = min(h * np.tan(np.radians(zen)), MARGIN_M * 0.95)
    d_east, d_north = dist * np.sin(np.radians(az)), dist * np.cos(np.radians(az))
    fs = _sample(big, m0 - d_north / COARSE_M, m0 + d_east / COARSE_M, step, H, W)
    dy, dx = round(float(-d_north / pixel_m)), round(float(d_east / pixel_m))
    fs = fs + 0.18 * np.roll(detail, (-dy, -dx), axis=(0, 1))
    shadow = (1 - np.exp(-np.clip(fs - thr, 0, None) * k * 3.0)) * rng.uniform(0.6, 0.9)
    shadow = (shadow * (1 - opacity)).astype(np.float32)
    return CloudLayer(opacity, cirrus, shadow, float(rng.uniform(0.8, 1.3)))


def coarse_mean(a: np.ndarray, k: int) -> np.ndarray:
    """k × k block means of a 2-D field (partial blocks at the far edges padded by their edge values)."""
    if k == 1:
        return a
    H, W = a.shape
    hc, wc = -(-H // k), -(-W // k)
    pad = np.pad(a, ((0, hc * k - H), (0, wc * k - W)), mode="edge")
    return pad.reshape(hc, k, wc, k).mean(axis=(1, 3)).astype(np.float32)


def apply_clouds_group(x: np.ndarray, layer: CloudLayer, idx: np.ndarray, k: int) -> np.ndarray:
    """Clouds, cirrus and shadows over the bands ``idx`` of a frame on their native grid (k × 10 m pixels)."""
    if layer.shadow.any():
        x = x * (1 - coarse_mean(layer.shadow, k)[..., None] * (1 - _DIFFUSE[idx]))
    if layer.opacity.any():
        a = coarse_mean(layer.opacity, k)[..., None]
        x = x * (1 - a) + a * (_CLOUD[idx] * layer.brightness)
    if layer.cirrus.any():
        c = coarse_mean(layer.cirrus, k)[..., None]
        x = x * (1 - 0.5 * c) + c * _CIRRUS[idx]
    return x.astype(np.float32, copy=False)


def apply_clouds(frame: np.ndarray, layer: CloudLayer) -> np.ndarray:
    """Top-of-canopy frame (H, W, 12) at 10 m → what the sensor sees through clouds, cirrus and in shadows. The
    20 m and 60 m bands see the layers at their own resolution."""
    from .sensor import GROUPS, assemble

    H, W = frame.shape[:2]
    groups = [apply_clouds_group(frame[::k, ::k][..., idx], layer, idx, k) for idx, k in GROUPS]
    return assemble(groups, (H, W))


def cloud_products(
    rng: np.random.Generator, layer: CloudLayer, observed: np.ndarray, is_data: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CLP (H, W) float32 0–1, CLM (H, W) bool and SCL (H, W) uint8 of one frame, consistent with its clouds."""
    H, W = layer.opacity.shape
    blue = observed[..., 1]
    red = observed[..., 3]
    nir = observed[..., 7]
    seen = np.clip(layer.opacity + 1.6 * layer.cirrus, 0, 1)
    p = 0.985 / (1 + np.exp(-(seen - 0.2) / 0.05))
    clear = 1 - np.clip(seen * 3, 0, 1)
    p = p + clear * np.clip((blue - 0.11) * 2.5, 0, 0.35)  # bright roofs and soils: false positives
    p = ndimage.uniform_filter(p.astype(np.float32), size=3, mode="nearest")
    p = np.clip(p + rng.normal(0, 0.01, p.shape), 0, 1).astype(np.float32)
    p = np.where(is_data, p, 0).astype(np.float32)
    clm = ndimage.uniform_filter(p, size=4, mode="nearest") > 0.4
    if clm.any():
        clm = ndimage.binary_dilation(clm, structure=np.ones((3, 3), bool), iterations=2)
    clm &= is_data

    # SCL at 20 m
    def coarse(a: np.ndarray) -> np.ndarray:
        h2, w2 = -(-H // 2), -(-W // 2)
        pad = np.pad(a, ((0, h2 * 2 - H), (0, w2 * 2 - W)), mode="edge")
        return pad.reshape(h2, 2, w2, 2).mean(axis=(1, 3))

    op, ci, sh = coarse(layer.opacity), coarse(layer.cirrus), coarse(layer.shadow)
    r2, n2 = coarse(red), coarse(nir)
    ndvi = (n2 - r2) / np.maximum(n2 + r2, 1e-6)
    scl = np.full(op.shape, SCL_NOT_VEG, np.uint8)
    scl[ndvi >= 0.4] = SCL_VEG
    scl[(n2 < 0.08) & (ndvi < 0.4)] = SCL_DARK
    scl[(ndvi < 0.0) & (n2 < 0.06)] = SCL_WATER
    scl[sh > 0.3] = SCL_SHADOW
    scl[(ci > 0.05) & (op < 0.3)] = SCL_CIRRUS
    scl[(op > 0.15) & (op <= 0.35)] = SCL_UNCLASSIFIED
    scl[(op > 0.35) & (op <= 0.65)] = SCL_CLOUD_MED
    scl[op > 0.65] = SCL_CLOUD_HIGH
    scl = upsample_nearest(scl, 2, H, W, axes=(0, 1))
    scl = np.where(is_data, scl, SCL_NO_DATA).astype(np.uint8)
    return p, clm, scl


def swath_edge(rng: np.random.Generator, size: tuple[int, int], share: float) -> np.ndarray:
    """IS_DATA of a frame cut by the edge of its orbit's swath (a line ~12° off north), ``share`` without data.
    The edge is drawn on the 60 m grid so that every band (10, 20 and 60 m) loses the same pixels."""
    H, W = size
    hc, wc = -(-H // 6), -(-W // 6)
    ang = np.radians(rng.uniform(9, 15))
    yy, xx = np.mgrid[0:hc, 0:wc].astype(np.float32)
    s = xx * np.cos(ang) + yy * np.sin(ang)
    if rng.random() < 0.5:
        s = -s
    thr = np.quantile(s, share)
    return upsample_nearest(s >= thr, 6, H, W, axes=(0, 1))
