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

Who may submit (schema version 2):

* a team exists only once the admin registers it (:meth:`Leaderboard.register_team`), which issues its secret
  token; only a salted scrypt hash is stored (:mod:`.credentials`). A submission is recorded only when its token
  matches, checked once before scoring and again inside the recording transaction (a token revoked or rotated
  meanwhile stops it); reference rows (``★ …``) are written by the organiser's own process and need none;
* only scored submissions are stored in ``submissions``: a refused upload, a failed token check or an error of
  our own while scoring goes to the admin's ``audit_log`` and leaves no public trace; a team appears in the
  standings after its first scored submission; the admin can withdraw a scored row from the standings
  (status ``withdrawn``, with its reason; :meth:`Leaderboard.withdraw`, :meth:`Leaderboard.reinstate`);
* a database of schema version 1 is migrated in place when first opened: the token columns and the audit log are
  added, rejected rows move to the audit log; teams from before tokens have none until the admin runs
  ``benchmark rotate TEAM`` (their submissions are refused with that instruction until then).
"""

from __future__ import annotations

import csv
import json
import logging
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
from .credentials import CredentialError, hash_secret, verify_secret

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

ENV_DB_URL = "SR_CORE_DB_URL"
ENV_RATE_LIMIT = "SR_CORE_RATE_LIMIT"
DB_FILE = "leaderboard.sqlite"
SCHEMA_VERSION = 2  #: 2: team tokens, audit log, rejected uploads no longer in ``submissions``
BUSY_TIMEOUT_S = 30.0  #: how long SQLite waits for the write lock before reporting "locked"
MAX_ATTEMPTS = 8  #: transaction attempts before LeaderboardBusyError reaches the user
DEFAULT_RATE_LIMIT = "5/hour"
REFUSED_PER_SCORED = 4  #: refused uploads allowed per window, per scored submission allowed (:attr:`RateLimit.max_refused`)

STATUS_SCORED = "scored"
STATUS_REJECTED = "rejected"
#: a scored submission the admin took off the standings (:meth:`Leaderboard.withdraw`); its row, scores and the
#: reason stay, shown in the team's history; the same archive is not scored again, and it still counts for the rate
#: limit of its hour
STATUS_WITHDRAWN = "withdrawn"
WITHDRAWN_PREFIX = "withdrawn by the benchmark admin: "  #: a withdrawn row's ``error``: this, then the reason
REFERENCE_PREFIX = "★ "  #: reserved prefix of reference rows ("★ model", "★ baseline:ndvi")
ADMIN_HASH_KEY = "admin_token_hash"  #: meta row holding the admin credential's hash
_PG_SCHEMA_LOCK = 7_201_319  #: advisory lock key serialising schema creation / migration on PostgreSQL

log = logging.getLogger(__name__)

#: audit-log events
EVENT_REGISTER, EVENT_ROTATE, EVENT_REVOKE = "register", "rotate", "revoke"
EVENT_REFUSED, EVENT_AUTH_FAILED, EVENT_INTERNAL_ERROR = "refused", "auth_failed", "internal_error"
EVENT_ADMIN_INIT, EVENT_ADMIN_READ, EVENT_MIGRATED = "admin_init", "admin_read", "migrated"
EVENT_WITHDRAW, EVENT_REINSTATE = "withdraw", "reinstate"


class LeaderboardBusyError(SRCoreError, RuntimeError):
    """The database stayed locked through every retry (nothing was recorded); the submission can be sent again."""


class TeamAuthError(CredentialError):
    """A submission's team and token do not go together. ``reason``: ``missing``, ``mismatch`` (wrong token or
    no such team — one message for both, so names cannot be probed), ``no_token`` (a team from before tokens),
    ``revoked``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


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

    @property
    def max_refused(self) -> int:
        """Refused uploads (invalid archives) a team may send within the same window: :data:`REFUSED_PER_SCORED`
        times ``max_count``. Each costs the server an extraction and a check, so they are limited too, more loosely:
        fixing an archive takes a few tries."""
        return REFUSED_PER_SCORED * self.max_count

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
        Column("token_hash", sa.String(255)),  # salted scrypt hash of the team token; NULL: never issued
        Column("token_issued_at", sa.DateTime),
        Column("revoked_at", sa.DateTime),  # set: the token was revoked (the hash stays, to say so)
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
    audit = sa.Table(
        "audit_log", md,
        Column("id", sa.Integer, primary_key=True),
        Column("created_at", sa.DateTime, nullable=False),
        Column("event", sa.String(32), nullable=False),
        Column("team", sa.String(64)),  # as given (may be a name nobody registered)
        Column("team_id", sa.Integer),
        Column("benchmark_id", sa.String(64)),
        Column("sha256", sa.String(64)),
        Column("file_name", sa.String(255)),
        Column("detail", sa.Text),
        sa.Index("ix_audit_time", "created_at"),
    )  # fmt: skip
    return md, meta, teams, subs, audit


