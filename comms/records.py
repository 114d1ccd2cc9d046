"""Plain records read in bulk, free of pydantic so hot paths stay fast to import and run."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class DraftSummary(NamedTuple):
    """A draft and its latest revision as a listing shows them (the review queue): no
    text, and the findings stored with the revision counted, all and those at error
    level.  ``kind`` and ``state`` are the values of ``MessageKind`` and ``DraftState``."""

    id: int
    incident_ref: str
    kind: str
    state: str
    created_at: datetime
    updated_at: datetime
    revision: int
    subject: str
    author: str
    findings: int
    errors: int


class ClockRow(NamedTuple):
    """One incident's clocks, read in bulk for cadence checks without pydantic validation.

    Kept as a plain NamedTuple: ``comms cadence check`` evaluates tens of thousands of
    these per run, and model validation would dominate its time budget.
    """

    ref: str
    title: str
    severity: str
    status: str
    tenants: tuple[str, ...]
    pubsec: bool
    security: bool
    started_at: datetime
    created_at: datetime
    engaged_at: datetime | None
    status_changed_at: datetime
    mitigated_at: datetime | None
    resolved_at: datetime | None
    last_update_at: datetime | None
    promised_update_at: datetime | None
    rca_internal_at: datetime | None
    rca_external_at: datetime | None
    # When the Dedicated Director escalation was recorded: the first ``director.engaged``
    # event of an incident still without a mitigation in sight (stops the Director clock).
    director_engaged_at: datetime | None = None
    # The tenants the latest update did not reach, each with its own last update and
    # promise: ``(tenant, last_update_at, promised_update_at)``.  Empty when every tenant
    # got the latest update, so ``last_update_at`` and ``promised_update_at`` hold for all.
    lagging: tuple[tuple[str, datetime | None, datetime | None], ...] = ()
