"""The plain counters behind /metrics: a histogram's buckets, and a quantile read from them."""
from __future__ import annotations

import pytest

from actors.tallies import Buckets, quantile


def test_a_value_on_a_bound_falls_in_that_bound_s_bucket_and_larger_ones_in_inf() -> None:
    buckets = Buckets((0.001, 0.01))
    for seconds in (0.0005, 0.001, 0.005, 0.01, 3.0):
        buckets.observe(seconds)
    assert buckets.counts == [2, 2, 1]
    assert buckets.total == pytest.approx(3.0165)


def test_the_quantile_is_interpolated_inside_its_bucket() -> None:
    bounds = (0.001, 0.002, 0.004)
    assert quantile(bounds, [0, 0, 0, 0], 0.99) is None
    assert quantile(bounds, [100, 0, 0, 0], 0.5) == pytest.approx(0.0005)
    assert quantile(bounds, [50, 50, 0, 0], 0.75) == pytest.approx(0.0015)
    assert quantile(bounds, [98, 0, 2, 0], 0.99) == pytest.approx(0.003)
    assert quantile(bounds, [90, 0, 0, 10], 0.99) == 0.004  # past the last bound: the last bound
