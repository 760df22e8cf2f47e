"""sr_core.viz: every picture the app shows says which bands, stretch and colours it uses; check them on known values."""

from __future__ import annotations

import numpy as np

from sr_core import viz
from sr_core.bands import BAND_NAMES


def _frame(values: dict[str, float], shape=(2, 3)) -> np.ndarray:
    """(H, W, 12) reflectance with the named bands at the given constants, the rest 0."""
    f = np.zeros((*shape, len(BAND_NAMES)), np.float32)
    for name, v in values.items():
        f[..., BAND_NAMES.index(name)] = v
    return f


def test_composites_put_their_stated_bands_in_red_green_blue():
    f = _frame({"B02": 0.1, "B03": 0.2, "B04": 0.3, "B08": 0.5, "B12": 0.4})
    lim = (0.0, 0.5)
    for key, want in (("true", (0.3, 0.2, 0.1)), ("false", (0.5, 0.3, 0.2)), ("swir", (0.4, 0.5, 0.3))):
        img = viz.composite(f, key, lim, gamma=1.0)
        assert img.dtype == np.uint8 and img.shape == (2, 3, 3)
        assert tuple(img[0, 0]) == tuple(int(v / 0.5 * 255) for v in want), key
        for b in viz.COMPOSITES[key].bands:  # the legend names every band it shows
            assert b in viz.COMPOSITES[key].description


def test_stretch_ignores_clouds_and_no_data_when_told_where_they_are():
    v = np.concatenate([np.linspace(0.02, 0.2, 98), [0.9, np.nan]])  # a cloud (0.9) and a no-data pixel
    valid = np.ones(v.shape, bool)
    valid[-2:] = False
    lo, hi = viz.stretch_limits(v, valid, 0, 100)
    assert np.allclose((lo, hi), (0.02, 0.2))
    assert viz.stretch_limits(v, None, 0, 100)[1] == 0.9  # unmasked, the cloud sets the top
    assert viz.stretch_limits(np.full(4, np.nan)) == (0.0, 1.0)  # nothing finite: a fixed range, no crash
    lo, hi = viz.stretch_limits(np.full(5, 0.3))
    assert hi > lo  # a flat image still has a non-empty range


def test_ndvi_and_scl_colours():
    img = viz.ndvi_image(np.array([[-0.2, 0.35, 0.9, np.nan]]))
    red, mid, green, nan = (tuple(int(c) for c in img[0, i]) for i in range(4))
    assert red[0] > 150 and red[1] < 60  # bare / water: red
    assert green[1] > 80 and green[0] < 60  # dense vegetation: green
    assert mid[0] > 200 and mid[1] > 200  # the middle of the range: yellow
    assert nan == (0, 0, 0)
    scl = viz.scl_image(np.array([[0, 3, 4, 8, 9, 10]], np.uint8))
    assert [tuple(int(c) for c in px) for px in scl[0]] == [(0, 0, 0), (100, 50, 0), (0, 160, 0), (192, 192, 192),
                                                             (255, 255, 255), (100, 200, 255)]
    assert viz.SCL_CLASSES[9][0] == "Cloud, high probability" and viz.SCL_CLASSES[3][0] == "Cloud shadows"


def test_outline_is_the_inner_ring_of_a_mask():
    m = np.zeros((8, 8), bool)
    m[2:6, 2:6] = True
    edge = viz.outline(m)
    ring = m.copy()
    ring[3:5, 3:5] = False
    assert np.array_equal(edge, ring) and edge.sum() == 12
    assert not viz.outline(np.zeros((4, 4), bool)).any() and not viz.outline(np.ones((4, 4), bool)).any()


def test_error_classes_and_their_colours():
    truth = np.array([[0, 1, 0, 1, 1]], bool)
    pred = np.array([[0, 1, 1, 0, 1]], bool)
    ignore = np.array([[0, 0, 0, 0, 1]], bool)
    assert viz.error_classes(truth, pred, ignore).tolist() == [[0, 1, 2, 3, 4]]
    img = viz.error_image(truth, pred, ignore)
    assert [tuple(int(c) for c in px) for px in img[0]] == list(viz.ERROR_COLOURS.values())
    assert list(viz.ERROR_COLOURS) == ["true negative", "true positive", "false positive", "false negative",
                                       "ignored (not declared)"]


def test_overlay_blend_and_swipe():
    a = np.zeros((2, 4, 3), np.uint8)
    b = np.full((2, 4, 3), 200, np.uint8)
    mask = np.array([[1, 0, 0, 0], [0, 0, 0, 1]], bool)
    o = viz.overlay(a, mask, (255, 0, 0))
    assert tuple(o[0, 0]) == (255, 0, 0) and tuple(o[1, 3]) == (255, 0, 0) and not o[0, 1].any()
    assert tuple(viz.overlay(a, mask, (200, 100, 0), 0.5)[0, 0]) == (100, 50, 0)
    assert (viz.blend(a, b, 0.7) == 140).all()
    s = viz.swipe(a, b, 0.5)
    assert (s[:, 0] == 0).all() and (s[:, 3] == 200).all() and (s[:, 1:3] == 255).all()  # left | divider | right
    assert (viz.swipe(a, b, 0.0) == b).all() and (viz.swipe(a, b, 1.0) == a).all()
