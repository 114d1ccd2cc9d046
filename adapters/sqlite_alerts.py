"""SqliteAlerts: the ``AlertState`` port (the cadence watcher's memory) on the comms SQLite file.

Its own tables (created with ``CREATE TABLE IF NOT EXISTS``, outside the store's
versioned migrations): the alert state per ``(ref, clock)``, so a restarted watcher
neither repeats nor loses alerts; snoozes; and a log of every action sent.

It also reads the store's denormalised ``incidents`` clock columns without importing
pydantic (``clock_rows``): ``comms cadence check`` must stay fast as a whole process, and
importing the store's models alone costs ~0.2 s.  Given a ``Horizon``, the query keeps
only the incidents that can have something due (the rest are never turned into Python
objects); pubsec comes from the tenants' current flags, the tenants the latest update
missed from the ``update.sent`` events of the incidents with several tenants, and the
Director escalation from the ``director.engaged`` events of the incidents still without a
mitigation in sight.  Both event reads name the incidents they need, so they stay small.  A contract
test checks that it returns exactly what ``SqliteStore.clock_rows`` returns.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comms.alerts import Action, AlertState, Key
from comms.cadence import NO_MITIGATION_IN_SIGHT, parse_promise, tenant_lag
from comms.errors import StoreError
from comms.ports import Page
from comms.records import ClockRow

if TYPE_CHECKING:
    from comms.bootstrap import DatabaseURL
    from comms.cadence import Horizon

BUSY_TIMEOUT_MS = 30_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS cadence_alerts (
    ref TEXT NOT NULL,
    clock TEXT NOT NULL,
    severity TEXT NOT NULL,
    due_at TEXT NOT NULL,
    stage TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    sends INTEGER NOT NULL,
    restricted INTEGER NOT NULL,
    PRIMARY KEY (ref, clock)
);
CREATE TABLE IF NOT EXISTS cadence_snoozes (
    ref TEXT PRIMARY KEY,
    until TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cadence_partial (
    token TEXT NOT NULL,
    sink TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (token, sink)
);
CREATE TABLE IF NOT EXISTS cadence_alert_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    ref TEXT NOT NULL,
    clock TEXT NOT NULL,
    action TEXT NOT NULL,
    due_at TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    sinks TEXT NOT NULL
)
"""

_CLOCK_COLUMNS = (
    "ref, title, severity, status, tenants, pubsec, security, started_at, created_at, "
    "engaged_at, status_changed_at, mitigated_at, resolved_at, last_update_at, "
    "promised_update_at, rca_internal_at, rca_external_at"
)
# A time as the store writes it (``comms.times.isoformat``): such text compares in time
# order to the second, so the horizon can compare it as text.  Anything else (a promise as
# a person typed it) is read and judged in Python.
_STORED_TIME = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*Z"
# JSON of two or more tenant ids, as the store writes it (ids have no quotes or commas).
_SEVERAL_TENANTS = '%", "%'
_FIRST = itemgetter(0)
_CHUNK = 500  # refs per IN (...) list, well under SQLite's parameter limit
# Above this many refs, the Director escalations are read in one pass over every
# ``director.engaged`` event (an event most incidents never get) rather than by ref.
_EVERY_EVENT_ABOVE = 5_000


def open_alert_state(url: DatabaseURL) -> SqliteAlerts:
    """The alert state registered for ``sqlite`` URLs in ``comms.bootstrap``."""
    return SqliteAlerts(url.path)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _dt(text: str | None) -> datetime | None:
    # Python 3.11 parses the trailing Z itself; the store writes UTC only.
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


class _Times(dict[str, datetime]):
    """Stored times parsed once per distinct text: ``times[text]`` is its datetime."""

    def __missing__(self, text: str) -> datetime:
        moment = self[text] = datetime.fromisoformat(text)
        return moment


class _Promises(dict[tuple[str, "str | None"], "datetime | None"]):
    """``_promise`` once per distinct (promise, last update) texts."""

    def __missing__(self, key: tuple[str, str | None]) -> datetime | None:
        promise = self[key] = _promise(*key)
        return promise


