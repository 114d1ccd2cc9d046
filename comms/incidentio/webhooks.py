"""incident.io's webhooks: signed deliveries (Standard Webhooks, as Svix sends them) verified
and applied through :func:`comms.incidentio.sync.apply_incident`.

    POST /hooks/incidentio → WebhookReceiver.handle → handle_webhook → apply_incident

What the receiver remembers between deliveries (the delivery ids handled lately, the newest
state per incident) is the :class:`WebhookMemory` port, which the stores implement so that
every ``comms serve`` on one database shares it.  A delivery id is claimed in the memory
before anything is applied, so two copies of one delivery never both apply.  Pure: the
signature is checked by ``standardwebhooks``, the store and the memory are ports, ``now``
is given.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from comms.errors import CommsError, ConfigError, NotFoundError, StoreError, UsageError
from comms.incidentio.mapping import Rules
from comms.incidentio.records import (
    IncidentSource,
    IoIncident,
    MalformedError,
    as_object,
    as_text,
    parse_incident,
)
from comms.incidentio.sync import NOT_INCIDENTS, REAL_MODES, SOURCE, Applied, apply_incident
from comms.times import isoformat, utc

if TYPE_CHECKING:
    from comms.ports import Store

# Standard Webhooks: a delivery signed longer ago (or further ahead) than this is refused.
TOLERANCE = timedelta(minutes=5)
# How long a webhook memory keeps a delivery id (see WebhookMemory).
DELIVERY_IDS_KEPT = 2 * TOLERANCE
MAX_BODY_BYTES = 1024 * 1024


class WebhookMemory(Protocol):
    """What the webhook receiver remembers between deliveries: the stores implement it
    (one memory per database, so that every ``comms serve`` on it shares it).

    Delivery ids are kept for :data:`DELIVERY_IDS_KEPT`, twice :data:`TOLERANCE` (a delivery
    signed earlier fails the timestamp check before its id is looked up); the newest state
    per incident for good.
    A retry the sender signs again later, after its id was forgotten, is still not applied
    twice: its state is not newer than the newest handled.
    """

    def webhook_seen(self, delivery_id: str) -> bool:
        """Whether delivery ``delivery_id`` (``webhook-id``) was handled already."""

    def claim_webhook(self, delivery_id: str, *, now: datetime) -> bool:
        """Remember delivery ``delivery_id`` as handled unless it is already, in one atomic
        step: True for the one call that stored it, False for every other (a copy of the
        delivery handled at the same moment waits for the first claim's transaction, then
        finds it taken).  Made by a store inside its own ``transaction()``, the claim is
        undone with that transaction."""

    def release_webhook(self, delivery_id: str) -> None:
        """Forget claimed delivery ``delivery_id``: it was not handled after all (the store
        failed), so the sender's retry of it must be applied."""

    def webhook_newest(self, incident_id: str) -> datetime | None:
        """The ``updated_at`` of the newest state of incident.io incident ``incident_id``
        handled so far (applied or refused), or None."""

    def record_webhook(
        self,
        delivery_id: str,
        *,
        now: datetime,
        incident_id: str | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """Remember a handled delivery and, when given, that ``incident_id``'s state as of
        ``updated_at`` was handled (``webhook_newest`` never moves back); delivery ids older
        than twice :data:`TOLERANCE` may be forgotten."""


class LocalWebhookMemory:
    """A :class:`WebhookMemory` in this process's memory: for a store that keeps none, and
    the reference the stores' implementations are tested against."""

    def __init__(self) -> None:
        self.deliveries: dict[str, datetime] = {}
        self.states: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def webhook_seen(self, delivery_id: str) -> bool:
        """See :class:`WebhookMemory`."""
        with self._lock:
            return delivery_id in self.deliveries

    def claim_webhook(self, delivery_id: str, *, now: datetime) -> bool:
        """See :class:`WebhookMemory`."""
        with self._lock:
            if delivery_id in self.deliveries:
                return False
            self.deliveries[delivery_id] = now
            return True

    def release_webhook(self, delivery_id: str) -> None:
        """See :class:`WebhookMemory`."""
        with self._lock:
            self.deliveries.pop(delivery_id, None)

    def webhook_newest(self, incident_id: str) -> datetime | None:
        """See :class:`WebhookMemory`."""
        with self._lock:
            return self.states.get(incident_id)

    def record_webhook(
        self,
        delivery_id: str,
        *,
        now: datetime,
        incident_id: str | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """See :class:`WebhookMemory`."""
        with self._lock:
            self.deliveries[delivery_id] = now
            horizon = now - DELIVERY_IDS_KEPT
            for old in [d for d, at in self.deliveries.items() if at < horizon]:
                del self.deliveries[old]
            if incident_id is not None and updated_at is not None:
                current = self.states.get(incident_id)
                if current is None or updated_at > current:
                    self.states[incident_id] = updated_at


@dataclass(frozen=True)
class WebhookResult:
    """The answer to one delivery: the HTTP status (200 applied, 204 acknowledged with
    nothing applied, 400 malformed, 401 not authentic or stale, 413 too large, 503 try
    again later) and a one-line reason for the log."""

    status: int
    reason: str
    ref: str | None = None
    applied: Applied | None = None


@dataclass(frozen=True)
class WebhookReceiver:
    """Everything :func:`handle_webhook` needs besides the delivery, the store and the time,
    set up once by the composition root for ``POST /hooks/incidentio``."""

    secret: str
    memory: WebhookMemory
    rules: Rules = field(default_factory=Rules)
    source: IncidentSource | None = None  # fetches private incidents, when a key is set
    actor: str = SOURCE

    def __post_init__(self) -> None:
        _verifier(self.secret)  # a secret that is not whsec_… fails here, at start

    def handle(
        self, headers: Mapping[str, str], body: bytes, *, store: Store, now: datetime
    ) -> WebhookResult:
        """:func:`handle_webhook` for one delivery."""
        return handle_webhook(
            headers,
            body,
            secret=self.secret,
            store=store,
            now=now,
            seen=self.memory,
            rules=self.rules,
            source=self.source,
            actor=self.actor,
        )


@functools.lru_cache(maxsize=4)
def _verifier(secret: str) -> Any:
    from standardwebhooks import Webhook

    try:
        return Webhook(secret)
    except Exception as exc:  # the library raises its own and binascii errors for a bad secret
        raise ConfigError(
            "the incident.io webhook signing secret is not a whsec_… secret; copy it from "
            "incident.io → Settings → Webhooks"
        ) from exc


def handle_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str,
    store: Store,
    now: datetime,
    seen: WebhookMemory,
    rules: Rules | None = None,
    source: IncidentSource | None = None,
    actor: str = SOURCE,
) -> WebhookResult:
    """Verify and apply one incident.io webhook delivery (Standard Webhooks / Svix).

    The signature is checked by ``standardwebhooks`` (which also compares the timestamp with
    the system clock); a timestamp more than :data:`TOLERANCE` from ``now`` is refused too.
    A delivery id seen before is acknowledged (204) and not applied again, and so is one a
    copy of the delivery claimed at the same moment (:meth:`WebhookMemory.claim_webhook`,
    in the transaction that applies it); a state older
    than the newest handled for that incident is acknowledged and ignored, so deliveries in
    any order end in incident.io's latest state.  ``incident_created_v2`` and
    ``incident_updated_v2`` go through :func:`apply_incident`; a private incident's event
    carries only its id, and is fetched through ``source`` when one is given.  A refusal
    (PubSec, an unmapped severity) is acknowledged with its reason: the sender retrying it
    would not help.  Only a store failure answers 503, so that the sender tries again.
    """
    from standardwebhooks import WebhookVerificationError

    lower = {k.lower(): v for k, v in headers.items()}
    if len(body) > MAX_BODY_BYTES:
        return WebhookResult(413, f"body over {MAX_BODY_BYTES} bytes")
    delivery, stamp = lower.get("webhook-id", ""), lower.get("webhook-timestamp", "")
    if not (delivery and stamp and lower.get("webhook-signature")):
        return WebhookResult(401, "missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = datetime.fromtimestamp(int(stamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return WebhookResult(400, "webhook-timestamp is not a Unix time")
    if abs(utc(now) - sent) > TOLERANCE:
        return WebhookResult(401, f"stale delivery: signed {isoformat(sent)}, now {isoformat(now)}")
    try:
        _verifier(secret).verify(body, dict(lower), json_parse=False)
    except (WebhookVerificationError, ValueError) as exc:
        return WebhookResult(401, f"signature not verified: {exc}")
    if seen.webhook_seen(delivery):  # most replays end here; the claim decides the rest
        return WebhookResult(204, f"replay of delivery {delivery}: already handled")
    try:
        payload = json.loads(body)
        event_type = as_text(as_object(payload, "body"), "event_type", "body")
    except (ValueError, MalformedError) as exc:
        return WebhookResult(400, f"malformed body: {exc}")
    kind = event_type.partition(".")[2]
    if kind not in ("incident_created_v2", "incident_updated_v2"):
        seen.record_webhook(delivery, now=now)
        return WebhookResult(204, f"ignored event type {event_type}")
    try:
        io = _webhook_incident(payload, event_type, source)
    except MalformedError as exc:
        return WebhookResult(400, f"malformed body: {exc}")
    except UsageError as exc:  # a private incident without a source, or one gone
        seen.record_webhook(delivery, now=now)
        return WebhookResult(204, str(exc))
    except CommsError as exc:  # incident.io unreachable: let the sender retry
        return WebhookResult(503, str(exc))
    return _apply_delivery(
        store, io, delivery, seen=seen, rules=rules or Rules(), now=now, actor=actor
    )


def _webhook_incident(
    payload: dict[str, Any], event_type: str, source: IncidentSource | None
) -> IoIncident:
    data = as_object(payload.get(event_type), event_type)
    if event_type.startswith("private_incident."):
        incident_id = as_text(data, "id", event_type)
        if source is None:
            raise UsageError(
                f"private incident {incident_id}: its event carries no details; import it "
                f"with comms incident import {incident_id}"
            )
        return source.incident(incident_id)
    return parse_incident(data, event_type)


def _apply_delivery(
    store: Store,
    io: IoIncident,
    delivery: str,
    *,
    seen: WebhookMemory,
    rules: Rules,
    now: datetime,
    actor: str,
) -> WebhookResult:
    """Claim ``delivery``, then apply ``io``, in one store transaction: of two copies of one
    delivery handled at the same moment, the second finds the claim taken and is a replay.
    A store failure gives the claim back (the sender's retry must apply); a refusal is
    remembered as handled, as is everything else."""
    try:
        with store.transaction():
            if not seen.claim_webhook(delivery, now=now):
                return WebhookResult(204, f"replay of delivery {delivery}: already handled")
            result = _apply_claimed(store, io, seen=seen, rules=rules, now=now, actor=actor)
    except StoreError as exc:
        _unclaim(seen, store, delivery)
        return WebhookResult(
            503, f"{io.reference}: store unavailable ({exc}); retry later", io.reference
        )
    except UsageError as exc:  # refused, and rolled back: a store's claim with the rest
        result = WebhookResult(204, f"not applied: {exc}", io.reference)
    except BaseException:  # anything else: give the claim back as a rollback would, re-raise
        _unclaim(seen, store, delivery)
        raise
    # After the commit: what is remembered never runs ahead of what was applied.
    seen.record_webhook(delivery, now=now, incident_id=io.id, updated_at=io.updated_at)
    return result


def _unclaim(seen: WebhookMemory, store: object, delivery: str) -> None:
    # A store's own claim was rolled back with its transaction; releasing it as well could
    # drop the claim a copy of the delivery has taken since.
    if seen is not store:
        seen.release_webhook(delivery)


def _apply_claimed(
    store: Store, io: IoIncident, *, seen: WebhookMemory, rules: Rules, now: datetime, actor: str
) -> WebhookResult:
    newest = seen.webhook_newest(io.id)
    if newest is not None and io.updated_at <= newest:
        return WebhookResult(
            204,
            f"{io.reference}: state of {isoformat(io.updated_at)} is not newer than {isoformat(newest)}",
            io.reference,
        )
    if io.mode not in REAL_MODES:
        return WebhookResult(204, f"{io.reference}: {io.mode} incident ignored", io.reference)
    if io.status.category == "triage" or io.status.category in NOT_INCIDENTS:
        try:
            store.get_incident(io.reference)
        except NotFoundError:  # imported once accepted; never when declined
            reason = f"{io.reference}: {io.status.category} in incident.io, not imported"
            return WebhookResult(204, reason, io.reference)
    applied = apply_incident(store, io, rules=rules, now=now, actor=actor, engaged=False)
    if applied.action == "stale":
        return WebhookResult(204, f"{io.reference}: {applied.notes[0]}", io.reference)
    what = ", ".join(applied.changes) or "no change"
    return WebhookResult(
        200, f"{applied.incident.ref} {applied.action} ({what})", applied.incident.ref, applied
    )
