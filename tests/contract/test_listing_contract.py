"""The store contract for listings a page at a time, one open draft per incident and kind,
the store's own id, and draft ids no store could hold.

Every test runs once per backend (``backends.BACKENDS``) through ``comms.bootstrap``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from comms.bootstrap import open_store
from comms.delivery import plan
from comms.errors import NotFoundError, TransitionError
from comms.models import DraftState, Incident, MessageKind, Status
from comms.ports import Page, Store
from tests.contract.support import NOW, M, open_incident, review, revise

# -- pages ---------------------------------------------------------------------------------


def resolve(store: Store, ref: str) -> None:
    resolved = store.get_incident(ref).replace(
        status=Status.RESOLVED, updated_at=NOW + M, resolved_at=NOW + M, resolved_by="imoc"
    )
    store.update_incident(resolved, event="incident.status", actor="imoc", data={})


def refs(page: Page[Incident]) -> list[str]:
    return [i.ref for i in page]


def test_incidents_come_a_page_at_a_time_newest_first(store: Store) -> None:
    for _ in range(5):
        open_incident(store)
    resolve(store, "INC-2")
    resolve(store, "INC-4")
    first = store.list_incidents(limit=2)
    assert isinstance(first, Page)
    assert (refs(first), first.more, first.skipped) == (["INC-5", "INC-4"], True, ())
    second = store.list_incidents(limit=2, offset=2)
    assert (refs(second), second.more) == (["INC-3", "INC-2"], True)
    last = store.list_incidents(limit=2, offset=4)
    assert (refs(last), last.more) == (["INC-1"], False)
    assert (refs(store.list_incidents(limit=5)), store.list_incidents(limit=5).more) == (
        ["INC-5", "INC-4", "INC-3", "INC-2", "INC-1"],
        False,
    )
    assert refs(store.list_incidents(open_only=True, limit=2)) == ["INC-5", "INC-3"]
    assert store.list_incidents(open_only=True, limit=2).more is True
    assert refs(store.list_incidents(open_only=True, limit=2, offset=2)) == ["INC-1"]
    assert store.list_incidents(offset=9) == []
    everything = store.list_incidents()
    assert (len(everything), everything.more, everything.skipped) == (5, False, ())
    assert refs(store.list_incidents(limit=2**63 - 1)) == refs(everything)  # no overflow
    assert store.list_incidents(offset=2**63 - 1) == []
    assert store.list_drafts(limit=2**63 - 1, offset=2**64) == []


def test_drafts_come_a_page_at_a_time_newest_first_when_asked(store: Store) -> None:
    open_incident(store)
    open_incident(store)
    kinds = [MessageKind.UPDATE, MessageKind.RESOLVED, MessageKind.ESCALATED_RESPONSE]
    for n, kind in enumerate(kinds, 1):
        revise(store, n, kind=kind)
        revise(store, n + 10, kind=kind, incident_ref="INC-2")
    ids = [d.id for d in store.list_drafts()]
    assert ids == [1, 2, 3, 4, 5, 6]  # oldest first, as the core reads them
    page = store.list_drafts(newest_first=True, limit=4)
    assert ([d.id for d in page], page.more, page.skipped) == ([6, 5, 4, 3], True, ())
    page = store.list_drafts(newest_first=True, limit=4, offset=4)
    assert ([d.id for d in page], page.more) == ([2, 1], False)
    page = store.list_drafts(incident_ref="INC-2", newest_first=True, limit=2)
    assert ([d.id for d in page], page.more) == ([6, 4], True)
    store.set_draft_state(
        5, DraftState.IN_REVIEW, now=NOW + 20 * M, actor="g", event="review.submitted", data={}
    )
    page = store.list_drafts(state=DraftState.IN_REVIEW, limit=1)
    assert ([d.id for d in page], page.more) == ([5], False)
    assert store.list_drafts(limit=2, offset=1) == [store.get_draft(2), store.get_draft(3)]


def test_a_limit_must_be_a_page_size(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.list_incidents(limit=0)
    with pytest.raises(ValueError, match="offset"):
        store.list_drafts(offset=-1)


# -- one open draft per incident and kind ----------------------------------------------------


def test_a_new_draft_of_a_kind_already_open_joins_it(store: Store) -> None:
    open_incident(store)
    first = revise(store)
    store.add_review(review(first), incident_ref="INC-1", state=DraftState.APPROVED)
    joined = revise(store, 2)  # draft_id None: no second open update for INC-1
    assert (joined.id, joined.revision.number, joined.state) == (1, 2, DraftState.DRAFT)
    assert store.events("INC-1")[-1].data == {
        "draft_id": 1,
        "revision": 2,
        "kind": "update",
        "edited": False,
        "from_state": "approved",
    }
    assert revise(store, 3, kind=MessageKind.RESOLVED).id == 2  # another kind is its own
    open_incident(store)
    assert revise(store, 4, incident_ref="INC-2").id == 3  # and so is another incident
    store.set_draft_state(
        1, DraftState.SENT, now=NOW + 9 * M, actor="g", event="update.sent", data={}
    )
    after = revise(store, 5)  # the update was sent: the next one is a new draft
    assert (after.id, after.revision.number) == (4, 1)
    assert [r.number for r in store.revisions(1)] == [1, 2]
    events = store.events("INC-1")
    with pytest.raises(TransitionError, match="draft 1 was already sent"):
        revise(store, 6, draft_id=1)  # a sent draft is never reopened by a late edit
    assert (store.get_draft(1).state, store.events("INC-1")) == (DraftState.SENT, events)


def test_threads_drafting_the_same_kind_at_once_make_one_draft(store: Store) -> None:
    open_incident(store)
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def draft(n: int) -> None:
        try:
            start.wait()
            revise(store, n)
        except BaseException as exc:  # reported below: the test must see every failure
            errors.append(exc)

    threads = [threading.Thread(target=draft, args=(n,)) for n in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    (only,) = store.list_drafts()
    assert [r.number for r in store.revisions(only.id)] == [1, 2, 3, 4, 5, 6]


# -- the store's id ------------------------------------------------------------------------


@pytest.fixture
def other_store(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A second, fresh store of the same backend (another team's, or a rebuilt one)."""
    if database_url.startswith("memory://"):
        from comms.adapters.memory_store import discard

        name = f"other-{uuid.uuid4().hex}"
        other = open_store(f"memory://{name}")
        yield other
        discard(name)
    else:
        other = open_store(f"sqlite:///{tmp_path_factory.mktemp('other')}/other.db")
        yield other
        other.close()


