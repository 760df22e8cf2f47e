"""Property tests of the readers on random (mostly broken) EOPatch folders and archives, plus one regression test for
each bug the fuzzing found. Thousands of cases: ``python -m sr_core fuzz --cases 5000``."""

from __future__ import annotations

import gzip
import json
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures_io import make_challenge_patch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sr_core.errors import ArchiveError, PatchFormatError, PatchValidationError, SRCoreError
from sr_core.io import extract_archive, load_eopatch, open_patches, write_eopatch
from tools import fuzz_readers as F

FUZZ = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class HypothesisRng:
    """:class:`tools.fuzz_readers.CaseRng` drawing from hypothesis (so failures shrink to small cases)."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def pick(self, seq):
        return self.data.draw(st.sampled_from(list(seq)))

    def chance(self, p: float) -> bool:
        return self.data.draw(st.integers(0, 999)) < p * 1000

    def blob(self, max_len: int) -> bytes:
        return self.data.draw(st.binary(max_size=max_len))


@settings(FUZZ, max_examples=220)
@given(st.data())
def test_folder_reader_returns_a_patch_or_an_sr_core_error(data):
    with tempfile.TemporaryDirectory() as d:
        out = F.check_folder_case(Path(d), HypothesisRng(data), seconds=10)
    assert not out.is_bug, out.detail


@settings(FUZZ, max_examples=120)
@given(st.data())
def test_archive_readers_stay_inside_their_folder(data):
    with tempfile.TemporaryDirectory() as d:
        out = F.check_archive_case(Path(d), HypothesisRng(data), seconds=10)
    assert not out.is_bug, out.detail


def test_the_nightly_run_is_reproducible_and_reports_outcomes(tmp_path):
    a = F.run_fuzz(12, 7, tmp_path)
    b = F.run_fuzz(12, 7, tmp_path)
    assert a.cases == 12 and a.outcomes == b.outcomes and not a.bugs
    assert sum(a.outcomes.values()) == 12 and not any(tmp_path.iterdir())  # every case cleaned up


# -- the harness itself catches what it must ---------------------------------------------------------------------------
def test_time_limit_interrupts_a_hang():
    t0 = time.perf_counter()
    with pytest.raises(F.CaseTimeout), F.time_limit(0.2):
        time.sleep(3)
    assert time.perf_counter() - t0 < 2


def test_harness_flags_a_reader_that_writes_outside_or_raises_foreign_errors(tmp_path, monkeypatch):
    import sr_core.io.archive as archive

    def escaping(arc, dest, **kw):
        (Path(arc).parent.parent / "sentinel" / "pwned").write_text("x")
        return []

    monkeypatch.setattr(archive, "extract_archive", escaping)
    out = F.check_archive_case(tmp_path / "a", F.NumpyRng(1))
    assert out.is_bug and "outside" in out.detail

    import sr_core.io.eopatch as eopatch

    monkeypatch.setattr(eopatch, "load_eopatch", lambda folder: {}[0])
    out = F.check_folder_case(tmp_path / "b", F.NumpyRng(1))
    assert out.is_bug and "KeyError" in out.detail


# -- regressions: one per bug the fuzzing found --------------------------------------------------------------------------
@pytest.fixture
def patch_1x(tmp_path, small_patch):
    return write_eopatch(small_patch, tmp_path / "p")


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "[" + "9" * 5000 + "]"])
def test_json_too_deep_or_with_giant_integers(patch_1x, text):  # bugs 1 (RecursionError), 6 (ValueError, 4300 digits)
    (patch_1x / "timestamps.json").write_text(text)
    with pytest.raises(PatchFormatError, match=r"timestamps\.json"):
        load_eopatch(patch_1x)


def test_timestamp_out_of_range_in_utc(patch_1x):  # bug 7: OverflowError from astimezone
    (patch_1x / "timestamps.json").write_text(json.dumps(["0001-01-01T00:00:00+05:00"] * 3))
    with pytest.raises(PatchFormatError, match="years 1–9999"):
        load_eopatch(patch_1x)


def test_bbox_with_integer_beyond_float_range(patch_1x):  # bug 10: OverflowError from float(int)
    geo = json.loads((patch_1x / "bbox.geojson").read_text())
    geo["coordinates"][0][0][0] = 10**400
    (patch_1x / "bbox.geojson").write_text(json.dumps(geo))
    with pytest.raises(PatchFormatError, match=r"bbox\.geojson"):
        load_eopatch(patch_1x)


@pytest.mark.parametrize("header", [
    "{'descr': '<u2', 'fortran_order': False, 'shape': (1,), \x00",  # bug 4: tokenize.TokenError inside numpy
    "{'descr': ('<u2', (2, 2)), 'fortran_order': False, 'shape': (1,), }",
    "{'descr': '<u2', 'fortran_order': False, 'shape': (" + "0, " * 70 + "), }",  # bug 9: > 64 axes at reshape
    f"{{'descr': '<u2', 'fortran_order': False, 'shape': ({2**62}, 0), }}",  # bug 9: zero-size but too large to index
])
def test_odd_npy_headers(patch_1x, header):
    f = next((patch_1x / "data").glob("BANDS.npy*"))
    f.write_bytes(gzip.compress(F._npy_header(header)))
    with pytest.raises(PatchFormatError, match="BANDS"):
        load_eopatch(patch_1x)


def test_gzip_bomb_is_refused_before_decompressing(patch_1x):  # bug 8: 2 GB of zeros from a 2 MB file
    f = next((patch_1x / "data").glob("BANDS.npy*"))
    f.write_bytes(F._gzip_bomb(2 * 1024**3))
    t0 = time.perf_counter()
    with pytest.raises(PatchFormatError, match="gzip bomb"):
        load_eopatch(patch_1x)
    assert time.perf_counter() - t0 < 1


@pytest.mark.parametrize("method", [zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2])  # bugs 2, 3: LZMAError / OSError escaped
def test_corrupt_lzma_or_bzip2_zip_member(tmp_path, method):
    make_challenge_patch(tmp_path / "src" / "eopatch", T=2)
    arc = tmp_path / "up.zip"
    with zipfile.ZipFile(arc, "w", compression=method) as zf:
        for f in sorted((tmp_path / "src").rglob("*")):
            zf.write(f, f.relative_to(tmp_path / "src").as_posix())
    raw = bytearray(arc.read_bytes())
    with zipfile.ZipFile(arc) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("BANDS.npy.gz"))
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(start + 12, start + 40, 3):  # corrupt the compressed stream, keep the zip directory intact
        raw[k] ^= 0x5A
    arc.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="corrupt"):
        extract_archive(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_member_name_too_long_for_the_file_system(tmp_path):  # bug 5: OSError ENAMETOOLONG escaped
    arc = tmp_path / "up.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("eopatch/" + "a" * 300, b"x")
    with pytest.raises(ArchiveError, match="longer than file systems allow"):
        extract_archive(arc, tmp_path / "out")
    with pytest.raises(SRCoreError):
        open_patches(arc)


def test_valid_cases_do_load(tmp_path):
    # the base of every case is a valid patch: without mutations it must load, in both layouts
    loaded = 0
    for seed in range(8):
        case = F.build_patch_folder(tmp_path / f"c{seed}", F.NumpyRng(seed))
        try:
            p = load_eopatch(case.folder)
        except PatchFormatError as exc:  # only the deliberate dtype/norm mismatch may refuse: say which
            pytest.fail(f"valid base case {seed} refused: {exc}")
        assert p.shape == case.thw and np.isfinite(p.bands).all()
        loaded += 1
    assert loaded == 8


# -- security review: hostile uploads that loaded, or crashed outside SRCoreError -------------------------------------
def _header_only_npy(path: Path, shape: tuple[int, ...], dtype: str) -> None:
    """A .npy whose header declares ``shape`` but holds no data: enough for every check made before allocating."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(path.name.split(".")[0] + ".npy*"):
        old.unlink()
    path.write_bytes(F._npy_header(f"{{'descr': '{np.dtype(dtype).str}', 'fortran_order': False, 'shape': {shape}, }}"))


