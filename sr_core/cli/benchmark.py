"""``python -m sr_core benchmark ...``: the permanent benchmark from the command line (same checks as the page).

``create`` builds the benchmark's simulated test patches and its reference rows; ``inputs`` exports them without
labels; ``submit`` validates, scores and records an archive; ``list`` / ``reveal`` / ``export-csv`` read the
leaderboard; ``references`` recomputes the reference rows; ``info`` describes the benchmark and its database.
Data live under ``$SR_CORE_HOME/benchmark``; ``--db URL`` (or ``$SR_CORE_DB_URL``) picks another database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import EXIT_FAILURE, print_json


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "benchmark",
        help="the permanent benchmark: create it, export inputs, submit, list, reveal the private standing",
        description=(
            "A fixed set of simulated test patches (public half scored live, private half revealed by an admin) and "
            "a leaderboard database. Data under $SR_CORE_HOME/benchmark; database: --db URL or $SR_CORE_DB_URL "
            "(default SQLite leaderboard.sqlite there, WAL mode)."
        ),
    )
    sub = p.add_subparsers(dest="benchmark_command", metavar="ACTION", required=True)
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", default=None, metavar="URL",
                    help="SQLAlchemy database URL (default $SR_CORE_DB_URL, else SQLite under $SR_CORE_HOME/benchmark)")
    js = argparse.ArgumentParser(add_help=False)
    js.add_argument("--json", action="store_true", help="one JSON document on stdout")

    from ..benchmark.definition import DEFAULT_N, DEFAULT_SIZE, FULL_SIZE  # light: numpy only

    q = sub.add_parser("create", parents=[db, js], help="build the benchmark's test patches and reference rows",
                       description=(f"Simulate N test patches (default {DEFAULT_N} of {DEFAULT_SIZE} px, a demo that "
                                    f"builds in seconds; --n 25 --size {FULL_SIZE} is the challenge's scale), split "
                                    "them into public and private halves, export the label-free inputs archive and "
                                    "score the reference rows (bundled model, NDVI and pixel baselines)."))
    q.add_argument("--n", type=int, default=DEFAULT_N, help=f"number of test patches (default {DEFAULT_N})")
    q.add_argument("--size", type=int, default=DEFAULT_SIZE,
                   help=f"patch side in 10 m pixels (default {DEFAULT_SIZE}; {FULL_SIZE} = full size)")
    q.add_argument("--seed", type=int, default=None,
                   help="benchmark seed (default: a secret random one; whoever knows it can regenerate the labels)")
    q.add_argument("--force", action="store_true", help="replace an existing benchmark (its submissions stay stored)")
    q.add_argument("--no-references", action="store_true", help="do not compute the reference rows now")
    q.set_defaults(func=run_create)

    q = sub.add_parser("inputs", parents=[js], help="export the test inputs (no labels) as EOPatch folders",
                       description="Write every benchmark patch without CULTIVATED / NOT_DECLARED / ALL_POLYS.")
    q.add_argument("--out", type=Path, required=True, help="folder for the eopatch-XX folders")
    q.add_argument("--zip", action="store_true", help="copy the inputs archive (inputs.zip) into --out instead")
    q.add_argument("--overwrite", action="store_true", help="replace eopatch-XX folders already in --out")
    q.set_defaults(func=run_inputs)

    q = sub.add_parser("submit", parents=[db, js], help="validate, score and record a submission archive",
                       description=("Check every eopatch-XX.tif of ARCHIVE, score it (public-half weighted MCC shown; "
                                    "private half stored) and record it for TEAM. Exit 0: scored or already recorded "
                                    "(duplicate); 1: refused or rate-limited."))
    q.add_argument("archive", type=Path, help=".zip or .tar.gz of eopatch-XX.tif files (or a folder of them)")
    q.add_argument("--team", required=True, help="team name (1-40 characters; case-insensitive)")
    q.set_defaults(func=run_submit)

    q = sub.add_parser("list", parents=[db, js], help="every recorded submission of the current benchmark",
                       description="Submissions, oldest first (public scores; --private adds the hidden half).")
    q.add_argument("--team", default=None, help="only this team")
    q.add_argument("--all-benchmarks", action="store_true", help="include submissions to earlier benchmarks")
    q.add_argument("--private", action="store_true", help="admin: include private-half scores")
    q.set_defaults(func=run_list)

    q = sub.add_parser("standings", parents=[db, js], help="the public leaderboard table (best public score per team)")
    q.set_defaults(func=run_standings)

    q = sub.add_parser("reveal", parents=[db, js], help="admin: the final standing on the private half",
                       description=("Rank teams by the private-half score of the submission each was ranked by "
                                    "publicly (its best public score), with the public score beside it."))
    q.set_defaults(func=run_reveal)

    q = sub.add_parser("export-csv", parents=[db], help="admin: every submission (private scores included) as CSV")
    q.add_argument("file", type=Path, help="CSV file to write")
    q.add_argument("--all-benchmarks", action="store_true", help="include submissions to earlier benchmarks")
    q.set_defaults(func=run_export_csv)

    q = sub.add_parser("references", parents=[db, js], help="recompute the reference rows (model, NDVI, pixel)",
                       description="Predict the benchmark with the bundled model and both baselines and record them "
                                   "as '★ model', '★ baseline:ndvi', '★ baseline:pixel' (unavailable ones are skipped).")
    q.add_argument("--only", default=None, help="comma-separated subset of model,ndvi,pixel")
    q.set_defaults(func=run_references)

    q = sub.add_parser("info", parents=[db, js], help="the benchmark and its database (no secrets)")
    q.set_defaults(func=run_info)
    return p


# ---------------------------------------------------------------------------------------------------------------
def _board(args: argparse.Namespace) -> Any:
    from ..benchmark.store import Leaderboard

    return Leaderboard(getattr(args, "db", None))


def _fmt(x: float | None) -> str:
    return "    n/a" if x is None else f"{x:7.4f}"


def _tty() -> bool:
    return sys.stderr.isatty()


def _print_references(outcomes: list[Any]) -> None:
    for oc in outcomes:
        if oc.status == "skipped":
            print(f"  {oc.team:<18} skipped — {oc.note}")
        elif oc.result is not None and oc.result.public_wmcc is not None:
            print(f"  {oc.team:<18} public wMCC {oc.result.public_wmcc:.4f} ({oc.status})")
        else:
            print(f"  {oc.team:<18} {oc.status}: {oc.note}")


def run_create(args: argparse.Namespace) -> int:
    from ..benchmark.definition import create_benchmark
    from ..benchmark.service import compute_references

    bm = create_benchmark(args.n, args.size, args.seed, force=args.force, progress=not args.json and _tty())
    outcomes = [] if args.no_references else compute_references(benchmark=bm, board=_board(args),
                                                                progress=not args.json and _tty())
    if args.json:
        print_json({"benchmark": bm.to_dict(), "folder": str(bm.folder), "references": [o.to_dict() for o in outcomes]})
        return 0
    print(f"benchmark created in {bm.folder}")
    print(bm.describe())
    print(f"inputs archive: {bm.folder / 'inputs.zip'}  (labels and the seed stay in {bm.folder}; keep them private)")
    if outcomes:
        print("reference rows:")
        _print_references(outcomes)
    return 0


def run_inputs(args: argparse.Namespace) -> int:
    import shutil

    from ..benchmark.definition import export_inputs, inputs_archive, load_benchmark

    bm = load_benchmark()
    if args.zip:
        args.out.mkdir(parents=True, exist_ok=True)
        target = args.out / f"benchmark-inputs-{bm.id}.zip"
        shutil.copyfile(inputs_archive(bm), target)
        written = [target]
    else:
        written = export_inputs(args.out, bm, overwrite=args.overwrite, progress=not args.json and _tty())
    if args.json:
        print_json({"benchmark_id": bm.id, "written": [str(w) for w in written]})
    else:
        what = "archive" if args.zip else f"{len(written)} EOPatch folder(s) without labels"
        print(f"wrote {what} to {args.out}")
        print(f"submit one <folder name>.tif per patch ({', '.join(f'{n}.tif' for n in bm.names[:2])}, …) as .zip or .tar.gz")
    return 0


def run_submit(args: argparse.Namespace) -> int:
    from ..benchmark.service import submit

    res = submit(args.archive, args.team, board=_board(args))
    if args.json:
        print_json(res.to_dict())
    else:
        print(res.message)
        for line in res.problems:
            print(f"  - {line}")
    return 0 if res.status in ("scored", "duplicate") else EXIT_FAILURE


def run_list(args: argparse.Namespace) -> int:
    from ..benchmark.definition import load_benchmark

    bid = None if args.all_benchmarks else load_benchmark().id
    rows = _board(args).submissions(bid, team=args.team)
    if args.json:
        print_json([r.to_dict(private=args.private) for r in rows])
        return 0
    if not rows:
        print("no submissions yet")
        return 0
    tw = max(4, *(len(r.team) for r in rows))
    head = f"{'id':>5}  {'time (UTC)':<19}  {'team':<{tw}}  {'status':<8}  {'public':>7}"
    head += f"  {'private':>7}" if args.private else ""
    print(head + "  files  file")
    for r in rows:
        line = f"{r.id:>5}  {r.created_at:%Y-%m-%d %H:%M:%S}  {r.team:<{tw}}  {r.status:<8}  {_fmt(r.public_wmcc)}"
        line += f"  {_fmt(r.private_wmcc)}" if args.private else ""
        line += f"  {r.n_files:>5}  {r.file_name}"
        if r.error:
            line += f"  ({r.error.splitlines()[0][:80]})"
        print(line)
    return 0


def _standings_table(lines: list[Any], private: bool) -> None:
    tw = max(4, *(len(s.team) for s in lines))
    head = f"{'rank':>4}  {'team':<{tw}}  {'public':>7}"
    head += f"  {'private':>7}" if private else ""
    print(head + "  scored  refused  last (UTC)")
    rank = 0
    for s in lines:
        mark = "ref" if s.is_reference else ""
        if not s.is_reference and s.best_public is not None:
            rank += 1
            mark = str(rank)
        line = f"{mark:>4}  {s.team:<{tw}}  {_fmt(s.best_public)}"
        line += f"  {_fmt(s.private_of_ranked)}" if private else ""
        last = "" if s.last_at is None else f"{s.last_at:%Y-%m-%d %H:%M}"
        print(line + f"  {s.n_scored:>6}  {s.n_rejected:>7}  {last}")


def run_standings(args: argparse.Namespace) -> int:
    from ..benchmark.definition import load_benchmark

    bm = load_benchmark()
    lines = _board(args).standings(bm.id)
    if args.json:
        print_json({"benchmark_id": bm.id, "standings": [s.to_dict() for s in lines]})
    elif not lines:
        print("no submissions yet")
    else:
        print(f"public standing ({len(bm.public)} of {bm.n} patches), benchmark {bm.id}")
        _standings_table(lines, private=False)
    return 0


def run_reveal(args: argparse.Namespace) -> int:
    from ..benchmark.definition import load_benchmark

    bm = load_benchmark()
    lines = _board(args).standings(bm.id, by="private")
    if args.json:
        print_json({"benchmark_id": bm.id, "public": bm.public, "private": bm.private,
                    "standings": [s.to_dict(private=True) for s in lines]})
        return 0
    if not lines:
        print("no submissions yet")
        return 0
    print(f"PRIVATE standing ({len(bm.private)} of {bm.n} patches: {', '.join(bm.private)}), benchmark {bm.id}")
    print("each team is ranked by the private-half score of its best public submission")
    _standings_table(lines, private=True)
    return 0


def run_export_csv(args: argparse.Namespace) -> int:
    from ..benchmark.definition import load_benchmark

    bid = None if args.all_benchmarks else load_benchmark().id
    n = _board(args).export_csv(args.file, bid)
    print(f"wrote {n} submission(s) to {args.file}")
    return 0


def run_references(args: argparse.Namespace) -> int:
    from ..benchmark.service import compute_references

    which = [w.strip() for w in args.only.split(",") if w.strip()] if args.only else None
    outcomes = compute_references(which, board=_board(args), progress=not args.json and _tty())
    if args.json:
        print_json([o.to_dict() for o in outcomes])
    else:
        print("reference rows:")
        _print_references(outcomes)
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..benchmark.definition import load_benchmark
    from ..benchmark.store import RateLimit

    bm = load_benchmark()
    board = _board(args)
    info = {"benchmark": bm.to_dict(), "folder": str(bm.folder), "database": board.display_url,
            "journal_mode": board.journal_mode(), "rate_limit": str(RateLimit.from_env()), "rows": board.counts()}
    if args.json:
        print_json(info)
    else:
        print(bm.describe())
        for k in ("folder", "database", "journal_mode", "rate_limit", "rows"):
            print(f"{k}: {info[k]}")
    return 0
