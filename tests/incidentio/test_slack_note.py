"""The Slack note on send: the payload (exact text, tenants, channels, escaped), the note for
a draft as delivered, and ``SlackWebPoster`` (slack_sdk) against a Slack Web API fake."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk import WebClient

from comms import service
from comms.adapters.retry import RetryPolicy
from comms.adapters.slack_web import SlackWebPoster, from_settings
from comms.errors import ConfigError, PublishError
from comms.incidentio.mapping import Rules
from comms.incidentio.slack import NotePlan, SlackNote, build_slack_note, slack_note_for
from comms.incidentio.sync import PubsecError, import_incident
from comms.models import Incident, Revision, Severity, Tenant
from comms.notice import slack_escape
from tests.incidentio.drafting import first_update, sent_update
from tests.incidentio.fake_incidentio import FakeIncidentio
from tests.incidentio.fake_slack import FakeSlack

SENT = datetime(2026, 11, 27, 14, 5, tzinfo=UTC)
BOT = "xoxb-test-bot-token"
TENANTS = [Tenant(id="acme", name="Acme & Sons <EU>"), Tenant(id="initech", name="Initech")]


def _incident(**changes: Any) -> Incident:
    base = Incident(
        ref="INC-2291",
        title="Sign-in failures",
        severity=Severity.S1,
        tenants=["acme", "initech"],
        started_at=SENT,
        created_at=SENT,
        updated_at=SENT,
    )
    return base.replace(**changes)


def _revision(body: str, subject: str = "Investigating: Sign-in failures") -> Revision:
    return Revision(
        draft_id=3, number=2, subject=subject, body=body, author="jane", created_at=SENT
    )


def _note(body: str, **changes: Any) -> SlackNote:
    return build_slack_note(
        _incident(**changes),
        _revision(body),
        kind="update",
        channel_id="C02291",
        tenants=TENANTS,
        channels=["switchboard", "zendesk"],
        actor="jane",
        sent_at=SENT,
        permalink="https://app.incident.io/gitlab/incidents/2291",
    )


def test_escape() -> None:
    assert (
        slack_escape("a & b <!channel> <@U1> x>y")
        == "a &amp; b &lt;!channel&gt; &lt;@U1&gt; x&gt;y"
    )
    assert slack_escape("&amp;") == "&amp;amp;"  # a literal entity stays as typed


def test_the_note_holds_the_exact_text_tenants_and_channels() -> None:
    body = "We are investigating.\n\nNext update by 2026-11-27 15:05 UTC.\n"

    payload = _note(body).payload()

    assert payload["channel"] == "C02291"
    assert payload["text"] == (
        "INC-2291: update sent to customers (update, draft 3 r2) to Acme &amp; Sons &lt;EU&gt; "
        "(acme), Initech (initech) via switchboard, zendesk"
    )
    texts = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]
    assert texts == [
        ":outbox_tray: *INC-2291: update sent to customers (update, draft 3 r2)*",
        "*Tenants:* Acme &amp; Sons &lt;EU&gt; (acme), Initech (initech)\n*Channels:* switchboard, zendesk\n"
        "*Sent by* jane at 2026-11-27 14:05 UTC",
        "```Subject: Investigating: Sign-in failures\n\nWe are investigating.\n\nNext update by 2026-11-27 15:05 UTC.```",
    ]
    assert all(b["text"]["verbatim"] for b in payload["blocks"] if b["type"] == "section")
    assert (
        payload["blocks"][-1]["elements"][0]["text"]
        == "<https://app.incident.io/gitlab/incidents/2291|INC-2291 in incident.io>"
    )
    assert (
        payload["link_names"],
        payload["parse"],
        payload["unfurl_links"],
        payload["unfurl_media"],
    ) == (False, "none", False, False)


def test_no_accidental_mentions_or_links() -> None:
    body = "Ping <!here> and <!channel>, <@U024BE7LH>, <#C024BE7LR|general>, <https://evil.example|click>. R&D @here\n"

    payload = _note(body).payload()

    text = "\n".join(b["text"]["text"] for b in payload["blocks"] if b["type"] == "section")
    assert "<!" not in text
    assert "<@" not in text
    assert "<#" not in text
    assert "<https://evil" not in text
    assert "&lt;!here&gt; and &lt;!channel&gt;, &lt;@U024BE7LH&gt;" in text
    assert "R&amp;D @here" in text  # plain @here pings no one without link_names


def test_a_text_with_a_code_fence_is_quoted_instead() -> None:
    body = "Run ```this```\n\nthen wait.\n"

    sections = [b["text"]["text"] for b in _note(body).blocks if b["type"] == "section"]

    assert (
        sections[2]
        == "> Subject: Investigating: Sign-in failures\n>\n> Run ```this```\n>\n> then wait."
    )


def test_a_long_text_is_split_into_sections_slack_accepts() -> None:
    body = "".join(f"Line {n}: {'x' * 70} & more\n" for n in range(400))

    blocks = _note(body).blocks

    code = [b["text"]["text"] for b in blocks if b["type"] == "section"][2:]
    assert len(code) > 1
    assert all(len(c) <= 3000 for c in code)
    joined = "\n".join(c.removeprefix("```").removesuffix("```") for c in code)
    assert joined == slack_escape(_revision(body).text.rstrip("\n"))
    assert len(blocks) <= 50


def test_pubsec_is_never_built() -> None:
    with pytest.raises(
        PubsecError, match="INC-2291 is a PubSec incident: nothing about it goes to Slack"
    ):
        _note("text\n", pubsec=True)


# -- the note for a draft as delivered ----------------------------------------------------------


def test_the_note_for_a_delivered_draft(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.declare("Sign-in failures", severity="Critical", tenants=["acme", "initech"])
    import_incident(store, client, "INC-2291", rules=Rules(), now=now, actor="jane")
    draft_id = sent_update(store, "INC-2291", now)

    plan = slack_note_for(store, draft_id, actor="jane")

    assert plan.note is not None
    assert plan.reason == "note for INC-2291 to Slack channel C02291"
    assert plan.note.channel == "C02291"
    assert "Acme Corp (acme), Initech (initech)" in plan.note.blocks[1]["text"]["text"]
    assert "*Channels:* switchboard" in plan.note.blocks[1]["text"]["text"]
    sent_text = store.get_draft(draft_id).revision.text
    assert plan.note.blocks[2]["text"]["text"] == f"```{slack_escape(sent_text.rstrip())}```"


def test_no_note_before_delivery_without_a_link_or_for_pubsec(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    service.open_incident(
        store, title="Slow pipelines", severity=Severity.S3, tenants=["acme"], now=now, actor="jane"
    )
    unlinked = sent_update(store, "INC-1", now)
    assert slack_note_for(store, unlinked, actor="jane") == NotePlan(
        None, "INC-1 has no incident.io Slack channel"
    )

    fake.declare("Sign-in failures", tenants=["acme"])
    import_incident(store, client, "INC-2291", rules=Rules(), now=now, actor="jane")
    draft = first_update(store, "INC-2291", now, impact="Users cannot sign in.")
    assert (
        slack_note_for(store, draft.id, actor="jane").reason
        == f"draft {draft.id} r1 was not delivered yet"
    )

    service.set_incident(store, "INC-2291", now=now, actor="jane", add_tenants=["fedgov"])
    plan = slack_note_for(store, draft.id, actor="jane")
    assert plan == NotePlan(None, "INC-2291 is PubSec: nothing goes to Slack")


# -- the adapter over slack_sdk, against the fake ---------------------------------------------


@pytest.fixture
def slack() -> Any:
    with FakeSlack(token=BOT, channels={"C02291", "C0OUT"}) as server:
        yield server


def _poster(url: str, sleeps: list[float], token: str = BOT) -> SlackWebPoster:
    client = WebClient(token=token, base_url=url, timeout=2, retry_handlers=[])
    return SlackWebPoster(
        client, policy=RetryPolicy(max_attempts=3, sleep=sleeps.append, jitter=lambda: 1.0)
    )


def test_the_poster_posts_the_payload(slack: FakeSlack, sleeps: list[float]) -> None:
    note = _note("We are investigating.\n")

    ts = _poster(slack.url, sleeps).post(note)

    assert ts == "1764251520.000001"
    posted = slack.posts[0]
    assert {k: v for k, v in posted.items() if k != "ts"} == note.payload()


def test_a_rate_limit_is_waited_out(slack: FakeSlack, sleeps: list[float]) -> None:
    slack.rate_limit(1)

    _poster(slack.url, sleeps).post(_note("We are investigating.\n"))

    assert len(slack.posts) == 1
    assert sleeps == [1.0]


def test_a_refused_token_is_a_config_error(slack: FakeSlack, sleeps: list[float]) -> None:
    with pytest.raises(
        ConfigError, match=r"^Slack refused the bot token in COMMS_SLACK_BOT_TOKEN: invalid_auth$"
    ):
        _poster(slack.url, sleeps, token="xoxb-wrong").post(_note("x\n"))
    assert slack.calls == 1


def test_a_channel_the_bot_is_not_in_says_what_to_do(slack: FakeSlack, sleeps: list[float]) -> None:
    slack.outside.add("C02291")
    with pytest.raises(
        PublishError, match=r"not_in_channel; invite the bot to the channel \(/invite @bot\)"
    ) as caught:
        _poster(slack.url, sleeps).post(_note("x\n"))
    assert caught.value.retryable is False
    assert slack.posts == []


def test_slack_down_is_retried_then_reported(sleeps: list[float]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/"
    with pytest.raises(
        PublishError, match=r"^cannot reach Slack at .*\(gave up after 3 attempts\)$"
    ):
        _poster(url, sleeps).post(_note("x\n"))
    assert len(sleeps) == 2


def test_from_settings(slack: FakeSlack) -> None:
    with pytest.raises(ConfigError, match="no Slack bot token: set COMMS_SLACK_BOT_TOKEN"):
        from_settings({}, {})
    with pytest.raises(ConfigError, match="unknown key 'webhook_url'"):
        from_settings({"webhook_url": "x"}, {"COMMS_SLACK_BOT_TOKEN": BOT})
    poster = from_settings({"base_url": slack.url}, {"COMMS_SLACK_BOT_TOKEN": BOT})
    assert poster.post(_note("x\n")).startswith("1764251520.")
