"""Who is acting: API tokens, their hashes, and the rules on who may review what.

In team mode (a shared PostgreSQL store, or ``[auth] mode = "token"``) every command and
every page acts as the user whose token it presents; the store keeps only the token's
SHA-256 (a token is 256 random bits, so a fast hash is enough: nothing to brute-force).
Local single-user SQLite keeps working without tokens, with self-declared names.

Everything here is pure: the store is a port, ``now`` is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from comms.errors import AuthError, RefusedError
from comms.models import Role, User
from comms.ports import UserStore

# Every token starts with this, so a pasted token is recognisable (and secret scanners can
# be taught it); the rest is 43 URL-safe characters (32 random bytes).
TOKEN_PREFIX = "comms_"

# What each role may review as ("imoc" / "sirt" are review.ROLES).
REVIEW_ROLES: dict[Role, tuple[str, ...]] = {
    Role.IMOC: ("imoc",),
    Role.ADMIN: ("imoc",),
    Role.SIRT: ("sirt",),
    Role.GDCMOC: (),
}


def new_token() -> str:
    """A fresh API token, shown to its user once and never stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the store keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def authenticate(store: UserStore, token: str | None) -> User:
    """The active user presenting ``token``; ``AuthError`` (one line, nothing recorded) for
    no token, a wrong one, or a disabled user's."""
    token = (token or "").strip()
    if not token:
        raise AuthError(
            "this store needs a token: set COMMS_TOKEN to yours "
            "(an admin makes one with: comms users add NAME --role ROLE)"
        )
    user = store.user_for_token(hash_token(token))
    if user is None:
        raise AuthError("COMMS_TOKEN is not a valid token; ask an admin for a new one")
    if user.disabled:
        raise AuthError(f"user {user.name} is disabled; ask an admin (comms users list)")
    return user


def same_token(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(a.encode(), b.encode())


def review_role(user: User, requested: str | None) -> str:
    """The review role ``user`` acts in: the one their role allows (``requested`` must be
    it, when given).  ``RefusedError`` naming the rule otherwise."""
    allowed = REVIEW_ROLES[user.role]
    if not allowed:
        raise RefusedError(
            f"{user.name} is a {user.role.value}: only an imoc (or admin) approves or sends "
            "back a draft, and sirt gives a security incident's second approval"
        )
    if requested is None:
        return allowed[0]
    if requested not in allowed:
        raise RefusedError(
            f"{user.name} is a {user.role.value} and may review as "
            f"{' or '.join(allowed)}, not as {requested}"
        )
    return requested


def require_role(user: User, roles: Sequence[Role], doing: str) -> None:
    """``RefusedError`` unless ``user`` has one of ``roles`` (admin always may)."""
    if user.role is Role.ADMIN or user.role in roles:
        return
    names = " or ".join(r.value for r in (*roles, Role.ADMIN))
    raise RefusedError(f"{user.name} is a {user.role.value}; only {names} may {doing}")
