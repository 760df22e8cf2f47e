"""The leaderboard database: one-transaction inserts, duplicates, rate limit, rollback, restart, locks, tokens.

Tests taking ``db`` run twice: on SQLite and on PostgreSQL (``$SR_CORE_TEST_PG_URL``, see conftest); the SQLite
lock and WAL tests run on SQLite only."""

from __future__ import annotations

import csv
import dataclasses
import sqlite3
import threading
import time
from datetime import datetime, timedelta

import pytest

from sr_core.benchmark import store
from sr_core.benchmark.store import (
    Leaderboard,
    LeaderboardBusyError,
    NewSubmission,
    RateLimit,
    TeamAuthError,
    default_db_url,
    dispose_engines,
)  # fmt: skip
from sr_core.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def sub(team: str = "Team A", sha: str = "a", public: float = 0.5, **kw) -> NewSubmission:
    base = NewSubmission(team=team, benchmark_id="bm-test", sha256=sha * 64, file_name="sub.zip", n_files=4,
                         status="scored", public_wmcc=public, private_wmcc=public - 0.1, overall_wmcc=public - 0.05,
                         per_patch=[{"name": "eopatch-01", "split": "public", "weighted_mcc": public}], seconds=0.1)
    return dataclasses.replace(base, **kw)


class Board:
    """A Leaderboard whose teams are registered on first use: ``rec(sub)`` records with the team's checked token."""

    def __init__(self, lb: Leaderboard) -> None:
        self.lb = lb
        self.auth: dict[str, object] = {}

    def rec(self, s: NewSubmission, **kw):
        if s.is_reference:
            return self.lb.record(s, **kw)
        key = store.team_key(s.team)
        if key not in self.auth:
            _, token = self.lb.register_team(s.team)
            self.auth[key] = self.lb.authenticate(s.team, token)
        return self.lb.record(s, auth=self.auth[key], **kw)


@pytest.fixture
def db(leaderboard_url):
    return leaderboard_url


@pytest.fixture
def sqlite_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'lb.sqlite'}"
    yield url
    dispose_engines()


def test_default_database_is_a_wal_sqlite_file_under_the_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_CORE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SR_CORE_DB_URL", raising=False)
    url = default_db_url()
    assert url == f"sqlite:///{tmp_path / 'home' / 'benchmark' / 'leaderboard.sqlite'}"
    lb = Leaderboard()
    try:
        assert lb.journal_mode() == "wal"
        assert lb.integrity_check() == "ok"
        assert (tmp_path / "home" / "benchmark" / "leaderboard.sqlite").is_file()
        monkeypatch.setenv("SR_CORE_DB_URL", f"sqlite:///{tmp_path / 'other.sqlite'}")
        assert default_db_url().endswith("other.sqlite")
    finally:
        dispose_engines()


def test_insert_and_read_back_every_field(db):
    clock = Clock()
    lb = Leaderboard(db, clock=clock)
    out = Board(lb).rec(sub(), rate_limit=RateLimit(5))
    assert out.status == "recorded" and out.submission_id == 1 and out.attempts == 1
    (row,) = lb.submissions("bm-test")
    assert (row.team, row.sha256, row.status, row.n_files, row.file_name) == ("Team A", "a" * 64, "scored", 4, "sub.zip")
    assert (row.public_wmcc, row.private_wmcc, row.overall_wmcc) == (0.5, 0.4, 0.45)
    assert row.created_at == clock.now and row.per_patch[0]["name"] == "eopatch-01"
    assert "private_wmcc" not in row.to_dict() and row.to_dict(private=True)["private_wmcc"] == 0.4


