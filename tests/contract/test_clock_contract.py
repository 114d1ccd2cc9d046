"""Clock rows and the cadence watcher's state (``ClockSource`` and ``AlertState``).

Every test runs once per backend (``backends.BACKENDS``); ``alerts`` is the backend's
alert state opened on the same database as ``store``, as ``comms cadence`` opens it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from comms.alerts import Action
from comms.alerts import AlertState as AlertRecord
from comms.bootstrap import open_alert_state
from comms.models import DraftState, MessageKind, Severity, Status
from comms.ports import AlertState, Store
from comms.records import ClockRow
from comms.times import isoformat

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)
DAY = timedelta(days=1)


def populate(store: Store) -> None:
    """INC-1 (S1, an update sent), INC-2 (S2, pubsec and security), INC-3 (S1, resolved
    at T0 + 60m with its internal RCA done)."""
    store.create_incident(
        title="A",
        severity=Severity.S1,
        tenants=["acme", "beta"],
        started_at=T0 - 5 * M,
        now=T0,
        actor="g",
    )
    store.create_incident(
        title="B",
        severity=Severity.S2,
        tenants=["gov"],
        started_at=T0,
        now=T0 + M,
        actor="g",
        pubsec=True,
        security=True,
    )
    store.create_incident(
        title="C", severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="g"
    )
    send(store, "INC-1", sent_at=T0 + 12 * M, promise=isoformat(T0 + 40 * M))
    resolved = store.get_incident("INC-3").replace(
        status=Status.RESOLVED,
        updated_at=T0 + 60 * M,
        mitigated_at=T0 + 30 * M,
        resolved_at=T0 + 60 * M,
    )
    store.update_incident(resolved, event="incident.status", actor="g", data={})
    store.record_clock(
        "INC-3", column="rca_internal_at", at=T0 + 2 * DAY, event="rca.internal", actor="g", data={}
    )


def send(store: Store, ref: str, *, sent_at: datetime, promise: str | None) -> None:
    """Draft an update for ``ref`` and mark it sent at ``sent_at`` with ``promise``."""
    draft = store.add_revision(
        incident_ref=ref,
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="s",
        body="b",
        variables={},
        author="g",
        now=sent_at - 2 * M,
    )
    store.set_draft_state(
        draft.id,
        DraftState.SENT,
        now=sent_at,
        actor="g",
        event="update.sent",
        data={"next_update_at": promise},
    )


EXPECTED = [
    ClockRow(
        "INC-1",
        "A",
        "S1",
        "investigating",
        ("acme", "beta"),
        False,
        False,
        T0 - 5 * M,
        T0,
        T0,
        T0,
        None,
        None,
        T0 + 12 * M,
        T0 + 40 * M,
        None,
        None,
    ),
    ClockRow(
        "INC-2",
        "B",
        "S2",
        "investigating",
        ("gov",),
        True,
        True,
        T0,
        T0 + M,
        T0 + M,
        T0 + M,
        None,
        None,
        None,
        None,
        None,
        None,
    ),
    ClockRow(
        "INC-3",
        "C",
        "S1",
        "resolved",
        ("acme",),
        False,
        False,
        T0,
        T0,
        T0,
        T0 + 60 * M,
        T0 + 30 * M,
        T0 + 60 * M,
        None,
        None,
        T0 + 2 * DAY,
        None,
    ),
]


# -- clock rows -------------------------------------------------------------------------


def test_clock_rows_hold_every_clock_of_the_open_incidents_oldest_first(store: Store) -> None:
    populate(store)
    assert store.clock_rows(open_only=False) == EXPECTED
    assert store.clock_rows() == EXPECTED[:2]


def test_clock_rows_of_named_incidents_only(store: Store) -> None:
    populate(store)
    assert store.clock_rows(open_only=False, refs=["INC-3", "INC-1"]) == [
        EXPECTED[0],
        EXPECTED[2],
    ]
    assert store.clock_rows(refs=["INC-3"]) == []  # resolved, and open_only by default
    assert store.clock_rows(open_only=False, refs=[]) == []
    assert store.clock_rows(open_only=False, refs=["INC-404"]) == []
    many = [f"INC-{n}" for n in range(1, 700)]  # past SQLite's 500 bound variables
    assert store.clock_rows(open_only=False, refs=many) == EXPECTED


def test_the_alert_state_reads_exactly_the_stores_clock_rows(
    store: Store, alerts: AlertState
) -> None:
    populate(store)
    assert alerts.clock_rows() == store.clock_rows()
    assert alerts.clock_rows(open_only=False) == store.clock_rows(open_only=False)
    assert alerts.incident_exists("INC-3") is True
    assert alerts.incident_exists("INC-4") is False


def test_resolved_incidents_still_owing_an_rca_are_read_for_those_severities(
    store: Store, alerts: AlertState
) -> None:
    populate(store)
    assert alerts.clock_rows(rca_severities=("S1",)) == EXPECTED  # INC-3 owes its external RCA
    assert alerts.clock_rows(rca_severities=("S2",)) == EXPECTED[:2]
    store.record_clock(
        "INC-3", column="rca_external_at", at=T0 + 3 * DAY, event="rca.external", actor="g", data={}
    )
    assert [r.ref for r in alerts.clock_rows(rca_severities=("S1",))] == ["INC-1", "INC-2"]


def test_recently_resolved_incidents_are_read_for_their_final_update(
    store: Store, alerts: AlertState
) -> None:
    populate(store)  # INC-3 resolved at T0 + 60m
    assert alerts.clock_rows(resolved_since=T0 + 60 * M) == EXPECTED
    assert alerts.clock_rows(resolved_since=T0 + 61 * M) == EXPECTED[:2]
    assert alerts.clock_rows(open_only=False, resolved_since=T0 + 61 * M) == EXPECTED


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-11-27T11:30:00Z", T0 + 90 * M),
        ("2026-11-27T12:30:00+01:00", T0 + 90 * M),
        ("11:30 UTC", T0 + 90 * M),
        ("2026-11-27 11:30 UTC", T0 + 90 * M),
        ("by 11:30 UTC, or sooner", None),
        ("2026-11-27T11:30", None),  # no zone: never guessed
        (None, None),
    ],
)
def test_a_promise_as_a_person_typed_it_is_read_or_ignored_never_fatal(
    store: Store, alerts: AlertState, stored: str | None, expected: datetime | None
) -> None:
    store.create_incident(
        title="A", severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="g"
    )
    send(store, "INC-1", sent_at=T0 + 10 * M, promise=stored)
    (row,) = store.clock_rows()
    assert (row.last_update_at, row.promised_update_at) == (T0 + 10 * M, expected)
    assert alerts.clock_rows() == [row]


# -- alert state ------------------------------------------------------------------------


def record(ref: str, clock: str = "update", **fields: object) -> AlertRecord:
    base = AlertRecord(
        ref, clock, "S1", T0, "alerted", f"comms/{ref}/{clock}/x", T0, T0 + M, 2, False
    )
    return base._replace(**fields)


def action(ref: str, kind: str = "alert") -> Action:
    return Action(kind, ref, "update", "S1", T0, T0 + 20 * M, f"comms/{ref}/update/x", False, None)


def test_the_alert_state_is_saved_whole_and_replaced_whole(alerts: AlertState) -> None:
    assert alerts.load() == {}
    first = {s.key: s for s in (record("INC-1"), record("INC-2", restricted=True, sends=1))}
    alerts.save(first, sent=[(action("INC-1"), ["slack", "pagerduty"])])
    assert alerts.load() == first
    second = {s.key: s for s in (record("INC-2", "engage", stage="escalated"),)}
    alerts.save(second)
    assert alerts.load() == second
    alerts.save({})
    assert alerts.load() == {}


def test_partial_sends_are_remembered_until_their_action_is_finished(alerts: AlertState) -> None:
    assert alerts.partial() == set()
    alerts.save({}, partial=[("tok-1", "slack", T0), ("tok-2", "slack", T0)])
    alerts.save({}, partial=[("tok-1", "pagerduty", T0 + M), ("tok-1", "slack", T0 + M)])
    assert alerts.partial() == {("tok-1", "slack"), ("tok-1", "pagerduty"), ("tok-2", "slack")}
    alerts.save({}, finished=["tok-1"])
    assert alerts.partial() == {("tok-2", "slack")}
    # Finishing in the same save forgets what that save remembered.
    alerts.save({}, partial=[("tok-3", "slack", T0)], finished=["tok-3", "tok-2"])
    assert alerts.partial() == set()


def test_snoozes_run_until_their_time_and_can_be_replaced_or_ended(
    store: Store, alerts: AlertState
) -> None:
    assert alerts.snoozes(T0) == {}
    alerts.snooze("INC-1", T0 + 30 * M, actor="g", now=T0)
    alerts.snooze("INC-2", T0 + 10 * M, actor="g", now=T0)
    assert alerts.snoozes(T0 + 9 * M) == {"INC-1": T0 + 30 * M, "INC-2": T0 + 10 * M}
    assert alerts.snoozes(T0 + 10 * M) == {"INC-1": T0 + 30 * M}
    alerts.snooze("INC-1", T0 + 5 * M, actor="h", now=T0 + M)  # replaces the first
    assert alerts.snoozes(T0 + 4 * M) == {"INC-1": T0 + 5 * M, "INC-2": T0 + 10 * M}
    assert alerts.unsnooze("INC-1") is True
    assert alerts.unsnooze("INC-1") is False
    assert alerts.snoozes(T0) == {"INC-2": T0 + 10 * M}


def test_the_alert_state_outlives_its_handle(
    database_url: str, alerts: AlertState, reopen: Callable[[], Store]
) -> None:
    state = {record("INC-1").key: record("INC-1")}
    alerts.save(state, partial=[("tok", "slack", T0)])
    alerts.snooze("INC-1", T0 + 30 * M, actor="g", now=T0)
    alerts.close()
    again = open_alert_state(database_url)
    try:
        assert again.load() == state
        assert again.partial() == {("tok", "slack")}
        assert again.snoozes(T0) == {"INC-1": T0 + 30 * M}
    finally:
        again.close()
    assert reopen().list_incidents() == []  # the store's own data is left alone


# -- per-tenant clocks, the Director escalation, pubsec from the tenants ----------------------


def sent_to(store: Store, ref: str, at: datetime, tenants: list[str], promise: str | None) -> None:
    """Mark a fresh draft of ``ref`` sent at ``at`` to ``tenants`` only."""
    draft = store.add_revision(
        incident_ref=ref,
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="s",
        body="b",
        variables={},
        author="g",
        now=at - M,
    )
    store.set_draft_state(
        draft.id,
        DraftState.SENT,
        now=at,
        actor="g",
        event="update.sent",
        data={"tenants": tenants, "next_update_at": promise},
    )


def test_clock_rows_name_the_tenants_the_latest_update_missed(
    store: Store, alerts: AlertState
) -> None:
    populate(store)  # INC-1 (acme, beta): the 10:12 update went to both
    assert store.clock_rows()[0].lagging == ()
    sent_to(store, "INC-1", T0 + 30 * M, ["beta"], isoformat(T0 + 50 * M))
    (first, _) = store.clock_rows()
    assert (first.last_update_at, first.promised_update_at) == (T0 + 30 * M, T0 + 50 * M)
    assert first.lagging == (("acme", T0 + 12 * M, T0 + 40 * M),)
    assert alerts.clock_rows() == store.clock_rows()
    sent_to(store, "INC-1", T0 + 35 * M, ["acme", "beta"], None)
    assert store.clock_rows()[0].lagging == ()
    assert alerts.clock_rows() == store.clock_rows()


def test_the_director_escalation_is_read_from_the_event_log(
    store: Store, alerts: AlertState
) -> None:
    populate(store)
    for at in (T0 + 61 * M, T0 + 70 * M):  # the first one counts
        store.append_event(
            "INC-1", type="director.engaged", actor="imoc", now=at, data={"by": "imoc"}
        )
    (first, second) = store.clock_rows()
    assert (first.director_engaged_at, second.director_engaged_at) == (T0 + 61 * M, None)
    assert alerts.clock_rows() == store.clock_rows()
    # Once mitigated the Director clock has stopped anyway; the row no longer carries it.
    mitigated = store.get_incident("INC-1").replace(
        status=Status.MITIGATING, updated_at=T0 + 80 * M, mitigated_at=T0 + 80 * M
    )
    store.update_incident(mitigated, event="incident.status", actor="g", data={})
    assert store.clock_rows()[0].director_engaged_at is None
    assert alerts.clock_rows() == store.clock_rows()


def test_pubsec_follows_the_tenants_current_flags(store: Store, alerts: AlertState) -> None:
    from comms.models import Tenant

    store.put_tenant(Tenant(id="acme", name="Acme"))
    store.put_tenant(Tenant(id="beta", name="Beta"))
    populate(store)
    assert [r.pubsec for r in store.clock_rows(open_only=False)] == [False, True, False]
    store.put_tenant(Tenant(id="beta", name="Beta", pubsec=True))
    assert [r.pubsec for r in store.clock_rows(open_only=False)] == [True, True, False]
    assert alerts.clock_rows(open_only=False) == store.clock_rows(open_only=False)


def test_the_due_filter_reads_fewer_rows_and_loses_no_deadline(
    store: Store, alerts: AlertState
) -> None:
    from comms.cadence import DEFAULT_POLICY, OK, evaluate, horizon

    populate(store)
    for n in range(4):  # quiet S3s: nothing can be due
        store.create_incident(
            title=f"q{n}", severity=Severity.S3, tenants=["acme"], started_at=T0, now=T0, actor="g"
        )
    for minutes in (0, 14, 16, 45, 60, 61, 24 * 60, 8 * 24 * 60):
        now = T0 + minutes * M
        args = {"rca_severities": ("S1",), "resolved_since": now - DAY}
        every = alerts.clock_rows(**args) or []
        due = alerts.clock_rows(**args, horizon=horizon(DEFAULT_POLICY, now)) or []
        assert {r.ref for r in due} <= {r.ref for r in every}
        assert len(due) < len(every)
        assert alerts.tracked(**args) == len(every)
        late = [d for d in evaluate(every, DEFAULT_POLICY, now) if d.state != OK]
        assert [d for d in evaluate(due, DEFAULT_POLICY, now) if d.state != OK] == late
