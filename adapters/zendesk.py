"""ZendeskPublisher: customer updates as a contact-request ticket and its public replies.

The first update of an incident for a tenant opens a ticket (``publish(..., previous=None)``):
subject ``GitLab Dedicated Notice: <subject>``, requester the tenant's first operational email,
CC the other operational emails and the CSM/ASE, tag ``dedicated_contacted_request``, the
approved text as its first public comment. Every later update is a public reply on that ticket
(``PUT /api/v2/tickets/{id}`` with ``comment: {body, public: true}``); the caller passes this
channel's latest receipt for the incident and tenant as ``previous``, and every receipt
carries its ``ticket_id`` in ``detail``. The message kind does not change what is sent.

Exactly once
    *Tickets*: creation carries ``Idempotency-Key``, so Zendesk itself turns a retry into the
    same ticket and says so (``x-idempotency-lookup: hit``, noted as ``already_delivered``).
    Zendesk keeps a key for a limited time only: a resume long after a crash could open a
    second ticket. zenpy has no per-request headers (``tickets.create`` reaches
    ``Api._post(url, payload)`` with nothing else), and a session-wide header would leak into
    concurrent requests; so the key travels through requests' own extension point: the
    publisher mounts a transport adapter (``requests.adapters.HTTPAdapter``) on the client's
    session, and that adapter adds the header to POSTs from a context variable set around the
    create call (one per thread). Nothing inside zenpy is patched.

    *Replies* are not idempotent in Zendesk. Each one carries a delivery tag,
    ``comms_<16 hex of sha256(idempotency key)>``, added by the *same* update
    (``additional_tags``), so the comment and its tag land together or not at all. Before
    posting, and again after any failure whose outcome is unknown (timeout, dropped
    connection, 5xx), the publisher re-reads the ticket: if the tag is there the reply already
    landed and it is not posted again; its comment id is found among the ticket's comments.
    Why a tag: end users never see tags, agents barely notice them, they live on the ticket
    itself (no index lag, unlike search) and are set atomically with the comment. Rejected:
    a footer such as ``Ref: INC-12/u3`` changes the approved text (the approval hash and the
    "same text on every channel" rule) and the customer reads it; custom audit ``metadata``
    is invisible but zenpy's ticket update cannot send the top-level ``metadata`` object, and
    we will not bypass zenpy for it; matching the body alone is ambiguous when one text is
    legitimately sent twice and brittle when Zendesk normalises whitespace or HTML.

Rate limits and retries
    The transport paces every request at ``rate_per_minute`` (default 180: 90% of the Team
    plan's 200 a minute, so other integrations keep some room) and, on a 429, waits at least
    ``Retry-After`` with an injectable ``sleep`` and retries the same request, a bounded number
    of times; zenpy therefore never sees a 429 and never sleeps on its own. Past the bound, or
    when ``Retry-After`` exceeds ``max_retry_after``, the publisher raises a retryable
    ``PublishError`` carrying ``retry_after`` for the caller to reschedule. The transport's
    429 retries and the publisher's retries of reads and writes all follow the shared
    :class:`comms.adapters.retry.RetryPolicy` (bounded, exponential backoff with jitter,
    ``Retry-After``).

Errors
    zenpy's ``APIException`` family, ``ZenpyException`` (``RatelimitBudgetExceeded`` among
    them) and requests' ``ConnectionError``/``Timeout`` become
    ``PublishError(channel="zendesk", status=..., retryable=...)`` raised ``from`` the original.
    Credentials never appear in messages or logs; the transport does no retry of its own on
    connection errors, so a reply is never replayed behind the publisher's back.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from requests.adapters import HTTPAdapter
from zenpy.lib.exception import (  # type: ignore[import-untyped]
    APIException,
    RatelimitBudgetExceeded,
    RecordNotFoundException,
    ZenpyException,
)

from comms.adapters.retry import RetryPolicy, retry_after_seconds
from comms.delivery import body_sha256
from comms.errors import ConfigError, PublishError
from comms.models import Contact, Incident, MessageKind, Receipt, Tenant
from comms.times import from_iso

__all__ = [
    "CONTACT_REQUEST_TAG",
    "SUBJECT_PREFIX",
    "ZendeskConfig",
    "ZendeskPublisher",
    "ZendeskRateLimitError",
    "connect",
    "delivery_tag",
    "from_settings",
    "recipients",
    "ticket_subject",
]

CHANNEL = "zendesk"
CONTACT_REQUEST_TAG = "dedicated_contacted_request"
SUBJECT_PREFIX = "GitLab Dedicated Notice: "
CC_ROLES = ("operational", "csm", "ase")

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# (key, answers): the header to send, and where the transport notes Zendesk's
# ``x-idempotency-lookup`` answers (``hit`` means the ticket already existed).
_IDEMPOTENCY: contextvars.ContextVar[tuple[str, list[str]] | None] = contextvars.ContextVar(
    "comms_zendesk_idempotency", default=None
)


class ZendeskRateLimitError(requests.exceptions.RequestException):
    """Zendesk kept answering 429 past the retry bound; ``retry_after`` is its last word."""

    def __init__(self, message: str, *, retry_after: float | None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


# -- pure helpers -------------------------------------------------------------------------


def delivery_tag(idempotency_key: str) -> str:
    """The tag that marks one delivery on its ticket: ``comms_`` + 16 hex of the key's hash."""
    return "comms_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]


