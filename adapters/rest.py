"""The Switchboard REST adapter (httpx): tenant directory and one-way notifications.

``SwitchboardClient`` wraps an ``httpx.Client`` that the caller builds (base URL, bearer
token, timeouts; see :func:`make_client`) and adds what every call needs: client-side pacing
under the server's rate limit, the shared retry policy (:mod:`comms.adapters.retry`: bounded,
exponential backoff with jitter, ``Retry-After``), ``Idempotency-Key`` headers, and
translation of every failure into ``PublishError(channel="switchboard", ...)``, marked
retryable only when repeating the request is safe.  ``SwitchboardPublisher`` implements
``comms.ports.Publisher`` and ``TenantDirectory`` on top of it and returns our ``Receipt``;
:func:`from_settings` builds one from the ``[switchboard]`` table.

Exactly once: a delivery is "create a draft for one tenant" (Idempotency-Key = the caller's
key) then "send it" (key + ``:send``), so a retry after any uncertain failure replays instead
of posting again.  If the server has forgotten the keys, a second send of the same
notification is a 409 that we resolve by reading the notification back, and
:meth:`SwitchboardPublisher.find_delivery` tells a resuming caller whether a send landed.
The token lives only in the httpx client's headers; it is never logged or put in an error.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from comms.adapters.retry import RetryPolicy, retry_after_seconds
from comms.delivery import body_sha256
from comms.errors import ConfigError, NotFoundError, PublishError
from comms.models import Contact, Incident, MessageKind, Receipt, Status, Tenant
from comms.times import from_iso

CHANNEL = "switchboard"
TOKEN_ENV = "COMMS_SWITCHBOARD_TOKEN"
URL_ENV = "COMMS_SWITCHBOARD_URL"

# Our message kinds → Switchboard's pre-approved templates.
TEMPLATE_FOR_KIND: dict[MessageKind, str] = {
    MessageKind.INVESTIGATION_START: "incident_investigation_start",
    MessageKind.UPDATE: "incident_investigation_update",
    MessageKind.ESCALATED_RESPONSE: "incident_escalated_response",
    MessageKind.MITIGATION_IN_PROGRESS: "incident_mitigation_in_progress",
    MessageKind.RESOLVED: "incident_resolved",
    MessageKind.MAINTENANCE_PLANNED: "emergency_maintenance_planned",
    MessageKind.MAINTENANCE_COMPLETED: "emergency_maintenance_completed",
}
# 409 is retryable only while another request with our key is still in flight.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class SwitchboardError(PublishError):
    """A Switchboard failure; ``problem_type`` is the RFC 9457 type URI when there was one."""

    def __init__(self, message: str, *, problem_type: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, channel=CHANNEL, **kwargs)
        self.problem_type = problem_type or ""

    @property
    def slug(self) -> str:
        """The last segment of the problem type, e.g. ``already-sent``."""
        return self.problem_type.rstrip("/").rsplit("/", 1)[-1]


class Pacer:
    """A thread-safe token bucket that makes callers wait for their turn.

    Tokens may go negative: each caller reserves the next slot and sleeps until it, so N
    threads sharing one pacer never exceed ``per_minute`` together.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("pacing needs a positive rate and a burst of at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until this caller may send; return how long it waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            delay = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if delay > 0:
            self._sleep(delay)
        return delay


class SwitchboardClient:
    """Switchboard's REST API with pacing, retries and error translation.

    ``client`` carries the base URL, the ``Authorization`` header and timeouts; the caller
    that built it closes it.  Retries follow ``policy``, or a :class:`RetryPolicy` built from
    ``max_attempts``, ``backoff_base``, ``backoff_cap``, ``max_retry_after``, ``sleep`` and
    ``jitter``: a ``Retry-After`` longer than ``max_retry_after`` seconds is not waited for but
    raised (``retryable=True`` with ``retry_after`` set) so the caller can schedule it.
    ``sleep``, ``clock`` and ``jitter`` are seams for tests; the pacer sleeps with ``sleep``.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 120.0,
        rate_per_minute: float | None = None,
        burst: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.http = client
        self.policy = policy or RetryPolicy(
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            max_retry_after=max_retry_after,
            sleep=sleep,
            jitter=jitter,
        )
        self.pacer = (
            Pacer(rate_per_minute, burst=burst, clock=clock, sleep=sleep)
            if rate_per_minute
            else None
        )
        self.attempts = 0  # every HTTP attempt made, for reports and tests

    # ------------------------------------------------------------------ transport

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Make a request, retrying what is safe to retry; return a 2xx response or raise
        ``SwitchboardError``.

        A POST is retried after an uncertain failure (timeout, dropped connection, 5xx) only
        with an ``idempotency_key``: without one a retry could post twice.  Connection
        errors (nothing was sent), 429 and 503 (not processed) are always retried.
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        safe = method in ("GET", "HEAD") or idempotency_key is not None
        what = f"{method} {path}"

        def attempt() -> httpx.Response:
            if self.pacer is not None:
                self.pacer.wait()
            self.attempts += 1
            try:
                response = self.http.request(
                    method, path, json=json, params=params, headers=headers
                )
            except httpx.ConnectError as exc:  # nothing was sent: always safe to retry
                raise SwitchboardError(
                    f"cannot reach Switchboard for {what}: {exc}; check [switchboard] base_url",
                    retryable=True,
                ) from exc
            except httpx.TimeoutException as exc:
                raise SwitchboardError(
                    f"Switchboard timed out on {what} ({type(exc).__name__})", retryable=safe
                ) from exc
            except httpx.TransportError as exc:  # reset, dropped connection, protocol error
                raise SwitchboardError(
                    f"Switchboard connection failed on {what} ({type(exc).__name__}: {exc})",
                    retryable=safe,
                ) from exc
            if response.is_success:
                return response
            raise self._error(response, what, safe=safe)

        return self.policy.call(attempt)

    def _error(self, response: httpx.Response, what: str, *, safe: bool) -> SwitchboardError:
        status = response.status_code
        problem: dict[str, Any] = {}
        if response.headers.get("content-type", "").split(";")[0].strip() in (
            "application/problem+json",
            "application/json",
        ):
            try:
                loaded = response.json()
                problem = loaded if isinstance(loaded, dict) else {}
            except ValueError:
                problem = {}
        detail = str(
            problem.get("detail") or problem.get("title") or response.reason_phrase or "error"
        )
        kind = str(problem.get("type") or "")
        # 429 and 503 mean "not processed"; other 5xx may have done the work, so a POST
        # without an idempotency key must not be repeated.
        retryable = (status in RETRYABLE_STATUS and (safe or status in (429, 503))) or (
            status == 409 and kind.endswith("/idempotency-in-flight")
        )
        hint = {
            401: "; check the Switchboard token",
            403: "; the token may not do this",
            429: "; slow down or raise the limit",
        }.get(status, "")
        return SwitchboardError(
            f"Switchboard answered {status} to {what}: {detail}{hint}",
            status=status,
            retryable=retryable,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
            problem_type=kind,
        )

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self.request("GET", path, params=query).json()
            yield from page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # ------------------------------------------------------------------ resources

    def tenants(self, *, page_size: int = 100) -> list[dict[str, Any]]:
        """Every tenant record, following cursors."""
        return list(self._pages("/api/v1/tenants", {"limit": page_size}))

    def tenant(self, tenant_id: str) -> dict[str, Any]:
        """One tenant record; ``NotFoundError`` when Switchboard has none by that id."""
        try:
            return dict(self.request("GET", f"/api/v1/tenants/{tenant_id}").json())
        except SwitchboardError as exc:
            if exc.status == 404:
                raise NotFoundError(f"Switchboard has no tenant '{tenant_id}'") from exc
            raise

    def templates(self) -> list[dict[str, Any]]:
        """The notification templates."""
        return list(self._pages("/api/v1/notification-templates", {}))

    def create_notification(
        self, payload: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """Create a draft notification (idempotent under ``idempotency_key``)."""
        return dict(
            self.request(
                "POST", "/api/v1/notifications", json=payload, idempotency_key=idempotency_key
            ).json()
        )

    def notification(self, notification_id: str) -> dict[str, Any]:
        """One notification."""
        return dict(self.request("GET", f"/api/v1/notifications/{notification_id}").json())

    def preview(
        self, notification_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """What the recipients will see."""
        return dict(
            self.request(
                "POST",
                f"/api/v1/notifications/{notification_id}/preview",
                idempotency_key=idempotency_key,
            ).json()
        )

    def send(self, notification_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Send a draft; returns the delivery record."""
        return dict(
            self.request(
                "POST",
                f"/api/v1/notifications/{notification_id}/send",
                idempotency_key=idempotency_key,
            ).json()
        )

    def notifications(
        self,
        *,
        incident_reference: str | None = None,
        tenant_id: str | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """Notifications matching the filters, oldest first, following cursors."""
        params: dict[str, Any] = {"limit": 100}
        for name, value in (
            ("incident_reference", incident_reference),
            ("tenant_id", tenant_id),
            ("status", status),
        ):
            if value is not None:
                params[name] = value
        return list(self._pages("/api/v1/notifications", params))


def _unreadable(what: str, exc: Exception) -> SwitchboardError:
    """A 2xx answer comms cannot read, as a retryable error (the work may have been done)."""
    return SwitchboardError(
        f"Switchboard sent {what} in a form comms cannot read ({type(exc).__name__}: {exc})",
        retryable=True,
    )


def tenant_from_record(record: dict[str, Any]) -> Tenant:
    """Our ``Tenant`` from a Switchboard tenant record: operational emails, then CSM and ASE.

    The id and the URL's host are kept as aliases so the linter can spot the tenant named in
    another tenant's message.
    """
    contacts = [
        Contact(email=email, role="operational") for email in record.get("operational_emails") or []
    ]
    for role in ("csm", "ase"):
        person = record.get(role)
        if person:
            contacts.append(
                Contact(email=person["email"], name=person.get("name") or "", role=role)
            )
    host = urlsplit(record.get("url") or "").hostname or ""
    aliases = [a for a in dict.fromkeys([record["id"], host]) if a and a != record["name"]]
    return Tenant(
        id=record["id"],
        name=record["name"],
        url=record.get("url") or "",
        pubsec=bool(record.get("pubsec")),
        geo=bool(record.get("geo")),
        contacts=contacts,
        aliases=aliases,
    )


def template_for(kind: MessageKind | str | None, incident: Incident) -> str:
    """The Switchboard template for a message kind; without one, guess from the status."""
    if kind is not None:
        return TEMPLATE_FOR_KIND[MessageKind.parse(str(kind))]
    if incident.status is Status.RESOLVED:
        return TEMPLATE_FOR_KIND[MessageKind.RESOLVED]
    if incident.status in (Status.MITIGATING, Status.MONITORING):
        return TEMPLATE_FOR_KIND[MessageKind.MITIGATION_IN_PROGRESS]
    return TEMPLATE_FOR_KIND[MessageKind.UPDATE]


class SwitchboardPublisher:
    """``Publisher`` and ``TenantDirectory`` for Switchboard: one notification per tenant,
    created then sent.

    ``client`` is an ``httpx.Client`` (wrapped in a ``SwitchboardClient`` with ``options``)
    or a ready ``SwitchboardClient``.  :meth:`find_delivery` reads the server's own record
    of a send, which outlives its idempotency keys: ``comms.delivery`` asks it before
    posting a delivery attempted before.  With ``verify_first`` every publish looks first,
    even a first attempt (one extra GET; for a store restored from a backup).

    Ownership: the httpx client belongs to whoever built it.  :func:`from_settings` builds
    one and hands it over (``owns_client=True``), so :meth:`close` closes it; a publisher
    given a caller's client leaves it open for that caller to close.
    """

    name = CHANNEL

    def __init__(
        self,
        client: httpx.Client | SwitchboardClient,
        *,
        verify_first: bool = False,
        owns_client: bool = False,
        **options: Any,
    ) -> None:
        self.api = (
            client
            if isinstance(client, SwitchboardClient)
            else SwitchboardClient(client, **options)
        )
        self.verify_first = verify_first
        self.owns_client = owns_client

    def close(self) -> None:
        """Close the httpx client if this publisher owns it (see the class docstring); a
        closed publisher cannot publish.  Closing twice is harmless."""
        if self.owns_client:
            self.api.http.close()

    def tenants(self) -> list[Tenant]:
        """The tenant directory as our ``Tenant`` models."""
        try:
            return [tenant_from_record(r) for r in self.api.tenants()]
        except (KeyError, TypeError, ValueError) as exc:
            raise SwitchboardError(
                f"Switchboard sent a tenant record comms cannot read: {exc}"
            ) from exc

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
        """Deliver ``body`` to one tenant exactly once per ``idempotency_key``, with the
        Switchboard template for ``kind``.

        ``previous`` is ignored: every Switchboard notification stands alone.  With
        ``verify_first`` even a first attempt looks for an earlier send (a store restored
        from a backup); a retried delivery is looked for by the caller in any case.
        """
        if self.verify_first:
            found = self.find_delivery(
                incident=incident, tenant=tenant, idempotency_key=idempotency_key, previous=None
            )
            if found is not None:
                return found
        try:
            return self._publish(
                tenant, incident, kind, subject, body, idempotency_key, draft_id, revision
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A 2xx answer without the fields of the API (a proxy's page, a changed API):
            # whether the send happened is unknown, so the caller looks before retrying.
            raise _unreadable("its answer", exc) from exc

    def _publish(
        self,
        tenant: Tenant,
        incident: Incident,
        kind: MessageKind,
        subject: str,
        body: str,
        idempotency_key: str,
        draft_id: int,
        revision: int,
    ) -> Receipt:
        payload = {
            "template": template_for(kind, incident),
            "tenant_ids": [tenant.id],
            "incident_reference": incident.ref,
            "message": body,
            "metadata": {
                "comms_key": idempotency_key,
                "draft_id": str(draft_id),
                "revision": str(revision),
            },
        }
        try:
            note = self.api.create_notification(payload, idempotency_key=idempotency_key)
        except SwitchboardError as exc:
            if exc.slug == "idempotency-key-reused":
                raise SwitchboardError(
                    f"idempotency key '{idempotency_key}' was already used for a different "
                    f"message to {tenant.id}; the delivery key must change when the text changes",
                    status=exc.status,
                    problem_type=exc.problem_type,
                ) from exc
            raise
        if note.get("status") == "sent":
            return self._receipt_from_notification(note, tenant.id, idempotency_key, recovered=True)
        try:
            delivery = self.api.send(note["id"], idempotency_key=f"{idempotency_key}:send")
        except SwitchboardError as exc:
            # Our own notification is already sent: the earlier attempt landed.
            if exc.status == 409 and exc.slug == "already-sent":
                current = self.api.notification(note["id"])
                if current.get("status") == "sent":
                    return self._receipt_from_notification(
                        current, tenant.id, idempotency_key, recovered=True
                    )
            raise
        return Receipt(
            channel=CHANNEL,
            tenant=tenant.id,
            draft_id=draft_id,
            revision=revision,
            idempotency_key=idempotency_key,
            external_id=delivery["notification_id"],
            delivered_at=from_iso(delivery["sent_at"]),
            text_sha256=body_sha256(body),
            detail={
                "recipients": [r["email"] for r in delivery.get("recipients", [])],
                "template": payload["template"],
                "subject": delivery.get("subject", subject),
                "rendered_sha256": delivery.get("body_sha256", ""),
                "recovered": False,
            },
        )

    def find_delivery(
        self,
        *,
        incident: Incident,
        tenant: Tenant,
        idempotency_key: str,
        previous: Receipt | None = None,
    ) -> Receipt | None:
        """The receipt of a send already made under ``idempotency_key``, or None.

        Reads the tenant's notifications for the incident (the server's own record, which
        outlives its idempotency keys) and matches the key we created the notification
        with; a draft that was never sent is not a delivery.  ``previous`` is not needed:
        every notification stands alone.
        """
        try:
            for note in self.api.notifications(
                incident_reference=incident.ref, tenant_id=tenant.id
            ):
                mine = note.get("idempotency_key") == idempotency_key or (
                    (note.get("metadata") or {}).get("comms_key") == idempotency_key
                )
                if mine and note.get("status") == "sent":
                    return self._receipt_from_notification(
                        note, tenant.id, idempotency_key, recovered=True
                    )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _unreadable("the notifications", exc) from exc
        return None

    def _receipt_from_notification(
        self, note: dict[str, Any], tenant_id: str, key: str, *, recovered: bool
    ) -> Receipt:
        meta = note.get("metadata") or {}
        return Receipt(
            channel=CHANNEL,
            tenant=tenant_id,
            draft_id=int(meta.get("draft_id", 0)),
            revision=int(meta.get("revision", 0)),
            idempotency_key=key,
            external_id=note["id"],
            delivered_at=from_iso(note["sent_at"]),
            text_sha256=body_sha256(note["message"]),
            detail={
                "recipients": [
                    r["email"]
                    for r in note.get("recipients", [])
                    if r.get("tenant_id") == tenant_id
                ],
                "template": note.get("template", ""),
                "recovered": recovered,
            },
        )


@dataclass(frozen=True)
class SwitchboardConfig:
    """The ``[switchboard]`` table: where the API is and how hard to push it."""

    base_url: str
    token: str
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    rate_limit_per_minute: float | None = None
    burst: float = 1.0
    verify_first: bool = False

    def __repr__(self) -> str:  # never show the token
        return f"SwitchboardConfig(base_url={self.base_url!r}, token='***')"

    @classmethod
    def from_table(
        cls, table: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> SwitchboardConfig:
        """Validate the raw table; ``COMMS_SWITCHBOARD_TOKEN`` (in ``environ``, by default
        the process environment) overrides ``token``."""
        env = os.environ if environ is None else environ
        known = {
            "base_url",
            "token",
            "timeout_seconds",
            "max_attempts",
            "rate_limit_per_minute",
            "burst",
            "verify_first",
        }
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(
                f"[switchboard]: unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})"
            )
        base_url = table.get("base_url")
        if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigError(
                '[switchboard]: base_url must be an http(s) URL, e.g. base_url = "http://127.0.0.1:8765"'
            )
        token = env.get(TOKEN_ENV) or table.get("token")
        if not isinstance(token, str) or not token:
            raise ConfigError(f"[switchboard]: no token; set {TOKEN_ENV} or token in [switchboard]")

        def number(name: str, default: float | None, low: float) -> float | None:
            value = table.get(name, default)
            if value is None:
                return None
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value < low
                or math.isnan(value)
            ):
                raise ConfigError(f"[switchboard]: {name} must be a number of at least {low:g}")
            return float(value)

        attempts = table.get("max_attempts", 5)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ConfigError("[switchboard]: max_attempts must be a whole number of at least 1")
        verify = table.get("verify_first", False)
        if not isinstance(verify, bool):
            raise ConfigError("[switchboard]: verify_first must be true or false")
        return cls(
            base_url=base_url.rstrip("/"),
            token=token,
            timeout_seconds=number("timeout_seconds", 10.0, 0.001) or 10.0,
            max_attempts=attempts,
            rate_limit_per_minute=number("rate_limit_per_minute", None, 1),
            burst=number("burst", 1.0, 1) or 1.0,
            verify_first=verify,
        )


def make_client(base_url: str, token: str, *, timeout: float = 10.0, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` for Switchboard: base URL, bearer token, timeouts."""
    return httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}", "User-Agent": "comms-switchboard/1"},
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        **kwargs,
    )


def from_settings(table: Mapping[str, Any], environ: Mapping[str, str]) -> SwitchboardPublisher:
    """The Switchboard publisher for the raw ``[switchboard]`` table of comms.toml.

    ``COMMS_SWITCHBOARD_URL`` in ``environ`` overrides ``base_url`` and
    ``COMMS_SWITCHBOARD_TOKEN`` overrides ``token``.  The publisher owns the httpx client it
    is given here: the caller closes the publisher.  Raises ``ConfigError`` when no URL is
    configured or the table is invalid.
    """
    url = environ.get(URL_ENV)
    if url:
        table = {**table, "base_url": url}
    if not table.get("base_url"):
        raise ConfigError(
            "no [switchboard] base_url configured; add it to comms.toml "
            "(for a local stub: comms switchboard serve)"
        )
    config = SwitchboardConfig.from_table(table, environ)
    client = make_client(config.base_url, config.token, timeout=config.timeout_seconds)
    return SwitchboardPublisher(
        client,
        verify_first=config.verify_first,
        owns_client=True,
        max_attempts=config.max_attempts,
        rate_per_minute=config.rate_limit_per_minute,
        burst=config.burst,
    )
