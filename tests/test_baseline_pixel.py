"""The 10 m pixel baseline: cloud-masked temporal features, pickle-free model file, prediction, training, CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sr_core import BBox, Patch, PatchInfo
from sr_core.bands import band_index
from sr_core.baselines import get_baseline
from sr_core.baselines.pixel import (
    DEFAULT_MODEL,
    FEATURE_NAMES,
    LOG_OFFSET,
    N_FEATURES,
    PixelBaseline,
    ThresholdSearch,
    block_targets,
    load_pixel_baseline,
    parse_seeds,
    pixel_baseline,
    pixel_features,
    save_pixel_baseline,
    train_pixel_baseline,
)
from sr_core.errors import ConfigError, ModelError
from sr_core.metrics import ConfusionCounts, weight_map
from sr_core.simulate import simulate_patch

F = {n: i for i, n in enumerate(FEATURE_NAMES)}


def _patch(T: int = 6, H: int = 5, W: int = 7, seed: int = 0, cloudy: np.ndarray | None = None, start=(2019, 3, 10),
           step_days: int = 20, name: str = "eopatch-03") -> Patch:
    rng = np.random.default_rng(seed)
    bands = rng.uniform(0.02, 0.4, (T, H, W, 12)).astype(np.float32)
    cm = np.zeros((T, H, W), bool) if cloudy is None else cloudy
    return Patch(
        bands=bands, timestamps=[datetime(*start) + timedelta(days=step_days * t) for t in range(T)],
        bbox=BBox(500000.0, 5100000.0, 500000.0 + 10 * W, 5100000.0 + 10 * H), cloud_mask=cm,
        is_data=np.ones((T, H, W), bool), info=PatchInfo(name=name),
    )


@pytest.fixture(scope="module")
def tiny_model() -> PixelBaseline:
    """Trained on three small simulated train-split patches (seconds)."""
    return train_pixel_baseline([0, 1, 3], [4], size=64, val_size=40, hidden=(16,), epochs=15, batch=256, lr=1e-2)


# -- features -----------------------------------------------------------------------------------------------------
def test_features_shape_names_and_window_medians():
    p = _patch(T=6)  # dates Mar 10, Mar 30, Apr 19, May 9, May 29, Jun 18
    f = pixel_features(p)
    assert f.shape == (5, 7, N_FEATURES) and f.dtype == np.float32 and np.isfinite(f).all()
    assert len(set(FEATURE_NAMES)) == N_FEATURES
    b4 = p.bands[..., band_index("B04")]
    np.testing.assert_allclose(f[..., F["B04_MarApr"]], np.median(np.log(b4[:3] + LOG_OFFSET), axis=0), rtol=1e-5)
    np.testing.assert_allclose(f[..., F["B04_May"]], np.median(np.log(b4[3:5] + LOG_OFFSET), axis=0), rtol=1e-5)
    ndvi = p.ndvi()
    np.testing.assert_allclose(f[..., F["NDVI_max"]], ndvi.max(0), atol=1e-6)
    np.testing.assert_allclose(f[..., F["NDVI_p50"]], np.median(ndvi, 0), atol=1e-6)
    # Jul and Aug–Sep have no date: filled with the pixel's median over all clear dates, flagged
    assert (f[..., F["missing_Jul"]] == 1).all() and (f[..., F["missing_May"]] == 0).all()
    np.testing.assert_allclose(f[..., F["B08_Jul"]], np.median(np.log(p.bands[..., band_index("B08")] + LOG_OFFSET), 0),
                               rtol=1e-5)
    np.testing.assert_allclose(f[..., F["clear_share"]], 1.0)
    assert (f[..., F["no_clear"]] == 0).all()


def test_cloud_masked_values_are_ignored():
    T, H, W = 8, 4, 6
    rng = np.random.default_rng(3)
    cloudy = rng.uniform(size=(T, H, W)) < 0.4
    cloudy[:, 0, 0] = True  # one pixel never clear
    p = _patch(T, H, W, cloudy=cloudy, step_days=18)
    bright = np.where(cloudy[..., None], np.float32(0.95), p.bands)  # what a cloud would do to the values
    f1 = pixel_features(p)
    f2 = pixel_features(p.replace(bands=bright.astype(np.float32)))
    clear = ~np.zeros((H, W), bool)
    clear[0, 0] = False
    np.testing.assert_array_equal(f1[clear], f2[clear])
    # the clear statistics are those of the clear dates only
    i, j = 2, 3
    ok = ~cloudy[:, i, j]
    assert f1[i, j, F["NDVI_max"]] == pytest.approx(p.ndvi()[ok, i, j].max(), abs=1e-6)
    assert f1[i, j, F["clear_share"]] == pytest.approx(ok.mean())
    # the never-clear pixel falls back to its cloudy observations and says so
    assert f1[0, 0, F["no_clear"]] == 1 and f1[0, 0, F["log_n_clear"]] == 0
    assert np.isfinite(f1[0, 0]).all()
    assert f2[0, 0, F["NDVI_max"]] != f1[0, 0, F["NDVI_max"]]


def test_single_date_and_fully_cloudy_patches_work():
    p = _patch(T=1, H=3, W=4, start=(2019, 7, 14))
    f = pixel_features(p)
    assert f.shape == (3, 4, N_FEATURES) and np.isfinite(f).all()
    assert (f[..., F["missing_Jul"]] == 0).all() and (f[..., F["missing_MarApr"]] == 1).all()
    np.testing.assert_array_equal(f[..., F["B02_MarApr"]], f[..., F["B02_Jul"]])
    assert (f[..., F["NDVI_std"]] == 0).all() and (f[..., F["NDVI_drops"]] == 0).all()
    dark = pixel_features(_patch(T=2, H=3, W=4, cloudy=np.ones((2, 3, 4), bool)))
    assert np.isfinite(dark).all() and (dark[..., F["no_clear"]] == 1).all()


def test_block_targets_are_block_shares_and_mean_weights():
    p = simulate_patch(2, 24, "train")
    y, w = block_targets(p)
    assert y.shape == w.shape == (24, 24)
    assert y[3, 5] == pytest.approx(p.cultivated[12:16, 20:24].mean())
    wm = weight_map(p.cultivated, p.not_declared)
    assert w[3, 5] == pytest.approx(wm[12:16, 20:24].mean(), rel=1e-5)
    with pytest.raises(ModelError, match="CULTIVATED"):
        block_targets(_patch())


# -- model file -----------------------------------------------------------------------------------------------------
def test_model_file_round_trip_without_pickle(tmp_path, tiny_model):
    path = save_pixel_baseline(tiny_model, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:  # plain arrays only: this would raise on any object array
        assert all(z[k].dtype != object for k in z.files)
        cfg = json.loads(str(z["config"]))
    assert cfg["feature_names"] == list(FEATURE_NAMES) and 0 < cfg["threshold"] < 1
    back = load_pixel_baseline(path)
    assert back.threshold == tiny_model.threshold and back.config["train"]["seeds"] == "0-1,3"
    f = pixel_features(_patch())
    np.testing.assert_array_equal(back.predict_10m(f), tiny_model.predict_10m(f))


def test_ensemble_members_are_the_single_seed_models_and_their_mean_is_the_prediction(tmp_path, tiny_model):
    """Member k of ``members=M, seed=s`` is exactly the MLP that ``members=1, seed=s + k`` trains; the prediction is
    the members' mean probability; the file keeps every member (and format 1's names for member 0)."""
    ens = train_pixel_baseline([0, 1, 3], [4], size=64, val_size=40, hidden=(16,), epochs=15, batch=256, lr=1e-2,
                               members=2)
    assert len(ens.members) == 2 and len(tiny_model.members) == 1
    first, alone = ens.members[0], tiny_model.members[0]
    for a, b in zip((*first.weights, *first.biases, first.mean, first.std),
                    (*alone.weights, *alone.biases, alone.mean, alone.std), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(ens.members[1].weights[0], first.weights[0])  # seed 1: another draw
    f = pixel_features(simulate_patch(4, 24, "test"))
    each = ens.member_probabilities(f)
    np.testing.assert_allclose(ens.predict_10m(f), each.mean(axis=0), atol=1e-7)
    assert np.abs(each[0] - each[1]).max() > 1e-3
    cfg = ens.config
    assert cfg["ensemble"]["members"] == 2 and cfg["ensemble"]["seeds"] == [0, 1]
    assert len(cfg["validation"]["member_pooled_weighted_mcc"]) == 2 and ens.n_parameters == 2 * tiny_model.n_parameters
    path = save_pixel_baseline(ens, tmp_path / "ens.npz")
    with np.load(path, allow_pickle=False) as z:
        assert {"W0", "mean", "m1_W0", "m1_mean"} <= set(z.files)
    back = load_pixel_baseline(path)
    assert len(back.members) == 2 and back.threshold == ens.threshold
    np.testing.assert_array_equal(back.predict_10m(f), ens.predict_10m(f))
    with pytest.raises(ConfigError, match="at least one"):
        train_pixel_baseline([0], [4], size=16, members=0)


def test_format_1_file_reads_as_one_member(tmp_path, tiny_model):
    """Files written before the ensemble (one MLP, ``n_layers`` a number, format version 1) still load."""
    m = tiny_model.members[0]
    cfg = {**tiny_model.config, "format": "sr_core.pixel_baseline", "format_version": 1, "threshold": 0.42,
           "feature_names": list(FEATURE_NAMES), "n_layers": len(m.weights)}
    arrays = {"config": np.array(json.dumps(cfg)), "mean": m.mean, "std": m.std}
    for i, (w, b) in enumerate(zip(m.weights, m.biases, strict=True)):
        arrays[f"W{i}"], arrays[f"b{i}"] = w, b
    np.savez(tmp_path / "v1.npz", **arrays)
    back = load_pixel_baseline(tmp_path / "v1.npz")
    assert len(back.members) == 1 and back.threshold == 0.42
    f = pixel_features(_patch())
    np.testing.assert_array_equal(back.predict_10m(f), tiny_model.predict_10m(f))


def test_bad_model_files_are_refused(tmp_path, tiny_model):
    with pytest.raises(ModelError, match="not found"):
        load_pixel_baseline(tmp_path / "absent.npz")
    obj = tmp_path / "obj.npz"
    np.savez(obj, config=np.array([{"format": "x"}], dtype=object))
    with pytest.raises(ModelError, match="plain-array"):
        load_pixel_baseline(obj)
    good = save_pixel_baseline(tiny_model, tmp_path / "good.npz")
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    cfg = json.loads(str(arrays["config"]))
    cfg["feature_names"] = cfg["feature_names"][:-1]
    np.savez(tmp_path / "feat.npz", **{**arrays, "config": np.array(json.dumps(cfg))})
    with pytest.raises(ModelError, match="retrain"):
        load_pixel_baseline(tmp_path / "feat.npz")
    np.savez(tmp_path / "shape.npz", **{**arrays, "W0": arrays["W0"][:-1]})
    with pytest.raises(ModelError, match="inconsistent"):
        load_pixel_baseline(tmp_path / "shape.npz")
    cfg2 = json.loads(str(arrays["config"]))
    cfg2["n_members"] = 2  # a second member announced but not in the file
    np.savez(tmp_path / "member.npz", **{**arrays, "config": np.array(json.dumps(cfg2))})
    with pytest.raises(ModelError, match="corrupt config"):
        load_pixel_baseline(tmp_path / "member.npz")
    cfg2["n_members"] = 10**9  # a hostile count is refused before anything is allocated for it
    np.savez(tmp_path / "many.npz", **{**arrays, "config": np.array(json.dumps(cfg2))})
    with pytest.raises(ModelError, match="members"):
        load_pixel_baseline(tmp_path / "many.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError):
        load_pixel_baseline(tmp_path / "junk.npz")


def test_bundled_model_loads_and_records_its_training():
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"{DEFAULT_MODEL} is not bundled in this checkout")
    m = load_pixel_baseline()
    assert DEFAULT_MODEL.stat().st_size < 3_000_000
    assert m.config["train"]["split"] == "train" and m.config["validation"]["split"] == "train"
    train, val = parse_seeds(m.config["train"]["seeds"]), parse_seeds(m.config["validation"]["seeds"])
    assert not set(train) & set(val) and 0 < m.threshold < 1


# -- prediction -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hw", [(7, 9), (1, 3), (13, 5)])
def test_prediction_shape_and_georeference_on_odd_sizes(hw, tiny_model):
    H, W = hw
    p = _patch(T=4, H=H, W=W, seed=H * W)
    pred = pixel_baseline(p, tiny_model)
    assert pred.proba.shape == (4 * H, 4 * W) and pred.predictor == "baseline:pixel"
    assert pred.proba.min() >= 0 and pred.proba.max() <= 1 and pred.threshold == tiny_model.threshold
    assert pred.bbox == p.bbox and pred.transform == p.label_transform and pred.name == p.name
    assert pred.extra["proba_10m"].shape == (H, W)
    assert get_baseline("pixel") is pixel_baseline


def test_threshold_search_matches_direct_counts():
    rng = np.random.default_rng(1)
    proba, truth, w = rng.uniform(size=(40, 40)), rng.uniform(size=(40, 40)) < 0.3, rng.uniform(0, 4, (40, 40))
    proba[truth] += 0.3
    proba = np.clip(proba, 0, 1)
    s = ThresholdSearch()
    s.add(proba[:20], truth[:20], w[:20])
    s.add(proba[20:], truth[20:], w[20:])
    thr, best = s.best()
    direct = ConfusionCounts.from_arrays(truth, proba >= thr, w).mcc
    assert best == pytest.approx(direct, abs=1e-9)
    assert best >= max(ConfusionCounts.from_arrays(truth, proba >= t, w).mcc for t in (0.2, 0.4, 0.5, 0.7)) - 1e-9


def test_training_on_tiny_simulated_patches_beats_chance_on_held_out_patches(tiny_model):
    # another split's stream: never seen in training; pooled over six small patches, as the benchmark pools (one
    # 40 px patch holds a handful of fields, too few to judge a model trained on three small patches)
    pooled, shares = ConfusionCounts(), []
    for seed in range(4, 10):
        held_out = simulate_patch(seed, 40, "test")
        pred = pixel_baseline(held_out, tiny_model)
        w = weight_map(held_out.cultivated, held_out.not_declared)
        pooled = pooled + ConfusionCounts.from_arrays(held_out.cultivated, pred.binary, w)
        shares.append(held_out.cultivated.mean())
    assert 0.05 < np.mean(shares) < 0.95
    mcc = pooled.mcc
    assert mcc > 0.4, mcc
    assert tiny_model.config["validation"]["pooled_weighted_mcc"] > 0.4
    with pytest.raises(ConfigError, match="overlap"):
        train_pixel_baseline([1, 2], [2], size=16)


def test_parse_seeds():
    assert parse_seeds("3-5,9") == [3, 4, 5, 9] and parse_seeds("7") == [7]
    for bad in ("", "a-b", "5-3", "-1"):
        with pytest.raises(ConfigError):
            parse_seeds(bad)


# -- CLI ------------------------------------------------------------------------------------------------------------
def test_cli_writes_a_georeferenced_submission(tmp_path, tiny_model):
    import rasterio

    from sr_core.cli import main
    from sr_core.io.eopatch import write_eopatch

    patch = simulate_patch(6, 21, "test")
    write_eopatch(patch, tmp_path / "in" / "eopatch-05")
    model = save_pixel_baseline(tiny_model, tmp_path / "m.npz")
    out = tmp_path / "sub"
    assert main(["baseline", "pixel", str(tmp_path / "in"), "--out", str(out), "--model", str(model), "--quiet"]) == 0
    with rasterio.open(out / "eopatch-05.tif") as ds:
        arr = ds.read(1)
        assert ds.count == 1 and arr.shape == (84, 84) and arr.dtype == np.uint8 and set(np.unique(arr)) <= {0, 1}
        assert ds.crs.to_epsg() == 32633
        assert tuple(ds.transform)[:6] == pytest.approx(patch.label_transform)
    np.testing.assert_array_equal(arr, pixel_baseline(patch, tiny_model).binary)


def test_cli_train_and_eval_pixel(tmp_path, capsys):
    from sr_core.cli import main

    out = tmp_path / "pb.npz"
    rc = main(["baseline", "train-pixel", "--train-seeds", "0-1", "--val-seeds", "5", "--size", "24", "--val-size", "24",
               "--epochs", "2", "--hidden", "8", "--members", "2", "--dropout-members", "1", "--seed", "3", "--out",
               str(out), "--quiet", "--json"])
    assert rc == 0 and out.is_file()
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["train"]["seeds"] == "0-1" and summary["model"] == str(out)
    assert summary["config"]["ensemble"]["seeds"] == [3, 4] and len(load_pixel_baseline(out).members) == 2
    assert summary["dropout"]["config"]["ensemble"]["seeds"] == [3] and len(load_pixel_baseline(out).dropout.members) == 1
    capsys.readouterr()
    before = out.read_bytes()  # a second run onto the same file is refused before any training, unless --overwrite
    assert main(["baseline", "train-pixel", "--train-seeds", "0-1", "--out", str(out), "--quiet"]) == 2
    assert "add --overwrite to replace it" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["baseline", "train-pixel", "--members", "0", "--out", str(tmp_path / "no.npz"), "--quiet"]) == 2
    assert "--members 0" in capsys.readouterr().err and not (tmp_path / "no.npz").exists()
    assert main(["baseline", "train-pixel", "--dropout-members", "-1", "--out", str(tmp_path / "no.npz"), "--quiet"]) == 2
    assert "--dropout-members -1" in capsys.readouterr().err and not (tmp_path / "no.npz").exists()
    rc = main(["baseline", "eval-pixel", "--seeds", "2", "--size", "24", "--model", str(out), "--quiet", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["split"] == "test" and len(res["patches"]) == 1 and -1 <= res["pixel_wmcc"] <= 1
    assert main(["baseline", "pixel", str(tmp_path), "--out", str(tmp_path / "o"), "--model", str(Path(tmp_path) / "x.npz")]) == 2


def test_bundled_pixel_baseline_is_trained_on_the_current_simulator():
    """The pixel baseline is the bar the model must clear; one trained on an older simulator is a weaker bar (the
    2.0 file scored 0.582 on the real Flanders patch, the 2.6 retrain 0.684). Retrain it whenever
    SIMULATOR_VERSION changes: ``python -m sr_core baseline train-pixel --out models/pixel-baseline.npz --overwrite``."""
    from sr_core.baselines.pixel import DEFAULT_MODEL, load_pixel_baseline
    from sr_core.simulate import SIMULATOR_VERSION

    model = load_pixel_baseline(DEFAULT_MODEL)
    assert model.dropout is not None, "the bundled file lacks its band-dropout members (models/PIXEL_BASELINE.md)"
    for cfg in (model.config, model.dropout.config):
        assert cfg["simulator_version"] == SIMULATOR_VERSION, (
            f"models/pixel-baseline.npz was trained on simulator {cfg['simulator_version']}, the simulator is "
            f"{SIMULATOR_VERSION}: retrain it (models/PIXEL_BASELINE.md)")


# -- band dropout ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dropout_model() -> PixelBaseline:
    """``tiny_model``'s training with one band-dropout member added."""
    return train_pixel_baseline([0, 1, 3], [4], size=64, val_size=40, hidden=(16,), epochs=15, batch=256, lr=1e-2,
                                dropout_members=1)