def ticket_subject(incident: Incident, subject: str) -> str:
    """``GitLab Dedicated Notice: <subject>``, falling back to the incident title.

    The draft's subject comes first because it is the reviewed, linted text; the incident
    title is an internal record and may name hosts or causes.
    """
    text = " ".join((subject or "").split()) or " ".join(incident.title.split())
    if text.lower().startswith(SUBJECT_PREFIX.strip().lower()):
        text = text[len(SUBJECT_PREFIX.strip()) :].strip()
    return SUBJECT_PREFIX + text


def recipients(tenant: Tenant) -> tuple[Contact, list[Contact]]:
    """(requester, CCs): the first operational contact, then the other operational contacts
    and the CSM/ASE, each address once (case-insensitive), in the tenant's order.

    Raises ``PublishError`` (not retryable) when the tenant has no operational email.
    """
    operational = [c for c in tenant.contacts if c.role == "operational" and c.email.strip()]
    if not operational:
        raise PublishError(
            f"tenant {tenant.id} has no operational contact email; add one to the tenant "
            "before sending through Zendesk",
            channel=CHANNEL,
            retryable=False,
        )
    requester = operational[0]
    seen = {requester.email.strip().lower()}
    ccs: list[Contact] = []
    for role in CC_ROLES:
        for contact in tenant.contacts:
            address = contact.email.strip().lower()
            if contact.role == role and address and address not in seen:
                seen.add(address)
                ccs.append(contact)
    return requester, ccs


def _same_text(a: str | None, b: str) -> bool:
    """Zendesk may trim or re-wrap whitespace; compare the words."""
    return a is not None and a.split() == b.split()


def _utcnow() -> datetime:
    return datetime.now(UTC)


# -- transport ----------------------------------------------------------------------------


@contextmanager
def _idempotency_key(key: str, answers: list[str]) -> Iterator[None]:
    token = _IDEMPOTENCY.set((key, answers))
    try:
        yield
    finally:
        _IDEMPOTENCY.reset(token)


