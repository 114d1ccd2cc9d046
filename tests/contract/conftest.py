"""Fixtures of the contract suite: every store test runs once per backend in ``BACKENDS``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from comms.bootstrap import open_alert_state, open_store
from comms.ports import AlertState, Store
from tests.contract.backends import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend, as a ``COMMS_DATABASE_URL``."""
    backend = BACKENDS[request.param]
    if backend.env is not None and not os.environ.get(backend.env):
        pytest.skip(f"{backend.env} is not set")
    with backend.fresh(tmp_path) as url:
        yield url


@pytest.fixture
def reopen(database_url: str) -> Iterator[Callable[[], Store]]:
    """``reopen()``: another handle on the same database (closed after the test)."""
    opened: list[Store] = []

    def open_again() -> Store:
        opened.append(open_store(database_url))
        return opened[-1]

    yield open_again
    for handle in opened:
        handle.close()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The backend's store, opened as ``comms`` opens it."""
    opened = open_store(database_url)
    yield opened
    opened.close()


@pytest.fixture
def alerts(store: Store, database_url: str) -> Iterator[AlertState]:
    """The cadence watcher's state in the same database as ``store``."""
    opened = open_alert_state(database_url)
    yield opened
    opened.close()
