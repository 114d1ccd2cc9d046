"""Commands for review (``comms review …``) and delivery (``comms send``)."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import click

from comms.commands import common
from comms.commands.common import FORMAT_OPTION, emit_json
from comms.errors import EXIT_FINDINGS, CommsError, ConfigError, UsageError

CHANNELS = ("switchboard", "zendesk")


class GateError(CommsError):
    """The send gate refused: not approved, error-level findings, another tenant named, empty."""

    exit_code = EXIT_FINDINGS


def _policy() -> Any:
    from comms.review import ReviewPolicy

    return ReviewPolicy.from_table(common.settings().table("review"))


def _send_table() -> dict[str, Any]:
    return common.settings().table("send")


def _default_channels() -> list[str]:
    channels = _send_table().get("channels", ["switchboard"])
    if not isinstance(channels, list) or not channels or not set(channels) <= set(CHANNELS):
        raise ConfigError("[send]: channels must be a list drawn from 'switchboard', 'zendesk'")
    return list(channels)


def _audience(incident: Any, tenant_ids: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(tenant_ids)) or list(incident.tenants)
    strangers = [t for t in chosen if t not in incident.tenants]
    if strangers:
        raise UsageError(
            f"tenant '{strangers[0]}' is not affected by {incident.ref}; add it first: "
            f"comms incident set {incident.ref} --add-tenant {strangers[0]}"
        )
    return chosen


def _lint(text: str, draft: Any, incident: Any, forbidden: Sequence[str]) -> list[dict[str, Any]]:
    from comms.lint import blocking, lint

    findings = lint(
        text,
        config=common.lint_config(),
        kind=draft.kind.value,
        audience=None,
        tenants=list(forbidden),
        severity=incident.severity.value,
        status=incident.status.value,
    )
    return [f.to_dict() for f in blocking(findings)]


def _submitted_at(store: Any, draft: Any) -> Any:
    for event in reversed(store.events(draft.incident_ref)):
        if (
            event.type == "review.submitted"
            and event.data.get("draft_id") == draft.id
            and event.data.get("revision") == draft.revision.number
        ):
            return event.at
    return None


def evaluate(
    store: Any,
    draft_id: int,
    tenant_ids: Sequence[str],
    channels: Sequence[str],
    override: str | None,
) -> tuple[Any, Any, list[str], list[str], Any]:
    """Run the send gate for a draft; returns (draft, incident, tenants, problems, review status)."""
    from comms import review

    draft = store.get_draft(draft_id)
    incident = store.get_incident(draft.incident_ref)
    audience = _audience(incident, tenant_ids)
    known = store.list_tenants()
    by_id = {t.id: t for t in known}
    missing = [t for t in audience if t not in by_id]
    if missing:
        raise UsageError(
            f"tenant '{missing[0]}' is unknown here; run comms tenants sync or comms tenants add"
        )
    forbidden = review.forbidden_names([by_id[t] for t in audience], known)
    policy = _policy()
    reviews = store.reviews(draft.id)
    status = None
    if (
        incident.severity.value in policy.required_for
        or (incident.security and policy.sirt_for_security)
        or reviews
    ):
        status = review.review_status(
            draft,
            incident,
            reviews,
            tenants=audience,
            channels=channels,
            policy=policy,
            now=common.now(),
            submitted_at=_submitted_at(store, draft),
        )
    text = f"Subject: {draft.revision.subject}\n\n{draft.revision.body}"
    problems = review.send_problems(
        draft,
        status=status,
        blocking_findings=_lint(text, draft, incident, forbidden),
        other_tenants_named=review.named_tenants(text, forbidden),
        override_reason=override,
    )
    if (
        status is not None
        and not status.ok
        and review.stale_approval(draft, reviews, audience, channels)
    ):
        problems.append(
            "the approval was given for other recipients or channels; ask for a new review"
        )
    return draft, incident, audience, problems, status


# -- review -------------------------------------------------------------------------------


@click.group()
def review() -> None:
    """Review drafts before they are sent (the incident manager's side).

    The reviewer's name comes from COMMS_REVIEWER or reviewer in comms.toml. An approval
    is bound to the exact text, recipients and channels: any edit voids it.

    \b
    Example:
      comms review list
      comms review show 3
      comms review approve 3
      comms review request-changes 3 --note "Say which features are affected"
    """


@review.command("list")
@click.option("--incident", "ref", default=None, help="Only this incident's drafts.")
@FORMAT_OPTION
def review_list(ref: str | None, fmt: str) -> None:
    """List drafts waiting for review (not yet approved or sent).

    \b
    Example:
      comms review list --format json
    """
    from comms.models import DraftState

    store = common.store()
    waiting = [
        d
        for d in store.list_drafts(incident_ref=ref)
        if d.state in (DraftState.DRAFT, DraftState.IN_REVIEW, DraftState.CHANGES_REQUESTED)
    ]
    rows = []
    for d in waiting:
        errors = sum(1 for f in d.revision.findings if f.get("level") == "error")
        rows.append(
            {
                "id": d.id,
                "incident": d.incident_ref,
                "kind": d.kind.value,
                "state": d.state.value,
                "revision": d.revision.number,
                "author": d.revision.author,
                "findings": len(d.revision.findings),
                "errors": errors,
                "subject": d.revision.subject,
            }
        )
    if fmt == "json":
        emit_json(rows)
        return
    if not rows:
        click.echo("nothing waiting for review")
    for r in rows:
        click.echo(
            f"{r['id']:>4} {r['incident']:<10} {r['kind']:<24} r{r['revision']:<3} {r['state']:<18} "
            f"{r['findings']} finding(s), {r['errors']} error(s)  {r['subject']}"
        )


def _last_sent_text(store: Any, ref: str, exclude: int) -> tuple[str, str] | None:
    from comms.models import DraftState

    sent = [
        d for d in store.list_drafts(incident_ref=ref, state=DraftState.SENT) if d.id != exclude
    ]
    if not sent:
        return None
    last = max(sent, key=lambda d: d.updated_at)
    return (
        f"draft {last.id} r{last.revision.number}",
        f"Subject: {last.revision.subject}\n\n{last.revision.body}",
    )


def _marked(text: str, findings: Sequence[dict[str, Any]]) -> str:
    """The text with a caret line under each finding's span and its reason."""
    by_line: dict[int, list[dict[str, Any]]] = {}
    for f in findings:
        by_line.setdefault(int(f.get("line", 0)), []).append(f)
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        out.append(f"  {line}")
        for f in by_line.get(number, []):
            col = max(1, int(f.get("column", 1)))
            width = max(1, min(len(line) - col + 1, int(f.get("end", 0)) - int(f.get("start", 0))))
            out.append(
                f"  {' ' * (col - 1)}{'^' * width} {f.get('level')} {f.get('rule')}: {f.get('message')}"
            )
    return "\n".join(out)


@review.command("show")
@click.argument("draft_id", type=int)
@click.option(
    "--via",
    "channels",
    multiple=True,
    type=click.Choice(CHANNELS),
    help="Channels it would go to (default from config).",
)
@click.option(
    "--tenant",
    "tenant_ids",
    multiple=True,
    help="Recipients (default: every tenant of the incident).",
)
@FORMAT_OPTION
def review_show(
    draft_id: int, channels: tuple[str, ...], tenant_ids: tuple[str, ...], fmt: str
) -> None:
    """Show a draft with its findings marked, the diff to the last update sent, and what the send gate says.

    \b
    Example:
      comms review show 3
    """
    store = common.store()
    chosen = list(channels) or _default_channels()
    draft, incident, audience, problems, status = evaluate(
        store, draft_id, tenant_ids, chosen, None
    )
    text = f"Subject: {draft.revision.subject}\n\n{draft.revision.body}"
    findings = draft.revision.findings
    last = _last_sent_text(store, incident.ref, draft.id)
    diff = (
        "".join(
            difflib.unified_diff(
                last[1].splitlines(True),
                text.splitlines(True),
                f"last sent ({last[0]})",
                f"draft {draft.id} r{draft.revision.number}",
            )
        )
        if last
        else ""
    )
    if fmt == "json":
        emit_json(
            {
                "draft": draft.id,
                "revision": draft.revision.number,
                "state": draft.state.value,
                "incident": incident.ref,
                "severity": incident.severity.value,
                "tenants": audience,
                "channels": chosen,
                "text": text,
                "findings": findings,
                "diff_to_last_sent": diff,
                "approved_by": status.approved_by if status else {},
                "needs": status.missing if status else [],
                "send_problems": problems,
            }
        )
        return
    click.echo(
        f"draft {draft.id} r{draft.revision.number} for {incident.ref} ({incident.severity.value}), "
        f"{draft.kind.value}, {draft.state.value}, by {draft.revision.author}"
    )
    click.echo(f"to: {', '.join(audience)} via {', '.join(chosen)}")
    click.echo("")
    click.echo(_marked(text, findings))
    click.echo("")
    click.echo(diff.rstrip("\n") if diff else "no earlier update was sent for this incident")
    click.echo("")
    if status is not None and status.approved_by:
        click.echo(
            "approved by: "
            + ", ".join(f"{who} ({role})" for role, who in status.approved_by.items())
        )
    click.echo("ready to send" if not problems else "not ready: " + "; ".join(problems))


@review.command("submit")
@click.argument("draft_id", type=int)
def review_submit(draft_id: int) -> None:
    """Ask for review of a draft's latest revision (starts the S1 review timeout, if configured).

    \b
    Example:
      comms review submit 3
    """
    from comms.models import DraftState

    store = common.store()
    draft = store.get_draft(draft_id)
    if draft.state is DraftState.SENT:
        raise UsageError(f"draft {draft_id} was already sent")
    store.set_draft_state(
        draft_id,
        DraftState.IN_REVIEW,
        now=common.now(),
        actor=common.settings().author,
        event="review.submitted",
        data={"revision": draft.revision.number},
    )
    click.echo(
        f"draft {draft_id} r{draft.revision.number} is waiting for review: comms review show {draft_id}"
    )


def _decide(
    draft_id: int,
    decision: str,
    role: str,
    note: str,
    channels: Sequence[str],
    tenant_ids: Sequence[str],
) -> Any:
    from comms import review as policy
    from comms.models import DraftState, Review

    store = common.store()
    settings = common.settings()
    draft = store.get_draft(draft_id)
    if draft.state is DraftState.SENT:
        raise UsageError(f"draft {draft_id} was already sent; review the next draft instead")
    if settings.reviewer == draft.revision.author:
        raise UsageError(
            f"{settings.reviewer} wrote revision {draft.revision.number}; another person must review it "
            "(set COMMS_REVIEWER to the reviewer's name)"
        )
    incident = store.get_incident(draft.incident_ref)
    audience = _audience(incident, tenant_ids)
    chosen = list(channels) or _default_channels()
    digest = policy.approval_hash(draft.revision.subject, draft.revision.body, audience, chosen)
    state = DraftState.APPROVED if decision == "approved" else DraftState.CHANGES_REQUESTED
    saved = store.add_review(
        Review(
            draft_id=draft.id,
            revision=draft.revision.number,
            reviewer=settings.reviewer,
            role=role,
            decision=decision,
            approval_hash=digest,
            at=common.now(),
            note=note,
        ),
        incident_ref=incident.ref,
        state=state,
    )
    return draft, saved, audience, chosen


@review.command("approve")
@click.argument("draft_id", type=int)
@click.option(
    "--role",
    type=click.Choice(["imoc", "sirt"]),
    default="imoc",
    show_default=True,
    help="Approve as the incident manager or as SIRT (security incidents need both).",
)
@click.option(
    "--via",
    "channels",
    multiple=True,
    type=click.Choice(CHANNELS),
    help="Channels the approval covers (default from config).",
)
@click.option(
    "--tenant",
    "tenant_ids",
    multiple=True,
    help="Recipients the approval covers (default: every tenant of the incident).",
)
@click.option("--note", default="", help="Optional note for the record.")
def review_approve(
    draft_id: int, role: str, channels: tuple[str, ...], tenant_ids: tuple[str, ...], note: str
) -> None:
    """Approve a draft's latest revision for these recipients and channels.

    \b
    Example:
      COMMS_REVIEWER="Sam (IMOC)" comms review approve 3
    """
    draft, saved, audience, chosen = _decide(draft_id, "approved", role, note, channels, tenant_ids)
    errors = [f for f in draft.revision.findings if f.get("level") == "error"]
    click.echo(
        f"draft {draft.id} r{draft.revision.number} approved by {saved.reviewer} ({role}) "
        f"for {', '.join(audience)} via {', '.join(chosen)}"
    )
    if errors:
        click.echo(
            f"warning: {len(errors)} error-level finding(s) will still block sending", err=True
        )


@review.command("request-changes")
@click.argument("draft_id", type=int)
@click.option("--note", required=True, help="What to change, for the communications manager.")
@click.option("--role", type=click.Choice(["imoc", "sirt"]), default="imoc", show_default=True)
def review_request_changes(draft_id: int, note: str, role: str) -> None:
    """Send a draft back with a note; a new revision goes back to review.

    \b
    Example:
      comms review request-changes 3 --note "Name the affected features"
    """
    draft, saved, _, _ = _decide(draft_id, "changes-requested", role, note, (), ())
    click.echo(
        f"changes requested on draft {draft.id} r{draft.revision.number} by {saved.reviewer}: {note}"
    )


# -- send ---------------------------------------------------------------------------------


def _publishers(channels: Sequence[str], stack: ExitStack) -> dict[str, Any]:
    publishers: dict[str, Any] = {}
    settings = common.settings()
    if "switchboard" in channels:
        from comms.adapters.rest import SwitchboardConfig, publisher_from_config

        table = settings.table("switchboard")
        if not table and not os.environ.get("COMMS_SWITCHBOARD_URL"):
            raise ConfigError(
                "no [switchboard] base_url configured; add it to comms.toml "
                "(for a local stub: comms switchboard serve)"
            )
        if os.environ.get("COMMS_SWITCHBOARD_URL"):
            table = {**table, "base_url": os.environ["COMMS_SWITCHBOARD_URL"]}
        publisher, client = publisher_from_config(SwitchboardConfig.from_table(table))
        stack.callback(client.close)
        publishers["switchboard"] = publisher
    if "zendesk" in channels:
        from comms.adapters.zendesk import publisher_from_config as zendesk_publisher

        zendesk = zendesk_publisher(settings.table("zendesk"), environ=os.environ)
        stack.callback(zendesk.close)
        publishers["zendesk"] = zendesk
    return publishers


def _extra_args(store: Any, drafts: dict[int, Any]) -> Any:
    tickets: dict[tuple[str, str], int] = {}

    def extra(delivery: Any) -> dict[str, Any]:
        if delivery.channel == "switchboard":
            return {"kind": drafts[delivery.draft_id].kind.value}
        if delivery.channel == "zendesk":
            key = (delivery.incident_ref, delivery.tenant)
            if key not in tickets:
                for earlier in store.deliveries(
                    incident_ref=delivery.incident_ref, states=["delivered"]
                ):
                    if (
                        earlier.channel == "zendesk"
                        and earlier.tenant == delivery.tenant
                        and earlier.receipt
                    ):
                        ticket = earlier.receipt.detail.get("ticket_id")
                        if ticket:
                            tickets[key] = int(ticket)
                            break
            return {"ticket_id": tickets.get(key)}
        return {}

    return extra


def _concurrency(option: int | None) -> int:
    value = option or _send_table().get("concurrency", 8)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 64:
        raise ConfigError("[send]: concurrency must be a whole number from 1 to 64")
    return value


@click.command()
@click.argument("draft_id", type=int, required=False)
@click.option(
    "--via",
    "channels",
    multiple=True,
    type=click.Choice(CHANNELS),
    help="Channel (repeatable; default from [send] channels, else switchboard).",
)
@click.option(
    "--tenant",
    "tenant_ids",
    multiple=True,
    help="Recipient tenant (repeatable; default: every tenant of the incident).",
)
@click.option(
    "--skip-review",
    is_flag=True,
    help="Send without the required approval (needs --reason; recorded).",
)
@click.option("--reason", default=None, help="Why review is skipped; recorded in the event log.")
@click.option(
    "--resume", is_flag=True, help="Finish every delivery left pending by an interrupted send."
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=None,
    help="Deliveries in flight at once (default 8).",
)
@FORMAT_OPTION
def send(
    draft_id: int | None,
    channels: tuple[str, ...],
    tenant_ids: tuple[str, ...],
    skip_review: bool,
    reason: str | None,
    resume: bool,
    concurrency: int | None,
    fmt: str,
) -> None:
    """Send an approved draft to its tenants, exactly once per tenant and channel.

    The delivery intents are stored before any request; running the same command again,
    or `comms send --resume`, finishes what an interrupted send left and never posts twice.
    Refused (exit 1) unless approved (or --skip-review --reason), free of error-level
    findings, naming no other tenant, and not empty.

    \b
    Example:
      comms send 3 --via switchboard
      comms send 3 --via switchboard --via zendesk --tenant acme --tenant globex
      comms send --resume
    """
    from comms import delivery

    if skip_review and not (reason and reason.strip()):
        raise click.UsageError("--skip-review needs --reason '…' (it is recorded)")
    store = common.store()
    actor = common.settings().author
    if draft_id is None:
        if not resume:
            raise click.UsageError("name the draft to send (comms send DRAFT) or use --resume")
        planned = store.deliveries(states=["pending", "in-flight"])
        if not planned:
            click.echo("nothing to resume")
            return
    else:
        chosen = list(dict.fromkeys(channels)) or _default_channels()
        draft, incident, audience, problems, status = evaluate(
            store, draft_id, tenant_ids, chosen, reason if skip_review else None
        )
        intents = delivery.plan(draft, audience, chosen)
        stored = {d.idempotency_key for d in store.deliveries(draft_id=draft_id)}
        # Repeating or resuming the very same send needs no second pass through the gate (its
        # deliveries passed it when they were planned); any recipient or channel not yet
        # planned must pass it now, or an approval for acme would cover globex later.
        if problems and not {d.idempotency_key for d in intents} <= stored:
            raise GateError(f"draft {draft_id} cannot be sent: " + "; ".join(problems))
        moment = common.now()
        if skip_review and status is not None and not status.ok:
            store.append_event(
                incident.ref,
                type="review.skipped",
                actor=actor,
                now=moment,
                data={"draft_id": draft.id, "revision": draft.revision.number, "reason": reason},
            )
        elif status is not None and status.timed_out:
            store.append_event(
                incident.ref,
                type="review.timed-out",
                actor=actor,
                now=moment,
                data={
                    "draft_id": draft.id,
                    "revision": draft.revision.number,
                    "needs_review_afterwards": True,
                },
            )
        planned = store.plan_deliveries(intents, actor=actor, now=moment)
    drafts = {d: store.get_draft(d) for d in {p.draft_id for p in planned}}
    superseded = [
        p
        for p in planned
        if p.revision != drafts[p.draft_id].revision.number and p.state != "delivered"
    ]
    for p in superseded:
        store.finish_delivery(
            p.idempotency_key,
            receipt=None,
            final=True,
            actor=actor,
            now=common.now(),
            error=f"superseded by revision {drafts[p.draft_id].revision.number}; not sent",
        )
    planned = [p for p in planned if p not in superseded]
    incidents = {r: store.get_incident(r) for r in {p.incident_ref for p in planned}}
    tenants = {t.id: t for t in store.list_tenants()}
    with ExitStack() as stack:
        publishers = _publishers(sorted({p.channel for p in planned}), stack)
        show_bar = fmt == "text" and len(planned) > 1 and sys.stderr.isatty()
        bar = (
            stack.enter_context(
                click.progressbar(length=len(planned), label="sending", file=sys.stderr)
            )
            if show_bar
            else None
        )
        report = delivery.run(
            store,
            planned,
            publishers=publishers,
            tenants=tenants,
            incidents=incidents,
            drafts=drafts,
            actor=actor,
            clock=common.now,
            concurrency=_concurrency(concurrency),
            extra_args=_extra_args(store, drafts),
            on_done=(lambda _o: bar.update(1)) if bar else None,
        )
    _report(report, fmt)
    unfinished = report.count("failed") + report.count("retry-later") + report.count("busy")
    if unfinished:
        raise UnfinishedSendError(unfinished)


class UnfinishedSendError(CommsError):
    """Some deliveries failed or are held by another sender: exit 3, resume later."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"{count} delivery(ies) did not complete; see above, then run: comms send --resume"
        )


def _report(report: Any, fmt: str) -> None:
    rows = []
    for o in sorted(report.outcomes, key=lambda o: (o.delivery.channel, o.delivery.tenant)):
        d = o.delivery
        rows.append(
            {
                "draft": d.draft_id,
                "revision": d.revision,
                "tenant": d.tenant,
                "channel": d.channel,
                "status": o.status,
                "external_id": o.receipt.external_id if o.receipt else None,
                "text_sha256": o.receipt.text_sha256 if o.receipt else d.text_sha256,
                "idempotency_key": d.idempotency_key,
                "error": o.error,
                "delivered_at": o.receipt.delivered_at.isoformat() if o.receipt else None,
            }
        )
    if fmt == "json":
        emit_json({"deliveries": rows, "sent": report.completed})
        return
    for r in rows:
        extra = (
            f"{r['external_id']}  text {r['text_sha256'][:12]}"
            if r["external_id"]
            else (r["error"] or "")
        )
        click.echo(f"{r['channel']:<12} {r['tenant']:<16} {r['status']:<18} {extra}")
    delivered = sum(1 for r in rows if r["status"] in ("delivered", "already-delivered"))
    click.echo(
        f"{delivered} of {len(rows)} delivered"
        + ("; draft marked sent" if report.completed else "")
    )
