"""CLI predict / evaluate / bench with a tiny checkpoint: valid georeferenced GeoTIFFs and JSON output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sr_core.cli import main
from sr_core.model import SRNet, SRNetConfig, save_checkpoint
from tests.conftest import REAL_CHALLENGE, REAL_L1C, need

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(SRNet(SRNetConfig.preset("tiny")), tmp_path_factory.mktemp("m") / "tiny.pt", threshold=0.5)


@pytest.mark.parametrize("src", [REAL_CHALLENGE, REAL_L1C], ids=["challenge-layout", "eo-learn-1.x"])
def test_predict_writes_a_valid_submission_with_the_patch_grid(tmp_path, ckpt, src, capsys):
    import rasterio

    from sr_core.io.eopatch import load_eopatch

    src = need(src)
    out = tmp_path / "sub"
    rc = main(["predict", str(src), "--out", str(out), "--model", str(ckpt), "--device", "cpu", "--proba",
               "--uncertainty", "--json", "--threads", "1"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    rec = res["patches"][0]
    assert rec["device"] == "cpu" and rec["name"] == src.name
    patch = load_eopatch(src)
    tif = out / f"{src.name}.tif"
    assert sorted(p.name for p in out.iterdir()) == [tif.name]  # the submission folder holds the mask only
    with rasterio.open(tif) as ds:
        band = ds.read(1)
        assert ds.count == 1 and ds.dtypes[0] == "uint8" and band.shape == patch.label_shape
        assert set(np.unique(band)) <= {0, 1}
        assert ds.crs.to_epsg() == patch.bbox.epsg
        assert tuple(ds.transform)[:6] == pytest.approx(patch.label_transform)
    with rasterio.open(rec["proba"]) as ds:
        assert ds.shape == patch.label_shape and tuple(ds.transform)[:6] == pytest.approx(patch.label_transform)
    with rasterio.open(rec["uncertainty"]) as ds:
        u = ds.read(1)
        assert ds.dtypes[0] == "float32" and u.min() >= 0 and ds.crs.to_epsg() == patch.bbox.epsg


def test_predict_bad_model_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    rc = main(["predict", str(need(REAL_CHALLENGE)), "--out", str(tmp_path / "o"), "--model", str(bad)])
    assert rc == 2 and "unreadable" in capsys.readouterr().err


def test_evaluate_simulated_json(ckpt, capsys):
    rc = main(["evaluate", "--simulate", "1", "--size", "24", "--model", str(ckpt), "--device", "cpu", "--json",
               "--threads", "1"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_patches"] == 1 and {"model", "ndvi"} <= set(res["pooled"])
    for scores in res["pooled"].values():
        assert -1 <= scores["weighted_mcc"] <= 1 and "small (<50 px)" in scores["size_class_mcc"]
    assert "test" in res["source"]


def test_bench_json(ckpt, capsys):
    rc = main(["bench", "--size", "24", "--dates", "3", "--runs", "1", "--crop", "8", "--model", str(ckpt),
               "--device", "cpu", "--json", "--threads", "1"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert {"model_seconds", "srresnet_seconds", "speedup", "peak_rss_mb", "device", "params"} <= set(res)
    assert res["device"] == "cpu" and res["model_seconds"] > 0 and res["srresnet_params"] > 15_000_000
    assert any("scaled" in n for n in res["notes"])


def test_the_maps_say_what_made_them(tmp_path):
    """A predicted GeoTIFF carries its provenance as metadata (QGIS: Layer Properties → Information): predictor and
    threshold, season and dates used, cloud source, filled bands, warnings; and never a server path."""
    import dataclasses

    import rasterio

    from sr_core.inference import predict
    from sr_core.io.geotiff import write_probability, write_submission
    from sr_core.patch import Source
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(16, size=24, split="test")
    pred = predict(sim, device="cpu")
    for path in (write_submission(pred, sim, tmp_path), write_probability(pred, sim, tmp_path)):
        with rasterio.open(path) as r:
            tags = r.tags()
        assert tags["SR_PREDICTOR"] == "model:sr-small.pt" and float(tags["SR_THRESHOLD"]) == pred.threshold
        assert tags["SR_SEASON"] == "2019" and f"({sim.n_dates} of {sim.n_dates} dates)" in tags["SR_DATES"]
        assert tags["SR_CLOUD_SOURCE"] == "CLM" and tags["SR_FILLED_BANDS"] == "none"
        assert "/" not in tags["SR_PREDICTOR"] and str(tmp_path) not in str(tags)
        assert tags["SR_INPUT_SOURCE"].startswith("SIMULATED")  # a map of a simulated patch says so wherever it goes
    real_layout = sim.replace(info=dataclasses.replace(sim.info, source=Source.REAL))
    with rasterio.open(write_submission(pred, real_layout, tmp_path / "r")) as r:
        assert r.tags()["SR_INPUT_SOURCE"] == "real"
