"""Time series: scrub the dates with cloud layers, look at pixel profiles, export an animation."""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from sr_core import BAND_NAMES, viz
from sr_core.coreg import CROP, MIN_OFFSET, MIN_PIXELS, satellite_phase, satellite_split, subpixel_offsets
from sr_core.quality import reflectance_formula
from ui.common import (
    Keys,
    derived_layers,
    failure,
    load_patch,
    page_setup,
    patch_banner,
    selected_patch,
    shown,
    sidebar,
)  # fmt: skip

page_setup("Time series", "🕒")
st.title("🕒 Time series")
patch = selected_patch()
patch_banner(patch)


L = derived_layers(st.session_state[Keys.SELECTED])
cf = np.nan_to_num(L["cloud_fraction"], nan=1.0)

# -- controls -----------------------------------------------------------------------------------------------------------
c1, c2, c3, c4, c5 = st.columns([3, 3, 2.2, 1.2, 1.6], vertical_alignment="bottom")
with c1:
    comp_key = st.selectbox("Composite", ["true", "false", "swir", "ndvi"], key=Keys.COMPOSITE,
                            format_func=lambda k: viz.COMPOSITES[k].label if k in viz.COMPOSITES else "NDVI")
with c2:
    cloud_layer = st.selectbox("Cloud layer", ["outline", "probability", "SCL", "none"], key="cloud_layer",
                               help="Cloud mask outline (CLM), cloud probability (CLP) or Sen2Cor scene classes (SCL)")
with c3:
    skip = st.toggle("Skip cloudy dates", key=Keys.SKIP_CLOUDY)
    max_cloud = st.slider("max cloud cover", 0.0, 1.0, 0.3, 0.05, disabled=not skip, key="max_cloud",
                          label_visibility="collapsed") if skip else 0.3
with c4:
    fps = st.number_input("frames / s", 0.5, 10.0, 2.0, 0.5, key="fps")
with c5:
    st.toggle("OSM", key="ts_basemap", help="Online basemap (OpenStreetMap) under the image; needs internet, and the "
                                            "map says so when the tiles cannot load.")

dates = [i for i in range(patch.n_dates) if not skip or cf[i] <= max_cloud]
if not dates:
    st.warning(f"No date has cloud cover ≤ {max_cloud:.0%}. Raise the threshold or turn the filter off.")
    st.stop()
PATH = st.session_state[Keys.SELECTED]


@st.cache_data(show_spinner=False, max_entries=32)
def cloud_conflict(path: str) -> str | None:
    """Why the patch's own CLM / CLP contradicts its SCL (the input path then takes the clouds from SCL), or None."""
    from sr_core.prepare import cloud_layer_conflict

    return cloud_layer_conflict(load_patch(path))


@st.cache_data(show_spinner=False, max_entries=32)
def stretch(path: str, key: str) -> tuple:
    """Series-wide stretch limits. L1C true colour: per band (top-of-atmosphere haze lifts blue most, and one common
    stretch paints the scene cyan), else one stretch over the three bands."""
    p = load_patch(path)
    valid = derived_layers(path)["valid"]
    if key == "true" and p.info.product_level.value == "L1C" and valid.any():
        from sr_core.bands import band_index

        lims = [viz.stretch_limits(p.bands[..., band_index(b)][valid]) for b in viz.COMPOSITES[key].bands]
        return np.array([lo for lo, _ in lims]), np.array([hi for _, hi in lims])
    return viz.series_limits(p.bands, valid, key)


@st.cache_data(show_spinner="Measuring how well the dates line up …", max_entries=16)
def misregistration(path: str) -> np.ndarray:
    """(T, 2) where each date's field edges sit relative to the other dates' (10 m px; + = south / east; NaN where
    too clouded to judge): the opposite of :func:`sr_core.coreg.subpixel_offsets`, the move that would line it up."""
    p = load_patch(path)
    return -subpixel_offsets(p.bands, derived_layers(path)["valid"])


