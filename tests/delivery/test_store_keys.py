"""Idempotency keys name their store: two stores (a second team's, or one rebuilt after a
loss) sending to one Switchboard never collide, and keys an older version planned keep
working for ``--resume`` and repeated sends after the upgrade.

Against the Switchboard stub over real HTTP; each store is a real SQLite file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from delivery_support import AUTHOR, TOKEN, Stub, core_draft

from comms import delivery, review, service
from comms.adapters.sqlite_store import MIGRATIONS, SqliteStore
from comms.bootstrap import Runtime
from comms.settings import Settings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def runtime(stub: Stub) -> Iterator[Runtime]:
    table = {"base_url": stub.url, "token": TOKEN, "timeout_seconds": 0.4}
    settings = Settings(
        database_url="memory://unused", author=AUTHOR, reviewer="sam", tables={"switchboard": table}
    )
    with Runtime(settings, environ={}) as built:
        yield built


def send(store: Any, runtime: Runtime, draft_id: int) -> delivery.SendReport:
    return delivery.send(
        store,
        draft_id,
        publishers=runtime.publishers,
        tenants=(),
        channels=["switchboard"],
        override_reason=None,
        policy=review.ReviewPolicy(),
        lint_config=None,
        actor=AUTHOR,
        clock=lambda: T0,
        process=runtime.process(),
        concurrency=2,
    )


def approved_draft(store: SqliteStore, runtime: Runtime, impact: str) -> int:
    service.sync_tenants(store, runtime.tenant_directory())
    draft = core_draft(store, ["acme"], now=T0, impact=impact)
    review.decide(
        store,
        draft.id,
        decision="approved",
        role="imoc",
        reviewer="sam",
        note="",
        tenants=(),
        channels=["switchboard"],
        now=T0,
    )
    return int(draft.id)


def test_two_stores_sending_their_draft_1_to_one_switchboard_both_deliver(
    stub: Stub, runtime: Runtime, tmp_path: Path
) -> None:
    reports = []
    for name, impact in (("team-a", "Users cannot sign in"), ("team-b", "Pushes are slow")):
        with SqliteStore(tmp_path / f"{name}.db") as store:
            draft_id = approved_draft(store, runtime, impact)
            assert draft_id == 1  # both stores number their drafts from 1
            reports.append(send(store, runtime, draft_id))
    assert [[o.status for o in r.outcomes] for r in reports] == [["delivered"], ["delivered"]]
    keys = [r.outcomes[0].delivery.idempotency_key for r in reports]
    assert keys[0] != keys[1]
    messages = stub.messages("acme")
    assert sum("Users cannot sign in" in m for m in messages) == 1
    assert sum("Pushes are slow" in m for m in messages) == 1


def test_a_rebuilt_store_gets_a_new_id_and_a_reopened_one_keeps_its_own(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "c.db") as store:
        first = store.store_id()
    with SqliteStore(tmp_path / "c.db") as store:
        assert store.store_id() == first
    (tmp_path / "c.db").unlink()
    with SqliteStore(tmp_path / "c.db") as store:
        assert store.store_id() != first


def _as_an_older_version_left_it(path: Path) -> str:
    """Strip the database back to schema version 2 (keys without a store), keeping the rows:
    what a database planned by the previous release looks like.  Returns the planned key."""
    db = sqlite3.connect(path)
    try:
        (key,) = db.execute("SELECT idempotency_key FROM deliveries").fetchone()
        legacy = delivery.delivery_key(1, 1, "acme", "switchboard")
        db.execute("UPDATE deliveries SET idempotency_key = ?", (legacy,))
        data = db.execute("SELECT id, data FROM events WHERE type = 'delivery.planned'").fetchone()
        moved = {**json.loads(data[1]), "idempotency_key": legacy}
        db.execute("UPDATE events SET data = ? WHERE id = ?", (json.dumps(moved), data[0]))
        db.execute("DROP TABLE meta")
        db.execute("DROP INDEX drafts_one_open")
        db.execute("DROP INDEX drafts_state")
        db.execute("DROP INDEX IF EXISTS events_type")
        for table in ("users", "user_log", "session_secret"):  # version 6
            db.execute(f"DROP TABLE IF EXISTS {table}")
        for table in ("webhook_deliveries", "webhook_states"):  # version 7
            db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute("DROP TABLE IF EXISTS slack_notes")  # version 9
        db.execute("ALTER TABLE drafts DROP COLUMN superseded_by")
        db.execute("PRAGMA user_version = 2")
        db.commit()
    finally:
        db.close()
    assert key != legacy
    assert len(MIGRATIONS) > 2
    return legacy


@pytest.mark.parametrize("how", ["resume", "send again"])
def test_keys_an_older_version_planned_are_kept_after_the_upgrade(
    stub: Stub, runtime: Runtime, tmp_path: Path, how: str
) -> None:
    path = tmp_path / "old.db"
    with SqliteStore(path) as store:
        draft_id = approved_draft(store, runtime, "Users cannot sign in")
        # Planned, then the sender died before any request went out.
        draft = store.get_draft(draft_id)
        store.plan_deliveries(
            delivery.plan(draft, ["acme"], ["switchboard"], store_id=store.store_id()),
            actor=AUTHOR,
            now=T0,
        )
    legacy = _as_an_older_version_left_it(path)
    with SqliteStore(path) as store:
        if how == "resume":
            report = delivery.resume(
                store,
                publishers=runtime.publishers,
                actor=AUTHOR,
                clock=lambda: T0,
                process=runtime.process(),
                concurrency=2,
            )
        else:
            report = send(store, runtime, draft_id)
        assert [(o.status, o.delivery.idempotency_key) for o in report.outcomes] == [
            ("delivered", legacy)
        ]
        assert [d.idempotency_key for d in store.deliveries()] == [legacy]
        again = send(store, runtime, draft_id)  # nothing new is planned, nothing posted twice
        assert [o.status for o in again.outcomes] == ["already-delivered"]
        assert [d.idempotency_key for d in store.deliveries()] == [legacy]
    ((sent, count),) = [(s["idempotency_key"], s["count"]) for s in stub.sends()["sends"]]
    assert (sent.startswith(legacy), count) == (True, 1)  # the adapter adds its step: ":send"
