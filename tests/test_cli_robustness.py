"""The command line as a newcomer meets it: nonsense numbers refused where they are typed, output locations that
cannot work said in one line, one bad patch among many does not stop the rest, and nothing a user made is replaced
unasked (or unsaid)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from sr_core.cli import main
from sr_core.io import write_eopatch
from sr_core.model import SRNet, SRNetConfig, save_checkpoint

torch.set_num_threads(1)
FAST = ["--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(SRNet(SRNetConfig.preset("tiny")), tmp_path_factory.mktemp("m") / "tiny.pt", threshold=0.5)


@pytest.fixture
def two(tmp_path, small_patch):
    """A folder with a good patch ``a`` and a broken one ``z`` (its band cube removed)."""
    write_eopatch(small_patch, tmp_path / "in" / "a")
    write_eopatch(small_patch, tmp_path / "in" / "z")
    for f in (tmp_path / "in" / "z" / "data").iterdir():
        if f.name.startswith("BANDS"):
            f.unlink()
    return tmp_path / "in"


@pytest.mark.parametrize("argv, says", [
    (["predict", "x", "--out", "o", "--threads", "-1"], "argument --threads: must be 0 or more, got -1"),
    (["predict", "x", "--out", "o", "--tile", "2"], "argument --tile: must be 8 or more, got 2"),
    (["evaluate", "--real", "x", "--threshold", "7"], "argument --threshold: must lie in (0, 1), got 7"),
    (["inspect", "x", "--margin", "-1"], "argument --margin: must lie in [0, 1), got -1"),
    (["train", "--out", "t.pt", "--ckpt-every", "0"], "argument --ckpt-every: must be 1 or more, got 0"),
    (["train", "--out", "t.pt", "--lr", "-1"], "argument --lr: must lie in (0, inf), got -1"),
    (["simulate", "--calibrate", "--n", "0"], "argument --n: must be 1 or more, got 0"),
    (["bench", "--size", "-4"], "argument --size: must be 8 or more, got -4"),
])
def test_nonsense_numbers_are_refused_where_they_are_typed(argv, says, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and says in capsys.readouterr().err


def test_an_output_location_that_cannot_work_is_one_line_not_a_traceback(tmp_path, two, ckpt, capsys):
    afile = tmp_path / "afile.txt"
    afile.write_text("mine")
    assert main(["predict", str(two / "a"), "--out", str(afile), "--model", str(ckpt), *FAST, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "afile.txt" in err and "choose another output location" in err and "Traceback" not in err
    assert afile.read_text() == "mine"


def test_predict_into_the_current_folder(tmp_path, two, ckpt, capsys, monkeypatch):
    """`--out .` has no name to put -proba after; it used to crash before predicting anything."""
    work = tmp_path / "here"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["predict", str(two / "a"), "--out", ".", "--proba", "--model", str(ckpt), *FAST, "--quiet"]) == 0
    assert (work / "a.tif").is_file() and (tmp_path / "here-proba" / "a_proba.tif").is_file()


def test_one_bad_patch_does_not_stop_the_others_and_replaced_files_are_named(tmp_path, two, ckpt, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.tif").write_text("an older map")
    rc = main(["predict", str(two), "--out", str(out), "--model", str(ckpt), *FAST, "--quiet"])
    captured = capsys.readouterr()
    assert rc == 1 and (out / "a.tif").stat().st_size > len("an older map") and not (out / "z.tif").exists()
    assert "failed: z:" in captured.err and "1 patch(es) failed: z" in captured.err
    assert "replaced 1 existing file(s)" in captured.out and "a.tif" in captured.out
    rc = main(["predict", str(two), "--out", str(tmp_path / "o2"), "--model", str(ckpt), *FAST, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and [p["name"] for p in doc["patches"]] == ["a"] and doc["failed"][0]["name"] == "z"
    # the same for the baselines
    rc = main(["baseline", "ndvi", str(two), "--out", str(tmp_path / "o3"), "--quiet"])
    assert rc == 1 and (tmp_path / "o3" / "a.tif").is_file() and "failed: z:" in capsys.readouterr().err
    # nothing predicted at all is the user's to fix, as a single bad patch always was
    assert main(["predict", str(two / "z"), "--out", str(tmp_path / "o4"), "--model", str(ckpt), *FAST]) == 2


@pytest.mark.parametrize("extra, says", [
    (["--uncertainty", "--tta", "1"], "--uncertainty is the spread over flips / rotations: it needs --tta 2"),
    (["--retries", "3"], "--retries applies to batch runs only: add --scheduler local"),
    (["--mosaic", "none", "--index", "x.gpkg"], "--mosaic, --index apply to batch runs only"),
    (["--scheduler", "local:1", "--tta", "4"], "--tta is not supported with --scheduler"),
    (["--proba-dir", "maps"], "--proba-dir is where --proba / --uncertainty maps go"),
])
def test_options_that_would_be_ignored_are_refused(tmp_path, two, ckpt, extra, says, capsys):
    rc = main(["predict", str(two / "a"), "--out", str(tmp_path / "o"), "--model", str(ckpt), *FAST, *extra])
    assert rc == 2 and says in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_train_never_replaces_a_checkpoint_unasked(tmp_path, ckpt, capsys):
    mine = tmp_path / "mine.pt"
    mine.write_bytes(ckpt.read_bytes())
    before = mine.stat().st_mtime_ns, mine.read_bytes()
    rc = main(["train", "--out", str(mine), "--config", "tiny", "--steps", "1", "--val-patches", "0", "--pool", "1",
               "--sim-size", "16", "--size", "16", "--batch", "1", "--device", "cpu"])
    assert rc == 2 and "add --resume to continue that run" in capsys.readouterr().err
    assert (mine.stat().st_mtime_ns, mine.read_bytes()) == before


def test_clouds_save_checks_before_computing(tmp_path, two, capsys):
    pytest.importorskip("s2cloudless")
    (tmp_path / "taken").mkdir()
    os.utime(tmp_path / "taken")
    assert main(["clouds", str(two / "a"), "--save", str(tmp_path / "taken")]) == 2
    assert "add --overwrite to replace it" in capsys.readouterr().err
    assert main(["clouds", str(two), "--save", str(tmp_path / "new")]) == 2
    assert "--save writes one patch" in capsys.readouterr().err and not (tmp_path / "new").exists()


def test_inspect_and_evaluate_refuse_before_the_work(tmp_path, two, ckpt, capsys):
    """A report name it cannot write, a folder of patches, and simulated-patch options beside real patches are said
    at once, not after minutes of inspection (or silently ignored)."""
    assert main(["inspect", str(two / "a"), "--report", str(tmp_path / "r.txt"), "--model", str(ckpt)]) == 2
    assert "name it .html or .pdf" in capsys.readouterr().err
    assert main(["inspect", str(two), "--model", str(ckpt)]) == 2
    assert "inspect takes one patch folder" in capsys.readouterr().err
    assert main(["evaluate", "--real", str(two / "a"), "--simulate", "3", "--model", str(ckpt), *FAST]) == 2
    assert "--simulate chooses simulated patches; with --real the patches given are scored" in capsys.readouterr().err
    assert main(["evaluate", "--points", str(tmp_path / "nowhere"), "--model", str(ckpt), *FAST]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err


def test_train_says_what_it_prepares_and_checks_init_first(tmp_path, capsys):
    """Before its first step a run simulates its patch pool (a minute on a CPU with the defaults): it says so, and a
    bad --init is refused before that work, not after."""
    rc = main(["train", "--out", str(tmp_path / "t.pt"), "--config", "tiny", "--steps", "1", "--val-patches", "0",
               "--pool", "1", "--sim-size", "16", "--size", "16", "--batch", "1", "--device", "cpu",
               "--init", str(tmp_path / "nowhere.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "nowhere.pt not found" in err and "simulating the first" not in err


def test_the_admin_audit_limit_of_zero_means_all_and_dice_may_weigh_more_than_one(capsys):
    """Two argument types that were too strict: `audit --limit 0` is documented as "all", `--dice` is a weight."""
    from sr_core.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["benchmark", "audit", "--limit", "0"]).limit == 0
    assert parser.parse_args(["train", "--out", "t.pt", "--dice", "2"]).dice == 2.0


def test_batch_into_the_current_folder(tmp_path, two, ckpt, monkeypatch, capsys):
    work = tmp_path / "here"
    work.mkdir()
    monkeypatch.chdir(work)
    rc = main(["predict", str(two / "a"), "--out", ".", "--model", str(ckpt), "--device", "cpu", "--scheduler",
               "local:1", "--quiet", "--threads", "1"])
    assert rc == 0 and (work / "a.tif").is_file() and (tmp_path / "here_mosaic.vrt").is_file()
