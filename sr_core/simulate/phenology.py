"""Seasonal course of every segment: green cover, dry matter (straw, stubble, hay, dead leaves) and flowers.

Days are counted from 2019-03-01 (day 0) to 2019-09-01 (day 184). Each model draws its own dates per parcel
(sowing, green-up, senescence, harvest, mowing), so two parcels of one crop never look identical. The values
are fractions of a 2.5 m pixel's surface seen from above; the rest is soil (or the class's fixed make-up, see
:mod:`.spectra`).

Timings follow Slovenian practice: winter cereals tillering in March, full cover in May, yellow in mid-June,
harvested in July (barley two weeks earlier); rapeseed flowering yellow in April; maize sown late April to
mid-May, closing its canopy late June and green until September; oil pumpkins sown in May, leaves dying in
August with the fruit on bare soil; meadows cut two to four times from mid-May; clover and alfalfa cut
four or five times; crimson clover green in spring, ploughed in May, then maize.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SEASON_DAYS = 184  #: 2019-03-01 … 2019-09-01


@dataclass
class Cover:
    """(n, D) fractions for n segments at D days."""

    green: np.ndarray
    dry: np.ndarray
    flower: np.ndarray

    @classmethod
    def zeros(cls, n: int, d: int) -> Cover:
        z = np.zeros((n, d), np.float32)
        return cls(z.copy(), z.copy(), z.copy())


def _u(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return rng.uniform(lo, hi, (n, 1))


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def _crop(
    d: np.ndarray, rng: np.random.Generator, n: int, *, g0: tuple[float, float] = (0.0, 0.0),
    mid: tuple[float, float] | np.ndarray, width: tuple[float, float] = (7, 11), peak: tuple[float, float] = (0.85, 0.95),
    sen: tuple[float, float] | np.ndarray, sen_len: tuple[float, float] = (15, 30),
    harvest_after: tuple[float, float] = (3, 12), residue: tuple[float, float] = (0.35, 0.7),
    sow: np.ndarray | None = None, after: str = "mixed",
) -> Cover:
    """One crop cycle: logistic green-up, senescence to dry matter, harvest to stubble, then ploughing, weeds
    or a catch crop. ``mid`` / ``sen`` may be arrays (n, 1) of days."""
    mid_ = mid if isinstance(mid, np.ndarray) else _u(rng, *mid, n)
    sen_ = sen if isinstance(sen, np.ndarray) else _u(rng, *sen, n)
    w = _u(rng, *width, n)
    pk = _u(rng, *peak, n)
    gs = _u(rng, *g0, n)
    sl = _u(rng, *sen_len, n)
    grow = gs + (pk - gs) * _sig((d - mid_) / w)
    if sow is not None:
        grow = np.where(d < sow, 0.0, grow)
    g_at_sen = gs + (pk - gs) * _sig((sen_ - mid_) / w)
    frac = np.clip((d - sen_) / sl, 0, 1)
    green = np.where(d < sen_, grow, g_at_sen * (1 - 0.95 * frac))
    dry = np.where(d < sen_, 0.04 * grow, g_at_sen * 0.9 * frac + 0.04)
    hv = sen_ + sl + _u(rng, *harvest_after, n)
    res = _u(rng, *residue, n)
    post = d - hv
    fate = rng.random((n, 1))
    plough = _u(rng, 3, 30, n)
    regrow = np.where(fate < 0.45, 0.0, np.where(fate < 0.8, _u(rng, 0.15, 0.35, n), _u(rng, 0.45, 0.8, n)))
    if after == "bare":
        regrow[:] = 0.0
    start = _u(rng, 10, 30, n)
    g_post = regrow * np.clip((post - start) / 30.0, 0, 1)
    r_post = np.where(post < plough, res, 0.06)
    r_post = np.where((fate >= 0.45) & (fate < 0.8), res * np.exp(-np.clip(post, 0, None) / 60.0), r_post)
    green = np.where(post >= 0, g_post, green)
    dry = np.where(post >= 0, r_post, dry)
    return Cover(green.astype(np.float32), np.clip(dry, 0, 1).astype(np.float32), np.zeros_like(green, np.float32))


def _winter_cereal(d, rng, n, shift=0.0):
    # senescence over 25-40 days (simulator 2.9; 15-25 before): yellowing to harvest maturity takes weeks, and the
    # European points' July composites are still greener (NDVI 0.31) and darker in the SWIR than a faster ripening
    return _crop(d, rng, n, g0=(0.02, 0.18), mid=(36 - shift, 56 - shift), width=(8, 12), peak=(0.82, 0.96),
                 sen=(103 - shift, 117 - shift), sen_len=(25, 40), harvest_after=(3, 10), residue=(0.4, 0.75))


#: Days before sowing when a maize field's winter cover starts to be killed, and when it is gone (simulator 2.6).
COVER_KILL_START, COVER_KILL_END = 20.0, 5.0


def _maize(d, rng, n):
    sow = _u(rng, 45, 78, n)
    c = _crop(d, rng, n, mid=sow + _u(rng, 45, 62, n), width=(7, 10), peak=(0.85, 0.97),
              sen=_u(rng, 158, 185, n), sen_len=(25, 40), harvest_after=(5, 25), residue=(0.3, 0.5), sow=sow,
              after="bare")
    cover = rng.random((n, 1)) < 0.5  # a winter cover crop or weeds before maize
    # 2.6: the cover is killed in the last three weeks before sowing (fading from sow − 20 to sow − 5 days; 2.0–2.5:
    # sow − 30 to sow − 10), so that it stays into April: 10 of 19 European maize points are green in March, 8 of
    # 17 in April (realism rows green_share_maize_03 / _04); 2.5 kept March's share but lost most of it by April.
    cc = np.where(cover & (d < sow - COVER_KILL_END), _u(rng, 0.35, 0.75, n)
                  * np.clip(1 - (d - sow + COVER_KILL_START) / (COVER_KILL_START - COVER_KILL_END), 0, 1), 0.0)
    c.green = np.maximum(c.green, cc.astype(np.float32))
    return c


def _pumpkin(d, rng, n):
    sow = _u(rng, 55, 78, n)
    c = _crop(d, rng, n, mid=sow + _u(rng, 36, 50, n), width=(7, 10), peak=(0.6, 0.85), sen=_u(rng, 135, 158, n),
              sen_len=(15, 25), harvest_after=(10, 40), residue=(0.2, 0.35), sow=sow, after="bare")
    return c


def _summer_cereal(d, rng, n):
    sow = _u(rng, 12, 42, n)
    return _crop(d, rng, n, mid=sow + _u(rng, 40, 52, n), peak=(0.8, 0.93), sen=_u(rng, 105, 122, n),
                 sen_len=(15, 25), residue=(0.4, 0.7), sow=sow)


def _potato(d, rng, n):
    sow = _u(rng, 25, 52, n)
    return _crop(d, rng, n, mid=sow + _u(rng, 36, 48, n), peak=(0.78, 0.93), sen=_u(rng, 112, 142, n),
                 sen_len=(6, 14), harvest_after=(10, 40), residue=(0.05, 0.15), sow=sow, after="bare")


def _soya(d, rng, n):
    sow = _u(rng, 55, 78, n)
    return _crop(d, rng, n, mid=sow + _u(rng, 45, 58, n), peak=(0.85, 0.95), sen=_u(rng, 165, 190, n),
                 sen_len=(15, 25), residue=(0.2, 0.4), sow=sow)


def _sunflower(d, rng, n):
    sow = _u(rng, 35, 58, n)
    return _crop(d, rng, n, mid=sow + _u(rng, 45, 55, n), peak=(0.8, 0.9), sen=_u(rng, 138, 158, n),
                 sen_len=(20, 35), harvest_after=(10, 30), residue=(0.35, 0.55), sow=sow)


def _beet(d, rng, n):
    sow = _u(rng, 28, 52, n)
    return _crop(d, rng, n, mid=sow + _u(rng, 50, 62, n), peak=(0.85, 0.95), sen=_u(rng, 200, 230, n), sow=sow)


def _rapeseed(d, rng, n):
    c = _crop(d, rng, n, g0=(0.35, 0.7), mid=(10, 30), peak=(0.85, 0.95), sen=(82, 96), sen_len=(18, 26),
              residue=(0.45, 0.7))
    bloom = _u(rng, 35, 48, n)
    fl = _u(rng, 0.3, 0.55, n) * np.exp(-0.5 * ((d - bloom) / 8.0) ** 2)
    c.flower = fl.astype(np.float32)
    c.green = (c.green * (1 - 0.6 * fl)).astype(np.float32)
    return c


def _second_crop(first: Cover, d, rng, n, lo=125, hi=150, peak=(0.6, 0.85)) -> Cover:
    sow = _u(rng, lo, hi, n)
    g2 = _u(rng, *peak, n) * _sig((d - sow - _u(rng, 22, 32, n)) / 6.0)
    g2 = np.where(d < sow, 0, g2)
    first.green = np.where(d >= sow, g2, first.green).astype(np.float32)
    first.dry = np.where(d >= sow, 0.08, first.dry).astype(np.float32)
    return first


def _buckwheat(d, rng, n):
    first = _winter_cereal(d, rng, n, shift=12)
    c = _second_crop(first, d, rng, n, 122, 140)
    bloom = _u(rng, 165, 180, n)
    c.flower = (0.25 * np.exp(-0.5 * ((d - bloom) / 8.0) ** 2)).astype(np.float32)
    return c


def _bee_plants(d, rng, n):
    sow = _u(rng, 25, 110, n)
    c = _crop(d, rng, n, mid=sow + _u(rng, 28, 40, n), peak=(0.7, 0.92), sen=sow + _u(rng, 75, 100, n),
              sen_len=(15, 25), residue=(0.3, 0.5), sow=sow)
    c.flower = (0.2 * np.exp(-0.5 * ((d - sow - 60) / 10.0) ** 2)).astype(np.float32)
    return c


def _catch_crop(d, rng, n):
    sow = _u(rng, 55, 135, n)
    return _crop(d, rng, n, mid=sow + _u(rng, 25, 35, n), peak=(0.75, 0.92), sen=sow + _u(rng, 70, 95, n),
                 sen_len=(15, 25), residue=(0.3, 0.5), sow=sow)


def _legumes(d, rng, n):
    sow = _u(rng, 10, 40, n)
    c = _crop(d, rng, n, mid=sow + _u(rng, 35, 45, n), peak=(0.8, 0.92), sen=_u(rng, 95, 112, n),
              sen_len=(12, 20), residue=(0.3, 0.5), sow=sow)
    return c


def _vegetables(d, rng, n):
    c = Cover.zeros(n, d.shape[1])
    start = _u(rng, 5, 45, n)
    for _ in range(3):
        length = _u(rng, 50, 85, n)
        pk = _u(rng, 0.55, 0.9, n)
        g = pk * _sig((d - start - 0.45 * length) / 6.0) * (d < start + length)
        c.green = np.maximum(c.green, g.astype(np.float32))
        start = start + length + _u(rng, 5, 25, n)
    c.dry += 0.05
    return c


def _hop(d, rng, n):
    c = _crop(d, rng, n, mid=_u(rng, 88, 105, n), width=(8, 12), peak=(0.75, 0.9), sen=_u(rng, 166, 178, n),
              sen_len=(2, 4), harvest_after=(0, 3), residue=(0.15, 0.3), after="bare")
    grass = _u(rng, 0.0, 0.3, n)
    c.green = np.maximum(c.green, (grass * _sig((d - 40) / 10)).astype(np.float32))
    return c


def _meadow(d, rng, n, intensive: float = 0.6, cuts_interval=(34, 50)):
    g0 = _u(rng, 0.22, 0.45, n)
    gmax = _u(rng, 0.86, 0.97, n)
    base = g0 + (gmax - g0) * _sig((d - _u(rng, 30, 50, n)) / 9.0)
    base = base - _u(rng, 0.02, 0.2, n) * _sig((d - 135) / 12.0)  # summer drought
    g = base.copy()
    dry = 0.35 * (1 - base) * _sig((30 - d) / 8.0) + 0.06  # last year's dead grass before green-up
    inten = rng.random((n, 1)) < intensive
    t = np.where(inten, _u(rng, 55, 80, n), _u(rng, 80, 110, n))
    interval = np.where(inten, _u(rng, *cuts_interval, n), _u(rng, 50, 75, n))
    for _ in range(5):
        low = _u(rng, 0.35, 0.62, n)
        tau = _u(rng, 5, 10, n)
        since = d - t
        after = since >= 0
        rec = base - (base - low) * np.exp(-np.clip(since, 0, None) / tau)
        g = np.where(after, np.minimum(rec, base), g)
        hay = after & (since < _u(rng, 2, 6, n))
        dry = np.where(after, np.where(hay, 0.35, 0.08 + 0.1 * np.exp(-np.clip(since, 0, None) / 10)), dry)
        t = t + interval * _u(rng, 0.85, 1.15, n)
    return Cover(g.astype(np.float32), dry.astype(np.float32), np.zeros_like(g, np.float32))


def _ley(d, rng, n):
    """A grass-clover ley sown this spring on arable land: bare, then a crop-like green-up, then cut like a meadow."""
    sow = _u(rng, 20, 60, n)
    c = _crop(d, rng, n, mid=sow + _u(rng, 30, 42, n), peak=(0.8, 0.93), sen=_u(rng, 300, 330, n), sow=sow)
    cut = sow + _u(rng, 60, 80, n)
    for _ in range(2):
        since = d - cut
        c.green = np.where(since >= 0, np.minimum(c.green, 0.3 + 0.6 * (1 - np.exp(-np.clip(since, 0, None) / 9))),
                           c.green).astype(np.float32)
        cut = cut + _u(rng, 35, 50, n)
    return c


def _bee_meadow(d, rng, n):
    c = _meadow(d, rng, n, intensive=0.2)
    c.flower = (0.2 * np.exp(-0.5 * ((d - _u(rng, 70, 110, n)) / 12.0) ** 2)).astype(np.float32)
    return c


def _pasture(d, rng, n):
    g = _u(rng, 0.4, 0.6, n) + _u(rng, 0.1, 0.25, n) * _sig((d - 40) / 10.0) - 0.1 * _sig((d - 140) / 10)
    return Cover(g.astype(np.float32), np.full_like(g, 0.12, np.float32), np.zeros_like(g, np.float32))


def _clover(d, rng, n):
    return _meadow(d, rng, n, intensive=0.9, cuts_interval=(28, 38))


def _fallow(d, rng, n):
    g = _u(rng, 0.15, 0.4, n) + _u(rng, 0.3, 0.5, n) * _sig((d - _u(rng, 40, 70, n)) / 12.0)
    dryness = _u(rng, 0.0, 0.3, n) * _sig((d - _u(rng, 120, 150, n)) / 10.0)
    g = g - dryness
    mown = rng.random((n, 1)) < 0.5
    cut = _u(rng, 90, 150, n)
    g = np.where(mown & (d > cut), np.minimum(g, 0.2 + (d - cut) / 80.0), g)
    return Cover(np.clip(g, 0, 1).astype(np.float32), (0.1 + dryness).astype(np.float32), np.zeros_like(g, np.float32))


def _crimson_clover(d, rng, n):
    c = _crop(d, rng, n, g0=(0.35, 0.6), mid=(15, 35), peak=(0.85, 0.95), sen=(62, 85), sen_len=(2, 4),
              harvest_after=(0, 3), residue=(0.1, 0.25), after="bare")
    bloom = _u(rng, 45, 62, n)
    c.flower = (0.15 * np.exp(-0.5 * ((d - bloom) / 6.0) ** 2)).astype(np.float32)
    follow = _maize(d, rng, n)
    late = d > 95
    c.green = np.where(late, follow.green, c.green).astype(np.float32)
    c.dry = np.where(late, follow.dry, c.dry).astype(np.float32)
    return c


def _leafy(d, rng, n, g0=(0.2, 0.35), gmax=(0.8, 0.93), mid=(38, 55)):
    g = _u(rng, *g0, n) + (_u(rng, *gmax, n) - _u(rng, *g0, n)) * _sig((d - _u(rng, *mid, n)) / 7.0)
    g = np.clip(g, 0, 1)
    dry = 0.5 * (1 - g) * (d < 60)
    return Cover(g.astype(np.float32), dry.astype(np.float32), np.zeros_like(g, np.float32))


def _forest(d, rng, n):
    return _leafy(d, rng, n, g0=(0.15, 0.3), gmax=(0.9, 0.97), mid=(45, 62))


CONIFER_SHARE = 0.3  #: forest and tree segments with ``variant`` below this are evergreen conifers


def _conifer(d, n):
    g = np.broadcast_to(0.85 + 0.05 * _sig((d - 50) / 10), (n, d.shape[1]))
    return g.astype(np.float32), np.full((n, d.shape[1]), 0.05, np.float32)


def _orchard(d, rng, n):
    canopy = _u(rng, 0.3, 0.6, n) * _sig((d - _u(rng, 35, 50, n)) / 6.0)
    grass = _meadow(d, rng, n, intensive=0.5).green
    g = canopy + (1 - canopy) * grass * 0.9
    fl = (0.12 * np.exp(-0.5 * ((d - _u(rng, 35, 48, n)) / 5.0) ** 2)).astype(np.float32)
    return Cover(g.astype(np.float32), np.full_like(g, 0.08, np.float32), fl)


def _vineyard(d, rng, n):
    canopy = _u(rng, 0.3, 0.5, n) * _sig((d - _u(rng, 65, 85, n)) / 9.0)
    inter = _u(rng, 0.2, 0.6, n) * (0.7 + 0.3 * _sig((d - 40) / 10.0))
    g = canopy + (1 - canopy) * inter
    return Cover(g.astype(np.float32), np.full_like(g, 0.1, np.float32), np.zeros_like(g, np.float32))


def _strawberry(d, rng, n):
    g = _u(rng, 0.25, 0.45, n) * (0.6 + 0.4 * _sig((d - 50) / 10))
    return Cover(g.astype(np.float32), np.full_like(g, 0.08, np.float32), np.zeros_like(g, np.float32))


def _nursery(d, rng, n):
    g = _u(rng, 0.2, 0.45, n) + _u(rng, 0.15, 0.35, n) * _sig((d - 45) / 8)
    return Cover(g.astype(np.float32), np.full_like(g, 0.06, np.float32), np.zeros_like(g, np.float32))


def _coppice(d, rng, n):
    return _leafy(d, rng, n, g0=(0.25, 0.4), gmax=(0.8, 0.92), mid=(38, 52))


def _shrub(d, rng, n):
    return _leafy(d, rng, n, g0=(0.3, 0.45), gmax=(0.75, 0.9), mid=(35, 50))


def _reeds(d, rng, n):
    g = _u(rng, 0.05, 0.15, n) + _u(rng, 0.6, 0.75, n) * _sig((d - _u(rng, 55, 75, n)) / 9.0)
    dry = np.clip(0.6 - g, 0.05, 1)
    return Cover(g.astype(np.float32), dry.astype(np.float32), np.zeros_like(g, np.float32))


def _static(level: tuple[float, float]) -> Callable:
    def model(d, rng, n):
        g = _u(rng, *level, n) * (0.75 + 0.25 * _sig((d - 45) / 10.0))
        return Cover(np.broadcast_to(g, (n, d.shape[1])).astype(np.float32), np.full((n, d.shape[1]), 0.05, np.float32),
                     np.zeros((n, d.shape[1]), np.float32))
    return model


_ARABLE_MODELS = ("maize", "winter_cereal", "winter_barley", "pumpkin", "potato", "soya", "summer_cereal", "vegetables")


def _not_declared(d, rng, n):
    """Cultivated land nobody declared: a random crop, sometimes left to weeds."""
    c = Cover.zeros(n, d.shape[1])
    pick = rng.integers(0, len(_ARABLE_MODELS) + 2, n)
    for i, name in enumerate((*_ARABLE_MODELS, "fallow", "meadow")):
        sel = np.flatnonzero(pick == i)
        if sel.size:
            sub = MODELS[name](d, rng, sel.size)
            c.green[sel], c.dry[sel], c.flower[sel] = sub.green, sub.dry, sub.flower
    return c


MODELS: dict[str, Callable[[np.ndarray, np.random.Generator, int], Cover]] = {
    "winter_cereal": _winter_cereal,
    "winter_barley": lambda d, rng, n: _winter_cereal(d, rng, n, shift=12),
    "maize": _maize, "pumpkin": _pumpkin, "summer_cereal": _summer_cereal, "potato": _potato, "soya": _soya,
    "sunflower": _sunflower, "beet": _beet, "rapeseed": _rapeseed, "buckwheat": _buckwheat,
    "bee_plants": _bee_plants, "catch_crop": _catch_crop, "legumes": _legumes, "vegetables": _vegetables,
    "hop": _hop, "coppice": _coppice, "nursery": _nursery,
    "meadow": _meadow, "pasture": _pasture, "ley": _ley, "bee_meadow": _bee_meadow, "clover": _clover,
    "fallow": _fallow, "crimson_clover": _crimson_clover,
    "vineyard": _vineyard, "strawberry": _strawberry, "orchard": _orchard, "shrub": _shrub, "trees": _forest,
    "forest": _forest, "reeds": _reeds, "not_declared": _not_declared,
    "built": _static((0.05, 0.3)), "water": _static((0.0, 0.05)), "road_verge": _static((0.05, 0.3)),
    "margin": _static((0.55, 0.8)), "garden": _static((0.35, 0.7)),
}  # fmt: skip


#: Phenology models of permanent grass: green through a mild winter (Atlantic lowlands), brown after a cold one.
GRASS_MODELS = frozenset({"meadow", "pasture", "clover", "bee_meadow", "margin", "orchard"})
#: Autumn-sown crops: their winter cover depends on the winter as well.
WINTER_MODELS = frozenset({"winter_cereal", "winter_barley", "rapeseed", "buckwheat"})


@dataclass(frozen=True)
class Climate:
    """A patch's year and region, as phenology sees them (simulator 2.0). Real series differ between years and
    regions: a 2–3 week earlier or later calendar, a mild winter that leaves grass and winter cereals green in
    March (Flanders: grassland NDVI 0.80–0.85, winter wheat 0.67–0.72 in early March) or a cold one that browns
    them (Slovenian basins after frost: 0.4–0.5), and a dry or wet summer (meadow regrowth after each cut)."""

    shift_days: float = 0.0  #: phenology runs this many days later (negative: earlier)
    winter_green: float = 0.0  #: 0 = cold winter (brown grass in March) … 1 = mild (grass green cover ≈ 0.85)
    summer_dry: float = 0.0  #: 0 = wet summer … 1 = dry (grass browns in July–August)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Climate:
        return cls(shift_days=float(rng.uniform(-18, 18)), winter_green=float(rng.beta(1.0, 1.5)),
                   summer_dry=float(rng.beta(1.5, 2.5)))


#: ``Climate.winter_green`` at and above which grass and autumn-sown crops keep all their winter green cover: a winter
#: as mild as Flanders' 2018–19 one (the realism report's March rows compare those patches with it).
WINTER_MILD = 0.65
#: ``Climate.winter_green`` at and below which grass keeps none of its winter green cover (simulator 2.3).
GRASS_COLD = 0.2
#: ``Climate.winter_green`` at and below which autumn-sown crops keep none of their winter green cover (simulator 2.5:
#: 0.35, was 0.25; with 0.25 the middling winters left winter cereals greener in March than the European points, the
#: realism row out on two seed sets: 0.43 and 0.55 against 0.33, target ≤ 0.43).
WINTER_COLD = 0.35


def _mildness(winter_green: float, cold: float, mild: float) -> float:
    """0 at or below ``cold``, 1 at or above ``mild``, linear between: how much of its winter green cover a
    class keeps. Grass and winter cereals stay green only after a winter milder than the median (simulator 2.3:
    calibrated so that mild-winter patches match Flanders in March and all patches the European points)."""
    return float(np.clip((winter_green - cold) / (mild - cold), 0.0, 1.0))


def _apply_climate(name: str, c: Cover, d: np.ndarray, rng: np.random.Generator, climate: Climate) -> Cover:
    """Winter greenness and summer drought on top of a model's cover (see :class:`Climate`)."""
    n = c.green.shape[0]
    early = 1.0 / (1.0 + np.exp((d - 40.0) / 8.0))  # 1 before the spring flush (≈ early April), 0 after
    if name in GRASS_MODELS and climate.winter_green > 0:
        floor = _mildness(climate.winter_green, GRASS_COLD, WINTER_MILD) * _u(rng, 0.85, 0.98, n) * early
        c.green = np.maximum(c.green, floor).astype(np.float32)
        c.dry = np.minimum(c.dry, 0.3 * np.clip(1 - c.green, 0, 1) + 0.03).astype(np.float32)
    if name in WINTER_MODELS and climate.winter_green > 0:
        floor = _mildness(climate.winter_green, WINTER_COLD, WINTER_MILD) * _u(rng, 0.6, 0.9, n) * early
        c.green = np.where(d < 60, np.maximum(c.green, floor), c.green).astype(np.float32)
    if name in GRASS_MODELS and climate.summer_dry > 0:
        brown = climate.summer_dry * _u(rng, 0.35, 0.7, n) * _sig((d - 130.0) / 10.0)
        c.green = (c.green * (1 - brown)).astype(np.float32)
        c.dry = np.clip(c.dry + c.green * brown, 0, 1).astype(np.float32)
    return c


