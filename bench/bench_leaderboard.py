"""Reliability figures of the leaderboard on SQLite and PostgreSQL: tokens, concurrent writers, killed scorers,
restarts, bad archives.

Run: ``.venv/bin/python bench/bench_leaderboard.py [--workers 20] [--n 8] [--size 64] [--pg-url URL] [--keep]``

A small simulated benchmark is built once in a fresh temporary ``$SR_CORE_HOME``; then every check runs on each
back end: a SQLite file (WAL) and a PostgreSQL database (``--pg-url`` or ``$SR_CORE_TEST_PG_URL``, e.g. the
throw-away server ``.ci/run`` starts; a schema of its own, dropped afterwards). Without a server the PostgreSQL
column says so and only SQLite is measured.

1. ``--workers`` teams are registered (one token each); as many separate processes (multiprocessing, spawn) each
   send one submission with a wrong or missing token for its team, then its real one, all writing together (a
   barrier between scoring and recording): each real one must be recorded exactly once, with the scores computed
   independently from the arrays, every unauthorised one refused with a message and recorded nowhere public, and
   no "database is locked" may reach a caller; then the same archives again (all duplicates, nothing recorded) and
   one team past the rate limit.
2. A scoring process SIGKILLed while scoring, and another SIGKILLed inside its write transaction (row inserted,
   not committed, lock held): no half-written row, the database is sound and the next writer is not blocked; a
   fresh process ("the app restarted") sees every earlier submission, and the killed submission goes through when
   sent again.
3. Bad archives (wrong names, wrong size, ``../`` members, huge expansion, a header declaring 3 GiB, non-TIFF
   files, not an archive) sent through the same service as the page: each refused with a message, none scored,
   no public trace (the refusals are in the admin's audit log).

Prints the figures per back end, a side-by-side summary, and exits 1 if any check fails. About 1–1.5 min per back
end on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FAILED: list[str] = []
PG_ENV = "SR_CORE_TEST_PG_URL"


def check(ok: bool, what: str, backend: str = "") -> bool:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        FAILED.append(f"{backend}: {what}")
    return ok


# -- child processes (spawned: fresh interpreters, nothing shared but the files) ----------------------------------------
def submit_worker(archive: str, team: str, token: str, bad_token: str | None, barrier: Any, queue: Any) -> None:
    """Send ``archive`` with ``bad_token`` (if not "") and then with ``token``; wait at the barrier between scoring and
    recording the real one so that all writes collide."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"team": team, "archive": archive, "pid": os.getpid()}
    try:
        from sr_core.benchmark.service import submit

        if bad_token != "":
            bad = submit(archive, team, token=bad_token)
            out.update(bad_status=bad.status, bad_message=bad.message, bad_id=bad.submission_id)

        released = [0.0]

        def hook(stage: str) -> None:
            if stage == "scored" and barrier is not None:
                with contextlib.suppress(Exception):  # a broken barrier only loses the collision, not the submission
                    barrier.wait(timeout=300)
                released[0] = time.perf_counter()

        res = submit(archive, team, token=token, hook=hook)
        out.update(status=res.status, id=res.submission_id, public=res.public_wmcc, private=res.private_wmcc,
                   attempts=res.attempts, message=res.message, record_s=time.perf_counter() - released[0])
    except BaseException as exc:  # reported to the parent, which fails the check
        out.update(status="exception", error=f"{type(exc).__name__}: {exc}")
    out["seconds"] = time.perf_counter() - t0
    queue.put(out)


def stalling_worker(archive: str, team: str, token: str, stage: str, reached: Any) -> None:
    """Submit, and stop dead at ``stage`` (``scoring`` or ``in_transaction``) until killed."""
    from sr_core.benchmark.service import submit

    def hook(s: str) -> None:
        if s == stage:
            reached.set()
            time.sleep(600)

    submit(archive, team, token=token, hook=hook)


def count_worker(queue: Any) -> None:
    """A fresh process opening the database: what a restarted app sees."""
    from sr_core.benchmark.definition import load_benchmark
    from sr_core.benchmark.store import Leaderboard

    lb = Leaderboard()
    rows = lb.submissions(load_benchmark().id)
    queue.put({"rows": [(r.id, r.team, r.sha256, r.status, r.public_wmcc) for r in rows],
               "integrity": lb.integrity_check(), "journal": lb.journal_mode()})


# -- parent --------------------------------------------------------------------------------------------------------------
def run_many(ctx: Any, jobs: list[tuple[str, str, str, str | None]], collide: bool) -> tuple[list[dict[str, Any]], float]:
    queue = ctx.Queue()
    barrier = ctx.Barrier(len(jobs)) if collide else None
    procs = [ctx.Process(target=submit_worker, args=(*job, barrier, queue)) for job in jobs]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return results, time.perf_counter() - t0


