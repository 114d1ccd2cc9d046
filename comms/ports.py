"""Ports: the small Protocols the core talks to; adapters implement them.

The store is split by what each part of the core needs from it, so a use case names the
smallest port it reads or writes, and a new backend (PostgreSQL) knows the whole contract:

    TenantStore ─┐
    IncidentStore├─ Store  (+ transaction, pinned, close)  SqliteStore, MemoryStore
    DraftStore   │
    ReviewStore  │
    DeliveryLedger
    NoteLedger   │
    ClockSource  │
    UserStore    ┘
    AlertState                                             SqliteAlerts, MemoryStore

    Publisher (+ TenantDirectory)                          SwitchboardPublisher, ZendeskPublisher
    AlertSink                                              StdoutSink, SlackSink, PagerDutySink …

Every change a store makes is one transaction that also appends its event, so the log and
the state never disagree; ``transaction()`` joins several changes into one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from comms.alerts import Action, Key
    from comms.alerts import AlertState as AlertRecord
    from comms.cadence import Horizon
    from comms.models import (
        Delivery,
        Draft,
        DraftState,
        Event,
        Incident,
        MessageKind,
        Receipt,
        Review,
        Revision,
        Role,
        Severity,
        Tenant,
        User,
    )
    from comms.records import ClockRow, DraftSummary

# The clock every use case is given: a timezone-aware UTC "now".
Clock = Callable[[], datetime]

T = TypeVar("T")


class Page(list[T]):
    """What a listing returns: the records read (a list), plus ``more`` (rows after this page
    remain) and ``skipped`` (references of stored rows that could not be read, e.g. written
    by hand or by an older version; the listing goes on without them)."""

    def __init__(
        self, items: Iterable[T] = (), *, more: bool = False, skipped: Sequence[str] = ()
    ) -> None:
        super().__init__(items)
        self.more = more
        self.skipped = tuple(skipped)


def check_page(limit: int | None, offset: int) -> None:
    """``ValueError`` unless ``limit`` (None: no limit) and ``offset`` make a page."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 (None for no limit), not {limit}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, not {offset}")


class TenantStore(Protocol):
    """The tenants incidents can affect."""

    def put_tenant(self, tenant: Tenant) -> None:
        """Insert or replace a tenant."""

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Return a tenant or raise ``NotFoundError``."""

    def list_tenants(self) -> list[Tenant]:
        """All tenants, by id."""

    def tenant_names(self) -> dict[str, tuple[str, ...]]:
        """Every tenant's id → its name then its aliases, by id: what the send gate checks a
        message against, without reading (and checking) the rest of every tenant.  A stored
        tenant whose name or aliases cannot be read raises as ``list_tenants`` would."""


class IncidentStore(Protocol):
    """Incident records and their append-only event log."""

    def create_incident(
        self,
        *,
        title: str,
        severity: Severity,
        tenants: Sequence[str],
        started_at: datetime,
        now: datetime,
        actor: str,
        security: bool = False,
        pubsec: bool = False,
        ref: str | None = None,
        engaged: bool = True,
    ) -> Incident:
        """Open an incident and log ``incident.opened``; ``ref`` defaults to the next ``INC-n``.

        ``engaged`` (the person opening it is the GDCMOC, engaged now) also sets the
        engagement clock and logs ``gdcmoc.engaged``; an incident that opened itself (an
        incident.io webhook) has nobody engaged yet, and its engagement clock runs.

        A ``ref`` already taken raises ``UsageError``.
        """

    def get_incident(self, ref: str) -> Incident:
        """Return an incident or raise ``NotFoundError``."""

    def list_incidents(
        self, *, open_only: bool = False, limit: int | None = None, offset: int = 0
    ) -> Page[Incident]:
        """Incidents, newest first: ``limit`` of them (None: all) after the first ``offset``.

        A stored row that cannot be read is left out and named in ``skipped``.
        """

    def update_incident(
        self, incident: Incident, *, event: str, actor: str, data: dict[str, Any]
    ) -> Incident:
        """Replace an incident's fields and log ``event`` in one transaction.

        A status change also moves the incident's ``status_changed_at`` clock.
        """

    def record_clock(
        self, ref: str, *, column: str, at: datetime, event: str, actor: str, data: dict[str, Any]
    ) -> None:
        """Set one clock (``engaged_at``, ``rca_internal_at``, ``rca_external_at``) and log
        ``event``; any other column is a ``ValueError``."""

    def append_event(
        self, incident_ref: str, *, type: str, actor: str, now: datetime, data: dict[str, Any]
    ) -> Event:
        """Append one event to the incident's log."""

    def events(self, incident_ref: str, *, types: Sequence[str] = ()) -> list[Event]:
        """The incident's event log in order; with ``types``, only the events of those
        types (a review page asks for one kind, not a long incident's whole log)."""


