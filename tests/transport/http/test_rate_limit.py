"""Token buckets per (box, client, class): nobody's burst costs anyone else, nor another class."""
from __future__ import annotations

import pytest

from tests.conftest import FakeClock
from transport.http.rate_limit import DEFAULT_CLASSES, Bucket, RateLimiter, Unlimited, command_class

PANEL, SCOREBOARD = "10.0.0.2", "10.0.0.3"


@pytest.fixture
def limiter(clock: FakeClock) -> RateLimiter:
    return RateLimiter(clock=clock)


def allowed(limiter: RateLimiter, n: int, box: int = 1, client: str = PANEL, cls: str = "sync") -> int:
    return sum(limiter.take(box, client, cls) is None for _ in range(n))


@pytest.mark.parametrize(
    "command, cls",
    [
        ("TIMER_SYNC", "sync"),
        ("PROGRESS_UPDATE", "score"),
        ("SUBMIT_SCORE", "score"),
        ("START_TIMER", "score"),
        ("STOP_TIMER", "score"),
        ("RESUME_TIMER", "score"),
        ("REGISTER_TIME", "score"),
        ("ACTIVE_CLIMBER", "relay"),
        ("REQUEST_ACTIVE_COMPETITOR", "relay"),
        ("REQUEST_STATE", "relay"),
        ("INIT_ROUTE", "setup"),
        ("RESET_BOX", "setup"),
        ("SET_TIME_TIEBREAK_DECISION", "setup"),
        ("SOMETHING_NEW", "setup"),
    ],
)
def test_command_classes(command: str, cls: str) -> None:
    assert command_class(command) == cls
    assert cls in DEFAULT_CLASSES


def test_default_classes_cannot_be_changed_at_runtime() -> None:
    with pytest.raises(TypeError):
        DEFAULT_CLASSES["sync"] = Bucket(1, 1)  # type: ignore[index]


def test_burst_then_refusal_with_the_time_until_the_next_token(limiter: RateLimiter) -> None:
    assert allowed(limiter, 30) == 30, "sync burst is 30"
    wait = limiter.take(1, PANEL, "sync")
    assert wait == pytest.approx(0.1), "sync refills at 10 tokens/s"


def test_refill_over_time(limiter: RateLimiter, clock: FakeClock) -> None:
    allowed(limiter, 30)
    clock.advance(0.5)
    assert allowed(limiter, 10) == 5
    clock.advance(3600)
    assert allowed(limiter, 100) == 30, "refill stops at the burst size"


def test_refused_requests_spend_nothing(limiter: RateLimiter, clock: FakeClock) -> None:
    allowed(limiter, 30)
    assert allowed(limiter, 50) == 0
    clock.advance(0.1)
    assert limiter.take(1, PANEL, "sync") is None, "a client honouring Retry-After gets through"


def test_a_timer_sync_flood_never_refuses_scoring(limiter: RateLimiter) -> None:
    allowed(limiter, 1000, cls="sync")
    assert allowed(limiter, 60, cls="score") == 60
    assert allowed(limiter, 30, cls="relay") == 30
    assert allowed(limiter, 30, cls="setup") == 30


def test_boxes_and_clients_are_independent(limiter: RateLimiter) -> None:
    allowed(limiter, 1000, box=1, client=PANEL, cls="score")
    assert limiter.take(1, PANEL, "score") is not None
    assert limiter.take(2, PANEL, "score") is None, "the same panel on another box"
    assert limiter.take(1, SCOREBOARD, "score") is None, "another client on the same box"


def test_a_steady_one_hertz_panel_on_fifteen_boxes_is_never_refused(limiter: RateLimiter, clock: FakeClock) -> None:
    for _ in range(600):  # ten minutes of timer syncs plus a score per box every second
        for box in range(15):
            assert limiter.take(box, PANEL, "sync") is None
            assert limiter.take(box, SCOREBOARD, "sync") is None
            assert limiter.take(box, PANEL, "score") is None
        clock.advance(1)


def test_unknown_class_is_a_programming_error(limiter: RateLimiter) -> None:
    with pytest.raises(KeyError):
        limiter.take(1, PANEL, "bogus")


def test_full_buckets_are_evicted_lazily(limiter: RateLimiter, clock: FakeClock) -> None:
    for client in range(1000):
        limiter.take(1, f"c{client}", "sync")
    assert len(limiter) == 1000
    clock.advance(1)  # one token spent at 10/s is back after 0.1 s
    limiter.take(2, "late", "sync")
    assert len(limiter) == 1


def test_memory_is_bounded(clock: FakeClock) -> None:
    limiter = RateLimiter(clock=clock, max_keys=100)
    for client in range(1000):
        allowed(limiter, 30, client=f"c{client}")
    assert len(limiter) == 100
    assert limiter.take(1, "c999", "sync") is not None, "the most recent clients keep their state"


def test_custom_classes(clock: FakeClock) -> None:
    limiter = RateLimiter({"tiny": Bucket(rate_per_s=0.5, burst=1)}, clock=clock)
    assert limiter.take(1, PANEL, "tiny") is None
    assert limiter.take(1, PANEL, "tiny") == pytest.approx(2.0)


def test_unlimited_allows_everything() -> None:
    assert all(Unlimited().take(1, PANEL, "sync") is None for _ in range(1000))
