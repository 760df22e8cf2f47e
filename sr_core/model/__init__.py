"""The super-resolution network and its checkpoints (torch is imported here: import this package lazily)."""

from __future__ import annotations

from .checkpoint import (
    CheckpointInfo,
    default_model_path,
    describe_checkpoint,
    load_model,
    model_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
    strip_checkpoint,
)
from .network import SRNet, SRNetConfig

__all__ = [
    "CheckpointInfo", "SRNet", "SRNetConfig", "default_model_path", "describe_checkpoint", "load_model",
    "model_from_checkpoint", "read_checkpoint", "save_checkpoint", "strip_checkpoint",
]  # fmt: skip
