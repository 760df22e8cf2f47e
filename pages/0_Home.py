"""Home: Slovenia with the footprints of every available patch; pick one on the map or in the table.

Opened by `streamlit run app.py`. Works with no network: the map draws a bundled outline of Slovenia without tiles; an online
basemap is an option.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pandas as pd
import pydeck as pdk
import streamlit as st

from sr_core.errors import SRCoreError
from ui.common import Keys, catalog, page_setup, select_patch, sidebar

page_setup("Home")
st.title("🛰️ Sentinel-2 super-resolution of farmland")
st.caption(
    "4× super-resolution (10 m → 2.5 m) cultivated-land maps for the AI4EO *Enhanced Sentinel-2 for Agriculture* "
    "benchmark (Slovenia). Pick a patch, scrub its time series, run the model, compare with the labels, and hunt for "
    "hallucinations."
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
    st.error(f"Could not build the simulated demo dataset: {exc}")

# -- settings: folders of real EOPatches -------------------------------------------------------------------------------
with st.expander("⚙️ Data sources", expanded=False):
    from sr_core.catalog import ENV_DATA, load_settings, real_folders, save_real_folders
    from sr_core.paths import data_home, demo_dir

    st.markdown(
        f"- Built-in **simulated** demo set: `{demo_dir()}`\n"
        f"- **Real** EOPatch folders: set `{ENV_DATA}` (folders separated by `:`) or list them below.\n"
        f"- Everything the app writes lives under `{data_home()}` (`$SR_CORE_HOME`)."
    )
    current = "\n".join(load_settings().get("real_folders", []))
    text = st.text_area("Folders of real EOPatches (one per line)", value=current, key="real_folders_text")
    if st.button("Save folders"):
        save_real_folders(text.splitlines())
        catalog.clear()
        missing = [f for f in text.splitlines() if f.strip() and not Path(f).expanduser().exists()]
        if missing:
            st.warning(f"These folders do not exist (yet): {', '.join(missing)}")
        st.rerun()
    if real_folders():
        st.caption("Active real folders: " + ", ".join(f"`{p}`" for p in real_folders()))

rows = catalog()
if not rows:
    st.warning("No patches found. Build the demo set with `python -m sr_core demo` or add a folder of EOPatches above.")
    st.stop()

df = pd.DataFrame(rows)
last_mcc = st.session_state.get(Keys.LAST_MCC, {})
df["last_mcc"] = [last_mcc.get(p, math.nan) for p in df["path"]]
bad = df[df["error"] != ""]
df = df[df["error"] == ""].reset_index(drop=True)
if not bad.empty:
    with st.expander(f"⚠️ {len(bad)} folder(s) could not be read", expanded=False):
        for _, r in bad.iterrows():
            st.write(f"`{r['path']}`: {r['error']}")

# -- map --------------------------------------------------------------------------------------------------------------
STATS = {
    "source": "Source (simulated / real)",
    "cloud_cover": "Mean cloud cover",
    "cultivated_share": "Cultivated share (labels)",
    "last_mcc": "Last weighted MCC (this session)",
}
c1, c2 = st.columns([3, 1])
with c2:
    stat = st.selectbox("Colour footprints by", list(STATS), format_func=STATS.get, key="colour_by")
    basemap = st.toggle("Online basemap (needs internet)", value=False,
                        help="Off: a bundled outline of Slovenia, no network needed. On: OpenStreetMap tiles.")
    zoom_in = st.toggle("Zoom to the selected patch", value=False, key="zoom_to_selection",
                        help="Patches are 1–5 km wide: at the scale of Slovenia they show as dots.")


def colour(row: pd.Series) -> list[int]:
    if stat == "source":
        return [230, 160, 40, 170] if row["source"] == "simulated" else [60, 160, 255, 170]
    v = row[stat]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return [128, 128, 128, 120]
    lo, hi = (0.0, 1.0) if stat != "last_mcc" else (0.3, 1.0)
    t = min(max((float(v) - lo) / (hi - lo), 0.0), 1.0)
    return [int(255 * (1 - t)), int(200 * t + 40), 60, 180]


df["fill"] = df.apply(colour, axis=1)
df["polygon"] = df["lonlat_ring"].apply(lambda r: [list(p) for p in r])
df["centre"] = df["centre_lonlat"].apply(list)
selected_path = st.session_state.get(Keys.SELECTED)
df["label"] = df.apply(
    lambda r: f"{r['name']} ({r['source']}) · T={r['n_dates']} · clouds {r['cloud_cover']:.0%}", axis=1
)
outline = json.loads(resources.files("sr_core").joinpath("assets/slovenia.geojson").read_text())

layers = []
if basemap:
    layers.append(pdk.Layer("TileLayer", data="https://tile.openstreetmap.org/{z}/{x}/{y}.png", id="basemap",
                            min_zoom=0, max_zoom=19, tile_size=256))
layers += [
    pdk.Layer("GeoJsonLayer", outline, id="slovenia", stroked=True, filled=True, get_fill_color=[60, 70, 60, 60],
              get_line_color=[200, 200, 200, 220], line_width_min_pixels=1.5),
    pdk.Layer("PolygonLayer", df[["polygon", "fill", "label", "path"]], id="patches", get_polygon="polygon",
              get_fill_color="fill", get_line_color=[255, 255, 255], line_width_min_pixels=1, pickable=True,
              auto_highlight=True),
    # a dot per patch that stays visible at the scale of the country (footprints are a few pixels wide there)
    pdk.Layer("ScatterplotLayer", df[["centre", "fill", "label", "path"]], id="centres", get_position="centre",
              get_fill_color="fill", get_line_color=[255, 255, 255], stroked=True, line_width_min_pixels=1,
              get_radius=600, radius_min_pixels=5, radius_max_pixels=12, pickable=True, auto_highlight=True),
]
sel_rows = df[df["path"] == selected_path]
if not sel_rows.empty:
    layers.append(pdk.Layer("PolygonLayer", sel_rows[["polygon"]], id="selected", get_polygon="polygon", filled=False,
                            stroked=True, get_line_color=[255, 230, 0], line_width_min_pixels=3))
if zoom_in and not sel_rows.empty:
    lon, lat = sel_rows.iloc[0]["centre"]
    view = pdk.ViewState(longitude=float(lon), latitude=float(lat), zoom=12)
else:
    view = pdk.ViewState(longitude=14.85, latitude=46.12, zoom=7)
deck = pdk.Deck(layers=layers, initial_view_state=view, map_style=None, tooltip={"text": "{label}"})
with c1:
    event = st.pydeck_chart(deck, on_select="rerun", selection_mode="single-object", key="patch_map", height=480)
    st.caption("Orange = simulated, blue = real (when colouring by source); yellow outline = selected. "
               "Click a footprint or its dot to select it." +
               ("" if basemap else " Offline outline of Slovenia; no tiles are loaded."))
picked = (event.selection.get("objects", {}) or {}) if event and event.selection else {}
objs = picked.get("patches", []) or picked.get("centres", [])
if objs:
    select_patch(objs[0]["path"])

# -- table ------------------------------------------------------------------------------------------------------------
st.subheader("Patches")
table = df[["name", "source", "region", "product_level", "n_dates", "height", "width", "first_date", "last_date",
            "cloud_cover", "cultivated_share", "last_mcc"]].copy()
table["first_date"] = table["first_date"].str[:10]
table["last_date"] = table["last_date"].str[:10]
ev = st.dataframe(
    table, hide_index=True, on_select="rerun", selection_mode="single-row", key="patch_table",
    column_config={
        "cloud_cover": st.column_config.ProgressColumn("cloud cover", format="percent", min_value=0, max_value=1),
        "cultivated_share": st.column_config.NumberColumn("cultivated", format="percent"),
        "last_mcc": st.column_config.NumberColumn("last wMCC", format="%.3f"),
        "n_dates": st.column_config.NumberColumn("T"),
    },
)
if ev and ev.selection and ev.selection.get("rows"):
    select_patch(df.iloc[ev.selection["rows"][0]]["path"])

names = list(df["name"])
by_name = st.selectbox("…or choose a patch by name", ["—", *names], key="patch_by_name")
if by_name != "—":
    path = df.loc[df["name"] == by_name, "path"].iloc[0]
    if st.session_state.get(Keys.SELECTED) != path:
        select_patch(path)

sel = st.session_state.get(Keys.SELECTED)
if sel:
    row = df[df["path"] == sel]
    if not row.empty:
        r = row.iloc[0]
        kind = "🧪 SIMULATED" if r["source"] == "simulated" else "🛰️ REAL"
        st.success(f"Selected **{r['name']}** ({kind}, {r['n_dates']} dates). Open **Time series** or "
                   "**Predict & compare** in the sidebar.")
sidebar()
