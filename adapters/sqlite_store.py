"""SqliteStore: the embedded default store (stdlib sqlite3, WAL, versioned schema).

Portable SQL only (no SQLite-only syntax in the queries callers depend on), so that a
PostgreSQL store can implement the same ``comms.ports.Store`` later.  Every write runs in
``BEGIN IMMEDIATE`` with a generous busy timeout: two CLI processes writing at once queue
up instead of failing, and each change lands together with its event.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comms.adapters.store_common import (
    CLOCK_COLUMNS,
    DELIVERY_COLUMNS,
    DRAFT_COLUMNS,
    EVENT_COLUMNS,
    ID_RANGE,
    INCIDENT_COLUMNS,
    OPEN_DRAFT,
    REVIEW_COLUMNS,
    REVISION_COLUMNS,
    SESSION_KEY,
    STORE_ID,
    SUMMARY_COLUMNS,
    UNREADABLE,
    USER_COLUMNS,
    Rows,
    SentUpdate,
    already_sent,
    delivery_data,
    findings_counted,
    finished,
    finished_state,
    incident_taken,
    names_of,
    no_delivery,
    no_draft,
    no_incident,
    no_revision,
    no_tenant,
    opened,
    page,
    planned_data,
    reviewed,
    revised,
    sent_update,
    unreadable,
)
from comms.errors import StoreError
from comms.identity import no_user, user_taken
from comms.models import (
    Delivery,
    Draft,
    DraftState,
    Event,
    Incident,
    MessageKind,
    Receipt,
    Review,
    Revision,
    Role,
    Severity,
    Tenant,
    User,
)
from comms.ports import Page, check_page
from comms.records import ClockRow, DraftSummary
from comms.times import from_iso, isoformat

if TYPE_CHECKING:
    from comms.bootstrap import DatabaseURL
    from comms.incidentio.webhooks import WebhookMemory

BUSY_TIMEOUT_MS = 30_000
# Times and JSON are kept as text.
ROWS = Rows(from_iso, json.loads)

# Each entry upgrades the schema by one version; never edit a released entry, append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE incidents (
        ref TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        title TEXT NOT NULL,
        severity TEXT NOT NULL,
        status TEXT NOT NULL,
        tenants TEXT NOT NULL,
        security INTEGER NOT NULL DEFAULT 0,
        pubsec INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        engaged_at TEXT,
        status_changed_at TEXT NOT NULL,
        mitigated_at TEXT,
        mitigated_by TEXT,
        resolved_at TEXT,
        resolved_by TEXT,
        last_update_at TEXT,
        promised_update_at TEXT,
        rca_internal_at TEXT,
        rca_external_at TEXT
    );
    CREATE INDEX incidents_status ON incidents (status);
    CREATE TABLE drafts (
        id INTEGER PRIMARY KEY,
        incident_ref TEXT NOT NULL REFERENCES incidents (ref),
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX drafts_incident ON drafts (incident_ref);
    CREATE TABLE revisions (
        draft_id INTEGER NOT NULL REFERENCES drafts (id),
        number INTEGER NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        variables TEXT NOT NULL,
        author TEXT NOT NULL,
        created_at TEXT NOT NULL,
        edited INTEGER NOT NULL DEFAULT 0,
        findings TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (draft_id, number)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        incident_ref TEXT NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_incident ON events (incident_ref, id);
    """,
    """
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY,
        draft_id INTEGER NOT NULL REFERENCES drafts (id),
        revision INTEGER NOT NULL,
        reviewer TEXT NOT NULL,
        role TEXT NOT NULL,
        decision TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        approval_hash TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX reviews_draft ON reviews (draft_id, id);
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        incident_ref TEXT NOT NULL,
        draft_id INTEGER NOT NULL REFERENCES drafts (id),
        revision INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        channel TEXT NOT NULL,
        text_sha256 TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until TEXT,
        external_id TEXT,
        receipt TEXT,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX deliveries_state ON deliveries (state);
    CREATE INDEX deliveries_draft ON deliveries (draft_id, revision);
    """,
    # One open (not yet sent) draft per incident and kind, kept by the database itself, so
    # two writers drafting at once add revisions to one draft.  Duplicates an older
    # version's drafting race left are kept, marked superseded by the newest (the one that
    # version went on revising), and stay out of the rule.
    """
    ALTER TABLE drafts ADD COLUMN superseded_by INTEGER;
    UPDATE drafts SET superseded_by = (
        SELECT MAX(newer.id) FROM drafts AS newer
        WHERE newer.incident_ref = drafts.incident_ref AND newer.kind = drafts.kind
            AND newer.state <> 'sent'
    )
    WHERE state <> 'sent' AND id < (
        SELECT MAX(newer.id) FROM drafts AS newer
        WHERE newer.incident_ref = drafts.incident_ref AND newer.kind = drafts.kind
            AND newer.state <> 'sent'
    );
    CREATE UNIQUE INDEX drafts_one_open ON drafts (incident_ref, kind)
        WHERE state <> 'sent' AND superseded_by IS NULL;
    CREATE INDEX drafts_state ON drafts (state);
    """,
    # Facts about the store itself; 'store_id' is made once, when the store is created or
    # upgraded to this version, and namespaces its idempotency keys.
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # The cadence check looks up events by type (director.engaged, update.sent) across
    # incidents: 0.10 s to 0.015 s on 10,000 incidents.
    """
    CREATE INDEX events_type ON events (type, incident_ref);
    """,
    # Team mode's people (only each token's SHA-256), what was done to them and by whom
    # (never a token or its hash), and the secret `comms serve` signs sessions with.
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        token_changed_at TEXT
    );
    CREATE UNIQUE INDEX users_token ON users (token_hash);
    CREATE TABLE user_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        user_name TEXT NOT NULL,
        action TEXT NOT NULL,
        role TEXT NOT NULL
    );
    CREATE TABLE session_secret (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        secret BLOB NOT NULL
    );
    """,
    # What incident.io's webhook receiver remembers (comms.incidentio.webhooks.WebhookMemory):
    # the delivery ids handled lately and the newest state handled per incident.io incident.
    # Times are microseconds since the epoch, so that they compare as numbers.
    """
    CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        received_us INTEGER NOT NULL
    );
    CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_us);
    CREATE TABLE webhook_states (
        object_id TEXT PRIMARY KEY,
        updated_us INTEGER NOT NULL
    );
    """,
    # Each user's session epoch: a session cookie carries the one it was made in, and is
    # refused once it has moved on (signing out ends the user's sessions on every server,
    # and a disabled user enabled again gets none of them back).
    """
    ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
    """,
    # The Slack note of each sent revision, claimed before it is posted (comms.ports.NoteLedger):
    # two sends finishing one draft at once post it once.  A row stays once posted.
    """
    CREATE TABLE slack_notes (
        draft_id INTEGER NOT NULL,
        revision INTEGER NOT NULL,
        owner TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        PRIMARY KEY (draft_id, revision)
    );
    """,
)


def _ts(value: datetime | None) -> str | None:
    return isoformat(value) if value is not None else None


def _describe(exc: sqlite3.Error, path: Path) -> str:
    text = str(exc)
    if "file is not a database" in text or "malformed" in text:
        return (
            f"{path} is not a readable comms database ({text}); move it aside or point "
            "COMMS_DATABASE_URL at another file"
        )
    if "readonly" in text or "unable to open" in text or "disk I/O" in text:
        return (
            f"cannot write the comms database {path} ({text}); check the folder's permissions "
            "or set COMMS_DATABASE_URL to a writable path"
        )
    if "locked" in text or "busy" in text:
        return f"the comms database {path} stayed locked by another process ({text}); try again"
    return f"comms database {path}: {text}"


def open_store(url: DatabaseURL) -> SqliteStore:
    """The store registered for ``sqlite`` URLs in ``comms.bootstrap``."""
    return SqliteStore(url.path)


class SqliteStore:
    """``comms.ports.Store`` on one SQLite file; ``connection`` is exposed for bulk tools."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._depth = 0  # nesting of write transactions (see transaction)
        self._store_id: str | None = None
        self._session_key: bytes | None = None
        # One connection shared by threads: one transaction at a time, and no read in the
        # middle of another thread's transaction (it would see, or join, its writes).
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder for the comms database {self.path}: {exc.strerror}; "
                "set COMMS_DATABASE_URL to a writable path"
            ) from exc
        try:
            self.connection = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            self.connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._migrate()
        except sqlite3.Error as exc:
            self._close_quietly()
            raise StoreError(_describe(exc, self.path)) from exc
        except BaseException:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        connection = getattr(self, "connection", None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------

    def _migrate(self) -> None:
        db = self.connection
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == len(MIGRATIONS):
            return
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this comms "
                f"({len(MIGRATIONS)}); upgrade comms"
            )
        mode = _journal_mode_wal(db)
        if mode.lower() != "wal":  # pragma: no cover - filesystems without shared memory
            db.execute("PRAGMA journal_mode = DELETE")
        db.execute("BEGIN IMMEDIATE")
        try:
            # Re-read inside the lock: another process may have migrated meanwhile.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
            _make_store_id(db)
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Join every change made inside into one transaction (``Store.transaction``).

        It takes the write lock at once (``BEGIN IMMEDIATE``), so what is read inside
        cannot change before the writes land.
        """
        with self._write():
            yield

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """``Store.pinned``: this store has one connection already, so nothing changes."""
        yield

    def store_id(self) -> str:
        """This store's id (``DeliveryLedger.store_id``), made when it was created."""
        if self._store_id is None:
            rows = self._read(STORE_ID)
            if not rows:  # the row was deleted by hand: a new namespace, made once
                with self._write() as db:
                    _make_store_id(db)
                rows = self._read(STORE_ID)
            self._store_id = str(rows[0][0])
        return self._store_id

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self.connection
            if self._depth:  # inside transaction(): the outer block commits or rolls back
                self._depth += 1
                try:
                    yield db
                finally:
                    self._depth -= 1
                return
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(_describe(exc, self.path)) from exc
            self._depth = 1
            try:
                yield db
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(db)
                raise StoreError(_describe(exc, self.path)) from exc
            except BaseException:
                _rollback(db)
                raise
            finally:
                self._depth = 0

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return self.connection.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(_describe(exc, self.path)) from exc

    @staticmethod
    def _log(
        db: sqlite3.Connection, ref: str, type_: str, actor: str, at: datetime, data: dict[str, Any]
    ) -> int:
        cursor = db.execute(
            "INSERT INTO events (incident_ref, at, actor, type, data) VALUES (?, ?, ?, ?, ?)",
            (ref, isoformat(at), actor, type_, json.dumps(data, sort_keys=True, default=str)),
        )
        return int(cursor.lastrowid or 0)

    # -- tenants ------------------------------------------------------------------------

    def put_tenant(self, tenant: Tenant) -> None:
        """Insert or replace a tenant."""
        from datetime import UTC

        now = datetime.now(UTC)  # bookkeeping only; no domain decision depends on it
        with self._write() as db:
            db.execute("DELETE FROM tenants WHERE id = ?", (tenant.id,))
            db.execute(
                "INSERT INTO tenants (id, name, data, updated_at) VALUES (?, ?, ?, ?)",
                (tenant.id, tenant.name, json.dumps(tenant.to_dict()), isoformat(now)),
            )

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Return a tenant or raise ``NotFoundError``."""
        rows = self._read("SELECT data FROM tenants WHERE id = ?", (tenant_id,))
        if not rows:
            raise no_tenant(tenant_id)
        return Tenant(**json.loads(rows[0][0]))

    def list_tenants(self) -> list[Tenant]:
        """All tenants, by id."""
        return [
            Tenant(**json.loads(r[0])) for r in self._read("SELECT data FROM tenants ORDER BY id")
        ]

    def tenant_names(self) -> dict[str, tuple[str, ...]]:
        """Every tenant's id → its name then its aliases, by id (``TenantStore.tenant_names``):
        the rest of each tenant is neither built nor checked."""
        rows = self._read("SELECT id, data FROM tenants ORDER BY id")
        return names_of([_names_row(tenant_id, data) for tenant_id, data in rows], self.get_tenant)

    # -- incidents ----------------------------------------------------------------------

    def create_incident(
        self,
        *,
        title: str,
        severity: Severity,
        tenants: Sequence[str],
        started_at: datetime,
        now: datetime,
        actor: str,
        security: bool = False,
        pubsec: bool = False,
        ref: str | None = None,
        engaged: bool = True,
    ) -> Incident:
        """Open an incident; ``ref`` defaults to the next ``INC-n``."""
        with self._write() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM incidents").fetchone()[0]
            ref = ref or f"INC-{seq}"
            if db.execute("SELECT 1 FROM incidents WHERE ref = ?", (ref,)).fetchone():
                raise incident_taken(ref)
            db.execute(
                "INSERT INTO incidents (ref, seq, title, severity, status, tenants, security, "
                "pubsec, started_at, created_at, updated_at, engaged_at, status_changed_at) "
                "VALUES (?, ?, ?, ?, 'investigating', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ref,
                    seq,
                    title,
                    severity.value,
                    json.dumps(list(tenants)),
                    int(security),
                    int(pubsec),
                    isoformat(started_at),
                    isoformat(now),
                    isoformat(now),
                    isoformat(now) if engaged else None,
                    isoformat(now),
                ),
            )
            data = opened(
                title=title,
                severity=severity,
                tenants=tenants,
                started_at=started_at,
                security=security,
                pubsec=pubsec,
            )
            self._log(db, ref, "incident.opened", actor, now, data)
            if engaged:
                self._log(db, ref, "gdcmoc.engaged", actor, now, {"by": actor})
        return self.get_incident(ref)

    def get_incident(self, ref: str) -> Incident:
        """Return an incident or raise ``NotFoundError`` (``StoreError`` if unreadable)."""
        rows = self._read(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE ref = ?", (ref,))
        if not rows:
            raise no_incident(ref)
        try:
            return ROWS.incident(rows[0])
        except UNREADABLE as exc:
            raise unreadable(f"incident {ref}", exc) from exc

    def list_incidents(
        self, *, open_only: bool = False, limit: int | None = None, offset: int = 0
    ) -> Page[Incident]:
        """Incidents, newest first, a page at a time; unreadable rows named in ``skipped``."""
        check_page(limit, offset)
        where = " WHERE status <> 'resolved'" if open_only else ""
        rows = self._read(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents{where} ORDER BY seq DESC LIMIT ? OFFSET ?",
            _window(limit, offset),
        )
        return page(rows, limit, ROWS.incident, lambda r: str(r[0]))

    def update_incident(
        self, incident: Incident, *, event: str, actor: str, data: dict[str, Any]
    ) -> Incident:
        """Replace an incident's fields and log ``event`` in one transaction."""
        with self._write() as db:
            old = db.execute(
                "SELECT status FROM incidents WHERE ref = ?", (incident.ref,)
            ).fetchone()
            if old is None:
                raise no_incident(incident.ref)
            status_changed = old[0] != incident.status.value
            db.execute(
                "UPDATE incidents SET title = ?, severity = ?, status = ?, tenants = ?, "
                "security = ?, pubsec = ?, started_at = ?, updated_at = ?, mitigated_at = ?, "
                "mitigated_by = ?, resolved_at = ?, resolved_by = ?"
                + (", status_changed_at = ?" if status_changed else "")
                + " WHERE ref = ?",
                (
                    incident.title,
                    incident.severity.value,
                    incident.status.value,
                    json.dumps(incident.tenants),
                    int(incident.security),
                    int(incident.pubsec),
                    isoformat(incident.started_at),
                    isoformat(incident.updated_at),
                    _ts(incident.mitigated_at),
                    incident.mitigated_by,
                    _ts(incident.resolved_at),
                    incident.resolved_by,
                    *((isoformat(incident.updated_at),) if status_changed else ()),
                    incident.ref,
                ),
            )
            self._log(db, incident.ref, event, actor, incident.updated_at, data)
        return self.get_incident(incident.ref)

    def record_clock(
        self, ref: str, *, column: str, at: datetime, event: str, actor: str, data: dict[str, Any]
    ) -> None:
        """Set one of the incident's clock columns (engaged, RCA) and log ``event``."""
        if column not in ("engaged_at", "rca_internal_at", "rca_external_at"):
            raise ValueError(column)
        with self._write() as db:
            changed = db.execute(
                f"UPDATE incidents SET {column} = ? WHERE ref = ?", (isoformat(at), ref)
            ).rowcount
            if not changed:  # no event for an incident that does not exist
                raise no_incident(ref)
            self._log(db, ref, event, actor, at, data)

    def clock_rows(
        self, *, open_only: bool = True, refs: Sequence[str] | None = None
    ) -> list[ClockRow]:
        """Every incident's clocks as plain tuples (for cadence checks), oldest first; with
        ``refs``, only those incidents'.

        Pubsec is the incident's flag or any of its tenants' current flags; ``lagging``
        comes from the ``update.sent`` events of incidents with several tenants, and
        ``director_engaged_at`` from the first ``director.engaged`` event of an incident
        still without a mitigation in sight.
        """
        from comms.cadence import NO_MITIGATION_IN_SIGHT

        clauses = ["status <> 'resolved'"] if open_only else []
        params: list[Any] = []
        chosen = list(dict.fromkeys(refs)) if refs is not None else []
        if refs is not None and len(chosen) <= 500:  # SQLite's bound-variable limit aside
            clauses.append(f"ref IN ({', '.join('?' for _ in chosen) or 'NULL'})")
            params += chosen
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(f"SELECT {CLOCK_COLUMNS} FROM incidents{where} ORDER BY seq", params)
        if len(chosen) > 500:
            wanted = set(chosen)
            rows = [r for r in rows if r[0] in wanted]
        pubsec = {r[0] for r in self._read("SELECT id, data FROM tenants") if _flagged_pubsec(r[1])}
        several = [r[0] for r in rows if r[13] is not None and len(json.loads(r[4])) > 1]
        updates: dict[str, list[SentUpdate]] = {}
        for start in range(0, len(several), 500):
            chunk = several[start : start + 500]
            for ref, at, data in self._read(
                "SELECT incident_ref, at, data FROM events WHERE type = 'update.sent' "
                f"AND incident_ref IN ({', '.join('?' for _ in chunk)}) ORDER BY id",
                chunk,
            ):
                updates.setdefault(ref, []).append(sent_update(from_iso(at), json.loads(data)))
        unmitigated = [r[0] for r in rows if r[3] in NO_MITIGATION_IN_SIGHT and r[11] is None]
        escalated: dict[str, datetime] = {}
        for start in range(0, len(unmitigated), 500):
            chunk = unmitigated[start : start + 500]
            for ref, at in self._read(
                "SELECT incident_ref, at FROM events WHERE type = 'director.engaged' "
                f"AND incident_ref IN ({', '.join('?' for _ in chunk)}) ORDER BY id",
                chunk,
            ):
                escalated.setdefault(ref, from_iso(at))
        return [ROWS.clock(r, pubsec=pubsec, escalated=escalated, updates=updates) for r in rows]

    # -- drafts -------------------------------------------------------------------------

    def add_revision(
        self,
        *,
        incident_ref: str,
        kind: MessageKind,
        draft_id: int | None,
        subject: str,
        body: str,
        variables: dict[str, str],
        author: str,
        now: datetime,
        edited: bool = False,
        findings: list[dict[str, Any]] | None = None,
    ) -> Draft:
        """Store a new revision; resets review.  ``draft_id`` None joins the incident's open
        draft of ``kind``, else starts one: the drafts_one_open index decides, not a read
        before the insert, so concurrent writers cannot make two."""
        with self._write() as db:
            previous_state: str | None = None
            started = False
            if draft_id is None:
                cursor = db.execute(
                    "INSERT INTO drafts (incident_ref, kind, state, created_at, updated_at) "
                    "VALUES (?, ?, 'draft', ?, ?) "
                    f"ON CONFLICT (incident_ref, kind) WHERE {OPEN_DRAFT} DO NOTHING",
                    (incident_ref, kind.value, isoformat(now), isoformat(now)),
                )
                started = cursor.rowcount == 1
                draft_id = (
                    int(cursor.lastrowid or 0)
                    if started
                    else db.execute(
                        f"SELECT id FROM drafts WHERE incident_ref = ? AND kind = ? AND {OPEN_DRAFT}",
                        (incident_ref, kind.value),
                    ).fetchone()[0]
                )
            if started:
                number = 1
            else:
                row = (
                    db.execute("SELECT state FROM drafts WHERE id = ?", (draft_id,)).fetchone()
                    if draft_id in ID_RANGE
                    else None
                )
                if row is None:
                    raise no_draft(draft_id)
                if row[0] == DraftState.SENT.value:
                    raise already_sent(draft_id)
                previous_state = row[0]
                number = db.execute(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM revisions WHERE draft_id = ?",
                    (draft_id,),
                ).fetchone()[0]
                # Any new text voids an earlier review: the draft goes back to 'draft'.
                db.execute(
                    "UPDATE drafts SET state = 'draft', updated_at = ? WHERE id = ?",
                    (isoformat(now), draft_id),
                )
            db.execute(
                "INSERT INTO revisions (draft_id, number, subject, body, variables, author, "
                "created_at, edited, findings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    draft_id,
                    number,
                    subject,
                    body,
                    json.dumps(variables, sort_keys=True),
                    author,
                    isoformat(now),
                    int(edited),
                    json.dumps(findings or []),
                ),
            )
            data = revised(draft_id, number, kind, edited, previous_state)
            self._log(db, incident_ref, "draft.revised", author, now, data)
        return self.get_draft(draft_id)

    def get_draft(self, draft_id: int) -> Draft:
        """Return a draft with its latest revision or raise ``NotFoundError`` (``StoreError``
        if it cannot be read)."""
        rows = self._draft_rows("WHERE d.id = ?", [draft_id]) if draft_id in ID_RANGE else []
        if not rows:
            raise no_draft(draft_id)
        try:
            return ROWS.draft(rows[0])
        except UNREADABLE as exc:
            raise unreadable(f"draft {draft_id}", exc) from exc

    def list_drafts(
        self,
        *,
        incident_ref: str | None = None,
        state: DraftState | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> Page[Draft]:
        """Drafts, oldest (or newest) first, a page at a time; unreadable ones in ``skipped``."""
        check_page(limit, offset)
        clauses, params = [], []
        if incident_ref is not None:
            clauses.append("d.incident_ref = ?")
            params.append(incident_ref)
        if state is not None:
            clauses.append("d.state = ?")
            params.append(state.value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        order = "DESC" if newest_first else ""
        rows = self._draft_rows(
            f"{where} ORDER BY d.id {order} LIMIT ? OFFSET ?",
            [*params, *_window(limit, offset)],
        )
        return page(rows, limit, ROWS.draft, lambda r: str(r[0]))

    def _draft_rows(self, tail: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._read(
            f"SELECT {DRAFT_COLUMNS} FROM drafts d JOIN revisions r ON r.draft_id = d.id AND r.number = "
            f"(SELECT MAX(number) FROM revisions WHERE draft_id = d.id) {tail}",
            params,
        )

    def draft_summaries(self, *, states: Sequence[DraftState]) -> list[DraftSummary]:
        """The drafts in ``states`` as listings show them, oldest first (see the port)."""
        if not states:
            return []
        rows = self._read(
            f"SELECT {SUMMARY_COLUMNS}, r.findings FROM drafts d JOIN revisions r "
            "ON r.draft_id = d.id AND r.number = (SELECT MAX(number) FROM revisions "
            f"WHERE draft_id = d.id) WHERE d.state IN ({', '.join('?' * len(states))})",
            [s.value for s in states],
        )
        found = page(
            rows,
            None,
            lambda r: ROWS.summary(r, findings_counted(json.loads(r[9]))),
            lambda r: str(r[0]),
        )
        # Sorted here: a stored time is text, which need not sort as the time does.
        found.sort(key=lambda s: (s.created_at, s.id))
        return found

    def revisions(self, draft_id: int) -> list[Revision]:
        """Every revision of a draft, oldest first."""
        rows = (
            self._read(
                f"SELECT {REVISION_COLUMNS} FROM revisions WHERE draft_id = ? ORDER BY number",
                (draft_id,),
            )
            if draft_id in ID_RANGE
            else []
        )
        if not rows:
            raise no_draft(draft_id)
        return [ROWS.revision(draft_id, r) for r in rows]

    def redact_revision(
        self,
        draft_id: int,
        number: int,
        *,
        subject: str,
        body: str,
        variables: dict[str, str],
        actor: str,
        now: datetime,
        data: dict[str, Any],
    ) -> Revision:
        """Replace one revision's text in place and log ``draft.redacted``, atomically."""
        with self._write() as db:
            row = (
                db.execute("SELECT incident_ref FROM drafts WHERE id = ?", (draft_id,)).fetchone()
                if draft_id in ID_RANGE
                else None
            )
            if row is None:
                raise no_draft(draft_id)
            changed = db.execute(
                "UPDATE revisions SET subject = ?, body = ?, variables = ? "
                "WHERE draft_id = ? AND number = ?",
                (subject, body, json.dumps(variables, sort_keys=True), draft_id, number),
            ).rowcount
            if not changed:
                raise no_revision(draft_id, number)
            payload = {"draft_id": draft_id, "revision": number, **data}
            self._log(db, row[0], "draft.redacted", actor, now, payload)
        return next(r for r in self.revisions(draft_id) if r.number == number)

    def set_draft_state(
        self,
        draft_id: int,
        state: DraftState,
        *,
        now: datetime,
        actor: str,
        event: str,
        data: dict[str, Any],
    ) -> Draft:
        """Move a draft to ``state`` and log ``event`` in one transaction.

        Marking an already sent draft sent again changes and logs nothing, so two senders
        finishing together record ``update.sent`` once.
        """
        with self._write() as db:
            row = (
                db.execute(
                    "SELECT incident_ref, state FROM drafts WHERE id = ?", (draft_id,)
                ).fetchone()
                if draft_id in ID_RANGE
                else None
            )
            if row is None:
                raise no_draft(draft_id)
            if state is DraftState.SENT and row[1] == DraftState.SENT.value:
                return self.get_draft(draft_id)
            db.execute(
                "UPDATE drafts SET state = ?, updated_at = ? WHERE id = ?",
                (state.value, isoformat(now), draft_id),
            )
            payload = {"draft_id": draft_id, "from": row[1], "to": state.value, **data}
            self._log(db, row[0], event, actor, now, payload)
            if event == "update.sent":
                # Denormalised for cadence: last update and the next one it promised.
                db.execute(
                    "UPDATE incidents SET last_update_at = ?, promised_update_at = ? WHERE ref = ?",
                    (isoformat(now), data.get("next_update_at"), row[0]),
                )
        return self.get_draft(draft_id)

    # -- events -------------------------------------------------------------------------

    def append_event(
        self, incident_ref: str, *, type: str, actor: str, now: datetime, data: dict[str, Any]
    ) -> Event:
        """Append one event to the incident's log."""
        with self._write() as db:
            event_id = self._log(db, incident_ref, type, actor, now, data)
        return Event(
            id=event_id, incident_ref=incident_ref, at=now, actor=actor, type=type, data=data
        )

    def events(self, incident_ref: str, *, types: Sequence[str] = ()) -> list[Event]:
        """The incident's event log in order, of ``types`` only if given."""
        kinds = list(dict.fromkeys(types))
        among = f" AND type IN ({', '.join('?' for _ in kinds)})" if kinds else ""
        rows = self._read(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE incident_ref = ?{among} ORDER BY id",
            (incident_ref, *kinds),
        )
        return [ROWS.event(r) for r in rows]

    # -- reviews ------------------------------------------------------------------------

    def add_review(self, review: Review, *, incident_ref: str, state: DraftState) -> Review:
        """Record a review decision, move the draft to ``state`` and log it, atomically."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO reviews (draft_id, revision, reviewer, role, decision, note, "
                "approval_hash, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    review.draft_id,
                    review.revision,
                    review.reviewer,
                    review.role,
                    review.decision,
                    review.note,
                    review.approval_hash,
                    isoformat(review.at),
                ),
            )
            db.execute(
                "UPDATE drafts SET state = ?, updated_at = ? WHERE id = ?",
                (state.value, isoformat(review.at), review.draft_id),
            )
            event, data = reviewed(review)
            self._log(db, incident_ref, event, review.reviewer, review.at, data)
        return review.replace(id=int(cursor.lastrowid or 0))

    def reviews(self, draft_id: int) -> list[Review]:
        """Every review of a draft, oldest first."""
        if draft_id not in ID_RANGE:
            return []
        rows = self._read(
            f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE draft_id = ? ORDER BY id", (draft_id,)
        )
        return [ROWS.review(r) for r in rows]

    # -- deliveries -----------------------------------------------------------------------

    def plan_deliveries(
        self,
        planned: Sequence[Delivery],
        *,
        actor: str,
        now: datetime,
        retry_failed: bool = False,
    ) -> list[Delivery]:
        """Store delivery intents before any request goes out; existing keys are kept as they are.

        Returns the stored rows for every planned key, so a repeated send sees what an
        earlier run already did.  With ``retry_failed`` a failed one is pending again (its
        attempts and last error kept) and ``delivery.reopened`` is logged.
        """
        with self._write() as db:
            for d in planned:
                exists = db.execute(
                    "SELECT state, attempts, error FROM deliveries WHERE idempotency_key = ?",
                    (d.idempotency_key,),
                ).fetchone()
                if exists and retry_failed and exists[0] == "failed":
                    db.execute(
                        "UPDATE deliveries SET state = 'pending', updated_at = ? "
                        "WHERE idempotency_key = ?",
                        (isoformat(now), d.idempotency_key),
                    )
                    data = planned_data(d, attempts=exists[1], last_error=exists[2])
                    self._log(db, d.incident_ref, "delivery.reopened", actor, now, data)
                if exists:
                    continue
                db.execute(
                    "INSERT INTO deliveries (idempotency_key, incident_ref, draft_id, revision, "
                    "tenant, channel, text_sha256, state, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (
                        d.idempotency_key,
                        d.incident_ref,
                        d.draft_id,
                        d.revision,
                        d.tenant,
                        d.channel,
                        d.text_sha256,
                        isoformat(now),
                        isoformat(now),
                    ),
                )
                self._log(db, d.incident_ref, "delivery.planned", actor, now, planned_data(d))
        return [self.get_delivery(d.idempotency_key) for d in planned]

    def get_delivery(self, key: str) -> Delivery:
        """One delivery by its idempotency key."""
        rows = self._read(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE idempotency_key = ?", (key,)
        )
        if not rows:
            raise no_delivery(key)
        return ROWS.delivery(rows[0])

    def deliveries(
        self,
        *,
        draft_id: int | None = None,
        states: Sequence[str] = (),
        incident_ref: str | None = None,
    ) -> list[Delivery]:
        """Deliveries filtered by draft, incident and state, oldest first."""
        if draft_id is not None and draft_id not in ID_RANGE:
            return []
        clauses: list[str] = []
        params: list[Any] = []
        if draft_id is not None:
            clauses.append("draft_id = ?")
            params.append(draft_id)
        if incident_ref is not None:
            clauses.append("incident_ref = ?")
            params.append(incident_ref)
        if states:
            clauses.append(f"state IN ({', '.join('?' for _ in states)})")
            params.extend(states)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return [
            ROWS.delivery(r)
            for r in self._read(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries {where} ORDER BY id", params
            )
        ]

    def claim_delivery(
        self,
        key: str,
        *,
        owner: str,
        now: datetime,
        until: datetime,
        dead_owners: Sequence[str] = (),
    ) -> Delivery | None:
        """Take the lease on a pending delivery; None when another live sender holds it.

        A lease whose time ran out, or whose owner is known dead, can be taken over.
        """
        with self._write() as db:
            row = db.execute(
                "SELECT state, lease_owner, lease_until FROM deliveries WHERE idempotency_key = ?",
                (key,),
            ).fetchone()
            if row is None:
                raise no_delivery(key)
            state, lease_owner, lease_until = row
            if state in ("delivered", "failed"):
                return None
            if (
                state == "in-flight"
                and lease_owner != owner
                and lease_owner not in dead_owners
                and lease_until is not None
                and from_iso(lease_until) > now
            ):
                return None
            db.execute(
                "UPDATE deliveries SET state = 'in-flight', lease_owner = ?, lease_until = ?, "
                "attempts = attempts + 1, updated_at = ? WHERE idempotency_key = ?",
                (owner, isoformat(until), isoformat(now), key),
            )
        return self.get_delivery(key)

    def in_flight_owners(self) -> list[str]:
        """Lease owners of deliveries currently marked in flight."""
        return [
            r[0]
            for r in self._read(
                "SELECT DISTINCT lease_owner FROM deliveries WHERE state = 'in-flight' AND lease_owner IS NOT NULL"
            )
        ]

    def finish_delivery(
        self,
        key: str,
        *,
        receipt: Receipt | None,
        error: str | None,
        final: bool,
        actor: str,
        now: datetime,
        owner: str | None = None,
    ) -> Delivery:
        """Record a receipt (delivered), a final failure, or a retryable error (back to pending).

        A delivered row is never changed again.  An error from ``owner`` only counts while
        ``owner`` still holds the lease: a sender whose lease was taken over must not put a
        delivery back to pending behind the new holder's back.  ``owner`` None is for rows
        nobody has claimed (e.g. marking a superseded revision failed).  A receipt keeps the
        row's last error; an error's event carries the attempts made so far.
        """
        state = finished_state(receipt, final)
        with self._write() as db:
            row = db.execute(
                "SELECT incident_ref, draft_id, revision, tenant, channel, state, lease_owner, "
                "attempts FROM deliveries WHERE idempotency_key = ?",
                (key,),
            ).fetchone()
            if row is None:
                raise no_delivery(key)
            if row[5] == "delivered" or (receipt is None and row[6] != owner):
                return self.get_delivery(key)
            # A receipt keeps the last error on record: the history of a retried delivery.
            db.execute(
                "UPDATE deliveries SET state = ?, lease_owner = NULL, lease_until = NULL, "
                "external_id = COALESCE(?, external_id), receipt = COALESCE(?, receipt), "
                "error = COALESCE(?, error), updated_at = ? WHERE idempotency_key = ?",
                (
                    state,
                    receipt.external_id if receipt else None,
                    json.dumps(receipt.to_dict()) if receipt else None,
                    error,
                    isoformat(now),
                    key,
                ),
            )
            event, data = finished(
                state,
                delivery_data(row[1], row[2], row[3], row[4], key),
                receipt=receipt,
                error=error,
                attempts=row[7],
            )
            self._log(db, row[0], event, actor, now, data)
        return self.get_delivery(key)

    # -- users (team mode) ------------------------------------------------------------------

    def add_user(
        self, *, name: str, role: Role, token_hash: str, now: datetime, actor: str
    ) -> User:
        """Create a user with the hash of their token and log it (``UserStore.add_user``)."""
        user = User(name=name, role=role, created_at=now, created_by=actor, token_changed_at=now)
        with self._write() as db:
            taken = db.execute("SELECT disabled FROM users WHERE name = ?", (name,)).fetchone()
            if taken is not None:
                raise user_taken(name, disabled=bool(taken[0]))
            db.execute(
                "INSERT INTO users (name, role, token_hash, created_at, created_by, disabled, "
                "token_changed_at) VALUES (?, ?, ?, ?, ?, 0, ?)",
                (name, user.role.value, token_hash, isoformat(now), actor, isoformat(now)),
            )
            _log_user(db, now, actor, name, "user.added", user.role.value)
        return user

    def get_user(self, name: str) -> User:
        """Return a user (disabled ones too) or raise ``NotFoundError``."""
        rows = self._read(f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (name,))
        if not rows:
            raise no_user(name)
        return ROWS.user(rows[0])

    def user_for_token(self, token_hash: str) -> User | None:
        """The user whose current token hashes to ``token_hash``, or None."""
        rows = self._read(f"SELECT {USER_COLUMNS} FROM users WHERE token_hash = ?", (token_hash,))
        return ROWS.user(rows[0]) if rows else None

    def list_users(self) -> list[User]:
        """Every user, disabled ones too, by name."""
        return [ROWS.user(r) for r in self._read(f"SELECT {USER_COLUMNS} FROM users ORDER BY name")]

    def set_user_token(self, name: str, *, token_hash: str, now: datetime, actor: str) -> User:
        """Replace a user's token hash (the old token stops at once) and log it."""
        with self._write() as db:
            row = db.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise no_user(name)
            db.execute(
                "UPDATE users SET token_hash = ?, token_changed_at = ?, "
                "session_epoch = session_epoch + 1 WHERE name = ?",
                (token_hash, isoformat(now), name),
            )
            _log_user(db, now, actor, name, "user.token-rotated", row[0])
        return self.get_user(name)

    def set_user_disabled(self, name: str, *, disabled: bool, now: datetime, actor: str) -> User:
        """Disable (or enable again) a user and log it."""
        with self._write() as db:
            row = db.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise no_user(name)
            db.execute(
                "UPDATE users SET disabled = ?, session_epoch = session_epoch + 1 WHERE name = ?",
                (int(disabled), name),
            )
            action = "user.disabled" if disabled else "user.enabled"
            _log_user(db, now, actor, name, action, row[0])
        return self.get_user(name)

    def end_user_sessions(self, name: str, *, now: datetime, actor: str) -> User:
        """Move the user's session epoch on and log it (``UserStore.end_user_sessions``)."""
        with self._write() as db:
            row = db.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise no_user(name)
            db.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE name = ?", (name,))
            _log_user(db, now, actor, name, "user.signed-out", row[0])
        return self.get_user(name)

    def session_key(self) -> bytes:
        """The store's session secret, made once (``UserStore.session_key``): two processes
        asking at once both insert-or-keep the one row, then read the row that won."""
        if self._session_key is None:
            rows = self._read(SESSION_KEY)
            if not rows:
                with self._write() as db:
                    db.execute(
                        "INSERT INTO session_secret (id, secret) VALUES (1, ?) "
                        "ON CONFLICT (id) DO NOTHING",
                        (os.urandom(32),),
                    )
                rows = self._read(SESSION_KEY)
            self._session_key = bytes(rows[0][0])
        return self._session_key

    # -- incident.io webhooks (comms.incidentio.webhooks.WebhookMemory) --------------------

    def webhook_seen(self, delivery_id: str) -> bool:
        """Whether delivery ``delivery_id`` was handled (and not yet forgotten)."""
        return bool(self._read("SELECT 1 FROM webhook_deliveries WHERE id = ?", (delivery_id,)))

    def claim_webhook(self, delivery_id: str, *, now: datetime) -> bool:
        """Store delivery ``delivery_id`` as handled unless it is: True for the one call that
        inserted it (inside ``transaction()``, undone with it)."""
        with self._write() as db:
            inserted = db.execute(
                "INSERT INTO webhook_deliveries (id, received_us) VALUES (?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (delivery_id, _micros(now)),
            ).rowcount
        return inserted == 1

    def release_webhook(self, delivery_id: str) -> None:
        """Forget claimed delivery ``delivery_id`` (it was not handled after all)."""
        with self._write() as db:
            db.execute("DELETE FROM webhook_deliveries WHERE id = ?", (delivery_id,))

    def webhook_newest(self, incident_id: str) -> datetime | None:
        """The newest ``updated_at`` handled for incident.io incident ``incident_id``."""
        rows = self._read(
            "SELECT updated_us FROM webhook_states WHERE object_id = ?", (incident_id,)
        )
        return _from_micros(rows[0][0]) if rows else None

    def record_webhook(
        self,
        delivery_id: str,
        *,
        now: datetime,
        incident_id: str | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """Remember a handled delivery (ids older than ``DELIVERY_IDS_KEPT`` go) and the
        state it carried; the newest state never moves back, whoever writes first."""
        from comms.incidentio.webhooks import DELIVERY_IDS_KEPT

        with self._write() as db:
            db.execute(
                "INSERT INTO webhook_deliveries (id, received_us) VALUES (?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (delivery_id, _micros(now)),
            )
            db.execute(
                "DELETE FROM webhook_deliveries WHERE received_us < ?",
                (_micros(now - DELIVERY_IDS_KEPT),),
            )
            if incident_id is not None and updated_at is not None:
                db.execute(
                    "INSERT INTO webhook_states (object_id, updated_us) VALUES (?, ?) "
                    "ON CONFLICT (object_id) DO UPDATE SET "
                    "updated_us = max(webhook_states.updated_us, excluded.updated_us)",
                    (incident_id, _micros(updated_at)),
                )

    # -- Slack notes of sent revisions (comms.ports.NoteLedger) ----------------------------

    def claim_note(self, draft_id: int, revision: int, *, owner: str, now: datetime) -> bool:
        """Take the note of ``draft_id`` r``revision`` unless it is taken (``NoteLedger``)."""
        with self._write() as db:
            inserted = db.execute(
                "INSERT INTO slack_notes (draft_id, revision, owner, claimed_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (draft_id, revision) DO NOTHING",
                (draft_id, revision, owner, isoformat(now)),
            ).rowcount
        return inserted == 1

    def release_note(self, draft_id: int, revision: int, *, owner: str) -> None:
        """Give back ``owner``'s claim on the note (``NoteLedger.release_note``)."""
        with self._write() as db:
            db.execute(
                "DELETE FROM slack_notes WHERE draft_id = ? AND revision = ? AND owner = ?",
                (draft_id, revision, owner),
            )


def _micros(moment: datetime) -> int:
    """A time as whole microseconds since the epoch (exact, unlike a float)."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _names_row(tenant_id: str, data: str) -> tuple[str, Any, Any]:
    """(id, name, aliases) of a stored tenant for ``names_of``: Nones when its data is no
    JSON object (``names_of`` then reads it whole, and raises as ``get_tenant`` does)."""
    try:
        fields = json.loads(data)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        return tenant_id, None, None
    return tenant_id, fields.get("name"), fields.get("aliases")


def _flagged_pubsec(data: str) -> bool:
    """Whether a stored tenant is pubsec; an unreadable one counts as pubsec (no data leaks)."""
    try:
        return bool(json.loads(data).get("pubsec"))
    except (ValueError, AttributeError):
        return True


def _journal_mode_wal(db: sqlite3.Connection) -> str:
    """Switch a new database to WAL, waiting while another process holds it.

    Two processes creating one database race here, and SQLite answers a journal-mode
    change with "database is locked" at once instead of calling the busy handler, so
    wait up to the busy timeout ourselves.
    """
    import time

    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _rollback(db: sqlite3.Connection) -> None:
    # SQLite rolls back by itself after some errors (disk full, I/O, RAISE(ROLLBACK));
    # a second ROLLBACK would then fail and hide the real error behind a traceback.
    if db.in_transaction:
        db.execute("ROLLBACK")


def _window(limit: int | None, offset: int) -> tuple[int, int]:
    """LIMIT and OFFSET for a page: one row beyond ``limit`` (it tells whether there is
    more), and no number past SQLite's INTEGER (-1 is no limit; an offset that large
    leaves nothing)."""
    fetch = -1 if limit is None or limit + 1 not in ID_RANGE else limit + 1
    return fetch, min(offset, ID_RANGE[-1])


def _make_store_id(db: sqlite3.Connection) -> None:
    # 64 random bits: distinct for every store ever made, short enough for any key header.
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('store_id', ?) ON CONFLICT (key) DO NOTHING",
        (os.urandom(8).hex(),),
    )


def _log_user(
    db: sqlite3.Connection, at: datetime, actor: str, name: str, action: str, role: str
) -> None:
    db.execute(
        "INSERT INTO user_log (at, actor, user_name, action, role) VALUES (?, ?, ?, ?, ?)",
        (isoformat(at), actor, name, action, role),
    )


if TYPE_CHECKING:
    # mypy proves here that SqliteStore is the webhook receiver's memory in full.
    def _is_webhook_memory(store: SqliteStore) -> WebhookMemory:
        return store
