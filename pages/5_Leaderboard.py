"""Leaderboard: the permanent benchmark — download the inputs, submit an archive, see it scored at once, the standing.

Thin page over :mod:`sr_core.benchmark` (the CLI ``python -m sr_core benchmark ...`` goes through the same
``service.submit``). Labels, the seed and which patches form the private half are never shown here. A submission
needs the team's token (a password field, cleared once the form is sent, never shown again); refused uploads go
to the admin's audit log, not to the tables here. No admin action (register, rotate, revoke, reveal, export) is
reachable from this page: those are CLI commands that need the admin credential.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ui.common import Keys, from_the_server, page_setup, redact, shown, sidebar

# Page-local session-state keys (not in ui.common.Keys yet; the lead may move them there).
RESULT_KEY = "leaderboard_last_result"
HISTORY_KEY = "leaderboard_history_team"
UPLOAD_KEY = "leaderboard_upload"
TOKEN_KEY = "leaderboard_token"  #: prefix of the password field's key; a new key after each submission empties it
TOKEN_NONCE_KEY = "leaderboard_token_nonce"
LAST_TEAM_KEY = "leaderboard_last_team"  #: the team name typed last (the form is cleared on submit)
MAX_DOWNLOAD_MB = 1024  #: larger inputs archives (the full-size benchmark: ~130 MB per patch) are handed out directly

page_setup("Leaderboard", "🏆")
st.title("🏆 Benchmark leaderboard")


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Show any failure of one section as a message instead of crashing the page."""
    from sr_core.errors import SRCoreError

    try:
        yield
    except SRCoreError as exc:
        st.error(f"{what}: {shown(exc)}")
    except Exception as exc:  # the page must survive anything a section meets
        st.error(f"{what} failed unexpectedly ({type(exc).__name__}: {shown(exc)}). The rest of the page still works.")


def load_benchmark_or_none() -> Any:
    from sr_core.benchmark.definition import BenchmarkMissingError, load_benchmark

    try:
        return load_benchmark()
    except BenchmarkMissingError:
        return None


bench = None
with guarded("Reading the benchmark"):
    bench = load_benchmark_or_none()

def hosted() -> bool:
    """Whether an organiser runs this leaderboard (an admin credential exists): then nothing is built from here."""
    from sr_core.benchmark.store import Leaderboard

    try:
        return Leaderboard().admin_configured()
    except Exception:  # an unreachable database: do not offer to build anything either
        return True


if bench is None:
    from sr_core.benchmark.definition import DEFAULT_N, DEFAULT_SIZE

    st.info(
        "No benchmark has been built on this machine yet. An organiser builds it once with "
        "`python -m sr_core benchmark create` (default: the demo set below; `--n 25 --size 500` for the full-size one).",
        icon="🛠️",
    )
    # an organiser's action: offered to a browser on the server itself while no admin is set up, never to visitors
    label = f"Build the demo benchmark ({DEFAULT_N} simulated patches of {DEFAULT_SIZE} px)"
    if not hosted() and from_the_server() and st.button(label, key="lb_create"):
        with guarded("Building the benchmark"), st.spinner("Simulating the test patches and scoring the reference rows …"):
            from sr_core.benchmark.definition import create_benchmark
            from sr_core.benchmark.service import compute_references

            bm = create_benchmark()
            compute_references(benchmark=bm)
            st.rerun()
    sidebar()
    st.stop()

from sr_core.benchmark.store import Leaderboard, RateLimit  # noqa: E402

st.markdown(
    f"**{bench.describe()}**. Predict every patch and submit one `eopatch-XX.tif` per patch (one band, uint8, "
    f"values 0/1, {4 * bench.size} × {4 * bench.size} px, EPSG:32633, bounds = the patch bbox) packed as `.zip` or "
    "`.tar.gz`. The score is the pooled **weighted MCC** (thin gaps and small parcels count most). You see the public "
    "half's score at once; the private half is scored too and kept for the final standing."
)
st.warning("These are **SIMULATED** patches from sr_core's farmland simulator, not Sentinel-2 observations.", icon="🧪")

board: Leaderboard | None = None
limit: RateLimit | None = None
with guarded("Opening the leaderboard database"):
    board = Leaderboard()
    limit = RateLimit.from_env()

