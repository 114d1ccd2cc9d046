"""The cadence report for `comms timeline`: every update against the deadline in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from comms.cadence import DEFAULT_POLICY, cadence_report
from comms.models import DraftState, MessageKind, Severity, Status
from comms.times import isoformat

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def sent(store, ref, at, promise=None, tenants=("acme",)):
    draft = store.add_revision(
        incident_ref=ref,
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="s",
        body="b",
        variables={},
        author="g",
        now=at,
    )
    store.set_draft_state(
        draft.id,
        DraftState.SENT,
        now=at,
        actor="g",
        event="update.sent",
        data={
            "revision": 1,
            "kind": "update",
            "channel": "switchboard",
            "tenants": list(tenants),
            "sent_at": isoformat(at),
            "next_update_at": isoformat(promise) if promise else None,
        },
    )


def status(store, ref, at, to):
    incident = store.get_incident(ref)
    changes = {"status": to, "updated_at": at}
    if to is Status.RESOLVED:
        changes.update(resolved_at=at, mitigated_at=incident.mitigated_at or at)
    store.update_incident(
        incident.replace(**changes),
        event="incident.status",
        actor="imoc",
        data={"from": incident.status.value, "to": to.value},
    )


def s1_incident(store):
    store.create_incident(
        title="Web UI unavailable",
        severity=Severity.S1,
        tenants=["acme"],
        started_at=T0,
        now=T0,
        actor="g",
    )
    sent(store, "INC-1", T0 + 10 * M, promise=T0 + 60 * M)  # due 10:15 (opening): on time
    sent(store, "INC-1", T0 + 65 * M)  # promised 11:00: 5 minutes late
    status(store, "INC-1", T0 + 90 * M, Status.IDENTIFIED)  # an update is due by 11:45
    sent(store, "INC-1", T0 + 119 * M)  # 14 minutes late
    sent(store, "INC-1", T0 + 150 * M)  # due 12:59: on time


def test_each_update_is_measured_against_the_deadline_in_force(store):
    s1_incident(store)
    report = cadence_report(
        store.get_incident("INC-1"), store.events("INC-1"), DEFAULT_POLICY, T0 + 160 * M
    )
    assert report.summary == "S1 updates on time: 2 of 4, worst 14 minutes late"
    assert [(u.due_at, u.on_time) for u in report.updates] == [
        (T0 + 15 * M, True),
        (T0 + 60 * M, False),
        (T0 + 105 * M, False),
        (T0 + 179 * M, True),
    ]
    assert [u.reason for u in report.updates][1:3] == [
        "promised in the last update",
        "status changed to identified: update within 15m",
    ]
    assert report.updates[2].late_by == 14 * M


def test_an_overdue_update_still_outstanding_counts_as_late(store):
    s1_incident(store)
    report = cadence_report(
        store.get_incident("INC-1"), store.events("INC-1"), DEFAULT_POLICY, T0 + 240 * M
    )
    assert (
        report.summary == "S1 updates on time: 2 of 5, worst 30 minutes late (1 still outstanding)"
    )
    missing = report.updates[-1]
    assert (missing.sent_at, missing.due_at) == (None, T0 + 210 * M)


def test_the_other_clocks_are_reported(store):
    s1_incident(store)
    status(store, "INC-1", T0 + 200 * M, Status.RESOLVED)
    store.record_clock(
        "INC-1",
        column="rca_internal_at",
        at=T0 + timedelta(days=3),
        event="rca.internal",
        actor="g",
        data={"at": isoformat(T0 + timedelta(days=3))},
    )
    report = cadence_report(
        store.get_incident("INC-1"), store.events("INC-1"), DEFAULT_POLICY, T0 + timedelta(days=4)
    )
    clocks = {c.clock: c for c in report.clocks}
    assert (clocks["engage"].met_at, clocks["engage"].on_time) == (T0, True)
    assert clocks["director"].due_at == T0 + 60 * M
    assert clocks["director"].on_time is False  # identified at 11:30, no mitigation before 13:20
    assert clocks["rca-internal"].on_time is True
    assert (clocks["rca-external"].met_at, clocks["rca-external"].on_time) == (None, None)
    # Resolved: nothing is outstanding any more.
    assert report.summary == "S1 updates on time: 2 of 4, worst 14 minutes late"


def test_each_tenant_is_measured_on_its_own_updates(store):
    store.create_incident(
        title="t", severity=Severity.S1, tenants=["acme", "beta"], started_at=T0, now=T0, actor="g"
    )
    sent(store, "INC-1", T0 + 10 * M, tenants=("acme", "beta"))
    sent(store, "INC-1", T0 + 65 * M, tenants=("acme",))
    sent(store, "INC-1", T0 + 80 * M, tenants=("beta",))
    report = cadence_report(
        store.get_incident("INC-1"), store.events("INC-1"), DEFAULT_POLICY, T0 + 90 * M
    )
    assert [(u.tenant, u.on_time) for u in report.updates] == [
        ("acme", True),
        ("beta", True),
        ("acme", True),
        ("beta", False),
    ]
    assert report.summary == "S1 updates on time: 3 of 4, worst 10 minutes late, across 2 tenants"


def test_a_clock_row_works_as_well_as_an_incident(store):
    s1_incident(store)
    row = store.clock_rows()[0]
    incident = store.get_incident("INC-1")
    events = store.events("INC-1")
    now = T0 + 160 * M
    assert cadence_report(row, events, DEFAULT_POLICY, now) == cadence_report(
        incident, events, DEFAULT_POLICY, now
    )


def test_no_deadline_no_claim(store):
    store.create_incident(
        title="t", severity=Severity.S4, tenants=["acme"], started_at=T0, now=T0, actor="g"
    )
    sent(store, "INC-1", T0 + 10 * M)
    report = cadence_report(
        store.get_incident("INC-1"), store.events("INC-1"), DEFAULT_POLICY, T0 + 600 * M
    )
    assert report.summary == "S4 updates: no update deadline applied"


def test_the_final_resolved_update_is_measured_too(store):
    s1_incident(store)
    status(store, "INC-1", T0 + 200 * M, Status.RESOLVED)
    sent(store, "INC-1", T0 + 210 * M)
    report = cadence_report(
        store.get_incident("INC-1"), store.events("INC-1"), DEFAULT_POLICY, T0 + 300 * M
    )
    assert report.updates[-1].reason == "resolved: final update within 15m"
    assert report.updates[-1].due_at == T0 + 215 * M
    assert report.summary == "S1 updates on time: 3 of 5, worst 14 minutes late"


def test_the_report_as_a_markdown_section_for_the_timeline(store):
    from comms.cadence import report_markdown

    s1_incident(store)
    report = cadence_report(
        store.get_incident("INC-1"), store.events("INC-1"), DEFAULT_POLICY, T0 + 160 * M
    )
    text = report_markdown(report)
    assert text.startswith(
        "## Update cadence\n\nS1 updates on time: 2 of 4, worst 14 minutes late\n\n"
    )
    assert (
        "| acme | 2026-11-27 11:59 | 2026-11-27 11:45 | 14 minutes late | "
        "status changed to identified: update within 15m |"
    ) in text
    assert "| GDCMOC engaged | 2026-11-27 10:10 | 2026-11-27 10:00 | on time |" in text
    assert "| Director escalation (no mitigation) | 2026-11-27 11:00 | not yet | not done |" in text
