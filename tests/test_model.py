"""The network and its checkpoints: shapes, masking, order invariance, round trip, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_core.errors import ModelError
from sr_core.model import SRNet, SRNetConfig, load_model, read_checkpoint, save_checkpoint

torch.set_num_threads(1)


def tiny(seed: int = 0) -> SRNet:
    torch.manual_seed(seed)
    return SRNet(SRNetConfig.preset("tiny")).eval()


def inputs(T: int, H: int, W: int, seed: int = 0, cloudy: float = 0.3):
    g = torch.Generator().manual_seed(seed)
    bands = torch.rand(1, T, H, W, 12, generator=g) * 0.4
    valid = torch.rand(1, T, H, W, generator=g) > cloudy
    doy = torch.linspace(60, 240, T)[None]
    cloud = torch.where(valid, 0.05, 0.9).float()
    return bands, valid, doy, cloud


@pytest.mark.parametrize(("T", "H", "W"), [(1, 13, 9), (3, 101, 100), (7, 8, 8), (2, 5, 17)])
def test_output_is_4x_for_odd_sizes_and_single_dates(T, H, W):
    b, v, d, c = inputs(T, H, W)
    with torch.inference_mode():
        out = tiny()(b, v, d, c)
    assert out.shape == (1, 1, 4 * H, 4 * W)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_all_cloudy_input_still_predicts_and_flags_it():
    b, v, d, c = inputs(4, 12, 12)
    none_valid = torch.zeros_like(v)
    m = tiny()
    with torch.inference_mode():
        out = m(b, none_valid, d, torch.ones_like(c))
        clear = m(b, torch.ones_like(v), d, torch.zeros_like(c))
    assert torch.isfinite(out).all()
    assert not torch.allclose(out, clear)  # the network sees that nothing was clear


def test_date_order_does_not_matter():
    b, v, d, c = inputs(6, 16, 20, seed=1)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    m = tiny()
    with torch.inference_mode():
        a = m(b, v, d, c)
        p = m(b[:, perm], v[:, perm], d[:, perm], c[:, perm])
    torch.testing.assert_close(a, p, atol=1e-5, rtol=1e-5)


def test_cloudy_observations_do_not_leak_into_the_prediction():
    """Where a pixel has clear dates, the values under its clouds must not change the output."""
    b, v, d, c = inputs(5, 16, 16, seed=2)
    v[:, 0] = True  # every pixel is clear at least once
    noisy = torch.where(v[..., None], b, torch.rand_like(b) * 5)  # garbage reflectance under the clouds
    m = tiny()
    with torch.inference_mode():
        torch.testing.assert_close(m(b, v, d, c), m(noisy, v, d, c), atol=1e-5, rtol=1e-5)


def test_padded_dates_are_ignored():
    b, v, d, c = inputs(4, 12, 12, seed=3)
    pad = lambda x, fill: torch.cat([x, torch.full_like(x[:, :2], fill)], dim=1)  # noqa: E731
    present = torch.tensor([[True] * 4 + [False] * 2])
    m = tiny()
    with torch.inference_mode():
        ref = m(b, v, d, c)
        padded = m(pad(b, 0.7), pad(v, True), pad(d, 100.0), pad(c, 0.0), present)
    torch.testing.assert_close(ref, padded, atol=1e-5, rtol=1e-5)


def test_presets_sizes():
    n = {k: SRNet(SRNetConfig.preset(k)).n_params() for k in ("tiny", "small", "base")}
    assert n["tiny"] < 60_000
    assert 400_000 <= n["small"] <= 1_500_000  # the bundled size: the compact multi-frame range of the issue
    assert 400_000 <= n["base"] <= 1_500_000
    with pytest.raises(ValueError, match="unknown model preset"):
        SRNetConfig.preset("huge")


def test_checkpoint_round_trip(tmp_path):
    m = tiny(seed=4)
    path = save_checkpoint(m, tmp_path / "m.pt", threshold=0.42, provenance={"steps": 7, "seed": 4})
    raw = torch.load(path, weights_only=True)  # plain values only: loads without unpickling code
    assert raw["config"]["width"] == m.config.width and raw["bands"][0] == "B01"
    assert raw["normalisation"]["band_mean"] == pytest.approx(m.config.band_mean)
    loaded = load_model(path)
    assert loaded.info.threshold == pytest.approx(0.42)
    assert loaded.info.provenance["steps"] == 7 and "created" in loaded.info.provenance
    b, v, d, c = inputs(3, 10, 11)
    with torch.inference_mode():
        torch.testing.assert_close(m(b, v, d, c), loaded(b, v, d, c))


def test_missing_checkpoint_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match=r"not found.*train"):
        load_model(tmp_path / "nope.pt")


def test_corrupt_checkpoint_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ModelError, match="unreadable"):
        load_model(bad)
    good = save_checkpoint(tiny(), tmp_path / "good.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:2000])  # a truncated download
    with pytest.raises(ModelError, match="unreadable"):
        load_model(cut)


def test_foreign_or_incompatible_checkpoint_is_a_model_error(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ModelError, match="not an sr_core model checkpoint"):
        read_checkpoint(foreign)
    path = save_checkpoint(tiny(), tmp_path / "m.pt")
    ck = torch.load(path, weights_only=True)
    ck["config"]["width"] = 99  # weights no longer fit the config
    torch.save(ck, tmp_path / "mismatch.pt")
    with pytest.raises(ModelError, match="does not match"):
        load_model(tmp_path / "mismatch.pt")
    ck["format_version"] = 99
    torch.save(ck, tmp_path / "future.pt")
    with pytest.raises(ModelError, match="format version"):
        load_model(tmp_path / "future.pt")
