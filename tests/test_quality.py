"""Product level (L1C / L2A) from metadata and reflectance, and plain warnings about degenerate series."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

import numpy as np
import pytest
from conftest import REAL_CHALLENGE, REAL_L1C, need

from sr_core import BBox, Patch, PatchInfo, ProductLevel
from sr_core.bands import band_index
from sr_core.io import load_eopatch, write_eopatch
from sr_core.quality import L1C_WARNING, detect_product_level, level_from_meta, reflectance_level, series_warnings

#: Typical L2A surface reflectance of dense summer vegetation (B01 … B12 without B10).
VEG_L2A = np.array([0.02, 0.025, 0.05, 0.03, 0.08, 0.25, 0.32, 0.35, 0.37, 0.37, 0.18, 0.08], np.float32)
#: ... and of thick cloud (bright, flat spectrum, NDVI ≈ 0).
CLOUD = np.array([0.45, 0.45, 0.44, 0.44, 0.45, 0.46, 0.47, 0.47, 0.47, 0.3, 0.35, 0.25], np.float32)


def make_series(dates, *, cloudy=(), no_data=(), level="L2A", masks=True, size=12, seed=0):
    """A small vegetated patch with the given dates; ``cloudy`` frames covered by cloud, ``no_data`` frames empty."""
    rng = np.random.default_rng(seed)
    T = len(dates)
    bands = np.empty((T, size, size, 12), np.float32)
    cloud = np.zeros((T, size, size), bool)
    is_data = np.ones((T, size, size), bool)
    for t in range(T):
        spec = CLOUD if t in cloudy else VEG_L2A
        bands[t] = spec * rng.uniform(0.9, 1.1, (size, size, 1))
        cloud[t] = t in cloudy
        if t in no_data:
            bands[t] = 0
            is_data[t] = False
    return Patch(bands=bands, timestamps=list(dates), bbox=BBox(500000.0, 5100000.0, 500000.0 + 10 * size, 5100000.0 + 10 * size),
                 cloud_mask=cloud if masks else None, is_data=is_data, info=PatchInfo(product_level=level))


SEASON = [datetime(2019, m, d) for m, d in ((3, 10), (4, 12), (5, 20), (6, 15), (7, 10), (8, 5))]


def l2a_counterpart(patch: Patch) -> Patch:
    """The L1C patch with its atmosphere removed the way dark-object subtraction does it: per band, the darkest
    dense-vegetation value minus a typical forest surface reflectance is taken as path radiance and subtracted."""
    bands = patch.bands.copy()
    ndvi = patch.ndvi()
    sel = (ndvi > 0.5) & patch.valid_mask()
    forest = {"B01": 0.015, "B02": 0.02, "B03": 0.035, "B04": 0.015, "B05": 0.045}
    for name, surface in forest.items():
        i = band_index(name)
        path = float(np.percentile(bands[..., i][sel], 1)) - surface
        bands[..., i] = np.clip(bands[..., i] - path, 0, None)
    return patch.replace(bands=bands, info=PatchInfo(product_level="L2A"))


# -- product level -----------------------------------------------------------------------------------------------------
@pytest.mark.real_data
def test_real_l1c_is_told_from_its_l2a_counterpart():
    l1c = load_eopatch(need(REAL_L1C))
    level, why = reflectance_level(l1c.bands, l1c.valid_mask())
    assert level is ProductLevel.L1C and "B01 = 0.100" in why and "B02 = 0.070" in why
    level2, why2 = reflectance_level(l2a_counterpart(l1c).bands, l1c.valid_mask())
    assert level2 is ProductLevel.L2A, why2
    # without masks too: cloudy frames have no dense vegetation, so they do not disturb the statistic
    assert reflectance_level(l1c.bands)[0] is ProductLevel.L1C


@pytest.mark.real_data
def test_challenge_layout_fixture_is_detected_as_l1c_by_the_loader():
    p = load_eopatch(need(REAL_CHALLENGE))  # meta_info says nothing about the level
    assert p.info.product_level is ProductLevel.L1C
    assert any(n.startswith("product level L1C detected from reflectance") for n in p.info.notes)
    assert L1C_WARNING in series_warnings(p)


@pytest.mark.real_data
def test_detect_product_level_prefers_metadata(tmp_path):
    p = load_eopatch(need(REAL_CHALLENGE))
    level, why = detect_product_level(p)
    assert level is ProductLevel.L1C and "reflectance" in why
    stated = p.replace(info=PatchInfo(product_level="L2A", meta={"data_collection": "SENTINEL2_L2A"}))
    level, why = detect_product_level(stated)
    assert level is ProductLevel.L2A and "SENTINEL2_L2A" in why
    # the loader: an explicit but contradicted product_level is kept, with a note on the contradiction
    back = load_eopatch(write_eopatch(stated, tmp_path / "p"))
    assert back.info.product_level is ProductLevel.L2A
    assert any("meta_info says L2A but the reflectance looks L1C" in n for n in back.info.notes)


def test_level_from_meta_tokens():
    assert level_from_meta({"product_level": "L1C"})[0] is ProductLevel.L1C
    assert level_from_meta({"data_collection": "DataCollection.SENTINEL2_L1C"})[0] is ProductLevel.L1C
    assert level_from_meta({"layer": "BANDS-S2-L2A"})[0] is ProductLevel.L2A
    assert level_from_meta({"Data_Collection": {"api_id": "sentinel-2-l2a"}})[0] is ProductLevel.L2A
    assert level_from_meta({"service_type": "wcs", "maxcc": 0.8})[0] is None
    level, why = level_from_meta({"layer": "BANDS-S2-L1C", "data_collection": "SENTINEL2_L2A"})
    assert level is None and "both" in why


def test_loader_uses_a_collection_token_and_falls_back_to_l2a_when_statistics_cannot_tell(tmp_path):
    cloudy = make_series(SEASON[:2], cloudy={0, 1})
    # all frames cloud: no dense vegetation to read the path radiance from
    level, why = reflectance_level(cloudy.bands, None)
    assert level is ProductLevel.UNKNOWN and "inconclusive" in why
    folder = write_eopatch(cloudy, tmp_path / "cloudy")
    (folder / "meta_info" / "product_level.json").unlink()
    p = load_eopatch(folder)
    assert p.info.product_level is ProductLevel.L2A and any("L2A assumed" in n and "inconclusive" in n for n in p.info.notes)
    (folder / "meta_info" / "data_collection.json").write_text('"SENTINEL2_L1C"')
    p = load_eopatch(folder)
    assert p.info.product_level is ProductLevel.L1C and any("SENTINEL2_L1C" in n for n in p.info.notes)


def test_vegetation_l2a_is_detected_as_l2a():
    level, why = reflectance_level(make_series(SEASON[:3]).bands)
    assert level is ProductLevel.L2A, why


def test_a_simulated_patch_with_the_l1c_look_is_detected_as_l1c(tmp_path):
    """The statistics on a simulated patch rather than a hand-made spectrum: the clean L2A series reads L2A, the same
    series with the project's own L1C look (path radiance, +3 % gain) reads L1C, from the bands alone and through the
    loader when meta_info does not state the level. Measured (seed 1, 48 px): clean B01 / B02 = 0.004 / 0.005, L1C
    look 0.081 / 0.054 (L1C from 0.07 / 0.05)."""
    from sr_core.evaluation import perturb_patch
    from sr_core.simulate import simulate_patch

    clean = simulate_patch(1, size=48, split="test")
    l1c = perturb_patch(clean, "l1c", np.random.default_rng(0))
    level, why = reflectance_level(clean.bands, clean.valid_mask())
    assert level is ProductLevel.L2A, why
    level, why = reflectance_level(l1c.bands, l1c.valid_mask())
    assert level is ProductLevel.L1C, why
    for name, patch, want in (("clean", clean, ProductLevel.L2A), ("l1c", l1c, ProductLevel.L1C)):
        folder = write_eopatch(patch, tmp_path / name)
        (folder / "meta_info" / "product_level.json").unlink()  # the writer records the level; let the bands speak
        p = load_eopatch(folder)
        assert p.info.product_level is want, p.info.notes
        assert any(n.startswith(f"product level {want.value} detected from reflectance") for n in p.info.notes)


# -- series warnings ---------------------------------------------------------------------------------------------------
def test_a_good_series_has_no_warnings():
    assert series_warnings(make_series(SEASON, size=64)) == []


def test_a_small_patch_is_warned_about():
    """A 37 × 53 px cut of Flanders scores 0.05 below the same ground cut from the whole patch's map: the network's
    context reaches past a small patch's edges. Below 64 px a side, the warnings say so."""
    w = [x for x in series_warnings(make_series(SEASON, size=40)) if x.startswith("a small patch")]
    assert w and "(40 × 40 px at 10 m)" in w[0] and "extract at least 64 px" in w[0]
    assert not [x for x in series_warnings(make_series(SEASON, size=64)) if x.startswith("a small patch")]


