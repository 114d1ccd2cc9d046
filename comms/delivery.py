"""Exactly-once delivery: plan intents, claim them, publish, record receipts, resume.

The order is what makes a send safe to repeat or resume after a crash:

1. ``plan``: one ``Delivery`` per (draft revision, tenant, channel), keyed by a
   deterministic idempotency key, stored *before* any request goes out;
2. ``claim``: a lease in the store, so two ``comms send`` processes never post the same
   delivery at once (a lease of a dead process on this host is taken over at once);
3. publish with the key: Switchboard replays a known key instead of posting again, and the
   Zendesk adapter checks its delivery tag before replying;
4. record the receipt; when every delivery of the revision has landed the draft is ``sent``
   and ``update.sent`` (with the promised next-update time) goes to the event log.

Publishing runs in a bounded thread pool; the store is touched from the calling thread only.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from comms.errors import PublishError
from comms.models import Delivery, Draft, DraftState, Incident, Receipt, Tenant

LEASE = timedelta(minutes=5)
# How often a sender looks again at deliveries another live sender holds.
POLL_SECONDS = 0.2


def delivery_key(draft_id: int, revision: int, tenant: str, channel: str) -> str:
    """The idempotency key of one delivery: the same inputs always give the same key."""
    digest = hashlib.sha256(f"{draft_id}:{revision}:{tenant}:{channel}".encode()).hexdigest()
    return f"comms-{draft_id}-{revision}-{digest[:24]}"


def body_sha256(body: str) -> str:
    """Hash of the text a channel receives (receipts carry the same hash)."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def owner_id() -> str:
    """This process's lease identity: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def dead_owners(owners: Sequence[str]) -> list[str]:
    """Lease owners on this host whose process no longer exists."""
    host = socket.gethostname()
    dead = []
    for owner in owners:
        parts = owner.split(":")
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.append(owner)
        except PermissionError:  # alive, owned by someone else
            continue
    return dead


def plan(draft: Draft, tenants: Sequence[str], channels: Sequence[str]) -> list[Delivery]:
    """The deliveries one send of ``draft``'s latest revision consists of."""
    digest = body_sha256(draft.revision.body)
    return [
        Delivery(
            idempotency_key=delivery_key(draft.id, draft.revision.number, tenant, channel),
            incident_ref=draft.incident_ref,
            draft_id=draft.id,
            revision=draft.revision.number,
            tenant=tenant,
            channel=channel,
            text_sha256=digest,
        )
        for channel in channels
        for tenant in tenants
    ]


@dataclass
class Outcome:
    """What happened to one delivery in this run."""

    delivery: Delivery
    status: str  # delivered | already-delivered | failed | retry-later | busy
    receipt: Receipt | None = None
    error: str | None = None


