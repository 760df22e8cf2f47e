"""The organisers' NDVI-threshold baseline: frame selection, mean NDVI, OpenCV-equivalent bicubic ×4, thresholds."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from conftest import REAL_CHALLENGE, need

from sr_core import BBox, Patch, PatchInfo
from sr_core.bands import NIR, RED
from sr_core.baselines import get_baseline
from sr_core.baselines.ndvi import ndvi_baseline, select_frames, upsample_bicubic
from sr_core.errors import ModelError

# cv2.resize(np.array([[0, 0, 1, 0, 0]] * 3, np.float32), None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)[1],
# rounded to 6 decimals (OpenCV 5.0, opencv-python-headless); any row of a vertically constant image.
OPENCV_DELTA_ROW = np.array([
    0.0, 0.0, -0.010254, -0.065918, -0.109863, -0.071777, 0.114746, 0.42627, 0.749512, 0.967285,
    0.967285, 0.749512, 0.42627, 0.114746, -0.071777, -0.109863, -0.065918, -0.010254, 0.0, 0.0,
])  # fmt: skip


def keys(x: float, a: float = -0.75) -> float:
    """Keys' cubic convolution kernel, written out as in the literature."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def test_upsample_matches_opencv_on_a_delta():
    row = upsample_bicubic(np.array([[0, 0, 1, 0, 0]] * 3, np.float32))[5]
    np.testing.assert_allclose(row, OPENCV_DELTA_ROW, atol=1e-6)


def test_upsample_matches_the_keys_kernel_with_pixel_centre_alignment():
    rng = np.random.default_rng(0)
    src = rng.uniform(-1, 1, 9)
    out = upsample_bicubic(np.tile(src, (5, 1)))[7]
    for i in range(8, 28):  # away from the replicated edges
        x = (i + 0.5) / 4 - 0.5
        expected = sum(src[j] * keys(x - j) for j in range(9))
        assert out[i] == pytest.approx(expected, abs=1e-6)


def test_upsample_is_separable_constant_preserving_and_shaped():
    d = np.zeros((5, 5), np.float32)
    d[2, 2] = 1
    up = upsample_bicubic(d)
    assert up.shape == (20, 20) and up.dtype == np.float32
    np.testing.assert_allclose(up, np.outer(OPENCV_DELTA_ROW, OPENCV_DELTA_ROW), atol=2e-6)
    np.testing.assert_allclose(upsample_bicubic(np.full((3, 7), 0.37)), 0.37, atol=1e-7)
    nan = np.zeros((10, 10))
    nan[0, 0] = np.nan
    u = upsample_bicubic(nan)
    assert np.isnan(u[0, 0]) and not np.isnan(u[20:, 20:]).any()
    with pytest.raises(ValueError, match="2-D"):
        upsample_bicubic(np.zeros((2, 3, 3)))


def _patch(ndvi_frames: np.ndarray, cloudy: np.ndarray, name: str = "eopatch-07") -> Patch:
    T, H, W = ndvi_frames.shape
    nir = np.full((T, H, W), 0.3, np.float32)
    red = (nir * (1 - ndvi_frames) / (1 + ndvi_frames)).astype(np.float32)
    bands = np.full((T, H, W, 12), 0.05, np.float32)
    bands[..., NIR] = nir
    bands[..., RED] = red
    return Patch(
        bands=bands, timestamps=[datetime(2019, 4, 1) + timedelta(days=5 * t) for t in range(T)],
        bbox=BBox(500000.0, 5100000.0, 500000.0 + 10 * W, 5100000.0 + 10 * H), cloud_mask=cloudy,
        is_data=np.ones((T, H, W), bool), info=PatchInfo(name=name),
    )


def test_baseline_uses_only_clear_frames_and_thresholds():
    H, W = 6, 8
    field = np.where(np.arange(W) < 4, 0.5, 0.8)[None, :].repeat(H, 0)  # left half crop-like, right half forest
    ndvi = np.stack([field, np.full((H, W), 0.1), field + 0.02])
    cloudy = np.zeros((3, H, W), bool)
    cloudy[1, :2, :5] = True  # 10 of 48 px: frame 1 is 79 % valid → skipped
    cloudy[2, 0, 0] = True  # 1 of 48 px: frame 2 is 97.9 % valid → used
    patch = _patch(ndvi, cloudy)
    frames, frac, notes = select_frames(patch)
    assert frames.tolist() == [0, 2] and notes == [] and frac[1] == pytest.approx(38 / 48)
    pred = ndvi_baseline(patch)
    b = patch.bands.astype(np.float64)
    expected_mean = np.mean([(b[t, ..., NIR] - b[t, ..., RED]) / (b[t, ..., NIR] + b[t, ..., RED]) for t in (0, 2)], axis=0)
    np.testing.assert_allclose(pred.extra["mean_ndvi_10m"], expected_mean, atol=1e-6)
    up = upsample_bicubic(expected_mean)
    np.testing.assert_array_equal(pred.binary, ((up > 0.4) & (up <= 0.6)).astype(np.uint8))
    assert pred.binary[:, :12].all() and not pred.binary[:, 20:].any()  # the field and the forest, away from the edge
    assert pred.shape == (24, 32) and pred.predictor == "baseline:ndvi" and pred.name == "eopatch-07"
    assert pred.extra["frames_used"] == (0, 2) and pred.bbox == patch.bbox
    np.testing.assert_array_equal(np.unique(pred.proba), [0.0, 1.0])


