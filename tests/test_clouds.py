"""Cloud masks computed with s2cloudless for bands-only patches, measured against the real fixture's masks."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from conftest import REAL, REAL_CHALLENGE, REAL_L1C, need

from sr_core import clouds
from sr_core.errors import ConfigError
from sr_core.io import load_eopatch, read_b10, write_eopatch
from sr_core.quality import series_warnings

s2cloudless = pytest.importorskip("s2cloudless", reason="s2cloudless is not installed (pip install s2cloudless)")


@pytest.fixture(scope="module")
def real():
    """The 5-frame real L1C patch, its true B10, and the same patch with CLP/CLM removed."""
    patch = load_eopatch(need(REAL_L1C))
    return patch, read_b10(REAL_L1C), patch.replace(cloud_prob=None, cloud_mask=None)


@pytest.fixture(scope="module")
def computed(real):
    _, b10, bare = real
    return {"true": clouds.ensure_cloud_masks(bare, b10=b10), "substitute": clouds.ensure_cloud_masks(bare)}


@pytest.mark.slow
def test_b10_substitute_is_the_models_own_median_split():
    # the documented substitute is derived from the installed model file, not tuned on the fixture
    assert clouds.model_b10_split_median() == pytest.approx(clouds.B10_SUBSTITUTE, abs=1e-5)


def test_mask_postprocessing_is_s2cloudless_own():
    from scipy import ndimage

    rng = np.random.default_rng(3)
    prob = ndimage.gaussian_filter(rng.uniform(0, 1, (3, 40, 50)), (0, 3, 3)).astype(np.float32)
    prob = ((prob - prob.min()) / (prob.max() - prob.min())) ** 2
    det = s2cloudless.S2PixelCloudDetector(threshold=clouds.THRESHOLD, average_over=clouds.AVERAGE_OVER_PX,
                                           dilation_size=clouds.DILATION_PX)
    ours = clouds.mask_from_probability(prob)
    assert 0.1 < ours.mean() < 0.9
    assert np.array_equal(ours, det.get_mask_from_prob(prob).astype(bool))


def test_computed_masks_find_the_clouds_of_a_simulated_l1c_patch():
    """s2cloudless run by the library on a bands-only simulated patch (CLP, CLM and SCL removed) must find the
    simulator's clouds (its CLM is the truth) without inventing any.

    The input is made to look like what s2cloudless was trained on, an L1C product: the project's L1C look (path
    radiance, +3 % gain) and B09 as the top of the atmosphere delivers it. The simulator's B09 is surface
    reflectance (0.30 over clear land, like B8A), but at the top of the atmosphere water vapour absorbs most of it:
    B09 / B8A is 0.29 (clear) and 0.37 (cloud) on the real L1C fixture, so B09 × 0.3 here. Without that, the
    detector sees next to no cloud (recall 0.00 on the L2A patch, 0.05 with the L1C look alone).

    Measured (seed 1, 48 px, 8 cloudy + 3 clear dates, truth cloud share 0.505): recall 0.972, precision 0.990,
    IoU 0.963; mean probability 0.896 under the true clouds, 0.088 elsewhere. Floors about 0.1 below."""
    from sr_core.bands import band_index
    from sr_core.evaluation import perturb_patch
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(1, size=48, split="test")
    cf = sim.cloud_fraction()
    cloudy = [t for t in range(sim.n_dates) if cf[t] > 0.05][:8]
    clear = [t for t in range(sim.n_dates) if cf[t] == 0][:3]
    dates = sorted(cloudy + clear)
    sim = sim.select_dates(dates)  # fewer dates: s2cloudless takes ~0.1 s a date
    toa = perturb_patch(sim, "l1c", np.random.default_rng(0))
    bands = toa.bands.copy()
    bands[..., band_index("B09")] *= 0.3
    bare = toa.replace(bands=bands, cloud_prob=None, cloud_mask=None, scl=None)

    got = clouds.ensure_cloud_masks(bare)
    assert clouds.masks_were_computed(got) and got.info.meta["cloud_masks"]["layers"] == ["cloud_prob", "cloud_mask"]
    truth, valid = sim.cloud_mask, sim.data_mask()
    assert 0.3 < truth[valid].mean() < 0.7  # a decent share of cloud and of clear sky to judge both ways
    score = clouds.mask_agreement(got.cloud_mask, truth, valid)
    assert score["recall"] > 0.87 and score["precision"] > 0.89 and score["iou_cloud"] > 0.86, score
    assert got.cloud_prob[truth & valid].mean() > 0.79 and got.cloud_prob[~truth & valid].mean() < 0.19
    assert got.cloud_mask[[dates.index(t) for t in clear]].mean() < 0.05  # the clear dates stay clear (0.000)


def _l1c_look(seed: int = 1, size: int = 48):
    """A simulated patch as s2cloudless was trained to see it (see the test above): 8 cloudy and 3 clear dates."""
    from sr_core.bands import band_index
    from sr_core.evaluation import perturb_patch
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(seed, size=size, split="test")
    cf = sim.cloud_fraction()
    sim = sim.select_dates(sorted([t for t in range(sim.n_dates) if cf[t] > 0.05][:8]
                                  + [t for t in range(sim.n_dates) if cf[t] == 0][:3]))
    toa = perturb_patch(sim, "l1c", np.random.default_rng(0))
    bands = toa.bands.copy()
    bands[..., band_index("B09")] *= 0.3
    return sim, toa.replace(bands=bands, cloud_prob=None, cloud_mask=None, scl=None)


def test_bands_the_product_lacks_are_filled_for_the_detector_and_said():
    """B01 and B09 delivered as zeros (as real L2A extractions often come): the detector reads B02 for B01 and a
    top-of-the-atmosphere B09 (0.28 × B8A), the note and the record say so, and the clouds are still found
    (measured: recall 0.946, precision 1.000, IoU 0.946; with every band 0.972 / 0.990 / 0.963)."""
    from sr_core.bands import band_index

    sim, full = _l1c_look()
    assert clouds.detector_band_fills(full) == {}
    bands = full.bands.copy()
    bands[..., [band_index("B01"), band_index("B09")]] = 0
    lacking = full.replace(bands=bands)
    assert clouds.detector_band_fills(lacking) == {"B01": "B02", "B09": "0.28 × B8A"}
    got = clouds.ensure_cloud_masks(lacking)
    assert "filled for the detector only: B01 ← B02, B09 ← 0.28 × B8A" in got.info.notes[-1]
    assert got.info.meta["cloud_masks"]["filled_for_detector"] == {"B01": "B02", "B09": "0.28 × B8A"}
    assert np.array_equal(got.bands, lacking.bands)  # filled for the detector only, never in the patch
    filled = bands.copy()  # what the detector must have read: the same patch with the two bands filled by hand
    filled[..., band_index("B01")] = bands[..., band_index("B02")]
    filled[..., band_index("B09")] = clouds.TOA_B09_PER_B8A * bands[..., band_index("B8A")]
    assert np.array_equal(got.cloud_prob, clouds.cloud_probability(lacking.replace(bands=filled))[0])
    score = clouds.mask_agreement(got.cloud_mask, sim.cloud_mask, sim.data_mask())
    assert score["recall"] > 0.85 and score["precision"] > 0.9 and score["iou_cloud"] > 0.85, score


@pytest.mark.real_data
def test_missing_b01_b09_are_filled_for_the_detector_on_real_l2a():
    """The real Flanders L2A patch (B01 / B09 never delivered, clouds in SCL only): s2cloudless run on its bands,
    scored against its Sen2Cor cloud classes (8–10). Read as delivered (zeros) the masks found 52 % of the clouded
    pixels (IoU 0.51); with the two bands filled for the detector 82 % (precision 0.91, IoU 0.76)."""
    p = load_eopatch(need(REAL / "flanders-2019-fields-lpis"))
    truth = np.isin(p.scl, (8, 9, 10))
    valid = p.data_mask() & (p.scl != 0)
    got = clouds.ensure_cloud_masks(p.replace(scl=None, cloud_prob=None, cloud_mask=None))
    assert "B01 ← B02, B09 ← 0.28 × B8A" in got.info.notes[-1]
    score = clouds.mask_agreement(got.cloud_mask, truth, valid)
    assert score["recall"] > 0.75 and score["precision"] > 0.85 and score["iou_cloud"] > 0.70, score


@pytest.mark.real_data
def test_read_b10_from_the_13_band_cube_only(real):
    _, b10, _ = real
    assert b10.shape == (5, 101, 100) and b10.dtype == np.float32
    assert 0.0005 < float(np.median(b10[0])) < 0.002  # clear-sky cirrus-band reflectance
    assert float(np.median(b10[1])) > 0.003  # the cloudy frame
    assert read_b10(need(REAL_CHALLENGE)) is None  # the challenge layout dropped B10


@pytest.mark.real_data
def test_computed_masks_agree_with_the_real_ones(real, computed):
    patch, _, _ = real
    valid = patch.data_mask()
    scores = {k: clouds.mask_agreement(p.cloud_mask, patch.cloud_mask, valid) for k, p in computed.items()}
    # measured: true B10 accuracy 0.9997 / IoU 0.9993; substitute 0.9987 / 0.9968 (python -m sr_core clouds)
    assert scores["true"]["accuracy"] > 0.995 and scores["true"]["iou_cloud"] > 0.99
    assert scores["substitute"]["accuracy"] > 0.99 and scores["substitute"]["iou_cloud"] > 0.98
    assert scores["substitute"]["precision"] > 0.99  # no clouds invented on the three clear frames
    for p in computed.values():
        assert list(np.flatnonzero(p.cloud_fraction() > 0.5)) == [1, 2]
        assert np.abs(p.cloud_prob - patch.cloud_prob)[valid].mean() < 0.03  # per-pixel probability vs real CLP


@pytest.mark.real_data
def test_a_clear_sky_b10_would_cost_far_more_than_the_substitute(real, computed):
    # why the substitute is not a clear-sky value: B10 ~ 0.001 tells the trees "no high cloud" and they miss cloud
    patch, _, bare = real
    clear = clouds.compute_cloud_masks(bare, b10=0.001)
    iou_clear = clouds.mask_agreement(clear.mask, patch.cloud_mask)["iou_cloud"]
    iou_sub = clouds.mask_agreement(computed["substitute"].cloud_mask, patch.cloud_mask)["iou_cloud"]
    assert iou_clear < iou_sub - 0.05


@pytest.mark.real_data
def test_computed_masks_are_recorded_and_survive_a_round_trip(tmp_path, computed):
    p = computed["substitute"]
    assert p.cloud_prob is not None and p.cloud_mask is not None
    note = next(n for n in p.info.notes if n.startswith("cloud masks computed with s2cloudless"))
    assert "B10: substitute 0.00705" in note and "at 10 m" in note
    rec = p.info.meta["cloud_masks"]
    assert rec["computed"] and rec["b10"].startswith("substitute") and rec["average_over_px"] == clouds.AVERAGE_OVER_PX
    assert any("cloud masks were computed" in w for w in series_warnings(p))
    assert computed["true"].info.meta["cloud_masks"]["b10"] == "true B10"
    back = load_eopatch(write_eopatch(p, tmp_path / "out"))
    assert clouds.masks_were_computed(back) and any("cloud masks computed" in n for n in back.info.notes)
    assert np.array_equal(back.cloud_mask, p.cloud_mask)
    assert json.loads((tmp_path / "out" / "meta_info" / "cloud_masks.json").read_text())["computed"] is True


@pytest.mark.real_data
def test_patch_with_masks_is_returned_unchanged_and_clp_alone_gives_a_derived_mask(real):
    patch, _, _ = real
    assert clouds.ensure_cloud_masks(patch) is patch
    only_clp = patch.replace(cloud_mask=None)
    got = clouds.ensure_cloud_masks(only_clp)
    assert np.array_equal(got.cloud_prob, patch.cloud_prob)  # no model run: the real CLP is kept
    assert np.array_equal(got.cloud_mask, clouds.mask_from_probability(patch.cloud_prob))
    assert clouds.mask_agreement(got.cloud_mask, patch.cloud_mask)["accuracy"] > 0.99
    assert got.info.meta["cloud_masks"]["method"] == "derived from the patch's cloud_prob"


@pytest.mark.real_data
def test_no_data_pixels_are_not_classified(real):
    _, _, bare = real
    is_data = np.ones(bare.shape, bool)
    is_data[1, :50] = False
    bands = bare.bands.copy()
    bands[1, :50] = np.nan  # what lies outside the swath
    res = clouds.compute_cloud_masks(bare.replace(bands=bands, is_data=is_data))
    assert not res.mask[1, :50].any() and (res.prob[1, :50] == 0).all()
    assert res.mask[1, 60:].mean() > 0.9  # the rest of the cloudy frame is still found


def test_missing_s2cloudless_gives_the_fix(monkeypatch, small_patch):
    monkeypatch.setitem(sys.modules, "s2cloudless", None)
    monkeypatch.setattr(clouds, "_DETECTOR", None)
    bare = small_patch.replace(cloud_prob=None, cloud_mask=None)
    with pytest.raises(ConfigError, match="pip install s2cloudless"):
        clouds.ensure_cloud_masks(bare)


@pytest.mark.real_data
def test_clouds_command_prints_agreement_for_true_and_substitute_b10(tmp_path, capsys):
    from sr_core.cli import main

    bare = tmp_path / "bare"
    shutil.copytree(need(REAL_L1C), bare)
    (bare / "data" / "CLP.npy.gz").unlink()
    (bare / "mask" / "CLM.npy.gz").unlink()
    assert main(["clouds", str(bare), "--reference", str(REAL_L1C), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in d["variants"]] == ["true B10", "B10 substitute 0.00705"]
    true_row = next(r for r in d["variants"] if r["variant"] == "true B10")
    sub_row = next(r for r in d["variants"] if r["variant"].startswith("B10 substitute"))
    assert true_row["agreement"]["accuracy"] > 0.995 and sub_row["agreement"]["iou_cloud"] > 0.98
    assert d["reference_cloud_fraction_per_date"] == [0.0, 1.0, 1.0, 0.0, 0.0]
    # text form: the table a user reads
    assert main(["clouds", str(bare), "--reference", str(REAL_L1C)]) == 0
    out = capsys.readouterr().out
    assert "IoU cloud" in out and "true B10" in out and "B10 substitute 0.00705" in out


@pytest.mark.real_data
def test_info_compute_clouds_on_a_bands_only_real_patch(tmp_path, capsys):
    from sr_core.cli import main

    bare = tmp_path / "bare"
    shutil.copytree(need(REAL_CHALLENGE), bare)  # challenge layout: 12 bands, no B10
    (bare / "data" / "CLP.npy.gz").unlink()
    (bare / "mask" / "CLM.npy.gz").unlink()
    assert main(["info", str(bare), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["cloud_source"] is None and any("no cloud layer" in w for w in before["warnings"])
    assert main(["info", str(bare), "--compute-clouds", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["clouds_computed"] and d["cloud_source"] == "cloud_mask"
    assert [c > 0.5 for c in d["cloud_fraction"]] == [False, True, True, False, False]
    assert d["meta"]["cloud_masks"]["b10"].startswith("substitute")
    assert any("cloud masks were computed" in w for w in d["warnings"])
    assert main(["info", str(bare), "--compute-clouds"]) == 0
    assert "(cloud_mask, computed)" in capsys.readouterr().out


@pytest.mark.real_data
def test_classifying_at_40_m_keeps_agreement(real):
    # scale=4: 16× fewer pixels for large patches; 101 × 100 px is not a multiple of 4 (partial edge blocks)
    patch, _, bare = real
    res = clouds.compute_cloud_masks(bare, scale=4)
    assert res.prob.shape == res.mask.shape == patch.shape
    assert clouds.mask_agreement(res.mask, patch.cloud_mask)["iou_cloud"] > 0.98
    assert np.array_equal(res.prob[0, :4, :4], np.full((4, 4), res.prob[0, 0, 0]))  # one value per 40 m block
    assert clouds.ensure_cloud_masks(bare, scale=4).info.meta["cloud_masks"]["resolution_m"] == 40
