"""The webhook memory contract (``comms.incidentio.webhooks.WebhookMemory``): what the incident.io
webhook receiver remembers between deliveries (the delivery ids handled, the newest state
handled per incident), kept in the database so that every ``comms serve`` on it shares it.

Every test runs once per backend (``backends.BACKENDS``) through ``comms.bootstrap``; the
core's in-process ``LocalWebhookMemory`` is held to the first seven in
``tests/incidentio/test_webhook_memory.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from comms.bootstrap import webhook_memory
from comms.incidentio.webhooks import TOLERANCE, WebhookMemory, handle_webhook
from comms.models import Tenant
from comms.ports import Store
from tests.contract.older_schema import upgraded_from_before
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


def test_a_delivery_is_claimed_once(memory: WebhookMemory) -> None:
    assert memory.claim_webhook("msg_1", now=NOW)
    assert memory.webhook_seen("msg_1")
    assert not memory.claim_webhook("msg_1", now=NOW + S)  # a copy of the same delivery
    memory.record_webhook("msg_1", now=NOW + S, incident_id="inc", updated_at=NOW)
    assert not memory.claim_webhook("msg_1", now=NOW + 2 * S)
    memory.record_webhook("msg_2", now=NOW)  # recorded without a claim: handled all the same
    assert not memory.claim_webhook("msg_2", now=NOW)
    assert memory.claim_webhook("msg_3", now=NOW)


def test_a_released_claim_can_be_taken_again(memory: WebhookMemory) -> None:
    """The store failed while the delivery was applied: the sender's retry must apply it."""
    assert memory.claim_webhook("msg_1", now=NOW)
    memory.release_webhook("msg_1")
    assert not memory.webhook_seen("msg_1")
    assert memory.claim_webhook("msg_1", now=NOW + S)
    memory.release_webhook("msg_never_claimed")  # harmless


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


def test_a_claim_is_undone_with_the_store_transaction_it_was_made_in(store: Store) -> None:
    memory = webhook_memory(store)
    claimed: list[bool] = []

    def claim_then_fail() -> None:
        with store.transaction():
            claimed.append(memory.claim_webhook("msg_1", now=NOW))
            raise RuntimeError("the apply failed")

    with pytest.raises(RuntimeError, match="the apply failed"):
        claim_then_fail()
    assert claimed == [True]
    assert not memory.webhook_seen("msg_1")
    assert memory.claim_webhook("msg_1", now=NOW)


def test_concurrent_claims_take_each_delivery_once(
    store: Store, reopen: Callable[[], Store]
) -> None:
    handles = [webhook_memory(store)] + [webhook_memory(reopen()) for _ in range(3)]
    start = threading.Barrier(len(handles))
    won: list[list[str]] = [[] for _ in handles]
    errors: list[BaseException] = []

    def claim(n: int) -> None:
        try:
            start.wait(10)
            won[n] = [
                d for d in (f"msg_{i}" for i in range(20)) if handles[n].claim_webhook(d, now=NOW)
            ]
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(handles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(d for ids in won for d in ids) == sorted(f"msg_{i}" for i in range(20))


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


def test_a_store_of_the_previous_version_gains_the_memory(
    database_url: str, tmp_path: Path
) -> None:
    with upgraded_from_before(database_url, "CREATE TABLE webhook_deliveries", tmp_path) as store:
        memory = webhook_memory(store)
        memory.record_webhook("msg_1", now=NOW, incident_id="inc", updated_at=NOW)
        assert memory.webhook_seen("msg_1")
        assert not memory.claim_webhook("msg_1", now=NOW)
