"""Every page runs headless (streamlit AppTest): no exception, key widgets exist, patch and date changes work,
running the model shows metrics. The demo build is switched off; a small labelled patch is served as real data."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sr_core import Patch
from sr_core.patch import PatchInfo

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from tests.helpers_app import TIMEOUT, app_patch

REPO = Path(__file__).resolve().parents[1]


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


def map_args(at: AppTest, i: int = 0) -> dict:
    """The arguments of the i-th streamlit-folium map on the page (script, JS/CSS links, layers)."""
    maps = [c for c in at.get("component_instance") if "st_folium" in c.proto.component_name]
    assert len(maps) > i, "no Leaflet map on the page"
    return json.loads(maps[i].proto.json_args)


def assert_offline(args: dict) -> None:
    """Leaflet and our controls come from the app itself; no CDN link anywhere in the map."""
    links = args["js_links"] + args["css_links"]
    assert any(u.endswith("leaflet.js") for u in args["js_links"])
    assert all(u.startswith("../../app/static/") for u in links), links
    assert "cdn" not in json.dumps(args).lower() and "unpkg" not in json.dumps(args).lower()
    assert (REPO / "static" / "vendor" / "leaflet-1.9.4" / "leaflet.js").is_file()


def test_home_map_marks_and_zooms_to_the_selection(served):
    """Every footprint is a vector feature (with its catalogue id, never its folder) coloured by the chosen attribute
    with a legend; the selection is outlined; zooming shows its warped true-colour image; OSM is opt-in."""
    at = _run("pages/0_Home.py", served[1])
    assert not at.exception, [e.value for e in at.exception]
    args = map_args(at)
    assert_offline(args)
    script = args["script"]
    assert '"id": "eopatch-01"' in script and '"id": "eopatch-02"' in script
    assert str(served[0].parent) not in json.dumps(args)
    assert "#ffe600" in script and "srLegend" in script and "Source" in script
    assert "openstreetmap" not in script.lower()  # offline by default
    # labels open above the pointer and wrap: one line left of a dot near the edge was cut off by the map's frame
    assert script.count('"direction": "top"') == 2 and "max-width: 260px" in args["header"]
    assert args["returned_objects"] == ["last_active_drawing"]  # a click selects; panning does not rerun
    at.selectbox(key="colour_by").set_value("cloud_cover").run()
    assert "Mean cloud cover" in map_args(at)["script"] and "linear-gradient" in map_args(at)["script"]
    at.toggle(key="zoom_to_selection").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    script = map_args(at)["script"]
    assert "imageOverlay" in script and "data:image/png;base64," in script and "fitBounds" in script
    at.toggle(key="home_basemap").set_value(True).run()
    script = map_args(at)["script"]
    assert "tile.openstreetmap.org" in script and "srTileWarning" in script


def test_home_table_click_wins_over_an_earlier_name_pick(served):
    at = _run("pages/0_Home.py")
    at.selectbox(key="patch_by_name").set_value("eopatch-01").run()
    assert Path(at.session_state["selected_patch_path"]).name == "eopatch-01"
    at.session_state["selected_patch_path"] = str(served[1])  # as the table / map callbacks do (session and URL)
    at.query_params["patch"] = "eopatch-02"
    at.run()
    assert Path(at.session_state["selected_patch_path"]).name == "eopatch-02"
    assert at.selectbox(key="patch_by_name").value == "eopatch-02"  # the name picker follows
    table = at.dataframe[0].value
    assert "None" not in table.astype(str).to_string() and set(table["last wMCC"]) == {"–"}


def test_time_series_page_changes_date_and_composite(served):
    at = _run("pages/1_Time_series.py", served[0])
    assert not at.exception, [e.value for e in at.exception]
    slider = at.select_slider(key="frame_index")
    slider.set_value(2).run()
    assert not at.exception and at.session_state["frame_index"] == 2
    # the cloud layer is an image of its own in its own pane, switched in the browser; the base map stays the same
    args = map_args(at)
    fg = json.dumps(args.get("feature_group", ""))
    assert "srPaneToggle(" in args["script"] and "cloud mask outline" in args["script"]
    assert fg.count("L.imageOverlay(") == 2 and "srcloud" in fg
    script = args["script"]
    slider.set_value(3).run()
    assert map_args(at)["script"] == script

    def frame_url() -> str:  # the date's image: the first overlay of the group swapped per date
        return re.search(r'L\.imageOverlay\(\s*"([^"]+)"', map_args(at)["feature_group"]).group(1)

    seen = {"true": frame_url()}
    for comp in ("false", "swir", "ndvi"):
        at.selectbox(key="composite").set_value(comp).run()
        assert not at.exception
        seen[comp] = frame_url()
        assert ("NDVI" in map_args(at)["script"]) == (comp == "ndvi")  # the NDVI colour bar, with NDVI only
    assert len(set(seen.values())) == 4, "each composite draws its own image"
    at.selectbox(key="cloud_layer").set_value("SCL").run()
    assert not at.exception
    args = map_args(at)
    assert args["feature_group"].count("L.imageOverlay(") == 2 and '"opacity": 0.7' in args["feature_group"]
    assert "SCL classes" in args["script"] and "Vegetation" in args["script"]  # its switch and the SCL legend
    at.toggle(key="skip_cloudy").set_value(True).run()
    at.slider(key="max_cloud").set_value(0.1).run()
    assert not at.exception
    kept = at.select_slider(key="frame_index").options  # these dates: 11 %, 9 %, 10 %, 10 % cloud
    assert "2019-04-13 (9% cloud)" in kept and not any(o.startswith("2019-04-01") for o in kept)
    # the co-registration diagnostic: these 12 × 16 px patches are too small to measure, and the page says so
    assert any("co-registration: not measured" in c.value for c in at.caption)
    assert any("0 of 4 dates are half a 10 m pixel or more off" in c.value and "left out: 4 here" in c.value
               for c in at.caption)


def test_time_series_charts_take_their_height_from_streamlit(served):
    """With ``.properties(height=…)`` this Streamlit drew the charts' axes around an empty plot (seen in chromium: the
    cloud chart had no bar, the profiles were squashed flat); the height goes to ``st.altair_chart`` instead."""
    at = _run("pages/1_Time_series.py", served[0])
    assert not at.exception, [e.value for e in at.exception]
    charts = []

    def walk(node) -> None:
        if type(getattr(node, "proto", None)).__name__ == "VegaLiteChart":
            charts.append(json.loads(node.proto.spec))
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(at._tree)
    titles = {c.get("title") for c in charts}
    assert {"Cloud cover per date (orange = current)", "Band reflectance over time"} <= titles, titles
    assert all("height" not in c and all("height" not in layer for layer in c.get("layer", [])) for c in charts)


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
    assert "SR model" in str(at.dataframe[0].value.index[0])  # the model's scores at once, with the map
    from ui.common import wait_for_baselines

    wait_for_baselines(served[0], timeout=TIMEOUT)  # both baselines run in the background, after the map
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert "weighted MCC" in table.columns
    assert any("NDVI" in str(i) for i in table.index)
    wmcc = table["weighted MCC"].astype(float)
    assert wmcc.between(-1, 1).all()
    # the model's weighted MCC also beside the map, the same figure as in the table
    beside = next(m.value for m in at.metric if m.label == "Weighted MCC")
    assert beside == f"{wmcc[next(i for i in table.index if 'SR model' in str(i))]:.3f}"
    # the ceilings (label oracles) close the table, marked as reading the labels: a perfect 10 m classifier does
    # well on simulated farmland, and not perfectly (the labels hold 2.5 m detail)
    ceilings = [i for i in table.index if str(i).startswith("ceiling:")]
    assert len(ceilings) == 2 and all("reads the labels" in c for c in ceilings) and list(table.index[-2:]) == ceilings
    assert wmcc[ceilings].between(0.6, 0.999).all()
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


def test_compare_map_swipes_in_the_browser(served, tiny_model):
    """Predict & compare: one Leaflet map with prediction | label in swipe panes over the true colour, error / weight /
    probability as switchable layers, the label's parcels as vectors with popups, swipe and opacity controls run in
    the browser (no value returned to Streamlit, so no rerun), legends in the map, nothing from a CDN."""
    at = _run("pages/2_Predict_and_compare.py", served[0])
    at.button(key="run_model").click().run()
    assert not at.exception, [e.value for e in at.exception]
    args = map_args(at)
    assert_offline(args)
    script = args["script"]
    assert args["returned_objects"] == []
    assert script.count("L.imageOverlay(") >= 6  # true colour, prediction, label, error, weight, probability
    for pane in ("srbase", "srleft", "srright", "srover", "srvec"):
        assert f'"{pane}"' in script or f"'{pane}'" in script, pane
    assert "srSwipe(" in script and "srOpacity(" in script and "srLegend(" in script
    assert "L.control.layers" in script and '"error map"' in script and '"weight map"' in script
    assert '"predicted cultivated"' in script and '"outcome"' in script and "bindPopup" in script
    assert str(served[0]) not in json.dumps(args)
    at.radio(key="cmp_right").set_value("true colour").run()
    assert not at.exception
    script = map_args(at)["script"]
    # no label layer: the true colour (bottom pane) shows right of the divider; the other five layers stay
    assert '"label"' not in script and script.count("L.imageOverlay(") == 5 and '"srbase"' in script


def test_hallucination_outcomes_are_a_map_layer(served, tiny_model):
    at = _run("pages/4_Hallucinations.py", served[0])
    at.select_slider(key="halluc_tta").set_value(2).run()
    at.button(key="halluc_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    args = map_args(at)
    assert_offline(args)
    script = args["script"]
    assert "outcome vs the 10 m answer" in script and script.count("L.imageOverlay(") == 4
    assert "srOpacity(" in script and "srLegend(" in script and "hallucination" in script.lower()
    # a setting changed after the inspection: its results stay on screen, marked as made with the old settings
    at.slider(key="halluc_margin").set_value(0.7).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("margin 0.5 → 0.7" in w.value for w in at.warning), [w.value for w in at.warning]
    assert "outcome vs the 10 m answer" in map_args(at)["script"]
    at.button(key="halluc_run").click().run()  # inspected again: current, no notice
    assert not at.exception and not any("Changed since" in w.value for w in at.warning)


def test_upload_page_reports_and_predicts(served, tiny_model, tmp_path):
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT)
    at.session_state["upload_dir"] = str(served[0].parent)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    report = at.dataframe[0].value
    assert list(report["folder"]) == ["eopatch-01", "eopatch-02"]
    assert all(s.startswith("✅") for s in report["status"])
    args = map_args(at)  # the uploaded patch on a Leaflet map: footprint and true colour …
    assert_offline(args)
    assert args["script"].count("L.imageOverlay(") == 1 and "footprint" in args["script"]
    assert str(served[0]) not in json.dumps(args)
    at.button(key="upload_predict").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Predicted in" in s.value for s in at.success)
    script = map_args(at)["script"]  # … and the prediction as a layer once predicted
    assert script.count("L.imageOverlay(") == 2 and "prediction (2.5 m)" in script


def test_a_hostile_folder_name_in_an_upload_is_shown_as_text(tmp_path, monkeypatch, tiny_model):
    """A folder named like markup (an upload can name its folders anything): the page's HTML captions, its
    Markdown and the map's Leaflet labels show the name as typed; no tag or link renders."""
    from sr_core.io import write_eopatch

    monkeypatch.setenv("SR_CORE_DEMO", "off")
    name = "<img src=x onerror=alert(1)>[site](mailto:a@example.org)${alert(2)}`"  # a file name cannot hold a slash
    write_eopatch(app_patch("eopatch-x", 5), tmp_path / "up" / name)
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT)
    at.session_state["upload_dir"] = str(tmp_path / "up")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    texts = [m.value for m in (*at.markdown, *at.caption)]
    assert any("&lt;img src=x" in t for t in texts)  # the name is there, escaped …
    assert not any("<img" in t or "](mailto:" in t for t in texts)  # … never as markup
    script = map_args(at)["script"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in script and "<img src=x" not in script
    # folium writes a tooltip into a JavaScript template literal: no interpolation, no way out of it
    assert "&#36;{alert(2)}&#96;" in script and "${alert(2)}" not in script
    # the sidebar names the selected patch: a backtick in the name closed its code span and the rest rendered
    evil = "x` [**Session expired: sign in again**](https:evil.example) ![](https:evil.example?t) `y"
    write_eopatch(app_patch("eopatch-y", 5), tmp_path / "up2" / evil)
    at = AppTest.from_file(str(REPO / "pages/1_Time_series.py"), default_timeout=TIMEOUT)
    at.session_state["selected_patch_path"] = str(tmp_path / "up2" / evil)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    side = [c.value for c in at.sidebar.caption if "Selected patch" in c.value]
    assert side and "](https:evil" not in side[0] and "\\]\\(https\\:evil" in side[0], side


def test_an_archive_dropped_on_the_upload_page_is_extracted_within_the_quota(tmp_path, monkeypatch):
    """The drop-zone path end to end (AppTest cannot drop a file: st.file_uploader hands the page a stand-in with the
    archive's bytes): extracted and reported; when the uploads' quota is used up, refused before anything is
    written, saying what to do."""
    import shutil
    import types

    import streamlit

    from sr_core.io import write_eopatch
    from sr_core.paths import uploads_dir

    monkeypatch.setenv("SR_CORE_DEMO", "off")
    write_eopatch(app_patch("eopatch-z", 5), tmp_path / "src" / "eopatch-z")
    data = Path(shutil.make_archive(str(tmp_path / "drop"), "zip", tmp_path / "src")).read_bytes()
    dropped = types.SimpleNamespace(name="my fields.zip", getvalue=lambda: data)
    monkeypatch.setattr(streamlit, "file_uploader", lambda *a, **k: dropped)

    monkeypatch.setenv("SR_CORE_UPLOAD_QUOTA_GB", "0")
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("space for uploads is full" in e.value and "SR_CORE_UPLOAD_QUOTA_GB" in e.value for e in at.error)
    assert not any(p.is_dir() for p in uploads_dir().iterdir())  # nothing stored
    # room for the archive but not for as much again unpacked: refused too
    monkeypatch.setenv("SR_CORE_UPLOAD_QUOTA_GB", str(1.5 * len(data) / 1024**3))
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT).run()
    assert any("space for uploads is full" in e.value for e in at.error), [e.value for e in at.error]
    assert not any(p.is_dir() for p in uploads_dir().iterdir())

    monkeypatch.delenv("SR_CORE_UPLOAD_QUOTA_GB")
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert list(at.dataframe[0].value["folder"]) == ["eopatch-z"]
    stored = [p for p in uploads_dir().iterdir() if p.is_dir()]
    assert len(stored) == 1 and (stored[0] / "eopatch-z").is_dir()
    assert (uploads_dir() / f"{stored[0].name}.used").is_file()  # opened now

    # 31 days unopened: the next upload clears it (SR_CORE_UPLOAD_DAYS, default 30) and is stored
    import os
    import time

    gone = time.time() - 31 * 86400
    for q in (stored[0], uploads_dir() / f"{stored[0].name}.used"):
        os.utime(q, (gone, gone))
    write_eopatch(app_patch("eopatch-y", 4), tmp_path / "src2" / "eopatch-y")
    data2 = Path(shutil.make_archive(str(tmp_path / "drop2"), "zip", tmp_path / "src2")).read_bytes()
    dropped.getvalue = lambda: data2
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    now_kept = [p for p in uploads_dir().iterdir() if p.is_dir()]
    assert len(now_kept) == 1 and (now_kept[0] / "eopatch-y").is_dir() and not stored[0].exists()


