"""EOPatch reading (both layouts), malformed inputs, and writing (round trip)."""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_CHALLENGE, REAL_L1C, REAL_SERIES, need
from fixtures_io import make_challenge_patch, save_npy_gz

from sr_core import Patch, PatchInfo, ProductLevel, Source
from sr_core.errors import PatchFormatError, PatchValidationError
from sr_core.io import EOPatchExistsError, load_eopatch, read_npy, write_eopatch

# -- real fixtures ---------------------------------------------------------------------------------------------------


@pytest.mark.real_data
def test_real_fixtures_load_and_agree():
    a = load_eopatch(need(REAL_CHALLENGE))  # eo-learn 0.9: uint16 DN + gzipped pickles
    b = load_eopatch(need(REAL_L1C))  # eo-learn 1.x: float32 13-band L1C + geojson/json
    assert a.bands.shape == b.bands.shape == (5, 101, 100, 12)
    assert a.bbox == b.bbox and a.bbox.epsg == 32633
    assert a.timestamps == b.timestamps
    assert a.timestamps[0] == datetime(2015, 7, 11, 10, 0, 8)
    # same reflectance to within the uint16 rounding of the challenge cube (DN = round(reflectance / 1e-4))
    assert np.abs(a.bands - b.bands).max() <= 0.5e-4 + 1e-6
    assert a.info.norm_factor == pytest.approx(1e-4) and b.info.norm_factor is None
    # CLP: uint8 0-255 in the challenge layout, float 0-1 in the 1.x copy
    assert np.abs(a.cloud_prob - b.cloud_prob).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(a.cloud_mask, b.cloud_mask) and a.is_data.all() and b.is_data.all()
    # frames 2 and 3 are the cloudy ones (README)
    assert list(np.flatnonzero(a.cloud_fraction() > 0.5)) == [1, 2]
    # L1C cube: B10 dropped and noted. The challenge-layout BANDS cube (really L1C data, its metadata silent) is
    # detected as L1C from its reflectance, and the note gives the reason (the blue path radiance it measured)
    assert b.info.product_level is ProductLevel.L1C and any("dropped B10" in n for n in b.info.notes)
    assert a.info.product_level is ProductLevel.L1C
    assert any("L1C detected from reflectance" in n and "B01 = 0.100" in n for n in a.info.notes), a.info.notes
    assert a.info.source is b.info.source is Source.REAL
    assert a.info.meta["size_x"] == 100 and a.info.meta["size_y"] == 101
    json.dumps(dict(a.info.meta))  # plain JSON-able values
    # labels: only the benchmark names are read (the 1.x copy's RABA proxy is not taken for CULTIVATED)
    assert a.cultivated.shape == (404, 400) and a.cultivated.any() and not a.not_declared.any()
    assert b.cultivated is None
    assert a.scl is None and b.scl is None
    assert a.name == REAL_CHALLENGE.name


@pytest.mark.real_data
def test_series_without_band_cube_gives_documented_error():
    with pytest.raises(PatchFormatError, match="no band cube") as e:
        load_eopatch(need(REAL_SERIES))
    msg = str(e.value)
    assert REAL_SERIES.name in msg and "data/: CLP" in msg and "NDVI" in msg


@pytest.mark.real_data
def test_real_challenge_round_trip(tmp_path):
    a = load_eopatch(need(REAL_CHALLENGE))
    c = load_eopatch(write_eopatch(a, tmp_path / "copy"))
    assert np.array_equal(a.bands, c.bands)  # DN × 1e-4 survives exactly
    assert np.abs(a.cloud_prob - c.cloud_prob).max() <= 1e-6
    assert np.array_equal(a.cultivated, c.cultivated) and c.timestamps == a.timestamps and c.bbox == a.bbox


# -- synthetic challenge layout --------------------------------------------------------------------------------------


