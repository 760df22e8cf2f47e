"""Land classes of the simulator with the benchmark's label codes.

The codes and names follow the challenge metadata (``../shared/data/challenge/label-names.json`` for names,
``cultivated-mapping.json`` for which code is cultivated); the few this simulator uses are copied here so the
package runs without that folder. ``CULTIVATED_CODES`` / ``NOT_CULTIVATED_CODES`` are the full mapping (a test
checks them against the JSON when it is present).

Each class also names the phenology model (:mod:`.phenology`) and the surface make-up (:mod:`.spectra`) that
give it its look; several non-cultivated classes deliberately share a look with cultivated ones (clover and
crimson clover vs. crops, fallow vs. young crops, vineyards vs. pumpkins) because the real benchmark is hard in
exactly that way.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Codes the challenge counts as cultivated (``cultivated-mapping.json`` key "1").
CULTIVATED_CODES: frozenset[int] = frozenset({2, 3, 4, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 25, 28})
#: Codes the challenge counts as not cultivated (key "0").
NOT_CULTIVATED_CODES: frozenset[int] = frozenset(
    {1, 5, 12, 24, 26, 27, 29, 30, 1410, 1420, 1500, 1600, 1800, 2000, 3000, 4100, 4210, 4220, 5000, 6000, 7000}
)
#: Cultivated land not declared by a farmer (key "2"): ``NOT_DECLARED``, ignored in scoring.
NOT_DECLARED_CODE = 100
#: No polygon at all (roads, ditches, the thin gaps left by the inward buffer).
NO_POLYGON = 0


@dataclass(frozen=True)
class LandClass:
    code: int  #: ALL_POLYS label code (0 = no polygon)
    name: str  #: short name (from label-names.json)
    pheno: str  #: phenology model, see :mod:`.phenology`
    surface: str  #: surface make-up, see :mod:`.spectra`
    texture: float  #: within-parcel texture strength (0 = uniform)

    @property
    def cultivated(self) -> bool:
        return self.code in CULTIVATED_CODES


#: Every class the simulator draws, by a short key. Roads and margins carry code 0 (no polygon).
CLASSES: dict[str, LandClass] = {
    # cultivated crop groups
    "maize": LandClass(2, "maize, sorghum", "maize", "crop", 0.5),
    "winter_cereal": LandClass(3, "winter cereals", "winter_cereal", "crop", 0.45),
    "winter_barley": LandClass(4, "winter barley", "winter_barley", "crop", 0.45),
    "pumpkin": LandClass(6, "pumpkin for seed oil", "pumpkin", "crop", 0.6),
    "vegetables": LandClass(7, "vegetables and herbs", "vegetables", "crop", 0.8),
    "rapeseed": LandClass(8, "rapeseed", "rapeseed", "crop", 0.4),
    "summer_cereal": LandClass(9, "summer cereals", "summer_cereal", "crop", 0.45),
    "potato": LandClass(10, "potato", "potato", "crop", 0.55),
    "soya": LandClass(11, "soyabean", "soya", "crop", 0.5),
    "bee_plants": LandClass(13, "flax, bee plants", "bee_plants", "crop", 0.5),
    "buckwheat": LandClass(15, "buckwheat", "buckwheat", "crop", 0.5),
    "sunflower": LandClass(17, "sunflower", "sunflower", "crop", 0.5),
    "fodder_roots": LandClass(18, "fodder roots and kale", "beet", "crop", 0.5),
    "sugar_beet": LandClass(19, "sugar beet", "beet", "crop", 0.5),
    "catch_crop": LandClass(20, "millet, summer rapeseed, oilseed radish", "catch_crop", "crop", 0.5),
    "coppice": LandClass(21, "permanent plants, short rotation coppice", "coppice", "trees", 0.6),
    "nursery": LandClass(22, "nurseries, ornamental plants", "nursery", "rows", 0.9),
    "legumes": LandClass(23, "legumes for fodder", "legumes", "crop", 0.5),
    "hop": LandClass(25, "hop", "hop", "rows", 0.6),
    # cultivated declarations that look like grassland: clover or vetch mixtures for fodder, honey-plant meadows
    "fodder_mix": LandClass(23, "legume mixtures for fodder", "clover", "grass", 0.5),
    "bee_meadow": LandClass(13, "honey plants (perennial mixture)", "bee_meadow", "grass", 0.6),
    # not cultivated, agricultural declarations
    "meadow": LandClass(1, "grass, meadow, clover-grass", "meadow", "grass", 0.4),
    "pasture": LandClass(1, "grass, meadow, clover-grass", "pasture", "grass", 0.6),
    # not cultivated, but sown on arable land this year: a grass-clover ley looks like a spring crop
    "ley": LandClass(1, "grass - clover mixture (new ley)", "ley", "crop", 0.5),
    "clover": LandClass(5, "clover, alfalfa", "clover", "crop", 0.4),
    "fallow": LandClass(12, "land lying fallow", "fallow", "grass", 0.7),
    "crimson_clover": LandClass(24, "crimson clover", "crimson_clover", "crop", 0.45),
    "vineyard": LandClass(27, "grape vine", "vineyard", "rows", 0.8),
    "strawberry": LandClass(29, "strawberry", "strawberry", "rows", 0.7),
    "orchard": LandClass(30, "orchards, fruit trees and shrubs", "orchard", "orchard", 0.9),
    # not cultivated, RABA land use
    "overgrown": LandClass(1410, "farmland being overgrown", "shrub", "trees", 0.9),
    "trees": LandClass(1500, "trees and bushes", "trees", "trees", 0.8),
    "uncultivated": LandClass(1600, "uncultivated farmland", "fallow", "grass", 0.8),
    "forest": LandClass(2000, "forest", "forest", "forest", 0.9),
    "built": LandClass(3000, "built-up land", "built", "built", 1.0),
    "reeds": LandClass(4210, "reeds", "reeds", "grass", 0.5),
    "water": LandClass(7000, "water", "water", "water", 0.2),
    # cultivated but not declared: ignored in scoring
    "not_declared": LandClass(NOT_DECLARED_CODE, "cultivated not declared", "not_declared", "crop", 0.6),
    # no polygon
    "field_road": LandClass(NO_POLYGON, "field road (no polygon)", "road_verge", "gravel", 0.6),
    "main_road": LandClass(NO_POLYGON, "paved road (no polygon)", "road_verge", "asphalt", 0.3),
    "stream": LandClass(NO_POLYGON, "stream or ditch (no polygon)", "water", "water", 0.2),
    "hedge": LandClass(NO_POLYGON, "hedge or tree line (no polygon)", "trees", "trees", 0.8),
    "margin": LandClass(NO_POLYGON, "grass margin or ditch (no polygon)", "margin", "grass", 0.5),
    "yard": LandClass(NO_POLYGON, "garden or yard (no polygon)", "garden", "garden", 1.0),
}

CLASS_KEYS: tuple[str, ...] = tuple(CLASSES)
CLASS_INDEX: dict[str, int] = {k: i for i, k in enumerate(CLASS_KEYS)}


def class_codes() -> dict[str, int]:
    """Label code of every class key."""
    return {k: c.code for k, c in CLASSES.items()}


def is_cultivated_code(code: int) -> bool:
    return int(code) in CULTIVATED_CODES
