"""Co-registration of the dates (sr_core.coreg, experimental): whole-pixel offsets found and undone, masks moved
with the bands, clouds and too little evidence respected, and the opt-in through prepare_input / evaluate."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sr_core import BBox, Patch
from sr_core.coreg import apply_offsets, coregister, estimate_offsets, move_whole, subpixel_offsets
from sr_core.evaluation import scenario_rng, shift_patch
from sr_core.patch import PatchInfo
from sr_core.prepare import input_record, prepare_input

T, N = 12, 96


def _fields(seed: int = 0, n: int = N) -> np.ndarray:
    """(n, n) field ids: a random strip-and-block layout (sharp straight edges, as parcels have)."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, n), np.int32)
    k = 1
    y = 0
    while y < n:
        h = int(rng.integers(6, 20))
        x = 0
        while x < n:
            w = int(rng.integers(5, 30))
            ids[y:y + h, x:x + w] = k
            k += 1
            x += w
        y += h
    return ids


def _aligned_patch(seed: int = 0, cloud: np.ndarray | None = None) -> Patch:
    """T dates of the same fields, each field with its own reflectance per date (phenology), small noise, no
    offsets between dates."""
    rng = np.random.default_rng(seed)
    ids = _fields(seed)
    refl = rng.uniform(0.03, 0.45, (T, ids.max() + 1, 12)).astype(np.float32)
    bands = refl[:, ids] + rng.normal(0, 0.003, (T, N, N, 12)).astype(np.float32)
    ts = [datetime(2019, 3, 5, 10) + timedelta(days=12 * i) for i in range(T)]
    return Patch(bands=np.clip(bands, 0.001, 1), timestamps=ts, bbox=BBox(540000, 5120000, 540000 + 10 * N,
                 5120000 + 10 * N, 32633), cloud_mask=cloud, info=PatchInfo(name="coreg"))


MOVES = {2: (1, 0), 5: (0, -1), 9: (-1, 1)}


def test_dates_moved_by_one_pixel_are_found_and_put_back_exactly():
    p = _aligned_patch()
    moved = apply_offsets(p, MOVES)
    assert not np.array_equal(moved.bands[2], p.bands[2])
    found = estimate_offsets(moved.bands, moved.valid_mask())
    assert found == {t: (-dy, -dx) for t, (dy, dx) in MOVES.items()}
    back, offsets = coregister(moved)
    assert offsets == found
    inner = (slice(2, -2), slice(2, -2))
    for t in range(T):
        np.testing.assert_array_equal(back.bands[t][inner], p.bands[t][inner])


def test_an_aligned_series_is_left_alone():
    p = _aligned_patch(seed=3)
    assert estimate_offsets(p.bands, p.valid_mask()) == {}
    d = subpixel_offsets(p.bands, p.valid_mask())
    assert np.nanmax(np.abs(d)) < 0.2


def test_masks_move_with_the_bands_and_labels_stay():
    cloud = np.zeros((T, N, N), bool)
    cloud[2, 10:30, 40:60] = True
    p = _aligned_patch(cloud=cloud)
    moved = apply_offsets(p, {2: (1, 0)})
    assert moved.cloud_mask[2, 11:31, 40:60].all() and not moved.cloud_mask[2, 10, 45]
    assert moved.bbox == p.bbox and moved.timestamps == p.timestamps


def test_a_clouded_date_is_not_judged():
    cloud = np.zeros((T, N, N), bool)
    cloud[4] = True
    cloud[4, :20, :20] = False  # 400 clear pixels: fewer than MIN_PIXELS
    p = apply_offsets(_aligned_patch(cloud=cloud), {4: (1, 1)})
    d = subpixel_offsets(p.bands, p.valid_mask())
    assert np.isnan(d[4]).all() and 4 not in estimate_offsets(p.bands, p.valid_mask())