def test_challenge_layout_values(tmp_path):
    w = make_challenge_patch(tmp_path / "eopatch-0", T=3, H=6, W=5)
    p = load_eopatch(tmp_path / "eopatch-0")
    assert p.shape == (3, 6, 5)
    np.testing.assert_array_equal(p.bands, (w["dn"] * np.float32(1e-4)).astype(np.float32))
    np.testing.assert_allclose(p.cloud_prob, w["clp"][..., 0] / 255, atol=1e-7)
    np.testing.assert_array_equal(p.cloud_mask, w["clm"][..., 0].astype(bool))
    assert not p.is_data[0, 0, 0] and p.is_data.sum() == p.is_data.size - 1
    assert p.scl.dtype == np.uint8 and p.scl.max() <= 11
    np.testing.assert_array_equal(p.cultivated, w["cultivated"])
    np.testing.assert_array_equal(p.not_declared, w["not_declared"])
    np.testing.assert_array_equal(p.all_polys, w["all_polys"])
    assert p.timestamps == tuple(w["timestamps"]) and p.bbox == w["bbox"]
    assert p.info.meta["time_difference"] == 7200.0
    assert p.info.meta["time_interval"] == ["2019-03-01T00:00:00", "2019-09-01T00:00:00"]
    assert p.name == "eopatch-0" and p.info.norm_factor == pytest.approx(1e-4)


def test_single_date_and_missing_optional_features(tmp_path):
    make_challenge_patch(tmp_path / "p", T=1, labels=False, scl=False)
    for f in ("data/CLP.npy.gz", "mask/CLM.npy.gz", "mask/IS_DATA.npy.gz", "scalar/NORM_FACTORS.npy.gz"):
        (tmp_path / "p" / f).unlink()
    p = load_eopatch(tmp_path / "p")
    assert p.shape == (1, 6, 5)
    assert p.cloud_prob is p.cloud_mask is p.is_data is p.scl is p.cultivated is p.all_polys is None
    assert any("no scalar/NORM_FACTORS" in n for n in p.info.notes)  # default 1e-4 applied, and said so


def test_meta_product_level_and_source_are_honoured(tmp_path, small_patch):
    sim = small_patch.replace(info=PatchInfo(source="simulated", product_level="L1C"))
    p = load_eopatch(write_eopatch(sim, tmp_path / "s"))
    assert p.info.source is Source.SIMULATED and p.info.product_level is ProductLevel.L1C
    assert not any("assumed" in n for n in p.info.notes)


# -- malformed inputs: each its own error naming the file ------------------------------------------------------------


@pytest.fixture
def patch_dir(tmp_path) -> Path:
    make_challenge_patch(tmp_path / "eopatch-7", T=3, H=6, W=5)
    return tmp_path / "eopatch-7"


def test_truncated_npy_gz(patch_dir):
    f = patch_dir / "data" / "BANDS.npy.gz"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(PatchFormatError, match=r"BANDS\.npy\.gz.*truncated"):
        load_eopatch(patch_dir)


def test_corrupt_gzip_crc(patch_dir):
    f = patch_dir / "mask" / "CLM.npy.gz"
    raw = bytearray(f.read_bytes())
    raw[-8] ^= 0xFF  # CRC32 in the gzip trailer
    f.write_bytes(bytes(raw))
    with pytest.raises(PatchFormatError, match=r"CLM\.npy\.gz"):
        load_eopatch(patch_dir)


def test_not_a_npy_file(patch_dir):
    (patch_dir / "data" / "CLP.npy.gz").write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(PatchFormatError, match=r"CLP\.npy\.gz: not a \.npy array"):
        load_eopatch(patch_dir)


def test_not_gzip_although_named_gz(patch_dir):
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 6, 5, 1), np.uint8))
    (patch_dir / "mask" / "CLM.npy.gz").write_bytes(buf.getvalue())
    with pytest.raises(PatchFormatError, match=r"CLM\.npy\.gz: not a gzip file"):
        load_eopatch(patch_dir)


def test_wrong_ndim(patch_dir):
    save_npy_gz(patch_dir / "data" / "BANDS.npy.gz", np.zeros((6, 5, 12), np.uint16))
    with pytest.raises(PatchFormatError, match=r"BANDS\.npy\.gz: array has 3 dimensions"):
        load_eopatch(patch_dir)


