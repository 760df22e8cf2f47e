"""Home: Slovenia with the footprints of every available patch on a Leaflet map (folium); pick one on the map, in the
table or by name.

Opened by `streamlit run app.py`. Works with no network: Leaflet is served by the app and the map draws a bundled outline
of Slovenia; an online basemap (OpenStreetMap) is an option that says so in the map when it cannot load.
"""

from __future__ import annotations

import math
from pathlib import Path

import folium
import numpy as np
import pandas as pd
import streamlit as st

from sr_core.errors import SRCoreError
from ui.common import (
    Keys,
    catalog,
    derived_layers,
    load_patch,
    page_setup,
    patch_id,
    redact,
    resolve_link,
    select_patch,
    shown,
    shown_name,
    sidebar,
)  # fmt: skip

page_setup("Home")
st.title("🛰️ Sentinel-2 super-resolution of farmland")
st.caption(
    "4× super-resolution (10 m → 2.5 m) cultivated-land maps for the AI4EO *Enhanced Sentinel-2 for Agriculture* "
    "benchmark (Slovenia). Pick a patch on the map, scrub its time series, run the model, compare with the labels, and "
    "hunt for hallucinations."
)


# -- first start: build the simulated demo set ------------------------------------------------------------------------
def ensure_demo_with_progress() -> None:
    import os

    if os.environ.get("SR_CORE_DEMO", "on").lower() in {"off", "0", "no", "false"}:
        return  # a server that only shows real data (documented in the README)
    from sr_core.demo import demo_patch_paths, ensure_demo

    if demo_patch_paths():  # complete and current (a stale set from another simulator version is rebuilt)
        return
    bar = st.progress(0.0, text="First start: building the simulated demo dataset …")

    def progress(done: int, total: int, message: str) -> None:
        bar.progress(done / max(total, 1), text=f"Building the simulated demo dataset: {message} ({done}/{total})")

    ensure_demo(progress=progress)
    bar.empty()
    catalog.clear()


try:
    ensure_demo_with_progress()
except SRCoreError as exc:
    st.error(f"Could not build the simulated demo dataset: {shown(exc)}")

rows = catalog()
if not rows:
    st.warning("No patches found. Build the demo set with `python -m sr_core demo` or add a folder of EOPatches under "
               "**Data sources** below.")
df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["id", "path", "name", "error"])
last_mcc = st.session_state.get(Keys.LAST_MCC, {})
df["last_mcc"] = [last_mcc.get(p, math.nan) for p in df["path"]]
bad = df[df["error"] != ""]
df = df[df["error"] == ""].reset_index(drop=True)
by_id = dict(zip(df["id"], df["path"], strict=True))


# -- selection: the map, the table and the name picker each act once, when the user uses them -------------------------
def _pick_from_table() -> None:
    sel = st.session_state.get("patch_table")
    picked = sel.selection.get("rows") if sel is not None and sel.selection else None
    if picked:
        select_patch(df.iloc[picked[0]]["path"])


def _pick_by_name() -> None:
    name = st.session_state.get("patch_by_name")
    hit = df.loc[df["name"] == name, "path"]
    if name != "—" and hit.size:
        select_patch(hit.iloc[0])


# -- map --------------------------------------------------------------------------------------------------------------
STATS = {
    "source": "Source (simulated / real)",
    "cloud_cover": "Mean cloud cover",
    "cultivated_share": "Cultivated share (labels)",
    "last_mcc": "Last weighted MCC (this session)",
}
SCALES = {  # colour map, low, high; cloud cover: green = clear … red = cloudy
    "cloud_cover": ("RdYlGn_r", 0.0, 1.0),
    "cultivated_share": ("YlGn", 0.0, 1.0),
    "last_mcc": ("RdYlGn", 0.3, 1.0),
}
SOURCE_COLOURS = {"simulated": "#e6a028", "real": "#3ca0ff"}
NO_VALUE = "#808080"
c_map, c_side = st.columns([3, 1])
with c_side:
    stat = st.selectbox("Colour footprints by", list(STATS), format_func=STATS.get, key="colour_by")
    basemap = st.toggle("OSM basemap", value=False, key="home_basemap",
                        help="Off: the bundled outline of Slovenia, no network needed. On: OpenStreetMap tiles; the "
                             "map says so when they cannot load.")
    zoom_in = st.toggle("Zoom to selection", value=False, key="zoom_to_selection",
                        help="Shows the patch's clearest true-colour image on the map.")
    names = list(df["name"])
    sel_path = st.session_state.get(Keys.SELECTED)
    sel_name = df.loc[df["path"] == sel_path, "name"]
    st.session_state["patch_by_name"] = sel_name.iloc[0] if sel_name.size else "—"  # follows map and table clicks
    st.selectbox("Patch", ["—", *names], key="patch_by_name", on_change=_pick_by_name)


