"""Make the bundled offline outline of Slovenia (sr_core/assets/slovenia.geojson).

Source: ../shared/data/challenge/svn-border.geojson (the benchmark's border, EPSG:32633), simplified with a 300 m
tolerance and reprojected to WGS84 so the app can draw Slovenia with no tiles and no network. Re-run after a change:
    .venv/bin/python scripts/make_outline.py
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd

REPO = Path(__file__).resolve().parents[1]
SRC = REPO.parent / "shared" / "data" / "challenge" / "svn-border.geojson"
DST = REPO / "sr_core" / "assets" / "slovenia.geojson"

gdf = gpd.read_file(SRC)
gdf["geometry"] = gdf.geometry.simplify(300, preserve_topology=True)
gdf = gdf.to_crs(4326)
geo = json.loads(gdf.to_json(drop_id=True))
for feat in geo["features"]:
    feat["properties"] = {"name": "Slovenia", "source": "AI4EO challenge border, simplified 300 m"}


def rnd(c):
    return [rnd(x) for x in c] if isinstance(c[0], list) else [round(c[0], 5), round(c[1], 5)]


for feat in geo["features"]:
    feat["geometry"]["coordinates"] = rnd(feat["geometry"]["coordinates"])
DST.write_text(json.dumps(geo))
print(f"wrote {DST} ({DST.stat().st_size} bytes)")
