"""``python -m sr_core benchmark ...``: the permanent benchmark from the command line (same checks as the page).

``create`` builds the benchmark's simulated test patches and its reference rows; ``inputs`` exports them without
labels; ``submit`` validates, scores and records an archive (with the team's token); ``list`` / ``standings`` read
the public leaderboard; ``references`` recomputes the reference rows; ``info`` describes the benchmark and its
database. Data live under ``$SR_CORE_HOME/benchmark``; ``--db URL`` (or ``$SR_CORE_DB_URL``) picks another database.

Admin actions — ``admin-init`` (once), ``register``, ``rotate``, ``revoke``, ``teams``, ``audit``, ``reveal``,
``export-csv``, ``list --private`` — need the admin credential: ``$SR_CORE_ADMIN_TOKEN``, or a file readable only by
its owner named by ``--admin-token-file`` / ``$SR_CORE_ADMIN_TOKEN_FILE``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from . import EXIT_FAILURE, print_json
from ._args import COUNT, NONNEG, SIDE


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
    adm = argparse.ArgumentParser(add_help=False)
    adm.add_argument("--admin-token-file", type=Path, default=None, metavar="PATH",
                     help="file holding the admin credential, mode 600 (default: $SR_CORE_ADMIN_TOKEN, else the file "
                          "named by $SR_CORE_ADMIN_TOKEN_FILE)")

    from ..benchmark.definition import DEFAULT_N, DEFAULT_SIZE, FULL_SIZE  # light: numpy only

    q = sub.add_parser("create", parents=[db, js], help="build the benchmark's test patches and reference rows",
                       description=(f"Simulate N test patches (default {DEFAULT_N} of {DEFAULT_SIZE} px, a demo that "
                                    f"builds in seconds; --n 25 --size {FULL_SIZE} is the challenge's scale), split "
                                    "them into public and private halves, export the label-free inputs archive and "
                                    "score the reference rows (bundled model, NDVI and pixel baselines)."))
    q.add_argument("--n", type=COUNT, default=DEFAULT_N, help=f"number of test patches (default {DEFAULT_N})")
    q.add_argument("--size", type=SIDE, default=DEFAULT_SIZE,
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
                       description=("Check TEAM's token, then every eopatch-XX.tif of ARCHIVE, score it (public-half "
                                    "weighted MCC shown; private half stored) and record it for TEAM. Exit 0: scored "
                                    "or already recorded (duplicate); 1: refused (wrong, revoked or missing token; "
                                    "invalid archive; an archive the admin withdrew), rate-limited, or a server "
                                    "error while scoring."))
    q.add_argument("archive", type=Path, help=".zip or .tar.gz of eopatch-XX.tif files (or a folder of them)")
    q.add_argument("--team", required=True, help="team name as registered (1-40 characters; case-insensitive)")
    q.add_argument("--token", default=None,
                   help="the team's token (default $SR_CORE_TEAM_TOKEN; the variable keeps it out of shell history)")
    q.set_defaults(func=run_submit)

    q = sub.add_parser("list", parents=[db, js, adm], help="every recorded submission of the current benchmark",
                       description="Scored and withdrawn submissions, oldest first (public scores; --private, an "
                                   "admin action, adds the hidden half).")
    q.add_argument("--team", default=None, help="only this team")
    q.add_argument("--all-benchmarks", action="store_true", help="include submissions to earlier benchmarks")
    q.add_argument("--private", action="store_true", help="admin: include private-half scores")
    q.set_defaults(func=run_list)

    q = sub.add_parser("admin-init", parents=[db, js, adm], help="create (or replace) the admin credential",
                       description=("Create the admin credential of this leaderboard (its hash is stored in the "
                                    "database) and write it to --file (created with mode 600) or print it once. "
                                    "Replacing an existing credential needs the current one."))
    q.add_argument("--file", type=Path, default=None, metavar="PATH",
                   help="write the credential to this new file (mode 600) instead of printing it")
    q.set_defaults(func=run_admin_init)

    q = sub.add_parser("register", parents=[db, js, adm], help="admin: register a team and print its token once",
                       description=("Register TEAM and print its secret token once (only a salted hash is stored). "
                                    "Hand the token to the team: `benchmark submit ARCHIVE --team TEAM --token TOKEN`."))
    q.add_argument("team", help="team name (1-40 characters; case-insensitive, must be free)")
    q.set_defaults(func=run_register)

    q = sub.add_parser("rotate", parents=[db, js, adm], help="admin: issue a new token for a team (the old one stops)",
                       description=("Issue TEAM a new token, printed once; the old token stops working at once. Also "
                                    "re-enables a revoked team and gives a team from before tokens its first token."))
    q.add_argument("team", help="registered team name")
    q.set_defaults(func=run_rotate)

    q = sub.add_parser("revoke", parents=[db, js, adm], help="admin: revoke a team's token",
                       description="Refuse every further submission of TEAM until `benchmark rotate TEAM`; its scored "
                                   "submissions stay in the standings.")
    q.add_argument("team", help="registered team name")
    q.set_defaults(func=run_revoke)

    q = sub.add_parser("withdraw", parents=[db, js, adm], help="admin: take a scored submission off the standings",
                       description=("Withdraw submission ID (its number in `benchmark list`) from the standings, e.g. "
                                    "one that broke the rules. The row, its scores and the reason stay in the team's "
                                    "public history, marked withdrawn; the same archive is not scored again. "
                                    "`benchmark reinstate ID` undoes it; both are in the audit log."))
    q.add_argument("id", type=int, help="submission number (see `benchmark list`)")
    q.add_argument("--reason", required=True, help="why, in a sentence the team will read")
    q.set_defaults(func=run_withdraw)

    q = sub.add_parser("reinstate", parents=[db, js, adm], help="admin: put a withdrawn submission back",
                       description="Return withdrawn submission ID to the standings (the audit log keeps both steps).")
    q.add_argument("id", type=int, help="submission number (see `benchmark list`)")
    q.set_defaults(func=run_reinstate)

    q = sub.add_parser("teams", parents=[db, js, adm], help="admin: registered teams and their token states")
    q.set_defaults(func=run_teams)

    q = sub.add_parser("audit", parents=[db, js, adm], help="admin: the audit log (refusals, failed tokens, errors)",
                       description="Newest first: registrations, rotations, revocations, refused uploads, failed "
                                   "token checks and errors of ours while scoring (with their tracebacks).")
    q.add_argument("--limit", type=NONNEG, default=50, help="lines to show (default 50; 0 = all)")
    q.add_argument("--event", default=None, help="only this event (e.g. refused, auth_failed, internal_error)")
    q.add_argument("--team", default=None, help="only this team name (as given by the submitter)")
    q.set_defaults(func=run_audit)

    q = sub.add_parser("standings", parents=[db, js], help="the public leaderboard table (best public score per team)")
    q.set_defaults(func=run_standings)

    q = sub.add_parser("reveal", parents=[db, js, adm], help="admin: the final standing on the private half",
                       description=("Rank teams by the private-half score of the submission each was ranked by "
                                    "publicly (its best public score), with the public score beside it."))
    q.set_defaults(func=run_reveal)

    q = sub.add_parser("export-csv", parents=[db, adm],
                       help="admin: every submission (private scores included) as CSV")
    q.add_argument("file", type=Path, help="CSV file to write")
    q.add_argument("--all-benchmarks", action="store_true", help="include submissions to earlier benchmarks")
    q.add_argument("--overwrite", action="store_true", help="replace FILE when it exists")
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


def _admin_board(args: argparse.Namespace, action: str) -> Any:
    """The leaderboard, once the admin credential given to this process is checked (CredentialError if not)."""
    from ..benchmark.credentials import admin_secret_from_env

    board = _board(args)
    secret, source = admin_secret_from_env(getattr(args, "admin_token_file", None))
    board.check_admin(secret, source=source, action=f"`benchmark {action}`")
    return board


def _print_token(args: argparse.Namespace, info: Any, token: str, verb: str) -> None:
    if args.json:
        print_json({"team": info.name, "token": token})
        return
    print(f"{verb} team {info.name!r}. Its token (shown this once; only a hash is stored):")
    print(f"\n    {token}\n")
    print("Hand it to the team over a private channel. They submit with")
    print(f"    SR_CORE_TEAM_TOKEN=<token> python -m sr_core benchmark submit ARCHIVE --team {_quote(info.name)}")
    print("or type it into the Leaderboard page's token field. A lost token is replaced with "
          f"`benchmark rotate {_quote(info.name)}`.")


def _quote(name: str) -> str:
    import shlex

    return shlex.quote(name)


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
    if not _board(args).admin_configured():
        print("next: `benchmark admin-init --file PATH` (the admin credential), then `benchmark register TEAM` per team")
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
    from ..benchmark.credentials import ENV_TEAM_TOKEN
    from ..benchmark.service import STATUS_ERROR, STATUS_UNAUTHORIZED, submit

    token = args.token if args.token is not None else os.environ.get(ENV_TEAM_TOKEN)
    res = submit(args.archive, args.team, token=token, board=_board(args))
    if args.json:
        print_json(res.to_dict())
    elif res.status in (STATUS_UNAUTHORIZED, STATUS_ERROR):
        print(f"error: {res.message}", file=sys.stderr)
    else:
        print(res.message)
        for line in res.problems:
            print(f"  - {line}")
    return 0 if res.status in ("scored", "duplicate") else EXIT_FAILURE


def run_admin_init(args: argparse.Namespace) -> int:
    from ..benchmark.credentials import (
        ADMIN_PREFIX,
        ENV_ADMIN_TOKEN,
        ENV_ADMIN_TOKEN_FILE,
        CredentialError,
        admin_secret_from_env,
        new_token,
        write_secret_file,
    )  # fmt: skip

    board = _board(args)
    if board.admin_configured():
        secret, source = admin_secret_from_env(args.admin_token_file)
        try:
            board.check_admin(secret, source=source, action="replacing the admin credential")
        except CredentialError as exc:
            raise CredentialError(f"this leaderboard already has an admin credential; {exc}") from None
    secret = new_token(ADMIN_PREFIX)
    if args.file is not None:
        path = write_secret_file(args.file, secret)  # refuses an existing file: the credential is never overwritten
        board.set_admin_secret(secret)
        if args.json:
            print_json({"database": board.display_url, "file": str(path)})
        else:
            print(f"admin credential for {board.display_url} written to {path} (mode 600).")
            print(f"Admin commands read it with: export {ENV_ADMIN_TOKEN_FILE}={path}")
        return 0
    board.set_admin_secret(secret)
    if args.json:
        print_json({"database": board.display_url, "admin_token": secret})
    else:
        print(f"admin credential for {board.display_url} (shown this once; only a hash is stored):")
        print(f"\n    {secret}\n")
        print(f"Keep it in a file only you can read (chmod 600) and export {ENV_ADMIN_TOKEN_FILE}=that file, or "
              f"set {ENV_ADMIN_TOKEN} for one command.")
    return 0


def run_register(args: argparse.Namespace) -> int:
    from ..benchmark.service import check_team_name

    name = check_team_name(args.team)
    info, token = _admin_board(args, "register").register_team(name)
    _print_token(args, info, token, "registered")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    info, token = _admin_board(args, "rotate").rotate_token(args.team)
    _print_token(args, info, token, "new token for")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    info = _admin_board(args, "revoke").revoke_token(args.team)
    if args.json:
        print_json(info.to_dict())
    else:
        print(f"revoked the token of {info.name!r}: its submissions are refused until "
              f"`benchmark rotate {_quote(info.name)}` (its {info.n_scored} scored submission(s) stay listed)")
    return 0


def run_withdraw(args: argparse.Namespace) -> int:
    return _moderated(args, "withdraw")


def run_reinstate(args: argparse.Namespace) -> int:
    return _moderated(args, "reinstate")


def _moderated(args: argparse.Namespace, action: str) -> int:
    board = _admin_board(args, action)
    row = board.withdraw(args.id, args.reason) if action == "withdraw" else board.reinstate(args.id)
    if args.json:
        print_json(row.to_dict())
    elif action == "withdraw":
        print(f"withdrew submission #{row.id} of {row.team!r} (public wMCC {_fmt(row.public_wmcc).strip()}) from the "
              f"standings: {row.error}; `benchmark reinstate {row.id}` puts it back")
    else:
        print(f"reinstated submission #{row.id} of {row.team!r} (public wMCC {_fmt(row.public_wmcc).strip()}): it "
              "counts in the standings again")
    return 0


def run_teams(args: argparse.Namespace) -> int:
    teams = _admin_board(args, "teams").team_list()
    if args.json:
        print_json([t.to_dict() for t in teams])
        return 0
    if not teams:
        print("no teams yet; register one with `benchmark register NAME`")
        return 0
    tw = max(4, *(len(t.name) for t in teams))
    print(f"{'id':>4}  {'team':<{tw}}  {'token':<9}  scored  registered (UTC)")
    for t in teams:
        print(f"{t.id:>4}  {t.name:<{tw}}  {t.token:<9}  {t.n_scored:>6}  {t.created_at:%Y-%m-%d %H:%M}")
    legacy = [t.name for t in teams if t.token == "none"]
    if legacy:
        print(f"\n{len(legacy)} team(s) date from before team tokens and cannot submit until you issue each a token: "
              + "; ".join(f"`benchmark rotate {_quote(n)}`" for n in legacy))
    return 0


def run_audit(args: argparse.Namespace) -> int:
    lines = _admin_board(args, "audit").audit_log(limit=args.limit or None, event=args.event, team=args.team)
    if args.json:
        print_json([e.to_dict() for e in lines])
        return 0
    if not lines:
        print("the audit log is empty")
        return 0
    for e in lines:
        first = (e.detail or "").strip().splitlines()
        what = first[-1][:160] if e.event == "internal_error" and first else (first[0][:160] if first else "")
        team = "" if e.team is None else f" team={e.team!r}"
        file = "" if e.file_name is None else f" file={e.file_name!r}"
        print(f"#{e.id:<5} {e.created_at:%Y-%m-%d %H:%M:%S}  {e.event:<14}{team}{file}  {what}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ..benchmark.definition import load_benchmark

    bid = None if args.all_benchmarks else load_benchmark().id
    board = _admin_board(args, "list --private") if args.private else _board(args)
    rows = board.submissions(bid, team=args.team)
    if args.json:
        print_json([r.to_dict(private=args.private) for r in rows])
        return 0
    if not rows:
        print("no submissions yet")
        return 0
    tw = max(4, *(len(r.team) for r in rows))
    head = f"{'id':>5}  {'time (UTC)':<19}  {'team':<{tw}}  {'status':<9}  {'public':>7}"
    head += f"  {'private':>7}" if args.private else ""
    print(head + "  files  file")
    for r in rows:
        line = f"{r.id:>5}  {r.created_at:%Y-%m-%d %H:%M:%S}  {r.team:<{tw}}  {r.status:<9}  {_fmt(r.public_wmcc)}"
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
    print(head + "  scored  last (UTC)")
    rank, seen, last = 0, 0, None
    for s in lines:
        mark = "ref" if s.is_reference else ""
        score = s.private_of_ranked if private else s.best_public
        if not s.is_reference and s.best_public is not None:
            seen += 1
            rank = rank if score == last and rank else seen  # equal scores share a rank (listed by who got there first)
            last = score
            mark = str(rank)
        line = f"{mark:>4}  {s.team:<{tw}}  {_fmt(s.best_public)}"
        line += f"  {_fmt(s.private_of_ranked)}" if private else ""
        last = "" if s.last_at is None else f"{s.last_at:%Y-%m-%d %H:%M}"
        print(line + f"  {s.n_scored:>6}  {last}")


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
    lines = _admin_board(args, "reveal").standings(bm.id, by="private")
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

    if args.file.exists() and not args.overwrite:
        from ..errors import ConfigError

        raise ConfigError(f"{args.file}: already exists; add --overwrite to replace it, or name another file")
    bid = None if args.all_benchmarks else load_benchmark().id
    n = _admin_board(args, "export-csv").export_csv(args.file, bid)
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
            "journal_mode": board.journal_mode(), "rate_limit": str(RateLimit.from_env()),
            "admin_credential": board.admin_configured(), "rows": board.counts()}
    if args.json:
        print_json(info)
    else:
        print(bm.describe())
        for k in ("folder", "database", "journal_mode", "rate_limit", "admin_credential", "rows"):
            print(f"{k}: {info[k]}")
        if not info["admin_credential"]:
            print("no admin credential yet: create it with `benchmark admin-init --file PATH` before registering teams")
        if info["rows"].get("teams_without_token"):
            print(f"{info['rows']['teams_without_token']} team(s) date from before team tokens: see `benchmark teams` "
                  "and issue each a token with `benchmark rotate TEAM`")
    return 0
