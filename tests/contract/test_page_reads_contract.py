"""The store reads a review page leans on: ``tenant_names`` (what the send gate checks a
text against), ``pinned`` (a page's reads on one connection), and the clock rows' pubsec
flag read from the tenants' stored data.

Every test runs once per backend (``backends.BACKENDS``) through ``comms.bootstrap``; the
ones that write a tenant's data by hand (as an older version or a person might have) run
where the data can be written so, the SQL stores.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from comms.errors import NotFoundError
from comms.models import Severity, Tenant
from comms.ports import Store
from tests.contract.support import NOW, M, open_incident

# -- tenant_names -----------------------------------------------------------------------


def test_tenant_names_are_each_tenants_name_then_aliases_by_id(store: Store) -> None:
    assert store.tenant_names() == {}
    store.put_tenant(Tenant(id="zeta", name="Zeta Systems"))
    store.put_tenant(Tenant(id="acme", name="Acme Corp", aliases=["ACME", "Acme Inc."]))
    store.put_tenant(Tenant(id="beta", name="Beta", aliases=[], pubsec=True))
    names = store.tenant_names()
    assert names == {
        "acme": ("Acme Corp", "ACME", "Acme Inc."),
        "beta": ("Beta",),
        "zeta": ("Zeta Systems",),
    }
    assert list(names) == [t.id for t in store.list_tenants()]
    assert names == {t.id: (t.name, *t.aliases) for t in store.list_tenants()}
    store.put_tenant(Tenant(id="acme", name="Acme Corporation"))  # replaced whole
    assert store.tenant_names()["acme"] == ("Acme Corporation",)


# The backends whose tenant rows a test can write by hand (the memory store holds only what
# put_tenant wrote): tests of such rows run on these alone.
ON_DISK = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def write_tenant_data(store: Store, database_url: str, tenant_id: str, data: Any) -> None:
    """Store ``data`` (JSON text as given, or a value dumped) as tenant ``tenant_id``'s, by
    hand, past the store's checks (the backends with files or tables: ``WRITTEN``)."""
    text = data if isinstance(data, str) else json.dumps(data)
    if database_url.startswith("postgresql"):
        with psycopg.connect(database_url, autocommit=True) as db:
            db.execute(
                "INSERT INTO tenants (id, name, data, updated_at) "
                "VALUES (%s, 'x', %s::json, now()) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                (tenant_id, text),
            )
    elif database_url.startswith("sqlite"):
        db = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            db.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,))
            db.execute(
                "INSERT INTO tenants (id, name, data, updated_at) "
                "VALUES (?, 'x', ?, '2026-01-01T00:00:00Z')",
                (tenant_id, text),
            )
        finally:
            db.close()
    else:
        raise AssertionError(f"no way to write tenant data by hand into {database_url}")


@pytest.mark.parametrize(
    "data",
    [
        {"id": "odd", "name": 42},
        {"id": "odd", "name": "Odd", "aliases": ["fine", 7]},
        {"id": "odd", "name": "Odd", "aliases": "not a list"},
        {"id": "odd"},
        ["not", "an", "object"],
    ],
    ids=["name-a-number", "an-alias-a-number", "aliases-a-text", "no-name", "a-list"],
)
@ON_DISK
def test_a_tenant_whose_names_look_odd_reads_as_reading_it_whole_does(
    store: Store, database_url: str, data: Any
) -> None:
    """Never a forbidden list quietly short of a tenant's names: what ``get_tenant``
    refuses, ``tenant_names`` refuses with the same error; what it reads, the same."""
    store.put_tenant(Tenant(id="acme", name="Acme Corp"))
    write_tenant_data(store, database_url, "odd", data)
    try:
        whole = store.get_tenant("odd")
    except Exception as exc:
        with pytest.raises(type(exc)):
            store.tenant_names()
    else:
        assert store.tenant_names()["odd"] == (whole.name, *whole.aliases)


