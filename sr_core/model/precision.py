"""Reduced precision and memory bounds of the network's forward pass, as parameters rather than hard-wired facts.

Autocast is described by a device type and a dtype (:class:`Precision`), so the code path a GPU runs (one chunk
of pixels, float16 or bfloat16 autocast) can also run on a CPU, where ``torch.autocast("cpu", ...)`` supports
both dtypes: a test checks it against float32 there before any GPU is lent.

Defaults (``precision="auto"``): float16 for inference on CUDA (the faster path on every CUDA generation), bfloat16
for training on CUDA (no loss scaling needed), float32 everywhere else.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Precision:
    """Autocast settings: ``dtype`` None means plain float32 (autocast off)."""

    device_type: str  #: "cuda", "cpu" or "mps": the device the tensors live on
    dtype: str | None = None  #: "float16", "bfloat16" or None (float32)

    @property
    def name(self) -> str:
        return self.dtype or "float32"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The ``torch.autocast`` context for these settings (a no-op context for float32)."""
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=getattr(torch, self.dtype))

    def bytes_per_value(self) -> int:
        return 4 if self.dtype is None else 2


def resolve_precision(device: torch.device | str, precision: str | None = "auto", *, training: bool = False) -> Precision:
    """The :class:`Precision` for ``device``: ``precision`` is ``auto`` (float16 inference / bfloat16 training on
    CUDA, float32 elsewhere), ``float32``, ``float16`` or ``bfloat16``. Raises ConfigError for anything else."""
    from ..errors import ConfigError

    kind = str(device).split(":")[0]
    p = str(precision or "auto").lower()
    if p not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if p == "auto":
        p = ("bfloat16" if training else "float16") if kind == "cuda" else "float32"
    return Precision(kind, None if p == "float32" else p)


__all__ = ["PRECISIONS", "Precision", "resolve_precision"]
