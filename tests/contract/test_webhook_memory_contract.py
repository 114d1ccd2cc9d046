"""The webhook memory contract (``comms.incidentio.WebhookMemory``): what the incident.io
webhook receiver remembers between deliveries (the delivery ids handled, the newest state
handled per incident), kept in the database so that every ``comms serve`` on it shares it.

Every test runs once per backend (``backends.BACKENDS``) through ``comms.bootstrap``; the
core's in-process ``LocalWebhookMemory`` is held to the first five in
``tests/incidentio/test_webhook_memory.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from comms.bootstrap import webhook_memory
from comms.incidentio import TOLERANCE, WebhookMemory, handle_webhook
from comms.models import Tenant
from comms.ports import Store
from tests.contract.support import NOW

S = timedelta(seconds=1)


@pytest.fixture
def memory(store: Store) -> WebhookMemory:
    """The backend's store as the receiver uses it (``comms.bootstrap.webhook_memory``)."""
    found = webhook_memory(store)
    assert found is store, "the store keeps no webhook memory of its own"
    return found


def test_a_recorded_delivery_is_seen(memory: WebhookMemory) -> None:
    assert not memory.webhook_seen("msg_1")
    memory.record_webhook("msg_1", now=NOW)
    assert memory.webhook_seen("msg_1")
    assert not memory.webhook_seen("msg_2")
    memory.record_webhook("msg_1", now=NOW + S)  # the sender's retry of a handled delivery
    assert memory.webhook_seen("msg_1")


def test_the_newest_state_only_moves_forward(memory: WebhookMemory) -> None:
    assert memory.webhook_newest("inc") is None
    memory.record_webhook("msg_1", now=NOW, incident_id="inc", updated_at=NOW)
    memory.record_webhook("msg_2", now=NOW, incident_id="inc", updated_at=NOW - 60 * S)
    assert memory.webhook_newest("inc") == NOW
    memory.record_webhook("msg_3", now=NOW, incident_id="inc", updated_at=NOW + S)
    assert memory.webhook_newest("inc") == NOW + S
    assert memory.webhook_newest("other") is None


def test_microseconds_count(memory: WebhookMemory) -> None:
    """incident.io's times carry microseconds: 14:30:00.000001 is newer than 14:30:00."""
    later = NOW + timedelta(microseconds=1)
    memory.record_webhook("msg_1", now=NOW, incident_id="inc", updated_at=later)
    memory.record_webhook("msg_2", now=NOW, incident_id="inc", updated_at=NOW)
    assert memory.webhook_newest("inc") == later
    found = memory.webhook_newest("inc")
    assert found is not None
    assert found.utcoffset() == timedelta(0)


def test_ids_are_kept_while_a_replay_could_still_pass_the_timestamp_check(
    memory: WebhookMemory,
) -> None:
    memory.record_webhook("msg_1", now=NOW)
    memory.record_webhook("msg_2", now=NOW + 2 * TOLERANCE - S)
    assert memory.webhook_seen("msg_1")


def test_older_ids_are_forgotten(memory: WebhookMemory) -> None:
    """A delivery signed longer ago than the tolerance fails the timestamp check before its
    id is looked up, so its id need not be kept: the memory does not grow for ever."""
    memory.record_webhook("msg_1", now=NOW, incident_id="inc", updated_at=NOW)
    memory.record_webhook("msg_2", now=NOW + 2 * TOLERANCE + S)
    assert not memory.webhook_seen("msg_1")
    assert memory.webhook_seen("msg_2")
    assert memory.webhook_newest("inc") == NOW  # states are kept: ordering needs them


def test_another_handle_on_the_database_shares_it(
    store: Store, reopen: Callable[[], Store]
) -> None:
    webhook_memory(store).record_webhook("msg_1", now=NOW, incident_id="inc", updated_at=NOW)
    other = webhook_memory(reopen())
    assert other.webhook_seen("msg_1")
    assert other.webhook_newest("inc") == NOW


def test_concurrent_records_keep_the_newest(store: Store, reopen: Callable[[], Store]) -> None:
    handles = [webhook_memory(store)] + [webhook_memory(reopen()) for _ in range(3)]
    errors: list[BaseException] = []

    def record(n: int) -> None:
        try:
            for i in range(10):
                handles[n].record_webhook(
                    f"msg_{n}_{i}", now=NOW, incident_id="inc", updated_at=NOW + (n * 10 + i) * S
                )
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert handles[0].webhook_newest("inc") == NOW + 39 * S
    assert all(handles[0].webhook_seen(f"msg_{n}_{i}") for n in range(4) for i in range(10))


def test_a_shuffled_burst_on_the_store_ends_in_each_incident_s_last_state(store: Store) -> None:
    from tests.incidentio.burst import TENANTS, make_burst
    from tests.incidentio.conftest import SECRET, TOKEN
    from tests.incidentio.fake_incidentio import FakeIncidentio, Signer

    for name in TENANTS:
        store.put_tenant(Tenant(id=name, name=f"Tenant {name[-3:]}"))
    now = datetime.now(UTC)  # the signature library checks timestamps with the real clock
    burst = make_burst(FakeIncidentio(token=TOKEN), Signer(SECRET), now=now, incidents=10,
                       deliveries=60)  # fmt: skip
    memory = webhook_memory(store)
    answers: list[Any] = [
        handle_webhook(h, b, secret=SECRET, store=store, now=now, seen=memory).status
        for h, b in burst.deliveries
    ]
    again = [
        handle_webhook(h, b, secret=SECRET, store=store, now=now, seen=memory).status
        for h, b in burst.deliveries
    ]
    assert set(answers) <= {200, 204}
    assert set(again) == {204}  # every delivery id was remembered
    held = {i.ref: (i.title, i.severity, i.status, i.tenants) for i in store.list_incidents()}
    assert held == burst.expected


def test_a_store_of_the_previous_version_gains_the_memory(store: Store, database_url: str) -> None:
    """SQLite migrates itself on open; PostgreSQL refuses the older schema until
    ``comms db migrate`` (``PostgresStore.migrate``) adds the tables."""
    from comms.bootstrap import open_store, parse_database_url
    from comms.errors import StoreError

    parsed = parse_database_url(database_url)
    store.put_tenant(Tenant(id="acme", name="Acme Corp"))
    store.close()
    if parsed.scheme == "sqlite":
        import contextlib
        import sqlite3

        from comms.adapters.sqlite_store import MIGRATIONS

        with contextlib.closing(sqlite3.connect(parsed.path)) as db, db:
            db.execute("DROP TABLE webhook_deliveries")
            db.execute("DROP TABLE webhook_states")
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    elif parsed.scheme == "postgresql":
        import psycopg

        from comms.adapters.postgres_store import SCHEMA_VERSION, PostgresStore

        with psycopg.connect(database_url, autocommit=True) as db:
            db.execute("DROP TABLE webhook_deliveries, webhook_states")
            db.execute("DELETE FROM schema_version WHERE version = %s", (SCHEMA_VERSION,))
        older = open_store(database_url)
        try:
            with pytest.raises(StoreError, match="run: comms db migrate"):
                older.list_tenants()
        finally:
            older.close()
        with PostgresStore(database_url) as migrating:
            assert migrating.migrate() == (SCHEMA_VERSION - 1, SCHEMA_VERSION)
    upgraded = open_store(database_url)
    try:
        assert [t.id for t in upgraded.list_tenants()] == ["acme"]
        memory = webhook_memory(upgraded)
        memory.record_webhook("msg_1", now=NOW, incident_id="inc", updated_at=NOW)
        assert memory.webhook_seen("msg_1")
    finally:
        upgraded.close()
