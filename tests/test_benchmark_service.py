"""Benchmark definition, validation of submissions, scoring (agreement with `python -m sr_core score`), recording."""

from __future__ import annotations

import json
import re
import shutil
import zipfile

import numpy as np
import pytest

from sr_core.benchmark.definition import (
    PRIVATE,
    PUBLIC,
    BenchmarkMissingError,
    create_benchmark,
    export_inputs,
    inputs_archive,
    load_benchmark,
)  # fmt: skip
from sr_core.benchmark.samples import bad_archives, expected_scores, noisy_masks, noisy_submission, write_masks, zip_folder
from sr_core.benchmark.service import check_team_name, compute_references, score_archive, submit
from sr_core.benchmark.store import Leaderboard, RateLimit, dispose_engines
from sr_core.errors import ConfigError, SubmissionError

N, SIZE, SEED = 4, 32, 11


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A tiny simulated benchmark (4 patches of 32 px, labels 128 × 128), built once for the module."""
    root = tmp_path_factory.mktemp("bench")
    return create_benchmark(N, SIZE, SEED, root=root)


@pytest.fixture
def board(tmp_path):
    lb = Leaderboard(f"sqlite:///{tmp_path / 'lb.sqlite'}")
    yield lb
    dispose_engines()


def token_for(board: Leaderboard, team: str) -> str:
    return board.register_team(team)[1]


# -- definition ----------------------------------------------------------------------------------------------------
def test_benchmark_has_named_patches_split_into_two_disjoint_halves(bench):
    assert bench.names == ["eopatch-01", "eopatch-02", "eopatch-03", "eopatch-04"]
    assert len(bench.public) == len(bench.private) == 2
    assert set(bench.public) | set(bench.private) == set(bench.names) and not set(bench.public) & set(bench.private)
    for p in bench.patches:
        x0, y0, x1, y1 = p.bbox
        assert (x1 - x0, y1 - y0) == (10 * SIZE, 10 * SIZE) and x0 % 10 == 0 and y0 % 10 == 0 and p.epsg == 32633
    from sr_core.io.submission import load_truth

    t = load_truth(bench.truth_dir / "eopatch-01")
    assert t.shape == (4 * SIZE, 4 * SIZE) and t.cultivated is not None and t.cultivated.any()


def test_same_seed_rebuilds_the_same_benchmark_and_another_seed_does_not(bench, tmp_path):
    again = create_benchmark(N, SIZE, SEED, root=tmp_path / "a", build_inputs=False)
    other = create_benchmark(N, SIZE, SEED + 1, root=tmp_path / "b", build_inputs=False)
    assert again.id == bench.id and again.public == bench.public
    assert [p.bbox for p in again.patches] == [p.bbox for p in bench.patches]
    assert other.id != bench.id


def test_create_refuses_to_replace_without_force(bench, tmp_path):
    create_benchmark(2, 16, 1, root=tmp_path, build_inputs=False)
    with pytest.raises(ConfigError, match="--force"):
        create_benchmark(2, 16, 2, root=tmp_path, build_inputs=False)
    replaced = create_benchmark(2, 16, 2, root=tmp_path, force=True, build_inputs=False)
    assert load_benchmark(tmp_path).id == replaced.id
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".definition")]  # no build leftovers


def test_missing_benchmark_says_how_to_create_it(tmp_path):
    with pytest.raises(BenchmarkMissingError, match="benchmark create"):
        load_benchmark(tmp_path / "none")


def test_inputs_carry_no_labels_and_no_seed(bench, tmp_path):
    from sr_core.io import load_eopatch

    folders = export_inputs(tmp_path / "in", bench)
    assert [f.name for f in folders] == bench.names
    for f in folders:
        files = {p.relative_to(f).as_posix() for p in f.rglob("*") if p.is_file()}
        assert not any(x.startswith("mask_timeless/") for x in files), files
        text = " ".join(p.read_text() for p in (f / "meta_info").iterdir())
        assert "seed" not in text and "region" not in text
    p_in, p_truth = load_eopatch(folders[0]), load_eopatch(bench.truth_dir / bench.names[0])
    assert p_in.cultivated is None and p_in.not_declared is None and p_in.all_polys is None
    np.testing.assert_array_equal(p_in.bands, p_truth.bands)
    assert p_in.bbox == p_truth.bbox
    with zipfile.ZipFile(inputs_archive(bench)) as zf:
        names = zf.namelist()
    assert any(n.endswith("eopatch-01/data/BANDS.npy.gz") for n in names)
    assert not any("mask_timeless" in n or (n.endswith("benchmark.json") and "truth" in n) for n in names)


# -- scoring ---------------------------------------------------------------------------------------------------------
def test_scores_match_the_arrays_and_the_score_cli_exactly(bench, tmp_path, capsys):
    from sr_core.cli import main

    masks = noisy_masks(bench, 0.08, 3)
    write_masks(bench, masks, tmp_path / "sub")
    archive = zip_folder(tmp_path / "sub", tmp_path / "sub.zip")
    sc = score_archive(archive, bench)
    assert sc.valid and sc.n_files == N and not sc.problems

    want = expected_scores(bench, masks)  # straight from the arrays, no files
    assert sc.public == pytest.approx(want[PUBLIC], abs=1e-12)
    assert sc.private == pytest.approx(want[PRIVATE], abs=1e-12)
    assert 0.2 < sc.public < 0.95 and sc.public != sc.private

    assert main(["score", str(archive), "--truth", str(bench.truth_dir), "--json", "--no-diagnostics"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["weighted_mcc"] == sc.overall  # the same function, bit for bit
    assert {p["name"]: p["weighted_mcc"] for p in cli["patches"]} == {p["name"]: p["weighted_mcc"] for p in sc.per_patch}

    # the public score is what `score` gives on the public half alone
    pub_truth, pub_sub = tmp_path / "pub_truth", tmp_path / "pub_sub"
    for name in bench.public:
        shutil.copytree(bench.truth_dir / name, pub_truth / name)
        pub_sub.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "sub" / f"{name}.tif", pub_sub)
    assert main(["score", str(pub_sub), "--truth", str(pub_truth), "--json", "--no-diagnostics"]) == 0
    assert json.loads(capsys.readouterr().out)["weighted_mcc"] == sc.public


def test_a_perfect_submission_scores_one(bench, tmp_path):
    archive = noisy_submission(bench, tmp_path / "perfect.zip", flip=0.0)
    sc = score_archive(archive, bench)
    assert sc.public == pytest.approx(1.0) and sc.private == pytest.approx(1.0)


EXPECTED_MESSAGES = {
    "wrong names": [r"eopatch-01\.tif: missing", r"eopatch-1\.tif: extra file"],
    "wrong size": [r"eopatch-01\.tif: is 64 × 64 px; the patch's 2\.5 m grid is 128 × 128"],
    "path traversal": [r"'\.\./eopatch-01\.tif' would land outside the target folder"],
    "huge expansion": [r"expand to more than the .* limit"],
    "huge declared size": [r"expand to more than the .* limit"],
    "not TIFF": [r"README\.txt: not a \.tif file", r"eopatch-01\.tif: not a GeoTIFF"],
    "not an archive": [r"not a \.zip, \.tar\.gz"],
}


def test_bad_archives_are_refused_with_a_message_and_leave_no_public_trace(bench, board, tmp_path):
    arcs = bad_archives(bench, tmp_path / "bad", bomb_mib=80)
    assert set(arcs) == set(EXPECTED_MESSAGES)
    token = token_for(board, "Careless")
    for kind, path in arcs.items():
        res = submit(path, "Careless", token=token, benchmark=bench, board=board)
        assert res.status == "rejected", kind
        assert res.public_wmcc is None and res.problems, kind
        text = "\n".join(res.problems)
        for pattern in EXPECTED_MESSAGES[kind]:
            assert re.search(pattern, text), (kind, pattern, text)
        assert res.audit_id is not None and res.submission_id is None, kind
    assert board.submissions(bench.id) == [] and board.standings(bench.id) == []  # no phantom "Careless" line
    refused = board.audit_log(event="refused")
    assert len(refused) == len(arcs) and all(e.team == "Careless" and e.detail for e in refused)
    from sr_core.paths import uploads_dir

    assert not any(uploads_dir().iterdir())  # every scratch extraction was removed, nothing escaped it


# -- submitting ------------------------------------------------------------------------------------------------------
def test_submit_records_once_and_reports_duplicates(bench, board, tmp_path):
    archive = noisy_submission(bench, tmp_path / "a.zip", flip=0.05, seed=1)
    token = token_for(board, "Team A")
    first = submit(archive, "Team A", token=token, benchmark=bench, board=board, file_name="our run.zip")
    assert first.status == "scored" and first.submission_id is not None
    assert f"{first.public_wmcc:.4f}" in first.message and "private_wmcc" not in first.to_dict()
    assert token not in str(first.to_dict(private=True))
    again = submit(archive, "team a", token=token, benchmark=bench, board=board)
    assert again.status == "duplicate" and again.submission_id == first.submission_id
    assert again.public_wmcc == first.public_wmcc and "already scored" in again.message
    (row,) = board.submissions(bench.id)
    assert (row.file_name, row.public_wmcc, row.private_wmcc) == ("our run.zip", first.public_wmcc, first.private_wmcc)
    assert len(row.sha256) == 64 and {p["split"] for p in row.per_patch} == {PUBLIC, PRIVATE}


def test_an_archive_the_admin_withdrew_is_refused_with_the_reason_and_not_scored_again(bench, board, tmp_path,
                                                                                       monkeypatch):
    archive = noisy_submission(bench, tmp_path / "a.zip", flip=0.05, seed=3)
    token = token_for(board, "Team W")
    first = submit(archive, "Team W", token=token, benchmark=bench, board=board)
    board.withdraw(first.submission_id, "hand-labelled test patches")
    import sr_core.benchmark.service as service

    monkeypatch.setattr(service, "score_archive", lambda *a, **k: pytest.fail("a withdrawn archive was scored again"))
    again = submit(archive, "Team W", token=token, benchmark=bench, board=board)
    assert again.status == "withdrawn" and again.submission_id == first.submission_id
    assert "hand-labelled test patches" in again.message and "not scored again" in again.message
    assert again.public_wmcc is None and board.standings(bench.id) == []
    # the same bytes from a second account: refused with the reason too, not scored
    other = submit(archive, "Team W2", token=token_for(board, "Team W2"), benchmark=bench, board=board)
    assert other.status == "withdrawn" and "hand-labelled test patches" in other.message
    assert "Team W" not in other.message.replace("Team W2", "")  # the other account is not named
    assert board.standings(bench.id) == []


def test_submit_rate_limit(bench, board, tmp_path):
    limit = RateLimit(2, 3600)
    token = token_for(board, "Busy")
    results = [submit(noisy_submission(bench, tmp_path / f"{i}.zip", flip=0.05, seed=10 + i), "Busy", token=token,
                      benchmark=bench, board=board, rate_limit=limit) for i in range(3)]
    assert [r.status for r in results] == ["scored", "scored", "rate_limited"]
    assert "limit is 2 per hour" in results[2].message and results[2].retry_after_s > 3500
    assert len(board.submissions(bench.id, status="scored")) == 2


def test_refused_archives_are_limited_too_and_an_error_of_ours_is_not_counted(bench, board, tmp_path, monkeypatch):
    import sr_core.benchmark.service as service
    from sr_core.benchmark.service import ArchiveScore

    limit = RateLimit(1, 3600)  # one scored per hour → four refused
    assert limit.max_refused == 4
    token = token_for(board, "Sloppy")
    bad = bad_archives(bench, tmp_path / "bad", bomb_mib=1)["not TIFF"]
    out = [submit(bad, "Sloppy", token=token, benchmark=bench, board=board, rate_limit=limit) for _ in range(4)]
    assert [r.status for r in out] == ["rejected"] * 4
    monkeypatch.setattr(service, "score_archive", lambda *a, **k: pytest.fail("a fifth refused archive was checked"))
    fifth = submit(bad, "Sloppy", token=token, benchmark=bench, board=board, rate_limit=limit)
    assert fifth.status == "rate_limited" and fifth.retry_after_s > 3500
    assert "4 refused archive(s)" in fifth.message and "4 per hour" in fifth.message
    # other teams are not held up by Sloppy's refusals; an error of ours is charged to nobody
    ours = ArchiveScore(valid=False, problems=[], n_files=0, internal_error="boom")
    monkeypatch.setattr(service, "score_archive", lambda *a, **k: ours)
    other = token_for(board, "Other")
    errs = [submit(bad, "Other", token=other, benchmark=bench, board=board, rate_limit=limit) for _ in range(5)]
    assert [r.status for r in errs] == ["error"] * 5


def test_hook_stages_and_a_crash_before_commit_leaves_nothing(bench, board, tmp_path):
    archive = noisy_submission(bench, tmp_path / "a.zip", flip=0.1, seed=2)
    stages = []

    def die_in_transaction(stage: str) -> None:
        stages.append(stage)
        if stage == "in_transaction":
            raise KeyboardInterrupt  # like a kill while the row is written

    token = token_for(board, "Crashy")
    with pytest.raises(KeyboardInterrupt):
        submit(archive, "Crashy", token=token, benchmark=bench, board=board, hook=die_in_transaction)
    assert stages == ["scoring", "scored", "in_transaction"]
    assert board.submissions(bench.id) == []
    assert submit(archive, "Crashy", token=token, benchmark=bench, board=board).status == "scored"


@pytest.mark.parametrize(("given", "reason", "message"), [
    (None, "missing", "no team token given"), ("srt_not-it", "mismatch", "do not match"),
    ("REVOKED", "revoked", "revoked by the benchmark admin"),
])  # fmt: skip
def test_a_missing_wrong_or_revoked_token_is_refused_before_scoring(bench, board, tmp_path, given, reason, message):
    archive = noisy_submission(bench, tmp_path / "a.zip", flip=0.05, seed=3)
    token = token_for(board, "Team T")
    if given == "REVOKED":
        board.revoke_token("Team T")
        given = token
    stages = []
    res = submit(archive, "Team T", token=given, benchmark=bench, board=board, hook=stages.append)
    assert res.status == "unauthorized" and message in res.message and stages == []  # not even scored
    assert board.submissions() == [] and board.standings(bench.id) == []
    (line,) = board.audit_log(event="auth_failed")
    assert line.team == "Team T" and line.detail.startswith(reason) and line.sha256 == res.sha256
    assert token not in (line.detail or "")


def test_a_team_from_before_tokens_is_told_what_the_admin_must_do(bench, board, tmp_path):
    from sqlalchemy import update

    from sr_core.benchmark import store

    board.register_team("Old Timers")
    with board.engine.begin() as conn:  # what the schema-2 migration leaves for a team of schema 1
        conn.execute(update(store.TEAMS).values(token_hash=None, token_issued_at=None))
    archive = noisy_submission(bench, tmp_path / "a.zip", flip=0.05, seed=3)
    res = submit(archive, "old timers", token="anything", benchmark=bench, board=board)
    assert res.status == "unauthorized"
    assert "created before team tokens" in res.message and "benchmark rotate 'Old Timers'" in res.message


@pytest.mark.parametrize(("where", "error"), [
    ("sr_core.benchmark.service._score_folder", ZeroDivisionError),
    ("rasterio.open", TypeError),  # deep inside the per-file check: once reported as the file's "could not be read"
])  # fmt: skip
def test_an_error_of_ours_is_logged_and_not_charged_to_the_team(bench, board, tmp_path, monkeypatch, caplog, where,
                                                                  error):
    archive = noisy_submission(bench, tmp_path / "a.zip", flip=0.05, seed=5)
    token = token_for(board, "Unlucky")

    def broken(*_a, **_k):
        raise error("a bug in the scorer")

    monkeypatch.setattr(where, broken)
    limit = RateLimit(1, 3600)
    with caplog.at_level("ERROR", logger="sr_core.benchmark.service"):
        res = submit(archive, "Unlucky", token=token, benchmark=bench, board=board, rate_limit=limit)
    assert res.status == "error" and "not a problem of your archive" in res.message and not res.problems
    assert f"audit #{res.audit_id}" in res.message
    rec = next(r for r in caplog.records if r.name == "sr_core.benchmark.service")
    assert rec.exc_info is not None and "a bug in the scorer" in caplog.text  # logged with its traceback
    (line,) = board.audit_log(event="internal_error")
    assert "Traceback" in line.detail and error.__name__ in line.detail
    assert board.audit_log(event="refused") == [] and board.submissions() == []
    monkeypatch.undo()  # fixed: the same archive goes through, the limit of 1 untouched by the failure
    assert submit(archive, "Unlucky", token=token, benchmark=bench, board=board, rate_limit=limit).status == "scored"


def test_a_full_disk_while_extracting_is_ours(bench, board, tmp_path, monkeypatch):
    import errno

    from sr_core.benchmark import service
    from sr_core.errors import ArchiveError

    def full(*_a, **_k):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise ArchiveError(f"x.zip: cannot write member 'a' ({exc.strerror})") from None

    monkeypatch.setattr("sr_core.io.archive.extract_archive", full)
    sc = service.score_archive(noisy_submission(bench, tmp_path / "a.zip", flip=0.05, seed=6), bench)
    assert not sc.valid and sc.internal_error is not None and not sc.problems


@pytest.mark.parametrize(("name", "reference", "message"), [
    ("", False, "no team name"), ("x" * 41, False, "at most 40"), ("★ model", False, "reserved"),
    ("tab\there", False, None), ("bad\x00name", False, "control"), ("---", False, "letter or digit"),
    ("model", True, "reference rows are named"),
])  # fmt: skip
def test_team_names(name, reference, message):
    if message is None:
        assert check_team_name(name) == "tab here"
        return
    with pytest.raises(SubmissionError, match=message):
        check_team_name(name, reference=reference)


def test_references_are_recorded_once_under_reserved_names(bench, board):
    outcomes = compute_references(["ndvi", "model", "nope"], benchmark=bench, board=board)
    by_key = {o.key: o for o in outcomes}
    assert by_key["ndvi"].status == "scored" and by_key["ndvi"].team == "★ baseline:ndvi"
    assert by_key["nope"].status == "skipped" and "unknown reference" in by_key["nope"].note
    assert by_key["model"].status in ("scored", "skipped")
    if by_key["model"].status == "skipped":
        assert by_key["model"].note.startswith("not available here")
    again = compute_references(["ndvi"], benchmark=bench, board=board)
    assert again[0].status == "duplicate"  # deterministic predictions: the same archive bytes
    lines = {s.team: s for s in board.standings(bench.id)}
    assert lines["★ baseline:ndvi"].is_reference and lines["★ baseline:ndvi"].n_scored == 1


def test_a_custom_patch_factory_and_one_without_labels(tmp_path, small_patch):
    bm = create_benchmark(2, 16, 3, root=tmp_path / "ok", build_inputs=False, patch_factory=lambda seed, size: small_patch)
    assert bm.simulator == "custom" and bm.names == ["eopatch-01", "eopatch-02"]
    assert bm.patches[0].bbox != bm.patches[1].bbox  # each moved to its own random place
    unlabelled = small_patch.replace(cultivated=None, not_declared=None)
    with pytest.raises(ConfigError, match="without CULTIVATED"):
        create_benchmark(2, 16, 3, root=tmp_path / "bad", patch_factory=lambda seed, size: unlabelled)
    assert not (tmp_path / "bad" / "definition").exists() and not list((tmp_path / "bad").glob(".definition-*"))


def test_a_gdal_error_while_checking_a_file_is_the_files_problem(bench, board, tmp_path, monkeypatch):
    import rasterio
    from rasterio._err import CPLE_AppDefinedError

    def gdal_says_no(*_a, **_k):
        raise CPLE_AppDefinedError(1, 4, "TIFFReadDirectory: corrupt directory")

    archive = noisy_submission(bench, tmp_path / "a.zip", flip=0.05, seed=7)
    monkeypatch.setattr(rasterio, "open", gdal_says_no)
    res = submit(archive, "Checked", token=token_for(board, "Checked"), benchmark=bench, board=board)
    assert res.status == "rejected" and any("could not be read" in p and "corrupt directory" in p for p in res.problems)


def test_geotiff_bombs_are_refused_on_their_headers_without_a_pixel_read(bench, board, tmp_path, monkeypatch):
    """Right-sized masks of 500 pixel-interleaved zstd bands, or stored as one 1024 × 1024 tile: GDAL had to inflate
    every band / the whole tile to give band 1 (a 1.8 MB archive of 65535-band files took 8.3 s to be refused, and a
    refusal is not rate-limited). Both are refused on their headers alone: not one pixel is decoded."""
    import rasterio
    from rasterio.io import DatasetReader
    from rasterio.transform import Affine

    from sr_core import BBox

    reads: list[str] = []
    real = DatasetReader.read
    monkeypatch.setattr(DatasetReader, "read", lambda self, *a, **k: reads.append(self.name) or real(self, *a, **k))
    H, W = bench.label_shape
    token = token_for(board, "Bomber")
    for kind, creation, message in [
        ("bands", {"count": 500, "interleave": "pixel"}, "has 500 bands; a submission file has exactly 1"),
        ("tile", {"count": 1, "tiled": True, "blockxsize": 1024, "blockysize": 1024},
         f"is stored in 1024 × 1024 px blocks, larger than its {H} × {W} px image; write it untiled or with 256 × 256 "
         "tiles, as sr_core.io.write_submission does"),
    ]:
        folder = tmp_path / kind
        folder.mkdir()
        for p in bench.patches:
            with rasterio.open(folder / f"{p.name}.tif", "w", driver="GTiff", height=H, width=W, dtype="uint8",
                               crs=f"EPSG:{p.epsg}", transform=Affine(*BBox(*p.bbox, epsg=p.epsg).transform(W, H)),
                               compress="zstd",
                               **creation) as dst:
                dst.write(np.zeros((dst.count, H, W), np.uint8))
        res = submit(zip_folder(folder, tmp_path / f"{kind}.zip"), "Bomber", token=token, benchmark=bench, board=board)
        assert reads == [], kind
        assert res.status == "rejected" and res.public_wmcc is None, (kind, res.problems)
        assert res.problems == [f"{p.name}.tif: {message}" for p in sorted(bench.patches, key=lambda p: p.name)]
    assert board.submissions(bench.id) == []


def test_each_submission_outcome_is_logged(bench, board, tmp_path, caplog):
    archive = noisy_submission(bench, tmp_path / "a.zip", flip=0.05, seed=8)
    token = token_for(board, "Logged")
    with caplog.at_level("INFO", logger="sr_core.benchmark.service"):
        submit(archive, "Logged", token=token, benchmark=bench, board=board)
        submit(archive, "Logged", token="wrong", benchmark=bench, board=board)
    lines = [r.getMessage() for r in caplog.records if r.name == "sr_core.benchmark.service"]
    assert any("'a.zip' from Logged" in m and ": scored in" in m for m in lines)
    assert any(": unauthorized in" in m and "audit #" in m for m in lines)