def test_wrong_ndim_mask(patch_dir):
    save_npy_gz(patch_dir / "mask" / "CLM.npy.gz", np.zeros((3, 6, 5, 2), np.uint8))
    with pytest.raises(PatchFormatError, match=r"CLM\.npy\.gz: array has 4 dimensions"):
        load_eopatch(patch_dir)


@pytest.mark.parametrize(
    ("feature", "arr", "pattern"),
    [
        ("data/BANDS", np.zeros((3, 6, 5, 12), bool), r"BANDS\.npy\.gz: dtype bool"),
        ("mask/CLM", np.full((3, 6, 5, 1), 0.5, np.float32), r"CLM\.npy\.gz: float values other than 0 and 1 \(e\.g\. 0\.5\)"),
        ("mask/CLM", np.full((3, 6, 5, 1), 2, np.uint8), r"CLM\.npy\.gz: values 2–2, expected 0/1 only \(or 0/255\)"),
        ("data/CLP", np.zeros((3, 6, 5, 1), np.complex64), r"CLP\.npy\.gz: array dtype complex64 is not a plain"),
        ("mask/SCL", np.full((3, 6, 5, 1), 14, np.uint8), r"SCL\.npy\.gz: values 14–14"),
    ],
)
def test_wrong_dtype_or_values(patch_dir, feature, arr, pattern):
    save_npy_gz(patch_dir / f"{feature}.npy.gz", arr)
    with pytest.raises(PatchFormatError, match=pattern):
        load_eopatch(patch_dir)


def test_masks_as_images_and_as_floats_are_read(patch_dir):
    """A cloud mask saved as a black / white image (0/255) or as float 0.0 / 1.0 reads as the 0/1 mask it is."""
    ref = load_eopatch(patch_dir).cloud_mask
    save_npy_gz(patch_dir / "mask" / "CLM.npy.gz", (ref[..., None] * 255).astype(np.uint8))
    p = load_eopatch(patch_dir)
    assert np.array_equal(p.cloud_mask, ref) and any("a 0/255 mask, read as 0/1" in n for n in p.info.notes)
    save_npy_gz(patch_dir / "mask" / "CLM.npy.gz", ref[..., None].astype(np.float32))
    assert np.array_equal(load_eopatch(patch_dir).cloud_mask, ref)
    assert ref.any() and not ref.all()  # the fixture's mask has both values


def test_object_arrays_are_refused_without_unpickling(patch_dir):
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (patch_dir / "mask" / "IS_DATA.npy.gz").write_bytes(gzip.compress(buf.getvalue()))
    with pytest.raises(PatchFormatError, match=r"IS_DATA\.npy\.gz: array dtype object"):
        load_eopatch(patch_dir)


def test_absurd_header_refused_before_allocating(tmp_path):
    f = tmp_path / "huge.npy"
    with open(f, "wb") as fh:
        np.lib.format.write_array_header_2_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6, 12)})
        fh.write(b"\0" * 64)
    with pytest.raises(PatchFormatError, match=r"huge\.npy: header declares .* over the"):
        read_npy(f)


def test_plain_npy_shorter_than_header_says(tmp_path):
    f = tmp_path / "short.npy"
    np.save(f, np.arange(100, dtype=np.uint16))
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(PatchFormatError, match="truncated"):
        read_npy(f)


def test_t_mismatch_between_bands_and_masks(patch_dir):
    save_npy_gz(patch_dir / "mask" / "CLM.npy.gz", np.zeros((2, 6, 5, 1), np.uint8))
    with pytest.raises(PatchValidationError, match=r"mask/CLM\.npy\.gz: has T=2 dates but .*BANDS\.npy\.gz has T=3"):
        load_eopatch(patch_dir)


def test_grid_mismatch(patch_dir):
    save_npy_gz(patch_dir / "data" / "CLP.npy.gz", np.zeros((3, 6, 4, 1), np.uint8))
    with pytest.raises(PatchValidationError, match=r"CLP\.npy\.gz: grid 6 × 4 differs"):
        load_eopatch(patch_dir)


