"""Watch: the cadence watcher's use cases over the ``AlertState`` and ``AlertSink`` ports.

``tick`` is one run of the watcher: evaluate every clock, plan with
:func:`comms.alerts.plan`, send each action to every sink, save what was sent.  An action
counts as sent when every sink took it; otherwise its key keeps the previous state, so the
next tick tries again, and only on the sinks that have not taken it yet (those pairs are
stored, so a restarted watcher agrees).  A sink that fails sits out the rest of the tick.

``board`` is the read side (``comms cadence status`` and ``check``), ``snooze`` the mute,
``escalate_director`` records that the Dedicated Director was engaged (stops that clock).
Nothing here prints, reads the environment or the clock: callers pass ``now``, a ``warn``
callback for warnings and a ``record`` callback for each action sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

from comms.alerts import Action, Key, plan
from comms.cadence import ACT_NOW, DUE_SOON, OVERDUE, RESOLVED, Deadline, Policy, evaluate, horizon
from comms.errors import NotFoundError, PublishError, UsageError
from comms.lint.secrets import shown

if TYPE_CHECKING:
    from comms.alerts import AlertState as AlertRecord
    from comms.ports import AlertSink, AlertState, IncidentStore

ALERT_EVENT = "cadence.alert"
ALERT_ACTOR = "comms-cadence"
DIRECTOR_EVENT = "director.engaged"
MAX_SNOOZE = timedelta(days=30)

# (state, clock) of a deadline, and the pairs someone must act on now.
_STATE_CLOCK = itemgetter(5, 1)
_ACT_NOW_PAIRS = frozenset((OVERDUE, clock) for clock in ACT_NOW)

Warn = Callable[[str], None]
Record = Callable[[Action, list[str]], None]


class Board(NamedTuple):
    """Every pending deadline at ``now``, most urgent first, and the snoozes running then.

    ``incidents`` counts the incidents evaluated; ``snoozed`` maps ref → snoozed until.
    """

    now: datetime
    deadlines: list[Deadline]
    incidents: int
    snoozed: dict[str, datetime]

    @property
    def overdue(self) -> int:
        """How many deadlines are overdue."""
        return sum(1 for d in self.deadlines if d.state == OVERDUE)

    @property
    def due_soon(self) -> int:
        """How many deadlines are due soon."""
        return sum(1 for d in self.deadlines if d.state == DUE_SOON)

    @property
    def act_now(self) -> int:
        """How many overdue deadlines someone must act on now (``cadence.ACT_NOW`` clocks)."""
        # Counted in C (the check calls it over tens of thousands of deadlines).
        return sum(map(_ACT_NOW_PAIRS.__contains__, map(_STATE_CLOCK, self.deadlines)))


class Tick(NamedTuple):
    """What one tick did: the actions every sink took, and the names of sinks that failed."""

    sent: list[Action]
    failed: list[str]


class Escalation(NamedTuple):
    """The Director escalation of ``ref``: when, by whom, and whether this call recorded it."""

    ref: str
    at: datetime
    by: str
    recorded: bool


class Snooze(NamedTuple):
    """A snooze after ``snooze``: ``until`` when one runs now, else whether one was ended."""

    ref: str
    until: datetime | None
    ended: bool


def board(
    state: AlertState,
    policy: Policy,
    now: datetime,
    *,
    snoozes: bool = True,
    due_only: bool = False,
) -> Board:
    """Every deadline at ``now``; ``snoozes=False`` skips reading snoozes.

    ``due_only`` reads only the incidents that can have something due soon or overdue
    (``cadence.horizon``): the board then lists every such deadline and perhaps some that
    are not due yet, and still counts every incident tracked.
    """
    if not due_only:
        deadlines, incidents = _evaluate(state, policy, now)
    else:
        owed, since = policy.rca_severities, _since(policy, now)
        rows = (
            state.clock_rows(
                rca_severities=owed, resolved_since=since, horizon=horizon(policy, now)
            )
            or []
        )
        deadlines = evaluate(rows, policy, now)
        incidents = state.tracked(rca_severities=owed, resolved_since=since)
    return Board(now, deadlines, incidents, state.snoozes(now) if snoozes else {})


def escalate_director(store: IncidentStore, ref: str, *, now: datetime, actor: str) -> Escalation:
    """Record that ``actor`` engaged the Dedicated Director on ``ref`` at ``now``.

    Logs ``director.engaged``; the clock rows read the first such event as
    ``director_engaged_at``, which stops the Director clock.  Once recorded it stays: a
    second call records nothing and returns the first.  ``NotFoundError`` for an unknown
    incident, ``UsageError`` for a resolved one (its clocks have stopped).
    """
    incident = store.get_incident(ref)
    for event in store.events(ref):
        if event.type == DIRECTOR_EVENT:
            return Escalation(ref, event.at, str(event.data.get("by", event.actor)), False)
    if incident.status.value == RESOLVED:
        raise UsageError(f"{ref} is resolved: there is nothing left to escalate")
    store.append_event(ref, type=DIRECTOR_EVENT, actor=actor, now=now, data={"by": actor})
    return Escalation(ref, now, actor, True)


def snooze(state: AlertState, ref: str, length: timedelta, *, actor: str, now: datetime) -> Snooze:
    """Mute the watcher's alerts for ``ref`` for ``length`` from ``now``; zero ends a snooze.

    Raises ``NotFoundError`` for an unknown incident, ``UsageError`` for a snooze longer
    than ``MAX_SNOOZE`` (a typo such as 30d for 30m would silence an incident for good).
    """
    if not state.incident_exists(ref):
        raise NotFoundError(
            f"no incident '{shown(ref)}'; see the open ones with: comms incident list"
        )
    if not length:
        return Snooze(ref, None, state.unsnooze(ref))
    if length > MAX_SNOOZE:
        raise UsageError(
            f"snooze: at most {MAX_SNOOZE.days} days at a time; "
            f"snooze again when it ends, or resolve {ref}"
        )
    until = now + length
    state.snooze(ref, until, actor=actor, now=now)
    return Snooze(ref, until, False)


def tick(
    state: AlertState,
    sinks: Sequence[AlertSink],
    policy: Policy,
    now: datetime,
    *,
    warn: Warn,
    record: Record | None = None,
) -> Tick:
    """Run the watcher once at ``now``: send what is due, save the state, return the result.

    ``warn`` gets one line per failed send and per sink that sat out actions;
    ``record(action, sink_names)`` is called for each action sent, after the state is saved.
    Store errors (``StoreError``) propagate; sink errors (``PublishError``) do not.
    """
    deadlines, _ = _evaluate(state, policy, now)
    previous = state.load()
    planned = plan(deadlines, previous, now, policy, state.snoozes(now))
    states: dict[Key, AlertRecord] = dict(planned.states)
    sends = _Sends(sinks, state.partial(), warn, now)
    for action in planned.actions:
        after = states.get(action.key)
        if sends.send(action, after.sends if after else 0):
            continue
        # The previous state of this key stands, so the next tick tries the action again.
        old = previous.get(action.key)
        if old is None:
            states.pop(action.key, None)
        else:
            states[action.key] = old
    failed = sends.failed()
    live = {s.dedup_key for s in states.values()} | {a.dedup_key for a in planned.actions}
    finished = sends.finished + sends.over(live)
    state.save(states, sent=sends.sent, partial=sends.partial, finished=finished)
    if record is not None:
        for action, names in sends.sent:
            record(action, names)
    return Tick([action for action, _ in sends.sent], failed)


def recorder(events: IncidentStore) -> Record:
    """A ``record`` callback that logs each alert sent in the incident's event log."""

    def record(action: Action, sinks: list[str]) -> None:
        data = {
            "action": action.kind,
            "clock": action.clock,
            "due_at": action.due_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sinks": sinks,
        }
        events.append_event(
            action.ref, type=ALERT_EVENT, actor=ALERT_ACTOR, now=action.at, data=data
        )

    return record


