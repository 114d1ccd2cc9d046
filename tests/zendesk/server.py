"""A Zendesk-compatible test server: the slice of the Support API that comms speaks.

A real HTTP server (stdlib ``ThreadingHTTPServer``) on 127.0.0.1 and a free port, run in a
thread, so that zenpy talks to it over a socket exactly as it talks to Zendesk. Point zenpy at
it with ``ZENPY_FORCE_SCHEME=http`` and ``ZENPY_FORCE_NETLOC=127.0.0.1:<port>``.

Implemented, with Zendesk's JSON shapes (zenpy parses them into its objects):

    POST /api/v2/tickets.json                 create; honours ``Idempotency-Key``
    GET  /api/v2/tickets/{id}.json            show
    PUT  /api/v2/tickets/{id}.json            update: ``comment``, ``additional_tags``, ...
    GET  /api/v2/tickets/{id}/comments.json   list, oldest first, cursor pagination
    GET  /api/v2/tickets/{id}/audits.json     list, oldest first, cursor pagination
    GET  /api/v2/search.json?query=...        ``type:ticket`` and ``tags:X`` terms (AND)
    GET  /api/v2/users/{id}.json              show
    GET  /api/v2/users/me.json                the authenticated agent

Behaviour that matters for exactly-once tests:

* Authentication: basic ``{email}/token:{token}`` or ``Bearer {token}``; anything else is a 401
  ``{"error": "Couldn't authenticate you"}``.
* Idempotency (ticket creation only, as in Zendesk): the same key and body replay the stored
  response with ``x-idempotency-lookup: hit``; the same key with another body is a 400
  ``IdempotentRequestError``; a new key answers ``x-idempotency-lookup: miss``.
* Idempotency keys are kept until ``server.forget_idempotency_keys()``, which stands for
  Zendesk's retention time running out: the same request then creates a new ticket.
* Search sees every ticket at once (Zendesk indexes with a lag of up to minutes).
* Rate limit: ``rate_limit`` requests per ``rate_window`` seconds, then 429 with
  ``Retry-After``; every answer carries ``X-Rate-Limit`` and ``X-Rate-Limit-Remaining``.
* Fault injection: ``server.inject(kind, method=..., path=..., times=..., skip=...)`` queues
  faults that hit the next matching requests (after letting ``skip`` of them through).
  Kinds: ``429``, ``500`` and ``drop`` (nothing is stored); ``timeout`` (the change is
  stored, the answer comes after ``delay`` seconds, later than the client waits);
  ``commit_then_drop`` and ``commit_then_500`` (the change is stored, the client sees a
  dropped connection or a 500).

``server.state`` is inspected by tests: tickets, comments, users, and every request received
(method, path, whether it was authenticated, its ``Idempotency-Key``); tokens are never kept.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.http_reply import reply_json

FAULT_KINDS = ("429", "500", "drop", "timeout", "commit_then_drop", "commit_then_500")


@dataclass
class Fault:
    """One queued fault: hits the next ``times`` requests matching ``method`` and ``path``."""

    kind: str
    method: str | None = None
    path: str | None = None  # a regular expression searched in the request path
    times: int = 1
    skip: int = 0  # let this many matching requests through first
    retry_after: int = 1
    delay: float = 1.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or re.search(self.path, path) is not None
        )


@dataclass
class Seen:
    """One request as the server saw it (never its credentials)."""

    method: str
    path: str
    authenticated: bool
    idempotency_key: str | None
    query: str = ""
    body: Any = None
    status: int | None = None
    fault: str | None = None
    idempotency_lookup: str | None = None  # the x-idempotency-lookup answer: hit | miss


@dataclass
class State:
    """Everything the server holds; guarded by ``lock``."""

    agent_email: str
    token: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    audits: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    idempotency: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    hits: deque[float] = field(default_factory=deque)
    next_id: int = 100

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def public_comments(self, ticket_id: int) -> list[dict[str, Any]]:
        """The customer-visible comments of a ticket, oldest first."""
        return [c for c in self.comments.get(ticket_id, []) if c["public"]]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ZendeskServer:
    """Start with ``with ZendeskServer() as server:``; ``server.netloc`` is ``127.0.0.1:port``."""

    def __init__(
        self,
        *,
        agent_email: str = "comms-bot@example.com",
        token: str = "test-token",
        rate_limit: int | None = None,
        rate_window: float = 60.0,
    ) -> None:
        self.state = State(agent_email=agent_email, token=token)
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        agent_id = self.state.new_id()
        self.state.users[agent_id] = _user(agent_id, agent_email, "Comms Bot", role="agent")
        self.agent_id = agent_id
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # Handler threads are joined on stop (no request outlives its test); idle keep-alive
        # connections give up after ``Handler.timeout`` seconds.
        self._httpd.daemon_threads = False
        self._httpd.block_on_close = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ZendeskServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        # Wake handler threads parked on idle keep-alive connections so the join is quick.
        with self.state.lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ZendeskServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, kind: str, **options: Any) -> None:
        """Queue a fault (see the module docstring for the kinds)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self.state.lock:
            self.state.faults.append(Fault(kind, **options))

    def forget_idempotency_keys(self) -> None:
        """Forget every stored ``Idempotency-Key``, as Zendesk does after its retention time."""
        with self.state.lock:
            self.state.idempotency.clear()

    def requests_to(self, method: str, pattern: str) -> list[Seen]:
        """Requests received whose method and path match."""
        with self.state.lock:
            return [
                r
                for r in self.state.requests
                if r.method == method and re.search(pattern, r.path) is not None
            ]

    # -- the API -----------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.state.lock:
            for fault in self.state.faults:
                if fault.matches(method, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    if fault.times <= 0:
                        self.state.faults.remove(fault)
                    return fault
        return None

    def _rate_limited(self) -> tuple[int | None, int]:
        """Count this request; return (Retry-After or None, remaining)."""
        if self.rate_limit is None:
            return None, 1000
        now = time.monotonic()
        with self.state.lock:
            hits = self.state.hits
            while hits and hits[0] <= now - self.rate_window:
                hits.popleft()
            if len(hits) >= self.rate_limit:
                wait = hits[0] + self.rate_window - now
                return max(1, int(wait + 0.999)), 0
            hits.append(now)
            return None, self.rate_limit - len(hits)

    def _authenticated(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value == self.state.token
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return decoded == f"{self.state.agent_email}/token:{self.state.token}"

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        key: str | None,
        host: str | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Apply one authenticated request to the state; return (status, json, headers).

        Links point back at the host the client used (zenpy follows ``links.next`` as is).
        """
        base = f"http://{host or self.netloc}/api/v2"
        with self.state.lock:
            if method == "POST" and path == "/api/v2/tickets.json":
                return self._create_ticket(body, key, base)
            match = re.fullmatch(r"/api/v2/tickets/(\d+)\.json", path)
            if match and method == "GET":
                ticket = self.state.tickets.get(int(match[1]))
                if ticket is None:
                    return _not_found()
                return 200, {"ticket": ticket}, {}
            if match and method == "PUT":
                return self._update_ticket(int(match[1]), body)
            match = re.fullmatch(r"/api/v2/tickets/(\d+)/comments\.json", path)
            if match and method == "GET":
                return self._list_comments(int(match[1]), query, base)
            match = re.fullmatch(r"/api/v2/tickets/(\d+)/audits\.json", path)
            if match and method == "GET":
                return self._list_audits(int(match[1]), query, base)
            if method == "GET" and path == "/api/v2/search.json":
                return self._search(query)
            if method == "GET" and path == "/api/v2/users/me.json":
                return 200, {"user": self.state.users[self.agent_id]}, {}
            match = re.fullmatch(r"/api/v2/users/(\d+)\.json", path)
            if match and method == "GET":
                user = self.state.users.get(int(match[1]))
                if user is None:
                    return _not_found()
                return 200, {"user": user}, {}
        return _not_found()

    def _user_by_email(self, email: str, name: str = "") -> dict[str, Any]:
        for user in self.state.users.values():
            if user["email"] == email.lower():
                return user
        user_id = self.state.new_id()
        user = _user(user_id, email.lower(), name or email.split("@")[0], role="end-user")
        self.state.users[user_id] = user
        return user

    def _create_ticket(
        self, body: Any, key: str | None, base: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if key is not None and key in self.state.idempotency:
            stored_fingerprint, status, stored = self.state.idempotency[key]
            if stored_fingerprint != fingerprint:
                return (
                    400,
                    {
                        "error": "IdempotentRequestError",
                        "description": "The request parameters have changed from the "
                        "original request with this idempotency key",
                    },
                    {},
                )
            return status, stored, {"x-idempotency-lookup": "hit"}
        data = (body or {}).get("ticket") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("comment"), dict):
            return 422, _invalid("comment", "Description: cannot be blank"), {}
        requester = data.get("requester")
        if isinstance(requester, dict) and requester.get("email"):
            requester_id = self._user_by_email(requester["email"], requester.get("name", ""))["id"]
        elif data.get("requester_id") in self.state.users:
            requester_id = data["requester_id"]
        else:
            requester_id = self.agent_id
        cc_ids = []
        for cc in data.get("email_ccs") or []:
            if cc.get("action", "put") != "put":
                continue
            if "user_id" in cc and cc["user_id"] in self.state.users:
                cc_ids.append(cc["user_id"])
            elif cc.get("user_email"):
                cc_ids.append(self._user_by_email(cc["user_email"], cc.get("user_name", ""))["id"])
        ticket_id = self.state.new_id()
        now = _now()
        tags = _tags(data.get("tags") or [])
        ticket = {
            "id": ticket_id,
            "url": f"{base}/tickets/{ticket_id}.json",
            "external_id": data.get("external_id"),
            "type": data.get("type"),
            "subject": data.get("subject"),
            "raw_subject": data.get("subject"),
            "description": data["comment"].get("body", ""),
            "priority": data.get("priority"),
            "status": "open",
            "requester_id": requester_id,
            "submitter_id": self.agent_id,
            "assignee_id": None,
            "organization_id": None,
            "group_id": None,
            "collaborator_ids": list(cc_ids),
            "email_cc_ids": list(cc_ids),
            "follower_ids": [],
            "tags": tags,
            "custom_fields": [],
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": now,
            "updated_at": now,
        }
        self.state.tickets[ticket_id] = ticket
        self.state.comments[ticket_id] = []
        self.state.audits[ticket_id] = []
        audit = self._add_audit(ticket, data["comment"], now, created=True)
        response = {"ticket": ticket, "audit": audit}
        if key is not None:
            self.state.idempotency[key] = (fingerprint, 201, response)
            return 201, response, {"x-idempotency-lookup": "miss"}
        return 201, response, {}

    def _update_ticket(
        self, ticket_id: int, body: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        ticket = self.state.tickets.get(ticket_id)
        if ticket is None:
            return _not_found()
        data = (body or {}).get("ticket") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return 400, {"error": "InvalidEndpoint", "description": "ticket is required"}, {}
        if ticket["status"] == "closed":
            return 422, _invalid("status", "Status: closed prevents ticket update"), {}
        before = list(ticket["tags"])
        if "tags" in data:
            ticket["tags"] = _tags(data["tags"])
        for tag in _tags(data.get("additional_tags") or []):
            if tag not in ticket["tags"]:
                ticket["tags"].append(tag)
        removed = set(_tags(data.get("remove_tags") or []))
        ticket["tags"] = [t for t in ticket["tags"] if t not in removed]
        if data.get("status") in ("new", "open", "pending", "hold", "solved", "closed"):
            ticket["status"] = data["status"]
        now = _now()
        ticket["updated_at"] = now
        comment = data.get("comment") if isinstance(data.get("comment"), dict) else None
        audit = self._add_audit(ticket, comment, now, created=False, previous_tags=before)
        return 200, {"ticket": ticket, "audit": audit}, {}

    def _add_audit(
        self,
        ticket: dict[str, Any],
        comment: dict[str, Any] | None,
        now: str,
        *,
        created: bool,
        previous_tags: list[str] | None = None,
    ) -> dict[str, Any]:
        audit_id = self.state.new_id()
        events: list[dict[str, Any]] = []
        if comment is not None and comment.get("body"):
            stored = {
                "id": self.state.new_id(),
                "type": "Comment",
                "author_id": comment.get("author_id", self.agent_id),
                "body": comment["body"],
                "html_body": f'<div class="zd-comment"><p>{comment["body"]}</p></div>',
                "plain_body": comment["body"],
                "public": bool(comment.get("public", True)),
                "attachments": [],
                "audit_id": audit_id,
                "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                "created_at": now,
                "metadata": {"system": {}, "custom": {}},
            }
            self.state.comments[ticket["id"]].append(stored)
            events.append({k: v for k, v in stored.items() if k not in ("via", "created_at")})
        tags_event: dict[str, Any] = {
            "id": self.state.new_id(),
            "type": "Create" if created else "Change",
            "field_name": "tags",
            "value": list(ticket["tags"]),
        }
        if not created:
            tags_event["previous_value"] = list(previous_tags or [])
        events.append(tags_event)
        audit = {
            "id": audit_id,
            "ticket_id": ticket["id"],
            "created_at": now,
            "author_id": self.agent_id,
            "metadata": {"system": {}, "custom": {}},
            "events": events,
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
        }
        self.state.audits[ticket["id"]].append(audit)
        return audit

    def _list_comments(
        self, ticket_id: int, query: dict[str, list[str]], base: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if ticket_id not in self.state.tickets:
            return _not_found()
        return self._cursor_page("comments", self.state.comments[ticket_id], ticket_id, query, base)

    def _list_audits(
        self, ticket_id: int, query: dict[str, list[str]], base: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if ticket_id not in self.state.tickets:
            return _not_found()
        return self._cursor_page("audits", self.state.audits[ticket_id], ticket_id, query, base)

    def _search(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Zendesk search, the terms comms uses: ``type:ticket`` and ``tags:X`` (all must hold)."""
        terms = " ".join(query.get("query") or []).split()
        wanted = [t.split(":", 1)[1].lower() for t in terms if t.startswith("tags:")]
        kinds = {t.split(":", 1)[1] for t in terms if t.startswith("type:")}
        unknown = [t for t in terms if not t.startswith(("tags:", "type:"))]
        if unknown or kinds - {"ticket"}:
            return 400, {"error": "InvalidSearch", "description": f"unsupported: {terms}"}, {}
        results = [
            {**ticket, "result_type": "ticket"}
            for ticket in self.state.tickets.values()
            if all(tag in ticket["tags"] for tag in wanted)
        ]
        return (
            200,
            {
                "results": results,
                "facets": None,
                "next_page": None,
                "previous_page": None,
                "count": len(results),
            },
            {},
        )

    def _cursor_page(
        self,
        name: str,
        items: list[dict[str, Any]],
        ticket_id: int,
        query: dict[str, list[str]],
        base: str,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        size = int((query.get("page[size]") or ["100"])[0])
        after = int((query.get("page[after]") or ["0"])[0])
        page = items[after : after + size]
        has_more = after + size < len(items)
        cursor = str(after + size)
        path = f"{base}/tickets/{ticket_id}/{name}.json"
        return (
            200,
            {
                name: page,
                "meta": {
                    "has_more": has_more,
                    "after_cursor": cursor if has_more else None,
                    "before_cursor": None,
                },
                "links": {
                    "next": f"{path}?page[size]={size}&page[after]={cursor}" if has_more else None,
                    "prev": None,
                },
            },
            {},
        )


def _user(user_id: int, email: str, name: str, *, role: str) -> dict[str, Any]:
    now = _now()
    return {
        "id": user_id,
        "url": f"/api/v2/users/{user_id}.json",
        "name": name,
        "email": email,
        "role": role,
        "active": True,
        "verified": True,
        "created_at": now,
        "updated_at": now,
    }


def _tags(values: Any) -> list[str]:
    """Zendesk lowercases tags and splits them on spaces."""
    if isinstance(values, str):
        values = values.split()
    tags: list[str] = []
    for value in values:
        for tag in str(value).lower().split():
            if tag not in tags:
                tags.append(tag)
    return tags


def _not_found() -> tuple[int, dict[str, Any], dict[str, str]]:
    return 404, {"error": "RecordNotFound", "description": "Not found"}, {}


def _invalid(field_name: str, message: str) -> dict[str, Any]:
    return {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {field_name: [{"description": message}]},
    }


def _handler_for(server: ZendeskServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 5
        # Headers and body leave in two writes; with Nagle on, the body waits ~40 ms for the
        # client's delayed ACK on every answer.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            with server.state.lock:
                server._connections.add(self.connection)

        def handle(self) -> None:
            # Clients that gave up (timeouts, dropped connections) reset the socket; that is
            # the scenario under test, not a server error worth a traceback.
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                super().handle()

        def finish(self) -> None:
            with server.state.lock:
                server._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default stderr access log."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            key = self.headers.get("Idempotency-Key")
            seen = Seen(
                method=method,
                path=url.path,
                authenticated=server._authenticated(self.headers.get("Authorization")),
                idempotency_key=key,
                query=url.query,
            )
            with server.state.lock:
                server.state.requests.append(seen)
            retry_after, remaining = server._rate_limited()
            limit_headers = {
                "X-Rate-Limit": str(server.rate_limit or 1000),
                "X-Rate-Limit-Remaining": str(remaining),
            }
            if not seen.authenticated:
                self._answer(seen, 401, {"error": "Couldn't authenticate you"}, limit_headers)
                return
            if retry_after is not None:
                headers = {**limit_headers, "Retry-After": str(retry_after)}
                self._answer(seen, 429, {"error": "TooManyRequests"}, headers)
                return
            fault = server._take_fault(method, url.path)
            seen.fault = fault.kind if fault else None
            if fault is not None and fault.kind == "429":
                headers = {**limit_headers, "Retry-After": str(fault.retry_after)}
                self._answer(seen, 429, {"error": "TooManyRequests"}, headers)
                return
            if fault is not None and fault.kind == "500":
                self._answer(seen, 500, {"error": "InternalServerError"}, limit_headers)
                return
            if fault is not None and fault.kind == "drop":
                self._drop()
                return
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._answer(seen, 400, {"error": "InvalidJSON"}, limit_headers)
                return
            seen.body = body
            status, payload, extra = server.handle(
                method, url.path, parse_qs(url.query), body, key, self.headers.get("Host")
            )
            if fault is not None and fault.kind == "commit_then_drop":
                self._drop()
                return
            if fault is not None and fault.kind == "commit_then_500":
                self._answer(seen, 500, {"error": "InternalServerError"}, limit_headers)
                return
            if fault is not None and fault.kind == "timeout":
                server._stopping.wait(fault.delay)
            self._answer(seen, status, payload, {**limit_headers, **extra})

        def _answer(
            self, seen: Seen, status: int, payload: dict[str, Any], headers: dict[str, str]
        ) -> None:
            seen.status = status
            seen.idempotency_lookup = headers.get("x-idempotency-lookup")
            reply_json(self, status, payload, headers)

        def _drop(self) -> None:
            """Close the socket without an answer, as a crashed proxy would."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler
