"""Time series: scrub the dates with cloud layers, look at pixel profiles, export an animation."""

from __future__ import annotations

import tempfile
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from sr_core import BAND_NAMES, viz
from ui.common import Keys, derived_layers, load_patch, page_setup, patch_caption, selected_patch, sidebar, source_badge

page_setup("Time series", "🕒")
st.title("🕒 Time series")
patch = selected_patch()
source_badge(patch)
st.markdown(patch_caption(patch))
notes = "; ".join(patch.info.notes)
st.caption(
    f"Band order: {' '.join(BAND_NAMES)} · reflectance = DN × {patch.info.norm_factor or 1e-4:g} · "
    f"20 m and 60 m bands nearest-neighbour resampled to 10 m" + (f" · reader notes: {notes}" if notes else "")
)


L = derived_layers(st.session_state[Keys.SELECTED])
cf = np.nan_to_num(L["cloud_fraction"], nan=1.0)

# -- controls -----------------------------------------------------------------------------------------------------------
c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
with c1:
    comp_key = st.radio("Composite", ["true", "false", "swir", "ndvi"], horizontal=True, key=Keys.COMPOSITE,
                        format_func=lambda k: viz.COMPOSITES[k].label if k in viz.COMPOSITES else "NDVI")
with c2:
    cloud_layer = st.radio("Cloud layer", ["outline", "probability", "SCL", "none"], horizontal=True, key="cloud_layer",
                           help="Cloud mask outline (CLM), cloud probability (CLP) or Sen2Cor scene classes (SCL)")
with c3:
    skip = st.toggle("Skip cloudy dates", key=Keys.SKIP_CLOUDY)
    max_cloud = st.slider("max cloud cover", 0.0, 1.0, 0.3, 0.05, disabled=not skip, key="max_cloud")
with c4:
    fps = st.number_input("frames / s", 0.5, 10.0, 2.0, 0.5, key="fps")

dates = [i for i in range(patch.n_dates) if not skip or cf[i] <= max_cloud]
if not dates:
    st.warning(f"No date has cloud cover ≤ {max_cloud:.0%}. Raise the threshold or turn the filter off.")
    st.stop()
PATH = st.session_state[Keys.SELECTED]


@st.cache_data(show_spinner=False, max_entries=32)
def stretch(path: str, key: str) -> tuple[float, float]:
    return viz.series_limits(load_patch(path).bands, derived_layers(path)["valid"], key)


@st.cache_data(show_spinner=False, max_entries=256)
def render(path: str, i: int, key: str, layer: str) -> np.ndarray:
    """One frame as RGB uint8 (cached: moving the slider back to a date costs only the cache look-up)."""
    p = load_patch(path)
    img = viz.ndvi_image(derived_layers(path)["ndvi"][i]) if key == "ndvi" else viz.composite(p.bands[i], key, stretch(path, key))
    if layer == "outline" and p.cloud_mask is not None:
        img = viz.overlay(img, viz.outline(p.cloud_mask[i]), (255, 230, 0))
    elif layer == "probability" and p.cloud_prob is not None:
        img = viz.blend(img, viz.colormap(p.cloud_prob[i], 0, 1, "magma"), 0.55)
    elif layer == "SCL" and p.scl is not None:
        img = viz.blend(img, viz.scl_image(p.scl[i]), 0.7)
    if p.is_data is not None:
        img = viz.overlay(img, ~p.is_data[i], (0, 0, 0))
    return img


if comp_key != "ndvi":
    limits = stretch(PATH, comp_key)
    st.caption(f"{viz.COMPOSITES[comp_key].description}; stretch {limits[0]:.3f}–{limits[1]:.3f} reflectance "
               "(2–98 % over clear pixels of all dates, so brightness compares across dates)")
else:
    st.caption("NDVI = (B08 − B04) / (B08 + B04), colour scale −0.2 (red) … 0.9 (green)")


url_date = st.query_params.get("date")
first_visit = st.session_state.get("_date_link_for") != PATH
st.session_state["_date_link_for"] = PATH  # honour a ?date= link on arrival, then the slider leads
if url_date and first_visit:
    hits = [i for i in dates if f"{patch.timestamps[i]:%Y-%m-%d}" == url_date]
    if hits:
        st.session_state[Keys.FRAME] = hits[0]
if Keys.FRAME not in st.session_state or st.session_state[Keys.FRAME] not in dates:
    st.session_state[Keys.FRAME] = dates[0]
playing = st.session_state.get(Keys.PLAYING, False)


