"""Rasters on the web maps are warped from the patch CRS (any UTM zone) to EPSG:3857, not stretched over lat/lon
corners: the patch corners land within one 2.5 m pixel of where they belong."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Transformer

from sr_core.webmap import WarpedImage, footprint_latlon, warp_to_web_mercator

COLOURS = {"nw": (255, 0, 0), "ne": (0, 255, 0), "sw": (0, 0, 255), "se": (255, 255, 0)}
PX = 2.5


def _bounds_in(epsg: int, lon: float, lat: float, size_m: float) -> tuple[float, float, float, float]:
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    x, y = round(x / 10) * 10, round(y / 10) * 10
    return (x, y, x + size_m, y + size_m)


def _corner_image(n: int, k: int = 3) -> np.ndarray:
    """A grey image with a k × k block of its own colour in every corner."""
    img = np.full((n, n, 3), 60, np.uint8)
    img[:k, :k], img[:k, -k:] = COLOURS["nw"], COLOURS["ne"]
    img[-k:, :k], img[-k:, -k:] = COLOURS["sw"], COLOURS["se"]
    return img


def _corner_errors(warped: WarpedImage, bounds, epsg: int, lat: float, k: int = 3) -> dict[str, float]:
    """Ground distance (m) between where each corner block lands on the 3857 layer and where it belongs."""
    a, _b, c, _d, e, f = warped.transform
    to_3857 = Transformer.from_crs(epsg, 3857, always_xy=True)
    x0, y0, x1, y1 = bounds
    half = k * PX / 2
    expected = {"nw": (x0 + half, y1 - half), "ne": (x1 - half, y1 - half), "sw": (x0 + half, y0 + half),
                "se": (x1 - half, y0 + half)}
    out = {}
    for name, colour in COLOURS.items():
        rows, cols = np.nonzero(np.all(warped.rgba[..., :3] == colour, axis=2) & (warped.rgba[..., 3] == 255))
        assert rows.size >= k * k - 3, f"{name} corner lost in the warp"
        gx = a * (cols.mean() + 0.5) + c
        gy = e * (rows.mean() + 0.5) + f
        ex, ey = to_3857.transform(*expected[name])
        out[name] = math.hypot(gx - ex, gy - ey) * math.cos(math.radians(lat))  # 3857 metres → ground metres
    return out


@pytest.mark.parametrize("epsg", [32633, 32632, 32634, 32631])  # Slovenia in its own zone, and seen from far zones
def test_layer_corners_land_within_one_pixel(epsg):
    n = 400  # 1 km at 2.5 m
    lat = 46.1
    bounds = _bounds_in(epsg, 14.9, lat, n * PX)
    warped = warp_to_web_mercator(_corner_image(n), bounds, epsg)
    for name, ground in _corner_errors(warped, bounds, epsg, lat).items():
        assert ground <= PX, f"{name} corner is {ground:.2f} m off in EPSG:{epsg}"
    # the overlay's lat/lon box encloses the patch tightly: each corner inside, each edge within a pixel of one
    x0, y0, x1, y1 = bounds
    (s, w), (nn, ee) = warped.bounds_latlon
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    lons, lats = to_ll.transform([x0, x1, x1, x0], [y0, y0, y1, y1])
    deg_lat = PX / 111_320
    deg_lon = PX / (111_320 * math.cos(math.radians(lat)))
    assert s - deg_lat <= min(lats) and max(lats) <= nn + deg_lat
    assert w - deg_lon <= min(lons) and max(lons) <= ee + deg_lon
    assert abs(min(lats) - s) <= deg_lat and abs(max(lats) - nn) <= deg_lat
    assert abs(min(lons) - w) <= deg_lon and abs(max(lons) - ee) <= deg_lon
    # outside the patch the layer is transparent (a rotated UTM square in a north-up 3857 grid)
    if epsg != 32633:
        assert (warped.rgba[..., 3] == 0).any()


def test_stretching_over_latlon_corners_would_fail():
    """The corner check has teeth: far from the central meridian the UTM grid is rotated by more than a pixel over
    1 km, so the same image simply stretched over its corners' box (what an overlay given the patch's lat/lon
    bounds does) fails the measurement the warped layer passes."""
    epsg, n, lat = 32631, 400, 46.1
    bounds = _bounds_in(epsg, 14.9, lat, n * PX)
    img = _corner_image(n)
    x0, y0, x1, y1 = bounds
    xs, ys = Transformer.from_crs(epsg, 3857, always_xy=True).transform([x0, x1, x1, x0], [y0, y0, y1, y1])
    box = (min(xs), min(ys), max(xs), max(ys))
    stretched = WarpedImage(rgba=np.dstack([img, np.full((n, n), 255, np.uint8)]),
                            transform=((box[2] - box[0]) / n, 0.0, box[0], 0.0, -(box[3] - box[1]) / n, box[3]),
                            bounds_3857=box)
    assert max(_corner_errors(stretched, bounds, epsg, lat).values()) > 5 * PX
    assert max(_corner_errors(warp_to_web_mercator(img, bounds, epsg), bounds, epsg, lat).values()) <= PX


def test_categorical_layers_stay_small_png():
    img = np.zeros((800, 800, 3), np.uint8)
    img[100:400, 200:600] = (90, 200, 90)
    warped = warp_to_web_mercator(img, (540000.0, 5120000.0, 542000.0, 5122000.0), 32633)
    png = warped.png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 60_000
    assert warped.data_url().startswith("data:image/png;base64,")


def test_footprint_is_closed_and_densified():
    ring = footprint_latlon((540000.0, 5120000.0, 545000.0, 5125000.0), 32633, densify=4)
    assert ring[0] == ring[-1] and len(ring) == 17
    assert all(45 < la < 47.5 and 13 < lo < 17 for la, lo in ring)


def test_capped_layers_keep_the_footprint():
    """Smooth layers sent at ≤ max_size px cover the same footprint (within one of their coarser pixels)."""
    img = np.full((2000, 2000, 3), 120, np.uint8)
    bounds = (540000.0, 5120000.0, 545000.0, 5125000.0)
    full = warp_to_web_mercator(img, bounds, 32633, categorical=False)
    small = warp_to_web_mercator(img, bounds, 32633, categorical=False, max_size=500)
    assert max(small.rgba.shape[:2]) <= 500 < max(full.rgba.shape[:2])
    step = abs(small.transform[0])
    for a, b in zip(full.bounds_3857, small.bounds_3857, strict=True):
        assert abs(a - b) <= step


def test_smooth_layers_are_coarsened_by_block_means_on_their_footprint():
    """The Predict page sends probability, uncertainty and weight map at ≤ 1024 px. Each coarse pixel is the mean of
    the fine pixels under it: a lone hot 2.5 m pixel stays where it was, at a quarter of its value, in the 5 m pixel
    that covers it (every second pixel, as before, dropped it or drew it 1.25 m south-east of its place)."""
    pytest.importorskip("folium")
    from ui.maps import coarsen

    x = np.zeros((2000, 2000), np.float32)
    x[1, 1] = 1.0  # in the first 5 m block's south-east quarter
    x[1998, 1999] = 1.0
    c = coarsen(x, 1024)
    assert c.shape == (1000, 1000)
    assert c[0, 0] == pytest.approx(0.25) and c[999, 999] == pytest.approx(0.25)
    assert c.sum() * 4 == pytest.approx(x.sum())
    odd = np.zeros((2001, 2000), np.float32)
    assert coarsen(odd, 1024) is odd  # no whole blocks: the warp's max_size coarsens it exactly
    assert coarsen(x[:1000, :1000], 1024).shape == (1000, 1000)  # small enough already


def test_label_parcel_outlines_stay_within_half_a_pixel_and_are_valid():
    """The Predict page's parcel outlines (GeoJSON in lon/lat) follow the label's pixel edges to within half a 2.5 m
    pixel (simplified by a whole pixel they strayed 3.5 m), a parcel touching itself at a corner is one valid
    feature, and a staircase edge keeps few vertices."""
    pytest.importorskip("folium")
    import shapely
    from pyproj import Transformer
    from rasterio import Affine
    from rasterio.features import shapes
    from shapely.geometry import shape

    from sr_core.geo import BBox
    from ui.maps import label_parcels

    yy, xx = np.mgrid[:120, :120]
    lab = np.zeros((120, 120), bool)
    lab[(xx - yy > -30) & (xx - yy < 10) & (xx + yy < 200) & (xx + yy > 40)] = True  # a diagonal strip: staircases
    lab[10:20, 100:110] = lab[20:28, 110:118] = True  # two blocks meeting at a corner: one 8-connected parcel
    bbox = BBox(500000.0, 5100000.0, 500300.0, 5100300.0, epsg=32633)
    parcels = label_parcels(lab, bbox)
    assert parcels.n == 2 and len(parcels.features) == 2 and sorted(parcels.ids) == [1, 2]
    to_utm = Transformer.from_crs(4326, 32633, always_xy=True)
    exact = {int(v): shape(g) for g, v in shapes(label_parcels(lab, bbox).labels, mask=lab, connectivity=8,
                                                  transform=Affine(*bbox.transform(120, 120)))}
    for f in parcels.features:
        g = shapely.transform(shape(f["geometry"]), lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
        assert g.is_valid, f["properties"]
        assert shapely.hausdorff_distance(g.boundary, exact[f["properties"]["parcel"]].boundary) <= 1.25 + 0.15
    strip = next(f for f in parcels.features if f["properties"]["parcel"] == 1)
    assert len(shapely.get_coordinates(shape(strip["geometry"]))) < 40  # not a vertex per pixel step
