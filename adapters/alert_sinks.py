"""Alert sinks: where the cadence watcher sends reminders, alerts and resolves.

Each sink implements the ``comms.ports.AlertSink`` port: a ``name`` and ``send(action)``.
HTTP sinks receive their ``httpx.Client`` in the constructor (the seam tests use to point
them at local servers).  Failures raise ``PublishError(channel=...)``; the message never
contains the webhook URL or routing key, which are secrets.  What is sent comes from
``comms.alerts.payload``, so restricted (pubsec, security) incidents carry only their
reference, severity and deadline.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from comms.alerts import ALERT, ESCALATE, REALERT, REMIND, RESOLVE, Action, payload
from comms.errors import PublishError, UsageError
from comms.notice import ReviewNotice, slack_escape, slack_message

if TYPE_CHECKING:
    import httpx

    from comms.ports import AlertSink

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class StdoutSink:
    """One JSON object per line on a stream (stdout by default): for logs and pipes."""

    name = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def send(self, action: Action) -> None:
        """Write the payload as one JSON line and flush."""
        stream = self.stream or sys.stdout
        try:
            stream.write(json.dumps(payload(action), sort_keys=True) + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError) as exc:  # closed pipe (watch | head) or stream
            raise PublishError(
                f"stdout: cannot write ({type(exc).__name__}); is the reader gone?",
                channel=self.name,
                retryable=True,
            ) from exc


def _post(client: httpx.Client, url: str, body: dict[str, Any], channel: str) -> httpx.Response:
    import httpx

    try:
        response = client.post(url, json=body)
    except httpx.InvalidURL as exc:  # e.g. COMMS_PAGERDUTY_EVENTS_URL set to nonsense
        raise PublishError(
            f"{channel}: the sink's URL is not valid; check it", channel=channel, retryable=False
        ) from exc
    except httpx.TimeoutException as exc:
        raise PublishError(
            f"{channel}: timed out; the alert will be retried", channel=channel, retryable=True
        ) from exc
    except httpx.HTTPError as exc:
        # str(exc) may repeat the URL, which holds a secret for Slack: name the class only.
        raise PublishError(
            f"{channel}: cannot connect ({type(exc).__name__}); the alert will be retried",
            channel=channel,
            retryable=True,
        ) from exc
    if response.status_code >= 300:
        retry_after = response.headers.get("Retry-After")
        try:
            wait = float(retry_after) if retry_after is not None else None
        except ValueError:
            wait = None
        retryable = response.status_code == 429 or response.status_code >= 500
        detail = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        raise PublishError(
            f"{channel}: answered {response.status_code}"
            + (f" ({detail})" if detail else "")
            + ("; the alert will be retried" if retryable else "; check the sink's URL or key"),
            channel=channel,
            status=response.status_code,
            retryable=retryable,
            retry_after=wait,
        )
    return response


class SlackSink:
    """A Slack incoming webhook: a short formatted message with the command to run.

    Every piece of the message built from data (summary, title, tenants, commands) is
    escaped with ``slack_escape``; only the icons and the bold markup are ours.
    """

    name = "slack"

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url

    def send(self, action: Action) -> None:
        """Post the message; Slack answers 200 ``ok``."""
        data = payload(action)
        icon = {
            REMIND: ":alarm_clock:",
            ALERT: ":rotating_light:",
            REALERT: ":rotating_light:",
            ESCALATE: ":sos:",
            RESOLVE: ":white_check_mark:",
        }.get(action.kind, "")
        text = f"{icon} {slack_escape(data.get('text') or data['summary'])}".strip()
        summary = slack_escape(data["summary"])
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{summary}*".strip()}}
        ]
        # Clients show the blocks, not ``text``: the late tenants and title go here too.
        about = [f"for {', '.join(data['late_tenants'])}"] if data.get("late_tenants") else []
        about += [data["title"]] if data.get("title") else []
        if about:
            context = {"type": "mrkdwn", "text": slack_escape(" · ".join(about))}
            blocks.append({"type": "context", "elements": [context]})
        for command in data.get("commands", []):
            code = f"`{slack_escape(command)}`"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": code}})
        _post(self.client, self.url, {"text": text, "blocks": blocks}, self.name)


class SlackReviewNotifier:
    """Review notices (``comms.notice``) to a Slack incoming webhook: the IMOC's "a draft
    waits for you" and the GDCMOC's "changes requested", with the draft page's link."""

    name = "slack"

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url

    def notify(self, notice: ReviewNotice) -> None:
        """Post the notice; Slack answers 200 ``ok``."""
        _post(self.client, self.url, slack_message(notice), "slack")