def test_band_dropout_members_leave_the_others_alone_and_round_trip(tmp_path, tiny_model, dropout_model):
    """Adding band-dropout members changes nothing for patches with every band: the other members are bit for bit
    those trained without them, with the same threshold. The file keeps the dropout members and their threshold."""
    for a, b in zip((*dropout_model.members[0].weights, dropout_model.members[0].mean),
                    (*tiny_model.members[0].weights, tiny_model.members[0].mean), strict=True):
        np.testing.assert_array_equal(a, b)
    assert dropout_model.threshold == tiny_model.threshold and tiny_model.dropout is None
    d = dropout_model.dropout
    assert d is not None and len(d.members) == 1 and 0 < d.threshold < 1
    assert not np.array_equal(d.members[0].weights[0], dropout_model.members[0].weights[0])
    ten = d.config["validation"]["ten_m_only"]
    assert d.config["simulator_version"] == dropout_model.config["simulator_version"]
    assert ten["bands"] == ["B02", "B03", "B04", "B08"] and -1 <= ten["dropout_members"] <= 1
    assert dropout_model.n_parameters == 2 * tiny_model.n_parameters
    # which ensemble predicts: B01 / B09 are not features, so filling them changes nothing
    assert dropout_model.for_filled([]) is dropout_model and dropout_model.for_filled(["B01", "B09"]) is dropout_model
    assert dropout_model.for_filled(["B11"]) is d and tiny_model.for_filled(["B11"]) is tiny_model
    path = save_pixel_baseline(dropout_model, tmp_path / "d.npz")
    with np.load(path, allow_pickle=False) as z:
        assert {"W0", "d0_W0", "d0_mean"} <= set(z.files)
    back = load_pixel_baseline(path)
    assert back.dropout is not None and back.dropout.threshold == d.threshold and "dropout" not in back.config
    f = pixel_features(_patch())
    np.testing.assert_array_equal(back.dropout.predict_10m(f), d.predict_10m(f))
    np.testing.assert_array_equal(back.predict_10m(f), dropout_model.predict_10m(f))
    # a dropout block that announces members the file lacks, or a threshold outside 0–1, is refused
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    cfg = json.loads(str(arrays["config"]))
    cfg["dropout"]["n_members"] = 2
    np.savez(tmp_path / "dm.npz", **{**arrays, "config": np.array(json.dumps(cfg))})
    with pytest.raises(ModelError, match="corrupt config"):
        load_pixel_baseline(tmp_path / "dm.npz")
    cfg["dropout"]["n_members"], cfg["dropout"]["threshold"] = 1, 7.0
    np.savez(tmp_path / "dt.npz", **{**arrays, "config": np.array(json.dumps(cfg))})
    with pytest.raises(ModelError, match="threshold"):
        load_pixel_baseline(tmp_path / "dt.npz")