# -- 1. inputs ---------------------------------------------------------------------------------------------------------
st.header("1 · Download the test inputs")
with guarded("Preparing the inputs archive"):
    from sr_core.benchmark.definition import INPUTS_ZIP, inputs_archive

    zip_path = bench.folder / INPUTS_ZIP
    if not zip_path.is_file():
        with st.spinner("Packing the inputs (labels removed) …"):
            zip_path = inputs_archive(bench)
    size_mb = zip_path.stat().st_size / 1024**2
    if size_mb > MAX_DOWNLOAD_MB:
        st.info(f"The inputs archive is {size_mb / 1024:.1f} GB, too large to serve through the browser. The organisers "
                "hand it out directly (`python -m sr_core benchmark inputs --zip --out DIR` writes a copy).", icon="💾")
    else:
        st.download_button(
            f"⬇️ Test inputs ({bench.n} EOPatch folders, no labels, {size_mb:.0f} MB)",
            data=lambda: zip_path.read_bytes(),
            file_name=f"benchmark-inputs-{bench.id}.zip",
            mime="application/zip",
            on_click="ignore",
            key="lb_download",
        )
    st.caption("Same as `python -m sr_core benchmark inputs --out DIR`. eo-learn 1.x layout, readable by "
               "`sr_core.load_eopatch` and eo-learn.")

# -- 2. submit ---------------------------------------------------------------------------------------------------------
st.header("2 · Submit")
# The token field is emptied after every submission by a new key (below); the team name and the chosen archive stay,
# so that a refusal (a mistyped token) does not make the team enter everything again (clear_on_submit wiped both).
with st.form("lb_submit_form", clear_on_submit=False):
    c1, c2, c3 = st.columns([1, 1, 2])
    team = c1.text_input("Team name", key=Keys.TEAM, max_chars=40, placeholder="e.g. EagleEyes",
                         value=st.session_state.get(LAST_TEAM_KEY, ""))
    token_key = f"{TOKEN_KEY}_{st.session_state.get(TOKEN_NONCE_KEY, 0)}"
    token = c2.text_input("Team token", key=token_key, type="password", max_chars=200, placeholder="srt_…",
                          help="The secret token the organisers gave your team when they registered it. It is checked "
                               "and forgotten: you type it for every submission.")
    upload = c3.file_uploader("Submission archive (.zip or .tar.gz of eopatch-XX.tif)", type=["zip", "gz", "tgz"],
                              key=UPLOAD_KEY)
    sent = st.form_submit_button("Submit and score", type="primary")
st.caption(f"Rate limit: {limit or 'n/a'} (scored submissions per team). Resubmitting an identical "
           "archive is detected and not counted twice. Archives are checked before anything is unpacked (no paths "
           "outside the upload, no links, bounded size). No token yet, or lost it? The organisers register teams "
           "and replace lost tokens.")


def run_submission(team_name: str, team_token: str, up: Any) -> dict[str, Any]:
    """Store the upload in a scratch file and send it through the shared service; every failure becomes a message."""
    from sr_core.benchmark.service import submit
    from sr_core.errors import SRCoreError
    from sr_core.paths import uploads_dir

    name = Path(up.name).name
    suffix = ".tar.gz" if name.lower().endswith((".tar.gz", ".tgz")) else Path(name).suffix or ".zip"
    try:
        with tempfile.TemporaryDirectory(prefix="leaderboard-", dir=uploads_dir()) as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(up.getvalue())
            res = submit(path, team_name, token=team_token, benchmark=bench, board=board, file_name=name)
        return res.to_dict()  # never holds the token
    except SRCoreError as exc:
        return {"status": "error", "message": redact(exc), "problems": []}
    except Exception as exc:  # never crash the page
        return {"status": "error", "message": f"the submission could not be processed ({type(exc).__name__}: {redact(exc)})",
                "problems": []}


if sent:
    if board is None:
        st.session_state[RESULT_KEY] = {"status": "error", "message": "the leaderboard database is unavailable",
                                        "problems": []}
    elif upload is None:
        st.session_state[RESULT_KEY] = {"status": "error", "message": "choose an archive to upload first", "problems": []}
    else:
        with st.spinner("Checking the token, validating and scoring …"):
            st.session_state[RESULT_KEY] = run_submission(team, token, upload)
        if st.session_state[RESULT_KEY].get("status") in ("scored", "duplicate"):
            st.session_state[HISTORY_KEY] = st.session_state[RESULT_KEY]["team"]
    st.session_state[LAST_TEAM_KEY] = team
    # forget the token: the field gets a new, empty key and the old key's state is dropped, then redraw at once
    st.session_state[TOKEN_NONCE_KEY] = st.session_state.get(TOKEN_NONCE_KEY, 0) + 1
    st.session_state.pop(token_key, None)
    del token
    st.rerun()

result = st.session_state.get(RESULT_KEY)
if result:
    status = result.get("status")
    if status == "scored":
        st.success(f"**Public weighted MCC: {result['public_wmcc']:.4f}** — {shown(result['message'])}", icon="✅")
    elif status == "duplicate":
        st.info(shown(result["message"]), icon="♻️")
    elif status == "withdrawn":
        st.error(shown(result["message"]), icon="🚫")
    elif status == "rate_limited":
        st.warning(shown(result["message"]), icon="⏳")
    else:
        st.error(shown(result["message"]), icon="❌")
    if result.get("problems"):  # a team reads these: no server path (the library names files; redact() is the net)
        rows = []
        for line in map(redact, result["problems"]):
            file, sep, problem = line.partition(": ")
            rows.append({"file": file if sep and file.endswith(".tif") else "(archive)",
                         "problem": problem if sep and file.endswith(".tif") else line})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