def test_a_20_m_scl_is_refused_with_the_resampling_that_fixes_it(tmp_path, small_patch):
    folder = write_eopatch(small_patch, tmp_path / "scl20")
    save_npy_gz(folder / "mask" / "SCL.npy.gz", np.full((3, 4, 5, 1), 4, np.uint8))  # bands 8 × 10 at 10 m
    with pytest.raises(PatchValidationError, match=r"SCL\.npy\.gz: grid 4 × 5 differs .*at 20 m .*repeated 2 × 2"):
        load_eopatch(folder)


def test_timestamp_count_mismatch(patch_dir):
    (patch_dir / "timestamp.pkl.gz").unlink()
    (patch_dir / "timestamps.json").write_text('["2019-03-05T10:00:00"]')
    with pytest.raises(PatchValidationError, match="1 timestamps but"):
        load_eopatch(patch_dir)


def test_label_not_4x(patch_dir):
    save_npy_gz(patch_dir / "mask_timeless" / "CULTIVATED.npy.gz", np.zeros((18, 15, 1), bool))  # 3× grid
    with pytest.raises(PatchValidationError, match=r"CULTIVATED\.npy\.gz: label grid 18 × 15 is neither 4×.*nor that "
                                                   r"grid itself"):
        load_eopatch(patch_dir)


def test_labels_on_the_10m_band_grid_are_repeated_4x4_with_a_note(patch_dir):
    """An LPIS rasterised onto the Sentinel-2 pixels (H × W, as real labelled extractions often come) is read: each
    10 m label becomes its 4 × 4 block at 2.5 m, the patch says so, and evaluate --real shows it per patch."""
    from sr_core.baselines import get_baseline
    from sr_core.evaluation import Scored, score_patch

    lab = np.random.default_rng(4).uniform(size=(6, 5, 1)) > 0.5
    save_npy_gz(patch_dir / "mask_timeless" / "CULTIVATED.npy.gz", lab)
    p = load_eopatch(patch_dir)
    assert p.cultivated.shape == (24, 20)
    np.testing.assert_array_equal(p.cultivated, np.kron(lab[..., 0], np.ones((4, 4), bool)))
    assert p.not_declared.shape == (24, 20)  # the other label, still at 2.5 m, is read as it is
    assert p.info.meta["labels_10m"] == ["CULTIVATED"]
    assert any("CULTIVATED.npy.gz: labels on the 10 m band grid (6 × 5), repeated 4 × 4" in n for n in p.info.notes)
    row = score_patch(p, {"ndvi": get_baseline("ndvi")}, Scored(scores={"ndvi": []}))
    assert row["labels_10m"] == ["CULTIVATED"]


def test_missing_bands(patch_dir):
    (patch_dir / "data" / "BANDS.npy.gz").unlink()
    with pytest.raises(PatchFormatError, match=r"eopatch-7: no band cube.*found data/: CLP; mask/: CLM, IS_DATA, SCL"):
        load_eopatch(patch_dir)


def test_wrong_band_count(patch_dir):
    save_npy_gz(patch_dir / "data" / "BANDS.npy.gz", np.zeros((3, 6, 5, 10), np.uint16))
    with pytest.raises(PatchFormatError, match="10 bands, expected 12"):
        load_eopatch(patch_dir)


def test_missing_bbox_and_timestamps(patch_dir):
    (patch_dir / "bbox.pkl.gz").unlink()
    with pytest.raises(PatchFormatError, match="no bbox"):
        load_eopatch(patch_dir)
    make_challenge_patch(patch_dir.parent / "b")
    (patch_dir.parent / "b" / "timestamp.pkl.gz").unlink()
    with pytest.raises(PatchFormatError, match="no timestamps"):
        load_eopatch(patch_dir.parent / "b")


