"""Review notices to Slack: what they say, what they never say, and that Slack's markup
cannot be injected through data.  The adapter posts to a recording server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from comms.adapters.alert_sinks import SlackReviewNotifier, review_notifier
from comms.errors import PublishError, UsageError
from comms.models import Draft, DraftState, Incident, MessageKind, Revision, Severity
from comms.notice import CHANGES_REQUESTED, SUBMITTED, review_notice, slack_message
from tests.contract.support import Recorder

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def incident(**fields: object) -> Incident:
    base: dict[str, object] = {
        "ref": "INC-7",
        "title": "Pipelines <!channel> & runners stuck",
        "severity": Severity.S1,
        "tenants": ["acme", "globex"],
        "started_at": T0,
        "created_at": T0,
        "updated_at": T0,
    }
    return Incident(**{**base, **fields})  # type: ignore[arg-type]


def draft() -> Draft:
    revision = Revision(
        draft_id=3,
        number=2,
        subject="Update: pipelines",
        body="We are restoring runners.",
        variables={},
        author="casey",
        created_at=T0,
    )
    return Draft(
        id=3,
        incident_ref="INC-7",
        kind=MessageKind.UPDATE,
        state=DraftState.IN_REVIEW,
        revision=revision,
        created_at=T0,
        updated_at=T0,
    )


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def test_submitted_notice_links_the_draft_page_and_escapes_data() -> None:
    notice = review_notice(
        draft(), incident(), event=SUBMITTED, actor="casey", public_url="https://comms.example/"
    )
    body = slack_message(notice)
    whole = json.dumps(body)
    assert "<!channel>" not in whole
    assert "&lt;!channel&gt; &amp; runners" in whole
    assert "<https://comms.example/drafts/3|Review the draft>" in whole
    assert "INC-7 S1: draft 3 r2 (update) waits for review" in body["text"]
    assert "acme, globex" in whole


def test_without_a_public_url_the_notice_names_the_command() -> None:
    notice = review_notice(draft(), incident(), event=SUBMITTED, actor="casey", public_url=None)
    assert "`comms review show 3`" in json.dumps(slack_message(notice))


@pytest.mark.parametrize("restricted", [{"pubsec": True}, {"security": True}])
def test_restricted_incidents_carry_no_title_tenants_or_comment(
    restricted: dict[str, bool],
) -> None:
    notice = review_notice(
        draft(),
        incident(**restricted),
        event=CHANGES_REQUESTED,
        actor="sam",
        public_url="https://comms.example",
        note="Say 'globex' is affected",
    )
    whole = json.dumps(slack_message(notice))
    for secret in ("Pipelines", "acme", "globex", "Say"):
        assert secret not in whole
    assert "INC-7 S1: changes requested on draft 3 r2" in whole


def test_a_comment_cannot_break_out_of_its_quote_or_mention() -> None:
    note = "Fix line 2 <@U123> & <https://evil.example|click>\nsecond line"
    notice = review_notice(
        draft(), incident(), event=CHANGES_REQUESTED, actor="sam", public_url=None, note=note
    )
    blocks = slack_message(notice)["blocks"]
    quoted = [b for b in blocks if b["type"] == "section" and b["text"]["text"].startswith(">")]
    assert quoted[0]["text"]["text"] == (
        "> Fix line 2 &lt;@U123&gt; &amp; &lt;https://evil.example|click&gt;\n> second line"
    )


def test_the_notifier_posts_to_the_webhook(recorder: Recorder) -> None:
    with httpx.Client(timeout=5) as client:
        notifier = SlackReviewNotifier(client, f"{recorder.url}/services/T0/B0/SECRET")
        notifier.notify(
            review_notice(draft(), incident(), event=SUBMITTED, actor="casey", public_url=None)
        )
    [request] = recorder.requests
    assert request["path"] == "/services/T0/B0/SECRET"
    assert "waits for review" in request["json"]["text"]


def test_a_refusing_webhook_is_a_publish_error_without_its_url(recorder: Recorder) -> None:
    recorder.status = 404
    with httpx.Client(timeout=5) as client:
        notifier = SlackReviewNotifier(client, f"{recorder.url}/services/T0/B0/SECRET")
        with pytest.raises(PublishError) as caught:
            notifier.notify(
                review_notice(draft(), incident(), event=SUBMITTED, actor="c", public_url=None)
            )
    assert "SECRET" not in str(caught.value)
    assert "404" in str(caught.value)


def test_spec_reads_the_url_from_the_environment(recorder: Recorder) -> None:
    url = f"{recorder.url}/hook"
    built = review_notifier("slack:env:HOOK", lambda: httpx.Client(), {"HOOK": url})
    assert built.url == url
    built.client.close()
    with pytest.raises(UsageError, match="HOOK is not set"):
        review_notifier("slack:env:HOOK", httpx.Client, {})
    with pytest.raises(UsageError, match="like 'slack:env"):
        review_notifier("teams:https://x.example", httpx.Client, {})
