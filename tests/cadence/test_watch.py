"""The watcher's core calls (board, snooze, tick with recorder) on the real SQLite adapters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from comms import watch
from comms.adapters.sqlite_alerts import SqliteAlerts
from comms.alerts import Action
from comms.cadence import DEFAULT_POLICY
from comms.errors import NotFoundError
from comms.models import Severity

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


class ListSink:
    """Keeps what it is sent."""

    name = "list"

    def __init__(self) -> None:
        self.sent: list[Action] = []

    def send(self, action: Action) -> None:
        self.sent.append(action)


@pytest.fixture
def db(store):
    store.create_incident(
        title="t", severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="g"
    )
    with SqliteAlerts(store.path) as opened:
        yield opened


def test_board_counts_and_shows_running_snoozes(db):
    assert watch.snooze(db, "INC-1", 60 * M, actor="g", now=T0) == ("INC-1", T0 + 60 * M, False)
    # 10:50: the first update (due 10:15) is overdue, the Director (due 11:00) due soon.
    found = watch.board(db, DEFAULT_POLICY, T0 + 50 * M)
    assert (found.incidents, found.overdue, found.due_soon) == (1, 1, 1)
    assert found.snoozed == {"INC-1": T0 + 60 * M}
    assert watch.board(db, DEFAULT_POLICY, T0 + 50 * M, snoozes=False).snoozed == {}


def test_snooze_zero_ends_a_snooze_and_an_unknown_incident_is_not_found(db):
    watch.snooze(db, "INC-1", 30 * M, actor="g", now=T0)
    assert watch.snooze(db, "INC-1", timedelta(0), actor="g", now=T0) == ("INC-1", None, True)
    assert watch.snooze(db, "INC-1", timedelta(0), actor="g", now=T0) == ("INC-1", None, False)
    with pytest.raises(NotFoundError, match="no incident 'INC-404'"):
        watch.snooze(db, "INC-404", 30 * M, actor="g", now=T0)


def test_tick_records_each_action_sent_in_the_incident_log(db, store):
    sink = ListSink()
    warnings: list[str] = []
    result = watch.tick(
        db,
        [sink],
        DEFAULT_POLICY,
        T0 + 16 * M,
        warn=warnings.append,
        record=watch.recorder(store),
    )
    assert result == watch.Tick(sink.sent, [])
    assert [(a.kind, a.clock) for a in result.sent] == [("alert", "update")]
    logged = [e for e in store.events("INC-1") if e.type == watch.ALERT_EVENT]
    assert [(e.actor, e.data["sinks"]) for e in logged] == [(watch.ALERT_ACTOR, ["list"])]
    assert warnings == []
