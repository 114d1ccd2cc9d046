"""The pages as a reviewer uses them: the queue, a draft with its findings marked, the
decisions, and what the CLI sees of them afterwards."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from click.testing import CliRunner
from web_support import NOW, Web, bearer, form_value, open_draft, redraft

from comms.bootstrap import Runtime
from comms.cli import cli
from comms.models import DraftState, Severity

WebClient = Callable[..., Web]
LEAKY = "Users on web-03 cannot sign in to the web interface."
SPECULATIVE = "Users probably cannot sign in to the web interface."
CLEAN = "Users cannot sign in to the web interface."


def _cli(*args: str, **env: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env or None, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_the_queue_lists_waiting_drafts_most_urgent_first(rt: Runtime, web: WebClient) -> None:
    later = open_draft(rt, CLEAN, tenants=("globex",), severity=Severity.S2, title="Slow CI")
    sooner = open_draft(rt, CLEAN, title="Sign-in failures")
    browser = web()
    browser.sign_in("sam")
    page = browser.get("/")
    assert page.status_code == 200
    html = page.text
    assert html.index(f"/drafts/{sooner.id}") < html.index(f"/drafts/{later.id}")
    assert "Sign-in failures" in html
    assert "Slow CI" in html
    assert ">S1<" in html
    assert ">S2<" in html
    assert "investigation-start" in html
    assert "acme" in html
    assert "globex" in html
    # The first S1 update is due 15 minutes after the opening at NOW (the cadence policy).
    assert "in 15m" in html
    assert "2026-11-27 14:45 UTC" in html


def test_the_draft_page_marks_each_finding_in_place(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, LEAKY)
    browser = web()
    browser.sign_in("sam")
    page = browser.get(f"/drafts/{draft.id}")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'<mark class="error"[^>]*>web-03</mark>', html), html
    assert "Leak.BareHost" in html
    assert "machine name: say which service is affected" in html
    assert "Subject: Investigating: Sign-in failures" in html
    assert "ops@acme.example" in html  # the recipients
    assert "No update has been sent for" in html  # no diff yet
    assert f'name="revision" value="{draft.revision.number}"' in html
    # An error-level finding: approving needs a reason, and the page asks for it.
    assert 'name="reason"' in html


def test_approve_from_the_page_is_what_the_gate_counts(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, SPECULATIVE)
    browser = web()
    browser.sign_in("sam")
    page = browser.get(f"/drafts/{draft.id}")
    assert re.search(r'<mark class="warning"[^>]*>probably</mark>', page.text)
    answer = browser.post(
        f"/drafts/{draft.id}/approve",
        data={
            "csrf": form_value(page.text, "csrf"),
            "revision": str(draft.revision.number),
            "channel": "switchboard",
            "tenant": "acme",
            "note": "fine by me",
        },
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/drafts/{draft.id}?done=approved"
    after = browser.get(answer.headers["location"])
    assert "Approved revision 1" in after.text
    assert "Ready to send" in after.text
    assert rt.raw_store.get_draft(draft.id).state is DraftState.APPROVED
    shown = json.loads(_cli("review", "show", str(draft.id), "--format", "json").stdout)
    assert shown["approved_by"] == {"imoc": "sam"}
    assert shown["send_problems"] == []


def test_a_stale_revision_is_409_and_approves_nothing(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    browser = web()
    browser.sign_in("sam")
    csrf = browser.csrf(f"/drafts/{draft.id}")
    redraft(rt, draft.incident_ref, "Users cannot sign in or reset passwords.")
    answer = browser.post(
        f"/drafts/{draft.id}/approve",
        data={"csrf": csrf, "revision": "1", "channel": "switchboard"},
    )
    assert answer.status_code == 409
    assert "revision 2 now, not 1" in answer.text
    assert rt.raw_store.reviews(draft.id) == []
    assert rt.raw_store.get_draft(draft.id).state is DraftState.DRAFT


def test_request_changes_reaches_the_cli_and_the_notify_hook(
    rt: Runtime, web: WebClient, make_app: Callable[..., Any]
) -> None:
    told: list[tuple[str, int, str, str]] = []

    def notify(event: str, draft: Any, user: Any, note: str) -> None:
        told.append((event, draft.id, user.name, note))

    draft = open_draft(rt, CLEAN)
    browser = web(make_app(notify=notify))
    browser.sign_in("sam")
    csrf = browser.csrf(f"/drafts/{draft.id}")
    note = "Say which pages are affected <and> when it started"
    answer = browser.post(
        f"/drafts/{draft.id}/request-changes",
        data={"csrf": csrf, "revision": "1", "note": note},
    )
    assert answer.status_code == 303, answer.text
    assert told == [("changes-requested", draft.id, "sam", note)]
    page = browser.get(f"/drafts/{draft.id}")
    assert "Say which pages are affected &lt;and&gt; when it started" in page.text
    shown = _cli("review", "show", str(draft.id))
    assert f"changes were requested: {note}" in shown.stdout
    assert rt.raw_store.get_draft(draft.id).state is DraftState.CHANGES_REQUESTED


def test_request_changes_needs_a_note(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    browser = web()
    browser.sign_in("sam")
    csrf = browser.csrf(f"/drafts/{draft.id}")
    answer = browser.post(
        f"/drafts/{draft.id}/request-changes", data={"csrf": csrf, "revision": "1", "note": " "}
    )
    assert answer.status_code == 400
    assert "say what to change" in answer.text


def test_rules_refuse_with_403_and_their_message(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    gdcmoc = web()
    gdcmoc.sign_in("gus")
    page = gdcmoc.get(f"/drafts/{draft.id}")
    assert "only an imoc (or admin) approves" in page.text
    assert "/approve" not in page.text  # no form to press
    answer = gdcmoc.post(
        f"/drafts/{draft.id}/approve",
        data={"csrf": form_value(page.text, "csrf"), "revision": "1"},
    )
    assert answer.status_code == 403
    assert "gus is a gdcmoc" in answer.text
    # Approving over an error-level finding without a reason: refused by the rule.
    leaky = open_draft(rt, LEAKY, title="Another")
    imoc = web()
    imoc.sign_in("sam")
    csrf = imoc.csrf(f"/drafts/{leaky.id}")
    refused = imoc.post(f"/drafts/{leaky.id}/approve", data={"csrf": csrf, "revision": "1"})
    assert refused.status_code == 403
    assert "Leak.BareHost" in refused.text
    over = imoc.post(
        f"/drafts/{leaky.id}/approve",
        data={"csrf": csrf, "revision": "1", "reason": "the host is a public name here"},
    )
    assert over.status_code == 303


def test_the_author_never_approves_their_own_text(rt: Runtime, web: WebClient) -> None:
    from comms.identity import hash_token
    from comms.models import Role

    rt.raw_store.add_user(
        name="ivy", role=Role.IMOC, token_hash=hash_token("comms_ivy-token"), now=NOW, actor="ana"
    )
    incident_draft = open_draft(rt, CLEAN)
    own = redraft(rt, incident_draft.incident_ref, "Users cannot sign in at all.")
    from comms import service
    from comms.models import MessageKind

    mine = service.compose(
        rt.raw_store,
        rt.renderer(),
        ref=own.incident_ref,
        kind=MessageKind.INVESTIGATION_START,
        values={"impact": "Nobody can sign in."},
        now=NOW,
        author="ivy",
        interval_minutes=60,
    ).draft
    browser = web()
    browser.sign_in(secret="comms_ivy-token")
    csrf = browser.csrf(f"/drafts/{mine.id}")
    answer = browser.post(
        f"/drafts/{mine.id}/approve",
        data={"csrf": csrf, "revision": str(mine.revision.number)},
    )
    assert answer.status_code == 403
    assert "four-eyes rule" in answer.text


def test_unknown_draft_and_incident_are_404(rt: Runtime, web: WebClient) -> None:
    browser = web()
    browser.sign_in("sam")
    assert browser.get("/drafts/999").status_code == 404
    assert browser.get("/drafts/abc").status_code == 404
    # Digits to str.isdigit that are no ASCII digits: no 500, no other draft's page.
    assert browser.get("/drafts/%C2%B2").status_code == 404  # superscript two
    assert browser.get("/drafts/%EF%BC%91").status_code == 404  # fullwidth one
    assert browser.get("/api/drafts/%C2%B2", headers=bearer("sam")).status_code == 404
    assert browser.get("/incidents/INC-404").status_code == 404
    assert browser.get("/no/such/page").status_code == 404


def test_the_incident_page_shows_timeline_and_clocks(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    browser = web()
    browser.sign_in("sam")
    page = browser.get(f"/incidents/{draft.incident_ref}")
    assert page.status_code == 200
    html = page.text
    assert "opened S1 incident" in html
    assert "draft 1 (investigation-start) revision 1" in html
    assert "update" in html
    assert "2026-11-27 14:45 UTC" in html
    assert f'href="/drafts/{draft.id}"' in html


def test_a_sent_back_and_redrafted_draft_shows_the_review_history(
    rt: Runtime, web: WebClient
) -> None:
    draft = open_draft(rt, CLEAN)
    browser = web()
    browser.sign_in("sam")
    csrf = browser.csrf(f"/drafts/{draft.id}")
    browser.post(
        f"/drafts/{draft.id}/request-changes",
        data={"csrf": csrf, "revision": "1", "note": "Name the features"},
    )
    redraft(rt, draft.incident_ref, "Users cannot sign in or open merge requests.", now=NOW)
    page = browser.get(f"/drafts/{draft.id}")
    assert "revision 2" in page.text
    assert "requested changes r1" in page.text
    assert "Name the features" in page.text


def test_time_left_counts_from_the_clock(rt: Runtime, web: WebClient, make_app: Any) -> None:
    draft = open_draft(rt, CLEAN)
    late = Runtime(clock=lambda: NOW + timedelta(minutes=30))
    try:
        from comms.web.app import create_app

        browser = web(create_app(late))
        browser.sign_in("sam")
        html = browser.get("/").text
    finally:
        late.close()
    assert "overdue by 15m" in html
    assert f"/drafts/{draft.id}" in html
