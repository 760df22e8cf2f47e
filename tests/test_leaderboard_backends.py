"""The leaderboard end to end on both back ends (SQLite file and PostgreSQL, see conftest ``leaderboard_url``):
concurrent submissions with and without valid tokens, a scorer killed while scoring and inside its transaction, a
restart, duplicates and rate limits under concurrency, and the migration of a schema-1 database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from sr_core.benchmark.definition import create_benchmark
from sr_core.benchmark.samples import noisy_submission
from sr_core.benchmark.service import submit
from sr_core.benchmark.store import Leaderboard, RateLimit, dispose_engines

REPO = Path(__file__).resolve().parents[1]
N_TEAMS = 20


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return create_benchmark(2, 16, 7, root=tmp_path_factory.mktemp("bench"), build_inputs=False)


@pytest.fixture(scope="module")
def archives(bench, tmp_path_factory):
    """N_TEAMS different valid archives."""
    folder = tmp_path_factory.mktemp("archives")
    return [noisy_submission(bench, folder / f"s{i:02d}.zip", flip=0.02 + 0.01 * i, seed=100 + i) for i in range(N_TEAMS)]


def test_concurrent_submissions_with_and_without_valid_tokens(bench, archives, leaderboard_url):
    lb = Leaderboard(leaderboard_url)
    tokens = {f"team-{i:02d}": lb.register_team(f"team-{i:02d}")[1] for i in range(N_TEAMS)}
    good = [(archives[i], f"team-{i:02d}", tokens[f"team-{i:02d}"]) for i in range(N_TEAMS)]
    # the same teams and archives with another team's token, a guessed one, or none
    def wrong(i: int) -> str | None:
        return [tokens[f"team-{(i + 1) % N_TEAMS:02d}"], "srt_guess", None][i % 3]

    bad = [(archives[i], f"team-{i:02d}", wrong(i)) for i in range(N_TEAMS)]
    jobs = [*good, *bad]

    def one(job):
        archive, team, token = job
        return submit(archive, team, token=token, benchmark=bench, board=Leaderboard(leaderboard_url),
                      rate_limit=RateLimit(5))

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(one, jobs))
    ok, refused = results[:N_TEAMS], results[N_TEAMS:]
    assert [r.status for r in ok] == ["scored"] * N_TEAMS, [r.message for r in ok if r.status != "scored"]
    assert [r.status for r in refused] == ["unauthorized"] * N_TEAMS
    assert all(("do not match" in r.message) or ("no team token given" in r.message) for r in refused)
    rows = lb.submissions(bench.id)
    assert len(rows) == N_TEAMS and len({(r.team, r.sha256) for r in rows}) == N_TEAMS  # each recorded once
    assert sorted(r.submission_id for r in ok) == sorted(r.id for r in rows)
    assert {s.team for s in lb.standings(bench.id)} == set(tokens)
    assert len(lb.audit_log(event="auth_failed")) == N_TEAMS


@pytest.mark.parametrize("servers", ["one process", "several processes"])
def test_concurrent_duplicates_and_rate_limit(bench, archives, leaderboard_url, servers, monkeypatch):
    """The same archive six times at once, then four new ones against a limit of 2: in one server process the team's
    submissions queue behind each other; across server processes (no shared lock, as here with the lock switched
    off) the database's transaction and unique index decide alone, with the same outcome."""
    import threading

    import sr_core.benchmark.service as service

    if servers == "several processes":
        monkeypatch.setattr(service, "_team_lock", lambda *a: threading.Lock())  # a lock nobody else holds
    lb = Leaderboard(leaderboard_url)
    token = lb.register_team("Eager")[1]

    def send(archive):
        return submit(archive, "Eager", token=token, benchmark=bench, board=Leaderboard(leaderboard_url),
                      rate_limit=RateLimit(2, 3600))

    with ThreadPoolExecutor(max_workers=6) as pool:  # the same archive six times at once: one row
        same = list(pool.map(send, [archives[0]] * 6))
    assert sorted(r.status for r in same) == ["duplicate"] * 5 + ["scored"]
    assert len({r.submission_id for r in same}) == 1
    with ThreadPoolExecutor(max_workers=4) as pool:  # four new archives at once, limit 2 per hour: one more fits
        burst = list(pool.map(send, archives[1:5]))
    assert sorted(r.status for r in burst) == ["rate_limited"] * 3 + ["scored"]
    assert all("limit is 2 per hour" in r.message for r in burst if r.status == "rate_limited")
    assert len(lb.submissions(bench.id, team="Eager")) == 2


def test_refused_archives_sent_at_once_are_still_limited(bench, leaderboard_url, tmp_path):
    """Refusals are counted once written, after the check: sent all at once from one team, they could each pass the
    count first (12 of 12 were extracted and checked with a limit of 4). One server process queues a team's uploads."""
    from sr_core.benchmark.samples import bad_archives

    lb = Leaderboard(leaderboard_url)
    token = lb.register_team("Hasty")[1]
    bad = bad_archives(bench, tmp_path / "bad", bomb_mib=1)["not TIFF"]

    def send(_):
        return submit(bad, "Hasty", token=token, benchmark=bench, board=Leaderboard(leaderboard_url),
                      rate_limit=RateLimit(1, 3600))

    with ThreadPoolExecutor(max_workers=8) as pool:
        out = list(pool.map(send, range(8)))
    assert sorted(r.status for r in out) == ["rate_limited"] * 4 + ["rejected"] * 4
    assert len(lb.audit_log(event="refused", team="Hasty")) == 4


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sr_core.benchmark.definition import load_benchmark
    from sr_core.benchmark.service import submit
    from sr_core.benchmark.store import Leaderboard

    root, url, archive, token, stage, marker = sys.argv[1:]

    def hook(s):
        if s == stage:
            Path(marker).write_text(s)
            time.sleep(600)

    submit(archive, "victim", token=token, benchmark=load_benchmark(root), board=Leaderboard(url), hook=hook)
