"""incident.io webhooks: signed deliveries (Standard Webhooks, as Svix sends them) applied to
a real SQLite store through ``comms.incidentio.webhooks.handle_webhook``."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from comms.adapters.sqlite_store import SqliteStore
from comms.bootstrap import webhook_memory
from comms.errors import ConfigError, StoreError
from comms.incidentio.mapping import Rules
from comms.incidentio.sync import import_incident
from comms.incidentio.webhooks import (
    MAX_BODY_BYTES,
    WebhookMemory,
    WebhookResult,
    handle_webhook,
)
from comms.models import Severity, Status, Tenant
from tests.incidentio.burst import make_burst
from tests.incidentio.conftest import SECRET
from tests.incidentio.fake_incidentio import FakeIncidentio, Signer
from tests.incidentio.memory import MemoryWebhookMemory


def deliver(
    body: bytes,
    headers: dict[str, str],
    store: Any,
    memory: WebhookMemory,
    now: datetime,
    **options: Any,
) -> WebhookResult:
    options.setdefault("secret", SECRET)
    return handle_webhook(headers, body, store=store, now=now, seen=memory, **options)


@pytest.fixture
def send(store: Any, memory: MemoryWebhookMemory, signer: Signer, now: datetime) -> Any:
    """``send(body, at=now, delivery_id=None)``: sign and deliver one body."""

    def go(
        body: bytes, *, at: datetime | None = None, delivery_id: str | None = None, **options: Any
    ) -> WebhookResult:
        headers = signer.headers(body, at=at or now, delivery_id=delivery_id)
        return deliver(body, headers, store, memory, now, **options)

    return go


def test_a_declared_incident_opens_itself(
    fake: FakeIncidentio, send: Any, store: Any, tenants: Any
) -> None:
    fake.declare("Sign-in failures", severity="Critical", tenants=["Acme Corp"])
    (event_type, body) = fake.outbox[0]

    result = send(body)

    assert event_type == "public_incident.incident_created_v2"
    assert (result.status, result.ref) == (200, "INC-2291")
    assert result.reason == "INC-2291 imported (no change)"
    found = store.get_incident("INC-2291")
    assert (found.title, found.severity, found.tenants) == (
        "Sign-in failures",
        Severity.S1,
        ["acme"],
    )
    assert {e.type: e.actor for e in store.events("INC-2291")}["incident.linked"] == "incident.io"
    # Nobody is engaged by a webhook: the GDCMOC's engagement clock keeps running.
    assert "gdcmoc.engaged" not in {e.type for e in store.events("INC-2291")}
    [row] = [r for r in store.clock_rows() if r.ref == "INC-2291"]
    assert row.engaged_at is None


def test_changes_follow_by_themselves(
    fake: FakeIncidentio, send: Any, store: Any, tenants: Any
) -> None:
    declared = fake.declare("Sign-in failures", severity="Major", tenants=["acme"])
    fake.update(declared["id"], severity="Critical")
    fake.update(declared["id"], status="Fixing")

    results = [send(body) for _, body in fake.outbox]

    assert [r.status for r in results] == [200, 200, 200]
    assert results[1].applied is not None
    assert results[1].applied.changes == {"severity": {"from": "S2", "to": "S1"}}
    found = store.get_incident("INC-2291")
    assert (found.severity, found.status) == (Severity.S1, Status.MITIGATING)
    assert [e.type for e in store.events("INC-2291")][-2:] == [
        "incident.status",
        "incidentio.synced",
    ]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (
            lambda h, b: (
                {**h, "webhook-signature": "v1,Zm9yZ2VkIHNpZ25hdHVyZSBieXRlcyAxMjM0NTY3OA=="},
                b,
            ),
            "signature not verified: No matching signature found",
        ),
        (
            lambda h, b: (h, b.replace(b"Major", b"Minor")),
            "signature not verified: No matching signature found",
        ),
        (lambda h, b: ({**h, "webhook-id": "msg_other"}, b), "signature not verified"),
        (lambda h, b: ({**h, "webhook-signature": "v2,abc"}, b), "signature not verified"),
        (lambda h, b: ({**h, "webhook-signature": "garbage"}, b), "signature not verified"),
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
            "missing webhook-id, webhook-timestamp or webhook-signature",
        ),
    ],
)
def test_what_is_not_signed_by_incident_io_is_401_and_nothing_applied(
    fake: FakeIncidentio,
    signer: Signer,
    store: Any,
    memory: MemoryWebhookMemory,
    now: datetime,
    tenants: Any,
    tamper: Any,
    reason: str,
) -> None:
    fake.declare("Sign-in failures", severity="Major", tenants=["acme"])
    body = fake.outbox[0][1]
    headers, body = tamper(signer.headers(body, at=now), body)

    result = deliver(body, headers, store, memory, now)

    assert result.status == 401
    assert result.reason.startswith(reason)
    assert store.list_incidents() == []
    assert memory.deliveries == {}


def test_another_secret_is_401(
    fake: FakeIncidentio, store: Any, memory: MemoryWebhookMemory, now: datetime, tenants: Any
) -> None:
    fake.declare("Sign-in failures", tenants=["acme"])
    body = fake.outbox[0][1]
    headers = Signer("whsec_" + "QUJD" * 8).headers(body, at=now)

    assert deliver(body, headers, store, memory, now).status == 401
    assert store.list_incidents() == []


@pytest.mark.parametrize(
    "offset", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(days=-1)]
)
def test_stale_or_future_timestamps_are_refused(
    fake: FakeIncidentio, send: Any, store: Any, tenants: Any, now: datetime, offset: timedelta
) -> None:
    fake.declare("Sign-in failures", tenants=["acme"])

    result = send(fake.outbox[0][1], at=now + offset)

    assert result.status == 401
    assert result.reason.startswith("stale delivery: signed ")
    assert store.list_incidents() == []


def test_a_timestamp_that_is_no_number_is_400(
    fake: FakeIncidentio, signer: Signer, store: Any, memory: MemoryWebhookMemory, now: datetime
) -> None:
    fake.declare("Sign-in failures")
    body = fake.outbox[0][1]
    headers = {**signer.headers(body, at=now), "webhook-timestamp": "yesterday"}

    assert deliver(body, headers, store, memory, now).status == 400


def test_a_replay_is_acknowledged_not_applied_twice(
    fake: FakeIncidentio,
    signer: Signer,
    store: Any,
    memory: MemoryWebhookMemory,
    now: datetime,
    tenants: Any,
) -> None:
    declared = fake.declare("Sign-in failures", tenants=["acme"])
    fake.update(declared["id"], status="Fixing")
    created, updated = (body for _, body in fake.outbox)
    first = signer.headers(updated, at=now)
    assert deliver(updated, first, store, memory, now).status == 200
    events = store.events("INC-2291")

    again = deliver(updated, first, store, memory, now)
    # the sender retries with the same id and a fresh signature and timestamp
    retried = deliver(
        updated,
        signer.headers(updated, at=now + timedelta(seconds=30), delivery_id=first["webhook-id"]),
        store,
        memory,
        now + timedelta(seconds=30),
    )

    assert (again.status, again.reason) == (
        204,
        f"replay of delivery {first['webhook-id']}: already handled",
    )
    assert retried.status == 204
    assert store.events("INC-2291") == events
    assert created  # the older created event is another delivery: see the ordering test


def test_out_of_order_never_overwrites_a_newer_state(
    fake: FakeIncidentio, send: Any, store: Any, tenants: Any
) -> None:
    declared = fake.declare("Sign-in failures", severity="Major", tenants=["acme"])
    fake.update(declared["id"], severity="Critical", status="Fixing")
    fake.update(declared["id"], status="Monitoring")
    created, fixing, monitoring = (body for _, body in fake.outbox)

    results = [send(body) for body in (monitoring, created, fixing)]

    assert [r.status for r in results] == [200, 204, 204]
    assert "is not newer than" in results[1].reason
    found = store.get_incident("INC-2291")
    assert (found.severity, found.status) == (Severity.S1, Status.MONITORING)


def test_an_older_state_than_an_import_is_ignored(
    fake: FakeIncidentio, client: Any, send: Any, store: Any, tenants: Any, now: datetime
) -> None:
    """The store, not only the webhook memory, knows the newest state applied: a CLI import
    of the current state and a late webhook of an older one end in the current state."""
    declared = fake.declare("Sign-in failures", tenants=["acme"])
    fake.update(declared["id"], status="Monitoring")
    import_incident(store, client, "INC-2291", rules=Rules(), now=now, actor="jane")

    result = send(fake.outbox[0][1])

    assert result.status == 204
    assert "is older than the one applied" in result.reason
    assert store.get_incident("INC-2291").status is Status.MONITORING


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed body: "),
        (b"[1, 2]", "malformed body: body is not a JSON object"),
        (b'{"incident": {}}', "malformed body: body.event_type is missing or not a string"),
        (
            b'{"event_type": "public_incident.incident_updated_v2"}',
            "malformed body: public_incident.incident_updated_v2 is not a JSON object",
        ),
        (
            b'{"event_type": "public_incident.incident_updated_v2", "public_incident.incident_updated_v2": {"id": "x"}}',
            "malformed body: public_incident.incident_updated_v2.reference is missing or not a string",
        ),
    ],
)
def test_a_malformed_body_is_400(send: Any, store: Any, body: bytes, reason: str) -> None:
    result = send(body)

    assert result.status == 400
    assert result.reason.startswith(reason)
    assert store.list_incidents() == []


def test_an_oversized_body_is_413(send: Any) -> None:
    assert send(b" " * (MAX_BODY_BYTES + 1)).status == 413


def test_other_event_types_are_acknowledged(send: Any, memory: MemoryWebhookMemory) -> None:
    body = json.dumps(
        {
            "event_type": "public_incident.follow_up_created_v1",
            "public_incident.follow_up_created_v1": {"id": "f"},
        }
    ).encode()

    result = send(body)

    assert (result.status, result.reason) == (
        204,
        "ignored event type public_incident.follow_up_created_v1",
    )
    assert len(memory.deliveries) == 1


def test_a_private_incident_is_fetched_when_a_source_is_given(
    fake: FakeIncidentio, client: Any, send: Any, store: Any, tenants: Any
) -> None:
    fake.declare(
        "Security: token exposure", severity="Critical", visibility="private", tenants=["acme"]
    )
    (event_type, body) = fake.outbox[0]
    assert event_type == "private_incident.incident_created_v2"
    assert b"Security" not in body  # a private incident's event carries its id only

    without = send(body)
    with_source = send(body, source=client)

    assert (without.status, with_source.status) == (204, 200)
    assert "import it with comms incident import 01HX" in without.reason
    assert store.get_incident("INC-2291").title == "Security: token exposure"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"mode": "test"}, "INC-2291: test incident ignored"),
        ({"status": "Triage"}, "INC-2291: triage in incident.io, not imported"),
    ],
)
def test_tests_and_triage_do_not_open_incidents(
    fake: FakeIncidentio, send: Any, store: Any, tenants: Any, options: dict[str, Any], reason: str
) -> None:
    fake.declare("Sign-in failures", tenants=["acme"], **options)

    result = send(fake.outbox[0][1])

    assert (result.status, result.reason) == (204, reason)
    assert store.list_incidents() == []


def test_triage_accepted_later_opens_the_incident(
    fake: FakeIncidentio, send: Any, store: Any, tenants: Any
) -> None:
    declared = fake.declare("Sign-in failures", status="Triage", tenants=["acme"])
    fake.update(declared["id"], status="Investigating")

    assert [send(body).status for _, body in fake.outbox] == [204, 200]
    assert store.get_incident("INC-2291").status is Status.INVESTIGATING


def test_pubsec_is_acknowledged_and_refused(
    fake: FakeIncidentio, send: Any, store: Any, tenants: Any
) -> None:
    fake.declare("Sign-in failures", tenants=["Federal Agency"])

    result = send(fake.outbox[0][1])

    assert result.status == 204
    assert result.reason.startswith("not applied: INC-2291: incident.io names PubSec tenant fedgov")
    assert store.list_incidents() == []


def test_a_store_failure_is_503_so_the_sender_retries(
    fake: FakeIncidentio, signer: Signer, tmp_path: Path, memory: MemoryWebhookMemory, now: datetime
) -> None:
    class LockedStore(SqliteStore):
        def create_incident(self, **kwargs: Any) -> Any:
            raise StoreError("database is locked")

    store = LockedStore(tmp_path / "locked.db")
    try:
        store.put_tenant(Tenant(id="acme", name="Acme Corp"))
        fake.declare("Sign-in failures", tenants=["acme"])
        body = fake.outbox[0][1]
        headers = signer.headers(body, at=now)

        result = deliver(body, headers, store, memory, now)

        assert result.status == 503
        assert not memory.webhook_seen(headers["webhook-id"])  # the retry will be applied
    finally:
        store.close()


def test_a_store_failure_gives_the_store_s_own_claim_back(
    fake: FakeIncidentio, signer: Signer, tmp_path: Path, now: datetime
) -> None:
    """The store as its own memory (as ``comms serve`` uses it): the claim is rolled back
    with the failed apply, and the sender's retry of the delivery is applied."""

    class LockedStore(SqliteStore):
        def create_incident(self, **kwargs: Any) -> Any:
            raise StoreError("database is locked")

    fake.declare("Sign-in failures", tenants=["acme"])
    body = fake.outbox[0][1]
    headers = signer.headers(body, at=now)
    with LockedStore(tmp_path / "one.db") as locked:
        locked.put_tenant(Tenant(id="acme", name="Acme Corp"))
        failed = deliver(body, headers, locked, webhook_memory(locked), now)
        assert failed.status == 503
        assert not locked.webhook_seen(headers["webhook-id"])
    with SqliteStore(tmp_path / "one.db") as store:
        retried = deliver(body, headers, store, webhook_memory(store), now)
        assert (retried.status, retried.ref) == (200, "INC-2291")


