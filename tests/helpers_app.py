"""Small labelled patches served to the app as real data, shared by the AppTest suites and the browser test (the
``served`` fixture in conftest.py writes them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from sr_core import BBox, Patch
from sr_core.patch import PatchInfo

TIMEOUT = 120  #: seconds an AppTest run may take (a loaded CI machine)


def app_patch(name: str, seed: int) -> Patch:
    """A 12 × 16 px labelled patch (4 dates, two rectangular parcels, clouds, SCL), seeded."""
    rng = np.random.default_rng(seed)
    T, H, W = 4, 12, 16
    truth = np.zeros((4 * H, 4 * W), bool)
    truth[4:20, 6:30] = True
    truth[26:44, 36:60] = True
    bands = rng.uniform(0.02, 0.3, (T, H, W, 12)).astype(np.float32)
    return Patch(
        bands=bands, timestamps=[datetime(2019, 4, 1) + timedelta(days=12 * i) for i in range(T)],
        bbox=BBox(540000.0, 5120000.0, 540000.0 + 10 * W, 5120000.0 + 10 * H),
        cloud_prob=rng.uniform(0, 0.3, (T, H, W)).astype(np.float32), cloud_mask=rng.uniform(0, 1, (T, H, W)) > 0.9,
        is_data=np.ones((T, H, W), bool), scl=np.full((T, H, W), 4, np.uint8), cultivated=truth,
        not_declared=np.zeros_like(truth), info=PatchInfo(name=name),
    )


def write_served(root: Path) -> list[Path]:
    """eopatch-01 and eopatch-02 written under ``root``."""
    from sr_core.io import write_eopatch

    return [write_eopatch(app_patch(f"eopatch-{i:02d}", i), root / f"eopatch-{i:02d}") for i in (1, 2)]