def _since(policy: Policy, now: datetime) -> datetime:
    # Resolved since then: the final update may still be owed.
    return now - policy.final_update_window


def _evaluate(state: AlertState, policy: Policy, now: datetime) -> tuple[list[Deadline], int]:
    rows = (
        state.clock_rows(rca_severities=policy.rca_severities, resolved_since=_since(policy, now))
        or []
    )
    return evaluate(rows, policy, now), len(rows)


class _Sends:
    """The sends of one tick: who took what, what to retry, and which sinks are resting.

    A send is keyed by a token (episode, action, count) and a sink slot (position, name);
    ``partial`` pairs are stored so that a retry, even after a restart, skips the sinks
    that took the action already.
    """

    def __init__(
        self, sinks: Sequence[AlertSink], done: set[tuple[str, str]], warn: Warn, now: datetime
    ) -> None:
        self.sinks = sinks
        self.done = done
        self.warn = warn
        self.now = now
        self.sent: list[tuple[Action, list[str]]] = []
        self.partial: list[tuple[str, str, datetime]] = []
        self.finished: list[str] = []
        # A sink that failed once sits out the rest of this tick: after a 429 or a timeout,
        # hammering it with the remaining actions only makes things worse.
        self.resting: dict[int, int] = {}

    def send(self, action: Action, count: int) -> bool:
        """Send ``action`` to every sink that has not taken it; True when all have now."""
        token = f"{action.dedup_key}#{action.kind}#{count}"
        took: list[str] = []
        complete = True
        for index, sink in enumerate(self.sinks):
            slot = f"{index}:{sink.name}"
            if (token, slot) in self.done:
                continue
            if index in self.resting:
                self.resting[index] += 1
                complete = False
                continue
            try:
                sink.send(action)
            except PublishError as exc:
                complete = False
                self.resting[index] = 0
                self.warn(f"warning: {action.kind} {action.ref} {action.clock}: {exc}")
            else:
                took.append(slot)
        if not complete:
            self.partial.extend((token, slot, self.now) for slot in took)
            return False
        self.sent.append((action, [sink.name for sink in self.sinks]))
        if any(t == token for t, _ in self.done):
            self.finished.append(token)
        return True

    def over(self, live: set[str]) -> list[str]:
        """Stored tokens of episodes that are over (resolved, or moved on to another action)."""
        return sorted({t for t, _ in self.done if t.split("#", 1)[0] not in live})

    def failed(self) -> list[str]:
        """Warn about what resting sinks skipped; the names of the sinks that failed."""
        failed = sorted(self.resting)
        for index in failed:
            if self.resting[index]:
                name, skipped = self.sinks[index].name, self.resting[index]
                self.warn(f"warning: {skipped} more for {name} wait for the next check")
        return [self.sinks[index].name for index in failed]
