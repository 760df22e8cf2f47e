"""The hallucination inspector's measures, each on constructed cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REAL_L1C, need

from sr_core.errors import PatchValidationError
from sr_core.geo import BBox
from sr_core.inspect import (
    DISTANCE_BINS,
    Outcome,
    answer_from_model,
    answer_from_prediction,
    block_mean,
    boundary_distance,
    confidence_uncertainty,
    consistency,
    date_subsets,
    departure_map,
    inspect_patch,
    mixed_blocks,
    outcome_counts,
    outcome_map,
    reliability,
    repeat_up,
    resolution_counts,
    structure,
    ten_metre_answer,
    uncertainty_errors,
)
from sr_core.inspect.core import format_counts
from sr_core.metrics import parcel_layout, weight_map_from_layout
from sr_core.prediction import Prediction

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def tiny_model():
    from sr_core.model import SRNet, SRNetConfig

    torch.manual_seed(0)
    return SRNet(SRNetConfig.preset("tiny"))


@pytest.fixture(scope="module")
def sim_patch():
    from sr_core.simulate import simulate_patch

    return simulate_patch(15, size=32, split="test")  # 46 % cultivated, 566 gap pixels, 20 dates


ROWS = slice(5, 41)  #: rows of both parcels of two_parcels()
GAP = (21, 22)  #: the gap's columns


def two_parcels(size: int = 48) -> np.ndarray:
    """Two parcels not aligned to the 4 × 4 grid, 36 rows high, separated by a 2 px gap (cols 21–22)."""
    t = np.zeros((size, size), bool)
    t[ROWS, 3:21] = True
    t[ROWS, 23:45] = True
    return t


# ---------------------------------------------------------------------------------------------------------------
# block helpers and the 10 m answer
# ---------------------------------------------------------------------------------------------------------------
def test_block_mean_and_repeat_are_inverse_on_blocky_maps():
    rng = np.random.default_rng(0)
    a10 = rng.uniform(size=(5, 7)).astype(np.float32)
    np.testing.assert_allclose(block_mean(repeat_up(a10)), a10, rtol=1e-6)
    with pytest.raises(PatchValidationError, match="4 × 4"):
        block_mean(np.zeros((10, 12)))


def test_mixed_blocks_marks_only_blocks_holding_both_classes():
    t = np.zeros((8, 8), bool)
    t[0:4, 0:4] = True  # a pure block
    t[4, 5] = True  # one pixel in the block rows 4–7, cols 4–7
    m = mixed_blocks(t)
    assert m[4:8, 4:8].all() and m.sum() == 16


def test_model_answer_is_the_thresholded_block_mean():
    t = two_parcels()
    ans = answer_from_model(t.astype(np.float32), threshold=0.5)
    assert not ans.independent
    expected = repeat_up(block_mean(t) > 0.5)
    np.testing.assert_array_equal(ans.binary, expected)
    assert ans.proba10.shape == (12, 12)


def test_answer_from_another_predictor_keeps_its_map():
    rng = np.random.default_rng(4)
    proba = rng.uniform(size=(8, 12)).astype(np.float32)
    pred = Prediction(proba, BBox(0.0, 0.0, 30.0, 20.0), threshold=0.6)
    ans = answer_from_prediction(pred)
    assert ans.independent
    np.testing.assert_array_equal(ans.binary, proba > 0.6)
    np.testing.assert_allclose(ans.proba10, proba.reshape(2, 4, 3, 4).mean(axis=(1, 3)), rtol=1e-6)


def test_auto_answer_uses_the_pixel_baseline_when_it_runs(monkeypatch, small_patch):
    import sr_core.baselines as baselines

    proba = np.full(small_patch.label_shape, 0.8, np.float32)

    def fake_pixel(patch):
        return Prediction(proba, patch.bbox, patch.name, predictor="baseline:pixel")

    monkeypatch.setattr(baselines, "get_baseline", lambda name: fake_pixel)
    ans, note = ten_metre_answer(small_patch, np.zeros(small_patch.label_shape, np.float32), which="auto")
    assert ans.independent and note is None and ans.binary.all()
    ans, _ = ten_metre_answer(small_patch, np.zeros(small_patch.label_shape, np.float32), which="model")
    assert not ans.independent and not ans.binary.any()


def test_auto_answer_falls_back_with_a_note_when_the_pixel_baseline_is_missing(monkeypatch, small_patch):
    import sr_core.baselines as baselines
    from sr_core.errors import ModelError

    def missing(name):
        raise ModelError("the 'pixel' baseline is not part of this installation")

    monkeypatch.setattr(baselines, "get_baseline", missing)
    ans, note = ten_metre_answer(small_patch, np.ones(small_patch.label_shape, np.float32))
    assert not ans.independent and "unavailable" in note and ans.binary.all()
    with pytest.raises(ModelError):
        ten_metre_answer(small_patch, np.ones(small_patch.label_shape, np.float32), which="pixel")


# ---------------------------------------------------------------------------------------------------------------
# improvement / hallucination / omission
# ---------------------------------------------------------------------------------------------------------------
def _counts(pred, answer, truth, weights=None):
    w = np.ones(truth.shape) if weights is None else weights
    codes = outcome_map(pred, answer, truth, w > 0)
    return codes, outcome_counts(codes, answer, truth, w)


def test_prediction_equal_to_truth_has_no_hallucination_or_omission():
    t = two_parcels()
    a = answer_from_model(t.astype(np.float32)).binary
    _, c = _counts(t, a, t)
    wrong_at_10m = int((a != t).sum())
    assert wrong_at_10m > 0
    assert c.hallucinated() == 0 and c.counts[Outcome.OMISSION] == 0
    assert c.counts[Outcome.IMPROVEMENT] == wrong_at_10m
    assert c.hallucination_rate() == 0.0 and c.omission_rate() == 0.0
    assert sum(c.fractions().values()) == pytest.approx(1.0)
    assert c.net_gain() == pytest.approx(wrong_at_10m / t.size)


def test_prediction_equal_to_the_10m_answer_omits_all_sub_10m_detail():
    t = two_parcels()
    a = answer_from_model(t.astype(np.float32)).binary
    codes, c = _counts(a, a, t)
    assert c.departures() == 0 and c.hallucination_rate() is None
    assert c.counts[Outcome.OMISSION] == int((a != t).sum())  # every 10 m error lies in a mixed block here
    assert c.counts[Outcome.SHARED_ERROR] == 0
    assert c.omission_rate() == 1.0
    np.testing.assert_array_equal(codes == Outcome.OMISSION, a != t)


def test_invented_parcels_are_counted_as_hallucinations():
    t = two_parcels()
    a = answer_from_model(t.astype(np.float32)).binary
    p = t.copy()
    p[42:44, 5:7] = True  # a 2 × 2 invented parcel (too small to change the 10 m majority)
    p[1:3, 29:31] = True
    assert not a[42:44, 5:7].any() and not a[1:3, 29:31].any()
    _, c = _counts(p, a, t)
    assert c.counts[Outcome.HALLUCINATION_ADDED] == 8
    assert c.counts[Outcome.HALLUCINATION_REMOVED] == 0
    improvement = int((a != t).sum())
    assert c.hallucination_rate() == pytest.approx(8 / (improvement + 8))
    # erasing cultivated land the 10 m answer had is the other kind of hallucination
    p2 = t.copy()
    p2[10:12, 8:10] = False
    _, c2 = _counts(p2, a, t)
    assert c2.counts[Outcome.HALLUCINATION_REMOVED] == 4


def test_whole_pixel_errors_are_shared_not_omitted():
    t = two_parcels()
    a = np.zeros_like(t)  # a 10 m answer that misses both parcels entirely
    _, c = _counts(a, a, t)
    mixed = mixed_blocks(t)
    assert c.counts[Outcome.SHARED_ERROR] == int((t & ~mixed).sum())
    assert c.counts[Outcome.OMISSION] == int((t & mixed).sum())
    assert c.omission_rate() == 1.0


def test_unscored_pixels_are_ignored_and_weights_apply():
    t = two_parcels()
    a = answer_from_model(t.astype(np.float32)).binary
    w = np.ones(t.shape)
    w[:, :24] = 0.0  # left parcel not scored
    w[:, 24:] = 2.0
    codes, c = _counts(t, a, t, w)
    assert (codes[:, :24] == Outcome.IGNORED).all()
    assert c.total() == t[:, 24:].size and c.total(weighted=True) == 2 * t[:, 24:].size
    assert c.counts[Outcome.IMPROVEMENT] == int((a != t)[:, 24:].sum())


def test_outcome_counts_pool_by_adding():
    t = two_parcels()
    a = answer_from_model(t.astype(np.float32)).binary
    _, c1 = _counts(t, a, t)
    _, c2 = _counts(a, a, t)
    pooled = c1 + c2
    np.testing.assert_array_equal(pooled.counts, c1.counts + c2.counts)
    assert pooled.omission_rate() == pytest.approx(0.5)


def test_label_free_departure_map():
    a = np.zeros((8, 8), bool)
    a[:4] = True
    p = a.copy()
    p[0, 0] = False
    p[7, 7] = True
    d = departure_map(p, a)
    assert d[7, 7] == 1 and d[0, 0] == 2 and (d > 0).sum() == 2


# ---------------------------------------------------------------------------------------------------------------
# consistency with the 10 m evidence
# ---------------------------------------------------------------------------------------------------------------
def test_consistency_flags_only_blocks_that_contradict_the_evidence():
    ev = np.array([[0.1, 0.9], [0.9, 0.1]], np.float32)
    binary = repeat_up(ev > 0.5)
    cons = consistency(binary.astype(np.float32), binary, ev, margin=0.5)
    assert cons.counts.contradicting == 0
    np.testing.assert_allclose(np.abs(cons.gap), 0.1, atol=1e-6)
    flipped = binary.copy()
    flipped[0:4, 0:4] = True  # paints a 10 m pixel the evidence says is 90 % non-cultivated
    flipped[4:6, 0:4] = False  # removes half of a 90 % cultivated pixel: gap 0.4, within the margin
    cons = consistency(flipped.astype(np.float32), flipped, ev, margin=0.5)
    assert cons.counts.contradicting == 1 and cons.contradicts[0, 0]
    assert cons.counts.contradiction_share == 0.25
    assert cons.gap[1, 0] == pytest.approx(-0.4)
    assert cons.counts.mean_abs_proba_gap == pytest.approx(np.mean([0.9, 0.1, 0.4, 0.1]))
    dep = consistency(flipped.astype(np.float32), flipped, ev, independent=False)
    assert dep.counts.mean_abs_proba_gap is None


# ---------------------------------------------------------------------------------------------------------------
# reliability and uncertainty
# ---------------------------------------------------------------------------------------------------------------
def test_reliability_of_a_calibrated_and_an_overconfident_probability():
    t = np.zeros((10, 10), bool)
    t.flat[:30] = True
    rel = reliability(np.full(t.shape, 0.3), t)
    assert rel.ece == pytest.approx(0.0, abs=1e-12)
    assert rel.brier == pytest.approx(0.3 * 0.7 ** 2 + 0.7 * 0.3 ** 2)
    t2 = np.zeros((10, 10), bool)
    t2.flat[:50] = True
    over = reliability(np.full(t2.shape, 0.9), t2)
    assert over.ece == pytest.approx(0.4) and over.mce == pytest.approx(0.4)
    curve = over.curve()
    assert [r["n"] for r in curve].count(100.0) == 1 and curve[9]["frequency"] == pytest.approx(0.5)


def test_reliability_ece_matches_a_direct_computation_and_pools():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=(40, 40))
    t = rng.uniform(size=p.shape) < p ** 2
    rel = reliability(p, t)
    idx = np.minimum((p.ravel() * 10).astype(int), 9)
    direct = sum(abs(t.ravel()[idx == b].mean() - p.ravel()[idx == b].mean()) * (idx == b).mean() for b in range(10))
    assert rel.ece == pytest.approx(direct)
    both = reliability(p[:20], t[:20]) + reliability(p[20:], t[20:])
    assert both.ece == pytest.approx(rel.ece) and both.brier == pytest.approx(rel.brier)
    mask = np.zeros(p.shape, bool)
    mask[:5] = True
    assert reliability(p, t, mask).total == mask.sum()


def test_uncertainty_that_separates_errors_has_auc_one():
    pred = np.zeros((20, 20), bool)
    truth = np.zeros_like(pred)
    truth[:4] = True  # 80 wrong pixels
    unc = np.where(truth != pred, 0.3, 0.01)
    u = uncertainty_errors(unc, pred, truth)
    assert u.auc == pytest.approx(1.0) and u.error_rate == pytest.approx(0.2)
    hi, lo = u.top_share_error(0.2)
    assert hi == 1.0 and lo == 0.0
    assert uncertainty_errors(0.31 - unc, pred, truth).auc == pytest.approx(0.0)
    assert uncertainty_errors(np.full(pred.shape, 0.05), pred, truth).auc == pytest.approx(0.5)
    rows = u.bins(5)
    assert rows[-1]["error_rate"] == 1.0 and rows[0]["error_rate"] == 0.0
    assert sum(r["n"] for r in rows) == pred.size
    assert uncertainty_errors(unc, truth, truth).auc is None  # no errors: undefined


def test_uncertainty_auc_matches_sklearn_on_continuous_values():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    truth = rng.uniform(size=(60, 60)) < 0.5
    wrong = rng.uniform(size=truth.shape) < 0.2
    pred = truth ^ wrong
    unc = np.clip(rng.normal(0.05 + 0.05 * wrong, 0.03), 0, 0.5)
    u = uncertainty_errors(unc, pred, truth)
    assert u.auc == pytest.approx(roc_auc_score(wrong.ravel(), unc.ravel()), abs=0.01)


def test_confidence_uncertainty_peaks_at_the_threshold():
    u = confidence_uncertainty(np.array([[0.0, 0.4, 0.5, 0.9]]), threshold=0.4)
    np.testing.assert_allclose(u, [[0.1, 0.5, 0.4, 0.0]], atol=1e-6)


def test_date_subsets_are_sorted_distinct_halves_and_reproducible():
    subs = date_subsets(10, members=4, seed=3)
    assert len(subs) == 4 and all(len(s) == 5 and s == sorted(set(s)) for s in subs)
    assert subs == date_subsets(10, members=4, seed=3)
    assert len({tuple(s) for s in subs}) > 1
    with pytest.raises(PatchValidationError, match="at least 2 dates"):
        date_subsets(1, 3)


# ---------------------------------------------------------------------------------------------------------------
# effective resolution
# ---------------------------------------------------------------------------------------------------------------
def test_boundary_distance_counts_pixels_from_the_edge():
    t = np.zeros((6, 20), bool)
    t[:, :10] = True
    d = boundary_distance(t)
    np.testing.assert_array_equal(d[0, 7:13], [2, 1, 0, 0, 1, 2])
    assert np.isinf(boundary_distance(np.zeros((5, 5), bool))).all()


def _resolution(truth, pred):
    layout = parcel_layout(truth)
    w = weight_map_from_layout(layout)
    return resolution_counts(truth, pred, layout, w), layout, w


def test_gap_pixels_and_gap_recall():
    t = two_parcels()
    r, _, w = _resolution(t, t)
    assert r.gaps.n == 36 * 2  # the parcels' 36 rows × the 2 gap columns
    assert r.gaps.recall == 1.0 and r.gaps.recall_weighted == 1.0
    merged = t.copy()
    merged[ROWS, GAP[0]:GAP[1] + 1] = True
    assert _resolution(t, merged)[0].gaps.recall == 0.0
    half = t.copy()
    half[ROWS, GAP[0]] = True
    assert _resolution(t, half)[0].gaps.recall == pytest.approx(0.5)
    assert r.gaps.n_w == pytest.approx(w[ROWS, GAP[0]:GAP[1] + 1].sum())
    assert np.all(w[ROWS, GAP[0]:GAP[1] + 1] == 2)  # gaps weigh 2·w, w = 1 for these large parcels


def test_perfect_map_is_right_at_every_distance():
    t = two_parcels()
    r, _, _ = _resolution(t, t)
    assert [row["accuracy"] for row in r.distance_table()] == [1.0] * len(DISTANCE_BINS)


def test_blocky_10m_map_errs_only_next_to_boundaries():
    t = two_parcels()
    a = answer_from_model(t.astype(np.float32)).binary
    r, _, _ = _resolution(t, a)
    acc = {row["distance_px"]: row["accuracy"] for row in r.distance_table()}
    assert acc["0"] < 1.0
    assert acc["2"] == acc["3"] == acc["4-7"] == acc["8+"] == 1.0


def test_object_detection_by_parcel_size():
    t = np.zeros((32, 32), bool)
    t[4:7, 4:7] = True  # 9 px
    t[12:20, 12:20] = True  # 64 px
    p = np.zeros_like(t)
    p[12:20, 12:16] = True  # half of the big one: detected
    r, _, _ = _resolution(t, p)
    rows = {row["size"].split(" ")[0]: row for row in r.object_table()}
    assert rows["<16"]["parcels"] == 1 and rows["<16"]["detected"] == 0
    assert rows["50-99"]["parcels"] == 1 and rows["50-99"]["detected"] == 1
    pooled = r + r
    assert pooled.objects[r.object_table()[2]["size"]] == (2, 2)


# ---------------------------------------------------------------------------------------------------------------
# structure of a painted map
# ---------------------------------------------------------------------------------------------------------------
def test_structure_of_known_maps():
    b = np.zeros((32, 32), bool)
    b[8:16, 8:16] = True  # aligned with the 10 m grid
    b[0, 30:32] = True  # a 2 px speck: not a parcel
    s = structure(b)
    assert s.n_parcels == 1 and s.cultivated_fraction == pytest.approx(66 / 1024)
    assert s.edge_density == pytest.approx((4 * 8 + 3) / (2 * 32 * 31))
    assert s.split_10m_share == pytest.approx(1 / 64)  # only the speck's block is split
    shifted = np.zeros_like(b)
    shifted[10:18, 10:18] = True  # off the grid: touches 3 × 3 blocks, the centre one full
    assert structure(shifted).split_10m_share == pytest.approx(8 / 64)
    assert structure(np.zeros((8, 8), bool)).n_parcels == 0


# ---------------------------------------------------------------------------------------------------------------
# probes
# ---------------------------------------------------------------------------------------------------------------
def test_clouded_and_constant_probes_carry_no_field_information(sim_patch):
    from sr_core.inspect.probes import clouded_probe, constant_probe, median_clear_spectrum

    c = clouded_probe(sim_patch)
    assert c.cloud_mask.all() and (c.cloud_prob == 1).all() and not c.valid_mask().any()
    assert c.cultivated is None and c.bands.mean() > 0.3
    k = constant_probe(sim_patch)
    spec = median_clear_spectrum(sim_patch)
    assert np.all(k.bands == spec) and k.valid_mask().all()


def test_date_and_pixel_shuffles(sim_patch):
    from sr_core.inspect.probes import dates_shuffled_probe, pixels_shuffled_probe

    d = dates_shuffled_probe(sim_patch, seed=1)
    assert np.array_equal(d.bands, sim_patch.bands)
    assert sorted(d.timestamps) == sorted(sim_patch.timestamps)
    assert all(a != b for a, b in zip(d.timestamps, sim_patch.timestamps, strict=True))
    s = pixels_shuffled_probe(sim_patch, seed=1)
    T, H, W = sim_patch.shape
    orig = sim_patch.bands.reshape(T, H * W, 12)
    shuf = s.bands.reshape(T, H * W, 12)
    # one permutation for all dates: find it from the first date, check it explains every date and layer
    key = {orig[0, i].tobytes(): i for i in range(H * W)}
    perm = np.array([key[shuf[0, j].tobytes()] for j in range(H * W)])
    assert not np.array_equal(perm, np.arange(H * W))
    np.testing.assert_array_equal(shuf, orig[:, perm])
    np.testing.assert_array_equal(s.cloud_mask.reshape(T, -1), sim_patch.cloud_mask.reshape(T, -1)[:, perm])


def test_forest_probe_is_forest_only():
    from sr_core.inspect.probes import FOREST_CODE, forest_probe

    f = forest_probe(16)
    assert f.shape[1:] == (16, 16) and (f.all_polys == FOREST_CODE).all() and not f.cultivated.any()
    v = f.valid_mask()
    assert f.ndvi()[v].mean() > 0.5  # dense canopy


def test_run_probes_with_a_tiny_model(sim_patch, tiny_model):
    from sr_core.inspect import run_probes

    res = run_probes(sim_patch, model=tiny_model, device="cpu", names=["clouded", "pixels_shuffled", "dates_shuffled"],
                     original=np.zeros(sim_patch.label_shape, bool))
    assert [r.name for r in res] == ["clouded", "pixels_shuffled", "dates_shuffled"]
    for r in res:
        assert r.error is None and 0.0 <= r.cultivated_fraction <= 1.0 and r.binary.shape == sim_patch.label_shape
    assert res[2].agreement_with_original == pytest.approx(1.0 - res[2].cultivated_fraction)


def test_missing_real_forest_is_reported_not_raised(sim_patch, tiny_model, tmp_path, monkeypatch):
    from sr_core.inspect import run_probes

    monkeypatch.setenv("SR_SHARED_DATA", str(tmp_path))
    (r,) = run_probes(sim_patch, model=tiny_model, device="cpu", names=["forest_real"])
    assert r.structure is None and "absent" in r.error


def test_real_forest_probe(sim_patch, tiny_model):
    from sr_core.inspect import run_probes

    need(REAL_L1C)
    (r,) = run_probes(sim_patch, model=tiny_model, device="cpu", names=["forest_real"])
    assert r.error is None and r.binary.shape == (404, 400)


# ---------------------------------------------------------------------------------------------------------------
# everything together
# ---------------------------------------------------------------------------------------------------------------
def test_inspect_patch_with_a_perfect_prediction(sim_patch):
    t = sim_patch.cultivated
    pred = Prediction(t.astype(np.float32), sim_patch.bbox, sim_patch.name, predictor="oracle")
    ins = inspect_patch(sim_patch, prediction=pred, answer="model")
    h = ins.counts.headline()
    assert h["weighted_mcc"] == pytest.approx(1.0)
    assert h["hallucination_fraction"] == 0.0 and h["omission_fraction"] == 0.0
    assert h["gap_recall"] == 1.0 and h["boundary_f1_1px"] == 1.0 and h["ece"] == 0.0
    assert h["confidence_error_auc"] is None  # no errors to detect
    assert ins.uncertainty is None and ins.counts.uncertainty is None


def test_inspect_patch_with_the_10m_answer_and_with_invented_parcels(sim_patch):
    t = sim_patch.cultivated
    blocky = repeat_up(block_mean(t) > 0.5)
    pred = Prediction(blocky.astype(np.float32), sim_patch.bbox, sim_patch.name, predictor="upsampled")
    h = inspect_patch(sim_patch, prediction=pred, answer="model").counts.headline()
    assert h["departure_fraction"] == 0.0 and h["hallucination_fraction"] == 0.0 and h["omission_rate"] == 1.0
    assert h["omission_fraction"] > 0
    invented = t.copy()
    bg = np.argwhere(block_mean(t[:, :]) == 0)  # 10 m pixels of pure background
    bg = bg[(bg[:, 0] > 0) & (bg[:, 1] > 0) & (bg[:, 0] < t.shape[0] // 4 - 1) & (bg[:, 1] < t.shape[1] // 4 - 1)][:5]
    for r, c in bg:
        invented[4 * r + 1:4 * r + 3, 4 * c + 1:4 * c + 3] = True  # 2 × 2 px inside a background 10 m pixel
    pred = Prediction(invented.astype(np.float32), sim_patch.bbox, sim_patch.name, predictor="inventive")
    ins = inspect_patch(sim_patch, prediction=pred, answer="model")
    assert ins.counts.outcomes.counts[Outcome.HALLUCINATION_ADDED] == 4 * len(bg)
    assert ins.counts.outcomes.hallucinated() == 4 * len(bg)


def test_errors_of_a_map_that_follows_the_sown_edges_are_all_the_labels(sim_patch, small_patch):
    """On a simulated patch the inspector knows the sown edges: a map equal to the labels redrawn from them is wrong
    only where the declared labels' digitising offset moves an edge, and all of those errors are attributed to the
    label; the perfect map has none; a map with invented parcels has hallucinations none of which are the label's;
    patches from elsewhere get no attribution."""
    from sr_core.oracles import sown_oracle

    sown = sown_oracle(sim_patch)
    ins = inspect_patch(sim_patch, prediction=sown, answer="model")
    n, k = ins.counts.sown["wrong"]
    assert n > 0 and k == pytest.approx(n) and ins.counts.headline()["errors_on_label_offset"] == pytest.approx(1.0)
    t = sim_patch.cultivated
    perfect = inspect_patch(sim_patch, prediction=Prediction(t.astype(np.float32), sim_patch.bbox, sim_patch.name),
                            answer="model")
    assert perfect.counts.sown["wrong"] == (0.0, 0.0) and perfect.counts.headline()["errors_on_label_offset"] is None
    invented = np.asarray(sown.binary, bool).copy()
    bg = np.argwhere(block_mean(t) == 0)
    bg = bg[(bg[:, 0] > 0) & (bg[:, 1] > 0) & (bg[:, 0] < t.shape[0] // 4 - 1) & (bg[:, 1] < t.shape[1] // 4 - 1)][:5]
    for r, c in bg:
        invented[4 * r + 1:4 * r + 3, 4 * c + 1:4 * c + 3] = True
    ins2 = inspect_patch(sim_patch, prediction=Prediction(invented.astype(np.float32), sim_patch.bbox, sim_patch.name),
                         answer="model")
    n_h, k_h = ins2.counts.sown["hallucination"]
    assert 0 <= k_h < n_h and ins2.counts.sown_share("hallucination") == pytest.approx(k_h / n_h)
    pooled = ins.counts + ins2.counts
    assert pooled.sown["wrong"][0] == pytest.approx(n + ins2.counts.sown["wrong"][0])
    assert "digitising offset" in "\n".join(format_counts(ins.counts))
    other = inspect_patch(small_patch, prediction=Prediction(np.zeros(small_patch.label_shape, np.float32),
                                                             small_patch.bbox, small_patch.name), answer="model")
    assert other.counts.sown is None and other.counts.headline()["errors_on_label_offset"] is None


def test_inspect_patch_runs_the_model_and_pools(sim_patch, tiny_model):
    ins = inspect_patch(sim_patch, model=tiny_model, device="cpu", tta=2, date_members=2, answer="model")
    assert ins.uncertainty.shape == sim_patch.label_shape and "date-subset" in ins.uncertainty_kind
    assert ins.date_std is not None and ins.counts.uncertainty is not None
    fr = ins.counts.outcomes.fractions()
    assert sum(fr.values()) == pytest.approx(1.0)
    d = ins.to_dict()
    assert d["headline"]["contradiction_share"] is None and d["n_labelled"] == 1  # n/a against its own answer
    pooled = ins.counts + ins.counts
    assert pooled.n_patches == 2 and pooled.headline()["hallucination_rate"] == ins.counts.headline()["hallucination_rate"]
    unlabelled = sim_patch.replace(cultivated=None, not_declared=None, all_polys=None)
    ins2 = inspect_patch(unlabelled, model=tiny_model, device="cpu", tta=1, answer="model")
    assert ins2.outcomes is None and ins2.counts.outcomes is None and ins2.counts.reliability is None
    assert any("no labels" in n for n in ins2.notes)
    assert ins2.counts.headline()["departure_fraction"] is not None


def test_inspect_simulated_pools_fresh_patches(tiny_model):
    from sr_core.inspect import format_simulated, inspect_simulated

    res = inspect_simulated(2, 16, model=tiny_model, device="cpu", tta=1, answer="model", probes=False)
    assert res.counts.n_patches == 2 and len(res.rows) == 2 and res.seeds == (500_000, 500_001)
    text = format_simulated(res)
    assert "pooled" in text and "gap recall" in text


def test_verdicts_name_bad_figures_and_refuse_thin_evidence():
    from sr_core.inspect import ConsistencyCounts, InspectionCounts, OutcomeCounts, verdicts
    from sr_core.inspect.probes import ProbeResult, Structure

    n = np.zeros(6)
    n[Outcome.AGREE], n[Outcome.IMPROVEMENT], n[Outcome.HALLUCINATION_ADDED] = 10_000, 200, 800
    v = verdicts(InspectionCounts(ConsistencyCounts(), outcomes=OutcomeCounts(n, n.copy())))
    assert any(s.startswith("BAD: 80% of the pixels where the 2.5 m map departs") for s in v)
    v = verdicts(InspectionCounts(ConsistencyCounts(), outcomes=OutcomeCounts(n / 10, n / 10)))
    assert any("Too few pixels" in s and "100 departing" in s for s in v) and not any("BAD" in s for s in v)
    painted = ProbeResult("clouded", "all cloud", Structure(0.4, 3, 12.0, 0.01, 0.05))
    blank = ProbeResult("forest_real", "forest", Structure(0.0, 0, 0.0, 0.0, 0.0))
    v = verdicts(InspectionCounts(ConsistencyCounts()), [painted, blank], "model:in-memory")
    assert any("'clouded' probe" in s and "40.0%" in s for s in v) and not any("forest_real" in s for s in v)
    assert any("untrained" in s for s in v)


def test_labels_off_the_imagery_are_said_in_the_notes():
    """Labels a 10 m row south of the imagery: the inspector's notes say so (part of every outcome near an edge is
    then the labels' position); the patch's own labels draw no such note."""
    from sr_core.simulate import simulate_patch

    s = simulate_patch(3, 64, "test")
    moved = s.replace(cultivated=np.roll(s.cultivated, 4, 0), not_declared=np.roll(s.not_declared, 4, 0))
    for patch, said in ((s, False), (moved, True)):
        pred = Prediction(np.asarray(s.cultivated, np.float32), patch.bbox, patch.name)
        notes = inspect_patch(patch, prediction=pred, answer="model").notes
        assert any("labels sit" in n and "px south" in n for n in notes) is said, notes


def test_the_unflagged_cloud_probe_tests_the_network_not_the_masking_rule(sim_patch):
    """A network that paints everything cultivated: on `clouded` predict's rule (never-clear pixels are 0) hides it,
    so that probe checks the rule; `clouded_unflagged` (the same clouds, no flag) shows what the network does."""
    from sr_core.inspect import run_probes
    from sr_core.model import SRNet, SRNetConfig

    torch.manual_seed(0)
    eager = SRNet(SRNetConfig.preset("tiny"))
    last = [m for m in eager.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 1][-1]
    with torch.no_grad():
        last.bias.fill_(20.0)  # every logit far above any threshold
    masked, unflagged = run_probes(sim_patch, model=eager, device="cpu", names=["clouded", "clouded_unflagged"])
    assert masked.cultivated_fraction == 0.0  # the rule, whatever the network
    assert unflagged.cultivated_fraction > 0.99 and unflagged.error is None
    assert "checks the network" in unflagged.description


def test_contradictions_are_not_claimed_against_the_models_own_answer_nor_where_no_date_is_clear():
    """Against the model's own 10 m aggregate the gap is bounded by max(t, 1 − t) (≤ the default margin 0.5 at
    t = 0.5): the share is n/a, not a "0 %" pass. Pixels never seen clear are not counted as contradicting."""
    from sr_core.inspect.maps import answer_from_model, consistency

    rng = np.random.default_rng(0)
    p = rng.random((32, 32)).astype(np.float32)
    own = consistency(p, p > 0.5, answer_from_model(p, 0.5).proba10, independent=False, threshold=0.5)
    assert own.counts.contradiction_share is None and own.counts.to_dict()["contradiction_share"] is None
    assert not own.contradicts.any()  # none could
    # at t = 0.55 the bound is 0.55: a margin of 0.5 can be exceeded (a block of p in (0.5, 0.55]), so it is measured
    q = np.full((32, 32), 0.2, np.float32)
    q[:4, :4] = 0.45  # cover 0 against evidence 0.45: within the margin
    own55 = consistency(q, q > 0.55, answer_from_model(q, 0.55).proba10, independent=False, threshold=0.55)
    assert own55.counts.contradiction_share == pytest.approx(0.0)
    q[:4, :4] = 0.54  # cover 0 against evidence 0.54 > margin 0.5
    own55 = consistency(q, q > 0.55, answer_from_model(q, 0.55).proba10, independent=False, threshold=0.55)
    assert own55.counts.contradicting == 1 and own55.counts.contradiction_share == pytest.approx(1 / 64)
    evidence = np.ones((8, 8), np.float32)  # an independent 10 m answer that calls everything cultivated
    blind = np.zeros((8, 8), bool)
    blind[:, :4] = True
    valid = ~blind
    none_painted = np.zeros((32, 32), np.float32)
    c = consistency(none_painted, none_painted > 0.5, evidence, valid=valid)
    assert c.counts.n == 32 and c.counts.contradicting == 32 and c.counts.contradiction_share == 1.0


def test_inspect_patch_counts_contradictions_only_where_a_date_is_clear(sim_patch):
    """A block of the patch clouded on every date: the model paints it 0 by rule; the pixel baseline's evidence is
    not held against it there (those 10 m pixels are left out of the consistency counts)."""
    cm = sim_patch.cloud_mask.copy()
    cm[:, :, :8] = True  # the first 8 columns never clear
    blind = sim_patch.replace(cloud_mask=cm)
    pred = Prediction(blind.cultivated.astype(np.float32), blind.bbox, blind.name, predictor="oracle")
    ins = inspect_patch(blind, prediction=pred, answer="pixel")
    seen = blind.valid_mask().any(axis=0)
    assert not seen[:, :8].any() and ins.counts.consistency.n == seen.sum()
    assert not ins.consistency.contradicts[:, :8].any()
    assert ins.counts.consistency.contradiction_share is not None  # independent evidence: a real check


def test_hallucinations_are_split_into_invented_detail_and_whole_10m_pixels():
    """The truth and the 10 m answer agree on a plain background; the map adds one whole 10 m pixel (a 10 m-scale
    error) and splits another (invented sub-10 m detail): both are hallucinations, and the share inside split 10 m
    pixels says which is which."""
    from sr_core.inspect.maps import outcome_counts, outcome_map

    t = np.zeros((16, 16), bool)
    a = np.zeros((16, 16), bool)
    p = np.zeros((16, 16), bool)
    p[0:4, 0:4] = True  # a whole 10 m pixel
    p[8:10, 8:12] = True  # half of another: 8 pixels of detail finer than 10 m
    oc = outcome_counts(outcome_map(p, a, t), a, t, np.ones((16, 16)), pred=p)
    assert oc.hallucinated() == 24 and oc.sub10m_hallucination_share() == pytest.approx(8 / 24)
    assert outcome_counts(outcome_map(p, a, t), a, t, np.ones((16, 16))).sub10m_hallucination_share() is None  # no map
    assert oc.to_dict()["plain"]["sub10m_hallucination_share"] == pytest.approx(8 / 24)
    pooled = oc + oc
    assert pooled.sub10m_hallucination_share() == pytest.approx(8 / 24)


def test_the_simulated_inspection_names_its_10m_answer(tiny_model):
    from sr_core.inspect import inspect_simulated

    res = inspect_simulated(2, 16, model=tiny_model, device="cpu", tta=1, answer="model", probes=False)
    d = res.to_dict()
    assert [r["answer_source"] for r in d["patches"]] == ["model aggregated to 10 m (4×4 mean), repeated to 2.5 m"] * 2
    assert d["notes"][0] == "10 m answer: model aggregated to 10 m (4×4 mean), repeated to 2.5 m"
