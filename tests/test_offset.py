"""Processing baseline 04.00's +1000 DN offset: found on real products stored that way, removed exactly, said in a
warning; never "found" on real or simulated series without it."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL, REAL_L1C, need

from sr_core.io import load_eopatch, write_eopatch
from sr_core.patch import ProductLevel
from sr_core.quality import (
    OFFSET_DARK_MAX,
    OFFSET_DARK_MIN,
    PB04_START,
    radiometric_offset,
    remove_offset,
    series_warnings,
)  # fmt: skip

FLANDERS = REAL / "flanders-2019-fields-lpis"


def _band_file(folder: Path) -> Path:
    return next(f for f in (folder / "data").iterdir() if f.name.startswith("BANDS"))


def _add_dn(folder: Path, dn: int, dates: slice = slice(None)) -> None:
    """Store ``folder``'s band cube as a baseline-04.00 product would: every DN with data + ``dn`` on ``dates`` (a
    float cube: + ``dn`` × 1e-4)."""
    f = _band_file(folder)
    opener = gzip.open if f.name.endswith(".gz") else open
    with opener(f, "rb") as fh:
        b = np.load(fh)
    if b.dtype.kind == "f":  # a cube of reflectance made as DN × 1e-4
        b[dates] = np.where(b[dates] > 0, b[dates] + np.float32(dn * 1e-4), 0)
    else:
        sub = b[dates].astype(np.int32)
        b[dates] = np.where(sub > 0, sub + dn, 0).astype(b.dtype)
    with opener(f, "wb") as fh:
        np.save(fh, b)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _shift_years(folder: Path, years: int) -> None:
    ts = json.loads((folder / "timestamps.json").read_text())
    (folder / "timestamps.json").write_text(json.dumps([f"{int(t[:4]) + years}{t[4:]}" for t in ts]))


def test_real_l2a_with_offset_is_restored_exactly(tmp_path):
    """The real Flanders L2A series stored as DN + 1000 (dates moved into 2022-23, where baseline 04.00 applies)
    reads as the original: every band within float rounding, still L2A, with a warning that names the fix."""
    orig = load_eopatch(need(FLANDERS))
    assert "radiometric_offset" not in orig.info.meta
    assert not any("offset" in n for n in orig.info.notes)
    d = _copy(FLANDERS, tmp_path / "fl")
    _add_dn(d, 1000)
    _shift_years(d, 4)
    p = load_eopatch(d)
    assert np.abs(p.bands - orig.bands).max() < 1e-6
    assert p.info.product_level is ProductLevel.L2A  # 0.1 too bright would read as L1C
    rec = p.info.meta["radiometric_offset"]
    assert rec["subtracted"] == pytest.approx(0.1) and len(rec["dates"]) == p.n_dates
    assert OFFSET_DARK_MIN <= rec["darkest"][0] <= OFFSET_DARK_MAX
    warn = [w for w in series_warnings(p) if "processing-baseline offset" in w]
    assert len(warn) == 1 and f"{p.n_dates} of {p.n_dates} dates" in warn[0] and "harmonized: true" in warn[0]


def test_metadata_decides_when_it_speaks(tmp_path):
    """``harmonized: true`` leaves the cube as stored (0.1 too bright, which then reads as L1C); ``boa_add_offset``
    is applied as stated, without looking at the statistics."""
    orig = load_eopatch(need(FLANDERS))
    d = _copy(FLANDERS, tmp_path / "fl")
    _add_dn(d, 1000)
    (d / "meta_info.json").write_text(json.dumps({"harmonized": True}))
    p = load_eopatch(d)
    assert "radiometric_offset" not in p.info.meta
    assert np.median(p.bands[orig.bands > 0] - orig.bands[orig.bands > 0]) == pytest.approx(0.1, abs=1e-6)
    (d / "meta_info.json").write_text(json.dumps({"BOA_ADD_OFFSET": -1000}))
    q = load_eopatch(d)
    assert np.abs(q.bands - orig.bands).max() < 1e-6
    assert q.info.meta["radiometric_offset"]["source"] == "meta_info boa_add_offset = -1000"


def test_real_l1c_with_offset_is_restored_and_stays_l1c(tmp_path):
    orig = load_eopatch(need(REAL_L1C))
    assert "radiometric_offset" not in orig.info.meta
    d = _copy(REAL_L1C, tmp_path / "l1c")
    _add_dn(d, 1000)
    p = load_eopatch(d)
    assert np.abs(p.bands - orig.bands).max() < 1e-6
    assert p.info.product_level is ProductLevel.L1C


def test_only_the_dates_stored_with_the_offset_are_changed(tmp_path):
    """A series that crosses 25 January 2022 without reprocessing: the older dates are as they were, the newer ones
    carry the offset. Each group is judged on its own."""
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(3, size=48, split="test")
    T = sim.n_dates
    ts = list(sim.timestamps)
    k = T // 2
    ts[k:] = [t.replace(year=2022) for t in ts[k:]]
    d = write_eopatch(sim.replace(timestamps=tuple(ts)), tmp_path / "cross")
    ref = load_eopatch(d)
    assert "radiometric_offset" not in ref.info.meta  # simulated L2A: no offset found
    _add_dn(d, 1000, slice(k, None))
    p = load_eopatch(d)
    assert p.info.meta["radiometric_offset"]["dates"] == [f"{t:%Y-%m-%d}" for t in ts[k:]]
    assert np.abs(p.bands - ref.bands).max() < 1e-6
    checks = radiometric_offset(ref.bands, ts, ref.valid_mask())
    assert [c.dates[0] for c in checks] == [0, k] and all(c.offset == 0 for c in checks)


def test_series_the_check_cannot_judge_are_left_alone():
    """Nothing is subtracted without clear vegetation to read: not from bright, hazy or cloudy scenes, and not from
    bare winter fields seen through an L1C atmosphere, whose darkest band reads about 0.1 like an offset would."""
    rng = np.random.default_rng(1)
    ts = [datetime(2023, 5, 1), datetime(2023, 6, 1), datetime(2023, 7, 1)]
    assert ts[0] >= PB04_START
    bright = rng.uniform(0.25, 0.6, (3, 30, 30, 12)).astype(np.float32)
    bright[..., 7] = bright[..., 3] + 0.2  # vegetation under thick haze: NIR above red, red far above 0.16
    (c,) = radiometric_offset(bright, ts)
    assert c.offset == 0 and c.darkest is not None and c.darkest > OFFSET_DARK_MAX and "left as it is" in c.reason
    # bare soil under an L1C atmosphere: blue ≈ 0.10-0.13, red ≈ 0.12, NIR only a little higher: no vegetation
    soil = np.stack([rng.uniform(lo, lo + 0.03, (3, 30, 30)) for lo in
                     (0.12, 0.10, 0.10, 0.11, 0.13, 0.14, 0.15, 0.16, 0.17, 0.10, 0.24, 0.20)], axis=-1).astype(np.float32)
    (c,) = radiometric_offset(soil, ts)
    assert c.offset == 0 and c.darkest is None and "no date has 200 clear vegetation pixels" in c.reason


def test_remove_offset_keeps_no_data_and_clips_at_zero():
    b = np.array([[[[0.0] * 12, [0.105] * 12, [0.05] * 12]]], np.float32)  # (1, 1, 3, 12)
    out = remove_offset(b.copy(), [0], 0.1)
    assert out[0, 0, 0].tolist() == [0.0] * 12  # no data stays 0
    assert out[0, 0, 1] == pytest.approx(0.005, abs=1e-6)
    assert out[0, 0, 2].tolist() == [0.0] * 12  # below the offset: clipped, as harmonizeValues does


@pytest.mark.parametrize("value", [1e30, "minus a thousand", True, float("nan"), -5000])
def test_a_stated_offset_that_cannot_be_a_products_is_refused(sim_offset_folder, value):
    """meta_info from an upload is hostile: an offset no product has (or not a number) is a clear format error, not
    a cube shifted by 1e26."""
    from sr_core.errors import PatchFormatError

    (sim_offset_folder / "meta_info.json").write_text(json.dumps({"BOA_ADD_OFFSET": value}))
    with pytest.raises(PatchFormatError, match=r"meta_info boa_add_offset = .*expected the product.s offset"):
        load_eopatch(sim_offset_folder)


@pytest.fixture
def sim_offset_folder(tmp_path):
    from sr_core.simulate import simulate_patch

    return write_eopatch(simulate_patch(9, size=24, split="test"), tmp_path / "sim")


def test_the_reflectance_formula_shows_the_removed_offset(tmp_path):
    """The Time series page states how reflectance was made: the DN scale, and the offset where one was removed."""
    from sr_core.quality import reflectance_formula
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(12, size=24, split="test")
    sim = sim.replace(timestamps=tuple(t.replace(year=2023) for t in sim.timestamps))
    folder = write_eopatch(sim, tmp_path / "p")
    assert reflectance_formula(load_eopatch(folder)) == "reflectance = DN × 0.0001"
    _add_dn(folder, 1000)
    p = load_eopatch(folder)
    T = p.n_dates
    assert reflectance_formula(p) == f"reflectance = DN × 0.0001 − 0.1 (processing-baseline offset, {T} of {T} dates)"
    assert reflectance_formula(p.select_dates([0, 1])).endswith("(processing-baseline offset, 2 of 2 dates)")


def test_a_corrected_patch_saved_again_is_not_corrected_twice(tmp_path, small_patch):
    """A product that states ``boa_add_offset = -1000`` is read 0.1 darker; saved again (the Upload page's computed
    cloud masks, ``clouds --save``, the benchmark's inputs) its corrected bands are written with ``harmonized: true``
    in place of the stated offset, so every later read gives the same reflectance."""
    d = tmp_path / "stated"
    write_eopatch(small_patch, d)
    _add_dn(d, 1000)
    (d / "meta_info" / "boa_add_offset.json").write_text("-1000")
    first = load_eopatch(d)
    assert np.abs(first.bands - small_patch.bands).max() < 2e-4  # the DN rounding
    assert first.info.meta["radiometric_offset"]["subtracted"] == pytest.approx(0.1)
    write_eopatch(first, tmp_path / "again")
    second = load_eopatch(tmp_path / "again")
    assert np.abs(second.bands - first.bands).max() < 1e-6
    assert second.info.meta.get("harmonized") is True and "boa_add_offset" not in second.info.meta
    assert second.info.meta["radiometric_offset"]["source"] == "meta_info boa_add_offset = -1000"  # the history
    write_eopatch(second, tmp_path / "third")
    assert np.abs(load_eopatch(tmp_path / "third").bands - first.bands).max() < 1e-6


def test_a_corrected_patch_saved_again_no_longer_says_the_offset_is_subtracted(tmp_path, small_patch):
    """Saved as corrected (``harmonized: true``), the next read subtracts nothing, and its reflectance formula says
    so (it kept saying "− 0.1" from the record of the first read)."""
    from sr_core.quality import reflectance_formula

    d = tmp_path / "stated"
    write_eopatch(small_patch, d)
    _add_dn(d, 1000)
    (d / "meta_info" / "boa_add_offset.json").write_text("-1000")
    first = load_eopatch(d)
    assert "− 0.1" in reflectance_formula(first)
    write_eopatch(first, tmp_path / "again")
    assert "− 0.1" not in reflectance_formula(load_eopatch(tmp_path / "again"))


def test_harmonized_true_in_meta_info_keeps_the_reader_from_subtracting_the_offset(tmp_path):
    """The simulated 2023 series of the formula test, stored as DN + 1000: written with meta_info ``harmonized: true``
    it is read as stored (0.1 brighter, nothing subtracted or recorded); the same files without the flag have the
    offset found and removed. The flag alone decides (the statistics would fire on this series)."""
    import dataclasses

    from sr_core.quality import reflectance_formula
    from sr_core.simulate import simulate_patch

    sim = simulate_patch(12, size=24, split="test")
    sim = sim.replace(timestamps=tuple(t.replace(year=2023) for t in sim.timestamps))
    flagged = sim.replace(info=dataclasses.replace(sim.info, meta={**sim.info.meta, "harmonized": True}))
    plain_dir = write_eopatch(sim, tmp_path / "plain")
    flag_dir = write_eopatch(flagged, tmp_path / "flagged")
    assert json.loads((flag_dir / "meta_info" / "harmonized.json").read_text()) is True
    assert not (plain_dir / "meta_info" / "harmonized.json").exists()
    ref = load_eopatch(plain_dir)  # as exported, before the offset: nothing found
    assert "radiometric_offset" not in ref.info.meta
    for d in (plain_dir, flag_dir):
        _add_dn(d, 1000)

    plain = load_eopatch(plain_dir)  # no flag: the statistics find the offset and remove it
    assert plain.info.meta["radiometric_offset"]["subtracted"] == pytest.approx(0.1)
    assert plain.info.meta["radiometric_offset"]["source"] == "reflectance statistics"
    assert np.abs(plain.bands - ref.bands).max() < 1e-6

    kept = load_eopatch(flag_dir)  # harmonized: true: the same DN read as they are
    assert kept.info.meta.get("harmonized") is True
    assert "radiometric_offset" not in kept.info.meta, kept.info.meta["radiometric_offset"]
    has = ref.bands > 0  # _add_dn leaves no-data zeros alone
    assert np.abs(kept.bands[has] - ref.bands[has] - 0.1).max() < 1e-6
    assert np.array_equal(kept.bands[~has], ref.bands[~has])
    assert not any("processing-baseline offset" in n for n in kept.info.notes)
    assert reflectance_formula(kept) == "reflectance = DN × 0.0001"
