"""The Hallucinations page runs headless (streamlit AppTest) on a small labelled patch and on an unlabelled one."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
PAGE = str(REPO / "pages" / "4_Hallucinations.py")
TIMEOUT = 120


@pytest.fixture(scope="module")
def sim():
    from sr_core.simulate import simulate_patch

    return simulate_patch(15, size=24, split="test")


@pytest.fixture
def patch_dirs(tmp_path, sim):
    from sr_core.io import write_eopatch

    labelled = write_eopatch(sim, tmp_path / "eopatch-lab")
    unlabelled = write_eopatch(sim.replace(cultivated=None, not_declared=None, all_polys=None), tmp_path / "eopatch-unl")
    return labelled, unlabelled


@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    import torch

    import sr_core.model as model_pkg
    from sr_core.inference import clear_model_cache
    from sr_core.model import SRNet, SRNetConfig, save_checkpoint

    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = save_checkpoint(SRNet(SRNetConfig.preset("tiny")), tmp_path / "tiny.pt")
    monkeypatch.setattr(model_pkg, "default_model_path", lambda: path)
    clear_model_cache()
    yield path
    clear_model_cache()


def _open(path: Path) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["selected_patch_path"] = str(path)
    at.session_state["device"] = "cpu"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    failures = [e.value for e in at.error if "could not run" in e.value]  # BAD verdicts are shown as errors too
    assert not failures, failures


def test_page_inspects_a_labelled_patch_runs_probes_and_builds_the_report(patch_dirs, tiny_model):
    at = _open(patch_dirs[0])
    assert any("Inspect this patch" in i.value for i in at.info)
    at.select_slider(key="halluc_tta").set_value(2)
    at.radio(key="halluc_answer").set_value("model")
    at.button(key="halluc_run").click().run()
    _ok(at)
    labels = {m.label: m.value for m in at.metric}
    assert "Wrong departures" in labels and "Gap recall" in labels
    assert labels["ECE"] != "–"  # labels present: calibration computed
    assert len(at.dataframe) == 1  # the outcome table; the other tabs' content runs only when opened
    assert not any("Skill by distance" in m.value for m in at.markdown)
    # a simulated patch: the page says how much of the error is the declared labels' own digitising offset
    assert any("The labels' own error" in m.value and "SIMULATED" in m.value for m in at.markdown)
    at.session_state["halluc_tab"] = "Effective resolution"
    at.run()
    _ok(at)
    assert len(at.dataframe) == 3  # distance, parcels detected, MCC by parcel size
    assert any("Skill by distance" in m.value for m in at.markdown)
    assert not at.metric  # the first tab's headline is not drawn
    at.session_state["halluc_tab"] = "Probes"
    at.run()
    at.button(key="halluc_probes").click().run()
    _ok(at)
    probes = at.dataframe[-1].value
    assert {"clouded", "constant", "dates_shuffled", "pixels_shuffled", "forest_simulated"} <= set(probes.index)
    assert probes["cultivated"].dropna().between(0, 1).all()
    at.session_state["halluc_tab"] = "Report"
    at.run()
    at.button(key="halluc_report").click().run()
    _ok(at)
    report = at.session_state["halluc_report_data"]
    assert report["pdf"].startswith(b"%PDF")
    assert b"pixels_shuffled" in report["html"]  # the probes run on their tab are in the report made on another


def test_page_shows_label_free_parts_for_an_unlabelled_patch(patch_dirs, tiny_model):
    at = _open(patch_dirs[1])
    at.select_slider(key="halluc_tta").set_value(1)
    at.radio(key="halluc_answer").set_value("model")
    at.button(key="halluc_run").click().run()
    _ok(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Wrong departures"] == "–" and labels["Departures"] != "–"
    assert any("needs labels" in i.value or "No labels" in i.value for i in at.info)


def test_page_says_what_to_do_without_a_model(patch_dirs, tmp_path, monkeypatch):
    import sr_core.model as model_pkg
    from sr_core.inference import clear_model_cache

    monkeypatch.setattr(model_pkg, "default_model_path", lambda: tmp_path / "none.pt")
    clear_model_cache()
    at = _open(patch_dirs[0])
    at.button(key="halluc_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("not found" in e.value for e in at.error)
    assert any("No trained model" in i.value for i in at.info)
