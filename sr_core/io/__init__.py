"""Reading and writing patches: EOPatch folders (both eo-learn layouts), legacy pickles, safe archives.

``sr_core.io.geotiff`` (writing a patch's GeoTIFFs), ``sr_core.io.inputs`` (which patches the user named) and
``sr_core.io.submission`` (the submission format, read and checked) are separate modules, not imported here.
"""

from __future__ import annotations

from .archive import extract_archive, find_eopatches, is_eopatch, iter_patch_folders, iter_patches, open_patches
from .eopatch import EOPatchExistsError, load_eopatch, read_b10, read_npy, write_eopatch
from .legacy_pickle import read_legacy_pickle

__all__ = [
    "EOPatchExistsError", "extract_archive", "find_eopatches", "is_eopatch", "iter_patch_folders", "iter_patches",
    "load_eopatch", "open_patches", "read_b10", "read_legacy_pickle", "read_npy", "write_eopatch",
]  # fmt: skip
