"""The store contract: tenants, incidents, events, drafts, reviews and transactions.

Every test runs once per backend (``backends.BACKENDS``) through ``comms.bootstrap``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import pytest

from comms.errors import NotFoundError, UsageError
from comms.models import (
    Contact,
    DraftState,
    Event,
    Incident,
    MessageKind,
    Revision,
    Severity,
    Status,
    Tenant,
)
from comms.ports import Store
from tests.contract.support import ACME, NOW, M, open_incident, review, revise

# -- tenants ----------------------------------------------------------------------------


def test_tenants_are_kept_whole_replaced_by_id_and_listed_by_id(store: Store) -> None:
    acme = Tenant(
        id="acme",
        name="Acme Corp",
        url="https://acme.gitlab-dedicated.com",
        geo=True,
        contacts=[
            Contact(email="ops@acme.example", name="Ops Lead"),
            Contact(email="csm@gitlab.example", name="Casey", role="csm"),
        ],
        aliases=["ACME Inc."],
    )
    store.put_tenant(Tenant(id="zeta", name="Zeta", pubsec=True))
    store.put_tenant(Tenant(id="acme", name="An older name"))
    store.put_tenant(acme)
    assert store.get_tenant("acme") == acme
    assert [t.id for t in store.list_tenants()] == ["acme", "zeta"]
    assert store.list_tenants()[1].pubsec


def test_an_unknown_tenant_is_not_found_with_the_command_that_adds_it(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no tenant 'nobody'; add it with: comms tenants add"):
        store.get_tenant("nobody")
    assert store.list_tenants() == []


def test_changing_what_a_store_returned_changes_nothing_stored(store: Store) -> None:
    store.put_tenant(Tenant(id="acme", name="Acme Corp", aliases=["ACME"]))
    open_incident(store)
    revise(store)
    store.get_tenant("acme").aliases.append("Initech")
    store.get_incident("INC-1").tenants.append("globex")
    store.get_draft(1).revision.variables["impact"] = "changed"
    store.events("INC-1")[0].data["title"] = "changed"
    assert store.get_tenant("acme").aliases == ["ACME"]
    assert store.get_incident("INC-1").tenants == ["acme"]
    assert store.get_draft(1).revision.variables["impact"] == "impact 1"
    assert store.events("INC-1")[0].data["title"] == "Sign-in failures"


# -- incidents --------------------------------------------------------------------------


def test_incidents_are_numbered_and_their_opening_is_logged(store: Store) -> None:
    first = store.create_incident(
        title="Sign-in failures",
        severity=Severity.S1,
        tenants=["acme", "beta"],
        started_at=NOW - 5 * M,
        now=NOW,
        actor="gdcmoc",
    )
    second = store.create_incident(
        title="Slow pipelines",
        severity=Severity.S2,
        tenants=["gov"],
        started_at=NOW,
        now=NOW + M,
        actor="other",
        security=True,
        pubsec=True,
    )
    assert first == Incident(
        ref="INC-1",
        title="Sign-in failures",
        severity=Severity.S1,
        tenants=["acme", "beta"],
        started_at=NOW - 5 * M,
        created_at=NOW,
        updated_at=NOW,
    )
    assert first.status is Status.INVESTIGATING
    assert (second.ref, second.security, second.pubsec) == ("INC-2", True, True)
    assert store.get_incident("INC-1") == first
    assert store.get_incident("INC-2") == second
    opened, engaged = store.events("INC-1")
    assert (opened.type, opened.actor, opened.at) == ("incident.opened", "gdcmoc", NOW)
    assert opened.data == {
        "title": "Sign-in failures",
        "severity": "S1",
        "status": "investigating",
        "tenants": ["acme", "beta"],
        "started_at": "2026-11-27T14:25:00Z",
        "security": False,
        "pubsec": False,
    }
    assert (engaged.type, engaged.data, engaged.at) == ("gdcmoc.engaged", {"by": "gdcmoc"}, NOW)
    assert opened.id < engaged.id < store.events("INC-2")[0].id


def test_an_explicit_ref_is_kept_and_numbering_continues_after_it(store: Store) -> None:
    assert open_incident(store, ref="OPS-7") == "OPS-7"
    assert open_incident(store) == "INC-2"
    assert [i.ref for i in store.list_incidents()] == ["INC-2", "OPS-7"]


def test_a_duplicate_ref_is_refused_and_changes_nothing(store: Store) -> None:
    open_incident(store)
    events = store.events("INC-1")
    with pytest.raises(UsageError, match="incident 'INC-1' already exists"):
        open_incident(store, title="again", severity=Severity.S2, ref="INC-1")
    assert store.events("INC-1") == events
    assert store.get_incident("INC-1").title == "Sign-in failures"
    assert [i.ref for i in store.list_incidents()] == ["INC-1"]
    with pytest.raises(NotFoundError):
        store.get_incident("INC-2")


def test_an_unknown_incident_is_not_found_and_nothing_is_logged(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no incident 'INC-404'; see the open ones with"):
        store.get_incident("INC-404")
    ghost = Incident(
        ref="INC-404",
        title="x",
        severity=Severity.S1,
        tenants=["acme"],
        started_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    with pytest.raises(NotFoundError, match="no incident 'INC-404'"):
        store.update_incident(ghost, event="incident.updated", actor="g", data={})
    with pytest.raises(NotFoundError, match="no incident 'INC-404'"):
        store.record_clock(
            "INC-404", column="engaged_at", at=NOW, event="gdcmoc.engaged", actor="g", data={}
        )
    assert store.events("INC-404") == []
    assert store.list_incidents() == []


def test_incidents_are_listed_newest_first_and_open_only_leaves_out_resolved(
    store: Store,
) -> None:
    for _ in range(3):
        open_incident(store)
    resolved = store.get_incident("INC-2").replace(
        status=Status.RESOLVED, updated_at=NOW + M, resolved_at=NOW + M, resolved_by="imoc"
    )
    store.update_incident(resolved, event="incident.status", actor="imoc", data={})
    assert [i.ref for i in store.list_incidents()] == ["INC-3", "INC-2", "INC-1"]
    assert [i.ref for i in store.list_incidents(open_only=True)] == ["INC-3", "INC-1"]


def test_an_update_replaces_the_fields_and_logs_its_event(store: Store) -> None:
    open_incident(store)
    changed = store.get_incident("INC-1").replace(
        title="Sign-in and API failures",
        severity=Severity.S2,
        tenants=["acme", "beta"],
        security=True,
        started_at=NOW - 9 * M,
        updated_at=NOW + 10 * M,
    )
    data = {"title": "Sign-in and API failures", "tenants": ["acme", "beta"]}
    assert store.update_incident(changed, event="incident.updated", actor="imoc", data=data) == (
        changed
    )
    assert store.get_incident("INC-1") == changed
    last = store.events("INC-1")[-1]
    assert (last.type, last.actor, last.at, last.data) == (
        "incident.updated",
        "imoc",
        NOW + 10 * M,
        data,
    )
    (row,) = store.clock_rows()
    assert row.status_changed_at == NOW  # the status did not change
    assert (row.severity, row.tenants, row.security) == ("S2", ("acme", "beta"), True)


def test_a_status_change_moves_the_status_clock_and_nothing_else_does(store: Store) -> None:
    open_incident(store)
    mitigating = store.get_incident("INC-1").replace(
        status=Status.MITIGATING,
        updated_at=NOW + 20 * M,
        mitigated_at=NOW + 20 * M,
        mitigated_by="imoc",
    )
    store.update_incident(mitigating, event="incident.status", actor="imoc", data={})
    retitled = mitigating.replace(title="Sign-in slow", updated_at=NOW + 30 * M)
    store.update_incident(retitled, event="incident.updated", actor="imoc", data={})
    (row,) = store.clock_rows()
    assert (row.status, row.status_changed_at, row.mitigated_at) == (
        "mitigating",
        NOW + 20 * M,
        NOW + 20 * M,
    )
    assert store.get_incident("INC-1").mitigated_by == "imoc"


def test_record_clock_sets_one_clock_and_logs_its_event(store: Store) -> None:
    open_incident(store)
    moments = {"engaged_at": NOW + 3 * M, "rca_internal_at": NOW + 60 * M}
    moments["rca_external_at"] = NOW + 90 * M
    for column, at in moments.items():
        store.record_clock(
            "INC-1", column=column, at=at, event=f"clock.{column}", actor="g", data={"n": 1}
        )
    (row,) = store.clock_rows()
    assert (row.engaged_at, row.rca_internal_at, row.rca_external_at) == tuple(moments.values())
    logged = [(e.type, e.at, e.data) for e in store.events("INC-1")[2:]]
    assert logged == [(f"clock.{c}", at, {"n": 1}) for c, at in moments.items()]


@pytest.mark.parametrize("column", ["status", "last_update_at", "engaged_at = NULL; --"])
def test_record_clock_refuses_any_other_column(store: Store, column: str) -> None:
    open_incident(store)
    before = store.clock_rows()
    with pytest.raises(ValueError, match=r"status|last_update_at|engaged_at"):
        store.record_clock("INC-1", column=column, at=NOW, event="x", actor="g", data={})
    assert store.clock_rows() == before
    assert len(store.events("INC-1")) == 2


def test_events_are_appended_in_order_and_keep_their_data_as_json(store: Store) -> None:
    open_incident(store)
    data = {"text": "called the customer", "sinks": ("slack", "pagerduty"), "n": 2, "x": None}
    event = store.append_event("INC-1", type="note", actor="sam", now=NOW + M, data=data)
    assert (event.incident_ref, event.type, event.actor, event.at) == (
        "INC-1",
        "note",
        "sam",
        NOW + M,
    )
    events = store.events("INC-1")
    assert events[-1] == Event(
        id=event.id,
        incident_ref="INC-1",
        at=NOW + M,
        actor="sam",
        type="note",
        data={"text": "called the customer", "sinks": ["slack", "pagerduty"], "n": 2, "x": None},
    )
    assert [e.id for e in events] == sorted({e.id for e in events})
    assert store.events("INC-2") == []


# -- drafts and revisions ---------------------------------------------------------------


def test_a_new_draft_starts_at_revision_one_and_is_logged(store: Store) -> None:
    open_incident(store)
    findings = [{"rule": "Leak.IPAddress", "start": 3, "end": 11}]
    draft = revise(store, findings=findings, edited=True)
    assert (draft.id, draft.incident_ref, draft.kind, draft.state) == (
        1,
        "INC-1",
        MessageKind.UPDATE,
        DraftState.DRAFT,
    )
    assert draft.created_at == draft.updated_at == NOW + M
    assert draft.revision == Revision(
        draft_id=1,
        number=1,
        subject="Update 1: sign-in failures",
        body="Body 1\n",
        author="gdcmoc",
        created_at=NOW + M,
        variables={"actions": "restoring sign-in", "impact": "impact 1"},
        edited=True,
        findings=findings,
    )
    assert store.get_draft(1) == draft
    assert store.revisions(1) == [draft.revision]
    last = store.events("INC-1")[-1]
    assert (last.type, last.actor, last.at) == ("draft.revised", "gdcmoc", NOW + M)
    assert last.data == {"draft_id": 1, "revision": 1, "kind": "update", "edited": True}
    assert revise(store, kind=MessageKind.RESOLVED).id == 2


def test_revisions_follow_each_other_and_the_draft_shows_the_latest(store: Store) -> None:
    open_incident(store)
    revise(store)
    for n in range(2, 6):
        revise(store, n, draft_id=1, variables={})
    assert [r.number for r in store.revisions(1)] == [1, 2, 3, 4, 5]
    assert [r.created_at for r in store.revisions(1)] == [NOW + n * M for n in range(1, 6)]
    draft = store.get_draft(1)
    assert (draft.revision.subject, draft.created_at, draft.updated_at) == (
        "Update 5: sign-in failures",
        NOW + M,
        NOW + 5 * M,
    )
    events = store.events("INC-1")
    assert [e.type for e in events][:2] == ["incident.opened", "gdcmoc.engaged"]
    revised = [e.data for e in events if e.type == "draft.revised"]
    assert [d["revision"] for d in revised] == [1, 2, 3, 4, 5]
    assert all("from_state" not in d for d in revised)  # it never left 'draft'


def test_a_new_revision_voids_the_review(store: Store) -> None:
    open_incident(store)
    draft = revise(store)
    store.add_review(review(draft), incident_ref="INC-1", state=DraftState.APPROVED)
    assert store.get_draft(1).state is DraftState.APPROVED
    again = revise(store, 2, draft_id=1)
    assert (again.state, again.updated_at, again.revision.number) == (
        DraftState.DRAFT,
        NOW + 2 * M,
        2,
    )
    assert store.events("INC-1")[-1].data["from_state"] == "approved"
    assert len(store.reviews(1)) == 1  # the history stays


def test_redacting_a_revision_replaces_only_its_text_and_logs_it(store: Store) -> None:
    from comms.delivery import plan

    open_incident(store)
    first = revise(store)
    store.add_review(review(first), incident_ref="INC-1", state=DraftState.APPROVED)
    revise(store, 2, draft_id=1)
    store.plan_deliveries(plan(store.get_draft(1), ["acme"], ["switchboard"]), actor="g", now=NOW)
    before = store.revisions(1)
    reviews, deliveries = store.reviews(1), store.deliveries(draft_id=1)
    redacted = store.redact_revision(
        1,
        1,
        subject="Update 1",
        body="Body [redacted secret]\n",
        variables={"impact": "[redacted secret]"},
        actor="sam",
        now=NOW + 9 * M,
        data={"reason": "token pasted", "kinds": {"credential": 1}},
    )
    assert (redacted.number, redacted.subject, redacted.body, redacted.variables) == (
        1,
        "Update 1",
        "Body [redacted secret]\n",
        {"impact": "[redacted secret]"},
    )
    after = store.revisions(1)
    assert after[0] == before[0].replace(
        subject="Update 1",
        body="Body [redacted secret]\n",
        variables={"impact": "[redacted secret]"},
    )
    assert after[1] == before[1]
    assert store.get_draft(1).revision == before[1]
    assert (store.reviews(1), store.deliveries(draft_id=1)) == (reviews, deliveries)
    event = store.events("INC-1")[-1]
    assert (event.type, event.actor, event.at) == ("draft.redacted", "sam", NOW + 9 * M)
    assert event.data == {
        "draft_id": 1,
        "revision": 1,
        "reason": "token pasted",
        "kinds": {"credential": 1},
    }
    fields = {"subject": "s", "body": "b", "variables": {}, "actor": "a", "now": NOW, "data": {}}
    with pytest.raises(NotFoundError):
        store.redact_revision(1, 3, **fields)
    with pytest.raises(NotFoundError):
        store.redact_revision(99, 1, **fields)
    assert store.events("INC-1")[-1] == event  # nothing logged for what was not found


def test_drafts_are_listed_oldest_first_and_filtered(store: Store) -> None:
    open_incident(store)
    open_incident(store)
    revise(store)
    revise(store, 2, incident_ref="INC-2")
    revise(store, 3, kind=MessageKind.RESOLVED)  # one open draft per incident and kind
    store.set_draft_state(
        3, DraftState.IN_REVIEW, now=NOW + 5 * M, actor="g", event="review.submitted", data={}
    )
    assert [d.id for d in store.list_drafts()] == [1, 2, 3]
    assert [d.id for d in store.list_drafts(incident_ref="INC-1")] == [1, 3]
    assert [d.id for d in store.list_drafts(state=DraftState.IN_REVIEW)] == [3]
    assert store.list_drafts(incident_ref="INC-2", state=DraftState.IN_REVIEW) == []
    assert store.list_drafts(incident_ref="INC-2") == [store.get_draft(2)]


def test_a_state_change_moves_the_draft_and_logs_its_event(store: Store) -> None:
    open_incident(store)
    revise(store)
    moved = store.set_draft_state(
        1,
        DraftState.IN_REVIEW,
        now=NOW + 5 * M,
        actor="gdcmoc",
        event="review.submitted",
        data={"note": "please look"},
    )
    assert (moved.state, moved.updated_at) == (DraftState.IN_REVIEW, NOW + 5 * M)
    assert store.get_draft(1) == moved
    last = store.events("INC-1")[-1]
    assert (last.type, last.actor, last.at) == ("review.submitted", "gdcmoc", NOW + 5 * M)
    assert last.data == {"draft_id": 1, "from": "draft", "to": "in-review", "note": "please look"}


def test_sending_sets_the_last_update_and_the_promise_once(store: Store) -> None:
    open_incident(store)
    revise(store)
    (row,) = store.clock_rows()
    assert (row.last_update_at, row.promised_update_at) == (None, None)
    for minutes in (10, 12):  # two senders finishing together
        store.set_draft_state(
            1,
            DraftState.SENT,
            now=NOW + minutes * M,
            actor="g",
            event="update.sent",
            data={"next_update_at": "2026-11-27T15:30:00Z"},
        )
    (row,) = store.clock_rows()
    assert (row.last_update_at, row.promised_update_at) == (NOW + 10 * M, NOW + 60 * M)
    assert [e.type for e in store.events("INC-1")].count("update.sent") == 1
    assert store.get_draft(1).updated_at == NOW + 10 * M


def test_an_unknown_draft_is_not_found_and_nothing_is_logged(store: Store) -> None:
    open_incident(store)
    message = r"no draft 9; see them with: comms drafts list"
    with pytest.raises(NotFoundError, match=message):
        store.get_draft(9)
    with pytest.raises(NotFoundError, match=message):
        store.revisions(9)
    with pytest.raises(NotFoundError, match=message):
        revise(store, draft_id=9)
    with pytest.raises(NotFoundError, match=message):
        store.set_draft_state(9, DraftState.SENT, now=NOW, actor="g", event="update.sent", data={})
    assert len(store.events("INC-1")) == 2
    assert store.list_drafts() == []


# -- reviews ----------------------------------------------------------------------------


def test_reviews_are_kept_in_order_move_the_draft_and_are_logged(store: Store) -> None:
    open_incident(store)
    draft = revise(store)
    asked = review(draft, "changes-requested", at=NOW + 5 * M)
    first = store.add_review(asked, incident_ref="INC-1", state=DraftState.CHANGES_REQUESTED)
    assert first.id > 0
    assert first == asked.replace(id=first.id)
    assert (store.get_draft(1).state, store.get_draft(1).updated_at) == (
        DraftState.CHANGES_REQUESTED,
        NOW + 5 * M,
    )
    logged = store.events("INC-1")[-1]
    assert (logged.type, logged.actor, logged.at) == (
        "review.changes-requested",
        "sam",
        NOW + 5 * M,
    )
    assert logged.data == {
        "draft_id": 1,
        "revision": 1,
        "role": "imoc",
        "note": "say when the next update comes",
        "approval_hash": "hash-1-1",
    }
    second = store.add_review(
        review(revise(store, 2, draft_id=1)), incident_ref="INC-1", state=DraftState.APPROVED
    )
    assert second.id > first.id
    assert store.reviews(1) == [first, second]
    assert store.reviews(2) == []
    assert store.get_draft(1).state is DraftState.APPROVED


# -- transactions -----------------------------------------------------------------------


def test_a_failed_transaction_keeps_nothing(store: Store) -> None:
    from comms.delivery import plan

    store.put_tenant(ACME)

    def everything_then_fail() -> None:
        with store.transaction():
            open_incident(store)
            draft = revise(store)
            store.add_review(review(draft), incident_ref="INC-1", state=DraftState.APPROVED)
            store.plan_deliveries(plan(draft, ["acme"], ["switchboard"]), actor="g", now=NOW)
            store.put_tenant(Tenant(id="beta", name="Beta"))
            store.put_tenant(ACME.replace(name="Renamed"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        everything_then_fail()
    assert store.list_incidents() == []
    assert store.events("INC-1") == []
    assert store.list_drafts() == []
    assert store.reviews(1) == []
    assert store.deliveries() == []
    assert store.list_tenants() == [ACME]
    # Nothing was used up either: the next incident and draft get the same numbers.
    assert open_incident(store) == "INC-1"
    assert revise(store).id == 1


def test_a_transaction_keeps_everything_and_reads_inside_see_its_writes(
    store: Store, reopen: Callable[[], Store]
) -> None:
    with store.transaction():
        open_incident(store)
        assert [i.ref for i in store.list_incidents()] == ["INC-1"]
        assert store.get_incident("INC-1").title == "Sign-in failures"
        assert len(store.events("INC-1")) == 2
        draft = revise(store)
        assert store.list_drafts(incident_ref="INC-1") == [draft]
        assert [r.ref for r in store.clock_rows()] == ["INC-1"]
    other = reopen()
    assert other.get_draft(1) == draft
    assert other.events("INC-1") == store.events("INC-1")


def test_a_nested_transaction_joins_the_outer_one(store: Store) -> None:

    def outer_fails_after_inner_ended() -> None:
        with store.transaction():
            open_incident(store)
            with store.transaction():
                open_incident(store)
            assert len(store.list_incidents()) == 2
            raise RuntimeError("the outer block fails after the inner one ended")

    with pytest.raises(RuntimeError, match="outer block fails"):
        outer_fails_after_inner_ended()
    assert store.list_incidents() == []
    # No savepoint: what the inner block did stays part of the outer transaction.
    with store.transaction():
        open_incident(store)
        with contextlib.suppress(RuntimeError), store.transaction():
            open_incident(store)
            raise RuntimeError("the inner block fails, the outer one carries on")
    assert [i.ref for i in store.list_incidents()] == ["INC-2", "INC-1"]


def test_threads_sharing_one_store_never_lose_or_repeat_a_change(store: Store) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                open_incident(store)
        except BaseException as exc:  # reported below: the test must see every failure
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    refs = [i.ref for i in store.list_incidents()]
    assert sorted(refs) == sorted(f"INC-{n}" for n in range(1, 61))
    assert sum(len(store.events(ref)) for ref in refs) == 120


def test_the_data_outlives_the_handle(store: Store, reopen: Callable[[], Store]) -> None:
    open_incident(store)
    store.close()
    store.close()  # closing twice is harmless: the runtime may close a shared handle twice
    assert reopen().get_incident("INC-1").title == "Sign-in failures"