def test_single_date():
    w = series_warnings(make_series(SEASON[:1]))
    assert any(x.startswith("1 usable date: expect weak skill (") for x in w) and any("single date (T = 1)" in x for x in w)


def test_all_frames_cloudy():
    w = series_warnings(make_series(SEASON[:4], cloudy={0, 1, 2, 3}))
    assert any(x.startswith("no usable date") for x in w)
    assert any("all 4 frames with data are mostly cloudy" in x for x in w)


def test_some_frames_cloudy_or_without_data():
    w = series_warnings(make_series(SEASON, cloudy={1}, no_data={4, 5}))
    assert any("3 usable dates of 6" in x for x in w)
    assert any(x.startswith("1 of 6 frames are mostly cloudy: 2019-04-12") for x in w)
    assert any(x.startswith("2 of 6 frames hold no data") and "2019-07-10, 2019-08-05" in x for x in w)
    empty = series_warnings(make_series(SEASON[:2], no_data={0, 1}))
    assert any("no frame holds any data" in x for x in empty) and any(x.startswith("no usable date") for x in empty)


def test_dates_out_of_season():
    dates = [datetime(2019, 1, 10), *SEASON[:4], datetime(2019, 11, 2)]
    w = series_warnings(make_series(dates))
    assert any(x.startswith("2 of 6 dates fall outside the March–September growing season: 2019-01-10, 2019-11-02")
               for x in w)
    winter = series_warnings(make_series([datetime(2019, 12, 1), datetime(2020, 1, 5)]))
    assert any(x.startswith("no date falls in the March–September growing season") for x in winter)


