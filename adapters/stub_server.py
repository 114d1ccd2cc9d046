"""A Switchboard API stub: a real HTTP server (Starlette on uvicorn) persisted in SQLite.

It speaks the API that :mod:`comms.adapters.rest` uses, described by the OpenAPI document at
``/openapi.json`` (:mod:`comms.adapters.switchboard_openapi`, generated from the pydantic models
every request and response body is validated with); its data, body models and SQLite file live
in :mod:`comms.adapters.switchboard_model`, fault injection in
:mod:`comms.adapters.switchboard_faults`::

    GET  /api/v1/tenants?cursor=&limit=           GET  /api/v1/tenants/{id}
    GET  /api/v1/notification-templates
    POST /api/v1/notifications
    GET  /api/v1/notifications?incident_reference=&tenant_id=&status=
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
import functools
import hashlib
import hmac
import json
import math
import re
import secrets
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from .switchboard_faults import FAULT_KINDS, FaultPlan, TokenBucket, parse_fault_spec, parse_rate
from .switchboard_model import (
    DEFAULT_SEED,
    IDEMPOTENCY_KEY,
    NOTIFICATION_STATUSES,
    PAGE_LIMIT,
    STRUCTURED_FIELDS,
    TEMPLATES,
    Delivery,
    Notification,
    NotificationPage,
    Preview,
    ProblemError,
    SwitchboardDB,
    TemplatePage,
    Tenant,
    TenantPage,
    checked,
    invalid,
    load_seed,
    now_iso,
    recipients,
    render,
    validate_notification,
    validate_tenant,
)

__all__ = [
    "DEFAULT_SEED",
    "FAULT_KINDS",
    "ROUTES",
    "ConnectionDroppedError",
    "FaultPlan",
    "Gateway",
    "SwitchboardState",
    "create_app",
    "load_seed",
    "parse_fault_spec",
    "parse_rate",
    "serve",
    "serve_in_thread",
]

# --------------------------------------------------------------------------- the application


@dataclass
class SwitchboardState:
    """Everything the running stub holds: its database, token, limiter, faults, counters, and
    the clock every rate limiter of it reads."""

    db: SwitchboardDB
    token: str
    limiter: TokenBucket | None = None
    faults: FaultPlan = field(default_factory=FaultPlan)
    stats: Counter[str] = field(default_factory=Counter)
    monotonic: Callable[[], float] = time.monotonic

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
        raise ProblemError(
            400,
            "invalid-parameter",
            "Invalid query parameter",
            f"unknown query parameter '{unknown[0]}'{known}",
        )


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not low <= int(raw) <= high:
        raise ProblemError(
            400,
            "invalid-parameter",
            "Invalid query parameter",
            f"'{name}' must be a whole number from {low} to {high}",
        )
    return int(raw)


def _limit(request: Request) -> int:
    low, high, default = PAGE_LIMIT
    return _int_param(request, "limit", default, low, high)


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
        raise ProblemError(
            400,
            "invalid-cursor",
            "Invalid cursor",
            "'cursor' must be a next_cursor value from a previous page",
        )
    return int(raw)


async def list_tenants(request: Request) -> Response:
    _only_params(request, "cursor", "limit")
    st = _state(request)
    limit = _limit(request)
    after = _decode_cursor(request, str) or ""
    rows = st.db.tenants(after, limit + 1)
    page = rows[:limit]
    nxt = _encode_cursor(page[-1]["id"]) if len(rows) > limit else None
    return JSONResponse(checked(TenantPage, {"data": page, "next_cursor": nxt}))


async def get_tenant(request: Request) -> Response:
    _only_params(request)
    tenant = _state(request).db.tenant(request.path_params["tenant_id"])
    if tenant is None:
        raise ProblemError(
            404, "not-found", "Not found", f"no tenant '{request.path_params['tenant_id']}'"
        )
    return JSONResponse(checked(Tenant, tenant))


async def list_templates(request: Request) -> Response:
    _only_params(request)
    data = [{**t, "structured_fields": list(STRUCTURED_FIELDS)} for t in TEMPLATES]
    return JSONResponse(checked(TemplatePage, {"data": data, "next_cursor": None}))


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ProblemError(
            400, "invalid-json", "Malformed request body", "the body must be a JSON object"
        )
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProblemError(
            400, "invalid-json", "Malformed request body", f"the body is not JSON: {exc}"
        ) from None


async def create_notification(request: Request) -> Response:
    _only_params(request)
    st = _state(request)
    fields = validate_notification(await _json_body(request))
    missing = [t for t in fields["tenant_ids"] if st.db.tenant(t) is None]
    if missing:
        raise invalid(f"unknown tenant '{missing[0]}' in 'tenant_ids'")
    note = {
        "id": "ntf_" + secrets.token_hex(8),
        "status": "draft",
        **fields,
        "idempotency_key": request.headers.get("idempotency-key"),
        "created_at": now_iso(),
        "previewed_at": None,
        "sent_at": None,
        "recipients": [],
    }
    body = checked(Notification, note)
    st.db.create_notification(note)
    return JSONResponse(
        body, status_code=201, headers={"Location": f"/api/v1/notifications/{note['id']}"}
    )


async def notifications(request: Request) -> Response:
    if request.method == "POST":
        return await create_notification(request)
    return await list_notifications(request)


async def list_notifications(request: Request) -> Response:
    _only_params(request, "cursor", "limit", "incident_reference", "tenant_id", "status")
    st = _state(request)
    limit = _limit(request)
    after = _decode_cursor(request, int) or 0
    status = request.query_params.get("status")
    if status is not None and status not in NOTIFICATION_STATUSES:
        raise ProblemError(
            400, "invalid-parameter", "Invalid query parameter", "'status' must be draft or sent"
        )
    rows = st.db.notifications(
        after=after,
        limit=limit + 1,
        status=status,
        incident_reference=request.query_params.get("incident_reference"),
        tenant_id=request.query_params.get("tenant_id"),
    )
    page = rows[:limit]
    nxt = _encode_cursor(page[-1][0]) if len(rows) > limit else None
    return JSONResponse(
        checked(NotificationPage, {"data": [doc for _, doc in page], "next_cursor": nxt})
    )


def _notification(st: SwitchboardState, note_id: str) -> dict[str, Any]:
    note = st.db.notification(note_id)
    if note is None:
        raise ProblemError(404, "not-found", "Not found", f"no notification '{note_id}'")
    return note


async def get_notification(request: Request) -> Response:
    _only_params(request)
    note = _notification(_state(request), request.path_params["notification_id"])
    return JSONResponse(checked(Notification, note))


def _tenants_of(st: SwitchboardState, note: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for tid in note["tenant_ids"] if (t := st.db.tenant(tid)) is not None]


async def preview_notification(request: Request) -> Response:
    _only_params(request)
    st = _state(request)
    note = _notification(st, request.path_params["notification_id"])
    who = note["recipients"] if note["status"] == "sent" else recipients(_tenants_of(st, note))
    preview = {
        "notification_id": note["id"],
        "status": note["status"],
        **render(note),
        "recipients": who,
    }
    return JSONResponse(checked(Preview, preview))


async def send_notification(request: Request) -> Response:
    _only_params(request)
    st = _state(request)
    note = _notification(st, request.path_params["notification_id"])
    if note["status"] == "sent":
        raise ProblemError(
            409,
            "already-sent",
            "Notification already sent",
            f"notification '{note['id']}' was sent at {note['sent_at']}; it cannot be sent twice",
        )
    note["recipients"] = recipients(_tenants_of(st, note))
    note["status"] = "sent"
    note["sent_at"] = now_iso()
    if not st.db.mark_sent(
        note, request.headers.get("idempotency-key")
    ):  # pragma: no cover - single loop
        raise ProblemError(
            409,
            "already-sent",
            "Notification already sent",
            f"notification '{note['id']}' was sent",
        )
    st.stats["sends"] += 1
    rendered = render(note)
    delivery = {
        "notification_id": note["id"],
        "status": "sent",
        "sent_at": note["sent_at"],
        "incident_reference": note["incident_reference"],
        "tenant_ids": note["tenant_ids"],
        "recipients": note["recipients"],
        **rendered,
        "body_sha256": hashlib.sha256(rendered["body"].encode()).hexdigest(),
    }
    return JSONResponse(checked(Delivery, delivery))


@functools.cache
def _openapi_json() -> bytes:
    # Built on the first request, not at import: generating the schemas builds every model's
    # core schema (tens of milliseconds), which starting the stub should not pay for.
    from .switchboard_openapi import openapi_document

    return json.dumps(openapi_document(), ensure_ascii=False, separators=(",", ":")).encode()


async def openapi(request: Request) -> Response:
    return Response(_openapi_json(), media_type="application/json")


# Admin endpoints: for tests and benchmarks; outside the documented API.


async def admin_faults(request: Request) -> Response:
    st = _state(request)
    if request.method == "POST":
        try:
            st.faults = FaultPlan.from_config(await _json_body(request))
        except ValueError as exc:
            raise invalid(str(exc)) from None
    return JSONResponse(st.faults.describe())


async def admin_sends(request: Request) -> Response:
    return JSONResponse(
        _state(request).db.send_counts(request.query_params.get("incident_reference"))
    )


async def admin_stats(request: Request) -> Response:
    st = _state(request)
    if request.method == "DELETE":
        st.stats.clear()
        st.faults.injected.clear()
    counts = st.db.send_counts()
    return JSONResponse(
        {
            "requests": st.stats["requests"],
            "rate_limited": st.stats["rate_limited"],
            "sends": st.stats["sends"],
            "faults": dict(st.faults.injected),
            "sends_total": counts["total"],
            "duplicates": counts["duplicates"],
        }
    )


async def admin_rate_limit(request: Request) -> Response:
    st = _state(request)
    body = await _json_body(request)
    per_minute = body.get("per_minute") if isinstance(body, dict) else None
    burst = body.get("burst") if isinstance(body, dict) else None
    if per_minute is None:
        st.limiter = None
    else:
        try:
            st.limiter = TokenBucket(
                float(per_minute),
                float(burst) if burst is not None else None,
                monotonic=st.monotonic,
            )
        except (TypeError, ValueError) as exc:
            raise invalid(f"'per_minute' and 'burst' must be positive numbers ({exc})") from None
    return JSONResponse(
        {
            "per_minute": st.limiter.per_minute if st.limiter else None,
            "burst": st.limiter.burst if st.limiter else None,
        }
    )


async def admin_tenants(request: Request) -> Response:
    st = _state(request)
    body = await _json_body(request)
    try:
        tenants = [
            validate_tenant(t)
            for t in (body.get("tenants") if isinstance(body, dict) else None) or []
        ]
    except ValueError as exc:
        raise invalid(str(exc)) from None
    st.db.put_tenants(tenants)
    return JSONResponse({"stored": len(tenants), "total": st.db.tenant_count()})


async def admin_expire(request: Request) -> Response:
    raw = await request.body()
    body = await _json_body(request) if raw.strip() else {}
    match = body.get("match", "*") if isinstance(body, dict) else "*"
    return JSONResponse({"expired": _state(request).db.idem_expire(str(match))})


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return _respond(exc, request.url.path)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    detail = f"no resource at {request.url.path}" if exc.status_code == 404 else str(exc.detail)
    problem = ProblemError(exc.status_code, slug, title, detail, exc.headers)
    return _respond(problem, request.url.path)


async def _on_crash(request: Request, exc: Exception) -> Response:
    problem = ProblemError(
        500, "internal-error", "Internal server error", "the stub failed to handle the request"
    )
    return _respond(problem, request.url.path)


def _respond(problem: ProblemError, instance: str) -> Response:
    return Response(
        json.dumps(problem.body(instance)),
        status_code=problem.status,
        headers=problem.headers,
        media_type="application/problem+json",
    )


ROUTES = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/api/v1/tenants", list_tenants, methods=["GET"]),
    Route("/api/v1/tenants/{tenant_id}", get_tenant, methods=["GET"]),
    Route("/api/v1/notification-templates", list_templates, methods=["GET"]),
    Route("/api/v1/notifications", notifications, methods=["GET", "POST"]),
    Route("/api/v1/notifications/{notification_id}", get_notification, methods=["GET"]),
    Route(
        "/api/v1/notifications/{notification_id}/preview", preview_notification, methods=["POST"]
    ),
    Route("/api/v1/notifications/{notification_id}/send", send_notification, methods=["POST"]),
    Route("/_admin/faults", admin_faults, methods=["GET", "POST"]),
    Route("/_admin/sends", admin_sends, methods=["GET"]),
    Route("/_admin/stats", admin_stats, methods=["GET", "DELETE"]),
    Route("/_admin/rate-limit", admin_rate_limit, methods=["POST"]),
    Route("/_admin/tenants", admin_tenants, methods=["POST"]),
    Route("/_admin/idempotency/expire", admin_expire, methods=["POST"]),
]


class ConnectionDroppedError(Exception):
    """Raised in-process (ASGITransport) where there is no socket to close."""


async def _drop(send: Send, *, reset: bool = False) -> None:
    # uvicorn answers an exception raised before the response with a clean 500, so a
    # dropped connection must close the socket itself: the ASGI ``send`` is a bound method
    # of uvicorn's request cycle, which holds the transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionDroppedError("reset" if reset else "drop")
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
            await _reply(
                send,
                ProblemError(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "send 'Authorization: Bearer <token>' with a valid token",
                    {"WWW-Authenticate": 'Bearer realm="switchboard"'},
                ),
                path,
            )
            return
        if not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        st.stats["requests"] += 1
        if st.limiter is not None and (wait := st.limiter.take()) > 0:
            st.stats["rate_limited"] += 1
            await _reply(
                send,
                ProblemError(
                    429,
                    "rate-limited",
                    "Too many requests",
                    f"the limit is {st.limiter.per_minute:g} requests a minute",
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                ),
                path,
            )
            return
        fault = st.faults.pick(method, path)
        if fault in ("429", "503"):
            await _reply(
                send,
                ProblemError(
                    int(fault),
                    "injected-fault",
                    "Injected fault",
                    f"fault injection answered {fault}",
                    {"Retry-After": str(st.faults.retry_after)},
                ),
                path,
            )
            return
        if fault == "500":
            await _reply(
                send,
                ProblemError(
                    500, "injected-fault", "Injected fault", "fault injection answered 500"
                ),
                path,
            )
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
            if isinstance(result, ProblemError):
                await _reply(send, result, path)
                return
        else:
            if fault == "slow":
                await asyncio.sleep(st.faults.slow_seconds)
            result = await self._run(scope, body)
        if fault == "after_commit":
            await _drop(send)
        elif fault == "after_commit_500":
            await _reply(
                send,
                ProblemError(
                    500,
                    "injected-fault",
                    "Injected fault",
                    "fault injection answered 500 after doing the work",
                ),
                path,
            )
        else:
            await _send_response(send, *result)

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.state.token.encode()
        )

    async def _idempotent(
        self, scope: Scope, key: str, body: bytes, *, slow: bool
    ) -> ProblemError | tuple[int, list[tuple[str, str]], bytes]:
        db = self.state.db
        if not IDEMPOTENCY_KEY.match(key):
            return ProblemError(
                400,
                "invalid-idempotency-key",
                "Invalid Idempotency-Key",
                "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            )
        fingerprint = _fingerprint(scope["method"], scope["path"], body)
        record = db.idem_get(key)
        if record is not None:
            if record["fingerprint"] != fingerprint:
                return ProblemError(
                    422,
                    "idempotency-key-reused",
                    "Idempotency-Key reused",
                    "this Idempotency-Key was used for a different request; use a new key",
                )
            if record["state"] == "in_flight":
                return ProblemError(
                    409,
                    "idempotency-in-flight",
                    "Request in progress",
                    "a request with this Idempotency-Key is still being processed; retry later",
                    {"Retry-After": "1"},
                )
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


async def _send_response(
    send: Send, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    raw = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in headers
        if k.lower() != "content-length"
    ]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _reply(send: Send, problem: ProblemError, path: str) -> None:
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
    monotonic: Callable[[], float] = time.monotonic,
) -> Gateway:
    """Build the stub as an ASGI app.  ``seed`` tenants are upserted; with no seed, an empty
    database gets the bundled example tenants.  The app's ``state.close()`` closes the database
    (the lifespan does it when served by uvicorn).  ``monotonic`` is the clock of the rate
    limit, this one's and any the admin endpoint sets (tests pass a fake one)."""
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
        limiter=TokenBucket(rate_limit, burst, monotonic=monotonic) if rate_limit else None,
        faults=faults or FaultPlan(),
        monotonic=monotonic,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        state.close()

    app = Starlette(
        routes=ROUTES,
        exception_handlers={
            ProblemError: _on_problem,
            HTTPException: _on_http_error,
            Exception: _on_crash,
        },
        lifespan=lifespan,
    )
    app.state.switchboard = state
    return Gateway(app, state)


def _server(app: Gateway, *, log_level: str = "warning", graceful: int = 3) -> Any:
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
        app,
        http="h11",
        ws="none",
        loop="asyncio",
        lifespan="on",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=graceful,
        server_header=False,
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
    app = create_app(
        db_path, token=token, seed=seed, rate_limit=rate_limit, burst=burst, faults=faults
    )
    server = _server(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_port = sock.getsockname()[1]
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            daemon=True,
            name=f"switchboard-stub-{bound_port}",
        )
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
    app = create_app(
        db_path, token=token, seed=seed, rate_limit=rate_limit, burst=burst, faults=faults
    )
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
