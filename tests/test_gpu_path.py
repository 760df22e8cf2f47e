"""The GPU code path on the CPU: autocast device and dtype are parameters, the single-chunk reduced-precision path
agrees with float32, the chunk is bounded by free memory, and an out-of-memory error halves the chunk / the tile."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from sr_core.errors import ConfigError
from sr_core.inference import get_model, predict
from sr_core.model import SRNet, SRNetConfig, default_model_path
from sr_core.model import network as network_mod
from sr_core.model.precision import Precision, resolve_precision
from tests.test_inference import smooth_patch

torch.set_num_threads(1)

#: Agreement of the reduced-precision single-chunk path with float32 (bundled model, simulated 64 px patch; the
#: measured figures were bfloat16 max 0.053 / mean 0.0019 / binary 99.78 %, float16 max 0.0044 / mean 0.00013 /
#: 99.98 % over three such patches): bfloat16 keeps 8 mantissa bits, float16 11.
TOLERANCE = {"bfloat16": (0.1, 0.005, 0.99), "float16": (0.02, 0.001, 0.999)}  # max |Δp|, mean |Δp|, binary share


def tiny(seed: int = 0) -> SRNet:
    torch.manual_seed(seed)
    return SRNet(SRNetConfig.preset("tiny")).eval()


def test_precision_is_a_parameter_with_the_documented_defaults():
    assert resolve_precision("cuda") == Precision("cuda", "float16")
    assert resolve_precision("cuda", training=True) == Precision("cuda", "bfloat16")
    assert resolve_precision("cuda:1", "float32") == Precision("cuda", None)
    assert resolve_precision("cpu") == Precision("cpu", None) and resolve_precision("mps").name == "float32"
    assert resolve_precision("cpu", "BFloat16") == Precision("cpu", "bfloat16")
    with pytest.raises(ConfigError, match="choose one of auto, float32"):
        resolve_precision("cpu", "int8")
    with Precision("cpu", "bfloat16").autocast():
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.bfloat16
    with Precision("cpu").autocast():
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.float32


@pytest.fixture(scope="module")
def sim_patch():
    from sr_core.simulate import simulate_patch

    return simulate_patch(600, size=64, split="test")


@pytest.mark.skipif(not default_model_path().is_file(), reason="bundled weights absent")
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_the_gpu_path_single_chunk_reduced_precision_agrees_with_float32(sim_patch, dtype):
    """What a GPU runs (the whole tile as one date-axis chunk, under float16 / bfloat16 autocast), here on the CPU,
    against the CPU's float32 chunked output."""
    ref = predict(sim_patch, device="cpu", precision="float32")
    H, W = sim_patch.height, sim_patch.width
    gpu_like = predict(sim_patch, device="cpu", precision=dtype, chunk=H * W, tile=512)
    assert gpu_like.extra["precision"] == dtype and ref.extra["precision"] == "float32"
    assert get_model(None, "cpu").last_chunk_pixels == H * W  # one chunk, as on the GPU
    d = np.abs(gpu_like.proba.astype(np.float64) - ref.proba)
    max_diff, mean_diff, agree = TOLERANCE[dtype]
    assert 0 < d.max() <= max_diff and d.mean() <= mean_diff  # > 0: reduced precision did run
    assert (gpu_like.binary == ref.binary).mean() >= agree


def test_the_result_does_not_depend_on_the_chunk():
    net = tiny()
    patch = smooth_patch(5, 24, 20, seed=1)
    a = predict(patch, device="cpu", model=net, chunk=24 * 20)
    b = predict(patch, device="cpu", model=net, chunk=20)  # one image row per chunk
    assert net.last_chunk_pixels == 20
    np.testing.assert_allclose(a.proba, b.proba, atol=1e-5)


def test_gpu_chunk_is_bounded_by_free_memory(monkeypatch):
    net = tiny()
    free = 2 * 1024**3
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 8 * 1024**3))
    n = net.chunk_pixels(48, torch.device("cuda"))
    assert n == int(free * network_mod.GPU_MEMORY_FRACTION) // net.bytes_per_pixel(48)
    assert n * net.bytes_per_pixel(48) <= free * network_mod.GPU_MEMORY_FRACTION
    assert net.chunk_pixels(96, torch.device("cuda")) < n  # more dates, fewer pixels per chunk
    assert net.chunk_pixels(48, torch.device("cpu")) == net.pixel_chunk  # the CPU keeps its cache-sized chunk


