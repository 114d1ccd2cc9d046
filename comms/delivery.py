"""Exactly-once delivery: the send use case, and the run that plans, claims, publishes,
records receipts and resumes.

The order is what makes a send safe to repeat or resume after a crash:

1. ``send`` passes the draft through the gate (``comms.review.gate``), then ``plan``: one
   ``Delivery`` per (draft revision, tenant, channel), keyed by a deterministic idempotency
   key, stored *before* any request goes out;
2. ``claim``: a lease in the store, so two ``comms send`` processes never post the same
   delivery at once (a lease of a dead process on this host is taken over at once);
3. publish with the key: Switchboard replays a known key instead of posting again, and the
   Zendesk adapter checks its delivery tag before replying.  A delivery claimed before (in
   flight at a crash, an outcome unknown, a refusal being retried) is first looked for with
   the channel (``Publisher.find_delivery``), because keys expire and a replay is then a
   second post;
4. record the receipt, or the error: a refusal fails the delivery (the next send or resume
   tries it again), anything else puts it back to pending; when every delivery of the
   revision has landed the draft is ``sent`` and ``update.sent`` (with the promised
   next-update time) goes to the event log.

Publishing runs in a bounded thread pool; the store is touched from the calling thread only.
The caller hands in the ports, a clock and the sending ``Process``; nothing here prints or
reads the environment, settings or host.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from comms import review
from comms.errors import EXIT_FINDINGS, CommsError, PublishError, UsageError
from comms.models import Delivery, Draft, DraftState, Incident, Receipt, Tenant
from comms.ports import DeliveryLedger, DraftStore, Publisher

if TYPE_CHECKING:
    from comms.lint.config import LintConfig
    from comms.ports import Clock
    from comms.review import ReviewPolicy

LEASE = timedelta(minutes=5)
# How often a sender looks again at deliveries another live sender holds.
POLL_SECONDS = 0.2


def delivery_key(
    draft_id: int, revision: int, tenant: str, channel: str, *, store_id: str | None = None
) -> str:
    """The idempotency key of one delivery: the same inputs always give the same key.

    ``store_id`` (the ledger's ``store_id()``) namespaces it: draft numbers start at 1 in
    every store, so without it a second store, or one rebuilt after a loss, would reuse
    another's keys at the same channel.  None gives the form keys had before they named
    their store, which deliveries planned then keep.
    """
    if store_id is None:
        name = f"{draft_id}:{revision}:{tenant}:{channel}"
        return f"comms-{draft_id}-{revision}-{hashlib.sha256(name.encode()).hexdigest()[:24]}"
    name = f"{store_id}:{draft_id}:{revision}:{tenant}:{channel}"
    digest = hashlib.sha256(name.encode()).hexdigest()
    return f"comms-{store_id}-{draft_id}-{revision}-{digest[:24]}"


def body_sha256(body: str) -> str:
    """Hash of the text a channel receives (receipts carry the same hash)."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Process:
    """The sending process as leases see it: its host, its pid, and a test whether another
    pid on this host is still alive.  ``comms.bootstrap.Runtime.process`` builds the real
    one; tests pass their own."""

    host: str
    pid: int
    alive: Callable[[int], bool]


def owner_id(process: Process) -> str:
    """A lease identity for one run of ``process``: host, pid and a random part."""
    return f"{process.host}:{process.pid}:{uuid.uuid4().hex[:8]}"


def dead_owners(owners: Sequence[str], process: Process) -> list[str]:
    """Lease owners on ``process``'s host (not ``process`` itself) whose process is gone."""
    dead = []
    for owner in owners:
        parts = owner.split(":")
        if len(parts) != 3 or parts[0] != process.host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid != process.pid and not process.alive(pid):
            dead.append(owner)
    return dead


def plan(
    draft: Draft,
    tenants: Sequence[str],
    channels: Sequence[str],
    *,
    store_id: str | None = None,
    planned: Sequence[Delivery] = (),
) -> list[Delivery]:
    """The deliveries one send of ``draft``'s latest revision consists of, keyed in the
    namespace ``store_id`` (see :func:`delivery_key`).

    A delivery among ``planned`` (the draft's stored ones) for the same revision, tenant and
    channel keeps its stored key: one planned by an older version, before keys named their
    store, must be found again, not planned and posted a second time under a new key.
    """
    digest = body_sha256(draft.revision.body)
    known = {(d.revision, d.tenant, d.channel): d.idempotency_key for d in planned}
    number = draft.revision.number
    return [
        Delivery(
            idempotency_key=known.get((number, tenant, channel))
            or delivery_key(draft.id, number, tenant, channel, store_id=store_id),
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


class DeliveryStore(DraftStore, DeliveryLedger, Protocol):
    """What ``run`` and ``complete`` need: the drafts and the delivery ledger."""


class SendStore(review.GateStore, DeliveryLedger, Protocol):
    """What ``send`` and ``resume`` need: the gate's ports and the delivery ledger."""


# Called with the channels a send still has to deliver through; builds nothing else.
PublisherFactory = Callable[[Sequence[str]], Mapping[str, Publisher]]


class GateError(CommsError):
    """The send gate refused: not approved, error-level findings, another tenant named, empty."""

    exit_code = EXIT_FINDINGS


class UnfinishedSendError(CommsError):
    """Some deliveries failed or are held by another sender: exit 3, resume later."""

    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(
            f"{count} delivery(ies) did not complete; see above, then run: comms send --resume"
        )


@dataclass
class Outcome:
    """What happened to one delivery in this run."""

    delivery: Delivery
    status: str  # delivered | already-delivered | failed | retry-later | busy
    receipt: Receipt | None = None
    error: str | None = None


@dataclass
class SendReport:
    """Per-delivery outcomes of one run, and whether the draft is now fully sent.

    An empty report from ``resume`` means there was nothing to resume.
    """

    outcomes: list[Outcome] = field(default_factory=list)
    completed: bool = False

    def count(self, status: str) -> int:
        """How many outcomes have ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def unfinished(self) -> int:
        """Deliveries that failed, will be retried later, or another sender still holds."""
        return self.count("failed") + self.count("retry-later") + self.count("busy")

    def raise_for_unfinished(self) -> None:
        """Raise ``UnfinishedSendError`` when any delivery did not complete."""
        if self.unfinished:
            raise UnfinishedSendError(self.unfinished)


class _Receipts:
    """Each channel's latest delivered receipt per incident and tenant: what ``publish``
    gets as ``previous`` (Zendesk replies on its ticket).  Read once per incident."""

    def __init__(self, ledger: DeliveryLedger) -> None:
        self.ledger = ledger
        self.latest: dict[str, dict[tuple[str, str], Receipt]] = {}

    def previous(self, delivery: Delivery) -> Receipt | None:
        known = self.latest.get(delivery.incident_ref)
        if known is None:
            known = self.latest[delivery.incident_ref] = {}
            rows = self.ledger.deliveries(incident_ref=delivery.incident_ref, states=["delivered"])
            for row in rows:
                if row.receipt is not None:
                    self._keep(known, row.receipt)
        return known.get((delivery.tenant, delivery.channel))

    def add(self, delivery: Delivery, receipt: Receipt) -> None:
        # A receipt landing in this run is the previous one for a later delivery of the same
        # incident (a resume of two drafts), as long as the incident's rows were read already.
        known = self.latest.get(delivery.incident_ref)
        if known is not None:
            self._keep(known, receipt)

    @staticmethod
    def _keep(known: dict[tuple[str, str], Receipt], receipt: Receipt) -> None:
        key = (receipt.tenant, receipt.channel)
        current = known.get(key)
        if current is None or receipt.delivered_at >= current.delivered_at:
            known[key] = receipt


def run(
    store: DeliveryStore,
    deliveries: Sequence[Delivery],
    *,
    publishers: Mapping[str, Publisher],
    tenants: Mapping[str, Tenant],
    incidents: Mapping[str, Incident],
    drafts: Mapping[int, Draft],
    actor: str,
    clock: Clock,
    process: Process,
    concurrency: int = 4,
    on_done: Callable[[Outcome], None] | None = None,
    patience: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> SendReport:
    """Publish every planned delivery not yet delivered, at most ``concurrency`` at once.

    ``publishers`` must hold a publisher for the channel of every delivery not yet
    delivered; each publish gets the channel's latest delivered receipt for the same
    incident and tenant as ``previous``.  Leases are taken as ``process``; a lease held by
    a dead process on its host is taken over.

    A delivery whose lease another live sender holds (``comms send`` run twice at once) is
    waited for, not reported as a failure: it is looked at again every ``POLL_SECONDS``
    until that sender records it, dies (then it is taken over) or its lease runs out.
    ``patience`` (seconds, default the lease plus a minute) bounds the wait; what is still
    held after it is reported ``busy``.  ``on_done`` is called with each outcome as it comes.

    A delivery with an earlier attempt is looked for with ``find_delivery`` before it is
    published.  Any exception from a publisher is that delivery's outcome, never the run's:
    a ``PublishError`` that is not retryable is ``failed``, every other error ``retry-later``
    (back to pending); the other deliveries complete.
    """
    report = SendReport()
    owner = owner_id(process)
    takeover = dead_owners(store.in_flight_owners(), process)
    receipts = _Receipts(store)
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
                takeover = dead_owners(store.in_flight_owners(), process)
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
                future = pool.submit(
                    _attempt,
                    claimed,
                    publishers=publishers,
                    tenants=tenants,
                    incidents=incidents,
                    drafts=drafts,
                    previous=receipts.previous(claimed),
                )
                pending[future] = claimed
            if not pending:
                continue
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                try:
                    receipt = future.result()
                except Exception as exc:
                    final, error = _failure(exc)
                    stored = store.finish_delivery(
                        item.idempotency_key,
                        receipt=None,
                        error=error,
                        owner=owner,
                        final=final,
                        actor=actor,
                        now=clock(),
                    )
                    finish(Outcome(stored, "failed" if final else "retry-later", error=error))
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
                receipts.add(item, receipt)
                finish(Outcome(stored, "delivered", receipt))
    for draft in drafts.values():
        if complete(store, draft, actor=actor, now=clock()):
            report.completed = True
    return report


def _attempt(
    delivery: Delivery,
    *,
    publishers: Mapping[str, Publisher],
    tenants: Mapping[str, Tenant],
    incidents: Mapping[str, Incident],
    drafts: Mapping[int, Draft],
    previous: Receipt | None,
) -> Receipt:
    """One delivery, in a worker thread: its receipt, or the exception that stopped it.

    A delivery claimed before (a crash, an error whose outcome was unknown, a refusal now
    retried) is looked for first: the channel may have forgotten its idempotency key since,
    and then posting again would post twice.
    """
    publisher = publishers[delivery.channel]
    tenant, incident = tenants[delivery.tenant], incidents[delivery.incident_ref]
    if delivery.attempts > 1:
        found = publisher.find_delivery(
            incident=incident,
            tenant=tenant,
            idempotency_key=delivery.idempotency_key,
            previous=previous,
        )
        if found is not None:
            # The channel may not know which draft it was; the ledger does.
            return found.replace(draft_id=delivery.draft_id, revision=delivery.revision)
    draft = drafts[delivery.draft_id]
    return publisher.publish(
        tenant=tenant,
        incident=incident,
        kind=draft.kind,
        subject=draft.revision.subject,
        body=draft.revision.body,
        idempotency_key=delivery.idempotency_key,
        draft_id=delivery.draft_id,
        revision=delivery.revision,
        previous=previous,
    )


def _failure(exc: Exception) -> tuple[bool, str]:
    """(final, one-line error) for what stopped one delivery.

    A ``PublishError`` says itself whether trying again may succeed.  Anything else (an
    answer the adapter could not read, a bug) leaves it unknown whether the message
    landed: it is not final, so the delivery goes back to pending and is looked for before
    it is posted again.  This is the one place the core catches every exception: one bad
    delivery must not stop the others or leave them in flight.
    """
    if isinstance(exc, PublishError):
        return not exc.retryable, " ".join(str(exc).split())
    detail = " ".join(str(exc).split()) or "no detail"
    return False, (
        f"unexpected error ({type(exc).__name__}: {detail}); it may have landed, "
        "comms looks before posting it again"
    )


def _iso_or_none(moment: datetime | None) -> str | None:
    from comms.times import isoformat

    return isoformat(moment) if moment is not None else None


def complete(store: DeliveryStore, draft: Draft, *, actor: str, now: datetime) -> bool:
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
            # The promise the customer read, from the text (a hand edit may have changed it).
            "next_update_at": _iso_or_none(review.promised_update(current)),
            "text_sha256": sorted({d.text_sha256 for d in rows}),
        },
    )
    return True


def send(
    store: SendStore,
    draft_id: int,
    *,
    publishers: PublisherFactory,
    tenants: Sequence[str],
    channels: Sequence[str],
    override_reason: str | None,
    policy: ReviewPolicy,
    lint_config: LintConfig | None,
    actor: str,
    clock: Clock,
    process: Process,
    concurrency: int,
    on_start: Callable[[Sequence[Delivery]], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
) -> SendReport:
    """Send draft ``draft_id``'s latest revision to ``tenants`` (none: every tenant of the
    incident) through ``channels``, exactly once per tenant and channel.

    The draft must pass ``comms.review.gate`` (``override_reason`` stands in for a missing
    approval and logs ``review.skipped``; an S1 review timeout logs ``review.timed-out``),
    else ``GateError``.  Repeating a send whose deliveries are all planned already skips the
    gate (they passed it when planned), except for a promised next-update time that has
    passed since, while anything is left to post.  Intents are stored before any request;
    deliveries the channel refused are tried again; deliveries of an older revision are
    closed as superseded, never sent.  ``publishers`` is called
    once with the channels still to deliver through (not at all when none are); ``on_start``
    gets the deliveries about to run, ``on_done`` each outcome.  The report's
    ``raise_for_unfinished`` says whether anything is left for ``resume``.
    """
    if override_reason is not None and not override_reason.strip():
        raise UsageError("skipping review needs a reason; it is recorded")
    chosen = list(dict.fromkeys(channels))
    if not chosen:
        raise UsageError("name at least one channel to send through")
    verdict = review.gate(
        store,
        draft_id,
        tenants=tenants,
        channels=chosen,
        override_reason=override_reason,
        policy=policy,
        lint_config=lint_config,
        now=clock(),
    )
    if not verdict.audience:  # an incident imported without tenants: nobody to send to
        raise UsageError(review.no_tenants(verdict.incident))
    known = store.deliveries(draft_id=draft_id)
    intents = plan(
        verdict.draft, verdict.audience, chosen, store_id=store.store_id(), planned=known
    )
    stored = {d.idempotency_key: d for d in known}
    # Repeating or resuming the very same send needs no second pass through the gate (its
    # deliveries passed it when they were planned); any recipient or channel not yet
    # planned must pass it now, or an approval for acme would cover globex later.  Only a
    # promised time that has passed since stops a repeat, while anything is left to post.
    problems = verdict.problems
    if {d.idempotency_key for d in intents} <= stored.keys():
        left = any(stored[d.idempotency_key].state != "delivered" for d in intents)
        problems = (verdict.late,) if verdict.late and left else ()
    if problems:
        raise GateError(f"draft {draft_id} cannot be sent: " + "; ".join(problems))
    moment = clock()
    _log_review_bypass(store, verdict, override_reason, actor=actor, now=moment)
    planned = store.plan_deliveries(intents, actor=actor, now=moment)
    return _deliver(
        store,
        planned,
        publishers=publishers,
        actor=actor,
        clock=clock,
        process=process,
        concurrency=concurrency,
        on_start=on_start,
        on_done=on_done,
    )


def resume(
    store: SendStore,
    *,
    publishers: PublisherFactory,
    actor: str,
    clock: Clock,
    process: Process,
    concurrency: int,
    on_start: Callable[[Sequence[Delivery]], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
) -> SendReport:
    """Finish every delivery an interrupted send left pending or in flight, and retry every
    failed one of a draft's latest revision, of any draft.

    The same run as ``send`` without the gate (every delivery passed it when planned),
    except that a draft whose promised next-update time has passed is refused
    (``GateError``) before anything is posted; an empty report means there was nothing to
    resume.  A failure of an older revision stays closed: that text was superseded.
    """
    unfinished = store.deliveries(states=["pending", "in-flight", "failed"])
    drafts = {d: store.get_draft(d) for d in {u.draft_id for u in unfinished}}
    planned = [
        u
        for u in unfinished
        if u.state != "failed" or u.revision == drafts[u.draft_id].revision.number
    ]
    if not planned:
        return SendReport()
    # A message whose promised next-update time has passed must not go out late; drafting
    # it again closes these deliveries (superseded) and gives a new time.
    late = [
        f"draft {d.id} cannot be sent: {problem}"
        for d in drafts.values()
        if any(p.draft_id == d.id and p.revision == d.revision.number for p in planned)
        and (problem := review.late_promise(d, clock())) is not None
    ]
    if late:
        raise GateError("; ".join(late))
    return _deliver(
        store,
        planned,
        publishers=publishers,
        actor=actor,
        clock=clock,
        process=process,
        concurrency=concurrency,
        on_start=on_start,
        on_done=on_done,
    )


def _log_review_bypass(
    store: SendStore,
    verdict: review.Gate,
    override_reason: str | None,
    *,
    actor: str,
    now: datetime,
) -> None:
    status, draft = verdict.status, verdict.draft
    if status is None:
        return
    if override_reason and not status.ok:
        store.append_event(
            verdict.incident.ref,
            type="review.skipped",
            actor=actor,
            now=now,
            data={
                "draft_id": draft.id,
                "revision": draft.revision.number,
                "reason": override_reason,
            },
        )
    elif status.timed_out:
        store.append_event(
            verdict.incident.ref,
            type="review.timed-out",
            actor=actor,
            now=now,
            data={
                "draft_id": draft.id,
                "revision": draft.revision.number,
                "needs_review_afterwards": True,
            },
        )


def _deliver(
    store: SendStore,
    planned: Sequence[Delivery],
    *,
    publishers: PublisherFactory,
    actor: str,
    clock: Clock,
    process: Process,
    concurrency: int,
    on_start: Callable[[Sequence[Delivery]], None] | None,
    on_done: Callable[[Outcome], None] | None,
) -> SendReport:
    drafts = {d: store.get_draft(d) for d in {p.draft_id for p in planned}}
    superseded = [
        p
        for p in planned
        if p.revision != drafts[p.draft_id].revision.number and p.state != "delivered"
    ]
    # A draft edited after its send was planned must not go out in its old words; the new
    # revision needs its own send (and review).
    for p in superseded:
        store.finish_delivery(
            p.idempotency_key,
            receipt=None,
            final=True,
            actor=actor,
            now=clock(),
            error=f"superseded by revision {drafts[p.draft_id].revision.number}; not sent",
        )
    todo = [p for p in planned if p not in superseded]
    # A failed delivery was refused by its channel, so nothing was posted: once the cause is
    # fixed (a token, a contact) the same send, or a resume, tries it again.
    refused = [p for p in todo if p.state == "failed"]
    if refused:
        reopened = store.plan_deliveries(refused, actor=actor, now=clock(), retry_failed=True)
        again = {d.idempotency_key: d for d in reopened}
        todo = [again.get(p.idempotency_key, p) for p in todo]
    needed = sorted({p.channel for p in todo if p.state != "delivered"})
    built = publishers(needed) if needed else {}
    if on_start is not None:
        on_start(todo)
    return run(
        store,
        todo,
        publishers=built,
        tenants={t.id: t for t in store.list_tenants()},
        incidents={r: store.get_incident(r) for r in {p.incident_ref for p in todo}},
        drafts=drafts,
        actor=actor,
        clock=clock,
        process=process,
        concurrency=concurrency,
        on_done=on_done,
    )
