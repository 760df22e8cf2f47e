"""Helpers shared by all pages: session-state keys (declared once), cached loaders, the sidebar, badges."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from sr_core import Patch
from sr_core.errors import SRCoreError


class Keys:
    """Every session-state key the app uses, in one place."""

    SELECTED = "selected_patch_path"
    FRAME = "frame_index"
    PLAYING = "playing"
    COMPOSITE = "composite"
    SKIP_CLOUDY = "skip_cloudy"
    DEVICE = "device"
    LAST_MCC = "last_mcc"  # dict path -> weighted MCC of the last prediction
    UPLOAD_DIR = "upload_dir"
    TEAM = "team"


def page_setup(title: str, icon: str = "🛰️") -> None:
    st.set_page_config(page_title=f"{title} · S2 SR inspector", page_icon=icon, layout="wide")
    sync_patch_from_url()


def sync_patch_from_url() -> None:
    """Deep links: ``?patch=<name or folder>`` selects that patch (the page itself is in the URL path)."""
    want = st.query_params.get("patch")
    if not want:
        return
    current = st.session_state.get(Keys.SELECTED)
    if current and (Path(current).name == want or current == want):
        return
    if Path(want).is_dir():
        st.session_state[Keys.SELECTED] = want
        return
    matches = [r["path"] for r in catalog() if r["name"] == want and not r["error"]]
    if matches:
        st.session_state[Keys.SELECTED] = matches[0]
    else:
        st.warning(f"The link names patch {want!r}, which is not in the catalogue; pick one on the Home page.")


def select_patch(path: str) -> None:
    """Select a patch and record it in the URL (so the view can be shared and the back button works)."""
    st.session_state[Keys.SELECTED] = path
    names = [r["name"] for r in catalog() if not r["error"]]
    name = Path(path).name
    st.query_params["patch"] = name if names.count(name) == 1 else path


@st.cache_resource(show_spinner="Reading the EOPatch …", max_entries=4)
def _load(path: str, mtime: float) -> Patch:
    # cache_resource, not cache_data: a Patch's arrays are read-only, so sharing one object between sessions is safe
    # and avoids pickling hundreds of MB on every rerun.
    from sr_core.io import load_eopatch

    return load_eopatch(Path(path))


@st.cache_resource(max_entries=4)
def _derived(path: str, mtime: float) -> dict[str, np.ndarray]:
    patch = _load(path, mtime)
    out = {"valid": patch.valid_mask(), "cloud_fraction": patch.cloud_fraction(), "ndvi": patch.ndvi()}
    for a in out.values():
        a.flags.writeable = False
    return out


def derived_layers(path: str | Path) -> dict[str, np.ndarray]:
    """Per-patch layers every page needs (valid mask, cloud fraction per date, NDVI), computed once and shared."""
    p = Path(path)
    return _derived(str(p), p.stat().st_mtime)


def load_patch(path: str | Path) -> Patch:
    """Cached EOPatch loading (invalidated when the folder changes)."""
    p = Path(path)
    return _load(str(p), p.stat().st_mtime)


@st.cache_data(show_spinner="Indexing patches …", ttl=60)
def catalog(extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    from dataclasses import asdict

    from sr_core.catalog import build_catalog

    return [{**asdict(s), "centre_lonlat": s.centre_lonlat} for s in build_catalog([Path(e) for e in extra])]


def source_badge(patch_or_source: Patch | str) -> None:
    """Say plainly whether data is simulated or real (never present simulated data as real)."""
    src = patch_or_source.info.source.value if isinstance(patch_or_source, Patch) else str(patch_or_source)
    if src == "simulated":
        st.warning("**SIMULATED data** — produced by sr_core's farmland simulator, not observed by Sentinel-2.", icon="🧪")
    else:
        st.success("**REAL data** — Sentinel-2 observations read from an EOPatch.", icon="🛰️")


def patch_caption(p: Patch) -> str:
    return (
        f"**{p.name}** · {p.info.source.value} · {p.info.product_level.value} · T = {p.n_dates} dates "
        f"({p.timestamps[0]:%Y-%m-%d} … {p.timestamps[-1]:%Y-%m-%d}) · {p.height} × {p.width} px at 10 m · "
        f"{p.bbox.crs} · bounds {p.bbox.bounds[0]:.0f}, {p.bbox.bounds[1]:.0f}, {p.bbox.bounds[2]:.0f}, {p.bbox.bounds[3]:.0f}"
    )


def selected_patch(required: bool = True) -> Patch | None:
    """The patch picked on the map page; a clear message (and a stop) when none is."""
    path = st.session_state.get(Keys.SELECTED)
    if not path:
        if required:
            st.info("No patch selected yet: pick one on the **Home** page (map or table).", icon="👈")
            st.stop()
        return None
    if "patch" not in st.query_params:
        names = [r["name"] for r in catalog() if not r["error"]]
        name = Path(path).name
        st.query_params["patch"] = name if names.count(name) == 1 else path
    try:
        return load_patch(path)
    except (SRCoreError, OSError) as exc:
        st.error(f"Could not read {path}: {exc}")
        st.stop()
    return None


def patch_header() -> tuple[Patch, str]:
    """The selected patch with its source badge, caption and attribution (stops with a hint when none is selected)."""
    patch = selected_patch()
    assert patch is not None
    source_badge(patch)
    st.markdown(patch_caption(patch))
    attribution(patch)
    return patch, st.session_state[Keys.SELECTED]


def png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def show_image(img: np.ndarray, caption: str = "", max_px: int = 900) -> None:
    """Show a uint8 image, enlarged with nearest neighbour when small so 10 m pixels stay visible."""
    from sr_core.viz import upscale

    h, w = img.shape[:2]
    f = max(1, min(8, max_px // max(h, w, 1)))
    st.image(upscale(img, f) if f > 1 else img, caption=caption, width="stretch")


def device_badge(device: str) -> str:
    return f"🟢 GPU ({device})" if device.startswith("cuda") or device == "mps" else "🔵 CPU"


def sidebar() -> None:
    with st.sidebar:
        path = st.session_state.get(Keys.SELECTED)
        if path:
            st.caption(f"Selected patch: `{Path(path).name}`")
        st.caption("Data home: `$SR_CORE_HOME` (see README)")


# -- predictions: computed once per (patch, predictor), shared across pages ------------------------------------------------
PREDICTORS = {"model": "SR model (bundled)", "ndvi": "NDVI threshold (organisers' baseline)", "pixel": "10 m pixel baseline"}


@st.cache_resource
def _prediction_store() -> dict[tuple, Any]:
    return {}


def prediction_key(path: str | Path, predictor: str, device: str = "auto", uncertainty: bool = False) -> tuple:
    p = Path(path)
    return (str(p), p.stat().st_mtime, predictor, device if predictor == "model" else "cpu", uncertainty)


def cached_prediction(path: str | Path, predictor: str, device: str = "auto", uncertainty: bool = False):
    return _prediction_store().get(prediction_key(path, predictor, device, uncertainty))


def run_predictor(path: str | Path, predictor: str, device: str = "auto", uncertainty: bool = False,
                  progress: Any = None):
    """Run (or fetch from the cache) one predictor on one patch. Raises SRCoreError on failure."""
    store = _prediction_store()
    key = prediction_key(path, predictor, device, uncertainty)
    if key in store:
        return store[key]
    patch = load_patch(path)
    if predictor == "model":
        from sr_core.inference import predict

        pred = predict(patch, device=device, uncertainty=uncertainty, progress=progress)
    else:
        from sr_core.baselines import get_baseline

        pred = get_baseline(predictor)(patch)
    store[key] = pred
    return pred


@st.cache_resource
def _score_store() -> dict[tuple, Any]:
    return {}


def scores_for(path: str | Path, predictor: str, device: str = "auto", uncertainty: bool = False):
    """:class:`sr_core.metrics.Scores` of a cached prediction against the patch labels (None when either is missing)."""
    from sr_core.metrics import evaluate_patch

    pred = cached_prediction(path, predictor, device, uncertainty)
    patch = load_patch(path)
    if pred is None or not patch.has_labels:
        return None
    key = prediction_key(path, predictor, device, uncertainty)
    store = _score_store()
    if key not in store:
        store[key] = evaluate_patch(patch, pred)
    return store[key]


def attribution(patch: Patch) -> None:
    if patch.info.source.value == "real":
        st.caption("Contains modified Copernicus Sentinel data.")
    else:
        st.caption("🧪 Simulated by sr_core's farmland simulator (not Copernicus data).")


def downsample_for_display(img: np.ndarray, max_px: int = 1000) -> np.ndarray:
    """Stride-subsample a large map for the overview (the zoom view shows full resolution)."""
    h, w = img.shape[:2]
    step = max(1, int(np.ceil(max(h, w) / max_px)))
    return img[::step, ::step]
