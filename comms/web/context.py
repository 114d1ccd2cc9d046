"""What every request of the review server shares: the server's state, the request as a
handler sees it (``Call``: body, user, CSRF seed, cookies to set), and errors as responses.

Errors map to statuses in one place (:func:`status_of`); see ``comms.web.app`` for how the
pages and the API authenticate.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from comms import identity
from comms.errors import (
    EXIT_FINDINGS,
    AuthError,
    CommsError,
    NotFoundError,
    RefusedError,
    StoreError,
    UsageError,
)
from comms.models import Draft, User
from comms.review import StaleRevisionError
from comms.web import views
from comms.web.config import ServeConfig
from comms.web.fragments import Fragments
from comms.web.security import (
    CsrfError,
    ForgedError,
    RateLimiter,
    Session,
    SessionEndedError,
    Signer,
    new_session,
    session_user_ok,
)

if TYPE_CHECKING:
    from comms.cadence import Policy
    from comms.lint.config import LintConfig
    from comms.ports import Store
    from comms.review import ReviewPolicy

HERE = Path(__file__).resolve().parent
ACCESS_LOG = logging.getLogger("comms.web.access")
LOG = logging.getLogger("comms.web")
# A form or JSON body larger than this is refused (413): a message is at most 64 KiB.
MAX_BODY = 256 * 1024
COOKIE = "comms_session"
SECURE_COOKIE = "__Host-comms_session"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]

# A handler: one request in, one response out.
Handler = Callable[["Call"], Response]
# (event, draft, user, note): called after a review decision is recorded.
Notify = Callable[[str, Draft, User, str], None]


class Services(Protocol):
    """What the server needs from the composition root (``comms.bootstrap.Runtime``)."""

    @property
    def raw_store(self) -> Store:
        """The configured store, not authenticated as anyone: each request authenticates."""

    def now(self) -> datetime:
        """The current time (``COMMS_NOW`` pins it)."""

    def review_policy(self) -> ReviewPolicy:
        """``[review]``."""

    def lint_config(self) -> LintConfig | None:
        """``[lint]``, or None for the defaults."""

    def default_channels(self) -> list[str]:
        """``[send] channels``."""

    def cadence_policy(self) -> Policy:
        """``[cadence]``."""


class SignInRequiredError(AuthError):
    """A page asked for without a session: 303 to the sign-in page."""


class TooLargeError(UsageError):
    """A request body over :data:`MAX_BODY`: HTTP 413."""


class MediaTypeError(UsageError):
    """A POST body that is not what the route reads: HTTP 415."""


class RateLimitedError(CommsError):
    """Too many sign-in attempts (or wrong bearer tokens, ``what``) from one address:
    HTTP 429 with ``Retry-After``."""

    def __init__(self, seconds: float, what: str = "sign-in attempts") -> None:
        self.seconds = int(seconds + 0.999)
        super().__init__(f"too many {what} from your address; wait {self.seconds} seconds")


def status_of(exc: CommsError) -> int:
    """The HTTP status of a core error (see the module docstring)."""
    table: list[tuple[type[CommsError], int]] = [
        (TooLargeError, 413),
        (MediaTypeError, 415),
        (StaleRevisionError, 409),
        (RateLimitedError, 429),
        (ForgedError, 403),
        (CsrfError, 403),
        (SessionEndedError, 401),
        (AuthError, 401),
        (RefusedError, 403),
        (NotFoundError, 404),
        (UsageError, 400),
        (StoreError, 503),
    ]
    for kind, status in table:
        if isinstance(exc, kind):
            return status
    # A refusal by one of the process's rules (an approval over findings without a reason).
    return 403 if exc.exit_code == EXIT_FINDINGS else 500


# -- the server's state -------------------------------------------------------------------


@dataclass
class Server:
    """What every request shares: the store, the policies read once at start, the signer
    (keyed by the store's ``session_key``), the sign-in limiter (and ``bearer_limiter``,
    of wrong bearer tokens, with the same settings) and the notify hook."""

    store: Store
    clock: Callable[[], datetime]
    policy: ReviewPolicy
    lint: LintConfig | None
    channels: list[str]
    known_channels: tuple[str, ...]
    cadence: Policy
    config: ServeConfig
    limiter: RateLimiter
    notify: Notify | None
    wall: Callable[[], float] = time.time
    bearer_limiter: RateLimiter = field(init=False)
    pages: Environment = field(init=False)
    fragments: Fragments = field(init=False)
    _signer: Signer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # Counted apart from sign-ins, which count every attempt: a script's good requests
        # never use up its address's sign-ins, nor a person's sign-ins its API calls.
        limiter = self.limiter
        self.bearer_limiter = RateLimiter(limiter.limit, limiter.window, limiter.clock)
        self.pages = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # Compiled once: no stat of every template file on every page.
            auto_reload=False,
        )
        self.pages.filters["when"] = views.shown_time
        self.pages.filters["state"] = views.draft_state_label
        self.pages.globals["time_left"] = views.time_left
        self.fragments = Fragments(self.pages)
        self.pages.globals["queue_rows"] = self.fragments.queue_rows

    @property
    def signer(self) -> Signer:
        """The signer under the store's session key, read once."""
        if self._signer is None:
            self._signer = Signer(self.store.session_key())
        return self._signer


