"""Fault injection and rate limiting for the Switchboard stub: which requests fail, and how.

Kinds: ``429``, ``500``, ``503``, ``slow``, ``drop``, ``reset``, ``after_commit`` (do the work,
then drop the connection) and ``after_commit_500``.
"""

from __future__ import annotations

import fnmatch
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "500", "503", "slow", "drop", "reset", "after_commit", "after_commit_500")


def parse_fault_spec(text: str) -> dict[str, float]:
    """Parse ``429:0.2,500:0.1,slow:0.1,drop:0.05`` into probabilities per fault kind."""
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = part.partition(":")
        kind = kind.strip().replace("-", "_")
        if not sep or kind not in FAULT_KINDS:
            raise ValueError(
                f"fault '{part}': write KIND:PROBABILITY with KIND one of {', '.join(FAULT_KINDS)}"
            )
        try:
            rates[kind] = float(value)
        except ValueError:
            raise ValueError(f"fault '{part}': '{value}' is not a probability") from None
    _check_rates(rates)
    return rates


def _check_rates(rates: Mapping[str, float]) -> None:
    for kind, p in rates.items():
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind '{kind}' (known: {', '.join(FAULT_KINDS)})")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"fault {kind}: probability {p} is not between 0 and 1")
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError("fault probabilities add up to more than 1")


@dataclass
class FaultPlan:
    """Which faults to inject: random ``rates`` and a ``queue`` of one-off rules, matched on
    ``"METHOD /path"`` globs (``match`` limits the random ones)."""

    rates: dict[str, float] = field(default_factory=dict)
    queue: list[dict[str, Any]] = field(default_factory=list)
    match: str = "*"
    slow_seconds: float = 5.0
    retry_after: int = 1
    seed: int | None = None
    injected: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_config(cls, raw: Any) -> FaultPlan:
        """Build from the admin endpoint's JSON; ValueError says what is wrong."""
        if not isinstance(raw, dict):
            raise ValueError("the fault configuration must be an object")
        unknown = set(raw) - {"rates", "queue", "match", "slow_seconds", "retry_after", "seed"}
        if unknown:
            raise ValueError(f"unknown fault setting '{sorted(unknown)[0]}'")
        rates = raw.get("rates") or {}
        if not isinstance(rates, dict) or not all(
            isinstance(v, int | float) for v in rates.values()
        ):
            raise ValueError("'rates' must map fault kinds to probabilities")
        rates = {k.replace("-", "_"): float(v) for k, v in rates.items()}
        _check_rates(rates)
        queue = []
        for rule in raw.get("queue") or []:
            if isinstance(rule, str):
                rule = {"kind": rule}
            if not isinstance(rule, dict) or rule.get("kind") not in FAULT_KINDS:
                raise ValueError(
                    f"queue rule {rule!r}: 'kind' must be one of {', '.join(FAULT_KINDS)}"
                )
            times = rule.get("times", 1)
            if not isinstance(times, int) or times < 1:
                raise ValueError(f"queue rule {rule!r}: 'times' must be a positive integer")
            queue.append(
                {"kind": rule["kind"], "match": str(rule.get("match", "*")), "times": times}
            )
        slow = raw.get("slow_seconds", 5.0)
        retry_after = raw.get("retry_after", 1)
        seed = raw.get("seed")
        if not isinstance(slow, int | float) or not 0 <= slow <= 60:
            raise ValueError("'slow_seconds' must be between 0 and 60")
        if not isinstance(retry_after, int) or not 0 <= retry_after <= 3600:
            raise ValueError("'retry_after' must be a whole number of seconds")
        if seed is not None and not isinstance(seed, int):
            raise ValueError("'seed' must be an integer")
        return cls(
            rates=rates,
            queue=queue,
            match=str(raw.get("match", "*")),
            slow_seconds=float(slow),
            retry_after=retry_after,
            seed=seed,
            rng=random.Random(seed),
        )

    def describe(self) -> dict[str, Any]:
        """The configuration and what was injected so far."""
        return {
            "rates": self.rates,
            "queue": self.queue,
            "match": self.match,
            "slow_seconds": self.slow_seconds,
            "retry_after": self.retry_after,
            "seed": self.seed,
            "injected": dict(self.injected),
        }

    def pick(self, method: str, path: str) -> str | None:
        """The fault for this request, if any (queued rules first)."""
        target = f"{method} {path}"
        for rule in self.queue:
            if fnmatch.fnmatchcase(target, rule["match"]):
                rule["times"] -= 1
                if rule["times"] == 0:
                    self.queue.remove(rule)
                self.injected[rule["kind"]] += 1
                return str(rule["kind"])
        if self.rates and fnmatch.fnmatchcase(target, self.match):
            draw, total = self.rng.random(), 0.0
            for kind, p in self.rates.items():
                total += p
                if draw < total:
                    self.injected[kind] += 1
                    return kind
        return None


class TokenBucket:
    """A token bucket: ``per_minute`` refill, ``burst`` capacity; ``take`` returns the wait.

    ``monotonic`` is its clock, in seconds (tests pass a fake one)."""

    def __init__(
        self,
        per_minute: float,
        burst: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("the rate limit must be a positive number of requests a minute")
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.burst = burst if burst is not None else max(1.0, self.rate)
        self.monotonic = monotonic
        self.tokens = self.burst
        self.last = monotonic()

    def take(self) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        now = self.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def parse_rate(text: str) -> float:
    """Parse ``600``, ``600/min``, ``10/s`` into requests a minute."""
    number, _, unit = text.strip().lower().partition("/")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"rate limit '{text}' must look like 600/min or 10/s") from None
    factor = {
        "": 1.0,
        "m": 1.0,
        "min": 1.0,
        "minute": 1.0,
        "s": 60.0,
        "sec": 60.0,
        "second": 60.0,
    }.get(unit.strip())
    if factor is None or value <= 0:
        raise ValueError(f"rate limit '{text}' must look like 600/min or 10/s")
    return value * factor
