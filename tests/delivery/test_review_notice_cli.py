"""`comms review submit` tells the reviewers on Slack: the notice reaches a recording
webhook on 127.0.0.1, a broken [notify] records nothing, and a Slack that fails never
fails the review (the draft waits for review either way)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from delivery_support import Stub, draft_state, fails, ok, prepare, write_config

from tests.contract.support import Recorder


@pytest.fixture
def slack() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def configure(tmp_path: Path, **tables: dict[str, object]) -> None:
    write_config(tmp_path / "comms.toml", switchboard={"timeout_seconds": 0.4}, **tables)


def test_submit_posts_the_notice_with_the_draft_link(
    stub: Stub, slack: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEW_HOOK", f"{slack.url}/services/T0/B0/SECRET")
    configure(
        tmp_path,
        notify={"review": "slack:env:REVIEW_HOOK"},
        serve={"public_url": "https://comms.example.com"},
    )
    draft = prepare(["acme"])
    result = ok(["review", "submit", str(draft)])
    assert "warning" not in result.output
    [posted] = slack.requests
    assert posted["path"] == "/services/T0/B0/SECRET"
    text = posted["json"]["text"]
    assert f"INC-1 S1: draft {draft} r1 (investigation-start) waits for review" in text
    assert f"https://comms.example.com/drafts/{draft}" in text


def test_the_environment_alone_turns_notices_on(
    stub: Stub, slack: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_REVIEW_SLACK_URL", f"{slack.url}/hook")
    configure(tmp_path)
    draft = prepare(["acme"])
    ok(["review", "submit", str(draft)])
    assert f"`comms review show {draft}`" in slack.requests[0]["body"]


def test_a_failing_slack_warns_and_the_draft_still_waits(
    stub: Stub, slack: Recorder, tmp_path: Path, store_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack.status = 500
    monkeypatch.setenv("REVIEW_HOOK", f"{slack.url}/services/T0/B0/SECRET")
    configure(tmp_path, notify={"review": "slack:env:REVIEW_HOOK"})
    draft = prepare(["acme"])
    result = ok(["review", "submit", str(draft)])
    assert "warning: the review notice was not sent (slack: answered 500" in result.output
    assert "SECRET" not in result.output
    assert draft_state(store_db, draft) == "in-review"


def test_an_unset_webhook_variable_records_nothing(
    stub: Stub, tmp_path: Path, store_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REVIEW_HOOK", raising=False)
    configure(tmp_path, notify={"review": "slack:env:REVIEW_HOOK"})
    draft = prepare(["acme"])
    fails(["review", "submit", str(draft)], 2, "REVIEW_HOOK is not set")
    assert draft_state(store_db, draft) == "draft"


def test_config_check_judges_the_notify_table(tmp_path: Path) -> None:
    path = tmp_path / "comms.toml"
    write_config(path, notify={"review": "teams:https://x.example"})
    fails(["config", "check"], 3, "notify.review must be like 'slack:env:")
    write_config(path, notify={"review": "slack:env:NOT_SET_HERE"})
    ok(["config", "check"])  # an env: name is the process's business, not the file's