def _oom_above(monkeypatch, module: torch.nn.Module, max_rows: int) -> list[int]:
    """Make ``module.forward`` raise torch.OutOfMemoryError for inputs of more than ``max_rows`` along axis 1."""
    calls: list[int] = []
    real = module.forward

    def forward(x, *args, **kwargs):
        calls.append(x.shape[1])
        if x.shape[1] > max_rows:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(x, *args, **kwargs)

    monkeypatch.setattr(module, "forward", forward)
    return calls


def test_out_of_memory_halves_the_chunk_and_retries(monkeypatch, caplog):
    net = tiny()
    patch = smooth_patch(4, 32, 16, seed=2)
    ref = predict(patch, device="cpu", model=net, chunk=32 * 16)
    calls = _oom_above(monkeypatch, net.temporal, 5)  # TemporalEncoder input: (B, rows, W, T, features)
    with caplog.at_level(logging.WARNING, logger="sr_core.model.network"):
        got = predict(patch, device="cpu", model=net, chunk=32 * 16)
    assert calls[:4] == [32, 16, 8, 4] and net.last_chunk_pixels == 4 * 16  # halved until it fits
    np.testing.assert_allclose(got.proba, ref.proba, atol=1e-5)
    assert "out of memory" in caplog.text and "retrying with 4 row(s)" in caplog.text


def test_out_of_memory_at_one_row_halves_the_tile(monkeypatch, caplog):
    """When even one image row per chunk does not fit (or the trunk runs out), predict halves the tile."""
    net = tiny()
    patch = smooth_patch(3, 80, 80, seed=4)
    ref = predict(patch, device="cpu", model=net, tile=80)
    real = net.forward

    def forward(bands, *args, **kwargs):
        if bands.shape[2] > 48:  # tiles taller than 48 px do not fit
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(bands, *args, **kwargs)

    monkeypatch.setattr(net, "forward", forward)
    with caplog.at_level(logging.WARNING, logger="sr_core.inference"):
        got = predict(patch, device="cpu", model=net, tile=80)
    assert got.extra["tiles"] > 1 and max(got.extra["tile_size"]) <= 48
    assert "retrying with 40 px tiles" in caplog.text
    assert np.abs(got.proba - ref.proba).max() < 0.05  # blended tiles: the same map up to seams
    monkeypatch.setattr(net, "forward", lambda *a, **k: (_ for _ in ()).throw(torch.OutOfMemoryError("always")))
    with pytest.raises(torch.OutOfMemoryError):  # nothing fits: the error is not swallowed
        predict(patch, device="cpu", model=net, tile=80)


def test_training_step_takes_the_autocast_dtype():
    from sr_core import train as train_mod

    net = tiny()
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    g = torch.Generator().manual_seed(0)
    T, H, W = 3, 8, 8
    batch = train_mod.Batch(
        bands=torch.rand(2, T, H, W, 12, generator=g) * 0.4, valid=torch.ones(2, T, H, W, dtype=torch.bool),
        cloud=torch.zeros(2, T, H, W), doy=torch.linspace(60, 240, T).repeat(2, 1),
        present=torch.ones(2, T, dtype=torch.bool), label=(torch.rand(2, 1, 4 * H, 4 * W, generator=g) > 0.5).float(),
        weight=torch.ones(2, 1, 4 * H, 4 * W),
    )  # fmt: skip
    full = train_mod.train_step(net, opt, batch, amp=False)
    bf16 = train_mod.train_step(net, opt, batch, amp=True, amp_dtype="bfloat16")  # the GPU's training path, on a CPU
    assert np.isfinite(bf16) and bf16 == pytest.approx(full, rel=0.05) and bf16 != full


def _gpu_check():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_check_says_there_is_no_gpu(capsys):
    assert _gpu_check().main([]) == 2
    assert "no CUDA GPU here" in capsys.readouterr().err


@pytest.mark.skipif(not default_model_path().is_file(), reason="bundled weights absent")
def test_gpu_check_dry_run_on_the_cpu(tmp_path, capsys):
    import json

    out = tmp_path / "figures.json"
    assert _gpu_check().main(["--device", "cpu", "--size", "24", "--repeats", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["precisions"]) == {"float16", "bfloat16", "float32"}
    for name, p in res["precisions"].items():
        assert p["chunk_pixels"] == 24 * 24 and p["binary_agreement"] >= TOLERANCE.get(name, (0, 0, 1.0))[2]
    assert "binary agree" in capsys.readouterr().out
