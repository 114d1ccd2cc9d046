"""``comms demo``: walk the whole pipeline on a throw-away store and a local Switchboard stub.

incident → lint the internal note → draft → revise → review → send (exactly once) →
cadence → update → resolve → timeline, printing each step and the command it stands for.
"""

from __future__ import annotations

import difflib
import secrets
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from comms.commands import common

if TYPE_CHECKING:
    from comms.bootstrap import Runtime
    from comms.models import Draft

INTERNAL_NOTE = (
    "web-03 and db1001 in us-east-1 are OOMing since the 13:40 deploy, see #inc-2291. "
    "Users on acme cannot sign in; we think the new session cache is to blame. "
    "@jsmith is rolling back, ETA 30m."
)


def _step(number: int, title: str) -> None:
    click.secho(f"\n== {number}. {title}", bold=True)


def _show(text: str) -> None:
    for line in text.rstrip("\n").splitlines():
        click.echo(f"   | {line}")


def _cmd(text: str) -> None:
    click.secho(f"   $ {text}", fg="cyan")


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo databases and print where they are.")
def demo(keep: bool) -> None:
    """Walk the whole pipeline on a throw-away store and a Switchboard stub it starts itself.

    Nothing touches your real store or any real service: a temporary SQLite file, the
    built-in templates, and the Switchboard stub on a free 127.0.0.1 port.

    \b
    Example:
      comms demo
    """
    from comms.bootstrap import switchboard_stub

    folder = Path(tempfile.mkdtemp(prefix="comms-demo-"))
    token = secrets.token_urlsafe(16)
    try:
        with switchboard_stub().serve_in_thread(folder / "switchboard.db", token=token) as url:
            _run(folder, url, token)
    finally:
        if keep:
            click.echo(
                f"\nkept: COMMS_DATABASE_URL={folder / 'demo.db'} (stub database {folder / 'switchboard.db'})"
            )
        else:
            shutil.rmtree(folder, ignore_errors=True)
    click.secho("\ndemo complete", fg="green")


def _runtime(folder: Path, url: str, token: str) -> Runtime:
    """A runtime of its own: the throw-away store and the stub, whatever the user's
    comms.toml or COMMS_* variables say."""
    from comms.bootstrap import Runtime
    from comms.settings import Settings

    settings = Settings(
        database_url=str(folder / "demo.db"),
        author="demo-gdcmoc",
        reviewer="demo-imoc",
        tables={"switchboard": {"base_url": url, "token": token}},
    )
    return Runtime(settings, environ={})


def _run(folder: Path, url: str, token: str) -> None:
    with _runtime(folder, url, token) as runtime:
        _walk(runtime, folder, url)


