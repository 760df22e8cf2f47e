"""Maps for the app: folium (Leaflet) in Streamlit via streamlit-folium, offline first.

* Leaflet and our controls are served by the app itself (``static/``, ``[server] enableStaticServing``): folium's CDN
  links are replaced on every map (:func:`new_map`), and :func:`external_assets` lets tests check nothing else slips in.
* Rasters are warped from the patch CRS to EPSG:3857 (:mod:`sr_core.webmap`) before they become image layers.
* Swipe, opacity, legends and the offline-tile message run in the browser (``static/srmap.js``): no Streamlit rerun.
* Nothing in a map names a server path: features carry catalogue ids only.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import folium
import numpy as np
from branca.element import MacroElement
from jinja2 import Template

from sr_core.webmap import WarpedImage, footprint_latlon, warp_to_web_mercator

#: Where the browser finds our static files, relative to the streamlit-folium iframe
#: (``<app>/component/streamlit_folium.st_folium/index.html`` → ``<app>/app/static/…``; works under a baseUrlPath too).
STATIC = "../../app/static"
LEAFLET = f"{STATIC}/vendor/leaflet-1.9.4"
JS = [("leaflet", f"{LEAFLET}/leaflet.js"), ("srmap", f"{STATIC}/srmap.js")]
CSS = [("leaflet_css", f"{LEAFLET}/leaflet.css"), ("srmap_css", f"{STATIC}/srmap.css")]
SLOVENIA_CENTRE = (46.12, 14.85)
OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTR = "© OpenStreetMap contributors"
OFFLINE_TILES = ("The online basemap could not be loaded (no internet from this browser?). The map works without it: "
                 "the patches and the outline of Slovenia are served by the app.")


class Script(MacroElement):
    """A bit of our own JavaScript run after the map's layers exist. ``code`` may use ``{map}`` and the names given
    in ``refs`` (folium elements), which are filled in with the elements' JavaScript variable names."""

    _template = Template("{% macro script(this, kwargs) %}\n{{ this.js() }}\n{% endmacro %}")

    def __init__(self, code: str, **refs: Any) -> None:
        super().__init__()
        self._name = "SrScript"
        self.code = code
        self.refs = refs

    def js(self) -> str:
        names = {k: (v.get_name() if hasattr(v, "get_name") else json.dumps(v)) for k, v in self.refs.items()}
        return self.code.format(map=self._parent.get_name(), **names)


def _offline(element: Any) -> None:
    element.default_js = list(JS)
    element.default_css = list(CSS)


def new_map(bounds: list[list[float]] | None = None, basemap: bool = False, outline: bool = True,
            zoom: int = 8, max_zoom: int = 21) -> folium.Map:
    """A Leaflet map with no CDN asset: the bundled outline of Slovenia as the offline backdrop, optionally
    OpenStreetMap tiles (with a clear message in the map when they cannot load), a scale bar, fitted to ``bounds``."""
    m = folium.Map(location=SLOVENIA_CENTRE, zoom_start=zoom, tiles=None, control_scale=True, max_zoom=max_zoom,
                   prefer_canvas=False, zoom_snap=0.25)
    _offline(m)
    if basemap:
        tiles = folium.TileLayer(OSM_URL, attr=OSM_ATTR, name="OpenStreetMap (online)", max_zoom=max_zoom,
                                 max_native_zoom=19, overlay=False, control=False)
        tiles.add_to(m)
        Script("srTileWarning({map}, {tiles}, {msg});", tiles=tiles, msg=OFFLINE_TILES).add_to(m)
    if outline:
        shape = json.loads(resources.files("sr_core").joinpath("assets/slovenia.geojson").read_text())
        folium.GeoJson(shape, name="Slovenia (outline)", control=False, interactive=False,
                       style_function=lambda _f: {"color": "#cfcfcf", "weight": 1.5, "fillColor": "#3c463c",
                                                  "fillOpacity": 0.25}).add_to(m)
    if bounds is not None:
        m.fit_bounds(bounds)
        # streamlit-folium asks for the map's bounds (walking every vertex of every layer, the outline of Slovenia and
        # the parcels included) only to fill in a default return value: the fitted bounds say the same
        m.get_bounds = lambda: [list(bounds[0]), list(bounds[1])]
    return m


def pane(m: folium.Map, name: str, z: int) -> str:
    folium.map.CustomPane(name, z_index=z, pointer_events=False).add_to(m)
    return name


def image_layer(warped: WarpedImage, name: str, pane_name: str | None = None, opacity: float = 1.0,
                show: bool = True, control: bool = True) -> folium.raster_layers.ImageOverlay:
    kw = {"pane": pane_name} if pane_name else {}
    return folium.raster_layers.ImageOverlay(warped.data_url(), warped.bounds_latlon, name=name, opacity=opacity,
                                             show=show, control=control, pixelated=True, interactive=False,
                                             **kw)


