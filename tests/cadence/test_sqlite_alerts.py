"""SqliteAlerts on the store's file: its clock-row reader agrees with the store; state persists."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comms.adapters.sqlite_alerts import SqliteAlerts, _tenant_list
from comms.alerts import AlertState
from comms.bootstrap import parse_database_url
from comms.errors import ConfigError, StoreError
from comms.models import DraftState, MessageKind, Severity, Status
from comms.times import isoformat

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def populate(store):
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
        now=T0,
        actor="g",
        pubsec=True,
        security=True,
    )
    store.create_incident(
        title="C", severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="g"
    )
    draft = store.add_revision(
        incident_ref="INC-1",
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="s",
        body="b",
        variables={},
        author="g",
        now=T0 + 10 * M,
    )
    store.set_draft_state(
        draft.id,
        DraftState.SENT,
        now=T0 + 12 * M,
        actor="g",
        event="update.sent",
        data={"next_update_at": isoformat(T0 + 40 * M)},
    )
    incident = store.get_incident("INC-3")
    store.update_incident(
        incident.replace(
            status=Status.RESOLVED,
            updated_at=T0 + 60 * M,
            mitigated_at=T0 + 30 * M,
            resolved_at=T0 + 60 * M,
        ),
        event="incident.status",
        actor="g",
        data={"from": "investigating", "to": "resolved"},
    )
    store.record_clock(
        "INC-3",
        column="rca_internal_at",
        at=T0 + 2 * 24 * 60 * M,
        event="rca.internal",
        actor="g",
        data={},
    )


def test_the_light_reader_returns_exactly_the_stores_clock_rows(store):
    populate(store)
    with SqliteAlerts(store.path) as db:
        assert db.clock_rows() == store.clock_rows()
        assert db.clock_rows(open_only=False) == store.clock_rows(open_only=False)
        rows = db.clock_rows(rca_severities=("S1",))
    assert [r.ref for r in rows] == ["INC-1", "INC-2", "INC-3"]  # INC-3 still owes its external RCA
    assert rows[0].promised_update_at == T0 + 40 * M
    assert rows[0].tenants == ("acme", "beta")
    assert rows[2].rca_internal_at == T0 + 2 * 24 * 60 * M


def test_many_escalation_refs_read_every_escalation_event_with_the_same_result(store, monkeypatch):
    # Above _EVERY_EVENT_ABOVE refs, one pass over every director.engaged event replaces
    # the IN (...) look-ups: the first escalation of each incident, the others' dropped.
    populate(store)
    for ref, minutes in (("INC-1", 50), ("INC-1", 70), ("INC-2", 65), ("INC-3", 20)):
        store.append_event(
            ref, type="director.engaged", actor="g", now=T0 + minutes * M, data={"by": "g"}
        )
    with SqliteAlerts(store.path) as db:
        by_ref = db.clock_rows(rca_severities=("S1",))
        monkeypatch.setattr("comms.adapters.sqlite_alerts._EVERY_EVENT_ABOVE", 0)
        every = db.clock_rows(rca_severities=("S1",))
        assert db.clock_rows() == store.clock_rows()
    assert every == by_ref
    assert [r.director_engaged_at for r in every] == [T0 + 50 * M, T0 + 65 * M, None]


def test_resolved_incidents_with_both_rcas_done_are_not_read(store):
    populate(store)
    store.record_clock(
        "INC-3",
        column="rca_external_at",
        at=T0 + 3 * 24 * 60 * M,
        event="rca.external",
        actor="g",
        data={},
    )
    with SqliteAlerts(store.path) as db:
        assert [r.ref for r in db.clock_rows(rca_severities=("S1",))] == ["INC-1", "INC-2"]


def test_a_file_without_the_store_schema_reads_as_no_rows(tmp_path):
    with SqliteAlerts(tmp_path / "empty.db") as db:
        assert db.clock_rows() is None
        assert db.incident_exists("INC-1") is None
        assert db.snoozes(T0) == {}


def test_alert_state_and_snoozes_survive_a_new_connection(store):
    state = AlertState(
        "INC-1", "update", "S1", T0, "alerted", "comms/INC-1/update/x", T0, T0 + M, 2, True
    )
    with SqliteAlerts(store.path) as db:
        db.save({state.key: state})
        db.snooze("INC-1", T0 + 30 * M, actor="g", now=T0)
    with SqliteAlerts(store.path) as db:
        assert db.load() == {state.key: state}
        assert db.snoozes(T0 + 29 * M) == {"INC-1": T0 + 30 * M}
        assert db.snoozes(T0 + 30 * M) == {}
        assert db.unsnooze("INC-1")
        assert not db.unsnooze("INC-1")
        mode = db.connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_its_tables_live_beside_the_stores_and_leave_its_schema_version_alone(store):
    version = store.connection.execute("PRAGMA user_version").fetchone()[0]
    with SqliteAlerts(store.path) as db:
        db.load()
    tables = {
        r[0]
        for r in sqlite3.connect(store.path).execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )
    }
    assert {"cadence_alerts", "cadence_snoozes", "cadence_alert_log", "incidents"} <= tables
    assert store.connection.execute("PRAGMA user_version").fetchone()[0] == version


def test_a_corrupt_file_is_a_store_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database at all, not even close" * 100)
    with SqliteAlerts(bad) as db, pytest.raises(StoreError, match="not a readable comms database"):
        db.clock_rows()


def test_database_path_accepts_paths_and_sqlite_urls(tmp_path):
    assert parse_database_url(f"sqlite:///{tmp_path}/x.db").path == tmp_path / "x.db"
    assert parse_database_url(str(tmp_path / "y.db")).path == tmp_path / "y.db"
    with pytest.raises(ConfigError, match="scheme 'mysql'"):
        parse_database_url("mysql://db/comms")  # postgresql:// is a registered store now


@given(st.lists(st.text(max_size=12), max_size=4))
def test_the_tenant_list_fast_path_reads_what_json_wrote(tenants):
    assert _tenant_list(json.dumps(tenants)) == tuple(tenants)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-11-27T11:30:00Z", T0 + 90 * M),
        ("11:30 UTC", T0 + 90 * M),
        ("2026-11-27 11:30 UTC", T0 + 90 * M),
        ("by 11:30 UTC, or sooner", None),
        ("2026-11-27T11:30", None),  # no zone: never guessed
    ],
)
def test_a_promise_as_a_person_typed_it_is_read_or_ignored_never_fatal(store, stored, expected):
    store.create_incident(
        title="A", severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="g"
    )
    draft = store.add_revision(
        incident_ref="INC-1",
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="s",
        body="b",
        variables={},
        author="g",
        now=T0 + 5 * M,
    )
    store.set_draft_state(
        draft.id,
        DraftState.SENT,
        now=T0 + 10 * M,
        actor="g",
        event="update.sent",
        data={"next_update_at": stored},
    )
    with SqliteAlerts(store.path) as db:
        (row,) = db.clock_rows()
    assert row.promised_update_at == expected


def test_recently_resolved_incidents_are_read_for_their_final_update(store):
    populate(store)  # INC-3 resolved at T0 + 60m
    with SqliteAlerts(store.path) as db:
        recent = db.clock_rows(resolved_since=T0 + 60 * M)
        later = db.clock_rows(resolved_since=T0 + 61 * M)
    assert [r.ref for r in recent] == ["INC-1", "INC-2", "INC-3"]
    assert [r.ref for r in later] == ["INC-1", "INC-2"]
