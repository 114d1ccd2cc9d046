"""``comms db``: the database schema.  ``migrate`` brings it to this comms' version,
``status`` says which version the database has and whether it is current.

A PostgreSQL database is migrated only by ``comms db migrate``: a team upgrades the schema
it shares on purpose, once, and every other command refuses a schema older or newer than
its own in one line.  A SQLite file migrates itself when a command opens it, so there both
commands just report its version.  The database URL is printed with its password masked.
"""

from __future__ import annotations

import re
import sys
from typing import Any, NamedTuple, Protocol

import click

from comms.commands import common
from comms.commands.common import FORMAT_OPTION, emit_json
from comms.errors import EXIT_OK, EXIT_OPERATIONAL


class _Versioned(Protocol):
    """What a store with versioned migrations run by hand offers (``PostgresStore``)."""

    def schema_version(self) -> tuple[int, int]: ...

    def migrate(self) -> tuple[int, int]: ...


class Schema(NamedTuple):
    """A database's schema as ``comms db`` reports it; versions are None for a store that
    keeps none (memory)."""

    backend: str
    database: str
    version: int | None
    expected: int | None
    migrated_from: int | None = None

    @property
    def current(self) -> bool:
        """The stored version is the one this comms uses."""
        return self.version == self.expected

    def verdict(self) -> str:
        """The version and what to do about it, in a few words."""
        if self.version is None:
            return "none kept (a memory store lives as long as its process)"
        if self.current:
            return f"version {self.version} (current)"
        if self.version == 0:
            return f"none yet (this comms uses version {self.expected}): run comms db migrate"
        if self.version < (self.expected or 0):
            return (
                f"version {self.version}, older than this comms ({self.expected}): "
                "run comms db migrate"
            )
        return f"version {self.version}, newer than this comms ({self.expected}): upgrade comms"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with ``current``."""
        return {**self._asdict(), "current": self.current}


def mask(url: str) -> str:
    """``url`` with any password (``user:secret@`` or ``password=secret``) shown as ***."""
    masked = re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", masked)


def schema(*, migrate: bool) -> Schema:
    """The configured database's schema, migrated first when ``migrate`` is set."""
    from comms.bootstrap import parse_database_url

    rt = common.runtime()
    url = rt.settings.database_url
    backend = parse_database_url(url).scheme
    # Not authenticated: the schema is nobody's data, and the users table a token is
    # checked against may not exist before the first migration.
    store: Any = rt.raw_store  # SQLite migrates itself here; PostgreSQL only connects
    if callable(getattr(store, "schema_version", None)):
        versioned: _Versioned = store
        if migrate:
            before, _ = versioned.migrate()
            return Schema(backend, mask(url), *versioned.schema_version(), migrated_from=before)
        return Schema(backend, mask(url), *versioned.schema_version())
    connection = getattr(store, "connection", None)
    if connection is None:
        return Schema(backend, mask(url), None, None)
    # A SQLite store that opened is current: an older file was just migrated, and a file
    # newer than this comms refused to open.
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    return Schema(backend, mask(url), version, version)


def _print(found: Schema, fmt: str) -> None:
    if fmt == "json":
        emit_json(found.to_dict())
        return
    click.echo(f"backend   {found.backend}")
    click.echo(f"database  {found.database}")
    click.echo(f"schema    {found.verdict()}")


@click.group()
def db() -> None:
    """Migrate and check the database schema (PostgreSQL: comms db migrate).

    \b
    Example:
      COMMS_DATABASE_URL=postgresql://comms@db.example/comms comms db migrate
      comms db status
    """


@db.command("migrate")
@FORMAT_OPTION
def migrate_command(fmt: str) -> None:
    """Bring the database schema to this comms' version.

    PostgreSQL: applies each missing migration, all in one transaction; two runs at once
    apply each once.  Run it after installing a comms whose schema is newer, before the
    other commands (they refuse an older schema until then).  SQLite migrates itself when
    opened; this only reports its version.  Exit 3 when the schema is newer than this
    comms.

    \b
    Example:
      comms db migrate
    """
    found = schema(migrate=True)
    if fmt != "json" and found.migrated_from not in (None, found.version):
        click.echo(f"migrated from schema version {found.migrated_from}")
    elif fmt != "json" and found.backend == "sqlite":
        click.echo("nothing to do: a SQLite store migrates itself when a command opens it")
    _print(found, fmt)
    sys.exit(_code(found))


@db.command("status")
@FORMAT_OPTION
def status_command(fmt: str) -> None:
    """Show the backend, the database (password masked) and its schema version.

    Exit 0 when the schema is the one this comms uses, 3 when it must be migrated
    (comms db migrate) or is newer than this comms (upgrade comms).

    \b
    Example:
      comms db status
      comms db status --format json
    """
    found = schema(migrate=False)
    _print(found, fmt)
    sys.exit(_code(found))


def _code(found: Schema) -> int:
    """0 when the schema is current (or the store keeps none), else 3."""
    return EXIT_OK if found.current or found.version is None else EXIT_OPERATIONAL
