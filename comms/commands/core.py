"""Commands for tenants, incidents, templates, drafts and the timeline."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from comms.commands import common
from comms.commands.common import FORMAT_OPTION, dump, emit_json
from comms.errors import MissingVariablesError, UsageError
from comms.models import DraftState, MessageKind, Severity, Status

if TYPE_CHECKING:
    from collections.abc import Sequence

    from comms.bootstrap import Runtime
    from comms.models import Draft, Incident
    from comms.service import Checker, Composed


def _severity(_ctx: Any, _param: Any, value: str | None) -> Severity | None:
    return Severity(value.upper()) if value else None


# Choices come from the enums, so a new severity, status or kind needs no CLI edit.
SEVERITY = click.Choice([s.value for s in Severity], case_sensitive=False)
STATUSES = [s.value for s in Status]
KINDS = [k.value for k in MessageKind]
STATES = [s.value for s in DraftState]


# -- tenants ------------------------------------------------------------------------------


@click.group()
def tenants() -> None:
    """Add, import and list the tenants incidents can affect.

    \b
    Example:
      comms tenants add acme --name "Acme Corp" --url https://acme.gitlab-dedicated.com \\
          --contact ops@acme.example --csm csm@gitlab.com
    """


@tenants.command("add")
@click.argument("tenant_id")
@click.option("--name", required=True, help="The customer's name as it may appear in messages.")
@click.option("--url", default="", help="The tenant's public GitLab URL.")
@click.option(
    "--pubsec",
    is_flag=True,
    help="US Dedicated for Government (FedRAMP): no customer data in alerts.",
)
@click.option("--geo", is_flag=True, help="Geo-enabled (has a secondary region).")
@click.option(
    "--contact", "contacts", multiple=True, help="Operational e-mail address (repeatable)."
)
@click.option("--csm", default=None, help="Customer Success Manager's e-mail.")
@click.option("--ase", default=None, help="Assigned Support Engineer's e-mail.")
@click.option(
    "--alias", "aliases", multiple=True, help="Another name the customer goes by (repeatable)."
)
@click.option(
    "--update", is_flag=True, help="Replace the stored tenant of this id with exactly these values."
)
def tenants_add(
    tenant_id: str,
    name: str,
    url: str,
    pubsec: bool,
    geo: bool,
    contacts: tuple[str, ...],
    csm: str | None,
    ase: str | None,
    aliases: tuple[str, ...],
    update: bool,
) -> None:
    """Add a tenant; --update replaces an existing one (without it, an existing id is refused).

    The URL must be http:// or https:// with a host; e-mail addresses look like
    ops@acme.example; each value is at most 64 KiB.

    \b
    Example:
      comms tenants add acme --name "Acme Corp" --contact ops@acme.example
      comms tenants add acme --name "Acme Corp" --url https://acme.gitlab-dedicated.com --update
    """
    from comms.models import Contact, Tenant
    from comms.tenants import add_tenant

    try:
        people = [Contact(email=c) for c in contacts]
        people += [Contact(email=e, role=r) for e, r in ((csm, "csm"), (ase, "ase")) if e]
        tenant = Tenant(
            id=tenant_id,
            name=name,
            url=url,
            pubsec=pubsec,
            geo=geo,
            contacts=people,
            aliases=list(aliases),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    replaced = add_tenant(common.store(), tenant, update=update)
    click.echo(f"tenant {tenant.id} ({tenant.name}) {'updated' if replaced else 'saved'}")


@tenants.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def tenants_import(path: Path) -> None:
    """Import tenants from a JSON or TOML file (a list, or a table with a 'tenants' list).

    \b
    Example:
      comms tenants import tenants.json
    """
    from pydantic import ValidationError

    from comms.models import Tenant, validate

    data = _read_data(path)
    items = data.get("tenants", data.get("data")) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise UsageError(f"{path}: expected a list of tenants (or a 'tenants' list)")
    store = common.store()
    loaded = []
    for number, item in enumerate(items, 1):
        try:
            loaded.append(validate(Tenant, item))
        except ValidationError as exc:
            raise UsageError(
                f"{path}: tenant {number}: {_validation(exc)}; nothing was imported"
            ) from exc
    for tenant in loaded:
        store.put_tenant(tenant)
    click.echo(f"imported {len(loaded)} tenant(s) from {path}")


@tenants.command("sync")
@FORMAT_OPTION
def tenants_sync(fmt: str) -> None:
    """Copy the tenant directory from Switchboard into the local store.

    Names and aliases feed the linter's other-tenant rule; contacts feed Zendesk CCs.
    Uses [switchboard] base_url and COMMS_SWITCHBOARD_TOKEN.

    \b
    Example:
      COMMS_SWITCHBOARD_TOKEN=… comms tenants sync
    """
    from comms import service

    runtime = common.runtime()
    found = service.sync_tenants(runtime.store, runtime.tenant_directory("switchboard"))
    if fmt == "json":
        emit_json([dump(t) for t in found])
        return
    click.echo(f"synced {len(found)} tenant(s) from Switchboard: {', '.join(t.id for t in found)}")


@tenants.command("list")
@FORMAT_OPTION
def tenants_list(fmt: str) -> None:
    """List tenants.

    \b
    Example:
      comms tenants list --format json
    """
    found = common.store().list_tenants()
    if fmt == "json":
        emit_json([dump(t) for t in found])
        return
    if not found:
        click.echo("no tenants yet; add one with: comms tenants add ID --name NAME")
    for t in found:
        flags = " ".join(f for f, on in (("pubsec", t.pubsec), ("geo", t.geo)) if on)
        click.echo(f"{t.id:<16} {t.name:<28} {t.url} {flags}".rstrip())


# -- incidents ----------------------------------------------------------------------------


@click.group()
def incident() -> None:
    """Open, list, show and update incident records.

    \b
    Example:
      comms incident open --tenant acme --severity S1 --title "Sign-in failures"
      comms incident set INC-1 --status monitoring --confirmed-by "Sam (IMOC)"
    """


@incident.command("open")
@click.option(
    "--tenant", "tenant_ids", multiple=True, required=True, help="Affected tenant id (repeatable)."
)
@click.option(
    "--severity", type=SEVERITY, required=True, callback=_severity, help="S1 (most severe) to S4."
)
@click.option("--title", required=True, help="Short description of the customer impact.")
@click.option(
    "--started",
    default=None,
    help="When customers were first affected (default: now), e.g. 14:05 or 2026-11-27T14:05Z.",
)
@click.option(
    "--security",
    is_flag=True,
    help="A security incident: customer messages also need SIRT approval.",
)
@click.option(
    "--ref", default=None, help="Use this reference (e.g. the incident.io id) instead of INC-n."
)
@FORMAT_OPTION
def incident_open(
    tenant_ids: tuple[str, ...],
    severity: Any,
    title: str,
    started: str | None,
    security: bool,
    ref: str | None,
    fmt: str,
) -> None:
    """Open an incident record for one or more tenants.

    \b
    Example:
      comms incident open --tenant acme --severity S1 --title "Sign-in failures" --started 14:05
    """
    from comms import service

    moment = common.now()
    started_at = None
    if started:
        from comms.times import parse_past_time

        try:
            started_at = parse_past_time(started, moment)
        except ValueError as exc:
            from comms.lint.secrets import masked

            raise click.BadParameter(masked(str(exc)), param_hint="--started") from exc
    found = service.open_incident(
        common.store(),
        title=title,
        severity=severity,
        tenants=list(tenant_ids),
        now=moment,
        actor=common.runtime().actor,
        started_at=started_at,
        security=security,
        ref=ref,
    )
    if fmt == "json":
        emit_json(dump(found))
        return
    click.echo(
        f"opened {found.ref}: {found.severity.value} {found.title} ({', '.join(found.tenants)})"
    )
    click.echo(f'next: comms draft investigation-start --incident {found.ref} --set impact="…"')


@incident.command("list")
@click.option("--resolved", is_flag=True, help="Include resolved incidents.")
@click.option(
    "--all", "show_all", is_flag=True, help="Every incident, resolved ones too, without paging."
)
@common.page_options("incidents")
@FORMAT_OPTION
def incident_list(resolved: bool, show_all: bool, limit: int, offset: int, fmt: str) -> None:
    """List open incidents, newest first, a page at a time (--limit, --offset).

    \b
    Example:
      comms incident list --resolved --limit 20
      comms incident list --all --format json
    """
    size = None if show_all else limit
    found = common.store().list_incidents(
        open_only=not (resolved or show_all), limit=size, offset=offset
    )
    if fmt == "json":
        emit_json([dump(i) for i in found])
    else:
        _echo_incidents(found, "no incidents" if resolved or show_all else "no open incidents")
    common.page_notes(found, "incidents", limit=size, offset=offset)


def _echo_incidents(found: Sequence[Incident], empty: str) -> None:
    from comms.times import format_time

    if not found:
        click.echo(empty)
    for i in found:
        click.echo(
            f"{i.ref:<10} {i.severity.value} {i.status.value:<13} {format_time(i.started_at)}  {i.title}  [{', '.join(i.tenants) or 'no tenants yet'}]"
        )


@incident.command("show")
@click.argument("ref")
@FORMAT_OPTION
def incident_show(ref: str, fmt: str) -> None:
    """Show one incident with its drafts.

    \b
    Example:
      comms incident show INC-1
    """
    store = common.store()
    found = store.get_incident(ref)
    drafts = store.list_drafts(incident_ref=ref)
    common.page_notes(drafts, "drafts", limit=None, offset=0)
    if fmt == "json":
        emit_json({**dump(found), "drafts": [_draft_summary(d) for d in drafts]})
        return
    from comms.times import format_time

    click.echo(f"{found.ref}: {found.title}")
    tenants = ", ".join(found.tenants) or f"none yet (comms incident set {ref} --add-tenant ID)"
    click.echo(
        f"  severity {found.severity.value}, status {found.status.value}, tenants {tenants}"
        + (", pubsec" if found.pubsec else "")
        + (", security" if found.security else "")
    )
    click.echo(f"  started {format_time(found.started_at)}")
    if found.mitigated_at:
        click.echo(
            f"  mitigated {format_time(found.mitigated_at)} (confirmed by {found.mitigated_by})"
        )
    if found.resolved_at:
        click.echo(
            f"  resolved {format_time(found.resolved_at)} (confirmed by {found.resolved_by})"
        )
    for d in drafts:
        click.echo(
            f"  draft {d.id}: {d.kind.value} r{d.revision.number} {d.state.value} — {d.revision.subject}"
        )


@incident.command("engage")
@click.argument("ref")
def incident_engage(ref: str) -> None:
    """Record that the GDCMOC is engaged now (opening an incident in comms records it too).

    \b
    Example:
      comms incident engage INC-1
    """
    from comms import service

    runtime = common.runtime()
    service.engage(runtime.store, ref, now=runtime.now(), actor=runtime.actor)
    click.echo(f"{ref}: GDCMOC engaged ({runtime.actor})")


@incident.command("escalate")
@click.argument("ref")
@click.option(
    "--director",
    is_flag=True,
    help="The Dedicated Director was engaged (S1 over 1 hour without mitigation, heavy "
    "coordination, or a customer escalation).",
)
def incident_escalate(ref: str, director: bool) -> None:
    """Record an escalation now; --director stops the Director clock.

    Recorded once: a second run says when it was recorded and by whom.

    \b
    Example:
      comms incident escalate INC-1 --director
    """
    from comms import watch
    from comms.times import format_time

    if not director:
        raise UsageError("say who was engaged: --director (the escalation comms tracks)")
    runtime = common.runtime()
    done = watch.escalate_director(runtime.store, ref, now=runtime.now(), actor=runtime.actor)
    if done.recorded:
        click.echo(
            f"{ref}: Dedicated Director engaged at {format_time(done.at)} ({done.by}); "
            "the Director clock is stopped."
        )
    else:
        click.echo(
            f"{ref}: Dedicated Director already engaged at {format_time(done.at)} ({done.by})."
        )


@incident.command("set")
@click.argument("ref")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Move to this status.")
@click.option(
    "--confirmed-by",
    default=None,
    help="Who confirmed mitigation or resolution (needed for monitoring and resolved).",
)
@click.option("--reason", default=None, help="Why, when moving back to an earlier status.")
@click.option(
    "--severity", type=SEVERITY, default=None, callback=_severity, help="Change the severity."
)
@click.option("--title", default=None, help="Change the title.")
@click.option(
    "--add-tenant", "add_tenants", multiple=True, help="Another affected tenant (repeatable)."
)
@click.option(
    "--security/--no-security", default=None, help="Mark as a security incident (SIRT approval)."
)
@click.option(
    "--rca-internal-done", is_flag=True, help="The internal RCA is published (stops its clock)."
)
@click.option(
    "--rca-external-done",
    is_flag=True,
    help="The external RCA was shared with the customer (stops its clock).",
)
@FORMAT_OPTION
def incident_set(
    ref: str,
    status: str | None,
    confirmed_by: str | None,
    reason: str | None,
    severity: Any,
    title: str | None,
    add_tenants: tuple[str, ...],
    security: bool | None,
    rca_internal_done: bool,
    rca_external_done: bool,
    fmt: str,
) -> None:
    """Change an incident's status, severity, title, tenants, security flag or RCA state.

    Status moves forward investigating → identified → mitigating → monitoring → resolved;
    moving back needs --reason; monitoring and resolved need --confirmed-by.

    \b
    Example:
      comms incident set INC-1 --status resolved --confirmed-by "Sam (IMOC)"
    """
    from comms import service

    runtime = common.runtime()
    result = service.set_incident(
        runtime.store,
        ref,
        now=runtime.now(),
        actor=runtime.actor,
        status=Status(status) if status else None,
        confirmed_by=confirmed_by,
        reason=reason,
        severity=severity,
        title=title,
        add_tenants=add_tenants,
        security=security,
        rca_done=[
            n for n, on in (("internal", rca_internal_done), ("external", rca_external_done)) if on
        ],
    )
    if fmt == "json":
        emit_json(dump(result))
        return
    click.echo(f"{result.ref}: {result.severity.value} {result.status.value} — {result.title}")
    if status == "resolved":
        click.echo(f'next: comms draft resolved --incident {result.ref} --set resolution="…"')


# `comms incident import|sync`: incidents from incident.io.  The module imports click and
# common only; httpx and the adapter load when one of them runs.
from comms.commands.incidentio import import_incident, sync  # noqa: E402

incident.add_command(import_incident)
incident.add_command(sync)


# -- templates ----------------------------------------------------------------------------


@click.group()
def templates() -> None:
    """List and show the message templates (built-in and your team's overrides).

    Overrides: put NAME.txt.j2 in the folder named by COMMS_TEMPLATES_DIR or
    templates_dir in comms.toml; it wins over the built-in, which stays available
    as "default:NAME.txt.j2" for {% extends %}.

    \b
    Example:
      comms templates list
      comms templates show update
    """


@templates.command("list")
@FORMAT_OPTION
def templates_list(fmt: str) -> None:
    """List templates with their required variables.

    \b
    Example:
      comms templates list --format json
    """
    renderer = common.renderer()
    specs = [renderer.spec(name) for name in renderer.names()]
    if fmt == "json":
        emit_json([_spec_json(s) for s in specs])
        return
    for s in specs:
        required = ", ".join(v.name for v in s.variables if v.required and not v.default)
        origin = "" if s.source == "built-in" else f"  (override: {s.source})"
        click.echo(f"{s.name:<24} {s.title:<34} needs: {required or '-'}{origin}")


@templates.command("show")
@click.argument("name")
@click.option("--source", is_flag=True, help="Print the template file itself.")
@FORMAT_OPTION
def templates_show(name: str, source: bool, fmt: str) -> None:
    """Show a template's variables (or its source with --source).

    \b
    Example:
      comms templates show resolved
    """
    renderer = common.renderer()
    spec = renderer.spec(name)
    if source:
        click.echo(renderer.source(name), nl=False)
        return
    if fmt == "json":
        emit_json(_spec_json(spec))
        return
    click.echo(f"{spec.name}: {spec.title} ({spec.source})")
    if spec.description:
        click.echo(f"  {spec.description}")
    for v in spec.variables:
        need = "required" if v.required and not v.default else "optional"
        default = f", default: {v.default}" if v.default else ""
        click.echo(f"  {v.name:<20} {v.type:<5} {need}{default}  {v.help}")


def _spec_json(spec: Any) -> dict[str, Any]:
    return {
        "name": spec.name,
        "title": spec.title,
        "source": spec.source,
        "description": spec.description,
        "variables": [
            {
                "name": v.name,
                "type": v.type,
                "required": v.required and not v.default,
                "default": v.default,
                "help": v.help,
            }
            for v in spec.variables
        ],
    }


# -- drafts -------------------------------------------------------------------------------


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--incident", "ref", required=True, help="The incident reference, e.g. INC-1.")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="A template variable (repeatable).",
)
@click.option(
    "--vars",
    "vars_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A TOML or JSON file of variables.",
)
@click.option(
    "--edit",
    is_flag=True,
    help="Open the rendered text in $EDITOR and keep your edits as a new revision.",
)
@click.option(
    "--holding",
    is_flag=True,
    help="(update only) Impact unchanged, work continues, next update time: from the last sent update.",
)
@FORMAT_OPTION
def draft(
    kind: str,
    ref: str,
    assignments: tuple[str, ...],
    vars_file: Path | None,
    edit: bool,
    holding: bool,
    fmt: str,
) -> None:
    """Draft a customer message of KIND for an incident, and store it as a revision.

    A new draft starts from the values of the last message sent (or drafted) for the
    incident, so the next update only needs what changed. Drafting the same KIND again
    adds a revision to the open draft. Missing required values are asked for on a
    terminal and listed (exit 2) otherwise. Times are UTC: 14:30, +60m or
    2026-11-27T14:30Z.

    With --holding (update only), the draft repeats the last sent update's impact, says
    work continues and when the next update comes: the cadence holds when there is
    nothing new to say.

    \b
    Example:
      comms draft update --incident INC-1 --set impact="Users cannot sign in" \\
          --set actions="We are restoring the sign-in service"
      comms draft update --incident INC-1 --holding
    """
    from comms import service

    values: dict[str, str] = _read_vars(vars_file) if vars_file else {}
    values.update(_assignments(assignments))
    runtime = common.runtime()
    check = service.make_checker(runtime.lint_config(), runtime.store.list_tenants())
    composed = _compose(runtime, ref, MessageKind(kind), values, holding, check)
    result = composed.draft
    if edit:
        edited = _edit(service.message_text(result), result)
        if edited is not None:
            result = (
                service.edit(
                    runtime.store,
                    result.id,
                    edited,
                    now=runtime.now(),
                    author=runtime.actor,
                    check=check,
                )
                or result
            )
    if fmt == "json":
        emit_json({**_draft_json(result), "carried_over": sorted(composed.carried)})
        return
    carried = ", ".join(sorted(composed.carried))
    click.echo(
        f"draft {result.id} for {ref}: {kind}, revision {result.revision.number}"
        + (f" (values carried over: {carried})" if carried else "")
    )
    click.echo("")
    click.echo(service.message_text(result), nl=False)
    _echo_findings(result.revision.findings)
    if not runtime.store.get_incident(ref).tenants:  # imported from incident.io without any
        click.echo(
            f"note: {ref} has no tenants yet; add them before review: "
            f"comms incident set {ref} --add-tenant ID",
            err=True,
        )


def _draft_json(d: Draft) -> dict[str, Any]:
    return {
        **_draft_summary(d),
        "subject": d.revision.subject,
        "body": d.revision.body,
        "variables": d.revision.variables,
        "findings": d.revision.findings,
    }


def _compose(
    runtime: Runtime,
    ref: str,
    kind: MessageKind,
    values: dict[str, str],
    holding: bool,
    check: Checker,
) -> Composed:
    """``service.compose``, asking on a terminal for each missing required value."""
    from comms import service

    store, renderer, moment = runtime.store, runtime.renderer(), runtime.now()
    incident = store.get_incident(ref)
    if holding:
        held = service.holding_values(
            store, incident, kind, policy=runtime.cadence_policy(), now=moment
        )
        values = {**held, **values}
    while True:
        try:
            return service.compose(
                store,
                renderer,
                ref=ref,
                kind=kind,
                values=values,
                now=moment,
                author=runtime.actor,
                interval_minutes=runtime.settings.interval_for(incident.severity.value),
                check=check,
            )
        except MissingVariablesError as exc:
            if not (sys.stdin.isatty() and sys.stdout.isatty()):
                raise
            spec = renderer.spec(kind.value)
            for name in exc.missing:
                var = spec.variable(name)
                values[name] = click.prompt(f"{name} ({var.help})" if var and var.help else name)


def _echo_findings(findings: list[dict[str, Any]]) -> None:
    if not findings:
        return
    click.echo("")
    click.echo(f"{len(findings)} lint finding(s):", err=True)
    for f in findings:
        click.echo(
            f"  {f.get('line')}:{f.get('column')}: {f.get('level')} {f.get('rule')} {f.get('message')}",
            err=True,
        )


@click.group()
def drafts() -> None:
    """List, show and diff drafts and their revisions.

    \b
    Example:
      comms drafts list --incident INC-1
      comms drafts diff 3            # latest revision against the one before
    """


@drafts.command("list")
@click.option("--incident", "ref", default=None, help="Only this incident's drafts.")
@click.option(
    "--state",
    type=click.Choice(STATES),
    default=None,
)
@click.option("--all", "show_all", is_flag=True, help="Every draft, without paging.")
@common.page_options("drafts")
@FORMAT_OPTION
def drafts_list(
    ref: str | None, state: str | None, show_all: bool, limit: int, offset: int, fmt: str
) -> None:
    """List drafts, newest first, a page at a time (--limit, --offset).

    \b
    Example:
      comms drafts list --incident INC-1 --format json
      comms drafts list --state in-review --all
    """
    size = None if show_all else limit
    found = common.store().list_drafts(
        incident_ref=ref,
        state=DraftState(state) if state else None,
        newest_first=True,
        limit=size,
        offset=offset,
    )
    if fmt == "json":
        emit_json([_draft_summary(d) for d in found])
    else:
        _echo_drafts(found)
    common.page_notes(found, "drafts", limit=size, offset=offset)


def _echo_drafts(found: Sequence[Draft]) -> None:
    if not found:
        click.echo("no drafts")
    for d in found:
        click.echo(
            f"{d.id:>4} {d.incident_ref:<10} {d.kind.value:<24} r{d.revision.number:<3} {d.state.value:<18} {d.revision.subject}"
        )


@drafts.command("show")
@click.argument("draft_id", type=common.RECORD_ID)
@click.option(
    "--revision",
    type=common.RECORD_ID,
    default=None,
    help="Show this revision instead of the latest.",
)
@FORMAT_OPTION
def drafts_show(draft_id: int, revision: int | None, fmt: str) -> None:
    """Show a draft's text exactly as the customer will see it.

    \b
    Example:
      comms drafts show 3 --revision 1
    """
    from comms import service

    store = common.store()
    found = store.get_draft(draft_id)
    rev = service.revision(store, draft_id, revision) if revision else found.revision
    if fmt == "json":
        emit_json(
            {
                **_draft_summary(found),
                "revision": rev.number,
                "subject": rev.subject,
                "body": rev.body,
                "variables": rev.variables,
                "author": rev.author,
                "created_at": rev.created_at.isoformat(),
                "edited": rev.edited,
                "findings": rev.findings,
                "revisions": len(store.revisions(draft_id)),
            }
        )
        return
    from comms.times import format_time

    click.echo(
        f"draft {found.id} for {found.incident_ref}: {found.kind.value}, {found.state.value}, "
        f"revision {rev.number} by {rev.author} at {format_time(rev.created_at)}"
        + (" (edited by hand)" if rev.edited else "")
    )
    click.echo("")
    click.echo(rev.text, nl=False)
    _echo_findings(rev.findings)


@drafts.command("redact")
@click.argument("draft_id", type=common.RECORD_ID)
@click.option("--revision", type=common.RECORD_ID, required=True, help="The revision to redact.")
@click.option("--reason", required=True, help="Why; recorded with who redacted it.")
def drafts_redact(draft_id: int, revision: int, reason: str) -> None:
    """Replace every secret in a stored revision with [redacted secret], in place.

    \b
    Example:
      comms drafts redact 3 --revision 1 --reason 'token pasted into impact'
    """
    from comms import service

    runtime = common.runtime()
    done = service.redact(
        runtime.store, draft_id, revision, reason=reason, now=common.now(), actor=runtime.actor
    )
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(done.kinds.items()))
    click.echo(f"draft {draft_id} revision {revision}: redacted {counts}; rotate them")


@drafts.command("diff")
@click.argument("draft_id", type=common.RECORD_ID)
@click.argument("old", type=common.RECORD_ID, required=False)
@click.argument("new", type=common.RECORD_ID, required=False)
def drafts_diff(draft_id: int, old: int | None, new: int | None) -> None:
    """Unified diff between two revisions (default: the latest against the one before).

    \b
    Example:
      comms drafts diff 3 1 2
    """
    import difflib

    from comms import service

    store = common.store()
    new_rev = service.revision(store, draft_id, new)
    old_rev = (
        service.revision(store, draft_id, old)
        if old
        else service.revision(store, draft_id, new_rev.number - 1)
        if new_rev.number > 1
        else None
    )
    if old_rev is None:
        click.echo(f"draft {draft_id} has one revision; nothing to compare")
        return
    a = old_rev.text.splitlines(keepends=True)
    b = new_rev.text.splitlines(keepends=True)
    diff = list(
        difflib.unified_diff(a, b, f"revision {old_rev.number}", f"revision {new_rev.number}")
    )
    click.echo("".join(diff) if diff else "no differences", nl=not diff)


def _draft_summary(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "incident": d.incident_ref,
        "kind": d.kind.value,
        "state": d.state.value,
        "revision": d.revision.number,
        "subject": d.revision.subject,
        "updated_at": d.updated_at.isoformat(),
    }


# -- timeline -----------------------------------------------------------------------------


@click.command()
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)
def timeline(ref: str, fmt: str) -> None:
    """Print an incident's event log in order, for the RCA.

    Ends with the cadence report: each update to each tenant against the deadline that
    applied ("S1 updates on time: 7 of 8, worst 14 minutes late") and the other clocks
    (GDCMOC engaged, Director escalation, RCAs).

    \b
    Example:
      comms timeline INC-1 > INC-1-timeline.md
    """
    from comms import service

    runtime = common.runtime()
    found = service.timeline(runtime.store, ref, policy=runtime.cadence_policy(), now=runtime.now())
    if fmt == "json":
        emit_json(found.to_dict())
        return
    click.echo(found.markdown(), nl=False)


# -- input helpers ------------------------------------------------------------------------


def _assignments(items: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            from comms.lint.secrets import shown

            raise click.BadParameter(f"'{shown(item)}' is not NAME=VALUE", param_hint="--set")
        values[name.strip()] = value
    return values


def _read_data(path: Path) -> Any:
    from comms.limits import read_capped

    try:
        with path.open("rb") as stream:  # capped: /dev/zero or a huge file stops at 1 MiB
            text = read_capped(stream, str(path)).decode("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: {exc}") from exc


def _edit(text: str, draft: Draft) -> str | None:
    """``click.edit``; an editor that cannot start or exits non-zero is one exit-3 line
    (click would exit 1, which the README keeps for findings)."""
    from comms.errors import CommsError

    try:
        return click.edit(text, extension=".txt", require_save=True)
    except click.ClickException as exc:
        raise CommsError(
            f"the editor failed ({exc.message}); draft {draft.id} revision "
            f"{draft.revision.number} is stored as rendered; set EDITOR (or VISUAL) to an "
            "editor that works, or drop --edit"
        ) from None


def _read_vars(path: Path) -> dict[str, str]:
    data = _read_data(path)
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a table of NAME = VALUE")
    values = {}
    for name, value in data.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            raise UsageError(f"{path}: '{name}' must be text, a time or a list, not a table")
        values[str(name)] = str(value) if not isinstance(value, str) else value
    return values


def _validation(exc: Any) -> str:
    def line(error: Any) -> str:
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message

    return "; ".join(line(e) for e in exc.errors())