@ON_DISK
def test_tenant_names_reads_aliases_written_by_hand(store: Store, database_url: str) -> None:
    write_tenant_data(
        store, database_url, "odd", {"id": "odd", "name": "Odd Ltd", "aliases": ["Odd", ""]}
    )
    write_tenant_data(store, database_url, "old", {"id": "old", "name": "Old Co"})  # no key
    assert store.tenant_names() == {"odd": ("Odd Ltd", "Odd", ""), "old": ("Old Co",)}
    assert store.tenant_names()["odd"] == (lambda t: (t.name, *t.aliases))(store.get_tenant("odd"))


# -- events of some types ---------------------------------------------------------------


def test_events_of_some_types_come_in_log_order_and_of_that_incident_only(store: Store) -> None:
    ref = open_incident(store)
    other = open_incident(store, title="Another")
    kinds = ["note.a", "review.submitted", "note.b", "review.submitted", "note.a"]
    for n, kind in enumerate(kinds):
        store.append_event(ref, type=kind, actor="gus", now=NOW + n * M, data={"n": n})
        store.append_event(other, type=kind, actor="gus", now=NOW + n * M, data={"n": -n})
    every = store.events(ref)
    submitted = store.events(ref, types=("review.submitted",))
    assert submitted == [e for e in every if e.type == "review.submitted"]
    assert [e.data["n"] for e in submitted] == [1, 3]
    notes = store.events(ref, types=["note.a", "note.b", "note.a"])
    assert notes == [e for e in every if e.type.startswith("note.")]
    assert store.events(ref, types=()) == every
    assert store.events(ref, types=("nothing",)) == []
    assert store.events("INC-404", types=("note.a",)) == []


# -- pubsec, as the clock rows read it from the tenants ----------------------------------


@pytest.mark.parametrize(
    ("flag", "pubsec"),
    [
        (True, True),
        (False, False),
        (None, False),
        (1, True),
        (0, False),
        (0.5, True),
        (-0.0, False),
        ("yes", True),
        ("", False),
        ([], False),
        ([0], True),
        ({}, False),
        ({"a": 1}, True),
    ],
)
@ON_DISK
def test_a_tenants_pubsec_flag_counts_as_python_reads_its_json_value(
    store: Store, database_url: str, flag: Any, pubsec: bool
) -> None:
    write_tenant_data(store, database_url, "odd", {"id": "odd", "name": "Odd", "pubsec": flag})
    open_incident(store, tenants=["odd"], severity=Severity.S2)
    assert [r.pubsec for r in store.clock_rows()] == [pubsec]


@pytest.mark.parametrize("data", ['["a", "list"]', '"a text"', "7", '{"id": "odd"}'])
@ON_DISK
def test_a_tenant_whose_data_is_no_object_counts_as_pubsec(
    store: Store, database_url: str, data: str
) -> None:
    """Unreadable: its incidents' data stays out of alerts (an object without the flag is
    readable, and not pubsec)."""
    write_tenant_data(store, database_url, "odd", data)
    store.put_tenant(Tenant(id="acme", name="Acme Corp"))
    open_incident(store, tenants=["acme"])
    open_incident(store, tenants=["acme", "odd"])
    assert [r.pubsec for r in store.clock_rows()] == [False, data != '{"id": "odd"}']


def test_the_clock_rows_of_many_refs_read_pubsec_per_incident(store: Store) -> None:
    store.put_tenant(Tenant(id="acme", name="Acme Corp"))
    store.put_tenant(Tenant(id="fed", name="Fed Agency", pubsec=True))
    refs = [
        open_incident(store, tenants=["fed"] if n % 3 == 0 else ["acme"], title=f"n{n}")
        for n in range(12)
    ]
    odd = ['He said "hi"', "back\\slash", "{braces,commas}", "NULL"]
    for ref in odd:
        open_incident(store, ref=ref, tenants=["acme", "fed"])
    rows = store.clock_rows(refs=[*reversed(refs), *odd, "INC-404"])
    assert [r.ref for r in rows] == [*refs, *odd]  # oldest first; an unknown ref is none
    assert [r.pubsec for r in rows] == [n % 3 == 0 for n in range(12)] + [True] * len(odd)
    assert store.clock_rows(refs=[]) == []


