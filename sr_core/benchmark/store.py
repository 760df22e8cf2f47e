"""The leaderboard's storage: teams and submissions in any SQLAlchemy database (SQLite by default).

Default: ``$SR_CORE_HOME/benchmark/leaderboard.sqlite``; ``SR_CORE_DB_URL`` (or ``--db`` on the CLI) names any
SQLAlchemy URL instead, e.g. ``postgresql+psycopg://user@host/leaderboard``.

Durability and concurrency (what "never loses a submission" rests on):

* a submission is scored *before* any transaction opens, then inserted in **one** transaction together with the
  duplicate and rate-limit checks: a process killed at any point leaves either the whole row or nothing;
* SQLite runs in WAL mode (readers never block the writer), ``synchronous = FULL`` (a committed row survives a
  power cut), ``busy_timeout`` (a writer waits for the lock instead of failing) and write transactions start with
  ``BEGIN IMMEDIATE`` (the write lock is taken up front, so two writers can never deadlock on a lock upgrade, the
  case the busy timeout cannot resolve);
* any transaction that still meets a lock ("database is locked", PostgreSQL deadlocks / serialization failures)
  is retried with exponential backoff and jitter; only after :data:`MAX_ATTEMPTS` tries does the user see
  :class:`LeaderboardBusyError` — a one-line "try again" message, never a traceback;
* a team submits the same archive (same SHA-256) to the same benchmark once: a partial unique index
  ``(team, benchmark, sha256) WHERE status = 'scored'`` makes a second copy impossible even under races.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, SRCoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

ENV_DB_URL = "SR_CORE_DB_URL"
ENV_RATE_LIMIT = "SR_CORE_RATE_LIMIT"
DB_FILE = "leaderboard.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0  #: how long SQLite waits for the write lock before reporting "locked"
MAX_ATTEMPTS = 8  #: transaction attempts before LeaderboardBusyError reaches the user
DEFAULT_RATE_LIMIT = "5/hour"

STATUS_SCORED = "scored"
STATUS_REJECTED = "rejected"
REFERENCE_PREFIX = "★ "  #: reserved prefix of reference rows ("★ model", "★ baseline:ndvi")


class LeaderboardBusyError(SRCoreError, RuntimeError):
    """The database stayed locked through every retry (nothing was recorded); the submission can be sent again."""


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (the form stored in the database)."""
    return datetime.now(UTC).replace(tzinfo=None)


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------
def default_db_url() -> str:
    """``$SR_CORE_DB_URL`` if set, else the SQLite file ``$SR_CORE_HOME/benchmark/leaderboard.sqlite``."""
    url = os.environ.get(ENV_DB_URL, "").strip()
    if url:
        return url
    from ..paths import subdir

    return f"sqlite:///{subdir('benchmark') / DB_FILE}"


