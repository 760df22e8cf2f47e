"""Shared fixtures. Tests that need ../shared/data skip with a clear reason when it is absent."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SR_SHARED_DATA", REPO.parent / "shared" / "data"))
REAL = SHARED_DATA / "real"
REAL_L1C = REAL / "slovenia-forest-l1c-5frames"
REAL_CHALLENGE = REAL / "slovenia-forest-l1c-5frames-challenge-layout"
REAL_SERIES = REAL / "slovenia-forest-2015-2017-timeseries"
CHALLENGE_META = SHARED_DATA / "challenge"
# The library never looks for ../shared by itself; the tests hand it the folder (real forest probe).
os.environ.setdefault("SR_SHARED_DATA", str(SHARED_DATA))


def need(path: Path) -> Path:
    """Skip the calling test, naming the missing path, when shared data is absent."""
    if not path.exists():
        pytest.skip(f"shared fixture {path} is absent (the project expects ../shared/data beside the checkout)")
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test writes under its own SR_CORE_HOME, never into the user's data folder."""
    monkeypatch.setenv("SR_CORE_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def small_patch():
    """A tiny, fully specified patch with labels (random but seeded)."""
    from sr_core import BBox, Patch

    rng = np.random.default_rng(0)
    T, H, W = 3, 8, 10
    ts = [datetime(2019, 4, 1) + timedelta(days=10 * i) for i in range(T)]
    return Patch(
        bands=rng.uniform(0, 0.5, (T, H, W, 12)).astype(np.float32),
        timestamps=ts,
        bbox=BBox(500000.0, 5100000.0, 500000.0 + 10 * W, 5100000.0 + 10 * H),
        cloud_prob=rng.uniform(0, 1, (T, H, W)).astype(np.float32),
        cloud_mask=rng.uniform(0, 1, (T, H, W)) > 0.8,
        is_data=np.ones((T, H, W), bool),
        cultivated=rng.uniform(0, 1, (4 * H, 4 * W)) > 0.5,
        not_declared=np.zeros((4 * H, 4 * W), bool),
    )


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Two small labelled patches (tests/helpers_app.py) served to the app as real data, the demo build off."""
    from tests.helpers_app import write_served

    paths = write_served(tmp_path / "real")
    monkeypatch.setenv("SR_CORE_DATA", str(tmp_path / "real"))
    monkeypatch.setenv("SR_CORE_DEMO", "off")
    import streamlit as st

    st.cache_data.clear()  # the catalogue is cached per process: forget the previous test's folders
    return paths


_MAIN = __import__("sys").modules.get("__main__")


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest leaves the last page script installed as ``__main__``; a later test that spawns processes
    (Dask workers) would then re-run that page in every child. Put pytest's own ``__main__`` back after each test."""
    import sys

    yield
    if _MAIN is not None and sys.modules.get("__main__") is not _MAIN:
        sys.modules["__main__"] = _MAIN


# -- leaderboard databases: SQLite and PostgreSQL ---------------------------------------------------------------------
PG_URL_ENV = "SR_CORE_TEST_PG_URL"  #: set by .ci/run once it has started a throw-away PostgreSQL server


def _pg_base_url() -> str:
    """The PostgreSQL test server's URL, or skip: only when no server was made available (none installable)."""
    url = os.environ.get(PG_URL_ENV, "").strip()
    if not url:
        pytest.skip(f"no PostgreSQL server: {PG_URL_ENV} is not set (.ci/run installs Debian's postgresql and starts a "
                    "throw-away cluster; where that is impossible this half is skipped)")
    pytest.importorskip("psycopg", reason="the psycopg driver (requirements.txt) is not installed")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def leaderboard_url(request, tmp_path):
    """A fresh, empty leaderboard database URL: a SQLite file, or a schema of its own on the PostgreSQL server named
    by $SR_CORE_TEST_PG_URL (selected through the connection's search_path, dropped afterwards). A set variable
    whose server does not answer fails the test: CI promised a server."""
    from sr_core.benchmark.store import dispose_engines

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lb.sqlite'}"
        dispose_engines()
        return
    import uuid

    import sqlalchemy as sa

    base = sa.engine.make_url(_pg_base_url())
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"{PG_URL_ENV} is set but its PostgreSQL server does not answer: {str(exc.orig).splitlines()[0]}")
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
