"""Plain records read in bulk, free of pydantic so hot paths stay fast to import and run."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


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
