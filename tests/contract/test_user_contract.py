"""The user-store contract (team mode): users with roles, only token hashes, a user log
that never holds a token or its hash, and one session secret per store.

Every test runs once per backend (``backends.BACKENDS``) through ``comms.bootstrap``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest

from comms.bootstrap import parse_database_url
from comms.errors import CommsError, NotFoundError, UsageError
from comms.identity import hash_token, new_token
from comms.models import InvalidRecordError, Role, User
from comms.ports import Store
from tests.contract.support import NOW, M

SAM = hash_token("comms_sam-token")
RIA = hash_token("comms_ria-token")


def add(store: Store, name: str = "sam", role: Role = Role.IMOC, token_hash: str = SAM) -> User:
    return store.add_user(name=name, role=role, token_hash=token_hash, now=NOW, actor="admin")


def user_log(store: Store, url: str) -> list[tuple[Any, ...]]:
    """Every row of the backend's user log, read the way each backend keeps it."""
    parsed = parse_database_url(url)
    if parsed.scheme == "sqlite":
        with contextlib.closing(sqlite3.connect(parsed.path)) as db:
            return db.execute("SELECT * FROM user_log ORDER BY id").fetchall()
    if parsed.scheme == "postgresql":
        import psycopg

        with psycopg.connect(url) as db:
            return db.execute("SELECT * FROM user_log ORDER BY id").fetchall()
    log: list[tuple[Any, ...]] = getattr(store, "user_log")()  # noqa: B009 - MemoryStore only
    return log


def test_a_user_is_kept_with_role_creator_and_times_and_found_by_token_hash(
    store: Store,
) -> None:
    made = add(store)
    assert made == User(
        name="sam", role=Role.IMOC, created_at=NOW, created_by="admin", token_changed_at=NOW
    )
    assert store.get_user("sam") == made
    assert store.user_for_token(SAM) == made
    assert store.user_for_token(RIA) is None
    assert store.user_for_token(hash_token(new_token())) is None


def test_users_are_listed_by_name_disabled_ones_too(store: Store) -> None:
    assert store.list_users() == []
    add(store, "zed", Role.GDCMOC, hash_token("z"))
    add(store, "ria", Role.SIRT, RIA)
    add(store, "admin", Role.ADMIN, hash_token("a"))
    store.set_user_disabled("zed", disabled=True, now=NOW, actor="admin")
    listed = store.list_users()
    assert [(u.name, u.role, u.disabled) for u in listed] == [
        ("admin", Role.ADMIN, False),
        ("ria", Role.SIRT, False),
        ("zed", Role.GDCMOC, True),
    ]


def test_a_taken_name_is_refused_and_the_first_user_stays(store: Store) -> None:
    add(store)
    with pytest.raises(UsageError, match="user 'sam' exists already; see them with"):
        add(store, "sam", Role.ADMIN, RIA)
    store.set_user_disabled("sam", disabled=True, now=NOW, actor="admin")
    with pytest.raises(UsageError, match="exists already \\(disabled\\); enable it with"):
        add(store, "sam", Role.ADMIN, RIA)
    assert store.get_user("sam").role is Role.IMOC
    assert store.user_for_token(RIA) is None


def test_a_token_hash_another_user_has_is_refused(store: Store) -> None:
    add(store)
    with pytest.raises(CommsError):
        add(store, "ria", Role.SIRT, SAM)
    assert [u.name for u in store.list_users()] == ["sam"]


def test_a_name_that_is_no_user_name_is_refused_before_anything_is_stored(store: Store) -> None:
    with pytest.raises(InvalidRecordError, match="user name"):
        add(store, " sam\n", Role.IMOC)
    assert store.list_users() == []


def test_unknown_users_are_not_found_with_the_command_that_lists_them(store: Store) -> None:
    for call in (
        lambda: store.get_user("nobody"),
        lambda: store.set_user_token("nobody", token_hash=RIA, now=NOW, actor="admin"),
        lambda: store.set_user_disabled("nobody", disabled=True, now=NOW, actor="admin"),
    ):
        with pytest.raises(NotFoundError, match="no user 'nobody'; see them with: comms users"):
            call()
    assert store.list_users() == []


def test_a_new_token_replaces_the_old_one_at_once(store: Store) -> None:
    add(store)
    rotated = store.set_user_token("sam", token_hash=RIA, now=NOW + 5 * M, actor="sam")
    assert rotated.token_changed_at == NOW + 5 * M
    assert rotated.created_at == NOW
    assert store.user_for_token(SAM) is None
    assert store.user_for_token(RIA) == rotated == store.get_user("sam")