def season_cover(models: list[str], days: np.ndarray, rng: np.random.Generator, variant: np.ndarray | None = None,
                 climate: Climate | None = None) -> Cover:
    """Cover fractions (n, D) for segments whose phenology models are ``models`` at ``days`` (since 1 March).

    ``variant`` (n,) in [0, 1) is the segment's sub-type draw: forest and tree segments below
    :data:`CONIFER_SHARE` are evergreen (the spectra use the conifer canopy for them too). ``climate`` shifts the
    calendar and sets winter greenness and summer drought (:class:`Climate`; None = the simulator 1.x calendar)."""
    n = len(models)
    d = np.asarray(days, np.float64)[None, :]
    out = Cover.zeros(n, d.shape[1])
    names = np.asarray(models)
    dm = d - (climate.shift_days if climate is not None else 0.0)  # a later year: every stage comes later
    for name in sorted(set(models)):
        sel = np.flatnonzero(names == name)
        c = MODELS[name](dm, rng, sel.size)
        if climate is not None:
            c = _apply_climate(name, c, dm, rng, climate)
        out.green[sel] = np.clip(c.green, 0, 1)
        out.dry[sel] = np.clip(c.dry, 0, 1)
        out.flower[sel] = np.clip(c.flower, 0, 1)
        if name in ("forest", "trees") and variant is not None:
            ev = sel[np.asarray(variant)[sel] < CONIFER_SHARE]
            if ev.size:
                out.green[ev], out.dry[ev] = _conifer(d, ev.size)
    tot = out.green + out.dry + out.flower
    scale = np.where(tot > 1, 1 / np.maximum(tot, 1e-6), 1).astype(np.float32)
    out.green *= scale
    out.dry *= scale
    out.flower *= scale
    return out
