"""The SQLite store on real files: migrations, WAL, bad files and paths, nothing lost on failure.

What every store does (tenants, incidents, drafts, the ledger, transactions) is the store
contract in ``tests/contract``, run on SQLite and the other backends; this module keeps what
is about SQLite files and ``COMMS_DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from foundation_support import NOW, fails, ok

from comms.adapters.sqlite_store import MIGRATIONS, SqliteStore
from comms.bootstrap import DatabaseURL, parse_database_url
from comms.errors import ConfigError, StoreError
from comms.models import MessageKind, Severity, Tenant

TABLES = {"tenants", "incidents", "drafts", "revisions", "events"}


def tables(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        db.close()
    return {r[0] for r in rows}


def pragma(path: Path, name: str) -> object:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        db.close()


def seed(store: SqliteStore) -> None:
    store.put_tenant(Tenant(id="acme", name="Acme Corp"))
    store.create_incident(
        title="Sign-in failures",
        severity=Severity.S1,
        tenants=["acme"],
        started_at=NOW,
        now=NOW,
        actor="gdcmoc",
    )
    store.add_revision(
        incident_ref="INC-1",
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="Update: x",
        body="Body\n",
        variables={"impact": "x"},
        author="gdcmoc",
        now=NOW,
    )


def test_migrates_from_empty_creating_folders(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "comms.db"
    with SqliteStore(path) as store:
        assert store.list_incidents() == []
    assert pragma(path, "user_version") == len(MIGRATIONS)
    assert tables(path) >= TABLES


def test_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "comms.db"
    SqliteStore(path).close()
    assert pragma(path, "journal_mode") == "wal"


def test_reopening_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "comms.db"
    with SqliteStore(path) as store:
        seed(store)
    db = sqlite3.connect(path)
    try:
        schema = sorted(db.execute("SELECT sql FROM sqlite_master").fetchall(), key=str)
    finally:
        db.close()
    for _ in range(3):
        with SqliteStore(path) as store:
            assert [i.ref for i in store.list_incidents()] == ["INC-1"]
            assert len(store.events("INC-1")) == 3
            assert store.get_draft(1).revision.number == 1
    db = sqlite3.connect(path)
    try:
        assert sorted(db.execute("SELECT sql FROM sqlite_master").fetchall(), key=str) == schema
    finally:
        db.close()
    assert pragma(path, "user_version") == len(MIGRATIONS)


def test_upgrades_a_first_version_database_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO tenants (id, name, data, updated_at) VALUES (?, ?, ?, ?)",
        (
            "acme",
            "Acme Corp",
            json.dumps({"id": "acme", "name": "Acme Corp"}),
            "2026-11-27T14:00:00Z",
        ),
    )
    db.commit()
    db.close()
    with SqliteStore(path) as store:
        assert [t.id for t in store.list_tenants()] == ["acme"]
        store.create_incident(
            title="t", severity=Severity.S2, tenants=["acme"], started_at=NOW, now=NOW, actor="a"
        )
    assert pragma(path, "user_version") == len(MIGRATIONS)


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with SqliteStore(path) as store:
        seed(store)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this comms") as caught:
        SqliteStore(path)
    assert "upgrade comms" in str(caught.value)
    assert pragma(path, "user_version") == len(MIGRATIONS) + 5
    fails(["incident", "list"], 3, "newer than this comms", env={"COMMS_DATABASE_URL": str(path)})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/var/lib/comms.db", DatabaseURL("sqlite", "/var/lib/comms.db")),
        ("  /var/lib/comms.db\n", DatabaseURL("sqlite", "/var/lib/comms.db")),
        ("rel/comms.db", DatabaseURL("sqlite", "rel/comms.db")),
        ("sqlite:////var/lib/comms.db", DatabaseURL("sqlite", "/var/lib/comms.db")),
        ("sqlite:///rel/comms.db", DatabaseURL("sqlite", "rel/comms.db")),
        ("sqlite://rel/comms.db", DatabaseURL("sqlite", "rel/comms.db")),
        ("SQLite:////var/lib/comms.db", DatabaseURL("sqlite", "/var/lib/comms.db")),
        ("memory://team", DatabaseURL("memory", "team")),
        ("memory://", DatabaseURL("memory", "default")),
    ],
)
def test_database_urls(url: str, expected: DatabaseURL) -> None:
    assert parse_database_url(url) == expected


def test_an_absolute_sqlite_url_names_its_file(tmp_path: Path) -> None:
    assert parse_database_url(f"sqlite:///{tmp_path}/c.db").path == tmp_path / "c.db"


@pytest.mark.parametrize("url", ["~/comms.db", "sqlite:///~/comms.db", "sqlite://~/comms.db"])
def test_a_home_folder_is_expanded(url: str) -> None:
    parsed = parse_database_url(url)
    assert parsed.path == Path.home() / "comms.db"
    assert parsed.path.is_absolute()


@pytest.mark.parametrize("url", ["mysql://db/comms", "MySQL://db/comms", "redis://cache"])
def test_an_unknown_scheme_is_a_config_error_naming_it(url: str) -> None:
    scheme = url.split(":")[0].lower()
    with pytest.raises(ConfigError, match=f"scheme '{scheme}' is not supported") as caught:
        parse_database_url(url)
    assert "sqlite://" in str(caught.value)  # and says what would work


@pytest.mark.parametrize("url", ["", "   ", "sqlite://", "sqlite:///"])
def test_a_url_naming_no_database_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"empty|names no file"):
        parse_database_url(url)


def test_an_unknown_scheme_is_one_clear_line_from_the_cli() -> None:
    fails(
        ["incident", "list"],
        3,
        "scheme 'mysql'",
        env={"COMMS_DATABASE_URL": "mysql://db/comms"},
    )


def test_sqlite_url_from_the_cli(tmp_path: Path, clock: object) -> None:
    path = tmp_path / "by-url.db"
    ok(
        ["tenants", "add", "acme", "--name", "Acme"],
        env={"COMMS_DATABASE_URL": f"sqlite:///{path}"},
    )
    with SqliteStore(path) as store:
        assert [t.id for t in store.list_tenants()] == ["acme"]


# -- bad files and paths ----------------------------------------------------------------


GARBAGE = b"this is not a database\x00\xff" * 300


def test_corrupt_file_is_one_line_exit_3_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "comms.db"
    path.write_bytes(GARBAGE)
    line = fails(["incident", "list"], 3, str(path), "not a readable comms database")
    assert "COMMS_DATABASE_URL" in line  # says what to do
    fails(["tenants", "add", "acme", "--name", "Acme"], 3, "not a readable comms database")
    assert path.read_bytes() == GARBAGE
    with pytest.raises(StoreError):
        SqliteStore(path)


def test_truncated_database_is_one_line_exit_3(tmp_path: Path, clock: object) -> None:
    path = tmp_path / "comms.db"
    ok(["tenants", "add", "acme", "--name", "Acme"])
    ok(["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "x"])
    data = path.read_bytes()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(data[:100] + b"\xde\xad\xbe\xef" * 600)  # header kept, pages smashed
    result = fails(["incident", "list"], 3)
    assert str(path) in result


def test_folder_under_a_regular_file_is_one_line_exit_3(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be\n")
    path = blocker / "sub" / "comms.db"
    fails(
        ["incident", "list"],
        3,
        "cannot create the folder",
        "COMMS_DATABASE_URL",
        env={"COMMS_DATABASE_URL": str(path)},
    )
    assert blocker.read_text() == "a file where the folder should be\n"


def test_database_path_that_is_a_folder_is_one_line_exit_3(tmp_path: Path) -> None:
    folder = tmp_path / "comms.db.d"
    folder.mkdir()
    fails(["incident", "list"], 3, str(folder), env={"COMMS_DATABASE_URL": str(folder)})
    fails(["tenants", "add", "acme", "--name", "Acme"], 3, env={"COMMS_DATABASE_URL": str(folder)})


def test_unreadable_when_wal_file_is_a_folder(tmp_path: Path, clock: object) -> None:
    """A WAL file that cannot be opened (here: a folder in its place) is an operational error."""
    path = tmp_path / "comms.db"
    ok(["tenants", "add", "acme", "--name", "Acme"])
    Path(f"{path}-wal").unlink(missing_ok=True)
    Path(f"{path}-wal").mkdir()
    fails(["incident", "list"], 3, str(path))


# -- nothing already stored is lost ------------------------------------------------------


def snapshot(path: Path) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(path)
    try:
        return {
            t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in sorted(TABLES)
        }
    finally:
        db.close()


def test_failed_commands_change_nothing(tmp_path: Path, clock: object) -> None:
    path = tmp_path / "comms.db"
    ok(["tenants", "add", "acme", "--name", "Acme Corp"])
    ok(["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "Sign-in failures"])
    ok(["draft", "update", "--incident", "INC-1", "--set", "impact=x", "--set", "actions=y"])
    ok(["incident", "set", "INC-1", "--status", "mitigating"])
    before = snapshot(path)
    failing = [
        (["draft", "update", "--incident", "INC-1", "--set", "impact="], 2),  # blank required value
        (["draft", "update", "--incident", "INC-1", "--set", "colour=blue"], 2),
        (["draft", "update", "--incident", "INC-1", "--set", "eta=tomorrowish"], 2),
        (["draft", "update", "--incident", "INC-404", "--set", "impact=x"], 2),
        (["draft", "maintenance-planned", "--incident", "INC-1"], 2),
        (["incident", "open", "--tenant", "nobody", "--severity", "S1", "--title", "x"], 2),
        (
            [
                "incident",
                "open",
                "--tenant",
                "acme",
                "--severity",
                "S1",
                "--title",
                "x",
                "--ref",
                "INC-1",
            ],
            2,
        ),
        (["incident", "set", "INC-1", "--status", "investigating"], 2),
        (["incident", "set", "INC-1", "--status", "resolved"], 2),
        (["incident", "set", "INC-1", "--status", "mitigating"], 2),
        (["drafts", "show", "99"], 2),
        (["timeline", "INC-9"], 2),
    ]
    for args, code in failing:
        fails(args, code)
    assert snapshot(path) == before


def test_foreign_database_with_a_clashing_table_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other-app.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE tenants (who TEXT)")
    db.execute("INSERT INTO tenants VALUES ('someone else''s row')")
    db.commit()
    db.close()
    fails(["incident", "list"], 3, str(path), env={"COMMS_DATABASE_URL": str(path)})
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT * FROM tenants").fetchall() == [("someone else's row",)]
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()
    assert names == {"tenants"}  # the failed migration rolled back whole


def test_empty_file_becomes_a_store(tmp_path: Path, clock: object) -> None:
    path = tmp_path / "comms.db"
    path.write_bytes(b"")
    ok(["tenants", "add", "acme", "--name", "Acme"])
    assert pragma(path, "user_version") == len(MIGRATIONS)


@pytest.mark.parametrize("action", ["ROLLBACK", "ABORT"])
def test_failed_write_is_one_line_and_stores_nothing(
    tmp_path: Path, clock: object, action: str
) -> None:
    """A write SQLite refuses mid-transaction (as on a full disk, it may already have rolled
    back) is one clear line, exit 3, and leaves no half-written incident behind."""
    path = tmp_path / "comms.db"
    ok(["tenants", "add", "acme", "--name", "Acme"])
    ok(["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "kept"])
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON events "
        f"BEGIN SELECT RAISE({action}, 'simulated write failure'); END"
    )
    db.commit()
    db.close()
    before = snapshot(path)
    fails(["incident", "open", "--tenant", "acme", "--severity", "S2", "--title", "lost"], 3,
          "simulated write failure")  # fmt: skip
    fails(["draft", "update", "--incident", "INC-1", "--set", "impact=a", "--set", "actions=b"], 3)
    assert snapshot(path) == before
    assert [
        i["title"] for i in json.loads(ok(["incident", "list", "--format", "json"]).stdout)
    ] == ["kept"]


def test_store_that_cannot_open_closes_its_connection(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError):
        SqliteStore(path)
    # The refused store holds no file handle (a long-running watcher would leak one per try).
    fds = Path("/proc/self/fd")
    assert not [fd for fd in fds.iterdir() if _points_to(fd, path)]


def _points_to(fd: Path, path: Path) -> bool:
    try:
        return Path(os.readlink(fd)) == path
    except OSError:
        return False


# -- rows an older version (or a person) wrote ------------------------------------------------


def _version_2_database(path: Path) -> None:
    """What the previous release left: two open updates for INC-1 (the drafting race it had)."""
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + ";" + MIGRATIONS[1])
    db.execute("PRAGMA user_version = 2")
    at = "2026-11-27T14:30:00Z"
    db.execute(
        "INSERT INTO incidents (ref, seq, title, severity, status, tenants, started_at, "
        "created_at, updated_at, status_changed_at) VALUES "
        "('INC-1', 1, 't', 'S1', 'investigating', '[\"acme\"]', ?, ?, ?, ?)",
        (at, at, at, at),
    )
    for draft_id in (1, 2):
        db.execute(
            "INSERT INTO drafts (id, incident_ref, kind, state, created_at, updated_at) "
            "VALUES (?, 'INC-1', 'update', 'draft', ?, ?)",
            (draft_id, at, at),
        )
        db.execute(
            "INSERT INTO revisions (draft_id, number, subject, body, variables, author, "
            "created_at) VALUES (?, 1, 's', 'b\n', '{}', 'g', ?)",
            (draft_id, at),
        )
    db.commit()
    db.close()


def test_an_upgrade_keeps_two_open_drafts_an_older_race_left_and_joins_the_newest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.db"
    _version_2_database(path)
    with SqliteStore(path) as store:
        assert [d.id for d in store.list_drafts()] == [1, 2]  # nothing lost
        joined = store.add_revision(
            incident_ref="INC-1",
            kind=MessageKind.UPDATE,
            draft_id=None,
            subject="s2",
            body="b2\n",
            variables={},
            author="g",
            now=NOW,
        )
        assert (joined.id, joined.revision.number) == (2, 2)  # the one drafting continued
        assert (
            store.add_revision(
                incident_ref="INC-1",
                kind=MessageKind.UPDATE,
                draft_id=1,
                subject="s1",
                body="b1\n",
                variables={},
                author="g",
                now=NOW,
            ).revision.number
            == 2
        )  # the older one can still be edited
        assert store.store_id()
    assert pragma(path, "user_version") == len(MIGRATIONS)


def test_unreadable_rows_are_skipped_and_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "comms.db"
    with SqliteStore(path) as store:
        seed(store)
        store.create_incident(
            title="Second",
            severity=Severity.S2,
            tenants=["acme"],
            started_at=NOW,
            now=NOW,
            actor="g",
        )
        store.add_revision(
            incident_ref="INC-2",
            kind=MessageKind.UPDATE,
            draft_id=None,
            subject="s",
            body="b\n",
            variables={},
            author="g",
            now=NOW,
        )
    db = sqlite3.connect(path)
    db.execute("UPDATE incidents SET started_at = '26-11-30T03:52:00Z' WHERE ref = 'INC-1'")
    db.execute("UPDATE revisions SET variables = '{not json' WHERE draft_id = 1")
    db.commit()
    db.close()
    with SqliteStore(path) as store:
        incidents = store.list_incidents()
        assert ([i.ref for i in incidents], incidents.skipped) == (["INC-2"], ("INC-1",))
        page = store.list_incidents(limit=1)
        assert ([i.ref for i in page], page.skipped, page.more) == (["INC-2"], (), True)
        drafts = store.list_drafts()
        assert ([d.id for d in drafts], drafts.skipped) == ([2], ("1",))
        with pytest.raises(StoreError, match=r"incident INC-1 .*cannot be read"):
            store.get_incident("INC-1")
        with pytest.raises(StoreError, match=r"draft 1 .*cannot be read"):
            store.get_draft(1)


def test_a_store_id_deleted_by_hand_is_made_again_once(tmp_path: Path) -> None:
    path = tmp_path / "comms.db"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM meta")
    db.commit()
    db.close()
    with SqliteStore(path) as store:
        made = store.store_id()
    with SqliteStore(path) as store:
        assert store.store_id() == made
