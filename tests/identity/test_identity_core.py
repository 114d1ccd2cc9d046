"""``comms.identity`` and ``comms.review.decide`` without the CLI: authentication, the role
rules, the user-management use cases, and the schema upgrades that bring the users in."""

from __future__ import annotations

import ast
import base64
import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from comms import identity, review
from comms.adapters.sqlite_store import MIGRATIONS, SqliteStore
from comms.errors import AuthError, RefusedError, UsageError
from comms.models import Role, Tenant, User
from tests.delivery.delivery_support import core_draft

NOW = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "c.db") as opened:
        opened.put_tenant(Tenant(id="acme", name="Acme Corp"))
        yield opened


def user(name: str, role: Role) -> User:
    return User(name=name, role=role, created_at=NOW)


def test_identity_is_core_code_without_cli_environment_or_adapters() -> None:
    tree = ast.parse((ROOT / "comms" / "identity.py").read_text(encoding="utf-8"))
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not {m for m in imported if m.split(".")[0] == "click" or "adapters" in m}
    assert {m for m in imported if m == "os"} == set()


def test_tokens_are_long_random_and_prefixed_and_hashed_with_sha256() -> None:
    tokens = {identity.new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(t.startswith("comms_") and len(t) == 49 for t in tokens)
    assert identity.hash_token("comms_abc") == hashlib.sha256(b"comms_abc").hexdigest()


def test_authenticate_says_what_to_do_for_each_failure(store: SqliteStore) -> None:
    with pytest.raises(AuthError, match="it has no users yet: make the first admin with"):
        identity.authenticate(store, "comms_whatever")
    issued = identity.add_user(store, name="ana", role="admin", token=None, now=NOW)
    with pytest.raises(AuthError, match="this store needs a token: set COMMS_TOKEN"):
        identity.authenticate(store, None)
    with pytest.raises(AuthError, match="this store needs a token"):
        identity.authenticate(store, "   ")
    with pytest.raises(AuthError, match="COMMS_TOKEN is not a valid token"):
        identity.authenticate(store, issued.token + "x")
    assert identity.authenticate(store, f" {issued.token}\n") == issued.user


def test_an_issued_token_never_shows_in_its_repr(store: SqliteStore) -> None:
    issued = identity.add_user(store, name="ana", role=Role.ADMIN, token=None, now=NOW)
    assert issued.token not in repr(issued)
    assert "[secret]" in repr(issued)


def test_review_roles_follow_the_users_role() -> None:
    assert identity.review_role(user("ida", Role.IMOC), None) == "imoc"
    assert identity.review_role(user("ana", Role.ADMIN), "imoc") == "imoc"
    assert identity.review_role(user("ria", Role.SIRT), None) == "sirt"
    with pytest.raises(RefusedError, match="ana is an admin and may review as imoc, not as sirt"):
        identity.review_role(user("ana", Role.ADMIN), "sirt")
    with pytest.raises(RefusedError, match="gus is a gdcmoc: only an imoc"):
        identity.review_role(user("gus", Role.GDCMOC), None)
    with pytest.raises(RefusedError, match="gus is a gdcmoc; only imoc or admin may approve"):
        identity.require_role(user("gus", Role.GDCMOC), (Role.IMOC,), "approve")
    identity.require_role(user("ana", Role.ADMIN), (Role.IMOC,), "approve")


def test_an_unknown_role_is_a_usage_error_naming_the_roles(store: SqliteStore) -> None:
    with pytest.raises(
        UsageError, match=r"unknown role 'boss' \(known: gdcmoc, imoc, sirt, admin\)"
    ):
        identity.add_user(store, name="ana", role="boss", token=None, now=NOW)
    assert store.list_users() == []


def decide(store: SqliteStore, draft_id: int, **options: object) -> review.Decision:
    settings: dict[str, object] = {
        "decision": "approved",
        "note": "",
        "tenants": (),
        "channels": ["switchboard"],
        "now": NOW,
    }
    return review.decide(store, draft_id, **{**settings, **options})  # type: ignore[arg-type]


def test_decide_records_the_user_not_the_name_passed_and_picks_their_role(
    store: SqliteStore,
) -> None:
    draft = core_draft(store, ["acme"], now=NOW, security=True)
    done = decide(store, draft.id, user=user("ria", Role.SIRT), reviewer="mallory")
    assert (done.review.reviewer, done.review.role) == ("ria", "sirt")
    done = decide(store, draft.id, user=user("ida", Role.IMOC), reviewer="mallory", role="imoc")
    assert (done.review.reviewer, done.review.role) == ("ida", "imoc")
    assert [(e.actor, e.type) for e in store.events(draft.incident_ref)][-2:] == [
        ("ria", "review.approved"),
        ("ida", "review.approved"),
    ]


def test_decide_refuses_a_gdcmoc_and_its_own_author_before_recording(store: SqliteStore) -> None:
    draft = core_draft(store, ["acme"], now=NOW)  # written by "gdcmoc"
    with pytest.raises(RefusedError, match="only an imoc"):
        decide(store, draft.id, user=user("gus", Role.GDCMOC))
    with pytest.raises(RefusedError, match="four-eyes rule: gdcmoc wrote revision 1") as caught:
        decide(store, draft.id, user=user("gdcmoc", Role.IMOC))
    assert "COMMS_REVIEWER" not in str(caught.value)
    with pytest.raises(RefusedError, match="set COMMS_REVIEWER to the reviewer's name"):
        decide(store, draft.id, reviewer="gdcmoc")
    assert store.reviews(draft.id) == []
    # Without a user, the self-declared reviewer still reviews as imoc by default.
    assert decide(store, draft.id, reviewer="sam").review.role == "imoc"


def test_admins_manage_users_and_everyone_rotates_their_own(store: SqliteStore) -> None:
    admin = identity.add_user(store, name="ana", role="admin", token=None, now=NOW).token
    sam = identity.add_user(store, name="sam", role="imoc", token=admin, now=NOW).token
    with pytest.raises(AuthError):
        identity.add_user(store, name="eve", role="admin", token=None, now=NOW)
    with pytest.raises(RefusedError, match="only admin may add users"):
        identity.add_user(store, name="eve", role="admin", token=sam, now=NOW)
    with pytest.raises(RefusedError, match="only admin may disable or enable users"):
        identity.set_disabled(store, "ana", disabled=True, token=sam, now=NOW)
    new = identity.rotate(store, "sam", token=sam, now=NOW)
    assert new.user.created_by == "ana"
    assert store.user_for_token(identity.hash_token(sam)) is None
    assert identity.list_users(store, token=new.token) == store.list_users()
    with pytest.raises(AuthError):
        identity.list_users(store, token=sam)
    assert [u.name for u in store.list_users()] == ["ana", "sam"]


# -- schema upgrades: a database made at an older version (by that version's migrations
# alone, so that later migrations need no undoing here), then upgraded as a user would.

TENANT_ROW = ("acme", "Acme Corp", '{"id": "acme", "name": "Acme Corp"}', NOW.isoformat())
ANA = User(name="ana", role=Role.ADMIN, created_at=NOW, created_by="ana", token_changed_at=NOW)
ANA_ROW = ("ana", "admin", "0" * 64, NOW.isoformat(), "ana", NOW.isoformat())
SECRET = bytes(range(32))


def version_before(migrations: tuple[str, ...], marker: str) -> int:
    """The schema version just before the migration whose SQL holds ``marker``."""
    return next(n for n, sql in enumerate(migrations) if marker in sql)


def sqlite_before(path: Path, marker: str) -> int:
    """A SQLite file at the version before ``marker``'s migration, holding tenant acme
    (and ana with the session secret, once there are users); its version."""
    version = version_before(MIGRATIONS, marker)
    with contextlib.closing(sqlite3.connect(path)) as db:
        for sql in MIGRATIONS[:version]:
            db.executescript(sql)
        db.execute(
            "INSERT INTO tenants (id, name, data, updated_at) VALUES (?, ?, ?, ?)", TENANT_ROW
        )
        if any("CREATE TABLE users" in sql for sql in MIGRATIONS[:version]):
            db.execute(
                "INSERT INTO users (name, role, token_hash, created_at, created_by, disabled, "
                "token_changed_at) VALUES (?, ?, ?, ?, ?, 0, ?)",
                ANA_ROW,
            )
            db.execute("INSERT INTO session_secret (id, secret) VALUES (1, ?)", (SECRET,))
        db.execute(f"PRAGMA user_version = {version}")
        db.commit()
    return version


@contextlib.contextmanager
def postgres_before(marker: str) -> Iterator[tuple[str, int]]:
    """A PostgreSQL schema at the version before ``marker``'s migration, holding tenant
    acme (and ana, once there are users): its URL and version."""
    if not os.environ.get("COMMS_TEST_POSTGRES_URL"):
        pytest.skip("COMMS_TEST_POSTGRES_URL is not set")
    import psycopg

    from comms.adapters.postgres_store import MIGRATIONS as PG_MIGRATIONS
    from comms.adapters.postgres_store import PostgresStore
    from tests.contract.backends import postgres_schema

    version = version_before(PG_MIGRATIONS, marker)
    with postgres_schema(migrate=False) as url:
        with PostgresStore(url) as making:
            making.migrate(to=version)
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(
                "INSERT INTO tenants (id, name, data, updated_at) VALUES (%s, %s, %s, %s)",
                TENANT_ROW,
            )
            if any("CREATE TABLE users" in sql for sql in PG_MIGRATIONS[:version]):
                db.execute(
                    "INSERT INTO users (name, role, token_hash, created_at, created_by, "
                    "disabled, token_changed_at) VALUES (%s, %s, %s, %s, %s, false, %s)",
                    ANA_ROW,
                )
        yield url, version


def test_a_sqlite_file_of_the_previous_version_gains_the_user_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite_before(path, "CREATE TABLE users")
    with SqliteStore(path) as store:
        assert [t.id for t in store.list_tenants()] == ["acme"]
        identity.add_user(store, name="ana", role="admin", token=None, now=NOW)
        assert [u.name for u in store.list_users()] == ["ana"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


@pytest.mark.postgres
def test_a_postgresql_schema_of_the_previous_version_is_migrated_by_comms_db_migrate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from comms.adapters.postgres_store import SCHEMA_VERSION
    from tests.identity.support import fails, ok

    with postgres_before("CREATE TABLE users") as (url, users):
        monkeypatch.setenv("COMMS_DATABASE_URL", url)
        fails(
            ["users", "list"], 3, f"older than this comms ({SCHEMA_VERSION}); run: comms db migrate"
        )
        assert f"migrated from schema version {users}" in ok(["db", "migrate"]).stdout
        token = ok(["users", "add", "ana", "--role", "admin"]).stdout.strip()
        assert "acme" in ok(["tenants", "list"], token).stdout


def test_a_sqlite_file_before_session_epochs_gains_them_and_its_sessions_stay(
    tmp_path: Path,
) -> None:
    """Upgrading signs nobody out: every user starts at epoch 0, which is also what a
    cookie signed before epochs carries; the first sign-out then ends it."""
    from comms.web.security import SessionEndedError, Signer, session_user_ok

    path = tmp_path / "old.db"
    sqlite_before(path, "session_epoch")
    # A cookie as the release before signed it: no "e" in its payload.
    signer = Signer(SECRET)
    fields = {"n": "nonce", "i": 1_000, "u": "ana", "f": signer.fingerprint(ANA)}
    payload = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    old = f"v1.{payload}.{signer.mac('session', payload)}"
    with SqliteStore(path) as store:
        assert store.session_key() == SECRET
        upgraded = store.get_user("ana")
        assert upgraded == ANA
        assert upgraded.session_epoch == 0
        session = signer.decode(old)
        session_user_ok(signer, session, upgraded, 1_000)
        after = identity.sign_out(store, upgraded, now=NOW)
        assert after.session_epoch == 1
        with pytest.raises(SessionEndedError, match="you signed out"):
            session_user_ok(signer, session, after, 1_000)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


@pytest.mark.postgres
def test_a_postgresql_schema_before_session_epochs_says_run_comms_db_migrate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from comms.adapters.postgres_store import SCHEMA_VERSION, PostgresStore
    from tests.identity.support import fails, ok

    with postgres_before("session_epoch") as (url, epoch):
        monkeypatch.setenv("COMMS_DATABASE_URL", url)
        fails(
            ["users", "list"], 3, f"older than this comms ({SCHEMA_VERSION}); run: comms db migrate"
        )
        assert f"migrated from schema version {epoch}" in ok(["db", "migrate"]).stdout
        with PostgresStore(url) as store:
            assert store.get_user("ana") == ANA
            assert store.get_user("ana").session_epoch == 0
