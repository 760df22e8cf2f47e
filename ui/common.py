"""Helpers shared by all pages: session-state keys (declared once), cached loaders, the sidebar, badges."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from sr_core import Patch
from sr_core.errors import SRCoreError
from sr_core.paths import touch_upload


class Keys:
    """Every session-state key the app uses, in one place."""

    SELECTED = "selected_patch_path"
    FRAME = "frame_index"
    PLAYING = "playing"
    COMPOSITE = "composite"
    SKIP_CLOUDY = "skip_cloudy"
    DEVICE = "device"
    LAST_MCC = "last_mcc"  # dict path -> weighted MCC of the last prediction
    SEASON = "season"  # prefix: f"{SEASON}:{patch path}" -> growing season (year) chosen on Predict & compare
    UPLOAD_DIR = "upload_dir"
    TEAM = "team"
    BAD_LINK = "bad_link"  # set when the last ?patch= link was refused (the page says so instead of "no patch")


#: Settings a visitor chose on one page and expects to find again after visiting another. Streamlit forgets a
#: widget's value when a run does not draw that widget (any other page); :func:`page_setup` hands each of these
#: back to the session first, so it survives. Buttons, uploads and tokens are not settings and are not kept.
PERSISTENT_KEYS = (
    "colour_by", "home_basemap",  # Home
    Keys.FRAME, Keys.COMPOSITE, "cloud_layer", Keys.SKIP_CLOUDY, "max_cloud", "fps", "ts_basemap", "profile_bands",
    "anim_fmt",  # Time series
    Keys.DEVICE, "with_uncertainty", "cmp_right", "cmp_basemap",  # Predict & compare (and the season, by prefix)
    "upload_basemap",  # Upload
    "halluc_tta", "halluc_date_members", "halluc_answer", "halluc_margin", "halluc_basemap", "halluc_tab",  # Hallucinations
    Keys.TEAM,  # Leaderboard
)  # fmt: skip


def keep_settings() -> None:
    """Hand every setting in :data:`PERSISTENT_KEYS` (and each patch's chosen season) back to the session, so that
    the widgets of the pages not shown in this run keep their values."""
    for k in list(st.session_state.keys()):
        if k in PERSISTENT_KEYS or str(k).startswith(f"{Keys.SEASON}:"):
            st.session_state[k] = st.session_state[k]


COMPACT_CSS = """<style>
.block-container, [data-testid="stMainBlockContainer"] { padding-top: 3.4rem; padding-bottom: 2rem; }
h1 { font-size: 1.7rem !important; padding: 0.2rem 0 0.3rem 0 !important; }
[data-testid="stMetricValue"] { font-size: 1.5rem; }
</style>"""


def _route_through_app() -> None:
    """Run this page through ``app.py``'s navigation when Streamlit ran it alone.

    Until ``st.navigation`` has been called once in a server's life, Streamlit treats a ``pages/`` folder beside the
    main script the old way (multipage apps before 1.36): the first visit of a fresh server to a page's URL (a bookmark,
    a link from a talk's slides) runs that page by itself, under a sidebar built from the file names ("app",
    "Predict and compare"), and every such visit does so until someone opens the root URL. Telling Streamlit that
    this app navigates with ``st.navigation`` and running the same request again sends it through ``app.py``, which
    finds the page by its URL (each ``url_path`` there is the file name's, so the page hash is the same; Home's is
    ``home``, not ``Home``, and an unknown hash falls back to the default page, which is Home) and keeps the query
    string. ``PagesManager.uses_pages_directory`` is Streamlit's own switch for this (set by ``st.navigation``);
    tested on a fresh server in ``tests/test_browser.py``. Under ``AppTest`` (a page as the main script) it is off."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without it has no such mode
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_setup(title: str, icon: str = "🛰️") -> None:
    _route_through_app()
    st.set_page_config(page_title=f"{title} · S2 SR inspector", page_icon=icon, layout="wide")
    st.html(COMPACT_CSS)  # a projector shows 1280 × 800: the main map or image belongs in the first screen
    keep_settings()
    sync_patch_from_url()


