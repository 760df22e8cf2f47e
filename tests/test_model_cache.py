"""The one model cache: keyed by file, modification time, size and device; a replaced checkpoint is reloaded;
bounded, with eviction that hands GPU memory back."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from sr_core.errors import ConfigError, ModelError
from sr_core.inference import get_model, load_cached
from sr_core.model import SRNet, SRNetConfig, save_checkpoint
from sr_core.model import cache as cache_mod
from sr_core.model.cache import ModelCache

torch.set_num_threads(1)
CPU = torch.device("cpu")


def tiny(seed: int) -> SRNet:
    torch.manual_seed(seed)
    return SRNet(SRNetConfig.preset("tiny")).eval()


def test_a_checkpoint_is_loaded_once_and_reloaded_when_replaced(tmp_path, caplog):
    path = save_checkpoint(tiny(0), tmp_path / "m.pt", threshold=0.3)
    cache = ModelCache(4)
    a, load_s = cache.get(path, CPU)
    b, again_s = cache.get(path, CPU)
    assert a is b and load_s > 0 and again_s == 0.0 and len(cache) == 1
    save_checkpoint(tiny(1), path, threshold=0.7)  # retrained in place (atomic rename: same path, new file)
    os.utime(path, ns=(a_ns := path.stat().st_mtime_ns + 10**9, a_ns))  # a coarse-mtime filesystem still differs
    with caplog.at_level(logging.INFO, logger="sr_core.model.cache"):
        c, _ = cache.get(path, CPU)
    assert c is not a and c.info.threshold == pytest.approx(0.7) and len(cache) == 1  # the stale one is gone
    assert not torch.equal(next(c.parameters()), next(a.parameters()))
    assert "changed on disk" in caplog.text and "loaded model" in caplog.text


def test_same_mtime_but_another_size_is_another_file(tmp_path):
    path = save_checkpoint(tiny(0), tmp_path / "m.pt")
    cache = ModelCache(4)
    a, _ = cache.get(path, CPU)
    st = path.stat()
    save_checkpoint(SRNet(SRNetConfig.preset("tiny", width=16)), path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same modification time, different content and size
    assert path.stat().st_size != st.st_size
    assert cache.get(path, CPU)[0] is not a


def test_the_cache_is_bounded_and_evicts_the_least_recently_used(tmp_path, monkeypatch):
    released: list[str] = []
    monkeypatch.setattr("sr_core.model.network.release_device_memory", lambda device: released.append(str(device)))
    paths = [save_checkpoint(tiny(i), tmp_path / f"m{i}.pt") for i in range(3)]
    cache = ModelCache(2)
    first, _ = cache.get(paths[0], CPU)
    cache.get(paths[1], CPU)
    assert cache.get(paths[0], CPU)[0] is first  # m0 used again: m1 is now the least recently used
    cache.get(paths[2], CPU)
    assert len(cache) == 2 and released == ["cpu"]
    assert ModelCache.key(paths[1], CPU) not in cache and ModelCache.key(paths[0], CPU) in cache
    cache.clear()
    assert len(cache) == 0 and released == ["cpu"] * 3


def test_eviction_empties_the_cuda_cache(monkeypatch):
    from sr_core.model.network import release_device_memory

    emptied: list[bool] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    release_device_memory(torch.device("cpu"))
    assert emptied == []
    release_device_memory(torch.device("cuda", 0))
    assert emptied == [True]


def test_size_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_CORE_MODEL_CACHE", "1")
    paths = [save_checkpoint(tiny(i), tmp_path / f"m{i}.pt") for i in range(2)]
    cache = ModelCache()
    cache.get(paths[0], CPU)
    cache.get(paths[1], CPU)
    assert len(cache) == 1
    monkeypatch.setenv("SR_CORE_MODEL_CACHE", "none")
    with pytest.raises(ConfigError, match="SR_CORE_MODEL_CACHE"):
        cache.get(paths[0], CPU)


def test_get_model_and_the_batch_workers_share_the_process_cache(tmp_path, monkeypatch):
    from sr_core.batch import _worker_model

    monkeypatch.setattr(cache_mod, "MODELS", ModelCache(4))
    path = save_checkpoint(tiny(0), tmp_path / "m.pt")
    net, dev, load_s = _worker_model(str(path), "cpu")
    assert load_s > 0 and dev.type == "cpu"
    assert get_model(path, "cpu") is net and load_cached(path, "cpu") == (net, 0.0)
    assert _worker_model(str(path), "cpu")[2] == 0.0
    save_checkpoint(tiny(1), path)
    os.utime(path, ns=(n := path.stat().st_mtime_ns + 10**9, n))
    assert _worker_model(str(path), "cpu")[0] is not net  # a replaced checkpoint is not served stale to the batch


def test_a_missing_checkpoint_is_a_model_error_and_not_cached(tmp_path):
    cache = ModelCache(2)
    with pytest.raises(ModelError, match="not found"):
        cache.get(tmp_path / "absent.pt", CPU)
    assert len(cache) == 0