def test_a_broken_archive_is_refused_naming_it_once(monkeypatch):
    """"broken.zip was refused: broken.zip: corrupt zip …": the library names the archive for the command line, the
    page had already named it."""
    import types

    import streamlit

    from sr_core.paths import uploads_dir

    monkeypatch.setenv("SR_CORE_DEMO", "off")
    dropped = types.SimpleNamespace(name="broken.zip", getvalue=lambda: b"PK\x03\x04 not really a zip")
    monkeypatch.setattr(streamlit, "file_uploader", lambda *a, **k: dropped)
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any("was refused: corrupt zip" in e for e in errors), errors
    assert all(e.count("broken") == 1 for e in errors), errors
    assert not any(p.is_dir() and not p.name.startswith("upload-") for p in uploads_dir().iterdir())


def test_upload_shows_the_chosen_patch_warnings_in_full(tmp_path, monkeypatch):
    """A 3-date series: its warning is a visible message, not only text in the report's truncated cell."""
    from sr_core.io import write_eopatch
    from sr_core.quality import series_warnings

    monkeypatch.setenv("SR_CORE_DEMO", "off")
    short = app_patch("eopatch-short", 3)
    short = short.replace(bands=short.bands[:3], timestamps=short.timestamps[:3], cloud_prob=short.cloud_prob[:3],
                          cloud_mask=short.cloud_mask[:3], is_data=short.is_data[:3], scl=short.scl[:3])
    expected = series_warnings(short)
    assert expected, "the fixture should draw a series warning"
    write_eopatch(short, tmp_path / "up" / "eopatch-short")
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT)
    at.session_state["upload_dir"] = str(tmp_path / "up")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    from ui.common import shown as inert  # what the page puts in a Markdown element: the same words, marks escaped

    shown = [w.value for w in at.warning]
    assert all(any(inert(e) in w for w in shown) for e in expected), (expected, shown)
    assert str(tmp_path) not in str([w.value for w in at.warning])


