"""``python -m sr_core score`` and ``python -m sr_core baseline``: end to end on small EOPatch folders."""

from __future__ import annotations

import json
import sys
import tarfile
import types
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sr_core import BBox, Patch, PatchInfo
from sr_core.baselines.ndvi import ndvi_baseline
from sr_core.cli import main
from sr_core.io.eopatch import load_eopatch, write_eopatch
from sr_core.io.submission import load_truth, score_submission, write_submission
from sr_core.metrics import Scores, evaluate
from sr_core.prediction import Prediction


def make_patch(i: int) -> Patch:
    """12 × 12 px at 10 m with crop-like (NDVI ≈ 0.5) and forest-like (≈ 0.8) blocks and matching labels."""
    rng = np.random.default_rng(i)
    H = W = 12
    T = 3
    crop10 = np.kron(rng.random((3, 3)) < 0.5, np.ones((4, 4), bool))
    ndvi = np.where(crop10, 0.5, 0.8) + rng.normal(0, 0.03, (T, H, W))
    bands = np.full((T, H, W, 12), 0.05, np.float32)
    bands[..., 7] = 0.3  # B08
    bands[..., 3] = 0.3 * (1 - ndvi) / (1 + ndvi)  # B04
    cult = np.kron(crop10, np.ones((4, 4), bool))
    cult[::16, :] = False  # gaps between fields
    x0, y0 = 400_000.0 + 500 * i, 5_000_000.0
    return Patch(
        bands=bands, timestamps=[datetime(2019, 5, 1) + timedelta(days=9 * t) for t in range(T)],
        bbox=BBox(x0, y0, x0 + 120, y0 + 120), cloud_mask=np.zeros((T, H, W), bool), is_data=np.ones((T, H, W), bool),
        cultivated=cult, not_declared=np.zeros_like(cult), info=PatchInfo(name=f"eopatch-{i:02d}"),
    )


@pytest.fixture
def truth_dir(tmp_path) -> Path:
    d = tmp_path / "truth"
    for i in (1, 2):
        write_eopatch(make_patch(i), d / f"eopatch-{i:02d}")
    return d


