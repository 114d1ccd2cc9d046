"""The Switchboard stub's data: templates, maintenance windows, validation of tenants and
notifications, what recipients see, and the stub's own SQLite file (WAL).

The request and response bodies of the API are pydantic models here: the stub validates every
create-notification body and every response it sends with them, and
:mod:`comms.adapters.switchboard_openapi` generates the OpenAPI schemas from them, so the
document cannot describe bodies other than those the stub accepts and sends.

No HTTP here; :mod:`comms.adapters.stub_server` serves it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError

DEFAULT_SEED = Path(__file__).with_name("switchboard_seed.json")
PROBLEM_BASE = "https://switchboard.example/problems/"

MAINTENANCE_WINDOWS: dict[str, dict[str, str]] = {
    "apac": {
        "region": "APAC",
        "day": "Wednesday",
        "start": "13:00",
        "end": "17:00",
        "description": "APAC: Wednesday 13:00-17:00 UTC",
    },
    "emea": {
        "region": "EMEA",
        "day": "Tuesday",
        "start": "01:00",
        "end": "05:00",
        "description": "EMEA: Tuesday 01:00-05:00 UTC",
    },
    "amer-1": {
        "region": "AMER",
        "day": "Tuesday",
        "start": "07:00",
        "end": "11:00",
        "description": "AMER option 1: Tuesday 07:00-11:00 UTC",
    },
    "amer-2": {
        "region": "AMER",
        "day": "Sunday",
        "start": "21:00",
        "end": "01:00",
        "description": "AMER option 2: Sunday 21:00 - Monday 01:00 UTC",
    },
}

# Simple templates let the whole body be edited; complex ones only the intro paragraph,
# under which Switchboard prints the structured fields.
TEMPLATES: list[dict[str, Any]] = [
    {
        "id": "incident_investigation_start",
        "name": "Incident investigation start",
        "category": "incident",
        "editable": "body",
    },
    {
        "id": "incident_investigation_update",
        "name": "Incident investigation update",
        "category": "incident",
        "editable": "intro",
    },
    {
        "id": "incident_escalated_response",
        "name": "Incident escalated response",
        "category": "incident",
        "editable": "intro",
    },
    {
        "id": "incident_mitigation_in_progress",
        "name": "Incident mitigation in progress",
        "category": "incident",
        "editable": "intro",
    },
    {
        "id": "incident_resolved",
        "name": "Incident resolved",
        "category": "incident",
        "editable": "body",
    },
    {
        "id": "emergency_maintenance_planned",
        "name": "Emergency maintenance planned",
        "category": "maintenance",
        "editable": "body",
    },
    {
        "id": "emergency_maintenance_completed",
        "name": "Emergency maintenance completed",
        "category": "maintenance",
        "editable": "body",
    },
]
TEMPLATE_IDS = {t["id"]: t for t in TEMPLATES}
TemplateId = Literal[
    "incident_investigation_start",
    "incident_investigation_update",
    "incident_escalated_response",
    "incident_mitigation_in_progress",
    "incident_resolved",
    "emergency_maintenance_planned",
    "emergency_maintenance_completed",
]
WindowId = Literal["apac", "emea", "amer-1", "amer-2"]
NotificationStatus = Literal["draft", "sent"]
NOTIFICATION_STATUSES: tuple[str, ...] = get_args(NotificationStatus)
# The ``limit`` query parameter of the list endpoints: lowest, highest, default.
PAGE_LIMIT = (1, 100, 50)
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


class ProblemError(Exception):
    """An RFC 9457 problem, raised by handlers and turned into application/problem+json."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
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
        return checked(Problem, doc)


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds and Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def invalid(detail: str) -> ProblemError:
    """A 422 problem about the request body."""
    return ProblemError(422, "validation-error", "Request body is invalid", detail)


# --------------------------------------------------------------------------- API bodies


class _Body(BaseModel):
    # strict: JSON types exactly (no "1" for 1).  python-re: patterns match as the re-based
    # checks these models replaced did, and as the tests' jsonschema validator reads them.
    model_config = ConfigDict(
        extra="forbid", strict=True, regex_engine="python-re", defer_build=True
    )


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _distinct(ids: list[str]) -> list[str]:
    if len(set(ids)) != len(ids):
        raise PydanticCustomError("not_distinct", "tenant ids must be distinct")
    return ids


def _plain_text(text: str) -> str:
    if HTML_TAG.search(text):
        raise PydanticCustomError("html_markup", "must be plain text")
    return text


TenantId = Annotated[str, Field(pattern=TENANT_ID.pattern)]
Email = Annotated[str, Field(json_schema_extra={"format": "email"})]
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
ClockTime = Annotated[str, Field(pattern=r"^[0-2][0-9]:[0-5][0-9]$")]


class Problem(_Body):
    """RFC 9457 problem details."""

    # Problem details may carry extension members, so the schema does not forbid them.
    model_config = ConfigDict(extra="ignore")

    type: Annotated[str, Field(json_schema_extra={"format": "uri"})]
    title: str
    status: Annotated[int, Field(ge=400, le=599)]
    detail: str
    # Left out of the body when unknown, never null.
    instance: str | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_drop_default)


