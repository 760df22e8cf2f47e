"""Upload: drop an EOPatch archive, see a validation report, predict, download the results."""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from sr_core.errors import ConfigError, SRCoreError
from sr_core.paths import (
    expire_uploads,
    touch_upload,
    upload_days,
    upload_quota_bytes,
    upload_reservation,
    uploads_dir,
)
from ui.common import (
    OFF,
    PRED_ON,
    Keys,
    cached_prediction,
    clearest_date,
    device_badge,
    failure,
    load_patch,
    output_file,
    page_setup,
    patch_banner,
    prediction_key,
    redact,
    register_upload,
    run_predictor,
    select_patch,
    shown,
    shown_name,
    sidebar,
)  # fmt: skip

page_setup("Upload", "📤")
st.title("📤 Upload an EOPatch")
limit_mb = int(st.get_option("server.maxUploadSize"))
st.markdown(
    f"Drop a **.zip** or **.tar.gz** holding one or more EOPatch folders, in the challenge's eo-learn 0.9 layout "
    f"(`.npy.gz` + gzipped pickles) or eo-learn 1.x (`.npy`/`.npy.gz`, `bbox.geojson`, `timestamps.json`). "
    f"**Size limit: {limit_mb} MB** (set by `server.maxUploadSize` in `.streamlit/config.toml`)."
)
# the details take a screen: open before an upload, folded once one is in, so that its report and map come first
with st.expander("What is read, and how uploads are checked", expanded=st.session_state.get("upload_file") is None):
    st.markdown(
        "The band cube holds the challenge's 12 bands (`B01 … B12` without `B10`) or 13 (with it); any other set or "
        "order is read when `meta_info` names the bands in cube order (e.g. `meta_info/bands.json` = "
        '`["B02", "B03", "B04", "B08"]`), and absent bands are filled from the nearest band, with a warning. Products '
        "of processing baseline 04.00 and later (2022 on) that still carry the +1000 DN offset are found and "
        "corrected. Clouds come from `CLM`, else `CLP`, else Sen2Cor's `SCL` (or eo-learn's `IS_VALID`); a cloud layer "
        "that contradicts the SCL beside it is not used, and a patch with none can get s2cloudless masks below."
    )
    st.caption(
        "Uploads are checked before anything is written: no paths outside the upload folder, no links or device "
        "files, bounded file count, header and expanded size (zip bombs are refused), all uploads within one quota "
        "(`SR_CORE_UPLOAD_QUOTA_GB`). Legacy pickles are decoded by a restricted reader that never runs code. Files "
        "are kept under `$SR_CORE_HOME/uploads` and removed after `SR_CORE_UPLOAD_DAYS` days unopened (default 30); a "
        "link to an upload lasts until the server restarts."
    )