def test_thresholds_are_exclusive_below_and_inclusive_above():
    H, W = 4, 4
    bands = np.zeros((1, H, W, 12), np.float32)
    bands[..., NIR], bands[..., RED] = 0.75, 0.25  # NDVI exactly 0.5 in binary floating point
    patch = Patch(bands=bands, timestamps=[datetime(2019, 6, 1)], bbox=BBox(0.0, 0.0, 40.0, 40.0))
    assert ndvi_baseline(patch).binary.all()
    assert ndvi_baseline(patch, low=0.4, high=0.5).binary.all()  # ≤ high
    assert not ndvi_baseline(patch, low=0.5, high=0.6).binary.any()  # > low


def test_no_clear_frame_falls_back_to_the_least_cloudy_with_a_warning():
    H, W = 5, 5
    ndvi = np.stack([np.full((H, W), 0.5), np.full((H, W), 0.9), np.full((H, W), 0.2)])
    cloudy = np.zeros((3, H, W), bool)
    cloudy[0, :3] = True  # 40 % cloud
    cloudy[1, :1] = True  # 20 % cloud: the least cloudy
    cloudy[2, :2] = True  # 40 %
    pred = ndvi_baseline(_patch(ndvi, cloudy))
    assert pred.extra["frames_used"] == (1,)
    # two warnings: three April dates are not a whole growing season, and no frame is clear
    season, cloudy = pred.warnings
    assert season.startswith("the 2019 growing season is incomplete") and "2019-04-01 … 2019-04-11" in season
    assert "least cloudy" in cloudy and "2019-04-06" in cloudy and pred.extra["dates_used"] == ("2019-04-06",)
    assert not pred.binary.any()  # NDVI 0.9: forest-like


def test_zero_reflectance_gives_nan_ndvi_and_no_cultivated_land():
    bands = np.zeros((2, 4, 4, 12), np.float32)
    patch = Patch(bands=bands, timestamps=[datetime(2019, 6, 1), datetime(2019, 6, 2)], bbox=BBox(0.0, 0.0, 40.0, 40.0))
    pred = ndvi_baseline(patch)
    assert np.isnan(pred.extra["mean_ndvi_10m"]).all() and not pred.binary.any() and np.isfinite(pred.proba).all()


def test_registry():
    assert get_baseline("ndvi") is ndvi_baseline
    with pytest.raises(ModelError, match="unknown baseline"):
        get_baseline("nope")


@pytest.mark.real_data
def test_real_patch_skips_cloudy_frames_and_writes_a_valid_submission(tmp_path):
    from sr_core.io.eopatch import load_eopatch
    from sr_core.io.submission import validate_submission, write_submission

    patch = load_eopatch(need(REAL_CHALLENGE))
    pred = ndvi_baseline(patch)
    valid = patch.is_data & ~patch.cloud_mask
    # 2015-09-09 falls after the challenge's 1 March – 1 September season, so it is left out as well
    in_season = [t for t in range(patch.n_dates) if patch.timestamps[t].month < 9 or patch.timestamps[t].day == 1]
    clear = [t for t in in_season if valid[t].mean() > 0.95]
    assert list(pred.extra["frames_used"]) == clear and len(clear) < len(in_season) == 4  # the cloudy frames are dropped
    assert pred.extra["dates_used"] == ("2015-07-11", "2015-08-30")
    assert pred.shape == patch.label_shape
    assert [w.split(":")[0] for w in pred.warnings] == ["season 2015", "the 2015 growing season is incomplete in this "
                                                       "series (2015-07-11 … 2015-08-30)"]
    # a forest patch in summer: NDVI mostly above 0.6, so little is called cultivated
    assert np.nanmedian(pred.extra["ndvi"]) > 0.6 and pred.binary.mean() < 0.2
    path = write_submission(pred, patch, tmp_path / "sub")
    assert path.name == f"{REAL_CHALLENGE.name}.tif"
    assert validate_submission(tmp_path / "sub", [patch]).ok
