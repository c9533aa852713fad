"""The one retry policy: bounded in count, exponential, jittered unless told not to, and a time
window that opens at the first failure."""

from __future__ import annotations

from shared.pipeline.retry import RetryPolicy, RetryWindow


def test_delays_grow_exponentially_up_to_the_cap_and_jitter_stays_below_them() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=3.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert all(0 <= policy.delay(n) <= policy.backoff(n) for n in range(1, 6) for _ in range(50))
    fixed = RetryPolicy(base_delay=0.4, max_delay=3.2, jitter=False)
    assert [fixed.delay(n) for n in range(1, 5)] == [0.4, 0.8, 1.6, 3.2]


def test_the_count_bound_allows_attempts_tries_and_always_one() -> None:
    assert list(RetryPolicy(attempts=3).tries()) == [1, 2, 3]
    assert [RetryPolicy(attempts=3).may_retry(n) for n in (1, 2, 3)] == [True, True, False]
    for attempts in (1, 0, -1):
        assert list(RetryPolicy(attempts=attempts).tries()) == [1]
        assert not RetryPolicy(attempts=attempts).may_retry(1)


def test_the_window_opens_at_the_first_failure_not_at_the_first_try() -> None:
    now = [100.0]
    window = RetryWindow(timeout=10.0, clock=lambda: now[0])
    assert window.allows(4.0)  # first failure at 100: the window runs to 110
    now[0] = 105.0
    assert window.allows(5.0)  # a retry starting at 110 is still inside
    assert not window.allows(5.5)
    now[0] = 111.0
    assert not window.allows(0.0)
