"""Upload: drop an EOPatch archive, see a validation report, predict, download the results."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from sr_core.errors import SRCoreError
from sr_core.paths import uploads_dir
from ui.common import Keys, catalog, device_badge, load_patch, page_setup, run_predictor, sidebar

page_setup("Upload", "📤")
st.title("📤 Upload an EOPatch")
limit_mb = int(st.get_option("server.maxUploadSize"))
st.markdown(
    f"Drop a **.zip** or **.tar.gz** holding one or more EOPatch folders, in the challenge's eo-learn 0.9 layout "
    f"(`.npy.gz` + gzipped pickles) or eo-learn 1.x (`.npy`/`.npy.gz`, `bbox.geojson`, `timestamps.json`). "
    f"**Size limit: {limit_mb} MB** (set by `server.maxUploadSize` in `.streamlit/config.toml`)."
)
st.caption(
    "Uploads are checked before anything is written: no paths outside the upload folder, no links or device files, "
    "bounded file count and expanded size (zip bombs are refused). Legacy pickles are decoded by a restricted reader "
    "that never runs code. Files are kept under `$SR_CORE_HOME/uploads`."
)

up = st.file_uploader("EOPatch archive", type=["zip", "gz", "tgz", "tar"], key="upload_file")
if up is not None:
    data = up.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = uploads_dir() / digest
    if st.session_state.get(Keys.UPLOAD_DIR) != str(target):
        with st.spinner("Checking and extracting the archive …"):
            from sr_core.io.archive import extract_archive

            suffix = ".tar.gz" if up.name.endswith((".tar.gz", ".tgz")) else Path(up.name).suffix
            try:
                if not target.exists():
                    with tempfile.TemporaryDirectory(dir=uploads_dir()) as tmp:
                        arch = Path(tmp) / f"upload{suffix}"
                        arch.write_bytes(data)
                        staging = Path(tmp) / "x"
                        extract_archive(arch, staging)
                        staging.rename(target)
                st.session_state[Keys.UPLOAD_DIR] = str(target)
            except SRCoreError as exc:
                st.error(f"The archive was refused: {exc}")
                st.stop()
            except OSError as exc:
                shutil.rmtree(target, ignore_errors=True)
                st.error(f"Could not store the upload: {exc}")
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

rows, ok = [], []
table_warnings: set[str] = set()
for f in found:
    try:
        p = load_patch(f)
    except SRCoreError as exc:
        rows.append({"folder": str(f.relative_to(folder)), "status": "❌ " + str(exc)})
        continue
    try:
        from sr_core.quality import series_warnings

        warns = series_warnings(p)
        table_warnings.update(warns)
    except ImportError:
        warns = []
    ok.append(f)
    rows.append({
        "folder": str(f.relative_to(folder)), "status": "✅ readable", "source": p.info.source.value,
        "level": p.info.product_level.value,
        "T": p.n_dates, "size (10 m px)": f"{p.height} × {p.width}",
        "dates": f"{p.timestamps[0]:%Y-%m-%d} … {p.timestamps[-1]:%Y-%m-%d}",
        "CRS": p.bbox.crs, "layers": ", ".join(p.features_present()),
        "mean cloud": float(np.nanmean(p.cloud_fraction())) if p.cloud_mask is not None or p.cloud_prob is not None else None,
        "notes": "; ".join([*p.info.notes, *warns]),
    })
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
if not ok:
    st.stop()

labels = {str(f.relative_to(folder)): f for f in ok}
choice = st.selectbox("Patch", list(labels), key="upload_choice")
path = labels[choice]
p = load_patch(path)
if p.cloud_mask is None and p.cloud_prob is None:
    st.warning("This patch has no cloud masks (CLP/CLM): every pixel would be treated as clear. Compute them with "
               "s2cloudless (Sentinel Hub's detector; B10 is estimated when the cube lacks it, see `info` notes).")
    if st.button("☁️ Compute cloud masks (s2cloudless)", key="upload_clouds"):
        from sr_core.clouds import ensure_cloud_masks
        from sr_core.io import write_eopatch

        bar = st.progress(0.0, text="s2cloudless …")
        try:
            with_clouds = ensure_cloud_masks(
                p, progress=lambda d, t: bar.progress(d / max(t, 1), text=f"s2cloudless: date {d}/{t}"))
            out = write_eopatch(with_clouds, Path(folder) / "with-clouds" / p.name, overwrite=True)
        except SRCoreError as exc:
            st.error(f"Could not compute cloud masks: {exc}")
        else:
            bar.empty()
            st.success(f"Cloud masks computed and stored with the patch as `{out}` (listed above as a new folder).")
            st.rerun()

c1, c2 = st.columns(2)
if c1.button("Open this patch in the other pages", key="upload_open"):
    st.session_state[Keys.SELECTED] = str(path)
    catalog.clear()
    st.success("Selected. Open **Time series** or **Predict & compare**.")
if c2.button("▶ Predict", type="primary", key="upload_predict"):
    bar = st.progress(0.0, text="Predicting …")
    try:
        pred = run_predictor(path, "model", st.session_state.get(Keys.DEVICE, "auto"),
                             progress=lambda d, t: bar.progress(d / max(t, 1), text=f"tile pass {d}/{t}"))
        st.session_state["upload_pred_path"] = str(path)
    except SRCoreError as exc:
        st.error(f"Prediction failed: {exc}")
    bar.empty()

if st.session_state.get("upload_pred_path") == str(path):
    pred = run_predictor(path, "model", st.session_state.get(Keys.DEVICE, "auto"))
    st.success(f"Predicted in {pred.seconds:.2f} s on {device_badge(pred.device)}; cultivated {pred.binary.mean():.1%}.")
    for w in pred.warnings:
        if w not in table_warnings:  # already listed in the table above
            st.warning(w)
    from sr_core import viz

    st.image(viz.binary_image(pred.binary)[:: max(1, pred.shape[0] // 800), :: max(1, pred.shape[1] // 800)],
             caption="Prediction at 2.5 m (green = cultivated)")
    with tempfile.TemporaryDirectory() as tmp:
        from sr_core.export import write_fields_gpkg
        from sr_core.io.submission import write_probability, write_submission

        d1, d2, d3 = st.columns(3)
        d1.download_button("Submission GeoTIFF", write_submission(pred, p, tmp).read_bytes(), f"{p.name}.tif", "image/tiff")
        d2.download_button("Probability GeoTIFF", write_probability(pred, p, tmp).read_bytes(), f"{p.name}_proba.tif",
                           "image/tiff")
        d3.download_button("Fields (GeoPackage)", write_fields_gpkg(pred, Path(tmp) / "f.gpkg").read_bytes(),
                           f"{p.name}_fields.gpkg", "application/geopackage+sqlite3")
sidebar()