# -- pinned -----------------------------------------------------------------------------


def test_inside_pinned_each_change_commits_and_reads_see_it(
    store: Store, reopen: Callable[[], Store]
) -> None:
    """Pinning shares a connection; it is no transaction: each change inside lands on
    its own (another handle sees it before the block ends), ``transaction()`` inside
    still joins changes and still rolls back, and a read after a failure works."""
    other = reopen()
    with store.pinned():
        ref = open_incident(store)
        assert other.get_incident(ref).title == "Sign-in failures"
        with store.pinned():  # nested: joins the outer block
            store.put_tenant(Tenant(id="acme", name="Acme Corp"))
        assert other.tenant_names() == {"acme": ("Acme Corp",)}
        with store.transaction():
            store.append_event(ref, type="note.one", actor="gus", now=NOW, data={})
            store.append_event(ref, type="note.two", actor="gus", now=NOW + M, data={})
            assert store.events(ref)[-1].type == "note.two"
        assert [e.type for e in other.events(ref)][-2:] == ["note.one", "note.two"]

        def lose_a_note() -> None:
            with store.transaction():
                store.append_event(ref, type="note.lost", actor="gus", now=NOW, data={})
                store.get_tenant("nobody")

        with pytest.raises(NotFoundError):
            lose_a_note()
        assert "note.lost" not in [e.type for e in store.events(ref)]
        assert "note.lost" not in [e.type for e in other.events(ref)]
        assert store.get_incident(ref).ref == ref
    assert store.tenant_names() == {"acme": ("Acme Corp",)}


def test_threads_pin_at_once_and_each_sees_every_change(store: Store) -> None:
    store.put_tenant(Tenant(id="acme", name="Acme Corp"))
    ref = open_incident(store)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def page(n: int) -> None:
        try:
            with store.pinned():
                start.wait(10)
                for k in range(5):
                    store.append_event(ref, type=f"note.{n}.{k}", actor="gus", now=NOW, data={})
                    assert store.tenant_names() == {"acme": ("Acme Corp",)}
                    assert f"note.{n}.{k}" in [e.type for e in store.events(ref)]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=page, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert {f"note.{n}.{k}" for n in range(6) for k in range(5)} <= {
        e.type for e in store.events(ref)
    }


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # one pool
def test_a_pinned_thread_keeps_its_connection_to_the_end_of_the_block(database_url: str) -> None:
    """PostgreSQL: the first connection, taken by a pinning thread's first read, stays
    with it: another thread reading meanwhile needs a connection of its own."""
    from comms.adapters.postgres_store import PostgresStore

    name = f"comms-test-{uuid.uuid4().hex[:12]}"

    def backends() -> int:
        with psycopg.connect(os.environ["COMMS_TEST_POSTGRES_URL"], autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchone()
        assert row is not None
        return int(row[0])

    with PostgresStore(f"{database_url}&application_name={name}") as store:
        ref = open_incident(store)
        assert backends() == 1
        inside, leave = threading.Event(), threading.Event()
        seen: list[str] = []

        def page() -> None:
            with store.pinned():
                seen.append(store.get_incident(ref).ref)
                inside.set()
                leave.wait(10)
                seen.append(store.get_incident(ref).ref)

        thread = threading.Thread(target=page)
        thread.start()
        assert inside.wait(10)
        assert store.get_incident(ref).ref == ref  # the first connection is the page's
        assert backends() == 2
        leave.set()
        thread.join(10)
        assert seen == [ref, ref]
        for _ in range(3):  # given back at the end of the block: no third one
            with store.pinned():
                store.get_incident(ref)
                store.tenant_names()
        assert backends() == 2
