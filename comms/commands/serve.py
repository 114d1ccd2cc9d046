"""``comms serve``: the review server (team mode) over the configured store.

Starlette and uvicorn are imported only when the command runs, so this module costs click
alone at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from comms.commands import common

if TYPE_CHECKING:
    from comms.bootstrap import Runtime
    from comms.models import Draft, User
    from comms.web.context import Notify


def _announcer(public_url: str | None) -> Callable[[str], None]:
    def announce(url: str) -> None:
        shown = f" (people use {public_url})" if public_url else ""
        click.echo(f"comms serve listening on {url}{shown}", err=True)

    return announce


def _notify(rt: Runtime, public_url: str | None) -> Notify | None:
    """The page's "request changes" tells the drafter on Slack, as `review submit` tells
    the reviewers (``[notify] review``); None when no notifier is set up."""
    notifier = rt.review_notifier()
    if notifier is None:
        return None

    def notify(event: str, draft: Draft, user: User, note: str) -> None:
        from comms.notice import CHANGES_REQUESTED, announce

        incident = rt.raw_store.get_incident(draft.incident_ref)
        problem = announce(
            notifier,
            draft,
            incident,
            event=CHANGES_REQUESTED,
            actor=user.name,
            public_url=public_url,
            note=note,
        )
        if problem:
            click.echo(f"warning: {problem}", err=True)

    return notify


@click.command()
@click.option(
    "--host", default=None, help="Address to listen on (default 127.0.0.1, or [serve] host)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on (default 8750, or [serve] port); 0 picks a free one (printed).",
)
@click.option(
    "--public-url",
    default=None,
    metavar="URL",
    help="The address people use, e.g. https://comms.example.com (links; Secure cookies).",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="CIDR",
    help="A proxy whose X-Forwarded-For/-Proto are believed (repeatable).",
)
@click.option(
    "--proxy-header",
    default=None,
    metavar="NAME",
    help="Turn on sign-in by header: a --trusted-proxy names the user in it, e.g. "
    "X-WEBAUTH-USER (off by default; the proxy must strip it from clients' requests).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(
    host: str | None,
    port: int | None,
    public_url: str | None,
    trusted_proxies: tuple[str, ...],
    proxy_header: str | None,
    log_level: str,
) -> None:
    """Serve the review pages and the JSON API until interrupted.

    People sign in with the token `comms users add` printed; scripts send it as
    `Authorization: Bearer <token>`. Behind an authenticating proxy, the proxy names the
    user in --proxy-header, believed only from --trusted-proxy addresses. Several servers
    may run on one database: sessions are signed with a key kept in the store. With
    COMMS_INCIDENTIO_WEBHOOK_SECRET set, incident.io's webhooks are taken at
    POST /hooks/incidentio.

    \b
    Example:
      comms users add sam --role imoc
      comms serve --port 8750 --public-url https://comms.example.com
      comms serve --trusted-proxy 10.0.0.5 --proxy-header X-WEBAUTH-USER
    """
    from comms.bootstrap import CHANNELS
    from comms.web.config import serve_config
    from comms.web.server import build, run

    rt = common.runtime()
    config = serve_config(
        rt.settings.table("serve"),
        host=host,
        port=port,
        public_url=public_url,
        trusted_proxies=trusted_proxies,
        proxy_header=proxy_header,
    )
    receiver = rt.incidentio_receiver()  # COMMS_INCIDENTIO_WEBHOOK_SECRET
    app = build(
        rt, config, channels=CHANNELS, notify=_notify(rt, config.public_url), incidentio=receiver
    )
    if receiver is not None:
        click.echo("incident.io webhooks: POST /hooks/incidentio", err=True)
    run(app, config, announce=_announcer(config.public_url), log_level=log_level)
