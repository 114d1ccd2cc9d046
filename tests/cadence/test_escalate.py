"""The Director clock stops when the escalation is recorded (`comms incident escalate
REF --director`), and `comms cadence check` exits 1 only for what someone must act on now."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from comms import watch
from comms.adapters.sqlite_alerts import SqliteAlerts
from comms.alerts import commands, plan
from comms.cadence import DEFAULT_POLICY, DIRECTOR, cadence_report, evaluate
from comms.errors import NotFoundError, UsageError
from comms.models import DraftState, MessageKind, Severity, Status

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def sent(store, ref, at):
    draft = store.add_revision(
        incident_ref=ref,
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="s",
        body="b",
        variables={},
        author="g",
        now=at - M,
    )
    store.set_draft_state(
        draft.id, DraftState.SENT, now=at, actor="g", event="update.sent", data={}
    )


@pytest.fixture
def s1(store):
    """An S1 opened at 10:00, still investigating, its customer updates on time."""
    store.create_incident(
        title="Web UI unavailable",
        severity=Severity.S1,
        tenants=["acme"],
        started_at=T0,
        now=T0,
        actor="g",
    )
    sent(store, "INC-1", T0 + 10 * M)
    sent(store, "INC-1", T0 + 65 * M)
    return store


def test_a_recorded_escalation_stops_the_director_clock(row):
    now = T0 + 90 * M
    assert [d.clock for d in evaluate([row()], DEFAULT_POLICY, now)].count(DIRECTOR) == 1
    escalated = row(director_engaged_at=T0 + 70 * M)
    assert DIRECTOR not in [d.clock for d in evaluate([escalated], DEFAULT_POLICY, now)]


def test_recording_it_resolves_the_director_alert(row):
    now = T0 + 61 * M
    first = plan(evaluate([row()], DEFAULT_POLICY, now), {}, now, DEFAULT_POLICY)
    assert ("alert", "director") in [(a.kind, a.clock) for a in first.actions]
    later = T0 + 62 * M
    escalated = row(director_engaged_at=T0 + 62 * M)
    result = plan(evaluate([escalated], DEFAULT_POLICY, later), first.states, later, DEFAULT_POLICY)
    assert ("resolve", "director") in [(a.kind, a.clock) for a in result.actions]


def test_the_director_alert_names_the_command_that_records_it():
    assert commands("INC-1", DIRECTOR) == ["comms incident escalate INC-1 --director"]


def test_escalate_records_the_event_and_the_clock_once(s1):
    first = watch.escalate_director(s1, "INC-1", now=T0 + 70 * M, actor="imoc")
    assert (first.at, first.by, first.recorded) == (T0 + 70 * M, "imoc", True)
    again = watch.escalate_director(s1, "INC-1", now=T0 + 80 * M, actor="other")
    assert (again.at, again.by, again.recorded) == (T0 + 70 * M, "imoc", False)
    logged = [e for e in s1.events("INC-1") if e.type == "director.engaged"]
    assert [(e.at, e.actor, e.data) for e in logged] == [(T0 + 70 * M, "imoc", {"by": "imoc"})]
    (row,) = s1.clock_rows()
    assert row.director_engaged_at == T0 + 70 * M  # read from the event log
    with SqliteAlerts(s1.path) as db:
        assert db.clock_rows() == [row]


def test_escalate_refuses_what_cannot_be_escalated(s1):
    with pytest.raises(NotFoundError, match="no incident 'INC-404'"):
        watch.escalate_director(s1, "INC-404", now=T0, actor="imoc")
    incident = s1.get_incident("INC-1")
    s1.update_incident(
        incident.replace(
            status=Status.RESOLVED,
            updated_at=T0 + 100 * M,
            mitigated_at=T0 + 100 * M,
            resolved_at=T0 + 100 * M,
        ),
        event="incident.status",
        actor="imoc",
        data={"from": "investigating", "to": "resolved"},
    )
    with pytest.raises(UsageError, match="INC-1 is resolved"):
        watch.escalate_director(s1, "INC-1", now=T0 + 110 * M, actor="imoc")


def test_the_timeline_report_counts_the_escalation(s1):
    watch.escalate_director(s1, "INC-1", now=T0 + 65 * M, actor="imoc")
    report = cadence_report(
        s1.get_incident("INC-1"), s1.events("INC-1"), DEFAULT_POLICY, T0 + 90 * M
    )
    (director,) = [c for c in report.clocks if c.clock == DIRECTOR]
    assert (director.met_at, director.on_time) == (T0 + 65 * M, False)


# -- the CLI ------------------------------------------------------------------------------


def invoke(cli, *args, env=None):
    return CliRunner().invoke(cli, list(args), env=env)


def test_check_exits_1_for_an_unrecorded_escalation_and_0_once_recorded(cli, s1):
    at = ["--at", "2026-11-27T11:10Z"]
    before = invoke(cli, "cadence", "check", *at)
    assert before.exit_code == 1, before.output
    assert "OVERDUE   INC-1  S1  director  due 2026-11-27 11:00 UTC  10m ago" in before.output
    recorded = invoke(
        cli,
        "incident",
        "escalate",
        "INC-1",
        "--director",
        env={"COMMS_NOW": "2026-11-27T11:05:00Z"},
    )
    assert recorded.exit_code == 0, recorded.output
    assert recorded.output == (
        "INC-1: Dedicated Director engaged at 2026-11-27 11:05 UTC (test-gdcmoc); "
        "the Director clock is stopped.\n"
    )
    after = invoke(cli, "cadence", "check", *at)
    assert after.exit_code == 0, after.output
    assert "director" not in after.output
    again = invoke(cli, "incident", "escalate", "INC-1", "--director")
    assert again.exit_code == 0
    assert again.output == (
        "INC-1: Dedicated Director already engaged at 2026-11-27 11:05 UTC (test-gdcmoc).\n"
    )


def test_an_overdue_rca_is_listed_but_is_not_exit_1(cli, s1):
    incident = s1.get_incident("INC-1")
    s1.update_incident(
        incident.replace(
            status=Status.RESOLVED,
            updated_at=T0 + 100 * M,
            mitigated_at=T0 + 90 * M,
            resolved_at=T0 + 100 * M,
        ),
        event="incident.status",
        actor="imoc",
        data={"from": "investigating", "to": "resolved"},
    )
    sent(s1, "INC-1", T0 + 105 * M)
    result = invoke(cli, "cadence", "check", "--at", "2026-12-05T10:00Z")
    assert result.exit_code == 0, result.output
    assert "OVERDUE   INC-1  S1  rca-internal" in result.output
    doc = json.loads(
        invoke(cli, "cadence", "check", "--at", "2026-12-05T10:00Z", "--format", "json").output
    )
    assert (doc["overdue"], doc["act_now"]) == (2, 0)


def test_check_help_states_the_exit_rule(cli):
    text = invoke(cli, "cadence", "check", "--help").output
    assert "Exit 1 when someone must act now" in text
    assert "comms incident escalate REF --director" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["incident", "escalate", "INC-1"], "say who was engaged: --director"),
        (["incident", "escalate", "INC-404", "--director"], "no incident 'INC-404'"),
        (["incident", "escalate", "--director"], "Missing argument 'REF'"),
    ],
)
def test_escalate_usage_errors_exit_2_with_one_line(cli, s1, args, message):
    result = invoke(cli, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_escalate_as_a_subprocess(s1):
    env = {**os.environ, "COMMS_NOW": "2026-11-27T11:05:00Z"}
    argv = [sys.executable, "-m", "comms", "incident", "escalate", "INC-1", "--director"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "the Director clock is stopped" in done.stdout
    assert (
        "--director"
        in subprocess.run(
            [sys.executable, "-m", "comms", "incident", "escalate", "--help"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        ).stdout
    )
