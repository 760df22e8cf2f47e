"""Every page runs headless (streamlit AppTest): no exception, key widgets exist, patch and date changes work,
running the model shows metrics. The demo build is switched off; a small labelled patch is served as real data."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sr_core import BBox, Patch
from sr_core.patch import PatchInfo

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def _patch(name: str, seed: int) -> Patch:
    rng = np.random.default_rng(seed)
    T, H, W = 4, 12, 16
    truth = np.zeros((4 * H, 4 * W), bool)
    truth[4:20, 6:30] = True
    truth[26:44, 36:60] = True
    bands = rng.uniform(0.02, 0.3, (T, H, W, 12)).astype(np.float32)
    return Patch(
        bands=bands, timestamps=[datetime(2019, 4, 1) + timedelta(days=12 * i) for i in range(T)],
        bbox=BBox(540000.0, 5120000.0, 540000.0 + 10 * W, 5120000.0 + 10 * H),
        cloud_prob=rng.uniform(0, 0.3, (T, H, W)).astype(np.float32), cloud_mask=rng.uniform(0, 1, (T, H, W)) > 0.9,
        is_data=np.ones((T, H, W), bool), scl=np.full((T, H, W), 4, np.uint8), cultivated=truth,
        not_declared=np.zeros_like(truth), info=PatchInfo(name=name),
    )


@pytest.fixture
def served(tmp_path, monkeypatch):
    from sr_core.io import write_eopatch

    root = tmp_path / "real"
    paths = [write_eopatch(_patch(f"eopatch-{i:02d}", i), root / f"eopatch-{i:02d}") for i in (1, 2)]
    monkeypatch.setenv("SR_CORE_DATA", str(root))
    monkeypatch.setenv("SR_CORE_DEMO", "off")
    import streamlit as st

    st.cache_data.clear()  # the catalogue is cached per process: forget the previous test's folders
    return paths


@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    import torch

    import sr_core.model as model_pkg
    from sr_core.inference import clear_model_cache
    from sr_core.model import SRNet, SRNetConfig
    from sr_core.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_checkpoint(SRNet(SRNetConfig.preset("tiny")), path)
    monkeypatch.setattr(model_pkg, "default_model_path", lambda: path)
    clear_model_cache()
    yield path
    clear_model_cache()


def _run(page: str, selected: Path | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / page), default_timeout=TIMEOUT)
    if selected is not None:
        at.session_state["selected_patch_path"] = str(selected)
    return at.run()


def test_home_lists_patches_and_selects_one(served):
    at = _run("pages/0_Home.py")
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.dataframe) == 1
    df = at.dataframe[0].value
    assert sorted(df["name"]) == ["eopatch-01", "eopatch-02"]
    assert set(df["source"]) == {"real"}
    assert at.selectbox(key="colour_by").options


def test_home_map_marks_and_zooms_to_the_selection(served):
    """Patches are dots at the scale of Slovenia; the selected one is outlined and the map can zoom to it."""
    at = _run("pages/0_Home.py", served[1])
    assert not at.exception, [e.value for e in at.exception]

    def spec() -> dict:
        return json.loads(at.get("deck_gl_json_chart")[0].proto.json)

    layers = {layer["id"]: layer for layer in spec()["layers"]}
    assert {"slovenia", "patches", "centres", "selected"} <= set(layers)
    assert "basemap" not in layers  # offline by default
    assert spec()["initialViewState"]["zoom"] == 7
    at.toggle(key="zoom_to_selection").set_value(True).run()
    view = spec()["initialViewState"]
    from sr_core.catalog import summarise

    lon, lat = summarise(served[1]).centre_lonlat
    assert view["zoom"] == 12 and view["longitude"] == pytest.approx(lon) and view["latitude"] == pytest.approx(lat)


def test_time_series_page_changes_date_and_composite(served):
    at = _run("pages/1_Time_series.py", served[0])
    assert not at.exception, [e.value for e in at.exception]
    slider = at.select_slider(key="frame_index")
    slider.set_value(2).run()
    assert not at.exception and at.session_state["frame_index"] == 2
    for comp in ("false", "swir", "ndvi"):
        at.radio(key="composite").set_value(comp).run()
        assert not at.exception
    at.radio(key="cloud_layer").set_value("SCL").run()
    assert not at.exception
    at.toggle(key="skip_cloudy").set_value(True).run()
    assert not at.exception


def test_pages_without_selection_say_what_to_do(served):
    for page in ("pages/1_Time_series.py", "pages/2_Predict_and_compare.py"):
        at = _run(page)
        assert not at.exception
        assert any("pick one on the **Home** page" in i.value for i in at.info)


def test_predict_page_runs_model_and_shows_metrics(served, tiny_model):
    at = _run("pages/2_Predict_and_compare.py", served[0])
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="run_model").click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric]
    assert "Device" in labels and "Time (model)" in labels
    assert any("CPU" in m.value for m in at.metric if m.label == "Device")
    table = at.dataframe[0].value
    assert "weighted MCC" in table.columns
    assert any("NDVI" in str(i) for i in table.index)
    wmcc = table["weighted MCC"].astype(float)
    assert wmcc.between(-1, 1).all()
    # switching to another patch (as select_patch does: session and URL) asks to run it; switching back keeps the
    # cached result
    at.session_state["selected_patch_path"] = str(served[1])
    at.query_params["patch"] = "eopatch-02"
    at.run()
    assert not at.exception
    assert any("Run model and baselines" in i.value for i in at.info)
    at.session_state["selected_patch_path"] = str(served[0])
    at.query_params["patch"] = "eopatch-01"
    at.run()
    assert not at.exception and not any("Run model and baselines" in i.value for i in at.info)
    assert any(m.label == "Device" for m in at.metric)


def test_upload_page_reports_and_predicts(served, tiny_model, tmp_path):
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT)
    at.session_state["upload_dir"] = str(served[0].parent)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    report = at.dataframe[0].value
    assert list(report["folder"]) == ["eopatch-01", "eopatch-02"]
    assert all(s.startswith("✅") for s in report["status"])
    at.button(key="upload_predict").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Predicted in" in s.value for s in at.success)


def test_deep_link_selects_patch_and_date(served):
    at = AppTest.from_file(str(REPO / "pages/1_Time_series.py"), default_timeout=TIMEOUT)
    at.query_params["patch"] = "eopatch-02"
    at.query_params["date"] = "2019-04-25"  # the third date (1 April + 2 × 12 days)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert Path(at.session_state["selected_patch_path"]).name == "eopatch-02"
    assert at.session_state["frame_index"] == 2


def test_router_opens_home(served):
    at = _run("app.py")
    assert not at.exception, [e.value for e in at.exception]
    assert any("Sentinel-2 super-resolution" in t.value for t in at.title)


def test_upload_page_computes_missing_cloud_masks(tmp_path, monkeypatch):
    pytest.importorskip("s2cloudless")
    from sr_core.io import write_eopatch

    monkeypatch.setenv("SR_CORE_DEMO", "off")
    bare = _patch("eopatch-bare", 5).replace(cloud_prob=None, cloud_mask=None)
    up = tmp_path / "upload"
    write_eopatch(bare, up / "eopatch-bare")
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT)
    at.session_state["upload_dir"] = str(up)
    at.run()
    assert any("no cloud masks" in w.value for w in at.warning)
    at.button(key="upload_clouds").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from sr_core.io import load_eopatch

    done = load_eopatch(up / "with-clouds" / "eopatch-bare")
    assert done.cloud_mask is not None and done.cloud_prob is not None
    assert any("s2cloudless" in n for n in done.info.notes)
    report = at.dataframe[0].value
    assert "with-clouds/eopatch-bare" in list(report["folder"])


def test_first_start_builds_the_demo_set(monkeypatch):
    """No demo yet: the Home page builds it (here shrunk to two small patches) and lists them as simulated."""
    import sr_core.demo as demo

    monkeypatch.setenv("SR_CORE_DEMO", "on")
    monkeypatch.delenv("SR_CORE_DATA", raising=False)
    monkeypatch.setattr(demo, "DEMO_RECIPE", (("eopatch-01", "pomurje", "train", 101), ("eopatch-02", "krsko", "test", 102)))
    monkeypatch.setattr(demo, "DEMO_SIZE", 24)
    assert demo.demo_patch_paths() == []
    at = _run("pages/0_Home.py")
    assert not at.exception, [e.value for e in at.exception]
    assert [p.name for p in demo.demo_patch_paths()] == ["eopatch-01", "eopatch-02"]
    df = at.dataframe[0].value
    assert sorted(df["name"]) == ["eopatch-01", "eopatch-02"] and set(df["source"]) == {"simulated"}


@pytest.mark.parametrize("fmt", ["GIF", "MP4"])
def test_time_series_exports_an_animation(served, fmt):
    at = _run("pages/1_Time_series.py", served[0])
    at.radio(key="anim_fmt").set_value(fmt).run()
    at.button(key="anim_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    buttons = [b for b in at.get("download_button")]
    assert buttons and f"Download {fmt} (4 frames" in buttons[0].proto.label


def test_animation_files_are_valid(tmp_path):
    import imageio.v3 as iio
    import numpy as np

    from sr_core.viz import export_animation, label_frame

    frames = [label_frame(np.full((30, 41, 3), 40 * i, np.uint8), f"2019-04-0{i + 1}") for i in range(4)]
    gif = iio.imread(export_animation(frames, str(tmp_path / "a.gif"), fps=2), index=None)
    assert gif.shape[0] == 4 and gif.shape[1:3] == (30, 41)
    mp4 = export_animation(frames, str(tmp_path / "a.mp4"), fps=2)
    assert (tmp_path / "a.mp4").stat().st_size > 0 and mp4.endswith(".mp4")
