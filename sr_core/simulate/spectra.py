"""Surface reflectance of every segment at every date: linear mixtures of endmember spectra.

Endmembers are typical L2A surface reflectances in the challenge band order
(B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B11 B12): green canopies (crop, grass, broadleaf, conifer), dry
matter (straw, hay, litter), soils (brown loam, dark humic, light calcareous, red), water, roofs (red tiles,
grey), asphalt, gravel, yellow flowers. A segment's spectrum at a date is the cover-weighted mixture
(:mod:`.phenology`) with per-segment variation (soil brightness, canopy chlorophyll, leaf structure) and
per-date soil wetness. The within-parcel texture enters linearly through a second spectrum per segment and
date (the change of the mixture when the green cover and soil brightness vary inside the parcel), so the
sensor model can blur and aggregate both with sparse matrices instead of touching every 2.5 m pixel per band.
"""

from __future__ import annotations

import numpy as np

from .classes import CLASS_KEYS, CLASSES
from .phenology import CONIFER_SHARE, Cover

_E = {  # B01   B02    B03    B04    B05    B06    B07    B08    B8A    B09    B11    B12
    "crop": (0.022, 0.026, 0.062, 0.022, 0.100, 0.320, 0.415, 0.455, 0.470, 0.405, 0.195, 0.080),
    "grass": (0.022, 0.027, 0.064, 0.024, 0.100, 0.315, 0.410, 0.450, 0.465, 0.400, 0.205, 0.085),
    "broadleaf": (0.017, 0.021, 0.045, 0.018, 0.068, 0.230, 0.300, 0.330, 0.340, 0.300, 0.145, 0.058),
    "conifer": (0.015, 0.018, 0.036, 0.017, 0.052, 0.150, 0.190, 0.210, 0.220, 0.195, 0.100, 0.045),
    "dry": (0.085, 0.095, 0.130, 0.170, 0.200, 0.235, 0.255, 0.275, 0.290, 0.255, 0.280, 0.190),
    "soil": (0.065, 0.075, 0.105, 0.145, 0.175, 0.205, 0.225, 0.240, 0.260, 0.225, 0.320, 0.280),
    "soil_dark": (0.035, 0.040, 0.055, 0.070, 0.085, 0.100, 0.110, 0.120, 0.130, 0.115, 0.160, 0.130),
    "soil_light": (0.100, 0.115, 0.150, 0.190, 0.220, 0.245, 0.260, 0.275, 0.290, 0.255, 0.360, 0.320),
    "soil_red": (0.060, 0.065, 0.085, 0.150, 0.190, 0.215, 0.230, 0.245, 0.260, 0.225, 0.330, 0.285),
    "water": (0.050, 0.048, 0.060, 0.035, 0.030, 0.020, 0.015, 0.012, 0.010, 0.008, 0.005, 0.003),
    "roof_red": (0.060, 0.062, 0.080, 0.190, 0.220, 0.245, 0.260, 0.270, 0.285, 0.250, 0.360, 0.290),
    "roof_grey": (0.120, 0.125, 0.140, 0.150, 0.160, 0.165, 0.170, 0.175, 0.180, 0.160, 0.190, 0.170),
    "roof_bright": (0.250, 0.270, 0.290, 0.300, 0.310, 0.315, 0.320, 0.325, 0.330, 0.300, 0.330, 0.290),
    "asphalt": (0.060, 0.062, 0.072, 0.082, 0.088, 0.093, 0.097, 0.100, 0.104, 0.092, 0.110, 0.100),
    "gravel": (0.120, 0.135, 0.165, 0.195, 0.215, 0.230, 0.240, 0.250, 0.260, 0.230, 0.300, 0.260),
    "flower": (0.040, 0.050, 0.160, 0.130, 0.200, 0.350, 0.420, 0.450, 0.460, 0.400, 0.240, 0.120),
}  # fmt: skip
#: Simulator 2.8 lowered the dry matter's SWIR (B11 0.38 → 0.32, B12 0.30 → 0.22: a senescent canopy or residue at
#: field scale, not a bright sheet of straw) against the WorldCereal points' SWIR by class and month; 2.9 again
#: (B11 0.28, B12 0.19: a ripening canopy holds water in its stems and ears for weeks after its leaves yellow).
ENDMEMBERS: dict[str, np.ndarray] = {k: np.asarray(v, np.float32) for k, v in _E.items()}
_SOILS = ("soil", "soil_dark", "soil_light", "soil_red")
TEXTURE_GAIN = 1.3  #: overall strength of within-parcel variation (weeds, moisture, vigour, tramlines)
#: wet soil darkens more in the SWIR (water absorption) than in the visible
_WET = np.array([0.35, 0.35, 0.35, 0.35, 0.37, 0.38, 0.39, 0.40, 0.40, 0.42, 0.55, 0.6], np.float32)


