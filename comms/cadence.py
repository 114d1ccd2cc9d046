"""Cadence: pure deadline maths for customer updates and the other clocks of an incident.

No I/O, no clock, no environment: every function takes ``now``.  Inputs are
:class:`comms.records.ClockRow`-like objects (attribute access only), so ``comms cadence
check`` can evaluate tens of thousands of incidents without pydantic.

The clocks, from the Dedicated incident process (``reference/gdcmoc-facts.md``):

``update``        a customer update at most every *gap* (S1: 60 minutes in every open
                  status), sooner when the last update promised a time, and within
                  *on_status_change* of every stage change, from the opening to the
                  resolution (the final update, chased for ``final_update_window``).
                  Owed to each tenant: an update counts for the tenants it reached, so
                  tenants a later update missed keep their own deadline.
``engage``        GDCMOC engaged within 10 minutes of an S1/S2 starting.
``director``      escalate to the Dedicated Director when an S1 runs 1 hour without a
                  mitigation in sight (still investigating or identified); recording the
                  escalation (``director_engaged_at``) stops it.
``rca-internal``  S1 internal RCA within 1 week of resolution.
``rca-external``  S1 external RCA within 1 week of resolution.

A deadline is *ok* until its reminder time, *due soon* until it is due, then *overdue*.
The reminder time is ``due - reminder_lead``, but never earlier than ``settle`` after the
last update: nobody wants a reminder a minute after sending.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

from comms.models import Severity

OK = "ok"
DUE_SOON = "due-soon"
OVERDUE = "overdue"
STATES = (OK, DUE_SOON, OVERDUE)

UPDATE = "update"
ENGAGE = "engage"
DIRECTOR = "director"
RCA_INTERNAL = "rca-internal"
RCA_EXTERNAL = "rca-external"
CLOCKS = (UPDATE, ENGAGE, DIRECTOR, RCA_INTERNAL, RCA_EXTERNAL)
# Overdue on these, someone must act now (`comms cadence check` exits 1); an overdue RCA
# is a week-long chase, reported but not paged.
ACT_NOW = (UPDATE, ENGAGE, DIRECTOR)

# Plain strings, not enum members: clock rows and comms.toml carry severities as text.
SEVERITIES: tuple[str, ...] = tuple(severity.value for severity in Severity)
_S1, _S2, _S3, _S4 = SEVERITIES
OPEN_STATUSES = ("investigating", "identified", "mitigating", "monitoring")
RESOLVED = "resolved"
# "Without a mitigation in sight": once mitigating, the Director clock stops.
NO_MITIGATION_IN_SIGHT = ("investigating", "identified")

_M10, _M15, _M30, _M60 = (timedelta(minutes=m) for m in (10, 15, 30, 60))
_WEEK = timedelta(days=7)
_DAY = timedelta(days=1)


def _minutes(value: int) -> timedelta:
    return timedelta(minutes=value)


@dataclass(frozen=True)
class Policy:
    """The cadence policy: a severity-by-status table of longest gaps plus the other clocks.

    ``gaps[severity][status]`` is the longest time between customer updates, or None when
    none is due.  A missing severity or status means None.  Build it from config with
    :func:`policy_from_config`; the defaults follow the reference.
    """

    gaps: Mapping[str, Mapping[str, timedelta | None]] = field(
        default_factory=lambda: {
            _S1: dict.fromkeys(OPEN_STATUSES, _minutes(60)),
            _S2: dict.fromkeys(OPEN_STATUSES, _minutes(120)),
        }
    )
    on_status_change: Mapping[str, timedelta] = field(
        default_factory=lambda: {_S1: _minutes(15), _S2: _minutes(30)}
    )
    reminder_lead: timedelta = _M15
    settle: timedelta = _M10
    realert_every: timedelta = _M15
    escalate_after: timedelta = _M30
    quiet_hours: tuple[time, time] | None = None
    quiet_severities: tuple[str, ...] = (_S3, _S4)
    engage_within: timedelta = _M10
    engage_severities: tuple[str, ...] = (_S1, _S2)
    director_after: timedelta = _M60
    director_severities: tuple[str, ...] = (_S1,)
    rca_within: timedelta = _WEEK
    rca_severities: tuple[str, ...] = (_S1,)
    rca_realert_every: timedelta = _DAY
    rca_escalate_after: timedelta = _DAY
    # A missing final "resolved" update is chased for a day, then left to the RCA.
    final_update_window: timedelta = _DAY

    def gap(self, severity: str, status: str) -> timedelta | None:
        """Longest gap between customer updates for this severity and status, or None."""
        table = self.gaps.get(severity)
        return None if table is None else table.get(status)


DEFAULT_POLICY = Policy()


class Deadline(NamedTuple):
    """One pending clock of one incident, evaluated at ``now``.

    ``delta`` is ``now - due_at``: positive means overdue by that much, negative means due
    in that much.  ``restricted`` is True for pubsec and security incidents, whose alerts
    may carry only the reference, severity and deadline.  ``row`` is the input record.
    ``tenants`` are the tenants an update deadline is owed to (tenants that got the same
    updates share one deadline); empty for the clocks of the incident as a whole.
    """

    ref: str
    clock: str
    severity: str
    due_at: datetime
    remind_at: datetime
    state: str
    delta: timedelta
    reason: str
    restricted: bool
    row: Any
    tenants: tuple[str, ...] = ()


def state_at(due_at: datetime, remind_at: datetime, now: datetime) -> str:
    """ok before ``remind_at``, due soon until ``due_at``, overdue from ``due_at`` on."""
    if now >= due_at:
        return OVERDUE
    if now >= remind_at:
        return DUE_SOON
    return OK


def update_due(
    *,
    severity: str,
    status: str,
    created_at: datetime,
    status_changed_at: datetime | None,
    last_update_at: datetime | None,
    promised_update_at: datetime | None,
    policy: Policy,
) -> tuple[datetime, str] | None:
    """When the next customer update is due and why, or None when none is due.

    The earliest of: the last update (or the opening) plus the policy gap; the time the
    last update promised; the last stage change plus ``on_status_change`` when no update
    has gone out since.  Never earlier than the last update itself.
    """
    return _update_due(
        severity,
        status,
        created_at,
        status_changed_at,
        last_update_at,
        promised_update_at,
        policy,
    )


def _update_due(
    severity: str,
    status: str,
    created_at: datetime,
    status_changed_at: datetime | None,
    last_update_at: datetime | None,
    promised_update_at: datetime | None,
    policy: Policy,
) -> tuple[datetime, str] | None:
    # ``update_due`` with positional arguments: the hot path of `comms cadence check`.
    within = policy.on_status_change.get(severity)
    changed = status_changed_at or created_at
    if status == RESOLVED:
        # The last stage change: customers hear that it is resolved, then the clock stops.
        if within is None or (last_update_at is not None and last_update_at >= changed):
            return None
        return changed + within, f"resolved: final update within {_human(within)}"
    due: datetime | None = None
    reason = ""
    table = policy.gaps.get(severity)
    gap = None if table is None else table.get(status)
    if gap is not None:
        anchor = last_update_at or created_at
        due = anchor + gap
        reason = _gap_reason(severity, status, gap, bool(last_update_at))
    if last_update_at is not None and promised_update_at is not None:
        # max(promised_update_at, last_update_at), without the call.
        promised = last_update_at if last_update_at > promised_update_at else promised_update_at
        if due is None or promised < due:
            due, reason = promised, "promised in the last update"
    if within is not None and (last_update_at is None or changed > last_update_at):
        candidate = changed + within
        if due is None or candidate < due:
            due = candidate
            reason = (
                f"first update within {_human(within)} of opening"
                if last_update_at is None and changed <= created_at
                else f"status changed to {status}: update within {_human(within)}"
            )
    if due is None:
        return None
    if last_update_at is not None and due < last_update_at:
        due = last_update_at
    return due, reason


@lru_cache(maxsize=1024)
def _gap_reason(severity: str, status: str, gap: timedelta, updated: bool) -> str:
    since = "the last update" if updated else "the incident was opened"
    return f"{severity} {status}: every {_human(gap)} since {since}"


def next_due(row: Any, policy: Policy = DEFAULT_POLICY) -> datetime | None:
    """When the incident's next customer update is due to any of its tenants (independent
    of ``now``), or None."""
    dues = []
    for _, last, promise in update_groups(row):
        found = _row_due(row._replace(last_update_at=last, promised_update_at=promise), policy)
        if found is not None:
            dues.append(found[0])
    return min(dues, default=None)


class _UpdateInputs(NamedTuple):
    """What the update deadline depends on, under the names a ClockRow gives them."""

    severity: str
    status: str
    created_at: datetime
    status_changed_at: datetime | None
    last_update_at: datetime | None
    promised_update_at: datetime | None


def _row_due(row: Any, policy: Policy) -> tuple[datetime, str] | None:
    """``update_due`` for a ClockRow or ``_UpdateInputs``."""
    return update_due(
        severity=row.severity,
        status=row.status,
        created_at=row.created_at,
        status_changed_at=row.status_changed_at,
        last_update_at=row.last_update_at,
        promised_update_at=row.promised_update_at,
        policy=policy,
    )


def remind_time(due_at: datetime, last_update_at: datetime | None, policy: Policy) -> datetime:
    """``due - reminder_lead``, held back until ``settle`` after an update; never after due."""
    remind = due_at - policy.reminder_lead
    if last_update_at is not None:
        settled = last_update_at + policy.settle
        if settled > remind:
            remind = settled
    return due_at if remind > due_at else remind


def evaluate_row(row: Any, policy: Policy, now: datetime) -> list[Deadline]:
    """Every pending clock of one incident at ``now``, in ``CLOCKS`` order."""
    out: list[Deadline] = []
    _evaluate_into(out, (row,), policy, now)
    return out


# Deadline(...) without the NamedTuple's Python-level __new__: the fields in order.
_new_deadline = tuple.__new__


def _add(
    out: list[Deadline],
    row: Any,
    clock: str,
    due: datetime,
    remind: datetime,
    reason: str,
    now: datetime,
    tenants: tuple[str, ...] = (),
) -> None:
    state = OVERDUE if now >= due else DUE_SOON if now >= remind else OK
    out.append(
        _new_deadline(
            Deadline,
            (
                row.ref,
                clock,
                row.severity,
                due,
                remind,
                state,
                now - due,
                reason,
                bool(row.pubsec or row.security),
                row,
                tenants,
            ),
        )
    )


def update_groups(row: Any) -> list[tuple[tuple[str, ...], datetime | None, datetime | None]]:
    """The row's tenants grouped by the updates they got: ``(tenants, last, promise)``.

    One group (every tenant, the row's last update and promise) unless ``row.lagging``
    names tenants the latest update missed; those get groups of their own.
    """
    lagging = row.lagging
    if not lagging:
        return [(row.tenants, row.last_update_at, row.promised_update_at)]
    behind = {tenant for tenant, _, _ in lagging}
    groups: dict[tuple[datetime | None, datetime | None], list[str]] = {}
    current = [t for t in row.tenants if t not in behind]
    if current:
        groups[(row.last_update_at, row.promised_update_at)] = current
    for tenant, last, promise in lagging:
        groups.setdefault((last, promise), []).append(tenant)
    return [(tuple(tenants), last, promise) for (last, promise), tenants in groups.items()]


def _evaluate_into(out: list[Deadline], rows: Iterable[Any], policy: Policy, now: datetime) -> None:
    # Hot path of `comms cadence check` (tens of thousands of rows): one call for all the
    # rows, the policy read once, positional calls, no closures.
    reminder_lead = policy.reminder_lead
    settle = policy.settle
    final_window = policy.final_update_window
    for row in rows:
        severity = row.severity
        status = row.status
        changed_at = row.status_changed_at
        groups = (
            update_groups(row)
            if row.lagging
            else ((row.tenants, row.last_update_at, row.promised_update_at),)
        )
        for tenants, last, promise in groups:
            if status != RESOLVED or (
                (last is None or last < changed_at) and now - changed_at <= final_window
            ):
                found = _update_due(
                    severity, status, row.created_at, changed_at, last, promise, policy
                )
                if found is not None:
                    due, reason = found
                    # remind_time, inlined.
                    remind = due - reminder_lead
                    if last is not None:
                        settled = last + settle
                        if settled > remind:
                            remind = settled
                    if remind > due:
                        remind = due
                    out.append(
                        _new_deadline(
                            Deadline,
                            (
                                row.ref,
                                UPDATE,
                                severity,
                                due,
                                remind,
                                OVERDUE if now >= due else DUE_SOON if now >= remind else OK,
                                now - due,
                                reason,
                                bool(row.pubsec or row.security),
                                row,
                                tenants,
                            ),
                        )
                    )
        if status != RESOLVED:
            if row.engaged_at is None and severity in policy.engage_severities:
                _engage(out, row, policy, now)
            if (
                row.mitigated_at is None
                and row.director_engaged_at is None
                and status in NO_MITIGATION_IN_SIGHT
                and severity in policy.director_severities
            ):
                _director(out, row, policy, now)
        elif row.resolved_at is not None and severity in policy.rca_severities:
            _rca(out, row, policy, now)


def _engage(out: list[Deadline], row: Any, policy: Policy, now: datetime) -> None:
    due = row.started_at + policy.engage_within
    _add(
        out,
        row,
        ENGAGE,
        due,
        due - policy.reminder_lead,
        f"GDCMOC engaged within {_human(policy.engage_within)} of an {row.severity} starting",
        now,
    )


def _director(out: list[Deadline], row: Any, policy: Policy, now: datetime) -> None:
    due = row.started_at + policy.director_after
    _add(
        out,
        row,
        DIRECTOR,
        due,
        due - policy.reminder_lead,
        f"{row.severity} without mitigation for {_human(policy.director_after)}: "
        "escalate to the Dedicated Director",
        now,
    )


def _rca(out: list[Deadline], row: Any, policy: Policy, now: datetime) -> None:
    severity = row.severity
    due = row.resolved_at + policy.rca_within
    # A day's notice suits a week-long clock better than the update reminder lead.
    remind = due - max(policy.reminder_lead, timedelta(days=1))
    if row.rca_internal_at is None:
        _add(
            out,
            row,
            RCA_INTERNAL,
            due,
            remind,
            f"{severity} internal RCA within {_human(policy.rca_within)} of resolution",
            now,
        )
    if row.rca_external_at is None:
        _add(
            out,
            row,
            RCA_EXTERNAL,
            due,
            remind,
            f"{severity} external RCA within {_human(policy.rca_within)} of resolution",
            now,
        )


_BY_REF = itemgetter(0, 1)  # ref, clock
_DUE = itemgetter(3)  # due_at


def evaluate(rows: Iterable[Any], policy: Policy, now: datetime) -> list[Deadline]:
    """Every pending clock of every incident at ``now``, most urgent (earliest due) first."""
    out: list[Deadline] = []
    _evaluate_into(out, rows, policy, now)
    # By (due_at, ref, clock) in two stable passes: string keys, then due_at alone,
    # compare faster than tuples that start with a datetime (80k deadlines in a check).
    out.sort(key=_BY_REF)
    out.sort(key=_DUE)
    return out


def tenant_lag(
    tenants: Sequence[str],
    last_update_at: datetime | None,
    promised_update_at: datetime | None,
    updates: Iterable[tuple[datetime, Sequence[str] | None, datetime | None]],
) -> tuple[tuple[str, datetime | None, datetime | None], ...]:
    """``ClockRow.lagging`` from an incident's ``update.sent`` events, oldest first.

    ``updates`` are ``(sent at, tenants it reached or None for all, promise)``; the row's
    ``last_update_at`` and ``promised_update_at`` are the latest update's.  Returns, in
    ``tenants`` order, each tenant whose own last update and promise differ from those,
    with its own; a tenant no update reached has ``(tenant, None, None)``.
    """
    if last_update_at is None:
        return ()
    own: dict[str, tuple[datetime, datetime | None]] = {}
    for at, reached, promise in updates:
        for tenant in reached or tenants:
            own[tenant] = (at, promise)
    lag = []
    for tenant in tenants:
        last, promise = own.get(tenant, (None, None))
        if last != last_update_at or promise != promised_update_at:
            lag.append((tenant, last, promise))
    return tuple(lag)


class Horizon(NamedTuple):
    """What can be due soon or overdue at ``now``, as limits a store can filter rows on.

    A row passes (``admits``) when any of its clocks can have reached its reminder time:
    open, with its last update (or opening) at or before ``anchor_by[severity]``, a promise
    at or before ``promise_by``, a status change still owed an update at or before
    ``change_by[severity]``, GDCMOC not engaged or the Director not escalated to by a start
    at or before ``engage_by`` / ``director_by``; resolved at or before ``rca_by`` with an
    RCA owed, or since ``final_since``; or several tenants and an update sent (a tenant
    may lag, which only the event log tells).  It may admit rows with nothing due, never
    hold back one with something due.  Build it with :func:`horizon`.
    """

    now: datetime
    anchor_by: Mapping[str, datetime]
    change_by: Mapping[str, datetime]
    promise_by: datetime
    engage_severities: tuple[str, ...]
    engage_by: datetime
    director_severities: tuple[str, ...]
    director_by: datetime
    rca_severities: tuple[str, ...]
    rca_by: datetime
    final_since: datetime

    def admits(self, row: Any) -> bool:
        """True when some clock of ``row`` can be due soon or overdue at ``now``."""
        severity = row.severity
        if row.status == RESOLVED:
            rca_owed = row.rca_internal_at is None or row.rca_external_at is None
            return row.status_changed_at >= self.final_since or (
                severity in self.rca_severities
                and row.resolved_at is not None
                and rca_owed
                and row.resolved_at <= self.rca_by
            )
        last = row.last_update_at
        anchor = self.anchor_by.get(severity)
        change = self.change_by.get(severity)
        changed = row.status_changed_at
        promise = row.promised_update_at
        return (
            (anchor is not None and (last or row.created_at) <= anchor)
            or (promise is not None and promise <= self.promise_by)
            or (change is not None and changed <= change and (last is None or changed >= last))
            or (
                row.engaged_at is None
                and severity in self.engage_severities
                and row.started_at <= self.engage_by
            )
            or (
                row.director_engaged_at is None
                and row.mitigated_at is None
                and row.status in NO_MITIGATION_IN_SIGHT
                and severity in self.director_severities
                and row.started_at <= self.director_by
            )
            or (last is not None and len(row.tenants) > 1)
        )


def horizon(policy: Policy, now: datetime) -> Horizon:
    """The limits under which a row can have a clock due soon or overdue at ``now``.

    Every reminder comes at or after ``due - reminder_lead`` (RCA: a day before), so a
    clock can be due soon only if ``due <= now + lead``; each limit is that bound moved back
    by the shortest delay of its clock under ``policy``.
    """
    ahead = now + policy.reminder_lead
    anchor_by = {}
    change_by = {}
    for severity in SEVERITIES:
        gaps = [gap for gap in policy.gaps.get(severity, {}).values() if gap is not None]
        if gaps:
            anchor_by[severity] = ahead - min(gaps)
        within = policy.on_status_change.get(severity)
        if within is not None:
            change_by[severity] = ahead - within
    return Horizon(
        now,
        anchor_by,
        change_by,
        ahead,
        policy.engage_severities,
        ahead - policy.engage_within,
        policy.director_severities,
        ahead - policy.director_after,
        policy.rca_severities,
        now + max(policy.reminder_lead, _DAY) - policy.rca_within,
        now - policy.final_update_window,
    )


def in_quiet_hours(now: datetime, quiet: tuple[time, time] | None) -> bool:
    """True when ``now`` (UTC) falls in the window ``[start, end)``, which may wrap midnight."""
    if quiet is None:
        return False
    start, end = quiet
    moment = now.astimezone(UTC).time().replace(tzinfo=None)
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end


def suggest_next_update(severity: str, status: str, policy: Policy, now: datetime) -> datetime:
    """A round time (5-minute mark) for the next update promise, within the policy gap.

    Rounded down, so the promise never exceeds the gap; one hour when no gap applies.
    """
    gap = policy.gap(severity, status) or _minutes(60)
    target = now + gap
    target = target.replace(second=0, microsecond=0)
    target -= timedelta(minutes=target.minute % 5)
    return target if target > now else now + gap


# -- the cadence report for `comms timeline` -----------------------------------------------


class UpdateCheck(NamedTuple):
    """One customer update (or a missing one) measured against the deadline that applied.

    ``sent_at`` is None for an update still outstanding and overdue at ``now``.
    ``late_by`` is ``sent_at - due_at`` (or ``now - due_at``); positive means late.
    """

    tenant: str
    sent_at: datetime | None
    due_at: datetime | None
    reason: str
    on_time: bool
    late_by: timedelta | None


class ClockCheck(NamedTuple):
    """One of the other clocks: when it was due, when it was met (None if not yet)."""

    clock: str
    due_at: datetime
    met_at: datetime | None
    on_time: bool | None


class CadenceReport(NamedTuple):
    """Every update of one incident against its deadline, the other clocks, and a summary."""

    ref: str
    severity: str
    updates: list[UpdateCheck]
    clocks: list[ClockCheck]
    summary: str


def parse_promise(value: Any, reference: datetime | None) -> datetime | None:
    """A stored time (ISO 8601), or a promise as a person wrote it (``14:30 UTC``), or None.

    Promises come from template variables; one that cannot be read as a time with a zone
    is ignored rather than guessed (the policy gap still applies).  ``reference`` anchors
    clock times such as ``14:30 UTC`` (the next such time at or after it).
    """
    if not value:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else None
    text = str(value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is not None:
        return moment.astimezone(UTC) if moment.tzinfo else None
    if reference is None:
        return None
    from comms.times import parse_time

    try:
        return parse_time(text, reference)
    except ValueError:
        return None


# "Next update: by 2026-11-27 14:30 UTC, or sooner …" as the templates print it
# (``format_time``), or as a person edits it: a clock time with a zone, or ISO 8601.
_PROMISE = re.compile(
    r"\bnext update\b:?[ \t]*(?:(?:by|at|before)[ \t]+)?"
    r"(?P<time>\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?"
    r"(?:[ \t]*(?:UTC|GMT)\b|Z|[+-]\d{2}:?\d{2}\b)"
    r"|\d{1,2}:\d{2}[ \t]*(?:UTC|GMT)\b)",
    re.IGNORECASE,
)


def promise_in_text(text: str, reference: datetime) -> datetime | None:
    """The "Next update: by …" time promised in a message as sent, or None.

    Reads what the templates print (``Next update: by 2026-11-27 14:30 UTC``) and what a
    hand edit may make of it: a UTC clock time (``by 14:30 UTC``: the next such time at
    or after ``reference``, the moment of sending), or ISO 8601 with a zone.  A time
    without a zone is never guessed.  When the text promises twice, the earlier counts:
    the customer holds us to it.
    """
    from comms.times import parse_time

    found: list[datetime] = []
    for match in _PROMISE.finditer(text):
        written = re.sub(r"(?i)[ \t]*(?:UTC|GMT)$", " UTC", match.group("time").strip())
        try:
            found.append(parse_time(written, reference))
        except ValueError:
            continue
    return min(found, default=None)


def cadence_report(
    incident: Any,
    events: Sequence[Any],
    policy: Policy,
    now: datetime,
    texts: Mapping[tuple[int, int], str] | None = None,
) -> CadenceReport:
    """Replay an incident's event log and measure each update against its deadline.

    ``incident`` is a ClockRow or a ``comms.models.Incident`` (attribute access only);
    ``events`` are ``comms.models.Event``-like (``type``, ``at``, ``data``) in log order.
    Each ``update.sent`` is measured per tenant against the deadline in force just before
    it (severity, status, last update to that tenant and its promise at that moment).  An
    open incident whose current deadline has passed counts one missing, late update.
    ``texts`` maps ``(draft_id, revision)`` to the text as sent: the promise is read from
    it (``promise_in_text``), else from the event's ``next_update_at``.
    """
    ref = incident.ref
    severity = str(getattr(incident.severity, "value", incident.severity))
    status = str(getattr(incident.status, "value", incident.status))
    tenants_all = list(incident.tenants)
    created_at = incident.created_at
    changed_at: datetime | None = created_at
    worst_severity = severity
    last: dict[str, datetime] = {}
    promised: dict[str, datetime | None] = {}
    updates: list[UpdateCheck] = []
    engaged_at = getattr(incident, "engaged_at", None)
    director_at = getattr(incident, "director_engaged_at", None)
    mitigated_at = getattr(incident, "mitigated_at", None)
    resolved_at = getattr(incident, "resolved_at", None)
    rca = {
        RCA_INTERNAL: getattr(incident, "rca_internal_at", None),
        RCA_EXTERNAL: getattr(incident, "rca_external_at", None),
    }
    opened = False
    for event in events:
        kind, data = event.type, event.data
        if kind == "incident.opened":
            if not opened:
                severity = str(data.get("severity", severity))
                status = str(data.get("status", "investigating"))
                changed_at = event.at
                opened = True
        elif kind == "incident.status":
            status = str(data.get("to", status))
            changed_at = event.at
            if status in ("mitigating", "monitoring", RESOLVED) and mitigated_at is None:
                mitigated_at = event.at
            if status == RESOLVED and resolved_at is None:
                resolved_at = event.at
        elif kind == "incident.severity":
            severity = str(data.get("to", severity))
        elif kind == "gdcmoc.engaged":
            engaged_at = engaged_at or event.at
        elif kind == "director.engaged":
            director_at = director_at or event.at
        elif kind in ("rca.internal", "rca.external"):
            key = RCA_INTERNAL if kind == "rca.internal" else RCA_EXTERNAL
            rca[key] = rca[key] or parse_promise(data.get("at"), None) or event.at
        elif kind == "update.sent":
            # The event's time, as the store's last_update_at uses: the report and the live
            # clock agree on when an update went out.
            sent_at = event.at
            text = (texts or {}).get((_int(data.get("draft_id")), _int(data.get("revision"))))
            promise = (
                promise_in_text(text, sent_at)
                if text is not None
                else parse_promise(data.get("next_update_at"), sent_at)
            )
            for tenant in data.get("tenants") or tenants_all:
                inputs = _UpdateInputs(
                    severity, status, created_at, changed_at, last.get(tenant), promised.get(tenant)
                )
                found = _row_due(inputs, policy)
                if found is None:
                    updates.append(UpdateCheck(tenant, sent_at, None, "no deadline", True, None))
                else:
                    due, reason = found
                    updates.append(
                        UpdateCheck(tenant, sent_at, due, reason, sent_at <= due, sent_at - due)
                    )
                last[tenant] = sent_at
                promised[tenant] = promise
        if SEVERITIES.index(severity) < SEVERITIES.index(worst_severity):
            worst_severity = severity
    if status != RESOLVED or now - (changed_at or created_at) <= policy.final_update_window:
        for tenant in tenants_all:
            inputs = _UpdateInputs(
                severity, status, created_at, changed_at, last.get(tenant), promised.get(tenant)
            )
            found = _row_due(inputs, policy)
            if found is not None and now > found[0]:
                updates.append(UpdateCheck(tenant, None, found[0], found[1], False, now - found[0]))
    clocks: list[ClockCheck] = []
    started_at = incident.started_at

    def clock(name: str, due: datetime, met: datetime | None) -> None:
        on_time = None if met is None and now < due else (met is not None and met <= due)
        clocks.append(ClockCheck(name, due, met, on_time))

    if worst_severity in policy.engage_severities:
        clock(ENGAGE, started_at + policy.engage_within, engaged_at)
    if worst_severity in policy.director_severities:
        # Met by a mitigation or by the escalation, whichever came first.
        met = [m for m in (mitigated_at, director_at) if m is not None]
        clock(DIRECTOR, started_at + policy.director_after, min(met, default=None))
    if worst_severity in policy.rca_severities and resolved_at is not None:
        for name in (RCA_INTERNAL, RCA_EXTERNAL):
            clock(name, resolved_at + policy.rca_within, rca[name])
    return CadenceReport(
        ref, worst_severity, updates, clocks, _summary(worst_severity, updates, len(tenants_all))
    )


def _int(value: Any) -> int:
    # Event data is JSON a person or an older version may have written: never fatal.
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0


_CLOCK_NAMES = {
    ENGAGE: "GDCMOC engaged",
    DIRECTOR: "Director escalation (no mitigation)",
    RCA_INTERNAL: "Internal RCA",
    RCA_EXTERNAL: "External RCA",
}


def report_markdown(report: CadenceReport) -> str:
    """The cadence report as a Markdown section for ``comms timeline`` (times in UTC)."""

    def when(moment: datetime | None) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "not yet"

    def verdict(on_time: bool | None, late_by: timedelta | None) -> str:
        if on_time is None:
            return "open"
        if on_time:
            return "on time"
        return f"{_late_words(late_by)} late" if late_by is not None else "missed"

    lines = ["## Update cadence", "", report.summary, ""]
    measured = [u for u in report.updates if u.due_at is not None]
    if measured:
        lines += [
            "| tenant | sent (UTC) | due (UTC) | result | deadline |",
            "|---|---|---|---|---|",
        ]
        for u in measured:
            lines.append(
                f"| {u.tenant} | {when(u.sent_at)} | {when(u.due_at)} | "
                f"{verdict(u.on_time, u.late_by)} | {u.reason} |"
            )
        lines.append("")
    if report.clocks:
        lines += ["| clock | due (UTC) | done (UTC) | result |", "|---|---|---|---|"]
        for c in report.clocks:
            late = c.met_at - c.due_at if c.met_at is not None else None
            result = (
                "not done" if c.on_time is False and c.met_at is None else verdict(c.on_time, late)
            )
            lines.append(
                f"| {_CLOCK_NAMES.get(c.clock, c.clock)} | {when(c.due_at)} | {when(c.met_at)} | "
                f"{result} |"
            )
        lines.append("")
    return "\n".join(lines)


def _summary(severity: str, updates: list[UpdateCheck], tenant_count: int) -> str:
    measured = [u for u in updates if u.due_at is not None]
    if not measured:
        return f"{severity} updates: no update deadline applied"
    on_time = sum(1 for u in measured if u.on_time)
    text = f"{severity} updates on time: {on_time} of {len(measured)}"
    late = [u.late_by for u in measured if not u.on_time and u.late_by is not None]
    if late:
        text += f", worst {_late_words(max(late))} late"
    missing = sum(1 for u in measured if u.sent_at is None)
    if missing:
        text += f" ({missing} still outstanding)"
    if tenant_count > 1:
        text += f", across {tenant_count} tenants"
    return text


# -- holding update ------------------------------------------------------------------------

_CARRIED = ("focus_area", "affected_components", "workaround")
_UNCHANGED = "The impact is unchanged since our last update."
_CONTINUES = (
    "Our team continues to work on restoring full service. We have no new information to share yet."
)


def holding_variables(
    last_sent_variables: Mapping[str, str], *, now: datetime, next_update_at: datetime
) -> dict[str, str]:
    """Variables for the ``update`` template when there is nothing new to say.

    Says that the impact is unchanged (repeating the last stated impact), that work
    continues, and when the next update comes (ISO UTC).  Carries the focus area, affected
    components and workaround over.  Keeps the ETA only while it is still ahead of
    ``now``; otherwise ``eta`` is ``""``, which clears a value carried from the last
    update (a passed ETA must not be repeated).  A holding update after a holding update
    does not stack "unchanged" sentences.  Raises ``ValueError`` when ``next_update_at``
    is not after ``now``.
    """
    if next_update_at <= now:
        raise ValueError("the next update time must be in the future")
    impact = " ".join(str(last_sent_variables.get("impact", "")).split())
    while impact.startswith(_UNCHANGED):
        impact = impact[len(_UNCHANGED) :].lstrip()
    out = {
        "impact": f"{_UNCHANGED} {impact}" if impact else _UNCHANGED,
        "actions": _CONTINUES,
        # ISO UTC: the template reads it as a time, and stored times are ISO.
        "next_update": next_update_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eta": "",
    }
    eta = parse_promise(last_sent_variables.get("eta"), None)
    if eta is not None and eta > now:
        out["eta"] = eta.strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in _CARRIED:
        value = last_sent_variables.get(name)
        if value:
            out[name] = str(value)
    return out


# -- formatting ---------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _human(delta: timedelta) -> str:
    """``60 minutes`` → ``1h``, ``90m`` → ``1h 30m``, ``7 days`` → ``7d``, ``14m``."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days}d")
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if not parts:
        parts.append(f"{secs}s")
    return " ".join(parts)


