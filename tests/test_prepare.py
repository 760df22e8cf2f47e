"""Inputs as real products come (issue 16, part 1): SCL as cloud source, missing bands, growing-season choice, any
UTM zone, and the real Flanders patch through the same input path (skipped when ../shared/data is absent)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest
import torch

from sr_core import BBox, Patch
from sr_core.bands import BAND_NAMES
from sr_core.errors import PatchValidationError
from sr_core.patch import SCL_UNUSABLE, PatchInfo
from sr_core.prepare import (
    SCL_NOTE,
    choose_season,
    fill_bands,
    input_record,
    input_warnings,
    missing_bands,
    prepare_input,
    season_is_complete,
    season_window,
)  # fmt: skip
from tests.conftest import REAL, need

torch.set_num_threads(1)

FLANDERS = REAL / "flanders-2019-fields-lpis"
B = {name: i for i, name in enumerate(BAND_NAMES)}


def _series(start: datetime, end: datetime, step: int = 10) -> list[datetime]:
    out, t = [], start
    while t <= end:
        out.append(t)
        t += timedelta(days=step)
    return out


#: A series as real extractions come: Aug 2018 – Nov 2019, every 10 days (the 2018 season is incomplete).
LONG = _series(datetime(2018, 8, 4, 10, 30), datetime(2019, 11, 27, 10, 30))
#: As the challenge ships it: every date inside 2019-03-01 … 2019-09-01.
CHALLENGE = _series(datetime(2019, 3, 4, 10), datetime(2019, 8, 30, 10), 12)


def _patch(ts=CHALLENGE, H: int = 6, W: int = 6, *, epsg: int = 32633, seed: int = 0, labels: bool = False,
           **layers) -> Patch:
    rng = np.random.default_rng(seed)
    T = len(ts)
    x0, y0 = (574680.0, 5621800.0) if epsg == 32631 else (540000.0, 5120000.0)
    bands = layers.pop("bands", None)
    if bands is None:
        bands = rng.uniform(0.02, 0.4, (T, H, W, 12)).astype(np.float32)
    if labels:
        truth = np.zeros((4 * H, 4 * W), bool)
        truth[: 2 * H] = True
        layers.update(cultivated=truth, not_declared=np.zeros_like(truth))
    return Patch(bands=bands, timestamps=ts, bbox=BBox(x0, y0, x0 + 10 * W, y0 + 10 * H, epsg),
                 info=PatchInfo(name=f"p{seed}"), **layers)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from sr_core.model import SRNet, SRNetConfig, save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(SRNet(SRNetConfig.preset("tiny")), tmp_path_factory.mktemp("m") / "tiny.pt", threshold=0.5)


# -- SCL as the cloud source ----------------------------------------------------------------------------------------------
def test_the_unusable_scl_classes_are_the_sen2cor_ones():
    assert set(SCL_UNUSABLE) == {0, 1, 3, 8, 9, 10, 11}


@pytest.mark.parametrize("cls", range(12))
def test_each_scl_class_is_valid_or_not(cls):
    T, H, W = len(CHALLENGE), 4, 5
    p = _patch(scl=np.full((T, H, W), cls, np.uint8), H=H, W=W)
    assert p.cloud_source == "SCL"
    unusable = cls in (0, 1, 3, 8, 9, 10, 11)
    assert not p.valid_mask().any() if unusable else p.valid_mask().all()
    assert np.allclose(p.cloud_fraction(), 1.0 if unusable else 0.0)


def test_scl_masks_pixel_by_pixel_and_no_data_still_counts():
    T, H, W = len(CHALLENGE), 6, 6
    rng = np.random.default_rng(3)
    scl = rng.integers(0, 12, (T, H, W)).astype(np.uint8)
    is_data = rng.uniform(0, 1, (T, H, W)) > 0.2
    p = _patch(scl=scl, is_data=is_data)
    assert np.array_equal(p.valid_mask(), is_data & ~np.isin(scl, [0, 1, 3, 8, 9, 10, 11]))
    assert p.valid_mask()[scl == 4].any() and p.valid_mask()[scl == 5].any()


def test_clm_beats_clp_beats_scl():
    T, H, W = len(CHALLENGE), 6, 6
    scl_cloud = np.full((T, H, W), 9, np.uint8)  # SCL: cloud everywhere
    clp_clear = np.full((T, H, W), 0.1, np.float32)
    clp_cloud = np.full((T, H, W), 0.9, np.float32)
    clm_clear = np.zeros((T, H, W), bool)
    only_scl = _patch(scl=scl_cloud)
    with_clp = _patch(scl=scl_cloud, cloud_prob=clp_clear)
    with_clm = _patch(scl=scl_cloud, cloud_prob=clp_cloud, cloud_mask=clm_clear)
    bare = _patch()
    assert [p.cloud_source for p in (only_scl, with_clp, with_clm, bare)] == ["SCL", "CLP", "CLM", None]
    assert not only_scl.valid_mask().any()
    assert with_clp.valid_mask().all()  # CLP says clear: SCL is not consulted
    assert with_clm.valid_mask().all()  # CLM says clear: neither CLP nor SCL is consulted
    assert bare.valid_mask().all()  # no cloud layer: every pixel taken as clear
    assert input_record(prepare_input(only_scl))["cloud_source"] == "SCL"
    agreeing = _patch(scl=np.full((T, H, W), 4, np.uint8), cloud_prob=clp_clear)  # SCL: vegetation; CLP: clear
    assert input_record(prepare_input(agreeing))["cloud_source"] == "CLP"
    assert input_record(prepare_input(bare))["cloud_source"] == "none"
    # CLP clear where SCL sees cloud on every pixel: the layers contradict each other, and SCL is the evidence
    rec = input_record(prepare_input(with_clp))
    assert rec["cloud_source"] == "SCL" and "finds only 0%" in rec["cloud_layer_ignored"]


def _scl_scene(T: int, H: int, W: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """SCL with clouds (class 9) on a fifth of the pixel-dates, vegetation (4) elsewhere, and the cloud mask that
    agrees with it."""
    cloud = np.random.default_rng(seed).uniform(size=(T, H, W)) < 0.2
    return np.where(cloud, 9, 4).astype(np.uint8), cloud


def test_a_cloud_layer_that_contradicts_scl_is_not_used_and_says_why():
    """A CLM written with 1 = clear (the model painted 4 % of Flanders cultivated, silently) and a CLP stored as a
    percentage 0–100 read as 0–255 (no cloud ever reaches 0.4) contradict the Sen2Cor SCL beside them: the input
    path takes the clouds from SCL and warns; a layer that agrees with SCL (a few disagreements) is kept."""
    T, H, W = len(CHALLENGE), 12, 12
    scl, cloud = _scl_scene(T, H, W)
    inverted = prepare_input(_patch(H=H, W=W, scl=scl, cloud_mask=~cloud))
    rec = input_record(inverted)
    assert rec["cloud_source"] == "SCL" and inverted.cloud_mask is None
    np.testing.assert_array_equal(inverted.valid_mask(), ~cloud)
    warned = [w for w in input_warnings(inverted) if "contradicts its Sen2Cor SCL" in w]
    assert warned and "mask/CLM flags 100% of the pixels SCL calls clear" in warned[0] and "inverted" in warned[0]
    percent = np.where(cloud, 90, 5).astype(np.float32) / 255  # 90 % cloud, read on the 0–255 scale
    rec = input_record(prepare_input(_patch(H=H, W=W, scl=scl, cloud_prob=percent)))
    assert rec["cloud_source"] == "SCL" and "data/CLP (> 0.4) finds only 0%" in rec["cloud_layer_ignored"]
    noisy = cloud.copy()
    noisy[:, :2] = ~noisy[:, :2]  # a sixth of the pixels disagree: a real s2cloudless mask against Sen2Cor
    kept = prepare_input(_patch(H=H, W=W, scl=scl, cloud_mask=noisy))
    assert input_record(kept)["cloud_source"] == "CLM" and input_record(kept)["cloud_layer_ignored"] is None
    assert not [w for w in input_warnings(kept) if "contradicts" in w]
    # haze Sen2Cor calls land: the mask flags 60 % of SCL's land as cloud, but finds SCL's own clouds too: kept
    hazy = cloud | (np.random.default_rng(1).uniform(size=cloud.shape) < 0.6)
    assert input_record(prepare_input(_patch(H=H, W=W, scl=scl, cloud_mask=hazy)))["cloud_source"] == "CLM"


def test_a_saved_input_record_is_not_trusted_over_a_cloud_layer_that_contradicts_scl(tmp_path):
    """A patch prepared and saved before the check existed (its record has no cloud_layer_ignored), or a forged
    record: the input path would skip preparing it and use the inverted CLM. The reader refuses such a record."""
    from sr_core.io import load_eopatch, write_eopatch

    T, H, W = len(CHALLENGE), 12, 12
    scl, cloud = _scl_scene(T, H, W)
    good = prepare_input(_patch(H=H, W=W, scl=scl, cloud_mask=cloud))
    folder = write_eopatch(good, tmp_path / "saved")
    back = load_eopatch(folder)
    assert input_record(back) is not None and input_record(back)["cloud_source"] == "CLM"  # a sound record stands
    np.save(folder / "mask" / "CLM.npy", (~cloud)[..., None].astype(np.uint8))  # the mask replaced, inverted
    (folder / "mask" / "CLM.npy.gz").unlink()
    again = load_eopatch(folder)
    assert any("meta_info input ignored" in n and "contradicts" in n for n in again.info.notes)
    rec = input_record(prepare_input(again))
    assert rec["cloud_source"] == "SCL" and rec["cloud_layer_ignored"]


def test_a_percentage_clp_without_scl_is_warned_about():
    """Without SCL nothing can overrule it, but a CLP whose largest value is 50–100 of 255 never reaches the cloud
    threshold: the prediction's warnings say it may be a percentage."""
    from sr_core.quality import series_warnings

    T, H, W = len(CHALLENGE), 8, 8
    _, cloud = _scl_scene(T, H, W)
    percent = _patch(H=H, W=W, cloud_prob=np.where(cloud, 95, 3).astype(np.float32) / 255)
    assert any("never exceeds 95 of 255" in w and "percentage" in w for w in series_warnings(percent))
    real = _patch(H=H, W=W, cloud_prob=np.where(cloud, 240, 3).astype(np.float32) / 255)
    assert not any("percentage" in w for w in series_warnings(real))