def test_meta_info_json_is_capped_in_total(patch_1x):  # 3 × 16 MB of "[[],[],…]" made 2.4 GB of Python objects
    body = json.dumps([[] for _ in range(150_000)])  # 0.6 MB each, under the per-file limit
    for i in range(3):
        (patch_1x / "meta_info" / f"m{i}.json").write_text(body)
    with pytest.raises(PatchFormatError, match=r"p/meta_info/m1\.json: the metadata JSON of this patch comes to more "
                                               r"than 1 MB in all.*remove the large files"):
        load_eopatch(patch_1x)
    (patch_1x / "meta_info" / "m1.json").unlink()
    (patch_1x / "meta_info" / "m2.json").unlink()
    assert len(load_eopatch(patch_1x).info.meta["m0"]) == 150_000  # under the cap: read as before


def test_meta_info_file_count_is_capped(patch_1x):
    from sr_core.io.eopatch import MAX_META_FILES

    for i in range(MAX_META_FILES + 1):
        (patch_1x / "meta_info" / f"k{i}.json").write_text("1")
    with pytest.raises(PatchFormatError, match=rf"p/meta_info: more than {MAX_META_FILES} files.*remove the others"):
        load_eopatch(patch_1x)


def test_legacy_meta_pickle_is_held_to_the_metadata_cap(patch_1x):
    import pickle

    (patch_1x / "meta_info.pkl.gz").write_bytes(gzip.compress(pickle.dumps({"x": "a" * 2_000_000}, protocol=4)))
    with pytest.raises(PatchFormatError, match=r"meta_info\.pkl\.gz: (file|pickle) larger than 1048576 bytes"):
        load_eopatch(patch_1x)