_MD, _META, TEAMS, SUBMISSIONS, AUDIT = _schema()
#: statuses of rows that were scored: they block the same archive and count for the rate limit
_COUNTED = (STATUS_SCORED, STATUS_WITHDRAWN)
#: columns added by schema version 2 (added in place to a version-1 database)
_V2_TEAM_COLUMNS = ("token_hash", "token_issued_at", "revoked_at")


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

    @property
    def withdrawal_reason(self) -> str | None:
        """Why the admin withdrew this submission (None unless it is withdrawn)."""
        if self.status != STATUS_WITHDRAWN:
            return None
        return (self.error or "").removeprefix(WITHDRAWN_PREFIX) or "no reason given"

    def to_dict(self, *, private: bool = False) -> dict[str, Any]:
        """Plain values; the private-half score and per-patch scores only with ``private=True`` (admin)."""
        d = asdict(self)
        d["created_at"] = self.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if not private:
            for k in ("private_wmcc", "overall_wmcc", "per_patch"):
                d.pop(k)
        return d


def _csv_cell(v: Any) -> Any:
    """A participant's text (a file name, an error quoting it) as a CSV cell a spreadsheet shows as text: a leading
    ``= + - @`` (or tab / CR) would make it a formula, run when the admin opens the file."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


@dataclass(frozen=True)
class Standing:
    """A team's line of the leaderboard.

    Only teams with at least one scored submission have a line (a registered team that never scored, or whose
    uploads were all refused, is not shown). ``best_public``: its best public-half score (references: their latest
    score); ``ranked_id`` the submission
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
    last_at: datetime | None

    def to_dict(self, *, private: bool = False) -> dict[str, Any]:
        d = asdict(self)
        d["last_at"] = None if self.last_at is None else self.last_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if not private:
            d.pop("private_of_ranked")
            d.pop("best_private")
        return d


@dataclass(frozen=True)
class TeamAuth:
    """A team whose token was checked: its id, registered name and the hash the token matched."""

    team_id: int
    name: str
    token_hash: str


@dataclass(frozen=True)
class TeamInfo:
    """A team as the admin sees it (never the token, only whether one is active)."""

    id: int
    name: str
    is_reference: bool
    created_at: datetime
    token: str  #: ``active``, ``revoked``, ``none`` (a team from before tokens) or ``reference``
    token_issued_at: datetime | None
    revoked_at: datetime | None
    n_scored: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("created_at", "token_issued_at", "revoked_at"):
            d[k] = None if d[k] is None else d[k].strftime("%Y-%m-%dT%H:%M:%SZ")
        return d


@dataclass(frozen=True)
class AuditEntry:
    """One line of the admin's audit log."""

    id: int
    created_at: datetime
    event: str
    team: str | None
    team_id: int | None
    benchmark_id: str | None
    sha256: str | None
    file_name: str | None
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return d


