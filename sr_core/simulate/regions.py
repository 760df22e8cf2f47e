"""Farmland regions of Slovenia the simulator places its patches in, and what each looks like.

Every region lists real 5 km × 5 km cells of the benchmark's UTM 33N grid (lower-left corners, multiples of
5000 m, EPSG:32633) that lie wholly inside Slovenia (checked against ``svn-border.geojson`` by a test) and avoid
city centres. The mixes are rough shares by parcel count, from the character of each area: strip fields and
oil pumpkins in Pomurje, large former co-operative fields on Dravsko and Ptujsko polje, hop gardens in the
Savinja valley, wet meadows on Ljubljansko barje, vineyards in Vipava and Slovenske gorice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError

_ARABLE_BASE: dict[str, float] = {
    "maize": 30, "winter_cereal": 15, "winter_barley": 8, "pumpkin": 4, "vegetables": 4, "rapeseed": 2,
    "summer_cereal": 3, "potato": 4, "soya": 3, "bee_plants": 2.25, "buckwheat": 1, "sunflower": 1,
    "fodder_roots": 1, "sugar_beet": 0.5, "catch_crop": 1, "legumes": 3.5, "nursery": 0.3,
    "clover": 8, "meadow": 20, "fallow": 4, "crimson_clover": 5, "strawberry": 0.4, "not_declared": 4,
    "ley": 10, "fodder_mix": 0.5, "bee_meadow": 0.25,
}  # fmt: skip
# Simulator 2.6: codes 13 and 23 are mostly sown annuals (phacelia, mustard, peas, field beans: ``bee_plants``,
# ``legumes``, crop-like); only a few declarations of them look like a meadow (``bee_meadow``, ``fodder_mix``).
# 2.5 drew 6.8 % of the cultivated parcels meadow-like; none of the 83 cultivated parcels of the real Slovenian
# samples is (realism row ``meadowlike_cultivated_share``, exact 95 % upper bound 4.3 %). Codes' totals unchanged.
_GRASS_BASE: dict[str, float] = {
    "meadow": 60, "pasture": 12, "clover": 6, "fallow": 4, "uncultivated": 3, "maize": 6, "winter_cereal": 3,
    "fodder_mix": 0.5, "bee_meadow": 0.2, "legumes": 2.5, "bee_plants": 0.8, "ley": 4,
    "orchard": 3, "overgrown": 2, "not_declared": 2,
}  # fmt: skip
_HILL_BASE: dict[str, float] = {
    "vineyard": 35, "orchard": 20, "meadow": 30, "pasture": 5, "overgrown": 5, "maize": 3, "fallow": 2,
}  # fmt: skip


def _mix(base: dict[str, float], **changes: float) -> MappingProxyType:
    out = dict(base)
    out.update(changes)
    return MappingProxyType({k: v for k, v in out.items() if v > 0})


@dataclass(frozen=True)
class Region:
    key: str
    title: str
    cells: tuple[tuple[int, int], ...]  #: lower-left corners of 5 km cells (EPSG:32633)
    #: area shares of the kinds of land between main roads
    domains: MappingProxyType = field(default_factory=lambda: MappingProxyType({"strips": 0.5, "fields": 0.2, "grass": 0.3}))
    arable: MappingProxyType = field(default_factory=lambda: _mix(_ARABLE_BASE))
    grass: MappingProxyType = field(default_factory=lambda: _mix(_GRASS_BASE))
    hill: MappingProxyType = field(default_factory=lambda: _mix(_HILL_BASE))
    forest: float = 0.2  #: share of area under forest
    villages: float = 2.5  #: villages per 25 km²
    river: float = 0.4  #: probability of a river crossing the patch
    strip_width_m: float = 23.0  #: median strip width (m; simulator 2.2: 1.15 × 2.1's, see landscape._PIECE_M)
    notes: str = ""

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "cells": len(self.cells), "forest": self.forest, "notes": self.notes}


REGIONS: dict[str, Region] = {r.key: r for r in (
    Region(
        "pomurje", "Pomurje (Prekmurje plain)",
        ((585000, 5165000), (585000, 5170000), (590000, 5165000), (590000, 5170000), (575000, 5160000),
         (580000, 5160000), (580000, 5165000), (590000, 5155000), (590000, 5160000), (595000, 5155000),
         (595000, 5160000), (595000, 5165000), (580000, 5155000), (585000, 5155000), (590000, 5175000)),
        domains=MappingProxyType({"strips": 0.39, "fields": 0.33, "grass": 0.28}),
        arable=_mix(_ARABLE_BASE, pumpkin=9, maize=32, soya=5, winter_cereal=16),
        forest=0.33, villages=3.0, river=0.35, strip_width_m=21.0,
        notes="strip fields, oil pumpkins, maize; riparian forest along the Mura and Ledava",
    ),
    Region(
        "podravje", "Podravje (Dravsko and Ptujsko polje)",
        ((560000, 5135000), (560000, 5140000), (565000, 5135000), (565000, 5140000), (555000, 5140000),
         (555000, 5145000), (560000, 5145000), (555000, 5130000), (555000, 5135000), (560000, 5130000),
         (570000, 5135000), (570000, 5140000), (575000, 5135000), (575000, 5140000), (550000, 5145000)),
        domains=MappingProxyType({"strips": 0.36, "fields": 0.57, "grass": 0.07}),
        arable=_mix(_ARABLE_BASE, rapeseed=4, potato=5, vegetables=5, sugar_beet=1, meadow=8, ley=5, clover=4),
        forest=0.08, villages=3.0, river=0.3, strip_width_m=25.0,
        notes="large former co-operative fields beside strip fields; maize, cereals, rapeseed",
    ),
    Region(
        "ljubljana_basin", "Ljubljana basin (Ljubljansko polje, Ljubljansko barje)",
        ((455000, 5105000), (455000, 5110000), (460000, 5110000), (465000, 5110000), (470000, 5105000),
         (470000, 5110000), (455000, 5090000), (455000, 5095000), (460000, 5090000), (450000, 5085000),
         (450000, 5090000), (455000, 5085000)),
        domains=MappingProxyType({"strips": 0.32, "fields": 0.17, "grass": 0.52}),
        arable=_mix(_ARABLE_BASE, vegetables=7, potato=6, meadow=26),
        grass=_mix(_GRASS_BASE, reeds=2, meadow=70),
        forest=0.38, villages=3.5, river=0.5, strip_width_m=18.0,
        notes="narrow strips near villages, wet meadows with ditches on the marsh",
    ),
    Region(
        "savinja", "Savinja valley (Spodnja Savinjska dolina)",
        ((505000, 5115000), (505000, 5120000), (510000, 5115000), (510000, 5120000), (505000, 5125000),
         (510000, 5125000), (515000, 5115000), (500000, 5120000), (500000, 5125000)),
        domains=MappingProxyType({"strips": 0.32, "fields": 0.37, "grass": 0.32}),
        arable=_mix(_ARABLE_BASE, hop=14, maize=28),
        forest=0.38, villages=3.0, river=0.5, strip_width_m=25.0,
        notes="hop gardens on trellises, maize, meadows; the Savinja with its riparian forest",
    ),
    Region(
        "krsko", "Krško basin (Krško polje)",
        ((535000, 5080000), (535000, 5085000), (540000, 5080000), (540000, 5085000), (545000, 5080000),
         (545000, 5085000), (530000, 5080000), (530000, 5085000)),
        domains=MappingProxyType({"strips": 0.32, "fields": 0.37, "grass": 0.22, "hill": 0.10}),
        forest=0.38, villages=2.5, river=0.4, strip_width_m=23.0,
        notes="maize and cereals on the Sava terraces, vineyards on the surrounding hills",
    ),
    Region(
        "gorenjska", "Gorenjska (Kranjsko and Sorško polje)",
        ((445000, 5110000), (445000, 5115000), (450000, 5110000), (450000, 5115000), (440000, 5115000),
         (440000, 5120000), (445000, 5120000)),
        domains=MappingProxyType({"strips": 0.39, "fields": 0.18, "grass": 0.43}),
        arable=_mix(_ARABLE_BASE, potato=8, maize=26),
        forest=0.43, villages=3.0, river=0.3, strip_width_m=20.0,
        notes="long narrow strips, potatoes, cereals, grass",
    ),
    Region(
        "vipava", "Vipava valley",
        ((415000, 5075000), (415000, 5080000), (420000, 5075000), (420000, 5080000), (405000, 5075000),
         (405000, 5080000), (410000, 5075000), (410000, 5080000), (420000, 5070000), (425000, 5075000)),
        domains=MappingProxyType({"strips": 0.21, "fields": 0.15, "grass": 0.29, "hill": 0.35}),
        arable=_mix(_ARABLE_BASE, vegetables=6, maize=20),
        forest=0.43, villages=2.5, river=0.3, strip_width_m=23.0,
        notes="vineyards and orchards, meadows, small arable fields",
    ),
    Region(
        "bela_krajina", "Bela krajina",
        ((510000, 5040000), (510000, 5045000), (515000, 5040000), (515000, 5045000), (515000, 5050000),
         (505000, 5050000), (505000, 5055000), (510000, 5050000), (510000, 5055000)),
        domains=MappingProxyType({"strips": 0.24, "fields": 0.15, "grass": 0.45, "hill": 0.15}),
        forest=0.48, villages=2.5, river=0.3, strip_width_m=23.0,
        notes="meadows with birch stands, small fields, vineyards",
    ),
    Region(
        "slovenske_gorice", "Slovenske gorice",
        ((560000, 5150000), (560000, 5155000), (565000, 5150000), (565000, 5155000), (570000, 5150000),
         (570000, 5155000), (575000, 5150000), (575000, 5155000), (555000, 5160000)),
        domains=MappingProxyType({"strips": 0.21, "fields": 0.20, "grass": 0.34, "hill": 0.25}),
        forest=0.48, villages=2.0, river=0.2, strip_width_m=23.0,
        notes="hilly: vineyards, orchards, meadows, forest, fields in the valleys",
    ),
)}


def get_region(key: str) -> Region:
    try:
        return REGIONS[key]
    except KeyError:
        raise ConfigError(f"unknown region {key!r}; choose one of {', '.join(REGIONS)}") from None