def test_l1c_unknown_level_and_missing_cloud_layer():
    assert L1C_WARNING in series_warnings(make_series(SEASON, level="L1C"))
    assert any("product level unknown" in x for x in series_warnings(make_series(SEASON, level="unknown")))
    w = series_warnings(make_series(SEASON, masks=False))
    assert any(x.startswith("no cloud layer (CLM, CLP or SCL): every pixel is taken as clear") for x in w)


def test_predictions_repeat_the_series_warnings_without_the_cloudy_frame_list():
    """One wording for info / Upload and predictions; a partly cloudy series is normal, so predictions skip that list."""
    from sr_core.features import series_report

    p = make_series(SEASON, cloudy={1}, level="L1C")
    full = series_warnings(p)
    report = series_report(p).warnings
    assert L1C_WARNING in report and report.count(L1C_WARNING) == 1
    assert [w for w in full if not w.startswith("1 of 6 frames are mostly cloudy")] == list(report)
    allcloud = series_report(make_series(SEASON[:4], cloudy={0, 1, 2, 3})).warnings
    assert any("all 4 frames with data are mostly cloudy" in w for w in allcloud)


# -- the band grid ---------------------------------------------------------------------------------------------------
def _regrid(patch: Patch, epsg: int, dx: float, dy: float, x0: float = 14.5, y0: float = 46.0) -> Patch:
    return patch.replace(bbox=BBox(x0, y0, x0 + dx * patch.width, y0 + dy * patch.height, epsg))