def _where(d: np.ndarray) -> str:
    if np.isnan(d).any():
        return "not measured (too few clear pixels to compare)"
    ns = f"{abs(d[0]):.1f} px {'south' if d[0] > 0 else 'north'}"
    ew = f"{abs(d[1]):.1f} px {'east' if d[1] > 0 else 'west'}"
    return f"edges {ns}, {ew} of the other dates'" + (" (≥ half a pixel off)" if np.abs(d).max() >= MIN_OFFSET else "")


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




def _date_from_link() -> None:
    """Honour ``?date=YYYY-MM-DD`` whenever the URL names a date the page did not write itself (a pasted or shared
    link), choosing the nearest shown date and saying so when that exact date is not available."""
    url_date = st.query_params.get("date")
    if not url_date or url_date == st.session_state.get("_date_written"):
        return
    st.session_state["_date_written"] = url_date
    try:  # a calendar date only: no time, zone or 'NaT' (pandas reads those, and they break the comparison below)
        want = pd.Timestamp(datetime.date.fromisoformat(url_date.strip()))
    except ValueError:
        st.warning("The link's `date=` is not a date (expected YYYY-MM-DD); showing the first date.")
        return
    stamps = [pd.Timestamp(patch.timestamps[i]) for i in dates]
    gaps = [abs((t.normalize() - want.normalize()).days) for t in stamps]
    j = int(np.argmin(gaps))
    st.session_state[Keys.FRAME] = dates[j]
    if gaps[j]:
        hidden = " (cloudy dates are skipped)" if skip else ""
        st.info(f"No image on {want:%Y-%m-%d}{hidden}; showing the nearest date, {stamps[j]:%Y-%m-%d}.")


_date_from_link()
if Keys.FRAME not in st.session_state or st.session_state[Keys.FRAME] not in dates:
    st.session_state[Keys.FRAME] = dates[0]
playing = st.session_state.get(Keys.PLAYING, False)


CLOUD_OPACITY = {"outline": 1.0, "probability": 0.55, "SCL": 0.7}
#: Cloud probability below this is left out of the probability layer (the date shows through, not dark purple).
CLEAR_BELOW = 0.1
#: Height of the page's small charts, given to st.altair_chart (see the cloud chart).
CHART_HEIGHT = 190


@st.cache_data(show_spinner=False, max_entries=256)
def frame_layer(path: str, i: int, key: str) -> tuple[str, list[list[float]]]:
    """The frame (no cloud layer: that is a layer of its own) warped to EPSG:3857 (nearest: 10 m pixels stay square)
    as a PNG data URL and its lat/lon box."""
    from ui.maps import warp

    p = load_patch(path)
    w = warp(render(path, i, key, "none"), p.bbox, categorical=True,
             alpha=None if p.is_data is None else p.is_data[i])
    return w.data_url(), w.bounds_latlon


@st.cache_data(show_spinner=False, max_entries=256)
def cloud_layer_image(path: str, i: int, layer: str) -> tuple[str, list[list[float]]] | None:
    """The date's cloud layer as a transparent image of its own (switched in the browser, over any composite):
    the cloud mask outline, the cloud probability or the SCL classes."""
    from ui.maps import warp

    p = load_patch(path)
    has = None if p.is_data is None else p.is_data[i]
    if layer == "outline" and p.cloud_mask is not None:
        edge = viz.outline(p.cloud_mask[i])
        rgb, alpha = np.broadcast_to(np.array([255, 230, 0], np.uint8), (*edge.shape, 3)), edge
    elif layer == "probability" and p.cloud_prob is not None:  # clear sky transparent: the date shows through
        rgb, alpha = viz.colormap(p.cloud_prob[i], 0, 1, "magma"), p.cloud_prob[i] >= CLEAR_BELOW
    elif layer == "SCL" and p.scl is not None:
        rgb, alpha = viz.scl_image(p.scl[i]), has
    else:
        return None
    if has is not None and alpha is not None:
        alpha = np.asarray(alpha, bool) & has
    w = warp(np.ascontiguousarray(rgb), p.bbox, categorical=True, alpha=alpha)
    return w.data_url(), w.bounds_latlon


