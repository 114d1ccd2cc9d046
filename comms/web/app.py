"""The review server as a Starlette application: pages, the JSON API, authentication.

Every handler is a plain function run in the thread pool (the stores are synchronous); it
authenticates, makes one call into the core and renders.  Errors map to statuses in one
place (:func:`status_of`): ``AuthError`` 401, ``RefusedError`` (and any rule's refusal)
403, ``NotFoundError`` 404, a stale revision 409, ``UsageError`` 400.

Authentication, as the pages and the API see it:

- pages: a signed session cookie (from signing in with an API token), or a user named by
  ``proxy_header`` from one of ``trusted_proxies``.  No cookie: 303 to ``/sign-in``.  A
  cookie this store did not sign: 403 (and the cookie is dropped).  A session whose user
  signed out (``POST /sign-out`` ends all their sessions, on every server), was disabled
  or enabled again, or whose token changed: 401 with the sign-in form.  Every POST form
  carries a CSRF token; without it, or with another session's: 403.
- the API: ``Authorization: Bearer <token>`` only (no cookies, so no CSRF): none or a
  wrong one is 401.
- ``POST /hooks/incidentio``: incident.io's webhook, authenticated by its Standard
  Webhooks signature alone (``comms.incidentio.webhooks.handle_webhook``): 200 applied, 204
  acknowledged (a replay, an older state, an event comms does not use), 400 malformed,
  401 not signed with the secret or stale, 413 too large, 503 not set up or the store
  failing (the sender retries).

Sign-in attempts, and wrong bearer tokens, are limited per client address (429 with
``Retry-After``; a right bearer token is never counted).  No token or secret appears in a
page, a URL or a log line: tokens travel in POST bodies and headers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from comms.errors import CommsError
from comms.incidentio.webhooks import MAX_BODY_BYTES as MAX_HOOK_BODY
from comms.incidentio.webhooks import WebhookReceiver
from comms.web import handlers as h
from comms.web.config import ServeConfig
from comms.web.context import (
    ACCESS_LOG,
    HERE,
    LOG,
    MAX_BODY,
    SECURITY_HEADERS,
    Call,
    Handler,
    Notify,
    Server,
    Services,
    TooLargeError,
    error_response,
    problem,
    status_of,
)
from comms.web.openapi import openapi_document
from comms.web.security import RateLimiter

# One line per webhook delivery: its id, the answer and why (never the body).
HOOK_LOG = logging.getLogger("comms.web.hooks")

# -- wiring -------------------------------------------------------------------------------


def _endpoint(server: Server, handler: Handler, *, api: bool) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        body = b""
        if request.method == "POST":
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    call = Call(server, request, b"", api)
                    return call.finish(
                        error_response(call, TooLargeError("the request is too large"))
                    )
                chunks.append(chunk)
            body = b"".join(chunks)
        return await run_in_threadpool(_run, server, handler, request, body, api)

    return endpoint


def _run(server: Server, handler: Handler, request: Request, body: bytes, api: bool) -> Response:
    call = Call(server, request, body, api)
    # A page's reads (a draft page makes a dozen) share one pooled connection: on a busy
    # server each read would otherwise queue again for a free one behind the other
    # requests'.  Only GETs: a POST may wait on a notifier, holding it.
    reads = server.store.pinned() if request.method in ("GET", "HEAD") else nullcontext()
    with reads:
        try:
            response = handler(call)
        except CommsError as exc:
            response = error_response(call, exc)
    return call.finish(response)


def _hook_endpoint(server: Server, receiver: WebhookReceiver | None) -> Callable[[Request], Any]:
    """``POST /hooks/incidentio``: no session and no CSRF token, the signature is the
    authentication.  The raw body and headers go to the core as received (the signature
    covers the exact bytes); the answer is the result's status, at once."""

    async def endpoint(request: Request) -> Response:
        if receiver is None:
            return problem(
                503,
                "incident.io webhooks are not set up here: give comms serve the endpoint's "
                "signing secret in COMMS_INCIDENTIO_WEBHOOK_SECRET",
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_HOOK_BODY:
                return problem(413, f"the delivery is over {MAX_HOOK_BODY} bytes")
            chunks.append(chunk)
        headers = dict(request.headers)
        try:
            result = await run_in_threadpool(
                receiver.handle,
                headers,
                b"".join(chunks),
                store=server.store,
                now=datetime.fromtimestamp(server.wall(), UTC),
            )
        except CommsError as exc:  # the store failing: the sender tries again later
            LOG.error("POST /hooks/incidentio: %s", exc)
            return problem(status_of(exc), str(exc))
        HOOK_LOG.info(
            "incident.io delivery %s: %s %s",
            loggable(headers.get("webhook-id", "-")[:64]),  # as sent: not yet incident.io's
            result.status,
            result.reason,
        )
        if result.status == 204:
            return Response(status_code=204)
        if result.status == 200:
            applied = result.applied
            return JSONResponse(
                {
                    "ref": result.ref,
                    "action": applied.action if applied else "unchanged",
                    "reason": result.reason,
                }
            )
        return problem(result.status, result.reason)

    return endpoint


class Guard:
    """Pure ASGI middleware: trusted-proxy addresses, security headers, the access log.

    Only a peer in ``trusted_proxies`` may say, by ``X-Forwarded-For`` and
    ``X-Forwarded-Proto``, who the client is and whether it used HTTPS; the peer's own
    address is kept as ``comms.peer`` and whether it is trusted as ``comms.trusted``.  The
    access log names the method, the path (never the query string), the status, the time
    taken and the user.
    """

    def __init__(self, app: ASGIApp, config: ServeConfig) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope["client"][0] if scope.get("client") else None
        trusted = self.config.trusts(peer)
        scope["comms.peer"], scope["comms.trusted"] = peer, trusted
        if trusted:
            self._forwarded(scope)
        started = time.perf_counter()
        status = [0]
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                cache = b"public, max-age=3600" if static else b"no-store"
                headers.append((b"cache-control", cache))
                if scope.get("scheme") == "https" or self.config.https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if not static:
                ACCESS_LOG.info(
                    '%s "%s %s" %s %.0fms %s',
                    scope["client"][0] if scope.get("client") else "-",
                    scope["method"],
                    loggable(scope["path"]),
                    status[0],
                    (time.perf_counter() - started) * 1000,
                    scope.get("comms.user", "-"),
                )

    def _forwarded(self, scope: Scope) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            scope["scheme"] = proto
        hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
        # The nearest hop the trusted proxies did not add is the client.
        for hop in reversed(hops):
            if not self.config.trusts(hop):
                scope["client"] = (hop, 0)
                break


def loggable(text: str) -> str:
    """``text`` for one log line: control, format and line-separator characters escaped,
    so that a request path (percent-decoded by then) cannot write a line of its own."""
    import unicodedata

    if text.isprintable():
        return text
    return "".join(
        ch
        if ch.isprintable() and unicodedata.category(ch) not in ("Zl", "Zp")
        else f"\\x{ord(ch):02x}"
        if ord(ch) < 256
        else f"\\u{ord(ch):04x}"
        for ch in text
    )


def create_app(
    services: Services,
    config: ServeConfig | None = None,
    *,
    notify: Notify | None = None,
    channels: Sequence[str] | None = None,
    limiter: RateLimiter | None = None,
    wall: Callable[[], float] = time.time,
    incidentio: WebhookReceiver | None = None,
) -> Starlette:
    """The review server over ``services`` (a ``comms.bootstrap.Runtime``).

    ``notify(event, draft, user, note)`` is called after a request for changes is recorded
    (event ``"changes-requested"``); its ``CommsError`` is logged, never shown as a failure.
    ``channels`` are the channel names an approval may cover (default: ``[send]
    channels``); ``limiter`` limits sign-in attempts (and, counted apart with its settings,
    wrong bearer tokens); ``wall`` is the session clock (Unix seconds), separate from
    ``services.now`` which ``COMMS_NOW`` may pin; it also dates webhook deliveries, whose
    signatures carry the sender's real time.  ``incidentio`` receives ``POST
    /hooks/incidentio`` (None: that route answers 503).
    """
    config = config or ServeConfig()
    defaults = services.default_channels()
    server = Server(
        store=services.raw_store,
        clock=services.now,
        policy=services.review_policy(),
        lint=services.lint_config(),
        channels=defaults,
        known_channels=tuple(channels or defaults),
        cadence=services.cadence_policy(),
        config=config,
        limiter=limiter or RateLimiter(),
        notify=notify,
        wall=wall,
    )
    document = openapi_document()

    def page(path: str, handler: Handler, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, _endpoint(server, handler, api=False), methods=list(methods))

    def api(path: str, handler: Handler, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, _endpoint(server, handler, api=True), methods=list(methods))

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes = [
        page("/", h.queue_page),
        page("/sign-in", h.sign_in_page),
        page("/sign-in", h.sign_in, ("POST",)),
        page("/sign-out", h.sign_out, ("POST",)),
        page("/drafts/{draft_id}", h.draft_page),
        page("/drafts/{draft_id}/approve", h.decide_page("approved"), ("POST",)),
        page("/drafts/{draft_id}/request-changes", h.decide_page("changes-requested"), ("POST",)),
        page("/incidents/{ref}", h.incident_page),
        api("/api/queue", h.api_queue),
        api("/api/drafts/{draft_id}", h.api_draft),
        api("/api/drafts/{draft_id}/approve", h.api_decide("approved"), ("POST",)),
        api("/api/drafts/{draft_id}/request-changes", h.api_decide("changes-requested"), ("POST",)),
        api("/api/incidents/{ref}", h.api_incident),
        api("/api/health", h.api_health),
        Route("/hooks/incidentio", _hook_endpoint(server, incidentio), methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = {404: "no such page", 405: "that method is not allowed here"}.get(
            status, "the request failed"
        )
        if request.url.path.startswith("/api/"):
            return problem(status, detail)
        call = Call(server, request, b"", False)
        return call.render("error.html", status, status=status, message=detail)

    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, config=config)],
        exception_handlers={HTTPException: not_found},
    )
    app.state.server = server
    return app