class DraftStore(Protocol):
    """Drafts and their revisions, exactly as the customer will see them."""

    def add_revision(
        self,
        *,
        incident_ref: str,
        kind: MessageKind,
        draft_id: int | None,
        subject: str,
        body: str,
        variables: dict[str, str],
        author: str,
        now: datetime,
        edited: bool = False,
        findings: list[dict[str, Any]] | None = None,
    ) -> Draft:
        """Store a new revision; resets review.

        With ``draft_id`` None the revision joins the incident's open (not yet sent) draft
        of ``kind`` if there is one, else starts a new draft: an incident never has two
        open drafts of one kind, however many writers draft at once.  A ``draft_id`` no
        store could hold (past 64 bits) is not found, like any unknown one.
        """

    def get_draft(self, draft_id: int) -> Draft:
        """Return a draft with its latest revision or raise ``NotFoundError``."""

    def list_drafts(
        self,
        *,
        incident_ref: str | None = None,
        state: DraftState | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> Page[Draft]:
        """Drafts, oldest first (newest first if asked): ``limit`` of them (None: all) after
        the first ``offset``.  An unreadable stored draft is left out and named (its id) in
        ``skipped``."""

    def revisions(self, draft_id: int) -> list[Revision]:
        """Every revision of a draft, oldest first."""

    def draft_summaries(self, *, states: Sequence[DraftState]) -> list[DraftSummary]:
        """The drafts in ``states`` with their latest revision, as listings show them
        (``DraftSummary``: no text, the stored findings counted), oldest first (by
        ``created_at``, then id): the review queue reads no message text."""

    def set_draft_state(
        self,
        draft_id: int,
        state: DraftState,
        *,
        now: datetime,
        actor: str,
        event: str,
        data: dict[str, Any],
    ) -> Draft:
        """Move a draft to ``state`` and log ``event`` in one transaction."""

    def redact_revision(
        self,
        draft_id: int,
        number: int,
        *,
        subject: str,
        body: str,
        variables: dict[str, str],
        actor: str,
        now: datetime,
        data: dict[str, Any],
    ) -> Revision:
        """Replace revision ``number``'s subject, body and variables in place and log
        ``draft.redacted`` (``data`` plus the draft and revision) in one transaction; other
        revisions, reviews and deliveries are untouched.  ``NotFoundError`` for an unknown
        draft or revision."""


class ReviewStore(Protocol):
    """Reviewers' decisions on revisions."""

    def add_review(self, review: Review, *, incident_ref: str, state: DraftState) -> Review:
        """Record a decision, move the draft to ``state`` and log ``review.<decision>``."""

    def reviews(self, draft_id: int) -> list[Review]:
        """Every decision on a draft, oldest first."""


class DeliveryLedger(Protocol):
    """The exactly-once ledger: intents stored before any request, leased while in flight."""

    def store_id(self) -> str:
        """This store's id, made once when the store was created and never changed: the
        namespace of its idempotency keys, so that another store's (or a rebuilt one's)
        draft 1 never reuses this one's keys at a channel."""

    def plan_deliveries(
        self,
        planned: Sequence[Delivery],
        *,
        actor: str,
        now: datetime,
        retry_failed: bool = False,
    ) -> list[Delivery]:
        """Store the intents not stored yet (logging ``delivery.planned``); return the stored
        row of every planned key, so a repeated send sees what an earlier run did.

        With ``retry_failed`` a planned key whose delivery failed (the channel refused it, so
        nothing was posted) is pending again, its attempts and last error kept, and
        ``delivery.reopened`` is logged; a delivered row never changes."""

    def get_delivery(self, key: str) -> Delivery:
        """The delivery with idempotency key ``key`` or ``NotFoundError``."""

    def deliveries(
        self,
        *,
        draft_id: int | None = None,
        states: Sequence[str] = (),
        incident_ref: str | None = None,
    ) -> list[Delivery]:
        """Deliveries matching every given filter, in planning order."""

    def claim_delivery(
        self,
        key: str,
        *,
        owner: str,
        now: datetime,
        until: datetime,
        dead_owners: Sequence[str] = (),
    ) -> Delivery | None:
        """Take the lease on a pending delivery; None when it is finished or another live
        sender holds it.  A lease past ``until`` or held by a dead owner is taken over."""

    def in_flight_owners(self) -> list[str]:
        """Lease owners of deliveries currently marked in flight."""

    def finish_delivery(
        self,
        key: str,
        *,
        receipt: Receipt | None,
        error: str | None,
        final: bool,
        actor: str,
        now: datetime,
        owner: str | None = None,
    ) -> Delivery:
        """Record a receipt (delivered), a final failure, or a retryable error (pending).

        A delivered row never changes again; an error from an ``owner`` that lost the lease
        changes nothing.  A receipt keeps the row's last error on record; an error's event
        carries the attempts made so far."""


class NoteLedger(Protocol):
    """The Slack notes of sent revisions, claimed before they are posted: two ``comms send``
    finishing one draft at once post its note once (``comms.incidentio.slack``)."""

    def claim_note(self, draft_id: int, revision: int, *, owner: str, now: datetime) -> bool:
        """Take the note of revision ``revision`` of draft ``draft_id`` for ``owner``, in one
        atomic step: True for the one call that took it; False while another claim holds it
        and after it was posted (a claim is kept for good unless released)."""

    def release_note(self, draft_id: int, revision: int, *, owner: str) -> None:
        """Give back ``owner``'s claim on the note (its post failed: nothing was posted), so
        that the next ``comms send`` posts it; another owner's claim stays."""


class ClockSource(Protocol):
    """Every incident's clocks in bulk, for the cadence evaluation."""

    def clock_rows(
        self, *, open_only: bool = True, refs: Sequence[str] | None = None
    ) -> list[ClockRow]:
        """One plain row per incident (open ones only by default), oldest first; with
        ``refs``, only those incidents (a page about one incident reads one row)."""


class UserStore(Protocol):
    """Team mode's people: names, roles, and the hash of each one's API token.

    Every change is logged in the store's user log (who did it, when, what), never the
    token or its hash.
    """

    def add_user(
        self, *, name: str, role: Role, token_hash: str, now: datetime, actor: str
    ) -> User:
        """Create a user with the hash of their token; a name already taken (by an active
        or a disabled user) is a ``UsageError``."""

    def get_user(self, name: str) -> User:
        """Return a user (disabled ones too) or raise ``NotFoundError``."""

    def user_for_token(self, token_hash: str) -> User | None:
        """The user whose current token hashes to ``token_hash`` (disabled ones too), or
        None.  A rotated-away token matches nobody."""

    def list_users(self) -> list[User]:
        """Every user, disabled ones too, by name."""

    def set_user_token(self, name: str, *, token_hash: str, now: datetime, actor: str) -> User:
        """Replace a user's token hash (the old token stops working at once) and log it;
        ``NotFoundError`` for an unknown name."""

    def set_user_disabled(self, name: str, *, disabled: bool, now: datetime, actor: str) -> User:
        """Disable (or enable again) a user and log it; ``NotFoundError`` for an unknown
        name.  Either way their ``session_epoch`` moves on, as ``set_user_token``'s does:
        no session from before comes back."""

    def end_user_sessions(self, name: str, *, now: datetime, actor: str) -> User:
        """Move the user's ``session_epoch`` on by one, in one write (every session made
        before, on any server, is refused from then on), and log it as ``user.signed-out``;
        ``NotFoundError`` for an unknown name."""

    def session_key(self) -> bytes:
        """A random secret of at least 32 bytes, made once when first asked for and the same
        for every process on this store: ``comms serve`` signs session cookies and CSRF
        tokens with it, so that two servers on one database serve the same sessions."""


class Store(
    TenantStore,
    IncidentStore,
    DraftStore,
    ReviewStore,
    DeliveryLedger,
    NoteLedger,
    ClockSource,
    UserStore,
    Protocol,
):
    """Everything comms keeps.  Implementations: ``SqliteStore`` (default), ``MemoryStore``."""

    def transaction(self) -> AbstractContextManager[None]:
        """Join the changes made inside into one transaction: all land, or none.

        Reads inside see the changes made so far; nesting joins the outer transaction.
        """

    def pinned(self) -> AbstractContextManager[None]:
        """Serve every call this thread makes inside from one connection, taken at the
        first call and given back at the end: a page's dozen reads wait for a free
        connection once, not a dozen times.

        Nothing else changes: each read still sees what is committed when it runs (no
        snapshot), each change is still its own transaction and ``transaction()`` still
        joins them.  Nesting joins the outer block; a store with one connection (SQLite,
        memory) does nothing.
        """

    def close(self) -> None:
        """Release the connection; the store is unusable afterwards."""


class AlertState(Protocol):
    """The cadence watcher's memory: what was sent, what is half sent, what is snoozed."""

    def clock_rows(
        self,
        *,
        open_only: bool = True,
        rca_severities: tuple[str, ...] = (),
        resolved_since: datetime | None = None,
        horizon: Horizon | None = None,
    ) -> list[ClockRow] | None:
        """The store's clock rows, plus resolved incidents whose final update or RCA may
        still be owed; None when the store has no schema yet.  With ``horizon``, at least
        the rows it admits (rows it does not admit may be left out)."""

    def tracked(
        self, *, rca_severities: tuple[str, ...] = (), resolved_since: datetime | None = None
    ) -> int:
        """How many rows ``clock_rows`` returns with these arguments and no horizon (0 when
        the store has no schema yet)."""

    def incident_exists(self, ref: str) -> bool | None:
        """True or False, or None when the store has no schema yet."""

    def load(self) -> dict[Key, AlertRecord]:
        """The stored alert state, keyed by ``(ref, clock)``."""

    def save(
        self,
        states: Mapping[Key, AlertRecord],
        *,
        sent: Sequence[tuple[Action, list[str]]] = (),
        partial: Sequence[tuple[str, str, datetime]] = (),
        finished: Sequence[str] = (),
    ) -> None:
        """Replace the state, log ``sent`` actions, remember ``partial`` (token, sink, at)
        sends and forget ``finished`` tokens, atomically."""

    def partial(self) -> set[tuple[str, str]]:
        """(token, sink) pairs already delivered for actions still being retried."""

    def snooze(self, ref: str, until: datetime, *, actor: str, now: datetime) -> None:
        """Mute alerts for ``ref`` until ``until`` (replaces an earlier snooze)."""

    def unsnooze(self, ref: str) -> bool:
        """Remove a snooze; True if there was one."""

    def snoozes(self, now: datetime) -> dict[str, datetime]:
        """Snoozes still running at ``now``: ref → until."""

    def close(self) -> None:
        """Release the connection."""


class Publisher(Protocol):
    """A delivery channel: Switchboard, Zendesk, or a fake in tests."""

    name: str

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
        """Deliver one message to one tenant exactly once per ``idempotency_key``.

        ``kind`` picks the channel's template; ``previous`` is this channel's latest receipt
        for the same incident and tenant (Zendesk replies on its ticket).  Raises
        ``PublishError``, whose ``retryable`` says whether calling again may succeed.
        """

    def find_delivery(
        self,
        *,
        incident: Incident,
        tenant: Tenant,
        idempotency_key: str,
        previous: Receipt | None,
    ) -> Receipt | None:
        """The receipt of a message already delivered under ``idempotency_key``, read from
        the channel itself, or None when nothing landed under it.

        Asked before a delivery that was attempted before is posted again: the channel may
        have forgotten the key since (idempotency keys expire), so only looking tells.
        ``previous`` is what ``publish`` is given.  Posts nothing; raises ``PublishError``.
        """


class TenantDirectory(Protocol):
    """A channel that knows the tenants (Switchboard): the source of ``tenants sync``."""

    def tenants(self) -> list[Tenant]:
        """Every tenant the channel knows, as our model."""


class AlertSink(Protocol):
    """Somewhere a cadence reminder or alert goes: stdout, Slack, PagerDuty, a webhook."""

    name: str

    def send(self, action: Action) -> None:
        """Deliver one action; raise ``PublishError`` when the sink did not take it."""