def frame_map(i: int):
    """Base map (stable across dates: the browser keeps its view and the clouds switch) + the frame and its cloud
    layer as a swappable feature group."""
    import folium

    from ui.maps import Script, add_legend, bbox_latlon, gradient, legend_html, new_map, outline_layer, pane, rgb_css

    m = new_map(bounds=bbox_latlon(patch.bbox), basemap=st.session_state.get("ts_basemap", False), zoom=13)
    outline_layer(patch.bbox, f"{patch.name} outline").add_to(m)
    pane(m, "srcloud", 420)
    parts = []
    if comp_key == "ndvi":
        parts.append(legend_html(title="NDVI", bar=(gradient("RdYlGn"), "−0.2", "0.9")))
    if cloud_layer == "probability" and patch.cloud_prob is not None:
        parts.append(legend_html(title=f"Cloud probability (≥ {CLEAR_BELOW:.0%})", bar=(gradient("magma"), "0", "1")))
    elif cloud_layer == "outline" and patch.cloud_mask is not None:
        parts.append(legend_html([(rgb_css((255, 230, 0)), "cloud mask outline")]))
    elif cloud_layer == "SCL" and patch.scl is not None:
        present = np.flatnonzero(np.bincount(patch.scl.ravel(), minlength=256)).tolist()  # the series': one map for all dates
        parts.append(legend_html([(viz.SCL_CLASSES[k][1], f"{k} {viz.SCL_CLASSES[k][0]}") for k in present
                                  if k in viz.SCL_CLASSES], title="SCL"))
    if parts:
        add_legend(m, "<br>".join(parts))
    clouds = cloud_layer_image(PATH, i, cloud_layer) if cloud_layer != "none" else None
    if clouds is not None:
        label = {"outline": "cloud mask outline", "probability": "cloud probability", "SCL": "SCL classes"}[cloud_layer]
        Script("srPaneToggle({map}, 'srcloud', {label}, true);", label=label).add_to(m)
    url, bounds = frame_layer(PATH, i, comp_key)
    fg = folium.FeatureGroup(name="frame")
    folium.raster_layers.ImageOverlay(url, bounds, name=f"{patch.timestamps[i]:%Y-%m-%d}", pixelated=True,
                                      interactive=False).add_to(fg)
    if clouds is not None:
        folium.raster_layers.ImageOverlay(clouds[0], clouds[1], name=f"clouds {patch.timestamps[i]:%Y-%m-%d}",
                                          pixelated=True, interactive=False, pane="srcloud",
                                          opacity=CLOUD_OPACITY[cloud_layer]).add_to(fg)
    return m, fg


def _pixel_at(lat: float, lng: float) -> tuple[int, int] | None:
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, patch.bbox.epsg, always_xy=True).transform(lng, lat)
    x0, y0, x1, y1 = patch.bbox.bounds
    if not (x0 <= x < x1 and y0 < y <= y1):
        return None
    return (min(int((y1 - y) / (y1 - y0) * patch.height), patch.height - 1),
            min(int((x - x0) / (x1 - x0) * patch.width), patch.width - 1))


