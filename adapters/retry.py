"""The one retry policy every channel uses, built on tenacity.

An adapter wraps one request in a function that either returns or raises ``PublishError``;
:meth:`RetryPolicy.call` runs it until it succeeds or there is no point going on:

* only an error marked ``retryable`` is tried again.  The adapter decides that flag, and it is
  where "safe to repeat" lives: a request that may have been applied (a timeout, a 500 on a
  POST) is retryable only when it carries an idempotency key or the adapter looks first
  (``recover``), so a retry never posts twice;
* a ``Retry-After`` is honoured: the wait is never shorter than the server asks, and a server
  asking for more than ``max_retry_after`` seconds is not waited for: the error is raised as it
  is (still ``retryable``, with ``retry_after`` set) so the caller can schedule the retry;
* otherwise the wait is exponential with "equal jitter": attempt *n* waits between half and
  all of ``min(backoff_cap, backoff_base * 2 ** (n - 1))``, so concurrent senders spread out
  but none retries at once;
* at most ``max_attempts`` attempts; the last error is raised with "(gave up after N
  attempts)" added, still ``retryable``.

Why tenacity rather than stamina: tenacity's ``Retrying(sleep=..., wait=..., stop=...,
retry=...)`` takes the sleep and the wait per policy, so tests inject both (and the jitter
source) without touching global state, and its wait may read the failed attempt's
``retry_after``; stamina configures testing mode globally.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from comms.errors import PublishError

__all__ = ["RetryPolicy", "retry_after_seconds"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff, jitter and ``Retry-After``.

    ``sleep`` and ``jitter`` (a random fraction in ``[0, 1]``) are seams for tests: with them
    injected nothing waits and every delay is known.  A policy holds no state, so one policy
    may serve many threads.
    """

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_cap < 0 or self.max_retry_after < 0:
            raise ValueError("backoff and retry-after limits may not be negative")

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): exponential with equal
        jitter, capped, and never less than the server's ``retry_after``."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))
        delay = ceiling / 2 + self.jitter() * ceiling / 2
        return max(delay, retry_after) if retry_after is not None else delay

    def should_retry(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another attempt now: a retryable ``PublishError`` whose
        ``Retry-After`` (if any) is within ``max_retry_after``."""
        if not isinstance(error, PublishError) or not error.retryable:
            return False
        return error.retry_after is None or error.retry_after <= self.max_retry_after

    def call(
        self,
        attempt: Callable[[], T],
        *,
        recover: Callable[[PublishError], T | None] | None = None,
    ) -> T:
        """Run ``attempt`` until it returns, retrying as the module docstring says.

        ``recover`` is for requests that may have been applied although they failed (a reply
        that timed out): after each retryable failure, once the wait is over and before the
        next attempt (and once more after the last attempt), it is given that failure and
        returns the result if the request did land, or None to go on.  Whatever it raises
        ends the call at once, unretried.
        """
        retrying = Retrying(
            sleep=self.sleep,
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(self.should_retry),
            # Running out of attempts ends the loop below instead of raising RetryError, so
            # the last failure can still be recovered, then raised as itself.
            retry_error_callback=_exhausted,
        )
        failure: PublishError | None = None
        for try_ in retrying:
            if failure is not None and recover is not None:
                found = recover(failure)
                if found is not None:
                    return found
            with try_:
                try:
                    return attempt()
                except PublishError as error:
                    failure = error
                    raise
        if failure is None:  # pragma: no cover - the loop only ends after a failure
            raise AssertionError("retry loop ended without a failure")
        if recover is not None:
            found = recover(failure)
            if found is not None:
                return found
        failure.args = (f"{failure.args[0]} (gave up after {self.max_attempts} attempts)",)
        raise failure

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        retry_after = error.retry_after if isinstance(error, PublishError) else None
        return self.backoff(state.attempt_number, retry_after)


def _exhausted(state: RetryCallState) -> None:
    return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def retry_after_seconds(
    value: str | None, *, now: Callable[[], datetime] = _utcnow
) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (a date in the
    past is 0); None when there is no header or it cannot be read."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())
