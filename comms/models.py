"""Domain models: incidents, tenants, drafts and their revisions, events, receipts.

The models are frozen standard-library dataclasses, and pydantic validates them wherever
data arrives from outside (``validate(Tenant, data)``: tenant files, API payloads, JSON
columns written by other versions).  Measured on the 2-core target machine, importing
pydantic and building nine BaseModel classes costs 110–160 ms per process, most of the
250 ms budget of ``comms draft``; a dataclass costs nothing to define, and pydantic's
``TypeAdapter`` still gives full validation at the boundaries, where it matters.

Every datetime is timezone-aware UTC; constructors reject naive times instead of guessing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from comms.errors import UsageError
from comms.limits import MAX_VALUE_BYTES, check_size
from comms.times import isoformat, utc

T = TypeVar("T")

# An e-mail address as comms accepts it: one "@", a local part without spaces, quotes,
# brackets, commas or semicolons, and a domain of at least two dot-separated labels;
# 254 characters at most (RFC 5321's limit).  Deliberately simple: it refuses what is
# plainly not an address (a name, "ops@acme", two addresses in one), not every oddity
# RFC 5322 allows.
EMAIL = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[\w-]+(?:\.[\w-]+)+")
EMAIL_MAX = 254


class InvalidRecordError(UsageError, ValueError):
    """A record with a value comms does not accept (exit 2).  A ``ValueError`` too, so that
    pydantic reports it as a validation error and a store can skip a row it cannot read."""


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:77] + "...")


def check_email(value: str, what: str = "e-mail address") -> str:
    """Return ``value`` if it is an e-mail address by :data:`EMAIL`, else raise."""
    check_size(what, value)
    if len(value) > EMAIL_MAX or not EMAIL.fullmatch(value):
        raise InvalidRecordError(
            f"{what} {_shown(value)} is not an e-mail address; write it like ops@acme.example"
        )
    return value


def check_url(value: str, what: str = "url") -> str:
    """Return ``value`` if it is empty (unknown) or an http(s) URL with a host, else raise."""
    check_size(what, value)
    if not value:
        return value
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        good = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and not re.search(r"[\s\x00-\x1f\x7f]", value)
        )
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        good = False
    if not good:
        raise InvalidRecordError(
            f"{what} {_shown(value)} must be an http:// or https:// URL with a host, "
            "like https://acme.gitlab-dedicated.com"
        )
    return value


class Severity(StrEnum):
    """Incident severity, S1 (most severe) to S4."""

    S1 = "S1"
    S2 = "S2"
    S3 = "S3"
    S4 = "S4"


class Status(StrEnum):
    """Incident status, in the order the process moves through them."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MITIGATING = "mitigating"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def rank(self) -> int:
        """Position in the process: a lower rank is earlier."""
        return list(Status).index(self)


class MessageKind(StrEnum):
    """The seven customer messages; the value is the template name."""

    INVESTIGATION_START = "investigation-start"
    UPDATE = "update"
    ESCALATED_RESPONSE = "escalated-response"
    MITIGATION_IN_PROGRESS = "mitigation-in-progress"
    RESOLVED = "resolved"
    MAINTENANCE_PLANNED = "maintenance-planned"
    MAINTENANCE_COMPLETED = "maintenance-completed"

    @classmethod
    def parse(cls, text: str) -> MessageKind:
        """Accept ``update``, ``investigation_start`` or ``Investigation start``."""
        return cls(text.strip().lower().replace("_", "-").replace(" ", "-"))


class DraftState(StrEnum):
    """Where a draft stands: draft → in-review → approved | changes-requested → sent."""

    DRAFT = "draft"
    IN_REVIEW = "in-review"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes-requested"
    SENT = "sent"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


class _Record:
    """Shared behaviour: JSON-ready dicts and copies with changes."""

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (times as ISO 8601 UTC strings)."""
        data: dict[str, Any] = _jsonable(self)
        return data

    def replace(self: T, **changes: Any) -> T:
        """A copy with ``changes`` applied (and validated by ``__post_init__``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _aware(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None:
            object.__setattr__(obj, name, utc(value))


@dataclass(frozen=True, slots=True)
class Contact(_Record):
    """Someone who receives customer updates for a tenant."""

    email: str
    name: str = ""
    role: str = "operational"  # operational | csm | ase

    def __post_init__(self) -> None:
        check_size("contact name", self.name)
        check_size("contact role", self.role)
        check_email(self.email, f"{self.role} contact's e-mail address")


@dataclass(frozen=True, slots=True)
class Tenant(_Record):
    """A single-tenant GitLab Dedicated customer instance."""

    id: str
    name: str
    url: str = ""
    pubsec: bool = False
    geo: bool = False
    contacts: list[Contact] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_size("tenant id", self.id, 200)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.id):
            raise InvalidRecordError(
                f"tenant id {_shown(self.id)} must be letters, digits, '.', '_' or '-'"
            )
        check_size("tenant name", self.name, MAX_VALUE_BYTES)
        if not self.name.strip():
            raise InvalidRecordError("tenant name must not be empty")
        for alias in self.aliases:
            check_size("tenant alias", alias)
        try:
            check_url(self.url, "tenant url")
            contacts = [c if isinstance(c, Contact) else Contact(**c) for c in self.contacts]
        except InvalidRecordError as exc:  # name the tenant: an import or a store has many
            raise InvalidRecordError(f"tenant '{self.id}': {exc}") from None
        object.__setattr__(self, "contacts", contacts)


@dataclass(frozen=True, slots=True)
class Incident(_Record):
    """One incident record; ``tenants`` lists the affected tenants, primary first."""

    ref: str
    title: str
    severity: Severity
    tenants: list[str]
    started_at: datetime
    created_at: datetime
    updated_at: datetime
    status: Status = Status.INVESTIGATING
    security: bool = False
    pubsec: bool = False
    mitigated_at: datetime | None = None
    mitigated_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "status", Status(self.status))
        # No tenants is allowed: an incident imported from incident.io before its tenant
        # field was set has none yet; sending refuses it until some are added
        # (review.audience).
        _aware(self, "started_at", "created_at", "updated_at", "mitigated_at", "resolved_at")

    @property
    def is_open(self) -> bool:
        """True until the incident is resolved."""
        return self.status is not Status.RESOLVED