def test_duplicate_same_team_any_case_is_not_recorded_twice(db):
    lb = Leaderboard(db, clock=Clock())
    b = Board(lb)
    first = b.rec(sub())
    again = b.rec(sub(team="  team   a "))
    assert again.status == "duplicate" and again.submission_id == first.submission_id
    assert again.duplicate_of is not None and again.duplicate_of.public_wmcc == 0.5
    other_team = b.rec(sub(team="Team B"))
    other_bench = b.rec(sub(benchmark_id="bm-other"))
    assert other_team.status == other_bench.status == "recorded"
    assert lb.counts() == {"teams": 2, "teams_without_token": 0, "submissions_scored": 3, "audit_log": 2}


def test_unique_index_stops_a_second_scored_copy_even_without_the_check(db):
    lb = Leaderboard(db, clock=Clock())
    Board(lb).rec(sub())
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), lb.engine.begin() as conn:
        conn.execute(insert(store.SUBMISSIONS).values(
            team_id=1, benchmark_id="bm-test", created_at=datetime(2024, 1, 1), sha256="a" * 64, file_name="x",
            n_files=1, status="scored"))  # fmt: skip
    assert len(lb.submissions()) == 1


def test_rate_limit_per_team_with_window(db):
    clock = Clock()
    lb = Leaderboard(db, clock=clock)
    b = Board(lb)
    limit = RateLimit(2, 60)
    assert b.rec(sub(sha="1"), rate_limit=limit).status == "recorded"
    clock.advance(10)
    assert b.rec(sub(sha="2"), rate_limit=limit).status == "recorded"
    clock.advance(10)
    blocked = b.rec(sub(sha="3"), rate_limit=limit)
    assert blocked.status == "rate_limited" and blocked.retry_after_s == pytest.approx(40, abs=1)
    # other teams and references are not limited
    assert b.rec(sub(team="Team B", sha="3"), rate_limit=limit).status == "recorded"
    assert b.rec(sub(team="★ model", sha="5", is_reference=True), rate_limit=limit).status == "recorded"
    clock.advance(41)  # the first submission left the window
    assert b.rec(sub(sha="3"), rate_limit=limit).status == "recorded"
    assert lb.recent_count("team a", 60)[0] == 2


def test_only_scored_submissions_are_stored(db):
    lb = Leaderboard(db, clock=Clock())
    with pytest.raises(ValueError, match="audit log"):
        Board(lb).rec(sub(status="rejected", public_wmcc=None, error="bad"))
    assert lb.submissions() == []


@pytest.mark.parametrize(("text", "n", "window"), [("5", 5, 3600), ("5/hour", 5, 3600), ("20/day", 20, 86400),
                                                   ("2/minute", 2, 60), ("3/90s", 3, 90), ("0", 0, 3600)])
def test_rate_limit_parsing(text, n, window):
    lim = RateLimit.parse(text)
    assert (lim.max_count, lim.window_s) == (n, window)
    assert lim.unlimited == (n == 0)


def test_rate_limit_from_env_and_bad_values(monkeypatch):
    monkeypatch.setenv("SR_CORE_RATE_LIMIT", "7/day")
    assert RateLimit.from_env() == RateLimit(7, 86400)
    monkeypatch.setenv("SR_CORE_RATE_LIMIT", "lots")
    with pytest.raises(ConfigError, match="SR_CORE_RATE_LIMIT"):
        RateLimit.from_env()


def test_failure_inside_the_transaction_rolls_everything_back(db):
    lb = Leaderboard(db, clock=Clock())

    def boom(new_id: int) -> None:
        assert new_id == 1
        raise RuntimeError("process died mid-write")

    b = Board(lb)
    with pytest.raises(RuntimeError, match="mid-write"):
        b.rec(sub(team="Ghost"), before_commit=boom)
    assert lb.submissions() == []  # the row did not survive
    with pytest.raises(RuntimeError, match="mid-write"):
        b.rec(sub(team="★ ghost", is_reference=True), before_commit=lambda _id: boom(1))
    assert [t["name"] for t in lb.teams()] == ["Ghost"]  # nor a reference team created in that transaction
    assert b.rec(sub(team="Ghost")).status == "recorded"  # and the same submission is not a "duplicate"


