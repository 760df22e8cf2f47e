"""Reliability figures of the leaderboard: concurrent writers, killed scorers, restarts, bad archives.

Run: ``.venv/bin/python bench/bench_leaderboard.py [--workers 20] [--n 8] [--size 64] [--keep]``

Everything happens in a fresh temporary ``$SR_CORE_HOME`` (a small simulated benchmark and its SQLite database):

1. ``--workers`` submissions (2 per team) from as many separate processes (multiprocessing, spawn), started
   together and writing together (a barrier between scoring and recording): each must be recorded exactly once,
   with the scores computed independently from the arrays, and no "database is locked" may reach a caller;
   then the same archives again (all duplicates, nothing recorded) and one team past the rate limit.
2. A scoring process SIGKILLed while scoring, and another SIGKILLed inside its write transaction (row inserted,
   not committed, write lock held): no half-written row, the database passes ``PRAGMA integrity_check`` and the
   next writer is not blocked; a fresh process ("the app restarted") sees every earlier submission, and the killed
   submission goes through when sent again.
3. Bad archives (wrong names, wrong size, ``../`` members, huge expansion, a header declaring 3 GiB, non-TIFF
   files, not an archive) sent through the same service as the page: each refused with a message.

Prints the figures and exits 1 if any check fails. Takes about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FAILED: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        FAILED.append(what)


# -- child processes (spawned: fresh interpreters, nothing shared but the files) ----------------------------------------
def submit_worker(archive: str, team: str, barrier: Any, queue: Any) -> None:
    """Submit one archive; wait at the barrier between scoring and recording so that all writes collide."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"team": team, "archive": archive, "pid": os.getpid()}
    try:
        from sr_core.benchmark.service import submit

        released = [0.0]

        def hook(stage: str) -> None:
            if stage == "scored" and barrier is not None:
                with contextlib.suppress(Exception):  # a broken barrier only loses the collision, not the submission
                    barrier.wait(timeout=300)
                released[0] = time.perf_counter()

        res = submit(archive, team, hook=hook)
        out.update(status=res.status, id=res.submission_id, public=res.public_wmcc, private=res.private_wmcc,
                   attempts=res.attempts, message=res.message, record_s=time.perf_counter() - released[0])
    except BaseException as exc:  # reported to the parent, which fails the check
        out.update(status="exception", error=f"{type(exc).__name__}: {exc}")
    out["seconds"] = time.perf_counter() - t0
    queue.put(out)


def stalling_worker(archive: str, team: str, stage: str, reached: Any) -> None:
    """Submit, and stop dead at ``stage`` (``scoring`` or ``in_transaction``) until killed."""
    from sr_core.benchmark.service import submit

    def hook(s: str) -> None:
        if s == stage:
            reached.set()
            time.sleep(600)

    submit(archive, team, hook=hook)


def count_worker(queue: Any) -> None:
    """A fresh process opening the database: what a restarted app sees."""
    from sr_core.benchmark.definition import load_benchmark
    from sr_core.benchmark.store import Leaderboard

    lb = Leaderboard()
    rows = lb.submissions(load_benchmark().id)
    queue.put({"rows": [(r.id, r.team, r.sha256, r.status, r.public_wmcc) for r in rows],
               "integrity": lb.integrity_check(), "journal": lb.journal_mode()})


# -- parent --------------------------------------------------------------------------------------------------------------
def run_many(ctx: Any, jobs: list[tuple[str, str]], collide: bool) -> tuple[list[dict[str, Any]], float]:
    queue = ctx.Queue()
    barrier = ctx.Barrier(len(jobs)) if collide else None
    procs = [ctx.Process(target=submit_worker, args=(a, t, barrier, queue)) for a, t in jobs]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return results, time.perf_counter() - t0


def kill_at(ctx: Any, archive: str, team: str, stage: str) -> float:
    reached = ctx.Event()
    p = ctx.Process(target=stalling_worker, args=(archive, team, stage, reached))
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
    ap.add_argument("--workers", type=int, default=20, help="concurrent submissions (separate processes)")
    ap.add_argument("--n", type=int, default=8, help="benchmark patches")
    ap.add_argument("--size", type=int, default=64, help="patch side in 10 m pixels")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data home")
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


