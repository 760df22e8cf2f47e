"""Hallucinations: where does the 2.5 m map invent detail, and can it be trusted?

Thin page over :mod:`sr_core.inspect` (the CLI ``python -m sr_core inspect`` runs the same code): uncertainty and its
calibration, improvement / hallucination / omission against the 10 m answer, consistency with the 10 m evidence,
effective resolution, probes without field information, and a one-page report. Definitions: docs/HALLUCINATIONS.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from sr_core import viz
from sr_core.errors import SRCoreError
from ui.common import (
    Keys,
    PerPatchStore,
    cached_prediction,
    device_badge,
    downsample_for_display,
    failure,
    page_setup,
    patch_header,
    run_predictor,
    season_picker,
    shown,
    sidebar,
)  # fmt: skip


class HK:
    """Page-local session-state / widget keys (prefix ``halluc_``)."""

    TTA = "halluc_tta"
    DATES = "halluc_date_members"
    ANSWER = "halluc_answer"
    MARGIN = "halluc_margin"
    RUN = "halluc_run"
    PROBES = "halluc_probes"
    REPORT = "halluc_report"
    REPORT_DATA = "halluc_report_data"
    ZOOM = "halluc_zoom"
    ZOOM_ROW = "halluc_zoom_row"
    ZOOM_COL = "halluc_zoom_col"
    TAB = "halluc_tab"


page_setup("Hallucinations", "🔍")
st.title("🔍 Hallucination inspector")
patch, PATH = patch_header()
ABOUT = (
    "Where does the 2.5 m map depart from what 10 m data supports, and is it right there? Compared with the **10 m "
    "answer** (the pixel baseline, or the model's own output averaged to 10 m), each pixel is an *improvement* (departs, "
    "right), a *hallucination* (departs, wrong) or an *omission* (sub-10 m detail of the truth not recovered). "
    "Definitions: `docs/HALLUCINATIONS.md`."
)


@st.cache_resource
def _store() -> PerPatchStore:
    """Inspections (80–100 MB each at full size), their maps, probes: those of the last four patches inspected."""
    return PerPatchStore(4)


def _key(*parts: Any) -> tuple:
    from pathlib import Path

    p = Path(PATH)
    return (str(p), p.stat().st_mtime, *parts)


# -- controls -------------------------------------------------------------------------------------------------------------
from sr_core.inference import available_devices  # noqa: E402  (torch only once the page is open)
from sr_core.prepare import choose_season  # noqa: E402

# One growing season at a time, as the model reads it; the choice is shared with Predict & compare (the same key).
season, SEASONS = season_picker(patch, PATH, help="This series spans several growing seasons (1 March – 1 September); "
                                                  "the inspection, like the model, reads one. Shared with Predict & "
                                                  "compare.")
FULL = patch  # every date; `patch` below is the season inspected


def _season_cut(full, season_: int | None):
    """``full`` cut to growing season ``season_`` (None: the default), as the model reads it."""
    if SEASONS is None:
        return full
    idx = choose_season(full.timestamps, season_).index
    return full.select_dates(idx) if len(idx) < full.n_dates else full


patch = _season_cut(FULL, season)  # everything below (maps, probes, report) sees that season's dates
if SEASONS is not None:
    st.caption(f"Season {SEASONS.year if season is None else season}: {patch.n_dates} dates, "
               f"{patch.timestamps[0]:%Y-%m-%d} … {patch.timestamps[-1]:%Y-%m-%d}.")

c1, c2, c3, c4, c5, c6 = st.columns([2, 2, 2, 2.4, 2, 1.6], vertical_alignment="bottom")
device = c1.selectbox("Device", ["auto", *available_devices()], key=Keys.DEVICE, help="auto = CUDA → MPS → CPU")
tta = c2.select_slider("Flips/rotations (TTA)", [1, 2, 4, 8], value=8, key=HK.TTA,
                       help="the uncertainty map is the spread over these test-time transforms (1 = none)")
members = c3.select_slider("Date-subset ensemble", [0, 2, 4, 8], value=0, key=HK.DATES,
                           help="also predict on random halves of the dates; their spread joins the uncertainty")
answer = c4.radio("10 m answer", ["auto", "pixel", "model"], horizontal=True, key=HK.ANSWER,
                  help="pixel = the 10 m pixel baseline; model = the model averaged to 10 m; auto = pixel when available")
margin = c5.slider("Contradiction margin", 0.1, 0.9, 0.5, 0.05, key=HK.MARGIN,
                   help="a 10 m pixel contradicts the data when |map cover − 10 m evidence| exceeds this")
KEY = _key(season, device, tta, members, answer, margin)
SETTINGS = {"season": season or "default", "device": device, "flips/rotations": tta, "date-subset ensemble": members,
            "10 m answer": answer, "margin": margin}
LATEST = _key("latest")  # this patch's last inspection, whatever its settings: shown until the next one


def run_inspection() -> None:
    from sr_core.inference import predict
    from sr_core.inspect import inspect_patch

    bar = st.progress(0.0, text="Running the SR model …")

    def progress(stage: str, done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{stage}: {done}/{total}")

    try:
        if tta == 8:  # the Predict page's uncertainty run: shared cache
            pred = run_predictor(PATH, "model", device, True, progress=lambda d, n: progress("SR model", d, n),
                                 season=season)
        else:
            pred = predict(patch, device=device, uncertainty=tta > 1, tta=tta,
                           progress=lambda d, n: progress("SR model", d, n))
        ins = inspect_patch(patch, prediction=pred, device=device, date_members=members, answer=answer, margin=margin,
                            progress=progress)
    except Exception as exc:
        st.error(f"The inspection could not run: {failure(exc)}")
        if "not found" in str(exc):
            st.info("No trained model is installed yet. Train one (`python -m sr_core train`), or put the bundled "
                    "weights into `models/`; then press **Inspect** again.", icon="🧠")
    else:
        _store()[KEY] = ins
        _store()[LATEST] = (KEY, dict(SETTINGS), ins, season, device)
        st.session_state.pop(HK.REPORT_DATA, None)
    finally:
        bar.empty()


if c6.button("🔍 Inspect", type="primary", key=HK.RUN, help="Inspect this patch"):
    run_inspection()
ins = _store().get(KEY)
if ins is None and LATEST in _store():  # the settings changed since: keep showing the last results, and say so
    KEY, was, ins, season, device = _store()[LATEST]  # its maps, probes and report are cached under its own key
    patch = _season_cut(FULL, season)  # and are made from its own season's dates, on its own device
    changed = [f"{k} {was[k]} → {SETTINGS[k]}" for k in SETTINGS if was[k] != SETTINGS[k]]
    st.warning("Shown: the last inspection of this patch, with its own settings. Changed since: "
               + ", ".join(changed) + ". Press **🔍 Inspect** to update.", icon="⏳")
    tta, members, answer, margin = (was["flips/rotations"], was["date-subset ensemble"], was["10 m answer"],
                                    was["margin"])
if ins is None:
    if tta == 8 and cached_prediction(PATH, "model", device, True, season) is not None:
        st.info("A model prediction with uncertainty (8 flips / rotations) is cached for this patch: **Inspect** "
                "reuses it.")
    else:
        st.info("**Inspect this patch** with the 🔍 button. Results are cached per patch and setting.")
    st.caption(ABOUT)
    sidebar()
    st.stop()

from sr_core.inspect.maps import (  # noqa: E402
    DEPARTURE_COLOURS,
    DEPARTURE_LABELS,
    OUTCOME_COLOURS,
    OUTCOME_LABELS,
    Outcome,
    departure_image,
    outcome_image,
)

pred = ins.prediction
c = ins.counts
h = c.headline()


def pct(x: float | None, spec: str = ".1%") -> str:
    return "–" if x is None else format(x, spec)


def number_formats(df: pd.DataFrame) -> dict[str, str]:
    """Counts as integers ("69,620"), other numbers with three decimals."""
    counts = {"n", "pixels", "parcels", "detected", "count"}
    out = {}
    for col in df.columns:
        v = pd.to_numeric(df[col], errors="coerce").dropna()
        if v.size:
            out[col] = "{:,.0f}" if col in counts and bool(((v % 1) == 0).all()) else "{:.3f}"
    return out


def legend(items: dict[str, tuple[int, int, int]]) -> None:
    st.markdown(" ".join(f"<span style='background:rgb{col};padding:0 8px;border:1px solid #888'>&nbsp;</span> {k}"
                         for k, col in items.items()), unsafe_allow_html=True)


# -- headline ---------------------------------------------------------------------------------------------------------------
st.caption(f"Predictor `{pred.predictor}` · threshold {pred.threshold:g} · 10 m answer: {ins.answer.source} · "
           f"uncertainty: {ins.uncertainty_kind} · {ins.seconds:.1f} s")


def headline() -> None:
    # two to a row, short labels: three to a row cut them short ("Hallucina…") in the column beside the map
    m = st.columns(2)
    m[0].metric("Device", device_badge(pred.device))
    m[1].metric("Cultivated", pct(ins.structure.cultivated_fraction if ins.structure else None),
                help="share of the 2.5 m map painted cultivated")
    m = st.columns(2)
    m[0].metric("Departures", pct(h["departure_fraction"], ".2%"),
                help="share of pixels where the 2.5 m map departs from the 10 m answer")
    m[1].metric("Wrong departures", pct(h["hallucination_rate"]),
                help="share of the departures from the 10 m answer that are wrong: hallucinated / departing pixels "
                     "(needs labels)")
    m = st.columns(2)
    m[0].metric("Gap recall", pct(h["gap_recall"]), help="thin gaps between touching parcels kept open (needs labels)")
    m[1].metric("ECE", pct(h["ece"], ".3f"), help="expected calibration error of the probability (needs labels)")


def zoom_window() -> None:
    """The zoom window shared by the pictures of the Uncertainty, Consistency and Effective resolution tabs."""
    global zoom, win
    H4, W4 = pred.shape
    zoom = st.toggle("Zoom to a 128 × 128 px detail (full resolution)", key=HK.ZOOM)
    if zoom and min(H4, W4) > 128:
        z1, z2 = st.columns(2)
        r0 = z1.slider("Row", 0, H4 - 128, (H4 - 128) // 2, key=HK.ZOOM_ROW)
        c0 = z2.slider("Column", 0, W4 - 128, (W4 - 128) // 2, key=HK.ZOOM_COL)
        win = (slice(r0, r0 + 128), slice(c0, c0 + 128))
    else:
        win = (slice(None), slice(None))


zoom, win = False, (slice(None), slice(None))


def show(img: np.ndarray, caption: str, grid10: bool = False) -> None:
    """Show a 2.5 m map (or a 10 m one with grid10=True, repeated to the 2.5 m grid) in the zoom window."""
    if grid10:
        img = viz.upscale(img, 4)
    img = img[win]
    f = max(1, 512 // max(img.shape[:2])) if zoom else 1
    st.image(viz.upscale(img, f) if f > 1 else downsample_for_display(img), caption=caption, width="stretch")


# Only the open tab runs (on_change="rerun"): each tab's pictures and tables cost 0.1–1 s per rerun at full size, and
# every widget on the page reruns the whole page.
tabs = st.tabs(["Hallucination map", "Uncertainty", "Consistency", "Effective resolution", "Probes", "Report"],
               key=HK.TAB, on_change="rerun")
probe_key = (*KEY, "probes")
if _store().get(probe_key):
    ins.probes = _store()[probe_key]  # the report includes them, whichever tab is open

def outcome_map():
    """The outcome (or departure) map as a layer over the true colour, with the 10 m answer and the 2.5 m map as
    switchable layers, an opacity slider and the legend in the map (all in the browser)."""
    import folium

    from ui.maps import Script, add_legend, bbox_latlon, legend_html, new_map, outline_layer, rgb_css, warp

    key = (*KEY, "map")
    store = _store()
    if key not in store:
        valid = patch.valid_mask().mean(axis=(1, 2))
        best = int(np.argmax(valid))
        layers = {f"true colour {patch.timestamps[best]:%Y-%m-%d}": viz.composite(patch.bands[best], "true")}
        if ins.outcomes is not None:
            layers["outcome vs the 10 m answer"] = outcome_image(ins.outcomes)
        else:
            layers["departures from the 10 m answer"] = departure_image(ins.departure)
        layers[f"10 m answer ({ins.answer.source})"] = viz.binary_image(ins.answer.binary)
        layers["2.5 m map"] = viz.binary_image(pred.binary)
        store[key] = {k: (w.data_url(), w.bounds_latlon) for k, w in
                      ((k, warp(v, patch.bbox)) for k, v in layers.items())}
    layers = store[key]
    m = new_map(bounds=bbox_latlon(patch.bbox), basemap=st.session_state.get("halluc_basemap", False), zoom=13)
    faded = []
    for i, (name, (url, b)) in enumerate(layers.items()):
        lay = folium.raster_layers.ImageOverlay(url, b, name=name, show=i < 2, control=i > 0, pixelated=True,
                                                interactive=False)
        lay.add_to(m)
        if i:
            faded.append(lay)
    outline_layer(patch.bbox, "patch outline").add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    Script("srOpacity({map}, [" + ", ".join(f"{{l{i}}}" for i in range(len(faded))) + "], 'opacity', 0.85);",
           **{f"l{i}": lay for i, lay in enumerate(faded)}).add_to(m)
    items = ({OUTCOME_LABELS[o]: OUTCOME_COLOURS[o] for o in Outcome} if ins.outcomes is not None
             else {DEPARTURE_LABELS[k]: DEPARTURE_COLOURS[k] for k in DEPARTURE_LABELS})
    add_legend(m, legend_html([(rgb_css(c), k) for k, c in items.items()]))
    return m


if tabs[0].open:
    with tabs[0]:
        from ui.maps import show as show_map

        a, b = st.columns([3, 2])
        with a:
            show_map(outcome_map(), key=f"halluc_map:{KEY}", height=400)
        with b:
            headline()
            for v in ins.verdicts():  # the verdicts beside the map, in the first screen
                (st.error if v.startswith("BAD") else st.warning if v.startswith("MIXED") else
                 st.success if v.startswith("GOOD") else st.info)(v)
            st.toggle("OSM basemap", key="halluc_basemap", help="Online OpenStreetMap under the layers; needs internet, "
                                                                "and the map says so when the tiles cannot load.")
            st.caption("The outcome of every 2.5 m pixel against the 10 m answer, over the true colour; switch to the 10 m "
                       "answer or the 2.5 m map in the layer list, fade with the slider at the bottom left.")
            if ins.outcomes is not None:
                legend({OUTCOME_LABELS[o]: OUTCOME_COLOURS[o] for o in Outcome})
            else:
                legend({DEPARTURE_LABELS[k]: DEPARTURE_COLOURS[k] for k in DEPARTURE_LABELS})
        for n in ins.notes:
            st.caption(f"ℹ️ {n}")
        with st.expander("What this page measures"):
            st.markdown(ABOUT)
        if c.outcomes is not None:
            fr, frw = c.outcomes.fractions(), c.outcomes.fractions(weighted=True)
            st.dataframe(pd.DataFrame({"share of scored pixels": fr, "share (benchmark weights)": frw})
                         .rename(index=lambda k: OUTCOME_LABELS[Outcome[k.upper()]]).style.format("{:.2%}", na_rep="–"),
                         width="stretch")
            st.markdown(
                f"**Hallucination** fraction {pct(h['hallucination_fraction'], '.2%')} of scored pixels, "
                f"{pct(h['hallucination_rate'])} of the departures, {pct(h['sub10m_hallucination_share'])} of it inside "
                "10 m pixels the map splits (invented sub-10 m detail; the rest are whole 10 m pixels decided wrongly "
                "where the 10 m answer was right) · **omission** fraction "
                f"{pct(h['omission_fraction'], '.2%')}, {pct(h['omission_rate'])} of the sub-10 m detail the 10 m answer "
                f"misses · net gain over the 10 m answer {pct(h['net_gain_over_10m'], '+.2%')} of pixels.")
            if c.sown is not None:
                st.markdown(
                    f"**The labels' own error** (SIMULATED patch: the simulator knows the parcels' sown edges): "
                    f"{pct(h['hallucinations_on_label_offset'])} of the hallucination pixels and "
                    f"{pct(h['errors_on_label_offset'])} of all errors (by benchmark weight) are where the map follows the "
                    "sown edge and only the declared label, digitised a metre or two off, says otherwise. Those are the "
                    "label's, not the model's; on real data they cannot be told apart.")
        else:
            st.info("No labels: only where the map departs from the 10 m answer can be shown, not whether it is right.")

if tabs[1].open:
    with tabs[1]:
        zoom_window()
        a, b = st.columns(2)
        with a:
            if ins.uncertainty is not None:
                vmax = float(max(np.percentile(ins.uncertainty, 99), 1e-6))
                show(viz.colormap(ins.uncertainty, 0, vmax, "magma"), f"Uncertainty: {ins.uncertainty_kind} (0 … {vmax:.3f})")
            else:
                st.info("No ensemble ran (TTA = 1, no date subsets): raise TTA or add date subsets for an uncertainty map.")
            show(viz.colormap(pred.proba, 0, 1, "viridis"), "Probability of cultivated land")
        with b:
            if c.reliability is not None:
                from matplotlib.figure import Figure

                rel = c.reliability
                ok = rel.n > 0
                fig = Figure(figsize=(4, 3.2))
                ax = fig.add_subplot()
                ax.plot([0, 1], [0, 1], "--", color="#999", lw=1, label="perfect calibration")
                ax.plot(rel.mean_proba[ok], rel.frequency[ok], "o-", label="model")
                ax.set_xlabel("mean predicted probability")
                ax.set_ylabel("observed share cultivated")
                ax.set_title(f"Reliability curve · ECE {pct(rel.ece, '.3f')} · Brier {pct(rel.brier, '.3f')}", fontsize=9)
                ax.legend(fontsize=7)
                fig.tight_layout()
                st.pyplot(fig)
                for u in (c.uncertainty, c.confidence):
                    if u is None:
                        continue
                    hi, lo = u.top_share_error(0.1)
                    st.markdown(f"**{u.kind}** — error-detection AUC {pct(u.auc, '.3f')} (0.5 = chance); error rate of the "
                                f"10 % most uncertain pixels {pct(hi)} vs {pct(lo)} for the rest.")
                    rows = pd.DataFrame(u.bins())
                    if not rows.empty:
                        import altair as alt

                        rows = rows.sort_values("lo").reset_index(drop=True)
                        rows["bin"] = [f"{r.lo:.3g}–{r.hi:.3g}" for r in rows.itertuples()]
                        order = list(rows["bin"])  # numeric order of the bins, not text order
                        st.altair_chart(alt.Chart(rows).mark_bar().encode(
                            x=alt.X("bin:N", sort=order, title="uncertainty bin (equal pixel counts)",
                                    axis=alt.Axis(labelAngle=-40, labelLimit=120, titlePadding=8)),
                            y=alt.Y("error_rate:Q", title="error rate", axis=alt.Axis(format="%")),
                        ).properties(padding={"bottom": 10}), width="stretch", height=300)
            else:
                st.info("Calibration needs labels (do uncertain pixels really err more?). Run on a simulated or training "
                        "patch, or `python -m sr_core inspect --simulate N` for pooled figures.")

if tabs[2].open:
    with tabs[2]:
        zoom_window()
        cons = ins.consistency
        a, b = st.columns(2)
        with a:
            show(viz.colormap(cons.gap, -1, 1, "RdBu_r"),
                 "Map cover − 10 m evidence per 10 m pixel (red: paints more than the evidence, blue: less)", grid10=True)
        with b:
            show(viz.binary_image(cons.contradicts, on=(240, 60, 40)),
                 f"10 m pixels contradicting the evidence (|gap| > {cons.margin:g})", grid10=True)
        cc = c.consistency
        bound = max(pred.threshold, 1 - pred.threshold)
        st.markdown((f"{pct(cc.contradiction_share, '.2%')} of the 10 m pixels contradict the 10 m evidence"
                     + ("" if cc.independent else f" (the model's own answer: only a thresholding that moves a 10 m "
                                                  f"pixel's share by more than the margin, possible below {bound:g})")
                     + "; " if cc.contradiction_share is not None else
                     f"Contradictions: n/a against the model's own 10 m answer at this margin (the map cannot depart from "
                     f"it by more than {bound:g}, its threshold's max(t, 1 − t)); ")
                    + f"mean |cover − evidence| {pct(cc.mean_abs_cover_gap, '.3f')}" + (
                        f"; mean |4×4 mean probability − evidence| {pct(cc.mean_abs_proba_gap, '.3f')}."
                        if cc.mean_abs_proba_gap is not None else
                        ". The evidence is the model's own 10 m aggregate here, so this checks that the binary map keeps the "
                        "cultivated share its probability implies; the pixel baseline gives an independent check."))

if tabs[3].open:
    with tabs[3]:
        if c.resolution is None or c.scores is None:
            st.info("Effective resolution needs labels (distance to true parcel boundaries, parcel sizes, gaps).")
        else:
            r, s = c.resolution, c.scores
            a, b = st.columns(2)
            with a:
                dist = pd.DataFrame(r.distance_table()).set_index("distance_px")
                st.markdown("**Skill by distance to the nearest parcel boundary** (2.5 m px)")
                st.bar_chart(dist["accuracy"], height=200, x_label="distance (px)", y_label="accuracy")
                st.dataframe(dist.style.format(number_formats(dist), na_rep="–"), width="stretch")
            with b:
                obj = pd.DataFrame(r.object_table()).set_index("size")
                st.markdown("**Parcels detected** (≥ half their pixels) **by size**")
                st.dataframe(obj.style.format({**number_formats(obj), "detection_rate": "{:.1%}"}, na_rep="–"),
                             width="stretch")
                st.dataframe(pd.DataFrame({"weighted MCC": s.size_class_mcc(), "parcels": dict(s.parcels)})
                             .style.format({"weighted MCC": "{:.3f}"}, na_rep="–"), width="stretch")
                st.markdown(f"**Gap recall** {pct(r.gaps.recall)} of {r.gaps.n:.0f} gap pixels (weighted "
                            f"{pct(r.gaps.recall_weighted)}) · **boundary F1** " + ", ".join(
                                f"{k} px {pct(v, '.3f')}" for k, v in s.boundary_f1().items()))
            if ins.gaps is not None and ins.gaps.any():
                zoom_window()
                img = viz.binary_image(pred.binary, on=(70, 110, 70), off=(30, 30, 30))
                img[ins.gaps & (pred.binary == 0)] = (60, 200, 255)
                img[ins.gaps & (pred.binary == 1)] = (240, 60, 40)
                show(img, "Gap pixels between touching parcels: blue = kept open, red = filled (parcels merge)")

if tabs[4].open:
    with tabs[4]:
        from sr_core.inspect import PROBES

        st.markdown("Inputs with **no field information**: a trustworthy model paints ≈ 0 % cultivated land and no parcels "
                    "on the clouded, constant and forest scenes, and loses its parcel structure when pixels are shuffled.")
        if st.button("🧪 Run the probes", key=HK.PROBES):
            from sr_core.inspect import run_probes

            with st.spinner("Running the probes …"):
                try:
                    _store()[probe_key] = run_probes(patch, device=device, threshold=pred.threshold,
                                                     original=pred.binary.astype(bool))
                except SRCoreError as exc:
                    st.error(f"The probes could not run: {shown(exc)}")
        results = _store().get(probe_key)
        if results:
            ins.probes = results  # the report includes them
            st.dataframe(pd.DataFrame([{"probe": p.name, "input": p.description, "cultivated": p.cultivated_fraction,
                                        "mean p": p.mean_proba,
                                        "parcels": None if p.structure is None else p.structure.n_parcels,
                                        "parcels / km²": None if p.structure is None else p.structure.parcels_per_km2,
                                        "10 m pixels split": None if p.structure is None else p.structure.split_10m_share,
                                        "note": p.error or ""} for p in results]).set_index("probe")
                         .style.format({"cultivated": "{:.1%}", "mean p": "{:.3f}", "parcels": "{:,.0f}",
                                        "parcels / km²": "{:.1f}", "10 m pixels split": "{:.1%}"}, na_rep="–"),
                         width="stretch", column_config={"note": st.column_config.TextColumn(width="large")})
            cols = st.columns(len(PROBES))
            for col, p in zip(cols, results, strict=False):
                if p.binary is not None:
                    col.image(downsample_for_display(viz.binary_image(p.binary), 300), caption=p.name, width="stretch")
        else:
            st.info("Press **Run the probes** (seven extra model runs on small inputs).")

if tabs[5].open:
    with tabs[5]:
        st.markdown("A one-page summary (maps, reliability curve, skill by distance and size, probes) to share.")
        if st.button("📄 Prepare the report", key=HK.REPORT):
            from sr_core.report import report_bytes

            with st.spinner("Rendering …"):
                st.session_state[HK.REPORT_DATA] = {"html": report_bytes(patch, ins, "html"),
                                                    "pdf": report_bytes(patch, ins, "pdf"), "key": KEY}
        data = st.session_state.get(HK.REPORT_DATA)
        if data and data.get("key") == KEY:
            d1, d2 = st.columns(2)
            d1.download_button("Download HTML", data["html"], f"{patch.name}_inspection.html", "text/html",
                               key="halluc_dl_html", on_click="ignore")
            d2.download_button("Download PDF", data["pdf"], f"{patch.name}_inspection.pdf", "application/pdf",
                               key="halluc_dl_pdf", on_click="ignore")
sidebar()
