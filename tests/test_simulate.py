"""The simulator: determinism, layout, label rules, frames, placement, cloud products (small sizes, fast)."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
from conftest import CHALLENGE_META, need
from scipy import ndimage

from sr_core import Source
from sr_core.simulate import REGIONS, SPLIT_IDS, patch_bbox, simulate_patch
from sr_core.simulate.classes import CLASSES, CULTIVATED_CODES, NOT_CULTIVATED_CODES, NOT_DECLARED_CODE
from sr_core.simulate.core import plan_acquisitions
from sr_core.simulate.landscape import generate_landscape

LAYERS = ("bands", "cloud_prob", "cloud_mask", "is_data", "scl", "cultivated", "not_declared", "all_polys")


@pytest.fixture(scope="module")
def p32():
    return simulate_patch(11, size=32, split="train", region="pomurje")


def test_same_seed_same_arrays(p32):
    again = simulate_patch(11, size=32, split="train", region="pomurje")
    for name in LAYERS:
        np.testing.assert_array_equal(getattr(p32, name), getattr(again, name), err_msg=name)
    assert p32.timestamps == again.timestamps and p32.bbox == again.bbox
    assert dict(p32.info.meta) == dict(again.info.meta)


def test_split_changes_the_stream(p32):
    other = simulate_patch(11, size=32, split="test", region="pomurje")
    assert not np.array_equal(p32.all_polys, other.all_polys)
    assert p32.timestamps != other.timestamps or not np.array_equal(p32.bands, other.bands)
    assert other.info.meta["seed_entropy"] == [11, SPLIT_IDS["test"]]
    assert p32.info.meta["seed_entropy"] == [11, SPLIT_IDS["train"]]


def test_patch_is_a_simulated_l2a_patch_with_every_layer(p32):
    assert p32.info.source is Source.SIMULATED and p32.is_simulated
    assert p32.info.product_level.value == "L2A"
    assert set(p32.features_present()) == set(LAYERS)
    assert p32.bands.dtype == np.float32 and p32.bands.shape[1:] == (32, 32, 12)
    assert p32.label_shape == (128, 128)
    meta = p32.info.meta
    assert meta["source"] == "simulated" and meta["seed"] == 11 and meta["split"] == "train" and meta["region"] == "pomurje"
    # reflectance stored at the benchmark's digital-number resolution (1e-4) and in a physical range
    assert np.allclose(p32.bands * 1e4, np.round(p32.bands * 1e4), atol=2e-3)
    assert float(p32.bands.min()) >= 0.0 and float(p32.bands.max()) <= 1.6


def test_bad_arguments_name_the_fix():
    from sr_core.errors import ConfigError

    with pytest.raises(ConfigError, match="split"):
        simulate_patch(0, size=16, split="validation")
    with pytest.raises(ConfigError, match="region"):
        simulate_patch(0, size=16, region="atlantis")
    with pytest.raises(ConfigError, match="size"):
        simulate_patch(0, size=4)


def test_written_patch_loads_back_as_simulated(p32, tmp_path):
    from sr_core.io import load_eopatch, write_eopatch

    path = write_eopatch(p32, tmp_path / "eopatch-01")
    back = load_eopatch(path)
    assert back.is_simulated and back.info.meta["seed"] == 11
    assert set(back.features_present()) == set(LAYERS)
    np.testing.assert_allclose(back.bands, p32.bands, atol=1e-6)
    for name in LAYERS[2:]:
        np.testing.assert_array_equal(getattr(back, name), getattr(p32, name), err_msg=name)
    np.testing.assert_allclose(back.cloud_prob, p32.cloud_prob, atol=1 / 255 / 2 + 1e-6)
    assert back.bbox == p32.bbox and back.timestamps == p32.timestamps


# -- labels ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def land():
    plan = plan_acquisitions(5, 96, "train", "ljubljana_basin")
    return generate_landscape(plan.rngs[0], 96, plan.region)


def test_touching_polygons_are_split_by_gaps(land):
    poly = land.poly
    for a, b in ((poly[:, 1:], poly[:, :-1]), (poly[1:, :], poly[:-1, :]), (poly[1:, 1:], poly[:-1, :-1]),
                 (poly[1:, :-1], poly[:-1, 1:])):
        both = (a > 0) & (b > 0)
        assert np.all(a[both] == b[both]), "two polygons touch without a gap"
    assert len(np.unique(poly)) > 20  # a real layout, not one field


def test_buffer_gaps_are_thin(land):
    """Pixels of polygons lost to the −2.5 m buffer lie within 2 px of the polygon's kept interior or a neighbour's."""
    codes = np.array([CLASSES[k].code for k in land.class_keys()])
    in_polygon = codes[land.seg] > 0
    gap = (in_polygon & (land.poly == 0))[4:-4, 4:-4]  # away from the patch edge, where polygons are cut off
    dist = ndimage.distance_transform_edt(land.poly == 0)[4:-4, 4:-4]
    assert gap.any()
    assert np.mean(dist[gap] <= 2.0) > 0.9


def test_label_codes_follow_the_cultivated_mapping(p32, land):
    for ap, cult, nd in ((p32.all_polys, p32.cultivated, p32.not_declared), (land.all_polys, land.cultivated, land.not_declared)):
        assert np.array_equal(cult, np.isin(ap, list(CULTIVATED_CODES)))
        assert np.array_equal(nd, ap == NOT_DECLARED_CODE)
        assert not np.any(cult & nd)
        used = set(np.unique(ap).tolist()) - {0}
        assert used <= CULTIVATED_CODES | NOT_CULTIVATED_CODES | {NOT_DECLARED_CODE}
    assert land.cultivated.any() and (~land.cultivated).any()


def test_class_codes_match_the_challenge_metadata():
    folder = need(CHALLENGE_META)
    mapping = json.loads((folder / "cultivated-mapping.json").read_text())
    names = json.loads((folder / "label-names.json").read_text())
    assert set(mapping["1"]) == CULTIVATED_CODES
    assert set(mapping["0"]) == NOT_CULTIVATED_CODES
    assert mapping["2"] == NOT_DECLARED_CODE
    for key, cls in CLASSES.items():
        assert cls.code == 0 or str(cls.code) in names, key


# -- frames, placement, clouds -----------------------------------------------------------------------------------
def test_full_season_frame_counts_stay_in_the_benchmark_range(p32):
    counts = [plan_acquisitions(s, 500, "test").kept.size for s in range(40)]
    assert min(counts) >= 19 and max(counts) <= 48
    ts = p32.timestamps
    assert 19 <= len(ts) <= 48
    assert ts[0] >= datetime(2019, 3, 1) and ts[-1] <= datetime(2019, 9, 1, 23, 59)
    gaps = np.diff([t.timestamp() for t in ts])
    assert np.all(gaps >= 2 * 3600)  # frames closer than 2 h would have been merged


def test_bbox_on_the_5km_grid_inside_slovenia():
    shapely = pytest.importorskip("shapely")
    from shapely.geometry import box, shape

    for s in range(12):
        b = plan_acquisitions(s, 500, "train").bbox
        assert b.epsg == 32633 and b.width == 5000 and b.height == 5000
        assert b.min_x % 5000 == 0 and b.min_y % 5000 == 0
    small = patch_bbox(REGIONS["krsko"], 0, 64)
    assert small.min_x % 5000 == 0 and small.min_y % 5000 == 0 and small.width == 640
    border = need(CHALLENGE_META / "svn-border.geojson")
    svn = shape(json.loads(border.read_text())["features"][0]["geometry"])
    assert shapely.__version__
    for region in REGIONS.values():
        for x0, y0 in region.cells:
            assert svn.contains(box(x0, y0, x0 + 5000, y0 + 5000)), (region.key, x0, y0)


def test_cloud_products_agree_with_the_clouds():
    p = simulate_patch(4, size=48, split="test", region="savinja")
    clm, clp, scl, data = p.cloud_mask, p.cloud_prob, p.scl, p.is_data
    assert clm.any() and (~clm).any()
    # s2cloudless-like: confident probabilities are masked (the 4-px averaging may free an isolated pixel, as in
    # the real series); SCL cloud classes sit under the mask
    assert clm[(clp > 0.6) & data].mean() > 0.98
    assert clm[(clp < 0.05) & data].mean() < 0.5
    cloudy_scl = np.isin(scl, (8, 9))
    assert cloudy_scl.any() and clm[cloudy_scl].mean() > 0.95
    # clouds are bright: masked pixels are brighter in blue than clear ones
    assert p.bands[..., 1][clm].mean() > p.bands[..., 1][~clm & data].mean() + 0.05
    # no-data pixels carry no signal and no class
    nd = ~data
    assert not np.any(clm[nd]) and np.all(scl[nd] == 0) and np.all(p.bands[nd] == 0)
    assert np.all(scl[data] > 0)


def test_soil_is_wetter_in_early_spring_than_in_summer_without_drawing_more_random_numbers():
    """Simulator 2.8: soil wetness carries a seasonal term (recharged in March, dry in July), so bare soil reads darker
    in the SWIR in spring; the weather draws exactly what it drew before (one latent start, 200 daily steps, one
    jitter per date), so every later draw of a patch is unchanged."""
    from sr_core.simulate import clouds as cl

    march = [datetime(2019, 3, d) for d in range(2, 31, 2)]
    july = [datetime(2019, 7, d) for d in range(2, 31, 2)]
    wm, wj = [], []
    for s in range(60):
        rng = np.random.default_rng(s)
        w = cl.draw_weather(rng, march + july)
        wm.append(w.wetness[: len(march)])
        wj.append(w.wetness[len(march):])
        ref = np.random.default_rng(s)
        ref.standard_normal(), ref.standard_normal(200), ref.normal(0, 0.25, len(march) + len(july))
        assert rng.random() == ref.random()
    wm, wj = np.concatenate(wm), np.concatenate(wj)
    assert wm.mean() > wj.mean() + 0.3
    assert (wm == 0).mean() < 0.05 < 0.25 < (wj == 0).mean()  # a dry July soil is often at its driest
    assert np.all((wm >= 0) & (wm <= 1) & (wj >= 0) & (wj <= 1))


def test_winter_cereals_ripen_over_weeks_drawing_the_same_random_numbers():
    """Simulator 2.9: a winter cereal's green cover falls from 90 % to 15 % of its peak over about 20–32 days (the
    linear senescence of 25–40 days; 2.8's 15–25 gave 12–20), so July composites keep some green as the European
    points do; the draw sequence is 2.8's (only a uniform's bounds changed)."""
    from sr_core.simulate import phenology as ph

    d = np.arange(0, 200, dtype=np.float64)[None, :]
    rng = np.random.default_rng(3)
    green = ph._winter_cereal(d, rng, 400).green
    peak = green.max(axis=1, keepdims=True)
    after = np.where(np.arange(200)[None, :] >= np.argmax(green, axis=1)[:, None], green, peak)  # from the peak on
    start, end = np.argmax(after < 0.9 * peak, axis=1), np.argmax(after < 0.15 * peak, axis=1)
    ripening = end - start
    assert ripening.min() >= 19 and ripening.max() <= 33 and 23 <= np.median(ripening) <= 29, ripening
    ref = np.random.default_rng(3)
    ph._crop(d, ref, 400, g0=(0.02, 0.18), mid=(36, 56), width=(8, 12), peak=(0.82, 0.96), sen=(103, 117),
             sen_len=(15, 25), harvest_after=(3, 10), residue=(0.4, 0.75))
    assert rng.random() == ref.random()