class Person(_Body):
    """A named contact: the tenant's CSM or ASE."""

    name: str
    email: Email


class MaintenanceWindow(_Body):
    """A weekly maintenance window, in UTC."""

    id: WindowId
    region: Literal["APAC", "EMEA", "AMER"]
    day: str
    start: ClockTime
    end: ClockTime
    description: str


class Tenant(_Body):
    """A GitLab Dedicated tenant."""

    id: TenantId
    name: Annotated[str, Field(min_length=1)]
    url: Annotated[str, Field(json_schema_extra={"format": "uri"})]
    status: Annotated[
        Literal["normal", "degraded", "disruption"],
        Field(
            description="degraded: degraded performance (S2); disruption: service disruption (S1)."
        ),
    ]
    gitlab_version: str
    reference_architecture: str
    primary_region: str
    secondary_region: str | None
    geo: bool
    pubsec: Annotated[bool, Field(description="US Dedicated for Government (FedRAMP).")]
    maintenance_window: MaintenanceWindow
    operational_emails: Annotated[list[Email], Field(min_length=1)]
    csm: Person | None
    ase: Person | None


class TenantPage(_Body):
    """A page of tenants, by id."""

    data: list[Tenant]
    next_cursor: str | None


class Template(_Body):
    """A pre-approved notification template."""

    id: TemplateId
    name: str
    category: Literal["incident", "maintenance"]
    editable: Annotated[
        Literal["body", "intro"],
        Field(description="body: the whole message is editable; intro: only the intro paragraph."),
    ]
    structured_fields: list[str]


class TemplatePage(_Body):
    """All templates, on one page."""

    data: list[Template]
    next_cursor: None


class NotificationCreate(_Body):
    """A draft notification to create from a template."""

    template: TemplateId
    tenant_ids: Annotated[
        list[TenantId],
        Field(min_length=1, max_length=500, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_distinct),
    ]
    incident_reference: Annotated[str, Field(min_length=1, max_length=100)]
    message: Annotated[
        str,
        Field(
            max_length=20000,
            pattern=r"\S",
            description="Plain text; not empty; no HTML markup.",
            json_schema_extra={"not": {"pattern": HTML_TAG.pattern}},
        ),
        AfterValidator(_plain_text),
    ]
    investigation_focus_area: Annotated[str, Field(max_length=500)] | None = None
    affected_components: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=50)]
        | None
    ) = None
    customer_reported_impact: Annotated[str, Field(max_length=2000)] | None = None
    metadata: (
        Annotated[
            dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=500)]],
            Field(max_length=20),
        ]
        | None
    ) = None


class Recipient(_Body):
    """One address a notification goes to."""

    tenant_id: TenantId
    email: str
    name: str
    role: Literal["operational", "csm", "ase"]


class Notification(_Body):
    """A notification: a draft until sent."""

    id: str
    status: NotificationStatus
    template: TemplateId
    tenant_ids: list[TenantId]
    incident_reference: str
    message: str
    investigation_focus_area: str | None
    affected_components: list[str] | None
    customer_reported_impact: str | None
    metadata: dict[str, str]
    idempotency_key: Annotated[
        str | None, Field(description="The Idempotency-Key of the request that created it.")
    ]
    created_at: Timestamp
    previewed_at: Timestamp | None
    sent_at: Timestamp | None
    recipients: Annotated[
        list[Recipient], Field(description="Resolved at send; empty for a draft.")
    ]


class NotificationPage(_Body):
    """A page of notifications, oldest first."""

    data: list[Notification]
    next_cursor: str | None


class Preview(_Body):
    """What the recipients of a notification see."""

    notification_id: str
    status: NotificationStatus
    subject: str
    body: Annotated[str, Field(description="Exactly the plain text recipients get.")]
    recipients: list[Recipient]


class Delivery(_Body):
    """The record of a sent notification."""

    notification_id: str
    status: Literal["sent"]
    sent_at: Timestamp
    incident_reference: str
    tenant_ids: list[TenantId]
    recipients: list[Recipient]
    subject: str
    body: str
    body_sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]


def checked(model: type[BaseModel], doc: Any) -> dict[str, Any]:
    """``doc`` validated against ``model`` and dumped as JSON data, for a response body.

    A document that does not fit raises pydantic's ValidationError (the stub answers 500), so
    the stub cannot send a body its OpenAPI document does not describe.  Optional fields left
    out of ``doc`` stay out (only ``Problem.instance`` has a default)."""
    return model.model_validate(doc).model_dump(mode="json", exclude_unset=True)


# --------------------------------------------------------------------------- validation


