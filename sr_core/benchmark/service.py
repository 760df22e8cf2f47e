"""Validate, score and record a benchmark submission: the one path shared by the CLI and the Leaderboard page.

:func:`submit` does, in order (nothing is written before step 5, and step 5 is one transaction):

1. check the team name and hash the archive (SHA-256), then the team's token (:meth:`Leaderboard.authenticate`):
   a missing, wrong or revoked token → ``unauthorized``, nothing scored, the attempt in the admin's audit log;
2. a scored submission of the same team with the same hash → ``duplicate`` (reported with the earlier scores, not
   scored or recorded again);
3. the team's scored submissions within the rate-limit window (``$SR_CORE_RATE_LIMIT``, default 5 per hour) →
   ``rate_limited`` (not scored, not recorded);
4. :func:`score_archive`: safe extraction, file-by-file validation and scoring with
   :func:`sr_core.io.submission.score_submission` — the very function behind ``python -m sr_core score`` — then
   the per-patch confusion counts pooled into the public half, the private half and all patches;
5. :meth:`Leaderboard.record`: duplicate and rate-limit checks again and the insert, in one transaction.

Invalid archives are ``rejected`` with their messages: the team sees them at once, the admin's audit log keeps
them, the public tables do not (they count for neither the standings nor the rate limit). An unexpected exception
while scoring is ours, not the team's: it is logged with its traceback (``logging``, logger
``sr_core.benchmark.service``) and in the audit log, the result is ``error``, nothing is recorded and nothing is
charged to the team. No bad archive raises: every problem becomes a message.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import re
import threading
import time
import traceback
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ArchiveError, SRCoreError, SubmissionError
from .definition import PRIVATE, PUBLIC, Benchmark, load_benchmark, strip_labels
from .store import (
    EVENT_AUTH_FAILED,
    EVENT_INTERNAL_ERROR,
    EVENT_REFUSED,
    REFERENCE_PREFIX,
    STATUS_REJECTED,
    STATUS_SCORED,
    STATUS_WITHDRAWN,
    Leaderboard,
    NewSubmission,
    RateLimit,
    SubmissionRow,
    TeamAuth,
    TeamAuthError,
)  # fmt: skip

log = logging.getLogger(__name__)
STATUS_UNAUTHORIZED = "unauthorized"  #: missing, wrong or revoked team token: nothing scored or recorded
STATUS_ERROR = "error"  #: our own failure while scoring: nothing recorded, nothing charged to the team
#: OS errors that are the server's trouble (full or read-only disk, permissions, limits), not the upload's
_OUR_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EMFILE, errno.ENFILE,
                  errno.ENOMEM}

MAX_TEAM_NAME = 40
#: reference rows: predictor key → reserved team name
REFERENCE_TEAMS: dict[str, str] = {"model": "★ model", "ndvi": "★ baseline:ndvi", "pixel": "★ baseline:pixel"}

Hook = Callable[[str], None]


def check_team_name(name: str, *, reference: bool = False) -> str:
    """The cleaned team name (inner whitespace collapsed) or :class:`SubmissionError` saying what to change."""
    clean = " ".join(str(name or "").split())
    if not clean:
        raise SubmissionError("no team name; enter the name your team submits under (1–40 characters)")
    if len(clean) > MAX_TEAM_NAME:
        raise SubmissionError(f"team name is {len(clean)} characters; shorten it to at most {MAX_TEAM_NAME}")
    if any(unicodedata.category(c).startswith("C") for c in clean):
        raise SubmissionError("team name holds control or invisible characters; use letters, digits and punctuation")
    if not any(c.isalnum() for c in clean):
        raise SubmissionError("team name needs at least one letter or digit")
    if clean.startswith(REFERENCE_PREFIX.strip()) and not reference:
        raise SubmissionError(f"team names starting with {REFERENCE_PREFIX.strip()!r} are reserved for reference rows; "
                              "choose another name")
    if reference and not clean.startswith(REFERENCE_PREFIX):
        raise SubmissionError(f"reference rows are named {REFERENCE_PREFIX!r}…, got {clean!r}")
    return clean


def clean_file_name(name: str) -> str:
    """The uploaded file's base name, printable and at most 120 characters (it is only displayed)."""
    base = re.split(r"[\\/]", str(name))[-1]
    base = "".join(c if not unicodedata.category(c).startswith("C") else "_" for c in base).strip()
    return (base or "submission")[:120]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ArchiveScore:
    """Validation and scores of one archive against the benchmark (scores None when invalid)."""

    valid: bool
    problems: list[str]
    n_files: int
    public: float | None = None
    private: float | None = None
    overall: float | None = None
    per_patch: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    internal_error: str | None = None  #: traceback of an error of ours (not the archive's); then valid is False


