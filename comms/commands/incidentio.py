"""``comms incident import`` and ``comms incident sync``: incidents from incident.io.

Attached to the ``incident`` group of ``comms.commands.core``.  Each command parses, makes
one call into ``comms.incidentio.sync`` and prints; notes (values that did not map, missing
tenants) go to standard error so that standard output stays the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from comms.commands import common
from comms.commands.common import FORMAT_OPTION, emit_json
from comms.errors import UsageError

if TYPE_CHECKING:
    from comms.bootstrap import Runtime
    from comms.incidentio.mapping import Rules
    from comms.incidentio.records import IncidentSource
    from comms.incidentio.sync import Applied


def _source(runtime: Runtime) -> IncidentSource:
    """The incident.io client for this command, closed with the runtime."""
    return runtime.incidentio()


def _rules(runtime: Runtime) -> Rules:
    from comms.incidentio.mapping import rules_from_table

    return rules_from_table(runtime.settings.table("incidentio"))


def _echo(result: Applied, fmt: str) -> None:
    if fmt == "json":
        emit_json(result.to_dict())
        return
    found = result.incident
    what = ", ".join(
        f"{k} {v['from']} → {v['to']}" if isinstance(v, dict) else f"{k} {', '.join(v)}"
        for k, v in result.changes.items()
    )
    if result.action == "imported":
        tenants = ", ".join(found.tenants) or "no tenants"
        click.echo(
            f"imported {found.ref}: {found.severity.value} {found.status.value} {found.title} ({tenants})"
        )
    elif result.action == "synced":
        click.echo(f"synced {found.ref}: {what}")
    else:
        click.echo(f"{found.ref} is up to date with incident.io")
    if result.link.permalink:
        click.echo(f"  incident.io: {result.link.permalink}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.action == "imported" and found.tenants:
        click.echo(f'next: comms draft investigation-start --incident {found.ref} --set impact="…"')


@click.command("import")
@click.argument("ref_or_url", metavar="REF|URL")
@click.option(
    "--adopt",
    is_flag=True,
    help="Link the comms incident of the same reference, opened by hand, to this one.",
)
@FORMAT_OPTION
def import_incident(ref_or_url: str, adopt: bool, fmt: str) -> None:
    """Open the comms incident for an incident.io incident, linked to it.

    Name, severity, status, declaration time (the cadence clock's start) and tenants (the
    [incidentio] tenant_field custom field) come from incident.io; importing again syncs.
    Needs COMMS_INCIDENTIO_TOKEN.

    \b
    Example:
      comms incident import INC-2291
      comms incident import https://app.incident.io/gitlab/incidents/2291
    """
    from comms.incidentio import sync as incidents

    runtime = common.runtime()
    result = incidents.import_incident(
        runtime.store,
        _source(runtime),
        ref_or_url,
        rules=_rules(runtime),
        now=runtime.now(),
        actor=runtime.actor,
        adopt=adopt,
    )
    _echo(result, fmt)


@click.command("sync")
@click.argument("ref", required=False)
@FORMAT_OPTION
def sync(ref: str | None, fmt: str) -> None:
    """Apply incident.io's severity, status, name and tenants to a linked incident (all
    open linked incidents without REF).

    A field follows incident.io when it changed there; a change made in comms stays until
    then.  PubSec incidents are never synced.

    \b
    Example:
      comms incident sync INC-2291
      comms incident sync --format json
    """
    from comms.incidentio import sync as incidents

    runtime = common.runtime()
    options: dict[str, Any] = {
        "rules": _rules(runtime),
        "now": runtime.now(),
        "actor": runtime.actor,
    }
    if ref:
        _echo(incidents.sync_incident(runtime.store, _source(runtime), ref, **options), fmt)
        return
    outcomes = incidents.sync_open(runtime.store, _source(runtime), **options)
    if fmt == "json":
        emit_json(
            [
                {"ref": o.ref, "error": o.error, **(o.applied.to_dict() if o.applied else {})}
                for o in outcomes
            ]
        )
    for outcome in outcomes:
        if outcome.applied is not None and fmt == "text":
            _echo(outcome.applied, fmt)
        elif outcome.error is not None:
            click.echo(f"{outcome.ref}: not synced: {outcome.error}", err=True)
    if not outcomes and fmt == "text":
        click.echo("no open incident is linked to incident.io")
    failed = [o.ref for o in outcomes if o.error]
    if failed:
        raise UsageError(
            f"{len(failed)} of {len(outcomes)} incidents not synced: {', '.join(failed)}"
        )