def test_a_secret_that_is_no_signing_secret_is_a_config_error(
    send: Any, fake: FakeIncidentio
) -> None:
    fake.declare("Sign-in failures")
    with pytest.raises(ConfigError, match="not a whsec_… secret"):
        send(fake.outbox[0][1], secret="whsec_!!!")


def test_a_burst_ends_in_each_incidents_last_state(
    fake: FakeIncidentio, signer: Signer, store: Any, memory: MemoryWebhookMemory, now: datetime
) -> None:
    """1,000 deliveries for 200 incidents, shuffled, 10 % repeated (timed by
    benchmarks/incidentio_burst.py, not here)."""
    from tests.incidentio.burst import TENANTS

    for name in TENANTS:
        store.put_tenant(Tenant(id=name, name=f"Tenant {name[-3:]}"))
    burst = make_burst(fake, signer, now=now)
    assert (len(burst.deliveries), len(burst.expected), burst.replays) == (1000, 200, 100)
    started = time.monotonic()

    results = [deliver(body, headers, store, memory, now) for headers, body in burst.deliveries]

    assert time.monotonic() - started < 120  # a hang guard, not the target
    assert {r.status for r in results} <= {200, 204}
    assert sum(1 for r in results if r.reason.startswith("replay of delivery")) == burst.replays
    held = {i.ref: (i.title, i.severity, i.status, i.tenants) for i in store.list_incidents()}
    assert held == burst.expected