def test_deep_link_date_is_honoured_on_a_second_link(served):
    """A ?date= link pasted while the page is open (same patch) moves the slider; a date with no image picks the
    nearest one and says so."""
    at = AppTest.from_file(str(REPO / "pages/1_Time_series.py"), default_timeout=TIMEOUT)
    at.query_params["patch"] = "eopatch-01"
    at.run()
    assert at.session_state["frame_index"] == 0
    at.query_params["date"] = "2019-05-07"  # the fourth date
    at.run()
    assert at.session_state["frame_index"] == 3
    at.query_params["date"] = "2019-04-12"  # 1 day after the second date
    at.run()
    assert at.session_state["frame_index"] == 1
    assert any("No image on 2019-04-12" in i.value and "2019-04-13" in i.value for i in at.info)
    args = map_args(at)
    assert_offline(args)
    assert "L.imageOverlay(" in (args["feature_group"] or "")  # the frame is swapped in place on a stable map


def test_l1c_true_colour_is_stretched_band_by_band(tmp_path, monkeypatch):
    """L1C (top of atmosphere): haze lifts blue most; a per-band stretch keeps the true colour from turning cyan."""
    import streamlit as st

    from sr_core.io import write_eopatch

    base = app_patch("eopatch-l1c", 9)
    bands = base.bands.copy()
    bands[..., 1] += 0.15  # B02 (blue) lifted by haze
    l1c = base.replace(bands=bands, info=PatchInfo(name="eopatch-l1c", product_level="L1C"))
    path = write_eopatch(l1c, tmp_path / "real" / "eopatch-l1c")
    monkeypatch.setenv("SR_CORE_DATA", str(tmp_path / "real"))
    monkeypatch.setenv("SR_CORE_DEMO", "off")
    st.cache_data.clear()
    at = _run("pages/1_Time_series.py", path)
    assert not at.exception, [e.value for e in at.exception]
    assert any("band by band" in c.value for c in at.caption)
    from sr_core import viz
    from sr_core.bands import band_index

    valid = l1c.valid_mask()
    common = viz.series_limits(l1c.bands, valid, "true")
    per = [viz.stretch_limits(l1c.bands[..., band_index(b)][valid]) for b in viz.COMPOSITES["true"].bands]
    per_limits = (np.array([a for a, _ in per]), np.array([b for _, b in per]))

    def cast(img: np.ndarray) -> float:  # blue minus red, mean over the frame
        return float(img[..., 2].astype(float).mean() - img[..., 0].astype(float).mean())

    assert cast(viz.composite(l1c.bands[0], "true", per_limits)) < cast(viz.composite(l1c.bands[0], "true", common)) / 3
    # and those per-band limits are the ones the page draws with: it prints them in its caption
    import re

    shown = next(c.value for c in at.caption if "band by band" in c.value)
    printed = {b: (float(lo), float(hi)) for b, lo, hi in re.findall(r"(B\w\w) (-?\d+\.\d+)–(-?\d+\.\d+)", shown)}
    assert list(printed) == list(viz.COMPOSITES["true"].bands)
    for b, (lo, hi) in zip(viz.COMPOSITES["true"].bands, per, strict=True):
        assert printed[b] == pytest.approx((lo, hi), abs=6e-4), b
    assert printed["B02"][0] > float(common[0]) + 0.05  # blue's own floor sits above the common stretch's


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
    bare = app_patch("eopatch-bare", 5).replace(cloud_prob=None, cloud_mask=None, scl=None)  # no cloud layer at all
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