def test_a_bbox_crs_that_proj_does_not_know_is_a_clear_error(tmp_path):
    """EPSG:999999 is a positive integer but no CRS: refused when read (it used to crash the maps later), with the fix;
    a real zone far from the challenge's (EPSG:32631, Flanders) and latitude / longitude read as before."""
    from sr_core.io import write_eopatch
    from sr_core.simulate import simulate_patch

    p = simulate_patch(1, size=8, split="test")
    for epsg in (32631, 4326):
        bb = p.bbox if epsg != 4326 else type(p.bbox)(14.5, 46.0, 14.51, 46.01, 4326)
        folder = write_eopatch(p.replace(bbox=type(p.bbox)(*bb.bounds, epsg)), tmp_path / f"ok{epsg}")
        assert load_eopatch(folder).bbox.epsg == epsg
    folder = write_eopatch(p, tmp_path / "bad")
    geo = folder / "bbox.geojson"
    geo.write_text(geo.read_text().replace("EPSG::32633", "EPSG::999999"))
    with pytest.raises(PatchFormatError, match=r"EPSG:999999 is not a coordinate reference system PROJ knows.*EPSG:32633"):
        load_eopatch(folder)
    geo.write_text(geo.read_text().replace("EPSG::999999", "EPSG::5714"))  # a real code, but heights above sea level
    with pytest.raises(PatchFormatError, match=r"EPSG:5714 .*not a map projection or latitude / longitude"):
        load_eopatch(folder)


def test_ambiguous_duplicate_files(patch_dir):
    np.save(patch_dir / "mask" / "CLM.npy", np.zeros((3, 6, 5, 1), np.uint8))
    with pytest.raises(PatchFormatError, match=r"both CLM\.npy and CLM\.npy\.gz exist"):
        load_eopatch(patch_dir)


