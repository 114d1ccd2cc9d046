"""Domain models: incidents, tenants, drafts and their revisions, events, receipts.

Every datetime is timezone-aware UTC; validators reject naive times instead of guessing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from comms.times import utc

UtcDatetime = Annotated[datetime, AfterValidator(utc)]


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
        key = text.strip().lower().replace("_", "-").replace(" ", "-")
        return cls(key)


class DraftState(StrEnum):
    """Where a draft stands: draft → in-review → approved | changes-requested → sent."""

    DRAFT = "draft"
    IN_REVIEW = "in-review"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes-requested"
    SENT = "sent"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Model):
    """Someone who receives customer updates for a tenant."""

    email: str
    name: str = ""
    role: str = "operational"  # operational | csm | ase


class Tenant(_Model):
    """A single-tenant GitLab Dedicated customer instance."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = Field(min_length=1)
    url: str = ""
    pubsec: bool = False
    geo: bool = False
    contacts: list[Contact] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)


class Incident(_Model):
    """One incident record; ``tenants`` lists the affected tenants, primary first."""

    ref: str
    title: str
    severity: Severity
    status: Status = Status.INVESTIGATING
    tenants: list[str] = Field(min_length=1)
    security: bool = False
    pubsec: bool = False
    started_at: UtcDatetime
    created_at: UtcDatetime
    updated_at: UtcDatetime
    mitigated_at: UtcDatetime | None = None
    mitigated_by: str | None = None
    resolved_at: UtcDatetime | None = None
    resolved_by: str | None = None

    @property
    def is_open(self) -> bool:
        """True until the incident is resolved."""
        return self.status is not Status.RESOLVED


class Revision(_Model):
    """One immutable version of a draft's text."""

    draft_id: int
    number: int
    subject: str
    body: str
    variables: dict[str, str] = Field(default_factory=dict)
    author: str
    created_at: UtcDatetime
    edited: bool = False
    findings: list[dict[str, Any]] = Field(default_factory=list)


class Draft(_Model):
    """A customer message in the making; ``revision`` is its latest text."""

    id: int
    incident_ref: str
    kind: MessageKind
    state: DraftState = DraftState.DRAFT
    created_at: UtcDatetime
    updated_at: UtcDatetime
    revision: Revision


class Event(_Model):
    """An append-only record of something said or decided during an incident."""

    id: int
    incident_ref: str
    at: UtcDatetime
    actor: str
    type: str
    data: dict[str, Any] = Field(default_factory=dict)


class Receipt(_Model):
    """What a channel confirmed about one delivery; never a vendor object."""

    channel: str
    tenant: str
    draft_id: int
    revision: int
    idempotency_key: str
    external_id: str
    delivered_at: UtcDatetime
    text_sha256: str
    detail: dict[str, Any] = Field(default_factory=dict)

