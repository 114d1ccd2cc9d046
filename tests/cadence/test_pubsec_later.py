"""Pubsec is read from the tenants' current flags each time an alert is built: a tenant
marked pubsec after its incident opened restricts that incident's alerts from then on."""

from __future__ import annotations

import json

from click.testing import CliRunner

from comms.adapters.sqlite_alerts import SqliteAlerts
from comms.alerts import RESTRICTED_FIELDS


def invoke(cli, *args, now="2026-11-27T10:00:00Z"):
    result = CliRunner().invoke(cli, list(args), env={"COMMS_NOW": now})
    assert "Traceback" not in result.output
    return result


def open_incident(cli):
    invoke(cli, "tenants", "add", "acme", "--name", "Acme Corp")
    invoke(cli, "tenants", "add", "stark-federal", "--name", "Stark Federal")
    opened = invoke(
        cli,
        "incident",
        "open",
        "--tenant",
        "acme",
        "--tenant",
        "stark-federal",
        "--severity",
        "S1",
        "--title",
        "Stark sign-in outage",
    )
    assert opened.exit_code == 0, opened.output


def test_a_tenant_marked_pubsec_later_restricts_the_next_alert(cli, store):
    open_incident(cli)
    before = invoke(cli, "cadence", "watch", "--once", now="2026-11-27T10:05:00Z")
    (reminder,) = [json.loads(line) for line in before.output.splitlines()]
    assert reminder["title"] == "Stark sign-in outage"  # not pubsec yet
    flagged = invoke(
        cli, "tenants", "add", "stark-federal", "--name", "Stark Federal", "--pubsec", "--update"
    )
    assert flagged.exit_code == 0, flagged.output
    (row,) = store.clock_rows()
    assert row.pubsec is True
    with SqliteAlerts(store.path) as db:
        assert db.clock_rows() == [row]
    after = invoke(cli, "cadence", "watch", "--once", now="2026-11-27T10:20:00Z")
    (alert,) = [json.loads(line) for line in after.output.splitlines()]
    assert alert["action"] == "alert"
    assert tuple(sorted(alert)) == tuple(sorted(RESTRICTED_FIELDS))
    assert "stark" not in after.output.lower()
    assert "acme" not in after.output.lower()
    check = invoke(cli, "cadence", "check", now="2026-11-27T10:20:00Z")
    assert check.exit_code == 1
    assert "stark" not in check.output.lower()
    status = invoke(cli, "cadence", "status", "--all", now="2026-11-27T10:20:00Z")
    assert "stark" not in status.output.lower()