def test_the_loader_and_prepare_say_when_scl_is_the_cloud_source(tmp_path):
    from sr_core.io import load_eopatch, write_eopatch

    T, H, W = len(CHALLENGE), 6, 6
    scl = np.full((T, H, W), 4, np.uint8)
    scl[:, :2] = 9
    write_eopatch(_patch(scl=scl), tmp_path / "scl-only")
    write_eopatch(_patch(scl=scl, cloud_mask=np.zeros((T, H, W), bool)), tmp_path / "with-clm")
    got = load_eopatch(tmp_path / "scl-only")
    assert got.cloud_source == "SCL" and SCL_NOTE in got.info.notes
    assert "Sen2Cor SCL" in SCL_NOTE and "3 cloud shadow" in SCL_NOTE
    assert not got.valid_mask()[:, :2].any() and got.valid_mask()[:, 2:].all()
    assert SCL_NOTE in prepare_input(got).info.notes
    other = load_eopatch(tmp_path / "with-clm")
    assert other.cloud_source == "CLM" and SCL_NOTE not in other.info.notes
    assert SCL_NOTE not in prepare_input(other).info.notes


def test_ensure_cloud_masks_does_not_run_s2cloudless_on_a_scl_patch(monkeypatch):
    import sr_core.clouds as clouds

    calls = []

    def fake_compute(patch, **kw):
        calls.append(patch.name)
        raise RuntimeError("s2cloudless must not run here")

    monkeypatch.setattr(clouds, "compute_cloud_masks", fake_compute)
    T = len(CHALLENGE)
    p = _patch(scl=np.full((T, 6, 6), 4, np.uint8))
    assert clouds.ensure_cloud_masks(p) is p and calls == []
    with pytest.raises(RuntimeError, match="must not run"):  # no cloud layer at all: s2cloudless is the one source
        clouds.ensure_cloud_masks(_patch())
    assert calls == ["p0"]