class _Transport(HTTPAdapter):
    """requests transport: pacing, 429 retries, and the ``Idempotency-Key`` header.

    Thread-safe: slots are reserved under a lock, sleeping happens outside it, and the
    header comes from a context variable (one per thread).
    """

    def __init__(
        self,
        *,
        rate_per_minute: float,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ) -> None:
        # No urllib3 retries: a read timeout on a PUT must come back to the publisher, which
        # checks whether the reply landed, instead of being replayed blindly.
        super().__init__(max_retries=0)
        self.interval = 60.0 / rate_per_minute if rate_per_minute > 0 else 0.0
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.sent = 0
        self.rate_limited = 0
        self._next_slot: float | None = None
        self._lock = threading.Lock()

    def _pace(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + self.interval
        if slot > now:
            self.sleep(slot - now)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        idempotency = _IDEMPOTENCY.get() if request.method == "POST" else None
        if idempotency is not None:
            request.headers["Idempotency-Key"] = idempotency[0]
        limited: list[requests.Response] = []

        def attempt() -> requests.Response:
            self._pace()
            response = HTTPAdapter.send(self, request, **kwargs)
            self.sent += 1
            if response.status_code != 429:
                if idempotency is not None and "x-idempotency-lookup" in response.headers:
                    idempotency[1].append(response.headers["x-idempotency-lookup"])
                return response
            # A 429 was not applied, so the same request may always be sent again.
            self.rate_limited += 1
            limited.append(response)
            response.close()
            raise PublishError(
                "Zendesk answered 429",
                channel=CHANNEL,
                status=429,
                retryable=True,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )

        try:
            return self.policy.call(attempt)
        except PublishError as error:
            # Raised as a requests error so that it leaves zenpy as it entered.
            raise ZendeskRateLimitError(
                f"Zendesk answered 429 {len(limited)} times",
                retry_after=error.retry_after,
                response=limited[-1],
                request=request,
            ) from error


# -- errors -------------------------------------------------------------------------------


def _zendesk_message(exc: APIException) -> str:
    """Zendesk's own ``error: description`` from an APIException, on one line."""
    try:
        payload = json.loads(str(exc))
    except ValueError:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not isinstance(payload, dict):
        return str(payload)
    error = payload.get("error")
    if isinstance(error, dict):
        error = error.get("title") or error.get("message")
    description = payload.get("description") or ""
    details = payload.get("details")
    if isinstance(details, dict):
        for problems in details.values():
            for problem in problems if isinstance(problems, list) else []:
                if isinstance(problem, dict) and problem.get("description"):
                    description = f"{description} ({problem['description']})".strip()
    return ": ".join(str(p) for p in (error, description) if p) or "no detail"


def _translate(exc: Exception, action: str) -> PublishError:
    """One vendor exception as a PublishError; ``retryable`` means "may land if retried"."""
    if isinstance(exc, ZendeskRateLimitError):
        hint = f"; retry after {exc.retry_after:.0f} s" if exc.retry_after is not None else ""
        return PublishError(
            f"Zendesk rate limit while trying to {action}{hint}",
            channel=CHANNEL,
            status=429,
            retryable=True,
            retry_after=exc.retry_after,
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return PublishError(
            f"Zendesk did not answer in time while trying to {action}; it may have been "
            "applied, comms checks before trying again",
            channel=CHANNEL,
            retryable=True,
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return PublishError(
            f"connection to Zendesk failed while trying to {action}; check the network "
            "and the zendesk subdomain",
            channel=CHANNEL,
            retryable=True,
        )
    if isinstance(exc, APIException | requests.exceptions.RequestException):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        detail = _zendesk_message(exc) if isinstance(exc, APIException) else str(exc)
        if status in (401, 403):
            message = (
                f"Zendesk refused the credentials ({status}) while trying to {action}; check "
                "zendesk.email and the API token (COMMS_ZENDESK_TOKEN)"
            )
        elif isinstance(exc, RecordNotFoundException) or status == 404:
            message = f"Zendesk has no such record while trying to {action} ({detail})"
        else:
            message = f"Zendesk answered {status} while trying to {action}: {detail}"
        retryable = status is None or status >= 500 or status in (408, 409, 429)
        return PublishError(message, channel=CHANNEL, status=status, retryable=retryable)
    if isinstance(exc, ZenpyException):
        # Includes RatelimitBudgetExceeded, and answers zenpy could not parse: the request
        # may have been applied, so the caller checks before trying again.
        budget = isinstance(exc, RatelimitBudgetExceeded)
        return PublishError(
            f"Zendesk client error while trying to {action}: {exc}",
            channel=CHANNEL,
            status=429 if budget else None,
            retryable=True,
        )
    raise TypeError(f"not a Zendesk error: {type(exc).__name__}")  # pragma: no cover


_VENDOR_ERRORS = (requests.exceptions.RequestException, APIException, ZenpyException)


# -- the publisher ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Landed:
    comment_id: int | None


class ZendeskPublisher:
    """Publishes one tenant's update to Zendesk through a zenpy client (see module docstring).

    ``client`` is a ``zenpy.Zenpy``; the publisher disables its object cache (the delivery
    check must see fresh tags) and mounts its transport on the client's requests session.
    Reads and writes are tried ``max_attempts`` times, a 429 ``max_429_retries`` more times
    inside the transport, both under one :class:`RetryPolicy` (backoff from ``backoff``
    seconds, doubling, with jitter). ``sleep``, ``clock``, ``jitter`` and ``now`` are
    injectable so tests neither wait nor read the clock. The publisher owns the client:
    :meth:`close` closes it.
    """

    name = CHANNEL

    def __init__(
        self,
        client: Any,
        *,
        rate_per_minute: float = 180.0,
        max_attempts: int = 4,
        max_429_retries: int = 3,
        max_retry_after: float = 120.0,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        if max_attempts < 1:
            raise ConfigError("zendesk.max_attempts must be at least 1")
        if max_429_retries < 0:
            raise ConfigError("zendesk.max_429_retries may not be negative")
        self.client = client
        self.now = now
        self.policy = RetryPolicy(
            max_attempts=max_attempts,
            backoff_base=backoff,
            max_retry_after=max_retry_after,
            sleep=sleep,
            jitter=jitter,
        )
        self.transport = _Transport(
            rate_per_minute=rate_per_minute,
            policy=dataclasses.replace(self.policy, max_attempts=max_429_retries + 1),
            sleep=sleep,
            clock=clock,
        )
        client.disable_caching()
        session: requests.Session = client.tickets.session
        session.mount("https://", self.transport)
        session.mount("http://", self.transport)

    def close(self) -> None:
        """Close the client's HTTP connections (the client is unusable afterwards)."""
        self.client.tickets.session.close()

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
        """Deliver ``body`` once per ``idempotency_key``: a reply on the ticket of
        ``previous`` (this channel's latest receipt for the incident and tenant) when it has
        one, else a new ticket. Safe to call again with the same key after any failure or
        crash. ``kind`` does not change what is sent.

        Raises ``PublishError``; ``retryable`` says whether calling again may succeed.
        """
        if not body.strip():
            raise PublishError("refusing to send an empty update", channel=CHANNEL)
        ticket_id = _ticket_of(previous)
        marker = delivery_tag(idempotency_key)
        detail: dict[str, Any]
        if ticket_id is None:
            detail = self._open_ticket(tenant, incident, subject, body, idempotency_key, marker)
            external_id = str(detail["ticket_id"])
        else:
            detail = self._reply(ticket_id, body, marker)
            comment = detail["comment_id"]
            external_id = f"{ticket_id}/{comment}" if comment is not None else str(ticket_id)
        log.info("zendesk %s for %s: %s", detail["action"], incident.ref, external_id)
        return Receipt(
            channel=CHANNEL,
            tenant=tenant.id,
            draft_id=draft_id,
            revision=revision,
            idempotency_key=idempotency_key,
            external_id=external_id,
            delivered_at=self.now(),
            text_sha256=body_sha256(body),
            detail={**detail, "marker": marker},
        )

    def find_delivery(
        self,
        *,
        incident: Incident,
        tenant: Tenant,
        idempotency_key: str,
        previous: Receipt | None,
    ) -> Receipt | None:
        """The receipt of the ticket or reply made under ``idempotency_key``, or None.

        Looks for the key's delivery tag on the ticket of ``previous`` first (read fresh, no
        index lag), then searches tickets for the tag (``type:ticket tags:<tag>``): that also
        finds a ticket a crashed send opened, whose ``Idempotency-Key`` Zendesk may have
        forgotten since.  Search lags behind by minutes; a key is kept for hours, so a
        resume soon after a crash is covered by the key and a late one by the search.  The
        ticket's audits say which comment the tag came with.  Posts nothing.
        """
        marker = delivery_tag(idempotency_key)
        ticket_id = _ticket_of(previous)
        if ticket_id is not None and marker in self._tags_of(ticket_id):
            return self._found(ticket_id, marker, tenant, idempotency_key)
        tickets = self._read(
            lambda: list(self.client.search(type="ticket", tags=marker)),
            f"search Zendesk for tickets tagged {marker}",
        )
        for ticket in tickets:
            if marker in (getattr(ticket, "tags", None) or []):
                return self._found(int(ticket.id), marker, tenant, idempotency_key)
        return None

    def _tags_of(self, ticket_id: int) -> list[str]:
        """The ticket's tags; none for a ticket that is gone (nothing can land on it)."""
        try:
            ticket = self._read(
                lambda: self.client.tickets(id=ticket_id), f"read ticket {ticket_id}"
            )
        except PublishError as exc:
            if exc.status == 404:
                return []
            raise
        return list(getattr(ticket, "tags", None) or [])

    def _found(self, ticket_id: int, marker: str, tenant: Tenant, key: str) -> Receipt:
        """A receipt for the delivery tagged ``marker`` on ``ticket_id``, from the audit
        that added the tag: a ``Create`` opened the ticket, a ``Change`` came with a reply."""
        audits = self._read(
            lambda: list(self.client.tickets.audits(ticket=ticket_id)),
            f"read the audits of ticket {ticket_id}",
        )
        action, comment_id, text, at = "comment", None, "", self.now()
        for audit in audits:
            events = [e for e in getattr(audit, "events", None) or [] if isinstance(e, Mapping)]
            tagged = [e for e in events if e.get("field_name") == "tags"]
            if not any(marker in _tag_list(e.get("value")) for e in tagged):
                continue
            action = "ticket" if any(e.get("type") == "Create" for e in tagged) else "comment"
            comment = next((e for e in events if e.get("type") == "Comment"), None)
            if comment is not None:
                comment_id, text = int(comment["id"]), str(comment.get("body") or "")
            with contextlib.suppress(TypeError, ValueError):
                at = from_iso(str(getattr(audit, "created_at", "")))
            break
        external_id = (
            str(ticket_id)
            if action == "ticket" or comment_id is None
            else f"{ticket_id}/{comment_id}"
        )
        return Receipt(
            channel=CHANNEL,
            tenant=tenant.id,
            draft_id=0,  # Zendesk does not know the draft; the caller fills it in
            revision=0,
            idempotency_key=key,
            external_id=external_id,
            delivered_at=at,
            text_sha256=body_sha256(text) if comment_id is not None else "",
            detail={
                "action": action,
                "ticket_id": ticket_id,
                "comment_id": comment_id,
                "already_delivered": True,
                "recovered": True,
                "marker": marker,
            },
        )

    # -- ticket creation -------------------------------------------------------------------

    def _open_ticket(
        self,
        tenant: Tenant,
        incident: Incident,
        subject: str,
        body: str,
        key: str,
        marker: str,
    ) -> dict[str, Any]:
        from zenpy.lib.api_objects import Comment, Ticket, User  # type: ignore[import-untyped]

        requester, ccs = recipients(tenant)
        title = ticket_subject(incident, subject)
        lookups: list[str] = []

        def create() -> Any:
            # A fresh object each attempt: the same key must carry the same body.
            ticket = Ticket(
                subject=title,
                requester=User(email=requester.email, name=requester.name or requester.email),
                email_ccs=[
                    {"user_email": c.email, "user_name": c.name or c.email, "action": "put"}
                    for c in ccs
                ],
                tags=[CONTACT_REQUEST_TAG, marker],
                comment=Comment(body=body, public=True),
            )
            with _idempotency_key(key, lookups):
                return self.client.tickets.create(ticket)

        # Zendesk deduplicates creation on the key, so every failure may simply be retried.
        audit = self._retry(create, "open a Zendesk ticket", check=None)
        ticket_id = int(audit.ticket.id)
        return {
            "action": "ticket",
            "ticket_id": ticket_id,
            "comment_id": _comment_id(audit),
            "subject": title,
            "requester": requester.email,
            "cc": [c.email for c in ccs],
            # Zendesk answered from its idempotency store: an earlier attempt had created it.
            "already_delivered": lookups[-1:] == ["hit"],
        }

    # -- replies ---------------------------------------------------------------------------

    def _reply(self, ticket_id: int, body: str, marker: str) -> dict[str, Any]:
        from zenpy.lib.api_objects import Comment, Ticket

        def result(comment_id: int | None, *, already: bool) -> dict[str, Any]:
            return {
                "action": "comment",
                "ticket_id": ticket_id,
                "comment_id": comment_id,
                "already_delivered": already,
            }

        # A resumed send (after a crash) looks exactly like a first one: always look first.
        landed = self._landed(ticket_id, body, marker)
        if landed is not None:
            return result(landed.comment_id, already=True)

        def post() -> Any:
            update = Ticket(
                id=ticket_id,
                comment=Comment(body=body, public=True),
                additional_tags=[marker],
            )
            return self.client.tickets.update(update)

        outcome = self._retry(
            post,
            f"reply on Zendesk ticket {ticket_id}",
            check=lambda: self._landed(ticket_id, body, marker),
        )
        if isinstance(outcome, _Landed):
            return result(outcome.comment_id, already=True)
        return result(_comment_id(outcome), already=False)

    def _landed(self, ticket_id: int, body: str, marker: str) -> _Landed | None:
        """Whether the reply tagged ``marker`` is on the ticket (reads are retried freely)."""
        ticket = self._read(lambda: self.client.tickets(id=ticket_id), f"read ticket {ticket_id}")
        if marker not in (getattr(ticket, "tags", None) or []):
            return None
        comments = self._read(
            lambda: list(self.client.tickets.comments(ticket=ticket_id)),
            f"read the comments of ticket {ticket_id}",
        )
        for comment in reversed(comments):
            if getattr(comment, "public", False) and _same_text(comment.body, body):
                return _Landed(int(comment.id))
        return _Landed(None)

    # -- retries ---------------------------------------------------------------------------

    def _read(self, call: Callable[[], _T], action: str) -> _T:
        """A read: retried on anything retryable, since reading twice changes nothing."""
        return self.policy.call(_translated(call, action))

    def _retry(
        self,
        call: Callable[[], Any],
        action: str,
        *,
        check: Callable[[], _Landed | None] | None,
    ) -> Any:
        """A write. After a failure that may have been applied, ``check`` looks before the
        next attempt (and after the last) so that nothing is posted twice."""
        if check is None:
            return self.policy.call(_translated(call, action))

        def landed(error: PublishError) -> _Landed | None:
            try:
                return check()
            except PublishError as check_error:
                raise PublishError(
                    f"{error}; could not check whether it landed ({check_error}); "
                    "nothing was posted twice, run `comms send` again to resume",
                    channel=CHANNEL,
                    status=error.status,
                    retryable=True,
                    retry_after=error.retry_after,
                ) from error.__cause__

        return self.policy.call(_translated(call, action), recover=landed)


def _translated(call: Callable[[], _T], action: str) -> Callable[[], _T]:
    """``call`` with vendor errors raised as ``PublishError`` (from the original)."""

    def attempt() -> _T:
        try:
            return call()
        except _VENDOR_ERRORS as exc:
            raise _translate(exc, action) from exc

    return attempt


def _ticket_of(previous: Receipt | None) -> int | None:
    """The ticket to reply on: the one in a Zendesk ``previous`` receipt, if it names one."""
    if previous is None or previous.channel != CHANNEL:
        return None
    raw = previous.detail.get("ticket_id")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise PublishError(
            f"the previous Zendesk receipt {previous.idempotency_key!r} names no usable "
            f"ticket ({raw!r}); comms cannot tell which ticket to reply on",
            channel=CHANNEL,
        ) from None


def _tag_list(value: Any) -> list[str]:
    """Tags in an audit event: a list, or (in older answers) one space-separated string."""
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value] if isinstance(value, list) else []


def _comment_id(audit: Any) -> int | None:
    """The id of the comment an update created, from the audit Zendesk returned."""
    for event in getattr(getattr(audit, "audit", None), "events", None) or []:
        if isinstance(event, Mapping) and event.get("type") == "Comment" and "id" in event:
            return int(event["id"])
    return None


# -- configuration ------------------------------------------------------------------------


class ZendeskConfig(BaseModel):
    """The ``[zendesk]`` table of comms.toml; the token comes from ``COMMS_ZENDESK_TOKEN``."""

    model_config = ConfigDict(extra="forbid")

    subdomain: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    email: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    token: SecretStr | None = None
    timeout: float = Field(default=30.0, gt=0)
    rate_per_minute: float = Field(default=180.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=10)
    max_retry_after: float = Field(default=120.0, ge=0)


def connect(*, subdomain: str, email: str, token: str, timeout: float = 30.0) -> Any:
    """A zenpy client for ``https://<subdomain>.zendesk.com`` with API-token auth.

    ``ZENPY_FORCE_SCHEME`` and ``ZENPY_FORCE_NETLOC`` (read by zenpy) point it elsewhere,
    such as the test server.
    """
    from zenpy import Zenpy  # type: ignore[import-untyped]

    return Zenpy(subdomain=subdomain, email=email, token=token, timeout=timeout, disable_cache=True)


def from_settings(table: Mapping[str, Any], environ: Mapping[str, str]) -> ZendeskPublisher:
    """The Zendesk publisher for the raw ``[zendesk]`` table of comms.toml.

    ``COMMS_ZENDESK_TOKEN`` in ``environ`` overrides ``token``. The publisher owns its zenpy
    client: the caller closes the publisher. Raises ``ConfigError`` when the table is
    invalid or there is no token; the message never contains the token.
    """
    try:
        config = ZendeskConfig.model_validate(dict(table))
    except ValidationError as exc:
        lines = "; ".join(
            f"zendesk.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid [zendesk] config: {lines}") from None
    token = environ.get("COMMS_ZENDESK_TOKEN") or (
        config.token.get_secret_value() if config.token else ""
    )
    if not token:
        raise ConfigError(
            "no Zendesk API token: set COMMS_ZENDESK_TOKEN (or zendesk.token in comms.toml)"
        )
    client = connect(
        subdomain=config.subdomain, email=config.email, token=token, timeout=config.timeout
    )
    return ZendeskPublisher(
        client,
        rate_per_minute=config.rate_per_minute,
        max_attempts=config.max_attempts,
        max_retry_after=config.max_retry_after,
    )
