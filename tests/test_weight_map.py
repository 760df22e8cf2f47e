"""The benchmark's weight map: hand-worked tiny labels and a slow, obviously-correct reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import skewnorm
from skimage.measure import label as sk_label
from skimage.morphology import dilation as sk_dilation
from skimage.morphology import disk as sk_disk

from sr_core.errors import PatchValidationError
from sr_core.metrics import disk, parcel_layout, parcel_weight, weight_map


def w_of(n: int) -> float:
    """w(n) written independently: ``linspace(1, 400, 400)[n]`` is the value n + 1, so index int(n) ↔ pdf(n + 1)."""
    if n >= 400:
        return 1.0
    xs = np.arange(1, 401, dtype=float)
    pdf = skewnorm.pdf(xs, a=15, loc=35 - 100 / 3.14, scale=100)
    return 1.0 + skewnorm.pdf(n + 1.0, a=15, loc=35 - 100 / 3.14, scale=100) / pdf.max()


def reference_weight_map(cultivated: np.ndarray, not_declared: np.ndarray | None = None) -> np.ndarray:
    """Slow and literal: whole-image dilation per parcel with skimage, rings averaged, then overrides."""
    lab = sk_label(cultivated, connectivity=2)
    H, W = cultivated.shape
    ring_sum = np.zeros((H, W))
    ring_n = np.zeros((H, W))
    parcel_w = np.ones((H, W))
    for i in range(1, lab.max() + 1):
        parcel = lab == i
        w = w_of(int(parcel.sum()))
        ring = sk_dilation(parcel, sk_disk(2)).astype(bool) & ~parcel
        ring_sum[ring] += 2 * w
        ring_n[ring] += 1
        parcel_w[parcel] = w
    out = np.ones((H, W))
    out[ring_n > 0] = ring_sum[ring_n > 0] / ring_n[ring_n > 0]
    out[lab > 0] = parcel_w[lab > 0]
    if not_declared is not None:
        out[not_declared] = 0
    out[0, :] = out[:, 0] = 0
    out[-2:, :] = out[:, -2:] = 0
    return out


@pytest.mark.parametrize(
    ("n", "quoted"), [(1, 1.44), (10, 1.90), (20, 2.00), (50, 1.91), (100, 1.63), (200, 1.14), (300, 1.01)]
)
def test_parcel_weight_matches_the_quoted_values(n, quoted):
    assert parcel_weight(n) == pytest.approx(quoted, abs=0.006)
    assert parcel_weight(n) == pytest.approx(w_of(n), rel=1e-12)


def test_parcel_weight_peak_and_large_parcels():
    ws = parcel_weight(np.arange(1, 400))
    assert ws.max() == pytest.approx(2.0) and int(np.argmax(ws)) + 1 == 20
    assert parcel_weight(399) > 1.0
    assert parcel_weight(400) == 1.0 and parcel_weight(10_000) == 1.0
    np.testing.assert_array_equal(parcel_weight(np.array([400, 401, 5000])), 1.0)


def test_disk_is_skimage_disk():
    for r in (1, 2, 4):
        np.testing.assert_array_equal(disk(r), sk_disk(r).astype(bool))


def test_single_pixel_parcel_by_hand():
    cult = np.zeros((10, 10), bool)
    cult[4, 5] = True
    w = weight_map(cult)
    w1 = 1.0 + skewnorm.pdf(2.0, 15, 35 - 100 / 3.14, 100) / skewnorm.pdf(np.arange(1, 401.0), 15, 35 - 100 / 3.14, 100).max()
    assert w1 == pytest.approx(1.44, abs=0.005)
    expected = np.ones((10, 10))
    ring = [(-2, 0), (2, 0), (0, -2), (0, 2), (-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    for dr, dc in ring:
        expected[4 + dr, 5 + dc] = 2 * w1
    expected[4, 5] = w1
    expected[0, :] = expected[:, 0] = 0
    expected[-2:, :] = expected[:, -2:] = 0
    assert w.dtype == np.float32 and w.shape == (10, 10)
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    # (2, 5) is on the ring (two rows up); (2, 4) is not (distance √5 > 2)
    assert w[2, 5] == pytest.approx(2 * w1, rel=1e-6) and w[2, 4] == 1.0


def test_diagonal_touch_is_one_parcel():
    cult = np.zeros((12, 12), bool)
    cult[3:5, 3:5] = True
    cult[5:7, 5:7] = True  # touches the first block only at a corner: 8-connectivity joins them
    lay = parcel_layout(cult)
    assert lay.n_parcels == 1 and lay.sizes[1] == 8
    w = weight_map(cult)
    assert w[3, 3] == pytest.approx(w_of(8), rel=1e-6) and w[6, 6] == pytest.approx(w_of(8), rel=1e-6)
    # the notch next to the corner lies in the (single) ring: 2·w(8), not an average of two parcels
    assert w[3, 5] == pytest.approx(2 * w_of(8), rel=1e-6)


def test_two_parcels_with_a_gap_average_their_rings():
    cult = np.zeros((12, 14), bool)
    cult[3:9, 2:6] = True  # 24 px
    cult[3:9, 7:9] = True  # 12 px, one-column gap at col 6
    lay = parcel_layout(cult)
    assert lay.n_parcels == 2 and sorted(lay.sizes[1:].tolist()) == [12, 24]
    wa, wb = w_of(24), w_of(12)
    w = weight_map(cult)
    assert w[5, 3] == pytest.approx(wa, rel=1e-6) and w[5, 7] == pytest.approx(wb, rel=1e-6)
    # gap pixel: in both rings → mean of 2·wa and 2·wb
    assert w[5, 6] == pytest.approx((2 * wa + 2 * wb) / 2, rel=1e-6)
    # two columns right of parcel b only, not within 2 px of parcel a
    assert w[5, 10] == pytest.approx(2 * wb, rel=1e-6)
    # left of parcel a only
    assert w[5, 1] == pytest.approx(2 * wa, rel=1e-6)
    # parcel pixels are never ring pixels even though they are within 2 px of the other parcel
    assert w[5, 5] == pytest.approx(wa, rel=1e-6)
    # far away
    assert w[10, 12] == 0.0 and w[9, 11] == 1.0


def test_three_overlapping_rings():
    cult = np.zeros((11, 11), bool)
    cult[5, 3] = cult[5, 7] = cult[3, 5] = True  # three single pixels; (5, 5) is 2 px from each
    w = weight_map(cult)
    w1 = w_of(1)
    assert w[5, 5] == pytest.approx(2 * w1, rel=1e-6)  # mean of three equal values
    cult2 = cult.copy()
    cult2[7, 5] = cult2[7, 6] = True  # a 2-pixel parcel below
    lay = parcel_layout(cult2)
    assert lay.ring_count[5, 5] == 4
    w = weight_map(cult2)
    assert w[5, 5] == pytest.approx((3 * 2 * w1 + 2 * w_of(2)) / 4, rel=1e-6)


def test_not_declared_and_border_are_zero():
    cult = np.zeros((10, 10), bool)
    cult[0:4, 0:4] = True  # a parcel in the corner: rows/cols 0 are zero whatever the parcel
    nd = np.zeros((10, 10), bool)
    nd[2, 2] = nd[6, 6] = True
    w = weight_map(cult, nd)
    assert w[2, 2] == 0 and w[6, 6] == 0
    assert (w[0, :] == 0).all() and (w[:, 0] == 0).all() and (w[-2:, :] == 0).all() and (w[:, -2:] == 0).all()
    assert w[1, 1] == pytest.approx(w_of(16), rel=1e-6)
    assert w[5, 2] == pytest.approx(2 * w_of(16), rel=1e-6)
    assert w[7, 7] == 1.0


def test_large_parcel_weighs_one_with_ring_two():
    cult = np.zeros((30, 30), bool)
    cult[4:25, 4:25] = True  # 441 px ≥ 400
    w = weight_map(cult)
    assert w[10, 10] == 1.0 and w[2, 10] == 2.0 and w[3, 3] == 2.0 and w[2, 2] == 1.0


def test_empty_and_full_labels():
    w = weight_map(np.zeros((8, 8), bool))
    assert w[1:-2, 1:-2].min() == 1.0 and w.sum() == 5 * 5
    full = weight_map(np.ones((25, 25), bool))
    assert np.all(full[1:-2, 1:-2] == 1.0)  # 625 px ≥ 400, no ring inside the image


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    H, W = rng.integers(12, 40, 2)
    density = rng.uniform(0.2, 0.7)
    cult = rng.random((H, W)) < density
    if seed % 2:  # blocky parcels of many sizes, like rasterised fields
        cult = np.kron(rng.random((H // 3 + 1, W // 3 + 1)) < density, np.ones((3, 3), bool))[:H, :W]
        cult &= rng.random((H, W)) < 0.95
    nd = rng.random((H, W)) < 0.05
    np.testing.assert_allclose(weight_map(cult, nd), reference_weight_map(cult, nd), rtol=1e-6, atol=1e-6)


def test_values_range_and_accepts_int_and_trailing_axis():
    rng = np.random.default_rng(7)
    cult = (rng.random((40, 40)) < 0.4).astype(np.uint8)[..., None]
    w = weight_map(cult)
    assert w.shape == (40, 40) and w.min() >= 0 and w.max() <= 4.0
    np.testing.assert_array_equal(w, weight_map(cult[..., 0].astype(bool)))


def test_bad_input_is_refused_with_a_fix():
    with pytest.raises(PatchValidationError, match="boolean mask"):
        weight_map(np.full((5, 5), 3))
    with pytest.raises(PatchValidationError, match="2-D"):
        weight_map(np.zeros((2, 5, 5), bool))
    with pytest.raises(PatchValidationError, match=r"same 2\.5 m grid"):
        weight_map(np.zeros((5, 5), bool), np.zeros((4, 5), bool))