def test_grid_of_10_m_is_quiet_and_other_grids_are_named():
    from sr_core.quality import grid_warning, ground_pixel_size, is_geographic

    p = make_series([datetime(2019, 5, 1)], size=12)
    assert grid_warning(p) is None and ground_pixel_size(p) == (10.0, 10.0, False)
    w = grid_warning(_regrid(p, 32633, 20.0, 20.0, 500000.0, 5100000.0))
    assert w is not None and "20.0 × 20.0 m (EPSG:32633)" in w and "output is 5 m" in w
    assert w in series_warnings(_regrid(p, 32633, 20.0, 20.0, 500000.0, 5100000.0))
    # a latitude / longitude grid of about 10 m at 46° N (as Sentinel Hub delivers for a WGS 84 box): measured on the
    # ground, not in degrees, and quiet
    assert is_geographic(4326) and not is_geographic(32633)
    dlon, dlat = 10 / 77389.0, 10 / 111150.0  # metres per degree at 46° N: 77 389 (longitude), 111 150 (latitude)
    gx, gy, geo = ground_pixel_size(_regrid(p, 4326, dlon, dlat))
    assert geo and gx == pytest.approx(10.0, rel=0.003) and gy == pytest.approx(10.0, rel=0.003)
    assert grid_warning(_regrid(p, 4326, dlon, dlat)) is None
    w60 = grid_warning(_regrid(p, 4326, 6 * dlon, 6 * dlat))
    assert w60 is not None and "is in degrees" in w60 and re.search(r"60\.\d × 60\.\d m", w60)


def test_the_single_date_warning_states_what_one_real_date_is_worth():
    """SINGLE_DATE_FACT quotes the bundled model on the real Flanders patch date by date; this keeps it true (a new
    model must update the sentence)."""
    from conftest import REAL

    from sr_core.inference import get_model, predict
    from sr_core.metrics import evaluate_patch
    from sr_core.prepare import prepare_input
    from sr_core.quality import SINGLE_DATE_FACT

    p = prepare_input(load_eopatch(need(REAL / "flanders-2019-fields-lpis")), season=2019)
    net = get_model(None, "cpu")
    clear = np.flatnonzero(p.valid_mask().reshape(p.n_dates, -1).mean(axis=1) > 0.95)
    scores = [evaluate_patch(q, predict(q, device="cpu", model=net)).wmcc for q in (p.select_dates([t]) for t in clear)]
    assert len(scores) == 14
    assert f"median weighted MCC of {np.median(scores):.2f}" in SINGLE_DATE_FACT
    assert f"{min(scores):.2f}–{max(scores):.2f} by date" in SINGLE_DATE_FACT
    one = [w for w in series_warnings(p.select_dates([int(clear[0])])) if w.startswith("1 usable date")]
    assert one == [f"1 usable date: expect weak skill ({SINGLE_DATE_FACT})"]