# -- safe links -----------------------------------------------------------------------------------------------------------
# A URL names a patch by its catalogue id only: the patch name (``eopatch-03``), ``name~hash`` when two folders share a
# name, or ``up-<random>`` for an upload (held in the server-side upload store). A URL never carries a server path,
# and nothing from a URL reaches the readers except through these look-ups. The benchmark's folders (its hidden
# truth) are never listed or read by the app.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,99}")
_PATH_RE = re.compile(r"(?:(?<=^)|(?<=[\s'\"`(=:]))(?:~|[A-Za-z]:)?[/\\]+(?=[^\s/\\'\"`,;)])[^\s'\"`,;)]*")
#: An absolute path in quotes, which may hold spaces ('/Users/a/Library/Application Support/…', 'C:\\Users\\A B\\…').
_QUOTED_PATH_RE = re.compile(r"""(['"`])((?:~|[A-Za-z]:)?[/\\](?:(?!\1)[^\n])*)\1""")
LINK_HELP = "Pick a patch from the catalogue on the **Home** page (map, table or name); links name patches, never folders."


def redact(text: object) -> str:
    """``text`` with every absolute path replaced by its last part (``…/name``): messages shown in the UI never carry a
    server path."""

    def last(path: str) -> str:
        parts = [q for q in re.split(r"[/\\]", path) if q]
        return f"…/{parts[-1]}" if parts else "…"

    text = str(text)
    for root in _server_roots():  # the server's own folders first: their names may hold spaces ('Application Support')
        text = re.sub(re.escape(root) + r"(?=[/\\])", "", text).replace(root, "…")
    text = _QUOTED_PATH_RE.sub(lambda m: f"{m.group(1)}{last(m.group(2))}{m.group(1)}", text)
    return _PATH_RE.sub(lambda m: last(m.group(0)), text)


def _server_roots() -> list[str]:
    """The server folders a message may name (data home, home, temporary files, the app), longest first; an
    unquoted path below one of them may hold spaces the path pattern would stop at."""
    import tempfile

    from sr_core.paths import data_home

    roots = set()  # the uploads, caches and benchmark lie under the data home (never created here: this only reads)
    for get in (lambda: data_home(create=False), Path.home, lambda: Path(tempfile.gettempdir()),
                lambda: Path(__file__).resolve().parents[1]):
        try:
            r = str(get())
        except Exception:  # an unusable setting is said elsewhere; here it only names nothing
            continue
        if len(r) > 1:
            roots.add(r)
    return sorted(roots, key=len, reverse=True)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~$:])")


def shown_name(name: object) -> str:
    """A name from a file or an upload (a patch or folder name) made inert for ``st.markdown`` / captions, also with
    ``unsafe_allow_html``: Markdown's marks backslashed and HTML escaped, so ``<iframe …>`` or ``[x](http://…)`` in a
    folder name shows as typed instead of rendering. (Leaflet labels are plain HTML: ``html.escape`` alone.)"""
    import html

    return html.escape(_MD_SPECIAL.sub(r"\\\1", str(name)), quote=True)


#: Headers a reverse proxy adds: behind one, every visitor's connection comes from the server itself.
_PROXY_HEADERS = {"x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-server",
                  "via", "cf-connecting-ip", "true-client-ip"}
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def shown(text: object) -> str:
    """Library text (an error, a warning, a reader's notes) for a Markdown element: server paths cut (:func:`redact`)
    and, outside its `code` spans, Markdown and HTML made inert (:func:`shown_name`), because such text can quote names
    from an upload (a folder, a member, a team)."""
    t = redact(text)
    parts = t.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code span to keep
        return shown_name(t)
    return "`".join(p if i % 2 else shown_name(p) for i, p in enumerate(parts))


def failure(exc: BaseException) -> str:
    """What went wrong in a long run (a prediction, an inspection, cloud masks), for the page: the library's own
    message, a device out of memory with what to do, or, for anything else, only its type (the traceback goes to the
    server's log; a visitor never sees its details). The page keeps working either way."""
    if isinstance(exc, SRCoreError):
        return shown(exc)
    if "out of memory" in str(exc).lower():
        return ("the device ran out of memory, even with the smallest tiles. Choose **cpu** as the device, or close "
                "other work on the GPU.")
    import logging

    logging.getLogger("sr_core.app").error("unexpected failure", exc_info=exc)
    return (f"an unexpected error ({type(exc).__name__}); the details are in the server's log. The patch and the other "
            "pages are unaffected.")


def folder_settings_allowed() -> bool:
    """May this browser edit the list of real-data folders (server paths)? Only from the server itself when the app
    listens on every interface, or as ``SR_CORE_FOLDER_SETTINGS=on|off`` says; never from a remote browser by default,
    nor through a reverse proxy (its forwarding headers mark the request: the peer address is then the proxy's)."""
    import os

    flag = os.environ.get("SR_CORE_FOLDER_SETTINGS", "").lower()
    if flag in {"on", "1", "yes", "true"}:
        return True
    if flag in {"off", "0", "no", "false"}:
        return False
    return from_the_server()