# -- missing bands --------------------------------------------------------------------------------------------------------
def _without(patch: Patch, *names: str, value: float = 0.0) -> Patch:
    b = patch.bands.copy()
    for n in names:
        b[..., B[n]] = value
    return patch.replace(bands=b)


def test_all_zero_b01_b09_are_detected_and_filled_from_the_nearest_band():
    p = _without(_patch(), "B01", "B09")
    assert missing_bands(p.bands, p.data_mask()) == ["B01", "B09"]
    q = prepare_input(p)
    rec = input_record(q)
    assert rec["filled_bands"] == {"B01": "B02", "B09": "B8A"}
    assert np.array_equal(q.bands[..., B["B01"]], p.bands[..., B["B02"]])
    assert np.array_equal(q.bands[..., B["B09"]], p.bands[..., B["B8A"]])
    others = [i for n, i in B.items() if n not in ("B01", "B09")]
    assert np.array_equal(q.bands[..., others], p.bands[..., others])  # the rest untouched
    assert any("B01 ← B02" in n and "B09 ← B8A" in n for n in q.info.notes)
    warns = input_warnings(q)
    assert any("2 band(s) missing" in w and "B09 ← B8A" in w for w in warns)
    assert not any("caution" in w for w in warns)  # neither red nor NIR was filled
    assert missing_bands(q.bands, q.data_mask()) == []


def test_a_missing_red_or_nir_band_is_filled_and_warned_about():
    p = _without(_patch(), "B04", value=np.nan)  # not finite counts as no signal too
    q = prepare_input(p)
    assert input_record(q)["filled_bands"] == {"B04": "B05"}
    assert any("B04" in w and "caution" in w for w in input_warnings(q))


