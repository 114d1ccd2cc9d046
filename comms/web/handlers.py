"""The review server's handlers: pages, decisions and the JSON API.

Each is a plain function of a :class:`~comms.web.context.Call`, run in the thread pool (the
stores are synchronous): it authenticates, makes one call into the core, and renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, RedirectResponse, Response

from comms import identity, review, service
from comms.errors import AuthError, CommsError, NotFoundError, RefusedError, UsageError
from comms.times import isoformat
from comms.web import views
from comms.web.context import (
    LOG,
    Call,
    Handler,
    RateLimitedError,
    safe_next,
    sign_in_form,
)
from comms.web.reads import PageReads
from comms.web.security import CsrfError, ForgedError, new_session

# -- pages --------------------------------------------------------------------------------


def queue_page(call: Call) -> Response:
    """The review queue: drafts waiting, most urgent first."""
    call.page_user()
    server = call.server
    now = server.clock()
    rows = views.queue(server.store, server.cadence, now)
    return call.render("queue.html", rows=rows, title="Review queue", now_=now)


def _draft_id(call: Call) -> int:
    raw = call.request.path_params["draft_id"]
    # ASCII digits only: "²" is a digit to str.isdigit but not to int(), and a fullwidth
    # digit one (U+FF11) is one to both; neither is how anyone writes a draft number.
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:
        raise NotFoundError(f"no draft {raw[:20]}")
    return int(raw)


def _inspect(call: Call, draft_id: int) -> views.DraftView:
    server = call.server
    now = server.clock()
    # The gate and the page read the tenants and reviews alike: once each per request.
    store = PageReads(server.store)
    seen = review.inspect_draft(
        store,
        draft_id,
        tenants=(),
        channels=server.channels,
        policy=server.policy,
        lint_config=server.lint,
        now=now,
    )
    return views.draft_view(store, seen, server.cadence, now)


def draft_page(call: Call) -> Response:
    """A draft: its text with findings marked, the diff, recipients, decision forms."""
    user = call.page_user()
    view = _inspect(call, _draft_id(call))
    try:
        role: str | None = identity.review_role(user, None)
        refusal = None
    except RefusedError as exc:
        role, refusal = None, str(exc)
    done = call.request.query_params.get("done")
    return call.render(
        "draft.html",
        view=view,
        role=role,
        refusal=refusal,
        done=done if done in ("approved", "changes-requested") else None,
        title=f"Draft {view.draft.id}",
    )


def incident_page(call: Call) -> Response:
    """An incident: the cadence clocks, its drafts and the timeline."""
    call.page_user()
    view = _incident(call)
    return call.render("incident.html", view=view, title=view.incident.ref)


def _incident(call: Call) -> views.IncidentView:
    server = call.server
    now = server.clock()
    ref = call.request.path_params["ref"]
    timeline = service.timeline(server.store, ref, policy=server.cadence, now=now)
    return views.incident_view(server.store, timeline, server.cadence, now)


def sign_in_page(call: Call) -> Response:
    """The sign-in form (or, signed in already, where it was going)."""
    try:
        call.page_user()
    except (AuthError, ForgedError):
        return sign_in_form(call, None)
    return RedirectResponse(safe_next(call.request.query_params.get("next")), status_code=303)


def sign_in(call: Call) -> Response:
    """Check the POSTed token and start a session (rate-limited per address)."""
    form = call.form()
    session = call.read_session()
    if session is None:
        raise CsrfError("the form has no session; reload the sign-in page and try again")
    call.csrf_seed = session.nonce
    call.check_csrf(form)
    # Counted only once the form is the sign-in page's own: junk and cross-site posts are
    # refused (403) without using up the address's attempts.
    wait = call.server.limiter.hit(call.address)
    if wait is not None:
        raise RateLimitedError(wait)
    user = call.authenticate((form.get("token") or [""])[0], "that token")
    # A new nonce: a session fixed before signing in is worth nothing after it.
    fresh = new_session(call.server.wall(), user, call.server.signer)
    call.cookies_out.append((call.cookie_name(), call.server.signer.encode(fresh)))
    call.request.scope["comms.user"] = user.name
    target = safe_next((form.get("next") or ["/"])[0])
    return RedirectResponse(target, status_code=303)


def sign_out(call: Call) -> Response:
    """End the user's sessions everywhere: this browser's, a copy of its cookie, their
    other browsers', on every server of the store (``identity.sign_out``)."""
    form = call.form()
    user = call.page_user()
    call.check_csrf(form)
    identity.sign_out(call.server.store, user, now=call.server.clock())
    call.cookies_out.append((call.cookie_name(), None))
    return RedirectResponse("/sign-in", status_code=303)


# -- decisions (pages and API) ------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """A decision as asked for: by a page's form or the API's JSON."""

    decision: str
    revision: int
    note: str
    reason: str | None
    role: str | None
    tenants: tuple[str, ...]
    channels: tuple[str, ...]


def _revision(value: Any) -> int:
    if isinstance(value, bool):
        raise UsageError("revision must be the revision number you read")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError("revision must be the revision number you read") from None
    if number < 1:
        raise UsageError("revision must be the revision number you read")
    return number


