"""Time parsing and formatting: every time inside is timezone-aware UTC, every time shown says its zone.

Pure functions; the current time is always passed in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(
    r"^\s*\+?\s*(\d+)\s*(s|sec|secs|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)\s*$", re.I
)
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*(?:UTC|Z|GMT)?\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC; a naive datetime is rejected rather than guessed."""
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()} has no zone; write it with Z or +00:00")
    return moment.astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """Parse ``90m``, ``2h``, ``30 minutes``, ``45s``, ``1d`` into a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a duration; write it like 30m, 2h or 1d")
    unit = match.group(2)[0].lower()
    try:
        return timedelta(seconds=int(match.group(1)) * _UNITS[unit])
    except OverflowError:
        raise ValueError(f"'{text}' is too long a duration") from None


def parse_time(text: str, now: datetime) -> datetime:
    """Parse a time a person typed, relative to ``now``; see :func:`_parse_time`."""
    try:
        return _parse_time(text, now)
    except OverflowError:  # +3000000d, or year 1 moved across a zone: past datetime's range
        raise ValueError(f"'{text}' is out of range; write a time near now") from None


def _parse_time(text: str, now: datetime) -> datetime:
    """Parse a time a person typed, relative to ``now`` (aware).

    Accepts ISO 8601 with a zone (``2026-11-27T14:30Z``, ``…+01:00``), a UTC clock time
    (``14:30``, ``14:30 UTC``: the next such time at or after ``now``), ``now``, and an
    offset (``+45m``, ``in 2h``).  A date-time without a zone is rejected: a customer must
    never be told a time we had to guess.
    """
    raw = text.strip()
    lowered = raw.lower()
    if lowered == "now":
        return utc(now)
    if lowered.startswith("in "):
        lowered = lowered[3:]
    if lowered.startswith("+") or _DURATION.match(lowered):
        return utc(now) + parse_duration(lowered)
    clock = _CLOCK.match(raw)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"'{text}' is not a clock time")
        base = utc(now)
        candidate = base.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if candidate < base.replace(second=0, microsecond=0):
            candidate += timedelta(days=1)
        return candidate
    iso = raw.replace(" UTC", "Z").replace(" ", "T", 1) if " " in raw else raw
    try:
        moment = datetime.fromisoformat(iso.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"'{text}' is not a time; write 14:30 (UTC), 2026-11-27T14:30Z or +60m"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"'{text}' has no zone; add Z for UTC, e.g. {raw}Z")
    return moment.astimezone(UTC)


def parse_past_time(text: str, now: datetime) -> datetime:
    """Like :func:`parse_time` for a moment that already happened (a start, an end).

    A bare clock time means the latest such time at or before ``now``: at 14:30,
    ``14:10`` is today's 14:10, not tomorrow's.
    """
    moment = parse_time(text, now)
    if _CLOCK.match(text) and moment > utc(now):
        moment -= timedelta(days=1)
    return moment


def format_time(moment: datetime) -> str:
    """Customer-facing form, always with its zone: ``2026-11-27 14:30 UTC``."""
    return utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def isoformat(moment: datetime) -> str:
    """Machine form for storage and JSON: ``2026-11-27T14:30:00Z``."""
    return (
        utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")
        if not utc(moment).microsecond
        else (utc(moment).isoformat().replace("+00:00", "Z"))
    )


def from_iso(text: str) -> datetime:
    """Inverse of :func:`isoformat`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
