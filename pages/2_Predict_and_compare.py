"""Predict & compare: run the model (GPU or CPU), compare the 2.5 m prediction with the labels and both baselines."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from sr_core import viz
from sr_core.errors import SRCoreError
from ui.common import (
    PREDICTORS,
    Keys,
    cached_prediction,
    catalog,
    device_badge,
    downsample_for_display,
    page_setup,
    patch_header,
    run_predictor,
    scores_for,
    sidebar,
)  # fmt: skip

page_setup("Predict & compare", "🎯")
st.title("🎯 Predict & compare")
patch, PATH = patch_header()

# -- run ----------------------------------------------------------------------------------------------------------------
from sr_core.inference import available_devices  # noqa: E402  (torch import only once the page is open)

devices = ["auto", *available_devices()]
c1, c2, c3 = st.columns([2, 2, 3])
with c1:
    device = st.selectbox("Device", devices, key=Keys.DEVICE,
                          help="auto = CUDA GPU → Apple MPS → CPU, whichever this machine has")
with c2:
    with_unc = st.toggle("Uncertainty (8× flips/rotations, slower)", key="with_uncertainty")
with c3:
    go = st.button("▶ Run model and baselines", type="primary", key="run_model")


def run_all() -> None:
    bar = st.progress(0.0, text="Running the SR model …")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"SR model: tile pass {done}/{total}")

    try:
        pred = run_predictor(PATH, "model", device, with_unc, progress=progress)
        bar.progress(1.0, text="Baselines …")
        for b in ("ndvi", "pixel"):
            try:
                run_predictor(PATH, b)
            except SRCoreError as exc:
                st.info(f"{PREDICTORS[b]} unavailable: {exc}")
    except SRCoreError as exc:
        st.error(f"Prediction failed: {exc}")
    else:
        bar.empty()
        st.toast(f"Predicted in {pred.seconds:.2f} s on {pred.device}")


if go:
    run_all()
pred = cached_prediction(PATH, "model", device, with_unc)
if pred is None:
    st.info("Press **Run model and baselines**. Results are cached per patch and model, so they come back at once.")
    sidebar()
    st.stop()

m1, m2, m3, m4 = st.columns(4)
m1.metric("Device", device_badge(pred.device))
m2.metric("Time (model)", f"{pred.seconds:.2f} s")
m3.metric("Cultivated (predicted)", f"{pred.binary.mean():.1%}")
m4.metric("Threshold", f"{pred.threshold:.2f}")
for w in pred.warnings:
    st.warning(w)
st.caption(f"Predictor: `{pred.predictor}` · output grid {pred.shape[0]} × {pred.shape[1]} px at 2.5 m in {pred.bbox.crs}")

# -- scores ---------------------------------------------------------------------------------------------------------------
if patch.has_labels:
    rows = []
    for key, label in PREDICTORS.items():
        s = scores_for(PATH, key, device if key == "model" else "cpu", with_unc if key == "model" else False)
        if s is None:
            continue
        rows.append({"predictor": label, "weighted MCC": s.wmcc, "MCC": s.mcc, "F1": s.f1, "IoU": s.iou,
                     "precision": s.precision, "recall": s.recall,
                     **{f"MCC {k}": v for k, v in s.size_class_mcc().items()},
                     **{f"boundary F {k}px": v for k, v in s.boundary_f1().items()}})
        if key == "model":
            st.session_state.setdefault(Keys.LAST_MCC, {})[PATH] = s.wmcc
            for w in s.warnings:
                st.warning(w)
    st.subheader("Scores on this patch")
    st.dataframe(pd.DataFrame(rows).set_index("predictor").style.format("{:.3f}", na_rep="–"), width="stretch")
    st.caption("Weighted MCC uses the benchmark's weight map (small parcels and the gaps between parcels weigh up to 4×; "
               "not-declared land and the border are ignored). MCC, F1, IoU, precision, recall: unweighted over scored "
               "pixels. Size classes at 2.5 m: < 50 px, 50–400 px, ≥ 400 px.")
else:
    st.info("This patch has no labels (e.g. a test patch or an upload): scores need the LPIS-derived CULTIVATED layer.")

# -- maps -----------------------------------------------------------------------------------------------------------------
st.subheader("Maps at 2.5 m")
H4, W4 = pred.shape
zoom = st.toggle("Zoom to a detail at full resolution", key="zoom")
if zoom:
    z1, z2, z3 = st.columns(3)
    size = z1.select_slider("Window (2.5 m px)", [64, 128, 256, 400], value=min(256, H4, W4), key="zoom_size")
    size = min(size, H4, W4)
    r0 = z2.slider("Row", 0, H4 - size, (H4 - size) // 2, key="zoom_row")
    c0 = z3.slider("Column", 0, W4 - size, (W4 - size) // 2, key="zoom_col")
    win = (slice(r0, r0 + size), slice(c0, c0 + size))
else:
    win = (slice(None), slice(None))


def show(img: np.ndarray, caption: str) -> None:
    img = img[win]
    st.image(downsample_for_display(img) if not zoom else viz.upscale(img, max(1, 512 // img.shape[0])),
             caption=caption, width="stretch")


pred_img = viz.binary_image(pred.binary)
truth_img = viz.binary_image(patch.cultivated, ignore=patch.not_declared) if patch.has_labels else None
tabs = st.tabs(["Side by side", "Overlay", "Error map", "Weight map", "Probability", "Input (10 m)"])
with tabs[0]:
    a, b = st.columns(2)
    with a:
        show(pred_img, "Prediction (green = cultivated)")
    with b:
        if truth_img is not None:
            show(truth_img, "LPIS-derived label (green = cultivated, grey = not declared, ignored)")
        else:
            st.info("No label for this patch.")
with tabs[1]:
    if truth_img is None:
        st.info("No label to overlay.")
    else:
        mode = st.radio("Mode", ["swipe", "opacity"], horizontal=True, key="overlay_mode")
        t = st.slider("Label ← → prediction" if mode == "swipe" else "Prediction opacity", 0.0, 1.0, 0.5, 0.01,
                      key="overlay_t")
        tw, pw = truth_img[win], pred_img[win]
        img = viz.swipe(tw, pw, 1 - t) if mode == "swipe" else viz.blend(tw, pw, t)
        cap = "Swipe: label on the left, prediction on the right" if mode == "swipe" else "Label blended with prediction"
        st.image(downsample_for_display(img) if not zoom else viz.upscale(img, max(1, 512 // img.shape[0])), width="stretch",
                 caption=cap)
with tabs[2]:
    if patch.has_labels:
        show(viz.error_image(patch.cultivated, pred.binary, patch.not_declared), "Error map")
        st.markdown(" ".join(
            f"<span style='background:rgb{c};padding:0 8px;border:1px solid #888'>&nbsp;</span> {k}"
            for k, c in viz.ERROR_COLOURS.items()), unsafe_allow_html=True)
    else:
        st.info("No label: no error map.")
with tabs[3]:
    if patch.has_labels:
        from sr_core.metrics import weight_map

        w = weight_map(patch.cultivated, patch.not_declared)
        show(viz.colormap(w, 0, 4, "viridis"), "Benchmark weight map (0 = ignored … 4 = gap between small parcels)")
    else:
        st.info("No label: the weight map is built from the labels.")
with tabs[4]:
    show(viz.colormap(pred.proba, 0, 1, "magma"), "Predicted probability of cultivated land (0 black … 1 yellow)")
    if pred.uncertainty is not None:
        show(viz.colormap(pred.uncertainty, 0, float(max(pred.uncertainty.max(), 1e-6)), "inferno"),
             "Uncertainty (std over flips/rotations)")
with tabs[5]:
    valid = patch.valid_mask().mean(axis=(1, 2))
    best = int(np.argmax(valid))
    rgb = viz.composite(patch.bands[best], "true")
    show(viz.upscale(rgb, 4), f"True colour at 10 m, clearest date {patch.timestamps[best]:%Y-%m-%d} (shown on the 2.5 m grid)")

# -- downloads --------------------------------------------------------------------------------------------------------------
st.subheader("Downloads")
with tempfile.TemporaryDirectory() as tmp:
    from sr_core.export import write_fields_gpkg
    from sr_core.io.submission import write_probability, write_submission

    try:
        sub = write_submission(pred, patch, tmp).read_bytes()
        prob = write_probability(pred, patch, tmp).read_bytes()
        gpkg = write_fields_gpkg(pred, Path(tmp) / f"{patch.name}_fields.gpkg").read_bytes()
    except (SRCoreError, OSError) as exc:
        st.error(f"Could not write the outputs: {exc}")
    else:
        d1, d2, d3 = st.columns(3)
        d1.download_button("Submission GeoTIFF (uint8 0/1)", sub, f"{patch.name}.tif", "image/tiff")
        d2.download_button("Probability GeoTIFF", prob, f"{patch.name}_proba.tif", "image/tiff")
        d3.download_button("Predicted fields (GeoPackage)", gpkg, f"{patch.name}_fields.gpkg", "application/geopackage+sqlite3")
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
            except SRCoreError as exc:
                if key == "model":
                    st.error(f"{r['name']}: {exc}")
    bar.empty()
from sr_core.metrics import Scores  # noqa: E402

table, pooled = [], {}
for r in labelled:
    row = {"patch": r["name"], "source": r["source"]}
    for key, label in PREDICTORS.items():
        dev = device if key == "model" else "cpu"
        if cached_prediction(r["path"], key, dev) is None:
            continue
        s = scores_for(r["path"], key, dev)
        row[label] = s.wmcc
        pooled.setdefault(label, []).append(s)
        if key == "model":
            st.session_state.setdefault(Keys.LAST_MCC, {})[r["path"]] = s.wmcc
    table.append(row)
if pooled:
    df = pd.DataFrame(table)
    pooled_row = {"patch": "POOLED", "source": ""} | {k: Scores.pool(v).wmcc for k, v in pooled.items()}
    df = pd.concat([df, pd.DataFrame([pooled_row])], ignore_index=True)
    st.dataframe(df.style.format({k: "{:.3f}" for k in pooled}, na_rep="–"), hide_index=True, width="stretch")
    st.caption("Weighted MCC per patch; patches not yet predicted show –.")
sidebar()
