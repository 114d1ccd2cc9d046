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

# The years any time in comms may fall in, typed or read back.  An incident, an update or a
# deadline outside them is a typo (0026 for 2026) or a stand-in for "never" (9999), and
# times near datetime's own limits (years 1 and 9999) overflow as soon as the cadence adds
# an hour to them; refused where they are typed, they never reach the store.
ACCEPTED_YEARS = range(2000, 2200)
_EXAMPLE = "2026-11-27T14:30Z"
_FORMS = f"{_EXAMPLE}, 14:30 (UTC) or +60m"


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


def accepted(moment: datetime, text: str, forms: str = _FORMS) -> datetime:
    """``moment`` if it falls in :data:`ACCEPTED_YEARS`, else a ``ValueError`` saying so
    (``text`` is what was typed or stored, ``forms`` the forms to suggest)."""
    if moment.year not in ACCEPTED_YEARS:
        first, last = ACCEPTED_YEARS[0], ACCEPTED_YEARS[-1]
        raise ValueError(
            f"'{text}' is outside the years {first}–{last} that comms accepts; "
            f"write a time like {forms}"
        )
    return moment


def parse_time(text: str, now: datetime) -> datetime:
    """Parse a time a person typed, relative to ``now``; see :func:`_parse_time`.

    The result falls in :data:`ACCEPTED_YEARS`; anything else is a ``ValueError``.
    """
    try:
        return accepted(_parse_time(text, now), text)
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


# A time ago, for a moment that already happened: -12m, -1h30m, -2d, "- 1h 5m".
_AGO = re.compile(r"^\s*-\s*((?:\d+\s*[dhms]\s*)+)$", re.I)
_AGO_PART = re.compile(r"(\d+)\s*([dhms])", re.I)


def parse_past_time(text: str, now: datetime) -> datetime:
    """Like :func:`parse_time` for a moment that already happened (a start, an end).

    A bare clock time means the latest such time at or before ``now``: at 14:30,
    ``14:10`` is today's 14:10, not tomorrow's.  ``-12m``, ``-1h30m`` or ``-2d`` is that
    long before ``now``.
    """
    ago = _AGO.match(text)
    if ago:
        seconds = sum(int(n) * _UNITS[u.lower()] for n, u in _AGO_PART.findall(ago.group(1)))
        try:
            return accepted(utc(now) - timedelta(seconds=seconds), text)
        except OverflowError:  # -99999999999d: past datetime's range
            raise ValueError(f"'{text}' is out of range; write a time near now") from None
    moment = parse_time(text, now)
    if _CLOCK.match(text) and moment > utc(now):
        moment = accepted(moment - timedelta(days=1), text)
    return moment


def format_time(moment: datetime) -> str:
    """Customer-facing form, always with its zone: ``2026-11-27 14:30 UTC``."""
    # Not strftime("%Y"): glibc writes year 26 as "26", a date nothing reads back.
    return utc(moment).isoformat(" ", "minutes")[:16] + " UTC"


def isoformat(moment: datetime) -> str:
    """Machine form for storage and JSON: ``2026-11-27T14:30:00Z`` (four-digit year)."""
    moment = utc(moment)
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    """Inverse of :func:`isoformat`; also reads ``COMMS_NOW``.

    A time outside :data:`ACCEPTED_YEARS` is a ``ValueError``, as when typed.
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO 8601 time; write it like {_EXAMPLE}") from None
    if moment.tzinfo is None:
        raise ValueError(f"'{text}' has no zone; add Z for UTC, e.g. {_EXAMPLE}")
    return accepted(moment.astimezone(UTC), text, _EXAMPLE)