""")


@pytest.mark.parametrize("stage", ["scoring", "in_transaction"])
def test_a_killed_scorer_leaves_no_row_and_blocks_nobody(bench, archives, leaderboard_url, tmp_path, stage):
    lb = Leaderboard(leaderboard_url)
    token = lb.register_team("victim")[1]
    marker = tmp_path / "reached"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(bench.folder.parent), leaderboard_url,
                             str(archives[0]), token, stage, str(marker)], env=env, cwd=REPO,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the scorer never reached its stage"
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert lb.submissions(bench.id) == []  # nothing half-written
    t0 = time.perf_counter()  # the next writer of the same team (same row lock) is not blocked
    res = submit(archives[0], "victim", token=token, benchmark=bench, board=lb)
    assert res.status == "scored" and time.perf_counter() - t0 < 20
    assert lb.integrity_check() == "ok"
    dispose_engines()  # restart: every connection closed, a new process state
    again = Leaderboard(leaderboard_url)
    assert [(r.id, r.team, r.public_wmcc) for r in again.submissions(bench.id)] == [
        (res.submission_id, "victim", res.public_wmcc)]


def _v1_database(url: str) -> None:
    """A leaderboard as schema version 1 left it: teams without tokens, a scored and a rejected submission."""
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    md = sa.MetaData()
    meta = sa.Table("meta", md, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
    teams = sa.Table("teams", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(64)),
                     sa.Column("name_key", sa.String(64), unique=True), sa.Column("is_reference", sa.Boolean),
                     sa.Column("created_at", sa.DateTime))
    subs = sa.Table("submissions", md, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id")), sa.Column("benchmark_id", sa.String(64)),
                    sa.Column("created_at", sa.DateTime), sa.Column("sha256", sa.String(64)),
                    sa.Column("file_name", sa.String(255)), sa.Column("n_files", sa.Integer),
                    sa.Column("status", sa.String(16)), sa.Column("public_wmcc", sa.Double),
                    sa.Column("private_wmcc", sa.Double), sa.Column("overall_wmcc", sa.Double),
                    sa.Column("per_patch", sa.Text), sa.Column("error", sa.Text), sa.Column("seconds", sa.Double))
    t = datetime(2024, 5, 1)
    with eng.begin() as conn:
        md.create_all(conn)
        conn.execute(meta.insert().values(key="schema_version", value="1"))
        conn.execute(teams.insert(), [{"id": 1, "name": "Old Timers", "name_key": "old timers", "is_reference": False,
                                       "created_at": t},
                                      {"id": 2, "name": "Junk Team", "name_key": "junk team", "is_reference": False,
                                       "created_at": t}])
        conn.execute(subs.insert().values(
            team_id=1, benchmark_id="bm-x", created_at=t, sha256="a" * 64, file_name="a.zip", n_files=2,
            status="scored", public_wmcc=0.7, private_wmcc=0.6, overall_wmcc=0.65))
        conn.execute(subs.insert().values(
            team_id=2, benchmark_id="bm-x", created_at=t, sha256="b" * 64, file_name="junk.zip", n_files=0,
            status="rejected", error="not a .zip"))
    eng.dispose()


def test_a_schema_1_database_is_migrated_in_place(bench, archives, leaderboard_url, caplog):
    _v1_database(leaderboard_url)
    with caplog.at_level("WARNING", logger="sr_core.benchmark.store"):
        lb = Leaderboard(leaderboard_url)
    assert "benchmark rotate TEAM" in caplog.text and "Old Timers" in caplog.text
    assert [(r.team, r.status) for r in lb.submissions()] == [("Old Timers", "scored")]  # the rejected row moved…
    (moved,) = lb.audit_log(event="refused")
    assert (moved.team, moved.file_name) == ("Junk Team", "junk.zip") and "not a .zip" in moved.detail  # …here
    assert [s.team for s in lb.standings("bm-x")] == ["Old Timers"]  # no phantom "Junk Team"
    assert {t.name: t.token for t in lb.team_list()} == {"Old Timers": "none", "Junk Team": "none"}
    assert lb.counts()["teams_without_token"] == 2
    refused = submit(archives[0], "Old Timers", token="whatever", benchmark=bench, board=lb)
    assert refused.status == "unauthorized" and "benchmark rotate 'Old Timers'" in refused.message
    _, token = lb.rotate_token("Old Timers")  # what the admin does
    assert submit(archives[0], "Old Timers", token=token, benchmark=bench, board=lb).status == "scored"
    dispose_engines()
    assert Leaderboard(leaderboard_url).counts()["submissions_scored"] == 2  # opening again: nothing migrates twice
