"""The store backends the contract suite runs on.

Each backend gives one test a fresh, empty database as a ``COMMS_DATABASE_URL``; the suite
opens it through the composition root (``comms.bootstrap.open_store`` and
``open_alert_state``), exactly as a command does.  A backend that needs a server names the
environment variable holding its URL and runs only where it is set.  PostgreSQL joins as
one more entry, e.g.::

    "postgresql": Backend(fresh_postgres_schema, env="COMMS_TEST_POSTGRES_URL"),
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Backend:
    """How to get a fresh database for one test, and what the backend needs to run."""

    fresh: Callable[[Path], AbstractContextManager[str]]
    env: str | None = None  # runs only when this variable is set


@contextmanager
def fresh_sqlite(tmp_path: Path) -> Iterator[str]:
    """A new SQLite file in the test's folder."""
    yield f"sqlite:///{tmp_path}/c.db"


@contextmanager
def fresh_memory(tmp_path: Path) -> Iterator[str]:
    """A memory store under a name no other test uses, forgotten afterwards."""
    from comms.adapters.memory_store import discard

    name = f"contract-{uuid.uuid4().hex}"
    try:
        yield f"memory://{name}"
    finally:
        discard(name)


BACKENDS: dict[str, Backend] = {
    "sqlite": Backend(fresh_sqlite),
    "memory": Backend(fresh_memory),
}