@dataclass
class SendReport:
    """Per-delivery outcomes of one run, and whether the draft is now fully sent."""

    outcomes: list[Outcome] = field(default_factory=list)
    completed: bool = False

    def count(self, status: str) -> int:
        """How many outcomes have ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)


ExtraArgs = Callable[[Delivery], dict[str, Any]]


def run(
    store: Any,
    deliveries: Sequence[Delivery],
    *,
    publishers: Mapping[str, Any],
    tenants: Mapping[str, Tenant],
    incidents: Mapping[str, Incident],
    drafts: Mapping[int, Draft],
    actor: str,
    clock: Callable[[], datetime],
    concurrency: int = 4,
    extra_args: ExtraArgs | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    patience: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> SendReport:
    """Publish every planned delivery not yet delivered, at most ``concurrency`` at once.

    A delivery whose lease another live sender holds (``comms send`` run twice at once) is
    waited for, not reported as a failure: it is looked at again every ``POLL_SECONDS``
    until that sender records it, dies (then it is taken over) or its lease runs out.
    ``patience`` (seconds, default the lease plus a minute) bounds the wait; what is still
    held after it is reported ``busy``.
    """
    report = SendReport()
    owner = owner_id()
    takeover = dead_owners(store.in_flight_owners())
    pending: dict[Future[Receipt], Delivery] = {}
    held: list[Delivery] = []
    give_up_at = monotonic() + (LEASE.total_seconds() + 60 if patience is None else patience)

    def finish(outcome: Outcome) -> None:
        report.outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        queue = list(deliveries)
        while queue or pending or held:
            if held and not queue and not pending:
                if monotonic() >= give_up_at:
                    for item in held:
                        current = store.get_delivery(item.idempotency_key)
                        finish(
                            Outcome(
                                current,
                                "busy",
                                current.receipt,
                                f"another sender ({current.lease_owner}) still holds it",
                            )
                        )
                    break
                sleep(POLL_SECONDS)
                takeover = dead_owners(store.in_flight_owners())
                queue, held = held, []
            while queue and len(pending) < max(1, concurrency):
                item = queue.pop(0)
                if item.state == "delivered":
                    finish(Outcome(item, "already-delivered", item.receipt))
                    continue
                now = clock()
                claimed = store.claim_delivery(
                    item.idempotency_key,
                    owner=owner,
                    now=now,
                    until=now + LEASE,
                    dead_owners=takeover,
                )
                if claimed is None:
                    current = store.get_delivery(item.idempotency_key)
                    if current.state == "in-flight":
                        held.append(current)
                        continue
                    status = {"delivered": "already-delivered", "failed": "failed"}.get(
                        current.state, "busy"
                    )
                    finish(Outcome(current, status, current.receipt, current.error))
                    continue
                draft = drafts[claimed.draft_id]
                kwargs = extra_args(claimed) if extra_args else {}
                future = pool.submit(
                    publishers[claimed.channel].publish,
                    tenant=tenants[claimed.tenant],
                    incident=incidents[claimed.incident_ref],
                    subject=draft.revision.subject,
                    body=draft.revision.body,
                    idempotency_key=claimed.idempotency_key,
                    draft_id=claimed.draft_id,
                    revision=claimed.revision,
                    **kwargs,
                )
                pending[future] = claimed
            if not pending:
                continue
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                try:
                    receipt = future.result()
                except PublishError as exc:
                    final = not exc.retryable
                    stored = store.finish_delivery(
                        item.idempotency_key,
                        receipt=None,
                        error=str(exc),
                        owner=owner,
                        final=final,
                        actor=actor,
                        now=clock(),
                    )
                    finish(Outcome(stored, "failed" if final else "retry-later", error=str(exc)))
                    continue
                stored = store.finish_delivery(
                    item.idempotency_key,
                    receipt=receipt,
                    error=None,
                    owner=owner,
                    final=True,
                    actor=actor,
                    now=clock(),
                )
                finish(Outcome(stored, "delivered", receipt))
    for draft in drafts.values():
        if complete(store, draft, actor=actor, now=clock()):
            report.completed = True
    return report


def complete(store: Any, draft: Draft, *, actor: str, now: datetime) -> bool:
    """Mark ``draft`` sent once every planned delivery of its revision has landed.

    Logs ``update.sent`` once, with channels, tenants and the promised next-update time.
    """
    current = store.get_draft(draft.id)
    if current.state is DraftState.SENT:
        return True
    rows = [d for d in store.deliveries(draft_id=draft.id) if d.revision == current.revision.number]
    if not rows or any(d.state != "delivered" for d in rows):
        return False
    delivered_at = max((d.receipt.delivered_at for d in rows if d.receipt), default=now)
    store.set_draft_state(
        draft.id,
        DraftState.SENT,
        now=now,
        actor=actor,
        event="update.sent",
        data={
            "revision": current.revision.number,
            "kind": current.kind.value,
            "channel": ",".join(sorted({d.channel for d in rows})),
            "channels": sorted({d.channel for d in rows}),
            "tenants": sorted({d.tenant for d in rows}),
            "sent_at": delivered_at.isoformat(),
            "next_update_at": current.revision.variables.get("next_update"),
            "text_sha256": sorted({d.text_sha256 for d in rows}),
        },
    )
    return True