def warp(img: np.ndarray, bbox: Any, categorical: bool = True, alpha: np.ndarray | None = None,
         max_size: int | None = None) -> WarpedImage:
    """``img`` on the patch grid (10 m or 2.5 m, north-up over ``bbox``) as a 3857 layer."""
    return warp_to_web_mercator(img, tuple(bbox.bounds), int(bbox.epsg), categorical=categorical, alpha=alpha,
                                max_size=max_size)


def coarsen(x: np.ndarray, max_px: int) -> np.ndarray:
    """A smooth 2-D layer averaged over whole ``step × step`` blocks so that its longer side is ≤ ``max_px`` (each
    coarse pixel is the mean of exactly the fine pixels under it, so the layer still lies on its footprint). Where
    the blocks do not tile the layer it is returned as is: :func:`warp`'s ``max_size`` coarsens that exactly."""
    from sr_core.resample import block_mean

    step = int(np.ceil(max(x.shape[:2]) / max_px))
    h, w = x.shape[:2]
    if step <= 1 or h % step or w % step:
        return x
    return block_mean(x, step)


def bbox_latlon(bbox: Any) -> list[list[float]]:
    ring = footprint_latlon(tuple(bbox.bounds), int(bbox.epsg))
    lats = [p[0] for p in ring]
    lons = [p[1] for p in ring]
    return [[min(lats), min(lons)], [max(lats), max(lons)]]


def outline_layer(bbox: Any, name: str = "patch outline", colour: str = "#ffe600") -> folium.PolyLine:
    return folium.PolyLine(footprint_latlon(tuple(bbox.bounds), int(bbox.epsg)), color=colour, weight=2, opacity=0.9,
                           tooltip=leaflet_text(name))


def leaflet_text(text: str) -> str:
    """``text`` (a name that may come from an upload) safe as a folium label: HTML escaped, and the characters that
    end or interpolate the JavaScript template literal folium writes a tooltip into (backtick, ``$``, backslash) as
    character references."""
    return html.escape(str(text)).replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


def legend_html(items: Iterable[tuple[str, str]] = (), title: str = "", bar: tuple[str, str, str] | None = None) -> str:
    """Legend markup: colour swatches (``(css colour, label)``) and/or a colour bar ``(css gradient, lo, hi)``."""
    out = [f"<b>{html.escape(title)}</b><br>" if title else ""]
    out += [f"<i style='background:{c}'></i>{html.escape(t)}<br>" for c, t in items]
    if bar is not None:
        grad, lo, hi = bar
        out.append(f"{html.escape(lo)} <span class='bar' style='background:{grad}'></span> {html.escape(hi)}")
    return "".join(out)


def add_legend(m: folium.Map, content: str, position: str = "bottomright") -> None:
    Script("srLegend({map}, {html}, {pos});", html=content, pos=position).add_to(m)


def gradient(cmap: str, n: int = 9) -> str:
    """A CSS linear gradient sampling a matplotlib colour map (for colour bars)."""
    from matplotlib import colormaps

    cm = colormaps[cmap]
    stops = [cm(i / (n - 1)) for i in range(n)]
    return "linear-gradient(to right, " + ", ".join(
        f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})" for r, g, b, _ in stops) + ")"


def rgb_css(c: Iterable[int]) -> str:
    r, g, b = list(c)[:3]
    return f"rgb({int(r)},{int(g)},{int(b)})"


def external_assets(m: folium.Map) -> list[str]:
    """Every JS/CSS URL the map would make the browser fetch that is not served by the app (should be empty)."""
    out: list[str] = []

    def walk(el: Any) -> None:
        for _, url in [*getattr(el, "default_js", []), *getattr(el, "default_css", [])]:
            if not url.startswith(STATIC):
                out.append(url)
        for child in getattr(el, "_children", {}).values():
            walk(child)

    walk(m)
    return out


def show(m: folium.Map, key: str, height: int = 480, returned: list[str] | None = None,
         feature_group: folium.FeatureGroup | None = None, layer_control: bool = False) -> dict | None:
    """Render with streamlit-folium. ``returned`` = the interactions that may rerun the page (none by default:
    panning, zooming, swiping and opacity stay in the browser)."""
    from streamlit_folium import st_folium

    unsafe = external_assets(m)
    if unsafe:  # a folium element brought a CDN link: fail loudly in development rather than break offline use
        raise RuntimeError(f"map asset not served by the app: {unsafe}")
    if layer_control:
        folium.LayerControl(collapsed=False, position="topright").add_to(m)
    return st_folium(m, key=key, height=height, use_container_width=True, returned_objects=returned or [],
                     feature_group_to_add=feature_group, pixelated=True)


