"""Submission GeoTIFFs: writing, reading, validation of every bad case, and write → score round trips."""

from __future__ import annotations

import tarfile
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from sklearn.metrics import matthews_corrcoef
from test_weight_map import reference_weight_map

from sr_core import BBox, Patch, PatchInfo
from sr_core.errors import ArchiveError, PatchFormatError, SubmissionError
from sr_core.io.eopatch import write_eopatch
from sr_core.io.geotiff import check_output, write_outputs
from sr_core.io.submission import (
    TruthPatch,
    collect_eopatches,
    load_truth,
    predict_submission,
    read_submission,
    score_submission,
    validate_submission,
    write_predictions,
    write_probability,
    write_submission,
)
from sr_core.paths import data_home
from sr_core.prediction import Prediction

H = W = 12  # 10 m pixels; labels 48 × 48 at 2.5 m


def make_patch(i: int, seed: int | None = None, labels: bool = True) -> Patch:
    """A small labelled patch with rectangular fields, 1-px gaps and a not-declared block."""
    rng = np.random.default_rng(i if seed is None else seed)
    x0, y0 = 500_000.0 + 1000 * i, 5_100_000.0 + 500 * i + 0.25  # odd offsets: bounds are not round numbers
    cult = np.zeros((4 * H, 4 * W), bool)
    for r in range(0, 4 * H, 8):
        for c in range(0, 4 * W, 12):
            if rng.random() < 0.5:
                cult[r + 1:r + 8, c + 1:c + int(rng.integers(3, 12))] = True
    nd = np.zeros_like(cult)
    nd[30:38, 2:10] = True
    T = 2
    return Patch(
        bands=rng.uniform(0, 0.4, (T, H, W, 12)).astype(np.float32),
        timestamps=[datetime(2019, 5, 1) + timedelta(days=7 * t) for t in range(T)],
        bbox=BBox(x0, y0, x0 + 10 * W, y0 + 10 * H),
        is_data=np.ones((T, H, W), bool),
        cloud_mask=np.zeros((T, H, W), bool),
        cultivated=cult if labels else None,
        not_declared=nd if labels else None,
        info=PatchInfo(name=f"eopatch-{i:02d}"),
    )


@pytest.fixture
def truth_dir(tmp_path) -> Path:
    d = tmp_path / "truth"
    for i in (1, 2, 3):
        write_eopatch(make_patch(i), d / f"eopatch-{i:02d}")
    return d


def perfect_submission(truth_dir: Path, out: Path) -> Path:
    for f in sorted(truth_dir.iterdir()):
        t = load_truth(f)
        write_submission(t.cultivated, t.bbox, out, name=f.name)
    return out


