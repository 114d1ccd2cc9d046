"""Alert sinks against real HTTP servers on 127.0.0.1 (started by the tests)."""

from __future__ import annotations

import io
import json
import socket
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from comms.adapters.alert_sinks import (
    PagerDutySink,
    SlackSink,
    StdoutSink,
    WebhookSink,
    build_sinks,
)
from comms.alerts import plan
from comms.cadence import DEFAULT_POLICY, evaluate
from comms.errors import PublishError, UsageError

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"


@pytest.fixture
def client():
    with httpx.Client(timeout=5.0) as opened:
        yield opened


def actions_for(row, now, previous=None):
    result = plan(evaluate([row], DEFAULT_POLICY, now), previous or {}, now, DEFAULT_POLICY)
    return result.actions, result.states


def test_stdout_sink_writes_one_json_line_per_action(row):
    stream = io.StringIO()
    actions, _ = actions_for(row(), T0 + 20 * M)
    StdoutSink(stream).send(actions[0])
    line = stream.getvalue()
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert json.loads(line)["action"] == "alert"


def test_slack_posts_the_summary_and_the_commands_to_run(row, recorder, client):
    actions, _ = actions_for(row(), T0 + 5 * M)
    SlackSink(client, recorder.url + "/services/T/B/X").send(actions[0])
    sent = recorder.requests[0]
    assert sent["path"] == "/services/T/B/X"
    assert sent["headers"]["Content-Type"] == "application/json"
    body = sent["json"]
    assert body["text"].startswith(
        ":alarm_clock: INC-1 (S1): customer update due 2026-11-27 10:15 UTC"
    )
    assert "comms draft update --incident INC-1 --holding" in body["text"]
    commands = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"][1:]
    assert commands == [
        "`comms draft update --incident INC-1`",
        "`comms draft update --incident INC-1 --holding`",
    ]


def test_pagerduty_triggers_and_resolves_on_one_dedup_key(row, recorder, client):
    sink = PagerDutySink(client, ROUTING_KEY, url=recorder.url + "/v2/enqueue")
    recorder.default = (202, {"Content-Type": "application/json"}, '{"status":"success"}')
    reminders, states = actions_for(row(), T0 + 5 * M)
    sink.send(reminders[0])
    assert recorder.requests == []  # a reminder is not a page
    alerts, states = actions_for(row(), T0 + 16 * M, states)
    sink.send(alerts[0])
    answered = row(last_update_at=T0 + 20 * M)
    resolves, _ = actions_for(answered, T0 + 21 * M, states)
    assert [a.kind for a in resolves] == ["resolve"]
    sink.send(resolves[0])
    trigger, resolve = (r["json"] for r in recorder.requests)
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "comms-cadence"
    assert trigger["payload"]["summary"].startswith("OVERDUE INC-1 (S1)")
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }
    assert trigger["dedup_key"] == "comms/INC-1/update/20261127T1015Z"


def test_pagerduty_pubsec_event_has_no_customer_data(row, recorder, client):
    recorder.default = (202, {}, "{}")
    secret = row(ref="INC-9", title="Agency portal outage", tenants=("us-agency",), pubsec=True)
    actions, _ = actions_for(secret, T0 + 20 * M)
    PagerDutySink(client, ROUTING_KEY, url=recorder.url).send(actions[0])
    raw = recorder.requests[0]["body"].lower()
    assert "agency" not in raw
    assert "outage" not in raw
    details = recorder.requests[0]["json"]["payload"]["custom_details"]
    assert {
        "ref": details["ref"],
        "severity": details["severity"],
        "due_at": details["due_at"],
    } == {"ref": "INC-9", "severity": "S1", "due_at": "2026-11-27T10:15:00Z"}


def test_webhook_posts_the_payload(row, recorder, client):
    actions, _ = actions_for(row(), T0 + 20 * M)
    WebhookSink(client, recorder.url + "/hook").send(actions[0])
    assert recorder.requests[0]["json"]["dedup_key"] == "comms/INC-1/update/20261127T1015Z"
    assert recorder.requests[0]["json"]["title"] == "Web UI unavailable"


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [(500, {}, True, None), (429, {"Retry-After": "7"}, True, 7.0), (404, {}, False, None)],
)
def test_http_failures_become_publish_errors_without_secrets(
    row, recorder, client, status, headers, retryable, retry_after
):
    recorder.answers.append((status, headers, "no_service"))
    actions, _ = actions_for(row(), T0 + 20 * M)
    secret_url = recorder.url + "/services/SECRET/TOKEN"
    with pytest.raises(PublishError) as caught:
        SlackSink(client, secret_url).send(actions[0])
    error = caught.value
    assert (error.channel, error.status, error.retryable, error.retry_after) == (
        "slack",
        status,
        retryable,
        retry_after,
    )
    assert str(error).startswith(f"slack: answered {status} (no_service)")
    assert "SECRET" not in str(error)


def test_an_unreachable_sink_is_a_retryable_publish_error(row, client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    actions, _ = actions_for(row(), T0 + 20 * M)
    sink = PagerDutySink(client, ROUTING_KEY, url=f"http://127.0.0.1:{port}/v2/enqueue")
    with pytest.raises(PublishError) as caught:
        sink.send(actions[0])
    assert caught.value.channel == "pagerduty"
    assert caught.value.retryable
    assert ROUTING_KEY not in str(caught.value)


def test_build_sinks_parses_specs_and_reads_secrets_from_the_environment(client):
    made = []

    def factory():
        made.append(client)
        return client

    sinks = build_sinks(
        [
            "stdout",
            "slack:https://hooks.slack.test/x",
            "pagerduty:env:PD_KEY",
            "webhook:http://127.0.0.1:9/h",
        ],
        factory,
        environ={"PD_KEY": ROUTING_KEY, "COMMS_PAGERDUTY_EVENTS_URL": "http://127.0.0.1:9/e"},
    )
    assert [s.name for s in sinks] == ["stdout", "slack", "pagerduty", "webhook"]
    assert sinks[2].routing_key == ROUTING_KEY
    assert sinks[2].url == "http://127.0.0.1:9/e"
    assert len(made) == 1  # one shared client
    with pytest.raises(UsageError, match="'teams…' is not a sink"):
        build_sinks(["teams:https://x"], factory, environ={})
    with pytest.raises(UsageError, match="PD_KEY is not set"):
        build_sinks(["pagerduty:env:PD_KEY"], factory, environ={})
    with pytest.raises(UsageError, match="needs an http"):
        build_sinks(["slack:hooks.slack.com/x"], factory, environ={})


def test_slack_blocks_name_the_late_tenant_clients_show_blocks_not_text(row, recorder, client):
    late = row(
        tenants=("acme", "globex"), last_update_at=T0 + 10 * M, lagging=(("globex", None, None),)
    )
    actions, _ = actions_for(late, T0 + 20 * M)
    SlackSink(client, recorder.url + "/services/T/B/X").send(actions[0])
    blocks = recorder.requests[0]["json"]["blocks"]
    context = [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]
    assert context == ["for globex · Web UI unavailable"]
