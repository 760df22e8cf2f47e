"""The Leaderboard page, headless (streamlit AppTest): no exception, reference rows shown, uploads scored or refused,
the team token asked for in a password field, checked, and never shown again; no admin action on the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_core.benchmark.store import dispose_engines

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "5_Leaderboard.py")
pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402


@pytest.fixture(autouse=True)
def _close_db():
    yield
    dispose_engines()


class FakeUpload:
    """What st.file_uploader returns: a name and the bytes."""

    def __init__(self, path: Path) -> None:
        self.name = path.name
        self._data = path.read_bytes()

    def getvalue(self) -> bytes:
        return self._data


@pytest.fixture
def bench():
    from sr_core.benchmark.definition import create_benchmark
    from sr_core.benchmark.service import compute_references

    bm = create_benchmark(4, 32, 21)  # in this test's $SR_CORE_HOME
    compute_references(["ndvi"], benchmark=bm)
    return bm


def test_page_without_a_benchmark_explains_how_to_build_one(monkeypatch):
    import types

    import streamlit

    # the organiser's own browser on the server (Streamlit reports no address for localhost)
    monkeypatch.setattr(streamlit, "context", types.SimpleNamespace(ip_address=None, headers={"Host": "localhost:8501"}))
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert any("benchmark create" in i.value for i in at.info)
    assert any(b.label.startswith("Build the demo benchmark") for b in at.button)


def test_a_remote_visitor_gets_no_build_button(monkeypatch):
    """Building the benchmark is an organiser's action: before any admin exists it is offered to a browser on the
    server itself only, not to a visitor from elsewhere (nor through a reverse proxy)."""
    import types

    import streamlit

    for ip, headers in (("203.0.113.9", {"Host": "lb.example.org"}), ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"})):
        monkeypatch.setattr(streamlit, "context", types.SimpleNamespace(ip_address=ip, headers=headers))
        at = AppTest.from_file(PAGE, default_timeout=30).run()
        assert not at.exception
        assert any("benchmark create" in i.value for i in at.info) and not at.button


def test_a_hosted_leaderboard_without_a_benchmark_offers_no_build_button():
    from sr_core.benchmark.store import Leaderboard

    Leaderboard().set_admin_secret("sra_x")  # an organiser runs it: building is theirs, from the CLI
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert any("benchmark create" in i.value for i in at.info) and not at.button


def test_page_shows_the_table_with_reference_rows(bench):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    df = at.dataframe[0].value
    row = df[df["team"] == "★ baseline:ndvi"].iloc[0]
    assert row["kind"] == "reference" and row["rank"] == "★" and 0 < row["best public wMCC"] < 1
    assert any("SIMULATED" in w.value for w in at.warning)
    text = " ".join(m.value for m in at.markdown)
    assert bench.id in text and str(bench.seed) not in text  # the seed (it regenerates the labels) is never shown
    assert not any(name in text for name in bench.private)  # nor which patches are private


def page_token() -> str:
    from sr_core.benchmark.store import Leaderboard

    return Leaderboard().register_team("Page Team")[1]


def token_field(at: AppTest):
    return next(t for t in at.text_input if t.label == "Team token")


def send(at: AppTest, team: str, token: str) -> AppTest:
    at.text_input(key="team").input(team)
    token_field(at).input(token)
    next(b for b in at.button if b.label == "Submit and score").click()
    return at.run()


@pytest.mark.parametrize("kind", ["good", "not TIFF", "path traversal", "not an archive"])
def test_uploads_are_scored_or_refused_without_crashing(bench, tmp_path, monkeypatch, kind):
    from streamlit.delta_generator import DeltaGenerator

    from sr_core.benchmark.samples import bad_archives, noisy_submission

    if kind == "good":
        archive = noisy_submission(bench, tmp_path / "ours.zip", flip=0.05, seed=4)
    else:
        archive = bad_archives(bench, tmp_path / "bad", bomb_mib=1)[kind]
    monkeypatch.setattr(DeltaGenerator, "file_uploader", lambda self, *a, **k: FakeUpload(archive))
    token = page_token()

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert token_field(at).proto.type == token_field(at).proto.PASSWORD
    send(at, "Page Team", token)
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    if kind == "good":
        assert any("Public weighted MCC" in s.value for s in at.success), [e.value for e in at.error]
        assert "Page Team" in set(table["team"])
        assert len(at.selectbox) == 1 and at.selectbox[0].value == "Page Team"  # its history is shown
    else:
        assert any("refused" in e.value for e in at.error)
        problems = at.dataframe[0].value
        assert list(problems.columns) == ["file", "problem"] and len(problems) >= 1
        assert "Page Team" not in set(table["team"]) and "refused" not in table.columns  # no public trace
    # the token is gone from the form and from everything the page keeps or shows
    assert token_field(at).value == ""
    assert at.text_input(key="team").value == "Page Team"
    assert "leaderboard_last_team" in repr(at.session_state)  # the repr lists every kept value, widgets included
    assert token not in repr(at.session_state)
    shown = " ".join(str(e.value) for kind in ("markdown", "success", "error", "info", "warning", "caption")
                     for e in getattr(at, kind))
    assert token not in shown


@pytest.mark.parametrize(("token", "message"), [("", "no team token given"), ("srt_guess", "do not match")])
def test_a_missing_or_wrong_token_is_refused_on_the_page(bench, tmp_path, monkeypatch, token, message):
    from streamlit.delta_generator import DeltaGenerator

    from sr_core.benchmark.samples import noisy_submission
    from sr_core.benchmark.store import Leaderboard

    archive = noisy_submission(bench, tmp_path / "ours.zip", flip=0.05, seed=4)
    monkeypatch.setattr(DeltaGenerator, "file_uploader", lambda self, *a, **k: FakeUpload(archive))
    page_token()
    at = send(AppTest.from_file(PAGE, default_timeout=60).run(), "Page Team", token)
    assert not at.exception, at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert "Page Team" not in set(at.dataframe[-1].value["team"])
    assert Leaderboard().submissions() and all(r.is_reference for r in Leaderboard().submissions())


def test_the_page_offers_no_admin_action(bench):
    from sr_core.benchmark.store import Leaderboard

    Leaderboard().set_admin_secret("sra_x")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    labels = " ".join(b.label for b in at.button).lower()
    assert labels == "submit and score"
    text = " ".join(m.value for m in at.markdown).lower()
    assert "private standing" not in text and "export" not in labels


def test_withdrawn_submissions_are_out_of_the_standing_and_said_with_their_reason(bench, tmp_path, monkeypatch):
    from streamlit.delta_generator import DeltaGenerator

    from sr_core.benchmark.samples import noisy_submission
    from sr_core.benchmark.service import submit
    from sr_core.benchmark.store import Leaderboard

    lb = Leaderboard()
    token = page_token()
    good = noisy_submission(bench, tmp_path / "good.zip", flip=0.02, seed=5)
    worse = noisy_submission(bench, tmp_path / "worse.zip", flip=0.20, seed=6)
    best = submit(good, "Page Team", token=token, benchmark=bench, board=lb)
    kept = submit(worse, "Page Team", token=token, benchmark=bench, board=lb)
    gone = submit(noisy_submission(bench, tmp_path / "gone.zip", flip=0.05, seed=7), "Gone", benchmark=bench,
                  board=lb, token=lb.register_team("Gone")[1])
    lb.withdraw(best.submission_id, "labels copied from the public demo")
    lb.withdraw(gone.submission_id, "second account of another team")

    monkeypatch.setattr(DeltaGenerator, "file_uploader", lambda self, *a, **k: FakeUpload(good))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    standing, pulled = at.dataframe[0].value, at.dataframe[1].value
    assert "Gone" not in set(standing["team"])
    page_row = standing[standing["team"] == "Page Team"].iloc[0]
    assert page_row["best public wMCC"] == pytest.approx(kept.public_wmcc) and page_row["submissions"] == 1
    assert sorted(pulled["submission"]) == sorted([f"#{best.submission_id}", f"#{gone.submission_id}"])
    assert set(pulled["reason"]) == {"labels copied from the public demo", "second account of another team"}
    # the history still offers the team whose only row was withdrawn, and says why for each withdrawn row
    assert at.selectbox[0].options == ["Page Team", "Gone"]
    assert any("labels copied from the public demo" in w.value and f"#{best.submission_id}" in w.value
               for w in at.warning)
    # sending the withdrawn archive again: refused, with the reason, and nothing new recorded
    send(at, "Page Team", token)
    assert not at.exception, at.exception
    assert any("labels copied from the public demo" in e.value and "not scored again" in e.value for e in at.error)
    assert len(lb.submissions(bench.id, team="Page Team")) == 2