@dataclass(frozen=True)
class LabelParcels:
    """The label's parcels vectorised once per patch (the prediction only adds each parcel's predicted share)."""

    labels: np.ndarray  #: (H, W) parcel id per 2.5 m pixel, 0 = not a parcel
    sizes: np.ndarray  #: pixels per id (index 0: the background)
    ids: np.ndarray  #: id of each feature
    features: list[dict]  #: GeoJSON features in lon/lat with the parcel's own properties (id, area, size class)

    @property
    def n(self) -> int:
        return len(self.sizes) - 1


def label_parcels(cultivated: np.ndarray, bbox: Any, labels: np.ndarray | None = None,
                  max_parcels: int = 1500) -> LabelParcels:
    """Vectorise the label's parcels (``labels``: parcel ids, e.g. :func:`sr_core.metrics.parcel_layout`'s 8-connected
    ones; computed from ``cultivated`` when None). Only the ``max_parcels`` largest are kept when there are more;
    outlines are simplified to half a pixel and stored to 0.1 m (keeps the GeoJSON small)."""
    import shapely
    from pyproj import Transformer
    from rasterio import Affine
    from rasterio.features import shapes
    from scipy import ndimage
    from shapely.geometry import MultiPolygon, mapping, shape

    if labels is None:
        labels = ndimage.label(np.asarray(cultivated, bool), structure=np.ones((3, 3), bool))[0]
    lab = np.asarray(labels, np.int32)
    sizes = np.bincount(lab.ravel()).astype(np.int64)
    n = len(sizes) - 1
    if n <= 0:
        return LabelParcels(lab, sizes, np.zeros(0, np.int64), [])
    keep = np.zeros(n + 1, bool)
    keep[np.argsort(-sizes[1:], kind="stable")[:max_parcels] + 1] = True
    h, w = lab.shape
    tf = Affine(*bbox.transform(w, h))
    px_area = abs(tf.a * tf.e)
    # 4-connected pieces, one (Multi)Polygon per parcel: an 8-connected parcel traced as one ring would touch itself
    # at a corner (an invalid ring)
    pieces: dict[int, list] = {}
    for geom, value in shapes(lab, mask=keep[lab], transform=tf, connectivity=4):
        pieces.setdefault(int(value), []).append(shape(geom))
    ids = sorted(pieces)
    geoms = [ps[0] if len(ps) == 1 else MultiPolygon(ps) for ps in (pieces[k] for k in ids)]
    tr = Transformer.from_crs(int(bbox.epsg), 4326, always_xy=True)

    def to_lonlat(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))

    # half a pixel: a staircase edge becomes its straight line, and no outline strays more than 1.25 m from the
    # label's pixel edges
    arr = shapely.simplify(np.array(geoms, dtype=object), abs(tf.a) / 2, preserve_topology=True)
    arr = shapely.set_precision(shapely.transform(arr, to_lonlat), 1e-6)
    feats = []
    for g, k in zip(arr, ids, strict=True):
        npx = int(sizes[k])
        cls = "small (< 50 px)" if npx < 50 else "medium (50–400 px)" if npx < 400 else "large (≥ 400 px)"
        feats.append({"type": "Feature", "geometry": mapping(g), "properties": {
            "parcel": k, "area": f"{npx * px_area:,.0f} m² ({npx} px)", "size class": cls}})
    return LabelParcels(lab, sizes, np.asarray(ids, np.int64), feats)


def parcels_geojson(parcels: LabelParcels, pred_binary: np.ndarray) -> tuple[dict, int]:
    """The label's parcels as GeoJSON in lon/lat with, for each: id, area, size class, the predicted cultivated
    share inside it and the outcome. Returns (collection, total number of parcels)."""
    if not parcels.features:
        return {"type": "FeatureCollection", "features": []}, parcels.n
    inside = np.bincount(parcels.labels.ravel(), weights=np.asarray(pred_binary, bool).ravel(),
                         minlength=len(parcels.sizes))
    share = inside[parcels.ids] / np.maximum(parcels.sizes[parcels.ids], 1)
    feats = []
    for f, s in zip(parcels.features, share.tolist(), strict=True):
        feats.append({**f, "properties": {**f["properties"], "predicted cultivated": f"{s:.0%}",
                                          "outcome": "detected (≥ half predicted)" if s >= 0.5
                                          else "missed (< half predicted)"}})
    return {"type": "FeatureCollection", "features": feats}, parcels.n
