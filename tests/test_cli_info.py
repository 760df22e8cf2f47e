"""``python -m sr_core info``: EOPatch folders, archives, folders of patches; one-line errors on bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import pytest
from conftest import REAL_CHALLENGE, REAL_L1C, REAL_SERIES, REPO, need
from fixtures_io import make_challenge_patch

from sr_core.cli import main


@pytest.mark.real_data
def test_info_json_on_the_challenge_layout(capsys):
    assert main(["info", str(need(REAL_CHALLENGE)), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["T"], d["H"], d["W"], d["n_bands"]) == (5, 101, 100, 12)
    assert d["shape"] == [5, 101, 100, 12] and d["crs"] == "EPSG:32633"
    assert d["dates"][0] == "2015-07-11T10:00:08" and len(d["cloud_fraction"]) == 5
    assert d["cloud_fraction"][1] > 0.5 and d["cloud_fraction"][0] < 0.5
    assert d["bbox"] == pytest.approx([465181.05, 5079244.89, 466180.53, 5080254.63], abs=0.01)
    assert {"bands", "cloud_prob", "cloud_mask", "is_data", "cultivated", "not_declared"} == set(d["features"])
    assert d["source"] == "real" and d["product_level"] == "L1C" and d["label_shape"] == [404, 400]
    assert any("L1C detected from reflectance" in n for n in d["notes"])
    assert any("trained on L2A surface reflectance" in w for w in d["warnings"])
    assert any("2 of 5 frames are mostly cloudy" in w for w in d["warnings"]) and not d["clouds_computed"]
    assert d["norm_factor"] == 1e-4


@pytest.mark.real_data
def test_info_text_on_the_eolearn_1x_copy(capsys):
    assert main(["info", str(need(REAL_L1C))]) == 0
    out = capsys.readouterr().out
    assert "(REAL, L1C)" in out and "T=5, 101 × 100 px, 12 bands" in out and "EPSG:32633" in out
    assert "dropped B10" in out and "100.0 %" in out


@pytest.mark.real_data
def test_info_subprocess_json():
    r = subprocess.run([sys.executable, "-m", "sr_core", "info", str(need(REAL_CHALLENGE)), "--json"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["T"], d["H"], d["W"], d["n_bands"], d["crs"]) == (5, 101, 100, 12, "EPSG:32633")


@pytest.mark.real_data
def test_info_series_without_bands_fails_with_one_line(capsys):
    assert main(["info", str(need(REAL_SERIES))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no band cube" in err and err.count("\n") == 1


def test_info_on_archive_and_folder_of_patches(tmp_path, capsys):
    make_challenge_patch(tmp_path / "src" / "eopatch-01", T=2, seed=1)
    make_challenge_patch(tmp_path / "src" / "eopatch-02", T=4, seed=2)
    arc = tmp_path / "up.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        for f in sorted((tmp_path / "src").rglob("*")):
            zf.write(f, f.relative_to(tmp_path).as_posix())
    for target in (arc, tmp_path / "src"):
        assert main(["info", str(target), "--json"]) == 0
        d = json.loads(capsys.readouterr().out)
        assert [p["name"] for p in d["patches"]] == ["eopatch-01", "eopatch-02"]
        assert [p["T"] for p in d["patches"]] == [2, 4]


@pytest.mark.parametrize("case", ["missing", "junk", "empty_dir", "evil_zip"])
def test_info_bad_input(tmp_path, capsys, case):
    path = tmp_path / "x"
    if case == "junk":
        path.write_bytes(b"definitely not an archive")
    elif case == "empty_dir":
        path.mkdir()
    elif case == "evil_zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("../evil.txt", "x")
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path.parent / "evil.txt").exists()


# -- model checkpoints -------------------------------------------------------------------------------------------------
def test_info_describes_the_bundled_model(capsys):
    """`info models/sr-small.pt`: what the network is, how it was trained and whether it resumes, read from the
    file itself (the figures below are the file's own, not copies of the model card)."""
    from sr_core.model import load_model

    model = load_model()
    path = REPO / "models" / "sr-small.pt"
    assert main(["info", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_params"] == model.n_params() and d["threshold"] == model.info.threshold
    assert d["network"]["width"] == model.config.width and d["bands"] == list(model.config.bands)
    assert d["resumable"] is None and d["best_validation"]["wmcc"] == max(h["wmcc@best"] for h in d["history"])
    assert d["lineage_steps"] == sum(p["steps"] for p in model.info.provenance["lineage"]) > 10_000
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"{model.n_params():,} parameters" in text and "resumable  no" in text
    assert re.search(r"lineage +\d+ phases, [\d,]+ steps in all: A \(\d+\)", text)


def test_info_says_where_a_training_run_resumes(tmp_path, capsys):
    out = tmp_path / "run.pt"
    assert main(["train", "--out", str(out), "--config", "tiny", "--steps", "2", "--size", "16", "--batch", "2",
                 "--sim-size", "24", "--pool", "2", "--val-patches", "1", "--val-size", "16", "--val-every", "2",
                 "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["resumable"] == {"step": 2, "steps": 2, "simulator_version": d["simulator_version"]}
    assert [h["step"] for h in d["history"]] == [2] and d["init_from"] is None
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "training state at step 2 of 2" in text and "--resume" in text and "from scratch" in text
    assert main(["info", str(tmp_path / "run.best.pt")]) == 0  # the best-validation copy holds weights only
    assert "resumable  no" in capsys.readouterr().out


def test_info_refuses_a_checkpoint_that_is_not_one_and_never_runs_its_code(tmp_path, capsys):
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.touch, ())

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Payload()))
    assert main(["info", str(evil)]) == 2
    err = capsys.readouterr().err
    assert "not a weights-only torch file" in err and not marker.exists()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert main(["info", str(junk)]) == 2 and "error:" in capsys.readouterr().err


def test_info_on_a_hand_made_checkpoint_with_a_partial_record(tmp_path, capsys):
    """A file saved by hand (no validation scores in its history, no training state) is still described."""
    from sr_core.model import SRNet, SRNetConfig
    from sr_core.model.checkpoint import save_checkpoint

    path = save_checkpoint(SRNet(SRNetConfig.preset("tiny")), tmp_path / "hand.pt",
                           provenance={"steps": 5, "history": [{"step": 5, "loss": 0.0}]})
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "loss 0.0000  weighted MCC nan" in text and "best " not in text and "resumable  no" in text
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["best_validation"] is None