up = st.file_uploader("EOPatch archive", type=["zip", "gz", "tgz", "tar"], key="upload_file")
if up is not None:
    # the digest once per uploaded file (Streamlit's file_id), not on every rerun: 400 MB hash and copy each time
    fid = getattr(up, "file_id", None)
    known = st.session_state.get("_upload_digest")
    if fid is not None and known and known[0] == fid:
        data, digest = None, known[1]
    else:
        data = up.getvalue()
        digest = hashlib.sha256(data).hexdigest()[:16]
        if fid is not None:
            st.session_state["_upload_digest"] = (fid, digest)
    target = uploads_dir() / digest
    if st.session_state.get(Keys.UPLOAD_DIR) != str(target):
        with st.spinner("Checking and extracting the archive …"):
            from sr_core.io.archive import MAX_TOTAL_BYTES, extract_archive

            suffix = ".tar.gz" if up.name.endswith((".tar.gz", ".tgz")) else Path(up.name).suffix
            try:
                if not target.exists():
                    data = up.getvalue() if data is None else data
                    expire_uploads()  # uploads unopened for SR_CORE_UPLOAD_DAYS, scratch left by a stopped server
                    # the uploads' quota and the disk's reserve, less what uploads being stored right now hold
                    with upload_reservation(len(data) + MAX_TOTAL_BYTES) as room:
                        if room < 2 * len(data):  # the archive itself and at least as much unpacked
                            days = upload_days()
                            raise_quota = "the operator to raise `SR_CORE_UPLOAD_QUOTA_GB`"
                            st.error(f"The server's space for uploads is full (quota {upload_quota_bytes() / 1024**3:.0f} "
                                     "GB, or the disk): nothing was stored. "
                                     + (f"Uploads are removed after {days:g} days unopened; or ask {raise_quota}." if days
                                        else f"Ask {raise_quota} or to clear old uploads."))
                            st.stop()
                        with tempfile.TemporaryDirectory(prefix="upload-", dir=uploads_dir()) as tmp:
                            # the archive keeps the user's file name, so any message about it names their file
                            stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(up.name).name)[:80].lstrip(".") or "upload"
                            arch = Path(tmp) / (stem if stem.endswith(suffix) else f"{stem}{suffix}")
                            arch.write_bytes(data)
                            staging = Path(tmp) / "x"
                            extract_archive(arch, staging, max_total_bytes=min(MAX_TOTAL_BYTES, room - len(data)))
                            try:
                                staging.rename(target)
                            except OSError:  # the same bytes, finished meanwhile by another session or tab: use theirs
                                if not target.is_dir():
                                    raise
                touch_upload(target)
                st.session_state[Keys.UPLOAD_DIR] = str(target)
            except SRCoreError as exc:
                # the library names the archive first (for the command line): the page has just named it
                why = re.sub(r"^[^:/\\]+\.(?:zip|tar\.gz|tgz|tar): ", "", str(exc))
                st.error(f"**{shown_name(up.name)}** was refused: {shown(why)}")
                st.stop()
            except OSError as exc:  # the staging folder goes with its temporary directory; target is never removed
                st.error(f"Could not store **{shown_name(up.name)}** on the server: {shown(exc)}")
                st.stop()

folder = st.session_state.get(Keys.UPLOAD_DIR)
if not folder or not Path(folder).exists():
    st.info("No upload yet.")
    sidebar()
    st.stop()

from sr_core.io.archive import find_eopatches  # noqa: E402

found = find_eopatches(Path(folder))
st.subheader("Validation report")
if not found:
    st.error("The archive holds no EOPatch folder (a folder with `data/` and `bbox.geojson` or `bbox.pkl.gz`). "
             "Zip the EOPatch folder itself, e.g. `zip -r patch.zip eopatch-01`.")
    st.stop()

@st.cache_data(show_spinner=False, max_entries=256)
def _report(path_: str, mtime: float, rel: str) -> tuple[dict, list[str], bool]:
    """One row of the validation report, the patch's warnings and whether it reads: computed once per folder (an
    archive of 25 full-size patches is not re-read on every click; the patch cache holds only a few)."""
    from sr_core.io import load_eopatch
    from sr_core.quality import series_warnings

    try:
        p = load_eopatch(Path(path_))
        warns = series_warnings(p)
    except SRCoreError as exc:
        return {"folder": rel, "status": "❌ " + redact(exc)}, [], False
    except Exception as exc:  # a hostile file the readers did not foresee: this row says so, the page goes on
        return {"folder": rel, "status": "❌ " + failure(exc)}, [], False
    return {
        "folder": rel, "status": "✅ readable", "source": p.info.source.value, "level": p.info.product_level.value,
        "T": p.n_dates, "size (10 m px)": f"{p.height} × {p.width}",
        "dates": f"{p.timestamps[0]:%Y-%m-%d} … {p.timestamps[-1]:%Y-%m-%d}",
        "CRS": p.bbox.crs, "layers": ", ".join(p.features_present()),
        "mean cloud": float(np.nanmean(p.cloud_fraction())) if p.cloud_source is not None else None,
        "notes": redact("; ".join([*p.info.notes, *warns])),
    }, warns, True