def write_tif(path: Path, data: np.ndarray, bbox: BBox, *, epsg: int | None = 32633, dtype: str | None = None,
              nodata: float | None = None, transform: Affine | None = None, **creation: Any) -> Path:
    """``data`` as a GeoTIFF on ``bbox``; ``creation``: more of GDAL's creation options (compress, tiled, ...)."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    n, h, w = data.shape
    dtype = dtype or ("uint8" if data.dtype == bool else data.dtype.name)
    profile = {"driver": "GTiff", "height": h, "width": w, "count": n, "dtype": dtype,
               "transform": transform or Affine(*bbox.transform(w, h)), **creation}
    if epsg is not None:
        profile["crs"] = CRS.from_epsg(epsg)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]))
    return path


# -- writing ------------------------------------------------------------------------------------------------------
def test_write_submission_from_prediction_is_a_valid_geotiff(tmp_path):
    patch = make_patch(1)
    proba = np.where(patch.cultivated, 0.9, 0.1).astype(np.float32)
    pred = Prediction(proba=proba, bbox=patch.bbox, name="eopatch-01")
    path = write_submission(pred, patch, tmp_path / "sub")
    assert path == tmp_path / "sub" / "eopatch-01.tif"
    with rasterio.open(path) as src:
        assert (src.count, src.height, src.width, src.dtypes[0]) == (1, 48, 48, "uint8")
        assert src.crs.to_epsg() == 32633
        assert src.profile.get("compress", "").lower() == "deflate"
        assert src.transform == Affine(*patch.label_transform)
        assert src.bounds == pytest.approx(patch.bbox.bounds)
        band = src.read(1)
    np.testing.assert_array_equal(band, patch.cultivated.astype(np.uint8))
    assert not list((tmp_path / "sub").glob(".*"))  # no temporary file left


def test_write_submission_from_binary_and_bbox(tmp_path):
    patch = make_patch(2)
    p1 = write_submission(patch.cultivated, patch, tmp_path)  # name from the patch
    p2 = write_submission(patch.cultivated.astype(np.int64), patch.bbox, tmp_path, name="other")
    assert p1.name == "eopatch-02.tif" and p2.name == "other.tif"
    arrays = read_submission(tmp_path)
    assert set(arrays) == {"eopatch-02", "other"}
    np.testing.assert_array_equal(arrays["other"], patch.cultivated)


def test_write_submission_refuses_bad_input(tmp_path):
    patch = make_patch(1)
    with pytest.raises(SubmissionError, match="threshold"):
        write_submission(np.full((48, 48), 0.5), patch, tmp_path)
    with pytest.raises(SubmissionError, match="48 × 48"):
        write_submission(np.zeros((40, 48), bool), patch, tmp_path)
    with pytest.raises(SubmissionError, match="name"):
        write_submission(np.zeros((48, 48), bool), patch.bbox, tmp_path)
    with pytest.raises(SubmissionError, match="plain file name"):
        write_submission(np.zeros((48, 48), bool), patch.bbox, tmp_path, name="../escape")
    with pytest.raises(SubmissionError, match="Patch"):
        write_submission(np.zeros((48, 48), bool), "nope", tmp_path)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_write_probability(tmp_path, dtype):
    patch = make_patch(1)
    rng = np.random.default_rng(0)
    proba = rng.random((48, 48)).astype(np.float32)
    pred = Prediction(proba=proba, bbox=patch.bbox, name=patch.name)
    path = write_probability(pred, out_dir=tmp_path, dtype=dtype)
    assert path.name == "eopatch-01_proba.tif"
    with rasterio.open(path) as src:
        assert src.dtypes[0] == dtype and src.crs.to_epsg() == 32633 and src.bounds == pytest.approx(patch.bbox.bounds)
        got = src.read(1).astype(np.float64) * src.scales[0]
    np.testing.assert_allclose(got, proba, atol=0.5 / 255 + 1e-6 if dtype == "uint8" else 0)
    with pytest.raises(SubmissionError, match="dtype"):
        write_probability(pred, out_dir=tmp_path, dtype="int16")


def test_every_map_names_its_band_and_says_what_made_it(tmp_path):
    """QGIS shows a band's description as its name and the dataset tags under Information: each of the three maps
    says what its band holds, and the uncertainty map carries the same provenance (season, dates) as the others."""
    patch = make_patch(1)
    rng = np.random.default_rng(1)
    pred = Prediction(proba=rng.random((48, 48)).astype(np.float32), bbox=patch.bbox, name=patch.name,
                      uncertainty=rng.random((48, 48)).astype(np.float32) * 0.1,
                      extra={"tta": 8, "input": {"season": 2019, "first_date": "2019-03-02", "last_date": "2019-08-30",
                                                 "dates_used": 20, "dates_total": 41, "cloud_source": "SCL"}})
    paths = write_outputs(pred, patch, tmp_path / "sub", proba_dir=tmp_path / "p", uncertainty_dir=tmp_path / "u")
    want = {"submission": "cultivated (1) or not (0)", "proba": "P(cultivated) x 255 (scale 1/255)",
            "uncertainty": "std of P(cultivated) over 8 flips / rotations"}
    for kind, path in paths.items():
        with rasterio.open(path) as src:
            assert src.descriptions == (want[kind],), kind
            tags = src.tags()
            assert tags["SR_SEASON"] == "2019" and tags["SR_DATES"].startswith("2019-03-02 … 2019-08-30"), kind
            assert tags["SR_TTA"] == "8", kind


def test_a_prediction_is_never_written_on_another_patch_grid(tmp_path):
    """A prediction carries its own footprint: written with a different patch of the same size it is refused, not
    placed silently where the other patch lies."""
    patch = make_patch(1)
    other = make_patch(2)
    assert other.bbox != patch.bbox and other.label_shape == patch.label_shape
    pred = Prediction(proba=np.full((48, 48), 0.9, np.float32), bbox=patch.bbox, name=patch.name)
    for writer in (write_submission, write_probability):
        with pytest.raises(SubmissionError, match="the prediction belongs to"):
            writer(pred, other, tmp_path)
    assert not list(tmp_path.iterdir())
    assert write_submission(pred, patch, tmp_path).is_file()  # its own patch, or none
    assert write_probability(pred, None, tmp_path).is_file()


def test_a_finished_map_is_recognised_when_the_bbox_is_no_whole_number_of_10_m_pixels(tmp_path):
    """A patch's grid follows its bbox: 40.3 m over 4 pixels is 10.075 m, its 2.5 m map 2.51875 m. The batch's check
    of finished outputs accepts what the writer wrote, and still refuses a map at 10 m or off the bbox."""
    q = BBox(600000.0, 5650000.0, 600040.3, 5650040.0, 32631)
    path = write_submission(np.zeros((16, 16), np.uint8), q, tmp_path, name="odd")
    assert check_output(path, q) == (None, 0.0)
    coarse = write_submission(np.zeros((4, 4), np.uint8), q, tmp_path, name="coarse")
    problem, _ = check_output(coarse, q)
    assert problem is not None and "2.5 m grid" in problem


# -- validation: the good case and every bad one ------------------------------------------------------------------
def test_perfect_submission_validates_and_scores_one(truth_dir, tmp_path):
    sub = perfect_submission(truth_dir, tmp_path / "sub")
    report = validate_submission(sub, truth_dir)
    assert report.ok, report.lines()
    assert report.expected == ("eopatch-01", "eopatch-02", "eopatch-03") and report.found == report.expected
    result = score_submission(sub, truth_dir)
    assert result.ok and result.pooled.wmcc == pytest.approx(1.0) and result.pooled.n_patches == 3
    assert [s.name for s in result.patches] == ["eopatch-01", "eopatch-02", "eopatch-03"]
    assert all(s.mcc == pytest.approx(1.0) and s.iou == pytest.approx(1.0) for s in result.patches)


def test_known_corruption_scores_the_independently_computed_value(truth_dir, tmp_path):
    sub = perfect_submission(truth_dir, tmp_path / "sub")
    t2 = load_truth(truth_dir / "eopatch-02")
    bad = t2.cultivated.copy()
    bad[10:20, :] = ~bad[10:20, :]  # flip a band of rows
    bad[:, 40] = True  # and a false column
    write_submission(bad, t2.bbox, sub, name="eopatch-02")
    result = score_submission(sub, truth_dir)
    ys, ps, ws = [], [], []
    for i in (1, 2, 3):
        patch = make_patch(i)
        ys.append(patch.cultivated.ravel())
        ps.append((bad if i == 2 else patch.cultivated).ravel())
        ws.append(reference_weight_map(patch.cultivated, patch.not_declared).ravel())
    expected = matthews_corrcoef(np.concatenate(ys), np.concatenate(ps), sample_weight=np.concatenate(ws))
    assert 0.3 < expected < 0.99
    assert result.pooled.wmcc == pytest.approx(expected, abs=1e-6)
    only2 = matthews_corrcoef(ys[1], ps[1], sample_weight=ws[1])
    assert result.patches[1].wmcc == pytest.approx(only2, abs=1e-6)
    assert result.patches[0].wmcc == pytest.approx(1.0)


def _one(truth_dir: Path, tmp_path: Path, name: str = "eopatch-01") -> tuple[Path, TruthPatch]:
    sub = perfect_submission(truth_dir, tmp_path / "sub")
    return sub, load_truth(truth_dir / name)


BAD_CASES = {
    "missing": ("missing", lambda sub, t: (sub / "eopatch-01.tif").unlink()),
    "extra": ("extra file", lambda sub, t: write_submission(t.cultivated, t.bbox, sub, name="eopatch-99")),
    "not tif": ("not a .tif", lambda sub, t: (sub / "readme.txt").write_text("hello")),
    "text as tif": ("not a readable GeoTIFF", lambda sub, t: (sub / "eopatch-01.tif").write_text("not an image")),
    "empty": ("not a readable GeoTIFF", lambda sub, t: (sub / "eopatch-01.tif").write_bytes(b"")),
    "truncated": ("not a readable GeoTIFF",
                  lambda sub, t: (sub / "eopatch-01.tif").write_bytes((sub / "eopatch-01.tif").read_bytes()[:300])),
    "png": ("not a GeoTIFF", lambda sub, t: _png(sub / "eopatch-01.tif", t)),
    "size": ("is 40 × 48 px", lambda sub, t: write_tif(sub / "eopatch-01.tif", t.cultivated[:40], t.bbox)),
    "bands": ("2 bands", lambda sub, t: write_tif(sub / "eopatch-01.tif", np.stack([t.cultivated] * 2), t.bbox, dtype="uint8")),
    "dtype": ("dtype float32", lambda sub, t: write_tif(sub / "eopatch-01.tif", t.cultivated, t.bbox, dtype="float32")),
    "values": ("values other than 0 and 1",
               lambda sub, t: write_tif(sub / "eopatch-01.tif", t.cultivated.astype(np.uint8) * 255, t.bbox)),
    "no crs": ("no CRS", lambda sub, t: write_tif(sub / "eopatch-01.tif", t.cultivated, t.bbox, epsg=None)),
    "crs": ("CRS is EPSG:32634", lambda sub, t: write_tif(sub / "eopatch-01.tif", t.cultivated, t.bbox, epsg=32634)),
    "bounds": ("differ from the patch bbox", lambda sub, t: write_tif(
        sub / "eopatch-01.tif", t.cultivated, BBox(t.bbox.min_x + 2.5, t.bbox.min_y, t.bbox.max_x + 2.5, t.bbox.max_y),
        dtype="uint8")),
    "rotated": ("north-up", lambda sub, t: write_tif(
        sub / "eopatch-01.tif", t.cultivated, t.bbox, dtype="uint8",
        transform=Affine(2.5, 0, t.bbox.min_x, 0, 2.5, t.bbox.min_y))),
    "nodata": ("nodata", lambda sub, t: write_tif(sub / "eopatch-01.tif", t.cultivated, t.bbox, dtype="uint8", nodata=0)),
    "tiff suffix": ("rename it to eopatch-01.tif", lambda sub, t: (sub / "eopatch-01.tif").rename(sub / "eopatch-01.tiff")),
}


def _png(path: Path, t: TruthPatch) -> None:
    from PIL import Image

    Image.fromarray(t.cultivated.astype(np.uint8)).save(path, format="PNG")


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_each_bad_case_is_reported_clearly(truth_dir, tmp_path, case):
    expected, damage = BAD_CASES[case]
    sub, t = _one(truth_dir, tmp_path)
    damage(sub, t)
    report = validate_submission(sub, truth_dir)
    assert not report.ok
    lines = report.lines()
    assert any(expected in line for line in lines), lines
    assert all("eopatch-02" not in line and "eopatch-03" not in line for line in lines), lines
    assert all(str(tmp_path) not in line for line in lines), lines  # a team reads these: file names, no server path
    result = score_submission(sub, truth_dir)
    assert not result.ok and result.pooled is None and result.patches == []


def test_bounds_within_a_small_fraction_of_a_pixel_pass(truth_dir, tmp_path):
    sub, t = _one(truth_dir, tmp_path)
    shifted = BBox(t.bbox.min_x + 0.01, t.bbox.min_y, t.bbox.max_x + 0.01, t.bbox.max_y)  # 0.4 % of a 2.5 m pixel
    write_tif(sub / "eopatch-01.tif", t.cultivated, shifted, dtype="uint8")
    assert validate_submission(sub, truth_dir).ok


def test_every_problem_is_listed(truth_dir, tmp_path, pixel_reads):
    """Every header problem of a file is listed; its pixel values are checked (read) only once its header is right:
    a file with a wrong header is refused whatever its values, and GDAL inflates nothing it declares."""
    sub, t = _one(truth_dir, tmp_path)
    write_tif(sub / "eopatch-01.tif", t.cultivated[:40].astype(np.float32) * 3, t.bbox, epsg=32634)
    t2 = load_truth(truth_dir / "eopatch-02")
    write_tif(sub / "eopatch-02.tif", t2.cultivated.astype(np.uint8) * 3, t2.bbox)
    (sub / "eopatch-03.tif").unlink()
    report = validate_submission(sub, truth_dir)
    text = "\n".join(report.lines())
    for part in ("eopatch-01.tif: is 40 × 48 px", "eopatch-01.tif: dtype float32", "EPSG:32634",
                 "eopatch-02.tif: holds values other than 0 and 1", "eopatch-03.tif: missing"):
        assert part in text, text
    assert len(report.problems["eopatch-01"]) == 3 and pixel_reads == ["eopatch-02.tif"], (text, pixel_reads)
    assert report.missing == ["eopatch-03"] and report.to_dict()["valid"] is False
    with pytest.raises(SubmissionError, match="problem"):
        report.raise_if_invalid()


@pytest.fixture
def pixel_reads(monkeypatch) -> list[str]:
    """Names of the files whose pixels GDAL decodes (every rasterio ``DatasetReader.read``), in order."""
    from rasterio.io import DatasetReader

    calls: list[str] = []
    real = DatasetReader.read

    def read(self, *args, **kwargs):
        calls.append(Path(self.name).name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DatasetReader, "read", read)
    return calls


def test_a_many_band_file_is_refused_without_reading_its_pixels(truth_dir, tmp_path, pixel_reads):
    """A right-sized 0/1 file of 1000 pixel-interleaved zstd bands: to give band 1, GDAL inflates every band of each
    tile (32 000 bands of 512 × 512 px in a 0.45 MB file were 8.4 GB of samples, 4.5 s). Refused on its header."""
    sub, t = _one(truth_dir, tmp_path)
    bands = np.broadcast_to(t.cultivated.astype(np.uint8), (1000, *t.shape))
    write_tif(sub / "eopatch-01.tif", bands, t.bbox, compress="zstd", interleave="pixel", tiled=True,
              blockxsize=16, blockysize=16)
    report = validate_submission(sub, truth_dir)
    assert report.lines() == ["eopatch-01.tif: has 1000 bands; a submission file has exactly 1"]
    assert pixel_reads == ["eopatch-02.tif", "eopatch-03.tif"]  # the other two, not the bomb


def test_a_file_whose_tile_is_larger_than_the_image_is_refused_without_reading_its_pixels(truth_dir, tmp_path,
                                                                                           pixel_reads):
    """Right in every other respect (1 band, uint8, 48 × 48, CRS, bounds, 0/1), but stored as one 2048 × 2048 tile: GDAL
    inflates the whole tile to give the band (a 33 KB file, tile 32768 × 32768, image 512 × 512: 1 GB, 1.8 s)."""
    sub, t = _one(truth_dir, tmp_path)
    write_tif(sub / "eopatch-01.tif", t.cultivated, t.bbox, compress="zstd", tiled=True, blockxsize=2048,
              blockysize=2048)
    report = validate_submission(sub, truth_dir)
    assert report.lines() == ["eopatch-01.tif: is stored in 2048 × 2048 px blocks, larger than its 48 × 48 px image; "
                              "write it untiled or with 256 × 256 tiles, as sr_core.io.write_submission does"]
    assert pixel_reads == ["eopatch-02.tif", "eopatch-03.tif"]


def test_a_file_with_a_lossy_or_image_codec_is_refused_without_reading_its_pixels(truth_dir, tmp_path, pixel_reads):
    """Only plain lossless codecs are decoded: a 0/1 mask needs no JPEG (nor WebP, LERC...), and each is one more
    decoder a hostile upload would reach."""
    sub, t = _one(truth_dir, tmp_path)
    write_tif(sub / "eopatch-01.tif", t.cultivated, t.bbox, compress="jpeg")
    report = validate_submission(sub, truth_dir)
    assert report.lines() == ["eopatch-01.tif: is compressed with JPEG; write it uncompressed or with DEFLATE, LZW or "
                              "ZSTD (sr_core.io.write_submission writes DEFLATE)"]
    assert pixel_reads == ["eopatch-02.tif", "eopatch-03.tif"]


@pytest.mark.parametrize("creation", [
    {}, {"compress": "lzw"}, {"compress": "zstd"}, {"compress": "packbits"}, {"compress": "lzma"},
    {"compress": "deflate", "tiled": True},  # GDAL's default 256 × 256 tiles on a 48 × 48 image
    {"compress": "deflate", "tiled": True, "blockxsize": 512, "blockysize": 512},  # COG's default
    {"tiled": True, "blockxsize": 16, "blockysize": 16}, {"blockysize": 1},
], ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "plain")
def test_ordinary_layouts_and_codecs_still_validate_and_score(truth_dir, tmp_path, creation, pixel_reads):
    """What GDAL, rasterio or a COG writer makes of a small mask by default is still accepted (guard for the limits
    on blocks and codecs above); every file is read once."""
    sub, t = _one(truth_dir, tmp_path)
    write_tif(sub / "eopatch-01.tif", t.cultivated, t.bbox, **creation)
    assert validate_submission(sub, truth_dir).ok
    assert pixel_reads == ["eopatch-01.tif", "eopatch-02.tif", "eopatch-03.tif"]
    assert score_submission(sub, truth_dir).ok


# -- archives, truth forms, inputs ----------------------------------------------------------------------------------
def test_zip_and_tar_gz_submissions(truth_dir, tmp_path):
    sub = perfect_submission(truth_dir, tmp_path / "submission")
    zpath = tmp_path / "sub.zip"
    with zipfile.ZipFile(zpath, "w") as zf:  # files inside a folder, like zipping the folder
        for f in sorted(sub.iterdir()):
            zf.write(f, f"submission/{f.name}")
        zf.writestr("__MACOSX/._eopatch-01.tif", b"junk")
    tpath = tmp_path / "sub.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:  # the organisers' `tar -C submission -zcvf submission.tar.gz .`
        for f in sorted(sub.iterdir()):
            tf.add(f, f"./{f.name}")
    for archive in (zpath, tpath):
        assert validate_submission(archive, truth_dir).ok
        assert score_submission(archive, truth_dir).pooled.wmcc == pytest.approx(1.0)
        assert sorted(read_submission(archive)) == ["eopatch-01", "eopatch-02", "eopatch-03"]
    # a truth archive works too
    truth_zip = tmp_path / "truth.zip"
    with zipfile.ZipFile(truth_zip, "w") as zf:
        for f in sorted(truth_dir.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(truth_dir.parent).as_posix())
    assert validate_submission(zpath, truth_zip).ok


def test_not_an_archive_and_missing_source(truth_dir, tmp_path):
    junk = tmp_path / "sub.zip"
    junk.write_text("nope")
    with pytest.raises(ArchiveError, match=r"not a \.zip"):
        validate_submission(junk, truth_dir)
    with pytest.raises(SubmissionError, match="no such submission"):
        validate_submission(tmp_path / "absent", truth_dir)


def test_truth_as_patches_and_single_tif(tmp_path):
    patches = [make_patch(i) for i in (1, 2)]
    out = tmp_path / "sub"
    for p in patches:
        write_submission(p.cultivated, p, out)
    assert validate_submission(out, patches).ok
    assert validate_submission(out, {p.name: p for p in patches}).ok
    one = score_submission(out / "eopatch-01.tif", patches[0])
    assert one.ok and one.pooled.wmcc == pytest.approx(1.0)


def test_unlabelled_truth_validates_but_cannot_be_scored(tmp_path):
    d = tmp_path / "test"
    write_eopatch(make_patch(1, labels=False), d / "eopatch-01")
    t = load_truth(d / "eopatch-01")
    assert t.cultivated is None and t.shape == (48, 48)
    write_submission(np.zeros((48, 48), bool), t.bbox, tmp_path / "sub", name="eopatch-01")
    assert validate_submission(tmp_path / "sub", d).ok
    result = score_submission(tmp_path / "sub", d)
    assert not result.ok and any("no CULTIVATED" in x for x in result.validation.lines())


def test_load_truth_reads_labels_and_bbox(truth_dir):
    t = load_truth(truth_dir / "eopatch-02")
    p = make_patch(2)
    assert t.name == "eopatch-02" and t.bbox == p.bbox and t.shape == (48, 48)
    np.testing.assert_array_equal(t.cultivated, p.cultivated)
    np.testing.assert_array_equal(t.not_declared, p.not_declared)


def test_write_predictions_and_collect_inputs(truth_dir, tmp_path):
    archive = tmp_path / "more.tar.gz"
    extra = tmp_path / "extra"
    write_eopatch(make_patch(4), extra / "eopatch-04")
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(extra / "eopatch-04", "eopatch-04")
    seen = []
    paths = predict_submission(
        [truth_dir, archive], lambda patch: patch.cultivated.copy(), tmp_path / "out", progress=False,
        on_result=lambda name, pred, path: seen.append(name),
    )
    assert [p.name for p in paths] == ["eopatch-01.tif", "eopatch-02.tif", "eopatch-03.tif", "eopatch-04.tif"]
    assert seen == ["eopatch-01", "eopatch-02", "eopatch-03", "eopatch-04"]
    assert not any((data_home() / "uploads").iterdir())  # the extracted archive was removed
    sub_truth = [truth_dir / f"eopatch-0{i}" for i in (1, 2, 3)] + [extra / "eopatch-04"]
    assert score_submission(tmp_path / "out", sub_truth).pooled.wmcc == pytest.approx(1.0)
    # Patch objects and probability maps
    p = make_patch(5)
    pred = Prediction(proba=p.cultivated.astype(np.float32), bbox=p.bbox, name="whatever")
    written = write_predictions([p], lambda _: pred, tmp_path / "out2", probability_dir=tmp_path / "proba", progress=False)
    assert [w.name for w in written] == ["eopatch-05.tif"] and (tmp_path / "proba" / "eopatch-05_proba.tif").is_file()


def test_collect_eopatches_errors(truth_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PatchFormatError, match="no EOPatch folder"):
        collect_eopatches([tmp_path / "empty"], tmp_path / "w")
    other = tmp_path / "other"
    write_eopatch(make_patch(1), other / "eopatch-01")
    with pytest.raises(PatchFormatError, match="collide"):
        collect_eopatches([truth_dir, other], tmp_path / "w2")
    with pytest.raises(PatchFormatError, match="no such file"):
        collect_eopatches([tmp_path / "nope"], tmp_path / "w3")


def test_nothing_is_scored_when_any_file_is_invalid(truth_dir, tmp_path, monkeypatch):
    """Every file is checked before any is scored: an archive whose last file is broken used to have the others
    scored first (a way to use the scoring CPU without limit, since refusals are not rate-limited)."""
    import sr_core.metrics

    sub = perfect_submission(truth_dir, tmp_path / "sub")
    t3 = load_truth(truth_dir / "eopatch-03")
    bad = t3.cultivated.astype(np.uint8)
    bad[0, 0] = 2
    write_tif(sub / "eopatch-03.tif", bad, t3.bbox)
    calls = []
    real = sr_core.metrics.evaluate
    monkeypatch.setattr(sr_core.metrics, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = score_submission(sub, truth_dir)
    assert not result.ok and calls == [] and "eopatch-03" in "\n".join(result.validation.lines())
    (sub / "eopatch-03.tif").unlink()
    write_submission(t3.cultivated, t3.bbox, sub, name="eopatch-03")
    assert score_submission(sub, truth_dir).ok and len(calls) == 3


def test_deeply_nested_and_miscased_files_are_found_or_named(truth_dir, tmp_path):
    """`zip -r ours.zip /home/u/work/pred` stores home/u/work/pred/eopatch-01.tif: found (three folders deep was
    'missing' for every patch). A name that differs only in case is told to rename, not just 'extra' + 'missing'."""
    deep = tmp_path / "deep"
    perfect_submission(truth_dir, deep / "home" / "u" / "work" / "pred")
    assert validate_submission(deep, truth_dir).ok
    sub = perfect_submission(truth_dir, tmp_path / "sub")
    (sub / "eopatch-02.tif").rename(sub / "EOPATCH-02.tif")
    report = validate_submission(sub, truth_dir)
    assert not report.ok
    assert any("rename it eopatch-02.tif (file names are case-sensitive)" in line for line in report.lines())
