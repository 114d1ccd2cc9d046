"""A Switchboard API stub: a real HTTP server (Starlette on uvicorn) persisted in SQLite.

It speaks the API that :mod:`comms.adapters.rest` uses, described by the OpenAPI document at
``/openapi.json`` (:mod:`comms.adapters.switchboard_openapi`)::

    GET  /api/v1/tenants?cursor=&limit=           GET  /api/v1/tenants/{id}
    GET  /api/v1/notification-templates
    POST /api/v1/notifications                    GET  /api/v1/notifications?incident_reference=&tenant_id=
    GET  /api/v1/notifications/{id}               POST /api/v1/notifications/{id}/preview
    POST /api/v1/notifications/{id}/send

Bearer-token auth; ``Idempotency-Key`` on every POST (a replay returns the stored response with
``Idempotent-Replayed: true``; the same key with another request is 422; a key whose first
request is still running is 409); RFC 9457 problem+json errors; a token-bucket rate limit
answering 429 with ``Retry-After``.

For tests it injects faults, off by default: ``429``, ``500``, ``503``, ``slow`` (sleep, then
handle: the work lands after the client gave up), ``drop`` (close the socket without a
response), ``reset`` (TCP reset), ``after_commit`` (do the work, then drop the connection) and
``after_commit_500``.  Admin endpoints (same token, no rate limit, no faults, not in the
OpenAPI document)::

    GET|POST /_admin/faults       GET /_admin/sends      GET|DELETE /_admin/stats
    POST /_admin/rate-limit       POST /_admin/tenants   POST /_admin/idempotency/expire
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import socket
import sqlite3
import struct
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_SEED = Path(__file__).with_name("switchboard_seed.json")
PROBLEM_BASE = "https://switchboard.example/problems/"
FAULT_KINDS = ("429", "500", "503", "slow", "drop", "reset", "after_commit", "after_commit_500")

MAINTENANCE_WINDOWS: dict[str, dict[str, str]] = {
    "apac": {"region": "APAC", "day": "Wednesday", "start": "13:00", "end": "17:00",
             "description": "APAC: Wednesday 13:00-17:00 UTC"},
    "emea": {"region": "EMEA", "day": "Tuesday", "start": "01:00", "end": "05:00",
             "description": "EMEA: Tuesday 01:00-05:00 UTC"},
    "amer-1": {"region": "AMER", "day": "Tuesday", "start": "07:00", "end": "11:00",
               "description": "AMER option 1: Tuesday 07:00-11:00 UTC"},
    "amer-2": {"region": "AMER", "day": "Sunday", "start": "21:00", "end": "01:00",
               "description": "AMER option 2: Sunday 21:00 - Monday 01:00 UTC"},
}

# Simple templates let the whole body be edited; complex ones only the intro paragraph,
# under which Switchboard prints the structured fields.
TEMPLATES: list[dict[str, Any]] = [
    {"id": "incident_investigation_start", "name": "Incident investigation start",
     "category": "incident", "editable": "body"},
    {"id": "incident_investigation_update", "name": "Incident investigation update",
     "category": "incident", "editable": "intro"},
    {"id": "incident_escalated_response", "name": "Incident escalated response",
     "category": "incident", "editable": "intro"},
    {"id": "incident_mitigation_in_progress", "name": "Incident mitigation in progress",
     "category": "incident", "editable": "intro"},
    {"id": "incident_resolved", "name": "Incident resolved", "category": "incident",
     "editable": "body"},
    {"id": "emergency_maintenance_planned", "name": "Emergency maintenance planned",
     "category": "maintenance", "editable": "body"},
    {"id": "emergency_maintenance_completed", "name": "Emergency maintenance completed",
     "category": "maintenance", "editable": "body"},
]
TEMPLATE_IDS = {t["id"]: t for t in TEMPLATES}
STRUCTURED_FIELDS = ("investigation_focus_area", "affected_components", "customer_reported_impact")

TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
FOOTER = (
    "-- \nYou receive this notice because you are an operational contact for a GitLab "
    "Dedicated instance.\nQuestions: reply to your Customer Success Manager or open a "
    "support ticket."
)


class Problem(Exception):
    """An RFC 9457 problem, raised by handlers and turned into application/problem+json."""

    def __init__(
        self, status: int, slug: str, title: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = dict(headers or {})

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document."""
        doc: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        return doc

    def response(self, instance: str | None = None) -> Response:
        """A Starlette response carrying the problem."""
        return _problem_response(self.body(instance), self.status, self.headers)


