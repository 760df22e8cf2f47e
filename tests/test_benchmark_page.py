"""The Leaderboard page, headless (streamlit AppTest): no exception, reference rows shown, uploads scored or refused."""

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


def test_page_without_a_benchmark_explains_how_to_build_one():
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert any("benchmark create" in i.value for i in at.info)
    assert any(b.label.startswith("Build the demo benchmark") for b in at.button)


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


@pytest.mark.parametrize("kind", ["good", "not TIFF", "path traversal", "not an archive"])
def test_uploads_are_scored_or_refused_without_crashing(bench, tmp_path, monkeypatch, kind):
    from streamlit.delta_generator import DeltaGenerator

    from sr_core.benchmark.samples import bad_archives, noisy_submission

    if kind == "good":
        archive = noisy_submission(bench, tmp_path / "ours.zip", flip=0.05, seed=4)
    else:
        archive = bad_archives(bench, tmp_path / "bad", bomb_mib=1)[kind]
    monkeypatch.setattr(DeltaGenerator, "file_uploader", lambda self, *a, **k: FakeUpload(archive))

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="team").input("Page Team")
    next(b for b in at.button if b.label == "Submit and score").click()
    at.run()
    assert not at.exception, at.exception
    if kind == "good":
        assert any("Public weighted MCC" in s.value for s in at.success), [e.value for e in at.error]
        table = at.dataframe[0].value
        assert "Page Team" in set(table["team"])
        assert len(at.selectbox) == 1 and at.selectbox[0].value == "Page Team"  # its history is shown
    else:
        assert any("refused" in e.value for e in at.error)
        problems = at.dataframe[0].value
        assert list(problems.columns) == ["file", "problem"] and len(problems) >= 1
