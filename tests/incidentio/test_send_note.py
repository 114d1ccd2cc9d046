"""The Slack note on ``comms send``, end to end over HTTP: an incident imported from the
incident.io fake, sent through the Switchboard stub, noted through ``slack_sdk`` to the
Slack Web API fake, with the real CLI and the SQLite file it opens.

The note goes to the incident's channel (its id from incident.io) once per revision sent in
full: a repeated ``comms send`` or a ``--resume`` never posts it twice; a note Slack refuses
only warns (exit 0), and the next run posts it; PubSec incidents never reach Slack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from comms.cli import cli
from tests.incidentio.conftest import TOKEN
from tests.incidentio.fake_incidentio import FakeIncidentio
from tests.incidentio.fake_slack import FakeSlack

BOT = "xoxb-test-bot-token"
STUB_TOKEN = "note-test-switchboard-token"
SEND = "POST /api/v1/notifications/*/send"
IMPACT = "Users cannot sign in to the web interface."


class World:
    """The three servers and the CLI pointed at them."""

    def __init__(self, incidentio: FakeIncidentio, slack: FakeSlack, stub: httpx.Client) -> None:
        self.incidentio, self.slack, self.stub = incidentio, slack, stub

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> Result:
        result = self.run(*args, env=env)
        assert result.exit_code == 0, (args, result.output)
        return result

    def approved_draft(self, ref: str = "INC-2291") -> int:
        drafted = self.ok(
            "draft", "investigation-start", "--incident", ref, "--set", f"impact={IMPACT}",
            "--format", "json",
        )  # fmt: skip
        draft = int(json.loads(drafted.stdout)["id"])
        self.ok("review", "approve", str(draft), env={"COMMS_REVIEWER": "sam-imoc"})
        return draft

    def declare_and_import(self, tenants: list[str]) -> None:
        self.incidentio.declare("Sign-in failures", severity="Critical", tenants=tenants)
        self.ok("incident", "import", "INC-2291")

    def faults(self, **config: Any) -> None:
        self.stub.post("/_admin/faults", json=config).raise_for_status()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from comms.adapters.stub_server import serve_in_thread

    with ExitStack() as stack:
        incidentio = stack.enter_context(FakeIncidentio(token=TOKEN))
        slack = stack.enter_context(FakeSlack(token=BOT, channels={"C02291"}))
        url = stack.enter_context(serve_in_thread(tmp_path / "switchboard.db", token=STUB_TOKEN))
        stub = stack.enter_context(
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {STUB_TOKEN}"})
        )
        (tmp_path / "comms.toml").write_text(
            f'[slack]\nbase_url = "{slack.url}"\ntimeout_seconds = 5\n'
            "[switchboard]\ntimeout_seconds = 2\nmax_attempts = 1\n"
        )
        for name, value in {
            "COMMS_SWITCHBOARD_URL": url,
            "COMMS_SWITCHBOARD_TOKEN": STUB_TOKEN,
            "COMMS_INCIDENTIO_URL": incidentio.url,
            "COMMS_INCIDENTIO_TOKEN": TOKEN,
            "COMMS_SLACK_BOT_TOKEN": BOT,
        }.items():
            monkeypatch.setenv(name, value)
        made = World(incidentio, slack, stub)
        made.ok("tenants", "sync")
        yield made


def _notes(stdout_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in stdout_events if e["type"] == "slack.noted"]


def _timeline(world: World, ref: str = "INC-2291") -> list[dict[str, Any]]:
    return list(json.loads(world.ok("timeline", ref, "--format", "json").stdout)["events"])


def test_a_send_posts_the_exact_text_once(world: World) -> None:
    world.declare_and_import(["acme", "globex"])
    draft = world.approved_draft()

    sent = world.run("send", str(draft))
    again = world.run("send", str(draft))
    resumed = world.run("send", "--resume")

    assert sent.exit_code == 0, sent.output
    assert sent.stderr.splitlines()[-1] == f"draft {draft} r1 noted in Slack channel C02291"
    assert sent.stdout.splitlines()[-1] == "2 of 2 delivered; draft marked sent"
    (post,) = world.slack.posts
    assert post["channel"] == "C02291"
    assert post["unfurl_links"] is False
    blocks = post["blocks"]
    assert "Acme Corporation (acme), Globex Industries (globex)" in blocks[1]["text"]["text"]
    assert "*Channels:* switchboard" in blocks[1]["text"]["text"]
    quoted = blocks[2]["text"]["text"]
    assert quoted.startswith("```Subject: Investigating: Sign-in failures\n\n")
    assert IMPACT in quoted
    assert again.exit_code == 0
    assert "noted" not in again.stderr
    assert resumed.stdout == "nothing to resume\n"
    assert len(world.slack.posts) == 1
    (event,) = _notes(_timeline(world))
    assert event["data"]["ts"] == post["ts"]
    markdown = world.ok("timeline", "INC-2291").stdout
    assert (
        "| test-gdcmoc | told Slack channel C02291 what draft 1 r1 said to customers |" in markdown
    )


def test_a_note_slack_refuses_only_warns_and_the_next_run_posts_it(world: World) -> None:
    world.declare_and_import(["acme"])
    world.slack.outside.add("C02291")
    draft = world.approved_draft()

    refused = world.run("send", str(draft))

    assert refused.exit_code == 0, refused.output
    assert refused.stdout.splitlines()[-1] == "1 of 1 delivered; draft marked sent"
    assert refused.stderr.splitlines()[-1] == (
        f"warning: the Slack note for draft {draft} was not posted: Slack refused the note "
        "for channel C02291: not_in_channel; invite the bot to the channel (/invite @bot)"
    )
    assert world.slack.posts == []
    assert _notes(_timeline(world)) == []

    world.slack.outside.clear()
    again = world.run("send", str(draft))
    assert again.exit_code == 0
    assert len(world.slack.posts) == 1
    assert world.run("send", str(draft)).exit_code == 0
    assert len(world.slack.posts) == 1


def test_a_refused_bot_token_only_warns(world: World) -> None:
    world.declare_and_import(["acme"])
    draft = world.approved_draft()

    sent = world.run("send", str(draft), env={"COMMS_SLACK_BOT_TOKEN": "xoxb-revoked"})

    assert sent.exit_code == 0, sent.output
    assert "warning: the Slack note for draft 1 was not posted: Slack refused the bot token" in (
        sent.stderr
    )
    assert world.slack.posts == []


def test_an_interrupted_send_is_noted_when_resume_finishes_it(world: World) -> None:
    world.declare_and_import(["acme", "globex"])
    draft = world.approved_draft()
    world.faults(queue=[{"kind": "500", "match": SEND}], retry_after=0)

    broken = world.run("send", str(draft))
    assert broken.exit_code == 3, broken.output
    assert world.slack.posts == []

    resumed = world.run("send", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stderr.splitlines()[-1] == f"draft {draft} r1 noted in Slack channel C02291"
    assert len(world.slack.posts) == 1
    assert world.run("send", "--resume").stdout == "nothing to resume\n"
    assert len(world.slack.posts) == 1


def test_each_revision_sent_is_noted_once(world: World) -> None:
    world.declare_and_import(["acme"])
    first = world.approved_draft()
    world.ok("send", str(first))
    world.ok(
        "draft", "update", "--incident", "INC-2291", "--set", "actions=We are restarting the service.",
    )  # fmt: skip
    second = int(json.loads(world.ok("drafts", "list", "--format", "json").stdout)[0]["id"])
    world.ok("review", "approve", str(second), env={"COMMS_REVIEWER": "sam-imoc"})
    world.ok("send", str(second))

    assert [p["blocks"][0]["text"]["text"] for p in world.slack.posts] == [
        ":outbox_tray: *INC-2291: update sent to customers (investigation-start, draft 1 r1)*",
        ":outbox_tray: *INC-2291: update sent to customers (update, draft 2 r1)*",
    ]


def test_pubsec_never_reaches_slack(world: World) -> None:
    world.declare_and_import(["acme"])
    world.ok("incident", "set", "INC-2291", "--add-tenant", "stark-federal")
    draft = world.approved_draft()

    sent = world.run("send", str(draft))

    assert sent.exit_code == 0, sent.output
    assert sent.stdout.splitlines()[-1] == "2 of 2 delivered; draft marked sent"
    assert "Slack" not in sent.stderr
    assert world.slack.calls == 0


def test_without_a_bot_token_nothing_is_posted_or_said(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMMS_SLACK_BOT_TOKEN")
    world.declare_and_import(["acme"])
    draft = world.approved_draft()

    sent = world.run("send", str(draft))

    assert sent.exit_code == 0, sent.output
    assert "Slack" not in sent.stderr
    assert world.slack.calls == 0


def test_an_incident_not_from_incident_io_is_not_noted(world: World) -> None:
    world.ok(
        "incident", "open", "--severity", "S2", "--title", "Slow pipelines", "--tenant", "acme"
    )
    draft = world.approved_draft("INC-1")

    sent = world.run("send", str(draft))

    assert sent.exit_code == 0, sent.output
    assert world.slack.calls == 0