def test_a_band_zero_only_on_no_data_pixels_is_not_missing():
    T, H, W = len(CHALLENGE), 6, 6
    is_data = np.ones((T, H, W), bool)
    is_data[:, :, :3] = False
    base = _patch(is_data=is_data)
    b = base.bands.copy()
    b[:, :, :3, :] = 0.0  # no-data pixels: every band zero, as extractions fill them
    p = base.replace(bands=b)
    assert missing_bands(p.bands, p.data_mask()) == []
    q = prepare_input(p)
    assert input_record(q)["filled_bands"] == {} and np.array_equal(q.bands, p.bands)
    # …whereas a band with signal only on no-data pixels has none where it counts
    b2 = b.copy()
    b2[..., 3:, B["B01"]] = 0.0
    b2[:, :, :3, B["B01"]] = 0.2
    assert missing_bands(b2, is_data) == ["B01"]


def test_all_bands_zero_does_not_crash_and_says_so():
    from sr_core.baselines.ndvi import ndvi_baseline

    p = _patch(bands=np.zeros((len(CHALLENGE), 6, 6, 12), np.float32))
    assert len(missing_bands(p.bands, p.data_mask())) == 12
    q = prepare_input(p)
    assert input_record(q)["filled_bands"] == {}
    assert any("every band is zero" in n for n in q.info.notes)
    pred = ndvi_baseline(p)
    assert pred.shape == p.label_shape and not pred.binary.any()


def test_fill_bands_works_on_torch_tensors_as_in_training():
    x = torch.rand(2, 3, 3, 12)
    y = fill_bands(x, ["B01", "B09"])
    assert torch.equal(y[..., B["B01"]], x[..., B["B02"]]) and torch.equal(y[..., B["B09"]], x[..., B["B8A"]])
    assert torch.equal(y[..., B["B04"]], x[..., B["B04"]]) and not torch.equal(y, x)


# -- growing season ---------------------------------------------------------------------------------------------------------
def test_a_long_series_keeps_the_latest_complete_season_only():
    p = _patch(LONG, scl=np.full((len(LONG), 6, 6), 4, np.uint8))
    choice = choose_season(p.timestamps)
    assert choice.year == 2019 and choice.complete and choice.candidates == (2018, 2019)
    q = prepare_input(p)
    lo, hi = datetime(2019, 3, 1), datetime(2019, 9, 2)
    assert season_window(2019) == (lo, hi)
    assert q.timestamps and all(lo <= t < hi for t in q.timestamps)
    assert q.n_dates == sum(lo <= t < hi for t in LONG) < len(LONG)
    assert q.scl.shape[0] == q.n_dates  # every per-date layer follows
    kept = [i for i, t in enumerate(LONG) if lo <= t < hi]
    assert np.array_equal(q.bands, p.bands[kept])
    rec = input_record(q)
    assert rec["season"] == 2019 and rec["season_complete"] and rec["seasons_in_series"] == [2018, 2019]
    assert (rec["dates_used"], rec["dates_total"]) == (q.n_dates, len(LONG))
    assert rec["first_date"].startswith("2019-03") and rec["last_date"].startswith("2019-08")
    assert any(n.startswith("growing season 2019 (the latest complete season)") for n in q.info.notes)
    warns = input_warnings(q)
    assert any(f"season 2019: {q.n_dates} of {len(LONG)} dates used" in w for w in warns)
    assert not any("incomplete" in w for w in warns)


def test_of_two_complete_seasons_the_latest_is_chosen():
    """The rule is the *latest* complete season: with 2018 and 2019 both complete (and 2020 begun), 2019."""
    ts = _series(datetime(2018, 2, 20, 10), datetime(2020, 4, 10, 10))
    choice = choose_season(ts)
    assert choice.candidates == (2018, 2019, 2020)
    assert season_is_complete(ts, 2018) and season_is_complete(ts, 2019) and not season_is_complete(ts, 2020)
    assert choice.year == 2019 and choice.complete
    assert choose_season(list(reversed(ts))).year == 2019  # whatever order the dates come in


def test_a_series_of_two_complete_seasons_says_which_it_mapped_and_how_to_choose():
    """Two complete seasons: the latest is mapped by default, and the warning names both and --season (labels of the
    earlier year would otherwise be scored against the later season's map without a word); a season given: quiet."""
    p = _patch(_series(datetime(2018, 2, 20, 10), datetime(2020, 4, 10, 10)))
    auto = prepare_input(p)
    assert input_record(auto)["complete_seasons"] == [2018, 2019]
    warned = [w for w in input_warnings(auto) if "complete growing seasons" in w]
    assert warned == ["the series holds 2 complete growing seasons (2018, 2019); the latest, 2019, was mapped: give "
                      "--season YEAR (the app: Growing season) for another, e.g. the year the labels or your question "
                      "belong to"]
    assert not [w for w in input_warnings(prepare_input(p, 2018)) if "complete growing seasons" in w]
    assert not [w for w in input_warnings(prepare_input(_patch())) if "complete growing seasons" in w]


