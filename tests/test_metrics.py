"""Weighted confusion counts and MCC (checked against scikit-learn), size-class and boundary diagnostics, Scores."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import f1_score, jaccard_score, matthews_corrcoef, precision_score, recall_score

from sr_core.errors import PatchValidationError
from sr_core.metrics import (
    SIZE_CLASSES,
    BoundaryCounts,
    ConfusionCounts,
    Scores,
    UndefinedMetricWarning,
    boundary,
    boundary_counts,
    evaluate,
    evaluate_patch,
    parcel_layout,
    size_class_masks,
    weight_map,
    weighted_mcc,
)

SMALL, MEDIUM, LARGE = SIZE_CLASSES


def _random_case(seed: int, n: int = 500):
    rng = np.random.default_rng(seed)
    t = rng.random(n) < rng.uniform(0.05, 0.95)
    p = np.where(rng.random(n) < rng.uniform(0.5, 0.95), t, ~t)
    w = rng.uniform(0, 4, n) * (rng.random(n) > 0.1)
    return t, p, w


@pytest.mark.parametrize("seed", range(20))
def test_weighted_mcc_agrees_with_sklearn(seed):
    t, p, w = _random_case(seed)
    assert weighted_mcc(t, p, w) == pytest.approx(matthews_corrcoef(t, p, sample_weight=w), abs=1e-9)
    assert weighted_mcc(t, p) == pytest.approx(matthews_corrcoef(t, p), abs=1e-9)


def test_weighted_mcc_on_images_with_the_weight_map():
    rng = np.random.default_rng(3)
    t = np.kron(rng.random((12, 12)) < 0.5, np.ones((4, 4), bool))
    p = np.roll(t, 1, axis=1) | (rng.random(t.shape) < 0.02)
    w = weight_map(t)
    assert weighted_mcc(t, p, w) == pytest.approx(matthews_corrcoef(t.ravel(), p.ravel(), sample_weight=w.ravel()), abs=1e-9)


def test_perfect_inverse_and_large_weights():
    t = np.array([0, 1, 1, 0, 1, 0], bool)
    assert weighted_mcc(t, t, np.full(6, 1e6)) == pytest.approx(1.0, abs=1e-12)
    assert weighted_mcc(t, ~t) == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("t", "p", "w"),
    [
        ([1, 1, 1], [1, 1, 1], None),  # one class in both
        ([1, 1, 1], [0, 1, 0], None),  # one class in truth
        ([0, 1, 0], [1, 1, 1], [1, 2, 3]),  # one class in prediction
        ([0, 1, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]),  # weights leave one class only
    ],
)
def test_undefined_mcc_is_zero_like_sklearn_and_warns(t, p, w):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = matthews_corrcoef(t, p, sample_weight=w)
    assert expected == 0.0
    with pytest.warns(UndefinedMetricWarning):
        assert weighted_mcc(t, p, w) == 0.0
    assert not ConfusionCounts.from_arrays(t, p, w).mcc_defined


def test_empty_and_all_zero_weights_give_zero_and_a_warning():
    with pytest.warns(UndefinedMetricWarning):
        assert weighted_mcc(np.array([], bool), np.array([], bool)) == 0.0
    with pytest.warns(UndefinedMetricWarning):
        assert weighted_mcc([0, 1, 1], [0, 1, 0], [0, 0, 0]) == 0.0
    c = ConfusionCounts()
    assert (c.mcc, c.f1, c.iou, c.precision, c.recall, c.accuracy) == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_bad_inputs_are_refused():
    with pytest.raises(PatchValidationError, match="label grid"):
        weighted_mcc(np.zeros(4), np.zeros(5))
    with pytest.raises(PatchValidationError, match="non-negative"):
        weighted_mcc([0, 1], [0, 1], [1, -1])
    with pytest.raises(PatchValidationError, match="must match"):
        weighted_mcc([0, 1], [0, 1], [1, 1, 1])


@pytest.mark.parametrize("seed", range(5))
def test_other_scores_agree_with_sklearn(seed):
    t, p, w = _random_case(seed + 100)
    c = ConfusionCounts.from_arrays(t, p, w)
    assert c.precision == pytest.approx(precision_score(t, p, sample_weight=w), abs=1e-9)
    assert c.recall == pytest.approx(recall_score(t, p, sample_weight=w), abs=1e-9)
    assert c.f1 == pytest.approx(f1_score(t, p, sample_weight=w), abs=1e-9)
    assert c.iou == pytest.approx(jaccard_score(t, p, sample_weight=w), abs=1e-9)
    assert c.accuracy == pytest.approx(np.sum(w * (t == p)) / w.sum(), abs=1e-12)
    assert c.total == pytest.approx(w.sum())


def test_counts_pool_by_addition_like_concatenation():
    cases = [_random_case(s) for s in range(4)]
    pooled = sum((ConfusionCounts.from_arrays(t, p, w) for t, p, w in cases), ConfusionCounts())
    also = sum(ConfusionCounts.from_arrays(t, p, w) for t, p, w in cases)  # starting from 0 works too
    t, p, w = (np.concatenate(x) for x in zip(*cases, strict=True))
    assert pooled.mcc == pytest.approx(matthews_corrcoef(t, p, sample_weight=w), abs=1e-9)
    assert also == pooled


def test_mask_restricts_counts():
    t = np.array([1, 1, 0, 0], bool)
    p = np.array([1, 0, 1, 0], bool)
    c = ConfusionCounts.from_arrays(t, p, [1, 2, 3, 4], mask=[True, True, False, True])
    assert (c.tp, c.fn, c.fp, c.tn) == (1, 2, 0, 4)


# -- size classes --------------------------------------------------------------------------------------------------
def _three_parcels():
    cult = np.zeros((60, 60), bool)
    cult[5:8, 5:8] = True  # 9 px: small
    cult[5:15, 30:40] = True  # 100 px: medium
    cult[25:50, 20:45] = True  # 625 px: large
    return cult


def test_size_class_membership():
    cult = _three_parcels()
    m = size_class_masks(parcel_layout(cult))
    assert set(m) == set(SIZE_CLASSES)
    assert m[SMALL][6, 6] and not m[MEDIUM][6, 6] and not m[LARGE][6, 6]  # parcel pixel: own class only
    assert m[SMALL][4, 6] and not m[LARGE][4, 6]  # ring of the small parcel
    assert m[LARGE][23, 30] and not m[SMALL][23, 30] and not m[MEDIUM][23, 30]  # ring of the large parcel
    assert m[LARGE][35, 35] and not m[MEDIUM][35, 35] and not m[SMALL][35, 35]  # inside the large parcel
    assert m[SMALL][55, 5] and m[MEDIUM][55, 5] and m[LARGE][55, 5]  # shared background
    # every pixel belongs to at least one class; parcels to exactly one
    stack = np.stack([m[k] for k in SIZE_CLASSES])
    assert stack.any(axis=0).all()
    assert (stack.sum(axis=0)[cult] == 1).all()


def test_size_class_mcc_separates_missed_small_parcels():
    cult = _three_parcels()
    pred = cult.copy()
    pred[5:8, 5:8] = False  # the small parcel is missed, the rest is perfect
    s = evaluate(cult, pred)
    mccs = s.size_class_mcc()
    assert mccs[MEDIUM] == pytest.approx(1.0) and mccs[LARGE] == pytest.approx(1.0)
    assert mccs[SMALL] == 0.0  # no predicted positive among the small class's pixels → undefined → 0
    assert s.parcels == {SMALL: 1, MEDIUM: 1, LARGE: 1}
    # independent check of the large class's counts: its pixels are the large parcel, its ring and the background
    w = weight_map(cult)
    lay = parcel_layout(cult)
    member = np.ones_like(cult)
    member[5:8, 5:8] = False
    member[5:15, 30:40] = False
    for r0, r1, c0, c1 in ((5, 8, 5, 8), (5, 15, 30, 40)):  # ring pixels of the small and medium parcels
        block = np.zeros_like(cult)
        block[r0:r1, c0:c1] = True
        ring = ndimage.binary_dilation(block, structure=np.array(
            [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]], bool)) & ~block
        member &= ~ring
    assert lay.n_parcels == 3
    large = s.size_classes[LARGE]
    assert large.tp == pytest.approx(w[cult & member].sum(), rel=1e-9)
    assert large.tn == pytest.approx(w[~cult & member].sum(), rel=1e-9)


def test_size_class_absent_is_none():
    cult = np.zeros((30, 30), bool)
    cult[5:25, 5:25] = True  # 400 px: large only
    s = evaluate(cult, cult)
    assert s.size_class_mcc()[SMALL] is None and s.size_class_mcc()[LARGE] == pytest.approx(1.0)


# -- boundary F-score ---------------------------------------------------------------------------------------------
def _brute_force_boundary(t, p, tol):
    tb, pb = np.argwhere(boundary(t)), np.argwhere(boundary(p))
    d = np.sqrt(((tb[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return int((d.min(axis=0) <= tol).sum()), len(pb), int((d.min(axis=1) <= tol).sum()), len(tb)


def test_boundary_of_a_square():
    m = np.zeros((12, 12), bool)
    m[2:8, 3:9] = True
    b = boundary(m)
    assert b.sum() == 20 and not b[4, 5] and b[2, 5] and b[4, 3]
    assert not boundary(np.ones((5, 5), bool)).any()  # the image edge is not a boundary


def test_boundary_f_of_shifted_squares_by_hand():
    t = np.zeros((30, 30), bool)
    t[10:20, 10:20] = True  # 36 boundary pixels
    one = np.roll(t, 1, axis=1)
    two = np.roll(t, 2, axis=1)
    b1 = boundary_counts(t, one)
    assert all(b1[k].f1 == pytest.approx(1.0) for k in (1, 2, 4))
    b2 = boundary_counts(t, two)
    # shifted right by 2 (predicted cols 12–21 vs true 10–19): at 1 px, unmatched predicted boundary pixels are the
    # whole right column (10, 2 px from col 19) and the left column's rows 12–17 (6; rows 11 and 18 touch the true
    # top/bottom rows) → 20 of 36 matched; the truth's unmatched pixels mirror these
    assert b2[1].precision == pytest.approx(20 / 36) and b2[1].recall == pytest.approx(20 / 36)
    assert b2[1].f1 == pytest.approx(20 / 36)
    assert b2[2].f1 == pytest.approx(1.0) and b2[4].f1 == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(4))
def test_boundary_counts_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    t = np.kron(rng.random((6, 6)) < 0.5, np.ones((4, 4), bool))
    p = np.kron(rng.random((8, 8)) < 0.5, np.ones((3, 3), bool))
    got = boundary_counts(t, p)
    for k in (1, 2, 4):
        assert (got[k].matched_pred, got[k].n_pred, got[k].matched_true, got[k].n_true) == _brute_force_boundary(t, p, k)


def test_boundary_undefined_cases():
    empty = np.zeros((10, 10), bool)
    sq = empty.copy()
    sq[3:6, 3:6] = True
    assert boundary_counts(empty, empty)[1].f1 is None
    assert boundary_counts(sq, empty)[2].f1 == 0.0 and boundary_counts(sq, empty)[2].recall == 0.0
    assert boundary_counts(empty, sq)[4].f1 == 0.0
    pooled = BoundaryCounts(3, 4, 2, 4) + BoundaryCounts(1, 4, 2, 4)
    assert pooled.precision == 0.5 and pooled.recall == 0.5 and pooled.f1 == 0.5


# -- evaluate / Scores ---------------------------------------------------------------------------------------------
def test_evaluate_perfect_and_known_corruption():
    rng = np.random.default_rng(5)
    t = np.kron(rng.random((10, 10)) < 0.5, np.ones((5, 5), bool))
    nd = np.zeros_like(t)
    nd[:10, :10] = True
    s = evaluate(t, t, nd)
    assert s.wmcc == pytest.approx(1.0) and s.mcc == pytest.approx(1.0) and s.f1 == 1.0 and s.iou == 1.0
    assert s.warnings == ()
    p = t.copy()
    p[20:30, :] = ~p[20:30, :]
    s = evaluate(t, p, nd, name="x")
    w = weight_map(t, nd)
    assert s.wmcc == pytest.approx(matthews_corrcoef(t.ravel(), p.ravel(), sample_weight=w.ravel()), abs=1e-9)
    scored = w.ravel() > 0
    assert s.mcc == pytest.approx(matthews_corrcoef(t.ravel()[scored], p.ravel()[scored]), abs=1e-9)
    assert s.iou == pytest.approx(jaccard_score(t.ravel()[scored], p.ravel()[scored]), abs=1e-9)
    d = s.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["name"] == "x" and d["weighted_mcc"] == s.wmcc and set(d["boundary_f1"]) == {"1", "2", "4"}


def test_evaluate_empty_truth_reports_a_warning_not_nan():
    t = np.zeros((16, 16), bool)
    s = evaluate(t, t)
    assert s.wmcc == 0.0 and any("undefined" in w for w in s.warnings)
    json.dumps(s.to_dict(), allow_nan=False)


def test_scores_pool_equals_concatenated_pixels():
    rng = np.random.default_rng(9)
    ts = [np.kron(rng.random((8, 8)) < 0.5, np.ones((4, 4), bool)) for _ in range(3)]
    ps = [np.roll(t, 1, axis=0) for t in ts]
    scores = [evaluate(t, p, name=f"p{i}") for i, (t, p) in enumerate(zip(ts, ps, strict=True))]
    pooled = Scores.pool(scores)
    ws = [weight_map(t) for t in ts]
    expected = matthews_corrcoef(np.concatenate([t.ravel() for t in ts]), np.concatenate([p.ravel() for p in ps]),
                                 sample_weight=np.concatenate([w.ravel() for w in ws]))
    assert pooled.wmcc == pytest.approx(expected, abs=1e-9)
    assert pooled.n_patches == 3 and pooled.name == "pooled"
    assert pooled.boundary[2].n_true == sum(s.boundary[2].n_true for s in scores)
    assert Scores.pool(scores[:1]).name == "pooled"
    with pytest.raises(ValueError, match="no scores"):
        Scores.pool([])


def test_evaluate_without_diagnostics_and_with_given_weights():
    rng = np.random.default_rng(2)
    t = np.kron(rng.random((6, 6)) < 0.5, np.ones((4, 4), bool))
    p = np.roll(t, 1, axis=1)
    full = evaluate(t, p)
    quick = evaluate(t, p, weights=weight_map(t), diagnostics=False)
    assert quick.wmcc == full.wmcc and quick.size_classes == {} and quick.boundary == {}


def test_evaluate_accepts_a_prediction_and_checks_shape(small_patch):
    from sr_core.prediction import Prediction

    pred = Prediction(proba=small_patch.cultivated.astype(np.float32), bbox=small_patch.bbox)
    s = evaluate_patch(small_patch, pred)
    assert s.wmcc == pytest.approx(1.0)
    with pytest.raises(PatchValidationError, match="label grid"):
        evaluate(small_patch.cultivated, np.zeros((3, 3)))
    with pytest.raises(PatchValidationError, match="boolean mask"):
        evaluate(small_patch.cultivated, np.full(small_patch.label_shape, 0.7))  # probabilities, not a 0/1 map
    with pytest.raises(PatchValidationError, match="no CULTIVATED"):
        evaluate_patch(small_patch.replace(cultivated=None, not_declared=None), pred)
