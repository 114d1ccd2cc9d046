"""Commands for review (``comms review …``) and delivery (``comms send``).

Each command parses its options, makes one call into the core (``comms.review``,
``comms.delivery``) with what the process's ``Runtime`` provides, and prints the result.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

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

    The reviewer's name comes from COMMS_REVIEWER or reviewer in comms.toml; in team mode
    it is the user of COMMS_TOKEN. An approval is bound to the exact text, recipients and
    channels: any edit voids it.

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
@click.argument("draft_id", type=common.RECORD_ID)
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
@click.argument("draft_id", type=common.RECORD_ID)
def review_submit(draft_id: int) -> None:
    """Ask for review of a draft's latest revision (starts the S1 review timeout, if configured).

    With [notify] review in comms.toml (or COMMS_REVIEW_SLACK_URL set), a Slack message
    tells the reviewers, with a link to the draft's page when [serve] public_url is set.

    \b
    Example:
      comms review submit 3
    """
    from comms.notice import SUBMITTED, announce
    from comms.review import submit

    rt = common.runtime()
    notifier = rt.review_notifier()  # a broken [notify] fails before anything is recorded
    draft = submit(rt.store, draft_id, actor=rt.actor, now=rt.now())
    click.echo(
        f"draft {draft_id} r{draft.revision.number} is waiting for review: comms review show {draft_id}"
    )
    incident = rt.store.get_incident(draft.incident_ref)
    problem = announce(
        notifier, draft, incident, event=SUBMITTED, actor=rt.actor, public_url=rt.public_url()
    )
    if problem:
        click.echo(f"warning: {problem}", err=True)


@review.command("approve")
@click.argument("draft_id", type=common.RECORD_ID)
@click.option(
    "--role",
    type=click.Choice(["imoc", "sirt"]),
    default=None,
    help="Approve as the incident manager or as SIRT (security incidents need both); "
    "default: imoc, or in team mode the role your user has.",
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
@click.option(
    "--reason",
    default=None,
    help="Approve despite error-level findings: why (recorded; they still block sending).",
)
def review_approve(
    draft_id: int,
    role: str | None,
    channels: tuple[str, ...],
    tenant_ids: tuple[str, ...],
    note: str,
    reason: str | None,
) -> None:
    """Approve a draft's latest revision for these recipients and channels.

    A draft with error-level lint findings is refused (exit 1) unless --reason says why;
    the reason and the rules are recorded in the event log.  The author of the revision
    never approves it (exit 1).  In team mode the approval is recorded under the user
    of COMMS_TOKEN, who must be an imoc or admin (or sirt, with --role sirt).

    \b
    Example:
      COMMS_REVIEWER="Sam (IMOC)" comms review approve 3
      comms review approve 3 --reason "false positive: Leak.HostName is turned off today"
    """
    from comms.review import decide

    rt = common.runtime()
    done = decide(
        rt.store,
        draft_id,
        decision="approved",
        role=role,
        reviewer=rt.reviewer,
        user=rt.user,
        note=note,
        tenants=tenant_ids,
        channels=list(channels) or rt.default_channels(),
        now=rt.now(),
        override_reason=reason,
        lint_config=rt.lint_config(),
        policy=rt.review_policy(),
    )
    click.echo(
        f"draft {done.draft.id} r{done.draft.revision.number} approved by {done.review.reviewer} "
        f"({done.review.role}) for {', '.join(done.audience)} via {', '.join(done.channels)}"
        + ("; it stays in review for the other approval it needs" if done.pending else "")
    )
    if done.blocking_rules:
        click.echo(
            f"warning: approved over {', '.join(done.blocking_rules)} (recorded); "
            "these findings still block sending",
            err=True,
        )


@review.command("request-changes")
@click.argument("draft_id", type=common.RECORD_ID)
@click.option("--note", required=True, help="What to change, for the communications manager.")
@click.option(
    "--role",
    type=click.Choice(["imoc", "sirt"]),
    default=None,
    help="Review as the incident manager or as SIRT; default: imoc, or in team mode the "
    "role your user has.",
)
def review_request_changes(draft_id: int, note: str, role: str | None) -> None:
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
        user=rt.user,
        note=note,
        tenants=(),
        channels=rt.default_channels(),
        now=rt.now(),
    )
    click.echo(
        f"changes requested on draft {done.draft.id} r{done.draft.revision.number} by {done.review.reviewer}: {note}"
    )


# -- send ---------------------------------------------------------------------------------


# Outcomes that leave a delivery to do again: counted as failed while a send runs.
UNFINISHED = ("failed", "retry-later", "busy")


class SendProgress:
    """How a send goes, on standard error while it runs; the report stays on standard output.

    On a terminal one line is redrawn in place: done, failed, rate a minute, time left.
    Elsewhere (a log, CI) plain lines: one every 10 % or every 5 seconds, none in the first
    5 seconds, so that a quick send prints only its report.  A single delivery shows
    nothing.  ``start`` and ``advance`` come from the send; ``tick`` from a background
    thread (``ticker``) or a test, so that a stalled send (a 429 storm) still says how it
    goes.  ``clock`` is monotonic seconds.
    """

    QUIET = 5.0  # seconds before the first plain line
    EVERY = 5.0  # seconds between plain lines, at most
    REDRAW = 0.2  # seconds between redraws on a terminal, at least

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool,
        clock: Callable[[], float] = time.monotonic,
        ticker: bool = False,
    ) -> None:
        self.stream, self.tty, self.clock, self.ticker = stream, tty, clock, ticker
        self.total = self.done = self.failed = self.done_at_last = 0
        self.started = self.last_at = 0.0
        self.active = self.shown = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, deliveries: Sequence[Delivery]) -> None:
        with self._lock:
            self.total = len(deliveries)
            self.active = self.total > 1
            self.started = self.last_at = self.clock()
            if self.active and self.tty:
                self._draw(self._line(self.started))
        if self.active and self.ticker:
            every = self.REDRAW if self.tty else 1.0
            self._thread = threading.Thread(target=self._tick_every, args=(every,), daemon=True)
            self._thread.start()

    def advance(self, outcome: Outcome) -> None:
        with self._lock:
            self.done += 1
            self.failed += outcome.status in UNFINISHED
            self._show(step=True)

    def tick(self) -> None:
        with self._lock:
            self._show(step=False)

    def close(self) -> None:
        """Stop ticking and end with a summary (on a terminal, or if lines were shown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self.active and (self.tty or self.shown):
                took = _duration(self.clock() - self.started)
                summary = f"sent: {self.done}/{self.total} done, {self.failed} failed in {took}"
                if self.tty:
                    self._draw(summary)
                    summary = ""
                self.stream.write(summary + "\n")
                self.stream.flush()
            self.active = False

    def __enter__(self) -> SendProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tick_every(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            self.tick()

    def _show(self, *, step: bool) -> None:
        if not self.active:
            return
        now = self.clock()
        if self.tty:
            if now - self.last_at >= self.REDRAW:
                self._draw(self._line(now))
                self.last_at = now
            return
        if now - self.started < self.QUIET:
            return
        tenth = step and (self.done - self.done_at_last) * 10 >= self.total
        if tenth or now - self.last_at >= self.EVERY:
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()
            self.shown, self.last_at, self.done_at_last = True, now, self.done

    def _line(self, now: float) -> str:
        head = f"sending: {self.done}/{self.total} done, {self.failed} failed"
        elapsed = now - self.started
        if not self.done or elapsed <= 0:
            return head
        rate = self.done / elapsed
        left = (self.total - self.done) / rate
        return f"{head}, {rate * 60:.0f}/min, about {_duration(left)} left"

    def _draw(self, text: str) -> None:
        # Carriage return and erase-to-end: the line is rewritten in place.
        self.stream.write(f"\r{text}\x1b[K")
        self.stream.flush()


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _deliver(
    rt: Runtime,
    draft_id: int | None,
    tenant_ids: Sequence[str],
    channels: Sequence[str],
    override_reason: str | None,
    concurrency: int | None,
    progress: SendProgress,
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
@click.argument("draft_id", type=common.RECORD_ID, required=False)
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
    rt = common.runtime()
    with SendProgress(sys.stderr, tty=sys.stderr.isatty(), ticker=True) as progress:
        report = _deliver(rt, draft_id, tenant_ids, channels, override, concurrency, progress)
    if draft_id is None and not report.outcomes:
        click.echo("nothing to resume")
        return
    _print_report(report, fmt)
    _note_in_slack(rt, report)
    report.raise_for_unfinished()


def _note_in_slack(rt: Runtime, report: SendReport) -> None:
    """Tell the incident's Slack channel (from incident.io) what customers were told, once
    per revision sent in full; on standard error, so that standard output stays the report.
    A note Slack refused only warns: the send stands either way."""
    from comms.incidentio.slack import note_sent

    sent = sorted({o.delivery.draft_id for o in report.outcomes})
    results = note_sent(
        rt.store,
        sent,
        poster=rt.slack if rt.slack_configured() else None,
        actor=rt.actor,
        now=rt.now(),
    )
    for result in results:
        if result.failed:
            click.echo(f"warning: {result.reason}", err=True)
        elif result.posted:
            click.echo(result.reason, err=True)


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
