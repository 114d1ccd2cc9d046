"""What the stores share: ``SqliteStore``, ``PostgresStore`` and ``MemoryStore``.

The contract suite (``tests/contract``) holds every backend to one behaviour; what it
compares word for word is written once here, so that the backends cannot drift apart:

- the refusals every store raises (``no_draft``, ``already_sent`` …), as
  ``comms.identity`` keeps ``no_user`` and ``user_taken``;
- the data of the events every store logs with a change (the timeline, the cadence
  clocks and the RCA read them back);
- for the two SQL stores, the column lists their queries share and ``Rows``, which reads
  such a row as a model: SQLite keeps times and JSON as text, PostgreSQL returns them
  typed, and that is the only difference.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from comms.errors import NotFoundError, StoreError, TransitionError, UsageError
from comms.lint.secrets import shown
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
from comms.ports import Page
from comms.records import ClockRow, DraftSummary
from comms.times import from_iso, isoformat

T = TypeVar("T")
SentUpdate = tuple[datetime, list[str] | None, datetime | None]

# A 64-bit integer's range (SQLite's INTEGER, PostgreSQL's bigint): a draft id outside it
# cannot have been stored, so it is not found.
ID_RANGE = range(-(2**63), 2**63)
# The open draft of an incident and kind: the condition of the drafts_one_open index.
OPEN_DRAFT = "state <> 'sent' AND superseded_by IS NULL"
# What reading a row written by hand or by an older version can raise: a time or JSON that
# does not parse, an unknown enum value, a field a model refuses.
UNREADABLE = (ValueError, TypeError, KeyError)

INCIDENT_COLUMNS = (
    "ref, title, severity, status, tenants, security, pubsec, started_at, created_at, "
    "updated_at, mitigated_at, mitigated_by, resolved_at, resolved_by"
)
CLOCK_COLUMNS = (
    "ref, title, severity, status, tenants, pubsec, security, started_at, created_at, "
    "engaged_at, status_changed_at, mitigated_at, resolved_at, last_update_at, "
    "promised_update_at, rca_internal_at, rca_external_at"
)
DELIVERY_COLUMNS = (
    "idempotency_key, incident_ref, draft_id, revision, tenant, channel, text_sha256, state, "
    "attempts, lease_owner, lease_until, external_id, receipt, error, created_at, updated_at"
)
REVISION_COLUMNS = "number, subject, body, variables, author, created_at, edited, findings"
# A draft (d) joined with its latest revision (r).
DRAFT_COLUMNS = (
    "d.id, d.incident_ref, d.kind, d.state, d.created_at, d.updated_at, r.number, r.subject, "
    "r.body, r.variables, r.author, r.created_at, r.edited, r.findings"
)
# A draft (d) with its latest revision (r) as a listing shows it: no text (DraftSummary).
SUMMARY_COLUMNS = (
    "d.id, d.incident_ref, d.kind, d.state, d.created_at, d.updated_at, r.number, r.subject, "
    "r.author"
)
EVENT_COLUMNS = "id, incident_ref, at, actor, type, data"
REVIEW_COLUMNS = "id, draft_id, revision, reviewer, role, decision, note, approval_hash, at"
USER_COLUMNS = "name, role, created_at, created_by, disabled, token_changed_at, session_epoch"
STORE_ID = "SELECT value FROM meta WHERE key = 'store_id'"
SESSION_KEY = "SELECT secret FROM session_secret WHERE id = 1"


# -- refusals --------------------------------------------------------------------------------


def no_tenant(tenant_id: str) -> NotFoundError:
    return NotFoundError(
        f"no tenant '{shown(tenant_id)}'; add it with: comms tenants add {shown(tenant_id)} --name …"
    )


def no_incident(ref: str) -> NotFoundError:
    return NotFoundError(f"no incident '{shown(ref)}'; see the open ones with: comms incident list")


def incident_taken(ref: str) -> UsageError:
    return UsageError(f"incident '{ref}' already exists; pick another --ref or omit it")


def no_draft(draft_id: int) -> NotFoundError:
    return NotFoundError(f"no draft {draft_id}; see them with: comms drafts list")


def already_sent(draft_id: int) -> TransitionError:
    # Checked inside the write: a send finishing meanwhile must not be reopened by an edit.
    return TransitionError(f"draft {draft_id} was already sent; draft the next message instead")


def no_revision(draft_id: int, number: int) -> NotFoundError:
    return NotFoundError(f"draft {draft_id} has no revision {number}")


def no_delivery(key: str) -> NotFoundError:
    return NotFoundError(f"no delivery with key {key}")


def unreadable(what: str, exc: Exception) -> StoreError:
    return StoreError(
        f"{what} is stored in a form that cannot be read ({exc}); correct or remove "
        "that row, or use the comms version that wrote it"
    )


# -- event data ------------------------------------------------------------------------------


def opened(
    *,
    title: str,
    severity: Severity,
    tenants: Sequence[str],
    started_at: datetime,
    security: bool,
    pubsec: bool,
) -> dict[str, Any]:
    """The data of ``incident.opened``."""
    return {
        "title": title,
        "severity": Severity(severity).value,
        "status": "investigating",
        "tenants": list(tenants),
        "started_at": isoformat(started_at),
        "security": security,
        "pubsec": pubsec,
    }


def revised(
    draft_id: int, number: int, kind: MessageKind, edited: bool, previous_state: str | None
) -> dict[str, Any]:
    """The data of ``draft.revised``; ``previous_state`` is the draft's state before the
    revision (None for a new draft), named when the revision voided a review."""
    data: dict[str, Any] = {
        "draft_id": draft_id,
        "revision": number,
        "kind": MessageKind(kind).value,
        "edited": edited,
    }
    if previous_state not in (None, "draft"):
        data["from_state"] = previous_state
    return data


def reviewed(review: Review) -> tuple[str, dict[str, Any]]:
    """The type and data of the event a review decision logs."""
    return f"review.{review.decision}", {
        "draft_id": review.draft_id,
        "revision": review.revision,
        "role": review.role,
        "note": review.note,
        "approval_hash": review.approval_hash,
    }


def delivery_data(
    draft_id: int, revision: int, tenant: str, channel: str, key: str, **more: Any
) -> dict[str, Any]:
    """What every ``delivery.*`` event says about its delivery, and ``more``."""
    return {
        "draft_id": draft_id,
        "revision": revision,
        "tenant": tenant,
        "channel": channel,
        "idempotency_key": key,
        **more,
    }


def planned_data(d: Delivery, **more: Any) -> dict[str, Any]:
    """The data of ``delivery.planned`` (and, with the attempts and the last error,
    ``delivery.reopened``)."""
    return delivery_data(d.draft_id, d.revision, d.tenant, d.channel, d.idempotency_key, **more)


def finished_state(receipt: Receipt | None, final: bool) -> str:
    """The state ``finish_delivery`` records: delivered, failed, or pending again."""
    return "delivered" if receipt is not None else ("failed" if final else "pending")


def finished(
    state: str,
    data: dict[str, Any],
    *,
    receipt: Receipt | None,
    error: str | None,
    attempts: int,
) -> tuple[str, dict[str, Any]]:
    """The type and data of the event ``finish_delivery`` logs; ``data`` is the
    delivery's (``delivery_data``): a receipt's id and text hash, or the error and the
    attempts made so far."""
    if receipt is not None:
        data.update(external_id=receipt.external_id, text_sha256=receipt.text_sha256)
    else:
        data.update(error=error, attempts=attempts)
    return f"delivery.{'retry' if state == 'pending' else state}", data


def names_of(
    rows: Iterable[Sequence[Any]], read: Callable[[str], Tenant]
) -> dict[str, tuple[str, ...]]:
    """``TenantStore.tenant_names`` from rows of (id, name, aliases) as stored (None where
    the tenant has none).  A name that is not text or aliases that are not a list of texts
    are read through ``read``: the whole tenant, checked, so the error is ``get_tenant``'s."""
    found: dict[str, tuple[str, ...]] = {}
    for tenant_id, name, aliases in rows:
        if aliases is None and isinstance(name, str):
            found[tenant_id] = (name,)
        elif (
            isinstance(name, str)
            and isinstance(aliases, list)
            and all(isinstance(a, str) for a in aliases)
        ):
            found[tenant_id] = (name, *aliases)
        else:
            tenant = read(tenant_id)
            found[tenant_id] = (tenant.name, *tenant.aliases)
    return found