@st.fragment(run_every=1.0 / fps if playing else None)
def viewer() -> None:
    from ui.maps import show as show_map

    if st.session_state.get(Keys.PLAYING):
        pos = dates.index(st.session_state[Keys.FRAME]) if st.session_state[Keys.FRAME] in dates else 0
        st.session_state[Keys.FRAME] = dates[(pos + 1) % len(dates)]
    b1, b2 = st.columns([1.4, 6])
    with b1:
        label = "⏸ Pause" if st.session_state.get(Keys.PLAYING) else "▶ Play"
        if st.button(label, key="play_button"):
            st.session_state[Keys.PLAYING] = not st.session_state.get(Keys.PLAYING, False)
            st.rerun()
    with b2:
        st.select_slider("Date", options=dates, key=Keys.FRAME, label_visibility="collapsed",
                         format_func=lambda k: f"{patch.timestamps[k]:%Y-%m-%d} ({cf[k]:.0%} cloud)")
    i = st.session_state[Keys.FRAME]
    st.query_params["date"] = st.session_state["_date_written"] = f"{patch.timestamps[i]:%Y-%m-%d}"
    m, fg = frame_map(i)
    event = show_map(m, key=f"ts_map:{PATH}:{comp_key}:{cloud_layer}", height=470, returned=["last_clicked"],
                     feature_group=fg)
    click = (event or {}).get("last_clicked")
    if click and click != st.session_state.get("_ts_click"):
        st.session_state["_ts_click"] = click
        px = _pixel_at(click["lat"], click["lng"])
        if px is not None and (PATH, *px) != st.session_state.get("pixel"):
            st.session_state["pixel"] = (PATH, *px)  # with its patch: another patch starts at its own centre
            st.rerun(scope="app")  # the profiles beside the map follow the clicked pixel
    st.caption(f"{patch.timestamps[i]:%Y-%m-%d %H:%M} UTC · date {i + 1} of {patch.n_dates} · warped from "
               f"{patch.bbox.crs} to Web Mercator · co-registration: {_where(misregistration(PATH)[i])} · "
               "click the map for a pixel's profile")
    chart = pd.DataFrame({"date": pd.to_datetime(list(patch.timestamps)), "cloud cover": cf,
                          "shown": [j in dates for j in range(patch.n_dates)]})
    base = alt.Chart(chart).mark_bar(size=4).encode(
        x=alt.X("date:T", title=None), y=alt.Y("cloud cover:Q", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("shown:N", scale=alt.Scale(domain=[True, False], range=["#7bc96f", "#555"]), legend=None),
    )
    rule = alt.Chart(pd.DataFrame({"date": [pd.Timestamp(patch.timestamps[i])]})).mark_rule(color="orange", size=2).encode(
        x="date:T")
    # the height goes to st.altair_chart: with .properties(height=…) this Streamlit draws an empty plot (measured in
    # chromium: the axes and no bar)
    st.altair_chart((base + rule).properties(title="Cloud cover per date (orange = current)"), width="stretch",
                    height=CHART_HEIGHT)


def pixel_profile() -> None:
    where, r, c = st.session_state.get("pixel", (None, 0, 0))
    if where != PATH or not (0 <= r < patch.height and 0 <= c < patch.width):
        r, c = patch.height // 2, patch.width // 2
    valid = L["valid"][:, r, c]
    prof = pd.DataFrame({"date": pd.to_datetime(list(patch.timestamps)), "NDVI": L["ndvi"][:, r, c],
                         "clear": np.where(valid, "clear", "cloud / no data")})
    scale = alt.Scale(domain=["clear", "cloud / no data"], range=["#7bc96f", "#e05050"])
    x = alt.X("date:T", title=None)
    y = alt.Y("NDVI:Q", scale=alt.Scale(domain=[-0.2, 1]))
    # the line joins clear observations only; cloudy ones are points on their own (their NDVI is not the field's)
    clear = alt.Chart(prof[prof["clear"] == "clear"]).mark_line(point=True).encode(
        x=x, y=y, color=alt.Color("clear:N", scale=scale, title=None))
    cloudy = alt.Chart(prof[prof["clear"] != "clear"]).mark_point(filled=True, size=40).encode(
        x=x, y=y, color=alt.Color("clear:N", scale=scale, title=None))
    st.altair_chart((clear + cloudy).properties(title=f"NDVI at row {r}, col {c}"), width="stretch", height=CHART_HEIGHT)
    pick = st.multiselect("Bands", list(BAND_NAMES), default=["B02", "B04", "B08", "B11"], key="profile_bands")
    if pick:
        idx = [BAND_NAMES.index(b) for b in pick]
        long = pd.DataFrame(patch.bands[:, r, c, idx], columns=pick)
        long["date"] = pd.to_datetime(list(patch.timestamps))
        long = long.melt("date", var_name="band", value_name="reflectance")
        st.altair_chart(alt.Chart(long).mark_line().encode(
            x=alt.X("date:T", title=None), y="reflectance:Q",
            color=alt.Color("band:N", scale=alt.Scale(scheme="tableau10")),  # the theme gave B02 / B04 both blue
        ).properties(title="Band reflectance over time"), width="stretch", height=CHART_HEIGHT)


col_img, col_side = st.columns([3, 2])
with col_img:
    viewer()  # a fragment: a date change reruns only the slider, the map layer and the cloud chart
with col_side:
    if cloud_layer == "SCL" and patch.scl is None:
        st.info("This patch has no SCL layer (L1C products and some uploads have none).")
    if cloud_layer == "probability" and patch.cloud_prob is None:
        st.info("This patch has no cloud probability layer.")
    if cloud_layer == "outline" and patch.cloud_mask is None:
        use = {"CLP": "probability", "SCL": "SCL"}.get(patch.cloud_source or "")
        st.info("This patch has no cloud mask (CLM) to outline"
                + (f"; its clouds come from {patch.cloud_source}: choose **{use}** as the cloud layer." if use else "."))
    if patch.cloud_source is None:
        st.warning("This patch has no cloud layer at all (no CLM, CLP or SCL): every date is taken as clear, so the "
                   "cloud chart shows 0 % everywhere. The Upload page can compute cloud masks with s2cloudless.")
    elif (why := cloud_conflict(PATH)) is not None:
        st.warning(f"This patch's own cloud layer contradicts its Sen2Cor SCL ({shown(why)}): the model and the "
                   "baselines take the clouds from SCL instead, so choose **SCL** as the cloud layer to see what they "
                   "use; the cloud chart and the outline here show the patch's own layer.")
    pixel_profile()

if comp_key != "ndvi":
    limits = stretch(PATH, comp_key)
    if np.ndim(limits[0]):
        per = ", ".join(f"{b} {lo:.3f}–{hi:.3f}" for b, lo, hi in zip(viz.COMPOSITES[comp_key].bands, *limits,
                                                                         strict=True))
        st.caption(f"{viz.COMPOSITES[comp_key].description}; L1C (top of atmosphere): stretched band by band to remove "
                   f"the haze's blue cast ({per} reflectance; 2–98 % over clear pixels of all dates)")
    else:
        st.caption(f"{viz.COMPOSITES[comp_key].description}; stretch {limits[0]:.3f}–{limits[1]:.3f} reflectance "
                   "(2–98 % over clear pixels of all dates, so brightness compares across dates)")
else:
    st.caption("NDVI = (B08 − B04) / (B08 + B04), colour scale −0.2 (red) … 0.9 (green)")
notes = shown("; ".join(patch.info.notes))
st.caption(
    f"Band order: {' '.join(BAND_NAMES)} · {reflectance_formula(patch)} · "
    f"20 m and 60 m bands nearest-neighbour resampled to 10 m" + (f" · reader notes: {notes}" if notes else "")
)

with st.expander("📐 Co-registration: how well the dates line up"):
    off = misregistration(PATH)
    phase = satellite_phase(patch.timestamps)
    table = pd.DataFrame({"date": pd.to_datetime(list(patch.timestamps)), "south (+) / north (−)": off[:, 0],
                          "east (+) / west (−)": off[:, 1], "5-day phase": np.where(phase == 0, "A", "B")}).melt(
        ["date", "5-day phase"], var_name="axis", value_name="offset (10 m px)")
    st.altair_chart(alt.Chart(table.dropna()).mark_point(filled=True).encode(
        x=alt.X("date:T", title=None), y=alt.Y("offset (10 m px):Q", scale=alt.Scale(domain=[-1.5, 1.5])),
        color=alt.Color("axis:N", title=None, scale=alt.Scale(scheme="tableau10")), shape=alt.Shape("5-day phase:N"),
        tooltip=["date:T", "axis:N", alt.Tooltip("offset (10 m px):Q", format="+.2f"), "5-day phase:N"],
    ), width="stretch", height=CHART_HEIGHT + 30)
    n_off = int((np.nan_to_num(np.abs(off)) >= MIN_OFFSET).any(axis=1).sum())
    separation, scatter = satellite_split(off, phase)
    if np.isfinite(separation):
        st.caption(
            f"**Two satellites:** the dates of the two 5-day phases (A / B: one is S2A's, the other S2B's, which fly "
            f"the same orbit 5 days apart) sit **{separation:.2f} px** apart on average, and each date "
            f"{scatter:.2f} px (rms per axis) from its own phase's mean. Real 2017–19 series (before ESA's 2021 "
            "geometric refinement) split by about 0.6–0.8 px, mostly north–south: a split that large is the two "
            "satellites' relative geolocation, not the fields moving (docs/SIMULATOR.md, simulator 2.7).")
    else:
        st.caption("**Two satellites:** fewer than 3 judged dates in one of the two 5-day phases (S2A / S2B), so "
                   "their offset is not measured.")
    st.caption(
        f"Where each date's field edges sit relative to the other dates' (sub-pixel, from the smoothed edges of B04, "
        f"B08 and B11 on the central {min(CROP, patch.height)} × {min(CROP, patch.width)} px; dates with fewer than "
        f"{MIN_PIXELS} clear pixels to compare are left out: {int(np.isnan(off[:, 0]).sum())} here). "
        f"{n_off} of {patch.n_dates} dates are half a 10 m pixel or more off: their edges fall "
        "between the others', so a 2.5 m map made from them can show a boundary twice or smeared. The prediction "
        "uses the dates as they are; `evaluate --coregister` measures what lining them up would change "
        "(docs/EVALUATION.md). Before ESA's geometric refinement on a Global Reference Image (Europe, spring 2021), "
        "Sentinel-2 dates were co-registered to 12 m (95 % of products); since then to better than 5 m.")

# -- export ---------------------------------------------------------------------------------------------------------------
with st.expander("🎞️ Export the sequence"):
    fmt = st.radio("Format", ["GIF", "MP4"], horizontal=True, key="anim_fmt")
    data = None
    if st.button("Render animation", key="anim_go"):
        f_up = max(1, 400 // max(patch.height, patch.width))
        suffix = ".gif" if fmt == "GIF" else ".mp4"
        try:
            with st.spinner(f"Rendering {len(dates)} frames and encoding the {fmt} …"):
                frames = [viz.label_frame(viz.upscale(render(PATH, i, comp_key, cloud_layer), f_up),
                                          f"{patch.timestamps[i]:%Y-%m-%d} {comp_key}") for i in dates]
                with tempfile.TemporaryDirectory() as tmp:
                    out = viz.export_animation(frames, str(Path(tmp) / f"{patch.name}_{comp_key}{suffix}"), fps=fps)
                    data = Path(out).read_bytes()
        except Exception as exc:
            st.error(f"The {fmt} could not be made: {failure(exc)}" + (" Try GIF." if fmt == "MP4" else ""))
    if data is not None:
        st.download_button(f"Download {fmt} ({len(frames)} frames, {len(data) / 1e6:.1f} MB)", data,
                           file_name=f"{patch.name}_{comp_key}{suffix}", mime="image/gif" if fmt == "GIF" else "video/mp4",
                           on_click="ignore")
    st.caption("Frames follow the current composite, cloud layer and cloud filter; each carries its date.")

sidebar()