def _tenant_list(text: str) -> tuple[str, ...]:
    """The store's JSON list of tenant ids; plain ids skip json.loads (10k rows per check)."""
    if "\\" not in text and text.startswith('["') and text.endswith('"]'):
        parts = text[2:-2].split('", "')
        if not any('"' in part for part in parts):
            return tuple(parts)
    return tuple(json.loads(text))


def _before(moment: datetime) -> str:
    """Text that every stored time at or before ``moment`` sorts below: the next second."""
    return _iso(moment.replace(microsecond=0) + timedelta(seconds=1))


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def _horizon_sql(h: Horizon) -> tuple[str, list[object]]:
    """``Horizon.admits`` as SQL over the stored text: it may admit more, never fewer."""
    terms: list[str] = []
    params: list[object] = []
    for severity, limit in h.anchor_by.items():
        terms.append("(severity = ? AND COALESCE(last_update_at, created_at) < ?)")
        params += [severity, _before(limit)]
    terms.append(
        "(promised_update_at IS NOT NULL AND promised_update_at <> '' "
        "AND (promised_update_at < ? OR promised_update_at NOT GLOB ?))"
    )
    params += [_before(h.promise_by), _STORED_TIME]
    for severity, limit in h.change_by.items():
        # To the second: a change and an update in the same second count as "since".
        terms.append(
            "(severity = ? AND status_changed_at < ? AND (last_update_at IS NULL "
            "OR substr(status_changed_at, 1, 19) >= substr(last_update_at, 1, 19)))"
        )
        params += [severity, _before(limit)]
    if h.engage_severities:
        terms.append(
            f"(engaged_at IS NULL AND severity IN ({_marks(h.engage_severities)}) "
            "AND started_at < ?)"
        )
        params += [*h.engage_severities, _before(h.engage_by)]
    if h.director_severities:
        # The escalation is an event, read for the rows this admits (see _escalated).
        terms.append(
            "(mitigated_at IS NULL AND status IN ('investigating', 'identified') "
            f"AND severity IN ({_marks(h.director_severities)}) AND started_at < ?)"
        )
        params += [*h.director_severities, _before(h.director_by)]
    terms.append("(last_update_at IS NOT NULL AND tenants LIKE ?)")
    params.append(_SEVERAL_TENANTS)
    resolved = "julianday(status_changed_at) >= julianday(?)"
    params.append(_iso(h.final_since))
    if h.rca_severities:
        resolved += (
            f" OR (severity IN ({_marks(h.rca_severities)}) AND resolved_at IS NOT NULL "
            "AND (rca_internal_at IS NULL OR rca_external_at IS NULL) AND resolved_at < ?)"
        )
        params += [*h.rca_severities, _before(h.rca_by)]
    sql = (
        f"((status <> 'resolved' AND ({' OR '.join(terms)})) "
        f"OR (status = 'resolved' AND ({resolved})))"
    )
    return sql, params


def _tracked_sql(
    open_only: bool, rca_severities: tuple[str, ...], resolved_since: datetime | None
) -> tuple[str, list[object]]:
    """The incidents ``clock_rows`` reads without a horizon, as a WHERE condition."""
    if not open_only:
        return "1 = 1", []
    where = "status <> 'resolved'"
    params: list[object] = []
    if rca_severities:
        where += (
            f" OR (severity IN ({_marks(rca_severities)}) AND resolved_at IS NOT NULL"
            " AND (rca_internal_at IS NULL OR rca_external_at IS NULL))"
        )
        params += list(rca_severities)
    if resolved_since is not None:
        # ISO UTC strings compare in time order only in one format; compare as times.
        where += " OR julianday(status_changed_at) >= julianday(?)"
        params.append(_iso(resolved_since))
    return where, params


def _promise(text: str, last: str | None) -> datetime | None:
    # The promise comes from what a person typed; an unreadable one must not stop the check.
    if not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return parse_promise(text, _dt(last))
    return moment if moment.tzinfo is not None else None


def _update(at: str, data: str) -> tuple[datetime, list[str] | None, datetime | None]:
    """One ``update.sent`` event as ``tenant_lag`` takes it: when, to whom, what promise."""
    try:
        fields = json.loads(data)
    except ValueError:
        fields = {}
    if not isinstance(fields, dict):
        fields = {}
    reached = fields.get("tenants")
    promise = fields.get("next_update_at")
    return (
        datetime.fromisoformat(at),
        [str(t) for t in reached] if isinstance(reached, list) else None,
        _promise(str(promise), at) if promise else None,
    )