def test_the_stress_shift_is_undone_on_a_simulated_patch():
    """The robustness gate's shift (1 px, 30 % of the dates) on a simulated patch, whose dates also carry the
    simulator's own sub-pixel co-registration errors: co-registration moves most of the shifted dates back to exactly
    where it put them without the shift, and none further off than the shift put it."""
    from sr_core.simulate import simulate_patch

    p = simulate_patch(821, 96, "test")
    q = shift_patch(p, scenario_rng(821, "shift"))
    applied = {}
    for t in range(p.n_dates):
        off = next(((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                    if np.array_equal(move_whole(p.bands[t], dy, dx), q.bands[t])), None)
        assert off is not None, f"date {t} is not a whole-pixel move of the original"
        if off != (0, 0):
            applied[t] = off
    assert len(applied) >= 0.2 * p.n_dates
    _, before = coregister(p)
    _, after = coregister(q)
    undone, worse = 0, []
    for t, (dy, dx) in applied.items():
        b, a = before.get(t, (0, 0)), after.get(t, (0, 0))
        residual = (dy + a[0] - b[0], dx + a[1] - b[1])  # where the date ends up against its unshifted correction
        undone += residual == (0, 0)
        if abs(residual[0]) > abs(dy) or abs(residual[1]) > abs(dx):
            worse.append(t)
    assert undone >= 0.8 * len(applied), (undone, len(applied))
    assert not worse


def test_prepare_input_coregisters_only_when_asked():
    moved = apply_offsets(_aligned_patch(), MOVES)
    plain = prepare_input(moved)
    np.testing.assert_array_equal(plain.bands, moved.bands)
    assert input_record(plain)["coregistered"] is None
    done = prepare_input(moved, coregister=True)
    rec = input_record(done)["coregistered"]
    assert rec == {f"{moved.timestamps[t]:%Y-%m-%d}": [-dy, -dx] for t, (dy, dx) in MOVES.items()}
    note = next(n for n in done.info.notes if n.startswith("co-registration"))
    assert "3 of 12 dates" in note and "up" in note and "right" in note


@pytest.mark.parametrize("coregister_flag", [False, True])
def test_evaluate_predictors_see_the_coregistered_patch_only_with_the_flag(coregister_flag):
    from sr_core.evaluation import build_predictors
    from sr_core.model import SRNet, SRNetConfig

    preds = build_predictors(SRNet(SRNetConfig.preset("tiny")), "cpu", baselines=(), coregister=coregister_flag)
    out = preds.fns["model"](apply_offsets(_aligned_patch(), MOVES))
    rec = out.extra["input"]  # the prediction carries what the input path did
    assert (rec.get("coregistered") is not None) == coregister_flag
    assert any("EXPERIMENTAL" in n for n in preds.notes) == coregister_flag


def test_time_series_page_shows_which_dates_are_off(tmp_path, monkeypatch):
    """The Time series page's co-registration diagnostic on a served patch with three dates moved by one pixel."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from sr_core.io import write_eopatch
    from tests.helpers_app import TIMEOUT

    root = tmp_path / "real"
    labels = np.zeros((4 * N, 4 * N), bool)
    labels[: 2 * N] = True
    p = apply_offsets(_aligned_patch(), MOVES).replace(cultivated=labels, not_declared=np.zeros_like(labels))
    path = write_eopatch(p, root / "eopatch-coreg")
    monkeypatch.setenv("SR_CORE_DATA", str(root))
    monkeypatch.setenv("SR_CORE_DEMO", "off")
    st.cache_data.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages/1_Time_series.py"), default_timeout=TIMEOUT)
    at.session_state["selected_patch_path"] = str(path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("3 of 12 dates are half a 10 m pixel or more off" in c.value for c in at.caption)
    # the dates are also split by their 5-day phase (S2A / S2B), with the measured offset between the two groups
    assert any("Two satellites" in c.value and "px** apart" in c.value for c in at.caption)
    at.select_slider(key="frame_index").set_value(2).run()  # moved 1 px down: its edges sit south of the others'
    cap = next(c.value for c in at.caption if "co-registration:" in c.value)
    assert "px south" in cap and "(≥ half a pixel off)" in cap
    at.select_slider(key="frame_index").set_value(3).run()  # not moved
    cap = next(c.value for c in at.caption if "co-registration:" in c.value)
    assert "(≥ half a pixel off)" not in cap


# -- where the labels sit against the imagery (evaluate --real's diagnostic) -------------------------------------------
@pytest.fixture(scope="module")
def sim_labelled():
    from sr_core.simulate import simulate_patch

    return simulate_patch(3, 96, "test")


@pytest.mark.parametrize("rows", [0, 4, -4])
def test_label_offset_finds_labels_moved_by_a_known_amount(sim_labelled, rows):
    """Labels moved ``rows`` 2.5 m pixels south (a 10 m row per 4) read as that many 10 m px south of the imagery;
    the simulator's own labels sit on its imagery (its digitising offsets average out)."""
    from sr_core.coreg import label_offset

    s = sim_labelled
    q = s.replace(cultivated=np.roll(s.cultivated, rows, 0), not_declared=np.roll(s.not_declared, rows, 0))
    off = label_offset(q)
    assert off is not None and off["dates"] >= 5 and off["pixels"] > 1000
    assert off["dy"] == pytest.approx(rows / 4, abs=0.3) and abs(off["dx"]) < 0.3
    assert label_offset(s.replace(cultivated=None, not_declared=None)) is None


def test_evaluate_real_reports_where_the_labels_sit(tmp_path, sim_labelled, capsys):
    """``evaluate --real`` (any labelled patch) gives each patch's label offset, and a note when it is half a pixel
    or more, in words (labels south of the imagery here)."""
    import json

    from sr_core.cli import main
    from sr_core.io import write_eopatch
    from sr_core.patch import PatchInfo

    s = sim_labelled
    moved = s.replace(cultivated=np.roll(s.cultivated, 4, 0), not_declared=np.roll(s.not_declared, 4, 0),
                      info=PatchInfo(name="moved"))
    write_eopatch(moved, tmp_path / "moved")
    rc = main(["evaluate", "--real", str(tmp_path / "moved"), "--no-baselines", "--device", "cpu", "--threads", "1",
               "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    off = doc["patches"][0]["label_offset"]
    assert off["dy"] == pytest.approx(1.0, abs=0.3)
    assert any("labels sit 1." in n and "px south" in n and "imagery" in n for n in doc["notes"])