def _ask_from_form(decision: str, form: dict[str, list[str]]) -> Ask:
    def one(name: str) -> str:
        return (form.get(name) or [""])[0]

    return Ask(
        decision=decision,
        revision=_revision(one("revision") or None),
        note=one("note").strip(),
        reason=one("reason").strip() or None,
        role=one("role") or None,
        tenants=tuple(form.get("tenant", [])),
        channels=tuple(form.get("channel", [])),
    )


def _ask_from_json(decision: str, data: dict[str, Any]) -> Ask:
    allowed = {"revision", "note", "role"} | (
        {"reason", "tenants", "channels"} if decision == "approved" else set()
    )
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UsageError(f"unknown field '{unknown[0]}' (known: {', '.join(sorted(allowed))})")

    def texts(name: str) -> tuple[str, ...]:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{name} must be a list of strings")
        return tuple(value)

    note, reason, role = data.get("note", ""), data.get("reason"), data.get("role")
    if not isinstance(note, str) or not (reason is None or isinstance(reason, str)):
        raise UsageError("note and reason must be strings")
    if role is not None and not isinstance(role, str):
        raise UsageError("role must be imoc or sirt")
    return Ask(
        decision=decision,
        revision=_revision(data.get("revision")),
        note=note.strip(),
        reason=reason.strip() if reason and reason.strip() else None,
        role=role,
        tenants=texts("tenants"),
        channels=texts("channels"),
    )


def decide(call: Call, draft_id: int, ask: Ask) -> review.Decision:
    """Record ``ask`` on the draft as the signed-in user, if ``ask.revision`` is still the
    latest (else ``review.StaleRevisionError``: nothing is recorded), then call the notify
    hook."""
    from comms.limits import check_size

    server, user = call.server, call.user
    assert user is not None  # authenticated by the caller
    check_size("note", ask.note)
    check_size("reason", ask.reason or "")
    if ask.decision == "changes-requested" and not ask.note:
        raise UsageError("say what to change: the note is what the author reads")
    channels = list(ask.channels) or server.channels
    strangers = [c for c in channels if c not in server.known_channels]
    if strangers:
        raise UsageError(
            f"unknown channel '{strangers[0]}' (known: {', '.join(server.known_channels)})"
        )
    done = review.decide(
        server.store,
        draft_id,
        decision=ask.decision,
        user=user,
        role=ask.role,
        note=ask.note,
        tenants=ask.tenants,
        channels=channels,
        now=server.clock(),
        override_reason=ask.reason if ask.decision == "approved" else None,
        lint_config=server.lint,
        revision=ask.revision,
        policy=server.policy,
    )
    if ask.decision == "changes-requested" and server.notify is not None:
        try:
            server.notify(ask.decision, server.store.get_draft(draft_id), user, ask.note)
        except CommsError as exc:  # recorded all the same; the notice is a courtesy
            LOG.warning("draft %s: the review notice failed: %s", draft_id, exc)
    return done


def decide_page(decision: str) -> Handler:
    """The handler of a page's approve or request-changes form."""

    def handle(call: Call) -> Response:
        form = call.form()
        call.page_user()
        call.check_csrf(form)
        draft_id = _draft_id(call)
        decide(call, draft_id, _ask_from_form(decision, form))
        return RedirectResponse(f"/drafts/{draft_id}?done={decision}", status_code=303)

    return handle


# -- the API ------------------------------------------------------------------------------


def api_queue(call: Call) -> Response:
    """``GET /api/queue``."""
    call.api_user()
    now = call.server.clock()
    rows = views.queue(call.server.store, call.server.cadence, now)
    return JSONResponse({"now": isoformat(now), "drafts": [r.to_dict(now) for r in rows]})


def api_draft(call: Call) -> Response:
    """``GET /api/drafts/{draft_id}``."""
    call.api_user()
    return JSONResponse(_inspect(call, _draft_id(call)).to_dict())


def api_decide(decision: str) -> Handler:
    """``POST /api/drafts/{draft_id}/approve`` and ``…/request-changes``."""

    def handle(call: Call) -> Response:
        call.api_user()
        draft_id = _draft_id(call)
        done = decide(call, draft_id, _ask_from_json(decision, call.json()))
        after = call.server.store.get_draft(draft_id)
        return JSONResponse(
            {
                "draft": draft_id,
                "revision": done.review.revision,
                "decision": done.review.decision,
                "reviewer": done.review.reviewer,
                "role": done.review.role,
                "note": done.review.note,
                "state": after.state.value,
                "tenants": list(done.audience),
                "channels": list(done.channels),
                "approved_over": list(done.blocking_rules),
            }
        )

    return handle


def api_incident(call: Call) -> Response:
    """``GET /api/incidents/{ref}``."""
    call.api_user()
    return JSONResponse(_incident(call).to_dict())


def api_health(call: Call) -> Response:
    """``GET /api/health``: the process serves (no authentication, no data)."""
    return JSONResponse({"status": "ok"})