def test_not_a_folder(tmp_path):
    with pytest.raises(PatchFormatError, match="no such EOPatch folder"):
        load_eopatch(tmp_path / "nope")
    (tmp_path / "x.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(PatchFormatError, match="open_patches"):
        load_eopatch(tmp_path / "x.zip")


def test_eolearn_1_0_to_1_4_timestamp_json_is_read(tmp_path, small_patch):
    """eo-learn 1.0–1.4 saved the dates as timestamp.json (1.5 writes timestamps.json and still reads the old name)."""
    folder = write_eopatch(small_patch, tmp_path / "eol14")
    (folder / "timestamps.json").rename(folder / "timestamp.json")
    assert load_eopatch(folder).timestamps == small_patch.timestamps
    # saved again by eo-learn 1.5, the folder keeps the old file beside the new one: the new one wins
    (folder / "timestamps.json").write_text(json.dumps([t.isoformat() for t in small_patch.timestamps]))
    (folder / "timestamp.json").write_text(json.dumps(["2001-01-01T00:00:00"] * small_patch.n_dates))
    assert load_eopatch(folder).timestamps == small_patch.timestamps


@pytest.mark.parametrize("factor", [1.0, 1e4])
def test_norm_factors_that_do_not_give_reflectance_are_refused_with_the_fix(patch_dir, factor):
    """uint16 DN with NORM_FACTORS 1 (or 10 000) read as reflectance in the thousands: the model painted 4 % of a real
    patch cultivated and nothing said why. Refused, naming the factor and the fix."""
    save_npy_gz(patch_dir / "scalar" / "NORM_FACTORS.npy.gz", np.full((3, 1), factor, np.float32))
    with pytest.raises(PatchFormatError, match=r"scalar/NORM_FACTORS .*not 0–1.*NORM_FACTORS = 1e-4"):
        load_eopatch(patch_dir)


def test_eolearn_is_valid_is_the_clear_mask_of_a_patch_without_other_cloud_layers(tmp_path, small_patch):
    """eo-learn's IS_VALID (data and not cloud) was ignored: every cloud read as clear. With no CLM, CLP or SCL it
    is the cloud information; beside a CLM it is left alone."""
    valid = np.ones(small_patch.shape, bool)
    valid[1, 2:5, 3:7] = False
    bare = small_patch.replace(cloud_mask=None, cloud_prob=None)
    folder = write_eopatch(bare, tmp_path / "isvalid")
    np.save(folder / "mask" / "IS_VALID.npy", valid[..., None].astype(np.uint8))
    p = load_eopatch(folder)
    assert p.cloud_source == "CLM" and any("IS_VALID read as the clear mask" in n for n in p.info.notes)
    np.testing.assert_array_equal(p.valid_mask(), valid)
    folder = write_eopatch(small_patch, tmp_path / "withclm")
    np.save(folder / "mask" / "IS_VALID.npy", valid[..., None].astype(np.uint8))
    np.testing.assert_array_equal(load_eopatch(folder).cloud_mask, small_patch.cloud_mask)


def test_labels_in_the_challenge_mapping_0_1_2_are_read_with_2_as_not_declared(tmp_path, small_patch):
    """cultivated-mapping.json maps land-use code 100 (cultivated, not declared) to class 2: a label written with it
    was refused; it is read as cultivated = 1 and NOT_DECLARED = 2 (joined to the patch's own NOT_DECLARED if any)."""
    lab = np.zeros(small_patch.label_shape, np.uint8)
    lab[:8, :12] = 1
    lab[8:12, :12] = 2
    folder = write_eopatch(small_patch.replace(not_declared=None), tmp_path / "lab012")
    save_npy_gz(folder / "mask_timeless" / "CULTIVATED.npy.gz", lab[..., None])
    p = load_eopatch(folder)
    np.testing.assert_array_equal(p.cultivated, lab == 1)
    np.testing.assert_array_equal(p.not_declared, lab == 2)
    assert any("0 / 1 / 2" in n for n in p.info.notes)
    own = np.zeros(small_patch.label_shape, bool)
    own[20:24, :] = True  # the patch's own NOT_DECLARED: class 2 is joined to it, never scored as not cultivated
    save_npy_gz(folder / "mask_timeless" / "NOT_DECLARED.npy.gz", own[..., None])
    np.testing.assert_array_equal(load_eopatch(folder).not_declared, own | (lab == 2))
    lab[0, 0] = 3
    save_npy_gz(folder / "mask_timeless" / "CULTIVATED.npy.gz", lab[..., None])
    with pytest.raises(PatchFormatError, match=r"values 0–3, expected 0/1 only .*0 / 1 / 2 with 2 = not declared"):
        load_eopatch(folder)


@pytest.mark.parametrize("name", ["urn:ogc:def:crs:OGC:1.3:CRS84", "OGC:CRS84",
                                  "http://www.opengis.net/def/crs/EPSG/0/32633", "EPSG:32633"])
def test_bbox_crs_names_as_gdal_and_ogc_write_them(tmp_path, small_patch, name):
    from sr_core.geo import BBox

    epsg = 4326 if "CRS84" in name else 32633
    bb = BBox(14.5, 46.0, 14.5001, 46.0001, 4326) if epsg == 4326 else small_patch.bbox
    folder = write_eopatch(small_patch.replace(bbox=bb), tmp_path / "crs")
    geo = json.loads((folder / "bbox.geojson").read_text())
    geo["crs"]["properties"]["name"] = name
    (folder / "bbox.geojson").write_text(json.dumps(geo))
    assert load_eopatch(folder).bbox == bb


def test_a_band_cube_under_another_name_is_named_with_the_rename_that_fixes_it(tmp_path, small_patch):
    folder = write_eopatch(small_patch, tmp_path / "named")
    (folder / "data" / "BANDS.npy.gz").rename(folder / "data" / "L2A_data.npy.gz")
    with pytest.raises(PatchFormatError, match=r"if data/L2A_data is the band cube .*rename it to data/BANDS"):
        load_eopatch(folder)


def test_float_cube_holding_digital_numbers_is_refused(patch_dir):
    save_npy_gz(patch_dir / "data" / "BANDS.npy.gz", np.full((3, 6, 5, 12), 1500.0, np.float32))
    with pytest.raises(PatchFormatError, match="digital numbers stored as float"):
        load_eopatch(patch_dir)


# -- writing ---------------------------------------------------------------------------------------------------------


def test_write_read_round_trip(tmp_path, small_patch):
    sp = small_patch.replace(
        scl=np.random.default_rng(1).integers(0, 12, small_patch.shape).astype(np.uint8),
        all_polys=np.arange(np.prod(small_patch.label_shape)).reshape(small_patch.label_shape).astype(np.uint16),
        info=small_patch.info.with_note("made for a test"),
    )
    out = write_eopatch(sp, tmp_path / "rt")
    p = load_eopatch(out)
    assert isinstance(p, Patch) and p.shape == sp.shape
    assert np.abs(p.bands - sp.bands).max() <= 0.5e-4 + 1e-7
    assert np.abs(p.cloud_prob - sp.cloud_prob).max() <= 0.5 / 255 + 1e-7
    for name in ("cloud_mask", "is_data", "scl", "cultivated", "not_declared", "all_polys"):
        np.testing.assert_array_equal(getattr(p, name), getattr(sp, name), err_msg=name)
    assert p.timestamps == sp.timestamps and p.bbox == sp.bbox
    assert p.info.source is sp.info.source and p.info.product_level is sp.info.product_level
    assert "made for a test" in p.info.notes
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".")]  # no temp folders left