def test_restart_keeps_every_row(db):
    lb = Leaderboard(db, clock=Clock())
    b = Board(lb)
    for i in range(5):
        b.rec(sub(team=f"T{i % 2}", sha=str(i)))
    before = [(r.id, r.team, r.sha256, r.public_wmcc) for r in lb.submissions()]
    dispose_engines()  # every connection closed: what a restart of the app does
    again = Leaderboard(db)
    assert [(r.id, r.team, r.sha256, r.public_wmcc) for r in again.submissions()] == before
    assert again.integrity_check() == "ok"


def test_writer_waits_for_a_held_lock_instead_of_failing(sqlite_db):
    db = sqlite_db
    lb = Leaderboard(db, clock=Clock())
    b = Board(lb)
    b.rec(sub(sha="0"))
    path = db.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    released = threading.Event()

    def release() -> None:
        time.sleep(0.6)
        other.execute("COMMIT")
        released.set()

    threading.Thread(target=release).start()
    t0 = time.perf_counter()
    out = b.rec(sub())
    assert out.status == "recorded" and released.is_set() and time.perf_counter() - t0 >= 0.5
    other.close()


def test_a_lock_that_never_clears_gives_a_clear_busy_error(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "BUSY_TIMEOUT_S", 0.05)
    url = f"sqlite:///{tmp_path / 'busy.sqlite'}"
    try:
        lb = Leaderboard(url, max_attempts=3)
        b = Board(lb)
        b.rec(sub(sha="0"))
        other = sqlite3.connect(tmp_path / "busy.sqlite", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(LeaderboardBusyError, match="3 tries; nothing was recorded"):
            b.rec(sub())
        other.execute("ROLLBACK")
        other.close()
        assert b.rec(sub()).status == "recorded"
    finally:
        dispose_engines()


def test_standings_best_public_per_team_and_private_reveal(db):
    clock = Clock()
    lb = Leaderboard(db, clock=clock)
    b = Board(lb)
    for team, sha, pub, priv in [("A", "1", 0.70, 0.60), ("A", "2", 0.80, 0.50), ("A", "3", 0.75, 0.90),
                                 ("B", "4", 0.78, 0.70), ("★ model", "5", 0.60, 0.65), ("★ model", "6", 0.55, 0.50)]:
        clock.advance(60)
        b.rec(sub(team=team, sha=sha, public=pub, private_wmcc=priv, is_reference=team.startswith("★")))
    lb.register_team("C")  # registered, never scored: no line (no phantom teams)
    pub = lb.standings("bm-test")
    assert [s.team for s in pub] == ["A", "B", "★ model"]
    a = pub[0]
    assert (a.best_public, a.n_scored, a.private_of_ranked, a.best_private) == (0.80, 3, 0.50, 0.90)
    assert pub[2].best_public == 0.55  # a reference shows its latest row
    # the reveal ranks by the private score of the publicly ranked submission: A's 0.50, not its best 0.90
    assert [s.team for s in lb.standings("bm-test", by="private")] == ["B", "A", "★ model"]


def test_export_csv_holds_every_row_with_private_scores(db, tmp_path):
    lb = Leaderboard(db, clock=Clock())
    b = Board(lb)
    b.rec(sub(sha="1"))
    b.rec(sub(sha="2", public=0.7))
    n = lb.export_csv(tmp_path / "out" / "lb.csv")
    with open(tmp_path / "out" / "lb.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert n == len(rows) == 2
    assert rows[0]["private_wmcc"] == "0.4" and float(rows[1]["public_wmcc"]) == 0.7


# -- tokens -------------------------------------------------------------------------------------------------------
def test_register_authenticate_rotate_revoke(db):
    lb = Leaderboard(db, clock=Clock())
    info, token = lb.register_team("Field Hands")
    assert info.token == "active" and token.startswith("srt_") and len(token) > 40
    auth = lb.authenticate("  field   HANDS ", f" {token}\n")  # any case, pasted with whitespace
    assert auth.name == "Field Hands"
    with pytest.raises(ConfigError, match=r"already registered.*benchmark rotate"):
        lb.register_team("FIELD HANDS")
    for bad, reason in [(None, "missing"), ("", "missing"), ("srt_wrong", "mismatch"), (token + "x", "mismatch")]:
        with pytest.raises(TeamAuthError) as err:
            lb.authenticate("Field Hands", bad)
        assert err.value.reason == reason
    with pytest.raises(TeamAuthError, match="do not match") as unknown:
        lb.authenticate("Nobody", token)  # an unknown team reads exactly like a wrong token
    assert unknown.value.reason == "mismatch"

    lb.revoke_token("field hands")
    with pytest.raises(TeamAuthError, match="revoked by the benchmark admin") as err:
        lb.authenticate("Field Hands", token)
    assert err.value.reason == "revoked"
    assert lb.record(sub(team="Field Hands"), auth=auth).status == "unauthorized"  # the check inside the transaction
    _, new = lb.rotate_token("Field Hands")
    with pytest.raises(TeamAuthError, match="do not match"):
        lb.authenticate("Field Hands", token)  # the old token is dead
    auth2 = lb.authenticate("Field Hands", new)
    assert lb.record(sub(team="Field Hands"), auth=auth).status == "unauthorized"  # a check made with the old token
    assert lb.record(sub(team="Field Hands"), auth=auth2).status == "recorded"
    events = [e.event for e in lb.audit_log()]
    assert events == ["rotate", "revoke", "register"]


def test_only_a_salted_hash_is_stored(db):
    from sqlalchemy import select

    lb = Leaderboard(db)
    _, t1 = lb.register_team("A")
    _, t2 = lb.register_team("B")
    with lb.engine.connect() as conn:
        hashes = dict(conn.execute(select(store.TEAMS.c.name, store.TEAMS.c.token_hash)).all())
    assert all(h.startswith("scrypt$") for h in hashes.values()) and hashes["A"] != hashes["B"]
    dump = " ".join(hashes.values())
    assert t1 not in dump and t2 not in dump


def test_a_team_submission_needs_a_checked_token(db):
    from sr_core.benchmark.credentials import CredentialError

    lb = Leaderboard(db)
    lb.register_team("A")
    with pytest.raises(CredentialError, match="checked token"):
        lb.record(sub(team="A"))
    assert lb.submissions() == []


def test_unusable_database_url_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a SQLAlchemy URL"):
        Leaderboard("not a url")


def test_a_database_path_that_cannot_be_opened_is_a_config_error(tmp_path):
    (tmp_path / "adir").mkdir()
    try:
        with pytest.raises(ConfigError, match="check the file / --db / SR_CORE_DB_URL"):
            Leaderboard(f"sqlite:///{tmp_path / 'adir'}")
    finally:
        dispose_engines()


def test_equal_scores_rank_whoever_got_there_first_not_the_name(db):
    """Several teams submitting the same baseline tie exactly: the earlier submission ranks first (it was ordered by
    name, so "Aardvark" always beat "Zebra"), on the public standing and on the reveal."""
    clock = Clock()
    lb = Leaderboard(db, clock=clock)
    b = Board(lb)
    b.rec(sub(team="Zebra", sha="1", public=0.7))
    clock.advance(60)
    b.rec(sub(team="Aardvark", sha="2", public=0.7))
    assert [s.team for s in lb.standings("bm-test")] == ["Zebra", "Aardvark"]
    assert [s.team for s in lb.standings("bm-test", by="private")] == ["Zebra", "Aardvark"]


def test_the_rate_limit_wait_is_the_same_before_and_inside_the_transaction(db):
    """With more submissions in the window than the limit (it was lowered meanwhile), the pre-check said to wait for
    the oldest to leave, while a new one fits only once enough have left."""
    clock = Clock()
    lb = Leaderboard(db, clock=clock)
    b = Board(lb)
    for i in range(4):
        b.rec(sub(sha=str(i)))
        clock.advance(100)
    limit = RateLimit(2, 3600)
    n, pre = lb.recent_count("Team A", limit.window_s, limit.max_count)
    inside = b.rec(sub(sha="x"), rate_limit=limit)
    assert n == 4 and inside.status == "rate_limited" and pre == pytest.approx(inside.retry_after_s, abs=1)


def test_exported_csv_cells_never_start_a_formula(db, tmp_path):
    lb = Leaderboard(db, clock=Clock())
    Board(lb).rec(sub(file_name="=HYPERLINK(\"http://x\")+1.zip"))
    lb.export_csv(tmp_path / "x.csv")
    with open(tmp_path / "x.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["file_name"] == "'=HYPERLINK(\"http://x\")+1.zip" and float(row["public_wmcc"]) == 0.5


def test_withdrawn_submission_leaves_the_standings_but_not_the_history_or_the_rate_limit(db):
    clock = Clock()
    lb = Leaderboard(db, clock=clock)
    b = Board(lb)
    b.rec(sub(team="A", sha="1", public=0.70))
    clock.advance(60)
    best = b.rec(sub(team="A", sha="2", public=0.90))
    clock.advance(60)
    b.rec(sub(team="B", sha="3", public=0.80))
    assert [(s.team, s.best_public) for s in lb.standings("bm-test")] == [("A", 0.90), ("B", 0.80)]
    with pytest.raises(ConfigError, match="why"):
        lb.withdraw(best.submission_id, "   ")
    row = lb.withdraw(best.submission_id, "trained on the test labels")
    assert row.status == "withdrawn" and row.public_wmcc == 0.90 and "trained on the test labels" in row.error
    # A's next-best row ranks it now, below B; the withdrawn row stays in A's history with its reason
    assert [(s.team, s.best_public, s.n_scored) for s in lb.standings("bm-test")] == [("B", 0.80, 1), ("A", 0.70, 1)]
    assert [r.status for r in lb.submissions("bm-test", team="a")] == ["scored", "withdrawn"]
    # the same archive is not scored again, and the withdrawn row still counts for the rate limit of its window
    again = b.rec(sub(team="A", sha="2", public=0.90))
    assert again.status == "duplicate" and again.duplicate_of.status == "withdrawn"
    assert lb.recent_count("A", 3600)[0] == 2
    limited = b.rec(sub(team="A", sha="9"), rate_limit=RateLimit(2, 3600))
    assert limited.status == "rate_limited"
    with pytest.raises(ConfigError, match="is withdrawn, not scored"):
        lb.withdraw(best.submission_id, "twice")
    with pytest.raises(ConfigError, match="no submission #999"):
        lb.withdraw(999, "x")
    events = [(e.event, e.team) for e in lb.audit_log(limit=2)]
    assert events == [("withdraw", "A"), ("register", "B")]
    # undo: back in the standings with its score; the audit log keeps both steps
    back = lb.reinstate(best.submission_id)
    assert back.status == "scored" and back.error is None
    assert [(s.team, s.best_public) for s in lb.standings("bm-test")] == [("A", 0.90), ("B", 0.80)]
    assert lb.audit_log(limit=1)[0].event == "reinstate"
    with pytest.raises(ConfigError, match="is scored, not withdrawn"):
        lb.reinstate(best.submission_id)


def test_reference_rows_cannot_be_withdrawn(db):
    lb = Leaderboard(db, clock=Clock())
    ref = Board(lb).rec(sub(team="★ model", is_reference=True))
    with pytest.raises(ConfigError, match="reference row"):
        lb.withdraw(ref.submission_id, "old model")
    assert lb.standings("bm-test")[0].team == "★ model"
