"""PostgresAlerts: the ``AlertState`` port (the cadence watcher's memory) in PostgreSQL.

The same tables and behaviour as ``SqliteAlerts`` (the contract suite runs on both), in the
schema ``comms db migrate`` creates, and the clock rows ``PostgresStore`` reads, filtered
in SQL by a ``Horizon`` for ``comms cadence check``.

**Two watchers, one alert.**  A tick reads the alert state (``load``), plans, sends to the
sinks, then saves (``save``).  Two watchers on two machines would both load the state from
before either saved, and both send.  So ``load`` takes a session-level advisory lock (one
per schema) on a connection it keeps, and ``save`` releases it after its transaction has
committed: the second watcher's ``load`` waits for the first one's ``save``, then reads what
was sent and plans nothing twice.  The lock goes with the connection, so a watcher that
dies mid-tick frees it at once; a wait longer than ``LOCK_WAIT`` is a ``StoreError`` the
watcher reports and retries on its next tick.  ``close`` releases a lock still held.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from comms.adapters.postgres_store import LOCK_CADENCE, Connection, Database, read_clock_rows
from comms.alerts import Action, AlertState, Key
from comms.errors import StoreError
from comms.records import ClockRow

if TYPE_CHECKING:
    from comms.bootstrap import DatabaseURL
    from comms.cadence import Horizon

LOCK_WAIT = "120s"  # longest wait for another watcher's tick (its sinks may be slow)
# A time as the store writes it: such text compares in time order, so the horizon can
# compare a promise as text (anything else is read and judged in Python).
_STORED_TIME = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}.*Z$"


def open_alert_state(url: DatabaseURL) -> PostgresAlerts:
    """The alert state registered for ``postgresql`` URLs in ``comms.bootstrap``."""
    return PostgresAlerts(url.target)


def _iso(moment: datetime) -> str:
    from comms.times import isoformat

    return isoformat(moment)


def _before(moment: datetime) -> datetime:
    """Every time at or before ``moment`` (to the second) is earlier than this."""
    return moment.replace(microsecond=0) + timedelta(seconds=1)


def _horizon_sql(h: Horizon) -> tuple[str, list[Any]]:
    """``Horizon.admits`` as SQL: it may admit more rows, never fewer."""
    terms: list[str] = []
    params: list[Any] = []
    for severity, limit in h.anchor_by.items():
        terms.append("(severity = %s AND COALESCE(last_update_at, created_at) < %s)")
        params += [severity, _before(limit)]
    terms.append(
        "(promised_update_at IS NOT NULL AND promised_update_at <> '' "
        "AND (promised_update_at < %s OR promised_update_at !~ %s))"
    )
    params += [_iso(_before(h.promise_by)), _STORED_TIME]
    for severity, limit in h.change_by.items():
        # To the second: a change and an update in the same second count as "since".
        terms.append(
            "(severity = %s AND status_changed_at < %s AND (last_update_at IS NULL "
            "OR date_trunc('second', status_changed_at) >= date_trunc('second', last_update_at)))"
        )
        params += [severity, _before(limit)]
    if h.engage_severities:
        terms.append("(engaged_at IS NULL AND severity = ANY(%s::text[]) AND started_at < %s)")
        params += [list(h.engage_severities), _before(h.engage_by)]
    if h.director_severities:
        # The escalation is an event, read for the rows this admits.
        terms.append(
            "(mitigated_at IS NULL AND status IN ('investigating', 'identified') "
            "AND severity = ANY(%s::text[]) AND started_at < %s)"
        )
        params += [list(h.director_severities), _before(h.director_by)]
    terms.append("(last_update_at IS NOT NULL AND cardinality(tenants) > 1)")
    resolved = "status_changed_at >= %s"
    params.append(h.final_since)
    if h.rca_severities:
        resolved += (
            " OR (severity = ANY(%s::text[]) AND resolved_at IS NOT NULL "
            "AND (rca_internal_at IS NULL OR rca_external_at IS NULL) AND resolved_at < %s)"
        )
        params += [list(h.rca_severities), _before(h.rca_by)]
    sql = (
        f"((status <> 'resolved' AND ({' OR '.join(terms)})) "
        f"OR (status = 'resolved' AND ({resolved})))"
    )
    return sql, params


def _tracked_sql(
    open_only: bool, rca_severities: tuple[str, ...], resolved_since: datetime | None
) -> tuple[str, list[Any]]:
    """The incidents ``clock_rows`` reads without a horizon, as a WHERE condition."""
    if not open_only:
        return "true", []
    where = "status <> 'resolved'"
    params: list[Any] = []
    if rca_severities:
        where += (
            " OR (severity = ANY(%s::text[]) AND resolved_at IS NOT NULL"
            " AND (rca_internal_at IS NULL OR rca_external_at IS NULL))"
        )
        params.append(list(rca_severities))
    if resolved_since is not None:
        where += " OR status_changed_at >= %s"
        params.append(resolved_since)
    return where, params


class PostgresAlerts:
    """Alert state, snoozes and the clock-row reader on the comms PostgreSQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db = Database(url)
        self._held: Connection | None = None  # the connection holding the tick's lock

    def close(self) -> None:
        """Release the tick's lock if held, and close the pool."""
        self._unlock()
        self._db.close()

    def __enter__(self) -> PostgresAlerts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _schema(self) -> bool:
        """True when the schema is current, False when there is none yet (the store was
        never migrated); ``StoreError`` for an older or newer one."""
        version = self._db.current_version()
        if version == 0:
            return False
        problem = self._db.schema_error(version)
        if problem is not None:
            raise problem
        return True

    def _ready(self) -> None:
        if not self._schema():
            problem = self._db.schema_error(0)
            assert problem is not None
            raise problem

    # -- clock rows -------------------------------------------------------------------

    def clock_rows(
        self,
        *,
        open_only: bool = True,
        rca_severities: tuple[str, ...] = (),
        resolved_since: datetime | None = None,
        horizon: Horizon | None = None,
    ) -> list[ClockRow] | None:
        """The store's clock rows (as ``PostgresStore.clock_rows``), or None without a schema.

        ``rca_severities`` adds resolved incidents of those severities still owing an RCA,
        ``resolved_since`` those resolved since then, ``horizon`` keeps only the rows it may
        admit.  A row that cannot be read is left out and named in ``skipped``.
        """
        if not self._schema():
            return None
        where, params = _tracked_sql(open_only, rca_severities, resolved_since)
        if horizon is not None:
            due, more = _horizon_sql(horizon)
            where, params = f"({where}) AND {due}", [*params, *more]
        return read_clock_rows(self._db, where, params)

    def tracked(
        self, *, rca_severities: tuple[str, ...] = (), resolved_since: datetime | None = None
    ) -> int:
        """How many rows ``clock_rows`` returns with these arguments and no horizon."""
        if not self._schema():
            return 0
        where, params = _tracked_sql(True, rca_severities, resolved_since)
        return int(self._db.read(f"SELECT count(*) FROM incidents WHERE {where}", params)[0][0])

    def incident_exists(self, ref: str) -> bool | None:
        """True or False, or None when the store has no schema yet."""
        if not self._schema():
            return None
        return bool(self._db.read("SELECT 1 FROM incidents WHERE ref = %s", (ref,)))

    # -- alert state ------------------------------------------------------------------

    def load(self) -> dict[Key, AlertState]:
        """The stored alert state, keyed by ``(ref, clock)``; takes the tick's lock first
        (held until ``save``), so another watcher's tick in between has saved."""
        self._ready()
        self._lock()
        rows = self._db.read(
            "SELECT ref, clock, severity, due_at, stage, dedup_key, opened_at, last_at, sends, "
            "restricted FROM cadence_alerts ORDER BY opened_at, ref, clock"
        )
        states = {}
        for r in rows:
            state = AlertState(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8]), r[9])
            states[state.key] = state
        return states

    def save(
        self,
        states: Mapping[Key, AlertState],
        *,
        sent: Sequence[tuple[Action, list[str]]] = (),
        partial: Sequence[tuple[str, str, datetime]] = (),
        finished: Sequence[str] = (),
    ) -> None:
        """Replace the stored state with ``states`` and log ``sent`` actions in one
        transaction, then release the tick's lock.

        ``partial`` records (token, sink, at) for sinks that took an action that others
        refused, so the retry skips them; ``finished`` tokens are forgotten.
        """
        import json

        self._ready()
        try:
            with self._db.transaction() as db, db.cursor() as cursor:
                cursor.execute("DELETE FROM cadence_alerts")
                cursor.executemany(
                    "INSERT INTO cadence_partial (token, sink, at) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    list(partial),
                )
                cursor.executemany(
                    "DELETE FROM cadence_partial WHERE token = %s", [(t,) for t in finished]
                )
                cursor.executemany(
                    "INSERT INTO cadence_alerts (ref, clock, severity, due_at, stage, dedup_key, "
                    "opened_at, last_at, sends, restricted) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            s.ref,
                            s.clock,
                            s.severity,
                            s.due_at,
                            s.stage,
                            s.dedup_key,
                            s.opened_at,
                            s.last_at,
                            s.sends,
                            bool(s.restricted),
                        )
                        for s in states.values()
                    ],
                )
                cursor.executemany(
                    "INSERT INTO cadence_alert_log (at, ref, clock, action, due_at, dedup_key, "
                    "sinks) VALUES (%s, %s, %s, %s, %s, %s, %s::json)",
                    [
                        (a.at, a.ref, a.clock, a.kind, a.due_at, a.dedup_key, json.dumps(names))
                        for a, names in sent
                    ],
                )
        finally:
            self._unlock()

    def log(
        self, ref: str | None = None
    ) -> list[tuple[datetime, str, str, str, datetime, str, list[str]]]:
        """Actions sent, oldest first: (at, ref, clock, action, due_at, dedup_key, sinks)."""
        self._ready()
        sql = "SELECT at, ref, clock, action, due_at, dedup_key, sinks FROM cadence_alert_log"
        params: tuple[str, ...] = ()
        if ref is not None:
            sql += " WHERE ref = %s"
            params = (ref,)
        return [
            (r[0], r[1], r[2], r[3], r[4], r[5], list(r[6]))
            for r in self._db.read(sql + " ORDER BY id", params)
        ]

    def partial(self) -> set[tuple[str, str]]:
        """(token, sink) pairs already delivered for actions still being retried."""
        self._ready()
        return {(r[0], r[1]) for r in self._db.read("SELECT token, sink FROM cadence_partial")}

    # -- the tick's lock ----------------------------------------------------------------

    def _lock(self) -> None:
        if self._held is not None and not (self._held.broken or self._held.closed):
            return
        self._unlock()  # a lost session has lost its lock: take it again
        conn = self._db.acquire()
        try:
            conn.execute("BEGIN")
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(current_schema()))", (LOCK_CADENCE,))
            conn.execute("COMMIT")  # a session lock outlives the transaction that took it
        except psycopg.errors.LockNotAvailable:
            self._db.release(conn)
            raise StoreError(
                f"another cadence watcher kept the alert state locked for {LOCK_WAIT}; "
                "it is retried at the next check"
            ) from None
        except psycopg.Error as exc:
            problem = self._db.error(exc, conn)
            self._db.release(conn)
            raise problem from exc
        except BaseException:
            self._db.release(conn)
            raise
        self._held = conn

    def _unlock(self) -> None:
        conn, self._held = self._held, None
        if conn is None:
            return
        try:
            conn.execute(
                "SELECT pg_advisory_unlock(%s, hashtext(current_schema()))", (LOCK_CADENCE,)
            )
        except psycopg.Error:
            conn.close()  # a lost session has released its locks
        self._db.release(conn)

    # -- snoozes ----------------------------------------------------------------------

    def snooze(self, ref: str, until: datetime, *, actor: str, now: datetime) -> None:
        """Mute alerts for ``ref`` until ``until`` (replaces an earlier snooze)."""
        self._ready()
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO cadence_snoozes (ref, until, actor, created_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (ref) DO UPDATE SET until = excluded.until, "
                "actor = excluded.actor, created_at = excluded.created_at",
                (ref, until, actor, now),
            )

    def unsnooze(self, ref: str) -> bool:
        """Remove a snooze; True if there was one."""
        self._ready()
        with self._db.transaction() as db:
            return db.execute("DELETE FROM cadence_snoozes WHERE ref = %s", (ref,)).rowcount > 0

    def snoozes(self, now: datetime) -> dict[str, datetime]:
        """Snoozes still running at ``now``: ref → until."""
        if not self._schema():
            return {}
        rows = self._db.read("SELECT ref, until FROM cadence_snoozes WHERE until > %s", (now,))
        return {r[0]: r[1] for r in rows}