rows, ok = [], []
table_warnings: set[str] = set()
warnings_of: dict[str, list[str]] = {}
with st.spinner(f"Reading {len(found)} patch folder(s) …"):
    for f in found:
        row, warns, readable = _report(str(f), f.stat().st_mtime, str(f.relative_to(folder)))
        rows.append(row)
        if readable:
            ok.append(f)
            table_warnings.update(warns)
            warnings_of[str(f)] = [redact(w) for w in warns]
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
refused = [r for r in rows if str(r["status"]).startswith("❌")]
if refused:  # the table's cell cuts a long message: each in full, with what to do
    with st.expander(f"⚠️ {len(refused)} folder(s) could not be read: why", expanded=not ok):
        for r in refused:
            st.markdown(f"**{shown_name(r['folder'])}**: {shown(str(r['status'])[2:])}")
if not ok:
    st.stop()

labels = {str(f.relative_to(folder)): f for f in ok}
choice = st.selectbox("Patch", list(labels), key="upload_choice")
path = labels[choice]
p = load_patch(path)
patch_banner(p)  # simulated or real, and the attribution
for w in warnings_of.get(str(path), []):  # the key warnings in full, not only in the table's truncated cell
    st.warning(shown(w), icon="⚠️")
if p.cloud_source == "SCL":
    st.info("No CLM / CLP: clouds, cloud shadows and no-data pixels are taken from the patch's Sen2Cor scene "
            "classification (SCL classes 0, 1, 3, 8, 9, 10, 11).")
elif p.cloud_source is None:
    st.warning("This patch has no cloud masks (CLM, CLP or SCL): every pixel would be treated as clear. Compute them "
               "with s2cloudless (Sentinel Hub's detector; B10 is estimated when the cube lacks it, see `info` notes).")
    if st.button("☁️ Compute cloud masks (s2cloudless)", key="upload_clouds"):
        from sr_core.clouds import ensure_cloud_masks
        from sr_core.io import write_eopatch

        bar = st.progress(0.0, text="s2cloudless …")
        try:
            # the copy with its cloud layers is stored with the upload: within the uploads' quota like the upload itself,
            # and held while it is made, as an upload's room is (sessions storing at the same time)
            size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
            with upload_reservation(2 * size) as room:
                if room < 2 * size:
                    raise ConfigError("the server's space for uploads is full (its quota, or the disk): the patch with "
                                      "cloud masks cannot be stored. Add CLP / CLM (or SCL) to the patch before "
                                      "uploading it, or ask the operator to raise `SR_CORE_UPLOAD_QUOTA_GB`.")
                with_clouds = ensure_cloud_masks(
                    p, progress=lambda d, t: bar.progress(d / max(t, 1), text=f"s2cloudless: date {d}/{t}"))
                out = write_eopatch(with_clouds, Path(folder) / "with-clouds" / p.name, overwrite=True)
        except Exception as exc:
            st.error(f"Could not compute cloud masks: {failure(exc)}")
        else:
            st.success(f"Cloud masks computed and stored with the upload as {shown_name(out.relative_to(folder))} "
                       "(listed above as a new folder).")
            st.rerun()
        finally:
            bar.empty()


@st.cache_data(show_spinner="Warping the upload to the map …", max_entries=8)
def upload_layers(path_: str, mtime: float) -> tuple[str, str, list[list[float]]]:
    """The patch's clearest date in true colour, warped to EPSG:3857: (layer name, PNG data URL, lat/lon box)."""
    from sr_core import viz
    from ui.maps import warp

    q = load_patch(path_)
    best = clearest_date(q)
    w = warp(viz.composite(q.bands[best], "true"), q.bbox, alpha=None if q.is_data is None else q.is_data[best])
    return f"true colour {q.timestamps[best]:%Y-%m-%d} (10 m)", w.data_url(), w.bounds_latlon


@st.cache_data(show_spinner="Warping the prediction to the map …", max_entries=8)
def prediction_layer(pkey: tuple) -> tuple[str, list[list[float]]]:
    from sr_core import viz
    from ui.maps import warp

    pr = cached_prediction(pkey[0], "model", pkey[3])
    w = warp(viz.binary_image(pr.binary, on=PRED_ON, off=OFF), load_patch(pkey[0]).bbox)
    return w.data_url(), w.bounds_latlon