def colour(row: pd.Series) -> str:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if stat == "source":
        return SOURCE_COLOURS.get(row["source"], NO_VALUE)
    v = row[stat]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return NO_VALUE
    cmap, lo, hi = SCALES[stat]
    return to_hex(colormaps[cmap](min(max((float(v) - lo) / (hi - lo), 0.0), 1.0)))


def fmt_pct(v: object) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.0%}"


def fmt_mcc(v: object) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.3f}"


@st.cache_data(show_spinner="Preparing the true-colour image …", max_entries=8)
def true_colour_layer(path: str, mtime: float) -> tuple[str, list[list[float]], str]:
    from sr_core import viz
    from ui.maps import warp

    p = load_patch(path)
    valid = derived_layers(path)["valid"].mean(axis=(1, 2))
    best = int(np.argmax(valid))
    rgb = viz.composite(p.bands[best], "true", viz.series_limits(p.bands, derived_layers(path)["valid"], "true"))
    w = warp(rgb, p.bbox, categorical=True)
    return w.data_url(), w.bounds_latlon, f"{p.timestamps[best]:%Y-%m-%d}"


def home_map() -> folium.Map:
    from ui.maps import add_legend, gradient, leaflet_text, legend_html, new_map

    df["colour"] = df.apply(colour, axis=1) if len(df) else []
    # a folder's name is text in the footprint's tooltip (Leaflet labels are HTML), never markup
    label = {i: f"{leaflet_text(r['name'])} · {r['source']} · T={r['n_dates']} · clouds {fmt_pct(r['cloud_cover'])} · "
                f"cultivated {fmt_pct(r['cultivated_share'])} · last wMCC {fmt_mcc(r['last_mcc'])}" for i, r in df.iterrows()}
    feats, dots = [], []
    for i, r in df.iterrows():
        props = {"id": r["id"], "label": label[i], "colour": r["colour"], "selected": r["path"] == sel_path}
        ring = [[float(x), float(y)] for x, y in r["lonlat_ring"]]
        feats.append({"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [ring]}})
        lon, lat = r["centre_lonlat"]
        dots.append({"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": [lon, lat]}})
    sel = df[df["path"] == sel_path]
    bounds = None
    if zoom_in and not sel.empty:
        ring = np.asarray(sel.iloc[0]["lonlat_ring"])
        bounds = [[float(ring[:, 1].min()), float(ring[:, 0].min())], [float(ring[:, 1].max()), float(ring[:, 0].max())]]
    m = new_map(bounds=bounds, basemap=basemap, zoom=8)
    if zoom_in and not sel.empty:
        try:
            url, b, date = true_colour_layer(sel_path, Path(sel_path).stat().st_mtime)
            folium.raster_layers.ImageOverlay(url, b, name=f"true colour {date}", pixelated=True,
                                              interactive=False).add_to(m)
        except (SRCoreError, OSError) as exc:
            st.warning(f"No true-colour image for this patch: {shown(exc)}")

    def style(f: dict) -> dict:
        sel_ = f["properties"]["selected"]
        return {"color": "#ffe600" if sel_ else "#ffffff", "weight": 3 if sel_ else 1, "fillColor": f["properties"]["colour"],
                "fillOpacity": 0.15 if (sel_ and zoom_in) else 0.6}

    # above the pointer and wrapped: a one-line label left of a dot near the map's left edge was cut off there
    tip_style = "white-space: normal; max-width: 260px;"
    tip = folium.GeoJsonTooltip(fields=["label"], labels=False, direction="top", style=tip_style)
    folium.GeoJson({"type": "FeatureCollection", "features": feats}, name="footprints", style_function=style,
                   tooltip=tip, highlight_function=lambda _f: {"weight": 3}).add_to(m)
    if not (zoom_in and not sel.empty):
        folium.GeoJson({"type": "FeatureCollection", "features": dots}, name="patches",
                       marker=folium.CircleMarker(radius=7, fill=True, fill_opacity=0.9, weight=1),
                       style_function=lambda f: {"fillColor": f["properties"]["colour"],
                                                 "color": "#ffe600" if f["properties"]["selected"] else "#ffffff",
                                                 "weight": 3 if f["properties"]["selected"] else 1},
                       tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False, direction="top",
                                                     style=tip_style)).add_to(m)
    if stat == "source":
        items = [(c, k) for k, c in SOURCE_COLOURS.items() if k in set(df["source"])] or list(
            (c, k) for k, c in SOURCE_COLOURS.items())
        add_legend(m, legend_html([*items, ("#ffe600", "selected (outline)")], title="Source"))
    else:
        cmap, lo, hi = SCALES[stat]
        fmt = fmt_mcc if stat == "last_mcc" else fmt_pct
        add_legend(m, legend_html([(NO_VALUE, "no value")], title=STATS[stat], bar=(gradient(cmap), fmt(lo), fmt(hi))))
    return m


