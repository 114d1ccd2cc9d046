"""Ports: the small Protocols the core talks to; adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from comms.models import (
    Draft,
    DraftState,
    Event,
    Incident,
    MessageKind,
    Receipt,
    Revision,
    Severity,
    Tenant,
)


class Store(Protocol):
    """Durable record of tenants, incidents, drafts and the event log.

    Every change is one transaction that also appends its event, so the log and the
    state never disagree.  Implementations: ``SqliteStore`` (default), others later.
    """

    def put_tenant(self, tenant: Tenant) -> None:
        """Insert or replace a tenant."""

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Return a tenant or raise ``NotFoundError``."""

    def list_tenants(self) -> list[Tenant]:
        """All tenants, by id."""

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
    ) -> Incident:
        """Open an incident; ``ref`` defaults to the next ``INC-n``."""

    def get_incident(self, ref: str) -> Incident:
        """Return an incident or raise ``NotFoundError``."""

    def list_incidents(self, *, open_only: bool = False) -> list[Incident]:
        """Incidents, newest first."""

    def update_incident(
        self, incident: Incident, *, event: str, actor: str, data: dict[str, Any]
    ) -> Incident:
        """Replace an incident's fields and log ``event`` in one transaction."""

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
        """Store a new revision (a new draft when ``draft_id`` is None); resets review."""

    def get_draft(self, draft_id: int) -> Draft:
        """Return a draft with its latest revision or raise ``NotFoundError``."""

    def list_drafts(
        self, *, incident_ref: str | None = None, state: DraftState | None = None
    ) -> list[Draft]:
        """Drafts, oldest first."""

    def revisions(self, draft_id: int) -> list[Revision]:
        """Every revision of a draft, oldest first."""

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

    def append_event(
        self, incident_ref: str, *, type: str, actor: str, now: datetime, data: dict[str, Any]
    ) -> Event:
        """Append one event to the incident's log."""

    def events(self, incident_ref: str) -> list[Event]:
        """The incident's event log in order."""


class Publisher(Protocol):
    """A delivery channel: Switchboard, Zendesk, or a fake in tests."""

    name: str

    def publish(
        self,
        *,
        tenant: Tenant,
        incident: Incident,
        subject: str,
        body: str,
        idempotency_key: str,
        draft_id: int,
        revision: int,
        **channel_args: Any,
    ) -> Receipt:
        """Deliver one message to one tenant exactly once per ``idempotency_key``.

        ``channel_args`` carries what one channel needs beyond the common fields: the
        Switchboard template ``kind``, or the Zendesk ``ticket_id`` of earlier updates.
        """
