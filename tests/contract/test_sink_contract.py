"""The alert-sink contract: every sink takes an action or raises ``PublishError``, and no
sink carries a restricted incident's title or tenants.

The HTTP sinks post to a recording server on 127.0.0.1; the stdout sink writes to a stream.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from comms.adapters.alert_sinks import PagerDutySink, SlackSink, StdoutSink, WebhookSink
from comms.alerts import RESOLVE, Action, plan
from comms.cadence import DEFAULT_POLICY, evaluate
from comms.errors import PublishError
from comms.ports import AlertSink
from comms.records import ClockRow
from tests.contract.support import Recorder

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"

# name -> sink posting under the base URL (or writing to the stream)
Build = Callable[[str, httpx.Client, io.StringIO], AlertSink]
SINKS: dict[str, Build] = {
    "stdout": lambda url, client, stream: StdoutSink(stream),
    "slack": lambda url, client, stream: SlackSink(client, f"{url}/services/T0/B0/SECRET"),
    "pagerduty": lambda url, client, stream: PagerDutySink(
        client, ROUTING_KEY, url=f"{url}/v2/enqueue"
    ),
    "webhook": lambda url, client, stream: WebhookSink(client, f"{url}/hook"),
}
HTTP_SINKS = sorted(name for name in SINKS if name != "stdout")


class Bench:
    """The sinks' far side: a recording server and a stream; ``received`` is every payload."""

    def __init__(self, client: httpx.Client) -> None:
        self.server = Recorder()
        self.stream = io.StringIO()
        self.client = client

    def sink(self, name: str, url: str | None = None) -> AlertSink:
        return SINKS[name](url or self.server.url, self.client, self.stream)

    def received(self) -> list[str]:
        lines = self.stream.getvalue().splitlines()
        return lines + [r["body"] for r in self.server.requests]


@pytest.fixture
def bench() -> Iterator[Bench]:
    with httpx.Client(timeout=5.0) as client:
        opened = Bench(client)
        yield opened
        opened.server.close()


def row(**fields: Any) -> ClockRow:
    """An open S1 incident for acme opened at T0, with no update sent yet."""
    base: dict[str, Any] = {
        "ref": "INC-1",
        "title": "Web UI unavailable",
        "severity": "S1",
        "status": "investigating",
        "tenants": ("acme",),
        "pubsec": False,
        "security": False,
        "started_at": T0,
        "created_at": T0,
        "engaged_at": T0,
        "status_changed_at": T0,
        "mitigated_at": None,
        "resolved_at": None,
        "last_update_at": None,
        "promised_update_at": None,
        "rca_internal_at": None,
        "rca_external_at": None,
    }
    base.update(fields)
    return ClockRow(**base)


def alert_and_resolve(incident: ClockRow) -> tuple[Action, Action]:
    """The overdue alert for the customer update, then its resolve once an update went out."""
    now = T0 + 20 * M
    alerted = plan(evaluate([incident], DEFAULT_POLICY, now), {}, now, DEFAULT_POLICY)
    alert = next(a for a in alerted.actions if a.clock == "update")
    answered = incident._replace(last_update_at=now + M)
    later = now + 2 * M
    resolved = plan(
        evaluate([answered], DEFAULT_POLICY, later), alerted.states, later, DEFAULT_POLICY
    )
    resolve = next(a for a in resolved.actions if a.kind == RESOLVE and a.clock == "update")
    return alert, resolve


@pytest.mark.parametrize("name", sorted(SINKS))
def test_each_sink_takes_an_alert_and_its_resolve(bench: Bench, name: str) -> None:
    sink = bench.sink(name)
    assert sink.name == name
    for action in alert_and_resolve(row()):
        sink.send(action)
    received = bench.received()
    assert len(received) == 2
    assert all("INC-1" in payload for payload in received)


@pytest.mark.parametrize("name", HTTP_SINKS)
def test_a_sink_answered_500_raises_a_retryable_publish_error(bench: Bench, name: str) -> None:
    bench.server.status = 500
    sink = bench.sink(name)
    with pytest.raises(PublishError) as caught:
        sink.send(alert_and_resolve(row())[0])
    error = caught.value
    assert (error.channel, error.status, error.retryable) == (name, 500, True)
    assert "SECRET" not in str(error)
    assert ROUTING_KEY not in str(error)


@pytest.mark.parametrize("name", HTTP_SINKS)
def test_an_unreachable_sink_raises_a_retryable_publish_error(bench: Bench, name: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(PublishError) as caught:
        bench.sink(name, refused).send(alert_and_resolve(row())[0])
    assert (caught.value.channel, caught.value.retryable) == (name, True)
    assert "SECRET" not in str(caught.value)
    assert ROUTING_KEY not in str(caught.value)


@pytest.mark.parametrize("flag", ["pubsec", "security"])
@pytest.mark.parametrize("name", sorted(SINKS))
def test_no_sink_carries_a_restricted_incidents_title_or_tenants(
    bench: Bench, name: str, flag: str
) -> None:
    secret = row(
        ref="INC-9", title="Agency portal outage", tenants=("us-agency", "dept-x"), **{flag: True}
    )
    sink = bench.sink(name)
    for action in alert_and_resolve(secret):
        assert action.restricted
        sink.send(action)
    received = bench.received()
    assert len(received) == 2
    for payload in received:
        assert "INC-9" in payload
        for word in ("agency", "portal", "outage", "dept-x"):
            assert word not in payload.lower()


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_slack_escapes_every_field_built_from_data(bench: Bench) -> None:
    """Slack reads ``&``, ``<`` and ``>`` as markup (``<!channel>`` pings everyone); every
    field built from data is escaped per https://api.slack.com/reference/surfaces/formatting."""
    hostile = row(ref="INC-<!here>", title="CI & runners <!channel> <@U123|sam>")
    sink = bench.sink("slack")
    for action in alert_and_resolve(hostile):
        sink.send(action)
    for request in bench.server.requests:
        raw = request["body"]
        assert "<!channel>" not in raw
        assert "<!here>" not in raw
        assert "<@U123" not in raw
        texts = _strings(request["json"])
        assert texts
        for text in texts:
            assert "<" not in text
            assert ">" not in text
            assert "&" not in text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
    alert = bench.server.requests[0]["json"]
    assert "CI &amp; runners &lt;!channel&gt; &lt;@U123|sam&gt;" in alert["text"]
    assert "`comms draft update --incident INC-&lt;!here&gt;`" in [
        b["text"]["text"] for b in alert["blocks"] if b["type"] == "section"
    ]