with c_map:
    from ui.maps import show as show_map

    if len(df):
        event = show_map(home_map(), key="home_map", height=470, returned=["last_active_drawing"])
        st.caption("Click a footprint or its dot to select it; the yellow outline is the selection. "
                   + ("OpenStreetMap tiles need internet." if basemap else "Offline: the outline of Slovenia, no tiles."))
        drawn = (event or {}).get("last_active_drawing") or {}
        clicked = (drawn.get("properties") or {}).get("id")
        seen = st.session_state.get("_home_map_click")
        st.session_state["_home_map_click"] = clicked
        if clicked and clicked != seen and clicked in by_id and by_id[clicked] != sel_path:
            select_patch(by_id[clicked])
            st.rerun()

sel = st.session_state.get(Keys.SELECTED)
row = df[df["path"] == sel] if sel else df.iloc[0:0]
with c_side:
    if not row.empty:
        r = row.iloc[0]
        kind = "🧪 SIMULATED" if r["source"] == "simulated" else "🛰️ REAL"
        st.success(f"Selected **{r['name']}** ({kind}, {r['n_dates']} dates). Open **Time series** or "
                   "**Predict & compare** in the sidebar.")
    elif sel and resolve_link(patch_id(sel)) == sel:  # an upload: selected, not in the catalogue
        try:
            up = load_patch(sel)
        except SRCoreError as exc:
            st.warning(f"The selected upload cannot be read: {shown(exc)}")
        else:
            kind = "🧪 SIMULATED" if up.info.source.value == "simulated" else "🛰️ REAL"
            st.success(f"Selected the upload **{shown_name(up.name)}** ({kind}, {up.n_dates} dates). Uploads are not "
                       "listed on this map: open **Time series** or **Predict & compare** in the sidebar.")
    else:
        st.info("Pick a patch: click it on the map, a row of the table, or its name above.")

# -- table ------------------------------------------------------------------------------------------------------------
st.markdown("##### Patches")
table = df[["name", "source", "region", "product_level", "n_dates", "height", "width", "first_date", "last_date",
            "cloud_cover"]].copy() if len(df) else pd.DataFrame()
if len(df):
    table["first_date"] = table["first_date"].str[:10]
    table["last_date"] = table["last_date"].str[:10]
    table["cultivated"] = [fmt_pct(v) for v in df["cultivated_share"]]
    table["last wMCC"] = [fmt_mcc(v) for v in df["last_mcc"]]
    st.dataframe(
        table, hide_index=True, on_select=_pick_from_table, selection_mode="single-row", key="patch_table",
        column_config={
            "cloud_cover": st.column_config.ProgressColumn("cloud cover", format="percent", min_value=0, max_value=1),
            "n_dates": st.column_config.NumberColumn("T"),
        },
    )
if not bad.empty:
    with st.expander(f"⚠️ {len(bad)} folder(s) could not be read", expanded=False):
        for _, r in bad.iterrows():
            st.write(f"{shown_name(r['name'])}: {shown_name(redact(r['error']))}")

# -- settings: folders of real EOPatches -------------------------------------------------------------------------------
with st.expander("⚙️ Data sources", expanded=not rows):
    from sr_core.catalog import ENV_DATA, load_settings, real_folders, save_real_folders
    from ui.common import folder_settings_allowed

    st.markdown(
        "- Built-in **simulated** demo set: `$SR_CORE_HOME/demo`\n"
        f"- **Real** EOPatch folders: set `{ENV_DATA}` (folders separated by `:`)"
        + (" or list them below." if folder_settings_allowed() else ".") + "\n"
        "- Everything the app writes lives under `$SR_CORE_HOME`."
    )
    if folder_settings_allowed():
        current = "\n".join(load_settings().get("real_folders", []))
        text = st.text_area("Folders of real EOPatches (one per line)", value=current, key="real_folders_text")
        if st.button("Save folders"):
            save_real_folders(text.splitlines())
            catalog.clear()
            st.rerun()  # the catalogue and the map above read the new folders
        if real_folders():
            missing = [f for f in real_folders() if not Path(f).expanduser().exists()]
            st.caption("Active real folders: " + ", ".join(f"`{p}`" for p in real_folders()))
            if missing:  # said after the rerun (a warning before st.rerun() is wiped at once)
                st.warning("These folders do not exist (yet): " + ", ".join(f"`{p}`" for p in missing))
    else:
        st.caption(f"{len(real_folders())} real folder(s) configured by the server's operator. Folders can be edited "
                   "here only from a browser on the server itself (or with `SR_CORE_FOLDER_SETTINGS=on`).")

sidebar()