def test_a_patch_with_filled_bands_is_predicted_by_the_dropout_members(tiny_model, dropout_model):
    """A patch whose SWIR bands came empty: the input path fills them, the band-dropout members predict and the
    prediction says so; a file without such members says that it was not trained for it."""
    from sr_core.baselines.pixel import without_bands
    from sr_core.prepare import prepare_input

    p = simulate_patch(7, 24, "test")
    lacking = without_bands(p, ["B11", "B12"])
    pred = pixel_baseline(lacking, dropout_model)
    f = pixel_features(prepare_input(lacking))
    np.testing.assert_array_equal(pred.extra["proba_10m"], dropout_model.dropout.predict_10m(f))
    assert pred.threshold == dropout_model.dropout.threshold
    assert any("band-dropout members" in w and "B11, B12" in w for w in pred.warnings), pred.warnings
    full = pixel_baseline(p, dropout_model)
    assert full.threshold == dropout_model.threshold and not any("band-dropout" in w for w in full.warnings)
    old = pixel_baseline(lacking, tiny_model)
    assert any("not trained for the filled bands (B11, B12)" in w for w in old.warnings), old.warnings


def test_real_patch_without_its_red_edge_bands_keeps_the_pixel_baseline_well_above_ndvi():
    """The real Flanders series with B05 B06 B07 B8A come empty: filled from B04 / B08, they read to the members
    trained on complete patches like nothing they learnt (simulator 2.7: 0.399, barely above the NDVI rule's 0.377;
    0.694 with every band). The band-dropout members, trained for filled bands, keep the bar where it belongs (2.7:
    0.695; 2.8: 0.680; 2.9: 0.708)."""
    from conftest import REAL, need

    from sr_core.baselines.ndvi import ndvi_baseline
    from sr_core.baselines.pixel import without_bands
    from sr_core.io import load_eopatch

    p = load_eopatch(need(REAL / "flanders-2019-fields-lpis"))
    lacking = without_bands(p, ["B05", "B06", "B07", "B8A"])
    w = weight_map(p.cultivated, p.not_declared)
    pred = pixel_baseline(lacking)
    pix = ConfusionCounts.from_arrays(p.cultivated, pred.binary, w).mcc
    ndvi = ConfusionCounts.from_arrays(p.cultivated, ndvi_baseline(lacking).binary, w).mcc
    assert any("band-dropout members" in x for x in pred.warnings), pred.warnings
    assert pix >= ndvi + 0.15, (pix, ndvi)  # measured: 0.708 against 0.377 (2.8: 0.680; 2.7's complete-patch members: 0.399)