@st.fragment(run_every=1.0 / fps if playing else None)
def viewer() -> None:
    if st.session_state.get(Keys.PLAYING):
        pos = dates.index(st.session_state[Keys.FRAME]) if st.session_state[Keys.FRAME] in dates else 0
        st.session_state[Keys.FRAME] = dates[(pos + 1) % len(dates)]
    b1, b2 = st.columns([1, 8])
    with b1:
        label = "⏸ Pause" if st.session_state.get(Keys.PLAYING) else "▶ Play"
        if st.button(label, key="play_button"):
            st.session_state[Keys.PLAYING] = not st.session_state.get(Keys.PLAYING, False)
            st.rerun()
    with b2:
        st.select_slider("Date", options=dates, key=Keys.FRAME,
                         format_func=lambda i: f"{patch.timestamps[i]:%Y-%m-%d} ({cf[i]:.0%} cloud)")
    i = st.session_state[Keys.FRAME]
    st.query_params["date"] = f"{patch.timestamps[i]:%Y-%m-%d}"
    img = render(PATH, i, comp_key, cloud_layer)
    col_img, col_side = st.columns([3, 2])
    with col_img:
        factor = max(1, min(6, 720 // max(patch.height, patch.width)))
        big = viz.upscale(img, factor)
        try:
            from streamlit_image_coordinates import streamlit_image_coordinates

            click = streamlit_image_coordinates(big, key="pixel_click", width="stretch", png_compression_level=1)
        except ImportError:
            st.image(big)
            click = None
        if click:
            r = int(click["y"] * big.shape[0] / click["height"]) // factor
            c = int(click["x"] * big.shape[1] / click["width"]) // factor
            st.session_state["pixel"] = (min(r, patch.height - 1), min(c, patch.width - 1))
        st.caption(f"{patch.timestamps[i]:%Y-%m-%d %H:%M} UTC · date {i + 1} of {patch.n_dates} · click a pixel for its profile")
    with col_side:
        chart = pd.DataFrame({"date": pd.to_datetime(list(patch.timestamps)), "cloud cover": cf,
                              "shown": [j in dates for j in range(patch.n_dates)]})
        base = alt.Chart(chart).mark_bar(size=4).encode(
            x=alt.X("date:T", title=None), y=alt.Y("cloud cover:Q", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("shown:N", scale=alt.Scale(domain=[True, False], range=["#7bc96f", "#555"]), legend=None),
        )
        rule = alt.Chart(pd.DataFrame({"date": [pd.Timestamp(patch.timestamps[i])]})).mark_rule(color="orange", size=2).encode(
            x="date:T")
        st.altair_chart((base + rule).properties(height=160, title="Cloud cover per date (orange = current)"),
                        width="stretch")
        if cloud_layer == "SCL" and patch.scl is not None:
            present = sorted(set(np.unique(patch.scl[i]).tolist()))
            st.markdown("**SCL classes** " + " ".join(
                f"<span style='background:{viz.SCL_CLASSES[k][1]};padding:0 6px;border:1px solid #888'>&nbsp;</span> "
                f"{k} {viz.SCL_CLASSES[k][0]}" for k in present), unsafe_allow_html=True)
        elif cloud_layer == "SCL":
            st.info("This patch has no SCL layer (L1C products and some uploads have none).")
        if cloud_layer == "probability" and patch.cloud_prob is None:
            st.info("This patch has no cloud probability layer.")
        pixel_profile()


def pixel_profile() -> None:
    r, c = st.session_state.get("pixel", (patch.height // 2, patch.width // 2))
    valid = L["valid"][:, r, c]
    prof = pd.DataFrame({"date": pd.to_datetime(list(patch.timestamps)), "NDVI": L["ndvi"][:, r, c],
                         "clear": np.where(valid, "clear", "cloud / no data")})
    nd = alt.Chart(prof).mark_line(point=True).encode(
        x=alt.X("date:T", title=None), y=alt.Y("NDVI:Q", scale=alt.Scale(domain=[-0.2, 1])),
        color=alt.Color("clear:N", scale=alt.Scale(domain=["clear", "cloud / no data"], range=["#7bc96f", "#e05050"])))
    st.altair_chart(nd.properties(height=170, title=f"NDVI at row {r}, col {c}"), width="stretch")
    pick = st.multiselect("Bands", list(BAND_NAMES), default=["B02", "B04", "B08", "B11"], key="profile_bands")
    if pick:
        idx = [BAND_NAMES.index(b) for b in pick]
        long = pd.DataFrame(patch.bands[:, r, c, idx], columns=pick)
        long["date"] = pd.to_datetime(list(patch.timestamps))
        long = long.melt("date", var_name="band", value_name="reflectance")
        st.altair_chart(alt.Chart(long).mark_line().encode(x=alt.X("date:T", title=None), y="reflectance:Q", color="band:N")
                        .properties(height=170, title="Band reflectance over time"), width="stretch")


viewer()

# -- export ---------------------------------------------------------------------------------------------------------------
with st.expander("🎞️ Export the sequence"):
    fmt = st.radio("Format", ["GIF", "MP4"], horizontal=True, key="anim_fmt")
    if st.button("Render animation", key="anim_go"):
        f_up = max(1, 400 // max(patch.height, patch.width))
        frames = [viz.label_frame(viz.upscale(render(PATH, i, comp_key, cloud_layer), f_up),
                                  f"{patch.timestamps[i]:%Y-%m-%d} {comp_key}") for i in dates]
        suffix = ".gif" if fmt == "GIF" else ".mp4"
        with tempfile.TemporaryDirectory() as tmp:
            out = viz.export_animation(frames, str(Path(tmp) / f"{patch.name}_{comp_key}{suffix}"), fps=fps)
            data = Path(out).read_bytes()
        st.download_button(f"Download {fmt} ({len(frames)} frames, {len(data) / 1e6:.1f} MB)", data,
                           file_name=f"{patch.name}_{comp_key}{suffix}", mime="image/gif" if fmt == "GIF" else "video/mp4")
    st.caption("Frames follow the current composite, cloud layer and cloud filter; each carries its date.")

sidebar()
