"""Who is acting: API tokens, their hashes, and the rules on who may review what.

In team mode (a shared PostgreSQL store, or ``[auth] mode = "token"``) every command and
every page acts as the user whose token it presents; the store keeps only the token's
SHA-256 (a token is 256 random bits, so a fast hash is enough: nothing to brute-force).
Local single-user SQLite keeps working without tokens, with self-declared names.

Everything here is pure: the store is a port, ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from comms.errors import AuthError, NotFoundError, RefusedError, UsageError
from comms.lint.secrets import shown
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
    import secrets  # ~6 ms of import: only when a token is made

    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the store keeps of a token: its SHA-256, hex."""
    import hashlib

    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def authenticate(store: UserStore, token: str | None) -> User:
    """The active user presenting ``token``; ``AuthError`` (one line, nothing recorded) for
    no token, a wrong one, or a disabled user's."""
    token = (token or "").strip()
    user = store.user_for_token(hash_token(token)) if token else None
    if user is None and not store.list_users():
        raise AuthError(
            "this store needs a token, and it has no users yet: make the first admin with "
            "comms users add NAME --role admin, then set COMMS_TOKEN to the token it prints"
        )
    if not token:
        raise AuthError(
            "this store needs a token: set COMMS_TOKEN to yours "
            "(an admin makes one with: comms users add NAME --role ROLE)"
        )
    if user is None:
        raise AuthError("COMMS_TOKEN is not a valid token; ask an admin for a new one")
    if user.disabled:
        raise AuthError(f"user {user.name} is disabled; ask an admin (comms users list)")
    return user


def user_taken(name: str, *, disabled: bool) -> UsageError:
    """The store's refusal of a second user called ``name`` (every backend says this)."""
    if disabled:
        return UsageError(
            f"user '{shown(name)}' exists already (disabled); enable it with: "
            f"comms users enable {shown(name)}"
        )
    return UsageError(f"user '{shown(name)}' exists already; see them with: comms users list")


def no_user(name: str) -> NotFoundError:
    """The store's answer for an unknown user name (every backend says this)."""
    return NotFoundError(f"no user '{shown(name)}'; see them with: comms users list")


def same_token(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def _a(role: Role) -> str:
    """The role with its article: "an imoc", "a sirt"."""
    return f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value}"


def review_role(user: User, requested: str | None) -> str:
    """The review role ``user`` acts in: the one their role allows (``requested`` must be
    it, when given).  ``RefusedError`` naming the rule otherwise."""
    allowed = REVIEW_ROLES[user.role]
    if not allowed:
        raise RefusedError(
            f"{user.name} is {_a(user.role)}: only an imoc (or admin) approves or sends "
            "back a draft, and sirt gives a security incident's second approval"
        )
    if requested is None:
        return allowed[0]
    if requested not in allowed:
        raise RefusedError(
            f"{user.name} is {_a(user.role)} and may review as "
            f"{' or '.join(allowed)}, not as {requested}"
        )
    return requested


def require_role(user: User, roles: Sequence[Role], doing: str) -> None:
    """``RefusedError`` unless ``user`` has one of ``roles`` (admin always may)."""
    if user.role is Role.ADMIN or user.role in roles:
        return
    names = " or ".join(r.value for r in dict.fromkeys((*roles, Role.ADMIN)))
    raise RefusedError(f"{user.name} is {_a(user.role)}; only {names} may {doing}")


# -- managing users (``comms users``): each takes the store, the caller's token and ``now`` --


class UserAdminStore(UserStore, Protocol):
    """What managing users needs: the user store, with several steps in one transaction.

    Each function below reads the users, decides, and writes inside one ``transaction``,
    and the decision must still hold when the write lands, however many people manage
    users at once: two bootstrapping an empty store make one admin, two admins disabling
    each other leave one active.  So a transaction that reads the users keeps every other
    user change out until it ends: SQLite's ``BEGIN IMMEDIATE``, the memory store's lock,
    PostgreSQL's users lock (taken on the first read of the users inside a transaction).
    """

    def transaction(self) -> AbstractContextManager[None]:
        """Join the changes made inside into one transaction (see ``comms.ports.Store``),
        which no other change to the users interleaves with."""


