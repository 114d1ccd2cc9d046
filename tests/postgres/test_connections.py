"""How a PostgreSQL store uses connections: one for a one-shot command (no pool, no pool
threads), a pool once threads need several at once (never more than ``POOL_SIZE``), and
an idle connection checked before it is used again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from comms.adapters import postgres_store
from comms.adapters.postgres_store import POOL_SIZE, PostgresStore
from tests.contract.support import open_incident
from tests.postgres.conftest import comms

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)

# Runs one command in this process, then says whether the pool was ever imported.
ONE_COMMAND = textwrap.dedent(
    """
    import sys
    from comms.cli import cli
    try:
        cli.main(sys.argv[1:], prog_name="comms", standalone_mode=False)
    finally:
        print("pool imported:", "psycopg_pool" in sys.modules, file=sys.stderr)
    """
)


def named(url: str) -> tuple[str, str]:
    """``url`` with an application name of its own, and that name."""
    name = f"comms-test-{uuid.uuid4().hex[:12]}"
    return f"{url}&application_name={name}", name


def backends(name: str) -> int:
    """How many server sessions are open under application name ``name``."""
    with psycopg.connect(os.environ["COMMS_TEST_POSTGRES_URL"], autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def settled_backends(name: str, expected: int, seconds: float = 5.0) -> int:
    """``backends(name)`` once it is ``expected`` or ``seconds`` have passed: a server
    session leaves pg_stat_activity a moment after its client hung up, not at once."""
    deadline = time.monotonic() + seconds
    while (found := backends(name)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_a_one_shot_command_never_imports_or_starts_the_pool(database: str) -> None:
    comms("tenants", "add", "acme", "--name", "Acme Corp")
    comms("incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "Sign-in")
    draft = ["draft", "investigation-start", "--incident", "INC-1", "--set", "impact=Slow."]
    done = subprocess.run(
        [sys.executable, "-c", ONE_COMMAND, *draft],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "draft 1 for INC-1" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "pool imported: False"


def test_one_thread_uses_one_connection(database: str) -> None:
    url, name = named(database)
    with PostgresStore(url) as store:
        open_incident(store)
        with store.transaction():
            store.append_event("INC-1", type="note", actor="gus", now=NOW, data={})
            store.get_incident("INC-1")
        assert store.events("INC-1")[-1].type == "note"
        assert backends(name) == 1


def test_threads_at_once_share_a_pool_of_at_most_pool_size(database: str) -> None:
    url, name = named(database)
    seen: list[int] = []
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            seen.append(backends(name))
            time.sleep(0.02)

    with PostgresStore(url) as store:
        open_incident(store)
        errors: list[BaseException] = []

        def note(n: int) -> None:
            try:
                with store.transaction():
                    store.append_event("INC-1", type=f"note.{n}", actor="gus", now=NOW, data={})
                    time.sleep(0.5)  # holds its connection, so that the others need more
            except BaseException as exc:
                errors.append(exc)

        watcher = threading.Thread(target=count)
        watcher.start()
        writers = [threading.Thread(target=note, args=(n,)) for n in range(2 * POOL_SIZE)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(60)
        done.set()
        watcher.join()
        assert errors == []
        types = {e.type for e in store.events("INC-1")}
        assert {f"note.{n}" for n in range(2 * POOL_SIZE)} <= types
        assert max(seen) == POOL_SIZE
        assert store.get_incident("INC-1").ref == "INC-1"  # after the rush, as before
    assert settled_backends(name, 0) == 0  # close() closed them all


def test_an_idle_connection_is_checked_and_replaced_when_it_was_lost(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_store, "IDLE_CHECK", 0.0)  # every use comes after idling
    url, name = named(database)
    with PostgresStore(url) as store:
        open_incident(store)
        with psycopg.connect(os.environ["COMMS_TEST_POSTGRES_URL"], autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
        assert store.get_incident("INC-1").ref == "INC-1"
        assert backends(name) == 1
