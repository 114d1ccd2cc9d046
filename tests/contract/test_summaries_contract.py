"""The store contract for draft summaries (``DraftStore.draft_summaries``): what the review
queue reads of each draft instead of its text.

Every test runs once per backend (``backends.BACKENDS``) through ``comms.bootstrap``.
"""

from __future__ import annotations

from comms.models import DraftState, MessageKind
from comms.ports import Store
from comms.records import DraftSummary
from tests.contract.support import NOW, M, open_incident, revise

WAITING = (DraftState.DRAFT, DraftState.IN_REVIEW, DraftState.CHANGES_REQUESTED)
FINDINGS = [
    {"rule": "Leak.Host", "level": "error", "start": 0, "end": 3},
    {"rule": "Impact.Maybe", "level": "warning", "start": 4, "end": 9},
    {"rule": "Leak.Ip", "level": "error", "start": 10, "end": 12},
    {"rule": "Struct.Zone", "level": "suggestion", "start": 0, "end": 0},
]


def test_a_summary_is_the_latest_revision_without_its_text(store: Store) -> None:
    open_incident(store)
    first = revise(store, 1)
    latest = revise(store, 2, draft_id=first.id, findings=FINDINGS, author="gus")
    (found,) = store.draft_summaries(states=WAITING)
    assert found == DraftSummary(
        id=first.id,
        incident_ref="INC-1",
        kind="update",
        state="draft",
        created_at=latest.created_at,
        updated_at=latest.updated_at,
        revision=2,
        subject="Update 2: sign-in failures",
        author="gus",
        findings=4,
        errors=2,
    )
    assert found.created_at == first.created_at == NOW + M


def test_summaries_are_of_the_states_asked_oldest_first(store: Store) -> None:
    open_incident(store)
    open_incident(store)
    older = revise(store, 1)
    sent = revise(store, 2, incident_ref="INC-2")
    newer = revise(store, 3, incident_ref="INC-2", kind=MessageKind.RESOLVED)
    for draft, state in ((sent, DraftState.SENT), (newer, DraftState.IN_REVIEW)):
        store.set_draft_state(
            draft.id, state, now=NOW + 9 * M, actor="gdcmoc", event="test", data={}
        )
    waiting = store.draft_summaries(states=WAITING)
    assert [(s.id, s.state) for s in waiting] == [(older.id, "draft"), (newer.id, "in-review")]
    assert [s.id for s in store.draft_summaries(states=[DraftState.SENT])] == [sent.id]
    assert store.draft_summaries(states=[DraftState.APPROVED]) == []
    assert store.draft_summaries(states=[]) == []


def test_a_redacted_subject_shows_at_once(store: Store) -> None:
    open_incident(store)
    draft = revise(store, 1, findings=FINDINGS[:1])
    store.redact_revision(
        draft.id,
        1,
        subject="Update 1: [redacted]",
        body="[redacted]\n",
        variables={},
        actor="ana",
        now=NOW + 5 * M,
        data={"reason": "a customer's name"},
    )
    (found,) = store.draft_summaries(states=WAITING)
    assert (found.revision, found.subject, found.findings, found.errors) == (
        1,
        "Update 1: [redacted]",
        1,
        1,
    )
