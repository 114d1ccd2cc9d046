"""The first update of an incident, drafted as the GDCMOC does (and sent, approved, through
a fake Switchboard), for the incident.io tests."""

from __future__ import annotations

from datetime import datetime

from comms import delivery, review, service
from comms.delivery import Process
from comms.models import Draft, MessageKind
from comms.ports import Store
from comms.render import Renderer
from comms.review import ReviewPolicy
from tests.contract.fakes import FakePublisher


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


def approve(store: Store, draft_id: int, now: datetime) -> None:
    """The IMOC (sam) approves draft ``draft_id`` for Switchboard."""
    review.decide(
        store,
        draft_id,
        decision="approved",
        role="imoc",
        reviewer="sam",
        note="",
        tenants=[],
        channels=["switchboard"],
        now=now,
    )


def sent_update(store: Store, ref: str, now: datetime) -> int:
    """Draft ``ref``'s first update, approve it and send it to Switchboard (a fake);
    return the draft's id."""
    draft = first_update(store, ref, now, impact="Users cannot sign in to the web interface.")
    approve(store, draft.id, now)
    publisher = FakePublisher("switchboard", now=lambda: now)
    report = delivery.send(
        store,
        draft.id,
        publishers=lambda channels: {"switchboard": publisher},
        tenants=[],
        channels=["switchboard"],
        override_reason=None,
        policy=ReviewPolicy.from_table({}),
        lint_config=None,
        actor="jane",
        clock=lambda: now,
        process=Process(host="test", pid=1, alive=lambda pid: True),
        concurrency=1,
    )
    report.raise_for_unfinished()
    return draft.id