def test_baseline_ndvi_then_score(truth_dir, tmp_path, capsys):
    out = tmp_path / "sub"
    assert main(["baseline", "ndvi", str(truth_dir), "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["eopatch-01.tif", "eopatch-02.tif"]
    assert "wrote 2 submission file(s)" in capsys.readouterr().out

    assert main(["score", str(out), "--truth", str(truth_dir), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # the same numbers from the library, computed directly on the patches (no files involved)
    patches = [load_eopatch(truth_dir / f"eopatch-0{i}") for i in (1, 2)]
    direct = Scores.pool(evaluate(p.cultivated, ndvi_baseline(p), p.not_declared, name=p.name) for p in patches)
    assert doc["valid"] is True and doc["weighted_mcc"] == pytest.approx(direct.wmcc, abs=1e-12)
    assert 0.5 < doc["weighted_mcc"] < 1.0  # the blocks are found, their edges blurred by the bicubic upsampling
    assert [p["name"] for p in doc["patches"]] == ["eopatch-01", "eopatch-02"]
    assert set(doc["pooled"]["size_class_mcc"]) == {"small (<50 px)", "medium (50-400 px)", "large (>=400 px)"}

    assert main(["score", str(out), "--truth", str(truth_dir)]) == 0
    text = capsys.readouterr().out
    assert f"weighted MCC (benchmark score): {direct.wmcc:.4f}" in text
    for part in ("eopatch-01", "eopatch-02", "pooled", "wMCC", "IoU", "size class", "boundary F1"):
        assert part in text


def test_score_perfect_and_invalid(truth_dir, tmp_path, capsys):
    out = tmp_path / "sub"
    for i in (1, 2):
        t = load_truth(truth_dir / f"eopatch-0{i}")
        write_submission(t.cultivated, t.bbox, out, name=f"eopatch-0{i}")
    assert main(["score", str(out), "--truth", str(truth_dir), "--json", "--no-diagnostics"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["weighted_mcc"] == pytest.approx(1.0) and doc["pooled"]["size_classes"] == {}

    t = load_truth(truth_dir / "eopatch-02")
    write_submission(t.cultivated[:40, :40], BBox(t.bbox.min_x, t.bbox.min_y + 20, t.bbox.max_x - 20, t.bbox.max_y), out,
                     name="eopatch-02")
    (out / "notes.txt").write_text("x")
    assert main(["score", str(out), "--truth", str(truth_dir)]) == 1
    text = capsys.readouterr().out
    assert "eopatch-02.tif: is 40 × 40 px" in text and "notes.txt: not a .tif file" in text and "bounds" in text
    assert "weighted MCC" not in text
    assert main(["score", str(out), "--truth", str(truth_dir), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False and doc["weighted_mcc"] is None and len(doc["validation"]["problems"]) == 3


def test_score_usage_errors(truth_dir, tmp_path, capsys):
    assert main(["score", str(tmp_path / "absent"), "--truth", str(truth_dir)]) == 2
    assert "error:" in capsys.readouterr().err
    (tmp_path / "sub").mkdir()
    assert main(["score", str(tmp_path / "sub"), "--truth", str(tmp_path / "sub")]) == 2
    assert "no EOPatch folder" in capsys.readouterr().err


def test_baseline_accepts_archives_and_single_folders(truth_dir, tmp_path, capsys):
    archive = tmp_path / "patches.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(truth_dir / "eopatch-02", "eopatch-02")
    out = tmp_path / "sub"
    assert main(["baseline", "ndvi", str(truth_dir / "eopatch-01"), str(archive), "--out", str(out), "--quiet",
                 "--proba-dir", str(tmp_path / "proba")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["eopatch-01.tif", "eopatch-02.tif"]
    assert sorted(p.name for p in (tmp_path / "proba").iterdir()) == ["eopatch-01_proba.tif", "eopatch-02_proba.tif"]
    assert score_submission(out, truth_dir).ok


def test_baseline_pixel_missing_module_is_a_clear_error(truth_dir, tmp_path, capsys, monkeypatch):
    import sr_core.baselines as pkg

    monkeypatch.setitem(sys.modules, "sr_core.baselines.pixel", None)  # as if the module did not exist
    monkeypatch.delattr(pkg, "pixel", raising=False)
    assert main(["baseline", "pixel", str(truth_dir), "--out", str(tmp_path / "sub")]) == 2
    err = capsys.readouterr().err
    assert "sr_core.baselines.pixel" in err and "baseline ndvi" in err


def test_baseline_pixel_calls_the_module(truth_dir, tmp_path, capsys, monkeypatch):
    import sr_core.baselines as pkg

    calls = []
    fake = types.ModuleType("sr_core.baselines.pixel")

    def load_pixel_baseline(path=None):
        calls.append(("load", path))
        return "MODEL"

    def pixel_baseline(patch, model=None):
        calls.append(("predict", patch.name, model))
        return Prediction(proba=patch.cultivated.astype(np.float32), bbox=patch.bbox, name=patch.name,
                          predictor="baseline:pixel", warnings=("a test warning",))

    fake.load_pixel_baseline, fake.pixel_baseline = load_pixel_baseline, pixel_baseline
    monkeypatch.setitem(sys.modules, "sr_core.baselines.pixel", fake)
    monkeypatch.setattr(pkg, "pixel", fake, raising=False)
    model = tmp_path / "m.pt"
    assert main(["baseline", "pixel", str(truth_dir), "--out", str(tmp_path / "sub"), "--model", str(model)]) == 0
    assert calls == [("load", model), ("predict", "eopatch-01", "MODEL"), ("predict", "eopatch-02", "MODEL")]
    assert "warning: a test warning" in capsys.readouterr().err
    assert score_submission(tmp_path / "sub", truth_dir).pooled.wmcc == pytest.approx(1.0)