def test_season_2018_takes_its_dates_and_warns_that_it_is_incomplete():
    p = _patch(LONG)
    q = prepare_input(p, season=2018)
    assert all(t.year == 2018 and datetime(2018, 3, 1) <= t < datetime(2018, 9, 2) for t in q.timestamps)
    assert q.n_dates == sum(datetime(2018, 3, 1) <= t < datetime(2018, 9, 2) for t in LONG)
    rec = input_record(q)
    assert rec["season"] == 2018 and not rec["season_complete"]
    assert any(n.startswith("growing season 2018 (chosen)") for n in q.info.notes)
    assert any("2018 growing season is incomplete" in w for w in input_warnings(q))


def test_a_season_without_dates_is_a_clear_error_naming_the_seasons_there_are():
    with pytest.raises(PatchValidationError, match=r"season 2017.*seasons with dates: 2018, 2019"):
        prepare_input(_patch(LONG), season=2017)
    winter = [datetime(2018, 11, 1), datetime(2019, 1, 15), datetime(2019, 2, 10)]  # two years, no season date
    with pytest.raises(PatchValidationError, match="growing season"):
        prepare_input(_patch(winter))
    one_winter = [datetime(2019, 1, 5), datetime(2019, 2, 10)]  # one year: kept, nothing to mix
    assert prepare_input(_patch(one_winter)).n_dates == 2


def test_with_no_complete_season_the_one_with_most_dates_is_used():
    ts = _series(datetime(2018, 6, 1), datetime(2018, 8, 20)) + _series(datetime(2019, 3, 10), datetime(2019, 5, 1))
    q = prepare_input(_patch(ts))
    rec = input_record(q)
    assert rec["season"] == 2018 and not rec["season_complete"] and q.n_dates == 9
    assert any("no season is complete" in n for n in q.info.notes)


def test_a_challenge_like_series_is_left_untouched():
    p = _patch(CHALLENGE, cloud_mask=np.zeros((len(CHALLENGE), 6, 6), bool))
    q = prepare_input(p)
    assert q.bands is p.bands and q.timestamps == p.timestamps and q.cloud_mask is p.cloud_mask
    assert q.info.notes == p.info.notes  # nothing to say
    rec = input_record(q)
    assert rec["dates_used"] == rec["dates_total"] == len(CHALLENGE) and rec["season"] == 2019
    assert rec["filled_bands"] == {} and rec["cloud_source"] == "CLM"
    assert input_warnings(q) == [] and input_warnings(p) == []


def test_prepare_is_idempotent():
    p = _without(_patch(LONG, scl=np.full((len(LONG), 6, 6), 4, np.uint8)), "B01")
    q = prepare_input(p)
    assert prepare_input(q) is q and prepare_input(q, season=2019) is q
    assert len(q.info.notes) == len(set(q.info.notes))
    with pytest.raises(PatchValidationError, match="already prepared for season 2019"):
        prepare_input(q, season=2018)
    assert prepare_input(p, season=2018).n_dates > 0  # the original series can still give 2018


def test_predict_never_mixes_years(ckpt, monkeypatch):
    import sr_core.inference as inference

    seen = []
    real_arrays = inference.patch_arrays

    def spy(patch, *a, **kw):
        seen.append(sorted({t.year for t in patch.timestamps}))
        return real_arrays(patch, *a, **kw)

    monkeypatch.setattr(inference, "patch_arrays", spy)
    p = _patch(LONG, H=8, W=8, scl=np.full((len(LONG), 8, 8), 4, np.uint8))
    pred = inference.predict(p, device="cpu", model=ckpt)
    rec = pred.extra["input"]
    assert seen == [[2019]] and rec["season"] == 2019
    assert rec["first_date"][:4] == rec["last_date"][:4] == "2019"
    assert pred.extra["n_dates"] == rec["dates_used"] < len(LONG)
    assert any("season 2019" in w for w in pred.warnings)
    pred18 = inference.predict(p, device="cpu", model=ckpt, season=2018)
    assert seen[-1] == [2018] and pred18.extra["input"]["season"] == 2018
    assert pred18.extra["input"]["first_date"][:4] == pred18.extra["input"]["last_date"][:4] == "2018"


