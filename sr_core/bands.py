"""Sentinel-2 band facts used everywhere: the challenge band order and per-band properties."""

from __future__ import annotations

#: Band order of the challenge's ``data/BANDS`` cube (B10 absent). A Patch's last axis follows it.
BAND_NAMES: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
)  # fmt: skip
N_BANDS = len(BAND_NAMES)

#: The 13-band L1C order (eo-learn ``BANDS-S2-L1C``), which includes the cirrus band B10.
L1C_BAND_NAMES: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip
L1C_B10_INDEX = L1C_BAND_NAMES.index("B10")

#: Native ground sampling distance of each band in metres.
NATIVE_RESOLUTION_M: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip

#: Default digital-number scale of the challenge cubes: reflectance = DN × 1e-4.
DEFAULT_NORM_FACTOR = 1e-4


def band_index(name: str) -> int:
    """Index of band ``name`` (e.g. ``"B08"``) along a Patch's band axis."""
    try:
        return BAND_NAMES.index(name.upper())
    except ValueError:
        raise KeyError(f"unknown band {name!r}; expected one of {', '.join(BAND_NAMES)}") from None


BLUE, GREEN, RED, NIR = (band_index(b) for b in ("B02", "B03", "B04", "B08"))
RED_EDGE1 = band_index("B05")
SWIR1, SWIR2 = band_index("B11"), band_index("B12")
