"""Failed logins lock one (account, address) pair for a while, many failures lock one address for
every name, and nobody else is locked out."""
from __future__ import annotations

import pytest

from tests.conftest import FakeClock
from transport.http.login_throttle import LoginThrottle

ATTACKER, ADMIN_LAPTOP = "10.0.0.66", "10.0.0.2"


@pytest.fixture
def throttle(clock: FakeClock) -> LoginThrottle:
    return LoginThrottle(max_failures=5, window_s=300, lockout_s=60, clock=clock)


def fail(throttle: LoginThrottle, times: int, user: str = "admin", ip: str = ATTACKER) -> None:
    for _ in range(times):
        throttle.failed(user, ip)


def test_four_failures_do_not_lock(throttle: LoginThrottle) -> None:
    fail(throttle, 4)
    assert throttle.retry_after("admin", ATTACKER) is None


def test_five_failures_lock_that_user_and_address_for_a_minute(throttle: LoginThrottle, clock: FakeClock) -> None:
    fail(throttle, 5)
    assert throttle.retry_after("admin", ATTACKER) == pytest.approx(60)
    clock.advance(45)
    assert throttle.retry_after("admin", ATTACKER) == pytest.approx(15)


def test_the_lock_does_not_reach_another_address_or_another_user(throttle: LoginThrottle) -> None:
    fail(throttle, 5)
    assert throttle.retry_after("admin", ADMIN_LAPTOP) is None, "the real admin still logs in"
    assert throttle.retry_after("Box 3", ATTACKER) is None


def test_one_account_is_one_counter_whatever_the_caller_names_it(throttle: LoginThrottle) -> None:
    # The route passes login_identity(), which is the same for every spelling of an account
    # (tests/actors/accounts/test_users.py); the throttle counts exactly what it is given.
    fail(throttle, 5, user="account:box-2")
    assert throttle.retry_after("account:box-2", ATTACKER) is not None
    assert throttle.retry_after("account:box-3", ATTACKER) is None


def test_ever_new_names_from_one_address_are_locked_after_twenty(throttle: LoginThrottle) -> None:
    for n in range(19):
        throttle.failed(f"name:random{n}", ATTACKER)
    assert throttle.retry_after("name:random-next", ATTACKER) is None
    throttle.failed("name:random19", ATTACKER)
    assert throttle.retry_after("name:random-next", ATTACKER) == pytest.approx(60)
    assert throttle.retry_after("account:admin", ATTACKER) == pytest.approx(60), "every name, known or not"
    assert throttle.retry_after("name:random-next", ADMIN_LAPTOP) is None, "only that address"
    assert throttle.retry_after("account:admin", ADMIN_LAPTOP) is None


def test_a_login_to_ones_own_account_does_not_buy_more_guesses(throttle: LoginThrottle) -> None:
    for n in range(19):
        throttle.failed(f"account:victim{n}", ATTACKER)
        throttle.succeeded("account:own", ATTACKER)
    throttle.failed("account:victim19", ATTACKER)
    assert throttle.retry_after("account:victim20", ATTACKER) is not None


def test_success_clears_the_count(throttle: LoginThrottle) -> None:
    fail(throttle, 4)
    throttle.succeeded("admin", ATTACKER)
    fail(throttle, 4)
    assert throttle.retry_after("admin", ATTACKER) is None


def test_lock_expires_and_the_count_starts_afresh(throttle: LoginThrottle, clock: FakeClock) -> None:
    fail(throttle, 5)
    clock.advance(60)
    assert throttle.retry_after("admin", ATTACKER) is None
    fail(throttle, 4)
    assert throttle.retry_after("admin", ATTACKER) is None
    fail(throttle, 1)
    assert throttle.retry_after("admin", ATTACKER) == pytest.approx(60)


def test_failures_while_locked_do_not_extend_the_lock(throttle: LoginThrottle, clock: FakeClock) -> None:
    fail(throttle, 5)
    clock.advance(30)
    fail(throttle, 10)
    assert throttle.retry_after("admin", ATTACKER) == pytest.approx(30)


def test_failures_older_than_the_window_are_forgotten(throttle: LoginThrottle, clock: FakeClock) -> None:
    fail(throttle, 4)
    clock.advance(300)
    fail(throttle, 4)
    assert throttle.retry_after("admin", ATTACKER) is None


def test_expired_entries_are_dropped_lazily(throttle: LoginThrottle, clock: FakeClock) -> None:
    for n in range(100):
        throttle.failed(f"user{n}", ATTACKER)
    assert len(throttle) == 101, "one per name and one for the address"
    clock.advance(301)
    throttle.failed("late", ATTACKER)
    assert len(throttle) == 2


def test_memory_is_bounded_by_dropping_the_oldest_keys(clock: FakeClock) -> None:
    throttle = LoginThrottle(max_keys=50, clock=clock)
    fail(throttle, 5, user="admin")
    for n in range(200):
        throttle.failed(f"user{n}", f"10.1.{n}.1")
    assert len(throttle) == 50
    assert throttle.retry_after("user199", "10.1.199.1") is None
    fail(throttle, 4, user="user199", ip="10.1.199.1")
    assert throttle.retry_after("user199", "10.1.199.1") is not None, "recent keys keep their count"
