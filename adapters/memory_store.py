"""MemoryStore: the whole ``comms.ports.Store`` and ``AlertState`` in one process's memory.

It behaves as ``SqliteStore`` and ``SqliteAlerts`` do on one file (the contract suite in
``tests/contract`` runs the same tests on both): ``INC-n`` refs, the same ``NotFoundError``
messages, an event appended with every change, a new revision resetting review, leases on
deliveries, clock rows with the promised update time read as the SQLite reader reads it.

Rows are kept as immutable values (JSON text for what SQLite keeps as JSON), so a caller
can never change stored data through an object it was given, and a snapshot of the
containers is a cheap shallow copy: ``transaction()`` takes one on entry and puts it back
on an exception.  One re-entrant lock guards everything, so delivery threads may share the
store; a transaction holds it until it ends, like SQLite's ``BEGIN IMMEDIATE``.

``memory://name`` (see ``comms.bootstrap``) names a store shared by the whole process:
``open_store`` and ``open_alert_state`` return the same object for the same name, and
``close()`` keeps the data, so the next command in the process sees it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from comms.adapters.store_common import (
    already_sent,
    delivery_data,
    findings_counted,
    finished,
    finished_state,
    incident_taken,
    names_of,
    no_delivery,
    no_draft,
    no_incident,
    no_revision,
    no_tenant,
    opened,
    planned_data,
    reviewed,
    revised,
    sent_update,
)
from comms.errors import StoreError
from comms.identity import no_user, user_taken
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
    Status,
    Tenant,
    User,
)
from comms.ports import Page, check_page
from comms.records import ClockRow, DraftSummary
from comms.times import from_iso, utc

if TYPE_CHECKING:
    from comms.alerts import Action, Key
    from comms.alerts import AlertState as AlertRecord
    from comms.bootstrap import DatabaseURL
    from comms.cadence import Horizon
    from comms.incidentio.webhooks import WebhookMemory
    from comms.ports import AlertState, Store

CLOCK_COLUMNS = ("engaged_at", "rca_internal_at", "rca_external_at")

T = TypeVar("T")
R = TypeVar("R")

_STORES: dict[str, MemoryStore] = {}
_STORES_LOCK = threading.Lock()


def open_store(url: DatabaseURL) -> MemoryStore:
    """The store registered for ``memory`` URLs in ``comms.bootstrap``: one per name."""
    with _STORES_LOCK:
        store = _STORES.get(url.target)
        if store is None:
            store = _STORES[url.target] = MemoryStore(url.target)
        return store


def open_alert_state(url: DatabaseURL) -> MemoryStore:
    """The alert state for ``memory`` URLs: the same object as ``open_store`` returns."""
    return open_store(url)


def discard(name: str) -> None:
    """Forget the store called ``name`` (the next open starts empty)."""
    with _STORES_LOCK:
        _STORES.pop(name, None)


def _page(rows: list[R], limit: int | None, offset: int, read: Callable[[R], T]) -> Page[T]:
    """The page of ``rows`` from ``offset``, read; ``more`` when rows remain after it."""
    end = len(rows) if limit is None else offset + limit
    return Page((read(row) for row in rows[offset:end]), more=end < len(rows))


def _json(value: Any) -> str:
    # What SqliteStore writes for event data; reading it back gives the same values.
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class _IncidentRow:
    ref: str
    seq: int
    title: str
    severity: Severity
    status: Status
    tenants: tuple[str, ...]
    security: bool
    pubsec: bool
    started_at: datetime
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    engaged_at: datetime | None = None
    mitigated_at: datetime | None = None
    mitigated_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    last_update_at: datetime | None = None
    promised_update_at: str | None = None  # as the sender wrote it; read like SqliteAlerts
    rca_internal_at: datetime | None = None
    rca_external_at: datetime | None = None

    def model(self) -> Incident:
        return Incident(
            ref=self.ref,
            title=self.title,
            severity=self.severity,
            status=self.status,
            tenants=list(self.tenants),
            security=self.security,
            pubsec=self.pubsec,
            started_at=self.started_at,
            created_at=self.created_at,
            updated_at=self.updated_at,
            mitigated_at=self.mitigated_at,
            mitigated_by=self.mitigated_by,
            resolved_at=self.resolved_at,
            resolved_by=self.resolved_by,
        )

    def clock_row(self) -> ClockRow:
        from comms.cadence import parse_promise

        return ClockRow(
            self.ref,
            self.title,
            self.severity.value,
            self.status.value,
            self.tenants,
            self.pubsec,
            self.security,
            self.started_at,
            self.created_at,
            self.engaged_at,
            self.status_changed_at,
            self.mitigated_at,
            self.resolved_at,
            self.last_update_at,
            parse_promise(self.promised_update_at, self.last_update_at),
            self.rca_internal_at,
            self.rca_external_at,
        )


@dataclass(frozen=True)
class _DraftRow:
    id: int
    incident_ref: str
    kind: MessageKind
    state: DraftState
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class _RevisionRow:
    number: int
    subject: str
    body: str
    variables: str
    author: str
    created_at: datetime
    edited: bool
    findings: str

    def model(self, draft_id: int) -> Revision:
        return Revision(
            draft_id=draft_id,
            number=self.number,
            subject=self.subject,
            body=self.body,
            variables=json.loads(self.variables),
            author=self.author,
            created_at=self.created_at,
            edited=self.edited,
            findings=json.loads(self.findings),
        )


@dataclass(frozen=True)
class _EventRow:
    id: int
    incident_ref: str
    at: datetime
    actor: str
    type: str
    data: str

    def model(self) -> Event:
        return Event(
            id=self.id,
            incident_ref=self.incident_ref,
            at=self.at,
            actor=self.actor,
            type=self.type,
            data=json.loads(self.data),
        )


@dataclass(frozen=True)
class _DeliveryRow:
    idempotency_key: str
    incident_ref: str
    draft_id: int
    revision: int
    tenant: str
    channel: str
    text_sha256: str
    created_at: datetime
    updated_at: datetime
    state: str = "pending"
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    external_id: str | None = None
    receipt: str | None = None
    error: str | None = None

    def model(self) -> Delivery:
        receipt = None
        if self.receipt is not None:
            raw = json.loads(self.receipt)
            receipt = Receipt(**{**raw, "delivered_at": from_iso(raw["delivered_at"])})
        return Delivery(
            idempotency_key=self.idempotency_key,
            incident_ref=self.incident_ref,
            draft_id=self.draft_id,
            revision=self.revision,
            tenant=self.tenant,
            channel=self.channel,
            text_sha256=self.text_sha256,
            state=self.state,
            attempts=self.attempts,
            lease_owner=self.lease_owner,
            lease_until=self.lease_until,
            external_id=self.external_id,
            receipt=receipt,
            error=self.error,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


_AlertLogRow = tuple[datetime, str, str, str, datetime, str, tuple[str, ...]]


@dataclass
class _Tables:
    """Every container the store holds; values are immutable, so a copy is shallow."""

    tenants: dict[str, str] = field(default_factory=dict)  # id -> JSON, as SqliteStore
    incidents: dict[str, _IncidentRow] = field(default_factory=dict)
    drafts: dict[int, _DraftRow] = field(default_factory=dict)
    revisions: dict[int, tuple[_RevisionRow, ...]] = field(default_factory=dict)
    events: list[_EventRow] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    deliveries: dict[str, _DeliveryRow] = field(default_factory=dict)
    alerts: dict[Key, AlertRecord] = field(default_factory=dict)
    snoozes: dict[str, tuple[datetime, str, datetime]] = field(default_factory=dict)
    partial: dict[tuple[str, str], datetime] = field(default_factory=dict)
    alert_log: list[_AlertLogRow] = field(default_factory=list)
    users: dict[str, tuple[User, str]] = field(default_factory=dict)  # name -> (user, hash)
    user_log: list[tuple[datetime, str, str, str, str]] = field(default_factory=list)
    session_key: list[bytes] = field(default_factory=list)  # one secret, made on first use
    webhook_deliveries: dict[str, datetime] = field(default_factory=dict)  # id -> received
    webhook_states: dict[str, datetime] = field(default_factory=dict)  # incident -> newest
    # (draft id, revision) -> (owner, claimed at): Slack notes claimed (comms.ports.NoteLedger)
    slack_notes: dict[tuple[int, int], tuple[str, datetime]] = field(default_factory=dict)

    def copy(self) -> _Tables:
        return _Tables(
            **{f.name: copy.copy(getattr(self, f.name)) for f in dataclasses.fields(self)}
        )


class MemoryStore:
    """``comms.ports.Store`` and ``comms.ports.AlertState`` in memory (see the module doc)."""

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self._store_id = secrets.token_hex(8)  # made once: a new store is a new namespace
        self._tables = _Tables()
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction(); only the lock holder touches it

    def close(self) -> None:
        """Nothing to release: the data stays for the next open of the same name."""

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryStore({self.name!r})"

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Join every change made inside into one transaction (``Store.transaction``).

        The lock is held throughout, so other threads neither see a half-done change nor
        change what was read inside; on an exception every table is put back as it was.
        """
        with self._lock:
            if self._depth:  # nested: the outermost block keeps or restores
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            saved = self._tables.copy()
            self._depth = 1
            try:
                yield
            except BaseException:
                self._tables = saved
                raise
            finally:
                self._depth = 0

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """``Store.pinned``: nothing to pin in memory."""
        yield

    def store_id(self) -> str:
        """This store's id (``DeliveryLedger.store_id``), made when it was created."""
        return self._store_id

    def _log(self, ref: str, type_: str, actor: str, at: datetime, data: dict[str, Any]) -> int:
        events = self._tables.events
        event_id = len(events) + 1
        events.append(_EventRow(event_id, ref, utc(at), actor, type_, _json(data)))
        return event_id

    def _incident_row(self, ref: str) -> _IncidentRow:
        row = self._tables.incidents.get(ref)
        if row is None:
            raise no_incident(ref)
        return row

    def _draft_row(self, draft_id: int) -> _DraftRow:
        row = self._tables.drafts.get(draft_id)
        if row is None:
            raise no_draft(draft_id)
        return row

    def _delivery_row(self, key: str) -> _DeliveryRow:
        row = self._tables.deliveries.get(key)
        if row is None:
            raise no_delivery(key)
        return row

    # -- tenants ------------------------------------------------------------------------

    def put_tenant(self, tenant: Tenant) -> None:
        """Insert or replace a tenant."""
        with self.transaction():
            self._tables.tenants[tenant.id] = json.dumps(tenant.to_dict())

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Return a tenant or raise ``NotFoundError``."""
        with self._lock:
            data = self._tables.tenants.get(tenant_id)
        if data is None:
            raise no_tenant(tenant_id)
        return Tenant(**json.loads(data))

    def list_tenants(self) -> list[Tenant]:
        """All tenants, by id."""
        with self._lock:
            rows = sorted(self._tables.tenants.items())
        return [Tenant(**json.loads(data)) for _, data in rows]

    def tenant_names(self) -> dict[str, tuple[str, ...]]:
        """Every tenant's id → its name then its aliases, by id (``TenantStore.tenant_names``)."""
        with self._lock:
            rows = sorted(self._tables.tenants.items())
        found = []
        for tenant_id, data in rows:
            fields = json.loads(data)
            found.append((tenant_id, fields.get("name"), fields.get("aliases")))
        return names_of(found, self.get_tenant)

    # -- incidents ----------------------------------------------------------------------

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
        """Open an incident; ``ref`` defaults to the next ``INC-n``."""
        with self.transaction():
            incidents = self._tables.incidents
            seq = max((row.seq for row in incidents.values()), default=0) + 1
            ref = ref or f"INC-{seq}"
            if ref in incidents:
                raise incident_taken(ref)
            at = utc(now)
            row = _IncidentRow(
                ref=ref,
                seq=seq,
                title=title,
                severity=Severity(severity),
                status=Status.INVESTIGATING,
                tenants=tuple(tenants),
                security=bool(security),
                pubsec=bool(pubsec),
                started_at=utc(started_at),
                created_at=at,
                updated_at=at,
                status_changed_at=at,
                engaged_at=at if engaged else None,
            )
            incident = row.model()  # validates before anything is kept
            incidents[ref] = row
            data = opened(
                title=title,
                severity=severity,
                tenants=tenants,
                started_at=started_at,
                security=security,
                pubsec=pubsec,
            )
            self._log(ref, "incident.opened", actor, now, data)
            if engaged:
                self._log(ref, "gdcmoc.engaged", actor, now, {"by": actor})
        return incident

    def get_incident(self, ref: str) -> Incident:
        """Return an incident or raise ``NotFoundError``."""
        with self._lock:
            row = self._incident_row(ref)
        return row.model()

    def list_incidents(
        self, *, open_only: bool = False, limit: int | None = None, offset: int = 0
    ) -> Page[Incident]:
        """Incidents, newest first, a page at a time (nothing held here is unreadable)."""
        check_page(limit, offset)
        with self._lock:
            rows = list(self._tables.incidents.values())
        rows.sort(key=lambda row: row.seq, reverse=True)
        wanted = [r for r in rows if not open_only or r.status is not Status.RESOLVED]
        return _page(wanted, limit, offset, _IncidentRow.model)

    def update_incident(
        self, incident: Incident, *, event: str, actor: str, data: dict[str, Any]
    ) -> Incident:
        """Replace an incident's fields and log ``event`` in one transaction."""
        with self.transaction():
            old = self._incident_row(incident.ref)
            changes: dict[str, Any] = {
                "title": incident.title,
                "severity": incident.severity,
                "status": incident.status,
                "tenants": tuple(incident.tenants),
                "security": incident.security,
                "pubsec": incident.pubsec,
                "started_at": incident.started_at,
                "updated_at": incident.updated_at,
                "mitigated_at": incident.mitigated_at,
                "mitigated_by": incident.mitigated_by,
                "resolved_at": incident.resolved_at,
                "resolved_by": incident.resolved_by,
            }
            if old.status is not incident.status:
                changes["status_changed_at"] = incident.updated_at
            row = dataclasses.replace(old, **changes)
            self._tables.incidents[incident.ref] = row
            self._log(incident.ref, event, actor, incident.updated_at, data)
        return row.model()

    def record_clock(
        self, ref: str, *, column: str, at: datetime, event: str, actor: str, data: dict[str, Any]
    ) -> None:
        """Set one of the incident's clocks (engaged, RCA) and log ``event``."""
        if column not in CLOCK_COLUMNS:
            raise ValueError(column)
        with self.transaction():
            old = self._incident_row(ref)
            clocks: dict[str, Any] = {column: utc(at)}
            self._tables.incidents[ref] = dataclasses.replace(old, **clocks)
            self._log(ref, event, actor, at, data)

    def append_event(
        self, incident_ref: str, *, type: str, actor: str, now: datetime, data: dict[str, Any]
    ) -> Event:
        """Append one event to the incident's log."""
        with self.transaction():
            event_id = self._log(incident_ref, type, actor, now, data)
        return Event(
            id=event_id, incident_ref=incident_ref, at=now, actor=actor, type=type, data=data
        )

    def events(self, incident_ref: str, *, types: Sequence[str] = ()) -> list[Event]:
        """The incident's event log in order, of ``types`` only if given."""
        kinds = set(types)
        with self._lock:
            rows = [
                e
                for e in self._tables.events
                if e.incident_ref == incident_ref and (not kinds or e.type in kinds)
            ]
        return [e.model() for e in rows]

    # -- clocks -------------------------------------------------------------------------

    def clock_rows(
        self,
        *,
        open_only: bool = True,
        rca_severities: tuple[str, ...] = (),
        resolved_since: datetime | None = None,
        horizon: Horizon | None = None,
        refs: Sequence[str] | None = None,
    ) -> list[ClockRow]:
        """Every incident's clocks, oldest first (``ClockSource`` and ``AlertState``).

        ``open_only`` keeps open incidents, plus resolved ones of ``rca_severities`` with an
        RCA outstanding and those whose status changed at or after ``resolved_since``;
        ``horizon`` keeps only the rows it admits, ``refs`` only those incidents.  Pubsec is the incident's flag or any of
        its tenants' current flags; ``lagging`` comes from the ``update.sent`` events of
        incidents with several tenants, ``director_engaged_at`` from the first
        ``director.engaged`` event of one still without a mitigation in sight.
        """
        from comms.cadence import NO_MITIGATION_IN_SIGHT, tenant_lag

        with self._lock:
            rows = sorted(self._tables.incidents.values(), key=lambda r: r.seq)
            if refs is not None:
                named = set(refs)
                rows = [r for r in rows if r.ref in named]
            pubsec = {
                t for t, data in self._tables.tenants.items() if json.loads(data).get("pubsec")
            }
            updates: dict[str, list[tuple[datetime, list[str] | None, datetime | None]]] = {}
            escalated: dict[str, datetime] = {}
            for event in self._tables.events:
                if event.type == "director.engaged":
                    escalated.setdefault(event.incident_ref, event.at)
                if event.type == "update.sent":
                    update = sent_update(event.at, json.loads(event.data))
                    updates.setdefault(event.incident_ref, []).append(update)

        def wanted(row: _IncidentRow) -> bool:
            if not open_only or row.status is not Status.RESOLVED:
                return True
            rca_owed = (
                row.severity.value in rca_severities
                and row.resolved_at is not None
                and (row.rca_internal_at is None or row.rca_external_at is None)
            )
            recent = resolved_since is not None and row.status_changed_at >= resolved_since
            return rca_owed or recent

        out = []
        for row in rows:
            if not wanted(row):
                continue
            plain = row.clock_row()
            clock = plain._replace(
                pubsec=plain.pubsec or not pubsec.isdisjoint(plain.tenants),
                director_engaged_at=escalated.get(row.ref)
                if row.status.value in NO_MITIGATION_IN_SIGHT and row.mitigated_at is None
                else None,
                # Only several tenants can disagree (as the SQLite readers see it).
                lagging=tenant_lag(
                    plain.tenants,
                    plain.last_update_at,
                    plain.promised_update_at,
                    updates.get(row.ref, ()),
                )
                if len(plain.tenants) > 1
                else (),
            )
            if horizon is None or horizon.admits(clock):
                out.append(clock)
        return out

    def tracked(
        self, *, rca_severities: tuple[str, ...] = (), resolved_since: datetime | None = None
    ) -> int:
        """How many rows ``clock_rows`` returns with these arguments and no horizon."""
        return len(self.clock_rows(rca_severities=rca_severities, resolved_since=resolved_since))

    def incident_exists(self, ref: str) -> bool:
        """Whether the incident ``ref`` is stored."""
        with self._lock:
            return ref in self._tables.incidents

    # -- drafts -------------------------------------------------------------------------

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
        """Store a new revision; resets review.  ``draft_id`` None joins the incident's open
        draft of ``kind``, else starts one."""
        at = utc(now)
        with self.transaction():
            tables = self._tables
            previous_state: str | None
            if draft_id is None:
                # The incident's open draft of this kind, if any, takes the revision: as
                # SqliteStore's unique index keeps it, there is never a second one.
                draft_id = next(
                    (
                        row.id
                        for row in tables.drafts.values()
                        if row.incident_ref == incident_ref
                        and row.kind == kind
                        and row.state is not DraftState.SENT
                    ),
                    None,
                )
            if draft_id is None:
                draft_id = len(tables.drafts) + 1
                tables.drafts[draft_id] = _DraftRow(
                    draft_id, incident_ref, MessageKind(kind), DraftState.DRAFT, at, at
                )
                number, previous_state = 1, None
            else:
                old = self._draft_row(draft_id)
                if old.state is DraftState.SENT:
                    raise already_sent(draft_id)
                previous_state = old.state.value
                number = tables.revisions[draft_id][-1].number + 1
                # Any new text voids an earlier review: the draft goes back to 'draft'.
                tables.drafts[draft_id] = dataclasses.replace(
                    old, state=DraftState.DRAFT, updated_at=at
                )
            revision = _RevisionRow(
                number,
                subject,
                body,
                json.dumps(variables, sort_keys=True),
                author,
                at,
                bool(edited),
                json.dumps(findings or []),
            )
            tables.revisions[draft_id] = (*tables.revisions.get(draft_id, ()), revision)
            data = revised(draft_id, number, kind, edited, previous_state)
            self._log(incident_ref, "draft.revised", author, now, data)
            return self._draft(draft_id)

    def _draft(self, draft_id: int) -> Draft:
        row = self._draft_row(draft_id)
        return Draft(
            id=row.id,
            incident_ref=row.incident_ref,
            kind=row.kind,
            state=row.state,
            created_at=row.created_at,
            updated_at=row.updated_at,
            revision=self._tables.revisions[draft_id][-1].model(draft_id),
        )

    def get_draft(self, draft_id: int) -> Draft:
        """Return a draft with its latest revision or raise ``NotFoundError``."""
        with self._lock:
            return self._draft(draft_id)

    def list_drafts(
        self,
        *,
        incident_ref: str | None = None,
        state: DraftState | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> Page[Draft]:
        """Drafts, oldest (or newest) first, a page at a time."""
        check_page(limit, offset)
        with self._lock:
            rows = sorted(self._tables.drafts.values(), key=lambda r: r.id, reverse=newest_first)
            wanted = [
                row.id
                for row in rows
                if (incident_ref is None or row.incident_ref == incident_ref)
                and (state is None or row.state == state)
            ]
            return _page(wanted, limit, offset, self._draft)

    def draft_summaries(self, *, states: Sequence[DraftState]) -> list[DraftSummary]:
        """The drafts in ``states`` as listings show them, oldest first (see the port)."""
        wanted = set(states)
        with self._lock:
            found = []
            for row in self._tables.drafts.values():
                if row.state not in wanted:
                    continue
                latest = self._tables.revisions[row.id][-1]
                found.append(
                    DraftSummary(
                        row.id,
                        row.incident_ref,
                        row.kind.value,
                        row.state.value,
                        row.created_at,
                        row.updated_at,
                        latest.number,
                        latest.subject,
                        latest.author,
                        *findings_counted(json.loads(latest.findings)),
                    )
                )
        return sorted(found, key=lambda s: (s.created_at, s.id))

    def revisions(self, draft_id: int) -> list[Revision]:
        """Every revision of a draft, oldest first."""
        with self._lock:
            rows = self._tables.revisions.get(draft_id)
        if not rows:
            raise no_draft(draft_id)
        return [r.model(draft_id) for r in rows]

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
        """Replace one revision's text in place and log ``draft.redacted``, atomically."""
        with self.transaction():
            old = self._draft_row(draft_id)
            rows = self._tables.revisions.get(draft_id, ())
            if not any(r.number == number for r in rows):
                raise no_revision(draft_id, number)
            text = json.dumps(variables, sort_keys=True)
            new = tuple(
                dataclasses.replace(r, subject=subject, body=body, variables=text)
                if r.number == number
                else r
                for r in rows
            )
            self._tables.revisions[draft_id] = new
            payload = {"draft_id": draft_id, "revision": number, **data}
            self._log(old.incident_ref, "draft.redacted", actor, now, payload)
            return next(r.model(draft_id) for r in new if r.number == number)

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
        """Move a draft to ``state`` and log ``event`` in one transaction.

        Marking an already sent draft sent again changes and logs nothing.
        """
        with self.transaction():
            old = self._draft_row(draft_id)
            if state is DraftState.SENT and old.state is DraftState.SENT:
                return self._draft(draft_id)
            self._tables.drafts[draft_id] = dataclasses.replace(
                old, state=DraftState(state), updated_at=utc(now)
            )
            payload = {"draft_id": draft_id, "from": old.state.value, "to": state.value, **data}
            self._log(old.incident_ref, event, actor, now, payload)
            incident = self._tables.incidents.get(old.incident_ref)
            if event == "update.sent" and incident is not None:
                # Kept for cadence: the last update and the next one it promised.
                promised = data.get("next_update_at")
                self._tables.incidents[old.incident_ref] = dataclasses.replace(
                    incident,
                    last_update_at=utc(now),
                    promised_update_at=None if promised is None else str(promised),
                )
            return self._draft(draft_id)

    # -- reviews ------------------------------------------------------------------------

    def add_review(self, review: Review, *, incident_ref: str, state: DraftState) -> Review:
        """Record a review decision, move the draft to ``state`` and log it, atomically."""
        with self.transaction():
            tables = self._tables
            stored = review.replace(id=len(tables.reviews) + 1)
            tables.reviews.append(stored)
            draft = tables.drafts.get(review.draft_id)
            if draft is not None:
                tables.drafts[review.draft_id] = dataclasses.replace(
                    draft, state=DraftState(state), updated_at=review.at
                )
            event, data = reviewed(review)
            self._log(incident_ref, event, review.reviewer, review.at, data)
        return stored

    def reviews(self, draft_id: int) -> list[Review]:
        """Every review of a draft, oldest first."""
        with self._lock:
            return [r for r in self._tables.reviews if r.draft_id == draft_id]

    # -- deliveries -----------------------------------------------------------------------

    def plan_deliveries(
        self,
        planned: Sequence[Delivery],
        *,
        actor: str,
        now: datetime,
        retry_failed: bool = False,
    ) -> list[Delivery]:
        """Store delivery intents before any request goes out; existing keys are kept.

        Returns the stored rows for every planned key, so a repeated send sees what an
        earlier run already did.  With ``retry_failed`` a failed one is pending again (its
        attempts and last error kept) and ``delivery.reopened`` is logged.
        """
        at = utc(now)
        with self.transaction():
            rows = self._tables.deliveries
            for d in planned:
                stored = rows.get(d.idempotency_key)
                if stored is not None and retry_failed and stored.state == "failed":
                    rows[d.idempotency_key] = dataclasses.replace(
                        stored, state="pending", updated_at=at
                    )
                    data = planned_data(d, attempts=stored.attempts, last_error=stored.error)
                    self._log(d.incident_ref, "delivery.reopened", actor, now, data)
                if stored is not None:
                    continue
                rows[d.idempotency_key] = _DeliveryRow(
                    d.idempotency_key,
                    d.incident_ref,
                    d.draft_id,
                    d.revision,
                    d.tenant,
                    d.channel,
                    d.text_sha256,
                    created_at=at,
                    updated_at=at,
                )
                self._log(d.incident_ref, "delivery.planned", actor, now, planned_data(d))
            return [rows[d.idempotency_key].model() for d in planned]

    def get_delivery(self, key: str) -> Delivery:
        """One delivery by its idempotency key."""
        with self._lock:
            return self._delivery_row(key).model()

    def deliveries(
        self,
        *,
        draft_id: int | None = None,
        states: Sequence[str] = (),
        incident_ref: str | None = None,
    ) -> list[Delivery]:
        """Deliveries filtered by draft, incident and state, in planning order."""
        with self._lock:
            rows = list(self._tables.deliveries.values())
        return [
            r.model()
            for r in rows
            if (draft_id is None or r.draft_id == draft_id)
            and (incident_ref is None or r.incident_ref == incident_ref)
            and (not states or r.state in states)
        ]

    def claim_delivery(
        self,
        key: str,
        *,
        owner: str,
        now: datetime,
        until: datetime,
        dead_owners: Sequence[str] = (),
    ) -> Delivery | None:
        """Take the lease on a pending delivery; None when another live sender holds it.

        A lease whose time ran out, or whose owner is known dead, can be taken over.
        """
        with self.transaction():
            row = self._delivery_row(key)
            if row.state in ("delivered", "failed"):
                return None
            if (
                row.state == "in-flight"
                and row.lease_owner != owner
                and row.lease_owner not in dead_owners
                and row.lease_until is not None
                and row.lease_until > now
            ):
                return None
            row = dataclasses.replace(
                row,
                state="in-flight",
                lease_owner=owner,
                lease_until=utc(until),
                attempts=row.attempts + 1,
                updated_at=utc(now),
            )
            self._tables.deliveries[key] = row
        return row.model()

    def in_flight_owners(self) -> list[str]:
        """Lease owners of deliveries currently marked in flight."""
        with self._lock:
            owners = [
                r.lease_owner
                for r in self._tables.deliveries.values()
                if r.state == "in-flight" and r.lease_owner is not None
            ]
        return list(dict.fromkeys(owners))

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

        A delivered row is never changed again, and an error from ``owner`` only counts
        while ``owner`` still holds the lease (``None`` for rows nobody claimed).  A receipt
        keeps the row's last error; an error's event carries the attempts made so far.
        """
        state = finished_state(receipt, final)
        with self.transaction():
            row = self._delivery_row(key)
            if row.state == "delivered" or (receipt is None and row.lease_owner != owner):
                return row.model()
            row = dataclasses.replace(
                row,
                state=state,
                lease_owner=None,
                lease_until=None,
                external_id=receipt.external_id if receipt else row.external_id,
                receipt=json.dumps(receipt.to_dict()) if receipt else row.receipt,
                error=error if error is not None else row.error,
                updated_at=utc(now),
            )
            self._tables.deliveries[key] = row
            event, data = finished(
                state,
                delivery_data(row.draft_id, row.revision, row.tenant, row.channel, key),
                receipt=receipt,
                error=error,
                attempts=row.attempts,
            )
            self._log(row.incident_ref, event, actor, now, data)
        return row.model()

    # -- users (team mode) ------------------------------------------------------------------

    def _log_user(self, at: datetime, actor: str, user: User, action: str) -> None:
        self._tables.user_log.append((utc(at), actor, user.name, action, user.role.value))

    def add_user(
        self, *, name: str, role: Role, token_hash: str, now: datetime, actor: str
    ) -> User:
        """Create a user with the hash of their token and log it (``UserStore.add_user``)."""
        user = User(name=name, role=role, created_at=now, created_by=actor, token_changed_at=now)
        with self.transaction():
            taken = self._tables.users.get(name)
            if taken is not None:
                raise user_taken(name, disabled=taken[0].disabled)
            if any(stored == token_hash for _, stored in self._tables.users.values()):
                raise StoreError("another user has this token's hash (users_token is unique)")
            self._tables.users[name] = (user, token_hash)
            self._log_user(now, actor, user, "user.added")
        return user

    def get_user(self, name: str) -> User:
        """Return a user (disabled ones too) or raise ``NotFoundError``."""
        with self._lock:
            found = self._tables.users.get(name)
        if found is None:
            raise no_user(name)
        return found[0]

    def user_for_token(self, token_hash: str) -> User | None:
        """The user whose current token hashes to ``token_hash``, or None."""
        with self._lock:
            rows = list(self._tables.users.values())
        return next((user for user, stored in rows if stored == token_hash), None)

    def list_users(self) -> list[User]:
        """Every user, disabled ones too, by name."""
        with self._lock:
            return [user for _, (user, _hash) in sorted(self._tables.users.items())]

    def _change_user(
        self, name: str, now: datetime, actor: str, action: str, **changes: Any
    ) -> User:
        with self.transaction():
            found = self._tables.users.get(name)
            if found is None:
                raise no_user(name)
            token_hash = changes.pop("token_hash", found[1])
            # Every change made here ends the user's sessions (``UserStore``).
            user = found[0].replace(session_epoch=found[0].session_epoch + 1, **changes)
            self._tables.users[name] = (user, token_hash)
            self._log_user(now, actor, user, action)
        return user

    def set_user_token(self, name: str, *, token_hash: str, now: datetime, actor: str) -> User:
        """Replace a user's token hash (the old token stops at once) and log it."""
        return self._change_user(
            name, now, actor, "user.token-rotated", token_hash=token_hash, token_changed_at=now
        )

    def set_user_disabled(self, name: str, *, disabled: bool, now: datetime, actor: str) -> User:
        """Disable (or enable again) a user and log it."""
        action = "user.disabled" if disabled else "user.enabled"
        return self._change_user(name, now, actor, action, disabled=disabled)

    def end_user_sessions(self, name: str, *, now: datetime, actor: str) -> User:
        """Move the user's session epoch on and log it (``UserStore.end_user_sessions``)."""
        return self._change_user(name, now, actor, "user.signed-out")

    def session_key(self) -> bytes:
        """The store's session secret, made once (``UserStore.session_key``)."""
        with self._lock:
            if not self._tables.session_key:
                self._tables.session_key.append(secrets.token_bytes(32))
            return self._tables.session_key[0]

    def user_log(self) -> list[tuple[datetime, str, str, str, str]]:
        """What was done to users: (at, actor, user name, action, role), oldest first."""
        with self._lock:
            return list(self._tables.user_log)

    # -- incident.io webhooks (comms.incidentio.webhooks.WebhookMemory) --------------------

    def webhook_seen(self, delivery_id: str) -> bool:
        """Whether delivery ``delivery_id`` was handled (and not yet forgotten)."""
        with self._lock:
            return delivery_id in self._tables.webhook_deliveries

    def claim_webhook(self, delivery_id: str, *, now: datetime) -> bool:
        """Store delivery ``delivery_id`` as handled unless it is: True for the one call that
        stored it (inside ``transaction()``, undone with it)."""
        with self.transaction():
            seen = self._tables.webhook_deliveries
            if delivery_id in seen:
                return False
            seen[delivery_id] = utc(now)
            return True

    def release_webhook(self, delivery_id: str) -> None:
        """Forget claimed delivery ``delivery_id`` (it was not handled after all)."""
        with self.transaction():
            self._tables.webhook_deliveries.pop(delivery_id, None)

    def webhook_newest(self, incident_id: str) -> datetime | None:
        """The newest ``updated_at`` handled for incident.io incident ``incident_id``."""
        with self._lock:
            return self._tables.webhook_states.get(incident_id)

    def record_webhook(
        self,
        delivery_id: str,
        *,
        now: datetime,
        incident_id: str | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """Remember a handled delivery (ids older than ``DELIVERY_IDS_KEPT`` go) and the
        state it carried; the newest state never moves back."""
        from comms.incidentio.webhooks import DELIVERY_IDS_KEPT

        with self.transaction():
            seen = self._tables.webhook_deliveries
            seen.setdefault(delivery_id, utc(now))
            horizon = utc(now) - DELIVERY_IDS_KEPT
            for old in [d for d, at in seen.items() if at < horizon]:
                del seen[old]
            if incident_id is not None and updated_at is not None:
                states = self._tables.webhook_states
                current = states.get(incident_id)
                if current is None or utc(updated_at) > current:
                    states[incident_id] = utc(updated_at)

    # -- Slack notes of sent revisions (comms.ports.NoteLedger) ----------------------------

    def claim_note(self, draft_id: int, revision: int, *, owner: str, now: datetime) -> bool:
        """Take the note of ``draft_id`` r``revision`` unless it is taken (``NoteLedger``)."""
        with self.transaction():
            notes = self._tables.slack_notes
            if (draft_id, revision) in notes:
                return False
            notes[draft_id, revision] = (owner, utc(now))
            return True

    def release_note(self, draft_id: int, revision: int, *, owner: str) -> None:
        """Give back ``owner``'s claim on the note (``NoteLedger.release_note``)."""
        with self.transaction():
            notes = self._tables.slack_notes
            if notes.get((draft_id, revision), ("",))[0] == owner:
                del notes[draft_id, revision]

    # -- alert state (comms.ports.AlertState) -------------------------------------------

    def load(self) -> dict[Key, AlertRecord]:
        """The stored alert state, keyed by ``(ref, clock)``."""
        with self._lock:
            states = list(self._tables.alerts.values())
        states.sort(key=lambda s: (s.opened_at, s.ref, s.clock))
        return {s.key: s for s in states}

    def save(
        self,
        states: Mapping[Key, AlertRecord],
        *,
        sent: Sequence[tuple[Action, list[str]]] = (),
        partial: Sequence[tuple[str, str, datetime]] = (),
        finished: Sequence[str] = (),
    ) -> None:
        """Replace the stored state with ``states`` and log ``sent`` actions, atomically.

        ``partial`` records (token, sink, at) for sinks that took an action others refused;
        ``finished`` tokens are forgotten (after ``partial`` is applied, as SqliteAlerts).
        """
        with self.transaction():
            tables = self._tables
            for token, sink, at in partial:
                tables.partial.setdefault((token, sink), utc(at))
            done = set(finished)
            tables.partial = {k: v for k, v in tables.partial.items() if k[0] not in done}
            tables.alerts = {
                s.key: s._replace(
                    due_at=utc(s.due_at),
                    opened_at=utc(s.opened_at),
                    last_at=utc(s.last_at),
                    sends=int(s.sends),
                    restricted=bool(s.restricted),
                )
                for s in states.values()
            }
            tables.alert_log.extend(
                (
                    utc(a.at),
                    a.ref,
                    a.clock,
                    a.kind,
                    utc(a.due_at),
                    a.dedup_key,
                    tuple(names),
                )
                for a, names in sent
            )

    def log(
        self, ref: str | None = None
    ) -> list[tuple[datetime, str, str, str, datetime, str, list[str]]]:
        """Actions sent, oldest first: (at, ref, clock, action, due_at, dedup_key, sinks)."""
        with self._lock:
            rows = list(self._tables.alert_log)
        return [
            (at, r, clock, action, due, key, list(sinks))
            for at, r, clock, action, due, key, sinks in rows
            if ref is None or r == ref
        ]

    def partial(self) -> set[tuple[str, str]]:
        """(token, sink) pairs already delivered for actions still being retried."""
        with self._lock:
            return set(self._tables.partial)

    def snooze(self, ref: str, until: datetime, *, actor: str, now: datetime) -> None:
        """Mute alerts for ``ref`` until ``until`` (replaces an earlier snooze)."""
        with self.transaction():
            self._tables.snoozes[ref] = (utc(until), actor, utc(now))

    def unsnooze(self, ref: str) -> bool:
        """Remove a snooze; True if there was one."""
        with self.transaction():
            return self._tables.snoozes.pop(ref, None) is not None

    def snoozes(self, now: datetime) -> dict[str, datetime]:
        """Snoozes still running at ``now``: ref → until."""
        with self._lock:
            items = list(self._tables.snoozes.items())
        return {ref: until for ref, (until, _, _) in items if until > now}


if TYPE_CHECKING:
    # mypy proves here that MemoryStore provides the ports (and the webhook memory) in full.
    def _is_store(store: MemoryStore) -> Store:
        return store

    def _is_alert_state(store: MemoryStore) -> AlertState:
        return store

    def _is_webhook_memory(store: MemoryStore) -> WebhookMemory:
        return store


__all__ = ["MemoryStore", "discard", "open_alert_state", "open_store"]
