"""One pooling rule for every class of counts, and one nearest-neighbour upsampler."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from sr_core.pooling import Poolable, pool_value


@dataclass(frozen=True)
class _Counts(Poolable):
    n: float = 0.0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(2))
    per: dict = field(default_factory=dict)
    pair: tuple = (0, 0)
    extra: object = None
    independent: bool = True
    kind: str = "a"


def test_pooling_rules_field_by_field():
    a = _Counts(1.0, np.array([1.0, 2.0]), {"x": 1, "y": (1, 2)}, (1, 2), None, True, "a")
    b = _Counts(2.0, np.array([3.0, 4.0]), {"y": (3, 4), "z": 5}, (3, 4), _Counts(7.0), False, "b")
    c = a + b
    assert c.n == 3.0 and c.hist.tolist() == [4.0, 6.0] and c.pair == (4, 6)
    assert c.per == {"x": 1, "y": (4, 6), "z": 5}  # a key on one side keeps its value
    assert c.extra.n == 7.0 and c.independent is False and c.kind == "a"
    assert sum([a, b]).n == 3.0  # sum() starts from 0
    assert a.__add__(3) is NotImplemented and pool_value(None, None) is None


def test_count_classes_pool_as_before():
    from sr_core.metrics import BoundaryCounts, ConfusionCounts, evaluate

    assert ConfusionCounts(1, 2, 3, 4) + ConfusionCounts(1, 1, 1, 1) == ConfusionCounts(2, 3, 4, 5)
    assert sum([ConfusionCounts(1, 0, 0, 0)] * 3) == ConfusionCounts(3, 0, 0, 0)
    assert BoundaryCounts(1, 2, 3, 4) + BoundaryCounts(1, 1, 1, 1) == BoundaryCounts(2, 3, 4, 5)
    rng = np.random.default_rng(0)
    t1, t2 = rng.uniform(size=(2, 40, 40)) > 0.5
    s1, s2 = evaluate(t1, ~t1), evaluate(t2, t2)
    pooled = s1 + s2
    assert pooled.name == "pooled" and pooled.n_patches == 2
    assert pooled.weighted == s1.weighted + s2.weighted
    assert pooled.boundary[1] == s1.boundary[1] + s2.boundary[1]


def test_scores_with_different_warnings_pool():
    # one patch warns, the next does not: pooling keeps every warning once (it once crashed the leaderboard)
    from sr_core.metrics import Scores, evaluate

    rng = np.random.default_rng(1)
    t = rng.uniform(size=(3, 40, 40)) > 0.5
    s1 = evaluate(t[0], np.zeros_like(t[0]))  # one class predicted: undefined MCC, warned
    s2, s3 = evaluate(t[1], t[1]), evaluate(t[2], ~t[2])
    assert s1.warnings and not s2.warnings
    pooled = Scores.pool([s1, s2, s3])
    assert pooled.n_patches == 3 and pooled.weighted == s1.weighted + s2.weighted + s3.weighted
    assert pool_value(("a", "b"), ("b", "c")) == ("a", "b", "c") and pool_value((1, 2), (3, 4)) == (4, 6)


def test_reliability_counts_refuse_mismatched_bins():
    from sr_core.inspect.calibration import ReliabilityCounts

    with pytest.raises(ValueError, match="bins"):
        ReliabilityCounts.empty(5) + ReliabilityCounts.empty(6)
    assert (ReliabilityCounts.empty(5) + ReliabilityCounts.empty(5)).n_bins == 5


def test_one_nearest_neighbour_upsampler():
    from sr_core.inspect import repeat_up
    from sr_core.resample import upsample_nearest
    from sr_core.simulate.sensor import upsample_nearest as sensor_upsample
    from sr_core.viz import upscale

    a = np.arange(6).reshape(2, 3)
    up = upsample_nearest(a, 2)
    assert up.shape == (4, 6) and (up[::2, ::2] == a).all() and (up[1::2, 1::2] == a).all()
    assert repeat_up is upscale is sensor_upsample is upsample_nearest
    assert upsample_nearest(a, 4).shape == (8, 12)  # default factor: 10 m -> 2.5 m
    cube = np.arange(2 * 2 * 3).reshape(2, 2, 3)
    assert upsample_nearest(cube, 3, 5, 7, axes=(1, 2)).shape == (2, 5, 7)  # cropped to the fine grid
