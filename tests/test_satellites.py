"""Two satellites, two positions (simulator 2.7): the dates of a real Sentinel-2 series fall into an S2A and an S2B
group that sit ≈ 0.6–0.75 px apart, and the simulator draws its co-registration errors that way. Measured with the
co-registration estimator (field edges, no labels), on simulated patches and on the real series."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest
from conftest import REAL, REAL_SERIES, need

from sr_core.coreg import satellite_phase
from sr_core.simulate import realism as rz
from sr_core.simulate import simulate_patch
from sr_core.simulate.sensor import ORBITS, Coregistration, candidate_dates


def test_satellite_is_the_five_day_phase_of_the_date():
    d = datetime(2019, 4, 11, 10, 57)
    five, ten = timedelta(days=5), timedelta(days=10)
    assert satellite_phase([d])[0] != satellite_phase([d + five])[0]
    assert satellite_phase([d, d + ten, d - ten, d - 40 * ten]).tolist() == [satellite_phase([d])[0]] * 4
    assert set(satellite_phase([d, d + five]).tolist()) == {0, 1}
    # the simulator's own dates alternate satellites along each orbit (S2A and S2B 5 days apart)
    times, orbit = candidate_dates(500000.0)
    assert len(set(orbit)) == len(ORBITS)
    for k in range(len(ORBITS)):
        sat = satellite_phase([t for t, o in zip(times, orbit, strict=True) if o == k])
        assert (np.diff(sat) != 0).all()


def test_satellite_split_measures_separation_and_scatter():
    sat = np.array([0, 1] * 6)
    off = np.where(sat[:, None] == 0, [-0.4, 0.1], [0.4, -0.1]).astype(float)
    sep, scatter = rz.satellite_split(off, sat)
    assert sep == pytest.approx(np.hypot(0.8, 0.2)) and scatter == pytest.approx(0.0, abs=1e-12)
    noisy = off + np.array([[0.3, 0.0], [0.3, 0.0], [-0.3, 0.0], [-0.3, 0.0]] * 3)  # each group ± 0.3 along y
    assert rz.satellite_split(noisy, sat)[1] == pytest.approx(0.3 / np.sqrt(2))
    # dates that cannot be judged are left out; one satellite alone gives its scatter and no separation
    off[:4] = np.nan
    assert rz.satellite_split(off, sat)[0] == pytest.approx(sep)
    sep1, sc1 = rz.satellite_split(noisy[sat == 0], sat[sat == 0])
    assert np.isnan(sep1) and sc1 == pytest.approx(0.3 / np.sqrt(2))


def test_coregistration_draw_is_two_groups_along_the_rows():
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = Coregistration.draw(rng)
        assert 0.55 <= c.separation_px <= 0.95 and 0.2 <= c.jitter_px <= 0.3
        assert abs(np.cos(c.angle)) > np.cos(np.radians(60))  # mostly north–south
    c = Coregistration(separation_px=0.8, angle=0.0, jitter_px=0.0)
    off = c.offsets(np.array([0, 1, 0, 1]), rng)
    np.testing.assert_allclose(off, [[-0.4, 0.0], [0.4, 0.0], [-0.4, 0.0], [0.4, 0.0]], atol=1e-6)


def test_simulated_dates_sit_in_two_satellite_groups_and_the_estimator_finds_them():
    p = simulate_patch(3, size=128, split="test")
    meta = p.info.meta
    assert tuple(int(x) for x in meta["simulator_version"].split(".")) >= (2, 7)  # two satellites since 2.7
    sat = np.array(meta["satellite"])
    assert sat.tolist() == satellite_phase(p.timestamps).tolist() and set(sat.tolist()) == {0, 1}
    drawn = meta["coregistration"]
    true = np.array(meta["coregistration_px_10m"])
    sep_true, scatter_true = rz.satellite_split(true, sat)
    assert sep_true == pytest.approx(drawn["separation_px"], abs=0.15)
    assert scatter_true == pytest.approx(drawn["jitter_px"], abs=0.1)
    # measured from the images alone (field edges), as on the real series
    sep, scatter = rz.satellite_split(rz.date_offsets(p.bands, p.valid_mask()), sat)
    assert sep == pytest.approx(sep_true, abs=0.2)
    assert scatter < 0.4


def test_real_flanders_dates_split_by_satellite():
    """The real 2018–19 Flanders series: the two 5-day phases sit ≥ half a pixel apart, each date within ≈ 0.3 px
    of its own phase's mean; simulator 2.0–2.6 drew every date independently (no such split)."""
    from sr_core.io.eopatch import load_eopatch

    p = load_eopatch(need(REAL / "flanders-2019-fields-lpis"))
    sep, scatter = rz.satellite_split(rz.date_offsets(p.bands, p.valid_mask()), satellite_phase(p.timestamps))
    assert 0.5 <= sep <= 1.0
    assert scatter <= 0.35


def test_real_slovenian_series_splits_once_s2b_flies():
    """The real Slovenian NDVI series: 2015–16 (S2A alone) all on one 5-day phase; in 2017 the S2B dates sit off."""
    from sr_core.coreg import edge_strength

    folder = need(REAL_SERIES)
    nd = np.load(folder / "data" / "NDVI.npy")[..., 0]
    clear = (np.load(folder / "mask" / "CLM.npy")[..., 0] == 0) & (np.load(folder / "mask" / "IS_DATA.npy")[..., 0] > 0)
    times = [datetime.fromisoformat(t) for t in json.loads((folder / "timestamps.json").read_text())]
    sat, years = satellite_phase(times), np.array([t.year for t in times])
    off = rz.date_offsets(nd[..., None], clear, edges=edge_strength)
    judged = ~np.isnan(off).any(axis=1)
    assert len(set(sat[judged & (years < 2017)].tolist())) == 1
    sep, _ = rz.satellite_split(np.where((years == 2017)[:, None], off, np.nan), sat)
    assert sep >= 0.4


def test_a_satellite_moved_against_the_other_is_measured_from_the_images():
    """Every date of one 5-day phase moved one pixel south: the phases sit ≈ 1 px apart, each date near its own."""
    from sr_core.coreg import apply_offsets, satellite_phase, satellite_split, subpixel_offsets
    from tests.test_coreg import _aligned_patch

    p = _aligned_patch(seed=5)
    phase = satellite_phase(p.timestamps)
    assert set(phase.tolist()) == {0, 1}
    moved = apply_offsets(p, {t: (1, 0) for t in np.flatnonzero(phase == 1)})
    sep, scatter = satellite_split(subpixel_offsets(moved.bands, moved.valid_mask()), phase)
    assert 0.6 <= sep <= 1.4 and scatter < 0.3
    sep0, _ = satellite_split(subpixel_offsets(p.bands, p.valid_mask()), phase)
    assert sep0 < 0.2