def _problem_response(doc: dict[str, Any], status: int, headers: Mapping[str, str]) -> Response:
    return Response(
        json.dumps(doc),
        status_code=status,
        headers=dict(headers),
        media_type="application/problem+json",
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _invalid(detail: str) -> Problem:
    return Problem(422, "validation-error", "Request body is invalid", detail)


# --------------------------------------------------------------------------- validation


def validate_tenant(raw: Any) -> dict[str, Any]:
    """Check one tenant record (seed file or admin upload); expand its maintenance window."""
    if not isinstance(raw, dict):
        raise ValueError("a tenant must be an object")
    tid = raw.get("id")
    if not isinstance(tid, str) or not TENANT_ID.match(tid):
        raise ValueError(f"tenant id {tid!r} must be letters, digits, '.', '_' or '-'")
    where = f"tenant {tid}"
    for key in ("name", "url", "gitlab_version", "reference_architecture", "primary_region"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ValueError(f"{where}: '{key}' must be a non-empty string")
    if raw.get("status", "normal") not in ("normal", "degraded", "disruption"):
        raise ValueError(f"{where}: status must be normal, degraded or disruption")
    if raw.get("secondary_region") is not None and not isinstance(raw["secondary_region"], str):
        raise ValueError(f"{where}: secondary_region must be a string or null")
    window = raw.get("maintenance_window")
    window_id = window.get("id") if isinstance(window, dict) else window
    if window_id not in MAINTENANCE_WINDOWS:
        raise ValueError(f"{where}: maintenance_window must be one of {', '.join(MAINTENANCE_WINDOWS)}")
    emails = raw.get("operational_emails")
    if not isinstance(emails, list) or not emails or not all(
        isinstance(e, str) and EMAIL.match(e) for e in emails
    ):
        raise ValueError(f"{where}: operational_emails must be a non-empty list of addresses")
    people: dict[str, dict[str, str] | None] = {}
    for role in ("csm", "ase"):
        person = raw.get(role)
        if person is not None and not (
            isinstance(person, dict)
            and isinstance(person.get("name"), str)
            and isinstance(person.get("email"), str)
            and EMAIL.match(person["email"])
        ):
            raise ValueError(f"{where}: {role} must be null or {{name, email}}")
        people[role] = {"name": person["name"], "email": person["email"]} if person else None
    return {
        "id": tid,
        "name": raw["name"],
        "url": raw["url"],
        "status": raw.get("status", "normal"),
        "gitlab_version": raw["gitlab_version"],
        "reference_architecture": raw["reference_architecture"],
        "primary_region": raw["primary_region"],
        "secondary_region": raw.get("secondary_region"),
        "geo": bool(raw.get("geo", False)),
        "pubsec": bool(raw.get("pubsec", False)),
        "maintenance_window": {"id": window_id, **MAINTENANCE_WINDOWS[window_id]},
        "operational_emails": list(emails),
        "csm": people["csm"],
        "ase": people["ase"],
    }


def load_seed(path: Path) -> list[dict[str, Any]]:
    """Read and validate a seed file ``{"tenants": [...]}``; ValueError says what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read seed file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}") from exc
    tenants = data.get("tenants") if isinstance(data, dict) else None
    if not isinstance(tenants, list):
        raise ValueError(f"{path}: expected an object with a 'tenants' list")
    try:
        return [validate_tenant(t) for t in tenants]
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _optional_text(body: dict[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _invalid(f"'{key}' must be a string of at most {limit} characters, or null")
    return value


def validate_notification(body: Any) -> dict[str, Any]:
    """Check a create-notification request body; raise a 422 Problem naming the field."""
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    allowed = {"template", "tenant_ids", "incident_reference", "message", "metadata", *STRUCTURED_FIELDS}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _invalid(f"unknown field '{unknown[0]}'")
    template = body.get("template")
    if template not in TEMPLATE_IDS:
        raise _invalid(f"'template' must be one of {', '.join(TEMPLATE_IDS)}")
    tenant_ids = body.get("tenant_ids")
    if (
        not isinstance(tenant_ids, list)
        or not 1 <= len(tenant_ids) <= 500
        or not all(isinstance(t, str) and TENANT_ID.match(t) for t in tenant_ids)
        or len(set(tenant_ids)) != len(tenant_ids)
    ):
        raise _invalid("'tenant_ids' must be a list of 1 to 500 distinct tenant ids")
    ref = body.get("incident_reference")
    if not isinstance(ref, str) or not 1 <= len(ref) <= 100:
        raise _invalid("'incident_reference' must be a string of 1 to 100 characters")
    message = body.get("message")
    if not isinstance(message, str) or len(message) > 20000:
        raise _invalid("'message' must be a string of at most 20000 characters")
    if not re.search(r"\S", message):
        raise _invalid("'message' may not be empty")
    if HTML_TAG.search(message):
        raise _invalid("'message' must be plain text; remove the HTML markup")
    components = body.get("affected_components")
    if components is not None and (
        not isinstance(components, list)
        or len(components) > 50
        or not all(isinstance(c, str) and 1 <= len(c) <= 200 for c in components)
    ):
        raise _invalid("'affected_components' must be a list of at most 50 names, or null")
    metadata = body.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, dict)
        or len(metadata) > 20
        or not all(isinstance(v, str) and len(k) <= 40 and len(v) <= 500 for k, v in metadata.items())
    ):
        raise _invalid("'metadata' must be an object of at most 20 string values")
    return {
        "template": template,
        "tenant_ids": list(tenant_ids),
        "incident_reference": ref,
        "message": message,
        "investigation_focus_area": _optional_text(body, "investigation_focus_area", 500),
        "affected_components": list(components) if components is not None else None,
        "customer_reported_impact": _optional_text(body, "customer_reported_impact", 2000),
        "metadata": dict(metadata or {}),
    }


def render(note: dict[str, Any]) -> dict[str, str]:
    """What recipients see: subject and plain-text body (message, structured fields, footer)."""
    template = TEMPLATE_IDS[note["template"]]
    lines = [note["message"].strip(), ""]
    if note.get("investigation_focus_area"):
        lines.append(f"Investigation focus area: {note['investigation_focus_area']}")
    if note.get("affected_components"):
        lines.append(f"Affected components: {', '.join(note['affected_components'])}")
    if note.get("customer_reported_impact"):
        lines.append(f"Customer reported impact: {note['customer_reported_impact']}")
    if lines[-1]:
        lines.append("")
    lines.append(FOOTER)
    return {"subject": f"GitLab Dedicated: {template['name']}", "body": "\n".join(lines) + "\n"}


def recipients(tenants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Operational emails, then CSM and ASE, for each tenant; one entry per (tenant, address)."""
    out: list[dict[str, Any]] = []
    for tenant in tenants:
        seen: set[str] = set()
        people = [(e, "", "operational") for e in tenant["operational_emails"]]
        people += [(p["email"], p["name"], r) for r in ("csm", "ase") if (p := tenant.get(r))]
        for email, name, role in people:
            if email.lower() not in seen:
                seen.add(email.lower())
                out.append({"tenant_id": tenant["id"], "email": email, "name": name, "role": role})
    return out


# --------------------------------------------------------------------------- persistence


class SwitchboardDB:
    """The stub's own SQLite file (WAL).  Used only from the server's event-loop thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS notifications (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                incident_reference TEXT NOT NULL,
                status TEXT NOT NULL,
                doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS notification_tenants (
                notification_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
                PRIMARY KEY (notification_id, tenant_id));
            CREATE INDEX IF NOT EXISTS notification_tenants_tenant
                ON notification_tenants (tenant_id);
            CREATE TABLE IF NOT EXISTS sends (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                notification_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
                incident_reference TEXT NOT NULL, idempotency_key TEXT,
                message_sha256 TEXT NOT NULL, at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS idempotency (
                key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL,
                status INTEGER, headers TEXT, body BLOB, created_at TEXT NOT NULL);
            """
        )
        # A request still "in flight" when the server stopped will never finish: forget it.
        self.conn.execute("DELETE FROM idempotency WHERE state = 'in_flight'")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def put_tenants(self, tenants: list[dict[str, Any]]) -> None:
        """Insert or replace tenants."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO tenants (id, doc) VALUES (?, ?)",
                [(t["id"], json.dumps(t)) for t in tenants],
            )

    def tenant_count(self) -> int:
        """How many tenants exist."""
        return int(self.conn.execute("SELECT count(*) FROM tenants").fetchone()[0])

    def tenants(self, after: str, limit: int) -> list[dict[str, Any]]:
        """Tenants with id > ``after``, by id."""
        rows = self.conn.execute(
            "SELECT doc FROM tenants WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        ).fetchall()
        return [json.loads(r["doc"]) for r in rows]

    def tenant(self, tenant_id: str) -> dict[str, Any] | None:
        """One tenant or None."""
        row = self.conn.execute("SELECT doc FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        return json.loads(row["doc"]) if row else None

    def create_notification(self, note: dict[str, Any]) -> None:
        """Store a new draft notification."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO notifications (id, incident_reference, status, doc) VALUES (?, ?, ?, ?)",
                (note["id"], note["incident_reference"], note["status"], json.dumps(note)),
            )
            conn.executemany(
                "INSERT INTO notification_tenants (notification_id, tenant_id) VALUES (?, ?)",
                [(note["id"], t) for t in note["tenant_ids"]],
            )

    def notification(self, note_id: str) -> dict[str, Any] | None:
        """One notification or None."""
        row = self.conn.execute("SELECT doc FROM notifications WHERE id = ?", (note_id,)).fetchone()
        return json.loads(row["doc"]) if row else None

    def notifications(
        self, *, after: int, limit: int, incident_reference: str | None, tenant_id: str | None,
        status: str | None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Notifications after sequence number ``after``, oldest first, filtered."""
        sql = "SELECT seq, doc FROM notifications n WHERE seq > ?"
        args: list[Any] = [after]
        if incident_reference is not None:
            sql += " AND incident_reference = ?"
            args.append(incident_reference)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        if tenant_id is not None:
            sql += (" AND EXISTS (SELECT 1 FROM notification_tenants t"
                    " WHERE t.notification_id = n.id AND t.tenant_id = ?)")
            args.append(tenant_id)
        rows = self.conn.execute(sql + " ORDER BY seq LIMIT ?", [*args, limit]).fetchall()
        return [(r["seq"], json.loads(r["doc"])) for r in rows]

    def mark_sent(self, note: dict[str, Any], key: str | None) -> bool:
        """Record the send of a draft; False when it was already sent (nothing changes)."""
        digest = hashlib.sha256(note["message"].encode()).hexdigest()
        with self.transaction() as conn:
            changed = conn.execute(
                "UPDATE notifications SET status = 'sent', doc = ? WHERE id = ? AND status = 'draft'",
                (json.dumps(note), note["id"]),
            ).rowcount
            if not changed:
                return False
            conn.executemany(
                "INSERT INTO sends (notification_id, tenant_id, incident_reference,"
                " idempotency_key, message_sha256, at) VALUES (?, ?, ?, ?, ?, ?)",
                [(note["id"], t, note["incident_reference"], key, digest, note["sent_at"])
                 for t in note["tenant_ids"]],
            )
        return True

    def send_counts(self, incident_reference: str | None = None) -> dict[str, Any]:
        """Sends per (tenant, incident, idempotency key), and duplicate deliveries of one text."""
        where, args = ("WHERE incident_reference = ?", [incident_reference]) if incident_reference else ("", [])
        groups = self.conn.execute(
            "SELECT tenant_id, incident_reference, idempotency_key, count(*) AS n FROM sends "
            f"{where} GROUP BY tenant_id, incident_reference, idempotency_key "
            "ORDER BY tenant_id, incident_reference, idempotency_key",
            args,
        ).fetchall()
        dupes = self.conn.execute(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM sends "
            f"{where} GROUP BY tenant_id, incident_reference, message_sha256)",
            args,
        ).fetchone()[0]
        total = sum(g["n"] for g in groups)
        return {
            "sends": [
                {"tenant_id": g["tenant_id"], "incident_reference": g["incident_reference"],
                 "idempotency_key": g["idempotency_key"], "count": g["n"]}
                for g in groups
            ],
            "total": total,
            "duplicates": int(dupes),
        }

    # Idempotency records: claimed before the handler runs, completed with its response.
    def idem_get(self, key: str) -> sqlite3.Row | None:
        """The record for ``key``, if any."""
        return self.conn.execute("SELECT * FROM idempotency WHERE key = ?", (key,)).fetchone()  # type: ignore[no-any-return]

    def idem_claim(self, key: str, fingerprint: str) -> None:
        """Mark ``key`` in flight."""
        self.conn.execute(
            "INSERT INTO idempotency (key, fingerprint, state, created_at) VALUES (?, ?, 'in_flight', ?)",
            (key, fingerprint, _now()),
        )

    def idem_complete(self, key: str, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Store the response to replay for ``key``."""
        self.conn.execute(
            "UPDATE idempotency SET state = 'done', status = ?, headers = ?, body = ? WHERE key = ?",
            (status, json.dumps(headers), body, key),
        )

    def idem_release(self, key: str) -> None:
        """Forget ``key`` (its request failed on our side; the client may try again)."""
        self.conn.execute("DELETE FROM idempotency WHERE key = ?", (key,))

    def idem_expire(self, match: str = "*") -> int:
        """Drop completed records whose key matches the glob, as a real server does after its
        retention period."""
        keys = [r[0] for r in self.conn.execute("SELECT key FROM idempotency WHERE state = 'done'")
                if fnmatch.fnmatchcase(r[0], match)]
        self.conn.executemany("DELETE FROM idempotency WHERE key = ?", [(k,) for k in keys])
        return len(keys)


# --------------------------------------------------------------------------- faults, limits


def parse_fault_spec(text: str) -> dict[str, float]:
    """Parse ``429:0.2,500:0.1,slow:0.1,drop:0.05`` into probabilities per fault kind."""
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = part.partition(":")
        kind = kind.strip().replace("-", "_")
        if not sep or kind not in FAULT_KINDS:
            raise ValueError(f"fault '{part}': write KIND:PROBABILITY with KIND one of {', '.join(FAULT_KINDS)}")
        try:
            rates[kind] = float(value)
        except ValueError:
            raise ValueError(f"fault '{part}': '{value}' is not a probability") from None
    _check_rates(rates)
    return rates


def _check_rates(rates: Mapping[str, float]) -> None:
    for kind, p in rates.items():
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind '{kind}' (known: {', '.join(FAULT_KINDS)})")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"fault {kind}: probability {p} is not between 0 and 1")
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError("fault probabilities add up to more than 1")


@dataclass
class FaultPlan:
    """Which faults to inject: random ``rates`` and a ``queue`` of one-off rules, matched on
    ``"METHOD /path"`` globs (``match`` limits the random ones)."""

    rates: dict[str, float] = field(default_factory=dict)
    queue: list[dict[str, Any]] = field(default_factory=list)
    match: str = "*"
    slow_seconds: float = 5.0
    retry_after: int = 1
    seed: int | None = None
    injected: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_config(cls, raw: Any) -> FaultPlan:
        """Build from the admin endpoint's JSON; ValueError says what is wrong."""
        if not isinstance(raw, dict):
            raise ValueError("the fault configuration must be an object")
        unknown = set(raw) - {"rates", "queue", "match", "slow_seconds", "retry_after", "seed"}
        if unknown:
            raise ValueError(f"unknown fault setting '{sorted(unknown)[0]}'")
        rates = raw.get("rates") or {}
        if not isinstance(rates, dict) or not all(isinstance(v, int | float) for v in rates.values()):
            raise ValueError("'rates' must map fault kinds to probabilities")
        rates = {k.replace("-", "_"): float(v) for k, v in rates.items()}
        _check_rates(rates)
        queue = []
        for rule in raw.get("queue") or []:
            if isinstance(rule, str):
                rule = {"kind": rule}
            if not isinstance(rule, dict) or rule.get("kind") not in FAULT_KINDS:
                raise ValueError(f"queue rule {rule!r}: 'kind' must be one of {', '.join(FAULT_KINDS)}")
            times = rule.get("times", 1)
            if not isinstance(times, int) or times < 1:
                raise ValueError(f"queue rule {rule!r}: 'times' must be a positive integer")
            queue.append({"kind": rule["kind"], "match": str(rule.get("match", "*")), "times": times})
        slow = raw.get("slow_seconds", 5.0)
        retry_after = raw.get("retry_after", 1)
        seed = raw.get("seed")
        if not isinstance(slow, int | float) or not 0 <= slow <= 60:
            raise ValueError("'slow_seconds' must be between 0 and 60")
        if not isinstance(retry_after, int) or not 0 <= retry_after <= 3600:
            raise ValueError("'retry_after' must be a whole number of seconds")
        if seed is not None and not isinstance(seed, int):
            raise ValueError("'seed' must be an integer")
        return cls(rates=rates, queue=queue, match=str(raw.get("match", "*")),
                   slow_seconds=float(slow), retry_after=retry_after, seed=seed,
                   rng=random.Random(seed))

    def describe(self) -> dict[str, Any]:
        """The configuration and what was injected so far."""
        return {"rates": self.rates, "queue": self.queue, "match": self.match,
                "slow_seconds": self.slow_seconds, "retry_after": self.retry_after,
                "seed": self.seed, "injected": dict(self.injected)}

    def pick(self, method: str, path: str) -> str | None:
        """The fault for this request, if any (queued rules first)."""
        target = f"{method} {path}"
        for rule in self.queue:
            if fnmatch.fnmatchcase(target, rule["match"]):
                rule["times"] -= 1
                if rule["times"] == 0:
                    self.queue.remove(rule)
                self.injected[rule["kind"]] += 1
                return str(rule["kind"])
        if self.rates and fnmatch.fnmatchcase(target, self.match):
            draw, total = self.rng.random(), 0.0
            for kind, p in self.rates.items():
                total += p
                if draw < total:
                    self.injected[kind] += 1
                    return kind
        return None


class TokenBucket:
    """A token bucket: ``per_minute`` refill, ``burst`` capacity; ``take`` returns the wait."""

    def __init__(self, per_minute: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("the rate limit must be a positive number of requests a minute")
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.burst = burst if burst is not None else max(1.0, self.rate)
        self.clock = clock
        self.tokens = self.burst
        self.last = clock()

    def take(self) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def parse_rate(text: str) -> float:
    """Parse ``600``, ``600/min``, ``10/s`` into requests a minute."""
    number, _, unit = text.strip().lower().partition("/")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"rate limit '{text}' must look like 600/min or 10/s") from None
    factor = {"": 1.0, "m": 1.0, "min": 1.0, "minute": 1.0, "s": 60.0, "sec": 60.0, "second": 60.0}.get(unit.strip())
    if factor is None or value <= 0:
        raise ValueError(f"rate limit '{text}' must look like 600/min or 10/s")
    return value * factor


# --------------------------------------------------------------------------- the application


@dataclass
class SwitchboardState:
    """Everything the running stub holds: its database, token, limiter, faults, counters."""

    db: SwitchboardDB
    token: str
    limiter: TokenBucket | None = None
    faults: FaultPlan = field(default_factory=FaultPlan)
    stats: Counter[str] = field(default_factory=Counter)

    def close(self) -> None:
        """Close the database."""
        self.db.close()


def _state(request: Request) -> SwitchboardState:
    state: SwitchboardState = request.app.state.switchboard
    return state


def _only_params(request: Request, *allowed: str) -> None:
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        known = f"; known: {', '.join(allowed)}" if allowed else ""
        raise Problem(400, "invalid-parameter", "Invalid query parameter",
                      f"unknown query parameter '{unknown[0]}'{known}")


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not low <= int(raw) <= high:
        raise Problem(400, "invalid-parameter", "Invalid query parameter",
                      f"'{name}' must be a whole number from {low} to {high}")
    return int(raw)


def _encode_cursor(value: str | int) -> str:
    return str(value)


def _decode_cursor(request: Request, kind: type) -> Any:
    # Cursors are the sort key of the last item of the previous page: a tenant id, or a
    # notification's sequence number.  Not opaque, so the OpenAPI document can describe
    # exactly which values are valid.
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    if kind is str:
        return raw
    if not re.fullmatch(r"[0-9]{1,12}", raw):
        raise Problem(400, "invalid-cursor", "Invalid cursor",
                      "'cursor' must be a next_cursor value from a previous page")
    return int(raw)


async def list_tenants(request: Request) -> Response:
    _only_params(request, "cursor", "limit")
    st = _state(request)
    limit = _int_param(request, "limit", 50, 1, 100)
    after = _decode_cursor(request, str) or ""
    rows = st.db.tenants(after, limit + 1)
    page = rows[:limit]
    nxt = _encode_cursor(page[-1]["id"]) if len(rows) > limit else None
    return JSONResponse({"data": page, "next_cursor": nxt})


async def get_tenant(request: Request) -> Response:
    _only_params(request)
    tenant = _state(request).db.tenant(request.path_params["tenant_id"])
    if tenant is None:
        raise Problem(404, "not-found", "Not found", f"no tenant '{request.path_params['tenant_id']}'")
    return JSONResponse(tenant)


async def list_templates(request: Request) -> Response:
    _only_params(request)
    data = [{**t, "structured_fields": list(STRUCTURED_FIELDS)} for t in TEMPLATES]
    return JSONResponse({"data": data, "next_cursor": None})


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise Problem(400, "invalid-json", "Malformed request body", "the body must be a JSON object")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Problem(400, "invalid-json", "Malformed request body", f"the body is not JSON: {exc}") from None


async def create_notification(request: Request) -> Response:
    _only_params(request)
    st = _state(request)
    fields = validate_notification(await _json_body(request))
    missing = [t for t in fields["tenant_ids"] if st.db.tenant(t) is None]
    if missing:
        raise _invalid(f"unknown tenant '{missing[0]}' in 'tenant_ids'")
    note = {
        "id": "ntf_" + secrets.token_hex(8),
        "status": "draft",
        **fields,
        "idempotency_key": request.headers.get("idempotency-key"),
        "created_at": _now(),
        "previewed_at": None,
        "sent_at": None,
        "recipients": [],
    }
    st.db.create_notification(note)
    return JSONResponse(note, status_code=201, headers={"Location": f"/api/v1/notifications/{note['id']}"})


async def notifications(request: Request) -> Response:
    if request.method == "POST":
        return await create_notification(request)
    return await list_notifications(request)


async def list_notifications(request: Request) -> Response:
    _only_params(request, "cursor", "limit", "incident_reference", "tenant_id", "status")
    st = _state(request)
    limit = _int_param(request, "limit", 50, 1, 100)
    after = _decode_cursor(request, int) or 0
    status = request.query_params.get("status")
    if status is not None and status not in ("draft", "sent"):
        raise Problem(400, "invalid-parameter", "Invalid query parameter", "'status' must be draft or sent")
    rows = st.db.notifications(
        after=after, limit=limit + 1, status=status,
        incident_reference=request.query_params.get("incident_reference"),
        tenant_id=request.query_params.get("tenant_id"),
    )
    page = rows[:limit]
    nxt = _encode_cursor(page[-1][0]) if len(rows) > limit else None
    return JSONResponse({"data": [doc for _, doc in page], "next_cursor": nxt})


def _notification(st: SwitchboardState, note_id: str) -> dict[str, Any]:
    note = st.db.notification(note_id)
    if note is None:
        raise Problem(404, "not-found", "Not found", f"no notification '{note_id}'")
    return note


async def get_notification(request: Request) -> Response:
    _only_params(request)
    return JSONResponse(_notification(_state(request), request.path_params["notification_id"]))


def _tenants_of(st: SwitchboardState, note: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for tid in note["tenant_ids"] if (t := st.db.tenant(tid)) is not None]


async def preview_notification(request: Request) -> Response:
    _only_params(request)
    st = _state(request)
    note = _notification(st, request.path_params["notification_id"])
    who = note["recipients"] if note["status"] == "sent" else recipients(_tenants_of(st, note))
    return JSONResponse({"notification_id": note["id"], "status": note["status"], **render(note),
                         "recipients": who})


async def send_notification(request: Request) -> Response:
    _only_params(request)
    st = _state(request)
    note = _notification(st, request.path_params["notification_id"])
    if note["status"] == "sent":
        raise Problem(409, "already-sent", "Notification already sent",
                      f"notification '{note['id']}' was sent at {note['sent_at']}; it cannot be sent twice")
    note["recipients"] = recipients(_tenants_of(st, note))
    note["status"] = "sent"
    note["sent_at"] = _now()
    if not st.db.mark_sent(note, request.headers.get("idempotency-key")):  # pragma: no cover - single loop
        raise Problem(409, "already-sent", "Notification already sent", f"notification '{note['id']}' was sent")
    st.stats["sends"] += 1
    rendered = render(note)
    return JSONResponse({
        "notification_id": note["id"],
        "status": "sent",
        "sent_at": note["sent_at"],
        "incident_reference": note["incident_reference"],
        "tenant_ids": note["tenant_ids"],
        "recipients": note["recipients"],
        **rendered,
        "body_sha256": hashlib.sha256(rendered["body"].encode()).hexdigest(),
    })


async def openapi(request: Request) -> Response:
    from comms.adapters.switchboard_openapi import openapi_document

    return JSONResponse(openapi_document())


# Admin endpoints: for tests and benchmarks; outside the documented API.


async def admin_faults(request: Request) -> Response:
    st = _state(request)
    if request.method == "POST":
        try:
            st.faults = FaultPlan.from_config(await _json_body(request))
        except ValueError as exc:
            raise _invalid(str(exc)) from None
    return JSONResponse(st.faults.describe())


async def admin_sends(request: Request) -> Response:
    return JSONResponse(_state(request).db.send_counts(request.query_params.get("incident_reference")))


async def admin_stats(request: Request) -> Response:
    st = _state(request)
    if request.method == "DELETE":
        st.stats.clear()
        st.faults.injected.clear()
    counts = st.db.send_counts()
    return JSONResponse({
        "requests": st.stats["requests"],
        "rate_limited": st.stats["rate_limited"],
        "sends": st.stats["sends"],
        "faults": dict(st.faults.injected),
        "sends_total": counts["total"],
        "duplicates": counts["duplicates"],
    })


async def admin_rate_limit(request: Request) -> Response:
    st = _state(request)
    body = await _json_body(request)
    per_minute = body.get("per_minute") if isinstance(body, dict) else None
    burst = body.get("burst") if isinstance(body, dict) else None
    if per_minute is None:
        st.limiter = None
    else:
        try:
            st.limiter = TokenBucket(float(per_minute), float(burst) if burst is not None else None)
        except (TypeError, ValueError) as exc:
            raise _invalid(f"'per_minute' and 'burst' must be positive numbers ({exc})") from None
    return JSONResponse({"per_minute": st.limiter.per_minute if st.limiter else None,
                         "burst": st.limiter.burst if st.limiter else None})


async def admin_tenants(request: Request) -> Response:
    st = _state(request)
    body = await _json_body(request)
    try:
        tenants = [validate_tenant(t) for t in (body.get("tenants") if isinstance(body, dict) else None) or []]
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    st.db.put_tenants(tenants)
    return JSONResponse({"stored": len(tenants), "total": st.db.tenant_count()})


async def admin_expire(request: Request) -> Response:
    raw = await request.body()
    body = await _json_body(request) if raw.strip() else {}
    match = body.get("match", "*") if isinstance(body, dict) else "*"
    return JSONResponse({"expired": _state(request).db.idem_expire(str(match))})


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.response(request.url.path)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    detail = f"no resource at {request.url.path}" if exc.status_code == 404 else str(exc.detail)
    return Problem(exc.status_code, slug, title, detail, exc.headers).response(request.url.path)


async def _on_crash(request: Request, exc: Exception) -> Response:
    return Problem(500, "internal-error", "Internal server error",
                   "the stub failed to handle the request").response(request.url.path)


ROUTES = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/api/v1/tenants", list_tenants, methods=["GET"]),
    Route("/api/v1/tenants/{tenant_id}", get_tenant, methods=["GET"]),
    Route("/api/v1/notification-templates", list_templates, methods=["GET"]),
    Route("/api/v1/notifications", notifications, methods=["GET", "POST"]),
    Route("/api/v1/notifications/{notification_id}", get_notification, methods=["GET"]),
    Route("/api/v1/notifications/{notification_id}/preview", preview_notification, methods=["POST"]),
    Route("/api/v1/notifications/{notification_id}/send", send_notification, methods=["POST"]),
    Route("/_admin/faults", admin_faults, methods=["GET", "POST"]),
    Route("/_admin/sends", admin_sends, methods=["GET"]),
    Route("/_admin/stats", admin_stats, methods=["GET", "DELETE"]),
    Route("/_admin/rate-limit", admin_rate_limit, methods=["POST"]),
    Route("/_admin/tenants", admin_tenants, methods=["POST"]),
    Route("/_admin/idempotency/expire", admin_expire, methods=["POST"]),
]