@pytest.mark.parametrize("depth", [40, 600, 5000])
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_deeply_nested_meta_info_json_is_refused_clearly(patch_1x, depth, kind):  # RecursionError at 600 deep
    text = "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth
    (patch_1x / "meta_info" / "deep.json").write_text(text)
    with pytest.raises(PatchFormatError, match=r"deep\.json: JSON nested more than 32 levels deep"):
        load_eopatch(patch_1x)


def test_metadata_nesting_a_little_is_still_read(patch_1x):
    (patch_1x / "meta_info" / "nested.json").write_text("[" * 30 + "]" * 30)
    assert "nested" in load_eopatch(patch_1x).info.meta


def test_to_jsonable_refuses_deep_nesting_without_recursion_error():
    from sr_core.io.legacy_pickle import to_jsonable

    deep: Any = []
    for _ in range(3000):
        deep = [deep]
    with pytest.raises(PatchFormatError, match="nested more than 64 levels"):
        to_jsonable({"k": deep})
    assert to_jsonable({"k": (1, {2}, [[3]])}) == {"k": [1, [2], [[3]]]}


def test_band_cube_without_a_date_is_refused(patch_1x):  # IndexError in _bands_to_reflectance
    from sr_core.io import read_b10

    for f in [*(patch_1x / "data").glob("*"), *(patch_1x / "mask").glob("*"), *(patch_1x / "scalar").glob("*")]:
        f.unlink()
    np.save(patch_1x / "data" / "BANDS.npy", np.zeros((0, 8, 10, 12), np.uint16))
    (patch_1x / "timestamps.json").write_text("[]")
    with pytest.raises(PatchValidationError, match=r"data/BANDS\.npy: the band cube has no date .*T = 0.*at least "
                                                   "one date"):
        load_eopatch(patch_1x)
    np.save(patch_1x / "data" / "BANDS.npy", np.zeros((0, 8, 10, 13), np.uint16))
    with pytest.raises(PatchValidationError, match="no date"):
        read_b10(patch_1x)


def _set_bbox(folder: Path, epsg: int, x0: float, y0: float, x1: float, y1: float) -> None:
    ring = [[x0, y0], [x0, y1], [x1, y1], [x1, y0], [x0, y0]]
    crs = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}
    (folder / "bbox.geojson").write_text(json.dumps({"crs": crs, "type": "Polygon", "coordinates": [ring]}))


@pytest.mark.parametrize(("epsg", "box", "why"), [
    (4326, (10.0, 95.0, 10.1, 95.1), "does not lie on the Earth"),  # latitude 95
    (4326, (190.0, 45.0, 190.1, 45.1), "does not lie on the Earth"),  # longitude 190
    (32633, (1e15, 1e15, 1e15 + 1e9, 1e15 + 1e9), "does not lie on the Earth"),  # UTM metres no projection reaches
    (4326, (10.0, 89.999, 10.1, 90.0), "beyond the ±85.0511° the map can show"),  # the web map ends at 85.05°
])
def test_bbox_that_cannot_be_mapped_is_refused(patch_1x, epsg, box, why):  # read, then crashed every map page
    from sr_core.io.eopatch import read_bbox

    pytest.importorskip("pyproj")
    _set_bbox(patch_1x, epsg, *box)
    with pytest.raises(PatchFormatError, match=rf"p/bbox\.geojson: bbox \(.*\) EPSG:{epsg} .*{why}.*check that the "
                                               rf"coordinates are in EPSG:{epsg}"):
        read_bbox(patch_1x)
    with pytest.raises(PatchFormatError, match=why):
        load_eopatch(patch_1x)


def test_bbox_in_latitude_longitude_on_the_map_still_reads(patch_1x):
    from sr_core.io.eopatch import read_bbox

    _set_bbox(patch_1x, 4326, 14.5, 46.0, 14.5013, 46.0007)
    assert read_bbox(patch_1x).epsg == 4326
    _set_bbox(patch_1x, 32633, 540000.0, 5120000.0, 540100.0, 5120080.0)
    assert load_eopatch(patch_1x).bbox.bounds == (540000.0, 5120000.0, 540100.0, 5120080.0)