@dataclass(frozen=True, slots=True)
class Revision(_Record):
    """One immutable version of a draft's text."""

    draft_id: int
    number: int
    subject: str
    body: str
    author: str
    created_at: datetime
    variables: dict[str, str] = field(default_factory=dict)
    edited: bool = False
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The message exactly as the customer gets it, reviewers read it and the linter
        checks it: the subject line, a blank line, the body."""
        return f"Subject: {self.subject}\n\n{self.body}"

    def __post_init__(self) -> None:
        _aware(self, "created_at")


@dataclass(frozen=True, slots=True)
class Draft(_Record):
    """A customer message in the making; ``revision`` is its latest text."""

    id: int
    incident_ref: str
    kind: MessageKind
    created_at: datetime
    updated_at: datetime
    revision: Revision
    state: DraftState = DraftState.DRAFT

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", MessageKind(self.kind))
        object.__setattr__(self, "state", DraftState(self.state))
        _aware(self, "created_at", "updated_at")


@dataclass(frozen=True, slots=True)
class Event(_Record):
    """An append-only record of something said or decided during an incident."""

    id: int
    incident_ref: str
    at: datetime
    actor: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _aware(self, "at")


@dataclass(frozen=True, slots=True)
class Receipt(_Record):
    """What a channel confirmed about one delivery; never a vendor object."""

    channel: str
    tenant: str
    draft_id: int
    revision: int
    idempotency_key: str
    external_id: str
    delivered_at: datetime
    text_sha256: str
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _aware(self, "delivered_at")


@dataclass(frozen=True, slots=True)
class Review(_Record):
    """A reviewer's decision on one revision; an approval is bound to ``approval_hash``."""

    draft_id: int
    revision: int
    reviewer: str
    role: str  # "imoc" (incident manager) or "sirt" (security)
    decision: str  # "approved" | "changes-requested"
    approval_hash: str
    at: datetime
    note: str = ""
    id: int = 0

    def __post_init__(self) -> None:
        _aware(self, "at")


class Role(StrEnum):
    """What an authenticated user may do (team mode): the GDCMOC drafts and sends, the
    IMOC approves, SIRT gives the security approval, an admin manages users (and may
    approve as the incident manager)."""

    GDCMOC = "gdcmoc"
    IMOC = "imoc"
    SIRT = "sirt"
    ADMIN = "admin"


# A user name: what the timeline shows as the actor.  Letters, digits, and . _ @ - and
# spaces inside; 1-64 characters.
USER_NAME = re.compile(r"[\w.@-](?:[\w .@-]{0,62}[\w.@-])?")


@dataclass(frozen=True, slots=True)
class User(_Record):
    """A person who signs in with an API token (team mode).  Only the token's hash is
    stored; ``disabled`` users are refused everywhere.  ``session_epoch`` moves on (by
    one) whenever the user's review-server sessions must all end: signing out, being
    disabled or enabled, a new token."""

    name: str
    role: Role
    created_at: datetime
    created_by: str = ""
    disabled: bool = False
    token_changed_at: datetime | None = None
    session_epoch: int = 0

    def __post_init__(self) -> None:
        _aware(self, "created_at", "token_changed_at")
        if not USER_NAME.fullmatch(self.name):
            raise InvalidRecordError(
                f"user name {_shown(self.name)} is not allowed; use 1-64 letters, digits, "
                "spaces, '.', '_', '@' or '-' (like 'sam.imoc')"
            )
        if not isinstance(self.role, Role):
            try:
                object.__setattr__(self, "role", Role(self.role))
            except ValueError:
                raise InvalidRecordError(
                    f"unknown role {_shown(str(self.role))} "
                    f"(known: {', '.join(r.value for r in Role)})"
                ) from None


@dataclass(frozen=True, slots=True)
class Delivery(_Record):
    """One message to one tenant over one channel; the key is stored before any request."""

    idempotency_key: str
    incident_ref: str
    draft_id: int
    revision: int
    tenant: str
    channel: str
    text_sha256: str
    state: str = "pending"  # pending | in-flight | delivered | failed
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    external_id: str | None = None
    receipt: Receipt | None = None
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        _aware(self, "lease_until", "created_at", "updated_at")


def validate(model: type[T], data: Any) -> T:
    """Validate outside data into ``model`` with pydantic; raises ``pydantic.ValidationError``.

    Imported lazily: only commands that read outside data pay for pydantic.
    """
    from pydantic import TypeAdapter

    adapter: TypeAdapter[T] = TypeAdapter(model)
    return adapter.validate_python(data)


def validate_json(model: type[T], text: str | bytes) -> T:
    """Like :func:`validate` for a JSON document."""
    from pydantic import TypeAdapter

    adapter: TypeAdapter[T] = TypeAdapter(model)
    return adapter.validate_json(text)
