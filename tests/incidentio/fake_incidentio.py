"""An incident.io-compatible fake: the slice of the public API comms reads, and webhooks.

Written from incident.io's published reference (api-docs.incident.io): a real HTTP server
(stdlib ``ThreadingHTTPServer``) on 127.0.0.1 and a free port, in a thread, so the adapter
talks to it over a socket exactly as to ``https://api.incident.io``.

    GET /v2/incidents/{id}      by id, or by the numeric part of the reference (``2291``)
    GET /v2/incidents           newest first; ``page_size`` (1–250, else 422) and ``after``
                                (an incident id); ``pagination_meta {after, page_size,
                                total_record_count}``; ``status_category[one_of]``;
                                test and tutorial incidents left out, as the API does
    GET /v1/severities          ``{"severities": [...]}``
    GET /v1/incident_statuses   ``{"incident_statuses": [...]}``
    GET /v2/custom_fields       ``{"custom_fields": [...]}``

Errors have incident.io's shape (``type``, ``status``, ``request_id``, ``errors[{code,
message}]``); a missing or wrong bearer key is a 401.  ``inject(kind, path=…, times=…)``
queues faults: ``429`` (with ``Retry-After``), ``500``, ``drop`` (the connection closes
with no answer) and ``slow`` (the answer comes after ``delay`` seconds).

Changes made through :meth:`FakeIncidentio.declare` and :meth:`FakeIncidentio.update` bump
``updated_at`` and put the webhook event incident.io would send into ``outbox``
(``public_incident.incident_created_v2`` / ``…updated_v2``, or the ``private_incident.*``
event, which carries only the id); :class:`Signer` signs a body as Svix does.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.http_reply import reply_json

BASE_TIME = datetime(2026, 11, 27, 13, 52, tzinfo=UTC)
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

SEVERITIES = [("Minor", 1), ("Major", 2), ("Critical", 3)]
STATUSES = [
    ("Triage", "triage"),
    ("Investigating", "live"),
    ("Fixing", "live"),
    ("Monitoring", "live"),
    ("Documenting", "learning"),
    ("Closed", "closed"),
    ("Declined", "declined"),
    ("Merged", "merged"),
    ("Canceled", "canceled"),
    ("Paused", "paused"),
]
TENANT_FIELD = "Affected tenants"


def ulid(n: int, prefix: str = "01HX") -> str:
    """A stable, ULID-shaped id (26 Crockford base32 characters) for counter ``n``."""
    digits = ""
    for _ in range(26 - len(prefix)):
        digits = CROCKFORD[n % 32] + digits
        n //= 32
    return prefix + digits


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class Fault:
    kind: str
    path: str | None = None
    times: int = 1
    retry_after: int = 1
    delay: float = 1.0


class FakeIncidentio:
    """The fake API and its data; ``token`` is the one key it accepts."""

    def __init__(
        self, *, token: str, org: str = "gitlab", clock_start: datetime = BASE_TIME
    ) -> None:
        self.token = token
        self.org = org
        self.clock = clock_start
        self.lock = threading.Lock()
        self.severities = [
            {
                "id": ulid(100 + i),
                "name": name,
                "rank": rank,
                "description": f"{name} impact",
                "created_at": stamp(BASE_TIME),
                "updated_at": stamp(BASE_TIME),
            }
            for i, (name, rank) in enumerate(SEVERITIES)
        ]
        self.statuses = [
            {
                "id": ulid(200 + i),
                "name": name,
                "category": category,
                "rank": i,
                "description": "",
                "created_at": stamp(BASE_TIME),
                "updated_at": stamp(BASE_TIME),
            }
            for i, (name, category) in enumerate(STATUSES)
        ]
        self.tenant_field: dict[str, Any] = {
            "id": ulid(300),
            "name": TENANT_FIELD,
            "description": "Dedicated tenants whose customers are affected",
            "field_type": "multi_select",
            "created_at": stamp(BASE_TIME),
            "updated_at": stamp(BASE_TIME),
        }
        self.fields = [
            self.tenant_field,
            {
                "id": ulid(301),
                "name": "Affected Team",
                "description": "Which team is impacted",
                "field_type": "single_select",
                "created_at": stamp(BASE_TIME),
                "updated_at": stamp(BASE_TIME),
            },
        ]
        self.options: dict[str, dict[str, Any]] = {}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []  # creation order
        self.outbox: list[tuple[str, bytes]] = []  # (event type, body) as incident.io sends
        self.requests: list[tuple[str, str, bool]] = []  # (method, path?query, authenticated)
        self.faults: deque[Fault] = deque()
        self._counter = 0
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifetime -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> FakeIncidentio:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeIncidentio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, kind: str, **options: Any) -> None:
        self.faults.append(Fault(kind, **options))

    # -- data --------------------------------------------------------------------------------

    def tick(self, seconds: int = 1) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    def severity(self, name: str) -> dict[str, Any]:
        return next(s for s in self.severities if s["name"] == name)

    def status(self, name: str) -> dict[str, Any]:
        return next(s for s in self.statuses if s["name"] == name)

    def option(self, value: str) -> dict[str, Any]:
        if value not in self.options:
            self.options[value] = {
                "id": ulid(400 + len(self.options)),
                "custom_field_id": self.tenant_field["id"],
                "sort_key": 10 * (len(self.options) + 1),
                "value": value,
            }
        return self.options[value]

    def _entries(self, tenants: list[str] | None, team: str | None) -> list[dict[str, Any]]:
        entries = []
        if tenants is not None:
            info = {k: self.tenant_field[k] for k in ("id", "name", "description", "field_type")}
            entries.append(
                {
                    "custom_field": {**info, "options": [self.option(t) for t in tenants]},
                    "values": [{"value_option": self.option(t)} for t in tenants],
                }
            )
        if team is not None:
            entries.append(
                {
                    "custom_field": {
                        "id": ulid(301),
                        "name": "Affected Team",
                        "description": "Which team is impacted",
                        "field_type": "single_select",
                        "options": [],
                    },
                    "values": [{"value_text": team}],
                }
            )
        return entries

    def declare(
        self,
        name: str,
        *,
        severity: str | None = "Major",
        status: str = "Investigating",
        tenants: list[str] | None = None,
        number: int | None = None,
        mode: str = "standard",
        visibility: str = "public",
        slack_channel_id: str | None = None,
        team: str | None = None,
    ) -> dict[str, Any]:
        """Declare an incident (``INC-<number>``) and queue its created event."""
        with self.lock:
            self._counter += 1
            number = number or 2290 + self._counter
            when = self.tick()
            incident = {
                "id": ulid(1000 + self._counter),
                "reference": f"INC-{number}",
                "name": name,
                "summary": "",
                "mode": mode,
                "visibility": visibility,
                "incident_status": self.status(status),
                "severity": self.severity(severity) if severity else None,
                "created_at": stamp(when),
                "updated_at": stamp(when),
                "custom_field_entries": self._entries(tenants, team),
                "incident_role_assignments": [],
                "permalink": f"https://app.incident.io/{self.org}/incidents/{number}",
                "slack_channel_id": slack_channel_id
                if slack_channel_id is not None
                else f"C0{number}",
                "slack_channel_name": f"inc-{number}",
                "slack_team_id": "T02A1FSLE8J",
                "creator": {"user": {"id": ulid(9), "name": "Sam Lee", "role": "responder"}},
            }
            self.incidents[incident["id"]] = incident
            self.order.append(incident["id"])
            self._emit("incident_created_v2", incident)
            return json.loads(json.dumps(incident))

    def update(
        self,
        incident_id: str,
        *,
        name: str | None = None,
        severity: str | None = None,
        status: str | None = None,
        tenants: list[str] | None = None,
        slack_channel_id: str | None = None,
    ) -> dict[str, Any]:
        """Change an incident as a responder would, and queue its updated event."""
        with self.lock:
            incident = self.incidents[incident_id]
            if name is not None:
                incident["name"] = name
            if severity is not None:
                incident["severity"] = self.severity(severity)
            if status is not None:
                incident["incident_status"] = self.status(status)
            if tenants is not None:
                incident["custom_field_entries"] = self._entries(tenants, None)
            if slack_channel_id is not None:
                incident["slack_channel_id"] = slack_channel_id
            incident["updated_at"] = stamp(self.tick())
            self._emit("incident_updated_v2", incident)
            return json.loads(json.dumps(incident))

    def _emit(self, kind: str, incident: dict[str, Any]) -> None:
        if incident["visibility"] == "private":
            event_type = f"private_incident.{kind}"
            body = {"event_type": event_type, event_type: {"id": incident["id"]}}
        else:
            event_type = f"public_incident.{kind}"
            body = {"event_type": event_type, event_type: incident}
        self.outbox.append((event_type, json.dumps(body).encode()))

    # -- HTTP ------------------------------------------------------------------------------

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in list(self.faults):
                if fault.path is None or re.search(fault.path, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def handle(self, method: str, target: str, auth: str | None) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        authenticated = auth == f"Bearer {self.token}"
        self.requests.append((method, target, authenticated))
        if not auth:
            return _error(
                401,
                "authentication_error",
                "missing_authorization_material",
                "No authorization material provided in request",
            )
        if not authenticated:
            return _error(
                401,
                "authentication_error",
                "invalid_authorization_material",
                "The API key provided is not valid",
            )
        if method != "GET":
            return _error(405, "method_not_allowed", "method_not_allowed", "Only GET is faked")
        with self.lock:
            if path == "/v1/severities":
                return 200, {"severities": self.severities}, {}
            if path == "/v1/incident_statuses":
                return 200, {"incident_statuses": self.statuses}, {}
            if path == "/v2/custom_fields":
                return 200, {"custom_fields": self.fields}, {}
            if path == "/v2/incidents":
                return self._list(query)
            match = re.fullmatch(r"/v2/incidents/([^/]+)", path)
            if match:
                found = self._find(match.group(1))
                if found is None:
                    return _error(404, "not_found", "not_found", "Incident not found")
                return 200, {"incident": found}, {}
        return _error(404, "not_found", "not_found", f"No route for {path}")

    def _find(self, key: str) -> dict[str, Any] | None:
        if key in self.incidents:
            return self.incidents[key]
        if key.isdigit():
            return next(
                (i for i in self.incidents.values() if i["reference"].endswith(f"-{key}")), None
            )
        return None

    def _list(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        try:
            size = int(query.get("page_size", ["25"])[0])
        except ValueError:
            size = -1
        if not 1 <= size <= 250:
            return _error(
                422, "validation_error", "invalid_value", "page_size must be between 1 and 250"
            )
        wanted = query.get("status_category[one_of]", [])
        modes = query.get("mode[one_of]", ["standard", "retrospective"])
        items = [
            self.incidents[i]
            for i in reversed(self.order)
            if self.incidents[i]["mode"] in modes
            and (not wanted or self.incidents[i]["incident_status"]["category"] in wanted)
        ]
        after = query.get("after", [None])[0]
        if after is not None:
            ids = [i["id"] for i in items]
            if after not in ids:
                return _error(
                    422, "validation_error", "invalid_value", "after is not an incident id"
                )
            items = items[ids.index(after) + 1 :]
        page = items[:size]
        meta: dict[str, Any] = {"page_size": size, "total_record_count": len(items)}
        if len(items) > size:
            meta["after"] = page[-1]["id"]
        return 200, {"incidents": page, "pagination_meta": meta}, {}


def _error(status: int, kind: str, code: str, message: str) -> tuple[int, Any, dict[str, str]]:
    body = {
        "type": kind,
        "status": status,
        "request_id": "8e3cc412-b49d-4957-9073-2c19d2c61804",
        "errors": [{"code": code, "message": message}],
    }
    return status, body, {}


def _handler(fake: FakeIncidentio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            fault = fake._take_fault(urlsplit(self.path).path)
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            if fault is not None and fault.kind in ("429", "500"):
                status = int(fault.kind)
                kind = "rate_limited" if status == 429 else "internal_error"
                _, body, headers = _error(status, kind, kind, "Injected fault")
                if status == 429:
                    headers = {"Retry-After": str(fault.retry_after)}
            else:
                status, body, headers = fake.handle(
                    "GET", self.path, self.headers.get("Authorization")
                )
            reply_json(self, status, body, headers, content_type="application/json")

        def do_POST(self) -> None:
            status, body, _ = fake.handle("POST", self.path, self.headers.get("Authorization"))
            reply_json(self, status, body, content_type="application/json")

    return Handler


class Signer:
    """Signs deliveries as incident.io's sender (Svix) does: ``webhook-id``,
    ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>``."""

    def __init__(self, secret: str) -> None:
        from standardwebhooks import Webhook

        self.webhook = Webhook(secret)
        self.count = 0

    def headers(
        self, body: bytes, *, at: datetime, delivery_id: str | None = None
    ) -> dict[str, str]:
        self.count += 1
        delivery_id = delivery_id or f"msg_{self.count:06d}"
        signature = self.webhook.sign(delivery_id, at, body.decode())
        return {
            "webhook-id": delivery_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        }