def _walk(runtime: Runtime, folder: Path, url: str) -> None:
    from comms import delivery, review, service
    from comms.lint import fix, lint
    from comms.models import DraftState, MessageKind, Severity, Status
    from comms.render import Renderer

    store = runtime.store
    renderer = Renderer()
    gdcmoc, imoc = runtime.actor, runtime.reviewer
    start = common.now().replace(second=0, microsecond=0)

    _step(1, f"A throw-away store ({folder / 'demo.db'}) and the Switchboard stub at {url}")
    _cmd("comms tenants sync")
    service.sync_tenants(store, runtime.tenant_directory("switchboard"))
    click.echo(f"   synced tenants: {', '.join(t.id for t in store.list_tenants())}")
    check = service.make_checker(None, store.list_tenants())

    _step(2, "Open an S1 incident for acme")
    _cmd(
        'comms incident open --tenant acme --severity S1 --title "Sign-in failures" --started -12m'
    )
    incident = service.open_incident(
        store,
        title="Sign-in failures",
        severity=Severity.S1,
        tenants=["acme"],
        now=start,
        actor=gdcmoc,
        started_at=start - timedelta(minutes=12),
    )
    click.echo(f"   opened {incident.ref}")

    _step(3, "Cadence: what the watcher says if no update goes out")
    from comms.alerts import payload, simulate
    from comms.cadence import policy_from_config

    policy = policy_from_config({}, {"S1": 60, "S2": 120})
    row = next(r for r in store.clock_rows() if r.ref == incident.ref)
    _cmd("comms cadence watch --sink stdout   # a service; here replayed at +1 and +16 minutes")
    for action in simulate(
        [row], policy, [start + timedelta(minutes=1), start + timedelta(minutes=16)]
    ):
        data = payload(action)
        click.echo(f"   {action.at:%H:%M} UTC {data['action']:<8} {data['text']}")

    _step(4, "Lint the incident lead's internal note before reusing any of it")
    _cmd('comms lint --kind update - <<< "$NOTE"')
    _show(INTERNAL_NOTE)
    others = [n for t in store.list_tenants() if t.id != "acme" for n in (t.name, *t.aliases)]
    for finding in lint(INTERNAL_NOTE, kind="update", audience="Acme Corporation", tenants=others):
        click.echo(
            f"   {finding.line}:{finding.column}: {finding.level} {finding.rule} {finding.message}"
        )
    _cmd("comms lint --fix -")
    result = fix(INTERNAL_NOTE, audience="Acme Corporation", tenants=others)
    _show(result.text)
    click.echo(
        f"   removed or replaced {len(result.removed)}; {len(result.remaining)} left for a person to reword"
    )
    click.echo(
        "   (the impact, in customer words, goes into the draft; causes under investigation stay out)"
    )

    def draft(kind: MessageKind, values: dict[str, str], at: datetime) -> Draft:
        composed = service.compose(
            store,
            renderer,
            ref=incident.ref,
            kind=kind,
            values=values,
            now=at,
            author=gdcmoc,
            interval_minutes=60,
            check=check,
        )
        sets = " ".join(f'--set {k}="{v}"' for k, v in values.items())
        _cmd(f"comms draft {kind.value} --incident {incident.ref} {sets}".rstrip())
        click.echo(
            f"   draft {composed.draft.id}, revision {composed.draft.revision.number}"
            + (f"; carried over: {', '.join(sorted(composed.carried))}" if composed.carried else "")
        )
        _show(service.message_text(composed.draft))
        findings = composed.draft.revision.findings
        click.echo(
            f"   lint: {len(findings)} finding(s)"
            + "".join(
                f"\n     {f['line']}:{f['column']} {f['level']} {f['rule']} {f['message']}"
                for f in findings
            )
        )
        return composed.draft

    def approve_and_send(d: Draft, at: datetime) -> None:
        _cmd(f"COMMS_REVIEWER={imoc} comms review approve {d.id}")
        review.decide(
            store,
            d.id,
            decision="approved",
            role="imoc",
            reviewer=imoc,
            note="",
            tenants=(),
            channels=["switchboard"],
            now=at,
        )
        _cmd(f"comms send {d.id} --via switchboard")
        report = send(d, at)
        for outcome in report.outcomes:
            receipt = outcome.receipt
            recipients = ", ".join(receipt.detail.get("recipients", [])) if receipt else ""
            click.echo(
                f"   switchboard  {outcome.delivery.tenant:<8} {outcome.status:<10} "
                f"{receipt.external_id if receipt else outcome.error}  to {recipients}"
            )
        _cmd(f"comms send {d.id} --via switchboard   # again: nothing is posted twice")
        again = send(d, at)
        click.echo(
            f"   {again.count('already-delivered')} already delivered, {again.count('delivered')} posted"
        )

    def send(d: Draft, at: datetime) -> delivery.SendReport:
        """`comms send d --via switchboard` at ``at``: the same core call, gate included."""
        return delivery.send(
            store,
            d.id,
            publishers=runtime.publishers,
            tenants=(),
            channels=["switchboard"],
            override_reason=None,
            policy=runtime.review_policy(),
            lint_config=None,
            actor=gdcmoc,
            clock=lambda: at,
            process=runtime.process(),
            concurrency=runtime.concurrency(),
        )

    _step(5, "Draft the investigation start")
    first = draft(
        MessageKind.INVESTIGATION_START,
        {
            "impact": "Users cannot sign in to the web interface. Git over HTTPS and SSH work normally.",
            "affected_components": "Web UI, Sign-in",
        },
        start,
    )

    _step(6, "Revise it: the same command again adds a revision; every revision is kept")
    first = draft(
        MessageKind.INVESTIGATION_START,
        {"focus_area": "sign-in requests"},
        start + timedelta(minutes=2),
    )
    _cmd(f"comms drafts diff {first.id}")
    old, new = store.revisions(first.id)[-2:]
    _show(
        "".join(
            difflib.unified_diff(old.body.splitlines(True), new.body.splitlines(True), "r1", "r2")
        )
    )

    _step(7, "The IMOC reviews and approves; the update goes out through Switchboard")
    approve_and_send(first, start + timedelta(minutes=4))

    _step(8, "The next update starts from the last sent message's values")
    service.change_status(
        store, incident.ref, Status.IDENTIFIED, now=start + timedelta(minutes=40), actor=gdcmoc
    )
    second = draft(
        MessageKind.UPDATE,
        {"actions": "We are restoring the sign-in service from a known good configuration."},
        start + timedelta(minutes=45),
    )
    approve_and_send(second, start + timedelta(minutes=47))

    _step(9, "Mitigated and resolved, each confirmed by the incident lead")
    service.change_status(
        store,
        incident.ref,
        Status.MONITORING,
        now=start + timedelta(minutes=80),
        actor=gdcmoc,
        confirmed_by=imoc,
    )
    service.change_status(
        store,
        incident.ref,
        Status.RESOLVED,
        now=start + timedelta(minutes=100),
        actor=gdcmoc,
        confirmed_by=imoc,
    )
    last = draft(
        MessageKind.RESOLVED,
        {"resolution": "Sign-in works normally again."},
        start + timedelta(minutes=102),
    )
    approve_and_send(last, start + timedelta(minutes=104))

    _step(10, "Timeline for the RCA, with the cadence report")
    _cmd(f"comms timeline {incident.ref}")
    texts = {
        (d.id, d.revision.number): service.message_text(d)
        for d in store.list_drafts(incident_ref=incident.ref)
        if d.state is DraftState.SENT
    }
    from comms.cadence import cadence_report, report_markdown

    final = store.get_incident(incident.ref)
    events = store.events(incident.ref)
    _show(service.timeline_markdown(final, events, texts))
    _show(report_markdown(cadence_report(final, events, policy, start + timedelta(minutes=110))))
