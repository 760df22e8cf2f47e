"""`python -m sr_core predict` with --scheduler (Dask batch) and --compute-clouds, end to end through the CLI."""

from __future__ import annotations

import json

import pytest

from sr_core.cli import main


@pytest.fixture
def tiny_ckpt(tmp_path):
    import torch

    from sr_core.model import SRNet, SRNetConfig
    from sr_core.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(SRNet(SRNetConfig.preset("tiny")), tmp_path / "tiny.pt") or tmp_path / "tiny.pt"


@pytest.fixture
def folder(tmp_path):
    from sr_core.io import write_eopatch
    from sr_core.simulate import simulate_patch

    root = tmp_path / "patches"
    for seed in (1, 2):
        p = simulate_patch(seed, size=16, split="test")
        write_eopatch(p, root / p.name)
    return root


def test_predict_with_local_scheduler_is_idempotent(folder, tiny_ckpt, tmp_path, capsys):
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    args = ["predict", str(folder), "--out", str(out), "--model", str(tiny_ckpt), "--scheduler", "local:1", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["done"] == 2 and first["failed"] == 0
    assert sorted(p.name for p in out.glob("*.tif")) == sorted(f"{p.name}.tif" for p in folder.iterdir())
    assert (tmp_path / "out_mosaic.vrt").is_file() and (tmp_path / "out_index.gpkg").is_file()
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["skipped"] == 2 and again["done"] == 0


def test_predict_computes_missing_cloud_masks(tmp_path, tiny_ckpt, capsys):
    """A patch with no cloud layer at all (no CLM, CLP or SCL): --compute-clouds runs s2cloudless and the prediction
    reads its mask; without the flag every pixel is taken as clear and a warning says so."""
    pytest.importorskip("s2cloudless")
    from sr_core.io import write_eopatch
    from sr_core.simulate import simulate_patch

    bare = simulate_patch(3, size=16, split="test").replace(cloud_prob=None, cloud_mask=None, scl=None)
    src = write_eopatch(bare, tmp_path / "in" / bare.name)
    common = ["--model", str(tiny_ckpt), "--json", "--threads", "1"]
    assert main(["predict", str(src), "--out", str(tmp_path / "o"), "--compute-clouds", *common]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["patches"][0]
    assert (tmp_path / "o" / f"{bare.name}.tif").is_file()
    assert rec["name"] == bare.name
    assert rec["input"]["cloud_source"] == "CLM"  # the computed mask is what the model read
    assert not any("no cloud layer" in w for w in rec["warnings"])

    assert main(["predict", str(src), "--out", str(tmp_path / "o2"), *common]) == 0
    plain = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["patches"][0]
    assert plain["input"]["cloud_source"] == "none"
    assert any("no cloud layer" in w for w in plain["warnings"])  # the user is told no pixel was masked