class SqliteAlerts:
    """Alert state, snoozes and the clock-row reader on the comms SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the comms database {self.path}: {exc}; "
                "set COMMS_DATABASE_URL to a writable path"
            ) from exc
        self._ready = False

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> SqliteAlerts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _setup(self) -> sqlite3.Connection:
        db = self.connection
        if self._ready:
            return db
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"comms database {self.path}: {exc}") from exc
        self._ready = True
        return db

    # -- clock rows -------------------------------------------------------------------

    def clock_rows(
        self,
        *,
        open_only: bool = True,
        rca_severities: tuple[str, ...] = (),
        resolved_since: datetime | None = None,
        horizon: Horizon | None = None,
    ) -> list[ClockRow] | None:
        """The store's clock rows (as ``SqliteStore.clock_rows``), or None without a schema.

        ``open_only=False`` returns every incident; ``rca_severities`` adds, to the open
        ones, resolved incidents of those severities with an RCA still outstanding (the RCA
        clocks need them; old resolved incidents are not read), and ``resolved_since``
        those resolved since then (their final update may be due).  ``horizon`` keeps only
        the rows it may admit (``comms cadence check``).  None means the store's tables do
        not exist yet.  A row that cannot be read is left out and named in ``skipped``.
        """
        where, params = _tracked_sql(open_only, rca_severities, resolved_since)
        if horizon is not None:
            due, more = _horizon_sql(horizon)
            where, params = f"({where}) AND {due}", [*params, *more]
        rows = self._query(
            f"SELECT {_CLOCK_COLUMNS} FROM incidents WHERE {where} ORDER BY seq", params
        )
        if rows is None:
            return None
        pubsec = self._pubsec_tenants() if rows else frozenset()
        lagging = self._lagging(rows)
        escalated = self._escalated(rows)
        # Rows share many times (an incident's start, opening and engagement; the minutes
        # updates go out on): each distinct text is parsed once.
        at = _Times()
        promises = _Promises()
        tenants: dict[str, tuple[tuple[str, ...], bool]] = {}
        out: Page[ClockRow] = Page()
        skipped: list[str] = []
        new_row = tuple.__new__
        director_at, lag_of, add = escalated.get, lagging.get, out.append
        for r in rows:
            try:
                (
                    ref,
                    title,
                    severity,
                    status,
                    listed,
                    pub,
                    sec,
                    started,
                    created,
                    engaged,
                    changed,
                    mitigated,
                    resolved,
                    last,
                    promise,
                    internal,
                    external,
                ) = r
                known = tenants.get(listed)
                if known is None:
                    parsed = _tenant_list(listed)
                    known = tenants[listed] = (
                        parsed,
                        bool(pubsec) and not pubsec.isdisjoint(parsed),
                    )
                row = new_row(
                    ClockRow,
                    (
                        ref,
                        title,
                        severity,
                        status,
                        known[0],
                        bool(pub) or known[1],
                        bool(sec),
                        at[started],
                        at[created],
                        engaged and at[engaged],
                        at[changed],
                        mitigated and at[mitigated],
                        resolved and at[resolved],
                        last and at[last],
                        promise and promises[promise, last],
                        internal and at[internal],
                        external and at[external],
                        director_at(ref),
                        lag_of(ref, ()),
                    ),
                )
            except (ValueError, TypeError):
                # Written by hand or an older version: one such row must not stop every
                # incident's clocks; it is named in the result's ``skipped``.
                skipped.append(str(r[0]))
                continue
            add(row)
        out.skipped = tuple(skipped)
        return out

    def tracked(
        self, *, rca_severities: tuple[str, ...] = (), resolved_since: datetime | None = None
    ) -> int:
        """How many rows ``clock_rows`` returns with these arguments and no horizon."""
        where, params = _tracked_sql(True, rca_severities, resolved_since)
        rows = self._query(f"SELECT COUNT(*) FROM incidents WHERE {where}", params)
        return int(rows[0][0]) if rows else 0

    def _query(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]] | None:
        """Rows of a read on the store's tables; None when they do not exist yet."""
        try:
            self.connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            return self.connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise StoreError(f"comms database {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a readable comms database ({exc})") from exc

    def _pubsec_tenants(self) -> frozenset[str]:
        """Ids of the tenants flagged pubsec now: the flag may be set after an incident opened."""
        found = set()
        for tenant_id, data in self._query("SELECT id, data FROM tenants", ()) or []:
            try:
                flagged = json.loads(data).get("pubsec")
            except (ValueError, AttributeError):
                flagged = True  # unreadable: keep its incidents' data out of alerts
            if flagged:
                found.add(tenant_id)
        return frozenset(found)

    def _events(self, kind: str, refs: Sequence[str]) -> list[tuple[Any, ...]]:
        """``(incident_ref, at, data)`` of the ``kind`` events of ``refs``, each ref's in log
        order (by ref then id: the order of the events(type, incident_ref) index, no sort)."""
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(refs), _CHUNK):
            chunk = refs[start : start + _CHUNK]
            found += (
                self._query(
                    "SELECT incident_ref, at, data FROM events WHERE type = ? "
                    f"AND incident_ref IN ({_marks(chunk)}) ORDER BY incident_ref, id",
                    [kind, *chunk],
                )
                or []
            )
        return found

    def _escalated(self, rows: Sequence[tuple[Any, ...]]) -> dict[str, datetime]:
        """When the Director was first engaged, for rows the Director clock may run on."""
        wanted = [r[0] for r in rows if r[3] in NO_MITIGATION_IN_SIGHT and r[11] is None]
        first: dict[str, datetime] = {}
        if len(wanted) > _EVERY_EVENT_ABOVE:
            # Thousands of refs: one pass over the (few) escalation events beats many
            # IN (...) look-ups; the events of other incidents are dropped here.
            named = set(wanted)
            events = [
                e
                for e in self._query(
                    "SELECT incident_ref, at FROM events WHERE type = ? ORDER BY id",
                    ["director.engaged"],
                )
                or []
                if e[0] in named
            ]
        else:
            events = self._events("director.engaged", wanted)
        for ref, at, *_ in events:
            try:
                moment = datetime.fromisoformat(at)
            except (ValueError, TypeError):
                continue  # an unreadable event records nothing
            if ref not in first or moment < first[ref]:
                first[ref] = moment
        return first

    def _lagging(
        self, rows: Sequence[tuple[Any, ...]]
    ) -> dict[str, tuple[tuple[str, datetime | None, datetime | None], ...]]:
        """``ClockRow.lagging`` of the rows with several tenants and an update sent."""
        wanted = {r[0]: r for r in rows if r[13] is not None and '", "' in r[4]}
        out = {}
        # _events gives each ref's events together (by ref, then in log order).
        for ref, events in groupby(self._events("update.sent", list(wanted)), _FIRST):
            r = wanted[ref]
            try:
                tenants = _tenant_list(r[4])
                # Newest first, and only until every tenant has its latest: what tenant_lag
                # reads of the older ones would be overwritten anyway.
                latest: list[tuple[datetime, list[str] | None, datetime | None]] = []
                unseen = set(tenants)
                for _, at, data in reversed(list(events)):
                    try:
                        update = _update(at, data)
                    except (ValueError, TypeError):
                        continue  # an unreadable event counts for no tenant
                    latest.append(update)
                    unseen.difference_update(update[1] or tenants)
                    if not unseen:
                        break
                lag = tenant_lag(
                    tenants,
                    datetime.fromisoformat(r[13]),
                    r[14] and _promise(r[14], r[13]),
                    reversed(latest),
                )
            except (ValueError, TypeError):
                continue  # the row itself is unreadable: clock_rows skips it
            if lag:
                out[ref] = lag
        return out

    def incident_exists(self, ref: str) -> bool | None:
        """True or False, or None when the store has no schema yet."""
        try:
            return (
                self.connection.execute("SELECT 1 FROM incidents WHERE ref = ?", (ref,)).fetchone()
                is not None
            )
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise StoreError(f"comms database {self.path}: {exc}") from exc

    # -- alert state ------------------------------------------------------------------

    def load(self) -> dict[Key, AlertState]:
        """The stored alert state, keyed by ``(ref, clock)``."""
        db = self._setup()
        rows = db.execute(
            "SELECT ref, clock, severity, due_at, stage, dedup_key, opened_at, last_at, sends, "
            "restricted FROM cadence_alerts ORDER BY opened_at, ref, clock"
        ).fetchall()
        states = {}
        for r in rows:
            state = AlertState(
                r[0], r[1], r[2], _at(r[3]), r[4], r[5], _at(r[6]), _at(r[7]), int(r[8]), bool(r[9])
            )
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
        """Replace the stored state with ``states`` and log ``sent`` actions, atomically.

        ``partial`` records (token, sink, at) for sinks that took an action that others
        refused, so the retry skips them; ``finished`` tokens are forgotten.
        """
        db = self._setup()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM cadence_alerts")
                db.executemany(
                    "INSERT OR IGNORE INTO cadence_partial (token, sink, at) VALUES (?, ?, ?)",
                    [(token, sink, _iso(at)) for token, sink, at in partial],
                )
                db.executemany(
                    "DELETE FROM cadence_partial WHERE token = ?", [(t,) for t in finished]
                )
                db.executemany(
                    "INSERT INTO cadence_alerts (ref, clock, severity, due_at, stage, dedup_key, "
                    "opened_at, last_at, sends, restricted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            s.ref,
                            s.clock,
                            s.severity,
                            _iso(s.due_at),
                            s.stage,
                            s.dedup_key,
                            _iso(s.opened_at),
                            _iso(s.last_at),
                            s.sends,
                            int(s.restricted),
                        )
                        for s in states.values()
                    ],
                )
                db.executemany(
                    "INSERT INTO cadence_alert_log "
                    "(at, ref, clock, action, due_at, dedup_key, sinks) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            _iso(a.at),
                            a.ref,
                            a.clock,
                            a.kind,
                            _iso(a.due_at),
                            a.dedup_key,
                            json.dumps(names),
                        )
                        for a, names in sent
                    ],
                )
                db.execute("COMMIT")
            except BaseException:
                # Also on Ctrl-C, which may land before BEGIN or after COMMIT: roll back
                # only a transaction that is open, and let the interrupt through.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot save the alert state in {self.path}: {exc}") from exc

    def log(
        self, ref: str | None = None
    ) -> list[tuple[datetime, str, str, str, datetime, str, list[str]]]:
        """Actions sent, oldest first: (at, ref, clock, action, due_at, dedup_key, sinks)."""
        db = self._setup()
        sql = "SELECT at, ref, clock, action, due_at, dedup_key, sinks FROM cadence_alert_log"
        params: tuple[str, ...] = ()
        if ref is not None:
            sql += " WHERE ref = ?"
            params = (ref,)
        return [
            (_dt(r[0]), r[1], r[2], r[3], _dt(r[4]), r[5], json.loads(r[6]))  # type: ignore[misc]
            for r in db.execute(sql + " ORDER BY id", params).fetchall()
        ]

    def partial(self) -> set[tuple[str, str]]:
        """(token, sink) pairs already delivered for actions still being retried."""
        db = self._setup()
        return {(r[0], r[1]) for r in db.execute("SELECT token, sink FROM cadence_partial")}

    # -- snoozes ----------------------------------------------------------------------

    def snooze(self, ref: str, until: datetime, *, actor: str, now: datetime) -> None:
        """Mute alerts for ``ref`` until ``until`` (replaces an earlier snooze)."""
        db = self._setup()
        try:
            db.execute(
                "INSERT INTO cadence_snoozes (ref, until, actor, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (ref) DO UPDATE SET until = excluded.until, actor = excluded.actor, "
                "created_at = excluded.created_at",
                (ref, _iso(until), actor, _iso(now)),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot save the snooze in {self.path}: {exc}") from exc

    def unsnooze(self, ref: str) -> bool:
        """Remove a snooze; True if there was one."""
        db = self._setup()
        return db.execute("DELETE FROM cadence_snoozes WHERE ref = ?", (ref,)).rowcount > 0

    def snoozes(self, now: datetime) -> dict[str, datetime]:
        """Snoozes still running at ``now``: ref → until."""
        try:
            rows = self.connection.execute("SELECT ref, until FROM cadence_snoozes").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return {}
            raise StoreError(f"comms database {self.path}: {exc}") from exc
        out = {}
        for ref, text in rows:
            until = _dt(text)
            if until is not None and until > now:
                out[ref] = until
        return out