def test_each_store_has_its_own_lasting_id_and_its_keys_carry_it(
    store: Store, other_store: Store, reopen: Callable[[], Store]
) -> None:
    made = store.store_id()
    assert made
    assert made == store.store_id()
    assert reopen().store_id() == made
    assert other_store.store_id() != made
    open_incident(store)
    open_incident(other_store)
    ours = plan(revise(store), ["acme"], ["switchboard"], store_id=store.store_id())
    theirs = plan(revise(other_store), ["acme"], ["switchboard"], store_id=other_store.store_id())
    assert (ours[0].draft_id, ours[0].revision) == (theirs[0].draft_id, theirs[0].revision)
    assert ours[0].idempotency_key != theirs[0].idempotency_key
    assert made in ours[0].idempotency_key


# -- ids no store holds ----------------------------------------------------------------------


@pytest.mark.parametrize("draft_id", [2**63, -(2**63) - 1, 10**20])
def test_a_draft_id_past_64_bits_is_simply_not_found(store: Store, draft_id: int) -> None:
    open_incident(store)
    revise(store)
    message = f"no draft {draft_id}; see them with: comms drafts list"
    with pytest.raises(NotFoundError, match=message):
        store.get_draft(draft_id)
    with pytest.raises(NotFoundError, match=message):
        store.revisions(draft_id)
    with pytest.raises(NotFoundError, match=message):
        revise(store, 2, draft_id=draft_id)
    with pytest.raises(NotFoundError, match=message):
        store.set_draft_state(
            draft_id, DraftState.SENT, now=NOW, actor="g", event="update.sent", data={}
        )
    assert store.reviews(draft_id) == []
    assert store.deliveries(draft_id=draft_id) == []
    assert [d.id for d in store.list_drafts()] == [1]