def test_upload_page_keeps_the_cloud_copy_within_the_quota_and_survives_unforeseen_failures(tmp_path, monkeypatch):
    """The copy with cloud masks is stored with the upload, so it is refused, saying why, when the uploads' quota is
    used up (it was written whatever the quota). A failure no reader foresaw marks that patch's row and leaves the
    page working, and so does a map that cannot be drawn (both raised to the visitor as a crash)."""
    pytest.importorskip("s2cloudless")
    import sr_core.quality
    import ui.maps
    from sr_core.io import write_eopatch

    monkeypatch.setenv("SR_CORE_DEMO", "off")
    up = tmp_path / "upload"
    write_eopatch(app_patch("eopatch-bare", 5).replace(cloud_prob=None, cloud_mask=None, scl=None), up / "eopatch-bare")
    monkeypatch.setenv("SR_CORE_UPLOAD_QUOTA_GB", "0")
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT)
    at.session_state["upload_dir"] = str(up)
    at.run()
    at.button(key="upload_clouds").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("space for uploads is full" in e.value for e in at.error), [e.value for e in at.error]
    assert not (up / "with-clouds").exists()

    write_eopatch(app_patch("eopatch-odd", 6), up / "eopatch-odd")
    real_warnings = sr_core.quality.series_warnings

    def odd(p):
        if p.name == "eopatch-odd":
            raise ValueError("something no reader foresaw")
        return real_warnings(p)

    monkeypatch.setattr(sr_core.quality, "series_warnings", odd)
    monkeypatch.setattr(ui.maps, "new_map", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no map")))
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT)
    at.session_state["upload_dir"] = str(up)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    report = at.dataframe[0].value.set_index("folder")
    assert report.loc["eopatch-odd", "status"].startswith("❌") and "ValueError" in report.loc["eopatch-odd", "status"]
    assert "something no reader foresaw" not in str(report)  # its type only; the details go to the server's log
    # the table's cell cuts a long message: below it, each refused folder's reason in full
    why = [m.value for m in next(e for e in at.expander if "could not be read" in e.label).markdown]
    assert any(m.startswith("**eopatch-odd**: an unexpected error") and "ValueError" in m for m in why), why
    assert report.loc["eopatch-bare", "status"] == "✅ readable"
    assert any("The map could not be drawn" in e.value for e in at.error), [e.value for e in at.error]


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
    import itertools

    import imageio.v3 as iio
    import numpy as np

    from sr_core.viz import export_animation, label_frame

    frames = [label_frame(np.full((30, 41, 3), 40 * i, np.uint8), f"2019-04-0{i + 1}") for i in range(4)]
    gif = iio.imread(export_animation(frames, str(tmp_path / "a.gif"), fps=2), index=None)
    assert gif.shape[0] == 4 and gif.shape[1:3] == (30, 41)
    mp4 = export_animation(frames, str(tmp_path / "a.mp4"), fps=2)
    assert mp4.endswith(".mp4")
    video = iio.imread(mp4, index=None)  # a decodable H.264 stream, not just a non-empty file
    assert video.shape[0] == 4 and video.shape[1:3] == (30, 42)  # the odd width padded to even, as H.264 needs
    brightness = [float(f.mean()) for f in video]
    assert all(b1 > b0 + 5 for b0, b1 in itertools.pairwise(brightness))  # frames in the order written


