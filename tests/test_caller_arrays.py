"""Patch and Prediction never change the caller's arrays, and are still read-only themselves."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from sr_core import BBox, Patch
from sr_core.prediction import Prediction

BBOX = BBox(500000.0, 5100000.0, 500080.0, 5100080.0)


def arrays(T: int = 2, H: int = 8, W: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "bands": rng.uniform(0, 0.5, (T, H, W, 12)).astype(np.float32),
        "cloud_prob": rng.uniform(0, 1, (T, H, W)).astype(np.float32),
        "cloud_mask": rng.uniform(size=(T, H, W)) > 0.7,
        "is_data": np.ones((T, H, W), bool),
        "scl": np.full((T, H, W), 4, np.uint8),
        "cultivated": rng.uniform(size=(4 * H, 4 * W)) > 0.5,
        "not_declared": np.zeros((4 * H, 4 * W), bool),
        "all_polys": np.full((4 * H, 4 * W), 7, np.uint16),
    }


def test_the_callers_arrays_stay_writeable_and_the_patch_is_read_only():
    given = arrays()
    before = {k: v.copy() for k, v in given.items()}
    patch = Patch(timestamps=[datetime(2019, 4, 1), datetime(2019, 5, 1)], bbox=BBOX, **given)
    for name, a in given.items():
        stored = getattr(patch, name)
        assert a.flags.writeable, f"the caller's {name} was frozen"
        assert not stored.flags.writeable, f"Patch.{name} is writeable"
        assert not np.shares_memory(stored, a), f"Patch.{name} shares the caller's memory"
        a[...] = 0  # the caller changes its own array …
        np.testing.assert_array_equal(stored, before[name])  # … and the patch does not change
        with pytest.raises(ValueError, match="read-only"):
            stored[...] = 1


def test_converted_and_read_only_arrays_are_not_copied_twice():
    given = arrays()
    ints = (given["bands"] * 1e4).astype(np.float64)  # float64: converted to a new float32 array, frozen as is
    frozen = given["cloud_mask"].copy()
    frozen.flags.writeable = False  # a loader's own array, marked read-only: shared without a copy
    patch = Patch(bands=ints, timestamps=[datetime(2019, 4, 1), datetime(2019, 5, 1)], bbox=BBOX, cloud_mask=frozen)
    assert ints.flags.writeable and patch.bands.dtype == np.float32 and not patch.bands.flags.writeable
    assert patch.cloud_mask is frozen
    assert patch.replace().bands is patch.bands  # replace shares the read-only arrays


def test_prediction_leaves_the_callers_maps_alone():
    proba = np.full((8, 8), 0.7, np.float32)
    unc = np.full((8, 8), 0.1, np.float32)
    pred = Prediction(proba=proba, bbox=BBOX, uncertainty=unc)
    assert proba.flags.writeable and unc.flags.writeable
    assert not pred.proba.flags.writeable and not pred.uncertainty.flags.writeable
    proba[...] = 0.0
    unc[...] = 0.0
    assert pred.binary.all() and float(pred.uncertainty.max()) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="read-only"):
        pred.proba[0, 0] = 0.0


def test_crop_and_select_dates_make_one_copy_not_two(monkeypatch):
    import sr_core.patch as patch_mod

    patch = Patch(timestamps=[datetime(2019, 4, 1), datetime(2019, 5, 1)], bbox=BBOX, **arrays())
    copied: list[tuple[int, ...]] = []
    real = patch_mod.read_only

    def spy(a, given=None):
        out = real(a, given)
        if not np.shares_memory(out, a):
            copied.append(out.shape)
        return out

    monkeypatch.setattr(patch_mod, "read_only", spy)
    cropped = patch.crop(2, 2, 4, 4)
    picked = patch.select_dates([1])
    assert copied == []  # the arrays they cut are new: handed over to the new Patch, not copied again
    assert cropped.bands.shape == (2, 4, 4, 12) and not cropped.bands.flags.writeable
    assert picked.bands.shape == (1, 8, 8, 12) and not picked.scl.flags.writeable
    # a run of consecutive dates (a season) is a view of the read-only arrays, no copy at all; an index beyond the
    # dates is refused as before
    assert np.shares_memory(picked.bands, patch.bands) and np.shares_memory(picked.scl, patch.scl)
    apart = patch.select_dates([1, 0])
    assert not np.shares_memory(apart.bands, patch.bands) and apart.timestamps[0] == patch.timestamps[1]
    with pytest.raises(IndexError):
        patch.select_dates([1, 2])
    Patch(timestamps=[datetime(2019, 4, 1)], bbox=BBOX, bands=np.zeros((1, 8, 8, 12), np.float32))
    assert copied == [(1, 8, 8, 12)]  # a caller's writeable array is copied once
