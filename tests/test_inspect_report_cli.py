"""The inspector's one-page report (HTML / PDF) and the ``inspect`` command."""

from __future__ import annotations

import base64
import json
import re

import pytest

from sr_core.cli import main
from sr_core.errors import ConfigError

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def sim_patch():
    from sr_core.simulate import simulate_patch

    return simulate_patch(15, size=32, split="test")


@pytest.fixture
def tiny_model():
    from sr_core.model import SRNet, SRNetConfig

    torch.manual_seed(0)
    return SRNet(SRNetConfig.preset("tiny"))


@pytest.fixture
def checkpoint(tmp_path, tiny_model):
    from sr_core.model import save_checkpoint

    return save_checkpoint(tiny_model, tmp_path / "tiny.pt", threshold=0.5)


@pytest.fixture
def inspection(sim_patch, tiny_model):
    from sr_core.inspect import inspect_patch

    return inspect_patch(sim_patch, model=tiny_model, device="cpu", tta=2, answer="model", probes=True,
                         probe_names=("clouded", "constant"))


def _pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", data))


def test_html_report_is_self_contained(tmp_path, sim_patch, inspection):
    from sr_core.report import render_report

    out = render_report(sim_patch, inspection, tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "SIMULATED" in text
    assert "http://" not in text and "https://" not in text  # no network needed to view it
    b64 = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text).group(1)
    assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    h = inspection.counts.headline()
    assert f"{h['omission_fraction']:.2%}" in text  # the figures are in the tables
    assert "clouded" in text and "Reliability curve" in text
    b = sim_patch.bbox  # where the maps lie, in the patch's own CRS
    assert f"EPSG:{b.epsg}, extent {b.min_x:.1f}, {b.min_y:.1f} – {b.max_x:.1f}, {b.max_y:.1f}" in text


def test_pdf_report_is_one_page(tmp_path, sim_patch, inspection):
    from sr_core.report import render_report, report_bytes

    data = render_report(sim_patch, inspection, tmp_path / "sub" / "r.pdf").read_bytes()
    assert data.startswith(b"%PDF") and _pdf_pages(data) == 1
    assert _pdf_pages(report_bytes(sim_patch, inspection, "pdf")) == 1
    with pytest.raises(ConfigError, match=r"\.html or \.pdf"):
        render_report(sim_patch, inspection, tmp_path / "r.docx")


def test_report_of_an_unlabelled_real_style_patch(tmp_path, sim_patch, tiny_model):
    from sr_core.inspect import inspect_patch
    from sr_core.report import render_report

    unl = sim_patch.replace(cultivated=None, not_declared=None, all_polys=None)
    ins = inspect_patch(unl, model=tiny_model, device="cpu", tta=1, answer="model")
    text = render_report(unl, ins, tmp_path / "u.html").read_text(encoding="utf-8")
    assert "no labels" in text and "Outcomes against" not in text


def test_cli_inspect_patch_json_and_report(tmp_path, sim_patch, checkpoint, capsys):
    from sr_core.io import write_eopatch

    folder = write_eopatch(sim_patch, tmp_path / "eopatch-sim")
    report = tmp_path / "rep.pdf"
    rc = main(["inspect", str(folder), "--model", str(checkpoint), "--device", "cpu", "--tta", "2", "--answer", "model",
               "--json", "--report", str(report)])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_labelled"] == 1 and d["report"] == str(report) and report.read_bytes().startswith(b"%PDF")
    h = d["headline"]
    for key in ("hallucination_fraction", "omission_fraction", "gap_recall", "ece", "uncertainty_error_auc"):
        assert h[key] is not None and 0.0 <= h[key] <= 1.0
    assert d["uncertainty_kind"].startswith("std over 2")


def test_cli_inspect_text_output(tmp_path, sim_patch, checkpoint, capsys):
    from sr_core.io import write_eopatch

    folder = write_eopatch(sim_patch, tmp_path / "eopatch-sim")
    assert main(["inspect", str(folder), "--model", str(checkpoint), "--device", "cpu", "--tta", "1",
                 "--answer", "model"]) == 0
    out = capsys.readouterr().out
    assert "hallucination fraction" in out and "gap recall" in out and "verdict:" in out


def test_cli_inspect_simulated_pools(checkpoint, capsys):
    rc = main(["inspect", "--simulate", "2", "--size", "16", "--model", str(checkpoint), "--device", "cpu",
               "--tta", "2", "--answer", "model", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["pooled"]["n_patches"] == 2 and len(d["patches"]) == 2 and d["seeds"] == [500000, 500001]
    assert d["split"] == "test"


def test_cli_inspect_usage_errors(tmp_path, checkpoint, capsys):
    assert main(["inspect"]) == 2
    assert "either an EOPatch PATH or --simulate" in capsys.readouterr().err
    assert main(["inspect", "--simulate", "1", "--report", str(tmp_path / "x.html"), "--model", str(checkpoint)]) == 2
    assert "--report describes one patch" in capsys.readouterr().err
    assert main(["inspect", "--simulate", "1", "--size", "16", "--model", str(tmp_path / "missing.pt")]) == 2
    assert "not found" in capsys.readouterr().err



def test_report_draws_no_bar_for_a_size_class_without_parcels(sim_patch):
    """A perfect map of a small patch: most parcel-size classes hold no parcel. Those are written "none" on the
    chart, not drawn as 0 % detected (every bar drawn is a measured rate, here 100 %)."""
    import numpy as np

    from sr_core.inspect import inspect_patch
    from sr_core.prediction import Prediction
    from sr_core.report import build_figure

    pred = Prediction(sim_patch.cultivated.astype(np.float32), sim_patch.bbox, sim_patch.name, predictor="oracle")
    ins = inspect_patch(sim_patch, prediction=pred, answer="model")
    rows = ins.counts.resolution.object_table()
    empty = [r for r in rows if r["detection_rate"] is None]
    assert empty, "the fixture should leave a size class without parcels"
    fig = build_figure(sim_patch, ins)
    ax = next(a for a in fig.axes if a.get_title().startswith("Parcels detected"))
    heights = [b.get_height() for b in ax.patches]
    assert len(heights) == len(rows) - len(empty) and all(h == 1.0 for h in heights)
    assert sum(t.get_text() == "none" for t in ax.texts) == len(empty)
