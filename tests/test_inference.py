"""predict(): device choice, tiling and blending, odd sizes, uncertainty, warnings, real data."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import numpy as np
import pytest
import torch

from sr_core import BBox, Patch
from sr_core.errors import ConfigError
from sr_core.inference import _axis_weights, get_model, predict, select_device, tile_starts
from sr_core.inspect import repeat_up
from sr_core.model import SRNet, SRNetConfig, default_model_path, save_checkpoint
from sr_core.patch import DATE_LAYERS
from sr_core.simulate import simulate_patch
from tests.conftest import REAL_CHALLENGE, REAL_L1C, need

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model() -> SRNet:
    torch.manual_seed(0)
    return SRNet(SRNetConfig.preset("tiny")).eval()


def smooth_patch(T: int, H: int, W: int, seed: int = 0, cloudy: float = 0.2) -> Patch:
    """Field-like input: piecewise smooth reflectance (so the network's output has structure to tile)."""
    from scipy.ndimage import zoom

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.02, 0.45, (T, H // 8 + 2, W // 8 + 2, 12))
    bands = zoom(coarse, (1, 8, 8, 1), order=0)[:, :H, :W] + rng.normal(0, 0.01, (T, H, W, 12))
    return Patch(
        bands=np.clip(bands, 0, 1).astype(np.float32),
        timestamps=[datetime(2019, 3, 5) + timedelta(days=6 * i) for i in range(T)],
        bbox=BBox(500000.0, 5100000.0, 500000.0 + 10 * W, 5100000.0 + 10 * H),
        cloud_mask=rng.uniform(size=(T, H, W)) < cloudy,
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: auto picks it")
def test_auto_device_falls_back_to_cpu_and_explicit_gpu_is_an_error():
    assert select_device("auto").type in ("cpu", "mps")
    with pytest.raises(ConfigError, match=r"no CUDA device.*--device auto"):
        select_device("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        select_device("tpu")


def test_tile_layout_covers_the_axis_with_the_overlap():
    for n, tile, ov in [(500, 272, 24), (1536, 512, 32), (101, 40, 16), (13, 8, 4), (100, 256, 32)]:
        starts, size = tile_starts(n, tile, ov)
        assert size <= max(tile, n if n <= tile else 0) and starts[0] == 0 and starts[-1] + size == n
        for a, b in itertools.pairwise(starts):
            assert a + size - b >= min(ov, tile // 2)  # neighbours overlap at least by the overlap
        w = _axis_weights(starts, size, 4)
        total = np.zeros(4 * n)
        for s, wi in zip(starts, w, strict=True):
            total[4 * s:4 * (s + size)] += wi
        np.testing.assert_allclose(total, 1.0, atol=1e-4)  # the blending weights (nearly) sum to one everywhere


@pytest.mark.parametrize(("T", "H", "W"), [(1, 13, 9), (3, 101, 100)])
def test_predict_any_size_keeps_the_georeference(model, T, H, W):
    patch = smooth_patch(T, H, W)
    pred = predict(patch, device="cpu", model=model)
    assert pred.proba.shape == (4 * H, 4 * W) and pred.proba.dtype == np.float32
    assert pred.proba.min() >= 0 and pred.proba.max() <= 1
    assert pred.bbox == patch.bbox and pred.transform == patch.label_transform
    assert pred.device == "cpu" and pred.binary.dtype == np.uint8
    if T == 1:
        assert any("1 usable date: expect weak skill" in w for w in pred.warnings)
        assert any("single date (T = 1)" in w for w in pred.warnings)


def test_tiled_prediction_is_seamless(model):
    """Small tiles blended must match the whole-patch prediction closely (no seams at tile borders)."""
    patch = smooth_patch(4, 101, 100, seed=1)
    whole = predict(patch, device="cpu", model=model, tile=512).proba
    tiled = predict(patch, device="cpu", model=model, tile=40, overlap=16)
    assert tiled.extra["tiles"] > 4
    diff = np.abs(tiled.proba - whole)
    spread = whole.max() - whole.min()
    assert spread > 0.01  # the comparison means something
    assert diff.max() < 0.1 * spread and diff.mean() < 0.01 * spread


def test_uncertainty_from_flips_and_rotations(model):
    patch = smooth_patch(3, 24, 20, seed=2)
    plain = predict(patch, device="cpu", model=model)
    tta = predict(patch, device="cpu", model=model, uncertainty=True)
    assert plain.uncertainty is None and tta.extra["tta"] == 8
    assert tta.uncertainty.shape == tta.proba.shape and tta.uncertainty.min() >= 0
    assert tta.uncertainty.max() > 0  # an untrained network is not rotation invariant
    # the identity member alone reproduces the plain prediction
    one = predict(patch, device="cpu", model=model, tta=1)
    np.testing.assert_allclose(one.proba, plain.proba, atol=1e-6)


def _dihedral(a: np.ndarray, r: int, flip: bool, axes: tuple[int, int]) -> np.ndarray:
    """``a`` flipped left-right (if ``flip``), then turned ``r`` quarter turns, on ``axes`` (rows, columns)."""
    if flip:
        a = np.flip(a, axis=axes[1])
    return np.ascontiguousarray(np.rot90(a, r, axes=axes))


def _undo_dihedral(a: np.ndarray, r: int, flip: bool) -> np.ndarray:
    """The inverse of :func:`_dihedral` on a 2-D map: turned back ``r`` quarter turns, then flipped back."""
    a = np.rot90(a, -r, axes=(0, 1))
    return np.ascontiguousarray(np.flip(a, axis=1) if flip else a)


def _dihedral_patch(patch: Patch, r: int, flip: bool) -> Patch:
    """A square patch with every 10 m layer (T, H, W[, 12]) and every 2.5 m label (4H, 4W) transformed alike; the
    bbox of a square stays the same."""
    assert patch.height == patch.width
    dates = {k: _dihedral(getattr(patch, k), r, flip, (1, 2)) for k in DATE_LAYERS if getattr(patch, k) is not None}
    labels = {k: _dihedral(getattr(patch, k), r, flip, (0, 1)) for k in ("cultivated", "not_declared", "all_polys")
              if getattr(patch, k) is not None}
    return patch.replace(bands=_dihedral(patch.bands, r, flip, (1, 2)), **dates, **labels)


def test_every_flip_and_rotation_is_undone_before_the_members_are_averaged(model):
    """Each test-time member is the plain prediction of the transformed patch, transformed back: the TTA mean and
    standard deviation equal those of the 8 maps computed here independently, one ``predict`` per transformed patch
    (numpy does the transforms), and so does every single member. A member left flipped or turned (a wrong inverse)
    misses by far more than the float tolerance, because no member map is symmetric under any flip or turn (checked)."""
    patch = simulate_patch(7, size=32, split="test")
    patch = patch.select_dates(range(0, patch.n_dates, 4))  # 12 of 48 dates: fast, still the simulated field layout
    tta = predict(patch, device="cpu", model=model, uncertainty=True)
    assert tta.extra["tta"] == 8 and tta.extra["blind_fraction"] == 0  # no blind pixel zeroed after the averaging
    transforms = [(r, flip) for flip in (False, True) for r in range(4)]
    maps = np.stack([_undo_dihedral(predict(_dihedral_patch(patch, r, flip), device="cpu", model=model).proba, r, flip)
                     for r, flip in transforms])
    assert maps.shape == (8, *tta.proba.shape)
    np.testing.assert_allclose(maps[0], predict(patch, device="cpu", model=model).proba, atol=1e-6)
    # the test can fail: a member map moved by any other flip / turn differs from itself by far more than atol
    others = transforms[1:]
    asym = min(float(np.abs(_dihedral(m, r, flip, (0, 1)) - m).max()) for m in maps for r, flip in others)
    assert asym > 1e-3, f"a member map is (nearly) symmetric: {asym:.2e}"
    np.testing.assert_allclose(tta.proba, maps.mean(0), atol=1e-5, rtol=0)
    np.testing.assert_allclose(tta.uncertainty, maps.std(0), atol=1e-5, rtol=0)
    # member by member: ``tta=k`` averages the first k members, so k·mean_k − (k−1)·mean_(k−1) is the k-th; each must
    # be one of the 8 maps (in whatever order predict takes the transforms), each map once
    matched, total = [], np.zeros_like(tta.proba, dtype=np.float64)
    for k in range(1, 9):
        member = k * predict(patch, device="cpu", model=model, tta=k).proba.astype(np.float64) - total
        total += member
        err = np.abs(maps - member).max(axis=(1, 2))
        assert err.min() < 5e-5, f"member {k} is none of the transformed-back maps (closest off by {err.min():.2e})"
        matched.append(int(err.argmin()))
    assert sorted(matched) == list(range(8)), matched


def test_prediction_reads_the_patch_without_copying_or_changing_it(model):
    """On a CPU the tiles reach the network as views of the patch's read-only arrays (no copy); torch cannot keep
    them read-only, so nothing on the way may write to them, under any test-time transform."""
    patch = smooth_patch(4, 40, 36, seed=5)
    p2 = patch.replace(cloud_prob=np.random.default_rng(1).uniform(size=patch.shape).astype(np.float32))
    before = {k: np.array(getattr(p2, k), copy=True) for k in ("bands", "cloud_prob", "cloud_mask")}
    predict(p2, device="cpu", model=model, uncertainty=True, tile=24, overlap=8)
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(p2, k), v)


def test_pixels_never_seen_clear_are_not_mapped_as_cultivated(model):
    """No evidence, no claim: a block under cloud on every date gets probability 0; the rest keeps its output."""
    patch = smooth_patch(4, 32, 28, seed=3, cloudy=0.0)
    mask = np.zeros(patch.bands.shape[:3], bool)
    mask[:, 8:16, 4:20] = True
    clouded = predict(patch.replace(cloud_mask=mask), device="cpu", model=model, threshold=0.0)
    blind = repeat_up(mask[0])
    assert (clouded.proba[blind] == 0).all() and clouded.binary[blind].sum() == 0
    assert (clouded.proba[~blind] > 0).mean() > 0.99 and clouded.binary[~blind].all()  # threshold 0: all claimed
    assert clouded.extra["blind_fraction"] == pytest.approx(mask[0].mean())
    assert any("never seen clear" in w and "not cultivated" in w for w in clouded.warnings)
    mask = mask.copy()
    mask[2, 8:16, 4:20] = False  # seen clear once: the network's answer stands
    once = predict(patch.replace(cloud_mask=mask), device="cpu", model=model)
    assert once.proba[blind].min() > 0 and once.extra["blind_fraction"] == 0
    assert once.no_data is None


def test_pixels_never_seen_clear_are_no_data_in_the_written_maps(model, tmp_path):
    """The rule's 0 is not an observation: the probability GeoTIFF masks those pixels (uint8: internal mask; float32:
    NaN nodata), the uncertainty map writes NaN there, and both say how many test-time transforms made the spread."""
    import rasterio

    from sr_core.io.geotiff import check_output, write_outputs, write_probability

    patch = smooth_patch(4, 32, 28, seed=3, cloudy=0.0)
    mask = np.zeros(patch.bands.shape[:3], bool)
    mask[:, 8:16, 4:20] = True
    pred = predict(patch.replace(cloud_mask=mask), device="cpu", model=model, uncertainty=True, tta=2)
    blind = repeat_up(mask[0])
    np.testing.assert_array_equal(pred.no_data, blind)
    paths = write_outputs(pred, patch, tmp_path / "sub", proba_dir=tmp_path / "p", uncertainty_dir=tmp_path / "u")
    with rasterio.open(paths["proba"]) as src:
        np.testing.assert_array_equal(src.read_masks(1) == 0, blind)
        assert "never seen clear" in src.tags()["SR_NO_DATA"] and src.tags()["SR_TTA"] == "2"
        kept = src.read(1, masked=True)
    assert kept.count() == (~blind).sum()
    with rasterio.open(paths["uncertainty"]) as src:
        u = src.read(1)
        assert np.isnan(src.nodata) and np.isnan(u[blind]).all() and np.isfinite(u[~blind]).all()
        assert src.descriptions[0] == "std of P(cultivated) over 2 flips / rotations"
        assert src.tags(1)["meaning"] == "std of the cultivated probability over 2 flips / rotations"
    with rasterio.open(paths["submission"]) as src:  # the benchmark's format: 0 / 1 everywhere, no mask
        assert src.nodata is None and (src.read_masks(1) == 255).all() and src.read(1)[blind].max() == 0
    f32 = write_probability(pred, patch, tmp_path / "f", dtype="float32")
    with rasterio.open(f32) as src:
        p = src.read(1)
        assert np.isnan(src.nodata) and np.isnan(p[blind]).all()
        np.testing.assert_allclose(p[~blind], pred.proba[~blind])
    problem, mean = check_output(paths["proba"], patch.bbox)
    assert problem is None and mean == pytest.approx(np.rint(pred.proba[~blind] * 255).mean())


def test_checkpoint_is_loaded_once_per_device(tmp_path, model):
    path = save_checkpoint(model, tmp_path / "m.pt", threshold=0.3)
    a, b = get_model(path, "cpu"), get_model(path, "cpu")
    assert a is b and a.info.threshold == pytest.approx(0.3)
    pred = predict(smooth_patch(2, 16, 16), device="cpu", model=path)
    assert pred.threshold == pytest.approx(0.3) and pred.predictor == "model:m.pt"


def test_real_patch_l1c_is_predicted_with_warnings(model):
    from sr_core.io.eopatch import load_eopatch

    patch = load_eopatch(need(REAL_L1C))
    pred = predict(patch, device="cpu", model=model)
    assert pred.proba.shape == patch.label_shape == (404, 400)
    assert any("L1C" in w for w in pred.warnings)


@pytest.mark.skipif(not default_model_path().is_file(), reason="bundled weights absent")
def test_bundled_model_does_not_paint_fields_into_forest():
    """The real forest patch is 0.1 % arable: the bundled model must call at most 5 % of it cultivated."""
    from sr_core.io.eopatch import load_eopatch

    patch = load_eopatch(need(REAL_CHALLENGE))
    pred = predict(patch, device="cpu")
    assert pred.binary.mean() <= 0.05, f"{pred.binary.mean():.1%} of a forest patch predicted cultivated"
