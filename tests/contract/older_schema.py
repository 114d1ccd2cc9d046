"""A database made at an older schema version, holding one tenant, then brought to this
comms' version as a user would: how a migration that adds tables is tested on each backend.

SQLite migrates itself when opened; PostgreSQL refuses the older schema until ``comms db
migrate`` (``PostgresStore.migrate``); a memory store has no schema.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from comms.bootstrap import open_store, parse_database_url
from comms.errors import StoreError
from comms.models import Tenant
from comms.ports import Store
from tests.contract.backends import postgres_schema

TENANT = Tenant(id="acme", name="Acme Corp")
INSERT_TENANT = "INSERT INTO tenants (id, name, data, updated_at) VALUES ({0}, {0}, {0}, {0})"


def version_before(migrations: Sequence[str], marker: str) -> int:
    """The schema version just before the migration whose SQL holds ``marker``."""
    return next(n for n, sql in enumerate(migrations) if marker in sql)


@contextlib.contextmanager
def upgraded_from_before(database_url: str, marker: str, tmp_path: Path) -> Iterator[Store]:
    """A store of ``database_url``'s backend (a database of its own) made at the version
    before the migration holding ``marker``, with :data:`TENANT` stored, then upgraded;
    closed (and dropped) afterwards."""
    scheme = parse_database_url(database_url).scheme
    row = (TENANT.id, TENANT.name, json.dumps(TENANT.to_dict()), "2026-11-27T14:00:00+00:00")
    with contextlib.ExitStack() as stack:
        if scheme == "sqlite":
            from comms.adapters.sqlite_store import MIGRATIONS

            version = version_before(MIGRATIONS, marker)
            path = tmp_path / "older.db"
            with contextlib.closing(sqlite3.connect(path)) as db:
                for sql in MIGRATIONS[:version]:
                    db.executescript(sql)
                db.execute(INSERT_TENANT.format("?"), row)
                db.execute(f"PRAGMA user_version = {version}")
                db.commit()
            url = f"sqlite:///{path}"
        elif scheme == "postgresql":
            import psycopg

            from comms.adapters.postgres_store import MIGRATIONS, SCHEMA_VERSION, PostgresStore

            version = version_before(MIGRATIONS, marker)
            url = stack.enter_context(postgres_schema(migrate=False))
            with PostgresStore(url) as making:
                making.migrate(to=version)
            with psycopg.connect(url, autocommit=True) as db:
                db.execute(INSERT_TENANT.format("%s"), row)
            older = stack.enter_context(contextlib.closing(open_store(url)))
            with pytest.raises(StoreError, match="run: comms db migrate"):
                older.list_tenants()
            with PostgresStore(url) as migrating:
                assert migrating.migrate() == (version, SCHEMA_VERSION)
        else:
            url = database_url
            open_store(url).put_tenant(TENANT)
        upgraded = stack.enter_context(contextlib.closing(open_store(url)))
        assert [t.id for t in upgraded.list_tenants()] == [TENANT.id]
        yield upgraded
