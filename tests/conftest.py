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


_MAIN = __import__("sys").modules.get("__main__")


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest leaves the last page script installed as ``__main__``; a later test that spawns processes
    (Dask workers) would then re-run that page in every child. Put pytest's own ``__main__`` back after each test."""
    import sys

    yield
    if _MAIN is not None and sys.modules.get("__main__") is not _MAIN:
        sys.modules["__main__"] = _MAIN