def _late_words(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    if minutes < 1:
        return f"{int(delta.total_seconds())} seconds"
    if minutes < 120:
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return _human(timedelta(minutes=minutes))


def human_duration(delta: timedelta) -> str:
    """Public form of the short duration used in reasons and reports: ``1h 30m``, ``14m``."""
    return _human(delta)


# -- policy from config -------------------------------------------------------------------

_OFF = ("off", "none", "never", "")
_CONFIG_DURATIONS = (
    "reminder_lead",
    "settle",
    "realert_every",
    "escalate_after",
    "engage_within",
    "director_after",
    "rca_within",
)
_CONFIG_KEYS = (*_CONFIG_DURATIONS, "gap", "on_status_change", "quiet_hours", "quiet_after_update")


def policy_from_config(
    table: Mapping[str, Any], intervals: Mapping[str, int] | None = None
) -> Policy:
    """Build the policy from the raw ``[cadence]`` table of comms.toml.

    ``intervals`` (minutes per severity, from ``[updates] interval_minutes``) gives the
    default gap for every open status; ``[cadence.gap]`` overrides it per severity, with a
    duration (``"60m"``, or a number of minutes) or a table by status (``default`` for the
    rest), and ``"off"`` for none.  Durations take ``15m``, ``2h``, ``7d`` or minutes.
    ``quiet_hours = "22:00-07:00"`` (UTC) mutes S3/S4 nudges only.  An empty table costs
    no validation; a malformed one raises ``ConfigError`` naming the key.
    """
    gaps: dict[str, dict[str, timedelta | None]] = {
        severity: dict.fromkeys(OPEN_STATUSES, _minutes(minutes))
        for severity, minutes in (intervals or {_S1: 60, _S2: 120}).items()
    }
    if not table:
        return Policy(gaps=gaps)
    return _validated_policy(table, gaps)


# No cadence clock is set further out than a year: a longer one is a typo, and times
# beyond the accepted years would overflow when added to an incident's start.
_MAX_MINUTES = 366 * 24 * 60


def _validated_policy(
    table: Mapping[str, Any], gaps: dict[str, dict[str, timedelta | None]]
) -> Policy:
    from comms.errors import ConfigError
    from comms.times import parse_duration

    def duration(key: str, value: Any, *, allow_off: bool = False) -> timedelta | None:
        if allow_off and (
            value is False or (isinstance(value, str) and value.strip().lower() in _OFF)
        ):
            return None
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_MINUTES:
            return _minutes(value)
        if isinstance(value, str):
            try:
                parsed = parse_duration(value)
            except (ValueError, OverflowError):
                parsed = None
            if parsed is not None and timedelta(0) < parsed <= _minutes(_MAX_MINUTES):
                return parsed
        hint = ', or "off"' if allow_off else ""
        raise ConfigError(
            f'cadence.{key}: {value!r} is not a duration; write it like "15m", "2h", '
            f'"7d" or a number of minutes, at most a year{hint}'
        )

    unknown = sorted(set(table) - set(_CONFIG_KEYS))
    if unknown:
        raise ConfigError(f"cadence: unknown key '{unknown[0]}' (known: {', '.join(_CONFIG_KEYS)})")
    values: dict[str, Any] = {}
    for key in _CONFIG_DURATIONS:
        if key in table:
            values[key] = duration(key, table[key])
    if "quiet_after_update" in table:
        values["settle"] = duration("quiet_after_update", table["quiet_after_update"])

    raw_gap = table.get("gap", {})
    if not isinstance(raw_gap, Mapping):
        raise ConfigError('cadence.gap must be a table like [cadence.gap] S1 = "60m"')
    for severity, spec in raw_gap.items():
        if severity not in SEVERITIES:
            raise ConfigError(f"cadence.gap: unknown severity '{severity}' ({_S1}-{_S4})")
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - {*OPEN_STATUSES, "default"})
            if unknown:
                raise ConfigError(
                    f"cadence.gap.{severity}: unknown status '{unknown[0]}' "
                    f"(known: {', '.join(OPEN_STATUSES)}, default)"
                )
            base = gaps.get(severity, {})
            if "default" in spec:
                default = duration(f"gap.{severity}.default", spec["default"], allow_off=True)
                base = dict.fromkeys(OPEN_STATUSES, default)
            row = dict(base)
            for status in OPEN_STATUSES:
                if status in spec:
                    row[status] = duration(f"gap.{severity}.{status}", spec[status], allow_off=True)
            gaps[severity] = row
        else:
            gaps[severity] = dict.fromkeys(
                OPEN_STATUSES, duration(f"gap.{severity}", spec, allow_off=True)
            )
    values["gaps"] = gaps

    raw_change = table.get("on_status_change")
    if raw_change is not None:
        if not isinstance(raw_change, Mapping):
            raise ConfigError('cadence.on_status_change must be a table like { S1 = "15m" }')
        change = dict(DEFAULT_POLICY.on_status_change)
        for severity, spec in raw_change.items():
            if severity not in SEVERITIES:
                raise ConfigError(
                    f"cadence.on_status_change: unknown severity '{severity}' ({_S1}-{_S4})"
                )
            value = duration(f"on_status_change.{severity}", spec, allow_off=True)
            if value is None:
                change.pop(severity, None)
            else:
                change[severity] = value
        values["on_status_change"] = change

    quiet = table.get("quiet_hours")
    if quiet is not None:
        values["quiet_hours"] = _quiet_hours(quiet, ConfigError)
    return Policy(**values)


def _quiet_hours(value: Any, error: type[Exception]) -> tuple[time, time] | None:
    if isinstance(value, str) and value.strip().lower() in _OFF:
        return None
    parts = value.split("-") if isinstance(value, str) else []
    window: tuple[time, time] | None = None
    if len(parts) == 2:
        try:
            window = (time.fromisoformat(parts[0].strip()), time.fromisoformat(parts[1].strip()))
        except ValueError:
            window = None
    if window is None or window[0] == window[1]:
        raise error(
            f'cadence.quiet_hours: {value!r} is not a window; write it like "22:00-07:00" (UTC)'
        )
    return window
