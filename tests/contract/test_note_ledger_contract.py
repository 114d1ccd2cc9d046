"""The note ledger contract (``comms.ports.NoteLedger``): the Slack note of each sent
revision is claimed in the store before it is posted, so that two ``comms send`` finishing
one draft at the same moment post it once, and a failed post is given back for the next.

Every test runs once per backend (``backends.BACKENDS``) through ``comms.bootstrap``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from comms.ports import Store
from tests.contract.older_schema import upgraded_from_before
from tests.contract.support import NOW


def test_a_note_is_claimed_once(store: Store) -> None:
    assert store.claim_note(1, 1, owner="ana", now=NOW)
    assert not store.claim_note(1, 1, owner="bob", now=NOW)
    assert not store.claim_note(1, 1, owner="ana", now=NOW)  # the owner's own, claimed again
    assert store.claim_note(1, 2, owner="bob", now=NOW)  # the next revision is another note
    assert store.claim_note(2, 1, owner="bob", now=NOW)


def test_a_released_note_can_be_claimed_again(store: Store) -> None:
    """The post failed (nothing was posted): the next send posts the note."""
    assert store.claim_note(1, 1, owner="ana", now=NOW)
    store.release_note(1, 1, owner="ana")
    assert store.claim_note(1, 1, owner="bob", now=NOW)
    store.release_note(7, 1, owner="bob")  # nothing claimed: harmless


def test_only_the_owner_gives_a_claim_back(store: Store) -> None:
    assert store.claim_note(1, 1, owner="ana", now=NOW)
    store.release_note(1, 1, owner="bob")
    assert not store.claim_note(1, 1, owner="bob", now=NOW)


def test_another_handle_on_the_database_sees_the_claim(
    store: Store, reopen: Callable[[], Store]
) -> None:
    assert store.claim_note(1, 1, owner="ana", now=NOW)
    assert not reopen().claim_note(1, 1, owner="bob", now=NOW)


def test_concurrent_claims_take_each_note_once(store: Store, reopen: Callable[[], Store]) -> None:
    handles = [store] + [reopen() for _ in range(3)]
    start = threading.Barrier(len(handles))
    notes = [(draft, revision) for draft in range(1, 6) for revision in range(1, 5)]
    won: list[list[tuple[int, int]]] = [[] for _ in handles]
    errors: list[BaseException] = []

    def claim(n: int) -> None:
        try:
            start.wait(10)
            owner = f"sender-{n}"
            won[n] = [k for k in notes if handles[n].claim_note(*k, owner=owner, now=NOW)]
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(handles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(k for keys in won for k in keys) == notes


def test_a_store_of_the_previous_version_gains_the_ledger(
    database_url: str, tmp_path: Path
) -> None:
    with upgraded_from_before(database_url, "CREATE TABLE slack_notes", tmp_path) as store:
        assert store.claim_note(1, 1, owner="ana", now=NOW)
        assert not store.claim_note(1, 1, owner="bob", now=NOW)