def test_the_few_dates_warnings_state_what_few_real_dates_are_worth():
    """FEW_DATES_FACT and LATE_SEASON_FACT quote the bundled model on the real Flanders patch: 12 random sets of k
    clear dates for each k (numpy seed 0, drawn for k = 1, 2, 3, 5, 8 in turn, as the probe in docs/EVALUATION.md
    did), all 72 ways to take one clear date a month from March to August, and the season cut at the end of June."""
    import itertools

    from conftest import REAL

    from sr_core.inference import get_model, predict
    from sr_core.metrics import evaluate_patch
    from sr_core.prepare import prepare_input
    from sr_core.quality import FEW_DATES_FACT, LATE_SEASON_FACT

    p = prepare_input(load_eopatch(need(REAL / "flanders-2019-fields-lpis")), season=2019)
    net = get_model(None, "cpu")

    def score(idx) -> float:
        q = p.select_dates(sorted(int(i) for i in idx))
        return evaluate_patch(q, predict(q, device="cpu", model=net)).wmcc

    clear = np.flatnonzero(p.valid_mask().reshape(p.n_dates, -1).mean(axis=1) > 0.95)
    rng = np.random.default_rng(0)
    medians = {}
    for k in (1, 2, 3, 5, 8):
        sets = [rng.choice(clear, k, replace=False) for _ in range(12)]
        if k >= 3:
            medians[k] = float(np.median([score(s) for s in sets]))
    by_month: dict[int, list[int]] = {}
    for t in clear:
        by_month.setdefault(p.timestamps[t].month, []).append(int(t))
    assert sorted(by_month) == [3, 4, 5, 6, 7, 8]
    monthly = float(np.median([score(c) for c in itertools.product(*by_month.values())]))
    assert f"{medians[3]:.2f}, {medians[5]:.2f} and {medians[8]:.2f}" in FEW_DATES_FACT
    assert f"one clear date a month from March to August {monthly:.2f}" in FEW_DATES_FACT
    assert medians[3] < medians[5] < medians[8] and monthly > medians[5]  # spread counts more than number
    w = series_warnings(p.select_dates(clear[:3]))
    assert any(x.startswith("3 usable dates of 3: expect reduced skill") and FEW_DATES_FACT in x for x in w)

    early = [t for t in range(p.n_dates) if p.timestamps[t].month < 7]
    assert len(early) == 18 and f"up to June score a weighted MCC of {score(early):.2f}" in LATE_SEASON_FACT
    assert f"no usable date from July on: {LATE_SEASON_FACT}" in series_warnings(p.select_dates(early))
    assert not any(x.startswith("no usable date from July") for x in series_warnings(p))


def test_a_cube_in_another_band_order_is_warned_about():
    """A 12-band cube exported in another order (bands sorted by file name put B8A last; a cube shifted by one band)
    is read as the challenge order without a sign but a wrong map (Flanders: model 0.54, NDVI −0.09). The medians
    of the clear land say so; the challenge order, and the 10 m bands with the rest filled, do not."""
    from sr_core.bands import BAND_NAMES
    from sr_core.prepare import prepare_input
    from sr_core.quality import band_order_warning, series_warnings
    from sr_core.simulate import simulate_patch

    p = simulate_patch(2, size=40, split="test")
    assert band_order_warning(prepare_input(p)) is None
    by_name = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B11", "B12", "B8A"]  # sorted file names
    sorted_cube = p.replace(bands=p.bands[..., [BAND_NAMES.index(b) for b in by_name]])
    w = band_order_warning(prepare_input(sorted_cube))
    assert w is not None and "B12 (" in w and "above B11" in w and "meta_info/bands.json" in w
    assert w in series_warnings(prepare_input(sorted_cube))
    # the ten bands a Sen2Cor export delivers (no B01, B09) in order, padded to twelve with two empty ones
    ten = [BAND_NAMES.index(b) for b in BAND_NAMES if b not in ("B01", "B09")]
    shifted = p.replace(bands=np.concatenate([p.bands[..., ten], np.zeros_like(p.bands[..., :2])], axis=-1))
    assert "B8A / B08" in band_order_warning(prepare_input(shifted))
    ten_m = p.bands.copy()
    ten_m[..., [i for i, b in enumerate(BAND_NAMES) if b not in ("B02", "B03", "B04", "B08")]] = 0
    assert band_order_warning(prepare_input(p.replace(bands=ten_m))) is None  # filled bands are not judged
    # before the input path fills them (the Upload page's report, `info`): an absent B08 is no division by zero,
    # and bands the cube's stated layout lacks are not judged
    no_b08 = p.bands.copy()
    no_b08[..., BAND_NAMES.index("B08")] = 0
    assert band_order_warning(p.replace(bands=no_b08)) is None
    no_b11 = p.bands.copy()
    no_b11[..., BAND_NAMES.index("B11")] = 0
    stated = p.replace(bands=no_b11, info=dataclasses.replace(p.info, meta={**p.info.meta, "band_layout": {
        "stated": [b for b in BAND_NAMES if b != "B11"], "absent": ["B11"]}}))
    assert band_order_warning(stated) is None
