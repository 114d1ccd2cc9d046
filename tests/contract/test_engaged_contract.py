"""``create_incident(engaged=False)``: an incident that opened itself (an incident.io
webhook) has nobody engaged, so its engagement clock runs; the default engages the
person opening it.  Runs once per backend."""

from __future__ import annotations

from datetime import UTC, datetime

from comms.models import Severity
from comms.ports import Store

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def test_an_incident_opened_without_a_person_has_nobody_engaged(store: Store) -> None:
    store.create_incident(
        title="A", severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="g"
    )
    store.create_incident(
        title="B",
        severity=Severity.S1,
        tenants=["acme"],
        started_at=T0,
        now=T0,
        actor="incident.io",
        engaged=False,
    )
    by_ref = {row.ref: row for row in store.clock_rows()}
    assert by_ref["INC-1"].engaged_at == T0
    assert by_ref["INC-2"].engaged_at is None
    assert [e.type for e in store.events("INC-2")] == ["incident.opened"]
    assert "gdcmoc.engaged" in [e.type for e in store.events("INC-1")]