def test_a_disabled_user_is_still_found_by_token_and_can_be_enabled_again(store: Store) -> None:
    add(store)
    off = store.set_user_disabled("sam", disabled=True, now=NOW, actor="admin")
    assert off.disabled
    # The store finds the user; refusing a disabled one is identity.authenticate's job,
    # so that it can say "disabled" rather than "not a valid token".
    assert store.user_for_token(SAM) == off
    on = store.set_user_disabled("sam", disabled=False, now=NOW + M, actor="admin")
    assert not on.disabled
    assert store.get_user("sam") == on


def test_every_change_is_logged_with_who_and_when_and_never_a_token_or_hash(
    store: Store, database_url: str
) -> None:
    add(store)
    store.set_user_token("sam", token_hash=RIA, now=NOW + M, actor="sam")
    store.set_user_disabled("sam", disabled=True, now=NOW + 2 * M, actor="admin")
    store.set_user_disabled("sam", disabled=False, now=NOW + 3 * M, actor="admin")
    rows = user_log(store, database_url)
    text = repr(rows)
    assert SAM not in text
    assert RIA not in text
    assert "comms_" not in text
    actions = [next(v for v in row if str(v).startswith("user.")) for row in rows]
    assert actions == ["user.added", "user.token-rotated", "user.disabled", "user.enabled"]
    assert [row for row in rows if "sam" in row and "admin" in row and "imoc" in row]
    assert len(rows) == 4


def test_a_failed_transaction_adds_no_user(store: Store) -> None:
    def half_done() -> None:
        with store.transaction():
            add(store)
            raise RuntimeError("lost half-way")

    with pytest.raises(RuntimeError):
        half_done()
    assert store.list_users() == []
    assert store.user_for_token(SAM) is None


def test_users_outlive_the_handle(store: Store, reopen: Callable[[], Store]) -> None:
    add(store)
    store.set_user_token("sam", token_hash=RIA, now=NOW + M, actor="sam")
    again = reopen()
    assert again.user_for_token(RIA) == store.get_user("sam")
    assert again.get_user("sam").token_changed_at == NOW + M


def test_the_session_key_is_made_once_and_the_same_for_every_handle(
    store: Store, reopen: Callable[[], Store]
) -> None:
    handles = [reopen() for _ in range(4)]
    keys: list[bytes] = []
    barrier = threading.Barrier(len(handles))

    def ask(handle: Store) -> None:
        barrier.wait()
        keys.append(handle.session_key())

    threads = [threading.Thread(target=ask, args=(h,)) for h in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == len(handles)
    assert len(set(keys)) == 1
    key = keys[0]
    assert isinstance(key, bytes)
    assert len(key) >= 32
    assert store.session_key() == key
    assert reopen().session_key() == key


def test_ending_a_users_sessions_moves_their_session_epoch_on_and_is_logged(
    store: Store, database_url: str, reopen: Callable[[], Store]
) -> None:
    """Signing out ends every session of the user (issue 9): the epoch sessions carry
    moves on, on every handle at once, and stays moved on."""
    add(store)
    add(store, "ria", Role.SIRT, RIA)
    assert store.get_user("sam").session_epoch == 0
    ended = store.end_user_sessions("sam", now=NOW + M, actor="sam")
    assert ended.session_epoch == 1
    assert ended == store.get_user("sam") == reopen().get_user("sam")
    assert store.end_user_sessions("sam", now=NOW + M, actor="sam").session_epoch == 2
    assert store.get_user("ria").session_epoch == 0
    assert store.user_for_token(SAM) == store.get_user("sam")
    with pytest.raises(NotFoundError, match="no user 'nobody'; see them with: comms users"):
        store.end_user_sessions("nobody", now=NOW, actor="nobody")
    rows = user_log(store, database_url)
    actions = [next(v for v in row if str(v).startswith("user.")) for row in rows]
    assert actions == ["user.added", "user.added", "user.signed-out", "user.signed-out"]


def test_disabling_enabling_and_rotating_end_sessions_too(store: Store) -> None:
    """Each moves the epoch on, even at one and the same ``now`` (a pinned clock), so that
    enabling a user again never brings back the sessions they had before."""
    add(store)
    changed = [
        store.get_user("sam"),
        store.set_user_disabled("sam", disabled=True, now=NOW, actor="admin"),
        store.set_user_disabled("sam", disabled=False, now=NOW, actor="admin"),
        store.set_user_token("sam", token_hash=RIA, now=NOW, actor="sam"),
        store.set_user_token("sam", token_hash=SAM, now=NOW, actor="sam"),
    ]
    assert [u.session_epoch for u in changed] == [0, 1, 2, 3, 4]
    assert store.get_user("sam").session_epoch == 4
