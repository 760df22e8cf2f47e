"""Farmland layout at 2.5 m: roads, blocks, strips, forest, rivers, villages, and the benchmark labels.

Geometry (all in metres, patch centre at the origin, y to the north):

1. **Main roads**: a few long straight paved roads at random angles. They cut the patch into convex *domains*.
2. **Domains** take a kind from the region's mix (strip fields, large fields, grassland, vineyard hills) and a
   cadastral orientation; two families of nearly perpendicular parallel lines (field roads, hedges, ditches or
   bare boundaries) cut a domain into *blocks* of 100–700 m.
3. **Blocks** are cut across their length into furlongs, and each furlong into parcels along its width (narrow
   strips of 7–55 m in strip blocks, 12–500 m wide fields elsewhere), sometimes with grass margins between them.
   Furlong lengths (:data:`_PIECE_M`), strip widths and the share of strip blocks are calibrated against real
   Slovenian parcels (simulator 2.2; ``simulate --calibrate --real``, parcel geometry rows).
   Every parcel is an intersection of half-planes, hence convex, so the distance of a pixel centre to its parcel
   boundary is the smallest distance to the lines that bound it: the −2.5 m inward buffer of the benchmark is
   applied exactly, and touching parcels are split by 1–2 px gaps depending on where the line falls in the pixel.
4. **Overlays** drawn on top: forest from a thresholded fractal field (irregular edges), a meandering river with
   riparian trees, villages of house lots along the main roads (one built-up polygon per village, gardens and
   orchards inside it as their own polygons). Their labels are buffered on the raster (1 px from a neighbour that
   belongs to another polygon, which is what a −2.5 m buffer does to a boundary on pixel edges).

Each 2.5 m pixel gets a *segment* id (a unit with one spectral history: a parcel, a road, a forest stand, a
house lot) and, through it, a class from :mod:`.classes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .classes import CLASS_INDEX, CLASS_KEYS, CLASSES, CULTIVATED_CODES, NOT_DECLARED_CODE
from .noise import fractal_noise, upsample
from .regions import Region

PIXEL_M = 2.5  #: label / landscape pixel size
BUFFER_M = 2.5  #: inward buffer of the benchmark's polygons before rasterisation
LABEL_OFFSET_M = 1.6  #: σ of the offset between a declared polygon's edge and the sown edge
TWIN_SHARE = 0.3  #: share of parcel boundaries between two parcels of the same crop and management
MIN_FRAGMENT_PX = 6  #: label fragments smaller than this (after the buffer) are dropped
_BIG = 1.0e6  #: offset that keeps per-block coordinates apart in one sorted array


@dataclass(frozen=True)
class Landscape:
    """A simulated landscape on the 2.5 m grid (``L × L`` pixels)."""

    seg: np.ndarray  #: (L, L) int32 segment id, 0 … S−1
    seg_class: np.ndarray  #: (S,) int16 index into :data:`.classes.CLASS_KEYS`
    seg_variant: np.ndarray  #: (S,) float32 in [0, 1): sub-type draw (forest type, roof colour, …)
    poly: np.ndarray  #: (L, L) int32 polygon id after the inward buffer, 0 = no polygon / gap
    all_polys: np.ndarray  #: (L, L) uint16 label codes after the buffer
    cultivated: np.ndarray  #: (L, L) bool
    not_declared: np.ndarray  #: (L, L) bool
    texture: np.ndarray  #: (L, L) float32 zero-mean within-parcel texture field

    @property
    def n_segments(self) -> int:
        return int(self.seg_class.shape[0])

    def class_keys(self) -> list[str]:
        return [CLASS_KEYS[i] for i in self.seg_class]


# ------------------------------------------------------------------------------------------------------------
class _Segs:
    """Segment table under construction: every new segment gets an id, a class and a polygon flag."""

    def __init__(self) -> None:
        self.cls: list[np.ndarray] = []
        self.n = 0

    def add(self, classes: np.ndarray | list[int]) -> int:
        """Append segments with class indices ``classes``; returns the id of the first."""
        arr = np.asarray(classes, np.int16).ravel()
        first = self.n
        self.cls.append(arr)
        self.n += arr.size
        return first

    def table(self) -> np.ndarray:
        return np.concatenate(self.cls) if self.cls else np.zeros(0, np.int16)


def _draw(rng: np.random.Generator, mix: dict[str, float], n: int) -> np.ndarray:
    keys = list(mix)
    p = np.array([mix[k] for k in keys], float)
    idx = rng.choice(len(keys), size=n, p=p / p.sum())
    return np.array([CLASS_INDEX[keys[i]] for i in idx], np.int16) if n else np.zeros(0, np.int16)


def _family(rng: np.random.Generator, lo_m: float, hi_m: float, reach: float) -> np.ndarray:
    """Positions of parallel lines with spacings U(lo, hi) covering [−reach, reach]."""
    n = int(2 * reach / lo_m) + 3
    gaps = rng.uniform(lo_m, hi_m, n)
    pos = -reach - rng.uniform(0, hi_m) + np.concatenate([[0.0], np.cumsum(gaps)])
    return pos[: int(np.searchsorted(pos, reach)) + 2]


_DOMAIN_BLOCKS = {  # block kinds drawn inside each domain kind: (strips, fields, grass, hill)
    "strips": (0.55, 0.25, 0.2, 0.0),  # 2.1: 0.72 strips; real parcels are less often long strips (2.2)
    "fields": (0.2, 0.62, 0.18, 0.0),
    "grass": (0.14, 0.08, 0.78, 0.0),
    "hill": (0.1, 0.0, 0.3, 0.6),
}
_BLOCK_KINDS = ("strips", "fields", "grass", "hill")
_SPACING = {"strips": (160, 420), "fields": (250, 650), "grass": (200, 550), "hill": (90, 240)}
#: furlong length (m, uniform range) of each block kind: how long its parcels run. Simulator 2.2 shortened them
#: (2.1: 100–270, 300–900, 350–1000, 90–220) so that whole 5 km landscapes match the real Slovenian parcels
#: (KMRS 2023 / EuroCrops 2021 samples: median elongation 2.6–2.8, 22–32 % above 5; 2.1 gave 6.1 and 58 %)
_PIECE_M = {"strips": (60, 180), "fields": (100, 300), "grass": (100, 300), "hill": (70, 180)}


def generate_landscape(rng: np.random.Generator, size: int, region: Region,
                       label_offset_m: float = LABEL_OFFSET_M) -> Landscape:
    """Lay out a ``4·size × 4·size`` landscape at 2.5 m for a patch of ``size × size`` 10 m pixels.

    ``label_offset_m``: σ of the offset between the declared (labelled) and the sown parcel edges. With 0 the labels
    follow the sown edges the imagery shows; every other draw, and so the landscape, stays the same."""
    L = 4 * size
    E = L * PIXEL_M
    reach = 0.75 * E + 50.0
    segs = _Segs()
    c = (np.arange(L, dtype=np.float32) + 0.5) * PIXEL_M - E / 2
    X = c[None, :]
    Y = -c[:, None]

    # -- 1. main roads and domains ---------------------------------------------------------------------------
    n_main = int(rng.poisson(3.0 * E / 5000.0))
    n_main = min(max(n_main, 1 if E >= 3000 else 0), 5)
    th = rng.uniform(0, np.pi, n_main)
    pts = rng.uniform(-E / 2, E / 2, (n_main, 2))
    nx, ny = -np.sin(th), np.cos(th)
    off = nx * pts[:, 0] + ny * pts[:, 1]
    hw_main = rng.uniform(2.5, 3.5, n_main)
    bits = np.zeros((L, L), np.int32)
    d_main = np.full((L, L), np.inf, np.float32)
    on_main = np.full((L, L), -1, np.int32)
    for k in range(n_main):
        sd = (X * np.float32(nx[k]) + Y * np.float32(ny[k])) - np.float32(off[k])
        bits |= (sd > 0).astype(np.int32) << k
        a = np.abs(sd)
        on_main[a < hw_main[k]] = k
        np.minimum(d_main, a - np.float32(hw_main[k]), out=d_main)
    present = np.flatnonzero(np.bincount(bits.ravel(), minlength=1 << max(n_main, 0)))
    remap = np.zeros((1 << max(n_main, 0)), np.int32)
    remap[present] = np.arange(present.size, dtype=np.int32)
    dom = remap[bits]
    n_dom = present.size
    del bits

    dkeys = list(region.domains)
    dp = np.array([region.domains[k] for k in dkeys], float)
    dom_kind = [dkeys[i] for i in rng.choice(len(dkeys), n_dom, p=dp / dp.sum())]
    base = np.where(rng.random(n_dom) < 0.6, th[rng.integers(0, max(n_main, 1), n_dom)] if n_main else 0.0, 0.0)
    base = base + np.where(rng.random(n_dom) < 0.6, 0.0, rng.uniform(0, np.pi, n_dom)) + rng.normal(0, 0.05, n_dom)
    phi1 = base
    phi2 = base + np.pi / 2 + rng.uniform(-0.2, 0.2, n_dom)

    # -- 2. blocks from two families of lines per domain ------------------------------------------------------
    fam_pos: list[list[np.ndarray]] = [[], []]
    fam_hw: list[list[np.ndarray]] = [[], []]
    fam_cls: list[list[np.ndarray]] = [[], []]
    for d in range(n_dom):
        lo, hi = _SPACING[dom_kind[d]]
        for f in range(2):
            pos = _family(rng, lo, hi, reach)
            n = pos.size
            kind = rng.random(n)
            road = kind < (0.5 if dom_kind[d] != "grass" else 0.35)
            hedge = (~road) & (kind < 0.62)
            ditch = (~road) & (~hedge) & (kind < 0.72)
            hw = np.where(road, rng.uniform(1.5, 2.3, n), 0.0)
            hw = np.where(hedge, rng.uniform(2.0, 6.0, n), hw)
            hw = np.where(ditch, rng.uniform(0.8, 1.6, n), hw)
            # tree lines at least 10 m wide are RABA polygons (1500); narrower hedges carry no polygon
            tree_cls = np.where(hw >= 5.0, CLASS_INDEX["trees"], CLASS_INDEX["hedge"])
            cls = np.where(road, CLASS_INDEX["field_road"], np.where(hedge, tree_cls, CLASS_INDEX["margin"]))
            fam_pos[f].append(pos + d * _BIG)
            fam_hw[f].append(hw)
            fam_cls[f].append(cls)
    P = [np.concatenate(fam_pos[f]) for f in range(2)]
    HW = [np.concatenate(fam_hw[f]).astype(np.float32) for f in range(2)]
    LC = [np.concatenate(fam_cls[f]).astype(np.int16) for f in range(2)]

    cos1, sin1 = np.cos(phi1).astype(np.float32), np.sin(phi1).astype(np.float32)
    cos2, sin2 = np.cos(phi2).astype(np.float32), np.sin(phi2).astype(np.float32)
    u = [X * cos1[dom] + Y * sin1[dom], X * cos2[dom] + Y * sin2[dom]]
    k_idx = []
    d_fam = []
    line_seg = np.full((L, L), -1, np.int64)  # global line index (family 0 first, then family 1)
    line_off = [0, P[0].size]
    for f in range(2):
        q = u[f].astype(np.float64) + dom.astype(np.float64) * _BIG
        k = np.searchsorted(P[f], q)  # pixel lies between line k-1 and k
        lo = q - P[f][k - 1]
        hi = P[f][k] - q
        d_lo = lo.astype(np.float32) - HW[f][k - 1]
        d_hi = hi.astype(np.float32) - HW[f][k]
        on_lo = d_lo < 0
        on_hi = d_hi < 0
        line_seg[on_lo] = (k - 1)[on_lo] + line_off[f]
        line_seg[on_hi] = k[on_hi] + line_off[f]
        k_idx.append(k)
        d_fam.append(np.minimum(d_lo, d_hi))
        del q, lo, hi, d_lo, d_hi
    block_key = k_idx[0].astype(np.int64) * (P[1].size + 1) + k_idx[1]
    uniq_blocks, block = np.unique(block_key.ravel(), return_inverse=True)
    block = block.reshape(L, L).astype(np.int32)
    n_blocks = uniq_blocks.size
    del block_key
    bk1 = (uniq_blocks // (P[1].size + 1)).astype(np.int64)
    bk2 = (uniq_blocks % (P[1].size + 1)).astype(np.int64)
    bdom = (P[0][bk1] // _BIG).astype(np.int64)
    ext = np.stack([P[0][bk1] - P[0][bk1 - 1], P[1][bk2] - P[1][bk2 - 1]], axis=1)  # block extent along u1, u2
    lo_edge = np.stack([P[0][bk1 - 1] - bdom * _BIG, P[1][bk2 - 1] - bdom * _BIG], axis=1)

    bkind = np.array([
        _BLOCK_KINDS[rng.choice(4, p=np.array(_DOMAIN_BLOCKS[dom_kind[d]]))] for d in bdom
    ]) if n_blocks else np.array([], dtype=object)
    # strips run along the longer side of their block (mostly)
    long_axis = np.where(rng.random(n_blocks) < 0.8, np.argmax(ext, axis=1), np.argmin(ext, axis=1))

    # -- 3. furlongs (cuts across the length) and parcels (cuts across the width) ---------------------------
    F_cuts: list[np.ndarray] = []
    F_hw: list[np.ndarray] = []
    S_cuts: list[np.ndarray] = []
    S_hw: list[np.ndarray] = []
    S_block: list[np.ndarray] = []
    S_twin: list[np.ndarray] = []
    n_furl = 0
    for b in range(n_blocks):
        la = long_axis[b]
        wa = 1 - la
        length, width = ext[b, la], ext[b, wa]
        l0, w0 = lo_edge[b, la], lo_edge[b, wa]
        kind = bkind[b]
        piece = _PIECE_M[kind]
        n_pieces = max(1, round(float(length / rng.uniform(*piece))))
        inner = np.sort(l0 + length * (np.arange(1, n_pieces) / n_pieces + rng.normal(0, 0.06, n_pieces - 1)))
        cuts = np.concatenate([[l0 - 5000.0], inner, [l0 + length + 5000.0]])
        hw = np.zeros(cuts.size)
        hw[1:-1] = np.where(rng.random(n_pieces - 1) < 0.45, rng.uniform(1.5, 2.2, n_pieces - 1), 0.0)
        F_cuts.append(cuts + b * _BIG)
        F_hw.append(hw)
        for _ in range(n_pieces):
            if kind == "strips":
                med = region.strip_width_m * rng.uniform(0.7, 1.35)
                wd = rng.lognormal(np.log(med), 0.45, int(width / 5) + 4)
                wide = rng.random(wd.size) < 0.1
                wd = np.where(wide, rng.uniform(35, 110, wd.size), wd)
                wd = np.clip(wd, 7.0, 200)
            elif kind == "fields":
                wd = np.clip(rng.lognormal(np.log(rng.uniform(45, 110)), 0.6, int(width / 15) + 4), 12, 500)
            elif kind == "grass":
                wd = np.clip(rng.lognormal(np.log(rng.uniform(55, 150)), 0.7, int(width / 8) + 4), 10, 500)
            else:
                wd = np.clip(rng.lognormal(np.log(rng.uniform(26, 50)), 0.5, int(width / 6) + 4), 8, 150)
            pos = w0 + np.cumsum(wd) - rng.uniform(0, wd[0])
            pos = pos[pos < w0 + width - 0.6 * float(np.median(wd))]
            cuts_s = np.concatenate([[w0 - 5000.0], pos, [w0 + width + 5000.0]])
            hws = np.zeros(cuts_s.size)
            m = rng.random(pos.size) < (0.12 if kind != "grass" else 0.25)
            hws[1:-1] = np.where(m, rng.uniform(0.6, 1.8, pos.size), 0.0)
            # neighbours with the same crop and management: only a furrow or a thin grass line between them
            tw = np.zeros(cuts_s.size, bool)
            tw[1:-1] = (~m) & (rng.random(pos.size) < TWIN_SHARE)
            hws[tw] = rng.uniform(0.5, 1.0, int(tw.sum()))
            S_cuts.append(cuts_s + n_furl * _BIG)
            S_hw.append(hws)
            S_twin.append(tw)
            S_block.append(np.full(cuts_s.size, b))
            n_furl += 1
    Fc = np.concatenate(F_cuts) if F_cuts else np.zeros(2)
    Fh = np.concatenate(F_hw).astype(np.float32) if F_hw else np.zeros(2, np.float32)
    Sc = np.concatenate(S_cuts) if S_cuts else np.zeros(2)
    Sh = np.concatenate(S_hw).astype(np.float32) if S_hw else np.zeros(2, np.float32)
    Sb = np.concatenate(S_block) if S_block else np.zeros(2, np.int64)
    St = np.concatenate(S_twin) if S_twin else np.zeros(2, bool)

    la_px = long_axis[block]
    lcoord = np.where(la_px == 0, u[0], u[1])
    wcoord = np.where(la_px == 0, u[1], u[0])
    del la_px
    # the furlong index: count of cuts of earlier blocks + position inside this block's list
    furl_start = np.concatenate([[0], np.cumsum([c.size - 1 for c in F_cuts])]) if F_cuts else np.zeros(1, np.int64)
    # position of this block's first cut in Fc
    cut_start = np.concatenate([[0], np.cumsum([c.size for c in F_cuts])]) if F_cuts else np.zeros(1, np.int64)
    # Declared polygons are digitised on orthophotos: their edges miss the sown edges by a metre or two. The
    # surface follows the cuts; the labels follow the same cuts moved by LABEL_OFFSET_M (σ, clipped at ±2.5 m).
    Fc_lab = Fc + np.clip(rng.normal(0, label_offset_m, Fc.size), -2.5, 2.5)
    Sc_lab = Sc + np.clip(rng.normal(0, label_offset_m, Sc.size), -2.5, 2.5)

    def cells(F: np.ndarray, S: np.ndarray, lcoord: np.ndarray, wcoord: np.ndarray) -> tuple[np.ndarray, ...]:
        """Parcel index (right strip cut) and distances to the furlong and strip cuts of every pixel."""
        ql = lcoord.astype(np.float64) + block.astype(np.float64) * _BIG
        fk = np.searchsorted(F, ql)
        d_f = np.minimum((ql - F[fk - 1]).astype(np.float32) - Fh[fk - 1], (F[fk] - ql).astype(np.float32) - Fh[fk])
        furl = (furl_start[block] + (fk - cut_start[block]) - 1).astype(np.int64)
        del ql, fk
        qw = wcoord.astype(np.float64) + furl.astype(np.float64) * _BIG
        sk = np.searchsorted(S, qw)
        d_s = np.minimum((qw - S[sk - 1]).astype(np.float32) - Sh[sk - 1], (S[sk] - qw).astype(np.float32) - Sh[sk])
        return sk.astype(np.int64), d_f, d_s

    parcel_raw, d_fl, d_st = cells(Fc, Sc, lcoord, wcoord)
    lab_raw, d_fl_lab, d_st_lab = cells(Fc_lab, Sc_lab, lcoord, wcoord)
    del lcoord, wcoord
    on_margin = (d_fl < 0) | (d_st < 0)
    del d_fl, d_st

    # parcels: compact ids, draw classes by block kind
    uniq_parcels, parcel = np.unique(parcel_raw.ravel(), return_inverse=True)
    parcel = parcel.reshape(L, L).astype(np.int32)
    pos = np.clip(np.searchsorted(uniq_parcels, lab_raw), 0, max(uniq_parcels.size - 1, 0))
    lab_parcel = np.where(uniq_parcels[pos] == lab_raw, pos, parcel).astype(np.int32)
    del parcel_raw, lab_raw, pos
    n_par = uniq_parcels.size
    pblock = Sb[uniq_parcels]
    pkind = bkind[pblock] if n_par else np.array([], dtype=object)
    pcls = np.zeros(n_par, np.int16)
    for kind, mix in (("strips", region.arable), ("fields", region.arable), ("grass", region.grass), ("hill", region.hill)):
        sel = np.flatnonzero(pkind == kind)
        pcls[sel] = _draw(rng, dict(mix), sel.size)
    # twins: a parcel whose left cut is a twin boundary takes its left neighbour's class and its whole spectral
    # history (one surface segment, two polygons)
    surf = np.arange(n_par, dtype=np.int32)
    for k in range(1, n_par):
        if uniq_parcels[k] - uniq_parcels[k - 1] == 1 and St[uniq_parcels[k] - 1]:
            pcls[k] = pcls[k - 1]
            surf[k] = surf[k - 1]
    first_parcel = segs.add(pcls)
    seg = surf[parcel] + first_parcel
    lab_seg = lab_parcel + first_parcel
    del lab_parcel
    d_line = np.minimum(np.minimum(d_main, np.minimum(d_fam[0], d_fam[1])), np.minimum(d_fl_lab, d_st_lab))
    del d_fl_lab, d_st_lab

    # margins (grass strips / ditches between parcels: no polygon), one segment per block
    first_margin = segs.add(np.full(max(n_blocks, 1), CLASS_INDEX["margin"]))
    seg = np.where(on_margin, first_margin + block, seg)
    del on_margin
    # grid lines: field roads, hedges, ditches
    first_line = segs.add(np.concatenate(LC))
    on_line = line_seg >= 0
    seg[on_line] = (first_line + line_seg[on_line]).astype(np.int32)
    # hedge interiors carry a polygon (code 1500): their distance to the hedge edges
    del line_seg
    # main roads
    first_mainroad = segs.add(np.full(max(n_main, 1), CLASS_INDEX["main_road"]))
    on_mr = on_main >= 0
    seg[on_mr] = first_mainroad + on_main[on_mr]
    del on_main

    overlay = np.zeros((L, L), np.int32)  # raster-buffered objects: segment id + 1 of their polygon, 0 = line-based

    # -- 4a. forest ------------------------------------------------------------------------------------------
    coarse = max(8, L // 8)
    if E >= 1500:
        f_share = float(np.clip(region.forest * rng.uniform(0.6, 1.4), 0.0, 0.65))
    else:
        f_share = region.forest * rng.uniform(0, 1.2)
    ff = upsample(fractal_noise((coarse, coarse), 3.2, rng, cutoff=1.0 / coarse), (L, L))
    ff += 0.03 * upsample(fractal_noise((L // 4, L // 4), 2.0, rng), (L, L))
    thr = np.quantile(ff[:: max(1, L // 256), :: max(1, L // 256)], 1.0 - f_share) if f_share > 0 else np.inf
    forest = ff > thr
    forest = ndimage.binary_closing(forest, iterations=2)
    forest = ndimage.binary_opening(forest, iterations=3)
    forest &= ~on_mr
    # parcels left as slivers beside a wood are taken into it (parcel boundaries follow forest edges)
    n_raw = segs.n
    before = np.bincount(seg.ravel(), minlength=n_raw)
    after = np.bincount(seg[~forest], minlength=n_raw)
    sliver = (after > 0) & ((after < 0.45 * before) | (after < 250))
    sliver[first_parcel + n_par:] = False
    if sliver.any():
        forest |= sliver[seg] & ~on_mr
    lab, n_for = ndimage.label(forest)
    if n_for:
        sizes = np.bincount(lab.ravel())
        keep = sizes >= 600  # drop woods below ~0.4 ha (kept as field)
        keep[0] = False
        small_trees = (~keep) & (sizes >= 400)
        small_trees[0] = False
        lut = np.zeros(n_for + 1, np.int32)
        ids = np.flatnonzero(keep)
        first_forest = segs.add(np.full(ids.size, CLASS_INDEX["forest"]))
        lut[ids] = first_forest + np.arange(ids.size)
        ids2 = np.flatnonzero(small_trees)
        first_copse = segs.add(np.full(ids2.size, CLASS_INDEX["trees"]))
        lut[ids2] = first_copse + np.arange(ids2.size)
        fseg = lut[lab]
        m = fseg > 0
        seg[m] = fseg[m]
        overlay[m] = fseg[m] + 1
        del lab, fseg, m
    del ff, forest

    # -- 4b. river with riparian trees ------------------------------------------------------------------------
    if rng.random() < region.river and E >= 1000:
        ang = rng.uniform(0, np.pi)
        ca, sa = np.float32(np.cos(ang)), np.float32(np.sin(ang))
        s = X * ca + Y * sa
        t = -X * sa + Y * ca - np.float32(rng.uniform(-0.35, 0.35) * E)
        cen = np.zeros_like(s)
        for _ in range(3):
            wl = rng.uniform(300, 1500)
            amp, phase = np.float32(rng.uniform(0.05, 0.18) * wl), np.float32(rng.uniform(0, 6.3))
            cen += amp * np.sin(s * np.float32(2 * np.pi / wl) + phase)
        dist = np.abs(t - cen)
        w_water = rng.choice([rng.uniform(3, 6), rng.uniform(15, 45)], p=[0.55, 0.45])
        w_rip = w_water / 2 + rng.uniform(8, 35)
        water = dist < w_water / 2
        rip = (dist < w_rip) & ~water & ~on_mr
        water &= ~on_mr
        water_cls = CLASS_INDEX["water"] if w_water >= 10 else CLASS_INDEX["stream"]
        first_w = segs.add([water_cls, CLASS_INDEX["trees"], CLASS_INDEX["trees"]])
        side = (t - cen) > 0
        seg[water] = first_w
        overlay[water] = first_w + 1
        for k2, sm in ((1, rip & side), (2, rip & ~side)):
            seg[sm] = first_w + k2
            overlay[sm] = first_w + k2 + 1
        del s, t, cen, dist, water, rip, side

    # -- 4c. villages along main roads ------------------------------------------------------------------------
    n_vil = int(rng.poisson(region.villages * (E / 5000.0) ** 2))
    if E < 1500:
        n_vil = int(rng.random() < 0.25 * (E / 1000.0) ** 2 * region.villages / 2.5)
    for _ in range(n_vil):
        if n_main and rng.random() < 0.85:
            k = rng.integers(0, n_main)
            along = rng.uniform(-E / 2, E / 2)
            cx = pts[k, 0] + along * np.cos(th[k])
            cy = pts[k, 1] + along * np.sin(th[k])
            va = th[k]
        else:
            cx, cy = rng.uniform(-E / 2, E / 2, 2)
            va = rng.uniform(0, np.pi)
        if E < 1500:
            cx, cy = rng.uniform(-E / 3, E / 3, 2)
        ca, sa = np.float32(np.cos(va)), np.float32(np.sin(va))
        ls, lt = rng.uniform(150, 550), rng.uniform(60, 170)
        r = int(np.ceil((ls + 60) / PIXEL_M))
        ci, cj = round(float((E / 2 - cy) / PIXEL_M)), round(float((cx + E / 2) / PIXEL_M))
        i0, i1, j0, j1 = max(ci - r, 0), min(ci + r, L), max(cj - r, 0), min(cj + r, L)
        if i0 >= i1 or j0 >= j1:
            continue
        xs = X[:, j0:j1] - np.float32(cx)
        ys = Y[i0:i1, :] - np.float32(cy)
        s = xs * ca + ys * sa
        t = -xs * sa + ys * ca
        edge = 1.0 + 0.25 * upsample(fractal_noise((16, 16), 2.5, rng), s.shape)
        inside = ((s / ls) ** 2 + (t / lt) ** 2) < edge
        inside &= ~on_mr[i0:i1, j0:j1]
        if not inside.any():
            continue
        lot_l, lot_w = rng.uniform(20, 34), rng.uniform(22, 40)
        li = np.floor(s / lot_l + 1000).astype(np.int64)
        lj = np.floor(t / lot_w + 1000).astype(np.int64)
        key = li * 4096 + lj
        uk, lot = np.unique(key[inside], return_inverse=True)
        n_lots = uk.size
        r_ = rng.random(n_lots)
        lot_cls = np.where(r_ < 0.05, CLASS_INDEX["vegetables"], np.where(r_ < 0.09, CLASS_INDEX["orchard"],
                           np.where(r_ < 0.2, CLASS_INDEX["yard"], CLASS_INDEX["built"])))
        first_lot = segs.add(lot_cls)
        village_poly = segs.add([CLASS_INDEX["built"]])  # built lots share one built-up polygon (an id of its own)
        lot_seg = first_lot + lot
        sub_seg = seg[i0:i1, j0:j1]
        sub_ov = overlay[i0:i1, j0:j1]
        sub_seg[inside] = lot_seg
        own = lot_cls[lot] != CLASS_INDEX["built"]
        sub_ov[inside] = np.where(own, lot_seg + 1, village_poly + 1)

    # -- 5. compact segment ids, labels ------------------------------------------------------------------------
    table = segs.table()
    counts = np.bincount(seg.ravel(), minlength=table.size)
    present = counts > 0
    remap = np.cumsum(present).astype(np.int32) - 1
    seg_c = remap[seg]
    seg_class = table[present]
    n_seg = seg_class.size

    codes = np.array([CLASSES[k].code for k in CLASS_KEYS], np.int32)
    seg_code = codes[table]  # by raw id
    is_line_based = overlay == 0
    # polygon id per pixel before the buffer: raw segment id (+1), or the village polygon
    is_parcel = (seg >= first_parcel) & (seg < first_parcel + n_par)
    poly_raw = np.where(is_line_based, np.where(is_parcel, lab_seg, seg) + 1, overlay).astype(np.int32)
    del lab_seg, is_parcel
    # hedge pixels: distance to the hedge's own edges
    # raster buffer: all 3×3 neighbours in the same polygon
    same = ndimage.minimum_filter(poly_raw, 3, mode="nearest") == ndimage.maximum_filter(poly_raw, 3, mode="nearest")
    ok = same & ((~is_line_based) | (d_line >= BUFFER_M))
    code_px = seg_code[poly_raw - 1]
    hedge_px = on_line & is_line_based & (code_px > 0)
    if hedge_px.any():
        # a hedge is a polygon too: keep its interior (at least 2.5 m from both its edges and from crossings)
        pos_dist = np.full((L, L), -np.inf, np.float32)
        for f in range(2):
            q = u[f].astype(np.float64) + dom.astype(np.float64) * _BIG
            k = k_idx[f]
            dl = (q - P[f][k - 1]).astype(np.float32)
            dh = (P[f][k] - q).astype(np.float32)
            pos_dist = np.maximum(pos_dist, np.maximum(HW[f][k - 1] - dl, HW[f][k] - dh))
        ok = np.where(hedge_px, same & (pos_dist >= BUFFER_M) & (d_main >= BUFFER_M), ok)
    ok &= code_px > 0
    # fragments of a few pixels (thin necks cut by the buffer) vanish, as they do in the benchmark's rasters
    frag, n_frag = ndimage.label(ok, structure=np.ones((3, 3), bool))
    if n_frag:
        small = np.bincount(frag.ravel()) < MIN_FRAGMENT_PX
        small[0] = False
        ok &= ~small[frag]
    del frag
    poly = np.where(ok, poly_raw, 0).astype(np.int32)
    all_polys = np.where(ok, code_px, 0).astype(np.uint16)
    cult_lut = np.zeros(max(int(codes.max()), NOT_DECLARED_CODE) + 1, bool)
    cult_lut[list(c for c in CULTIVATED_CODES if c < cult_lut.size)] = True
    cultivated = cult_lut[all_polys]
    not_declared = all_polys == NOT_DECLARED_CODE

    texture = upsample(fractal_noise((max(L // 4, 8),) * 2, 2.2, rng), (L, L))
    texture += 0.5 * rng.standard_normal((L, L), dtype=np.float32)
    texture *= np.float32(1 / np.sqrt(1.25))

    return Landscape(
        seg=seg_c.astype(np.int32), seg_class=seg_class.astype(np.int16),
        seg_variant=rng.random(n_seg).astype(np.float32), poly=poly, all_polys=all_polys,
        cultivated=cultivated, not_declared=not_declared, texture=texture.astype(np.float32),
    )