def sent_update(at: datetime, data: Any) -> SentUpdate:
    """An ``update.sent`` event as ``comms.cadence.tenant_lag`` takes it: when, to which
    tenants (None: all of them), and the next update it promised."""
    from comms.cadence import parse_promise

    fields = data if isinstance(data, dict) else {}
    reached = fields.get("tenants")
    return (
        at,
        [str(t) for t in reached] if isinstance(reached, list) else None,
        parse_promise(fields.get("next_update_at"), at),
    )


def findings_counted(findings: Any) -> tuple[int, int]:
    """How many findings a revision stores, and how many of them are at error level; (0, 0)
    for a stored value that is not a list."""
    if not isinstance(findings, list):
        return 0, 0
    errors = sum(1 for f in findings if isinstance(f, dict) and f.get("level") == "error")
    return len(findings), errors


# -- rows of the SQL stores -----------------------------------------------------------------------


def _as_is(value: Any) -> Any:
    return value


_KINDS = frozenset(k.value for k in MessageKind)
_STATES = frozenset(s.value for s in DraftState)


class Rows:
    """Reads the SQL stores' rows (the column lists above) as models.

    ``time`` reads a stored time, ``data`` a stored JSON value: SQLite keeps both as text
    (``Rows(from_iso, json.loads)``), PostgreSQL returns them typed (``Rows()``).
    """

    def __init__(
        self, time: Callable[[Any], datetime] = _as_is, data: Callable[[Any], Any] = _as_is
    ) -> None:
        self.time = time
        self.data = data

    def maybe_time(self, value: Any) -> datetime | None:
        return None if value is None else self.time(value)

    def incident(self, r: Sequence[Any]) -> Incident:
        """A row of ``INCIDENT_COLUMNS``."""
        return Incident(
            ref=r[0],
            title=r[1],
            severity=Severity(r[2]),
            status=r[3],
            tenants=list(self.data(r[4])),
            security=bool(r[5]),
            pubsec=bool(r[6]),
            started_at=self.time(r[7]),
            created_at=self.time(r[8]),
            updated_at=self.time(r[9]),
            mitigated_at=self.maybe_time(r[10]),
            mitigated_by=r[11],
            resolved_at=self.maybe_time(r[12]),
            resolved_by=r[13],
        )

    def draft(self, r: Sequence[Any]) -> Draft:
        """A row of ``DRAFT_COLUMNS``."""
        return Draft(
            id=r[0],
            incident_ref=r[1],
            kind=MessageKind(r[2]),
            state=DraftState(r[3]),
            created_at=self.time(r[4]),
            updated_at=self.time(r[5]),
            revision=self.revision(r[0], r[6:]),
        )

    def summary(self, r: Sequence[Any], counted: tuple[int, int]) -> DraftSummary:
        """A row of ``SUMMARY_COLUMNS``, with its revision's findings ``counted`` (all,
        errors)."""
        kind, state = r[2], r[3]
        return DraftSummary(
            int(r[0]),
            r[1],
            # A set lookup for the values as stored; the enum itself for the rest (it
            # refuses an unknown one, or reads an alias).
            kind if kind in _KINDS else MessageKind(kind).value,
            state if state in _STATES else DraftState(state).value,
            self.time(r[4]),
            self.time(r[5]),
            int(r[6]),
            r[7],
            r[8],
            *counted,
        )

    def revision(self, draft_id: int, r: Sequence[Any]) -> Revision:
        """A row of ``REVISION_COLUMNS``."""
        return Revision(
            draft_id=draft_id,
            number=r[0],
            subject=r[1],
            body=r[2],
            variables=dict(self.data(r[3])),
            author=r[4],
            created_at=self.time(r[5]),
            edited=bool(r[6]),
            findings=list(self.data(r[7])),
        )

    def event(self, r: Sequence[Any]) -> Event:
        """A row of ``EVENT_COLUMNS``."""
        return Event(
            id=r[0],
            incident_ref=r[1],
            at=self.time(r[2]),
            actor=r[3],
            type=r[4],
            data=self.data(r[5]),
        )

    def review(self, r: Sequence[Any]) -> Review:
        """A row of ``REVIEW_COLUMNS``."""
        return Review(
            id=r[0],
            draft_id=r[1],
            revision=r[2],
            reviewer=r[3],
            role=r[4],
            decision=r[5],
            note=r[6],
            approval_hash=r[7],
            at=self.time(r[8]),
        )

    def delivery(self, r: Sequence[Any]) -> Delivery:
        """A row of ``DELIVERY_COLUMNS``."""
        receipt = None
        if r[12]:
            raw = self.data(r[12])
            # Inside the receipt's JSON a time is text on every backend.
            receipt = Receipt(**{**raw, "delivered_at": from_iso(raw["delivered_at"])})
        return Delivery(
            idempotency_key=r[0],
            incident_ref=r[1],
            draft_id=r[2],
            revision=r[3],
            tenant=r[4],
            channel=r[5],
            text_sha256=r[6],
            state=r[7],
            attempts=r[8],
            lease_owner=r[9],
            lease_until=self.maybe_time(r[10]),
            external_id=r[11],
            receipt=receipt,
            error=r[13],
            created_at=self.time(r[14]),
            updated_at=self.time(r[15]),
        )

    def clock(
        self,
        r: Sequence[Any],
        *,
        pubsec: Collection[str] = (),
        flagged: bool = False,
        escalated: Mapping[str, datetime],
        updates: Mapping[str, Sequence[SentUpdate]],
    ) -> ClockRow:
        """A row of ``CLOCK_COLUMNS`` with what other tables add: pubsec when one of its
        tenants is in ``pubsec`` (flagged now) or the query found one ``flagged``, the
        Director's escalation, and the tenants the latest update missed, from the
        incident's ``update.sent`` events."""
        from comms.cadence import parse_promise, tenant_lag

        ref = r[0]
        tenants = tuple(map(str, self.data(r[4])))
        if self.time is _as_is:  # PostgreSQL: times come back as times (or None) already
            started, created, engaged, changed, mitigated, resolved, last = r[7:14]
            rca_internal, rca_external = r[15], r[16]
        else:
            time, maybe = self.time, self.maybe_time
            started, created, engaged, changed = time(r[7]), time(r[8]), maybe(r[9]), time(r[10])
            mitigated, resolved, last = maybe(r[11]), maybe(r[12]), maybe(r[13])
            rca_internal, rca_external = maybe(r[15]), maybe(r[16])
        # The promise is what the sender typed: read it as the alert state does.
        promise = parse_promise(r[14], last)
        return ClockRow(
            ref,
            r[1],
            r[2],
            r[3],
            tenants,
            bool(r[5]) or flagged or (bool(pubsec) and any(t in pubsec for t in tenants)),
            bool(r[6]),
            started,
            created,
            engaged,
            changed,
            mitigated,
            resolved,
            last,
            promise,
            rca_internal,
            rca_external,
            escalated.get(ref),
            tenant_lag(tenants, last, promise, updates[ref]) if ref in updates else (),
        )

    def user(self, r: Sequence[Any]) -> User:
        """A row of ``USER_COLUMNS``."""
        return User(
            name=r[0],
            role=Role(r[1]),
            created_at=self.time(r[2]),
            created_by=r[3],
            disabled=bool(r[4]),
            token_changed_at=self.maybe_time(r[5]),
            session_epoch=int(r[6]),
        )


def page(
    rows: list[Any],
    limit: int | None,
    read: Callable[[Any], T],
    name: Callable[[Any], str],
) -> Page[T]:
    """One page from ``rows`` (read with one row beyond ``limit``, which only says there is
    more); rows ``read`` cannot read are left out and named in ``skipped``."""
    more = limit is not None and len(rows) > limit
    items: list[T] = []
    skipped: list[str] = []
    for row in rows[:limit] if more else rows:
        try:
            items.append(read(row))
        except UNREADABLE:
            skipped.append(name(row))
    return Page(items, more=more, skipped=skipped)