def test_patch_memory_budget_refuses_before_allocating(tmp_path, small_patch):  # 22.8 MB of gzip made 5.5 GB
    import tracemalloc

    from sr_core.io import read_b10

    folder = write_eopatch(small_patch, tmp_path / "big")
    for f in [*(folder / "data").glob("CLP*"), *(folder / "mask").glob("*"), *(folder / "scalar").glob("*")]:
        f.unlink()
    T, H, W = 2, 6000, 6000
    _header_only_npy(folder / "data" / "BANDS.npy", (T, H, W, 12), "u1")  # 0.86 GB uint8: 3.5 GB as float32
    _header_only_npy(folder / "mask_timeless" / "CULTIVATED.npy", (H, W, 1), "b1")  # 10 m labels: × 16 at 2.5 m
    (folder / "timestamps.json").write_text(json.dumps(["2019-04-01T10:00:00", "2019-04-13T10:00:00"]))
    tracemalloc.start()
    try:
        with pytest.raises(PatchValidationError, match=r"big: reading this patch would take \d\.\d GB of memory "
                                                       r"\(big/data/BANDS\.npy \(2, 6000, 6000, 12\) uint8 as stored and as "
                                                       r"float32 reflectance: 4\.32 GB; big/mask_timeless/CULTIVATED\.npy "
                                                       r"\(10 m labels, repeated 4 × 4\).*over the 2\.1 GB one patch may use"):
            load_eopatch(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6  # refused from the headers: nothing cube-sized was allocated
    _header_only_npy(folder / "data" / "BANDS.npy", (12, H, W, 13), "u1")
    with pytest.raises(PatchValidationError, match="reading this patch would take"):
        read_b10(folder)


def test_patch_memory_budget_admits_a_full_challenge_patch(tmp_path):
    from sr_core.io.eopatch import MAX_PATCH_BYTES, _check_patch_memory

    folder = tmp_path / "challenge"
    T, H, W = 48, 500, 500
    _header_only_npy(folder / "data" / "BANDS.npy", (T, H, W, 13), "f8")  # the eo-learn 1.x float64 copy: the largest
    _header_only_npy(folder / "data" / "CLP.npy", (T, H, W, 1), "u1")
    for name in ("CLM", "IS_DATA", "SCL"):
        _header_only_npy(folder / "mask" / f"{name}.npy", (T, H, W, 1), "u1")
    _header_only_npy(folder / "scalar" / "NORM_FACTORS.npy", (T, 1), "f4")
    for name, dt in (("CULTIVATED", "b1"), ("NOT_DECLARED", "b1"), ("ALL_POLYS", "u2")):
        _header_only_npy(folder / "mask_timeless" / f"{name}.npy", (4 * H, 4 * W, 1), dt)
    _check_patch_memory(folder, folder / "data" / "BANDS.npy", "challenge/data/BANDS.npy")  # no error
    assert MAX_PATCH_BYTES >= 2 * 1024**3


def test_patch_memory_budget_is_the_operators_to_raise(tmp_path, monkeypatch):
    """A machine with the memory reads larger patches: $SR_CORE_MAX_PATCH_GB, named in the refusal; nonsense is a clear
    configuration error."""
    from sr_core.errors import ConfigError
    from sr_core.io.eopatch import _check_patch_memory

    folder = tmp_path / "big"
    _header_only_npy(folder / "data" / "BANDS.npy", (48, 1000, 1000, 12), "u2")  # 1.15 GB stored + 2.3 GB as float32
    with pytest.raises(PatchValidationError, match=r"over the 2\.1 GB one patch may use.*\$SR_CORE_MAX_PATCH_GB"):
        _check_patch_memory(folder, folder / "data" / "BANDS.npy", "big/data/BANDS.npy")
    monkeypatch.setenv("SR_CORE_MAX_PATCH_GB", "4")
    _check_patch_memory(folder, folder / "data" / "BANDS.npy", "big/data/BANDS.npy")  # no error
    monkeypatch.setenv("SR_CORE_MAX_PATCH_GB", "lots")
    with pytest.raises(ConfigError, match="SR_CORE_MAX_PATCH_GB='lots' is not a size in GB"):
        _check_patch_memory(folder, folder / "data" / "BANDS.npy", "big/data/BANDS.npy")


def _meta_file(folder: Path, key: str, value: Any) -> None:
    (folder / "meta_info" / f"{key}.json").write_text(json.dumps(value))


@pytest.mark.parametrize(("key", "value"), [
    ("input", {"season": None}),  # made prepare_input skip every step
    ("input", {"season": 2019}),
    ("radiometric_offset", {"subtracted": "x", "dates": []}),  # ValueError in removed_offset (series_warnings)
    ("non_finite", "zzz"),  # ValueError in prepare_input
    ("labels_10m", 5),  # TypeError in score_patch
    ("band_layout", {"stated": 5, "absent": 7}),
    ("cloud_masks", {"computed": True, "method": {"<b>x</b>": 1}}),
])
def test_reader_meta_keys_from_a_file_are_dropped_unless_well_formed(patch_1x, key, value):
    from sr_core.prepare import input_record, prepare_input
    from sr_core.quality import series_warnings

    _meta_file(patch_1x, key, value)
    p = load_eopatch(patch_1x)
    assert key not in p.info.meta
    assert any(n.startswith(f"meta_info {key} ignored: ") for n in p.info.notes), p.info.notes
    series_warnings(p)
    prepared = prepare_input(p)
    assert prepared is not p and input_record(prepared)["season"] == 2019 and input_record(prepared)["dates_used"] == 3


def test_a_stated_offset_record_without_harmonized_subtracts_nothing(patch_1x):
    from sr_core.quality import reflectance_formula, removed_offset

    _meta_file(patch_1x, "radiometric_offset", {"subtracted": 0.5, "dates": ["2019-04-01", "2019-04-11", "2019-04-21"]})
    p = load_eopatch(patch_1x)
    assert removed_offset(p)[1] == [] and "−" not in reflectance_formula(p)


def test_a_forged_input_record_cannot_skip_filling_a_missing_band(patch_1x, small_patch):
    """A record that describes the patch (season, dates) is still refused when preparing would change the data:
    here B04 holds no signal, and the model must get it filled."""
    from sr_core.prepare import input_record, prepare_input

    bands = small_patch.bands.copy()
    bands[..., 3] = 0
    write_eopatch(small_patch.replace(bands=bands), patch_1x, overwrite=True)
    forged = {"season": 2019, "season_complete": False, "seasons_in_series": [2019], "dates_used": 3, "dates_total": 3,
              "first_date": "2019-04-01", "last_date": "2019-04-21", "filled_bands": {}, "cloud_source": "CLM",
              "coregistered": None, "non_finite": 0.0}
    _meta_file(patch_1x, "input", forged)
    p = load_eopatch(patch_1x)
    assert "input" not in p.info.meta
    assert any("meta_info input ignored: band(s) B04 hold no signal" in n for n in p.info.notes)
    assert input_record(prepare_input(p))["filled_bands"] == {"B04": "B05"}


def test_what_the_library_writes_is_read_back_as_before(tmp_path, small_patch):
    """The reader's own records survive write → read: a prepared patch (filled bands) keeps its input record and is
    not prepared again; computed cloud masks, NaN no data and the offset history keep theirs."""
    import dataclasses

    from sr_core.clouds import ensure_cloud_masks, masks_were_computed
    from sr_core.prepare import input_record, prepare_input

    bands = small_patch.bands.copy()
    bands[..., 0] = 0  # B01 never delivered: filled from B02 by prepare_input
    bands[1, :2, :3, :] = np.nan  # no data the xarray way
    folder = tmp_path / "raw"
    write_eopatch(small_patch.replace(bands=np.nan_to_num(bands)), folder)
    for f in (folder / "data").glob("BANDS*"):
        f.unlink()
    np.save(folder / "data" / "BANDS.npy", bands)
    read = load_eopatch(folder)
    assert read.info.meta["non_finite"] > 0
    prepared = prepare_input(ensure_cloud_masks(read.replace(cloud_mask=None)))
    meta = {**prepared.info.meta, "harmonized": True,
            "radiometric_offset": {"subtracted": 0.1, "dates": ["2019-04-01"], "source": "meta_info boa_add_offset = -1000"}}
    prepared = prepared.replace(info=dataclasses.replace(prepared.info, meta=meta))
    back = load_eopatch(write_eopatch(prepared, tmp_path / "prepared"))
    assert not any(n.startswith("meta_info ") for n in back.info.notes), back.info.notes
    for key in ("input", "non_finite", "cloud_masks", "radiometric_offset"):
        assert back.info.meta[key] == prepared.info.meta[key], key
    assert input_record(back)["filled_bands"] == {"B01": "B02"}
    assert prepare_input(back) is back and masks_were_computed(back)
