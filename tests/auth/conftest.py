"""A clock the tests move by hand, for every time-dependent auth part."""
from __future__ import annotations

import pytest


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)
