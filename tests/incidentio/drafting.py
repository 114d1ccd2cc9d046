"""The first update of an incident, drafted as the GDCMOC does, for the incident.io tests."""

from __future__ import annotations

from datetime import datetime

from comms import service
from comms.models import Draft, MessageKind
from comms.ports import Store
from comms.render import Renderer


def first_update(
    store: Store,
    ref: str,
    now: datetime,
    *,
    impact: str = "Pushing container images fails.",
    author: str = "jane",
    interval_minutes: int = 60,
) -> Draft:
    """Draft ``ref``'s investigation-start message (through ``service.compose``)."""
    return service.compose(
        store,
        Renderer(),
        ref=ref,
        kind=MessageKind.INVESTIGATION_START,
        values={"impact": impact},
        now=now,
        author=author,
        interval_minutes=interval_minutes,
    ).draft
