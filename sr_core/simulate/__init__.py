"""A calibrated simulator of Slovenian farmland as Sentinel-2 sees it (see docs/SIMULATOR.md).

``simulate_patch(seed, size=500, split="train", region=None) -> Patch`` is the entry point; the submodules hold
the parts: :mod:`.landscape` (parcels and labels at 2.5 m), :mod:`.phenology` and :mod:`.spectra` (what each
parcel looks like through the season), :mod:`.sensor` (MSI sampling), :mod:`.clouds` (weather and cloud
products), :mod:`.regions` (where), :mod:`.calibrate` (the figures compared with the real data).
"""

from __future__ import annotations

from .core import MAX_CLOUD, SIMULATOR_VERSION, SPLIT_IDS, patch_bbox, simulate_patch, simulated_landscape
from .regions import REGIONS, Region, get_region

__all__ = ["MAX_CLOUD", "REGIONS", "SIMULATOR_VERSION", "SPLIT_IDS", "Region", "get_region", "patch_bbox", "simulate_patch",
           "simulated_landscape"]
