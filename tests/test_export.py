import numpy as np

from sr_core import BBox
from sr_core.export import field_polygons, write_fields_gpkg
from sr_core.prediction import Prediction


def _prediction():
    proba = np.zeros((40, 40), np.float32)
    proba[4:14, 4:24] = 0.9  # 10 × 20 px = 50 m × 25 m... at 2.5 m: 25 m × 50 m = 1250 m²
    proba[30:32, 30:32] = 0.8  # 4 px = 25 m²
    proba[36, 36] = 0.7  # 1 px, dropped
    return Prediction(proba, BBox(500000.0, 5100000.0, 500100.0, 5100100.0), name="eopatch-x")


def test_polygons_are_georeferenced_with_exact_areas(tmp_path):
    gdf = field_polygons(_prediction())
    assert gdf.crs.to_epsg() == 32633
    assert sorted(gdf["area_m2"]) == [25.0, 1250.0]
    big = gdf.loc[gdf["area_m2"].idxmax()]
    # rows 4..14 from the top (max_y), cols 4..24 from min_x, 2.5 m pixels
    assert big.geometry.bounds == (500010.0, 5100065.0, 500060.0, 5100090.0)
    assert abs(big["mean_proba"] - 0.9) < 1e-6
    out = write_fields_gpkg(_prediction(), tmp_path / "f.gpkg")
    import geopandas as gpd

    back = gpd.read_file(out, layer="fields")
    assert len(back) == 2 and back.crs.to_epsg() == 32633


def test_a_field_touching_itself_at_a_corner_is_one_valid_multipolygon(tmp_path):
    """Blocks meeting at one corner are one 8-connected field; traced as one ring it would touch itself (invalid:
    QGIS overlay tools refuse it). It is written as a MultiPolygon of its 4-connected parts, exact to the pixel, and
    the layer says what made it."""
    import geopandas as gpd
    import pyogrio
    from rasterio import Affine
    from rasterio.features import rasterize

    proba = np.zeros((24, 24), np.float32)
    proba[2:6, 2:6] = proba[6:10, 6:10] = 0.9  # touch at one corner
    proba[12:20, 2:8] = 0.9  # a second field
    proba[14:16, 4:6] = 0.1  # with a hole
    pred = Prediction(proba, BBox(500000.0, 5100000.0, 500060.0, 5100060.0), name="eopatch-x", threshold=0.5)
    gdf = field_polygons(pred)
    assert gdf.is_valid.all() and len(gdf) == 2
    assert set(gdf.geom_type) == {"MultiPolygon"}
    back = rasterize(((g, 1) for g in gdf.geometry), out_shape=pred.shape, transform=Affine(*pred.transform), fill=0,
                     dtype="uint8")
    np.testing.assert_array_equal(back, pred.binary)
    out = write_fields_gpkg(pred, tmp_path / "f.gpkg")
    meta = pyogrio.read_info(out, layer="fields")["layer_metadata"]
    assert meta["SR_PREDICTOR"] == "model" and meta["SR_THRESHOLD"] == "0.5" and "8-connected" in meta["SR_LAYER"]
    back = gpd.read_file(out, layer="fields")
    assert back.is_valid.all() and pyogrio.read_info(out, layer="fields")["geometry_type"] == "MultiPolygon"