def segment_spectra(
    seg_class: np.ndarray, seg_variant: np.ndarray, cover: Cover, wetness: np.ndarray, rng: np.random.Generator,
    soil_mix: tuple[float, float, float, float] = (0.7, 0.1, 0.15, 0.05),
) -> tuple[np.ndarray, np.ndarray]:
    """Mean reflectance ``(S, D, 12)`` and texture spectrum ``(S, D, 12)`` of every segment at D dates.

    ``wetness`` (D,) in [0, 1] darkens bare soil after rain; ``soil_mix`` gives the shares of brown, dark,
    light and red soils.
    """
    S = cover.green.shape[0]
    E = ENDMEMBERS
    surface = np.array([CLASSES[CLASS_KEYS[c]].surface for c in seg_class])
    tex_strength = np.array([CLASSES[CLASS_KEYS[c]].texture for c in seg_class], np.float32)

    # per-segment endmember variants (S, 12)
    soil_pick = rng.choice(4, S, p=np.asarray(soil_mix) / np.sum(soil_mix))
    soil = np.stack([E[k] for k in _SOILS])[soil_pick] * rng.uniform(0.78, 1.22, (S, 1)).astype(np.float32)
    # under a canopy the "soil" is litter in shade
    soil = np.where(np.isin(surface, ("forest", "trees"))[:, None], 0.6 * E["soil_dark"], soil)
    veg = np.where((surface == "grass")[:, None] | (surface == "orchard")[:, None], E["grass"], E["crop"])
    forest_like = (surface == "forest") | (surface == "trees")
    veg = np.where(forest_like[:, None], np.where((seg_variant < CONIFER_SHARE)[:, None], E["conifer"], E["broadleaf"]), veg)
    # leaf chlorophyll and structure: scale visible and NIR plateaus independently
    vis = rng.uniform(0.8, 1.25, (S, 1)).astype(np.float32)
    nir = rng.uniform(0.85, 1.15, (S, 1)).astype(np.float32)
    band_vis = np.array([1, 1, 1, 1, 0.5, 0, 0, 0, 0, 0, 0.3, 0.3], np.float32)
    veg = veg * (band_vis * vis + (1 - band_vis) * nir)
    dry = E["dry"] * rng.uniform(0.8, 1.2, (S, 1)).astype(np.float32)

    g = cover.green[..., None]
    r = cover.dry[..., None]
    fl = cover.flower[..., None]
    wet = (1 - _WET * np.asarray(wetness, np.float32)[None, :, None])
    # fixed make-up of non-field surfaces: fractions of (built material, its spectrum)
    fixed = np.zeros((S, 12), np.float32)
    f_fixed = np.zeros(S, np.float32)
    roofs = np.stack([E["roof_red"], E["roof_grey"], E["roof_bright"]])
    roof_pick = np.digitize(seg_variant, [0.5, 0.85])
    built = surface == "built"
    f_fixed[built] = rng.uniform(0.45, 0.8, built.sum())
    mat = 0.65 * roofs[roof_pick] + 0.35 * E["asphalt"]
    fixed[built] = mat[built]
    garden = surface == "garden"
    f_fixed[garden] = rng.uniform(0.1, 0.35, garden.sum())
    fixed[garden] = mat[garden]
    for name, lo, hi in (("asphalt", 0.7, 0.9), ("gravel", 0.55, 0.85), ("water", 0.9, 1.0)):
        m = surface == name
        f_fixed[m] = rng.uniform(lo, hi, m.sum())
        fixed[m] = E[name] * rng.uniform(0.85, 1.2, (m.sum(), 1)).astype(np.float32)
    rows = surface == "rows"
    f_fixed[rows] = 0.0
    ff = f_fixed[:, None, None]
    green_part = g * (1 - ff)
    dry_part = r * (1 - ff)
    fl_part = fl * (1 - ff)
    soil_part = np.clip(1 - ff - green_part - dry_part - fl_part, 0, 1)
    soil_t = soil[:, None, :] * wet
    refl = (ff * fixed[:, None, :] + green_part * veg[:, None, :] + dry_part * dry[:, None, :]
            + fl_part * E["flower"] + soil_part * soil_t)
    # texture: inside a parcel the green cover varies (g ± δ·g(1−g)) and the soil brightness varies
    tex = TEXTURE_GAIN * tex_strength[:, None, None] * (
        0.5 * g * (1 - g) * (veg[:, None, :] - soil_t) + 0.06 * soil_part * soil_t + 0.04 * green_part * veg[:, None, :]
        + 0.1 * ff * fixed[:, None, :]
    )
    return refl.astype(np.float32), tex.astype(np.float32)
