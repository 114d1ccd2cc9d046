"""PostgresStore: the team store (``postgresql://`` URLs) on psycopg 3.

The same ``comms.ports.Store`` as ``SqliteStore`` (one contract suite runs on both), for a
team whose members run comms on several machines against one database:

- **Connections.** One connection, made on first use, so that an unreachable server fails
  at once with libpq's reason; it checks the schema version.  A one-shot command needs no
  more: only when a second thread asks for a connection while the first is lent does a
  ``psycopg_pool.ConnectionPool`` of at most ``POOL_SIZE`` start (it takes the first
  connection over when that comes back).  ``close()`` closes them all.
- **Transactions.** Every change is one transaction that also appends its event;
  ``transaction()`` joins the changes a thread makes inside it into one (a connection
  per transaction, nesting joins the outer one).  Each thread has its own.
- **Concurrency.** SQLite serialises writers with ``BEGIN IMMEDIATE``; here row locks do
  it where it matters: a delivery is claimed by one conditional ``UPDATE … RETURNING`` (two
  ``comms send`` processes on two machines never both get it), drafts and incidents are
  locked ``FOR NO KEY UPDATE`` before they are changed, and incident and draft numbers come
  from a counter row, a sequence that a rolled-back transaction does not use up.  A
  transaction that reads or changes the users holds the users lock (an advisory lock)
  from then to its end, so that managing users is serialised as on SQLite.
- **Schema.** Versioned migrations (``MIGRATIONS``), applied by ``comms db migrate`` only;
  opening a store whose schema is older or newer than this comms is one ``StoreError``.
- **Errors.** Every driver error is a ``StoreError`` naming the server as ``host:port``,
  never the password; a server that cannot be reached, or a connection lost mid-command,
  says so and points at ``COMMS_DATABASE_URL``.

Times are ``timestamptz`` (read back as aware UTC times), JSON columns ``json`` (kept as
written, so keys come back in the order SQLite returns them), tenant lists ``text[]``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.util import find_spec
from time import monotonic
from typing import TYPE_CHECKING, Any, Self, cast
from weakref import WeakKeyDictionary

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
from comms.errors import ConfigError, StoreError
from comms.identity import no_user, user_taken

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from psycopg.pq import TransactionStatus

    # The pool is imported only by a process that needs a second connection at once (see
    # Database); whether it is installed is known now.
    if find_spec("psycopg_pool") is None:
        raise ImportError("No module named 'psycopg_pool'", name="psycopg_pool")
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without the driver
    raise ConfigError(
        f"COMMS_DATABASE_URL names a PostgreSQL database, but its driver is missing ({exc.name}); "
        "install it with: pip install 'comms[postgres]'"
    ) from None

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

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from comms.bootstrap import DatabaseURL
    from comms.incidentio.webhooks import WebhookMemory

Connection = psycopg.Connection[tuple[Any, ...]]

POOL_SIZE = 4  # connections at most: a CLI process needs one; `comms send` and the watcher more
CONNECT_TIMEOUT = 5  # seconds, unless the URL sets connect_timeout
POOL_TIMEOUT = 15.0  # seconds to wait for a free (or new) connection
IDLE_CHECK = 5.0  # a connection idle longer than this is checked before it is used
# Advisory locks are per database, so each is keyed by one of these and the schema's hash.
LOCK_MIGRATE = 0x636F_6D6D  # "comm"
LOCK_CADENCE = 0x636F_6D6E
LOCK_USERS = 0x636F_6D6F

# psycopg_pool logs failed connection attempts as warnings; with no logging configured
# Python would print them on stderr, under the one-line StoreError the CLI shows.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

# Each entry upgrades the schema by one version, in one transaction with its
# schema_version row; never edit a released entry, append.  The same logical schema as
# SqliteStore's migrations plus SqliteAlerts' tables.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (
        key text PRIMARY KEY,
        value text NOT NULL
    );
    -- Counters hand out INC-n and draft numbers: a row lock, so unique under concurrency,
    -- and transactional, so a rolled-back change uses no number (a SEQUENCE would).
    CREATE TABLE counters (
        name text PRIMARY KEY,
        value bigint NOT NULL
    );
    INSERT INTO counters (name, value) VALUES ('incidents', 0), ('drafts', 0);
    CREATE TABLE tenants (
        id text COLLATE "C" PRIMARY KEY,
        name text NOT NULL,
        data json NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE TABLE incidents (
        ref text PRIMARY KEY,
        seq bigint NOT NULL UNIQUE,
        title text NOT NULL,
        severity text NOT NULL,
        status text NOT NULL,
        tenants text[] NOT NULL,
        security boolean NOT NULL DEFAULT false,
        pubsec boolean NOT NULL DEFAULT false,
        started_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        engaged_at timestamptz,
        status_changed_at timestamptz NOT NULL,
        mitigated_at timestamptz,
        mitigated_by text,
        resolved_at timestamptz,
        resolved_by text,
        last_update_at timestamptz,
        promised_update_at text,  -- as the sender wrote it; read like SqliteAlerts does
        rca_internal_at timestamptz,
        rca_external_at timestamptz
    );
    CREATE INDEX incidents_open ON incidents (seq) WHERE status <> 'resolved';
    CREATE TABLE drafts (
        id bigint PRIMARY KEY,
        incident_ref text NOT NULL REFERENCES incidents (ref),
        kind text NOT NULL,
        state text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        superseded_by bigint
    );
    CREATE INDEX drafts_incident ON drafts (incident_ref);
    CREATE INDEX drafts_state ON drafts (state);
    CREATE UNIQUE INDEX drafts_one_open ON drafts (incident_ref, kind)
        WHERE state <> 'sent' AND superseded_by IS NULL;
    CREATE TABLE revisions (
        draft_id bigint NOT NULL REFERENCES drafts (id),
        number integer NOT NULL,
        subject text NOT NULL,
        body text NOT NULL,
        variables json NOT NULL,
        author text NOT NULL,
        created_at timestamptz NOT NULL,
        edited boolean NOT NULL DEFAULT false,
        findings json NOT NULL DEFAULT '[]',
        PRIMARY KEY (draft_id, number)
    );
    CREATE TABLE events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        incident_ref text NOT NULL,
        at timestamptz NOT NULL,
        actor text NOT NULL,
        type text NOT NULL,
        data json NOT NULL
    );
    CREATE INDEX events_incident ON events (incident_ref, id);
    CREATE INDEX events_type ON events (type, incident_ref);
    CREATE TABLE reviews (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        draft_id bigint NOT NULL REFERENCES drafts (id),
        revision integer NOT NULL,
        reviewer text NOT NULL,
        role text NOT NULL,
        decision text NOT NULL,
        note text NOT NULL DEFAULT '',
        approval_hash text NOT NULL,
        at timestamptz NOT NULL
    );
    CREATE INDEX reviews_draft ON reviews (draft_id, id);
    CREATE TABLE deliveries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        idempotency_key text NOT NULL UNIQUE,
        incident_ref text NOT NULL,
        draft_id bigint NOT NULL REFERENCES drafts (id),
        revision integer NOT NULL,
        tenant text NOT NULL,
        channel text NOT NULL,
        text_sha256 text NOT NULL,
        state text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        lease_owner text,
        lease_until timestamptz,
        external_id text,
        receipt json,
        error text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX deliveries_state ON deliveries (state);
    CREATE INDEX deliveries_draft ON deliveries (draft_id, revision);
    """,
    # The cadence watcher's memory (SqliteAlerts keeps these outside its migrations).
    """
    CREATE TABLE cadence_alerts (
        ref text COLLATE "C" NOT NULL,
        clock text COLLATE "C" NOT NULL,
        severity text NOT NULL,
        due_at timestamptz NOT NULL,
        stage text NOT NULL,
        dedup_key text NOT NULL,
        opened_at timestamptz NOT NULL,
        last_at timestamptz NOT NULL,
        sends integer NOT NULL,
        restricted boolean NOT NULL,
        PRIMARY KEY (ref, clock)
    );
    CREATE TABLE cadence_snoozes (
        ref text PRIMARY KEY,
        until timestamptz NOT NULL,
        actor text NOT NULL,
        created_at timestamptz NOT NULL
    );
    CREATE TABLE cadence_partial (
        token text NOT NULL,
        sink text NOT NULL,
        at timestamptz NOT NULL,
        PRIMARY KEY (token, sink)
    );
    CREATE TABLE cadence_alert_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL,
        ref text NOT NULL,
        clock text NOT NULL,
        action text NOT NULL,
        due_at timestamptz NOT NULL,
        dedup_key text NOT NULL,
        sinks json NOT NULL
    );
    """,
    # Team mode's people (only each token's SHA-256), what was done to them and by whom
    # (never a token or its hash), and the one secret `comms serve` signs sessions with.
    """
    CREATE TABLE users (
        name text COLLATE "C" PRIMARY KEY,
        role text NOT NULL,
        token_hash text NOT NULL,
        created_at timestamptz NOT NULL,
        created_by text NOT NULL,
        disabled boolean NOT NULL DEFAULT false,
        token_changed_at timestamptz
    );
    CREATE UNIQUE INDEX users_token ON users (token_hash);
    CREATE TABLE user_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL,
        actor text NOT NULL,
        user_name text NOT NULL,
        action text NOT NULL,
        role text NOT NULL
    );
    CREATE TABLE session_secret (
        id integer PRIMARY KEY CHECK (id = 1),
        secret bytea NOT NULL
    );
    """,
    # What incident.io's webhook receiver remembers (comms.incidentio.webhooks.WebhookMemory):
    # the delivery ids handled lately, and the newest state handled per incident.io incident,
    # shared by every `comms serve` on the database.
    """
    CREATE TABLE webhook_deliveries (
        id text PRIMARY KEY,
        received_at timestamptz NOT NULL
    );
    CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
    CREATE TABLE webhook_states (
        object_id text PRIMARY KEY,
        updated_at timestamptz NOT NULL
    );
    """,
    # Each user's session epoch: a session cookie carries the one it was made in, and is
    # refused once it has moved on (signing out ends the user's sessions on every server,
    # and a disabled user enabled again gets none of them back).
    """
    ALTER TABLE users ADD COLUMN session_epoch bigint NOT NULL DEFAULT 0;
    """,
    # The Slack note of each sent revision, claimed before it is posted (comms.ports.NoteLedger):
    # two sends finishing one draft at once post it once.  A row stays once posted.
    """
    CREATE TABLE slack_notes (
        draft_id bigint NOT NULL,
        revision integer NOT NULL,
        owner text NOT NULL,
        claimed_at timestamptz NOT NULL,
        PRIMARY KEY (draft_id, revision)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Times and JSON columns come back typed.
ROWS = Rows()


def open_store(url: DatabaseURL) -> PostgresStore:
    """The store registered for ``postgresql`` URLs in ``comms.bootstrap`` (connects on
    first use)."""
    return PostgresStore(url.target)


# -- the database: pool, transactions, errors, schema version ------------------------------


def mask_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` parameter) as ``***``."""
    masked = re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", masked)