@dataclass
class Call:
    """One request as a handler sees it: the request, its body (read already), and the
    user once authenticated."""

    server: Server
    request: Request
    body: bytes
    api: bool
    user: User | None = None
    session: Session | None = None
    csrf_seed: str | None = None
    cookies_out: list[tuple[str, str | None]] = field(default_factory=list)

    # -- input ------------------------------------------------------------------------

    def form(self) -> dict[str, list[str]]:
        """The POSTed form (``application/x-www-form-urlencoded``)."""
        kind = self.request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not self.body:
            return {}
        if kind != "application/x-www-form-urlencoded":
            raise MediaTypeError("send the form as application/x-www-form-urlencoded")
        try:
            return parse_qs(self.body.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
        except (UnicodeDecodeError, ValueError) as exc:
            raise UsageError("the form is not readable UTF-8 form data") from exc

    def json(self) -> dict[str, Any]:
        """The POSTed JSON object."""
        kind = self.request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise MediaTypeError("send the body as application/json")
        try:
            data = json.loads(self.body or b"null")
        except ValueError as exc:
            raise UsageError(f"the body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise UsageError("the body must be a JSON object")
        return data

    @property
    def address(self) -> str:
        """The client's address (behind a trusted proxy: the one it forwarded), an IPv4
        client in its IPv4 form even when a server on ``::`` sees it as ``::ffff:a.b.c.d``,
        so that the rate limits count one client once."""
        host = self.request.client.host if self.request.client else "unknown"
        if host[:7].lower() == "::ffff:" and "." in host:
            return host[7:]
        return host

    @property
    def secure(self) -> bool:
        """Whether the browser talks HTTPS to us (directly, by a trusted proxy's
        ``X-Forwarded-Proto``, or by an https ``public_url``)."""
        return self.request.url.scheme == "https" or self.server.config.https

    # -- authentication -----------------------------------------------------------------

    def cookie_name(self) -> str:
        """``__Host-`` prefixed when Secure, so that no sub-domain can set it."""
        return SECURE_COOKIE if self.secure else COOKIE

    def read_session(self) -> Session | None:
        """The session cookie's session, None without one; ``ForgedError`` for a cookie
        this store did not sign."""
        value = self.request.cookies.get(self.cookie_name())
        if not value:
            return None
        try:
            return self.server.signer.decode(value)
        except ForgedError:
            self.cookies_out.append((self.cookie_name(), None))
            raise

    def proxy_user(self) -> User | None:
        """The user a trusted proxy names in ``proxy_header``, or None (no proxy, or an
        untrusted peer, whose header is ignored)."""
        config = self.server.config
        if not config.proxy_auth or config.proxy_header is None:
            return None
        name = self.request.headers.get(config.proxy_header)
        if name is None:
            return None
        if not self.request.scope.get("comms.trusted", False):
            LOG.warning(
                "ignored %s from %s: not a trusted proxy",
                config.proxy_header,
                self.request.scope.get("comms.peer", "unknown"),
            )
            return None
        try:
            user = self.server.store.get_user(name.strip())
        except NotFoundError:
            raise AuthError(
                f"the proxy names user '{name.strip()[:64]}', who is not a comms user; "
                "an admin adds them with comms users add"
            ) from None
        if user.disabled:
            raise AuthError(f"user {user.name} is disabled; ask an admin (comms users list)")
        return user

    def page_user(self) -> User:
        """The signed-in user of a page request (see the module docstring)."""
        user = self.proxy_user()
        if user is not None:
            self.user = user
            self.csrf_seed = f"proxy\x00{user.name}\x00{self.server.signer.fingerprint(user)}"
        else:
            session = self.read_session()
            if session is None or session.user is None:
                raise SignInRequiredError("sign in with your comms token")
            try:
                user = self.server.store.get_user(session.user)
            except NotFoundError:
                user = None
            if user is None:
                self.cookies_out.append((self.cookie_name(), None))
                raise SessionEndedError("your user no longer exists; sign in again")
            try:
                session_user_ok(self.server.signer, session, user, self.server.wall())
            except SessionEndedError:
                self.cookies_out.append((self.cookie_name(), None))
                raise
            self.user, self.session, self.csrf_seed = user, session, session.nonce
        self.request.scope["comms.user"] = self.user.name
        return self.user

    def authenticate(self, token: str, what: str) -> User:
        """The active user whose token is ``token`` (``identity.authenticate``), with the
        core's words for a disabled user and ours (``what`` is wrong) for the rest."""
        try:
            return identity.authenticate(self.server.store, token)
        except AuthError:
            known = self.server.store.user_for_token(identity.hash_token(token.strip()))
            if known is not None and token.strip():
                raise  # a disabled user's: the core's message names them
            raise AuthError(
                f"{what} is not a valid comms token; paste the one comms users add "
                "(or rotate) printed for you"
            ) from None

    def api_user(self) -> User:
        """The user whose bearer token the API request carries.  Wrong tokens are limited
        per address as sign-ins are (``RateLimitedError``, checked before the token);
        only failures count."""
        scheme, _, token = self.request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("send your comms token as Authorization: Bearer <token>")
        limiter = self.server.bearer_limiter
        wait = limiter.wait(self.address)
        if wait is not None:
            raise RateLimitedError(wait, "wrong bearer tokens")
        try:
            self.user = self.authenticate(token, "the bearer token")
        except AuthError:
            limiter.hit(self.address)
            raise
        self.request.scope["comms.user"] = self.user.name
        return self.user

    def check_csrf(self, form: dict[str, list[str]]) -> None:
        """``CsrfError`` unless the form carries this session's CSRF token."""
        if self.csrf_seed is None:
            raise CsrfError("the form has no session; reload the page and try again")
        token = (form.get("csrf") or [""])[0]
        self.server.signer.check_csrf(self.csrf_seed, token)

    @property
    def csrf(self) -> str:
        """This session's CSRF token, for the page's forms."""
        return self.server.signer.csrf(self.csrf_seed) if self.csrf_seed else ""

    # -- output -------------------------------------------------------------------------

    def finish(self, response: Response) -> Response:
        """Set or drop the cookies the request decided on."""
        for name, value in self.cookies_out:
            if value is None:
                response.delete_cookie(
                    name, path="/", secure=self.secure, httponly=True, samesite="lax"
                )
            else:
                response.set_cookie(
                    name, value, path="/", secure=self.secure, httponly=True, samesite="lax"
                )
        return response

    def render(self, name: str, code: int = 200, **context: Any) -> Response:
        """A page from ``templates/``, with what every page shows."""
        template = self.server.pages.get_template(name)
        html = template.render(
            user=self.user,
            csrf=self.csrf,
            now=self.server.clock(),
            path=self.request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=code)


# -- errors -------------------------------------------------------------------------------


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    titles = {
        400: "Bad request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        409: "Conflict",
        413: "Too large",
        415: "Unsupported media type",
        429: "Too many requests",
        503: "Unavailable",
    }
    body = {
        "type": "about:blank",
        "title": titles.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def error_response(call: Call, exc: CommsError) -> Response:
    from comms.lint.secrets import masked

    status = status_of(exc)
    message = masked(str(exc))
    headers = {"Retry-After": str(exc.seconds)} if isinstance(exc, RateLimitedError) else None
    if status >= 500:
        LOG.error("%s %s: %s", call.request.method, call.request.url.path, message)
    if call.api:
        if status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="comms"'}
        return problem(status, message, headers)
    if isinstance(exc, SignInRequiredError):
        target = call.request.url.path
        return RedirectResponse(f"/sign-in?next={quote(target)}", status_code=303)
    if status == 401 or isinstance(exc, RateLimitedError):
        return sign_in_form(call, message, status, headers)
    response = call.render("error.html", status, status=status, message=message)
    if headers:
        response.headers.update(headers)
    return response


def sign_in_form(
    call: Call, message: str | None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The sign-in form, with a fresh anonymous session (its nonce seeds the form's CSRF
    token) unless the browser holds a readable one."""
    call.user = None
    session: Session | None
    try:
        session = call.read_session()
    except (ForgedError, SessionEndedError):
        session = None
    if session is None or session.user is not None:
        session = new_session(call.server.wall())
        call.cookies_out.append((call.cookie_name(), call.server.signer.encode(session)))
    call.csrf_seed = session.nonce
    target = safe_next(call.request.query_params.get("next"))
    response = call.render("sign_in.html", status, message=message, next=target)
    if headers:
        response.headers.update(headers)
    return response


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    # Browsers drop tabs and newlines from URLs and read "\\" as "/": "/\t/evil.example"
    # would become "//evil.example", another site.
    if (
        not target
        or not target.startswith("/")
        or any(c == "\\" or c.isspace() or ord(c) < 32 or ord(c) == 127 for c in target)
        or target.startswith("//")
    ):
        return "/"
    return target