def from_the_server() -> bool:
    """Is this request from a browser on the server itself (or from no browser: a test, a script)? Not through a
    reverse proxy: its forwarding headers mark the request, whose peer address is then the proxy's."""
    from urllib.parse import urlsplit

    try:
        ip = st.context.ip_address
        headers = {str(k).lower(): str(v) for k, v in st.context.headers.items()}
    except Exception:  # no request context: a test or a script run
        ip, headers = None, {}
    if set(headers) & _PROXY_HEADERS:
        return False
    # a browser names the page's origin: behind a proxy that adds no forwarding header (nginx's plain proxy_pass)
    # the peer is 127.0.0.1, but the origin is the public address the visitor typed
    origin = headers.get("origin")
    if origin and not is_loopback(urlsplit(origin).hostname or ""):
        return False
    # Streamlit gives None for a browser on localhost, the address for any other; anything else (AppTest's
    # stand-in client) counts as remote
    return ip is None or is_loopback(ip)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address, also as IPv6 sees an IPv4 peer on a dual-stack socket (``::ffff:127.0.0.1``:
    a browser at http://127.0.0.1:8501 arrives so when the server listens on ``::``)."""
    import ipaddress

    if host in _LOCAL_HOSTS:
        return True
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def _benchmark_dirs() -> list[Path]:
    from sr_core import paths

    return [(paths.data_home(create=False) / "benchmark").resolve()]


def off_limits(path: str | Path) -> bool:
    """True for folders the app must never read: anything under ``$SR_CORE_HOME/benchmark`` and any benchmark
    definition's hidden ``truth/`` (a ``truth`` folder beside a ``benchmark.json``), wherever it lies."""
    try:
        p = Path(path).resolve()
    except (OSError, RuntimeError):
        return True
    for root in _benchmark_dirs():
        if p == root or root in p.parents:
            return True
    return any(anc.name == "truth" and (anc.parent / "benchmark.json").exists() for anc in (p, *p.parents))


@st.cache_resource
def _upload_store() -> dict[str, str]:
    """Opaque upload id (``up-<random>``) → extracted folder; server-side, so a link to an upload carries no path."""
    return {}


def register_upload(path: str | Path) -> str:
    """The opaque id of an uploaded patch folder (created once per folder)."""
    store = _upload_store()
    key = str(Path(path))
    for k, v in store.items():
        if v == key:
            return k
    pid = f"up-{secrets.token_urlsafe(9).replace('_', 'x').replace('-', 'y')}"
    store[pid] = key
    return pid


def patch_ids() -> dict[str, str]:
    """Every id a link may name → its folder: catalogue patches and registered uploads."""
    out = {r["id"]: r["path"] for r in catalog() if not r["error"]}
    out.update({k: v for k, v in _upload_store().items() if not off_limits(v) and Path(v).exists()})  # not expired
    return out


def patch_id(path: str | Path | None) -> str | None:
    """The link id of a selected folder (None when it has none: then no link is written)."""
    if not path:
        return None
    key = str(path)
    for k, v in patch_ids().items():
        if v == key:
            return k
    return None


def resolve_link(value: str | None) -> str | None:
    """The folder a ``?patch=`` value names, or None. Only a look-up in :func:`patch_ids`: the value never touches the
    file system."""
    if not value or not _ID_RE.fullmatch(value):
        return None
    return patch_ids().get(value)


def sync_patch_from_url() -> None:
    """Deep links: ``?patch=<catalogue id>`` selects that patch (the page itself is in the URL path)."""
    st.session_state[Keys.BAD_LINK] = False
    want = st.query_params.get("patch")
    if not want:
        return
    current = st.session_state.get(Keys.SELECTED)
    if current and patch_id(current) == want:
        return
    path = resolve_link(want)
    if path is not None:
        st.session_state[Keys.SELECTED] = path
        return
    st.session_state.pop(Keys.SELECTED, None)  # never show another patch under a link that names something else
    del st.query_params["patch"]
    st.session_state[Keys.BAD_LINK] = True
    if _ID_RE.fullmatch(want) and not want.startswith("up-"):
        what = f"names patch **{want}**, which is not in the catalogue"
    elif want.startswith("up-") and _ID_RE.fullmatch(want):
        what = ("names an upload that this server no longer holds (a link to an upload lasts until the server "
                "restarts, and an upload is removed after days unopened)")
    else:
        what = "does not name a catalogue patch: links cannot open folders or files on the server"
    st.error(f"This link {what}. {LINK_HELP}", icon="🔗")


def select_patch(path: str) -> None:
    """Select a patch and record its id in the URL (so the view can be shared and the back button works)."""
    st.session_state[Keys.SELECTED] = path
    pid = patch_id(path)
    if pid:
        st.query_params["patch"] = pid
    elif "patch" in st.query_params:
        del st.query_params["patch"]


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


def _checked(path: str | Path) -> Path:
    if off_limits(path):
        from sr_core.errors import ConfigError

        raise ConfigError("this folder is not available in the app. " + LINK_HELP)
    return Path(path)


def derived_layers(path: str | Path) -> dict[str, np.ndarray]:
    """Per-patch layers every page needs (valid mask, cloud fraction per date, NDVI), computed once and shared."""
    p = _checked(path)
    return _derived(str(p), p.stat().st_mtime)


def load_patch(path: str | Path) -> Patch:
    """Cached EOPatch loading (invalidated when the folder changes); never a benchmark folder."""
    p = _checked(path)
    touch_upload(p)  # an upload in use never expires
    return _load(str(p), p.stat().st_mtime)


@st.cache_data(show_spinner="Indexing patches …", ttl=60)
def catalog(extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    from dataclasses import asdict

    from sr_core.catalog import build_catalog

    rows = [{**asdict(s), "centre_lonlat": s.centre_lonlat} for s in build_catalog([Path(e) for e in extra])]
    rows = [r for r in rows if not off_limits(r["path"])]  # the benchmark's hidden truth is never listed
    names = [r["name"] for r in rows]
    for r in rows:  # the link id: the name, or name~hash when two folders share it
        unique = names.count(r["name"]) == 1 and _ID_RE.fullmatch(r["name"]) and not r["name"].startswith("up-")
        r["id"] = r["name"] if unique else f"{_slug(r['name'])}~{hashlib.sha256(r['path'].encode()).hexdigest()[:8]}"
        r["error"] = redact(r["error"])
    return rows


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", name).lstrip("._-~")[:60] or "patch"


def source_badge(patch_or_source: Patch | str) -> None:
    """Say plainly whether data is simulated or real (never present simulated data as real)."""
    src = patch_or_source.info.source.value if isinstance(patch_or_source, Patch) else str(patch_or_source)
    if src == "simulated":
        st.warning("**SIMULATED data** — produced by sr_core's farmland simulator, not observed by Sentinel-2.", icon="🧪")
    else:
        st.success("**REAL data** — Sentinel-2 observations read from an EOPatch.", icon="🛰️")


def season_picker(patch: Patch, path: str | Path, help: str) -> tuple[int | None, Any]:
    """The growing season to use: a selectbox when the series spans several (its choice shared by every page through
    one key per patch), nothing otherwise. Returns the chosen season (None: the default, the latest complete one) and
    the default :class:`~sr_core.prepare.SeasonChoice` (None when the dates allow no season; a warning says why)."""
    from sr_core.prepare import choose_season, season_is_complete

    try:
        default = choose_season(patch.timestamps)
    except SRCoreError as exc:
        st.warning(f"Growing season: {shown(exc)}")
        return None, None
    if len(default.candidates) < 2:
        return None, default

    def label(y: int) -> str:
        tags = (["default, latest complete"] if y == default.year and default.complete
                else ["default"] if y == default.year else [])
        tags += [] if season_is_complete(patch.timestamps, y) else ["incomplete"]
        return f"{y} ({', '.join(tags)})" if tags else str(y)

    years = list(default.candidates)
    chosen = st.selectbox("Growing season", years, index=years.index(default.year), format_func=label,
                          key=f"{Keys.SEASON}:{path}", help=help)
    return (None if chosen == default.year else int(chosen)), default


def patch_banner(p: Patch) -> None:
    """One compact line: a SIMULATED / REAL badge, the patch caption and the attribution (the map stays in the first
    screen at 1280 × 800)."""
    if p.info.source.value == "simulated":
        badge = (":orange-badge[🧪 SIMULATED data] <small>(sr_core's farmland simulator, not observed by Sentinel-2; "
                 "not Copernicus data)</small>")
    else:
        badge = ":green-badge[🛰️ REAL data] <small>(contains modified Copernicus Sentinel data)</small>"
    st.markdown(f"{badge}<br><small>{patch_caption(p)}</small>", unsafe_allow_html=True)


def patch_caption(p: Patch) -> str:
    return (
        f"**{shown_name(p.name)}** · {p.info.source.value} · {p.info.product_level.value} · T = {p.n_dates} dates "
        f"({p.timestamps[0]:%Y-%m-%d} … {p.timestamps[-1]:%Y-%m-%d}) · {p.height} × {p.width} px at 10 m · "
        f"{p.bbox.crs} · bounds {p.bbox.bounds[0]:.0f}, {p.bbox.bounds[1]:.0f}, {p.bbox.bounds[2]:.0f}, {p.bbox.bounds[3]:.0f}"
    )


def selected_patch(required: bool = True) -> Patch | None:
    """The patch picked on the map page; a clear message (and a stop) when none is."""
    path = st.session_state.get(Keys.SELECTED)
    if not path:
        if required:
            if not st.session_state.get(Keys.BAD_LINK):
                st.info("No patch selected yet: pick one on the **Home** page (map or table).", icon="👈")
            st.stop()
        return None
    if "patch" not in st.query_params and (pid := patch_id(path)):
        st.query_params["patch"] = pid
    try:
        return load_patch(path)
    except (SRCoreError, OSError) as exc:
        st.error(f"Could not read patch {shown_name(Path(path).name)}: {shown(exc)}")
        st.stop()
    return None


def patch_header() -> tuple[Patch, str]:
    """The selected patch with its source badge, caption and attribution (stops with a hint when none is selected)."""
    patch = selected_patch()
    assert patch is not None
    patch_banner(patch)
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


@st.cache_data(show_spinner=False, max_entries=4)
def model_facts(path: str, mtime: float) -> dict[str, Any]:
    """:func:`sr_core.model.describe_checkpoint` of the model the app runs (cached per file version)."""
    from sr_core.model import describe_checkpoint

    return describe_checkpoint(path)


#: Plain names for the figures a bundled checkpoint stores (``provenance["test_metrics"]``); others are shown by key.
FIGURE_NAMES = {
    "weighted_mcc": "model", "mcc": "model (plain MCC)", "model": "model", "every_band": "model",
    "ndvi": "NDVI baseline", "pixel": "10 m pixel baseline", "phase_S": "the previous bundled model (phase S)",
    "ten_m_bands_only": "model with the 10 m bands only", "ten_m_only": "model with the 10 m bands only",
    "red_edge_empty": "model with empty red-edge bands",
    "stress_combined_10_draws": "model under every gate defect together (10 draws)", "clean": "model, clean",
    "combined": "model under every gate defect together", "pixel_combined": "10 m pixel baseline under every defect",
    "oracle_sown": "ceiling: a perfect model", "oracle_block": "ceiling: a perfect 10 m classifier",
    "cultivated_fraction": "share called cultivated",
}
_SET_PATTERNS = (
    (re.compile(r"fresh_(\d+)_(\d+)_(\d+)px"), "fresh test patches, seeds {0}–{1}, {2} px"),
    (re.compile(r"selection_(\d+)_(\d+)_(\d+)px"), "the selection set, seeds {0}–{1}, {2} px"),
    (re.compile(r"gate_(\d+)_(\d+)"), "the robustness gate, seeds {0}–{1}"),
    (re.compile(r"simulated_(\d+)_(\d+)"), "simulator {0}.{1}"),
    (re.compile(r"worldcereal_points_(\d+)_held_out"), "{0} WorldCereal pixels held out of training"),
)


def _set_name(key: str) -> str:
    for pattern, text in _SET_PATTERNS:
        m = pattern.fullmatch(key)
        if m:
            return text.format(*m.groups())
    return key


def _figures(d: dict[str, Any]) -> str:
    out = []
    for k, v in d.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        name = FIGURE_NAMES.get(k) or (f"the 10 m pixel baseline (simulator {k[10:].replace('_', '.')})"
                                       if k.startswith("pixel_sim_") else k.replace("_", " "))
        out.append(f"{name} {100 * v:.1f} %" if k.endswith("fraction") else f"{name} {v:.3f}")
    return "; ".join(out)


def model_about(d: dict[str, Any]) -> list[str]:
    """Markdown lines on the model the app runs: what it is, what it was trained on, and what was measured with it,
    real data first and each figure marked REAL or SIMULATED (from the checkpoint itself, not from the docs)."""
    lines = [f"**{d['name']}**: {d['n_params']:,} parameters, 4× output; cultivated where the probability exceeds "
             f"{d['threshold']:g}."]
    if d.get("data"):
        steps = (f"{d['lineage_steps']:,} steps over {len(d['lineage'])} training phases" if d.get("lineage_steps")
                 else f"{d['steps']:,} steps" if d.get("steps") else "")
        lines.append(f"Trained on **SIMULATED** farmland (simulator {d.get('simulator_version') or '?'})"
                     + (" plus real labelled pixels" if "real" in str(d["data"]) else "")
                     + (f", {steps}" if steps else "")
                     + (f"; the last phase's data: {d['data']}." if d.get("lineage") else f": {d['data']}."))
    else:
        lines.append("This file carries no training record (untrained or built by hand): its maps mean nothing yet.")
    measured = d.get("measured") or {}
    real = measured.get("real") or {}
    for name, figs in real.items():
        if isinstance(figs, dict) and _figures(figs):
            lines.append(f"Measured on **REAL** data, {_set_name(name)}: {_figures(figs)}.")
    for group, sets in measured.items():
        if group == "real" or not isinstance(sets, dict):
            continue
        for name, figs in sets.items():
            if isinstance(figs, dict) and _figures(figs):
                lines.append(f"Measured on **SIMULATED** data ({_set_name(group)}), {_set_name(name)}: "
                             f"{_figures(figs)}.")
    if measured:
        lines.append("Weighted MCC unless named otherwise, as measured when this file was made (stored in it); every "
                     "figure, its command and the known limits: `models/MODEL_CARD.md`.")
    return lines


def device_badge(device: str) -> str:
    return f"🟢 GPU ({device})" if device.startswith("cuda") or device == "mps" else "🔵 CPU"


def sidebar() -> None:
    with st.sidebar:
        path = st.session_state.get(Keys.SELECTED)
        if path:
            st.caption(f"Selected patch: {shown_name(Path(path).name)}")  # a folder name from an upload is hostile
        st.caption("Data home: `$SR_CORE_HOME` (see README)")


#: Class-map colours on every map: prediction and label must never share one.
PRED_ON, LABEL_ON, OFF, IGNORED = (255, 150, 40), (90, 200, 90), (28, 28, 28), (130, 130, 130)


def clearest_date(patch: Patch, among: Any = None) -> int:
    """Index of the date with the most valid (clear, with data) pixels, optionally among the indices ``among``."""
    valid = patch.valid_mask().mean(axis=(1, 2))
    if among is not None:
        valid = np.where(np.isin(np.arange(patch.n_dates), np.asarray(among)), valid, -1.0)
    return int(np.argmax(valid))


# -- predictions: computed once per (patch, predictor), shared across pages ------------------------------------------------
PREDICTORS = {"model": "SR model (bundled)", "ndvi": "NDVI threshold (organisers' baseline)", "pixel": "10 m pixel baseline"}


class PerPatchStore(dict):
    """Entries keyed by tuples whose first element is a patch path, holding at most ``patches`` patches' entries:
    storing one for a new patch drops every entry of the patch stored least recently. A 500 × 500 patch's model,
    uncertainty and baseline maps take 70–100 MB, so an unbounded store grew by that for every patch ever shown."""

    def __init__(self, patches: int) -> None:
        super().__init__()
        self.patches = patches
        self.order: list[str] = []  # patch paths, the most recently stored last
        self.lock = threading.Lock()

    def __setitem__(self, key: tuple, value: Any) -> None:
        with self.lock:
            path = key[0]
            if path in self.order:
                self.order.remove(path)
            self.order.append(path)
            while len(self.order) > self.patches:
                old = self.order.pop(0)
                for k in [k for k in list(self.keys()) if k[0] == old]:
                    super().pop(k, None)
            super().__setitem__(key, value)

    def clear(self) -> None:
        with self.lock:
            super().clear()
            self.order.clear()


#: Patches whose predictions stay in memory (every session together); their scores (small) are kept for good.
PREDICTION_PATCHES = 8


@st.cache_resource
def _prediction_store() -> PerPatchStore:
    return PerPatchStore(PREDICTION_PATCHES)


@st.cache_resource
def _prediction_locks() -> dict[tuple, threading.Lock]:
    return {}


_LOCKS_GUARD = threading.Lock()


def prediction_key(path: str | Path, predictor: str, device: str = "auto", uncertainty: bool = False,
                   season: int | None = None) -> tuple:
    """Cache key of one prediction; ``season`` None is the patch's default growing season (``choose_season``)."""
    p = Path(path)
    return (str(p), p.stat().st_mtime, predictor, device if predictor == "model" else "cpu", uncertainty,
            None if season is None else int(season))


def cached_prediction(path: str | Path, predictor: str, device: str = "auto", uncertainty: bool = False,
                      season: int | None = None):
    return _prediction_store().get(prediction_key(path, predictor, device, uncertainty, season))


def run_predictor(path: str | Path, predictor: str, device: str = "auto", uncertainty: bool = False,
                  progress: Any = None, season: int | None = None):
    """Run (or fetch from the cache) one predictor on one patch, on growing season ``season`` (None: the latest
    complete one, see :func:`sr_core.prepare.choose_season`). Raises SRCoreError on failure. Computed once: a second
    caller (another session, the background baselines) waits for the first one's result."""
    store = _prediction_store()
    key = prediction_key(path, predictor, device, uncertainty, season)
    if key in store:
        return store[key]
    with _LOCKS_GUARD:
        lock = _prediction_locks().setdefault(key, threading.Lock())
    with lock:
        if key in store:
            return store[key]
        patch = load_patch(path)
        kw = {} if season is None else {"season": int(season)}
        if predictor == "model":
            from sr_core.inference import predict

            pred = predict(patch, device=device, uncertainty=uncertainty, progress=progress, **kw)
        else:
            from sr_core.baselines import get_baseline

            pred = get_baseline(predictor)(patch, **kw)
        store[key] = pred
    return pred


BASELINES = ("ndvi", "pixel")


@st.cache_resource
def _background_jobs() -> dict[tuple, dict[str, Any]]:
    return {}


def start_baselines(path: str | Path, season: int | None = None) -> None:
    """Both baselines (and their scores) and the label ceilings on a background thread at the lowest CPU priority:
    the page, its map and the model's own scores come first; :func:`baselines_pending` says when they are done."""
    jobs = _background_jobs()
    key = (str(path), season)
    with _LOCKS_GUARD:
        if key in jobs and jobs[key]["thread"].is_alive():
            return
        todo = [b for b in BASELINES if cached_prediction(path, b, season=season) is None]
        if not todo and _ceilings_done(path):
            return
        job: dict[str, Any] = {"errors": {}}

        def work() -> None:
            import contextlib
            import os

            with contextlib.suppress(AttributeError, OSError):  # this thread only (a Linux thread is a task): the
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # browser and other pages come first
            for b in todo:
                try:
                    run_predictor(path, b, season=season)
                    scores_for(path, b, season=season)
                except SRCoreError as exc:
                    job["errors"][b] = redact(exc)
                except Exception as exc:  # never a silent thread death: the page shows what went wrong
                    job["errors"][b] = f"{type(exc).__name__}: {redact(exc)}"
            # the ceilings too (a simulated patch's sown-edge oracle simulates it again: seconds); should they fail,
            # the table computes them itself
            with contextlib.suppress(Exception):
                ceiling_scores(path)

        job["thread"] = threading.Thread(target=work, name=f"baselines:{Path(path).name}", daemon=True)
        jobs[key] = job
        job["thread"].start()


def baselines_pending(path: str | Path, season: int | None = None) -> bool:
    job = _background_jobs().get((str(path), season))
    return bool(job and job["thread"].is_alive())


def baseline_errors(path: str | Path, season: int | None = None) -> dict[str, str]:
    job = _background_jobs().get((str(path), season))
    return dict(job["errors"]) if job else {}


def wait_for_baselines(path: str | Path, season: int | None = None, timeout: float | None = None) -> None:
    job = _background_jobs().get((str(path), season))
    if job:
        job["thread"].join(timeout)


@st.cache_resource(max_entries=4)
def _label_layout(path: str, mtime: float) -> tuple[Any, np.ndarray]:
    from sr_core.metrics import parcel_layout, weight_map_from_layout

    patch = _load(path, mtime)
    layout = parcel_layout(patch.cultivated)
    weights = weight_map_from_layout(layout, patch.not_declared)
    weights.flags.writeable = False
    return layout, weights


def label_layout(path: str | Path) -> tuple[Any, np.ndarray]:
    """The label's parcel layout and weight map (:mod:`sr_core.metrics`), computed once per patch: the weight-map layer
    and every predictor's scores share them."""
    p = _checked(path)
    return _label_layout(str(p), p.stat().st_mtime)


@st.cache_resource
def _score_store() -> dict[tuple, Any]:
    return {}


def cached_scores(path: str | Path, predictor: str, device: str = "auto", uncertainty: bool = False,
                  season: int | None = None):
    """Scores already computed (by :func:`scores_for`), else None: never computes."""
    return _score_store().get(prediction_key(path, predictor, device, uncertainty, season))


def in_fragment_rerun() -> bool:
    """True while a fragment reruns on its own (not the whole page)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(ctx and getattr(ctx, "fragment_ids_this_run", None))


def scores_for(path: str | Path, predictor: str, device: str = "auto", uncertainty: bool = False,
               season: int | None = None):
    """:class:`sr_core.metrics.Scores` of a prediction against the patch labels: kept once computed (even after the
    prediction left the memory); else computed from the cached prediction; None when it or the labels are missing."""
    from sr_core.metrics import evaluate

    key = prediction_key(path, predictor, device, uncertainty, season)
    store = _score_store()
    if key in store:  # before any loading: the table of all patches asks for every patch on every rerun
        return store[key]
    pred = cached_prediction(path, predictor, device, uncertainty, season)
    if pred is None:
        return None
    patch = load_patch(path)
    if not patch.has_labels:
        return None
    layout, weights = label_layout(path)
    store[key] = evaluate(patch.cultivated, pred, patch.not_declared, weights=weights, layout=layout, name=patch.name)
    return store[key]


#: The label oracles shown under the scores (``sr_core.oracles``): ceilings that read the labels, not predictors.
CEILINGS = {"oracle_block": "ceiling: perfect 10 m classifier (reads the labels)",
            "oracle_cover": "ceiling: perfect 10 m unmixer (reads the labels)",
            "oracle_sown": "ceiling: perfect model (SIMULATED patches only: labels from the sown edges)"}


def _ceiling_key(path: str | Path, name: str) -> tuple:
    return ("ceiling", str(_checked(path)), name)


def _ceilings_done(path: str | Path) -> bool:
    store = _score_store()
    return all(_ceiling_key(path, name) in store for name in CEILINGS)


def ceiling_scores(path: str | Path, compute: bool = True) -> dict[str, Any]:
    """Scores of the label oracles (:data:`CEILINGS`) on a labelled patch, computed once per patch; {} without labels.
    They say how far a map that decides every 10 m pixel right would get, so the model's score can be read against
    what the 10 m grid allows (1.000 on labels that are themselves 10 m blocks). On a patch of the current simulator
    also a perfect model's (``oracle_sown``: the labels redrawn from the sown parcel edges); elsewhere that row is
    left out."""
    from sr_core.errors import ConfigError
    from sr_core.metrics import evaluate
    from sr_core.oracles import ORACLES, SIM_ORACLES

    store = _score_store()
    if not compute:  # what the background job has stored so far (it simulates the sown edges: seconds)
        found = {name: store.get(_ceiling_key(path, name)) for name in CEILINGS}
        return {name: s for name, s in found.items() if s is not None}
    patch = load_patch(path)
    if not patch.has_labels:
        return {}
    out = {}
    for name in CEILINGS:
        key = _ceiling_key(path, name)
        if key not in store:
            layout, weights = label_layout(path)
            try:
                oracle = {**ORACLES, **SIM_ORACLES}[name](patch)
            except ConfigError:  # oracle_sown on a real patch, another simulator's, or an edited one
                store[key] = None
            else:
                store[key] = evaluate(patch.cultivated, oracle, patch.not_declared, weights=weights, layout=layout,
                                      name=patch.name)
        if store[key] is not None:
            out[name] = store[key]
    return out


def label_offset_of(path: str | Path, season: int | None = None) -> dict[str, Any] | None:
    """Where a labelled patch's labels sit against its imagery (:func:`sr_core.coreg.label_offset` on the season the
    model reads), computed once per patch and season; None without labels or where it cannot be measured."""
    from sr_core.coreg import measured_label_offset

    patch = load_patch(path)
    if not patch.has_labels:
        return None
    store = _score_store()
    key = ("label_offset", str(_checked(path)), season)
    if key not in store:
        store[key] = measured_label_offset(patch, season)
    return store[key]


def output_file(pred: Any, patch: Patch, kind: str):
    """A download button's data: a function that writes the prediction's ``kind`` output ("submission" GeoTIFF,
    "probability" GeoTIFF or "fields" GeoPackage) and returns its bytes, run only when the button is clicked."""

    def make() -> bytes:
        from sr_core.export import write_fields_gpkg
        from sr_core.io.submission import write_probability, write_submission

        with tempfile.TemporaryDirectory() as tmp:
            if kind == "submission":
                return write_submission(pred, patch, tmp).read_bytes()
            if kind == "probability":
                return write_probability(pred, patch, tmp).read_bytes()
            return write_fields_gpkg(pred, Path(tmp) / f"{patch.name}_fields.gpkg", patch=patch).read_bytes()

    return make


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
