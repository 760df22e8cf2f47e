"""Predict & compare: run the model (GPU or CPU), compare the 2.5 m prediction with the labels and both baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from sr_core import viz
from sr_core.errors import SRCoreError
from ui.common import (
    CEILINGS,
    IGNORED,
    LABEL_ON,
    OFF,
    PRED_ON,
    PREDICTORS,
    Keys,
    baseline_errors,
    baselines_pending,
    cached_prediction,
    cached_scores,
    catalog,
    ceiling_scores,
    clearest_date,
    device_badge,
    failure,
    in_fragment_rerun,
    label_layout,
    label_offset_of,
    load_patch,
    model_about,
    model_facts,
    output_file,
    page_setup,
    patch_header,
    prediction_key,
    run_predictor,
    scores_for,
    season_picker,
    shown,
    sidebar,
    start_baselines,
)  # fmt: skip

page_setup("Predict & compare", "🎯")
st.title("🎯 Predict & compare")
patch, PATH = patch_header()

# -- run ----------------------------------------------------------------------------------------------------------------
from sr_core.inference import available_devices  # noqa: E402  (torch import only once the page is open)
from sr_core.prepare import choose_season  # noqa: E402

# Growing season: offered only when the series spans several (real extractions often run over more than a year). The
# model reads the day of year, so one season is used at a time; None = the default (the latest complete season).
season, default_season = season_picker(
    patch, PATH, help="This series spans several growing seasons (1 March – 1 September). The model reads the day of "
                      "year, so it is run on one season at a time; the default is the latest complete one.")
if default_season is not None and len(default_season.candidates) > 1:
    sel = choose_season(patch.timestamps, season)
    st.caption(f"Season {sel.year}: {len(sel.index)} of {patch.n_dates} dates used, "
               f"{patch.timestamps[sel.index[0]]:%Y-%m-%d} … {patch.timestamps[sel.index[-1]]:%Y-%m-%d}.")

devices = ["auto", *available_devices()]
c1, c2, c3 = st.columns([2, 2, 3])
with c1:
    device = st.selectbox("Device", devices, key=Keys.DEVICE,
                          help="auto = CUDA GPU → Apple MPS → CPU, whichever this machine has")
with c2:
    with_unc = st.toggle("Uncertainty (much slower)", key="with_uncertainty",
                         help="Runs the model on 8 flipped / rotated copies of the input and maps their spread. It "
                              "costs far more than 8 plain runs on a CPU (tiles are re-run, no batching across copies): "
                              "about 40–45× the plain run was measured on a 2-core CPU; the measured time is shown "
                              "after the run. The map is then the mean of the 8 copies, so it differs slightly from "
                              "the plain run (a few tenths of a percent of the pixels; its scores with it).")
with c3:
    go = st.button("▶ Run model and baselines", type="primary", key="run_model")

with st.expander("About the model: what it was trained on and how it scored"):
    from sr_core.model import default_model_path

    _mp = default_model_path()
    try:
        st.markdown("\n\n".join(model_about(model_facts(str(_mp), _mp.stat().st_mtime))))
    except (SRCoreError, OSError) as exc:
        st.warning(f"The model file cannot be described: {shown(exc)}")


SMOOTH_MAX_PX = 1024  # probability, weight, uncertainty: smooth layers, sent at ≤ 1024 px over the exact footprint


def thin(x: np.ndarray) -> np.ndarray:
    """A smooth layer averaged to ≤ SMOOTH_MAX_PX before colouring (block means over its exact footprint)."""
    from ui.maps import coarsen

    return coarsen(x, SMOOTH_MAX_PX)


@st.cache_data(show_spinner=False, max_entries=8)
def patch_layers(path: str, mtime: float, season_: int | None) -> dict[str, tuple[str, list[list[float]]]]:
    """Layers that depend on the patch only (true colour, label, weight map), warped to Web Mercator: prepared while
    the model runs, so the map is ready as soon as the prediction is."""
    from ui.maps import warp

    p = load_patch(path)
    out: dict[str, tuple[str, list[list[float]]]] = {}

    def add(name: str, img: np.ndarray, categorical: bool = True, max_size: int | None = None) -> None:
        w = warp(img, p.bbox, categorical=categorical, max_size=max_size)
        out[name] = (w.data_url(), w.bounds_latlon)

    # the clearest date among those the model used
    best = clearest_date(p, choose_season(p.timestamps, season_).index if default_season is not None else None)
    add(f"true colour {p.timestamps[best]:%Y-%m-%d} (10 m)", viz.composite(p.bands[best], "true"))
    if p.has_labels:
        add("label", viz.binary_image(p.cultivated, on=LABEL_ON, off=OFF, ignore=p.not_declared))
        add("weight map", viz.colormap(thin(label_layout(path)[1]), 0, 4, "viridis"), False, SMOOTH_MAX_PX)
    return out


@st.cache_resource(show_spinner=False, max_entries=4)
def _label_parcels(path: str, mtime: float):
    """The label's parcels vectorised once per patch (the benchmark's 8-connected parcels, as the scores count them)."""
    from ui.maps import label_parcels

    p = load_patch(path)
    return label_parcels(p.cultivated, p.bbox, labels=label_layout(path)[0].labels)


def run_all() -> None:
    bar = st.progress(0.0, text="Running the SR model …")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"SR model: tile pass {done}/{total}")

    try:
        if cached_prediction(PATH, "model", device, with_unc, season) is None:
            bar.progress(0.0, text="Preparing the map layers (true colour, label, weight map, parcels) …")
            mtime = Path(PATH).stat().st_mtime
            patch_layers(PATH, mtime, season)
            if patch.has_labels:
                _label_parcels(PATH, mtime)
        pred = run_predictor(PATH, "model", device, with_unc, progress=progress, season=season)
    except Exception as exc:
        st.error(f"Prediction failed: {failure(exc)}")
    else:
        st.toast(f"Predicted in {pred.seconds:.2f} s on {pred.device}")
    finally:
        bar.empty()


if go:
    run_all()
pred = cached_prediction(PATH, "model", device, with_unc, season)
if pred is None:
    st.info("Press **Run model and baselines**. Results are cached per patch and model, so they come back at once.")
    sidebar()
    st.stop()

# -- the map: swipe prediction | label (or true colour), switchable layers, parcels -----------------------------------------
PKEY = prediction_key(PATH, "model", device, with_unc, season)


@st.cache_data(show_spinner="Warping the layers to the map …", max_entries=8)
def compare_layers(pkey: tuple) -> dict[str, tuple[str, list[list[float]]]]:
    """Every raster of the compare map, warped from the patch CRS to Web Mercator (cached per prediction)."""
    from ui.maps import warp

    p, pr = load_patch(pkey[0]), cached_prediction(PATH, "model", device, with_unc, season)
    base = patch_layers(pkey[0], pkey[1], season)
    out: dict[str, tuple[str, list[list[float]]]] = {k: v for k, v in base.items() if k.startswith("true colour")}

    def add(name: str, img: np.ndarray, categorical: bool = True, max_size: int | None = None) -> None:
        w = warp(img, p.bbox, categorical=categorical, max_size=max_size)
        out[name] = (w.data_url(), w.bounds_latlon)

    add("prediction", viz.binary_image(pr.binary, on=PRED_ON, off=OFF))
    if p.has_labels:
        out["label"] = base["label"]
        add("error map", viz.error_image(p.cultivated, pr.binary, p.not_declared))
        out["weight map"] = base["weight map"]
    add("probability", viz.colormap(thin(pr.proba), 0, 1, "magma"), False, SMOOTH_MAX_PX)
    if pr.uncertainty is not None:
        add("uncertainty", viz.colormap(thin(pr.uncertainty), 0, float(max(pr.uncertainty.max(), 1e-6)), "inferno"), False,
            SMOOTH_MAX_PX)
    return out


@st.cache_data(show_spinner=False, max_entries=8)
def parcel_layer(pkey: tuple) -> tuple[dict, int]:
    from ui.maps import parcels_geojson

    pr = cached_prediction(PATH, "model", device, with_unc, season)
    return parcels_geojson(_label_parcels(pkey[0], pkey[1]), pr.binary)


def compare_map(right: str):
    import folium

    from ui.maps import (
        Script,
        add_legend,
        bbox_latlon,
        legend_html,
        new_map,
        outline_layer,
        pane,
        rgb_css,
    )  # fmt: skip

    layers = compare_layers(PKEY)
    m = new_map(bounds=bbox_latlon(patch.bbox), basemap=st.session_state.get("cmp_basemap", False), zoom=13)
    pane(m, "srbase", 350)
    pane(m, "srleft", 410)
    pane(m, "srright", 411)
    pane(m, "srover", 420)
    folium.map.CustomPane("srvec", z_index=430, pointer_events=True).add_to(m)

    def overlay(name: str, pane_name: str, show: bool = True, control: bool = True):
        url, b = layers[name]
        layer = folium.raster_layers.ImageOverlay(url, b, name=name, pane=pane_name, show=show, control=control,
                                                  pixelated=True, interactive=False)
        layer.add_to(m)
        return layer

    tc_name = next(k for k in layers if k.startswith("true colour"))
    overlay(tc_name, "srbase", control=False)
    left = overlay("prediction", "srleft")
    faded = [left]
    if "label" in layers and right == "label":
        faded.append(overlay("label", "srright"))
    for name in ("error map", "weight map", "probability", "uncertainty"):
        if name in layers:
            faded.append(overlay(name, "srover", show=False))
    if patch.has_labels:
        fc, n = parcel_layer(PKEY)
        if fc["features"]:
            fields = ["parcel", "area", "size class", "predicted cultivated", "outcome"]
            folium.GeoJson(
                fc, name=f"label parcels ({len(fc['features'])} of {n})" if len(fc["features"]) < n else "label parcels",
                show=False, pane="srvec",
                style_function=lambda f: {"color": "#38c172" if f["properties"]["outcome"].startswith("detected")
                                          else "#ff4d6d", "weight": 1.5, "fillOpacity": 0.05},
                popup=folium.GeoJsonPopup(fields=fields), tooltip=folium.GeoJsonTooltip(fields=["parcel", "outcome"]),
            ).add_to(m)
    outline_layer(patch.bbox, "patch outline").add_to(m)
    Script("srSwipe({map}, 'srleft', 'srright', 0.5);").add_to(m)
    Script("srOpacity({map}, [" + ", ".join(f"{{l{i}}}" for i in range(len(faded))) + "], 'opacity', 0.85);",
           **{f"l{i}": lay for i, lay in enumerate(faded)}).add_to(m)
    add_legend(m, legend_html([(rgb_css(PRED_ON), "prediction"),
                               *([(rgb_css(LABEL_ON), "label")] if right == "label" else [])]))
    return m


c_map, c_side = st.columns([3, 2])
with c_side:
    m1, m2 = st.columns(2)
    m1.metric("Device", device_badge(pred.device))
    m2.metric("Time (model)", f"{pred.seconds:.2f} s", help="the network's run on this patch (reading the patch, the "
              "baselines and drawing the map come on top)")
    m1.metric("Cultivated (predicted)", f"{pred.binary.mean():.1%}")
    first = scores_for(PATH, "model", device, with_unc, season) if patch.has_labels else None
    if first is not None:  # the score a demo is about, beside the map (the table with the baselines is below)
        m2.metric("Weighted MCC", "undefined" if first.truth_one_class else f"{first.wmcc:.3f}",
                  help="against this patch's labels, with the benchmark's weight map; the baselines and the ceilings "
                  "are in the table below the map" + ("; undefined here: the labels hold one class only, so there is "
                                                      "nothing to tell apart" if first.truth_one_class else ""))
    else:
        m2.metric("Threshold", f"{pred.threshold:.2f}")
    r1, r2 = st.columns([3, 2])
    right = r1.radio("Right of the swipe", ["label", "true colour"], key="cmp_right", horizontal=True,
                     disabled=not patch.has_labels, index=0 if patch.has_labels else 1)
    if not patch.has_labels:  # the choice made on a labelled patch is kept, but there is no label here
        right = "true colour"
    r2.toggle("OSM", key="cmp_basemap", help="Online OpenStreetMap under the layers; needs internet, and the map "
                                             "says so when the tiles cannot load.")
    st.caption("Drag the round handle to swipe (prediction left, " + ("label" if right == "label" else "true colour")
               + " right); bottom-left slider: opacity; layer list: "
               + ("error, weight, probability" if patch.has_labels else "probability")
               + (", uncertainty" if pred.uncertainty is not None else "")
               + (" and the label's parcels (click one)" if patch.has_labels else "") + ". "
               "All in the browser, no reload.")
    from ui.maps import gradient, rgb_css

    def swatches(items) -> str:
        return " ".join(f"<span style='white-space:nowrap'><span style='display:inline-block;width:11px;height:11px;"
                        f"background:{c};border:1px solid #888'></span> {t}</span>" for c, t in items)

    bars = " ".join(f"<span style='white-space:nowrap'>{t} {lo} <span style='display:inline-block;width:70px;"
                    f"height:9px;background:{gradient(cm)};border:1px solid #888'></span> {hi}</span>"
                    for t, cm, lo, hi in ([("weight", "viridis", 0, 4)] if patch.has_labels else [])
                    + [("probability", "magma", 0, 1)])
    st.markdown("<small>" + swatches([(rgb_css(PRED_ON), "prediction"), (rgb_css(LABEL_ON), "label"),
                                      (rgb_css(IGNORED), "not declared"), (rgb_css(OFF), "not cultivated")])
                + ("<br><b>error</b> " + swatches([(rgb_css(c), k) for k, c in viz.ERROR_COLOURS.items()])
                   if patch.has_labels else "") + "<br>" + bars + "</small>", unsafe_allow_html=True)
with c_map:
    from ui.maps import show as show_map

    show_map(compare_map(right if patch.has_labels else "true colour"), key=f"cmp_map:{PKEY}:{right}", height=480,
             layer_control=True)
if rec := pred.extra.get("input"):
    filled = ", ".join(f"{m} ← {s}" for m, s in rec.get("filled_bands", {}).items()) or "none"
    st.caption(f"Input: season **{rec['season']}**{'' if rec.get('season_complete') else ' (incomplete)'} · "
               f"{rec['dates_used']} of {rec['dates_total']} dates, {rec['first_date']} … {rec['last_date']} · "
               f"filled bands: {filled} · clouds from {rec.get('cloud_source', 'none')}")
for w in pred.warnings:
    st.warning(w)
st.caption(f"Predictor: `{pred.predictor}` · threshold {pred.threshold:.2f} · output grid {pred.shape[0]} × "
           f"{pred.shape[1]} px at 2.5 m in {pred.bbox.crs} · every layer warped to Web Mercator (EPSG:3857) with rasterio")

# -- scores: the model's at once, both baselines on a background thread (after the map is on screen) ----------------------
if patch.has_labels:
    start_baselines(PATH, season)


@st.fragment(run_every=1.0 if patch.has_labels and baselines_pending(PATH, season) else None)
def score_table() -> None:
    pending = baselines_pending(PATH, season)
    rows = []

    def row(label: str, s) -> dict:
        return {"predictor": label, "weighted MCC": s.wmcc, "MCC": s.mcc, "F1": s.f1, "IoU": s.iou,
                "precision": s.precision, "recall": s.recall, **{f"MCC {k}": v for k, v in s.size_class_mcc().items()},
                **{f"boundary F {k}px": v for k, v in s.boundary_f1().items()}}

    for key, label in PREDICTORS.items():
        # the model's scores here; the baselines' are computed by their background job (shown once it has them)
        s = (scores_for(PATH, key, device, with_unc, season) if key == "model"
             else cached_scores(PATH, key, season=season))
        if s is None:
            continue
        rows.append(row(label, s))
        if key == "model":
            st.session_state.setdefault(Keys.LAST_MCC, {})[PATH] = s.wmcc
            for w in s.warnings:
                st.warning(w)
    # what deciding every 10 m pixel right would score: read the model against it
    rows += [row(CEILINGS[key], s) for key, s in ceiling_scores(PATH, compute=not pending).items()]
    st.subheader("Scores on this patch")
    st.dataframe(pd.DataFrame(rows).set_index("predictor").style.format("{:.3f}", na_rep="–"), width="stretch")
    for b, err in baseline_errors(PATH, season).items():
        st.info(f"{PREDICTORS[b]} unavailable: {err}")
    if pending:
        st.caption("⏳ Running both baselines for this table (in the background, after the map) …")
        st.session_state["_scores_pending"] = True
    elif st.session_state.pop("_scores_pending", False) and in_fragment_rerun():
        st.rerun(scope="app")  # done: one full rerun stops this table's polling
    st.caption("Weighted MCC uses the benchmark's weight map (small parcels and the gaps between parcels weigh up to 4×; "
               "not-declared land and the border are ignored). MCC, F1, IoU, precision, recall: unweighted over scored "
               "pixels. Size classes at 2.5 m: < 50 px, 50–400 px, ≥ 400 px. The *ceiling* rows read the labels "
               "(they are not predictors): the true 10 m majority repeated 4 × 4, and the true 10 m cultivated share "
               "upsampled bicubically — what a map that gets every 10 m pixel right would score. Where they reach "
               "1.000 the labels hold no detail finer than 10 m (as on the real Flanders patch). On a simulated "
               "patch a third row gives a perfect model's score: the simulator's labels redrawn from the parcels' "
               "sown edges, so it misses only the declared polygons' digitising offset (σ 1.6 m) that no imagery "
               "shows.")


if patch.has_labels:
    with st.spinner("Scoring against the labels (weight map, ceilings) …"):  # the first time per patch takes a while
        score_table()
    with st.spinner("Measuring where the labels sit against the imagery …"):
        off = label_offset_of(PATH, season)
    if off is not None:
        from sr_core.coreg import labels_off, offset_words

        say = st.warning if labels_off(off) else st.caption
        say(f"Labels vs imagery: {offset_words(off)}, measured without any predictor (a step-edge fit of B08 across "
            f"the labels' edges, {off['dates']} clear dates). "
            + ("Every predictor loses boundary pixels to that: read the scores above with it in mind."
               if say is st.warning else "Within half a pixel: the scores are not held back by the labels' position."))
else:
    st.info("This patch has no labels (e.g. a test patch or an upload): scores need the LPIS-derived CULTIVATED layer.")

# -- downloads --------------------------------------------------------------------------------------------------------------
st.subheader("Downloads")

d1, d2, d3 = st.columns(3)
d1.download_button("Submission GeoTIFF (uint8 0/1)", output_file(pred, patch, "submission"), f"{patch.name}.tif", "image/tiff",
                   key="dl_submission", on_click="ignore")
d2.download_button("Probability GeoTIFF (0–255, scale 1/255)", output_file(pred, patch, "probability"),
                   f"{patch.name}_proba.tif", "image/tiff", key="dl_probability", on_click="ignore",
                   help="uint8: the probability × 255, with the band scale 1/255 recorded (QGIS "
                        "and GDAL show 0–1; tools that ignore the scale show 0–255)")
d3.download_button("Predicted fields (GeoPackage)", output_file(pred, patch, "fields"), f"{patch.name}_fields.gpkg",
                   "application/geopackage+sqlite3", key="dl_fields", on_click="ignore")
st.caption(f"All outputs are on the patch's 2.5 m grid in {patch.bbox.crs} and open in place in QGIS next to the input.")

# -- all labelled patches ---------------------------------------------------------------------------------------------------
st.subheader("All labelled patches")
labelled = [r for r in catalog() if r["has_labels"] and not r["error"]]
st.caption(f"{len(labelled)} labelled patch(es) in the catalogue. The pooled score sums weighted confusion counts over "
           "all of them, as the benchmark does.")
if st.button(f"Score all {len(labelled)} labelled patches (model + baselines)", key="score_all"):
    bar = st.progress(0.0)
    for i, r in enumerate(labelled):
        bar.progress(i / max(len(labelled), 1), text=f"{r['name']} ({i + 1}/{len(labelled)})")
        for key in PREDICTORS:
            try:
                run_predictor(r["path"], key, device if key == "model" else "cpu")
                scores_for(r["path"], key, device if key == "model" else "cpu")  # kept when the maps are dropped
            except Exception as exc:
                if key == "model" or not isinstance(exc, SRCoreError):
                    st.error(f"{r['name']}: {failure(exc)}")
    bar.empty()
from sr_core.metrics import Scores  # noqa: E402

table, complete = [], {}  # complete: source -> per predictor, the scores of patches every predictor has scored
for r in labelled:
    row = {"patch": r["name"], "source": r["source"]}
    here = {}
    for key, label in PREDICTORS.items():
        dev = device if key == "model" else "cpu"
        # the patch shown above is scored as run there (its season, with or without uncertainty)
        how = ((with_unc if key == "model" else False), season) if r["path"] == PATH else (False, None)
        s = scores_for(r["path"], key, dev, *how)  # kept scores first: no patch is read for them
        if s is None:
            continue
        row[label] = s.wmcc
        here[label] = s
        if key == "model":
            st.session_state.setdefault(Keys.LAST_MCC, {})[r["path"]] = s.wmcc
    if len(here) == len(PREDICTORS):
        for label, s in here.items():
            complete.setdefault(r["source"], {}).setdefault(label, []).append(s)
    table.append(row)
if any(len(row) > 2 for row in table):
    df = pd.DataFrame(table)
    rows = []
    for source in ("real", "simulated"):  # real first; never pooled together
        if source in complete:
            n = len(next(iter(complete[source].values())))
            rows.append({"patch": f"POOLED {source} ({n})", "source": source}
                        | {k: Scores.pool(v).wmcc for k, v in complete[source].items()})
    df = pd.concat([df, pd.DataFrame(rows)], ignore_index=True) if rows else df
    for k in PREDICTORS.values():  # as text: st.dataframe shows a missing number as "None", whatever the Styler says
        if k in df:
            df[k] = [("–" if v is None or pd.isna(v) else f"{v:.3f}") for v in df[k]]
    st.dataframe(df, hide_index=True, width="stretch")
    st.caption("Weighted MCC per patch; patches not yet predicted show –. Each POOLED row sums the weighted confusion "
               "counts of the patches (their number in brackets) that every predictor has scored, real and simulated "
               "apart.")
sidebar()
