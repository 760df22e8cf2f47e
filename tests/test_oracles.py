"""The label oracles (``sr_core.oracles``, ``evaluate --oracles``): ceilings that read the labels at 10 m, to
tell the model's classification errors from its 2.5 m geometry errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sr_core.cli import main
from sr_core.errors import ConfigError
from sr_core.metrics import evaluate_patch
from sr_core.oracles import ORACLES, SIM_ORACLES, block_oracle, cover_10m, cover_oracle, sown_oracle
from sr_core.simulate import simulate_patch, simulated_landscape
from tests.conftest import REAL, need


@pytest.fixture(scope="module")
def sim():
    return simulate_patch(0, 64, "test")


def test_cover_is_the_share_of_each_10m_pixels_label_pixels(small_patch):
    t = np.asarray(small_patch.cultivated, bool)
    cover = cover_10m(small_patch)
    assert cover.shape == (8, 10)
    assert cover[2, 3] == pytest.approx(t[8:12, 12:16].mean())
    assert cover.min() >= 0 and cover.max() <= 1


def test_block_oracle_is_the_10m_majority_repeated(sim):
    pred = block_oracle(sim)
    b = pred.binary
    assert b.shape == np.shape(sim.cultivated)
    # constant on every 4 × 4 block, and the majority of the block's label pixels
    blocks = b.reshape(64, 4, 64, 4)
    assert (blocks == blocks[:, :1, :, :1]).all()
    major = cover_10m(sim) > 0.5
    assert np.array_equal(blocks[:, 0, :, 0].astype(bool), major)
    assert pred.predictor == "oracle:block" and pred.extra["reads_labels"]


def test_on_10m_block_labels_both_oracles_recover_the_truth(sim):
    """Labels that are 10 m blocks (as the real Flanders patch's are) hold no 2.5 m detail: the block oracle is
    exact and the bicubic cover oracle nearly so (its overshoot rounds a few one-pixel features)."""
    t = np.asarray(sim.cultivated, bool)
    blocky = sim.replace(cultivated=np.repeat(np.repeat(t[::4, ::4], 4, 0), 4, 1))
    assert evaluate_patch(blocky, block_oracle(blocky)).wmcc == pytest.approx(1.0)
    assert evaluate_patch(blocky, cover_oracle(blocky)).wmcc > 0.93


def test_cover_oracle_keeps_sub_pixel_detail_the_block_oracle_loses(sim):
    """On simulated 2.5 m labels (gaps between parcels, strips narrower than 10 m) the exact 10 m shares carry
    sub-pixel information: interpolating them beats deciding per 10 m pixel, and neither is perfect."""
    cover = evaluate_patch(sim, cover_oracle(sim)).wmcc
    block = evaluate_patch(sim, block_oracle(sim)).wmcc
    assert block + 0.03 < cover < 0.99


def test_oracle_needs_labels(sim):
    with pytest.raises(ConfigError, match="no CULTIVATED label"):
        cover_oracle(sim.replace(cultivated=None, not_declared=None))


def test_evaluate_oracles_flag_scores_them_and_says_they_read_the_labels(capsys):
    rc = main(["evaluate", "--simulate", "1", "--size", "24", "--oracles", "--no-baselines", "--device", "cpu",
               "--threads", "1", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads(out.out)
    assert set(doc["pooled"]) == {"model", *ORACLES, *SIM_ORACLES}
    row = doc["patches"][0]
    assert row["oracle_cover_cultivated"] == pytest.approx(row["true_cultivated"], abs=0.1)
    assert sum("READS THE LABELS" in n for n in doc["notes"]) == len(ORACLES) + len(SIM_ORACLES)


def test_evaluate_oracles_with_stress_is_refused(capsys):
    assert main(["evaluate", "--stress", "--oracles", "--device", "cpu", "--threads", "1"]) == 2
    assert "--oracles does not apply to --stress" in capsys.readouterr().err


def test_landscape_alone_is_the_patchs_and_sown_edges_move_only_the_labels(sim):
    """``simulated_landscape`` redraws exactly the patch's labels without its spectra; with the digitising offset at 0
    the segments (what the imagery shows) stay and only the labels' edges move, by a pixel or so."""
    land = simulated_landscape(0, 64, "test")
    assert np.array_equal(land.cultivated, sim.cultivated) and np.array_equal(land.not_declared, sim.not_declared)
    sown = simulated_landscape(0, 64, "test", label_offset_m=0.0)
    assert np.array_equal(sown.seg, land.seg) and np.array_equal(sown.seg_class, land.seg_class)
    moved = sown.cultivated != land.cultivated
    assert 0.001 < moved.mean() < 0.1
    from scipy import ndimage
    edges = ndimage.binary_dilation(land.cultivated, iterations=2) & ~ndimage.binary_erosion(land.cultivated, iterations=2)
    assert edges[moved].mean() > 0.99  # the moved pixels are at the parcels' edges


def test_sown_oracle_is_a_high_ceiling_below_one_and_refuses_what_it_cannot_redraw(sim):
    pred = sown_oracle(sim)
    assert pred.predictor == "oracle:sown" and pred.extra["reads_labels"] and pred.proba.shape == np.shape(sim.cultivated)
    w = evaluate_patch(sim, pred).wmcc
    assert 0.85 < w < 0.995  # only the digitising offset separates it from the labels
    assert w > evaluate_patch(sim, block_oracle(sim)).wmcc
    with pytest.raises(ConfigError, match="cropped"):
        sown_oracle(sim.crop(0, 0, 32, 32))
    edited = np.array(sim.cultivated)
    edited[:8, :8] = ~edited[:8, :8]
    with pytest.raises(ConfigError, match="differ"):
        sown_oracle(sim.replace(cultivated=edited))
    real_like = sim.replace(info=sim.info.__class__(name="x", meta={"source": "real"}))
    with pytest.raises(ConfigError, match="real patch"):
        sown_oracle(real_like)


@pytest.mark.real_data
def test_real_flanders_labels_are_10m_blocks(capsys):
    """The real validation patch's labels are its 10 m LPIS raster repeated 4 × 4: the block oracle scores 1, so
    there the model's figure measures classification only."""
    rc = main(["evaluate", "--real", str(need(REAL / "flanders-2019-fields-lpis")), "--oracles", "--no-baselines",
               "--device", "cpu", "--threads", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert doc["pooled"]["oracle_block"]["weighted_mcc"] == pytest.approx(1.0)
    assert doc["pooled"]["oracle_cover"]["weighted_mcc"] > 0.98
    assert "oracle_sown" not in doc["pooled"]  # real patches have no known sown edges
    assert doc["pooled"]["model"]["weighted_mcc"] < doc["pooled"]["oracle_block"]["weighted_mcc"]


def test_sown_oracle_on_a_simulated_patch_read_back_from_disk_and_in_the_apps_ceilings(tmp_path, monkeypatch):
    """A simulated EOPatch written to disk keeps what the oracle needs (seed, split, size, region, version in its
    meta_info), so the app's score table gains the perfect-model row there; a patch from elsewhere does not."""
    from sr_core.io import load_eopatch, write_eopatch
    from tests.helpers_app import write_served

    sim = simulate_patch(2, 24, "test", region="vipava")  # a chosen region, as the demo set's patches are
    path = write_eopatch(sim, tmp_path / "data" / "eopatch-sim")
    back = load_eopatch(path)
    np.testing.assert_array_equal(sown_oracle(back).proba, sown_oracle(sim).proba)
    other = write_served(tmp_path / "data")[0]
    monkeypatch.setenv("SR_CORE_DATA", str(tmp_path / "data"))
    from ui.common import CEILINGS, ceiling_scores

    assert set(ceiling_scores(path)) == set(CEILINGS) and "oracle_sown" in CEILINGS
    assert "oracle_sown" not in ceiling_scores(other)