# -- command line: any UTM zone, --season ---------------------------------------------------------------------------------
def test_predict_writes_the_patch_crs_and_exact_grid_in_another_utm_zone(tmp_path, ckpt, capsys):
    import rasterio

    from sr_core.cli import main
    from sr_core.io import write_eopatch

    H, W = 10, 12
    p = _patch(LONG, H=H, W=W, epsg=32631, scl=np.full((len(LONG), H, W), 4, np.uint8))
    write_eopatch(_without(p, "B01", "B09"), tmp_path / "in" / "flanders-like")
    out = tmp_path / "sub"
    rc = main(["predict", str(tmp_path / "in"), "--out", str(out), "--model", str(ckpt), "--device", "cpu",
               "--threads", "1", "--quiet"])
    assert rc == 0
    line = capsys.readouterr().out.splitlines()[0]
    n = sum(datetime(2019, 3, 1) <= t < datetime(2019, 9, 2) for t in LONG)
    assert line.startswith("flanders-like: ") and f"season 2019: {n} of {len(LONG)} dates" in line
    assert "B01←B02" in line and "clouds from SCL" in line
    with rasterio.open(out / "flanders-like.tif") as ds:
        assert ds.crs.to_epsg() == 32631
        assert ds.shape == (4 * H, 4 * W)
        assert tuple(ds.transform)[:6] == (2.5, 0.0, 574680.0, 0.0, -2.5, 5621800.0 + 10 * H)
        assert tuple(ds.transform)[:6] == p.label_transform
        assert ds.bounds == pytest.approx(p.bbox.bounds, abs=0)


def test_predict_season_option_and_json_input_record(tmp_path, ckpt, capsys):
    from sr_core.cli import main
    from sr_core.io import write_eopatch

    write_eopatch(_patch(LONG, scl=np.full((len(LONG), 6, 6), 4, np.uint8)), tmp_path / "in" / "long")
    rc = main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--model", str(ckpt), "--device", "cpu",
               "--threads", "1", "--season", "2018", "--json"])
    assert rc == 0
    rec = json.loads(capsys.readouterr().out)["patches"][0]
    assert rec["input"]["season"] == 2018 and rec["input"]["dates_total"] == len(LONG)
    assert any("incomplete" in w for w in rec["warnings"])
    rc = main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "o2"), "--model", str(ckpt), "--device",
               "cpu", "--threads", "1", "--season", "2016", "--quiet"])
    assert rc == 2 and "seasons with dates: 2018, 2019" in capsys.readouterr().err
    rc = main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "o3"), "--season", "2019",
               "--scheduler", "local:1"])
    assert rc == 2 and "--season is not supported with --scheduler" in capsys.readouterr().err