def upload_map(predicted: bool) -> None:
    """The uploaded patch on the same kind of map as the other pages: footprint, true colour, prediction once run."""
    import folium

    from ui.maps import add_legend, bbox_latlon, legend_html, new_map, outline_layer, rgb_css
    from ui.maps import show as show_map

    m = new_map(bounds=bbox_latlon(p.bbox), basemap=st.session_state.get("upload_basemap", False), zoom=13)
    name, url, bounds = upload_layers(str(path), Path(path).stat().st_mtime)
    folium.raster_layers.ImageOverlay(url, bounds, name=name, pixelated=True, interactive=False).add_to(m)
    items = []
    if predicted:
        dev = st.session_state.get(Keys.DEVICE, "auto")
        purl, pbounds = prediction_layer(prediction_key(path, "model", dev))
        folium.raster_layers.ImageOverlay(purl, pbounds, name="prediction (2.5 m)", pixelated=True, interactive=False,
                                          opacity=0.8).add_to(m)
        items = [(rgb_css(PRED_ON), "cultivated (predicted)"), (rgb_css(OFF), "not cultivated")]
    outline_layer(p.bbox, f"{p.name} footprint").add_to(m)
    add_legend(m, legend_html([*items, ("#ffe600", "footprint")]))
    show_map(m, key=f"upload_map:{path.name}:{predicted}", height=430, layer_control=True)
    st.caption(f"{shown_name(p.name)}: {p.height} × {p.width} px at 10 m in {p.bbox.crs}, warped to Web Mercator; "
               + ("prediction at 2.5 m over the true colour (switch layers top right)." if predicted
                  else "press **Predict** to add the prediction as a layer."))


predicted = st.session_state.get("upload_pred_path") == str(path) and cached_prediction(
    path, "model", st.session_state.get(Keys.DEVICE, "auto")) is not None
map_slot = st.container()
c1, c2, c3 = st.columns([3, 2, 1])
c3.toggle("OSM", key="upload_basemap", help="Online OpenStreetMap under the layers; needs internet, and the map says "
                                            "so when the tiles cannot load.")
if c1.button("Open this patch in the other pages", key="upload_open"):
    register_upload(path)
    select_patch(str(path))
    st.success("Selected. Open **Time series** or **Predict & compare**; the link to this upload names it by an "
               "opaque id, never by its folder on the server.")
if c2.button("▶ Predict", type="primary", key="upload_predict"):
    bar = st.progress(0.0, text="Predicting …")
    try:
        pred = run_predictor(path, "model", st.session_state.get(Keys.DEVICE, "auto"),
                             progress=lambda d, t: bar.progress(d / max(t, 1), text=f"tile pass {d}/{t}"))
        st.session_state["upload_pred_path"] = str(path)
    except Exception as exc:
        st.error(f"Prediction failed: {failure(exc)}")
    bar.empty()

if st.session_state.get("upload_pred_path") == str(path):
    pred = run_predictor(path, "model", st.session_state.get(Keys.DEVICE, "auto"))
    st.success(f"Predicted in {pred.seconds:.2f} s on {device_badge(pred.device)}; cultivated {pred.binary.mean():.1%}.")
    for w in pred.warnings:
        if w not in table_warnings:  # already listed in the table above
            st.warning(shown(w))
    predicted = True

    d1, d2, d3 = st.columns(3)
    d1.download_button("Submission GeoTIFF", output_file(pred, p, "submission"), f"{p.name}.tif", "image/tiff", key="up_dl_sub",
                       on_click="ignore")
    d2.download_button("Probability GeoTIFF (0–255, scale 1/255)", output_file(pred, p, "probability"),
                       f"{p.name}_proba.tif", "image/tiff", key="up_dl_proba", on_click="ignore",
                       help="uint8: the probability × 255, with the band scale 1/255 recorded (QGIS "
                            "and GDAL show 0–1; tools that ignore the scale show 0–255)")
    d3.download_button("Fields (GeoPackage)", output_file(pred, p, "fields"), f"{p.name}_fields.gpkg",
                       "application/geopackage+sqlite3", key="up_dl_fields", on_click="ignore")
with map_slot:
    try:
        upload_map(predicted)
    except Exception as exc:  # the report and the downloads stay usable
        st.error(f"The map could not be drawn: {failure(exc)}")
sidebar()
