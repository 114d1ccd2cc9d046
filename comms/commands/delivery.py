"""Commands for review (``comms review …``) and delivery (``comms send``).

Each command parses its options, makes one call into the core (``comms.review``,
``comms.delivery``) with what the process's ``Runtime`` provides, and prints the result.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import click

from comms.bootstrap import CHANNELS
from comms.commands import common
from comms.commands.common import FORMAT_OPTION, emit_json

if TYPE_CHECKING:
    from comms.bootstrap import Runtime
    from comms.delivery import Outcome, SendReport
    from comms.models import Delivery, Draft
    from comms.review import Inspection

VIA_HELP = "Channels it would go to (default from config)."
TENANT_HELP = "Recipients (default: every tenant of the incident)."


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


def _queue_row(draft: Draft) -> dict[str, Any]:
    errors = sum(1 for f in draft.revision.findings if f.get("level") == "error")
    return {
        "id": draft.id,
        "incident": draft.incident_ref,
        "kind": draft.kind.value,
        "state": draft.state.value,
        "revision": draft.revision.number,
        "author": draft.revision.author,
        "findings": len(draft.revision.findings),
        "errors": errors,
        "subject": draft.revision.subject,
    }


@review.command("list")
@click.option("--incident", "ref", default=None, help="Only this incident's drafts.")
@FORMAT_OPTION
def review_list(ref: str | None, fmt: str) -> None:
    """List drafts waiting for review (not yet approved or sent).

    \b
    Example:
      comms review list --format json
    """
    from comms.review import waiting

    rows = [_queue_row(d) for d in waiting(common.runtime().store, incident_ref=ref)]
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


def _inspection_json(seen: Inspection) -> dict[str, Any]:
    draft, incident, status = seen.gate.draft, seen.gate.incident, seen.gate.status
    return {
        "draft": draft.id,
        "revision": draft.revision.number,
        "state": draft.state.value,
        "incident": incident.ref,
        "severity": incident.severity.value,
        "tenants": list(seen.gate.audience),
        "channels": list(seen.channels),
        "text": seen.text,
        "findings": draft.revision.findings,
        "diff_to_last_sent": seen.diff,
        "approved_by": status.approved_by if status else {},
        "needs": status.missing if status else [],
        "send_problems": list(seen.gate.problems),
    }


def _print_inspection(seen: Inspection) -> None:
    draft, incident, status = seen.gate.draft, seen.gate.incident, seen.gate.status
    click.echo(
        f"draft {draft.id} r{draft.revision.number} for {incident.ref} ({incident.severity.value}), "
        f"{draft.kind.value}, {draft.state.value}, by {draft.revision.author}"
    )
    click.echo(f"to: {', '.join(seen.gate.audience)} via {', '.join(seen.channels)}")
    click.echo("")
    click.echo(_marked(seen.text, draft.revision.findings))
    click.echo("")
    click.echo(
        seen.diff.rstrip("\n") if seen.diff else "no earlier update was sent for this incident"
    )
    click.echo("")
    if status is not None and status.approved_by:
        click.echo(
            "approved by: "
            + ", ".join(f"{who} ({role})" for role, who in status.approved_by.items())
        )
    problems = seen.gate.problems
    click.echo("ready to send" if not problems else "not ready: " + "; ".join(problems))


@review.command("show")
@click.argument("draft_id", type=int)
@click.option("--via", "channels", multiple=True, type=click.Choice(CHANNELS), help=VIA_HELP)
@click.option("--tenant", "tenant_ids", multiple=True, help=TENANT_HELP)
@FORMAT_OPTION
def review_show(
    draft_id: int, channels: tuple[str, ...], tenant_ids: tuple[str, ...], fmt: str
) -> None:
    """Show a draft with its findings marked, the diff to the last update sent, and what the send gate says.

    \b
    Example:
      comms review show 3
    """
    from comms.review import inspect_draft

    rt = common.runtime()
    seen = inspect_draft(
        rt.store,
        draft_id,
        tenants=tenant_ids,
        channels=list(channels) or rt.default_channels(),
        policy=rt.review_policy(),
        lint_config=rt.lint_config(),
        now=rt.now(),
    )
    if fmt == "json":
        emit_json(_inspection_json(seen))
    else:
        _print_inspection(seen)


@review.command("submit")
@click.argument("draft_id", type=int)
def review_submit(draft_id: int) -> None:
    """Ask for review of a draft's latest revision (starts the S1 review timeout, if configured).

    \b
    Example:
      comms review submit 3
    """
    from comms.review import submit

    rt = common.runtime()
    draft = submit(rt.store, draft_id, actor=rt.actor, now=rt.now())
    click.echo(
        f"draft {draft_id} r{draft.revision.number} is waiting for review: comms review show {draft_id}"
    )


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
    from comms.review import decide

    rt = common.runtime()
    done = decide(
        rt.store,
        draft_id,
        decision="approved",
        role=role,
        reviewer=rt.reviewer,
        note=note,
        tenants=tenant_ids,
        channels=list(channels) or rt.default_channels(),
        now=rt.now(),
    )
    click.echo(
        f"draft {done.draft.id} r{done.draft.revision.number} approved by {done.review.reviewer} "
        f"({role}) for {', '.join(done.audience)} via {', '.join(done.channels)}"
    )
    if done.error_count:
        click.echo(
            f"warning: {done.error_count} error-level finding(s) will still block sending",
            err=True,
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
    from comms.review import decide

    rt = common.runtime()
    done = decide(
        rt.store,
        draft_id,
        decision="changes-requested",
        role=role,
        reviewer=rt.reviewer,
        note=note,
        tenants=(),
        channels=rt.default_channels(),
        now=rt.now(),
    )
    click.echo(
        f"changes requested on draft {done.draft.id} r{done.draft.revision.number} by {done.review.reviewer}: {note}"
    )


# -- send ---------------------------------------------------------------------------------


class _Progress:
    """A bar on standard error while more than one delivery runs, on a terminal only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.stack = ExitStack()
        self.update: Callable[[int], None] | None = None

    def start(self, deliveries: Sequence[Delivery]) -> None:
        if self.enabled and len(deliveries) > 1:
            bar = click.progressbar(length=len(deliveries), label="sending", file=sys.stderr)
            self.update = self.stack.enter_context(bar).update

    def advance(self, _outcome: Outcome) -> None:
        if self.update is not None:
            self.update(1)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()


