"""An incident without tenants (imported from incident.io before its tenant field was set):
stored and read back by every store backend, tracked by the cadence clock from its
declaration, shown by the CLI, the timeline and the review pages, and never sent until
tenants are added."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from comms import service
from comms.bootstrap import Runtime, open_alert_state, open_store
from comms.cadence import OVERDUE, UPDATE, evaluate, policy_from_config
from comms.errors import UsageError
from comms.models import Severity, Tenant
from tests.contract.backends import BACKENDS
from tests.incidentio.drafting import approve, first_update

STARTED = datetime(2026, 11, 27, 13, 52, tzinfo=UTC)
POLICY = policy_from_config({}, {"S1": 60, "S2": 120})


@pytest.fixture(params=list(BACKENDS))
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    backend = BACKENDS[request.param]
    if backend.env and not os.environ.get(backend.env):
        pytest.skip(f"{backend.env} is not set (CI sets it)")
    with backend.fresh(tmp_path) as fresh:
        yield fresh


def test_every_store_keeps_an_incident_without_tenants(url: str) -> None:
    store = open_store(url)
    try:
        opened = store.create_incident(
            title="Registry errors",
            severity=Severity.S1,
            tenants=[],
            started_at=STARTED,
            now=STARTED,
            actor="incident.io",
            ref="INC-2291",
        )
        assert opened.tenants == []
        assert store.get_incident("INC-2291").tenants == []
        assert [i.tenants for i in store.list_incidents(open_only=True)] == [[]]
        (row,) = store.clock_rows()
        assert tuple(row.tenants) == ()
        # The clock runs from the declaration.
        overdue = [
            d
            for d in evaluate(store.clock_rows(), POLICY, STARTED + timedelta(minutes=61))
            if d.clock == UPDATE
        ]
        # (the first update of an S1 is owed 15 minutes after it opened)
        assert [(d.ref, d.state, d.due_at) for d in overdue] == [
            ("INC-2291", OVERDUE, STARTED + timedelta(minutes=15))
        ]
        store.put_tenant(Tenant(id="acme", name="Acme Corp"))
        added = service.set_incident(
            store, "INC-2291", now=STARTED, actor="jane", add_tenants=["acme"]
        )
        assert added.tenants == ["acme"]
        assert store.get_incident("INC-2291").tenants == ["acme"]
    finally:
        store.close()
    state = open_alert_state(url)
    try:
        assert [tuple(r.tenants) for r in state.clock_rows()] == [("acme",)]
    finally:
        state.close()


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    from comms.cli import cli

    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def tenantless(monkeypatch: pytest.MonkeyPatch) -> str:
    """An S1 incident with no tenants in the test's SQLite store; the clock pinned 90
    minutes after it started."""
    monkeypatch.setenv("COMMS_NOW", "2026-11-27T15:22:00Z")
    with Runtime() as rt:
        found = rt.store.create_incident(
            title="Registry errors",
            severity=Severity.S1,
            tenants=[],
            started_at=STARTED,
            now=STARTED,
            actor="incident.io",
            ref="INC-2291",
        )
    return found.ref


def test_the_cli_shows_it_and_says_to_add_tenants(tenantless: str) -> None:
    listed = _run("incident", "list")
    shown = _run("incident", "show", tenantless)
    timeline = _run("timeline", tenantless)

    assert "Registry errors  [no tenants yet]" in listed.stdout
    assert "tenants none yet (comms incident set INC-2291 --add-tenant ID)" in shown.stdout
    assert "tenants none yet." in timeline.stdout
    assert "| opened S1 incident 'Registry errors' for no tenants yet |" in timeline.stdout

    drafted = _run(
        "draft", "investigation-start", "--incident", tenantless, "--set", "impact=Pushes fail."
    )
    assert drafted.exit_code == 0, drafted.output
    assert drafted.stderr.splitlines()[-1] == (
        "note: INC-2291 has no tenants yet; add them before review: "
        "comms incident set INC-2291 --add-tenant ID"
    )
    approve = _run("review", "approve", "1", env={"COMMS_REVIEWER": "sam"})
    assert approve.exit_code == 2
    assert approve.stderr.strip().endswith(
        "INC-2291 has no tenants yet; add them first: comms incident set INC-2291 --add-tenant ID"
    )
    sent = _run("send", "1", "--skip-review", "--reason", "S1, nobody to review")
    assert sent.exit_code == 2
    assert "INC-2291 has no tenants yet; add them first" in sent.stderr


def test_the_cadence_clock_runs_from_the_declaration(tenantless: str) -> None:
    checked = _run("cadence", "check", "--format", "json")
    watched = _run("cadence", "watch", "--once", "--sink", "stdout")
    status = _run("cadence", "status")

    assert checked.exit_code == 1, checked.output
    deadlines = json.loads(checked.stdout)["deadlines"]
    update = next(d for d in deadlines if d["clock"] == "update")
    assert (update["ref"], update["state"], update["due_at"]) == (
        "INC-2291",
        "overdue",
        "2026-11-27T14:07:00Z",
    )
    assert "tenants" not in update
    assert watched.exit_code == 0, watched.output
    alert = json.loads(watched.stdout.splitlines()[0])
    assert (alert["ref"], alert["clock"], alert["tenants"]) == ("INC-2291", "update", [])
    assert alert["text"].startswith(
        "OVERDUE INC-2291 (S1): customer update was due 2026-11-27 14:07 UTC (1h 15m ago) · "
        "Registry errors. Run: comms draft update --incident INC-2291"
    )
    assert status.exit_code == 0, status.output
    assert "INC-2291" in status.stdout


def test_the_review_pages_show_it(tenantless: str) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
    from web_support import NOW, Web, add_team, bearer

    from comms.web.app import create_app

    with Runtime(clock=lambda: NOW) as rt:
        add_team(rt)
        first_update(rt.raw_store, tenantless, NOW, author="gus")
        web = Web(create_app(rt))
        try:
            queue = web.get("/api/queue", headers=bearer("sam"))
            incident = web.get(f"/api/incidents/{tenantless}", headers=bearer("sam"))
            draft = web.get("/api/drafts/1", headers=bearer("sam"))
            approve = web.post("/api/drafts/1/approve", json={"revision": 1}, headers=bearer("sam"))
            web.sign_in("sam")
            page = web.get(f"/incidents/{tenantless}")
            draft_page = web.get("/drafts/1")
            queue_page = web.get("/")
        finally:
            web.close()

    assert queue.status_code == 200
    assert queue.json()["drafts"][0]["tenants"] == []
    assert incident.status_code == 200
    assert incident.json()["incident"]["tenants"] == []
    assert draft.status_code == 200
    assert draft.json()["recipients"] == []
    assert draft.json()["send_problems"][0] == (
        "INC-2291 has no tenants yet; add them first: comms incident set INC-2291 --add-tenant ID"
    )
    assert approve.status_code == 400
    assert (
        "add them first: comms incident set INC-2291 --add-tenant ID" in (approve.json()["detail"])
    )
    for shown in (page, draft_page, queue_page):
        assert shown.status_code == 200
    assert "none yet (comms incident set INC-2291 --add-tenant ID)" in page.text
    assert "INC-2291 has no tenants yet; add them first" in draft_page.text
    assert '<td class="tenants">none yet</td>' in queue_page.text


def test_the_core_refuses_to_approve_or_send_it(tenantless: str) -> None:
    with Runtime() as rt:
        draft = first_update(rt.store, tenantless, STARTED)
        with pytest.raises(UsageError, match="has no tenants yet; add them first"):
            approve(rt.store, draft.id, STARTED)