@dataclass(frozen=True)
class RecordOutcome:
    """What :meth:`Leaderboard.record` did: ``recorded`` / ``duplicate`` / ``rate_limited`` / ``unauthorized``
    (the team's token was revoked or rotated between the check and the transaction)."""

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
        """Create the tables (fresh database) or migrate an older schema in place, in one transaction."""
        from sqlalchemy import insert, select

        with self._write.begin() as conn:
            if conn.dialect.name == "postgresql":  # concurrent first openers: one creates / migrates, the others wait
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
            _MD.create_all(conn, checkfirst=True)
            row = conn.execute(select(_META.c.value).where(_META.c.key == "schema_version")).first()
            if row is None:
                conn.execute(insert(_META).values(key="schema_version", value=str(SCHEMA_VERSION)))
                return
            version = int(row[0])
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"leaderboard database {self.display_url} has schema version {version}, newer than this sr_core "
                    f"understands ({SCHEMA_VERSION}); upgrade sr_core before opening it"
                )
            if version < 2:
                self._migrate_v1(conn)

    def _migrate_v1(self, conn: Connection) -> None:
        """Version 1 → 2: token columns on ``teams``, the audit log (created by ``create_all``), rejected rows
        moved from ``submissions`` to the audit log. Runs inside the schema transaction: all or nothing."""
        import sqlalchemy as sa

        have = {c["name"] for c in sa.inspect(conn).get_columns("teams")}
        for name in _V2_TEAM_COLUMNS:
            if name not in have:
                col = TEAMS.c[name]
                conn.exec_driver_sql(f"ALTER TABLE teams ADD COLUMN {name} {col.type.compile(dialect=conn.dialect)}")
        rejected = conn.execute(
            sa.select(SUBMISSIONS.c.id, SUBMISSIONS.c.created_at, TEAMS.c.name, TEAMS.c.id, SUBMISSIONS.c.benchmark_id,
                      SUBMISSIONS.c.sha256, SUBMISSIONS.c.file_name, SUBMISSIONS.c.error)
            .join(TEAMS, TEAMS.c.id == SUBMISSIONS.c.team_id).where(SUBMISSIONS.c.status != STATUS_SCORED)
        ).all()  # fmt: skip
        for r in rejected:
            conn.execute(sa.insert(AUDIT).values(
                created_at=r[1], event=EVENT_REFUSED, team=r[2], team_id=r[3], benchmark_id=r[4], sha256=r[5],
                file_name=r[6], detail=f"(moved from the public submissions by the schema-2 migration) {r[7] or ''}"))
        if rejected:
            conn.execute(sa.delete(SUBMISSIONS).where(SUBMISSIONS.c.status != STATUS_SCORED))
        untokened = conn.execute(
            sa.select(TEAMS.c.name).where(TEAMS.c.is_reference.is_(False), TEAMS.c.token_hash.is_(None))
        ).scalars().all()
        note = (f"schema 1 → 2: {len(rejected)} refused upload(s) moved to the audit log; {len(untokened)} team(s) "
                "without a token")
        conn.execute(sa.insert(AUDIT).values(created_at=self.clock(), event=EVENT_MIGRATED, detail=note))
        conn.execute(sa.update(_META).where(_META.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))
        if untokened:
            log.warning("%s: %s. Their submissions are refused until the admin issues each a token with "
                        "`python -m sr_core benchmark rotate TEAM` (teams: %s)", self.display_url, note,
                        ", ".join(untokened[:20]))

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

    # -- teams and tokens ------------------------------------------------------------------------------------------
    def register_team(self, name: str) -> tuple[TeamInfo, str]:
        """Register a new team and issue its token; returns the team and the token (shown once, stored hashed).

        The name must be free (case-insensitive); a name that exists — even one from before tokens, or one whose
        token was revoked — gets a new token with :meth:`rotate_token` instead.
        """
        from sqlalchemy import insert, select
        from sqlalchemy.exc import IntegrityError

        from .credentials import new_token

        token = new_token()
        hashed = hash_secret(token)
        key = team_key(name)

        def tx() -> int:
            now = self.clock()
            with self._write.begin() as conn:
                if conn.execute(select(TEAMS.c.id).where(TEAMS.c.name_key == key)).first() is not None:
                    raise ConfigError(f"a team named {name!r} is already registered; to give it a new token run "
                                      f"`python -m sr_core benchmark rotate {_shell_quote(name)}`")
                res = conn.execute(insert(TEAMS).values(name=name, name_key=key, is_reference=False, created_at=now,
                                                        token_hash=hashed, token_issued_at=now))
                tid = int(res.inserted_primary_key[0])
                conn.execute(insert(AUDIT).values(created_at=now, event=EVENT_REGISTER, team=name, team_id=tid))
                return tid

        try:
            self._retry(tx)
        except IntegrityError:  # a concurrent registration of the same name won
            raise ConfigError(f"a team named {name!r} was registered at the same moment; choose another name or "
                              "rotate that team's token") from None
        return self.team(name), token

    def rotate_token(self, name: str) -> tuple[TeamInfo, str]:
        """Issue a new token for a registered team (the old one stops working at once; a revoked team is active
        again; a team from before tokens gets its first). Returns the team and the new token."""
        from .credentials import new_token

        token = new_token()
        hashed = hash_secret(token)
        self._set_token(name, EVENT_ROTATE, token_hash=hashed, token_issued_at=True, revoked_at=None)
        return self.team(name), token

    def revoke_token(self, name: str) -> TeamInfo:
        """Revoke a team's token: its submissions are refused (its scored rows stay) until :meth:`rotate_token`."""
        self._set_token(name, EVENT_REVOKE, revoked_at=True)
        return self.team(name)

    def _set_token(self, name: str, event: str, **values: Any) -> None:
        from sqlalchemy import insert, select, update

        key = team_key(name)

        def tx() -> None:
            now = self.clock()
            with self._write.begin() as conn:
                row = conn.execute(select(TEAMS.c.id, TEAMS.c.name, TEAMS.c.is_reference, TEAMS.c.token_hash)
                                   .where(TEAMS.c.name_key == key)).first()
                if row is None:
                    raise ConfigError(f"no team named {name!r} is registered; see `python -m sr_core benchmark "
                                      "teams` (register a new one with `benchmark register NAME`)")
                if row[2]:
                    raise ConfigError(f"{row[1]!r} is a reference row; it has no token")
                if event == EVENT_REVOKE and row[3] is None:
                    raise ConfigError(f"team {row[1]!r} has no token to revoke (it was created before tokens)")
                vals = {k: (now if v is True else v) for k, v in values.items()}
                conn.execute(update(TEAMS).where(TEAMS.c.id == row[0]).values(**vals))
                conn.execute(insert(AUDIT).values(created_at=now, event=event, team=row[1], team_id=row[0]))

        self._retry(tx)

    def team(self, name: str) -> TeamInfo:
        """The registered team called ``name`` (any case); :class:`ConfigError` when there is none."""
        for t in self.team_list():
            if team_key(t.name) == team_key(name):
                return t
        raise ConfigError(f"no team named {name!r} is registered")

    def team_list(self) -> list[TeamInfo]:
        """Every team (registered, from before tokens, references) with its token state — admin view."""
        from sqlalchemy import func, select

        def tx() -> list[TeamInfo]:
            with self.engine.connect() as conn:
                n = dict(conn.execute(select(SUBMISSIONS.c.team_id, func.count())
                                      .where(SUBMISSIONS.c.status == STATUS_SCORED)
                                      .group_by(SUBMISSIONS.c.team_id)).all())
                rows = conn.execute(select(TEAMS.c.id, TEAMS.c.name, TEAMS.c.is_reference, TEAMS.c.created_at,
                                           TEAMS.c.token_hash, TEAMS.c.token_issued_at, TEAMS.c.revoked_at)
                                    .order_by(TEAMS.c.id)).all()
            out = []
            for r in rows:
                state = ("reference" if r[2] else "none" if r[4] is None else "revoked" if r[6] is not None
                         else "active")
                out.append(TeamInfo(int(r[0]), r[1], bool(r[2]), r[3], state, r[5], r[6], int(n.get(r[0], 0))))
            return out

        return self._retry(tx)[0]

    def authenticate(self, name: str, token: str | None) -> TeamAuth:
        """Check ``token`` against the registered team ``name``; :class:`TeamAuthError` saying what to do if not.

        A wrong token and an unknown team give the same message (names cannot be probed); a team from before
        tokens and a revoked token say so, with what the admin must do.
        """
        from sqlalchemy import select

        from .credentials import clean_token

        token = clean_token(token)
        shown = " ".join(str(name).split())
        if not token:
            raise TeamAuthError(
                f"no team token given for {shown!r}: every submission needs the token the benchmark admin handed "
                "your team at registration (CLI: --token TOKEN or $SR_CORE_TEAM_TOKEN; page: the token field)",
                "missing",
            )
        key = team_key(name)

        def tx() -> Any:
            with self.engine.connect() as conn:
                return conn.execute(select(TEAMS.c.id, TEAMS.c.name, TEAMS.c.is_reference, TEAMS.c.token_hash,
                                           TEAMS.c.revoked_at).where(TEAMS.c.name_key == key)).first()

        row = self._retry(tx)[0]
        mismatch = TeamAuthError(
            f"team {shown!r} and this token do not match: check the team name (as registered) and paste the whole "
            "token printed at registration; a lost token is replaced by the benchmark admin (`benchmark rotate`)",
            "mismatch",
        )
        if row is None or row[2]:
            verify_secret(token, _dummy_hash())  # same work as a real check: timing tells nothing about names
            raise mismatch
        if row[3] is None:
            raise TeamAuthError(
                f"team {row[1]!r} was created before team tokens existed and has no token yet: the benchmark admin "
                f"must issue one with `python -m sr_core benchmark rotate {_shell_quote(row[1])}` and hand it to the "
                "team; until then its submissions are refused",
                "no_token",
            )
        if not verify_secret(token, row[3]):
            raise mismatch
        if row[4] is not None:
            raise TeamAuthError(
                f"the token of team {row[1]!r} was revoked by the benchmark admin on {row[4]:%Y-%m-%d %H:%M} UTC; "
                "ask the admin for a new one (`benchmark rotate`)",
                "revoked",
            )
        return TeamAuth(int(row[0]), row[1], row[3])

    # -- the admin credential ---------------------------------------------------------------------------------------
    def admin_configured(self) -> bool:
        """Whether ``benchmark admin-init`` has stored an admin credential in this database."""
        return self._meta(ADMIN_HASH_KEY) is not None

    def _meta(self, key: str) -> str | None:
        from sqlalchemy import select

        def tx() -> str | None:
            with self.engine.connect() as conn:
                r = conn.execute(select(_META.c.value).where(_META.c.key == key)).first()
                return None if r is None else str(r[0])

        return self._retry(tx)[0]

    def set_admin_secret(self, secret: str) -> None:
        """Store the hash of a new admin credential (replacing any earlier one: the caller checks the old)."""
        from sqlalchemy import delete, insert

        hashed = hash_secret(secret)

        def tx() -> None:
            now = self.clock()
            with self._write.begin() as conn:
                conn.execute(delete(_META).where(_META.c.key == ADMIN_HASH_KEY))
                conn.execute(insert(_META).values(key=ADMIN_HASH_KEY, value=hashed))
                conn.execute(insert(AUDIT).values(created_at=now, event=EVENT_ADMIN_INIT))

        self._retry(tx)

    def check_admin(self, secret: str | None, *, source: str = "", action: str = "this admin action") -> None:
        """Raise :class:`CredentialError` unless ``secret`` is this database's admin credential."""
        from .credentials import ENV_ADMIN_TOKEN, ENV_ADMIN_TOKEN_FILE

        stored = self._meta(ADMIN_HASH_KEY)
        if stored is None:
            raise CredentialError(
                f"{action} needs the admin credential, and this leaderboard has none yet: create it once with "
                "`python -m sr_core benchmark admin-init --file PATH` (a file only you can read), then "
                f"export {ENV_ADMIN_TOKEN_FILE}=PATH"
            )
        if not secret:
            raise CredentialError(
                f"{action} needs the admin credential: set {ENV_ADMIN_TOKEN}, or {ENV_ADMIN_TOKEN_FILE} / "
                "--admin-token-file to the file written by `benchmark admin-init` (mode 600)"
            )
        if not verify_secret(secret.strip(), stored):
            raise CredentialError(f"the admin credential from {source or 'the environment'} is not this "
                                  f"leaderboard's ({self.display_url}); {action} refused")

    # -- the audit log ----------------------------------------------------------------------------------------------
    def audit(self, event: str, *, team: str | None = None, team_id: int | None = None,
              benchmark_id: str | None = None, sha256: str | None = None, file_name: str | None = None,
              detail: str | None = None) -> int | None:
        """Append one line to the admin's audit log; returns its id (None, logged, if the write failed: an audit
        line must never turn a refusal into a crash)."""
        from sqlalchemy import insert

        def tx() -> int:
            with self._write.begin() as conn:
                res = conn.execute(insert(AUDIT).values(
                    created_at=self.clock(), event=event[:32], team=None if team is None else str(team)[:64],
                    team_id=team_id, benchmark_id=benchmark_id, sha256=sha256,
                    file_name=None if file_name is None else file_name[:255],
                    detail=None if detail is None else detail[:20_000]))  # fmt: skip
                return int(res.inserted_primary_key[0])

        try:
            return self._retry(tx)[0]
        except Exception:  # the caller's answer matters more than its audit line
            log.exception("could not write the audit line %r for team %r", event, team)
            return None

    def audit_log(self, *, limit: int | None = None, event: str | None = None,
                  team: str | None = None) -> list[AuditEntry]:
        """Audit lines, newest first (admin)."""
        from sqlalchemy import func, select

        q = select(AUDIT.c.id, AUDIT.c.created_at, AUDIT.c.event, AUDIT.c.team, AUDIT.c.team_id, AUDIT.c.benchmark_id,
                   AUDIT.c.sha256, AUDIT.c.file_name, AUDIT.c.detail).order_by(AUDIT.c.id.desc())
        if event is not None:
            q = q.where(AUDIT.c.event == event)
        if team is not None:
            q = q.where(func.lower(AUDIT.c.team) == team_key(team))
        if limit is not None:
            q = q.limit(int(limit))

        def tx() -> list[AuditEntry]:
            with self.engine.connect() as conn:
                return [AuditEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in conn.execute(q)]

        return self._retry(tx)[0]

    # -- writing ---------------------------------------------------------------------------------------------------
    def _team_id(self, conn: Connection, sub: NewSubmission, auth: TeamAuth | None, now: datetime) -> int | None:
        """The id of the submitting team, locked for this transaction on server databases (serialises one team's
        writers for the rate limit). References are created on first use; a team must hold the token ``auth``
        was checked with (None: revoked or rotated since the check)."""
        from sqlalchemy import insert, select

        if sub.is_reference:
            key = team_key(sub.team)
            q = select(TEAMS.c.id).where(TEAMS.c.name_key == key, TEAMS.c.is_reference.is_(True))
            if not self.is_sqlite:
                q = q.with_for_update()
            row = conn.execute(q).first()
            if row is not None:
                return int(row[0])
            res = conn.execute(insert(TEAMS).values(name=sub.team, name_key=key, is_reference=True, created_at=now))
            return int(res.inserted_primary_key[0])
        if auth is None:
            raise CredentialError(f"{sub.team!r}: a team submission needs a checked token (Leaderboard.authenticate)")
        q = select(TEAMS.c.token_hash, TEAMS.c.revoked_at).where(TEAMS.c.id == auth.team_id)
        if not self.is_sqlite:
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None or row[0] != auth.token_hash or row[1] is not None:
            return None
        return auth.team_id

    def record(
        self,
        sub: NewSubmission,
        *,
        rate_limit: RateLimit | None = None,
        before_commit: Callable[[int], None] | None = None,
        auth: TeamAuth | None = None,
    ) -> RecordOutcome:
        """Insert the scored submission ``sub`` in one transaction, after checking (inside it) the team's token,
        duplicates and its rate limit.

        ``auth``: the team's checked token (:meth:`authenticate`; references need none). A token revoked or
        rotated since that check gives ``unauthorized``; a scored submission already stored for the same team,
        benchmark and SHA-256 gives ``duplicate`` (nothing inserted); more than ``rate_limit`` scored submissions
        in its window give ``rate_limited`` (references are exempt). Only scored submissions are stored: refused
        uploads go to the audit log (:meth:`audit`). ``before_commit(id)`` runs inside the transaction just
        before it commits (the reliability script kills the process there to show that nothing half-written
        survives).
        """
        from sqlalchemy import insert, select
        from sqlalchemy.exc import IntegrityError

        if sub.status != STATUS_SCORED:
            raise ValueError(f"only scored submissions are stored (got status {sub.status!r}); refused uploads go to "
                             "the audit log")

        def tx() -> RecordOutcome:
            now = self.clock()
            with self._write.begin() as conn:
                team_id = self._team_id(conn, sub, auth, now)
                if team_id is None:
                    return RecordOutcome("unauthorized")
                if sub.status == STATUS_SCORED:
                    dup = self._duplicate(conn, team_id, sub.benchmark_id, sub.sha256)
                    if dup is not None:
                        return RecordOutcome("duplicate", dup.id, duplicate_of=dup)
                    if rate_limit is not None and not rate_limit.unlimited and not sub.is_reference:
                        since = now - timedelta(seconds=rate_limit.window_s)
                        times = conn.execute(
                            select(SUBMISSIONS.c.created_at)
                            .where(SUBMISSIONS.c.team_id == team_id, SUBMISSIONS.c.status.in_(_COUNTED),
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

    # -- moderation ------------------------------------------------------------------------------------------------
    def withdraw(self, submission_id: int, reason: str) -> SubmissionRow:
        """Take a scored submission off the standings (admin), e.g. one that broke the rules. The row stays with its
        scores and ``reason`` (shown in the team's public history as ``withdrawn``), the audit log records it, the
        team cannot score the same archive again, and the row still counts for the rate limit of its window.
        :meth:`reinstate` undoes it."""
        reason = " ".join(str(reason or "").split())
        if not reason:
            raise ConfigError("say why the submission is withdrawn (--reason TEXT): the team sees it in its history")
        return self._moderate(int(submission_id), STATUS_SCORED, STATUS_WITHDRAWN, EVENT_WITHDRAW,
                              f"{WITHDRAWN_PREFIX}{reason[:2000]}")

    def reinstate(self, submission_id: int) -> SubmissionRow:
        """Put a withdrawn submission back on the standings (admin); the audit log keeps both steps."""
        return self._moderate(int(submission_id), STATUS_WITHDRAWN, STATUS_SCORED, EVENT_REINSTATE, None)

    def _moderate(self, submission_id: int, want: str, to: str, event: str, note: str | None) -> SubmissionRow:
        from sqlalchemy import insert, update

        def tx() -> None:
            with self._write.begin() as conn:
                r = conn.execute(self._select().add_columns(SUBMISSIONS.c.team_id)
                                 .where(SUBMISSIONS.c.id == submission_id)).first()
                if r is None:
                    raise ConfigError(f"no submission #{submission_id}; `python -m sr_core benchmark list` shows "
                                      "every submission with its id")
                row = self._row(r)
                if row.is_reference:
                    raise ConfigError(f"submission #{submission_id} is a reference row ({row.team}); recompute the "
                                      "references with `benchmark references` instead")
                if row.status != want:
                    raise ConfigError(f"submission #{submission_id} of {row.team} is {row.status}, not {want}; "
                                      f"nothing changed")
                conn.execute(update(SUBMISSIONS).where(SUBMISSIONS.c.id == submission_id)
                             .values(status=to, error=note))
                conn.execute(insert(AUDIT).values(
                    created_at=self.clock(), event=event, team=row.team, benchmark_id=row.benchmark_id,
                    team_id=int(r[-1]), sha256=row.sha256, file_name=row.file_name,
                    detail=f"submission #{submission_id}" + (f": {note}" if note else "")))  # fmt: skip

        self._retry(tx)
        return self._read(self._select().where(SUBMISSIONS.c.id == submission_id))[0]

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
            SUBMISSIONS.c.sha256 == sha256, SUBMISSIONS.c.status.in_(_COUNTED),
        ).order_by(SUBMISSIONS.c.id)).first()  # fmt: skip
        return None if r is None else self._row(r)

    def find_duplicate(self, team: str, benchmark_id: str, sha256: str) -> SubmissionRow | None:
        """The scored (or withdrawn: its ``status`` says) submission of ``team`` with this archive hash on this
        benchmark, if any."""
        r = self._read(self._select().where(
            TEAMS.c.name_key == team_key(team), SUBMISSIONS.c.benchmark_id == benchmark_id,
            SUBMISSIONS.c.sha256 == sha256, SUBMISSIONS.c.status.in_(_COUNTED),
        ).order_by(SUBMISSIONS.c.id))  # fmt: skip
        return r[0] if r else None

    def withdrawn_archive(self, benchmark_id: str, sha256: str) -> SubmissionRow | None:
        """A withdrawn submission of this archive hash on this benchmark, by any team (the same bytes sent again from
        another account are refused too)."""
        r = self._read(self._select().where(
            SUBMISSIONS.c.benchmark_id == benchmark_id, SUBMISSIONS.c.sha256 == sha256,
            SUBMISSIONS.c.status == STATUS_WITHDRAWN,
        ).order_by(SUBMISSIONS.c.id))  # fmt: skip
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

    def recent_count(self, team: str, window_s: float, max_count: int = 1) -> tuple[int, float | None]:
        """Scored submissions of ``team`` within the last ``window_s`` seconds, and seconds until a new one fits under
        ``max_count`` (until enough of them have left the window: the same rule :meth:`record` applies)."""
        now = self.clock()
        since = now - timedelta(seconds=window_s)
        times = [r.created_at for r in self.submissions(team=team) if r.status in _COUNTED and r.created_at > since]
        return _in_window(times, window_s, max_count, now)

    def recent_refusals(self, team_id: int, window_s: float, max_count: int = 1) -> tuple[int, float | None]:
        """Refused uploads (audit event ``refused``) of team ``team_id`` within the last ``window_s`` seconds, and
        seconds until fewer than ``max_count`` of them are left in the window."""
        from sqlalchemy import select

        since = self.clock() - timedelta(seconds=window_s)
        q = (select(AUDIT.c.created_at).where(AUDIT.c.team_id == int(team_id), AUDIT.c.event == EVENT_REFUSED,
                                              AUDIT.c.created_at > since).order_by(AUDIT.c.created_at))

        def tx() -> list[datetime]:
            with self.engine.connect() as conn:
                return list(conn.execute(q).scalars())

        return _in_window(self._retry(tx)[0], window_s, max_count, self.clock())

    def teams(self) -> list[dict[str, Any]]:
        """Every team row as plain values (no token hash); see :meth:`team_list` for the token states."""
        return [{"id": t.id, "name": t.name, "is_reference": t.is_reference, "created_at": t.created_at,
                 "token": t.token} for t in self.team_list()]

    def standings(self, benchmark_id: str, *, by: str = "public") -> list[Standing]:
        """One line per team with a scored submission to ``benchmark_id``, best first.

        ``by="public"``: ranked by the best public-half score; ``by="private"``: by the private-half score of that
        same submission (the reveal). A team with no scored submission has no line at all.
        """
        if by not in ("public", "private"):
            raise ConfigError(f"standings(by={by!r}): choose 'public' or 'private'")
        per: dict[str, list[SubmissionRow]] = {}
        for r in self.submissions(benchmark_id, status=STATUS_SCORED):
            if r.public_wmcc is not None:
                per.setdefault(r.team, []).append(r)
        out = []
        for team, scored in per.items():
            ref = scored[0].is_reference
            # references: their latest scores (a refreshed model replaces the old line); teams: their best
            pick = scored[-1] if ref else min(scored, key=lambda r: (-r.public_wmcc, r.created_at, r.id))
            privs = [r.private_wmcc for r in scored if r.private_wmcc is not None]
            best_priv = pick.private_wmcc if ref else (max(privs) if privs else None)
            out.append(Standing(team, ref, pick.public_wmcc, pick.id, pick.private_wmcc, best_priv, len(scored),
                                scored[-1].created_at))

        def key(s: Standing) -> tuple:
            score = s.best_public if by == "public" else s.private_of_ranked
            # a tie goes to whoever reached the score first (submission ids grow with time), never to the name
            return (score is None, -(score or 0.0), s.ranked_id if s.ranked_id is not None else math.inf)

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
                w.writerow(["" if d[c] is None else _csv_cell(d[c]) for c in cols])
        tmp.replace(path)
        return len(rows)

    def counts(self) -> dict[str, int]:
        """Rows per table (and per submission status)."""
        from sqlalchemy import func, select

        def tx() -> dict[str, int]:
            with self.engine.connect() as conn:
                out = {"teams": int(conn.execute(select(func.count()).select_from(TEAMS)).scalar_one())}
                out["teams_without_token"] = int(conn.execute(
                    select(func.count()).select_from(TEAMS)
                    .where(TEAMS.c.is_reference.is_(False), TEAMS.c.token_hash.is_(None))).scalar_one())
                for status, n in conn.execute(select(SUBMISSIONS.c.status, func.count()).group_by(SUBMISSIONS.c.status)):
                    out[f"submissions_{status}"] = int(n)
                out["audit_log"] = int(conn.execute(select(func.count()).select_from(AUDIT)).scalar_one())
                return out

        return self._retry(tx)[0]


