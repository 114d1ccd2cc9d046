"""``comms users``: team mode's people, their roles and API tokens.

Each command is parse → one call into ``comms.identity`` → print.  A token is printed
once, alone on standard output (so that a script can capture it), with a one-line hint on
standard error; the store keeps only its hash, so it can never be shown again.  These
commands authenticate with ``COMMS_TOKEN`` whenever the store has users, in either auth
mode; on a store without users the first ``add`` needs no token and makes an admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from comms.commands import common
from comms.commands.common import FORMAT_OPTION, emit_json
from comms.models import Role

if TYPE_CHECKING:
    from comms.identity import Issued
    from comms.models import User

ROLES = [r.value for r in Role]


@click.group()
def users() -> None:
    """Team mode: users, their roles and API tokens.

    Roles: gdcmoc drafts and sends, imoc approves (or sends back), sirt gives a security
    incident's second approval, admin manages users (and approves as the imoc).  The
    first `users add` of a store needs no token and makes an admin; after that these
    commands need COMMS_TOKEN: an admin's to manage others, any user's to list them or
    to rotate their own token.

    \b
    Example:
      comms users add ana --role admin          # the first user: no token needed
      export COMMS_TOKEN=comms_…                # the token it printed
      comms users add sam --role imoc
      comms users list
    """


def _print_token(issued: Issued, hint: str) -> None:
    # The token alone on stdout (TOKEN=$(comms users add …) captures it); the hint on
    # stderr, so that it never ends up in the captured value.
    click.echo(issued.token)
    click.echo(hint, err=True)


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
def users_add(name: str, role: str) -> None:
    """Add a user and print their API token, once.

    Only the token's hash is stored: hand the token to the user now (they set it as
    COMMS_TOKEN).  Needs an admin's COMMS_TOKEN, except for the first user of a store,
    who must be an admin.

    \b
    Example:
      comms users add sam --role imoc
    """
    from comms import identity

    rt = common.runtime()
    issued = identity.add_user(rt.raw_store, name=name, role=role, token=rt.token, now=rt.now())
    who = issued.user
    _print_token(
        issued,
        f"user {who.name} ({who.role.value}) added: store the token above now, it is not shown "
        f"again; {who.name} sets it as COMMS_TOKEN",
    )


def _row(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role.value,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
        "created_by": user.created_by,
        "token_changed_at": user.token_changed_at.isoformat() if user.token_changed_at else None,
    }


@users.command("list")
@FORMAT_OPTION
def users_list(fmt: str) -> None:
    """List users with their role and state (never a token or its hash).

    \b
    Example:
      comms users list --format json
    """
    from comms import identity
    from comms.times import format_time

    rt = common.runtime()
    found = identity.list_users(rt.raw_store, token=rt.token)
    if fmt == "json":
        emit_json([_row(u) for u in found])
        return
    if not found:
        click.echo("no users yet; add the first admin: comms users add NAME --role admin")
    width = max((len(u.name) for u in found), default=0)
    for u in found:
        state = "disabled" if u.disabled else "active"
        token = format_time(u.token_changed_at) if u.token_changed_at else "-"
        click.echo(
            f"{u.name:<{width}}  {u.role.value:<6}  {state:<8}  added {format_time(u.created_at)} "
            f"by {u.created_by}  token {token}"
        )


def _set_disabled(name: str, disabled: bool) -> None:
    from comms import identity

    rt = common.runtime()
    done = identity.set_disabled(
        rt.raw_store, name, disabled=disabled, token=rt.token, now=rt.now()
    )
    if done.disabled:
        click.echo(
            f"user {done.name} disabled: their token is refused from now on, and their "
            "review-server sessions have ended"
        )
    else:
        click.echo(
            f"user {done.name} enabled: their token works again; they sign in to the review "
            "server afresh (sessions from before stay ended)"
        )


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable a user: their token is refused at once, everywhere, and their review-server
    sessions end (admin only).

    \b
    Example:
      comms users disable sam
    """
    _set_disabled(name, True)


@users.command("enable")
@click.argument("name")
def users_enable(name: str) -> None:
    """Enable a disabled user again, with the token they had (admin only); they sign in
    to the review server afresh.

    \b
    Example:
      comms users enable sam
    """
    _set_disabled(name, False)


@users.command("rotate")
@click.argument("name")
def users_rotate(name: str) -> None:
    """Give a user a new token and print it, once; the old one stops working at once.

    Anyone may rotate their own token; rotating another user's needs an admin.

    \b
    Example:
      comms users rotate sam
    """
    from comms import identity

    rt = common.runtime()
    issued = identity.rotate(rt.raw_store, name, token=rt.token, now=rt.now())
    _print_token(
        issued,
        f"new token for {issued.user.name}: the old one no longer works; store the token "
        "above now, it is not shown again",
    )