def test_predict_page_offers_the_growing_season_of_a_long_series(tmp_path, monkeypatch, tiny_model):
    """A real-style series (Aug 2018 – Nov 2019, SCL only): the page offers 2018 / 2019 (default: 2019, the latest
    complete), says which dates it used and where the clouds come from; each season is predicted and cached apart."""
    import streamlit as st

    from sr_core.io import write_eopatch

    base = app_patch("eopatch-long", 7)
    ts = [datetime(2018, 8, 4) + timedelta(days=10 * i) for i in range(49)]  # … 2019-11-19
    T, H, W = len(ts), base.height, base.width
    rng = np.random.default_rng(7)
    long = Patch(bands=rng.uniform(0.02, 0.3, (T, H, W, 12)).astype(np.float32), timestamps=ts, bbox=base.bbox,
                 is_data=np.ones((T, H, W), bool), scl=np.full((T, H, W), 4, np.uint8), cultivated=base.cultivated,
                 not_declared=base.not_declared, info=PatchInfo(name="eopatch-long"))
    path = write_eopatch(long, tmp_path / "real" / "eopatch-long")
    monkeypatch.setenv("SR_CORE_DATA", str(tmp_path / "real"))
    monkeypatch.setenv("SR_CORE_DEMO", "off")
    st.cache_data.clear()
    n19 = sum(datetime(2019, 3, 1) <= t < datetime(2019, 9, 2) for t in ts)

    at = _run("pages/2_Predict_and_compare.py", path)
    assert not at.exception, [e.value for e in at.exception]
    season = at.selectbox(key=f"season:{path}")
    assert season.value == 2019 and season.options == ["2018 (incomplete)", "2019 (default, latest complete)"]
    assert any(f"Season 2019: {n19} of {T} dates used" in c.value for c in at.caption)
    at.button(key="run_model").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Input: season **2019** · " in c.value and f"{n19} of {T} dates" in c.value
               and "clouds from SCL" in c.value for c in at.caption)
    at.selectbox(key=f"season:{path}").set_value(2018).run()
    assert any("Run model and baselines" in i.value for i in at.info)  # another season: not predicted yet
    at.button(key="run_model").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Input: season **2018** (incomplete)" in c.value for c in at.caption)
    assert any("incomplete" in w.value for w in at.warning)
    at.selectbox(key=f"season:{path}").set_value(2019).run()
    assert not any("Run model and baselines" in i.value for i in at.info)  # cached per season