@dataclass(frozen=True)
class Issued:
    """A user and their new API token: shown once, to be handed to them; only its hash is
    stored, so it cannot be shown again."""

    user: User
    token: str

    def __repr__(self) -> str:  # never put the token in a log or traceback by accident
        return f"Issued(user={self.user!r}, token='[secret]')"


def parse_role(value: str | Role) -> Role:
    """``value`` as a ``Role``; ``UsageError`` naming the roles otherwise."""
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise UsageError(f"unknown role '{shown(str(value))}' (known: {known})") from None


def add_user(
    store: UserAdminStore, *, name: str, role: str | Role, token: str | None, now: datetime
) -> Issued:
    """Add user ``name`` with ``role`` and a new token, as the admin presenting ``token``.

    A store without users needs no token, but its first user must be an admin (anyone
    with the database could make one anyway; this is how a team starts).  Otherwise the
    caller must be an active admin: ``AuthError`` for a missing, wrong or disabled token,
    ``RefusedError`` for another role.  The user log names the admin (or, for the first
    user, the new admin), never the token.
    """
    wanted = parse_role(role)
    secret = new_token()
    with store.transaction():
        if store.list_users():
            caller = authenticate(store, token)
            require_role(caller, (Role.ADMIN,), "add users")
            actor = caller.name
        elif wanted is not Role.ADMIN:
            raise UsageError(
                f"the first user must be an admin, who then adds the others: "
                f"comms users add {shown(name)} --role admin"
            )
        else:
            actor = name
        user = store.add_user(
            name=name, role=wanted, token_hash=hash_token(secret), now=now, actor=actor
        )
    return Issued(user, secret)


def list_users(store: UserStore, *, token: str | None) -> list[User]:
    """Every user, disabled ones too, by name: any active user may look (no token needed
    while there are no users)."""
    found = store.list_users()
    if found:
        authenticate(store, token)
    return found


def set_disabled(
    store: UserAdminStore, name: str, *, disabled: bool, token: str | None, now: datetime
) -> User:
    """Disable (``disabled``) or enable user ``name``, as the admin presenting ``token``;
    a disabled user's token is refused everywhere at once.  Either way their review-server
    sessions end for good (enabled again, they sign in afresh).  The last active admin is
    never disabled (nobody could manage users after that): ``RefusedError``."""
    with store.transaction():
        caller = authenticate(store, token)
        require_role(caller, (Role.ADMIN,), "disable or enable users")
        target = store.get_user(name)
        if disabled and target.role is Role.ADMIN and not target.disabled:
            admins = [u for u in store.list_users() if u.role is Role.ADMIN and not u.disabled]
            if len(admins) <= 1:
                raise RefusedError(
                    f"{target.name} is the last active admin; add another admin first "
                    "(comms users add NAME --role admin), so that someone can still manage users"
                )
        return store.set_user_disabled(name, disabled=disabled, now=now, actor=caller.name)


def sign_out(store: UserStore, user: User, *, now: datetime) -> User:
    """End every review-server session of ``user`` (signed in already), in every browser
    and on every server of the store: their session epoch moves on, logged as done by
    them.  One session cannot end alone: sessions are kept nowhere but in the cookie."""
    return store.end_user_sessions(user.name, now=now, actor=user.name)


def rotate(store: UserAdminStore, name: str, *, token: str | None, now: datetime) -> Issued:
    """Give user ``name`` a new token (the old one stops at once, and their review-server
    sessions end), as ``name`` themselves or as an admin presenting ``token``;
    ``RefusedError`` for anyone else."""
    secret = new_token()
    with store.transaction():
        caller = authenticate(store, token)
        if caller.name != name:
            require_role(caller, (Role.ADMIN,), "rotate another user's token")
        user = store.set_user_token(name, token_hash=hash_token(secret), now=now, actor=caller.name)
    return Issued(user, secret)