def _deliver(
    rt: Runtime,
    draft_id: int | None,
    tenant_ids: Sequence[str],
    channels: Sequence[str],
    override_reason: str | None,
    concurrency: int | None,
    progress: _Progress,
) -> SendReport:
    """``delivery.resume`` without a draft, else ``delivery.send``, wired from the runtime."""
    from comms import delivery

    if draft_id is None:
        return delivery.resume(
            rt.store,
            publishers=rt.publishers,
            actor=rt.actor,
            clock=rt.now,
            process=rt.process(),
            concurrency=rt.concurrency(concurrency),
            on_start=progress.start,
            on_done=progress.advance,
        )
    return delivery.send(
        rt.store,
        draft_id,
        publishers=rt.publishers,
        tenants=tenant_ids,
        channels=list(channels) or rt.default_channels(),
        override_reason=override_reason,
        policy=rt.review_policy(),
        lint_config=rt.lint_config(),
        actor=rt.actor,
        clock=rt.now,
        process=rt.process(),
        concurrency=rt.concurrency(concurrency),
        on_start=progress.start,
        on_done=progress.advance,
    )


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
    if skip_review and not (reason and reason.strip()):
        raise click.UsageError("--skip-review needs --reason '…' (it is recorded)")
    if draft_id is None and not resume:
        raise click.UsageError("name the draft to send (comms send DRAFT) or use --resume")
    override = reason if skip_review else None
    with _Progress(fmt == "text" and sys.stderr.isatty()) as progress:
        report = _deliver(
            common.runtime(), draft_id, tenant_ids, channels, override, concurrency, progress
        )
    if draft_id is None and not report.outcomes:
        click.echo("nothing to resume")
        return
    _print_report(report, fmt)
    report.raise_for_unfinished()


def _print_report(report: SendReport, fmt: str) -> None:
    rows: list[dict[str, Any]] = []
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