def _counts(c: Any) -> dict[str, float]:
    return {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn}


def archive_limits(benchmark: Benchmark) -> dict[str, int]:
    """Extraction limits sized to the benchmark: a submission is ``n`` masks of (4·size)² uint8 pixels, so anything
    expanding past 4 bytes per label pixel (+ 64 MiB) is refused before a byte is written — far tighter than the
    generic 2 GiB of :data:`sr_core.io.submission.SUBMISSION_ARCHIVE_LIMITS`."""
    from ..io.submission import SUBMISSION_ARCHIVE_LIMITS

    h, w = benchmark.label_shape
    return {**SUBMISSION_ARCHIVE_LIMITS, "max_files": 4 * benchmark.n + 64,
            "max_total_bytes": 4 * benchmark.n * h * w + 64 * 1024**2}


def score_archive(archive: str | Path, benchmark: Benchmark) -> ArchiveScore:
    """Validate ``archive`` file by file against every benchmark patch and score it; never raises on bad input.

    The archive is extracted safely (:func:`sr_core.io.archive.extract_archive` with :func:`archive_limits`), then
    scored with :func:`sr_core.io.submission.score_submission`. Public / private / overall scores pool the weighted
    confusion counts of the patches of that half (all patches for overall) in name order — the overall score is
    exactly ``python -m sr_core score ARCHIVE --truth TRUTH``'s.

    Problems of the archive (unsafe, unreadable, wrong files: :class:`ArchiveError` / :class:`SubmissionError`
    and the validation's findings) make it invalid with ``problems``; anything else (a bug, a full disk, an
    unreadable truth file) is ours: logged with its traceback and returned with ``internal_error`` set.
    """
    from ..io.archive import extract_archive
    from ..io.submission import scratch_dir

    t0 = time.perf_counter()
    path = Path(archive)
    try:
        if path.is_dir():
            return _score_folder(path, benchmark, t0)
        with scratch_dir("submission") as tmp:
            extract_archive(path, tmp / "x", **archive_limits(benchmark))
            return _score_folder(tmp / "x", benchmark, t0)
    except (ArchiveError, SubmissionError) as exc:
        if not _our_os_error(exc):  # unsafe or unreadable archive: refused before anything was scored
            return ArchiveScore(False, [str(exc)], 0, seconds=time.perf_counter() - t0)
        log.error("scoring %s: the server could not extract it (%s)", path.name, exc)
        return ArchiveScore(False, [], 0, seconds=time.perf_counter() - t0, internal_error=f"{type(exc).__name__}: {exc}")
    except Exception:  # ours: the upload was checked file by file, so this is a bug or the server's trouble
        log.exception("scoring %s failed inside sr_core (an error of ours, not charged to the team)", path.name)
        return ArchiveScore(False, [], 0, seconds=time.perf_counter() - t0, internal_error=traceback.format_exc())


def _our_os_error(exc: BaseException) -> bool:
    """Whether an archive error was caused by the server's disk or limits (its OSError context tells)."""
    ctx = exc.__cause__ or exc.__context__
    return isinstance(ctx, OSError) and ctx.errno in _OUR_OS_ERRORS