def run(args: argparse.Namespace, home: Path, ctx: Any) -> int:
    from sr_core.benchmark.definition import PRIVATE, PUBLIC, create_benchmark
    from sr_core.benchmark.samples import bad_archives, expected_scores, noisy_masks, write_masks, zip_folder
    from sr_core.benchmark.service import submit
    from sr_core.benchmark.store import Leaderboard

    t0 = time.perf_counter()
    bm = create_benchmark(args.n, args.size, 2024, build_inputs=False)
    lb = Leaderboard()
    print(f"benchmark: {bm.describe()}  (built in {time.perf_counter() - t0:.1f} s)")
    print(f"database: {lb.display_url}, journal mode {lb.journal_mode()}; {os.cpu_count()} CPU cores")

    # -- 1. concurrent submissions ---------------------------------------------------------------------------------
    work = home / "subs"
    jobs, expected = [], {}
    for i in range(args.workers):
        masks = noisy_masks(bm, 0.02 + 0.01 * i, seed=100 + i)
        archive = zip_folder(write_masks(bm, masks, work / f"s{i:02d}"), work / f"s{i:02d}.zip")
        team = f"team-{i // 2:02d}"
        jobs.append((str(archive), team))
        expected[str(archive)] = expected_scores(bm, masks)
    print(f"\n1. {len(jobs)} concurrent submissions from {len(jobs)} processes ({len(jobs) // 2} teams × 2), "
          "all writing at once")
    results, wall = run_many(ctx, jobs, collide=True)
    rows = lb.submissions(bm.id)
    by_id = {r.id: r for r in rows}
    errors = [r for r in results if r["status"] != "scored"]
    locked = [r for r in results if "locked" in (r.get("error", "") + r.get("message", "")).lower()]
    worst = max(abs(by_id[r["id"]].public_wmcc - expected[r["archive"]][PUBLIC]) +
                abs(by_id[r["id"]].private_wmcc - expected[r["archive"]][PRIVATE]) for r in results if r.get("id") in by_id)
    attempts = [r.get("attempts", 0) for r in results]
    print(f"  wall {wall:.1f} s; per process {min(r['seconds'] for r in results):.1f}–"
          f"{max(r['seconds'] for r in results):.1f} s (imports + scoring + recording)")
    rec = sorted(r.get("record_s", 0.0) for r in results)
    print(f"  recording after the common start: {rec[0] * 1000:.0f}–{rec[-1] * 1000:.0f} ms (writers queue on the "
          f"lock); transaction attempts: max {max(attempts)}, retried {sum(a > 1 for a in attempts)}")
    check(not errors, f"all {len(results)} submissions scored ({len(errors)} not: "
                      f"{[r.get('error') or r.get('message') for r in errors][:3]})")
    check(len(rows) == len(jobs) and len({(r.team, r.sha256) for r in rows}) == len(jobs),
          f"{len(rows)} rows stored, each (team, archive) exactly once")
    check(sorted(r["id"] for r in results if r.get("id")) == sorted(by_id), "every caller got the id of its own row")
    check(worst < 1e-12, f"stored public/private scores equal the scores computed from the arrays (max error {worst:.1e})")
    check(not locked, f"no 'database is locked' reached a caller ({len(locked)})")

    dup_results, wall = run_many(ctx, jobs[:6], collide=True)
    check(all(r["status"] == "duplicate" for r in dup_results) and len(lb.submissions(bm.id)) == len(jobs),
          f"6 identical archives sent again concurrently: all reported as duplicates, none recorded ({wall:.1f} s)")
    extra = []
    for k in range(4):
        masks = noisy_masks(bm, 0.3 + 0.01 * k, seed=900 + k)
        a = zip_folder(write_masks(bm, masks, work / f"x{k}"), work / f"x{k}.zip")
        extra.append(submit(a, "team-00").status)
    check(extra == ["scored", "scored", "scored", "rate_limited"],
          f"rate limit 5/hour: team-00's submissions 3–6 → {extra}")

    # -- 2. killed processes, restart ----------------------------------------------------------------------------------
    print("\n2. SIGKILL mid-way and restart")
    before = len(lb.submissions(bm.id))
    victim = zip_folder(write_masks(bm, noisy_masks(bm, 0.07, seed=777), work / "victim"), work / "victim.zip")
    kill_at(ctx, str(victim), "victim", "scoring")
    after_scoring = lb.submissions(bm.id)
    check(len(after_scoring) == before and not [r for r in after_scoring if r.team == "victim"],
          "killed while scoring: no row written")
    kill_at(ctx, str(victim), "victim", "in_transaction")
    t1 = time.perf_counter()
    probe = submit(zip_folder(write_masks(bm, noisy_masks(bm, 0.2, seed=778), work / "probe"), work / "probe.zip"),
                   "probe")
    blocked = time.perf_counter() - t1
    after_tx = lb.submissions(bm.id)
    check(not [r for r in after_tx if r.team == "victim"],
          "killed inside the write transaction (row inserted, not committed): no half-written row")
    check(lb.integrity_check() == "ok", f"PRAGMA integrity_check: {lb.integrity_check()}")
    check(probe.status == "scored", f"the next writer went through at once ({blocked:.2f} s including scoring)")
    q = ctx.Queue()
    p = ctx.Process(target=count_worker, args=(q,))
    p.start()
    seen = q.get(timeout=120)
    p.join()
    mine = [(r.id, r.team, r.sha256, r.status, r.public_wmcc) for r in lb.submissions(bm.id)]
    check(seen["rows"] == mine and seen["integrity"] == "ok" and seen["journal"] == "wal",
          f"a fresh process ('restarted app') sees all {len(mine)} earlier submissions, intact")
    again = submit(victim, "victim")
    check(again.status == "scored", "the killed submission, sent again, is scored (no ghost duplicate)")

    # -- 3. bad archives -------------------------------------------------------------------------------------------------
    print("\n3. bad archives (same service as the page)")
    for kind, path in bad_archives(bm, home / "bad", bomb_mib=200).items():
        res = submit(path, "careless")
        first = res.problems[0] if res.problems else res.message
        print(f"  {kind:<19} {path.stat().st_size / 1024:>8.0f} KiB  → {res.status}: {first[:150]}")
        check(res.status == "rejected" and bool(res.problems), f"{kind}: refused with a message")
    scored_careless = lb.submissions(bm.id, team="careless", status="scored")
    check(not scored_careless, "none of them scored")

    print(f"\n{'ALL CHECKS PASSED' if not FAILED else f'{len(FAILED)} CHECK(S) FAILED'} "
          f"({time.perf_counter() - t0:.0f} s in all)")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