def _in_window(times: list[datetime], window_s: float, max_count: int, now: datetime) -> tuple[int, float | None]:
    """How many of ``times`` (ascending, all inside the window) there are, and seconds until fewer than ``max_count``
    are left in a window of ``window_s`` seconds (None when there is none)."""
    if not times:
        return 0, None
    k = max(0, len(times) - max(1, int(max_count)))
    return len(times), max(0.0, (times[k] + timedelta(seconds=window_s) - now).total_seconds())


def team_key(name: str) -> str:
    """The uniqueness key of a team name: case-folded, inner whitespace collapsed."""
    return " ".join(str(name).split()).casefold()


def _shell_quote(name: str) -> str:
    import shlex

    return shlex.quote(name)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """A hash no token matches, checked for unknown teams so that they cost what a known team costs."""
    if not _DUMMY:
        from .credentials import new_token

        _DUMMY.append(hash_secret(new_token()))
    return _DUMMY[0]


__all__ = [
    "DEFAULT_RATE_LIMIT", "ENV_DB_URL", "ENV_RATE_LIMIT", "REFERENCE_PREFIX", "STATUS_REJECTED", "STATUS_SCORED",
    "AuditEntry", "Leaderboard", "LeaderboardBusyError", "NewSubmission", "RateLimit", "RecordOutcome", "Standing",
    "SubmissionRow", "TeamAuth", "TeamAuthError", "TeamInfo", "default_db_url", "dispose_engines", "team_key", "utcnow",
]  # fmt: skip