def test_written_layout_is_eolearn_1x(tmp_path, small_patch):
    out = write_eopatch(small_patch, tmp_path / "lay")
    T, H, W = small_patch.shape
    bands = read_npy(out / "data" / "BANDS.npy.gz")
    assert bands.dtype == np.uint16 and bands.shape == (T, H, W, 12)
    nf = read_npy(out / "scalar" / "NORM_FACTORS.npy.gz")
    assert nf.dtype == np.float32 and nf.shape == (T, 1) and np.all(nf == np.float32(1e-4))
    assert read_npy(out / "data" / "CLP.npy.gz").dtype == np.uint8
    assert read_npy(out / "mask" / "CLM.npy.gz").shape == (T, H, W, 1)
    assert read_npy(out / "mask" / "IS_DATA.npy.gz").dtype == bool
    cult = read_npy(out / "mask_timeless" / "CULTIVATED.npy.gz")
    assert cult.dtype == bool and cult.shape == (4 * H, 4 * W, 1)
    geo = json.loads((out / "bbox.geojson").read_text())
    assert geo["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633" and geo["type"] == "Polygon"
    assert json.loads((out / "timestamps.json").read_text())[0] == small_patch.timestamps[0].isoformat()
    assert json.loads((out / "meta_info" / "source.json").read_text()) == "real"
    assert json.loads((out / "meta_info" / "product_level.json").read_text()) == "L2A"
    plain = write_eopatch(small_patch, tmp_path / "plain", compress_level=0)
    assert (plain / "data" / "BANDS.npy").is_file() and np.array_equal(read_npy(plain / "data" / "BANDS.npy"), bands)


def test_write_clips_and_rounds_digital_numbers(tmp_path, small_patch):
    b = small_patch.bands.copy()
    b[0, 0, 0, :3] = (-0.2, 7.0, 0.12344)
    p = load_eopatch(write_eopatch(small_patch.replace(bands=b), tmp_path / "c"))
    assert p.bands[0, 0, 0, 0] == 0.0
    assert p.bands[0, 0, 0, 1] == pytest.approx(65535 * 1e-4)
    assert p.bands[0, 0, 0, 2] == pytest.approx(0.1234, abs=1e-7)


def test_write_refuses_to_overwrite(tmp_path, small_patch):
    out = write_eopatch(small_patch, tmp_path / "o")
    with pytest.raises(EOPatchExistsError,
                       match=r"already exists; choose another folder, or replace it \(--overwrite .*overwrite=True in Python\)"):
        write_eopatch(small_patch, out)
    assert isinstance(EOPatchExistsError("x"), FileExistsError)
    one = small_patch.select_dates([0])
    write_eopatch(one, out, overwrite=True)
    assert load_eopatch(out).n_dates == 1
    assert sorted(q.name for q in tmp_path.iterdir()) == ["o"]


def test_overwrite_never_replaces_a_non_eopatch_folder(tmp_path, small_patch):
    precious = tmp_path / "docs"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(EOPatchExistsError, match="is not an EOPatch folder"):
        write_eopatch(small_patch, precious, overwrite=True)
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["docs"]
