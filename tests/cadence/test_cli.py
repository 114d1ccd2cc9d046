"""`comms cadence` through click's CliRunner and as a real subprocess: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from comms.adapters.sqlite_alerts import SqliteAlerts
from comms.models import Severity

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def run(cli, *args):
    return CliRunner().invoke(cli, ["cadence", *args], catch_exceptions=False)


@pytest.fixture
def incidents(store):
    store.create_incident(
        title="Web UI unavailable",
        severity=Severity.S1,
        tenants=["acme"],
        started_at=T0,
        now=T0,
        actor="g",
    )
    store.create_incident(
        title="Agency portal outage",
        severity=Severity.S1,
        tenants=["us-agency"],
        started_at=T0,
        now=T0,
        actor="g",
        pubsec=True,
    )
    return store


def test_check_exits_0_when_nothing_is_overdue(cli, incidents):
    result = run(cli, "check", "--at", "2026-11-27T10:05Z")
    assert result.exit_code == 0, result.output
    assert "DUE SOON  INC-1  S1  update  due 2026-11-27 10:15 UTC  in 10m" in result.output
    assert result.output.endswith(
        "0 overdue, 2 due soon, 2 incidents tracked at 2026-11-27 10:05 UTC\n"
    )


def test_check_exits_0_on_an_empty_database(cli):
    result = run(cli, "check")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("0 overdue, 0 due soon, 0 incidents tracked")


def test_check_exits_1_when_something_is_overdue_and_never_prints_titles(cli, incidents):
    result = run(cli, "check", "--at", "2026-11-27T10:20Z")
    assert result.exit_code == 1
    assert "OVERDUE   INC-2  S1  update  due 2026-11-27 10:15 UTC  5m ago" in result.output
    assert "Agency" not in result.output
    assert "us-agency" not in result.output


def test_check_json(cli, incidents):
    result = run(cli, "check", "--at", "2026-11-27T11:05Z", "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert (doc["overdue"], doc["due_soon"], doc["incidents"]) == (4, 0, 2)
    assert doc["deadlines"][0] == {
        "ref": "INC-1",
        "severity": "S1",
        "clock": "update",
        "state": "overdue",
        "due_at": "2026-11-27T10:15:00Z",
        "minutes": 50,
        "reason": "first update within 15m of opening",
    }
    assert {d["clock"] for d in doc["deadlines"]} == {"update", "director"}
    assert "Agency" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--at", "teatime"], "--at: 'teatime' is not a time"),
        (["check", "--format", "xml"], "'xml' is not one of"),
        (["snooze", "INC-404", "30m"], "no incident 'INC-404'"),
        (["snooze", "INC-1", "a while"], "snooze: 'a while' is not a duration"),
        (["watch", "--at", "10:00"], "--at only works with --once"),
        (["watch", "--once", "--sink", "teams:https://x"], "'teams…' is not a sink"),
        (["watch", "--once", "--interval", "0s"], "--interval must be at least 1s"),
    ],
)
def test_usage_errors_exit_2_with_one_line(cli, incidents, args, message):
    result = CliRunner().invoke(cli, ["cadence", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_malformed_policy_exits_3(cli, incidents, tmp_path, monkeypatch):
    config = tmp_path / "comms.toml"
    config.write_text('[cadence.gap]\nS1 = "soon"\n')
    monkeypatch.setenv("COMMS_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["cadence", "check"])
    assert result.exit_code == 3
    assert "cadence.gap.S1: 'soon' is not a duration" in result.output


def test_a_corrupt_database_exits_3(cli, tmp_path, monkeypatch):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database " * 500)
    monkeypatch.setenv("COMMS_DATABASE_URL", str(bad))
    result = CliRunner().invoke(cli, ["cadence", "check"])
    assert result.exit_code == 3
    assert "not a readable comms database" in result.output


def test_the_policy_comes_from_comms_toml(cli, incidents, tmp_path, monkeypatch):
    config = tmp_path / "comms.toml"
    config.write_text('[cadence]\nreminder_lead = "5m"\n[cadence.on_status_change]\nS1 = "30m"\n')
    monkeypatch.setenv("COMMS_CONFIG", str(config))
    assert run(cli, "check", "--at", "2026-11-27T10:20Z").exit_code == 0
    result = run(cli, "check", "--at", "2026-11-27T10:20Z", "--format", "json")
    assert json.loads(result.output)["due_soon"] == 0  # due 10:30, reminded from 10:25


def test_status_table_shows_titles_except_for_restricted_incidents(cli, incidents):
    result = run(cli, "status", "--at", "2026-11-27T10:20Z", "--all")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["STATE", "REF", "SEV", "CLOCK", "DUE", "WHEN", "REASON"]
    assert any("INC-1" in line and "Web UI unavailable" in line for line in lines)
    assert "Agency" not in result.output
    assert run(cli, "status", "--at", "2026-11-27T10:01Z").output.count("DUE SOON") == 2


def test_watch_once_sends_to_stdout_and_remembers(cli, incidents):
    first = run(cli, "watch", "--once", "--at", "2026-11-27T10:16Z")
    assert first.exit_code == 0, first.output
    sent = [json.loads(line) for line in first.output.splitlines()]
    assert [(s["ref"], s["action"]) for s in sent] == [("INC-1", "alert"), ("INC-2", "alert")]
    assert "title" not in sent[1]
    again = run(cli, "watch", "--once", "--at", "2026-11-27T10:17Z")
    assert again.output == ""
    logged = [e for e in incidents.events("INC-2") if e.type == "cadence.alert"]
    assert [(e.at, e.actor, e.data) for e in logged] == [
        (
            datetime(2026, 11, 27, 10, 16, tzinfo=UTC),
            "comms-cadence",
            {
                "action": "alert",
                "clock": "update",
                "due_at": "2026-11-27T10:15:00Z",
                "sinks": ["stdout"],
            },
        )
    ]


def test_snooze_holds_the_watcher_back_and_check_still_tells_the_truth(cli, incidents):
    result = run(cli, "snooze", "INC-1", "30m", "--at", "2026-11-27T10:10Z")
    assert result.output == "INC-1: alerts snoozed until 2026-11-27 10:40 UTC.\n"
    watched = run(cli, "watch", "--once", "--at", "2026-11-27T10:16Z")
    assert [json.loads(line)["ref"] for line in watched.output.splitlines()] == ["INC-2"]
    assert run(cli, "check", "--at", "2026-11-27T10:16Z").exit_code == 1
    assert run(cli, "snooze", "INC-1", "0m").output == "INC-1: snooze ended.\n"
    with SqliteAlerts(incidents.path) as db:
        assert db.snoozes(T0) == {}


def test_watch_sends_to_a_webhook(cli, incidents, recorder):
    result = run(
        cli,
        "watch",
        "--once",
        "--at",
        "2026-11-27T10:16Z",
        "--sink",
        f"webhook:{recorder.url}/hook",
    )
    assert result.exit_code == 0
    assert [r["json"]["ref"] for r in recorder.requests] == ["INC-1", "INC-2"]


def test_watch_warns_and_retries_when_a_sink_fails(cli, incidents, recorder):
    recorder.default = (503, {}, "busy")
    failed = CliRunner().invoke(
        cli,
        [
            "cadence",
            "watch",
            "--once",
            "--at",
            "2026-11-27T10:16Z",
            "--sink",
            f"webhook:{recorder.url}/hook",
        ],
    )
    # --once exits 3 when a sink failed, so a cron job or a health check notices.
    assert failed.exit_code == 3
    assert (
        "warning: alert INC-1 update: webhook: answered 503 (busy); the alert will be retried"
        in failed.output
    )
    assert failed.stderr.splitlines()[-1] == (
        "Error: alert sink webhook failed; what it missed goes out at the next check"
    )
    recorder.default = (200, {}, "ok")
    run(
        cli,
        "watch",
        "--once",
        "--at",
        "2026-11-27T10:17Z",
        "--sink",
        f"webhook:{recorder.url}/hook",
    )
    # One refused request, then the sink sat out the tick; both alerts went out the next.
    assert [(r["json"]["ref"], r["json"]["action"]) for r in recorder.requests] == [
        ("INC-1", "alert"),
        ("INC-1", "alert"),
        ("INC-2", "alert"),
    ]


def _comms_argv() -> list[str]:
    """``comms`` as a subprocess, registering ``cadence`` in the process if cli.py lacks it."""
    shim = (
        "import comms.cli as c; c.COMMANDS.setdefault('cadence', "
        "('comms.commands.cadence:cadence', 'Track update deadlines.')); c.main()"
    )
    return [sys.executable, "-c", shim]


def test_check_as_a_subprocess(incidents):
    env = dict(os.environ)
    overdue = subprocess.run(
        [*_comms_argv(), "cadence", "check", "--at", "2026-11-27T10:20Z"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert overdue.returncode == 1, overdue.stderr
    assert (
        overdue.stdout.splitlines()[-1]
        == "2 overdue, 0 due soon, 2 incidents tracked at 2026-11-27 10:20 UTC"
    )
    calm = subprocess.run(
        [*_comms_argv(), "cadence", "check", "--at", "2026-11-27T10:01Z"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert calm.returncode == 0
    broken = subprocess.run(
        [*_comms_argv(), "cadence", "check", "--at", "later"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert broken.returncode == 2
    assert "Traceback" not in broken.stderr


def test_watch_reads_its_sinks_from_the_alerts_table(
    cli, incidents, recorder, tmp_path, monkeypatch
):
    config = tmp_path / "comms.toml"
    config.write_text('[alerts]\nsinks = ["webhook:env:HOOK_URL"]\n')
    monkeypatch.setenv("COMMS_CONFIG", str(config))
    monkeypatch.setenv("HOOK_URL", recorder.url + "/hook")
    result = run(cli, "watch", "--once", "--at", "2026-11-27T10:16Z")
    assert result.exit_code == 0
    assert result.output == ""
    assert [r["json"]["ref"] for r in recorder.requests] == ["INC-1", "INC-2"]
    config.write_text('[alerts]\nsinks = "stdout"\n')
    broken = CliRunner().invoke(cli, ["cadence", "watch", "--once"])
    assert broken.exit_code == 3
    assert "alerts.sinks must be a list" in broken.output


@pytest.mark.parametrize("command", [[], ["status"], ["check"], ["watch"], ["snooze"]])
def test_every_cadence_command_has_help(cli, command):
    result = CliRunner().invoke(cli, ["cadence", *command, "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.startswith("Usage: ")
    assert "Traceback" not in result.output


def test_a_restarted_watcher_process_does_not_repeat_itself(incidents):
    env = {**os.environ, "COMMS_NOW": "2026-11-27T10:16:00Z"}
    argv = [*_comms_argv(), "cadence", "watch", "--once"]
    first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    assert [json.loads(line)["action"] for line in first.stdout.splitlines()] == ["alert", "alert"]
    second = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert (second.returncode, second.stdout) == (0, "")


def test_watch_runs_until_interrupted(incidents):
    import select
    import signal

    env = {**os.environ, "COMMS_NOW": "2026-11-27T10:16:00Z"}
    argv = [*_comms_argv(), "cadence", "watch", "--interval", "1s"]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        first = proc.stdout.readline() if ready else ""
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
    assert first, f"no alert within 30 s; stderr: {err}"
    assert json.loads(first)["ref"] == "INC-1"
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["snooze", "INC-1", "3000000d"], "snooze: at most 30 days at a time"),
        (["snooze", "INC-1", "31d"], "snooze: at most 30 days at a time"),
        (["watch", "--once", "--sink", "webhook:http://[::1"], "sink 'webhook' needs an http(s)"),
        (["watch", "--once", "--sink", "slack:https://"], "sink 'slack' needs an http(s)"),
    ],
)
def test_hostile_durations_and_urls_are_usage_errors_not_tracebacks(cli, incidents, args, message):
    result = CliRunner().invoke(cli, ["cadence", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
