"""sr_core: Sentinel-2 4× super-resolution of farmland, the library behind the app and the CLI.

The numerical core (patch, simulate, metrics, model, inference) needs only numpy / scipy / scikit-image /
torch; rasterio and geopandas are imported only at the edges (I/O, export, maps). Heavy submodules load lazily.
"""

from __future__ import annotations

from typing import Any

from .bands import BAND_NAMES
from .errors import SRCoreError
from .geo import BBox
from .patch import Patch, PatchInfo, ProductLevel, Source

__version__ = "0.1.0"

__all__ = [
    "BAND_NAMES", "BBox", "Patch", "PatchInfo", "ProductLevel", "SRCoreError", "Source", "__version__",
    "load_eopatch", "predict",
]  # fmt: skip

_LAZY = {
    "load_eopatch": ("sr_core.io", "load_eopatch"),
    "predict": ("sr_core.inference", "predict"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'sr_core' has no attribute {name!r}")