def _reason(exc: BaseException) -> str:
    """libpq's reason in a few words: 'Connection refused', 'database "x" does not exist'."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    text = re.sub(r"^connection failed: ", "", text)
    text = re.sub(r"^connection to server (at|on) .*? failed: ", "", text)
    text = re.sub(r"^(FATAL|ERROR):\s+", "", text)
    return text.rstrip(".") or type(exc).__name__


class Database:
    """One PostgreSQL database as comms uses it: connections made on first use (a pool
    once two threads need one at a time), one transaction per thread, the schema version,
    and every driver error as a one-line ``StoreError``."""

    def __init__(self, url: str) -> None:
        self._password = _url_password(url)
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise ConfigError(
                f"COMMS_DATABASE_URL {mask_url(url)} is not a PostgreSQL URL comms can use "
                f"({self._scrub(_reason(exc))})"
            ) from None
        self._password = str(params.get("password") or self._password)
        host = str(params.get("host") or params.get("hostaddr") or "localhost")
        self.where = f"{host}:{params.get('port') or 5432}"
        self.label = f"{self.where}/{params.get('dbname') or params.get('user') or ''}"
        # Times come back in UTC; the URL's own options (a search_path) are kept.
        options = " ".join(filter(None, [str(params.get("options") or ""), "-c TimeZone=UTC"]))
        extra: dict[str, Any] = {"options": options}
        extra.setdefault("connect_timeout", params.get("connect_timeout") or CONNECT_TIMEOUT)
        extra.setdefault("application_name", params.get("application_name") or "comms")
        self._conninfo = make_conninfo(url, **extra)
        self.version: int | None = None  # the stored schema version, read on first use
        self._first: Connection | None = None  # see _open
        self._first_out = False  # lent to a thread now
        self._pool: ConnectionPool[Connection] | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closed = False
        self._handoff: list[Connection] = []
        self._failures: list[str] = []
        self._used: WeakKeyDictionary[Connection, float] = WeakKeyDictionary()

    # -- errors ---------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        # libpq quotes what it cannot parse, which may be part of the password.
        return text.replace(self._password, "***") if self._password else text

    def unreachable(self, reason: str) -> StoreError:
        """The one line for a server that cannot be reached, or a connection lost."""
        return StoreError(
            f"cannot reach PostgreSQL at {self.where} ({self._scrub(reason)}); "
            "check COMMS_DATABASE_URL"
        )

    def error(self, exc: BaseException, conn: Connection | None = None) -> StoreError:
        """A driver error as a ``StoreError``: the connection's loss, or what the server said."""
        if isinstance(exc, StoreError):
            return exc
        lost = conn is not None and (conn.broken or conn.closed)
        if lost or (conn is None and isinstance(exc, psycopg.OperationalError)):
            return self.unreachable(_reason(exc))
        reason = self._scrub(_reason(exc))
        if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn):
            return StoreError(
                f"PostgreSQL at {self.label}: {reason}; the comms schema is incomplete, "
                "run: comms db migrate"
            )
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return StoreError(f"PostgreSQL at {self.label}: {reason}; try again")
        return StoreError(f"PostgreSQL at {self.label}: {reason}")

    def schema_error(self, version: int) -> StoreError | None:
        """Why a store cannot use a schema at ``version``, or None when it is current."""
        if version == SCHEMA_VERSION:
            return None
        if version == 0:
            return StoreError(
                f"the PostgreSQL database at {self.label} has no comms schema yet; "
                "run: comms db migrate"
            )
        if version < SCHEMA_VERSION:
            return StoreError(
                f"the comms schema in PostgreSQL at {self.label} is version {version}, older "
                f"than this comms ({SCHEMA_VERSION}); run: comms db migrate"
            )
        return StoreError(
            f"the comms schema in PostgreSQL at {self.label} is version {version}, newer than "
            f"this comms ({SCHEMA_VERSION}); upgrade comms"
        )

    # -- connections ----------------------------------------------------------------------

    def _connection_class(self) -> type[Connection]:
        handoff, failures = self._handoff, self._failures

        class PooledConnection(psycopg.Connection[tuple[Any, ...]]):
            """Hands the pool the first connection once it is given back, instead of
            making another; remembers why connecting failed (the pool only says that it
            timed out)."""

            @classmethod
            def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
                if handoff:
                    return cast(Self, handoff.pop())
                try:
                    return super().connect(conninfo, **kwargs)
                except psycopg.OperationalError as exc:
                    failures[:] = [_reason(exc)]
                    raise

        return PooledConnection

    def _connect(self) -> Connection:
        try:
            return psycopg.Connection.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise self.unreachable(_reason(exc)) from None

    def _open(self) -> None:
        """Connect on first use: the first connection fails at once with libpq's reason
        when the server cannot be reached, and reads the schema version."""
        if self._first is not None or self._pool is not None:
            return
        with self._lock:
            if self._closed:
                raise StoreError("this comms store was closed; open it again")
            if self._first is not None or self._pool is not None:
                return
            first = self._connect()
            try:
                self.version = _stored_version(first)
            except psycopg.Error as exc:
                first.close()
                raise self.error(exc, first) from None
            self._first = first
            self._used[first] = monotonic()

    def _make_pool(self) -> ConnectionPool[Connection]:
        """The pool, made (under ``_lock``) when a second thread needs a connection while
        the first is lent: a one-shot command never starts its threads or imports it."""
        if self._pool is None:
            from psycopg_pool import ConnectionPool

            connection_class = self._connection_class()
            pool = ConnectionPool(
                self._conninfo,
                connection_class=connection_class,
                kwargs={"autocommit": True},
                min_size=0,
                max_size=POOL_SIZE - 1,  # and the first connection, lent now (see release)
                open=False,
                configure=self._fresh,
                check=self._check,
                timeout=POOL_TIMEOUT,
                num_workers=1,
                name=f"comms {self.where}",
            )
            pool.open(wait=False)
            self._pool = pool
        return self._pool

    def _fresh(self, conn: Connection) -> None:
        # The first connection, handed to the pool, keeps the time it was last used.
        self._used.setdefault(conn, monotonic())

    def _idle(self, conn: Connection) -> bool:
        return monotonic() - self._used.get(conn, 0.0) > IDLE_CHECK

    def _check(self, conn: Connection) -> None:
        # A connection idle for a while may have been dropped by the server or a proxy:
        # one round trip finds out, and the pool replaces it.  A busy one is not checked.
        if self._idle(conn):
            conn.execute("")

    def acquire(self, *, verify: bool = True) -> Connection:
        """A connection of its own; give it back with ``release``.

        The first connection serves one thread at a time; only when a second thread asks
        while it is lent is a pool made, which takes the first connection over when it
        comes back: never more than ``POOL_SIZE`` connections at once.
        """
        self._open()
        if verify:
            self._verify()
        with self._lock:
            if self._closed:
                raise StoreError("this comms store was closed; open it again")
            first = self._first if self._pool is None and not self._first_out else None
            if first is None:
                pool = self._make_pool()
            else:
                self._first_out = True
        if first is not None:
            return self._lend_first(first)
        from psycopg_pool import PoolTimeout

        try:
            return pool.getconn()
        except PoolTimeout:
            if self._failures:
                raise self.unreachable(self._failures[-1]) from None
            raise StoreError(
                f"no PostgreSQL connection to {self.where} came free within "
                f"{POOL_TIMEOUT:g} s; try again"
            ) from None

    def _verify(self) -> None:
        """``StoreError`` unless the stored schema is this comms' version."""
        if self.version != SCHEMA_VERSION:
            problem = self.schema_error(self.current_version())
            if problem is not None:
                raise problem

    def _lend_first(self, conn: Connection) -> Connection:
        """The first connection, checked after a long idle time (replaced if it was lost)."""
        try:
            if not (conn.closed or conn.broken) and self._idle(conn):
                try:
                    conn.execute("")
                except psycopg.Error:
                    conn.close()
            if conn.closed or conn.broken:
                conn = self._first = self._connect()
            return conn
        except BaseException:
            with self._lock:
                self._first_out = False
            raise

    def release(self, conn: Connection) -> None:
        """Give a connection back (a broken one is discarded)."""
        if conn.info.transaction_status != TransactionStatus.IDLE:
            _rollback(conn)
        self._used[conn] = monotonic()
        with self._lock:
            pool = None if self._closed else self._pool
            if conn is self._first:
                self._first_out = False
                if pool is None and not self._closed:
                    return  # kept for the next caller
                self._first = None
                if pool is not None:
                    # The pool's last place (see _make_pool): this connection, or a new one.
                    pool.resize(0, POOL_SIZE)
                    if not (conn.closed or conn.broken):
                        self._handoff.append(conn)
                        return
                    pool = None
        if pool is None:
            conn.close()
        else:
            pool.putconn(conn)

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Serve this thread's calls inside from one connection (``Store.pinned``): taken
        at the first call that needs one, given back when the outermost block ends."""
        local = self._local
        local.pins = getattr(local, "pins", 0) + 1
        try:
            yield
        finally:
            local.pins -= 1
            conn: Connection | None = getattr(local, "pinned", None)
            if not local.pins and conn is not None:
                local.pinned = local.cursor = None
                self.release(conn)

    def _take(self, verify: bool) -> tuple[Connection, bool]:
        """A connection for one call, and whether the caller gives it back: the thread's
        pinned one (taken now if it pins and has none yet, or its old one was lost), else
        one of its own."""
        local = self._local
        if not getattr(local, "pins", 0):
            return self.acquire(verify=verify), True
        conn: Connection | None = getattr(local, "pinned", None)
        if conn is not None and not (conn.closed or conn.broken):
            if verify:
                self._verify()
            return conn, False
        if conn is not None:
            local.pinned = None
            self.release(conn)
        local.pinned = self.acquire(verify=verify)
        return local.pinned, False

    @contextmanager
    def connection(self, *, verify: bool = True) -> Iterator[Connection]:
        """The thread's transaction connection inside ``transaction()``, its pinned one
        inside ``pinned()``, else a pooled one (autocommit: each statement on its own)."""
        current: Connection | None = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        conn, own = self._take(verify)
        try:
            yield conn
        finally:
            if own:
                self.release(conn)

    @contextmanager
    def transaction(self, *, verify: bool = True, lock: int | None = None) -> Iterator[Connection]:
        """One transaction per thread: nested blocks join the outer one, which commits (or
        rolls back on any exception).  With ``lock``, the transaction holds that advisory
        lock of the schema from here to its end.  Driver errors leave as ``StoreError``."""
        local = self._local
        if getattr(local, "depth", 0):
            local.depth += 1
            try:
                if lock is not None:
                    _hold(local, lock)
                yield local.conn
            except psycopg.Error as exc:
                raise self.error(exc, local.conn) from exc
            finally:
                local.depth -= 1
            return
        conn, own = self._take(verify)
        try:
            try:
                conn.execute("BEGIN")
            except psycopg.Error as exc:
                raise self.error(exc, conn) from exc
            local.conn, local.depth, local.locks = conn, 1, set()
            try:
                if lock is not None:
                    _hold(local, lock)
                yield conn
                conn.execute("COMMIT")
            except psycopg.Error as exc:
                _rollback(conn)
                raise self.error(exc, conn) from exc
            except BaseException:
                _rollback(conn)
                raise
            finally:
                local.conn, local.depth = None, 0
                if own:
                    local.cursor = None
        finally:
            if own:
                self.release(conn)

    def read(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = (), *, lock: int | None = None
    ) -> list[tuple[Any, ...]]:
        """The rows of one query, inside the thread's transaction if any: there after taking
        the advisory lock ``lock`` (outside one, a single statement needs none)."""
        with self.connection() as conn:
            try:
                if lock is not None and conn is getattr(self._local, "conn", None):
                    _hold(self._local, lock)
                return self.rows(conn, sql, params)
            except psycopg.Error as exc:
                raise self.error(exc, conn) from exc

    def rows(
        self, conn: Connection, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """The rows of one statement on ``conn`` (lent to this thread).  Inside ``pinned()``
        or ``transaction()`` the statements share one cursor, kept until the block ends: a
        new cursor a statement cost a quarter of a lookup by key, in Python."""
        local = self._local
        cursor: psycopg.Cursor[tuple[Any, ...]] | None = getattr(local, "cursor", None)
        if cursor is None or cursor.connection is not conn or cursor.closed:
            cursor = conn.cursor()
            if conn is getattr(local, "pinned", None) or conn is getattr(local, "conn", None):
                local.cursor = cursor
        return cursor.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the pool and every connection; closing twice is harmless."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            first, self._first = self._first, None
            while self._handoff:
                self._handoff.pop().close()
        if first is not None:
            first.close()
        if pool is not None:
            pool.close()

    # -- schema ---------------------------------------------------------------------------

    def current_version(self) -> int:
        """The stored schema version: as read when the pool opened if that was this comms'
        version, else read again (`comms db migrate` may have run since)."""
        self._open()
        return SCHEMA_VERSION if self.version == SCHEMA_VERSION else self.stored_version()

    def stored_version(self) -> int:
        """The schema version stored in the database (0 before ``comms db migrate``)."""
        self._open()
        with self.connection(verify=False) as conn:
            try:
                self.version = _stored_version(conn)
            except psycopg.Error as exc:
                raise self.error(exc, conn) from exc
        return self.version

    def migrate(self, to: int = SCHEMA_VERSION) -> tuple[int, int]:
        """Apply the migrations up to version ``to``, all in one transaction under a lock
        (two ``comms db migrate`` at once apply each once); return (from, to)."""
        with self.transaction(verify=False, lock=LOCK_MIGRATE) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            before = _stored_version(db)
            if before > SCHEMA_VERSION:
                problem = self.schema_error(before)
                assert problem is not None
                raise problem
            for number in range(before, max(before, to)):
                db.execute(MIGRATIONS[number])
                db.execute("INSERT INTO schema_version (version) VALUES (%s)", (number + 1,))
            if max(before, to) >= 1:
                _make_store_id(db)
        self.version = max(before, to)
        return before, self.version


def _url_password(url: str) -> str:
    """The password in ``url``, as best it can be read from a URL libpq may refuse."""
    found = re.search(r"://[^:/@?#]*:([^@/?#]*)@", url)
    return found.group(1) if found else ""


def _stored_version(conn: Connection) -> int:
    try:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    except psycopg.errors.UndefinedTable:
        if conn.info.transaction_status == TransactionStatus.INERROR:
            raise
        return 0
    return int(row[0] or 0) if row else 0


def _hold(local: threading.local, key: int) -> None:
    """Take advisory lock ``key`` of the current schema until the thread's transaction
    (``local``) ends; once per transaction."""
    if key not in local.locks:
        local.conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (key,))
        local.locks.add(key)


def _rollback(conn: Connection) -> None:
    # After a lost connection there is nothing to roll back (the server did it); a second
    # error here would hide the first.
    if conn.closed or conn.broken:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        conn.close()


def _make_store_id(db: Connection) -> None:
    # 64 random bits: distinct for every store ever made, short enough for any key header.
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('store_id', %s) ON CONFLICT (key) DO NOTHING",
        (secrets.token_hex(8),),
    )


def _one(cursor: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    row = cursor.fetchone()
    assert row is not None  # the statement always returns a row
    return row


def _next_number(db: Connection, name: str, floor: str) -> int:
    """The next number of counter ``name``; the row stays locked until the transaction
    ends.  A counter row lost by hand restarts after ``floor`` (the highest number used)."""
    return int(
        _one(
            db.execute(
                f"INSERT INTO counters (name, value) SELECT %s, COALESCE(({floor}), 0) + 1 "
                "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                (name,),
            )
        )[0]
    )


# -- clock rows (shared with PostgresAlerts) -------------------------------------------------


# Whether one of the incident's tenants is flagged pubsec now: its flag as Python reads the
# JSON value (true, a number but 0, a text, list or object not empty), or data that is not
# an object at all (unreadable: its incidents' data stays out of alerts).  Joined here, so
# that a clock read no longer sends every tenant's data to be decoded in Python.
_FLAGGED = """(
    json_typeof(t.data) <> 'object' OR CASE json_typeof(t.data -> 'pubsec')
        WHEN 'boolean' THEN (t.data -> 'pubsec')::text = 'true'
        WHEN 'number' THEN (t.data -> 'pubsec')::text::numeric <> 0
        WHEN 'string' THEN (t.data -> 'pubsec')::text <> '""'
        WHEN 'array' THEN json_array_length(t.data -> 'pubsec') > 0
        WHEN 'object' THEN EXISTS (SELECT FROM json_object_keys(t.data -> 'pubsec'))
        ELSE false
    END
)"""
# Many incidents (the review queue, the watcher): the flagged ids are gathered once a
# query (an InitPlan), every tenant's data read once.  A few (a draft page's one): only
# their own tenants' data is read, for each.
TENANTS_PUBSEC = f"incidents.tenants && ARRAY(SELECT t.id::text FROM tenants AS t WHERE {_FLAGGED})"
OWN_TENANTS_PUBSEC = (
    f"EXISTS (SELECT FROM tenants AS t WHERE t.id = ANY(incidents.tenants) AND {_FLAGGED})"
)
# Up to this many refs, a clock read reads each incident's own tenants.
FEW_REFS = 8


def _one_of(column: str, values: Sequence[str]) -> tuple[str, str]:
    """``column`` is one of ``values``: the condition and its parameter.

    One value is compared as itself: with an array of one, PostgreSQL planned the prepared
    statement anew on every run (a draft page's clock read, twice the server's work).
    Several go as an array literal: psycopg dumps a list in Python at about a microsecond
    an element, and the review queue sends a hundred refs, twice.  Every element is quoted,
    so that none reads as NULL or splits.
    """
    if len(values) == 1:
        return f"{column} = %s", values[0]
    items = list(values)
    joined = "".join(items)
    if '"' in joined or "\\" in joined:  # rare: then each is escaped
        items = [v.replace("\\", "\\\\").replace('"', '\\"') for v in items]
    literal = '{"' + '","'.join(items) + '"}' if items else "{}"
    return f"{column} = ANY(%s::text[])", literal


def read_clock_rows(
    db: Database, where: str, params: Sequence[Any], *, few: bool = False
) -> Page[ClockRow]:
    """``ClockRow`` of every incident matching ``where``, oldest first, with pubsec from the
    tenants' current flags, the Director escalation and the tenants the latest update
    missed from the event log.  A row that cannot be read is named in ``skipped``.
    ``few``: ``where`` matches a handful of incidents at most."""
    from comms.cadence import NO_MITIGATION_IN_SIGHT

    pubsec = OWN_TENANTS_PUBSEC if few else TENANTS_PUBSEC

    with db.connection() as conn:
        try:
            rows = db.rows(
                conn,
                f"SELECT {CLOCK_COLUMNS}, {pubsec} FROM incidents WHERE {where} ORDER BY seq",
                params,
            )
            if not rows:
                return Page()
            several = [r[0] for r in rows if r[13] is not None and len(r[4]) > 1]
            updates: dict[str, list[SentUpdate]] = {}
            if several:
                among, param = _one_of("incident_ref", several)
                for ref, at, data in db.rows(
                    conn,
                    "SELECT incident_ref, at, data FROM events WHERE type = 'update.sent' "
                    f"AND {among} ORDER BY id",
                    (param,),
                ):
                    updates.setdefault(ref, []).append(sent_update(at, data))
            unmitigated = [r[0] for r in rows if r[3] in NO_MITIGATION_IN_SIGHT and r[11] is None]
            escalated: dict[str, datetime] = {}
            if unmitigated:
                among, param = _one_of("incident_ref", unmitigated)
                escalated = dict(
                    db.rows(
                        conn,
                        "SELECT incident_ref, min(at) FROM events WHERE type = 'director.engaged' "
                        f"AND {among} GROUP BY incident_ref",
                        (param,),
                    )
                )
        except psycopg.Error as exc:
            raise db.error(exc, conn) from exc
    out: Page[ClockRow] = Page()
    skipped: list[str] = []
    for r in rows:
        try:
            out.append(ROWS.clock(r, flagged=r[17], escalated=escalated, updates=updates))
        except (ValueError, TypeError):
            skipped.append(str(r[0]))  # one odd row must not stop every incident's clocks
    out.skipped = tuple(skipped)
    return out


# -- the store ---------------------------------------------------------------------------


class PostgresStore:
    """``comms.ports.Store`` on a PostgreSQL database (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db = Database(url)
        self._store_id: str | None = None
        self._session_key: bytes | None = None

    def close(self) -> None:
        """Close the pool; the data stays."""
        self._db.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Join every change this thread makes inside into one transaction
        (``Store.transaction``); reads inside see them, nesting joins the outer block."""
        with self._db.transaction():
            yield

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Serve this thread's calls inside from one pooled connection (``Store.pinned``):
        a page's reads wait for a free connection once.  Each statement still commits on
        its own and ``transaction()`` still joins changes (on this connection)."""
        with self._db.pinned():
            yield

    # -- schema (``comms db``) ---------------------------------------------------------------

    def schema_version(self) -> tuple[int, int]:
        """(the stored schema version, the version this comms uses)."""
        return self._db.stored_version(), SCHEMA_VERSION

    def migrate(self, to: int = SCHEMA_VERSION) -> tuple[int, int]:
        """Bring the schema up to this comms' version (``comms db migrate``): (from, to)."""
        return self._db.migrate(to)

    def store_id(self) -> str:
        """This store's id (``DeliveryLedger.store_id``), made when it was created."""
        if self._store_id is None:
            rows = self._db.read(STORE_ID)
            if not rows:  # the row was deleted by hand: a new namespace, made once
                with self._db.transaction() as db:
                    _make_store_id(db)
                rows = self._db.read(STORE_ID)
            self._store_id = str(rows[0][0])
        return self._store_id

    @staticmethod
    def _log(
        db: Connection, ref: str, type_: str, actor: str, at: datetime, data: dict[str, Any]
    ) -> int:
        row = _one(
            db.execute(
                "INSERT INTO events (incident_ref, at, actor, type, data) "
                "VALUES (%s, %s, %s, %s, %s::json) RETURNING id",
                (ref, at, actor, type_, json.dumps(data, sort_keys=True, default=str)),
            )
        )
        return int(row[0])

    # -- tenants ----------------------------------------------------------------------------

    def put_tenant(self, tenant: Tenant) -> None:
        """Insert or replace a tenant."""
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO tenants (id, name, data, updated_at) VALUES (%s, %s, %s::json, %s) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, data = excluded.data, "
                "updated_at = excluded.updated_at",
                (tenant.id, tenant.name, json.dumps(tenant.to_dict()), datetime.now(UTC)),
            )

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Return a tenant or raise ``NotFoundError``."""
        rows = self._db.read("SELECT data FROM tenants WHERE id = %s", (tenant_id,))
        if not rows:
            raise no_tenant(tenant_id)
        return Tenant(**rows[0][0])

    def list_tenants(self) -> list[Tenant]:
        """All tenants, by id."""
        return [Tenant(**r[0]) for r in self._db.read("SELECT data FROM tenants ORDER BY id")]

    def tenant_names(self) -> dict[str, tuple[str, ...]]:
        """Every tenant's id → its name then its aliases, by id (``TenantStore.tenant_names``):
        two small values a tenant, not its whole data decoded and checked."""
        # Text as it is, and no empty alias list to decode: most tenants have none.
        rows = self._db.read(
            "SELECT id, CASE WHEN json_typeof(data -> 'name') = 'string' "
            "THEN data ->> 'name' END, CASE WHEN data ->> 'aliases' <> '[]' "
            "THEN data -> 'aliases' END FROM tenants ORDER BY id"
        )
        return names_of(rows, self.get_tenant)

    # -- incidents ----------------------------------------------------------------------------

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
        """Open an incident; ``ref`` defaults to the next ``INC-n`` (unique however many
        open at once: the counter row is locked until the incident is stored)."""
        with self._db.transaction() as db:
            seq = _next_number(db, "incidents", "SELECT max(seq) FROM incidents")
            ref = ref or f"INC-{seq}"
            inserted = db.execute(
                "INSERT INTO incidents (ref, seq, title, severity, status, tenants, security, "
                "pubsec, started_at, created_at, updated_at, engaged_at, status_changed_at) "
                "VALUES (%s, %s, %s, %s, 'investigating', %s::text[], %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (ref) DO NOTHING",
                (
                    ref,
                    seq,
                    title,
                    severity.value,
                    list(tenants),
                    security,
                    pubsec,
                    started_at,
                    now,
                    now,
                    now if engaged else None,
                    now,
                ),
            ).rowcount
            if not inserted:
                raise incident_taken(ref)
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
        rows = self._db.read(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE ref = %s", (ref,))
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
        rows = self._db.read(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents{where} ORDER BY seq DESC LIMIT %s OFFSET %s",
            _window(limit, offset),
        )
        return page(rows, limit, ROWS.incident, lambda r: str(r[0]))

    def update_incident(
        self, incident: Incident, *, event: str, actor: str, data: dict[str, Any]
    ) -> Incident:
        """Replace an incident's fields and log ``event`` in one transaction."""
        with self._db.transaction() as db:
            old = db.execute(
                "SELECT status FROM incidents WHERE ref = %s FOR NO KEY UPDATE", (incident.ref,)
            ).fetchone()
            if old is None:
                raise no_incident(incident.ref)
            status_changed = old[0] != incident.status.value
            db.execute(
                "UPDATE incidents SET title = %s, severity = %s, status = %s, tenants = %s::text[], "
                "security = %s, pubsec = %s, started_at = %s, updated_at = %s, mitigated_at = %s, "
                "mitigated_by = %s, resolved_at = %s, resolved_by = %s, "
                "status_changed_at = CASE WHEN %s THEN %s ELSE status_changed_at END "
                "WHERE ref = %s",
                (
                    incident.title,
                    incident.severity.value,
                    incident.status.value,
                    list(incident.tenants),
                    incident.security,
                    incident.pubsec,
                    incident.started_at,
                    incident.updated_at,
                    incident.mitigated_at,
                    incident.mitigated_by,
                    incident.resolved_at,
                    incident.resolved_by,
                    status_changed,
                    incident.updated_at,
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
        with self._db.transaction() as db:
            changed = db.execute(
                f"UPDATE incidents SET {column} = %s WHERE ref = %s",
                (at, ref),
            ).rowcount
            if not changed:  # no event for an incident that does not exist
                raise no_incident(ref)
            self._log(db, ref, event, actor, at, data)

    def clock_rows(
        self, *, open_only: bool = True, refs: Sequence[str] | None = None
    ) -> list[ClockRow]:
        """Every incident's clocks as plain tuples (for cadence checks), oldest first; with
        ``refs``, only those incidents'."""
        where = ["status <> 'resolved'" if open_only else "true"]
        params: list[Any] = []
        if refs is not None:
            chosen = list(dict.fromkeys(refs))
            if not chosen:
                return Page()
            among, param = _one_of("ref", chosen)
            where.append(among)
            params.append(param)
        few = refs is not None and len(chosen) <= FEW_REFS
        return read_clock_rows(self._db, " AND ".join(where), params, few=few)

    # -- drafts ------------------------------------------------------------------------------

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
        draft of ``kind``, else starts one; the drafts counter row is locked first, so two
        writers drafting at once make one draft (the drafts_one_open index backs it)."""
        with self._db.transaction() as db:
            previous_state: str | None = None
            started = False
            if draft_id is None:
                _lock_counter(db, "drafts", "SELECT max(id) FROM drafts")
                found = db.execute(
                    f"SELECT id FROM drafts WHERE incident_ref = %s AND kind = %s AND {OPEN_DRAFT}",
                    (incident_ref, kind.value),
                ).fetchone()
                if found is None:
                    draft_id = _next_number(db, "drafts", "SELECT max(id) FROM drafts")
                    db.execute(
                        "INSERT INTO drafts (id, incident_ref, kind, state, created_at, "
                        "updated_at) VALUES (%s, %s, %s, 'draft', %s, %s)",
                        (draft_id, incident_ref, kind.value, now, now),
                    )
                    started = True
                else:
                    draft_id = int(found[0])
            if started:
                number = 1
            else:
                row = (
                    db.execute(
                        "SELECT state FROM drafts WHERE id = %s FOR NO KEY UPDATE", (draft_id,)
                    ).fetchone()
                    if draft_id in ID_RANGE
                    else None
                )
                if row is None:
                    raise no_draft(draft_id)
                if row[0] == DraftState.SENT.value:
                    raise already_sent(draft_id)
                previous_state = row[0]
                number = _one(
                    db.execute(
                        "SELECT COALESCE(MAX(number), 0) + 1 FROM revisions WHERE draft_id = %s",
                        (draft_id,),
                    )
                )[0]
                # Any new text voids an earlier review: the draft goes back to 'draft'.
                db.execute(
                    "UPDATE drafts SET state = 'draft', updated_at = %s WHERE id = %s",
                    (now, draft_id),
                )
            db.execute(
                "INSERT INTO revisions (draft_id, number, subject, body, variables, author, "
                "created_at, edited, findings) VALUES (%s, %s, %s, %s, %s::json, %s, %s, %s, "
                "%s::json)",
                (
                    draft_id,
                    number,
                    subject,
                    body,
                    json.dumps(variables, sort_keys=True),
                    author,
                    now,
                    edited,
                    json.dumps(findings or []),
                ),
            )
            data = revised(draft_id, number, kind, edited, previous_state)
            self._log(db, incident_ref, "draft.revised", author, now, data)
        return self.get_draft(draft_id)

    def get_draft(self, draft_id: int) -> Draft:
        """Return a draft with its latest revision or raise ``NotFoundError`` (``StoreError``
        if it cannot be read)."""
        rows = self._draft_rows("WHERE d.id = %s", [draft_id]) if draft_id in ID_RANGE else []
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
            clauses.append("d.incident_ref = %s")
            params.append(incident_ref)
        if state is not None:
            clauses.append("d.state = %s")
            params.append(state.value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        order = "DESC" if newest_first else ""
        rows = self._draft_rows(
            f"{where} ORDER BY d.id {order} LIMIT %s OFFSET %s",
            [*params, *_window(limit, offset)],
        )
        return page(rows, limit, ROWS.draft, lambda r: str(r[0]))

    def _draft_rows(self, tail: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._db.read(
            f"SELECT {DRAFT_COLUMNS} FROM drafts d JOIN LATERAL (SELECT * FROM revisions "
            "WHERE draft_id = d.id ORDER BY number DESC LIMIT 1) r ON true " + tail,
            params,
        )

    def draft_summaries(self, *, states: Sequence[DraftState]) -> list[DraftSummary]:
        """The drafts in ``states`` as listings show them, oldest first (see the port);
        the findings are counted here, so no revision's JSON crosses the wire."""
        if not states:
            return []
        # The states are written into the statement (they are DraftState values), not sent
        # as a parameter: prepared with one, PostgreSQL planned it anew on every run, as
        # its plan for states unknown reads every draft.  The findings are read once.
        wanted = ", ".join(f"'{DraftState(s).value}'" for s in sorted(set(states)))
        rows = self._db.read(
            f"SELECT {SUMMARY_COLUMNS}, c.n, c.e "
            "FROM drafts d JOIN LATERAL (SELECT number, subject, author, findings "
            "FROM revisions WHERE draft_id = d.id ORDER BY number DESC LIMIT 1) r ON true "
            "CROSS JOIN LATERAL (SELECT count(*) AS n, "
            "count(*) FILTER (WHERE f ->> 'level' = 'error') AS e FROM json_array_elements("
            "CASE WHEN json_typeof(r.findings) = 'array' THEN r.findings ELSE '[]' END) f) c "
            f"WHERE d.state IN ({wanted}) ORDER BY d.created_at, d.id"
        )
        return page(rows, None, lambda r: ROWS.summary(r, (r[9], r[10])), lambda r: str(r[0]))

    def revisions(self, draft_id: int) -> list[Revision]:
        """Every revision of a draft, oldest first."""
        rows = (
            self._db.read(
                f"SELECT {REVISION_COLUMNS} FROM revisions WHERE draft_id = %s ORDER BY number",
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
        with self._db.transaction() as db:
            row = (
                db.execute(
                    "SELECT incident_ref FROM drafts WHERE id = %s FOR NO KEY UPDATE", (draft_id,)
                ).fetchone()
                if draft_id in ID_RANGE
                else None
            )
            if row is None:
                raise no_draft(draft_id)
            changed = db.execute(
                "UPDATE revisions SET subject = %s, body = %s, variables = %s::json "
                "WHERE draft_id = %s AND number = %s",
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

        Marking an already sent draft sent again changes and logs nothing (the draft row is
        locked first), so two senders finishing together record ``update.sent`` once.
        """
        with self._db.transaction() as db:
            row = (
                db.execute(
                    "SELECT incident_ref, state FROM drafts WHERE id = %s FOR NO KEY UPDATE",
                    (draft_id,),
                ).fetchone()
                if draft_id in ID_RANGE
                else None
            )
            if row is None:
                raise no_draft(draft_id)
            if state is DraftState.SENT and row[1] == DraftState.SENT.value:
                return self.get_draft(draft_id)
            db.execute(
                "UPDATE drafts SET state = %s, updated_at = %s WHERE id = %s",
                (state.value, now, draft_id),
            )
            payload = {"draft_id": draft_id, "from": row[1], "to": state.value, **data}
            self._log(db, row[0], event, actor, now, payload)
            if event == "update.sent":
                # Denormalised for cadence: last update and the next one it promised.
                promise = data.get("next_update_at")
                db.execute(
                    "UPDATE incidents SET last_update_at = %s, promised_update_at = %s "
                    "WHERE ref = %s",
                    (now, None if promise is None else str(promise), row[0]),
                )
        return self.get_draft(draft_id)

    # -- events ------------------------------------------------------------------------------

    def append_event(
        self, incident_ref: str, *, type: str, actor: str, now: datetime, data: dict[str, Any]
    ) -> Event:
        """Append one event to the incident's log."""
        with self._db.transaction() as db:
            event_id = self._log(db, incident_ref, type, actor, now, data)
        return Event(
            id=event_id, incident_ref=incident_ref, at=now, actor=actor, type=type, data=data
        )

    def events(self, incident_ref: str, *, types: Sequence[str] = ()) -> list[Event]:
        """The incident's event log in order, of ``types`` only if given."""
        where, params = "incident_ref = %s", [incident_ref]
        if types:
            among, param = _one_of("type", list(dict.fromkeys(types)))
            where, params = f"{where} AND {among}", [incident_ref, param]
        rows = self._db.read(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} ORDER BY id", params
        )
        return [ROWS.event(r) for r in rows]

    # -- reviews -----------------------------------------------------------------------------

    def add_review(self, review: Review, *, incident_ref: str, state: DraftState) -> Review:
        """Record a review decision, move the draft to ``state`` and log it, atomically."""
        with self._db.transaction() as db:
            review_id = _one(
                db.execute(
                    "INSERT INTO reviews (draft_id, revision, reviewer, role, decision, note, "
                    "approval_hash, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (
                        review.draft_id,
                        review.revision,
                        review.reviewer,
                        review.role,
                        review.decision,
                        review.note,
                        review.approval_hash,
                        review.at,
                    ),
                )
            )[0]
            db.execute(
                "UPDATE drafts SET state = %s, updated_at = %s WHERE id = %s",
                (state.value, review.at, review.draft_id),
            )
            event, data = reviewed(review)
            self._log(db, incident_ref, event, review.reviewer, review.at, data)
        return review.replace(id=int(review_id))

    def reviews(self, draft_id: int) -> list[Review]:
        """Every review of a draft, oldest first."""
        if draft_id not in ID_RANGE:
            return []
        rows = self._db.read(
            f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE draft_id = %s ORDER BY id", (draft_id,)
        )
        return [ROWS.review(r) for r in rows]

    # -- deliveries --------------------------------------------------------------------------

    def plan_deliveries(
        self,
        planned: Sequence[Delivery],
        *,
        actor: str,
        now: datetime,
        retry_failed: bool = False,
    ) -> list[Delivery]:
        """Store delivery intents before any request goes out; existing keys are kept.

        Returns the stored rows for every planned key, so a repeated send sees what an
        earlier run already did.  With ``retry_failed`` a failed one is pending again (its
        attempts and last error kept) and ``delivery.reopened`` is logged.  Two senders
        planning one draft at once take turns on the draft's row: each key is stored and
        logged once.
        """
        keys = [d.idempotency_key for d in planned]
        if not keys:
            return []
        with self._db.transaction() as db:
            db.execute(
                "SELECT id FROM drafts WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE",
                (sorted({d.draft_id for d in planned if d.draft_id in ID_RANGE}),),
            )
            reopened: dict[str, tuple[int, str | None]] = {}
            if retry_failed:
                for key, attempts, error in db.execute(
                    "UPDATE deliveries SET state = 'pending', updated_at = %s "
                    "WHERE idempotency_key = ANY(%s::text[]) AND state = 'failed' "
                    "RETURNING idempotency_key, attempts, error",
                    (now, keys),
                ):
                    reopened[key] = (attempts, error)
            columns = list(
                zip(
                    *(
                        (
                            d.idempotency_key,
                            d.incident_ref,
                            d.draft_id,
                            d.revision,
                            d.tenant,
                            d.channel,
                            d.text_sha256,
                        )
                        for d in planned
                    ),
                    strict=True,
                )
            )
            inserted = {
                r[0]
                for r in db.execute(
                    "INSERT INTO deliveries (idempotency_key, incident_ref, draft_id, revision, "
                    "tenant, channel, text_sha256, state, created_at, updated_at) "
                    "SELECT k, i, d, r, t, c, s, 'pending', %s, %s FROM unnest(%s::text[], "
                    "%s::text[], %s::bigint[], %s::integer[], %s::text[], %s::text[], "
                    "%s::text[]) WITH ORDINALITY AS p (k, i, d, r, t, c, s, n) ORDER BY n "
                    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
                    (now, now, *(list(column) for column in columns)),
                )
            }
            logged: list[tuple[Any, ...]] = []
            for d in planned:
                if d.idempotency_key in reopened:
                    attempts, error = reopened.pop(d.idempotency_key)
                    fields = planned_data(d, attempts=attempts, last_error=error)
                    logged.append((d.incident_ref, now, actor, "delivery.reopened", fields))
                elif d.idempotency_key in inserted:
                    inserted.discard(d.idempotency_key)
                    logged.append((d.incident_ref, now, actor, "delivery.planned", planned_data(d)))
            with db.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO events (incident_ref, at, actor, type, data) "
                    "VALUES (%s, %s, %s, %s, %s::json)",
                    [(*e[:4], json.dumps(e[4], sort_keys=True, default=str)) for e in logged],
                )
            stored = {
                r[0]: ROWS.delivery(r)
                for r in db.execute(
                    f"SELECT {DELIVERY_COLUMNS} FROM deliveries "
                    "WHERE idempotency_key = ANY(%s::text[])",
                    (keys,),
                )
            }
        return [stored[key] for key in keys]

    def get_delivery(self, key: str) -> Delivery:
        """One delivery by its idempotency key."""
        rows = self._db.read(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE idempotency_key = %s", (key,)
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
            clauses.append("draft_id = %s")
            params.append(draft_id)
        if incident_ref is not None:
            clauses.append("incident_ref = %s")
            params.append(incident_ref)
        if states:
            clauses.append("state = ANY(%s::text[])")
            params.append(list(states))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return [
            ROWS.delivery(r)
            for r in self._db.read(
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

        One conditional ``UPDATE … RETURNING``: of two senders on two machines claiming at
        once, the second waits for the first's row lock, then finds the lease taken.  A
        lease whose time ran out, or whose owner is known dead, can be taken over.
        """
        with self._db.transaction() as db:
            row = db.execute(
                "UPDATE deliveries SET state = 'in-flight', lease_owner = %(owner)s, "
                "lease_until = %(until)s, attempts = attempts + 1, updated_at = %(now)s "
                "WHERE idempotency_key = %(key)s AND state NOT IN ('delivered', 'failed') "
                "AND NOT (state = 'in-flight' AND lease_owner IS DISTINCT FROM %(owner)s "
                "AND NOT COALESCE(lease_owner = ANY(%(dead)s::text[]), false) "
                "AND lease_until IS NOT NULL AND lease_until > %(now)s) "
                f"RETURNING {DELIVERY_COLUMNS}",
                {"owner": owner, "until": until, "now": now, "key": key, "dead": list(dead_owners)},
            ).fetchone()
            if row is not None:
                return ROWS.delivery(row)
            if (
                db.execute("SELECT 1 FROM deliveries WHERE idempotency_key = %s", (key,)).fetchone()
                is None
            ):
                raise no_delivery(key)
        return None

    def in_flight_owners(self) -> list[str]:
        """Lease owners of deliveries currently marked in flight."""
        return [
            r[0]
            for r in self._db.read(
                "SELECT DISTINCT lease_owner FROM deliveries "
                "WHERE state = 'in-flight' AND lease_owner IS NOT NULL"
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
        ``owner`` still holds the lease (the row is locked while this is decided); ``owner``
        None is for rows nobody has claimed.  A receipt keeps the row's last error; an
        error's event carries the attempts made so far.
        """
        state = finished_state(receipt, final)
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT incident_ref, draft_id, revision, tenant, channel, state, lease_owner, "
                "attempts FROM deliveries WHERE idempotency_key = %s FOR NO KEY UPDATE",
                (key,),
            ).fetchone()
            if row is None:
                raise no_delivery(key)
            if row[5] == "delivered" or (receipt is None and row[6] != owner):
                return self.get_delivery(key)
            db.execute(
                "UPDATE deliveries SET state = %s, lease_owner = NULL, lease_until = NULL, "
                "external_id = COALESCE(%s, external_id), "
                "receipt = COALESCE(%s::json, receipt), error = COALESCE(%s, error), "
                "updated_at = %s WHERE idempotency_key = %s",
                (
                    state,
                    receipt.external_id if receipt else None,
                    json.dumps(receipt.to_dict()) if receipt else None,
                    error,
                    now,
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

    # -- users (team mode) -------------------------------------------------------------------
    #
    # Inside a transaction, the users table is read and written only under the users lock
    # (taken on first touch, held to the end), as SQLite's BEGIN IMMEDIATE would: so what
    # ``comms.identity`` decides on what it read (the first user needs no token, the last
    # active admin stays) still holds when it writes, whoever else manages users at once.
    # A read outside a transaction (authenticating a command) takes no lock.

    def add_user(
        self, *, name: str, role: Role, token_hash: str, now: datetime, actor: str
    ) -> User:
        """Create a user with the hash of their token and log it (``UserStore.add_user``)."""
        user = User(name=name, role=role, created_at=now, created_by=actor, token_changed_at=now)
        with self._db.transaction(lock=LOCK_USERS) as db:
            inserted = db.execute(
                "INSERT INTO users (name, role, token_hash, created_at, created_by, disabled, "
                "token_changed_at) VALUES (%s, %s, %s, %s, %s, false, %s) "
                "ON CONFLICT (name) DO NOTHING RETURNING name",
                (name, user.role.value, token_hash, now, actor, now),
            ).fetchone()
            if inserted is None:
                taken = db.execute("SELECT disabled FROM users WHERE name = %s", (name,)).fetchone()
                raise user_taken(name, disabled=bool(taken and taken[0]))
            _log_user(db, now, actor, name, "user.added", user.role.value)
        return user

    def get_user(self, name: str) -> User:
        """Return a user (disabled ones too) or raise ``NotFoundError``."""
        rows = self._db.read(
            f"SELECT {USER_COLUMNS} FROM users WHERE name = %s", (name,), lock=LOCK_USERS
        )
        if not rows:
            raise no_user(name)
        return ROWS.user(rows[0])

    def user_for_token(self, token_hash: str) -> User | None:
        """The user whose current token hashes to ``token_hash``, or None."""
        rows = self._db.read(
            f"SELECT {USER_COLUMNS} FROM users WHERE token_hash = %s",
            (token_hash,),
            lock=LOCK_USERS,
        )
        return ROWS.user(rows[0]) if rows else None

    def list_users(self) -> list[User]:
        """Every user, disabled ones too, by name."""
        rows = self._db.read(f"SELECT {USER_COLUMNS} FROM users ORDER BY name", lock=LOCK_USERS)
        return [ROWS.user(r) for r in rows]

    def set_user_token(self, name: str, *, token_hash: str, now: datetime, actor: str) -> User:
        """Replace a user's token hash (the old token stops at once) and log it."""
        with self._db.transaction(lock=LOCK_USERS) as db:
            row = db.execute(
                "UPDATE users SET token_hash = %s, token_changed_at = %s, "
                "session_epoch = session_epoch + 1 WHERE name = %s "
                f"RETURNING {USER_COLUMNS}",
                (token_hash, now, name),
            ).fetchone()
            if row is None:
                raise no_user(name)
            _log_user(db, now, actor, name, "user.token-rotated", row[1])
        return ROWS.user(row)

    def set_user_disabled(self, name: str, *, disabled: bool, now: datetime, actor: str) -> User:
        """Disable (or enable again) a user and log it."""
        with self._db.transaction(lock=LOCK_USERS) as db:
            row = db.execute(
                "UPDATE users SET disabled = %s, session_epoch = session_epoch + 1 "
                f"WHERE name = %s RETURNING {USER_COLUMNS}",
                (disabled, name),
            ).fetchone()
            if row is None:
                raise no_user(name)
            action = "user.disabled" if disabled else "user.enabled"
            _log_user(db, now, actor, name, action, row[1])
        return ROWS.user(row)

    def end_user_sessions(self, name: str, *, now: datetime, actor: str) -> User:
        """Move the user's session epoch on and log it (``UserStore.end_user_sessions``)."""
        with self._db.transaction(lock=LOCK_USERS) as db:
            row = db.execute(
                "UPDATE users SET session_epoch = session_epoch + 1 "
                f"WHERE name = %s RETURNING {USER_COLUMNS}",
                (name,),
            ).fetchone()
            if row is None:
                raise no_user(name)
            _log_user(db, now, actor, name, "user.signed-out", row[1])
        return ROWS.user(row)

    def session_key(self) -> bytes:
        """The store's session secret, made once (``UserStore.session_key``): two processes
        asking at once both insert-or-keep the one row, then read the row that won."""
        if self._session_key is None:
            rows = self._db.read(SESSION_KEY)
            if not rows:
                with self._db.transaction() as db:
                    db.execute(
                        "INSERT INTO session_secret (id, secret) VALUES (1, %s) "
                        "ON CONFLICT (id) DO NOTHING",
                        (secrets.token_bytes(32),),
                    )
                rows = self._db.read(SESSION_KEY)
            self._session_key = bytes(rows[0][0])
        return self._session_key

    # -- incident.io webhooks (comms.incidentio.webhooks.WebhookMemory) --------------------

    def webhook_seen(self, delivery_id: str) -> bool:
        """Whether delivery ``delivery_id`` was handled (and not yet forgotten)."""
        return bool(self._db.read("SELECT 1 FROM webhook_deliveries WHERE id = %s", (delivery_id,)))

    def claim_webhook(self, delivery_id: str, *, now: datetime) -> bool:
        """Store delivery ``delivery_id`` as handled unless it is: True for the one call that
        inserted it.  A copy claimed in another open transaction waits for it to end (the
        primary key's lock), then conflicts if it committed; inside ``transaction()`` the
        claim is undone with it."""
        with self._db.transaction() as db:
            inserted = db.execute(
                "INSERT INTO webhook_deliveries (id, received_at) VALUES (%s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (delivery_id, now),
            ).rowcount
        return inserted == 1

    def release_webhook(self, delivery_id: str) -> None:
        """Forget claimed delivery ``delivery_id`` (it was not handled after all)."""
        with self._db.transaction() as db:
            db.execute("DELETE FROM webhook_deliveries WHERE id = %s", (delivery_id,))

    def webhook_newest(self, incident_id: str) -> datetime | None:
        """The newest ``updated_at`` handled for incident.io incident ``incident_id``."""
        rows = self._db.read(
            "SELECT updated_at FROM webhook_states WHERE object_id = %s", (incident_id,)
        )
        return rows[0][0].astimezone(UTC) if rows else None

    def record_webhook(
        self,
        delivery_id: str,
        *,
        now: datetime,
        incident_id: str | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """Remember a handled delivery (ids older than ``DELIVERY_IDS_KEPT`` go) and the
        state it carried; ``GREATEST`` keeps the newest state whoever writes first."""
        from comms.incidentio.webhooks import DELIVERY_IDS_KEPT

        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO webhook_deliveries (id, received_at) VALUES (%s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (delivery_id, now),
            )
            db.execute(
                "DELETE FROM webhook_deliveries WHERE received_at < %s",
                (now - DELIVERY_IDS_KEPT,),
            )
            if incident_id is not None and updated_at is not None:
                db.execute(
                    "INSERT INTO webhook_states (object_id, updated_at) VALUES (%s, %s) "
                    "ON CONFLICT (object_id) DO UPDATE SET "
                    "updated_at = GREATEST(webhook_states.updated_at, EXCLUDED.updated_at)",
                    (incident_id, updated_at),
                )

    # -- Slack notes of sent revisions (comms.ports.NoteLedger) ----------------------------

    def claim_note(self, draft_id: int, revision: int, *, owner: str, now: datetime) -> bool:
        """Take the note of ``draft_id`` r``revision`` unless it is taken (``NoteLedger``):
        a claim made at the same moment waits on the primary key, then conflicts."""
        with self._db.transaction() as db:
            inserted = db.execute(
                "INSERT INTO slack_notes (draft_id, revision, owner, claimed_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (draft_id, revision) DO NOTHING",
                (draft_id, revision, owner, now),
            ).rowcount
        return inserted == 1

    def release_note(self, draft_id: int, revision: int, *, owner: str) -> None:
        """Give back ``owner``'s claim on the note (``NoteLedger.release_note``)."""
        with self._db.transaction() as db:
            db.execute(
                "DELETE FROM slack_notes WHERE draft_id = %s AND revision = %s AND owner = %s",
                (draft_id, revision, owner),
            )


def _lock_counter(db: Connection, name: str, floor: str) -> None:
    """Lock counter ``name`` without moving it (made, after ``floor``, if lost by hand)."""
    found = db.execute("SELECT value FROM counters WHERE name = %s FOR UPDATE", (name,)).fetchone()
    if found is None:
        db.execute(
            f"INSERT INTO counters (name, value) SELECT %s, COALESCE(({floor}), 0) "
            "ON CONFLICT (name) DO NOTHING",
            (name,),
        )
        db.execute("SELECT value FROM counters WHERE name = %s FOR UPDATE", (name,))


def _window(limit: int | None, offset: int) -> tuple[int | None, int]:
    """LIMIT and OFFSET for a page: one row beyond ``limit`` (it tells whether there is
    more), NULL for no limit, and no number past bigint."""
    fetch = None if limit is None or limit + 1 not in ID_RANGE else limit + 1
    return fetch, min(offset, ID_RANGE[-1])


def _log_user(db: Connection, at: datetime, actor: str, name: str, action: str, role: str) -> None:
    db.execute(
        "INSERT INTO user_log (at, actor, user_name, action, role) VALUES (%s, %s, %s, %s, %s)",
        (at, actor, name, action, role),
    )


if TYPE_CHECKING:
    # mypy proves here that PostgresStore is the webhook receiver's memory in full.
    def _is_webhook_memory(store: PostgresStore) -> WebhookMemory:
        return store