def test_predict_page_says_where_the_labels_sit(tmp_path, monkeypatch, tiny_model):
    """A labelled patch whose labels sit a 10 m row south of its imagery: the score table is followed by a warning
    that says so in words (measured without any predictor), as ``evaluate --real`` does."""
    import streamlit as st

    from sr_core.io import write_eopatch
    from sr_core.patch import PatchInfo
    from sr_core.simulate import simulate_patch

    s = simulate_patch(3, 96, "test")
    moved = s.replace(cultivated=np.roll(s.cultivated, 4, 0), not_declared=np.roll(s.not_declared, 4, 0),
                      info=PatchInfo(name="eopatch-moved"))
    path = write_eopatch(moved, tmp_path / "real" / "eopatch-moved")
    monkeypatch.setenv("SR_CORE_DATA", str(tmp_path / "real"))
    monkeypatch.setenv("SR_CORE_DEMO", "off")
    st.cache_data.clear()
    at = _run("pages/2_Predict_and_compare.py", path)
    at.button(key="run_model").click().run()
    assert not at.exception, [e.value for e in at.exception]
    said = [w.value for w in at.warning if "Labels vs imagery" in w.value]
    assert len(said) == 1 and "px south" in said[0] and "Every predictor loses boundary pixels" in said[0]


def test_upload_of_a_product_with_the_baseline_04_offset_says_it_was_removed(tmp_path, monkeypatch):
    """A 2023 export that kept processing baseline 04.00's +1000 DN: the upload page reads it 0.1 darker than
    stored, as the product means, and says so in a visible warning."""
    import gzip

    from sr_core.io import write_eopatch
    from sr_core.simulate import simulate_patch

    monkeypatch.setenv("SR_CORE_DEMO", "off")
    sim = simulate_patch(7, size=24, split="test")
    sim = sim.replace(timestamps=tuple(t.replace(year=2023) for t in sim.timestamps))
    folder = write_eopatch(sim, tmp_path / "up" / "eopatch-2023")
    cube = folder / "data" / "BANDS.npy.gz"
    with gzip.open(cube) as fh:
        dn = np.load(fh)
    with gzip.open(cube, "wb") as fh:
        np.save(fh, np.where(dn > 0, dn + 1000, 0).astype(dn.dtype))
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT)
    at.session_state["upload_dir"] = str(tmp_path / "up")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.dataframe[0].value["level"].tolist() == ["L2A"]  # 0.1 too bright would have read as L1C
    assert any("processing-baseline offset removed" in w.value for w in at.warning), [w.value for w in at.warning]


def test_predict_page_says_what_the_model_was_trained_on_and_how_it_scored(served):
    """The bundled model's own record, real figures first and every line marked REAL or SIMULATED."""
    import torch

    at = _run("pages/2_Predict_and_compare.py", served[0])
    assert not at.exception, [e.value for e in at.exception]
    assert any(e.label.startswith("About the model") for e in at.expander)
    text = "\n".join(m.value for m in at.markdown)
    stored = torch.load(REPO / "models" / "sr-small.pt", map_location="cpu", weights_only=True)["provenance"]
    flanders = stored["test_metrics"]["real"]["flanders-2019-fields-lpis"]["weighted_mcc"]
    assert "Trained on **SIMULATED** farmland" in text
    assert f"Measured on **REAL** data, flanders-2019-fields-lpis: model {flanders:.3f}" in text
    assert text.index("Measured on **REAL**") < text.index("Measured on **SIMULATED**")


def test_the_model_note_of_an_untrained_file_says_so(tiny_model):
    from sr_core.model import describe_checkpoint
    from ui.common import model_about

    lines = model_about(describe_checkpoint(tiny_model))
    assert "no training record" in lines[1] and not any("REAL" in s or "SIMULATED" in s for s in lines)


def test_a_link_to_an_expired_upload_says_so(served):
    """An upload's link outlives its folder when the folder expired (SR_CORE_UPLOAD_DAYS): the link then says the
    server no longer holds it, instead of failing to read a folder that is gone."""
    import shutil

    from sr_core.io import write_eopatch
    from sr_core.paths import uploads_dir
    from ui.common import register_upload

    folder = uploads_dir() / "0123456789abcdef" / "eopatch-u"
    write_eopatch(app_patch("eopatch-u", 4), folder)
    pid = register_upload(folder)
    at = AppTest.from_file(str(REPO / "pages/1_Time_series.py"), default_timeout=TIMEOUT)
    at.query_params["patch"] = pid
    at.run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.session_state["selected_patch_path"] == str(folder)

    shutil.rmtree(folder.parent)  # expired
    at = AppTest.from_file(str(REPO / "pages/1_Time_series.py"), default_timeout=TIMEOUT)
    at.query_params["patch"] = pid
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("no longer holds" in e.value for e in at.error), [e.value for e in at.error]
    assert "0123456789abcdef" not in str([e.value for e in at.error])


