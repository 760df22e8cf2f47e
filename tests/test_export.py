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
