"""`python -m sr_core benchmark ...` round trip: create → inputs → (baseline) submit → list → standings → reveal → csv."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest

from sr_core.benchmark.store import dispose_engines
from sr_core.cli import main


@pytest.fixture(autouse=True)
def _close_db():
    yield
    dispose_engines()


def run_json(capsys, *argv: str) -> object:
    rc = main(list(argv))
    out = capsys.readouterr().out
    assert rc == 0, out
    return json.loads(out)


def zip_tifs(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.glob("*.tif")):
            zf.write(f, f"my-submission/{f.name}")
    return out


def test_cli_round_trip(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SR_CORE_RATE_LIMIT", "3/hour")
    created = run_json(capsys, "benchmark", "create", "--n", "4", "--size", "32", "--seed", "5", "--json")
    bench = created["benchmark"]
    assert bench["n"] == 4 and bench["n_public"] == 2 and "seed" not in bench  # the seed is not printed
    refs = {r["key"]: r for r in created["references"]}
    assert refs["ndvi"]["status"] == "scored" and refs["ndvi"]["team"] == "★ baseline:ndvi"

    # participants: inputs without labels → predict with the NDVI baseline → zip → submit
    inputs = tmp_path / "inputs"
    exported = run_json(capsys, "benchmark", "inputs", "--out", str(inputs), "--json")
    assert len(exported["written"]) == 4 and not list(inputs.glob("*/mask_timeless"))
    assert main(["baseline", "ndvi", str(inputs), "--out", str(tmp_path / "pred"), "--quiet"]) == 0
    capsys.readouterr()
    archive = zip_tifs(tmp_path / "pred", tmp_path / "team.zip")
    res = run_json(capsys, "benchmark", "submit", str(archive), "--team", "Field Hands", "--json")
    assert res["status"] == "scored" and res["n_files"] == 4 and "private_wmcc" not in res
    # the same predictions as the NDVI reference row: the same public score
    assert res["public_wmcc"] == refs["ndvi"]["result"]["public_wmcc"]

    assert main(["benchmark", "submit", str(archive), "--team", "field hands"]) == 0
    assert "duplicate" in capsys.readouterr().out

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("eopatch-1.tif", b"not a tiff")
    assert main(["benchmark", "submit", str(bad), "--team", "Field Hands"]) == 1
    out = capsys.readouterr().out
    assert "refused" in out and "eopatch-01.tif: missing" in out

    # reference rows: the NDVI baseline always; the model and the pixel baseline when their weights are installed
    ref_rows = [(r["team"], "scored") for r in created["references"] if r["status"] == "scored"]
    assert ("★ baseline:ndvi", "scored") in ref_rows
    rows = run_json(capsys, "benchmark", "list", "--json")
    assert [(r["team"], r["status"]) for r in rows] == [*ref_rows, ("Field Hands", "scored"), ("Field Hands", "rejected")]
    assert all("private_wmcc" not in r for r in rows)
    assert "private_wmcc" in run_json(capsys, "benchmark", "list", "--json", "--private")[0]

    table = run_json(capsys, "benchmark", "standings", "--json")["standings"]
    assert {s["team"] for s in table} == {t for t, _ in ref_rows} | {"Field Hands"}

    revealed = run_json(capsys, "benchmark", "reveal", "--json")
    assert len(revealed["private"]) == 2 and set(revealed["public"]).isdisjoint(revealed["private"])
    assert {s["team"] for s in revealed["standings"]} == {t for t, _ in ref_rows} | {"Field Hands"}
    field = next(s for s in revealed["standings"] if s["team"] == "Field Hands")
    assert field["private_of_ranked"] == pytest.approx(refs["ndvi"]["result"]["private_wmcc"])
    assert main(["benchmark", "reveal"]) == 0
    assert "PRIVATE standing" in capsys.readouterr().out

    assert main(["benchmark", "export-csv", str(tmp_path / "lb.csv")]) == 0
    assert f"wrote {len(ref_rows) + 2} submission(s)" in capsys.readouterr().out
    with open(tmp_path / "lb.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(ref_rows) + 2

    info = run_json(capsys, "benchmark", "info", "--json")
    assert info["journal_mode"] == "wal" and info["rate_limit"] == "3 per hour"
    assert info["rows"] == {"teams": len(ref_rows) + 1, "submissions_scored": len(ref_rows) + 1, "submissions_rejected": 1}

    before = run_json(capsys, "benchmark", "list", "--json")
    assert main(["benchmark", "references", "--only", "ndvi"]) == 0
    assert "(duplicate)" in capsys.readouterr().out
    assert run_json(capsys, "benchmark", "list", "--json") == before  # unchanged reference: not recorded again


def test_cli_without_a_benchmark_says_how_to_create_one(capsys):
    assert main(["benchmark", "list"]) == 2
    assert "benchmark create" in capsys.readouterr().err


def test_cli_db_option_uses_another_database(tmp_path, capsys):
    assert main(["benchmark", "create", "--n", "2", "--size", "16", "--seed", "1", "--no-references"]) == 0
    capsys.readouterr()
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    info = run_json(capsys, "benchmark", "info", "--json", "--db", url)
    assert info["database"] == url and (tmp_path / "elsewhere.sqlite").is_file()
