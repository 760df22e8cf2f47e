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

from sr_core.errors import ArchiveError, PatchFormatError, SRCoreError
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
