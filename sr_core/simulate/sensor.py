"""Sentinel-2 MSI as seen by the benchmark: revisit dates, PSF, 10/20/60 m sampling, misregistration, noise.

**Optics and sampling.** A 10 m detector integrates a 10 m × 10 m footprint (a 4 × 4 box of 2.5 m pixels,
MTF 2/π ≈ 0.64 at Nyquist) blurred by the optics. The box is applied exactly, per segment: for every 10 m cell
the share of each segment (and of the texture field) among its 16 sub-pixels forms a sparse matrix, so a date's
band image is one sparse product with the segments' spectra. The remaining optical blur is a separable
3-tap kernel ``[a, 1−2a, a]`` on the band's native grid, with ``a`` chosen so that box × kernel gives the
published MTF at Nyquist (B02 0.304 … B12 0.19). 20 m and 60 m bands are formed the same way on 8 × 8 and
24 × 24 boxes (their own grids), blurred there, then nearest-neighbour resampled to 10 m, as the benchmark
distributes them.

**Misregistration.** Each date is shifted by −2.5, 0 or +2.5 m along each axis (S2's multi-temporal
co-registration is a few metres): the sub-pixel phase of the 10 m grid differs between dates, as it does in
real series.

**Noise.** Gaussian radiometric noise with a floor and a signal-dependent part, drawn on each band's native grid;
per-date residuals of the atmospheric correction (band gains and offsets).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from scipy import sparse

from ..resample import upsample_nearest

#: MTF at Nyquist per band (challenge order); B01/B09 (60 m): no published figure at hand, 0.3 assumed.
MTF = np.array([0.30, 0.304, 0.276, 0.233, 0.343, 0.336, 0.338, 0.222, 0.325, 0.30, 0.21, 0.19], np.float32)
BOX_MTF = 2.0 / np.pi  #: MTF of a detector-sized box at Nyquist
IDX_10 = np.array([1, 2, 3, 7])  #: B02 B03 B04 B08
IDX_20 = np.array([4, 5, 6, 8, 10, 11])  #: B05 B06 B07 B8A B11 B12
IDX_60 = np.array([0, 9])  #: B01 B09
#: Residual kernel weight a per band: box MTF × (1 − 4a) = band MTF
KERNEL_A = ((1.0 - MTF / BOX_MTF) / 4.0).astype(np.float32)

SEASON_START = datetime(2019, 3, 1)
SEASON_END = datetime(2019, 9, 1, 23, 59)


@dataclass(frozen=True)
class Orbit:
    name: str
    first_day: int  #: first pass, days after 2019-03-01
    utc: tuple[int, int]  #: time of the pass over Slovenia (hour, minute)
    x_min: float  #: easting range (EPSG:32633) the swath covers
    x_max: float


#: Two adjacent relative orbits, each flown by S2A and S2B 5 days apart (a 10-day repeat per satellite); a
#: place in their overlap is seen every 2–3 days. Swath limits are approximate.
ORBITS = (
    Orbit("west", 1, (10, 7), -1e9, 595000.0),
    Orbit("east", 4, (9, 57), 425000.0, 1e9),
)


def candidate_dates(x_center: float) -> tuple[list[datetime], list[int]]:
    """All acquisitions over a place 2019-03-01 … 2019-09-01 and the orbit index of each (sorted by time)."""
    out: list[tuple[datetime, int]] = []
    for k, orb in enumerate(ORBITS):
        if not (orb.x_min <= x_center <= orb.x_max):
            continue
        day = orb.first_day
        while SEASON_START + timedelta(days=day) <= SEASON_END:
            out.append((SEASON_START + timedelta(days=day, hours=orb.utc[0], minutes=orb.utc[1]), k))
            day += 5
    out.sort()
    return [t for t, _ in out], [k for _, k in out]


# -- per-segment box fractions -------------------------------------------------------------------------------
def box_fractions(seg: np.ndarray, tex: np.ndarray, n_seg: int, f: int = 4) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Sparse (cells × segments) matrices: share of each segment in each f × f cell, and the mean texture value
    over those sub-pixels (so that ``B @ spectra + T @ texture_spectra`` is the cell's mean reflectance)."""
    L0, L1 = seg.shape
    n0, n1 = L0 // f, L1 // f
    ids = seg[: n0 * f, : n1 * f].reshape(n0, f, n1, f).transpose(0, 2, 1, 3).reshape(n0 * n1, f * f)
    tx = tex[: n0 * f, : n1 * f].reshape(n0, f, n1, f).transpose(0, 2, 1, 3).reshape(n0 * n1, f * f)
    uniform = ids.min(axis=1) == ids.max(axis=1)
    u_rows = np.flatnonzero(uniform)
    m_rows = np.flatnonzero(~uniform)
    rows = [u_rows]
    cols = [ids[u_rows, 0]]
    vals = [np.ones(u_rows.size, np.float32)]
    tvals = [tx[u_rows].mean(axis=1)]
    if m_rows.size:
        mid = ids[m_rows]
        mtx = tx[m_rows]
        order = np.argsort(mid, axis=1, kind="stable")
        ids_s = np.take_along_axis(mid, order, 1)
        tx_s = np.take_along_axis(mtx, order, 1)
        new = np.ones(ids_s.shape, bool)
        new[:, 1:] = ids_s[:, 1:] != ids_s[:, :-1]
        starts = np.flatnonzero(new.ravel())
        rows.append(m_rows[starts // (f * f)])
        cols.append(ids_s.ravel()[starts])
        vals.append(np.diff(np.append(starts, ids_s.size)).astype(np.float32) / (f * f))
        tvals.append(np.add.reduceat(tx_s.ravel(), starts) / (f * f))
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    shape = (n0 * n1, n_seg)
    B = sparse.csr_matrix((np.concatenate(vals).astype(np.float32), (r, c)), shape=shape)
    T = sparse.csr_matrix((np.concatenate(tvals).astype(np.float32), (r, c)), shape=shape)
    return B, T


def aggregation_matrix(h: int, w: int, k: int) -> tuple[sparse.csr_matrix, int, int]:
    """Sparse matrix averaging k × k blocks of an h × w grid (partial blocks at the far edges averaged over what
    exists); returns it and the coarse grid shape."""
    hc, wc = -(-h // k), -(-w // k)
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coarse = (ii // k) * wc + (jj // k)
    counts = np.bincount(coarse.ravel(), minlength=hc * wc).astype(np.float32)
    A = sparse.csr_matrix(
        (1.0 / counts[coarse.ravel()], (coarse.ravel(), np.arange(h * w))), shape=(hc * wc, h * w), dtype=np.float32
    )
    return A, hc, wc


def psf_residual(img: np.ndarray, a: np.ndarray, axes: tuple[int, int] = (1, 2)) -> np.ndarray:
    """Separable 3-tap blur ``[a, 1−2a, a]`` (a per band, last axis) along two spatial axes, edges held."""
    a = np.asarray(a, np.float32)
    out = np.asarray(img, np.float32)
    for ax in axes:
        n = out.shape[ax]
        if n < 2:
            continue

        def sl(s: slice, ax: int = ax, nd: int = out.ndim) -> tuple[slice, ...]:
            return tuple(s if i == ax else slice(None) for i in range(nd))

        y = out * (1 - 2 * a)
        y[sl(slice(1, None))] += a * out[sl(slice(None, -1))]
        y[sl(slice(None, -1))] += a * out[sl(slice(1, None))]
        y[sl(slice(0, 1))] += a * out[sl(slice(0, 1))]
        y[sl(slice(-1, None))] += a * out[sl(slice(-1, None))]
        out = y
    return out


# upsample_nearest (imported above from sr_core.resample): the project's one nearest-neighbour upsampler


def draw_shifts(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 2) misregistration per date in 2.5 m pixels: −1, 0, +1 along each axis (P = 0.2, 0.6, 0.2)."""
    return rng.choice(np.array([-1, 0, 1]), size=(n, 2), p=[0.2, 0.6, 0.2])


GROUPS = ((IDX_10, 1), (IDX_20, 2), (IDX_60, 6))  #: band indices and native pixel size (× 10 m) of each group


def render_native(
    seg: np.ndarray, texture: np.ndarray, refl: np.ndarray, tex: np.ndarray, shifts: np.ndarray, size: tuple[int, int],
) -> list[np.ndarray]:
    """Cloud-free top-of-canopy reflectance of each band group on its native grid: ``(T, ceil(H/k), ceil(W/k), n)``
    for the groups of :data:`GROUPS` (10, 20, 60 m), blurred by the residual PSF.

    ``seg`` / ``texture`` are the 2.5 m segment map and texture field (4H × 4W), ``refl`` / ``tex`` the segment
    spectra (S, T, 12), ``shifts`` (T, 2) the misregistration of each date in 2.5 m pixels.
    """
    H, W = size
    S, T, _ = refl.shape
    aggs = [(None, H, W)] + [aggregation_matrix(H, W, k) for _, k in GROUPS[1:]]
    out = [np.empty((T, hh, ww, idx.size), np.float32) for (idx, _), (_, hh, ww) in zip(GROUPS, aggs, strict=True)]
    pad_seg = np.pad(seg, 1, mode="edge")
    pad_tex = np.pad(texture, 1, mode="edge")
    for state in sorted({tuple(s) for s in shifts.tolist()}):
        dates = np.flatnonzero((shifts[:, 0] == state[0]) & (shifts[:, 1] == state[1]))
        sy, sx = state
        sseg = pad_seg[1 + sy: 1 + sy + 4 * H, 1 + sx: 1 + sx + 4 * W]
        stex = pad_tex[1 + sy: 1 + sy + 4 * H, 1 + sx: 1 + sx + 4 * W]
        B, Tm = box_fractions(sseg, stex, S)
        nd = dates.size
        for g, ((idx, _), (A, hh, ww)) in enumerate(zip(GROUPS, aggs, strict=True)):
            Bk = B if A is None else (A @ B)
            Tk = Tm if A is None else (A @ Tm)
            P = refl[:, dates][:, :, idx].reshape(S, nd * idx.size)
            D = tex[:, dates][:, :, idx].reshape(S, nd * idx.size)
            Z = np.asarray(Bk @ P + Tk @ D, np.float32).reshape(hh, ww, nd, idx.size).transpose(2, 0, 1, 3)
            out[g][dates] = psf_residual(Z, KERNEL_A[idx])
    return out


def assemble(groups: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Band groups on their native grids (as :func:`render_native` returns them, with or without the leading time
    axis) → one ``(..., H, W, 12)`` array at 10 m, the coarse bands nearest-neighbour resampled."""
    H, W = size
    lead = groups[0].shape[:-3]
    out = np.empty((*lead, H, W, 12), np.float32)
    ax = (len(lead), len(lead) + 1)
    for (idx, k), x in zip(GROUPS, groups, strict=True):
        out[..., idx] = x if k == 1 else upsample_nearest(x, k, H, W, axes=ax)
    return out


def render_surface(
    seg: np.ndarray, texture: np.ndarray, refl: np.ndarray, tex: np.ndarray, shifts: np.ndarray, size: tuple[int, int],
) -> np.ndarray:
    """Cloud-free top-of-canopy reflectance ``(T, H, W, 12)`` as the MSI samples it (see :func:`render_native`)."""
    return assemble(render_native(seg, texture, refl, tex, shifts, size), size)


def native_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 12) unit Gaussian noise drawn on each band's native grid and resampled to 10 m."""
    H, W = shape
    return assemble([rng.standard_normal((-(-H // k), -(-W // k), idx.size), dtype=np.float32) for idx, k in GROUPS], shape)


# -- simulator 2.0: what real series add (measured on the real fixtures; see docs/SIMULATOR.md) -------------------
@dataclass(frozen=True)
class Realism:
    """Per-patch draws of the effects that made simulator 1.x easier than real Sentinel-2 (measured with
    ``simulate --calibrate --real``):

    * ``blur_px``: extra Gaussian PSF σ in 10 m px, added in quadrature to the rendered ≈ 0.6 px (real field edges
      fit σ ≈ 0.75 px in B08 and 0.71 px in B04 once the label offset of the Flanders patch is fitted too);
    * ``coreg_px``: simulator 2.0–2.6's co-registration error of each date, 0.7–1 × this in a random direction (real:
      median 0.7 px, 90th percentile ≈ 1 px between consecutive clear dates); still drawn, replaced by
      :class:`Coregistration` since 2.7;
    * ``texture`` / ``texture_forest``: relative std of a static canopy texture at 10 m, applied after the PSF
      (within-field variability everywhere, tree crowns in forest: real forest high-pass NIR std 0.017–0.019 with
      lag-1 autocorrelation ≈ 0.81);
    * ``haze_share`` / ``haze_opacity``: share of dates with thin haze that no mask flags, and its peak opacity;
    * ``grey_share`` / ``grey_level``: share of dates whose clear pixels get grey cloud probabilities (real: 24 % of
      clear pixels have CLP > 0.1, 12 % > 0.2).
    """

    blur_px: float
    coreg_px: float
    texture: float
    texture_forest: float
    haze_share: float
    haze_opacity: float
    grey_share: float
    grey_level: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Realism:
        return cls(blur_px=float(rng.uniform(0.25, 0.6)), coreg_px=float(rng.uniform(0.6, 0.8)),
                   texture=float(rng.uniform(0.015, 0.035)), texture_forest=float(rng.uniform(0.06, 0.10)),
                   haze_share=float(rng.uniform(0.05, 0.3)), haze_opacity=float(rng.uniform(0.05, 0.25)),
                   grey_share=float(rng.uniform(0.12, 0.4)), grey_level=float(rng.uniform(0.22, 0.5)))


def _texture_field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Unit-std static texture with a lag-1 autocorrelation near the real canopy's ≈ 0.8."""
    from scipy import ndimage

    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 0.4)
    return f / max(float(f.std()), 1e-6)


@dataclass(frozen=True)
class Coregistration:
    """Simulator 2.7's co-registration error of each date: an offset between the **two satellites** plus a small
    scatter of each date, as real series show (``docs/SIMULATOR.md``, "Co-registration"; measured with
    :func:`sr_core.coreg.subpixel_offsets`, no labels): on the real Flanders 2018–19 series the dates of one 5-day
    phase sit ≈ 0.75 px north of the other phase's (0.17 px across), each date scattered ≈ 0.25–0.3 px about its
    satellite's mean; on the real Slovenian 2017 series the S2B dates sit ≈ 0.6 px off the S2A ones, mostly along
    the rows too, while its S2A-only 2015–16 dates scatter ≈ 0.3 px. Simulator 2.0–2.6 drew every date 0.4–0.8 px
    off in its own random direction: the same shift between consecutive dates, but no two groups (on them,
    lining dates up helped; on the real series it did not).

    * ``separation_px``: distance between the two satellites' mean positions (10 m px);
    * ``angle``: its direction, radians from the row axis (north–south), within ≈ ± 15° of it, either sign;
    * ``jitter_px``: each date's own offset, std per axis, on top of the 2.5 m sub-pixel draws of
      :func:`draw_shifts` (std 0.16 px per axis at 10 m)."""

    separation_px: float
    angle: float
    jitter_px: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Coregistration:
        return cls(separation_px=float(rng.uniform(0.55, 0.95)),
                   angle=float(rng.normal(0.0, np.radians(15.0)) + np.pi * rng.integers(2)),
                   jitter_px=float(rng.uniform(0.2, 0.3)))

    def offsets(self, satellite: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(T, 2) sub-pixel (dy, dx) of each date (10 m px): ± half the separation by satellite, plus the jitter."""
        half = 0.5 * self.separation_px * np.array([np.cos(self.angle), np.sin(self.angle)])
        side = np.where(np.asarray(satellite) == 0, -1.0, 1.0)[:, None]
        return (side * half + rng.normal(0.0, self.jitter_px, (len(side), 2))).astype(np.float32)


def apply_realism(groups: list[np.ndarray], rng: np.random.Generator, r: Realism, offsets: np.ndarray,
                  forest: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Blur, co-registration error and texture on the band groups of :func:`render_native` (native grids; new
    arrays). ``forest`` (H, W) at 10 m: share of tree canopy per pixel (stronger texture there). ``offsets``
    (T, 2): each date's co-registration error in 10 m px (:class:`Coregistration`). Returns the new groups and the
    (T, 2) offsets applied. The 60 m bands are left as rendered (their native pixels dwarf these effects)."""
    from scipy import ndimage

    T = groups[0].shape[0]
    # simulator 2.0–2.6 drew each date's offset here (a direction, then 0.7–1 × coreg_px); 2.7 no longer uses them but
    # still draws them, so that every later draw of the realism stream (texture, haze, grey cloud probabilities) is 2.6's
    rng.uniform(0, 2 * np.pi, T)
    rng.uniform(0.7, 1.0, T)
    offsets = np.asarray(offsets, np.float32)
    H, W = groups[0].shape[1:3]
    amp10 = np.full((H, W), r.texture, np.float32)
    if forest is not None:
        amp10 = amp10 + (r.texture_forest - r.texture) * np.asarray(forest, np.float32)
    out = []
    for (_idx, k), x in zip(GROUPS, groups, strict=True):
        _, hh, ww, _n = x.shape
        if k > 2:
            out.append(x)
            continue
        amp = amp10 if k == 1 else amp10[: hh * 2, : ww * 2].reshape(hh, 2, ww, 2).mean((1, 3)) if H % 2 == 0 and W % 2 == 0 \
            else amp10[::k, ::k][:hh, :ww]
        tex = 1.0 + _texture_field(rng, (hh, ww)) * amp
        sigma = r.blur_px / k
        y = np.empty_like(x)
        for t in range(T):
            img = ndimage.gaussian_filter(x[t], (sigma, sigma, 0), mode="nearest")
            dy, dx = offsets[t] / k  # the texture is on the ground: it moves with the date's misregistration
            # the blurred scene shifts bilinearly; the texture cubically (as L1C resampling does: a bilinear shift
            # would smooth it, raising its lag-1 autocorrelation), one 2-D field per date (cheap)
            y[t] = ndimage.shift(img, (dy, dx, 0), order=1, mode="nearest")
            y[t] *= ndimage.shift(tex, (dy, dx), order=3, mode="nearest")[..., None]
        out.append(y)
    return out, offsets


def haze_layer(rng: np.random.Generator, shape: tuple[int, int], opacity: float) -> np.ndarray:
    """(H, W) smooth field in [0, opacity]: one date's thin haze, or grey cloud probability."""
    from scipy import ndimage

    H, W = shape
    f = ndimage.gaussian_filter(rng.standard_normal((H, W)).astype(np.float32), max(H, W) / 8.0, mode="wrap")
    f = (f - f.min()) / max(float(np.ptp(f)), 1e-6)
    return (opacity * f).astype(np.float32)


def on_grid(layer: np.ndarray, k: int, hh: int, ww: int) -> np.ndarray:
    """A 10 m (H, W) layer sampled onto a band group's native grid (every k-th pixel), (hh, ww)."""
    return layer[::k, ::k][:hh, :ww]


#: Reflectance of thin haze per band (grey-white, slightly blue): what a semi-transparent layer mixes in.
HAZE_REFLECTANCE = np.array([0.30, 0.30, 0.29, 0.28, 0.29, 0.30, 0.31, 0.31, 0.31, 0.28, 0.24, 0.18], np.float32)
