"""Managing users at the same moment from two handles on one store (two connections, as
two machines would have), on every backend, many rounds: two people bootstrapping an
empty store make one admin, and two admins disabling each other leave one active.

Each round starts both calls together (a barrier) on a store without users; what
``comms users`` decides (``comms.identity``) must hold however the two interleave.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from comms import identity
from comms.bootstrap import open_store, parse_database_url
from comms.errors import AuthError, CommsError, RefusedError
from comms.models import Role
from comms.ports import Store
from tests.contract.backends import BACKENDS
from tests.contract.support import NOW

ROUNDS = 25


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend's name (one that needs a server runs only where it is set)."""
    env = BACKENDS[request.param].env
    if env is not None and not os.environ.get(env):
        pytest.skip(f"{env} is not set")
    return str(request.param)


def at_once(calls: list[Callable[..., Any]]) -> list[Any]:
    """Run ``calls(now=NOW)`` in threads released together; each one's result or its
    ``CommsError``."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(n: int) -> None:
        start.wait(10)
        try:
            results[n] = calls[n](now=NOW)
        except CommsError as exc:
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@contextlib.contextmanager
def two_handles(url: str) -> Iterator[tuple[Store, Store]]:
    """Two handles on the store at ``url``, its users (and their log) removed first."""
    parsed = parse_database_url(url)
    if parsed.scheme == "sqlite":
        with contextlib.closing(sqlite3.connect(parsed.path)) as db, db:
            db.execute("DELETE FROM users")
            db.execute("DELETE FROM user_log")
    elif parsed.scheme == "postgresql":
        import psycopg

        with psycopg.connect(url) as db:
            db.execute("TRUNCATE users, user_log")
    else:
        from comms.adapters.memory_store import discard

        discard(parsed.target)  # the next open starts empty
    first, second = open_store(url), open_store(url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_two_people_bootstrapping_an_empty_store_make_one_admin(
    backend: str, tmp_path: Path
) -> None:
    with BACKENDS[backend].fresh(tmp_path) as url:
        open_store(url).close()  # made (SQLite: created and migrated) before the rounds
        for n in range(ROUNDS):
            with two_handles(url) as (first, second):
                results = at_once(
                    [
                        partial(identity.add_user, first, name="ana", role="admin", token=None),
                        partial(identity.add_user, second, name="bob", role="admin", token=None),
                    ]
                )
                made = [r for r in results if isinstance(r, identity.Issued)]
                refused = [r for r in results if isinstance(r, AuthError)]
                assert (len(made), len(refused)) == (1, 1), (n, results)
                assert "needs a token" in str(refused[0])
                assert [u.name for u in first.list_users()] == [made[0].user.name]


def test_two_admins_disabling_each_other_leave_one_active(backend: str, tmp_path: Path) -> None:
    with BACKENDS[backend].fresh(tmp_path) as url:
        open_store(url).close()
        for n in range(ROUNDS):
            with two_handles(url) as (first, second):
                ana = identity.add_user(first, name="ana", role="admin", token=None, now=NOW)
                bob = identity.add_user(first, name="bob", role="admin", token=ana.token, now=NOW)
                results = at_once(
                    [
                        partial(
                            identity.set_disabled, first, "bob", disabled=True, token=ana.token
                        ),
                        partial(
                            identity.set_disabled, second, "ana", disabled=True, token=bob.token
                        ),
                    ]
                )
                done = [r for r in results if not isinstance(r, CommsError)]
                refused = [r for r in results if isinstance(r, AuthError | RefusedError)]
                assert (len(done), len(refused)) == (1, 1), (n, results)
                active = [u.name for u in first.list_users() if not u.disabled]
                assert len(active) == 1, (n, results)
                assert first.get_user(active[0]).role is Role.ADMIN
