"""The one cache of loaded networks, shared by ``predict``, the batch workers, the app and the benchmark.

Entries are keyed by the checkpoint's resolved path, modification time (ns), size and the device, so a checkpoint
replaced on disk (retrained, re-downloaded) is loaded afresh and the stale network of the same file and device is
dropped at once. The cache holds at most ``max_size`` networks (``$SR_CORE_MODEL_CACHE``, default 4), least
recently used first out; an evicted network's GPU memory is handed back (``torch.cuda.empty_cache``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    import torch

    from .network import SRNet

log = logging.getLogger(__name__)
DEFAULT_SIZE = 4

Key = tuple[str, int, int, str]


def _env_size() -> int:
    raw = os.environ.get("SR_CORE_MODEL_CACHE", "").strip()
    if not raw:
        return DEFAULT_SIZE
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"SR_CORE_MODEL_CACHE={raw!r}: give the number of networks to keep loaded (≥ 1)")
    return n


class ModelCache:
    """Loaded networks by (resolved path, mtime, size, device); bounded, least recently used evicted first."""

    def __init__(self, max_size: int | None = None) -> None:
        self.max_size = max_size
        self._nets: OrderedDict[Key, SRNet] = OrderedDict()
        self._lock = threading.RLock()

    @staticmethod
    def key(path: str | Path, device: torch.device | str) -> Key:
        """The cache key of ``path`` on ``device``; OSError when the file cannot be examined."""
        p = Path(path).resolve()
        st = p.stat()
        return (str(p), st.st_mtime_ns, st.st_size, str(device))

    def get(self, path: str | Path, device: torch.device) -> tuple[SRNet, float]:
        """(network on ``device``, seconds spent loading it: 0.0 when it was cached)."""
        from .checkpoint import load_model

        try:
            key = self.key(path, device)
        except OSError:  # missing / unreadable: let the loader raise its ModelError with the fix
            return load_model(path, device="cpu"), 0.0
        with self._lock:
            net = self._nets.get(key)
            if net is not None:
                self._nets.move_to_end(key)
                return net, 0.0
            for old in [k for k in self._nets if k[0] == key[0] and k[3] == key[3]]:
                log.info("checkpoint %s changed on disk: dropping the network loaded from its earlier version", key[0])
                self._evict(old)
            t0 = time.perf_counter()
            net = load_model(path, device="cpu")
            net = _place(net, device)
            seconds = max(time.perf_counter() - t0, 1e-9)
            log.info("loaded model %s (%d parameters) on %s in %.2f s", key[0], net.n_params(), device, seconds)
            self._nets[key] = net
            limit = self.max_size or _env_size()
            while len(self._nets) > limit:
                self._evict(next(iter(self._nets)))
            return net, seconds

    def _evict(self, key: Key) -> None:
        from .network import release_device_memory

        net = self._nets.pop(key)
        device = next(net.parameters()).device
        log.info("model cache: evicting %s on %s", key[0], key[3])
        del net
        release_device_memory(device)

    def clear(self) -> None:
        with self._lock:
            for key in list(self._nets):
                self._evict(key)

    def __len__(self) -> int:
        return len(self._nets)

    def __contains__(self, key: object) -> bool:
        return key in self._nets


def _place(net: SRNet, device: torch.device) -> SRNet:
    import torch

    if device.type != "cpu":
        return net.to(device)
    return net.to(memory_format=torch.channels_last)


MODELS = ModelCache()  #: the process's cache (``sr_core.inference.get_model`` uses it)

__all__ = ["DEFAULT_SIZE", "MODELS", "ModelCache"]