# -- 3. standings ------------------------------------------------------------------------------------------------------
st.header("3 · Standing (public half)")
standings = []
with guarded("Reading the leaderboard"):
    if board is not None:
        standings = board.standings(bench.id)
        if not standings:
            st.info("No submissions yet: be the first.")
        else:
            rank, seen, last, table = 0, 0, None, []
            for s in standings:
                if not s.is_reference and s.best_public is not None:
                    seen += 1
                    rank = rank if s.best_public == last and rank else seen  # a tie shares its rank
                    last = s.best_public
                table.append({
                    "rank": "★" if s.is_reference else (str(rank) if s.best_public is not None else "–"),
                    "team": s.team,
                    "kind": "reference" if s.is_reference else "team",
                    "best public wMCC": s.best_public,
                    "submissions": s.n_scored,
                    "last submission (UTC)": None if s.last_at is None else pd.Timestamp(s.last_at),
                })  # fmt: skip
            st.dataframe(
                pd.DataFrame(table), hide_index=True, width="stretch", key="lb_table",
                column_config={
                    "best public wMCC": st.column_config.NumberColumn(format="%.4f"),
                    "last submission (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                },
            )  # fmt: skip
            st.caption("★ rows are references scored on the same patches: the bundled model and the baselines "
                       "(`python -m sr_core benchmark references`). Teams are ranked by their best public score; "
                       "the final standing uses the private half of that same submission. A team appears here "
                       "after its first scored submission.")
        withdrawn = board.submissions(bench.id, status="withdrawn")
        if withdrawn:
            with st.expander(f"{len(withdrawn)} submission(s) withdrawn by the organisers (not in the standing)"):
                st.dataframe(pd.DataFrame([{
                    "submission": f"#{r.id}", "team": r.team, "time (UTC)": pd.Timestamp(r.created_at),
                    "public wMCC": r.public_wmcc,
                    "reason": r.withdrawal_reason,
                } for r in withdrawn]), hide_index=True, width="stretch", column_config={
                    "public wMCC": st.column_config.NumberColumn(format="%.4f"),
                    "time (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                })  # fmt: skip

# -- 4. history --------------------------------------------------------------------------------------------------------
st.header("4 · A team's history")
with guarded("Drawing the history"):
    teams = [s.team for s in standings if not s.is_reference]
    if board is not None:  # a team whose every submission was withdrawn keeps its history
        teams += sorted({r.team for r in board.submissions(bench.id, status="withdrawn")} - set(teams))
    if board is None or not teams:
        st.caption("Histories appear once teams have submitted.")
    else:
        default = st.session_state.get(HISTORY_KEY)
        idx = teams.index(default) if default in teams else 0
        pick = st.selectbox("Team", teams, index=idx, key="lb_history_pick")
        rows = board.submissions(bench.id, team=pick)
        scored = [r for r in rows if r.status == "scored"]
        pulled = [r for r in rows if r.status == "withdrawn"]
        if scored:
            import altair as alt

            hist = pd.DataFrame({"time (UTC)": [pd.Timestamp(r.created_at) for r in scored],
                                 "public wMCC": [r.public_wmcc for r in scored],
                                 "submission": [f"#{r.id} {r.file_name}" for r in scored]})
            hist["best so far"] = hist["public wMCC"].cummax()
            base = alt.Chart(hist).encode(x=alt.X("time (UTC):T"))
            chart = base.mark_line(point=True).encode(
                y=alt.Y("public wMCC:Q", scale=alt.Scale(zero=False)), tooltip=["submission", "time (UTC):T",
                                                                              alt.Tooltip("public wMCC:Q", format=".4f")])
            chart += base.mark_line(strokeDash=[4, 3], color="gray").encode(y="best so far:Q")
            refs = pd.DataFrame([{"reference": s.team, "public wMCC": s.best_public} for s in standings
                                 if s.is_reference and s.best_public is not None])
            if not refs.empty:
                chart += alt.Chart(refs).mark_rule(strokeDash=[2, 2], color="firebrick").encode(
                    y="public wMCC:Q", tooltip=["reference", alt.Tooltip("public wMCC:Q", format=".4f")])
            st.altair_chart(chart, width="stretch")
            st.caption("Points: each scored submission; grey dashes: best so far; red rules: reference rows.")
        for r in pulled:
            st.warning(f"Submission #{r.id} ({shown(r.file_name)}, {r.created_at:%Y-%m-%d %H:%M} UTC, public wMCC "
                       f"{r.public_wmcc:.4f}) was withdrawn by the organisers and does not count: "
                       f"{shown(r.withdrawal_reason or '')}", icon="🚫")

sidebar()
