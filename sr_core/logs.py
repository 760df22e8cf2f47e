"""Logging setup: every ``sr_core`` module logs to its own ``logging.getLogger(__name__)``; this module sets where
those records go for the command line (and for any program that wants the same).

The library itself configures nothing (a program embedding it keeps its own logging). :func:`configure` attaches
one stderr handler to the ``sr_core`` logger at a level from, in order: the ``level`` argument (``--log-level``),
the ``verbose`` count (``-v`` INFO, ``-vv`` DEBUG), ``$SR_CORE_LOG_LEVEL``, else WARNING (so by default only
warnings and errors are shown: an out-of-memory fallback, a failed patch, an error of ours while scoring).

What is logged: model loads and cache evictions (``sr_core.model.cache``), the device ``auto`` picked and each
prediction (``sr_core.inference``, DEBUG), out-of-memory fallbacks (``sr_core.model.network``,
``sr_core.inference``, WARNING), skipped and failed patches of a batch (``sr_core.batch``), each benchmark
submission's outcome and, with its traceback, every unexpected error while scoring (``sr_core.benchmark.service``).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .errors import ConfigError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENV_VAR = "SR_CORE_LOG_LEVEL"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "sr_core.logs"


def resolve_level(level: str | int | None = None, verbose: int = 0) -> int:
    """The logging level for ``level`` / ``verbose`` / ``$SR_CORE_LOG_LEVEL`` (see the module docstring)."""
    if level is None and verbose:
        return logging.DEBUG if verbose > 1 else logging.INFO
    if level is None:
        level = os.environ.get(ENV_VAR, "").strip() or "WARNING"
    if isinstance(level, int):
        return level
    name = str(level).strip().upper()
    if name not in LEVELS:
        source = "--log-level" if level != os.environ.get(ENV_VAR, "").strip() else ENV_VAR
        raise ConfigError(f"{source} {level!r}: choose one of {', '.join(LEVELS)} (case does not matter)")
    return getattr(logging, name)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (it may be replaced after setup)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(level: str | int | None = None, verbose: int = 0) -> logging.Logger:
    """Send ``sr_core``'s log records at or above the resolved level to stderr; calling it again replaces the
    handler it added (never a second one). Returns the ``sr_core`` logger."""
    lvl = resolve_level(level, verbose)
    logger = logging.getLogger("sr_core")
    for h in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(h)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(lvl)
    return logger


__all__ = ["ENV_VAR", "LEVELS", "configure", "resolve_level"]