def kill_at(ctx: Any, archive: str, team: str, token: str, stage: str) -> float:
    reached = ctx.Event()
    p = ctx.Process(target=stalling_worker, args=(archive, team, token, stage, reached))
    p.start()
    if not reached.wait(timeout=300):
        p.kill()
        raise RuntimeError(f"the worker never reached {stage}")
    time.sleep(0.2)
    t0 = time.perf_counter()
    os.kill(p.pid, signal.SIGKILL)
    p.join(timeout=30)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=20, help="concurrent teams (separate processes)")
    ap.add_argument("--n", type=int, default=8, help="benchmark patches")
    ap.add_argument("--size", type=int, default=64, help="patch side in 10 m pixels")
    ap.add_argument("--pg-url", default=os.environ.get(PG_ENV, ""),
                    help=f"PostgreSQL server URL (default ${PG_ENV}); a schema of its own is used and dropped")
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data home (and the PostgreSQL schema)")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-leaderboard-"))
    os.environ["SR_CORE_HOME"] = str(home)  # inherited by the spawned processes
    os.environ.pop("SR_CORE_DB_URL", None)
    os.environ["SR_CORE_RATE_LIMIT"] = "5/hour"
    ctx = mp.get_context("spawn")
    try:
        return run(args, home, ctx)
    finally:
        if args.keep:
            print(f"data home kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def pg_schema(base_url: str, keep: bool) -> Any:
    """A URL whose connections use a fresh schema on the server ``base_url`` (dropped afterwards)."""
    import sqlalchemy as sa

    base = sa.engine.make_url(base_url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        from sr_core.benchmark.store import dispose_engines

        dispose_engines()
        if not keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def run(args: argparse.Namespace, home: Path, ctx: Any) -> int:
    from sr_core.benchmark.definition import create_benchmark
    from sr_core.benchmark.samples import expected_scores, noisy_masks, write_masks, zip_folder

    t0 = time.perf_counter()
    bm = create_benchmark(args.n, args.size, 2024, build_inputs=False)
    print(f"benchmark: {bm.describe()}  (built in {time.perf_counter() - t0:.1f} s); {os.cpu_count()} CPU cores")
    work = home / "subs"
    archives, expected = [], {}
    for i in range(args.workers):
        masks = noisy_masks(bm, 0.02 + 0.01 * i, seed=100 + i)
        archive = zip_folder(write_masks(bm, masks, work / f"s{i:02d}"), work / f"s{i:02d}.zip")
        archives.append(str(archive))
        expected[str(archive)] = expected_scores(bm, masks)

    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    figures: dict[str, dict[str, str]] = {}
    for backend in wanted:
        print(f"\n=== {backend} " + "=" * (100 - len(backend)))
        if backend == "sqlite":
            url = f"sqlite:///{home / 'leaderboard-sqlite.sqlite'}"
            figures[backend] = run_backend(args, home, ctx, bm, url, archives, expected, backend)
        elif backend == "postgresql":
            if not args.pg_url:
                print(f"  skipped: no PostgreSQL server (give --pg-url or ${PG_ENV}; .ci/run starts one)")
                figures[backend] = {"status": "skipped: no server"}
                continue
            try:
                with pg_schema(args.pg_url, args.keep) as url:
                    figures[backend] = run_backend(args, home, ctx, bm, url, archives, expected, backend)
            except Exception as exc:  # an unreachable server is a failed check, not a traceback
                check(False, f"PostgreSQL at {args.pg_url}: {type(exc).__name__}: {str(exc).splitlines()[0]}", backend)
                figures[backend] = {"status": "failed"}
        else:
            check(False, f"unknown back end {backend!r} (sqlite, postgresql)", backend)

    print("\n=== summary " + "=" * 92)
    keys = list(dict.fromkeys(k for f in figures.values() for k in f))
    w = max(len(k) for k in keys) if keys else 10
    print(f"  {'':<{w}}  " + "  ".join(f"{b:<40}" for b in figures))
    for k in keys:
        print(f"  {k:<{w}}  " + "  ".join(f"{figures[b].get(k, ''):<40}" for b in figures))
    print(f"\n{'ALL CHECKS PASSED' if not FAILED else f'{len(FAILED)} CHECK(S) FAILED: {FAILED}'} "
          f"({time.perf_counter() - t0:.0f} s in all)")
    return 1 if FAILED else 0


def run_backend(args: argparse.Namespace, home: Path, ctx: Any, bm: Any, url: str, archives: list[str],
                expected: dict[str, dict[str, float]], backend: str) -> dict[str, str]:
    from sr_core.benchmark.definition import PRIVATE, PUBLIC
    from sr_core.benchmark.samples import bad_archives, noisy_masks, write_masks, zip_folder
    from sr_core.benchmark.service import submit
    from sr_core.benchmark.store import Leaderboard, dispose_engines

    t_start = time.perf_counter()
    os.environ["SR_CORE_DB_URL"] = url  # the spawned processes open the same database
    dispose_engines()
    lb = Leaderboard(url)
    fig: dict[str, str] = {}
    print(f"database: {lb.display_url}, journal mode {lb.journal_mode()}")

    # -- 1. tokens and concurrent submissions -----------------------------------------------------------------------
    n = len(archives)
    tokens = {f"team-{i:02d}": lb.register_team(f"team-{i:02d}")[1] for i in range(n)}
    wrong = [lambda i: tokens[f"team-{(i + 1) % n:02d}"], lambda i: "srt_guessed-token", lambda i: None]
    jobs = [(archives[i], f"team-{i:02d}", tokens[f"team-{i:02d}"], wrong[i % 3](i)) for i in range(n)]
    print(f"\n1. {n} teams registered; {n} processes each send one submission with a wrong or missing token, then "
          "one with their token, all writing at once")
    results, wall = run_many(ctx, jobs, collide=True)
    rows = lb.submissions(bm.id)
    by_id = {r.id: r for r in rows}
    errors = [r for r in results if r.get("status") != "scored"]
    unauth = [r for r in results if r.get("bad_status") == "unauthorized" and r.get("bad_id") is None]
    locked = [r for r in results if "locked" in (r.get("error", "") + r.get("message", "")).lower()]
    worst = max((abs(by_id[r["id"]].public_wmcc - expected[r["archive"]][PUBLIC]) +
                 abs(by_id[r["id"]].private_wmcc - expected[r["archive"]][PRIVATE]) for r in results
                 if r.get("id") in by_id), default=float("nan"))
    attempts = [r.get("attempts", 0) for r in results]
    rec = sorted(r.get("record_s", 0.0) for r in results)
    print(f"  wall {wall:.1f} s; per process {min(r['seconds'] for r in results):.1f}–"
          f"{max(r['seconds'] for r in results):.1f} s (imports + token checks + scoring + recording)")
    print(f"  recording after the common start: {rec[0] * 1000:.0f}–{rec[-1] * 1000:.0f} ms (writers queue on the "
          f"lock); transaction attempts: max {max(attempts)}, retried {sum(a > 1 for a in attempts)}")
    messages = sorted({re.sub(r"'team-\d+'", "'TEAM'", r.get("bad_message", ""))[:110] for r in results})
    print("  answers to the unauthorised ones:\n" + "\n".join(f"    {m}…" for m in messages))
    fig["1 concurrent, with token"] = f"{len(rows)}/{n} recorded once, {wall:.1f} s wall"
    fig["1 wrong/missing token"] = f"{len(unauth)}/{n} refused, {len(rows) - (n - len(errors))} recorded"
    fig["1 recording spread"] = f"{rec[0] * 1000:.0f}–{rec[-1] * 1000:.0f} ms, max {max(attempts)} attempt(s)"
    check(not errors, f"all {n} submissions with their token scored ({len(errors)} not: "
                      f"{[r.get('error') or r.get('message') for r in errors][:3]})", backend)
    check(len(unauth) == n and all(r.get("bad_message") for r in unauth),
          f"all {n} submissions with a wrong or missing token refused with a message, none recorded", backend)
    check(len(rows) == n and len({(r.team, r.sha256) for r in rows}) == n,
          f"{len(rows)} rows stored, each (team, archive) exactly once", backend)
    check(sorted(r["id"] for r in results if r.get("id")) == sorted(by_id), "every caller got the id of its own row",
          backend)
    check(worst < 1e-12, f"stored public/private scores equal the scores computed from the arrays (max error {worst:.1e})",
          backend)
    check(not locked, f"no 'database is locked' reached a caller ({len(locked)})", backend)

    dup_jobs = [(a, t, tok, "") for a, t, tok, _ in jobs[:6]]
    dup_results, wall = run_many(ctx, dup_jobs, collide=True)
    ok = all(r["status"] == "duplicate" for r in dup_results) and len(lb.submissions(bm.id)) == n
    check(ok, f"{len(dup_jobs)} identical archives sent again concurrently: all reported as duplicates, none recorded "
              f"({wall:.1f} s)",
          backend)
    fig["1 duplicates at once"] = (f"{sum(r['status'] == 'duplicate' for r in dup_results)}/{len(dup_jobs)} duplicate, "
                                   f"{len(lb.submissions(bm.id)) - n} recorded")
    work = home / f"extra-{backend}"
    extra = []
    for k in range(5):
        masks = noisy_masks(bm, 0.3 + 0.01 * k, seed=900 + k)
        a = zip_folder(write_masks(bm, masks, work / f"x{k}"), work / f"x{k}.zip")
        extra.append(submit(a, "team-00", token=tokens["team-00"]).status)
    check(extra == ["scored"] * 4 + ["rate_limited"], f"rate limit 5/hour: team-00's submissions 2–6 → {extra}", backend)
    fig["1 rate limit 5/hour"] = f"6th → {extra[-1]}"

    # -- 2. killed processes, restart ----------------------------------------------------------------------------------
    print("\n2. SIGKILL mid-way and restart")
    victim_token = lb.register_team("victim")[1]
    probe_token = lb.register_team("probe")[1]
    before = len(lb.submissions(bm.id))
    victim = zip_folder(write_masks(bm, noisy_masks(bm, 0.07, seed=777), work / "victim"), work / "victim.zip")
    kill_at(ctx, str(victim), "victim", victim_token, "scoring")
    after_scoring = lb.submissions(bm.id)
    a = check(len(after_scoring) == before and not [r for r in after_scoring if r.team == "victim"],
              "killed while scoring: no row written", backend)
    kill_at(ctx, str(victim), "victim", victim_token, "in_transaction")
    t1 = time.perf_counter()
    probe = submit(zip_folder(write_masks(bm, noisy_masks(bm, 0.2, seed=778), work / "probe"), work / "probe.zip"),
                   "probe", token=probe_token)
    blocked = time.perf_counter() - t1
    after_tx = lb.submissions(bm.id)
    b = check(not [r for r in after_tx if r.team == "victim"],
              "killed inside the write transaction (row inserted, not committed): no half-written row", backend)
    check(lb.integrity_check() == "ok", f"integrity check: {lb.integrity_check()}", backend)
    check(probe.status == "scored", f"the next writer went through at once ({blocked:.2f} s including scoring)", backend)
    q = ctx.Queue()
    p = ctx.Process(target=count_worker, args=(q,))
    p.start()
    seen = q.get(timeout=120)
    p.join()
    mine = [(r.id, r.team, r.sha256, r.status, r.public_wmcc) for r in lb.submissions(bm.id)]
    journal_ok = seen["journal"] == ("wal" if lb.is_sqlite else lb.engine.dialect.name)
    c = check(seen["rows"] == mine and seen["integrity"] == "ok" and journal_ok,
              f"a fresh process ('restarted app') sees all {len(mine)} earlier submissions, intact", backend)
    t2 = time.perf_counter()
    again = submit(victim, "victim", token=victim_token)
    victim_s = time.perf_counter() - t2
    d = check(again.status == "scored", "the killed submission, sent again, is scored (no ghost duplicate)", backend)
    fig["2 killed while scoring"] = "0 rows" if a else "ROW LEFT"
    fig["2 killed in transaction"] = ("0 rows" if b else "ROW LEFT") + f"; next writer {blocked:.2f} s"
    fig["2 restart / resend"] = f"{len(mine)} rows seen{'' if c else ' (MISMATCH)'}; resend " + \
        (f"scored ({victim_s:.2f} s)" if d else again.status)

    # -- 3. bad archives -------------------------------------------------------------------------------------------------
    print("\n3. bad archives (same service as the page)")
    careless = lb.register_team("careless")[1]
    kinds = bad_archives(bm, home / f"bad-{backend}", bomb_mib=200)
    refused = 0
    for kind, path in kinds.items():
        res = submit(path, "careless", token=careless)
        first = res.problems[0] if res.problems else res.message
        print(f"  {kind:<19} {path.stat().st_size / 1024:>8.0f} KiB  → {res.status}: {first[:150]}")
        refused += check(res.status == "rejected" and bool(res.problems), f"{kind}: refused with a message", backend)
    public = lb.submissions(bm.id, team="careless")
    in_table = [s for s in lb.standings(bm.id) if s.team == "careless"]
    audited = [e for e in lb.audit_log(event="refused") if e.team == "careless"]
    check(not public and not in_table, "none scored, no public trace (no row, no standings line)", backend)
    check(len(audited) == len(kinds), f"all {len(kinds)} in the admin's audit log", backend)
    fig["3 bad archives"] = f"{refused}/{len(kinds)} refused, {len(public)} public rows, {len(audited)} audited"
    fig["time"] = f"{time.perf_counter() - t_start:.0f} s"
    os.environ.pop("SR_CORE_DB_URL", None)
    dispose_engines()
    return fig


if __name__ == "__main__":
    sys.exit(main())