def review_notifier(
    spec: str, client_factory: Callable[[], httpx.Client], environ: Mapping[str, str]
) -> SlackReviewNotifier:
    """The notifier for ``[notify] review`` (``slack:URL`` or ``slack:env:NAME``); the
    client is made only once the spec is known good."""
    kind, _, value = spec.partition(":")
    if kind.strip().lower() != "slack" or not value:
        raise UsageError("notify.review must be like 'slack:env:COMMS_REVIEW_SLACK_URL'")
    value = _from_env(value, environ, "notify.review")
    if not _is_url(value):
        raise UsageError("notify.review needs an http(s) URL, like slack:https://hooks.slack.com/…")
    return SlackReviewNotifier(client_factory(), value)


class PagerDutySink:
    """PagerDuty Events API v2: alerts trigger, resolves resolve, on one dedup key per episode.

    Reminders are not paged unless ``page_reminders`` is True: a page is for a miss.
    """

    name = "pagerduty"

    def __init__(
        self,
        client: httpx.Client,
        routing_key: str,
        *,
        url: str = PAGERDUTY_EVENTS_URL,
        page_reminders: bool = False,
    ) -> None:
        self.client = client
        self.routing_key = routing_key
        self.url = url
        self.page_reminders = page_reminders

    def send(self, action: Action) -> None:
        """Enqueue a trigger or resolve event; PagerDuty answers 202."""
        if action.kind == REMIND and not self.page_reminders:
            return
        if action.kind == RESOLVE:
            body: dict[str, Any] = {
                "routing_key": self.routing_key,
                "event_action": "resolve",
                "dedup_key": action.dedup_key,
            }
        else:
            data = payload(action)
            severity = {REMIND: "info", ALERT: "error", REALERT: "error", ESCALATE: "critical"}[
                action.kind
            ]
            if action.severity == "S1" and action.kind != REMIND:
                severity = "critical"
            body = {
                "routing_key": self.routing_key,
                "event_action": "trigger",
                "dedup_key": action.dedup_key,
                "payload": {
                    "summary": data["summary"][:1024],
                    "source": "comms-cadence",
                    "severity": severity,
                    "component": action.clock,
                    "group": action.ref,
                    "class": "cadence",
                    "custom_details": data,
                },
            }
        _post(self.client, self.url, body, self.name)


class WebhookSink:
    """A generic webhook: POST the payload as JSON; any 2xx is success."""

    name = "webhook"

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url

    def send(self, action: Action) -> None:
        """POST ``comms.alerts.payload(action)``."""
        _post(self.client, self.url, payload(action), self.name)


SINK_HELP = "stdout, slack:URL, pagerduty:ROUTING_KEY, webhook:URL (a value may be env:NAME)"


def _is_url(value: str) -> bool:
    """An http(s) URL httpx can post to (``http://[::1`` is not: httpx would raise later)."""
    import httpx

    if not value.startswith(("http://", "https://")):
        return False
    try:
        return bool(httpx.URL(value).host)
    except httpx.InvalidURL:
        return False


def _from_env(value: str, environ: Mapping[str, str], what: str) -> str:
    """``value``, or for ``env:NAME`` the variable's value (a secret kept off the command
    line and out of comms.toml); ``UsageError`` when it is not set."""
    if not value.startswith("env:"):
        return value
    name = value[4:]
    if not environ.get(name):
        raise UsageError(f"{what}: environment variable {name} is not set")
    return environ[name]


def build_sinks(
    specs: Sequence[str],
    client_factory: Callable[[], httpx.Client],
    environ: Mapping[str, str] | None = None,
) -> list[AlertSink]:
    """Sinks from ``--sink`` specs; ``client_factory()`` makes the shared httpx client once.

    ``env:NAME`` reads the URL or key from an environment variable, so secrets stay off the
    command line.  ``COMMS_PAGERDUTY_EVENTS_URL`` points the PagerDuty sink elsewhere.
    """
    env = os.environ if environ is None else environ
    sinks: list[AlertSink] = []
    client: httpx.Client | None = None
    for spec in specs:
        kind, _, value = spec.partition(":")
        kind = kind.strip().lower()
        value = _from_env(value, env, f"sink '{kind}'")
        if kind == "stdout" and not value:
            sinks.append(StdoutSink())
            continue
        if kind not in ("slack", "pagerduty", "webhook") or not value:
            raise UsageError(f"'{spec.split(':')[0]}…' is not a sink; use {SINK_HELP}")
        if kind in ("slack", "webhook") and not _is_url(value):
            raise UsageError(f"sink '{kind}' needs an http(s) URL, like {kind}:https://…")
        client = client or client_factory()
        if kind == "slack":
            sinks.append(SlackSink(client, value))
        elif kind == "webhook":
            sinks.append(WebhookSink(client, value))
        else:
            url = env.get("COMMS_PAGERDUTY_EVENTS_URL") or PAGERDUTY_EVENTS_URL
            sinks.append(PagerDutySink(client, value, url=url))
    return sinks
