"""delivery.run against a real SqliteStore: leases held by other senders, dead owners, keys.

The publisher here is a fake (it records what it was asked to send); everything else is real.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from comms import delivery
from comms.adapters.sqlite_store import SqliteStore
from comms.bootstrap import Runtime
from comms.models import Delivery, DraftState, Incident, MessageKind, Receipt, Severity, Tenant

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# This test process, as the runtime builds it: real host name, pid and liveness check.
PROCESS = Runtime().process()


class FakePublisher:
    """Records every publish (tenant, kind, previous receipt) and returns a receipt for it."""

    def __init__(self, name: str = "switchboard") -> None:
        self.name = name
        self.sent: list[str] = []
        self.calls: list[tuple[str, MessageKind, Receipt | None]] = []
        self.looked_for: list[str] = []  # tenants find_delivery was asked about
        self.landed: dict[str, Receipt] = {}  # key -> what the far side holds already
        self.fail: dict[str, Exception] = {}  # tenant -> what publish raises for it

    def publish(
        self,
        *,
        tenant: Tenant,
        incident: Incident,
        kind: MessageKind,
        subject: str,
        body: str,
        idempotency_key: str,
        draft_id: int,
        revision: int,
        previous: Receipt | None = None,
    ) -> Receipt:
        if tenant.id in self.fail:
            raise self.fail[tenant.id]
        self.sent.append(tenant.id)
        self.calls.append((tenant.id, kind, previous))
        return receipt_for(tenant.id, idempotency_key, draft_id, revision, body, self.name)

    def find_delivery(
        self,
        *,
        incident: Incident,
        tenant: Tenant,
        idempotency_key: str,
        previous: Receipt | None,
    ) -> Receipt | None:
        self.looked_for.append(tenant.id)
        return self.landed.get(idempotency_key)


def receipt_for(
    tenant: str, key: str, draft_id: int, revision: int, body: str, channel: str = "switchboard"
) -> Receipt:
    return Receipt(
        channel=channel,
        tenant=tenant,
        draft_id=draft_id,
        revision=revision,
        idempotency_key=key,
        external_id=f"ntf_{tenant}_{draft_id}",
        delivered_at=NOW + timedelta(minutes=draft_id),
        text_sha256=delivery.body_sha256(body),
        detail={"ticket_id": 100 + draft_id},
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with SqliteStore(tmp_path / "core.db") as opened:
        yield opened


def _setup(store: Any) -> tuple[Any, list[Any]]:
    for tid in ("acme", "globex"):
        store.put_tenant(Tenant(id=tid, name=tid.title()))
    incident = store.create_incident(
        title="Down",
        severity=Severity.S3,
        tenants=["acme", "globex"],
        started_at=NOW,
        now=NOW,
        actor="t",
    )
    draft = store.add_revision(
        incident_ref=incident.ref,
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="Update",
        body="Body text",
        variables={},
        author="t",
        now=NOW,
    )
    planned = store.plan_deliveries(
        delivery.plan(draft, ["acme", "globex"], ["switchboard"]), actor="t", now=NOW
    )
    return draft, planned


def _run(
    store: Any, draft: Any, planned: list[Any], publisher: FakePublisher, **options: Any
) -> Any:
    incident = store.get_incident(draft.incident_ref)
    return delivery.run(
        store,
        planned,
        publishers={"switchboard": publisher},
        tenants={t.id: t for t in store.list_tenants()},
        incidents={incident.ref: incident},
        drafts={draft.id: draft},
        actor="t",
        clock=lambda: NOW,
        process=options.pop("process", PROCESS),
        **options,
    )


def test_the_fake_publisher_has_the_ports_signature() -> None:
    import inspect

    from comms.ports import Publisher

    assert inspect.signature(FakePublisher.publish) == inspect.signature(Publisher.publish)
    assert inspect.signature(FakePublisher.find_delivery) == inspect.signature(
        Publisher.find_delivery
    )
    port: Publisher = FakePublisher()
    assert port.name == "switchboard"


def test_delivery_key_is_deterministic_and_distinct() -> None:
    key = delivery.delivery_key(3, 2, "acme", "switchboard")
    assert key == delivery.delivery_key(3, 2, "acme", "switchboard")
    assert key.startswith("comms-3-2-")
    others = {
        delivery.delivery_key(3, 3, "acme", "switchboard"),
        delivery.delivery_key(3, 2, "globex", "switchboard"),
        delivery.delivery_key(3, 2, "acme", "zendesk"),
        delivery.delivery_key(4, 2, "acme", "switchboard"),
    }
    assert key not in others
    assert len(others) == 4


def test_a_delivery_another_live_sender_holds_is_waited_for(store: Any) -> None:
    draft, planned = _setup(store)
    store.claim_delivery(
        planned[0].idempotency_key, owner="elsewhere:1:abcd", now=NOW, until=NOW + delivery.LEASE
    )
    publisher = FakePublisher()
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        # The other sender records its receipt while we wait.
        naps.append(seconds)
        held = planned[0]
        store.finish_delivery(
            held.idempotency_key,
            final=True,
            actor="other",
            now=NOW,
            error=None,
            receipt=receipt_for("acme", held.idempotency_key, draft.id, 1, "Body text"),
        )

    report = _run(store, draft, planned, publisher, sleep=sleep)
    assert publisher.sent == ["globex"]
    assert naps == [delivery.POLL_SECONDS]
    assert sorted((o.delivery.tenant, o.status) for o in report.outcomes) == [
        ("acme", "already-delivered"),
        ("globex", "delivered"),
    ]
    assert report.completed


def test_a_delivery_still_held_after_the_patience_is_reported_busy(store: Any) -> None:
    draft, planned = _setup(store)
    store.claim_delivery(
        planned[0].idempotency_key, owner="elsewhere:1:abcd", now=NOW, until=NOW + delivery.LEASE
    )
    ticks = iter(range(100))
    publisher = FakePublisher()
    report = _run(
        store,
        draft,
        planned,
        publisher,
        patience=3,
        sleep=lambda _s: None,
        monotonic=lambda: float(next(ticks)),
    )
    assert publisher.sent == ["globex"]
    busy = [o for o in report.outcomes if o.status == "busy"]
    assert [o.delivery.tenant for o in busy] == ["acme"]
    assert "elsewhere:1:abcd" in (busy[0].error or "")
    assert not report.completed
    assert store.get_delivery(planned[0].idempotency_key).state == "in-flight"


def test_the_lease_of_a_dead_sender_on_this_host_is_taken_over(store: Any) -> None:
    draft, planned = _setup(store)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{gone.stdout.strip()}:deadbeef"
    assert delivery.dead_owners([dead, "elsewhere:1:abcd"], PROCESS) == [dead]
    for d in planned:
        store.claim_delivery(d.idempotency_key, owner=dead, now=NOW, until=NOW + delivery.LEASE)
    publisher = FakePublisher()
    report = _run(store, draft, planned, publisher, sleep=lambda _s: pytest.fail("must not wait"))
    assert sorted(publisher.sent) == ["acme", "globex"]
    assert report.completed
    assert [d.attempts for d in store.deliveries(draft_id=draft.id)] == [2, 2]


def test_an_expired_lease_is_taken_over(store: Any) -> None:
    draft, planned = _setup(store)
    store.claim_delivery(planned[0].idempotency_key, owner="elsewhere:1:abcd", now=NOW, until=NOW)
    publisher = FakePublisher()
    report = _run(store, draft, planned, publisher, sleep=lambda _s: pytest.fail("must not wait"))
    assert sorted(publisher.sent) == ["acme", "globex"]
    assert report.completed


def test_a_late_error_from_a_taken_over_sender_does_not_undo_the_delivery(store: Any) -> None:
    from datetime import timedelta

    draft, planned = _setup(store)
    key = planned[0].idempotency_key
    # A claims, its lease runs out, B takes over and records the receipt.
    assert store.claim_delivery(key, owner="A", now=NOW, until=NOW + timedelta(seconds=1))
    later = NOW + timedelta(minutes=10)
    assert store.claim_delivery(key, owner="B", now=later, until=later + timedelta(minutes=5))
    body = draft.revision.body
    store.finish_delivery(
        key,
        receipt=receipt_for("acme", key, draft.id, 1, body),
        error=None,
        final=True,
        actor="B",
        now=later,
        owner="B",
    )
    # A finally gives up with a retryable error: it must not put the row back to pending.
    after = store.finish_delivery(
        key, receipt=None, error="timeout", final=False, actor="A", now=later, owner="A"
    )
    assert after.state == "delivered"
    assert after.receipt is not None
    unfinished = store.deliveries(states=["pending", "in-flight"])
    assert all(d.idempotency_key != key for d in unfinished)


def test_an_error_from_a_sender_that_lost_its_lease_is_ignored(store: Any) -> None:
    from datetime import timedelta

    _, planned = _setup(store)
    key = planned[0].idempotency_key
    store.claim_delivery(key, owner="A", now=NOW, until=NOW + timedelta(seconds=1))
    later = NOW + timedelta(minutes=10)
    store.claim_delivery(key, owner="B", now=later, until=later + timedelta(minutes=5))
    row = store.finish_delivery(
        key, receipt=None, error="late failure", final=True, actor="A", now=later, owner="A"
    )
    assert row.state == "in-flight"
    assert row.lease_owner == "B"


def test_update_sent_is_logged_once_when_two_senders_complete(store: Any) -> None:
    draft, planned = _setup(store)
    publisher = FakePublisher()
    _run(store, draft, planned, publisher)
    assert delivery.complete(store, draft, actor="other", now=NOW)
    store.set_draft_state(
        draft.id, DraftState.SENT, now=NOW, actor="x", event="update.sent", data={}
    )
    sent = [e for e in store.events(draft.incident_ref) if e.type == "update.sent"]
    assert len(sent) == 1


# -- the injected process ------------------------------------------------------------------


def test_dead_owners_asks_the_injected_process_about_its_own_host_only() -> None:
    asked: list[int] = []

    def alive(pid: int) -> bool:
        asked.append(pid)
        return pid == 41

    me = delivery.Process(host="box", pid=7, alive=alive)
    owners = ["box:40:aa", "box:41:bb", "box:7:cc", "other:40:dd", "box:x:ee", "garbage"]
    assert delivery.dead_owners(owners, me) == ["box:40:aa"]
    assert asked == [40, 41]  # never itself, never another host's pids
    owner = delivery.owner_id(me)
    assert owner.startswith("box:7:")
    assert owner != delivery.owner_id(me)


def test_the_runtime_process_is_this_process() -> None:
    assert PROCESS.host == socket.gethostname()
    assert PROCESS.pid == os.getpid()
    assert PROCESS.alive(os.getpid())


def test_a_lease_of_a_pid_the_process_reports_dead_is_taken_over(store: Any) -> None:
    draft, planned = _setup(store)
    for d in planned:
        store.claim_delivery(
            d.idempotency_key, owner="box:99:aa", now=NOW, until=NOW + delivery.LEASE
        )
    ghost_town = delivery.Process(host="box", pid=1, alive=lambda _pid: False)
    publisher = FakePublisher()
    report = _run(
        store,
        draft,
        planned,
        publisher,
        process=ghost_town,
        sleep=lambda _s: pytest.fail("must not wait"),
    )
    assert sorted(publisher.sent) == ["acme", "globex"]
    assert report.completed
    assert [d.attempts for d in store.deliveries(draft_id=draft.id)] == [2, 2]


# -- what each publish is given ------------------------------------------------------------


def _next_draft(store: Any, draft: Any, body: str) -> Any:
    return store.add_revision(
        incident_ref=draft.incident_ref,
        kind=MessageKind.RESOLVED,
        draft_id=None,
        subject="Resolved",
        body=body,
        variables={},
        author="t",
        now=NOW,
    )


def _send_through(store: Any, draft: Any, channels: dict[str, FakePublisher]) -> Any:
    planned = store.plan_deliveries(
        delivery.plan(draft, ["acme", "globex"], list(channels)), actor="t", now=NOW
    )
    incident = store.get_incident(draft.incident_ref)
    return delivery.run(
        store,
        planned,
        publishers=channels,
        tenants={t.id: t for t in store.list_tenants()},
        incidents={incident.ref: incident},
        drafts={draft.id: draft},
        actor="t",
        clock=lambda: NOW,
        process=PROCESS,
    )


def test_each_publish_gets_the_kind_and_its_channels_latest_receipt_as_previous(
    store: Any,
) -> None:
    first, _ = _setup(store)  # planned for switchboard only, never run
    zendesk, switchboard = FakePublisher("zendesk"), FakePublisher("switchboard")
    _send_through(store, first, {"zendesk": zendesk})
    assert [(t, k, p) for t, k, p in zendesk.calls] == [
        ("acme", MessageKind.UPDATE, None),
        ("globex", MessageKind.UPDATE, None),
    ]

    second = _next_draft(store, first, "Second text")
    zendesk.calls.clear()
    _send_through(store, second, {"zendesk": zendesk})
    previous = {t: p for t, _, p in zendesk.calls}
    assert {t: (p.channel, p.draft_id, p.detail) for t, p in previous.items() if p} == {
        "acme": ("zendesk", first.id, {"ticket_id": 100 + first.id}),
        "globex": ("zendesk", first.id, {"ticket_id": 100 + first.id}),
    }

    # The latest receipt wins, and only the same channel's: Switchboard has none yet.
    third = _next_draft(store, first, "Third text")
    zendesk.calls.clear()
    _send_through(store, third, {"zendesk": zendesk, "switchboard": switchboard})
    assert {t: p.draft_id for t, _, p in zendesk.calls if p} == {
        "acme": second.id,
        "globex": second.id,
    }
    assert [(t, k, p) for t, k, p in switchboard.calls] == [
        ("acme", MessageKind.RESOLVED, None),
        ("globex", MessageKind.RESOLVED, None),
    ]


def test_a_receipt_landing_in_the_run_is_previous_for_a_later_delivery_in_it(
    store: Any,
) -> None:
    first, _ = _setup(store)
    second = _next_draft(store, first, "Second text")
    zendesk = FakePublisher("zendesk")
    # Both drafts' deliveries to acme run in one run (a resume), one at a time: the second
    # must reply on what the first one just opened.
    planned: list[Delivery] = []
    for draft in (first, second):
        planned += store.plan_deliveries(
            delivery.plan(draft, ["acme"], ["zendesk"]), actor="t", now=NOW
        )
    incident = store.get_incident(first.incident_ref)
    report = delivery.run(
        store,
        planned,
        publishers={"zendesk": zendesk},
        tenants={t.id: t for t in store.list_tenants()},
        incidents={incident.ref: incident},
        drafts={first.id: first, second.id: second},
        actor="t",
        clock=lambda: NOW,
        process=PROCESS,
        concurrency=1,
    )
    assert report.count("delivered") == 2
    assert [(t, p.draft_id if p else None) for t, _, p in zendesk.calls] == [
        ("acme", None),
        ("acme", first.id),
    ]


# -- deliveries claimed before: looked for first -------------------------------------------


def test_a_delivery_claimed_before_is_looked_for_before_it_is_posted_again(store: Any) -> None:
    draft, planned = _setup(store)
    ghost_town = delivery.Process(host="box", pid=1, alive=lambda _pid: False)
    for d in planned:
        store.claim_delivery(
            d.idempotency_key, owner="box:99:aa", now=NOW, until=NOW + delivery.LEASE
        )
    publisher = FakePublisher()
    # The crashed sender's post to acme had landed (the server has forgotten its key since).
    acme = planned[0]
    publisher.landed[acme.idempotency_key] = receipt_for(
        "acme", acme.idempotency_key, 0, 0, draft.revision.body
    )
    report = _run(store, draft, planned, publisher, process=ghost_town)
    assert sorted(publisher.looked_for) == ["acme", "globex"]
    assert publisher.sent == ["globex"]  # acme was found, not posted again
    assert report.completed
    found = store.get_delivery(acme.idempotency_key)
    assert (found.state, found.external_id) == ("delivered", "ntf_acme_0")
    assert found.receipt is not None
    assert (found.receipt.draft_id, found.receipt.revision) == (draft.id, 1)


def test_a_first_attempt_is_not_looked_for(store: Any) -> None:
    draft, planned = _setup(store)
    publisher = FakePublisher()
    assert _run(store, draft, planned, publisher).completed
    assert publisher.looked_for == []
    assert sorted(publisher.sent) == ["acme", "globex"]


# -- any error in one delivery is that delivery's failure ---------------------------------


@pytest.mark.parametrize(
    "error", [RuntimeError("boom\nsecond line"), KeyError("notification_id"), ValueError("bad")]
)
def test_an_unexpected_error_in_one_delivery_fails_only_that_one(
    store: Any, error: Exception
) -> None:
    draft, planned = _setup(store)
    publisher = FakePublisher()
    publisher.fail["acme"] = error
    done: list[delivery.Outcome] = []
    report = _run(store, draft, planned, publisher, on_done=done.append)
    assert publisher.sent == ["globex"]
    outcomes = {o.delivery.tenant: o for o in report.outcomes}
    assert outcomes["globex"].status == "delivered"
    failed = outcomes["acme"]
    assert failed.status == "retry-later"
    assert type(error).__name__ in (failed.error or "")
    assert "\n" not in (failed.error or "")
    assert report.unfinished == 1
    assert len(done) == 2
    # Unknown whether it landed: back to pending, and looked for before the next post.
    row = store.get_delivery(planned[0].idempotency_key)
    assert (row.state, row.lease_owner, row.attempts) == ("pending", None, 1)
    del publisher.fail["acme"]
    again = _run(store, draft, [row], publisher)
    assert publisher.looked_for == ["acme"]
    assert publisher.sent == ["globex", "acme"]
    assert again.completed
