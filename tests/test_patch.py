from datetime import datetime

import numpy as np
import pytest

from sr_core import BBox, Patch
from sr_core.errors import PatchValidationError


def make(T=2, H=4, W=5, **kw):
    return Patch(np.zeros((T, H, W, 12), np.float32), [datetime(2019, 3, 1 + i) for i in range(T)],
                 BBox(0, 0, 10 * W, 10 * H), **kw)


def test_shapes_and_repr(small_patch):
    assert small_patch.shape == (3, 8, 10)
    assert small_patch.label_shape == (32, 40)
    r = repr(small_patch)
    assert "T=3" in r and "8×10" in r and "EPSG:32633" in r
    assert small_patch.bands.flags.writeable is False


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(cloud_mask=np.zeros((3, 4, 5), bool)), "bands imply (T, H, W) = (2, 4, 5)"),
        (dict(cultivated=np.zeros((8, 10), bool)), "4× the 4 × 5 band grid"),
        (dict(cloud_prob=np.full((2, 4, 5), 200, np.uint8)), "CLP / 255"),
        (dict(cloud_mask=np.full((2, 4, 5), 7, np.uint8)), "boolean mask"),
        (dict(scl=np.full((2, 4, 5), 12, np.uint8)), "scene classes 0–11"),
    ],
)
def test_bad_layers_name_the_fix(kw, fragment):
    with pytest.raises(PatchValidationError) as err:
        make(**kw)
    assert fragment in str(err.value)


def test_bad_bands():
    with pytest.raises(PatchValidationError, match="drop B10"):
        Patch(np.zeros((1, 2, 2, 13), np.float32), [datetime(2019, 3, 1)], BBox(0, 0, 20, 20))
    with pytest.raises(PatchValidationError, match="DN × 1e-4"):
        Patch(np.zeros((1, 2, 2, 12), np.uint16), [datetime(2019, 3, 1)], BBox(0, 0, 20, 20))
    with pytest.raises(PatchValidationError, match="one timestamp per date"):
        Patch(np.zeros((2, 2, 2, 12), np.float32), [datetime(2019, 3, 1)], BBox(0, 0, 20, 20))
    with pytest.raises(PatchValidationError, match=r"bands\[None\]"):
        Patch(np.zeros((2, 2, 12), np.float32), [datetime(2019, 3, 1)], BBox(0, 0, 20, 20))


def test_crop_keeps_georeference(small_patch):
    c = small_patch.crop(2, 3, 4, 5)
    assert c.shape == (3, 4, 5)
    assert c.cultivated.shape == (16, 20)
    np.testing.assert_array_equal(c.cultivated, small_patch.cultivated[8:24, 12:32])
    # top-left of the crop = original origin + 3 px east, 2 px south
    a, _, x0, _, e, y0 = small_patch.transform
    assert c.bbox.min_x == x0 + 3 * a and c.bbox.max_y == y0 + 2 * e
    with pytest.raises(PatchValidationError, match="outside"):
        small_patch.crop(6, 0, 4, 4)


def test_valid_mask_and_cloud_fraction(small_patch):
    frac = small_patch.cloud_fraction()
    np.testing.assert_allclose(frac, small_patch.cloud_mask.mean(axis=(1, 2)))
    one = small_patch.select_dates([1])
    assert one.n_dates == 1 and one.timestamps == (small_patch.timestamps[1],)


def test_timezone_aware_timestamps_become_utc():
    from datetime import timedelta, timezone

    p = Patch(np.zeros((1, 1, 1, 12), np.float32), [datetime(2019, 3, 1, 12, tzinfo=timezone(timedelta(hours=2)))],
              BBox(0, 0, 10, 10))
    assert p.timestamps[0] == datetime(2019, 3, 1, 10)