def _score_folder(folder: Path, benchmark: Benchmark, t0: float) -> ArchiveScore:
    from ..io.submission import score_submission
    from ..metrics import Scores

    rep = score_submission(folder, benchmark.truth_paths(), diagnostics=False)
    n_files = len(rep.validation.found)
    if not rep.ok:
        problems = rep.validation.lines() or ["the submission holds no scorable file"]
        return ArchiveScore(False, problems, n_files, seconds=time.perf_counter() - t0)
    halves = {p.name: p.split for p in benchmark.patches}
    per_patch = [{"name": s.name, "split": halves[s.name], "weighted_mcc": s.wmcc, "mcc": s.mcc, "f1": s.f1, "iou": s.iou,
                  "weighted": _counts(s.weighted), "unweighted": _counts(s.unweighted)} for s in rep.patches]
    pub = [s for s in rep.patches if halves[s.name] == PUBLIC]
    priv = [s for s in rep.patches if halves[s.name] == PRIVATE]
    return ArchiveScore(
        True, [], n_files,
        public=Scores.pool(pub).wmcc if pub else None,
        private=Scores.pool(priv).wmcc if priv else None,
        overall=rep.pooled.wmcc,
        per_patch=per_patch, seconds=time.perf_counter() - t0,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Submitting
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class SubmitResult:
    """What happened to a submission: ``status`` is ``scored``, ``rejected`` (the archive's problems),
    ``duplicate``, ``withdrawn`` (the same archive was scored before and the admin withdrew it), ``rate_limited``,
    ``unauthorized`` (missing, wrong or revoked token) or ``error`` (ours).

    ``public_wmcc`` is what a participant sees; ``private_wmcc`` is kept for the admin (``to_dict(private=True)``).
    """

    status: str
    team: str
    sha256: str
    file_name: str
    benchmark_id: str
    message: str
    submission_id: int | None = None
    public_wmcc: float | None = None
    private_wmcc: float | None = None
    overall_wmcc: float | None = None
    n_files: int = 0
    problems: list[str] = field(default_factory=list)
    retry_after_s: float | None = None
    duplicate_of: SubmissionRow | None = None
    seconds: float = 0.0
    attempts: int = 0  #: database transaction attempts (> 1: a lock was met and retried)
    audit_id: int | None = None  #: the admin's audit-log line of a refusal or error (the reference to quote)

    @property
    def accepted(self) -> bool:
        return self.status == STATUS_SCORED

    def to_dict(self, *, private: bool = False) -> dict[str, Any]:
        d = {"status": self.status, "team": self.team, "message": self.message, "submission_id": self.submission_id,
             "public_wmcc": self.public_wmcc, "n_files": self.n_files, "problems": list(self.problems),
             "sha256": self.sha256, "file_name": self.file_name, "benchmark_id": self.benchmark_id,
             "retry_after_s": self.retry_after_s, "seconds": round(self.seconds, 3), "attempts": self.attempts,
             "audit_id": self.audit_id}
        if self.duplicate_of is not None:
            d["duplicate_of"] = self.duplicate_of.to_dict(private=private)
        if private:
            d["private_wmcc"] = self.private_wmcc
            d["overall_wmcc"] = self.overall_wmcc
        return d


def _wait_text(seconds: float) -> str:
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def _when(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M} UTC"


def submit(
    archive: str | Path,
    team: str,
    *,
    token: str | None = None,
    benchmark: Benchmark | None = None,
    board: Leaderboard | None = None,
    file_name: str | None = None,
    reference: bool = False,
    rate_limit: RateLimit | None = None,
    hook: Hook | None = None,
) -> SubmitResult:
    """Validate, score and record ``archive`` (a .zip / .tar.gz of ``eopatch-XX.tif``, or a folder of them) for ``team``.

    ``token``: the team's secret token (checked before anything is scored; references need none).
    ``file_name``: the name shown in the history (default the archive's). ``reference=True``: a reference row
    (reserved ``★`` name, no rate limit). ``rate_limit`` default ``$SR_CORE_RATE_LIMIT``. ``hook(stage)`` is
    called at ``"scoring"``, ``"scored"`` and ``"in_transaction"`` (just before the commit), for the reliability
    script. Raises only for a bad team name, a missing archive or an unusable database; everything wrong with
    the archive itself is returned as a ``rejected`` result. Each outcome is logged (INFO; an error of ours: ERROR).
    """
    res = _submit(archive, team, token=token, benchmark=benchmark, board=board, file_name=file_name,
                  reference=reference, rate_limit=rate_limit, hook=hook)
    log.log(logging.ERROR if res.status == STATUS_ERROR else logging.INFO,
            "submission %r from %s (SHA-256 %s…): %s in %.2f s%s", res.file_name, res.team, res.sha256[:12], res.status,
            res.seconds, f" (audit #{res.audit_id})" if res.audit_id is not None else "")
    return res


def _submit(
    archive: str | Path,
    team: str,
    *,
    token: str | None,
    benchmark: Benchmark | None,
    board: Leaderboard | None,
    file_name: str | None,
    reference: bool,
    rate_limit: RateLimit | None,
    hook: Hook | None,
) -> SubmitResult:
    t0 = time.perf_counter()
    bm = benchmark or load_benchmark()
    lb = board or Leaderboard()
    name = check_team_name(team, reference=reference)
    path = Path(archive)
    if not path.exists():
        raise SubmissionError(f"{path}: no such file; give the .zip or .tar.gz of eopatch-XX.tif files")
    sha = sha256_file(path) if path.is_file() else _folder_hash(path)
    fname = clean_file_name(file_name or path.name)
    limit = None if reference else (rate_limit or RateLimit.from_env())
    audit = {"benchmark_id": bm.id, "sha256": sha, "file_name": fname}
    auth: TeamAuth | None = None
    if not reference:
        try:
            auth = lb.authenticate(name, token)
        except TeamAuthError as exc:
            aid = lb.audit(EVENT_AUTH_FAILED, team=name, **audit, detail=f"{exc.reason}: {exc}")
            return SubmitResult(status=STATUS_UNAUTHORIZED, team=name, **audit, message=f"refused: {exc}",
                                seconds=time.perf_counter() - t0, audit_id=aid)
        name = auth.name  # the registered spelling
    base = {"team": name, "sha256": sha, "file_name": fname, "benchmark_id": bm.id}
    # one submission of a team at a time in this process: the rate limits' counts, and above all the refused archives'
    # (recorded only after the check), cannot be raced by sending several at once
    with _team_lock(lb.display_url, name if not reference else f"{name} (reference)"):
        return _submit_checked(path, lb, bm, name, base, auth, audit, limit, reference, hook, t0)


def _submit_checked(path: Path, lb: Leaderboard, bm: Benchmark, name: str, base: dict[str, Any],
                    auth: TeamAuth | None, audit: dict[str, Any], limit: RateLimit | None, reference: bool,
                    hook: Hook | None, t0: float) -> SubmitResult:
    sha, fname = base["sha256"], base["file_name"]

    dup = lb.find_duplicate(name, bm.id, sha)
    if dup is not None:
        return _duplicate(base, dup, t0, 0)
    if not reference and (pulled := lb.withdrawn_archive(bm.id, sha)) is not None:  # sent before from another team
        return _withdrawn(base, pulled, t0, 0)
    if limit is not None and not limit.unlimited:
        n, wait = lb.recent_count(name, limit.window_s, limit.max_count)
        if n >= limit.max_count:
            return _limited(base, n, limit, wait or limit.window_s, t0, 0)
        if auth is not None:
            n, wait = lb.recent_refusals(auth.team_id, limit.window_s, limit.max_refused)
            if n >= limit.max_refused:
                return SubmitResult(
                    status="rate_limited", **base, retry_after_s=float(wait or limit.window_s),
                    message=(f"rate limit: {name} already sent {n} refused archive(s) in the window; at most "
                             f"{RateLimit(limit.max_refused, limit.window_s)} are checked — the next one can be sent "
                             f"in {_wait_text(wait or limit.window_s)}. Fix every problem listed with the last "
                             "refusal first (nothing was scored)"),
                    seconds=time.perf_counter() - t0,
                )  # fmt: skip

    if hook:
        hook("scoring")
    sc = score_archive(path, bm)
    if hook:
        hook("scored")
    team_id = None if auth is None else auth.team_id
    if sc.internal_error is not None:
        aid = lb.audit(EVENT_INTERNAL_ERROR, team=name, team_id=team_id, **audit, detail=sc.internal_error)
        return SubmitResult(
            status=STATUS_ERROR, **base, n_files=sc.n_files, audit_id=aid,
            message=("the server failed while scoring this archive — an error on our side, not a problem of your "
                     "archive; nothing was recorded and it does not count against your rate limit. Send it again "
                     f"later; if it keeps failing, tell the organisers (reference: audit #{aid})"),
            seconds=time.perf_counter() - t0,
        )  # fmt: skip
    if not sc.valid:
        aid = lb.audit(EVENT_REFUSED, team=name, team_id=team_id, **audit, detail="\n".join(sc.problems))
        return SubmitResult(
            status=STATUS_REJECTED, **base, n_files=sc.n_files, problems=sc.problems, audit_id=aid,
            message=f"refused: {len(sc.problems)} problem(s) found; nothing was scored — fix them and submit again",
            seconds=time.perf_counter() - t0,
        )  # fmt: skip
    new = NewSubmission(
        team=name, benchmark_id=bm.id, sha256=sha, file_name=fname, n_files=sc.n_files, status=STATUS_SCORED,
        public_wmcc=sc.public, private_wmcc=sc.private, overall_wmcc=sc.overall, per_patch=sc.per_patch,
        seconds=sc.seconds, is_reference=reference,
    )  # fmt: skip
    before_commit = (lambda _id: hook("in_transaction")) if hook else None
    out = lb.record(new, rate_limit=limit, before_commit=before_commit, auth=auth)
    if out.status == "unauthorized":
        msg = (f"refused: the token of team {name!r} was revoked or replaced while the archive was being scored; "
               "nothing was recorded — ask the benchmark admin for the current token")
        aid = lb.audit(EVENT_AUTH_FAILED, team=name, team_id=team_id, **audit, detail=f"revoked during scoring: {msg}")
        return SubmitResult(status=STATUS_UNAUTHORIZED, **base, message=msg, seconds=time.perf_counter() - t0,
                            attempts=out.attempts, audit_id=aid)
    if out.status == "duplicate" and out.duplicate_of is not None:
        return _duplicate(base, out.duplicate_of, t0, out.attempts)
    if out.status == "rate_limited":
        n = int(out.extra.get("recent", limit.max_count if limit else 0))
        return _limited(base, n, limit or RateLimit(), out.retry_after_s or 0.0, t0, out.attempts)
    return SubmitResult(
        status=STATUS_SCORED, **base, submission_id=out.submission_id, public_wmcc=sc.public, private_wmcc=sc.private,
        overall_wmcc=sc.overall, n_files=sc.n_files,
        message=(f"scored: public-half weighted MCC {sc.public:.4f} ({len(bm.public)} of {bm.n} patches; the private "
                 f"half is stored for the final standing); recorded as submission #{out.submission_id} for {name}"),
        seconds=time.perf_counter() - t0, attempts=out.attempts,
    )  # fmt: skip


_TEAM_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_TEAM_LOCKS_GUARD = threading.Lock()


def _team_lock(db: str, team: str) -> threading.Lock:
    with _TEAM_LOCKS_GUARD:
        return _TEAM_LOCKS.setdefault((db, team.casefold()), threading.Lock())


def _withdrawn(base: dict[str, Any], pulled: SubmissionRow, t0: float, attempts: int) -> SubmitResult:
    """The answer to an archive the admin withdrew: the team's own row is named; another team's is not."""
    own = pulled.team == base["team"]
    when = (f"was scored for {pulled.team} on {_when(pulled.created_at)} as submission #{pulled.id}, and the benchmark "
            "admin withdrew it from the standings" if own else
            "was withdrawn from the standings by the benchmark admin when it was sent before")
    return SubmitResult(
        status=STATUS_WITHDRAWN, **base, submission_id=pulled.id if own else None,
        n_files=pulled.n_files if own else 0,
        message=(f"refused: this archive (SHA-256 {pulled.sha256[:12]}…) {when} ({pulled.withdrawal_reason}); it is not "
                 "scored again — ask the organisers if you think this is a mistake"),
        seconds=time.perf_counter() - t0, attempts=attempts,
    )  # fmt: skip


def _duplicate(base: dict[str, Any], dup: SubmissionRow, t0: float, attempts: int) -> SubmitResult:
    if dup.status == STATUS_WITHDRAWN:
        return _withdrawn(base, dup, t0, attempts)
    return SubmitResult(
        status="duplicate", **base, submission_id=dup.id, public_wmcc=dup.public_wmcc, private_wmcc=dup.private_wmcc,
        overall_wmcc=dup.overall_wmcc, n_files=dup.n_files, duplicate_of=dup,
        message=(f"duplicate: this archive (SHA-256 {dup.sha256[:12]}…) was already scored for {dup.team} on "
                 f"{_when(dup.created_at)} as submission #{dup.id} (public wMCC {dup.public_wmcc:.4f}); "
                 "not recorded again"),
        seconds=time.perf_counter() - t0, attempts=attempts,
    )  # fmt: skip


def _limited(base: dict[str, Any], n: int, limit: RateLimit, wait: float, t0: float, attempts: int) -> SubmitResult:
    return SubmitResult(
        status="rate_limited", **base, retry_after_s=float(wait),
        message=(f"rate limit: {base['team']} already has {n} scored submission(s) in the window; the limit is "
                 f"{limit} — the next one can be sent in {_wait_text(wait)} (nothing was scored)"),
        seconds=time.perf_counter() - t0, attempts=attempts,
    )  # fmt: skip


def _folder_hash(folder: Path) -> str:
    """Hash of a submission folder's .tif files (names and bytes), for folder submissions from the CLI."""
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*.tif*")):
        if f.is_file():
            h.update(f.relative_to(folder).as_posix().encode() + b"\0")
            h.update(sha256_file(f).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Reference rows
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ReferenceOutcome:
    """One reference row: ``status`` is a :class:`SubmitResult` status or ``skipped`` (with ``note``)."""

    key: str
    team: str
    status: str
    note: str = ""
    result: SubmitResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "team": self.team, "status": self.status, "note": self.note,
                "result": None if self.result is None else self.result.to_dict(private=True)}


def _predictor(key: str) -> Callable[[Any], Any]:
    if key == "model":
        from ..inference import get_model, predict

        get_model(None, "cpu")  # raises ModelError now when the bundled weights are missing
        return lambda patch: predict(patch, device="cpu")
    from ..baselines import get_baseline

    return get_baseline(key)


def pack_submission(folder: str | Path, out: str | Path) -> Path:
    """Zip the ``.tif`` files of ``folder`` at the archive root with fixed dates (same files → same bytes)."""
    out = Path(out)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(Path(folder).glob("*.tif")):
            info = zipfile.ZipInfo(f.name, date_time=(2021, 6, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, f.read_bytes())
    return out


def compute_references(
    which: Sequence[str] | None = None,
    *,
    benchmark: Benchmark | None = None,
    board: Leaderboard | None = None,
    progress: bool = False,
    on_outcome: Callable[[ReferenceOutcome], None] | None = None,
) -> list[ReferenceOutcome]:
    """Predict every benchmark patch (labels removed first) with the bundled model and the baselines, and submit
    each set through :func:`submit` under its reserved name (``★ model``, ``★ baseline:ndvi``,
    ``★ baseline:pixel``). A predictor that is not available here (no bundled weights, no pixel baseline) is
    skipped with a note; an unchanged prediction is reported as a duplicate and not recorded twice."""
    bm = benchmark or load_benchmark()
    lb = board or Leaderboard()
    out: list[ReferenceOutcome] = []
    for key in which or list(REFERENCE_TEAMS):
        team = REFERENCE_TEAMS.get(key)
        if team is None:
            oc = ReferenceOutcome(key, key, "skipped", f"unknown reference {key!r}; choose from {', '.join(REFERENCE_TEAMS)}")
        else:
            oc = _one_reference(key, team, bm, lb, progress)
        out.append(oc)
        if on_outcome:
            on_outcome(oc)
    return out


def _one_reference(key: str, team: str, bm: Benchmark, lb: Leaderboard, progress: bool) -> ReferenceOutcome:
    from ..io.submission import scratch_dir, write_predictions

    try:
        predictor = _predictor(key)
    except (SRCoreError, ImportError) as exc:
        return ReferenceOutcome(key, team, "skipped", f"not available here: {str(exc).splitlines()[0]}")
    with scratch_dir("reference") as tmp:
        try:
            write_predictions(bm.truth_paths(), lambda p: predictor(strip_labels(p, bm.id)), tmp / "sub",
                              progress=progress, desc=key)
        except (SRCoreError, ImportError) as exc:
            return ReferenceOutcome(key, team, "skipped", f"prediction failed: {str(exc).splitlines()[0]}")
        archive = pack_submission(tmp / "sub", tmp / f"reference-{key}.zip")
        res = submit(archive, team, benchmark=bm, board=lb, reference=True, file_name=archive.name)
    return ReferenceOutcome(key, team, res.status, res.message, res)


def history(team: str, *, benchmark: Benchmark | None = None, board: Leaderboard | None = None) -> list[SubmissionRow]:
    """A team's submissions to the current benchmark, oldest first."""
    bm = benchmark or load_benchmark()
    return (board or Leaderboard()).submissions(bm.id, team=team)


__all__ = [
    "REFERENCE_TEAMS", "STATUS_ERROR", "STATUS_UNAUTHORIZED", "ArchiveScore", "ReferenceOutcome", "SubmitResult",
    "check_team_name", "clean_file_name",
    "compute_references", "history", "pack_submission", "score_archive", "sha256_file", "submit",
]  # fmt: skip
