"""A reviewer in a real browser: sign in, the queue, a finding highlighted in the draft,
approve, then the GDCMOC's ``comms send`` delivers (counted on the stub's side); request
changes and the CLI shows the comment; a wrong token and a form without its CSRF token are
refused.  Everything runs as real processes: the stub, ``comms serve``, the CLI, Chromium."""

from __future__ import annotations

import json
from typing import Any

import pytest
from browser_support import ARTIFACTS, Servers, comms

pytestmark = pytest.mark.slow

SPECULATIVE = "Users probably cannot sign in to the web interface."


def _draft(title: str, impact: str) -> int:
    opened = comms("incident", "open", "--tenant", "acme", "--severity", "S1", "--title", title)
    ref = opened.stdout.split(":")[0].split()[-1]
    made = comms(
        "draft", "investigation-start", "--incident", ref, "--set", f"impact={impact}",
        "--format", "json",
    )  # fmt: skip
    draft_id = int(json.loads(made.stdout)["id"])
    comms("review", "submit", str(draft_id))
    return draft_id


def _sign_in(page: Any, servers: Servers, token: str) -> None:
    page.goto(f"{servers.comms}/sign-in")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_sign_in_review_approve_and_send(page: Any, servers: Servers) -> None:
    draft_id = _draft("Sign-in failures", SPECULATIVE)

    # A wrong token is refused, and nothing of it is shown back.
    _sign_in(page, servers, "comms_this-is-not-anyones-token")
    assert "not a valid comms token" in page.inner_text("main")
    assert "comms_this-is-not-anyones-token" not in page.content()
    assert page.url.endswith("/sign-in")

    _sign_in(page, servers, servers.tokens["sam"])
    assert page.inner_text("h1") == "Review queue"
    row = page.locator("table.queue tbody tr").first
    assert "Sign-in failures" in row.inner_text()
    assert "S1" in row.inner_text()
    row.locator(f'a[href="/drafts/{draft_id}"]').click()
    page.wait_for_load_state()

    mark = page.locator("ol.message mark.warning").first
    assert mark.inner_text() == "probably"
    assert "Impact.Speculation" in page.inner_text("ol.message")
    assert page.locator("mark").count() >= 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "draft-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"draft page screenshot: {shot}")

    page.fill("#approve-note", "Reads well; send it.")
    page.click("text=Approve revision 1 as imoc")
    page.wait_for_load_state()
    assert "Approved revision 1" in page.inner_text("main")
    assert "Ready to send" in page.inner_text("aside")

    sent = comms("send", str(draft_id))
    assert "1 of 1 delivered; draft marked sent" in sent.stdout
    assert servers.sends() == {"acme": 1}
    timeline = comms("timeline", "INC-1").stdout
    assert "approved draft 1 r1 as imoc: Reads well; send it." in timeline
    assert "| sam |" in timeline  # the authenticated reviewer, by name


def test_request_changes_reaches_the_cli(page: Any, servers: Servers) -> None:
    draft_id = _draft("Slow merge requests", "Merge requests load slowly.")
    _sign_in(page, servers, servers.tokens["sam"])
    page.goto(f"{servers.comms}/drafts/{draft_id}")
    note = "Say which pages are slow, and since when."
    page.fill("#changes-note", note)
    page.click("text=Request changes")
    page.wait_for_load_state()
    assert "Sent back with your note" in page.inner_text("main")
    assert note in page.inner_text("aside")
    shown = comms("review", "show", str(draft_id))
    assert f"changes were requested: {note}" in shown.stdout
    refused = comms("send", str(draft_id), check=False)
    assert refused.returncode == 1
    assert servers.sends() == {}


def test_a_form_without_its_csrf_token_is_refused(page: Any, servers: Servers) -> None:
    draft_id = _draft("Slow pipelines", "Pipelines start slowly.")
    _sign_in(page, servers, servers.tokens["sam"])
    page.goto(f"{servers.comms}/drafts/{draft_id}")
    form = page.locator(f'form[action="/drafts/{draft_id}/approve"]')
    form.locator('input[name="csrf"]').evaluate("input => input.remove()")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "403" in page.inner_text("main")
    assert "security token" in page.inner_text("main")
    shown = json.loads(comms("review", "show", str(draft_id), "--format", "json").stdout)
    assert shown["approved_by"] == {}
    # The gdcmoc sees the draft but is offered no approval.
    other = page.context.browser.new_context()
    try:
        theirs = other.new_page()
        _sign_in(theirs, servers, servers.tokens["gus"])
        theirs.goto(f"{servers.comms}/drafts/{draft_id}")
        assert "only an imoc (or admin) approves" in theirs.inner_text("aside")
        assert theirs.locator(f'form[action="/drafts/{draft_id}/approve"]').count() == 0
    finally:
        other.close()
