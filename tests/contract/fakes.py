"""FakePublisher: a ``comms.ports.Publisher`` that records what it sent instead of sending.

It keeps the port's promises as the real channels do (the publisher contract runs on it
too): one message per idempotency key, a receipt hashing the text it was given, replies
threaded on ``previous``, and ``PublishError`` with ``retryable`` when told to fail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from comms.delivery import body_sha256
from comms.errors import PublishError
from comms.models import Incident, MessageKind, Receipt, Tenant


@dataclass(frozen=True)
class Sent:
    """One message as it reached the customer."""

    tenant: str
    incident: str
    kind: MessageKind
    subject: str
    body: str
    idempotency_key: str
    thread: str  # the external id of the first message of its conversation


class FakePublisher:
    """Records each message once per key; ``fail_next`` and ``refuse`` script failures."""

    name: str = "fake"

    def __init__(
        self, name: str = "fake", *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.name = name
        self.now = now
        self.sent: list[Sent] = []
        self.calls = 0
        self.closed = False
        self._failures: list[PublishError] = []
        self._refusal: PublishError | None = None
        self._receipts: dict[str, Receipt] = {}
        self._lock = threading.Lock()  # delivery publishes from a thread pool

    def fail_next(self, status: int, *, times: int = 1) -> None:
        """The next ``times`` calls fail as a channel answering ``status`` would."""
        retryable = status == 429 or status >= 500
        error = PublishError(
            f"{self.name}: answered {status}", channel=self.name, status=status, retryable=retryable
        )
        self._failures.extend([error] * times)

    def refuse(self, status: int = 401) -> None:
        """Every call from now on fails as with refused credentials."""
        self._refusal = PublishError(
            f"{self.name}: answered {status}; check the token",
            channel=self.name,
            status=status,
            retryable=False,
        )

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
        """Record the message unless ``idempotency_key`` was sent already; return its receipt."""
        with self._lock:
            self.calls += 1
            if self._refusal is not None:
                raise self._refusal
            if self._failures:
                raise self._failures.pop(0)
            if idempotency_key in self._receipts:
                return self._receipts[idempotency_key]
            external_id = f"{self.name}-{len(self.sent) + 1}"
            thread = str(previous.detail.get("thread", external_id)) if previous else external_id
            self.sent.append(
                Sent(tenant.id, incident.ref, kind, subject, body, idempotency_key, thread)
            )
            receipt = Receipt(
                channel=self.name,
                tenant=tenant.id,
                draft_id=draft_id,
                revision=revision,
                idempotency_key=idempotency_key,
                external_id=external_id,
                delivered_at=self.now(),
                text_sha256=body_sha256(body),
                detail={"thread": thread, "kind": kind.value},
            )
            self._receipts[idempotency_key] = receipt
            return receipt

    def find_delivery(
        self,
        *,
        incident: Incident,
        tenant: Tenant,
        idempotency_key: str,
        previous: Receipt | None,
    ) -> Receipt | None:
        """The receipt of the message sent under ``idempotency_key``, from what was sent
        (not from the key store ``forget_keys`` empties); None if nothing was."""
        with self._lock:
            self.calls += 1
            if self._refusal is not None:
                raise self._refusal
            for number, sent in enumerate(self.sent, 1):
                if sent.idempotency_key == idempotency_key and sent.tenant == tenant.id:
                    return Receipt(
                        channel=self.name,
                        tenant=tenant.id,
                        draft_id=0,
                        revision=0,
                        idempotency_key=idempotency_key,
                        external_id=f"{self.name}-{number}",
                        delivered_at=self.now(),
                        text_sha256=body_sha256(sent.body),
                        detail={"thread": sent.thread, "kind": sent.kind.value, "recovered": True},
                    )
            return None

    def forget_keys(self) -> None:
        """Forget every key, as a server does after its retention period: the same key
        posts again."""
        with self._lock:
            self._receipts.clear()

    def close(self) -> None:
        """Nothing to release."""
        self.closed = True
