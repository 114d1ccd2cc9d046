"""The store backends the contract suite runs on.

Each backend gives one test a fresh, empty database as a ``COMMS_DATABASE_URL``; the suite
opens it through the composition root (``comms.bootstrap.open_store`` and
``open_alert_state``), exactly as a command does.  A backend that needs a server names the
environment variable holding its URL and runs only where it is set.  PostgreSQL joins as
one more entry: ``postgresql`` gives each test its own schema in the database named by
``COMMS_TEST_POSTGRES_URL`` (created, migrated, and dropped afterwards).
"""

from __future__ import annotations

import os
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


def schema_url(base: str, schema: str) -> str:
    """``base`` with its connections' search_path set to ``schema`` (libpq ``options``)."""
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


@contextmanager
def postgres_schema(*, migrate: bool = True) -> Iterator[str]:
    """A new schema in the ``COMMS_TEST_POSTGRES_URL`` database, as a database URL whose
    connections use it; migrated to this comms' version unless ``migrate`` is False, and
    dropped with everything in it afterwards."""
    import psycopg

    base = os.environ["COMMS_TEST_POSTGRES_URL"]
    schema = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = schema_url(base, schema)
    try:
        if migrate:
            from comms.adapters.postgres_store import PostgresStore

            with PostgresStore(url) as store:
                store.migrate()
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute("SET lock_timeout = '20s'")
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def fresh_postgres_schema(tmp_path: Path) -> Iterator[str]:
    """A schema of its own in the test PostgreSQL database, migrated."""
    with postgres_schema() as url:
        yield url


BACKENDS: dict[str, Backend] = {
    "sqlite": Backend(fresh_sqlite),
    "memory": Backend(fresh_memory),
    "postgresql": Backend(fresh_postgres_schema, env="COMMS_TEST_POSTGRES_URL"),
}
