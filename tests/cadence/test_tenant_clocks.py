"""Cadence is owed to each customer: one update clock per affected tenant.

An update counts for the tenants it was delivered to (``update.sent`` data ``tenants``);
``comms cadence check`` and ``watch`` name the tenant that is late, by id, and never for a
restricted (pubsec, security) incident.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from comms.adapters.sqlite_alerts import SqliteAlerts
from comms.alerts import payload, plan
from comms.cadence import DEFAULT_POLICY, OK, OVERDUE, cadence_report, evaluate
from comms.models import DraftState, MessageKind, Severity
from comms.times import isoformat

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def sent(store, ref, at, *, tenants, promise=None):
    """Mark a fresh draft of ``ref`` sent at ``at`` to ``tenants``, as delivery records it."""
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
        data={
            "tenants": list(tenants),
            "next_update_at": isoformat(promise) if promise else None,
        },
    )


def two_tenants(store, *, pubsec=False):
    store.create_incident(
        title="CI runners degraded",
        severity=Severity.S1,
        tenants=["acme", "globex"],
        started_at=T0,
        now=T0,
        actor="g",
        pubsec=pubsec,
    )
    sent(store, "INC-1", T0 + 10 * M, tenants=["acme"])


# -- the core ---------------------------------------------------------------------------


def test_an_update_to_one_tenant_leaves_the_others_clock_running(row):
    # acme heard at 10:10; globex never did.
    r = row(
        tenants=("acme", "globex"), last_update_at=T0 + 10 * M, lagging=(("globex", None, None),)
    )
    found = {
        d.tenants: d for d in evaluate([r], DEFAULT_POLICY, T0 + 20 * M) if d.clock == "update"
    }
    assert set(found) == {("acme",), ("globex",)}
    assert (found[("globex",)].state, found[("globex",)].due_at) == (OVERDUE, T0 + 15 * M)
    assert found[("globex",)].reason == "first update within 15m of opening"
    assert (found[("acme",)].state, found[("acme",)].due_at) == (OK, T0 + 70 * M)


def test_tenants_in_step_share_one_deadline(row):
    r = row(tenants=("acme", "globex", "initech"), last_update_at=T0 + 10 * M)
    (update,) = [d for d in evaluate([r], DEFAULT_POLICY, T0 + 20 * M) if d.clock == "update"]
    assert update.tenants == ("acme", "globex", "initech")
    assert update.due_at == T0 + 70 * M


def test_one_alert_per_incident_names_every_late_tenant(row):
    r = row(
        tenants=("acme", "globex", "initech"),
        last_update_at=T0 + 30 * M,
        lagging=(("globex", None, None), ("initech", T0 + 5 * M, T0 + 20 * M)),
    )
    now = T0 + 25 * M
    result = plan(evaluate([r], DEFAULT_POLICY, now), {}, now, DEFAULT_POLICY)
    (alert,) = [a for a in result.actions if a.clock == "update"]
    # The earliest deadline (globex, due 10:15) keeps the usual key and dedup key.
    assert alert.dedup_key == "comms/INC-1/update/20261127T1015Z"
    assert alert.tenants == ("globex", "initech")
    sent_payload = payload(alert)
    assert sent_payload["late_tenants"] == ["globex", "initech"]
    assert "customer update was due 2026-11-27 10:15 UTC" in sent_payload["text"]
    assert "for globex, initech" in sent_payload["text"]


def test_the_late_tenant_keeps_its_episode_when_another_tenant_is_updated(row):
    first = row(tenants=("acme", "globex"))
    now = T0 + 16 * M
    state = plan(evaluate([first], DEFAULT_POLICY, now), {}, now, DEFAULT_POLICY).states
    # acme is updated at 10:20; globex is still owed its first update: no resolve.
    later = first._replace(last_update_at=T0 + 20 * M, lagging=(("globex", None, None),))
    now = T0 + 21 * M
    result = plan(evaluate([later], DEFAULT_POLICY, now), state, now, DEFAULT_POLICY)
    assert [a.kind for a in result.actions] == []
    assert result.states[("INC-1", "update")].dedup_key == state[("INC-1", "update")].dedup_key


def test_restricted_alerts_never_name_a_tenant(row):
    r = row(
        tenants=("acme", "stark-federal"),
        pubsec=True,
        last_update_at=T0 + 10 * M,
        lagging=(("stark-federal", None, None),),
    )
    now = T0 + 20 * M
    (alert,) = plan(evaluate([r], DEFAULT_POLICY, now), {}, now, DEFAULT_POLICY).actions
    text = json.dumps(payload(alert))
    assert "stark" not in text
    assert "acme" not in text


# -- the stores derive it from the event log ----------------------------------------------


def test_the_clock_rows_carry_the_tenants_the_last_update_missed(store):
    two_tenants(store)
    (row,) = store.clock_rows()
    assert row.last_update_at == T0 + 10 * M
    assert row.lagging == (("globex", None, None),)
    with SqliteAlerts(store.path) as db:
        assert db.clock_rows() == [row]
    sent(store, "INC-1", T0 + 30 * M, tenants=["globex"], promise=T0 + 60 * M)
    (row,) = store.clock_rows()
    assert row.lagging == (("acme", T0 + 10 * M, None),)
    sent(store, "INC-1", T0 + 40 * M, tenants=["acme", "globex"])
    assert store.clock_rows()[0].lagging == ()


def test_the_live_clock_and_the_timeline_report_agree(store):
    two_tenants(store)
    now = T0 + 20 * M
    report = cadence_report(store.get_incident("INC-1"), store.events("INC-1"), DEFAULT_POLICY, now)
    outstanding = [(u.tenant, u.due_at) for u in report.updates if u.sent_at is None]
    overdue = [
        (d.tenants, d.due_at)
        for d in evaluate(store.clock_rows(), DEFAULT_POLICY, now)
        if d.state == OVERDUE
    ]
    assert outstanding == [("globex", T0 + 15 * M)]
    assert overdue == [(("globex",), T0 + 15 * M)]


# -- the CLI ------------------------------------------------------------------------------


def run(cli, *args):
    return CliRunner().invoke(cli, ["cadence", *args], catch_exceptions=False)


def test_check_names_the_late_tenant_and_exits_1(cli, store):
    two_tenants(store)
    result = run(cli, "check", "--at", "2026-11-27T10:20Z")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(
        line.startswith("OVERDUE   INC-1  S1  update  due 2026-11-27 10:15 UTC  5m ago")
        and line.endswith("for globex")
        for line in lines
    ), result.output
    assert result.output.endswith(
        "1 overdue, 0 due soon, 1 incidents tracked at 2026-11-27 10:20 UTC\n"
    )
    doc = json.loads(run(cli, "check", "--at", "2026-11-27T10:20Z", "--format", "json").output)
    assert [d["tenants"] for d in doc["deadlines"] if d["clock"] == "update"] == [
        ["globex"],
        ["acme"],
    ]


def test_check_never_names_a_restricted_incidents_tenants(cli, store):
    two_tenants(store, pubsec=True)
    result = run(cli, "check", "--at", "2026-11-27T10:20Z")
    assert result.exit_code == 1
    assert "globex" not in result.output
    assert "acme" not in result.output
    assert "tenant 2 of 2" in result.output  # which one is late, without naming it
    doc = run(cli, "check", "--at", "2026-11-27T10:20Z", "--format", "json").output
    assert "globex" not in doc
    assert "acme" not in doc


def test_watch_alerts_for_the_late_tenant_and_resolves_when_it_is_updated(cli, store):
    two_tenants(store)
    first = run(cli, "watch", "--once", "--at", "2026-11-27T10:20Z")
    (alert,) = [json.loads(line) for line in first.output.splitlines()]
    assert (alert["action"], alert["clock"], alert["late_tenants"]) == (
        "alert",
        "update",
        ["globex"],
    )
    sent(store, "INC-1", T0 + 25 * M, tenants=["globex"])
    later = run(cli, "watch", "--once", "--at", "2026-11-27T10:26Z")
    assert [json.loads(line)["action"] for line in later.output.splitlines()] == ["resolve"]
    assert run(cli, "check", "--at", "2026-11-27T10:26Z").exit_code == 0


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_tenant_added_later_is_owed_an_update_too(cli, store, fmt):
    store.create_incident(
        title="t", severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="g"
    )
    sent(store, "INC-1", T0 + 10 * M, tenants=["acme"])
    incident = store.get_incident("INC-1")
    store.update_incident(
        incident.replace(tenants=["acme", "globex"], updated_at=T0 + 12 * M),
        event="incident.set",
        actor="g",
        data={"tenants_added": ["globex"]},
    )
    result = run(cli, "check", "--at", "2026-11-27T10:20Z", "--format", fmt)
    assert result.exit_code == 1
    assert "globex" in result.output