def test_baseline_season_option(tmp_path, capsys):
    from sr_core.cli import main
    from sr_core.io import write_eopatch
    from sr_core.io.submission import read_submission

    write_eopatch(_patch(LONG, labels=True), tmp_path / "in" / "long")
    assert main(["baseline", "ndvi", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--season", "2018"]) == 0
    out, err = capsys.readouterr()
    n18 = sum(datetime(2018, 3, 1) <= t < datetime(2018, 9, 2) for t in LONG)
    assert f"long, season 2018: {n18} of {len(LONG)} dates" in out and "incomplete" in err
    assert read_submission(tmp_path / "o")["long"].shape == (24, 24)
    assert main(["baseline", "ndvi", str(tmp_path / "in"), "--out", str(tmp_path / "o2"), "--season", "2016"]) == 2
    assert "seasons with dates: 2018, 2019" in capsys.readouterr().err


# -- the real Flanders patch (EPSG:32631, 72 L2A dates 2018-08 … 2019-11, SCL only, B01 / B09 never delivered) ---------
def test_real_flanders_patch_goes_through_the_input_path(tmp_path, capsys):
    from sr_core.cli import main
    from sr_core.io import load_eopatch

    src = need(FLANDERS)
    patch = load_eopatch(src)
    assert patch.bbox.epsg == 32631 and patch.n_dates == 72 and patch.cloud_source == "SCL"
    q = prepare_input(patch)
    rec = input_record(q)
    assert rec["season"] == 2019 and rec["season_complete"]
    assert (rec["dates_used"], rec["dates_total"]) == (28, 72)
    assert rec["filled_bands"] == {"B01": "B02", "B09": "B8A"} and rec["cloud_source"] == "SCL"
    assert all(t.year == 2019 for t in q.timestamps)
    assert SCL_NOTE in q.info.notes
    rc = main(["predict", str(src), "--out", str(tmp_path / "out"), "--device", "cpu", "--threads", "1"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert "flanders-2019-fields-lpis: " in out and "season 2019: 28 of 72 dates (2019-03-07 … 2019-08-29)" in out
    assert "B01←B02 B09←B8A" in out and "clouds from SCL" in out
    warns = [line for line in err.splitlines() if "warning: flanders-2019-fields-lpis: " in line]
    assert any("season 2019: 28 of 72 dates used" in w for w in warns)
    assert any("B01 ← B02" in w and "B09 ← B8A" in w for w in warns)


def test_missing_bands_looks_past_the_first_frames_and_only_at_data_pixels():
    from sr_core.prepare import missing_bands

    rng = np.random.default_rng(3)
    bands = rng.uniform(0.01, 0.4, (4, 6, 6, 12)).astype(np.float32)
    b05, b09, b11 = (BAND_NAMES.index(n) for n in ("B05", "B09", "B11"))
    bands[:3, ..., b05] = 0.0  # signal only on the last frame
    bands[..., b09] = 0.0  # never delivered
    bands[..., b11] = np.nan
    bands[1, 0, 0, b11] = 0.2  # one finite value, but on a pixel without data
    data = np.ones((4, 6, 6), bool)
    data[1, 0, 0] = False
    assert missing_bands(bands, data) == ["B09", "B11"]
    assert missing_bands(bands) == ["B09"]  # without a data mask every pixel counts
    assert missing_bands(bands, np.zeros_like(data)) == []  # nothing to judge
    assert missing_bands(bands[3], data[3]) == ["B09", "B11"]  # one frame (H, W, 12)


# -- NaN / inf as no data ------------------------------------------------------------------------------------------
def test_nan_no_data_is_masked_instead_of_spreading_over_the_map():
    """A float cube with NaN where a scene has no data (an xarray export): before, one NaN row spread through the
    convolutions and the whole map came out NaN (then 'not cultivated'). Now the NaN pixel-dates are no data, and
    everywhere else the model gives what it gives when the same pixels are marked by is_data."""
    from sr_core.inference import get_model, predict
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(4, size=40, split="test")
    bands = np.array(sim.bands)
    bands[:5, :8] = np.nan  # first five dates: the top 8 rows outside the swath
    bands[:, :, :, BAND_NAMES.index("B09")] = np.nan  # one band never delivered, as NaN
    nan_patch = sim.replace(bands=bands, is_data=None)
    marked = np.ones(sim.shape, bool)
    marked[:5, :8] = False
    ref_bands = np.array(sim.bands)
    ref_bands[:5, :8] = 0
    ref_bands[..., BAND_NAMES.index("B09")] = 0
    ref = sim.replace(bands=ref_bands, is_data=marked)

    prepared = prepare_input(nan_patch)
    assert np.isfinite(prepared.bands).all()
    assert np.array_equal(prepared.is_data, marked)
    rec = input_record(prepared)
    assert rec["non_finite"] == pytest.approx(5 * 8 / (sim.n_dates * 40))
    assert rec["filled_bands"] == {"B09": "B8A"}
    assert any("NaN / inf in the band cube" in w for w in input_warnings(prepared))

    net = get_model(None, "cpu")
    a = predict(nan_patch, device="cpu", model=net)
    b = predict(ref, device="cpu", model=net)
    assert np.isfinite(a.proba).all()
    assert np.allclose(a.proba, b.proba, atol=1e-6)
    assert 0.05 < a.binary.mean() < 0.95  # a map, not the all-zero map a NaN used to give


def test_dates_out_of_time_order_are_sorted_with_their_layers(tmp_path):
    """An export that appends late scenes: the reader and the input path put the dates in time order, every date
    layer with them, and say so (the viewer's slider and the season's date list read them in array order)."""
    from sr_core.io import load_eopatch, write_eopatch
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(6, size=24, split="test")
    perm = np.random.default_rng(0).permutation(sim.n_dates)
    shuffled = sim.select_dates(perm)
    ref = load_eopatch(write_eopatch(sim, tmp_path / "ordered"))
    back = load_eopatch(write_eopatch(shuffled, tmp_path / "shuffled"))
    assert back.timestamps == ref.timestamps
    for k in ("bands", "cloud_prob", "cloud_mask", "is_data", "scl"):
        assert np.array_equal(getattr(back, k), getattr(ref, k)), k
    moved = int((perm != np.arange(sim.n_dates)).sum())
    assert f"dates were not in time order: sorted ({moved} of {sim.n_dates} moved)" in back.info.notes

    prepared = prepare_input(shuffled)  # an API patch, not read from files
    assert list(prepared.timestamps) == sorted(shuffled.timestamps)
    assert any(n.startswith("dates were not in time order") for n in prepared.info.notes)
    assert np.array_equal(prepared.bands, prepare_input(sim).bands)


def test_nan_no_data_in_a_file_is_no_data_from_the_reader_on(tmp_path):
    """Read from a file, the NaN pixel-dates are no data for everything that looks at the patch (viewer, info), and
    predictions still warn about them."""
    from sr_core.io import load_eopatch, write_eopatch
    from sr_core.quality import series_warnings
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(8, size=24, split="test")
    folder = write_eopatch(sim, tmp_path / "nan")
    bands = load_eopatch(folder).bands.copy()
    bands[2, :, :6] = np.nan
    for f in (folder / "data").glob("BANDS*"):
        f.unlink()
    np.save(folder / "data" / "BANDS.npy", bands)  # float reflectance, NaN where the scene has no data
    p = load_eopatch(folder)
    assert np.isfinite(p.bands).all() and not p.is_data[2, :, :6].any() and p.is_data[2, :, 6:].all()
    assert any("NaN / inf" in n for n in p.info.notes)
    assert any("NaN / inf in the band cube" in w for w in series_warnings(prepare_input(p)))


def test_a_band_nan_on_most_pixels_is_a_missing_band_not_a_reason_to_drop_the_patch():
    """One band NaN on all but one pixel-date (an export that lacks it): it is filled like a zero band, and every
    pixel keeps its data; before, each of those pixel-dates would have been dropped as no data."""
    p = _patch()
    b = p.bands.copy()
    b[..., B["B05"]] = np.nan
    b[2, 1, 1, B["B05"]] = 0.2
    q = prepare_input(p.replace(bands=b))
    assert input_record(q)["filled_bands"] == {"B05": "B06"}
    assert np.array_equal(q.data_mask(), p.data_mask())
    assert any("B05 non-finite on most pixels, treated as missing" in n for n in q.info.notes)


def test_zero_pixels_and_eo_learn_1x_data_mask_are_no_data(tmp_path):
    """Outside a scene's swath every band is 0. Without a data mask those pixel-dates used to be read as black
    observations; now they are no data. eo-learn 1.x's SentinelHubInputTask calls the data mask mask/dataMask."""
    from sr_core.io import load_eopatch, write_eopatch
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(11, size=24, split="test")
    bands = np.array(sim.bands)
    bands[1, :, :10] = 0.0  # date 1: the left of the patch outside the swath
    swath = np.ones(sim.shape, bool)
    swath[1, :, :10] = False
    folder = write_eopatch(sim.replace(bands=bands, is_data=None), tmp_path / "zeros")
    p = load_eopatch(folder)
    assert np.array_equal(p.is_data, swath)
    assert any("0 in every band, taken as no data" in n for n in p.info.notes)

    data_mask = np.ones(sim.shape, bool)
    data_mask[2, :5] = False  # the delivered mask may say more than the zeros do
    folder2 = write_eopatch(sim.replace(bands=bands, is_data=data_mask), tmp_path / "dm")
    for f in (folder2 / "mask").glob("IS_DATA*"):
        f.rename(f.with_name(f.name.replace("IS_DATA", "dataMask")))
    q = load_eopatch(folder2)
    assert np.array_equal(q.is_data, data_mask & swath)
    assert "mask/dataMask read as the data mask (IS_DATA)" in q.info.notes


def test_two_granules_of_one_pass_are_merged_into_one_date(tmp_path):
    """A tile mosaic can deliver one pass as two entries with the same timestamp, each with data on its own part of
    the patch. They become one date again, with every layer, instead of a date counted twice."""
    from sr_core.io import load_eopatch, write_eopatch
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(13, size=24, split="test")
    k = 5
    left = np.zeros(sim.shape[1:], bool)
    left[:, :12] = True
    order = [*range(k + 1), k, *range(k + 1, sim.n_dates)]
    two = sim.select_dates(order)  # date k twice: entry k holds the left half, entry k + 1 the right half
    bands, is_data = np.array(two.bands), np.array(two.is_data)
    bands[k][~left] = 0
    bands[k + 1][left] = 0
    is_data[k], is_data[k + 1] = left, ~left
    ref = load_eopatch(write_eopatch(sim, tmp_path / "one"))
    got = load_eopatch(write_eopatch(two.replace(bands=bands, is_data=is_data), tmp_path / "two"))
    assert got.timestamps == ref.timestamps
    for name in ("bands", "cloud_prob", "cloud_mask", "is_data", "scl"):
        assert np.array_equal(getattr(got, name), getattr(ref, name)), name
    assert any(n.startswith("1 date(s) repeated a timestamp") for n in got.info.notes)
    # in code, the input path does the same
    q = prepare_input(two.replace(bands=bands, is_data=is_data))
    assert q.n_dates == sim.n_dates and np.array_equal(q.bands, prepare_input(sim).bands)


def test_granules_marked_by_nan_merge_in_the_input_path_too():
    """A patch built in code whose two granules of one pass mark their missing halves with NaN: the input path
    turns NaN into no data first, then merges, so each half comes from the granule that has it."""
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(15, size=24, split="test")
    k = 3
    two = sim.select_dates([*range(k + 1), k, *range(k + 1, sim.n_dates)])
    bands = np.array(two.bands)
    bands[k][:, 12:] = np.nan
    bands[k + 1][:, :12] = np.nan
    q = prepare_input(two.replace(bands=bands, is_data=None))
    ref = prepare_input(sim.replace(is_data=None))
    assert q.n_dates == sim.n_dates and np.allclose(q.bands, ref.bands)
    assert q.is_data.all()
