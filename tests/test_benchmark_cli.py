"""`python -m sr_core benchmark ...` round trip: create → admin-init → register → inputs → (baseline) submit with the
team's token → list → standings → reveal → csv; wrong tokens and admin credentials refused."""

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
    monkeypatch.delenv("SR_CORE_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("SR_CORE_TEAM_TOKEN", raising=False)
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

    # the organiser: an admin credential in a file only they can read, then the team's token, printed once
    assert main(["benchmark", "register", "Field Hands"]) == 2
    assert "admin-init" in capsys.readouterr().err
    cred = tmp_path / "admin.token"
    assert main(["benchmark", "admin-init", "--file", str(cred)]) == 0
    assert f"{cred.stat().st_mode & 0o777:o}" == "600" and str(cred) in capsys.readouterr().out
    monkeypatch.setenv("SR_CORE_ADMIN_TOKEN_FILE", str(cred))
    reg = run_json(capsys, "benchmark", "register", "Field Hands", "--json")
    assert set(reg) == {"team", "token"} and reg["team"] == "Field Hands"
    token = reg["token"]

    # wrong, missing tokens: exit 1, a clear message, nothing scored or recorded
    assert main(["benchmark", "submit", str(archive), "--team", "Field Hands", "--token", "srt_guess"]) == 1
    assert "do not match" in capsys.readouterr().err
    assert main(["benchmark", "submit", str(archive), "--team", "Field Hands"]) == 1
    err = capsys.readouterr().err
    assert "no team token given" in err and "SR_CORE_TEAM_TOKEN" in err

    res = run_json(capsys, "benchmark", "submit", str(archive), "--team", "Field Hands", "--token", token, "--json")
    assert res["status"] == "scored" and res["n_files"] == 4 and "private_wmcc" not in res
    # the same predictions as the NDVI reference row: the same public score
    assert res["public_wmcc"] == refs["ndvi"]["result"]["public_wmcc"]

    monkeypatch.setenv("SR_CORE_TEAM_TOKEN", token)  # the token from the environment
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
    assert [(r["team"], r["status"]) for r in rows] == [*ref_rows, ("Field Hands", "scored")]  # the refusal: audit only
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
    assert f"wrote {len(ref_rows) + 1} submission(s)" in capsys.readouterr().out
    with open(tmp_path / "lb.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(ref_rows) + 1
    assert main(["benchmark", "export-csv", str(tmp_path / "lb.csv")]) == 2  # an existing file is kept unless asked
    assert "add --overwrite" in capsys.readouterr().err
    assert main(["benchmark", "export-csv", str(tmp_path / "lb.csv"), "--overwrite"]) == 0
    assert "wrote" in capsys.readouterr().out

    audit = run_json(capsys, "benchmark", "audit", "--json")
    assert [e["event"] for e in audit][:4] == ["refused", "auth_failed", "auth_failed", "register"]
    assert token not in json.dumps(audit)

    # admin actions without the credential, with a wrong one, with a file others can read
    monkeypatch.delenv("SR_CORE_ADMIN_TOKEN_FILE")
    for action in (["reveal"], ["export-csv", str(tmp_path / "x.csv")], ["revoke", "Field Hands"], ["list", "--private"],
                   ["rotate", "Field Hands"], ["audit"], ["teams"], ["withdraw", "1", "--reason", "x"],
                   ["reinstate", "1"]):
        assert main(["benchmark", *action]) == 2, action
        assert "needs the admin credential" in capsys.readouterr().err
    monkeypatch.setenv("SR_CORE_ADMIN_TOKEN", "sra_not-the-one")
    assert main(["benchmark", "reveal"]) == 2
    assert "is not this leaderboard's" in capsys.readouterr().err
    monkeypatch.delenv("SR_CORE_ADMIN_TOKEN")
    cred.chmod(0o640)
    assert main(["benchmark", "reveal", "--admin-token-file", str(cred)]) == 2
    assert f"run `chmod 600 {cred}`" in capsys.readouterr().err
    cred.chmod(0o600)
    assert main(["benchmark", "admin-init", "--file", str(tmp_path / "other.token")]) == 2  # no silent takeover
    assert "already has an admin credential" in capsys.readouterr().err
    monkeypatch.setenv("SR_CORE_ADMIN_TOKEN", cred.read_text().strip())

    # revoke → refused with its message; rotate → the new token works, the old one not
    assert main(["benchmark", "revoke", "Field Hands"]) == 0
    capsys.readouterr()
    assert main(["benchmark", "submit", str(bad), "--team", "Field Hands"]) == 1
    assert "was revoked" in capsys.readouterr().err
    new = run_json(capsys, "benchmark", "rotate", "field hands", "--json")["token"]
    assert new != token
    assert main(["benchmark", "submit", str(archive), "--team", "Field Hands", "--token", new]) == 0
    assert "duplicate" in capsys.readouterr().out
    teams = run_json(capsys, "benchmark", "teams", "--json")
    assert [(t["name"], t["token"], t["n_scored"]) for t in teams if not t["is_reference"]] == [("Field Hands", "active", 1)]

    # the admin withdraws the team's row: out of the standing, kept in the list with the reason; its archive is
    # refused with that reason; reinstate puts it back
    sid = next(r["id"] for r in run_json(capsys, "benchmark", "list", "--json") if r["team"] == "Field Hands")
    with pytest.raises(SystemExit):  # the reason is required
        main(["benchmark", "withdraw", str(sid)])
    assert "--reason" in capsys.readouterr().err
    assert main(["benchmark", "withdraw", str(sid), "--reason", "copied the NDVI reference"]) == 0
    assert f"withdrew submission #{sid} of 'Field Hands'" in capsys.readouterr().out
    assert "Field Hands" not in {s["team"] for s in run_json(capsys, "benchmark", "standings", "--json")["standings"]}
    row = next(r for r in run_json(capsys, "benchmark", "list", "--json") if r["id"] == sid)
    assert row["status"] == "withdrawn" and "copied the NDVI reference" in row["error"]
    assert main(["benchmark", "submit", str(archive), "--team", "Field Hands", "--token", new]) == 1
    assert "copied the NDVI reference" in capsys.readouterr().out
    assert main(["benchmark", "withdraw", "9999", "--reason", "x"]) == 2
    assert "no submission #9999" in capsys.readouterr().err
    assert main(["benchmark", "reinstate", str(sid)]) == 0
    capsys.readouterr()
    assert "Field Hands" in {s["team"] for s in run_json(capsys, "benchmark", "standings", "--json")["standings"]}
    assert [e["event"] for e in run_json(capsys, "benchmark", "audit", "--json", "--limit", "2")] == [
        "reinstate", "withdraw"]

    info = run_json(capsys, "benchmark", "info", "--json")
    assert info["journal_mode"] == "wal" and info["rate_limit"] == "3 per hour" and info["admin_credential"]
    assert info["rows"]["teams"] == len(ref_rows) + 1 and info["rows"]["submissions_scored"] == len(ref_rows) + 1
    assert "submissions_rejected" not in info["rows"] and info["rows"]["teams_without_token"] == 0

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
