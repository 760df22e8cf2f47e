"""Real labelled monthly points (sr_core.points): reading, the label and season mapping, tiles, and the training
loss that uses them (tiny sizes). The real WorldCereal points in ../shared are read when present."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_core.bands import BAND_NAMES
from sr_core.errors import ConfigError
from sr_core.points import POINT_BANDS, load_points, point_tiles
from sr_core.simulate import simulate_patch
from sr_core.train import POINT_TILE, TrainConfig, Trainer, points_score, sample_points

REAL_POINTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "worldcereal-monthly-points"
FIELDS = ["lat", "lon", "start_date", "LANDCOVER_LABEL", "pixelids"]


def _write(root: Path, rows: list[dict], dn: np.ndarray) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with gzip.open(root / "S2_monthly.npy.gz", "wb") as f:
        np.save(f, dn)
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    dn = rng.integers(200, 4000, size=(5, 12, len(POINT_BANDS))).astype(np.uint16)
    dn[1, 4, :] = 0  # no data in one month of the grassland point
    rows = [
        dict(lat=46.1, lon=14.5, start_date="2018-11-01", LANDCOVER_LABEL=11, pixelids=1),  # crop, Slovenia
        dict(lat=51.0, lon=3.0, start_date="2019-01-01", LANDCOVER_LABEL=13, pixelids=2),  # grassland, Flanders
        dict(lat=-30.7, lon=-63.6, start_date="2018-12-28", LANDCOVER_LABEL=11, pixelids=3),  # Argentina: left out
        dict(lat=47.0, lon=1.0, start_date="2017-10-01", LANDCOVER_LABEL=99, pixelids=4),  # unknown: left out
        dict(lat=45.0, lon=10.0, start_date="2017-10-01", LANDCOVER_LABEL=60, pixelids=5),  # built-up
    ]
    return _write(tmp_path / "pts", rows, dn), dn


def test_points_keep_the_season_months_dated_and_filled(folder):
    root, dn = folder
    p = load_points(root)
    assert len(p) == 3 and p.label.tolist() == [1.0, 0.0, 0.0] and p.landcover.tolist() == [11, 13, 60]
    assert p.bands.shape == (3, 6, 12) and p.doy.shape == (3, 6)
    # crop point: start November 2018 → March 2019 is month index 4; 15 March = day 74
    assert p.doy[0, 0] == pytest.approx(74.0) and p.doy[0, -1] == pytest.approx(227.0)  # 15 August
    b02, b8a = POINT_BANDS.index("B02"), POINT_BANDS.index("B8A")
    np.testing.assert_allclose(p.bands[0, 0, BAND_NAMES.index("B02")], dn[0, 4, b02] * 1e-4, rtol=1e-6)
    np.testing.assert_array_equal(p.bands[..., BAND_NAMES.index("B01")], p.bands[..., BAND_NAMES.index("B02")])
    np.testing.assert_array_equal(p.bands[..., BAND_NAMES.index("B09")], p.bands[..., BAND_NAMES.index("B8A")])
    assert p.bands[0, 0, BAND_NAMES.index("B8A")] == pytest.approx(dn[0, 4, b8a] * 1e-4)
    # grassland point starts in January: May is month index 4, the month without data
    assert p.valid[1].tolist() == [True, True, False, True, True, True]
    assert len(load_points(root, region=None)) == 4  # the Argentinian crop joins when no region is asked


def test_holdout_is_fixed_and_disjoint(folder):
    p = load_points(folder[0], region=None)
    a, b = p.holdout(0.5)
    a2, b2 = p.holdout(0.5)
    assert a.ids == a2.ids and b.ids == b2.ids and not set(a.ids) & set(b.ids) and len(a) + len(b) == len(p)


def test_a_folder_without_the_array_is_refused(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"S2_monthly\.npy\.gz"):
        load_points(tmp_path / "empty")
    root, dn = folder
    _write(root, [dict(lat=46, lon=14, start_date="2019-01-01", LANDCOVER_LABEL=11, pixelids=1)], dn)
    with pytest.raises(ConfigError, match=r"to match labels\.csv"):
        load_points(root)


def test_tiles_and_point_batches(folder):
    p = load_points(folder[0])
    bands, valid, doy, label = point_tiles(p, np.array([0, 2]), tile=8)
    assert doy.shape == (2, 6)
    assert bands.shape == (2, 6, 8, 8, 12) and valid.shape == (2, 6, 8, 8) and label.shape == (2, 1, 32, 32)
    assert (bands[0] == p.bands[0][:, None, None]).all() and label[0].min() == 1 and label[1].max() == 0
    batch = sample_points(p, np.random.default_rng(1), 3, augment=1.0)
    assert batch.bands.shape[2] == POINT_TILE and batch.weight.sum() == 3 * (2 * POINT_TILE) ** 2
    assert (batch.present.sum(1) >= 2).all()
    assert not batch.valid[~batch.present[:, :, None, None].expand_as(batch.valid)].any()


def test_training_with_points_scores_them(tmp_path):
    rng = np.random.default_rng(3)
    rows = [dict(lat=46.0, lon=14.0 + i / 100, start_date="2018-11-01", LANDCOVER_LABEL=(11, 13)[i % 2], pixelids=i)
            for i in range(20)]
    root = _write(tmp_path / "many", rows, rng.integers(200, 4000, size=(20, 12, 10)).astype(np.uint16))
    assert len(load_points(root).holdout(0.2)[1]) > 0
    cfg = TrainConfig(steps=2, batch=2, crop=16, preset="tiny", sim_size=24, pool=2, refresh_every=2, val_patches=1,
                      val_size=16, val_every=2, ckpt_every=2, warmup=1, lr=3e-3, points=str(root),
                      points_batch=2)
    logs: list[str] = []
    tr = Trainer(tmp_path / "p.pt", cfg, device="cpu", source=lambda s, n, sp: simulate_patch(s, size=n, split=sp),
                 log=logs.append)
    assert "real points:" in logs[0]
    tr.run(progress=False)
    last = tr.history[-1]
    assert last["step"] == 2  # validated at the last step: the EMA weights below are the ones it scored
    # the history records the EMA network's score on the held-out points at the validation's own threshold
    assert len(tr.points_val) == len(load_points(root).holdout(0.2)[1])
    want = points_score(tr.ema, tr.points_val, torch.device("cpu"), last["best_threshold"])
    assert last["points_mcc"] == pytest.approx(want["points_mcc"])
    assert last["points_accuracy"] == pytest.approx(want["points_accuracy"])
    assert "real labelled points" in tr.provenance()["data"]


@pytest.mark.skipif(not REAL_POINTS.is_dir(), reason="../shared/data/real/worldcereal-monthly-points is not here")
def test_real_worldcereal_points_in_europe():
    from sr_core.model import load_model

    p = load_points(REAL_POINTS)
    assert 200 <= len(p) <= 300 and 0.2 < p.label.mean() < 0.4 and p.valid.mean() > 0.9
    ndvi = lambda i: (p.bands[i, :, 7] - p.bands[i, :, 3]) / (p.bands[i, :, 7] + p.bands[i, :, 3] + 1e-6)  # noqa: E731
    crops, grass = np.flatnonzero(p.landcover == 11), np.flatnonzero(p.landcover == 13)
    # real phenology: grassland is green all season, crops are bare for part of it
    assert np.median([ndvi(i).min() for i in grass]) > np.median([ndvi(i).min() for i in crops])
    # the bundled model trained on the 80 % that holdout() keeps for training (train --points): it has learned them
    # (phase T: MCC 0.93, accuracy 0.97), far above what it scores on the 20 % held out (evaluate --points: 0.51)
    trained, _ = p.holdout(0.2)
    s = points_score(load_model(None), trained, torch.device("cpu"), 0.55)
    assert s["points_mcc"] > 0.8 and s["points_accuracy"] > 0.9


# -- evaluate --points ------------------------------------------------------------------------------------------------
def test_point_patch_is_the_training_tile_and_predict_reads_it_as_training_does(folder):
    """A point as a Patch (for every predictor's own input path) holds the same values as the training tile, and
    the model's centre pixel through ``predict`` equals the network's on the tile (what ``points_score`` reads)."""
    from sr_core.inference import predict
    from sr_core.model import SRNet, SRNetConfig
    from sr_core.points import POINT_TILE, point_patch

    pts = load_points(folder[0])
    patch = point_patch(pts, 1)
    b, v, d, _ = point_tiles(pts, np.array([1]), POINT_TILE)
    assert patch.bands.shape == (6, POINT_TILE, POINT_TILE, 12) and patch.info.source.value == "real"
    assert np.array_equal(patch.is_data, v[0]) and not patch.is_data[2].any()  # the month without data (May)
    np.testing.assert_array_equal(patch.bands[v[0]], b[0][v[0]])
    assert [t.month for t in patch.timestamps] == [3, 4, 5, 6, 7, 8]
    torch.manual_seed(0)
    net = SRNet(SRNetConfig.preset("tiny")).eval()
    with torch.no_grad():
        lg = net(torch.from_numpy(b), torch.from_numpy(v), torch.from_numpy(d))
    c = 4 * POINT_TILE // 2
    p = predict(patch, device="cpu", model=net, threshold=0.5)
    assert p.proba[c, c] == pytest.approx(float(torch.sigmoid(lg[0, 0, c, c])), abs=1e-5)


def test_evaluate_points_cli_scores_every_predictor_and_refuses_bad_flags(folder, capsys):
    import json

    from sr_core.cli import main

    root, _ = folder
    rc = main(["evaluate", "--points", str(root), "--all-points", "--device", "cpu", "--threads", "1", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads(out.out)
    assert doc["data"] == "real" and doc["subset"] == "all" and doc["n_points"] == 3 and doc["n_cultivated"] == 1
    assert set(doc["pooled"]) == {"model", "ndvi", "pixel"}
    for rec in doc["pooled"].values():
        assert rec["tp"] + rec["fp"] + rec["fn"] + rec["tn"] == 3 and -1 <= rec["mcc"] <= 1
    assert set(doc["by_landcover"]) == {"11 annual crop", "13 grassland", "60 built-up"}
    assert any("80 %" in n for n in doc["notes"])  # scoring all points says what the model has seen
    assert main(["evaluate", "--all-points", "--device", "cpu"]) == 2
    assert "--all-points goes with --points" in capsys.readouterr().err
    assert main(["evaluate", "--points", str(root), "--oracles", "--device", "cpu"]) == 2
    assert "--oracles does not apply to --points" in capsys.readouterr().err
    assert main(["evaluate", "--points", str(root), "--season", "2020", "--device", "cpu"]) == 2
    assert "--season does not apply to --points" in capsys.readouterr().err


@pytest.mark.skipif(not REAL_POINTS.is_dir(), reason="../shared/data/real/worldcereal-monthly-points is not here")
def test_real_held_out_points_scored_as_training_scores_them(capsys):
    """``evaluate --points`` on the real WorldCereal points scores the 43 that training holds out, and the bundled
    model's figure there is the one its training recorded (``points_score``)."""
    import json

    from sr_core.cli import main
    from sr_core.inference import get_model

    rc = main(["evaluate", "--points", str(REAL_POINTS), "--device", "cpu", "--threads", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    held = load_points(REAL_POINTS).holdout(0.2)[1]
    assert rc == 0 and doc["n_points"] == len(held) and doc["subset"].startswith("held out")
    net = get_model(None, torch.device("cpu"))
    assert doc["pooled"]["model"]["mcc"] == pytest.approx(points_score(net, held, torch.device("cpu"), 0.55)["points_mcc"])
    assert doc["pooled"]["model"]["mcc"] > doc["pooled"]["ndvi"]["mcc"]


def test_hostile_or_broken_points_folders_are_clear_errors_never_unpickled(folder, tmp_path):
    """An object array (a pickle), a file that is not gzip, text in the array, a CSV without its columns or with a
    bad row: each is a ConfigError naming the file and the fix; nothing is unpickled."""
    _, dn = folder
    rows = [dict(lat=46.1, lon=14.5, start_date="2018-11-01", LANDCOVER_LABEL=11, pixelids=1)]
    bad = tmp_path / "bad"
    _write(bad, rows, dn[:1])
    with gzip.open(bad / "S2_monthly.npy.gz", "wb") as f:
        np.save(f, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match="plain numeric"):
        load_points(bad)
    (bad / "S2_monthly.npy.gz").write_bytes(b"not gzip")
    with pytest.raises(ConfigError, match="gzipped"):
        load_points(bad)
    with gzip.open(bad / "S2_monthly.npy.gz", "wb") as f:
        np.save(f, np.array([["a"] * 10] * 12)[None])
    with pytest.raises(ConfigError, match="uint16"):
        load_points(bad)
    _write(bad, [dict(lat="north", lon=14.5, start_date="2018-11-01", LANDCOVER_LABEL=11, pixelids=1)], dn[:1])
    with pytest.raises(ConfigError, match="row 2"):
        load_points(bad)
    (bad / "labels.csv").write_text("lat,lon\n46,14\n")
    with pytest.raises(ConfigError, match="start_date"):
        load_points(bad)
