"""The holding update renders through the real `update` template and passes the real linter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from comms import service
from comms.cadence import DEFAULT_POLICY, holding_variables, suggest_next_update
from comms.models import MessageKind, Severity, Tenant
from comms.render import Renderer

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def test_a_holding_update_from_the_last_update_is_lint_clean(store):
    store.put_tenant(Tenant(id="acme", name="Acme Corporation"))
    store.put_tenant(Tenant(id="globex", name="Globex"))
    store.create_incident(
        title="Sign-in failures",
        severity=Severity.S1,
        tenants=["acme"],
        started_at=T0,
        now=T0,
        actor="g",
    )
    renderer = Renderer(None)
    check = service.make_checker(None, store.list_tenants())
    first = service.compose(
        store,
        renderer,
        ref="INC-1",
        kind=MessageKind.UPDATE,
        now=T0 + 20 * M,
        author="g",
        interval_minutes=60,
        check=check,
        values={
            "impact": "Users cannot sign in to the web interface. Git over SSH works normally.",
            "actions": "We are restoring the sign-in service.",
            "affected_components": "Web UI, Sign-in",
            "workaround": "Use a personal access token for API access.",
            "eta": "12:00",
        },
    )
    now = T0 + 75 * M
    values = holding_variables(
        first.draft.revision.variables,
        now=now,
        next_update_at=suggest_next_update("S1", "investigating", DEFAULT_POLICY, now),
    )
    held = service.compose(
        store,
        renderer,
        ref="INC-1",
        kind=MessageKind.UPDATE,
        now=now,
        author="g",
        interval_minutes=60,
        check=check,
        values=values,
    )
    body = held.draft.revision.body
    assert "The impact is unchanged since our last update." in body
    assert "Users cannot sign in to the web interface." in body
    assert "continues" in body
    assert "Next update: by 2026-11-27 12:15 UTC" in body  # with its zone
    assert "Expected restoration: 2026-11-27 12:00 UTC" in body  # the ETA is still ahead: kept
    assert "Use a personal access token" in body
    errors = [f for f in held.draft.revision.findings if f["level"] == "error"]
    assert errors == []
    later = T0 + 130 * M  # 12:10: the ETA has passed and must not be repeated
    values = holding_variables(
        held.draft.revision.variables, now=later, next_update_at=later + 60 * M
    )
    again = service.compose(
        store,
        renderer,
        ref="INC-1",
        kind=MessageKind.UPDATE,
        now=later,
        author="g",
        interval_minutes=60,
        check=check,
        values=values,
    )
    assert "Expected restoration" not in again.draft.revision.body
    assert again.draft.revision.body.count("unchanged") == 1
    assert [f for f in again.draft.revision.findings if f["level"] == "error"] == []
