"""Sessions, CSRF tokens and sign-in rate limits for the review server; standard library only.

A session is a signed cookie, not a row: ``v1.<payload>.<signature>``, the payload being
JSON ``{"n": nonce, "u": user, "f": fingerprint, "e": epoch, "i": issued}`` in URL-safe
base64 and the signature an HMAC-SHA256 under the store's ``session_key`` (the same for
every server on one database, so any of them reads any session).  The fingerprint is an
HMAC of the user's name and the moment their token last changed; the epoch is the user's
``session_epoch`` when the session began, which signing out, disabling, enabling and a
new token move on.  Each request reads the user again, so any of those ends every session
of the user at once, on every server, with no session state kept anywhere: a cookie
copied before signing out is refused like the browser's own.

A CSRF token is an HMAC of the session's nonce (or, behind an authenticating proxy, of
the user), so it needs no storage either; a page puts it in every form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from comms.errors import CommsError
from comms.models import User
from comms.times import isoformat

# A session lasts a working day at most; signing in again is one paste of the token.
SESSION_SECONDS = 12 * 3600
# Sign-in attempts (and wrong bearer tokens) per client address and window.
SIGN_IN_ATTEMPTS = 10
SIGN_IN_WINDOW = 60.0
# Addresses the rate limiter remembers at most (the oldest are forgotten first).
MAX_TRACKED = 10_000


class ForgedError(CommsError):
    """A session cookie that this store did not sign, or that was changed: HTTP 403."""


class CsrfError(CommsError):
    """A form without its CSRF token, or with another session's: HTTP 403."""


class SessionEndedError(CommsError):
    """A genuine session whose user changed since: signed out, token rotated, user
    disabled (or enabled again) or removed, or the session too old.  HTTP 401: sign in
    again."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """What a session cookie says: a random ``nonce`` (the CSRF tokens' seed), and once
    signed in, the ``user``'s name, token ``fingerprint`` and session ``epoch``;
    ``issued`` in Unix seconds."""

    nonce: str
    issued: int
    user: str | None = None
    fingerprint: str | None = None
    epoch: int = 0


class Signer:
    """HMAC-SHA256 under one key, for cookies, fingerprints and CSRF tokens; each use has
    its own ``purpose`` so that one kind of signature never passes for another."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a session key has at least 32 bytes")
        self._key = key

    def mac(self, purpose: str, text: str) -> str:
        """The signature of ``text`` for ``purpose``, URL-safe base64."""
        message = f"{purpose}\x00{text}".encode("utf-8", "surrogatepass")
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def check(self, purpose: str, text: str, signature: str) -> bool:
        """Whether ``signature`` is ``text``'s for ``purpose`` (constant time)."""
        return hmac.compare_digest(self.mac(purpose, text), signature)

    # -- sessions ---------------------------------------------------------------------

    def fingerprint(self, user: User) -> str:
        """Changes when ``user``'s token changes (``token_changed_at``), and differs
        between users and between stores."""
        epoch = isoformat(user.token_changed_at or user.created_at)
        return self.mac("token", f"{user.name}\x00{epoch}")[:22]

    def encode(self, session: Session) -> str:
        """The cookie value for ``session``."""
        fields = {"n": session.nonce, "i": session.issued}
        if session.user is not None:
            fields |= {"u": session.user, "f": session.fingerprint or "", "e": session.epoch}
        payload = _b64(json.dumps(fields, separators=(",", ":"), sort_keys=True).encode())
        return f"v1.{payload}.{self.mac('session', payload)}"

    def decode(self, value: str) -> Session:
        """The session a cookie value carries; ``ForgedError`` if this store did not sign
        it exactly so."""
        version, _, rest = value.partition(".")
        payload, _, signature = rest.partition(".")
        if version != "v1" or not payload or not signature:
            raise ForgedError("the session cookie is not one this server made; sign in again")
        if not self.check("session", payload, signature):
            raise ForgedError("the session cookie is not one this server made; sign in again")
        try:
            fields = json.loads(_unb64(payload))
            session = Session(
                nonce=str(fields["n"]),
                issued=int(fields["i"]),
                user=str(fields["u"]) if "u" in fields else None,
                fingerprint=str(fields.get("f", "")) if "u" in fields else None,
                # Signed before sessions carried an epoch: the one every user starts at.
                epoch=int(fields.get("e", 0)),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            # Signed by us yet unreadable: written by a version of comms that is gone.
            raise SessionEndedError("your session is from another version; sign in again") from exc
        return session

    def csrf(self, seed: str) -> str:
        """The CSRF token of a session (``seed``: its nonce, or the proxy's user)."""
        return self.mac("csrf", seed)

    def check_csrf(self, seed: str, token: str | None) -> None:
        """``CsrfError`` unless ``token`` is the session's."""
        if not token:
            raise CsrfError("the form has no security token; reload the page and try again")
        if not self.check("csrf", seed, token):
            raise CsrfError("the form's security token is wrong or old; reload the page")


def new_session(now: float, user: User | None = None, signer: Signer | None = None) -> Session:
    """A fresh session with a new nonce: anonymous, or ``user``'s (``signer`` required)."""
    nonce = secrets.token_urlsafe(18)
    if user is None or signer is None:
        return Session(nonce=nonce, issued=int(now))
    return Session(nonce, int(now), user.name, signer.fingerprint(user), user.session_epoch)


def session_user_ok(signer: Signer, session: Session, user: User, now: float) -> None:
    """``SessionEndedError`` unless ``user`` (read now) still owns ``session``."""
    if now - session.issued > SESSION_SECONDS:
        raise SessionEndedError("your session has expired; sign in again")
    if user.disabled:
        raise SessionEndedError(f"user {user.name} is disabled; ask an admin (comms users list)")
    if not hmac.compare_digest(signer.fingerprint(user), session.fingerprint or ""):
        raise SessionEndedError("your token was changed since you signed in; sign in again")
    if session.epoch != user.session_epoch:
        raise SessionEndedError(
            "this session has ended: you signed out (which signs you out everywhere), or an "
            "admin disabled your user since; sign in again"
        )


class RateLimiter:
    """At most ``limit`` attempts per ``window`` seconds per client address: ``hit``
    counts an attempt, ``wait`` only looks.

    Kept in memory: each server process counts on its own, so N servers behind one load
    balancer allow N times as many (still far too few to guess a 256-bit token).
    """

    def __init__(
        self,
        limit: int = SIGN_IN_ATTEMPTS,
        window: float = SIGN_IN_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, address: str) -> float | None:
        """Count an attempt from ``address``: None when allowed, else the seconds to wait
        (the attempt is not counted then)."""
        now = self.clock()
        with self._lock:
            times = self._seen.get(address)
            if times is None:
                if len(self._seen) >= MAX_TRACKED:
                    self._forget(now)
                times = self._seen[address] = deque()
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.limit:
                return max(1.0, times[0] + self.window - now)
            times.append(now)
            return None

    def wait(self, address: str) -> float | None:
        """The seconds ``address`` must wait before its next attempt, or None: a look that
        counts nothing (so that only failures need to be counted, with ``hit``)."""
        times = self._seen.get(address)
        if times is None:  # the common case, a client that never failed: no lock taken
            return None
        now = self.clock()
        with self._lock:
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.limit:
                return max(1.0, times[0] + self.window - now)
            return None

    def _forget(self, now: float) -> None:
        for address in [a for a, t in self._seen.items() if not t or now - t[-1] >= self.window]:
            del self._seen[address]
        while len(self._seen) >= MAX_TRACKED:  # all busy: forget the longest-known
            del self._seen[next(iter(self._seen))]
