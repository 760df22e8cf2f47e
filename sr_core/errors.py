"""The project's exceptions.

Every error the library raises on bad input derives from :class:`SRCoreError` and also from the matching
built-in exception, so callers can catch either. Messages name the file or feature at fault *and* the fix.
"""

from __future__ import annotations


class SRCoreError(Exception):
    """Root of all errors raised by sr_core on bad input or configuration."""


class PatchValidationError(SRCoreError, ValueError):
    """A Patch was built from arrays of the wrong shape, dtype or range."""


class PatchFormatError(SRCoreError, ValueError):
    """An EOPatch folder on disk is malformed (missing band cube, bad array file, bad metadata)."""


class UnsafePickleError(PatchFormatError):
    """A legacy pickle referenced a class outside the allow-list; it was refused without running code."""


class ArchiveError(SRCoreError, ValueError):
    """An uploaded archive is unsafe or unreadable (path escape, links, too many files, zip bomb)."""


class SubmissionError(SRCoreError, ValueError):
    """A benchmark submission (GeoTIFF set) does not follow the submission format."""


class ModelError(SRCoreError, RuntimeError):
    """A model checkpoint is missing, incompatible or corrupt."""


class ConfigError(SRCoreError, ValueError):
    """A configuration value (environment variable, CLI flag, setting) is invalid."""
