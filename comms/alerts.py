"""Alerts: a pure state machine from evaluated deadlines to reminders, alerts and resolves.

``plan(deadlines, previous, now, policy, snoozed)`` compares the pending clocks with the
alert state stored by the last run and says what to send:

    (none) ──due soon──▶ reminded ──overdue──▶ alerted ──escalate_after──▶ escalated
       │                                        │  ▲ re-alert every            │ ▲ re-alert
       └───────────────overdue──────────────────┘  └──realert_every            └─┘
    any stage ──deadline met or moved later──▶ (none), with a resolve if an alert went out

Repeats and escalation follow ``realert_every`` and ``escalate_after`` for the update and
engagement clocks, by the day for the week-long RCA clocks, and never for the Director
clock, whose single alert is the prompt to escalate (see ``escalation``).

The state is keyed by ``(ref, clock)``; an episode keeps one ``dedup_key`` from its first
action to its resolve, so PagerDuty sees one incident per missed deadline.  The update
clock runs per tenant: the episode follows the earliest of the incident's tenant
deadlines (an update to one tenant does not resolve another's miss), and each action
names every tenant late or due soon at that moment (``Action.tenants``).  Snoozes and
quiet hours (S3/S4 only) hold actions back without changing state, so nothing is lost:
the action goes out at the first run after the mute ends.  Resolves are never muted.

``payload(action)`` builds what sinks send.  For restricted incidents (pubsec or
security, from the tenants' flags when the deadlines were evaluated) it carries only the
reference, severity and deadline: no tenant, no title, no message text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from comms.cadence import (
    DIRECTOR,
    DUE_SOON,
    ENGAGE,
    OK,
    OVERDUE,
    RCA_EXTERNAL,
    RCA_INTERNAL,
    UPDATE,
    Deadline,
    Policy,
    evaluate,
    human_duration,
    in_quiet_hours,
)

REMIND = "remind"
ALERT = "alert"
REALERT = "re-alert"
ESCALATE = "escalate"
RESOLVE = "resolve"
ACTIONS = (REMIND, ALERT, REALERT, ESCALATE, RESOLVE)

REMINDED = "reminded"
ALERTED = "alerted"
ESCALATED = "escalated"

Key = tuple[str, str]


class AlertState(NamedTuple):
    """What has been sent for one clock of one incident in the current episode."""

    ref: str
    clock: str
    severity: str
    due_at: datetime
    stage: str
    dedup_key: str
    opened_at: datetime
    last_at: datetime
    sends: int
    restricted: bool

    @property
    def key(self) -> Key:
        """``(ref, clock)``: one episode at a time per clock."""
        return (self.ref, self.clock)


class Action(NamedTuple):
    """One thing to send.  ``deadline`` is None for a resolve whose clock is no longer pending.

    ``tenants`` are the tenants whose update is due soon or overdue (update clock only).
    """

    kind: str
    ref: str
    clock: str
    severity: str
    due_at: datetime
    at: datetime
    dedup_key: str
    restricted: bool
    deadline: Deadline | None
    tenants: tuple[str, ...] = ()

    @property
    def key(self) -> Key:
        """``(ref, clock)``."""
        return (self.ref, self.clock)


class Plan(NamedTuple):
    """The actions to send, in order, and the alert state to store once they are sent."""

    actions: list[Action]
    states: dict[Key, AlertState]


def dedup_key(ref: str, clock: str, due_at: datetime) -> str:
    """Stable per episode: the same deadline always maps to the same key."""
    return f"comms/{ref}/{clock}/{due_at.astimezone(UTC).strftime('%Y%m%dT%H%MZ')}"


def escalation(clock: str, policy: Policy) -> tuple[timedelta | None, timedelta | None]:
    """(re-alert every, escalate after) for a clock; None means never.

    The Director clock is a one-off prompt: one alert, no repeats.  RCA clocks run for a
    week, so they repeat and escalate by the day, not every quarter hour.
    """
    if clock == DIRECTOR:
        return None, None
    if clock in (RCA_INTERNAL, RCA_EXTERNAL):
        return policy.rca_realert_every, policy.rca_escalate_after
    return policy.realert_every, policy.escalate_after


def muted(
    deadline: Deadline, now: datetime, policy: Policy, snoozed: Mapping[str, datetime]
) -> bool:
    """True when a snooze covers the incident, or quiet hours cover an S3/S4 nudge."""
    until = snoozed.get(deadline.ref)
    if until is not None and now < until:
        return True
    return deadline.severity in policy.quiet_severities and in_quiet_hours(now, policy.quiet_hours)


def plan(
    deadlines: Sequence[Deadline],
    previous: Mapping[Key, AlertState],
    now: datetime,
    policy: Policy,
    snoozed: Mapping[str, datetime] | None = None,
) -> Plan:
    """Decide what to send at ``now`` and the state to keep afterwards.

    Resolves come first (in stored order), then the actions for pending deadlines in the
    order given (``evaluate`` sorts by due time).  The caller sends each action and stores
    ``states``; for an action that failed to send, it keeps the previous state of that key
    so the action is tried again at the next run.
    """
    snoozed = snoozed or {}
    # One episode per (ref, clock): the earliest deadline (several when tenants lag).
    pending: dict[Key, Deadline] = {}
    late: dict[Key, list[str]] = {}
    for d in deadlines:
        key = (d.ref, d.clock)
        first = pending.get(key)
        if first is None or d.due_at < first.due_at:
            pending[key] = d
        if d.tenants and d.state != OK:
            late.setdefault(key, []).extend(d.tenants)
    states: dict[Key, AlertState] = {}
    resolves: list[Action] = []
    actions: list[Action] = []
    for key, state in previous.items():
        deadline = pending.get(key)
        if deadline is not None and deadline.due_at <= state.due_at:
            # Same episode; a stage change or a changed promise may have pulled it earlier.
            states[key] = (
                state._replace(due_at=deadline.due_at) if deadline.due_at != state.due_at else state
            )
            continue
        if state.stage != REMINDED:
            resolves.append(
                Action(
                    RESOLVE,
                    state.ref,
                    state.clock,
                    state.severity,
                    state.due_at,
                    now,
                    state.dedup_key,
                    # The tenants' flags now, when known: pubsec may have been set since.
                    state.restricted if deadline is None else deadline.restricted,
                    deadline,
                )
            )
    for deadline in deadlines:
        key = (deadline.ref, deadline.clock)
        if pending[key] is not deadline:
            continue
        current = states.get(key)
        if deadline.state not in (DUE_SOON, OVERDUE) or muted(deadline, now, policy, snoozed):
            continue
        if current is None:
            kind = REMIND if deadline.state == DUE_SOON else ALERT
            dedup = dedup_key(deadline.ref, deadline.clock, deadline.due_at)
            states[key] = AlertState(
                deadline.ref,
                deadline.clock,
                deadline.severity,
                deadline.due_at,
                REMINDED if kind == REMIND else ALERTED,
                dedup,
                now,
                now,
                1,
                deadline.restricted,
            )
        elif deadline.state != OVERDUE:
            continue
        elif current.stage == REMINDED:
            kind = ALERT
            states[key] = current._replace(stage=ALERTED, last_at=now, sends=current.sends + 1)
        elif (escalate := escalation(deadline.clock, policy)[1]) is not None and (
            current.stage == ALERTED and now - deadline.due_at >= escalate
        ):
            kind = ESCALATE
            states[key] = current._replace(stage=ESCALATED, last_at=now, sends=current.sends + 1)
        elif (every := escalation(deadline.clock, policy)[0]) is not None and (
            now - current.last_at >= every
        ):
            kind = REALERT
            states[key] = current._replace(last_at=now, sends=current.sends + 1)
        else:
            continue
        actions.append(
            Action(
                kind,
                deadline.ref,
                deadline.clock,
                deadline.severity,
                deadline.due_at,
                now,
                states[key].dedup_key,
                deadline.restricted,
                deadline,
                tuple(dict.fromkeys(late.get(key, ()))),
            )
        )
    return Plan(resolves + actions, states)


def simulate(rows: Sequence[Any], policy: Policy, times: Sequence[datetime]) -> list[Action]:
    """Every action a watcher would send, ticking at each of ``times`` from no state.

    For demos and reports: ``rows`` stay as given (nothing is sent in between).
    """
    states: dict[Key, AlertState] = {}
    sent: list[Action] = []
    for now in times:
        result = plan(evaluate(rows, policy, now), states, now, policy)
        states = result.states
        sent.extend(result.actions)
    return sent


# -- what sinks send ---------------------------------------------------------------------

_WHAT = {
    UPDATE: "customer update",
    ENGAGE: "GDCMOC engagement",
    DIRECTOR: "Director escalation",
    RCA_INTERNAL: "internal RCA",
    RCA_EXTERNAL: "external RCA",
}
RESTRICTED_FIELDS = (
    "action",
    "clock",
    "ref",
    "severity",
    "due_at",
    "minutes",
    "dedup_key",
    "summary",
)


def commands(ref: str, clock: str) -> list[str]:
    """The exact commands that satisfy a clock, for the person reminded."""
    if clock == UPDATE:
        return [
            f"comms draft update --incident {ref}",
            f"comms draft update --incident {ref} --holding",
        ]
    if clock == ENGAGE:
        return [f"comms incident engage {ref}"]
    if clock == DIRECTOR:
        return [f"comms incident escalate {ref} --director"]
    if clock == RCA_INTERNAL:
        return [f"comms incident set {ref} --rca-internal-done"]
    if clock == RCA_EXTERNAL:
        return [f"comms incident set {ref} --rca-external-done"]
    return []


def _clock_words(due_at: datetime) -> str:
    return due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def summary(action: Action) -> str:
    """One line built from the reference, severity, clock and deadline only (safe for pubsec)."""
    what = _WHAT.get(action.clock, action.clock)
    due = _clock_words(action.due_at)
    delta = action.at - action.due_at
    if action.kind == RESOLVE:
        return f"{action.ref} ({action.severity}): {what} due {due} is done; alert resolved"
    if action.kind == REMIND:
        return f"{action.ref} ({action.severity}): {what} due {due} (in {human_duration(-delta)})"
    label = {ALERT: "OVERDUE", REALERT: "STILL OVERDUE", ESCALATE: "ESCALATED, OVERDUE"}[
        action.kind
    ]
    ago = human_duration(delta)
    return f"{label} {action.ref} ({action.severity}): {what} was due {due} ({ago} ago)"


def payload(action: Action) -> dict[str, Any]:
    """The alert as a JSON-ready dict.

    Restricted incidents (pubsec, security) get exactly ``RESTRICTED_FIELDS``: the
    reference, severity and deadline with the action and clock names.  Others also get
    the title, tenants, the tenants whose update is late or due soon (``late_tenants``),
    the reason for the deadline, the commands to run and a text.
    """
    minutes = round((action.at - action.due_at).total_seconds() / 60)
    data: dict[str, Any] = {
        "action": action.kind,
        "clock": action.clock,
        "ref": action.ref,
        "severity": action.severity,
        "due_at": action.due_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "minutes": minutes,  # positive: overdue by; negative: due in
        "dedup_key": action.dedup_key,
        "summary": summary(action),
    }
    if action.restricted:
        return data
    row = action.deadline.row if action.deadline is not None else None
    run = commands(action.ref, action.clock) if action.kind != RESOLVE else []
    data["title"] = getattr(row, "title", None)
    data["tenants"] = list(getattr(row, "tenants", ()) or ())
    data["late_tenants"] = list(action.tenants)
    data["reason"] = (
        action.deadline.reason if action.deadline is not None and action.kind != RESOLVE else None
    )
    data["commands"] = run
    text = data["summary"]
    if action.tenants:
        text += f" for {', '.join(action.tenants)}"
    if data["title"]:
        text += f" · {data['title']}"
    if action.clock == DIRECTOR and action.kind == REMIND:
        text += ". Escalate to the Dedicated Director then, unless a mitigation is in sight"
    elif action.clock == DIRECTOR and action.kind != RESOLVE:
        text += ". Escalate to the Dedicated Director now"
    if action.clock == DIRECTOR and run:
        text += f", then record it: {run[0]}"
    elif len(run) == 2:
        text += f". Run: {run[0]} (or, when nothing changed: {run[1]})"
    elif run:
        text += f". Run: {run[0]}"
    data["text"] = text
    return data