@dataclass(frozen=True)
class RateLimit:
    """At most ``max_count`` scored submissions per team within any ``window_s`` seconds (0 = unlimited)."""

    max_count: int = 5
    window_s: float = 3600.0

    @property
    def unlimited(self) -> bool:
        return self.max_count <= 0

    def __str__(self) -> str:
        if self.unlimited:
            return "unlimited"
        unit = {3600.0: "hour", 86400.0: "day", 60.0: "minute"}.get(self.window_s)
        return f"{self.max_count} per {unit}" if unit else f"{self.max_count} per {self.window_s:g} s"

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``"5"`` (per hour), ``"5/hour"``, ``"20/day"``, ``"2/minute"``, ``"3/90s"``; ``"0"`` or ``"none"`` = unlimited."""
        raw = str(text).strip().lower()
        if raw in ("0", "none", "off", "unlimited"):
            return cls(0, 3600.0)
        m = re.fullmatch(r"(\d+)\s*(?:/\s*(hour|h|day|d|minute|min|m|(\d+(?:\.\d+)?)\s*s))?", raw)
        if not m:
            raise ConfigError(
                f"{ENV_RATE_LIMIT}={text!r}: not a rate limit; write e.g. '5/hour', '20/day', '3/90s' or '0' (unlimited)"
            )
        n = int(m.group(1))
        unit = m.group(2) or "hour"
        window = float(m.group(3)) if m.group(3) else {"hour": 3600.0, "h": 3600.0, "day": 86400.0, "d": 86400.0,
                                                         "minute": 60.0, "min": 60.0, "m": 60.0}[unit]
        if window <= 0:
            raise ConfigError(f"{ENV_RATE_LIMIT}={text!r}: the window must be longer than 0 s")
        return cls(n, window)

    @classmethod
    def from_env(cls) -> RateLimit:
        """The limit in ``$SR_CORE_RATE_LIMIT`` (default :data:`DEFAULT_RATE_LIMIT`)."""
        return cls.parse(os.environ.get(ENV_RATE_LIMIT, "").strip() or DEFAULT_RATE_LIMIT)


# ---------------------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------------------
def _schema() -> tuple[Any, Any, Any, Any]:
    import sqlalchemy as sa
    from sqlalchemy import Column

    md = sa.MetaData()
    meta = sa.Table("meta", md, Column("key", sa.String(64), primary_key=True), Column("value", sa.Text, nullable=False))
    teams = sa.Table(
        "teams", md,
        Column("id", sa.Integer, primary_key=True),
        Column("name", sa.String(64), nullable=False),
        Column("name_key", sa.String(64), nullable=False, unique=True),  # case-folded: "Team A" and "team a" are one team
        Column("is_reference", sa.Boolean, nullable=False, default=False),
        Column("created_at", sa.DateTime, nullable=False),
    )  # fmt: skip
    subs = sa.Table(
        "submissions", md,
        Column("id", sa.Integer, primary_key=True),
        Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), nullable=False),
        Column("benchmark_id", sa.String(64), nullable=False),
        Column("created_at", sa.DateTime, nullable=False),  # naive UTC
        Column("sha256", sa.String(64), nullable=False),
        Column("file_name", sa.String(255), nullable=False),
        Column("n_files", sa.Integer, nullable=False),
        Column("status", sa.String(16), nullable=False),  # scored | rejected
        Column("public_wmcc", sa.Double),
        Column("private_wmcc", sa.Double),
        Column("overall_wmcc", sa.Double),
        Column("per_patch", sa.Text),  # JSON list: name, split, weighted_mcc, mcc, f1, iou, weighted + unweighted counts
        Column("error", sa.Text),
        Column("seconds", sa.Double),
        sa.Index("ux_submission_once", "team_id", "benchmark_id", "sha256", unique=True,
                 sqlite_where=sa.text("status = 'scored'"), postgresql_where=sa.text("status = 'scored'")),
        sa.Index("ix_submission_team_time", "team_id", "created_at"),
        sa.Index("ix_submission_benchmark", "benchmark_id", "status"),
    )  # fmt: skip
    return md, meta, teams, subs


_MD, _META, TEAMS, SUBMISSIONS = _schema()


# ---------------------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewSubmission:
    """A scored (or rejected) submission, ready to insert."""

    team: str
    benchmark_id: str
    sha256: str
    file_name: str
    n_files: int
    status: str
    public_wmcc: float | None = None
    private_wmcc: float | None = None
    overall_wmcc: float | None = None
    per_patch: list[dict[str, Any]] | None = None
    error: str | None = None
    seconds: float | None = None
    is_reference: bool = False


@dataclass(frozen=True)
class SubmissionRow:
    """One stored submission (``created_at`` naive UTC)."""

    id: int
    team: str
    is_reference: bool
    benchmark_id: str
    created_at: datetime
    sha256: str
    file_name: str
    n_files: int
    status: str
    public_wmcc: float | None
    private_wmcc: float | None
    overall_wmcc: float | None
    per_patch: list[dict[str, Any]] | None
    error: str | None
    seconds: float | None

    def to_dict(self, *, private: bool = False) -> dict[str, Any]:
        """Plain values; the private-half score and per-patch scores only with ``private=True`` (admin)."""
        d = asdict(self)
        d["created_at"] = self.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if not private:
            for k in ("private_wmcc", "overall_wmcc", "per_patch"):
                d.pop(k)
        return d


@dataclass(frozen=True)
class Standing:
    """A team's line of the leaderboard.

    ``best_public``: its best public-half score (references: their latest score); ``ranked_id`` the submission
    that score came from (ties: the earliest); ``private_of_ranked`` that submission's private-half score, which is
    what :meth:`Leaderboard.standings` ranks by with ``by="private"`` (teams cannot cherry-pick on the hidden half).
    """

    team: str
    is_reference: bool
    best_public: float | None
    ranked_id: int | None
    private_of_ranked: float | None
    best_private: float | None
    n_scored: int
    n_rejected: int
    last_at: datetime | None

    def to_dict(self, *, private: bool = False) -> dict[str, Any]:
        d = asdict(self)
        d["last_at"] = None if self.last_at is None else self.last_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if not private:
            d.pop("private_of_ranked")
            d.pop("best_private")
        return d


@dataclass(frozen=True)
class RecordOutcome:
    """What :meth:`Leaderboard.record` did: ``recorded`` / ``duplicate`` / ``rate_limited``."""

    status: str
    submission_id: int | None = None
    attempts: int = 1
    retry_after_s: float | None = None
    duplicate_of: SubmissionRow | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _transient(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return any(k in text for k in ("locked", "busy", "deadlock", "could not serialize", "serialization failure"))


# ---------------------------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------------------------
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()
_READY: set[str] = set()


def _make_engine(url: str) -> Engine:
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database URL {url!r} is not a SQLAlchemy URL ({exc}); e.g. sqlite:////path/db.sqlite") from None
    if u.get_backend_name() != "sqlite":
        try:
            return create_engine(u, pool_pre_ping=True)
        except Exception as exc:  # e.g. the driver for postgresql is not installed
            raise ConfigError(f"cannot use database {u.render_as_string(hide_password=True)}: {exc}") from None
    db = u.database
    if db and db != ":memory:" and not db.startswith("file:"):
        try:
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the folder of the database {db} ({exc.strerror}); check --db / {ENV_DB_URL}"
            ) from None
    engine = create_engine(u, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite must not issue its own BEGIN: SQLAlchemy's "begin" hook does
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # write transactions take the write lock at once: no lock upgrade, hence no deadlock between two writers
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("sr_write") else "BEGIN")

    return engine


def _engine(url: str) -> Engine:
    with _ENGINES_LOCK:
        eng = _ENGINES.get(url)
        if eng is None:
            eng = _ENGINES[url] = _make_engine(url)
        return eng


def dispose_engines() -> None:
    """Close every pooled connection of this process (tests use it to simulate a restart)."""
    with _ENGINES_LOCK:
        for eng in _ENGINES.values():
            eng.dispose()
        _ENGINES.clear()
        _READY.clear()


class Leaderboard:
    """Teams and submissions in one database (see the module docstring for the guarantees).

    ``url``: a SQLAlchemy URL (default :func:`default_db_url`); engines are shared per URL within a process.
    ``clock``: returns naive-UTC now (tests pass a fake one); ``max_attempts``: transaction tries on a lock.
    """

    def __init__(
        self, url: str | None = None, *, clock: Callable[[], datetime] | None = None, max_attempts: int = MAX_ATTEMPTS
    ) -> None:
        self.url = url or default_db_url()
        self.clock = clock or utcnow
        self.max_attempts = max(1, int(max_attempts))
        self.engine = _engine(self.url)
        self._write = self.engine.execution_options(sr_write=True)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.url not in _READY:
            self._retry(self._create_schema)
            _READY.add(self.url)

    def __repr__(self) -> str:
        return f"Leaderboard({self.display_url!r})"

    @property
    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # -- plumbing --------------------------------------------------------------------------------------------------
    def _retry(self, fn: Callable[[], Any]) -> tuple[Any, int]:
        """Run ``fn`` (one transaction) until it passes; lock errors are retried with backoff and jitter.
        Other operational errors (unreadable file, wrong URL) become :class:`ConfigError`; integrity errors pass."""
        from sqlalchemy.exc import OperationalError

        delay = 0.05
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn(), attempt
            except OperationalError as exc:
                if not _transient(exc):
                    raise ConfigError(
                        f"leaderboard database {self.display_url}: {str(getattr(exc, 'orig', exc)).splitlines()[0]}; "
                        f"check the file / --db / {ENV_DB_URL}"
                    ) from None
                if attempt == self.max_attempts:
                    raise LeaderboardBusyError(
                        f"the leaderboard database stayed busy through {attempt} tries; nothing was recorded — "
                        "send the submission again in a minute"
                    ) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def _create_schema(self) -> None:
        from sqlalchemy import insert, select

        with self._write.begin() as conn:
            _MD.create_all(conn, checkfirst=True)
            if conn.execute(select(_META.c.value).where(_META.c.key == "schema_version")).first() is None:
                conn.execute(insert(_META).values(key="schema_version", value=str(SCHEMA_VERSION)))

    def journal_mode(self) -> str:
        """SQLite's journal mode (``"wal"`` for a file database); the dialect name for other databases."""
        if not self.is_sqlite:
            return self.engine.dialect.name
        with self.engine.connect() as conn:
            return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower()

    def integrity_check(self) -> str:
        """``"ok"`` when SQLite finds the file sound (always ``"ok"`` for other databases)."""
        if not self.is_sqlite:
            return "ok"
        with self.engine.connect() as conn:
            return str(conn.exec_driver_sql("PRAGMA integrity_check").scalar())

    # -- writing ---------------------------------------------------------------------------------------------------
    def _team_id(self, conn: Connection, name: str, is_reference: bool, now: datetime) -> int:
        from sqlalchemy import insert, select

        key = team_key(name)
        q = select(TEAMS.c.id).where(TEAMS.c.name_key == key)
        if not self.is_sqlite:
            q = q.with_for_update()  # serialises one team's writers (rate limit) on server databases
        row = conn.execute(q).first()
        if row is not None:
            return int(row[0])
        res = conn.execute(insert(TEAMS).values(name=name, name_key=key, is_reference=is_reference, created_at=now))
        return int(res.inserted_primary_key[0])

    def record(
        self,
        sub: NewSubmission,
        *,
        rate_limit: RateLimit | None = None,
        before_commit: Callable[[int], None] | None = None,
    ) -> RecordOutcome:
        """Insert ``sub`` in one transaction, after checking (inside it) for a duplicate and the team's rate limit.

        Scored submissions already stored for the same team, benchmark and SHA-256 give ``duplicate`` (nothing
        inserted); more than ``rate_limit`` scored submissions in its window give ``rate_limited`` (references are
        exempt). Rejected submissions are always recorded (with their error) and count for neither.
        ``before_commit(id)`` runs inside the transaction just before it commits (the reliability script kills
        the process there to show that nothing half-written survives).
        """
        from sqlalchemy import insert, select
        from sqlalchemy.exc import IntegrityError

        def tx() -> RecordOutcome:
            now = self.clock()
            with self._write.begin() as conn:
                team_id = self._team_id(conn, sub.team, sub.is_reference, now)
                if sub.status == STATUS_SCORED:
                    dup = self._duplicate(conn, team_id, sub.benchmark_id, sub.sha256)
                    if dup is not None:
                        return RecordOutcome("duplicate", dup.id, duplicate_of=dup)
                    if rate_limit is not None and not rate_limit.unlimited and not sub.is_reference:
                        since = now - timedelta(seconds=rate_limit.window_s)
                        times = conn.execute(
                            select(SUBMISSIONS.c.created_at)
                            .where(SUBMISSIONS.c.team_id == team_id, SUBMISSIONS.c.status == STATUS_SCORED,
                                   SUBMISSIONS.c.created_at > since)
                            .order_by(SUBMISSIONS.c.created_at)
                        ).scalars().all()
                        if len(times) >= rate_limit.max_count:
                            free_at = times[len(times) - rate_limit.max_count] + timedelta(seconds=rate_limit.window_s)
                            wait = max(1.0, math.ceil((free_at - now).total_seconds()))
                            return RecordOutcome("rate_limited", retry_after_s=wait, extra={"recent": len(times)})
                res = conn.execute(insert(SUBMISSIONS).values(
                    team_id=team_id, benchmark_id=sub.benchmark_id, created_at=now, sha256=sub.sha256,
                    file_name=sub.file_name[:255], n_files=int(sub.n_files), status=sub.status,
                    public_wmcc=sub.public_wmcc, private_wmcc=sub.private_wmcc, overall_wmcc=sub.overall_wmcc,
                    per_patch=None if sub.per_patch is None else json.dumps(sub.per_patch),
                    error=None if sub.error is None else sub.error[:20_000], seconds=sub.seconds,
                ))  # fmt: skip
                new_id = int(res.inserted_primary_key[0])
                if before_commit is not None:
                    before_commit(new_id)
                return RecordOutcome("recorded", new_id)

        for _ in range(3):
            try:
                outcome, attempts = self._retry(tx)
                break
            except IntegrityError:
                # server databases only (SQLite serialises writers): a concurrent twin won the unique index — a
                # duplicate — or created the same new team first, in which case the next try finds the team
                dup = self.find_duplicate(sub.team, sub.benchmark_id, sub.sha256)
                if dup is not None:
                    return RecordOutcome("duplicate", dup.id, duplicate_of=dup)
        else:
            raise LeaderboardBusyError("the submission kept colliding with concurrent writers; nothing was recorded — "
                                       "send it again")
        return RecordOutcome(outcome.status, outcome.submission_id, attempts, outcome.retry_after_s,
                             outcome.duplicate_of, outcome.extra)

    # -- reading ---------------------------------------------------------------------------------------------------
    def _select(self) -> Any:
        from sqlalchemy import select

        return select(
            SUBMISSIONS.c.id, TEAMS.c.name, TEAMS.c.is_reference, SUBMISSIONS.c.benchmark_id, SUBMISSIONS.c.created_at,
            SUBMISSIONS.c.sha256, SUBMISSIONS.c.file_name, SUBMISSIONS.c.n_files, SUBMISSIONS.c.status,
            SUBMISSIONS.c.public_wmcc, SUBMISSIONS.c.private_wmcc, SUBMISSIONS.c.overall_wmcc, SUBMISSIONS.c.per_patch,
            SUBMISSIONS.c.error, SUBMISSIONS.c.seconds,
        ).join(TEAMS, TEAMS.c.id == SUBMISSIONS.c.team_id)  # fmt: skip

    @staticmethod
    def _row(r: Any) -> SubmissionRow:
        return SubmissionRow(
            id=int(r[0]), team=r[1], is_reference=bool(r[2]), benchmark_id=r[3], created_at=r[4], sha256=r[5],
            file_name=r[6], n_files=int(r[7]), status=r[8], public_wmcc=r[9], private_wmcc=r[10], overall_wmcc=r[11],
            per_patch=None if r[12] is None else json.loads(r[12]), error=r[13], seconds=r[14],
        )  # fmt: skip

    def _duplicate(self, conn: Connection, team_id: int, benchmark_id: str, sha256: str) -> SubmissionRow | None:
        r = conn.execute(self._select().where(
            SUBMISSIONS.c.team_id == team_id, SUBMISSIONS.c.benchmark_id == benchmark_id,
            SUBMISSIONS.c.sha256 == sha256, SUBMISSIONS.c.status == STATUS_SCORED,
        )).first()  # fmt: skip
        return None if r is None else self._row(r)

    def find_duplicate(self, team: str, benchmark_id: str, sha256: str) -> SubmissionRow | None:
        """The scored submission of ``team`` with this archive hash on this benchmark, if any."""
        r = self._read(self._select().where(
            TEAMS.c.name_key == team_key(team), SUBMISSIONS.c.benchmark_id == benchmark_id,
            SUBMISSIONS.c.sha256 == sha256, SUBMISSIONS.c.status == STATUS_SCORED,
        ))  # fmt: skip
        return r[0] if r else None

    def _read(self, query: Any) -> list[SubmissionRow]:
        def tx() -> list[SubmissionRow]:
            with self.engine.connect() as conn:
                return [self._row(r) for r in conn.execute(query)]

        return self._retry(tx)[0]

    def submissions(
        self, benchmark_id: str | None = None, team: str | None = None, status: str | None = None
    ) -> list[SubmissionRow]:
        """Stored submissions, oldest first, optionally of one benchmark, team (any case) and status."""
        q = self._select()
        if benchmark_id is not None:
            q = q.where(SUBMISSIONS.c.benchmark_id == benchmark_id)
        if team is not None:
            q = q.where(TEAMS.c.name_key == team_key(team))
        if status is not None:
            q = q.where(SUBMISSIONS.c.status == status)
        return self._read(q.order_by(SUBMISSIONS.c.created_at, SUBMISSIONS.c.id))

    def recent_count(self, team: str, window_s: float) -> tuple[int, float | None]:
        """Scored submissions of ``team`` within the last ``window_s`` seconds, and seconds until the oldest leaves."""
        now = self.clock()
        since = now - timedelta(seconds=window_s)
        rows = [r for r in self.submissions(team=team, status=STATUS_SCORED) if r.created_at > since]
        if not rows:
            return 0, None
        return len(rows), max(0.0, (rows[0].created_at + timedelta(seconds=window_s) - now).total_seconds())

    def teams(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        def tx() -> list[dict[str, Any]]:
            with self.engine.connect() as conn:
                rows = conn.execute(select(TEAMS.c.id, TEAMS.c.name, TEAMS.c.is_reference, TEAMS.c.created_at)
                                    .order_by(TEAMS.c.id))
                return [{"id": r[0], "name": r[1], "is_reference": bool(r[2]), "created_at": r[3]} for r in rows]

        return self._retry(tx)[0]

    def standings(self, benchmark_id: str, *, by: str = "public") -> list[Standing]:
        """One line per team with a submission to ``benchmark_id``, best first.

        ``by="public"``: ranked by the best public-half score; ``by="private"``: by the private-half score of that
        same submission (the reveal). Teams with only rejected submissions come last, unscored.
        """
        if by not in ("public", "private"):
            raise ConfigError(f"standings(by={by!r}): choose 'public' or 'private'")
        per: dict[str, list[SubmissionRow]] = {}
        for r in self.submissions(benchmark_id):
            per.setdefault(r.team, []).append(r)
        out = []
        for team, rows in per.items():
            scored = [r for r in rows if r.status == STATUS_SCORED and r.public_wmcc is not None]
            ref = rows[0].is_reference
            if scored:
                # references: their latest scores (a refreshed model replaces the old line); teams: their best
                pick = scored[-1] if ref else min(scored, key=lambda r: (-r.public_wmcc, r.created_at, r.id))
                privs = [r.private_wmcc for r in scored if r.private_wmcc is not None]
                best_priv = pick.private_wmcc if ref else (max(privs) if privs else None)
                line = Standing(team, ref, pick.public_wmcc, pick.id, pick.private_wmcc, best_priv, len(scored),
                                len(rows) - len(scored), rows[-1].created_at)
            else:
                line = Standing(team, ref, None, None, None, None, 0, len(rows), rows[-1].created_at)
            out.append(line)

        def key(s: Standing) -> tuple:
            score = s.best_public if by == "public" else s.private_of_ranked
            return (score is None, -(score or 0.0), s.team.casefold())

        return sorted(out, key=key)

    def export_csv(self, path: str | Path, benchmark_id: str | None = None) -> int:
        """Write every submission (admin view: private scores included, per-patch JSON left out) to a CSV file;
        returns the number of rows. Written to a temporary name and renamed into place."""
        rows = self.submissions(benchmark_id)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        cols = ["id", "team", "is_reference", "benchmark_id", "created_at", "sha256", "file_name", "n_files", "status",
                "public_wmcc", "private_wmcc", "overall_wmcc", "seconds", "error"]
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in rows:
                d = r.to_dict(private=True)
                w.writerow(["" if d[c] is None else d[c] for c in cols])
        tmp.replace(path)
        return len(rows)

    def counts(self) -> dict[str, int]:
        """Rows per table (and per submission status)."""
        from sqlalchemy import func, select

        def tx() -> dict[str, int]:
            with self.engine.connect() as conn:
                out = {"teams": int(conn.execute(select(func.count()).select_from(TEAMS)).scalar_one())}
                for status, n in conn.execute(select(SUBMISSIONS.c.status, func.count()).group_by(SUBMISSIONS.c.status)):
                    out[f"submissions_{status}"] = int(n)
                return out

        return self._retry(tx)[0]


def team_key(name: str) -> str:
    """The uniqueness key of a team name: case-folded, inner whitespace collapsed."""
    return " ".join(str(name).split()).casefold()


__all__ = [
    "DEFAULT_RATE_LIMIT", "ENV_DB_URL", "ENV_RATE_LIMIT", "REFERENCE_PREFIX", "STATUS_REJECTED", "STATUS_SCORED",
    "Leaderboard", "LeaderboardBusyError", "NewSubmission", "RateLimit", "RecordOutcome", "Standing", "SubmissionRow",
    "default_db_url", "dispose_engines", "team_key", "utcnow",
]  # fmt: skip