def test_settings_survive_a_visit_to_another_page(served, monkeypatch):
    """Streamlit forgets a widget's value when a run does not draw it: without page_setup's keep_settings, the
    composite chosen on Time series was back to true colour (and Predict's device back to auto) after a look at
    Home. Also a clicked pixel belongs to its patch: on a smaller patch the profile starts at that patch's centre."""
    import ui.common

    monkeypatch.setattr(ui.common, "_route_through_app", lambda: None)  # AppTest runs app.py's navigation itself
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.session_state["selected_patch_path"] = str(served[0])
    at.run()
    at.switch_page("pages/1_Time_series.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="composite").select("swir").run()
    at.selectbox(key="cloud_layer").select("none").run()
    at.switch_page("pages/0_Home.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page("pages/1_Time_series.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="composite").value == "swir" and at.selectbox(key="cloud_layer").value == "none"

    at.session_state["pixel"] = (str(served[0]), 300, 400)  # a click on a large patch, then this small one
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_hallucinations_runs_only_the_open_tab_and_keeps_it_across_pages(served, tiny_model, monkeypatch):
    """Each tab of Hallucinations costs 0.1–1 s of pictures per rerun at full size: only the open one runs. Which tab
    is open is a setting like the others, so a look at Home leaves the page on the tab it was on."""
    import ui.common

    monkeypatch.setattr(ui.common, "_route_through_app", lambda: None)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.session_state["selected_patch_path"] = str(served[0])
    at.run()
    at.switch_page("pages/4_Hallucinations.py").run()
    at.select_slider(key="halluc_tta").set_value(2).run()
    at.button(key="halluc_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.metric and not [b for b in at.button if b.key == "halluc_probes"]  # the map tab only
    at.session_state["halluc_tab"] = "Probes"
    at.run()
    assert [b for b in at.button if b.key == "halluc_probes"] and not at.metric  # the map tab's headline not drawn
    at.switch_page("pages/0_Home.py").run()
    at.switch_page("pages/4_Hallucinations.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [b for b in at.button if b.key == "halluc_probes"], "back on the first tab after a visit to Home"


def test_time_series_says_where_clouds_come_from_when_there_is_no_mask_to_outline(tmp_path, monkeypatch):
    """An SCL-only patch (real L2A extractions come so): the default cloud layer, the CLM outline, has nothing to
    draw, and the page points at the SCL layer; a patch with no cloud layer at all says its cloud chart is blind."""
    from sr_core.io import write_eopatch

    monkeypatch.setenv("SR_CORE_DEMO", "off")
    base = app_patch("eopatch-s", 4)
    assert base.scl is not None
    inverted = ~np.isin(base.scl, (3, 8, 9, 10))  # a CLM written with 1 = clear: the input path sets it aside
    for name, patch, says in (("scl-only", base.replace(cloud_prob=None, cloud_mask=None), "choose **SCL**"),
                              ("none", base.replace(cloud_prob=None, cloud_mask=None, scl=None), "no cloud layer"),
                              ("inverted", base.replace(cloud_prob=None, cloud_mask=inverted),
                               "contradicts its Sen2Cor SCL")):
        write_eopatch(patch, tmp_path / name / "eopatch-s")
        at = AppTest.from_file(str(REPO / "pages/1_Time_series.py"), default_timeout=TIMEOUT)
        at.session_state["selected_patch_path"] = str(tmp_path / name / "eopatch-s")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert any(says in m.value for m in [*at.info, *at.warning]), name


def test_home_names_a_selected_upload(served, tmp_path):
    """An upload opened from the Upload page is the selected patch everywhere; Home, whose map lists the catalogue
    only, says so (it used to ask the visitor to pick a patch)."""
    from sr_core.io import write_eopatch
    from sr_core.paths import uploads_dir
    from ui.common import register_upload

    folder = uploads_dir() / "0123456789abcdee" / "eopatch-u"
    write_eopatch(app_patch("eopatch-u", 4), folder)
    register_upload(folder)
    at = AppTest.from_file(str(REPO / "pages/0_Home.py"), default_timeout=TIMEOUT)
    at.session_state["selected_patch_path"] = str(folder)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Selected the upload" in s.value and "eopatch-u" in s.value for s in at.success)
    assert not any("Pick a patch" in i.value for i in at.info)


def test_pooled_scores_cover_the_same_patches_for_every_predictor(served, tiny_model):
    """The table of all labelled patches pools each source apart (real never with simulated) and only over the
    patches every predictor has scored: while one patch had the model only, its POOLED row compared the model on
    one set of patches with the baselines on another."""
    from ui.common import wait_for_baselines

    at = _run("pages/2_Predict_and_compare.py", served[0])
    at.button(key="run_model").click().run()
    wait_for_baselines(served[0], timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[-1].value
    pooled = table[table["patch"].str.startswith("POOLED")]
    assert list(pooled["patch"]) == ["POOLED real (1)"]
    row = table[table["patch"] == "eopatch-01"].iloc[0]
    assert pooled.iloc[0]["SR model (bundled)"] == row["SR model (bundled)"]  # the one complete patch
    assert -1 <= float(row["SR model (bundled)"]) <= 1
    # a patch not yet predicted shows "–", as the caption says (st.dataframe showed "None" whatever the Styler said)
    other = table[table["patch"] == "eopatch-02"].iloc[0]
    assert set(other.drop(["patch", "source"])) == {"–"}, dict(other)
    at.button(key="score_all").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[-1].value
    assert list(table[table["patch"].str.startswith("POOLED")]["patch"]) == ["POOLED real (2)"]


def test_a_failing_run_is_said_on_the_page_not_a_crash_screen(served, monkeypatch):
    """Anything a model run can raise is the page's to say: the library's errors in full, a device out of memory
    with what to do, and anything else by its type only (its message may hold server details; it goes to the log)."""
    import ui.common

    def boom(exc):
        def run(*a, **k):
            raise exc
        return run

    for exc, says in ((RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "Choose **cpu**"),
                      (ValueError("secret /srv/internal/thing"), "unexpected error (ValueError)")):
        monkeypatch.setattr(ui.common, "run_predictor", boom(exc))
        at = _run("pages/2_Predict_and_compare.py", served[0])
        at.button(key="run_model").click().run()
        assert not at.exception, [e.value for e in at.exception]
        errors = [e.value for e in at.error]
        assert any(says in e for e in errors), errors
        assert "secret" not in str(errors) and not at.get("progress")  # no stale progress bar either


def test_hallucinations_inspects_the_season_chosen_on_predict(tmp_path, monkeypatch, tiny_model):
    """A series over two growing seasons: Hallucinations offers the season (the same choice as Predict & compare,
    one key) and inspects that season's dates only; it used to take the default season whatever Predict showed."""
    from datetime import datetime, timedelta

    from sr_core.io import write_eopatch

    monkeypatch.setenv("SR_CORE_DEMO", "off")
    p = app_patch("eopatch-m", 8)
    ts = [datetime(2018, 4, 1) + timedelta(days=20 * i) for i in range(4)]
    ts += [datetime(2019, 4, 1) + timedelta(days=20 * i) for i in range(4)]
    twice = {k: np.concatenate([getattr(p, k)] * 2) for k in ("bands", "cloud_prob", "cloud_mask", "is_data", "scl")}
    folder = write_eopatch(p.replace(timestamps=ts, **twice), tmp_path / "two" / "eopatch-m")
    at = AppTest.from_file(str(REPO / "pages/4_Hallucinations.py"), default_timeout=TIMEOUT)
    at.session_state["selected_patch_path"] = str(folder)
    at.session_state[f"season:{folder}"] = 2018  # chosen on Predict & compare
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key=f"season:{folder}").value == 2018
    assert any("Season 2018: 4 dates, 2018-04-01 … 2018-05-31" in c.value for c in at.caption)
    at.button(key="halluc_run").click().run()  # TTA 8: the Predict page's shared prediction, for that season
    assert not at.exception, [e.value for e in at.exception]
    from ui.common import cached_prediction

    pred = cached_prediction(folder, "model", "auto", True, 2018)
    assert pred is not None and pred.extra["input"]["season"] == 2018
    assert cached_prediction(folder, "model", "auto", True, None) is None  # not the default season's


def test_predictions_are_kept_for_a_few_patches_and_scores_for_good(served, tiny_model, monkeypatch):
    """Memory: each patch's maps take 70–100 MB at full size, so only the last PREDICTION_PATCHES patches keep
    theirs; a patch's scores stay, and asking for them reads no patch (the table of all patches asked every patch
    on every rerun, and the patch cache of four thrashed with five)."""
    import ui.common
    from ui.common import PerPatchStore, run_predictor, scores_for

    s = PerPatchStore(2)
    for path in ("a", "b", "a", "c"):
        s[(path, 1)] = path
    assert sorted(s) == [("a", 1), ("c", 1)] and s.order == ["a", "c"]

    run_predictor(served[0], "model", "cpu")
    first = scores_for(served[0], "model", "cpu")
    assert first is not None
    loads = []
    monkeypatch.setattr(ui.common, "load_patch", lambda p: loads.append(p))
    ui.common._prediction_store().clear()  # the maps left the memory
    assert scores_for(served[0], "model", "cpu") is first and loads == []


def test_an_uploaded_archive_is_read_and_hashed_once_not_on_every_rerun(tmp_path, monkeypatch):
    """Each rerun of the Upload page (any click) copied and hashed the whole archive again (~0.3 s at 400 MB); the
    digest is kept per uploaded file."""
    import shutil
    import types

    import streamlit

    from sr_core.io import write_eopatch

    monkeypatch.setenv("SR_CORE_DEMO", "off")
    write_eopatch(app_patch("eopatch-z", 5), tmp_path / "src" / "eopatch-z")
    data = Path(shutil.make_archive(str(tmp_path / "drop"), "zip", tmp_path / "src")).read_bytes()
    reads = []
    dropped = types.SimpleNamespace(name="fields.zip", file_id="f-1", getvalue=lambda: reads.append(1) or data)
    monkeypatch.setattr(streamlit, "file_uploader", lambda *a, **k: dropped)
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    at.run()
    at.run()
    assert not at.exception and list(at.dataframe[0].value["folder"]) == ["eopatch-z"]
    assert len(reads) == 1


def test_downloads_do_not_rerun_the_page():
    """A download button reruns its page by default: 5.7 s per download on Predict & compare in the walkthrough (the
    map, the scores and the files are rebuilt), for a click that changes nothing on the page."""
    import ast

    calls = []
    for page in sorted((REPO / "pages").glob("*.py")):
        for node in ast.walk(ast.parse(page.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "download_button":
                kw = {k.arg: k.value for k in node.keywords}
                calls.append((page.name, node.lineno, isinstance(kw.get("on_click"), ast.Constant)
                              and kw["on_click"].value == "ignore"))
    assert len(calls) >= 10 and all(ok for *_, ok in calls), [c for c in calls if not c[2]]