def validate_tenant(raw: Any) -> dict[str, Any]:
    """Check one tenant record (seed file or admin upload); expand its maintenance window.

    The result fits :class:`Tenant`; ValueError says what is wrong."""
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
        raise ValueError(
            f"{where}: maintenance_window must be one of {', '.join(MAINTENANCE_WINDOWS)}"
        )
    emails = raw.get("operational_emails")
    if (
        not isinstance(emails, list)
        or not emails
        or not all(isinstance(e, str) and EMAIL.match(e) for e in emails)
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
    return checked(
        Tenant,
        {
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
        },
    )


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


_FIELD_PROBLEMS = {
    "template": f"'template' must be one of {', '.join(TEMPLATE_IDS)}",
    "tenant_ids": "'tenant_ids' must be a list of 1 to 500 distinct tenant ids",
    "incident_reference": "'incident_reference' must be a string of 1 to 100 characters",
    "message": "'message' must be a string of at most 20000 characters",
    "affected_components": "'affected_components' must be a list of at most 50 names, or null",
    "metadata": "'metadata' must be an object of at most 20 string values",
    "investigation_focus_area": (
        "'investigation_focus_area' must be a string of at most 500 characters, or null"
    ),
    "customer_reported_impact": (
        "'customer_reported_impact' must be a string of at most 2000 characters, or null"
    ),
}
_CHECK_ORDER = list(_FIELD_PROBLEMS)


def _first_problem(errors: list[ErrorDetails]) -> str:
    # The detail names one field, the first failing in this order, in the words the stub has
    # always used, rather than pydantic's list of every error.
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return f"unknown field '{unknown[0]}'"
    first = min(errors, key=lambda e: _CHECK_ORDER.index(str(e["loc"][0])))
    name = str(first["loc"][0])
    if name == "message" and first["type"] == "string_pattern_mismatch":
        return "'message' may not be empty"
    if first["type"] == "html_markup":
        return "'message' must be plain text; remove the HTML markup"
    return _FIELD_PROBLEMS[name]


def validate_notification(body: Any) -> dict[str, Any]:
    """Check a create-notification request body against :class:`NotificationCreate`; raise a
    422 ProblemError naming the field.  Returns every field, ``metadata`` ``{}`` when absent."""
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    try:
        fields = NotificationCreate.model_validate(body).model_dump()
    except ValidationError as exc:
        raise invalid(_first_problem(exc.errors())) from None
    fields["metadata"] = fields["metadata"] or {}
    return fields


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
                "INSERT INTO notifications (id, incident_reference, status, doc)"
                " VALUES (?, ?, ?, ?)",
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
        self,
        *,
        after: int,
        limit: int,
        incident_reference: str | None,
        tenant_id: str | None,
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
            sql += (
                " AND EXISTS (SELECT 1 FROM notification_tenants t"
                " WHERE t.notification_id = n.id AND t.tenant_id = ?)"
            )
            args.append(tenant_id)
        rows = self.conn.execute(sql + " ORDER BY seq LIMIT ?", [*args, limit]).fetchall()
        return [(r["seq"], json.loads(r["doc"])) for r in rows]

    def mark_sent(self, note: dict[str, Any], key: str | None) -> bool:
        """Record the send of a draft; False when it was already sent (nothing changes)."""
        digest = hashlib.sha256(note["message"].encode()).hexdigest()
        with self.transaction() as conn:
            changed = conn.execute(
                "UPDATE notifications SET status = 'sent', doc = ?"
                " WHERE id = ? AND status = 'draft'",
                (json.dumps(note), note["id"]),
            ).rowcount
            if not changed:
                return False
            conn.executemany(
                "INSERT INTO sends (notification_id, tenant_id, incident_reference,"
                " idempotency_key, message_sha256, at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (note["id"], t, note["incident_reference"], key, digest, note["sent_at"])
                    for t in note["tenant_ids"]
                ],
            )
        return True

    def send_counts(self, incident_reference: str | None = None) -> dict[str, Any]:
        """Sends per (tenant, incident, idempotency key), and duplicate deliveries of one text."""
        where, args = (
            ("WHERE incident_reference = ?", [incident_reference])
            if incident_reference
            else ("", [])
        )
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
                {
                    "tenant_id": g["tenant_id"],
                    "incident_reference": g["incident_reference"],
                    "idempotency_key": g["idempotency_key"],
                    "count": g["n"],
                }
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
            "INSERT INTO idempotency (key, fingerprint, state, created_at)"
            " VALUES (?, ?, 'in_flight', ?)",
            (key, fingerprint, now_iso()),
        )

    def idem_complete(
        self, key: str, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        """Store the response to replay for ``key``."""
        self.conn.execute(
            "UPDATE idempotency SET state = 'done', status = ?, headers = ?, body = ?"
            " WHERE key = ?",
            (status, json.dumps(headers), body, key),
        )

    def idem_release(self, key: str) -> None:
        """Forget ``key`` (its request failed on our side; the client may try again)."""
        self.conn.execute("DELETE FROM idempotency WHERE key = ?", (key,))

    def idem_expire(self, match: str = "*") -> int:
        """Drop completed records whose key matches the glob, as a real server does after its
        retention period."""
        keys = [
            r[0]
            for r in self.conn.execute("SELECT key FROM idempotency WHERE state = 'done'")
            if fnmatch.fnmatchcase(r[0], match)
        ]
        self.conn.executemany("DELETE FROM idempotency WHERE key = ?", [(k,) for k in keys])
        return len(keys)
