"""The delivery ledger contract: intents stored before any request, leases, receipts.

Every test runs once per backend (``backends.BACKENDS``) through ``comms.bootstrap``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from comms.delivery import plan
from comms.errors import NotFoundError
from comms.models import Delivery
from comms.ports import Store
from tests.contract.support import NOW, M, open_incident, receipt_for, revise

TENANTS = ["acme", "beta"]
CHANNELS = ["switchboard", "zendesk"]


@pytest.fixture
def intents(store: Store) -> list[Delivery]:
    """The four deliveries of draft 1 (INC-1) to acme and beta over both channels."""
    open_incident(store, tenants=TENANTS)
    return plan(revise(store), TENANTS, CHANNELS)


@pytest.fixture
def key(store: Store, intents: list[Delivery]) -> str:
    """The key of one planned (pending) delivery."""
    store.plan_deliveries(intents, actor="g", now=NOW)
    return intents[0].idempotency_key


def planned_events(store: Store) -> list[str]:
    return [
        e.data["idempotency_key"] for e in store.events("INC-1") if e.type == "delivery.planned"
    ]


def test_planning_stores_pending_intents_and_logs_each_once(
    store: Store, intents: list[Delivery]
) -> None:
    rows = store.plan_deliveries(intents, actor="gdcmoc", now=NOW)
    assert rows == [d.replace(created_at=NOW, updated_at=NOW) for d in intents]
    assert {(r.state, r.attempts, r.lease_owner, r.receipt, r.error) for r in rows} == {
        ("pending", 0, None, None, None)
    }
    assert planned_events(store) == [d.idempotency_key for d in intents]
    event = next(e for e in store.events("INC-1") if e.type == "delivery.planned")
    assert (event.actor, event.at) == ("gdcmoc", NOW)
    assert event.data == {
        "draft_id": 1,
        "revision": 1,
        "tenant": "acme",
        "channel": "switchboard",
        "idempotency_key": intents[0].idempotency_key,
    }
    # Planning again changes nothing stored and logs only what is new.
    extra = plan(revise(store, 2, draft_id=1), ["acme"], ["switchboard"])
    again = store.plan_deliveries([*intents, *extra], actor="other", now=NOW + M)
    assert again[:4] == rows
    assert (again[4].revision, again[4].created_at) == (2, NOW + M)
    assert planned_events(store) == [d.idempotency_key for d in [*intents, *extra]]


def test_a_repeated_plan_sees_what_an_earlier_run_did(
    store: Store, intents: list[Delivery], key: str
) -> None:
    store.claim_delivery(key, owner="a", now=NOW, until=NOW + 5 * M)
    store.finish_delivery(
        key, receipt=receipt_for(key), error=None, final=True, actor="g", now=NOW + M, owner="a"
    )
    rows = store.plan_deliveries(intents, actor="g", now=NOW + 2 * M)
    assert [r.state for r in rows] == ["delivered", "pending", "pending", "pending"]
    assert rows[0].receipt == receipt_for(key)


def test_deliveries_are_filtered_and_kept_in_planning_order(store: Store) -> None:
    open_incident(store)
    open_incident(store)
    first = plan(revise(store), ["acme", "beta"], ["switchboard"])
    second = plan(revise(store, 2, incident_ref="INC-2"), ["acme"], CHANNELS)
    store.plan_deliveries([*first, *second], actor="g", now=NOW)
    done, failed = first[1].idempotency_key, second[0].idempotency_key
    store.finish_delivery(
        done, receipt=receipt_for(done), error=None, final=True, actor="g", now=NOW
    )
    store.finish_delivery(failed, receipt=None, error="refused", final=True, actor="g", now=NOW)

    def keys(**filters: Any) -> list[str]:
        return [d.idempotency_key for d in store.deliveries(**filters)]

    everything = [d.idempotency_key for d in [*first, *second]]
    assert keys() == everything
    assert keys(draft_id=1) == everything[:2]
    assert keys(incident_ref="INC-2") == everything[2:]
    assert keys(states=("delivered", "failed")) == [done, failed]
    assert keys(states=("pending",)) == [everything[0], everything[3]]
    assert keys(draft_id=2, states=("pending",), incident_ref="INC-2") == [everything[3]]
    assert keys(draft_id=1, incident_ref="INC-2") == []


def test_an_unknown_key_is_not_found(store: Store, key: str) -> None:
    with pytest.raises(NotFoundError, match="no delivery with key nope"):
        store.get_delivery("nope")
    with pytest.raises(NotFoundError, match="no delivery with key nope"):
        store.claim_delivery("nope", owner="a", now=NOW, until=NOW + M)
    with pytest.raises(NotFoundError, match="no delivery with key nope"):
        store.finish_delivery(
            "nope", receipt=None, error="x", final=True, actor="g", now=NOW, owner=None
        )


def test_a_claim_takes_the_lease(store: Store, key: str) -> None:
    claimed = store.claim_delivery(key, owner="host:1:a", now=NOW + M, until=NOW + 6 * M)
    assert claimed is not None
    assert (claimed.state, claimed.lease_owner, claimed.lease_until, claimed.attempts) == (
        "in-flight",
        "host:1:a",
        NOW + 6 * M,
        1,
    )
    assert (claimed.created_at, claimed.updated_at) == (NOW, NOW + M)
    assert store.get_delivery(key) == claimed
    assert store.in_flight_owners() == ["host:1:a"]


def test_a_live_lease_is_kept_from_others_but_its_owner_may_renew_it(
    store: Store, key: str
) -> None:
    held = store.claim_delivery(key, owner="a", now=NOW, until=NOW + 5 * M)
    assert store.claim_delivery(key, owner="b", now=NOW + 4 * M, until=NOW + 9 * M) is None
    assert store.get_delivery(key) == held
    renewed = store.claim_delivery(key, owner="a", now=NOW + 4 * M, until=NOW + 9 * M)
    assert renewed is not None
    assert (renewed.lease_owner, renewed.lease_until, renewed.attempts) == ("a", NOW + 9 * M, 2)


def test_an_expired_lease_is_taken_over(store: Store, key: str) -> None:
    store.claim_delivery(key, owner="a", now=NOW, until=NOW + 5 * M)
    almost = NOW + 5 * M - M / 60
    assert store.claim_delivery(key, owner="b", now=almost, until=NOW + 10 * M) is None
    taken = store.claim_delivery(key, owner="b", now=NOW + 5 * M, until=NOW + 10 * M)
    assert taken is not None
    assert (taken.lease_owner, taken.lease_until, taken.attempts) == ("b", NOW + 10 * M, 2)
    assert store.in_flight_owners() == ["b"]


def test_a_dead_owners_lease_is_taken_over_at_once(store: Store, key: str) -> None:
    store.claim_delivery(key, owner="a", now=NOW, until=NOW + 5 * M)
    assert (
        store.claim_delivery(key, owner="b", now=NOW + M, until=NOW + 6 * M, dead_owners=["c"])
        is None
    )
    taken = store.claim_delivery(key, owner="b", now=NOW + M, until=NOW + 6 * M, dead_owners=["a"])
    assert taken is not None
    assert (taken.lease_owner, taken.attempts) == ("b", 2)


def test_in_flight_owners_names_each_live_lease_owner_once(
    store: Store, intents: list[Delivery]
) -> None:
    store.plan_deliveries(intents, actor="g", now=NOW)
    keys = [d.idempotency_key for d in intents]
    assert store.in_flight_owners() == []
    for k, owner in zip(keys[:3], ["a", "a", "b"], strict=True):
        store.claim_delivery(k, owner=owner, now=NOW, until=NOW + 5 * M)
    assert sorted(store.in_flight_owners()) == ["a", "b"]
    store.finish_delivery(
        keys[2], receipt=None, error="503", final=False, actor="g", now=NOW + M, owner="b"
    )
    assert store.in_flight_owners() == ["a"]


def test_a_receipt_makes_the_delivery_final(
    store: Store, intents: list[Delivery], key: str
) -> None:
    store.claim_delivery(key, owner="a", now=NOW, until=NOW + 5 * M)
    receipt = receipt_for(key, external_id="ntf_42")
    done = store.finish_delivery(
        key, receipt=receipt, error=None, final=True, actor="gdcmoc", now=NOW + 2 * M, owner="a"
    )
    assert (done.state, done.receipt, done.external_id, done.error) == (
        "delivered",
        receipt,
        "ntf_42",
        None,
    )
    assert (done.lease_owner, done.lease_until, done.attempts, done.updated_at) == (
        None,
        None,
        1,
        NOW + 2 * M,
    )
    assert store.get_delivery(key) == done
    logged = store.events("INC-1")[-1]
    assert (logged.type, logged.actor, logged.at) == ("delivery.delivered", "gdcmoc", NOW + 2 * M)
    assert logged.data == {
        "draft_id": 1,
        "revision": 1,
        "tenant": "acme",
        "channel": "switchboard",
        "idempotency_key": key,
        "external_id": "ntf_42",
        "text_sha256": "0" * 64,
    }
    events = store.events("INC-1")
    # Nothing changes a delivered row again: not a claim, an error, or another receipt.
    assert store.claim_delivery(key, owner="b", now=NOW + 9 * M, until=NOW + 20 * M) is None
    for owner in ("a", None):
        assert (
            store.finish_delivery(
                key, receipt=None, error="late", final=True, actor="g", now=NOW, owner=owner
            )
            == done
        )
    other = receipt_for(key, external_id="ntf_99")
    assert (
        store.finish_delivery(
            key, receipt=other, error=None, final=True, actor="g", now=NOW + 3 * M, owner="a"
        )
        == done
    )
    assert store.plan_deliveries(intents, actor="g", now=NOW + 4 * M)[0] == done
    assert store.events("INC-1") == events


def test_a_final_error_fails_the_delivery_for_good(store: Store, key: str) -> None:
    store.claim_delivery(key, owner="a", now=NOW, until=NOW + 5 * M)
    failed = store.finish_delivery(
        key, receipt=None, error="422 unknown tenant", final=True, actor="g", now=NOW + M, owner="a"
    )
    assert (failed.state, failed.error, failed.lease_owner, failed.receipt) == (
        "failed",
        "422 unknown tenant",
        None,
        None,
    )
    logged = store.events("INC-1")[-1]
    assert (logged.type, logged.data["error"]) == ("delivery.failed", "422 unknown tenant")
    assert store.claim_delivery(key, owner="a", now=NOW + 2 * M, until=NOW + 7 * M) is None


def test_a_retryable_error_puts_the_delivery_back(store: Store, key: str) -> None:
    store.claim_delivery(key, owner="a", now=NOW, until=NOW + 5 * M)
    back = store.finish_delivery(
        key, receipt=None, error="503 busy", final=False, actor="g", now=NOW + M, owner="a"
    )
    assert (back.state, back.error, back.lease_owner, back.lease_until, back.attempts) == (
        "pending",
        "503 busy",
        None,
        None,
        1,
    )
    logged = store.events("INC-1")[-1]
    assert (logged.type, logged.data["error"]) == ("delivery.retry", "503 busy")
    again = store.claim_delivery(key, owner="b", now=NOW + 2 * M, until=NOW + 7 * M)
    assert again is not None
    assert (again.lease_owner, again.attempts) == ("b", 2)


@pytest.mark.parametrize("final", [True, False])
def test_an_error_from_a_sender_that_lost_its_lease_changes_nothing(
    store: Store, key: str, final: bool
) -> None:
    store.claim_delivery(key, owner="a", now=NOW, until=NOW + 5 * M)
    held = store.claim_delivery(key, owner="b", now=NOW + 6 * M, until=NOW + 11 * M)
    events = store.events("INC-1")
    late = store.finish_delivery(
        key, receipt=None, error="timeout", final=final, actor="g", now=NOW + 7 * M, owner="a"
    )
    assert late == held == store.get_delivery(key)
    unclaimed = store.finish_delivery(
        key, receipt=None, error="superseded", final=True, actor="g", now=NOW, owner=None
    )
    assert unclaimed == held
    assert store.events("INC-1") == events


def test_a_receipt_from_a_sender_that_lost_its_lease_still_lands(store: Store, key: str) -> None:
    store.claim_delivery(key, owner="a", now=NOW, until=NOW + 5 * M)
    store.claim_delivery(key, owner="b", now=NOW + 6 * M, until=NOW + 11 * M)
    landed = store.finish_delivery(
        key, receipt=receipt_for(key), error=None, final=True, actor="g", now=NOW + 7 * M, owner="a"
    )
    assert (landed.state, landed.lease_owner) == ("delivered", None)


def test_a_delivery_nobody_claimed_can_be_failed_without_an_owner(store: Store, key: str) -> None:
    failed = store.finish_delivery(
        key, receipt=None, error="superseded by revision 2", final=True, actor="g", now=NOW + M
    )
    assert (failed.state, failed.error) == ("failed", "superseded by revision 2")


def test_threads_claiming_the_same_deliveries_get_each_one_once(store: Store) -> None:
    open_incident(store)
    tenants = [f"t{n}" for n in range(30)]
    planned = store.plan_deliveries(
        plan(revise(store), tenants, ["switchboard"]), actor="g", now=NOW
    )
    keys = [d.idempotency_key for d in planned]
    won: dict[str, list[str]] = {}
    lock = threading.Lock()

    def sender(owner: str) -> None:
        for k in keys:
            if store.claim_delivery(k, owner=owner, now=NOW, until=NOW + 5 * M) is not None:
                with lock:
                    won.setdefault(k, []).append(owner)

    threads = [threading.Thread(target=sender, args=(f"s{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == sorted(keys)
    assert all(len(owners) == 1 for owners in won.values())
    assert {store.get_delivery(k).lease_owner for k in keys} == {o[0] for o in won.values()}


def test_a_failed_delivery_planned_with_retry_failed_is_reopened_with_its_history(
    store: Store, intents: list[Delivery], key: str
) -> None:
    store.claim_delivery(key, owner="a", now=NOW, until=NOW + 5 * M)
    store.finish_delivery(
        key,
        receipt=None,
        error="401 check the token",
        final=True,
        actor="g",
        now=NOW + M,
        owner="a",
    )
    failed = store.events("INC-1")[-1]
    assert (failed.type, failed.data["error"], failed.data["attempts"]) == (
        "delivery.failed",
        "401 check the token",
        1,
    )
    # Planning as before leaves a failure alone; asked to retry, it is pending again.
    assert store.plan_deliveries(intents, actor="g", now=NOW + 2 * M)[0].state == "failed"
    rows = store.plan_deliveries(intents, actor="gdcmoc", now=NOW + 3 * M, retry_failed=True)
    reopened = rows[0]
    assert (reopened.state, reopened.attempts, reopened.error, reopened.lease_owner) == (
        "pending",
        1,
        "401 check the token",
        None,
    )
    assert reopened.updated_at == NOW + 3 * M
    assert [r.state for r in rows[1:]] == ["pending"] * 3
    logged = store.events("INC-1")[-1]
    assert (logged.type, logged.actor, logged.at) == ("delivery.reopened", "gdcmoc", NOW + 3 * M)
    assert logged.data == {
        "draft_id": 1,
        "revision": 1,
        "tenant": "acme",
        "channel": "switchboard",
        "idempotency_key": key,
        "attempts": 1,
        "last_error": "401 check the token",
    }
    # The attempt count goes on, and the last error stays on record after the delivery lands.
    claimed = store.claim_delivery(key, owner="b", now=NOW + 4 * M, until=NOW + 9 * M)
    assert claimed is not None
    assert (claimed.attempts, claimed.error) == (2, "401 check the token")
    done = store.finish_delivery(
        key, receipt=receipt_for(key), error=None, final=True, actor="g", now=NOW + 5 * M, owner="b"
    )
    assert (done.state, done.attempts, done.error) == ("delivered", 2, "401 check the token")
    events = store.events("INC-1")
    assert store.plan_deliveries(intents, actor="g", now=NOW + 6 * M, retry_failed=True)[0] == done
    assert store.events("INC-1") == events