class ConnectionDropped(Exception):
    """Raised in-process (ASGITransport) where there is no socket to close."""


async def _drop(send: Send, *, reset: bool = False) -> None:
    # uvicorn answers an exception raised before the response with a clean 500, so a
    # dropped connection must close the socket itself: the ASGI ``send`` is a bound method
    # of uvicorn's request cycle, which holds the transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionDropped("reset" if reset else "drop")
    if reset:
        # SO_LINGER 0 makes the close send a TCP RST instead of a FIN.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    # Let connection_lost run, so uvicorn sees the client gone and writes nothing more.
    await asyncio.sleep(0)


class Gateway:
    """The outer ASGI layer: auth, rate limit, fault injection and idempotency keys."""

    def __init__(self, app: Starlette, state: SwitchboardState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/openapi.json":
            await self.app(scope, receive, send)
            return
        st, path, method = self.state, scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not self._authorized(headers.get("authorization", "")):
            await _reply(send, Problem(401, "unauthorized", "Unauthorized",
                                       "send 'Authorization: Bearer <token>' with a valid token",
                                       {"WWW-Authenticate": 'Bearer realm="switchboard"'}), path)
            return
        if not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        st.stats["requests"] += 1
        if st.limiter is not None and (wait := st.limiter.take()) > 0:
            st.stats["rate_limited"] += 1
            await _reply(send, Problem(429, "rate-limited", "Too many requests",
                                       f"the limit is {st.limiter.per_minute:g} requests a minute",
                                       {"Retry-After": str(max(1, math.ceil(wait)))}), path)
            return
        fault = st.faults.pick(method, path)
        if fault in ("429", "503"):
            await _reply(send, Problem(int(fault), "injected-fault", "Injected fault",
                                       f"fault injection answered {fault}",
                                       {"Retry-After": str(st.faults.retry_after)}), path)
            return
        if fault == "500":
            await _reply(send, Problem(500, "injected-fault", "Injected fault",
                                       "fault injection answered 500"), path)
            return
        if fault in ("drop", "reset"):
            await _drop(send, reset=fault == "reset")
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        key = headers.get("idempotency-key")
        if method == "POST" and key is not None:
            result = await self._idempotent(scope, key, body, slow=fault == "slow")
            if isinstance(result, Problem):
                await _reply(send, result, path)
                return
        else:
            if fault == "slow":
                await asyncio.sleep(st.faults.slow_seconds)
            result = await self._run(scope, body)
        if fault == "after_commit":
            await _drop(send)
        elif fault == "after_commit_500":
            await _reply(send, Problem(500, "injected-fault", "Injected fault",
                                       "fault injection answered 500 after doing the work"), path)
        else:
            await _send_response(send, *result)

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.state.token.encode())

    async def _idempotent(
        self, scope: Scope, key: str, body: bytes, *, slow: bool
    ) -> Problem | tuple[int, list[tuple[str, str]], bytes]:
        db = self.state.db
        if not IDEMPOTENCY_KEY.match(key):
            return Problem(400, "invalid-idempotency-key", "Invalid Idempotency-Key",
                           "the Idempotency-Key header must be 1 to 255 visible ASCII characters")
        fingerprint = _fingerprint(scope["method"], scope["path"], body)
        record = db.idem_get(key)
        if record is not None:
            if record["fingerprint"] != fingerprint:
                return Problem(422, "idempotency-key-reused", "Idempotency-Key reused",
                               "this Idempotency-Key was used for a different request; use a new key")
            if record["state"] == "in_flight":
                return Problem(409, "idempotency-in-flight", "Request in progress",
                               "a request with this Idempotency-Key is still being processed; retry later",
                               {"Retry-After": "1"})
            stored = [tuple(h) for h in json.loads(record["headers"])]
            return record["status"], [*stored, ("idempotent-replayed", "true")], record["body"]
        db.idem_claim(key, fingerprint)
        try:
            if slow:
                await asyncio.sleep(self.state.faults.slow_seconds)
            status, headers, out = await self._run(scope, body)
        except BaseException:
            db.idem_release(key)
            raise
        # A server error is not an answer to replay: the client may try the request again.
        if status >= 500:
            db.idem_release(key)
        else:
            db.idem_complete(key, status, headers, out)
        return status, headers, out

    async def _run(self, scope: Scope, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """Run the Starlette app on a buffered request and capture its whole response."""
        messages: list[Message] = []
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def capture(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, receive, capture)
        except Exception:
            # Starlette re-raises after its error handler answered; keep that answer.
            if not any(m["type"] == "http.response.start" for m in messages):
                raise
        start = next(m for m in messages if m["type"] == "http.response.start")
        out = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
        return start["status"], headers, out


def _fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_response(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers if k.lower() != "content-length"]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _reply(send: Send, problem: Problem, path: str) -> None:
    headers = [(k, v) for k, v in problem.headers.items()]
    headers.append(("content-type", "application/problem+json"))
    await _send_response(send, problem.status, headers, json.dumps(problem.body(path)).encode())


def create_app(
    db_path: Path | str,
    *,
    token: str,
    seed: Path | None = None,
    rate_limit: float | None = None,
    burst: float | None = None,
    faults: FaultPlan | None = None,
) -> Gateway:
    """Build the stub as an ASGI app.  ``seed`` tenants are upserted; with no seed, an empty
    database gets the bundled example tenants.  The app's ``state.close()`` closes the database
    (the lifespan does it when served by uvicorn)."""
    if not token:
        raise ValueError("the stub needs a bearer token")
    db = SwitchboardDB(db_path)
    try:
        if seed is not None:
            db.put_tenants(load_seed(seed))
        elif db.tenant_count() == 0:
            db.put_tenants(load_seed(DEFAULT_SEED))
    except BaseException:
        db.close()
        raise
    state = SwitchboardState(
        db=db,
        token=token,
        limiter=TokenBucket(rate_limit, burst) if rate_limit else None,
        faults=faults or FaultPlan(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        state.close()

    app = Starlette(
        routes=ROUTES,
        exception_handlers={Problem: _on_problem, HTTPException: _on_http_error, Exception: _on_crash},
        lifespan=lifespan,
    )
    app.state.switchboard = state
    return Gateway(app, state)


def _server(app: Gateway, *, log_level: str = "warning", graceful: float = 3.0) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        # uvicorn polls should_exit every 0.1 s; tests start and stop a stub per test, so
        # poll every 10 ms (on_tick still refreshes the Date header about every 0.1 s).
        async def main_loop(self) -> None:
            ticks = 0
            should_exit = await self.on_tick(0)
            while not should_exit:
                ticks += 1
                await asyncio.sleep(0.01)
                should_exit = await self.on_tick(0 if ticks % 10 == 0 else 1)

    config = uvicorn.Config(
        app, http="h11", ws="none", loop="asyncio", lifespan="on", log_level=log_level,
        access_log=False, timeout_graceful_shutdown=graceful, server_header=False,
    )
    return Server(config)


@contextlib.contextmanager
def serve_in_thread(
    db_path: Path | str,
    *,
    token: str,
    seed: Path | None = None,
    rate_limit: float | None = None,
    burst: float | None = None,
    faults: FaultPlan | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[str]:
    """Run the stub on ``host`` (a free port by default) in a background thread; yield its
    base URL (``http://127.0.0.1:PORT``) and stop it cleanly on exit."""
    app = create_app(db_path, token=token, seed=seed, rate_limit=rate_limit, burst=burst, faults=faults)
    server = _server(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_port = sock.getsockname()[1]
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                                  name=f"switchboard-stub-{bound_port}")
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(5)
                raise RuntimeError("the Switchboard stub did not start")
            time.sleep(0.005)
        try:
            yield f"http://{host}:{bound_port}"
        finally:
            server.should_exit = True
            thread.join(10)
    finally:
        sock.close()
        if not server.started:
            app.state.close()


def serve(
    db_path: Path | str,
    *,
    token: str,
    host: str = "127.0.0.1",
    port: int = 8765,
    seed: Path | None = None,
    rate_limit: float | None = None,
    burst: float | None = None,
    faults: FaultPlan | None = None,
    log_level: str = "warning",
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run the stub in the foreground until SIGINT/SIGTERM (``comms switchboard serve``).

    The socket is bound before the server starts, so ``port=0`` picks a free port and
    ``announce`` receives the real base URL.
    """
    app = create_app(db_path, token=token, seed=seed, rate_limit=rate_limit, burst=burst, faults=faults)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            app.state.close()
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        bound = sock.getsockname()[1]
        if announce is not None:
            shown = f"[{host}]" if family == socket.AF_INET6 else host
            announce(f"http://{shown}:{bound}")
        _server(app, log_level=log_level).run(sockets=[sock])
    finally:
        sock.close()
