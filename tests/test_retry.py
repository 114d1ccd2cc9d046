"""The shared retry policy on its own: plain functions that fail as scripted, sleeps recorded."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comms.adapters.retry import RetryPolicy, retry_after_seconds
from comms.errors import PublishError


def _error(*, retryable: bool = True, retry_after: float | None = None) -> PublishError:
    return PublishError(
        "Test answered 503",
        channel="test",
        status=503,
        retryable=retryable,
        retry_after=retry_after,
    )


class Script:
    """An attempt that raises the scripted errors in turn, then returns ``"done"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def _policy(sleeps: list[float], **options: Any) -> RetryPolicy:
    options.setdefault("jitter", lambda: 0.0)
    return RetryPolicy(sleep=sleeps.append, **options)


def test_success_needs_no_wait() -> None:
    sleeps: list[float] = []
    attempt = Script()
    assert _policy(sleeps).call(attempt) == "done"
    assert (attempt.calls, sleeps) == (1, [])


def test_retryable_errors_are_retried_with_exponential_backoff() -> None:
    sleeps: list[float] = []
    attempt = Script(_error(), _error(), _error())
    assert _policy(sleeps, backoff_base=1.0).call(attempt) == "done"
    assert attempt.calls == 4
    assert sleeps == [0.5, 1.0, 2.0]  # the bottom of each window: half of 1, 2, 4 s


def test_retry_after_is_honoured_and_never_undercut() -> None:
    sleeps: list[float] = []
    attempt = Script(_error(retry_after=7.0), _error(retry_after=0.0))
    assert _policy(sleeps, backoff_base=1.0).call(attempt) == "done"
    # 7 s asked beats a 0.5 s backoff; 0 s asked is less than the 1 s backoff, which wins.
    assert sleeps == [7.0, 1.0]


def test_a_retry_after_beyond_the_limit_is_raised_at_once() -> None:
    sleeps: list[float] = []
    too_long = _error(retry_after=600.0)
    attempt = Script(too_long)
    with pytest.raises(PublishError) as caught:
        _policy(sleeps, max_retry_after=60.0).call(attempt)
    assert caught.value is too_long
    assert (caught.value.retryable, caught.value.retry_after) == (True, 600.0)
    assert "gave up" not in str(caught.value)
    assert (attempt.calls, sleeps) == (1, [])


def test_a_retry_after_at_the_limit_is_waited_for() -> None:
    sleeps: list[float] = []
    _policy(sleeps, max_retry_after=60.0).call(Script(_error(retry_after=60.0)))
    assert sleeps == [60.0]


@pytest.mark.parametrize(
    "error", [_error(retryable=False), KeyError("not a delivery error"), ValueError("bug")]
)
def test_anything_not_marked_retryable_is_raised_at_once(error: Exception) -> None:
    sleeps: list[float] = []
    attempt = Script(error)
    with pytest.raises(type(error)) as caught:
        _policy(sleeps).call(attempt)
    assert caught.value is error
    assert (attempt.calls, sleeps) == (1, [])


@pytest.mark.parametrize("max_attempts", [1, 2, 5])
def test_attempts_are_bounded_and_the_last_error_says_so(max_attempts: int) -> None:
    sleeps: list[float] = []
    cause = ConnectionError("reset")
    last = _error()
    last.__cause__ = cause
    attempt = Script(*[_error() for _ in range(max_attempts - 1)], last, _error())
    with pytest.raises(PublishError) as caught:
        _policy(sleeps, max_attempts=max_attempts).call(attempt)
    assert caught.value is last
    assert str(caught.value) == f"Test answered 503 (gave up after {max_attempts} attempts)"
    assert caught.value.retryable is True
    assert caught.value.__cause__ is cause
    assert attempt.calls == max_attempts
    assert len(sleeps) == max_attempts - 1


def test_the_backoff_is_capped() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=5.0, jitter=lambda: 1.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


@given(
    attempt=st.integers(min_value=1, max_value=40),
    base=st.floats(min_value=0.001, max_value=10.0),
    cap=st.floats(min_value=0.001, max_value=300.0),
    seed=st.integers(min_value=0),
)
def test_jitter_stays_within_half_and_all_of_the_ceiling(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(backoff_base=base, backoff_cap=cap, jitter=random.Random(seed).random)
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    delay = policy.backoff(attempt)
    assert ceiling / 2 <= delay <= ceiling


def test_jitter_spreads_the_waits() -> None:
    policy = RetryPolicy(backoff_base=2.0, jitter=random.Random(7).random)
    delays = {policy.backoff(1) for _ in range(50)}
    assert len(delays) > 40
    assert min(delays) >= 1.0
    assert max(delays) <= 2.0


def test_recover_looks_after_the_wait_and_before_the_next_attempt() -> None:
    events: list[str] = []
    failures: list[PublishError] = []

    def sleep(seconds: float) -> None:
        events.append(f"sleep {seconds:g}")

    def attempt() -> str:
        events.append("attempt")
        error = _error()
        failures.append(error)
        raise error

    def recover(error: PublishError) -> str | None:
        assert error is failures[-1]
        events.append("recover")
        return "found" if len(failures) == 2 else None

    policy = RetryPolicy(backoff_base=1.0, sleep=sleep, jitter=lambda: 0.0)
    assert policy.call(attempt, recover=recover) == "found"
    assert events == ["attempt", "sleep 0.5", "recover", "attempt", "sleep 1", "recover"]


def test_recover_looks_once_more_after_the_last_attempt() -> None:
    sleeps: list[float] = []
    looked: list[int] = []

    def recover(error: PublishError) -> str | None:
        looked.append(attempt.calls)
        return "found" if len(looked) == 2 else None

    attempt = Script(_error(), _error())
    assert _policy(sleeps, max_attempts=2).call(attempt, recover=recover) == "found"
    assert looked == [1, 2]
    assert len(sleeps) == 1  # no wait after the last attempt


def test_recover_is_not_asked_after_an_error_that_is_not_retried() -> None:
    looked: list[PublishError] = []
    with pytest.raises(PublishError):
        _policy([]).call(Script(_error(retryable=False)), recover=looked.append)
    with pytest.raises(PublishError):
        _policy([], max_retry_after=1.0).call(
            Script(_error(retry_after=5.0)), recover=looked.append
        )
    assert looked == []


def test_whatever_recover_raises_ends_the_call_unretried() -> None:
    attempt = Script(_error(), _error(), _error())
    unchecked = _error()

    def recover(error: PublishError) -> str | None:
        raise unchecked

    with pytest.raises(PublishError) as caught:
        _policy([], max_attempts=5).call(attempt, recover=recover)
    assert caught.value is unchecked
    assert attempt.calls == 1


def test_one_policy_serves_many_calls() -> None:
    sleeps: list[float] = []
    policy = _policy(sleeps, max_attempts=2)
    for _ in range(3):
        with pytest.raises(PublishError, match="gave up after 2 attempts"):
            policy.call(Script(_error(), _error()))
    assert policy.call(Script(_error())) == "done"
    assert len(sleeps) == 4


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"backoff_base": -1.0}, {"max_retry_after": -1.0}],
)
def test_nonsense_limits_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"max_attempts|negative"):
        RetryPolicy(**options)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Fri, 27 Nov 2026 14:01:30 GMT", 90.0),
        ("Fri, 27 Nov 2026 13:00:00 GMT", 0.0),  # already past
        (None, None),
        ("", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after_headers(header: str | None, seconds: float | None) -> None:
    now = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    assert retry_after_seconds(header, now=lambda: now) == seconds
