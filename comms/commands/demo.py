"""``comms demo``: walk the pipeline on a throw-away store and print each step."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from comms.commands import common

DEMO_TENANTS = [
    {"id": "acme", "name": "Acme Corp", "url": "https://acme.gitlab-dedicated.com",
     "contacts": [{"email": "ops@acme.example"}, {"email": "csm@gitlab.example", "role": "csm"}]},
    {"id": "globex", "name": "Globex", "url": "https://globex.gitlab-dedicated.com", "geo": True,
     "contacts": [{"email": "it@globex.example"}]},
]


def _step(number: int, title: str) -> None:
    click.secho(f"\n== {number}. {title}", bold=True)


def _show(text: str) -> None:
    for line in text.rstrip("\n").splitlines():
        click.echo(f"   | {line}")


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo database and print where it is.")
def demo(keep: bool) -> None:
    """Walk the pipeline on a throw-away store: tenant → incident → drafts → revisions → timeline.

    Nothing touches your real store. Uses the built-in templates and defaults.

    \b
    Example:
      comms demo
    """
    from comms import service
    from comms.adapters.sqlite_store import SqliteStore
    from comms.models import MessageKind, Severity, Status, Tenant, validate
    from comms.render import Renderer

    folder = Path(tempfile.mkdtemp(prefix="comms-demo-"))
    store = SqliteStore(folder / "demo.db")
    renderer = Renderer()
    author = "demo-gdcmoc"
    now = common.now().replace(second=0, microsecond=0)
    started = now - timedelta(minutes=12)
    check = _checker(store)

    _step(1, f"Store: a new SQLite file at {folder / 'demo.db'}")
    for data in DEMO_TENANTS:
        store.put_tenant(validate(Tenant, data))
    click.echo(f"   tenants: {', '.join(t.id for t in store.list_tenants())}")

    _step(2, "Open an S1 incident for acme")
    incident = service.open_incident(
        store, title="Sign-in failures on the web interface", severity=Severity.S1,
        tenants=["acme"], now=now, actor=author, started_at=started,
    )
    click.echo(f"   $ comms incident open --tenant acme --severity S1 --title \"{incident.title}\"")
    click.echo(f"   opened {incident.ref}, started {started:%H:%M} UTC")

    def draft(kind: MessageKind, values: dict[str, str], at: Any) -> Any:
        composed = service.compose(
            store, renderer, ref=incident.ref, kind=kind, values=values, now=at, author=author,
            interval_minutes=60, check=check,
        )
        sets = " ".join(f'--set {k}="{v}"' for k, v in values.items())
        click.echo(f"   $ comms draft {kind.value} --incident {incident.ref} {sets}".rstrip())
        click.echo(f"   draft {composed.draft.id}, revision {composed.draft.revision.number}"
                   + (f"; carried over: {', '.join(sorted(composed.carried))}" if composed.carried else ""))
        _show(service.message_text(composed.draft))
        findings = composed.draft.revision.findings
        click.echo(f"   lint: {len(findings)} finding(s)" + "".join(
            f"\n     {f['line']}:{f['column']} {f['level']} {f['rule']} {f['message']}" for f in findings))
        return composed.draft

    _step(3, "Draft the investigation start")
    draft(MessageKind.INVESTIGATION_START, {
        "impact": "Users cannot sign in to the web interface. Git over HTTPS and SSH work normally.",
        "affected_components": "Web UI, Sign-in",
    }, now)

    _step(4, "Revise it: the same command again adds a revision, every revision is kept")
    first = draft(MessageKind.INVESTIGATION_START, {"focus_area": "sign-in requests"}, now + timedelta(minutes=2))
    click.echo(f"   $ comms drafts diff {first.id}")
    import difflib

    old, new = store.revisions(first.id)[-2:]
    _show("".join(difflib.unified_diff(old.body.splitlines(True), new.body.splitlines(True), "r1", "r2")))

    _step(5, "45 minutes later: the update starts from the last message's values")
    service.change_status(store, incident.ref, Status.IDENTIFIED, now=now + timedelta(minutes=40), actor=author)
    draft(MessageKind.UPDATE, {"actions": "We are restoring the sign-in service from a known good configuration."},
          now + timedelta(minutes=45))

    _step(6, "Mitigated, then resolved (each confirmed by the incident lead)")
    service.change_status(store, incident.ref, Status.MONITORING, now=now + timedelta(minutes=80),
                          actor=author, confirmed_by="demo-imoc")
    service.change_status(store, incident.ref, Status.RESOLVED, now=now + timedelta(minutes=110),
                          actor=author, confirmed_by="demo-imoc")
    draft(MessageKind.RESOLVED, {"resolution": "Sign-in works normally again."}, now + timedelta(minutes=112))

    _step(7, "Timeline for the RCA")
    click.echo(f"   $ comms timeline {incident.ref}")
    _show(service.timeline_markdown(store.get_incident(incident.ref), store.events(incident.ref), {}))

    store.close()
    if keep:
        click.echo(f"\nkept: COMMS_DATABASE_URL={folder / 'demo.db'}")
    else:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    click.secho("\ndemo complete", fg="green")


def _checker(store: Any) -> Any:
    from comms.commands.core import make_checker

    return make_checker({}, store)
