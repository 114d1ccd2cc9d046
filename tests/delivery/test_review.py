"""Review and the send gate, through the real CLI against the Switchboard stub over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from delivery_support import (
    Stub,
    as_reviewer,
    draft_state,
    events,
    fails,
    invoke,
    ok,
    prepare,
    send_json,
    write_config,
)

from comms import review
from comms.models import Draft, DraftState, Incident, Revision, Severity, Tenant

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _review_rows() -> dict[int, dict[str, object]]:
    return {r["id"]: r for r in json.loads(ok(["review", "list", "--format", "json"]).stdout)}


def test_state_flow_from_draft_to_sent(stub: Stub, store_db: Path) -> None:
    draft = prepare(["acme", "globex"])
    assert draft_state(store_db, draft) == "draft"
    ok(["review", "submit", str(draft)])
    assert _review_rows()[draft]["state"] == "in-review"

    ok(
        ["review", "request-changes", str(draft), "--note", "Say which pages are affected"],
        env=as_reviewer(),
    )
    assert draft_state(store_db, draft) == "changes-requested"
    fails(["send", str(draft)], 1, "changes were requested: Say which pages are affected")

    # A new revision answers the request: back to draft, then review again.
    ok(
        [
            "draft",
            "investigation-start",
            "--incident",
            "INC-1",
            "--set",
            "impact=Merge request pages time out",
        ]
    )
    assert draft_state(store_db, draft) == "draft"
    ok(["review", "submit", str(draft)])
    ok(["review", "approve", str(draft)], env=as_reviewer())
    assert draft_state(store_db, draft) == "approved"
    assert draft not in _review_rows()  # approved drafts no longer wait for review

    # Any edit voids the approval, even one made after it was given.
    ok(
        [
            "draft",
            "investigation-start",
            "--incident",
            "INC-1",
            "--set",
            "impact=Merge request pages fail to load",
        ]
    )
    assert draft_state(store_db, draft) == "draft"
    fails(["send", str(draft)], 1, "needs approval by an incident manager")
    assert stub.per_tenant() == {}

    ok(["review", "approve", str(draft)], env=as_reviewer())
    result = send_json([str(draft)])
    assert result["sent"] is True
    assert draft_state(store_db, draft) == "sent"
    assert stub.per_tenant() == {"acme": 1, "globex": 1}
    assert stub.messages("acme")[-1].count("Merge request pages fail to load") == 1
    decisions = [e["approval_hash"] for e in events(store_db, "review.approved")]
    assert len(decisions) == 2
    assert decisions[0] != decisions[1]
    fails(["review", "approve", str(draft)], 2, "already sent", env=as_reviewer())


def test_approval_for_some_tenants_does_not_cover_more(stub: Stub) -> None:
    draft = prepare(["acme", "globex"])
    ok(["review", "approve", str(draft), "--tenant", "acme"], env=as_reviewer())
    fails(
        ["send", str(draft), "--tenant", "acme", "--tenant", "globex"],
        1,
        "approval was given for other recipients or channels",
    )
    fails(["send", str(draft)], 1, "approval was given for other recipients or channels")
    assert stub.per_tenant() == {}
    ok(["send", str(draft), "--tenant", "acme"])
    # Once acme has it, globex still needs an approval of its own.
    fails(["send", str(draft), "--tenant", "acme", "--tenant", "globex"], 1, "needs approval")
    assert stub.per_tenant() == {"acme": 1}


def test_approval_for_one_channel_does_not_cover_another(stub: Stub) -> None:
    draft = prepare(["acme"])
    ok(["review", "approve", str(draft), "--via", "switchboard"], env=as_reviewer())
    fails(
        ["send", str(draft), "--via", "zendesk"],
        1,
        "approval was given for other recipients or channels",
    )
    fails(["send", str(draft), "--via", "switchboard", "--via", "zendesk"], 1, "needs approval")
    ok(["send", str(draft), "--via", "switchboard"])
    # Sent through Switchboard; Zendesk was never approved and must still be refused.
    fails(["send", str(draft), "--via", "zendesk"], 1, "needs approval")
    assert stub.per_tenant() == {"acme": 1}


def test_the_author_cannot_review_their_own_text(stub: Stub, store_db: Path) -> None:
    draft = prepare(["acme"])
    fails(
        ["review", "approve", str(draft)],
        1,
        f"four-eyes rule: test-gdcmoc wrote revision 1 of draft {draft}, so another person "
        "must review it",
        env=as_reviewer("test-gdcmoc"),
    )
    fails(
        ["review", "request-changes", str(draft), "--note", "x"], 1, "another person must review it"
    )
    assert events(store_db, "review.approved") == []


def test_security_incident_needs_sirt_as_well(stub: Stub) -> None:
    draft = prepare(["acme"], security=True)
    ok(["review", "approve", str(draft)], env=as_reviewer())
    fails(["send", str(draft)], 1, "needs approval by SIRT")
    ok(["review", "approve", str(draft), "--role", "sirt"], env=as_reviewer("riley-sirt"))
    ok(["send", str(draft)])
    assert stub.per_tenant() == {"acme": 1}


def test_skip_review_needs_a_reason_and_is_recorded(stub: Stub, store_db: Path) -> None:
    draft = prepare(["acme"])
    fails(["send", str(draft), "--skip-review"], 2, "--skip-review needs --reason")
    fails(
        ["send", str(draft), "--skip-review", "--reason", "  "], 2, "--skip-review needs --reason"
    )
    assert stub.per_tenant() == {}
    ok(["send", str(draft), "--skip-review", "--reason", "IMOC unreachable, cadence due"])
    assert stub.per_tenant() == {"acme": 1}
    assert events(store_db, "review.skipped") == [
        {"draft_id": draft, "revision": 1, "reason": "IMOC unreachable, cadence due"}
    ]
    timeline = json.loads(ok(["timeline", "INC-1", "--format", "json"]).stdout)
    assert "review.skipped" in json.dumps(timeline)


def test_skip_review_does_not_skip_the_rest_of_the_gate(stub: Stub) -> None:
    draft = prepare(["acme"], impact="Pages served by 10.20.30.40 fail")
    fails(["send", str(draft), "--skip-review", "--reason", "urgent"], 1, "Leak.IPAddress")
    assert stub.per_tenant() == {}


@pytest.mark.parametrize(
    ("severity", "needs_review"), [("S1", True), ("S2", True), ("S3", False), ("S4", False)]
)
def test_default_policy_reviews_s1_and_s2_only(
    stub: Stub, severity: str, needs_review: bool
) -> None:
    draft = prepare(["acme"], severity=severity)
    result = invoke(["send", str(draft)])
    if needs_review:
        assert result.exit_code == 1, result.output
        assert "needs approval by an incident manager" in result.output
        assert stub.per_tenant() == {}
    else:
        assert result.exit_code == 0, result.output
        assert stub.per_tenant() == {"acme": 1}


def test_policy_from_config_can_require_review_for_s3(stub: Stub, tmp_path: Path) -> None:
    write_config(
        tmp_path / "comms.toml",
        switchboard={"timeout_seconds": 0.4},
        review={"required_for": ["S1", "S2", "S3"]},
    )
    draft = prepare(["acme"], severity="S3")
    fails(["send", str(draft)], 1, "needs approval")


def test_s1_review_timeout_lets_the_update_go_and_records_it(
    stub: Stub,
    tmp_path: Path,
    store_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(
        tmp_path / "comms.toml",
        switchboard={"timeout_seconds": 0.4},
        review={"s1_timeout_minutes": 15},
    )
    monkeypatch.setenv("COMMS_NOW", _iso(T0))
    # It promises an update by 12:00, so that only review holds it back until 11:16.
    draft = prepare(["acme"], next_update=_iso(T0 + timedelta(hours=3)))
    # Not submitted for review: no clock runs, however long it waits.
    monkeypatch.setenv("COMMS_NOW", _iso(T0 + timedelta(hours=2)))
    fails(["send", str(draft)], 1, "needs approval")
    monkeypatch.setenv("COMMS_NOW", _iso(T0 + timedelta(hours=2, minutes=1)))
    ok(["review", "submit", str(draft)])
    monkeypatch.setenv("COMMS_NOW", _iso(T0 + timedelta(hours=2, minutes=15)))
    fails(["send", str(draft)], 1, "needs approval")
    assert stub.per_tenant() == {}
    monkeypatch.setenv("COMMS_NOW", _iso(T0 + timedelta(hours=2, minutes=16)))
    ok(["send", str(draft)])
    assert stub.per_tenant() == {"acme": 1}
    assert events(store_db, "review.timed-out") == [
        {"draft_id": draft, "revision": 1, "needs_review_afterwards": True}
    ]


def test_s1_review_timeout_never_overrides_a_request_for_changes(
    stub: Stub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(
        tmp_path / "comms.toml",
        switchboard={"timeout_seconds": 0.4},
        review={"s1_timeout_minutes": 15},
    )
    monkeypatch.setenv("COMMS_NOW", _iso(T0))
    draft = prepare(["acme"])
    ok(["review", "submit", str(draft)])
    ok(["review", "request-changes", str(draft), "--note", "Wrong start time"], env=as_reviewer())
    monkeypatch.setenv("COMMS_NOW", _iso(T0 + timedelta(minutes=30)))
    fails(["send", str(draft)], 1, "changes were requested: Wrong start time")


def test_s1_review_timeout_is_off_by_default(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMS_NOW", _iso(T0))
    draft = prepare(["acme"])
    ok(["review", "submit", str(draft)])
    monkeypatch.setenv("COMMS_NOW", _iso(T0 + timedelta(hours=6)))
    fails(["send", str(draft)], 1, "needs approval")


def test_review_show_marks_findings_and_diffs_against_the_last_sent_update(stub: Stub) -> None:
    first = prepare(["acme"])
    ok(["review", "approve", str(first)], env=as_reviewer())
    ok(["send", str(first)])
    out = ok(
        [
            "draft",
            "update",
            "--incident",
            "INC-1",
            "--set",
            "impact=Merge requests load slowly",
            "--set",
            "actions=We moved traffic off db-replica-2.internal",
            "--format",
            "json",
        ]
    ).stdout
    second = json.loads(out)["id"]

    shown = ok(["review", "show", str(second)]).stdout
    assert f"last sent (draft {first} r1)" in shown
    assert "-What you may experience: Users cannot load merge requests" in shown
    assert "+What you may experience: Merge requests load slowly" in shown
    caret = next(line for line in shown.splitlines() if "Leak.HostName" in line)
    assert "^" in caret
    assert caret.lstrip().startswith("^")
    assert "not ready:" in shown
    assert "Leak.HostName" in shown.split("not ready:")[1]

    data = json.loads(ok(["review", "show", str(second), "--format", "json"]).stdout)
    assert data["needs"] == ["imoc"]
    assert any(f["rule"] == "Leak.HostName" and f["level"] == "error" for f in data["findings"])
    assert data["diff_to_last_sent"].startswith(f"--- last sent (draft {first} r1)")

    fresh = prepare(["globex"])
    assert (
        "no earlier update was sent for this incident" in ok(["review", "show", str(fresh)]).stdout
    )


def test_review_list_json(stub: Stub) -> None:
    first = prepare(["acme"])
    second = prepare(["globex"], impact="Pipelines stay pending on 10.0.0.7")
    ok(["review", "submit", str(second)])
    rows = _review_rows()
    assert set(rows) == {first, second}
    assert rows[first] == {
        "id": first,
        "incident": "INC-1",
        "kind": "investigation-start",
        "state": "draft",
        "revision": 1,
        "author": "test-gdcmoc",
        "findings": 0,
        "errors": 0,
        "subject": "Investigating: Merge requests unavailable",
    }
    assert rows[second]["state"] == "in-review"
    assert rows[second]["errors"] >= 1
    only = json.loads(ok(["review", "list", "--incident", "INC-2", "--format", "json"]).stdout)
    assert [r["id"] for r in only] == [second]


# -- the send gate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("impact", "rule"),
    [
        ("Requests to 172.16.4.20 time out", "Leak.IPAddress"),
        ("The gitaly-03.internal node is slow", "Leak.HostName"),
    ],
)
def test_error_level_findings_block_sending(stub: Stub, impact: str, rule: str) -> None:
    draft = prepare(["acme"], impact=impact)
    reason = ["--reason", "the reviewer judged it harmless"]  # approval needs one now
    ok(["review", "approve", str(draft), *reason], env=as_reviewer())
    fails(["send", str(draft)], 1, "cannot be sent", rule)
    assert stub.per_tenant() == {}


def test_text_naming_another_tenant_is_blocked(stub: Stub) -> None:
    draft = prepare(["acme", "globex"], severity="S3", impact="Same cause as at Globex")
    fails(["send", str(draft), "--tenant", "acme"], 1, "names another tenant (globex)")
    assert stub.per_tenant() == {}
    # To Globex alone, its own name is allowed.
    ok(["send", str(draft), "--tenant", "globex"])
    assert stub.per_tenant() == {"globex": 1}


def test_one_text_to_several_tenants_names_none_of_them(stub: Stub) -> None:
    draft = prepare(
        ["acme", "globex"], severity="S3", impact="Acme Corporation users cannot sign in"
    )
    fails(["send", str(draft)], 1, "names another tenant (Acme Corporation")
    assert stub.per_tenant() == {}


def _draft(subject: str, body: str) -> Draft:
    revision = Revision(draft_id=1, number=1, subject=subject, body=body, author="a", created_at=T0)
    return Draft(
        id=1, incident_ref="INC-1", kind="update", created_at=T0, updated_at=T0, revision=revision
    )


@pytest.mark.parametrize(
    ("subject", "body"), [("Update", ""), ("Update", " \n\t"), ("", "text"), (" ", "text")]
)
def test_send_problems_refuses_an_empty_message(subject: str, body: str) -> None:
    problems = review.send_problems(
        _draft(subject, body),
        status=None,
        blocking_findings=[],
        other_tenants_named=[],
        override_reason=None,
    )
    assert problems == ["the message is empty"]


def test_send_problems_lists_every_reason_and_an_override_replaces_only_the_approval() -> None:
    draft = _draft("Update", "Body")
    status = review.ReviewStatus(needed=("imoc",))
    finding = {"rule": "Leak.IPAddress", "level": "error"}
    problems = review.send_problems(
        draft,
        status=status,
        blocking_findings=[finding],
        other_tenants_named=["Globex"],
        override_reason=None,
    )
    assert len(problems) == 3
    overridden = review.send_problems(
        draft,
        status=status,
        blocking_findings=[finding],
        other_tenants_named=["Globex"],
        override_reason="urgent",
    )
    assert len(overridden) == 2
    assert not any("approval" in p for p in overridden)
    assert (
        review.send_problems(
            draft,
            status=status,
            blocking_findings=[],
            other_tenants_named=[],
            override_reason="urgent",
        )
        == []
    )
    sent = draft.replace(state=DraftState.SENT)
    assert review.send_problems(
        sent, status=None, blocking_findings=[], other_tenants_named=[], override_reason=None
    ) == ["draft 1 was already sent"]


def test_approval_hash_binds_text_recipients_and_channels() -> None:
    base = review.approval_hash("S", "B", ["acme", "globex"], ["switchboard"])
    assert base == review.approval_hash("S", "B", ["globex", "acme", "acme"], ["switchboard"])
    assert (
        len(
            {
                base,
                review.approval_hash("S", "B ", ["acme", "globex"], ["switchboard"]),
                review.approval_hash("S2", "B", ["acme", "globex"], ["switchboard"]),
                review.approval_hash("S", "B", ["acme"], ["switchboard"]),
                review.approval_hash("S", "B", ["acme", "globex"], ["switchboard", "zendesk"]),
            }
        )
        == 5
    )


def test_forbidden_names_and_matching() -> None:
    acme = Tenant(id="acme", name="Acme Corporation", aliases=["acme", "acme.example.com"])
    globex = Tenant(id="globex", name="Globex Industries", aliases=["globex"])
    assert review.forbidden_names([acme], [acme, globex]) == ["Globex Industries", "globex"]
    assert set(review.forbidden_names([acme, globex], [acme, globex])) == {
        "Acme Corporation",
        "acme",
        "acme.example.com",
        "Globex Industries",
        "globex",
    }
    assert review.named_tenants("Also seen at GLOBEX today", ["globex"]) == ["globex"]
    assert review.named_tenants("globex-like and deglobex are not names", ["globex"]) == []
    incident = Incident(
        ref="INC-1",
        title="t",
        severity=Severity.S1,
        tenants=["acme"],
        started_at=T0,
        created_at=T0,
        updated_at=T0,
    )
    status = review.review_status(
        _draft("S", "B"),
        incident,
        [],
        tenants=["acme"],
        channels=["switchboard"],
        policy=review.ReviewPolicy(),
        now=T0,
    )
    assert status.missing == ["imoc"]
    assert not status.ok


def test_a_sirt_approval_alone_does_not_stand_in_for_the_incident_manager() -> None:
    from datetime import UTC, datetime

    from comms.models import Draft, Incident, Review, Revision
    from comms.review import ReviewPolicy, approval_hash, review_status

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    incident = Incident(
        ref="INC-1",
        title="t",
        severity="S1",
        tenants=["acme"],
        started_at=now,
        created_at=now,
        updated_at=now,
        security=True,
    )
    revision = Revision(draft_id=1, number=1, subject="s", body="b", author="a", created_at=now)
    draft = Draft(
        id=1, incident_ref="INC-1", kind="update", created_at=now, updated_at=now, revision=revision
    )
    digest = approval_hash("s", "b", ["acme"], ["switchboard"])
    sirt = Review(
        draft_id=1,
        revision=1,
        reviewer="sec",
        role="sirt",
        decision="approved",
        approval_hash=digest,
        at=now,
    )
    status = review_status(
        draft,
        incident,
        [sirt],
        tenants=["acme"],
        channels=["switchboard"],
        policy=ReviewPolicy(),
        now=now,
    )
    assert status.missing == ["imoc"]
    assert not status.ok
    imoc = Review(
        draft_id=1,
        revision=1,
        reviewer="sam",
        role="imoc",
        decision="approved",
        approval_hash=digest,
        at=now,
    )
    both = review_status(
        draft,
        incident,
        [sirt, imoc],
        tenants=["acme"],
        channels=["switchboard"],
        policy=ReviewPolicy(),
        now=now,
    )
    assert both.ok


# -- a stale promise -------------------------------------------------------------------------


def test_a_draft_whose_promised_time_has_passed_is_refused_until_drafted_again(
    stub: Stub, store_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    monkeypatch.setenv("COMMS_NOW", _iso(written))
    draft = prepare(["acme"])  # S1: "Next update: by 2026-11-27 15:00 UTC"
    ok(["review", "approve", str(draft)], env=as_reviewer())
    monkeypatch.setenv("COMMS_NOW", _iso(written + timedelta(minutes=90)))
    fails(
        ["send", str(draft)],
        1,
        "promises the next update by 2026-11-27 15:00 UTC, which has passed",
        "comms draft investigation-start --incident INC-1",
    )
    assert stub.per_tenant() == {}
    assert draft_state(store_db, draft) == "approved"
    # Drafting it again renders a new time; the new revision is reviewed and goes out.
    ok(["draft", "investigation-start", "--incident", "INC-1"])
    ok(["review", "approve", str(draft)], env=as_reviewer())
    ok(["send", str(draft)])
    (message,) = stub.messages("acme")
    assert "Next update: by 2026-11-27 16:30 UTC" in message


def test_a_stale_promise_is_not_sent_by_a_repeated_send_or_a_resume(
    stub: Stub, store_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    monkeypatch.setenv("COMMS_NOW", _iso(written))
    draft = prepare(["acme"])
    ok(["review", "approve", str(draft)], env=as_reviewer())
    wrong = {"COMMS_SWITCHBOARD_TOKEN": "not-the-token"}
    fails(["send", str(draft)], 3, "401", env=wrong)
    monkeypatch.setenv("COMMS_NOW", _iso(written + timedelta(minutes=61)))
    for args in (["send", str(draft)], ["send", "--resume"]):
        fails(args, 1, "which has passed", "comms draft investigation-start --incident INC-1")
    assert stub.per_tenant() == {}


# -- approving a draft with error-level findings ---------------------------------------------


def test_approving_error_level_findings_is_refused_unless_a_reason_is_recorded(
    stub: Stub, store_db: Path
) -> None:
    draft = prepare(["acme"], impact="Requests to 172.16.4.20 time out")
    fails(
        ["review", "approve", str(draft)],
        1,
        "Leak.IPAddress",
        "--reason",
        env=as_reviewer(),
    )
    assert draft_state(store_db, draft) == "draft"
    assert events(store_db, "review.approved") == []
    fails(["review", "approve", str(draft), "--reason", " "], 2, "reason", env=as_reviewer())
    out = ok(
        ["review", "approve", str(draft), "--reason", "the customer's own VPN address"],
        env=as_reviewer(),
    ).output
    assert "approved by sam-imoc" in out
    assert events(store_db, "review.findings-overridden") == [
        {
            "draft_id": draft,
            "revision": 1,
            "reviewer": "sam-imoc",
            "reason": "the customer's own VPN address",
            "rules": ["Leak.IPAddress"],
        }
    ]
    fails(["send", str(draft)], 1, "Leak.IPAddress")  # sending is still refused
    assert stub.per_tenant() == {}
