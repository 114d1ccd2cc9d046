"""The send gate and the reviewer's side as library calls: no click, a real SqliteStore file.

The same rules the CLI tests in test_review.py check through ``comms review`` and
``comms send``, asked of ``comms.review`` directly, as a review server would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from delivery_support import AUTHOR, core_draft, event_data

from comms import review, service
from comms.adapters.sqlite_store import SqliteStore
from comms.errors import EXIT_FINDINGS, EXIT_USAGE, RefusedError, UsageError
from comms.models import DraftState, MessageKind, Severity, Tenant
from comms.render import Renderer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NEEDS_IMOC = (
    "needs approval by an incident manager (comms review approve {id}), "
    "or --skip-review --reason '…'"
)
STALE = "the approval was given for other recipients or channels; ask for a new review"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "gate.db") as opened:
        opened.put_tenant(Tenant(id="acme", name="Acme Corporation", aliases=["acme"]))
        opened.put_tenant(Tenant(id="globex", name="Globex Industries", aliases=["globex"]))
        opened.put_tenant(Tenant(id="initech", name="Initech"))
        yield opened


def gate(store: Any, draft_id: int, **options: Any) -> review.Gate:
    settings: dict[str, Any] = {
        "tenants": (),
        "channels": ["switchboard"],
        "override_reason": None,
        "policy": review.ReviewPolicy(),
        "lint_config": None,
        "now": T0,
    }
    return review.gate(store, draft_id, **{**settings, **options})


def decide(store: Any, draft_id: int, **options: Any) -> review.Decision:
    settings: dict[str, Any] = {
        "decision": "approved",
        "role": "imoc",
        "reviewer": "sam",
        "note": "",
        "tenants": (),
        "channels": ["switchboard"],
        "now": T0,
    }
    return review.decide(store, draft_id, **{**settings, **options})


def test_an_s1_draft_needs_an_approval_and_passes_with_one(store: Any) -> None:
    draft = core_draft(store, ["acme", "globex"], now=T0)
    refused = gate(store, draft.id)
    assert refused.problems == (NEEDS_IMOC.format(id=draft.id),)
    assert not refused.ok
    assert refused.audience == ("acme", "globex")
    assert refused.status is not None
    assert refused.status.missing == ["imoc"]

    done = decide(store, draft.id)
    assert (done.audience, done.channels, done.review.reviewer) == (
        ("acme", "globex"),
        ("switchboard",),
        "sam",
    )
    assert store.get_draft(draft.id).state is DraftState.APPROVED
    passed = gate(store, draft.id)
    assert passed.ok
    assert passed.problems == ()
    assert passed.status is not None
    assert passed.status.approved_by == {"imoc": "sam"}


def test_the_gate_reads_and_writes_nothing_else(store: Any) -> None:
    draft = core_draft(store, ["acme"], now=T0)
    before = store.events(draft.incident_ref)
    gate(store, draft.id, override_reason="urgent")
    assert store.events(draft.incident_ref) == before
    assert store.deliveries(draft_id=draft.id) == []


def test_an_override_replaces_the_approval_and_nothing_else(store: Any) -> None:
    clean = core_draft(store, ["acme"], now=T0)
    assert gate(store, clean.id, override_reason="IMOC unreachable").ok
    leaky = core_draft(store, ["acme"], now=T0, impact="Pages served by 10.20.30.40 fail")
    (problem,) = gate(store, leaky.id, override_reason="urgent").problems
    assert "error-level lint finding(s): Leak.IPAddress" in problem


def test_an_approval_covers_only_its_recipients_and_channels(store: Any) -> None:
    draft = core_draft(store, ["acme", "globex"], now=T0)
    decide(store, draft.id, tenants=["acme"])
    assert gate(store, draft.id, tenants=["acme"]).ok
    assert STALE in gate(store, draft.id).problems
    assert STALE in gate(store, draft.id, tenants=["acme"], channels=["zendesk"]).problems
    both = gate(store, draft.id, tenants=["acme"], channels=["switchboard", "zendesk"])
    assert STALE in both.problems


def test_another_tenants_name_is_refused_and_ones_own_allowed(store: Any) -> None:
    draft = core_draft(
        store, ["acme", "globex"], now=T0, severity="S3", impact="Same cause as at Globex"
    )
    problems = gate(store, draft.id, tenants=["acme"]).problems
    assert any("names another tenant (globex)" in p for p in problems)
    assert gate(store, draft.id, tenants=["globex"]).ok
    # One text to both: neither may be named.
    assert any("names another tenant" in p for p in gate(store, draft.id).problems)


def test_unknown_and_unaffected_tenants_are_usage_errors(store: Any) -> None:
    draft = core_draft(store, ["acme"], now=T0)
    with pytest.raises(UsageError, match="tenant 'globex' is not affected by INC-1") as caught:
        gate(store, draft.id, tenants=["globex"])
    assert caught.value.exit_code == EXIT_USAGE
    assert "comms incident set INC-1 --add-tenant globex" in str(caught.value)
    incident = store.get_incident(draft.incident_ref)
    assert review.audience(incident, ["acme", "acme"]) == ["acme"]
    assert review.audience(incident, []) == ["acme"]
    # An incident record may name a tenant this store has not synced yet.
    store.create_incident(
        title="t", severity=Severity.S3, tenants=["hooli"], started_at=T0, now=T0, actor=AUTHOR
    )
    other = store.add_revision(
        incident_ref="INC-2",
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="Update",
        body="Body",
        variables={},
        author=AUTHOR,
        now=T0,
    )
    with pytest.raises(UsageError, match="tenant 'hooli' is unknown here; run comms tenants sync"):
        gate(store, other.id)


def test_the_policy_decides_which_severities_need_review(store: Any) -> None:
    draft = core_draft(store, ["acme"], now=T0, severity="S3")
    free = gate(store, draft.id)
    assert free.ok
    assert free.status is None
    strict = review.ReviewPolicy(required_for=frozenset({"S1", "S2", "S3"}))
    assert gate(store, draft.id, policy=strict).problems == (NEEDS_IMOC.format(id=draft.id),)


def test_a_security_incident_needs_sirt_as_well(store: Any) -> None:
    draft = core_draft(store, ["acme"], now=T0, security=True)
    decide(store, draft.id)
    (problem,) = gate(store, draft.id).problems
    assert problem.startswith("needs approval by SIRT")
    decide(store, draft.id, role="sirt", reviewer="riley")
    assert gate(store, draft.id).ok


def test_the_s1_review_timeout_runs_from_submission(store: Any) -> None:
    policy = review.ReviewPolicy(s1_timeout_minutes=15)
    # It promises an update by 12:00, so that only review holds it back at 11:16.
    draft = core_draft(store, ["acme"], now=T0, next_update="2026-03-02T12:00:00Z")
    assert not gate(store, draft.id, policy=policy, now=T0 + timedelta(hours=2)).ok
    at = T0 + timedelta(hours=2, minutes=1)
    submitted = review.submit(store, draft.id, actor=AUTHOR, now=at)
    assert submitted.state is DraftState.IN_REVIEW
    assert review.submitted_at(store.events(draft.incident_ref), submitted) == at
    assert event_data(store, draft.incident_ref, "review.submitted")[-1]["revision"] == 1
    waiting = gate(store, draft.id, policy=policy, now=T0 + timedelta(hours=2, minutes=15))
    assert not waiting.ok
    late = gate(store, draft.id, policy=policy, now=T0 + timedelta(hours=2, minutes=16))
    assert late.ok
    assert late.status is not None
    assert late.status.timed_out


def test_a_request_for_changes_blocks_even_after_the_timeout(store: Any) -> None:
    policy = review.ReviewPolicy(s1_timeout_minutes=15)
    draft = core_draft(store, ["acme"], now=T0)
    review.submit(store, draft.id, actor=AUTHOR, now=T0)
    done = decide(store, draft.id, decision="changes-requested", note="Wrong start time")
    assert done.review.decision == "changes-requested"
    assert store.get_draft(draft.id).state is DraftState.CHANGES_REQUESTED
    later = gate(store, draft.id, policy=policy, now=T0 + timedelta(minutes=30))
    assert later.problems == ("changes were requested: Wrong start time",)


def test_the_author_never_reviews_their_own_text(store: Any) -> None:
    draft = core_draft(store, ["acme"], now=T0)
    for decision in ("approved", "changes-requested"):
        with pytest.raises(
            RefusedError,
            match=f"four-eyes rule: {AUTHOR} wrote revision 1 of draft {draft.id}, so another "
            "person must review it",
        ):
            decide(store, draft.id, decision=decision, reviewer=AUTHOR, note="x")
    assert store.reviews(draft.id) == []
    assert event_data(store, draft.incident_ref, "review.approved") == []


def test_decide_refuses_a_sent_draft_and_unknown_words(store: Any) -> None:
    draft = core_draft(store, ["acme"], now=T0)
    with pytest.raises(UsageError, match="unknown decision 'maybe'"):
        decide(store, draft.id, decision="maybe")
    with pytest.raises(UsageError, match="unknown review role 'cto'"):
        decide(store, draft.id, role="cto")
    with pytest.raises(UsageError, match="must name the channels"):
        decide(store, draft.id, channels=[])
    store.set_draft_state(
        draft.id, DraftState.SENT, now=T0, actor=AUTHOR, event="update.sent", data={}
    )
    with pytest.raises(UsageError, match="already sent; review the next draft instead"):
        decide(store, draft.id)
    with pytest.raises(UsageError, match=f"draft {draft.id} was already sent"):
        review.submit(store, draft.id, actor=AUTHOR, now=T0)
    assert gate(store, draft.id).problems[0] == f"draft {draft.id} was already sent"


def test_the_review_queue_and_the_inspection(store: Any) -> None:
    first = core_draft(store, ["acme"], now=T0)
    decide(store, first.id)
    assert review.waiting(store) == []
    store.set_draft_state(
        first.id, DraftState.SENT, now=T0, actor=AUTHOR, event="update.sent", data={}
    )
    second = service.compose(
        store,
        Renderer(),
        ref=first.incident_ref,
        kind=MessageKind.UPDATE,
        values={"impact": "Merge requests load slowly", "actions": "We added capacity"},
        now=T0 + timedelta(minutes=30),
        author=AUTHOR,
        interval_minutes=60,
    ).draft
    assert [d.id for d in review.waiting(store, incident_ref=first.incident_ref)] == [second.id]
    assert review.waiting(store, incident_ref="INC-9") == []

    seen = review.inspect_draft(
        store,
        second.id,
        tenants=(),
        channels=["switchboard"],
        policy=review.ReviewPolicy(),
        lint_config=None,
        now=T0 + timedelta(minutes=31),
    )
    assert seen.text == second.revision.text
    assert seen.diff.startswith(f"--- last sent (draft {first.id} r1)\n+++ draft {second.id} r1")
    assert "+What you may experience: Merge requests load slowly" in seen.diff
    assert seen.gate.problems == (NEEDS_IMOC.format(id=second.id),)
    assert seen.channels == ("switchboard",)


# -- a promise already past at send time ---------------------------------------------------


def test_a_promise_already_past_at_send_time_is_refused(store: Any) -> None:
    draft = core_draft(store, ["acme"], now=T0)  # "Next update: by 10:00 UTC" (S1: 60 min)
    decide(store, draft.id)
    assert review.promised_update(draft) == T0 + timedelta(minutes=60)
    assert gate(store, draft.id, now=T0 + timedelta(minutes=59)).ok
    late = gate(store, draft.id, now=T0 + timedelta(minutes=90))
    assert late.problems == (
        "the message promises the next update by 2026-03-02 10:00 UTC, which has passed; "
        f"draft it again for a new time: comms draft investigation-start --incident "
        f"{draft.incident_ref}",
    )
    assert late.late == late.problems[0]
    assert gate(store, draft.id, now=T0 + timedelta(minutes=60)).late is not None


def test_a_draft_promising_no_time_is_never_late(store: Any) -> None:
    draft = core_draft(store, ["acme"], now=T0, severity="S3")
    composed = service.compose(
        store,
        Renderer(),
        ref=draft.incident_ref,
        kind=MessageKind.RESOLVED,
        values={"impact": "Merge requests failed to load", "resolution": "We fixed it."},
        now=T0,
        author=AUTHOR,
        interval_minutes=None,
    )
    assert review.promised_update(composed.draft) is None
    assert gate(store, composed.draft.id, now=T0 + timedelta(days=2)).late is None


# -- approving a draft with error-level findings --------------------------------------------


def test_approving_error_level_findings_needs_a_reason_which_is_recorded(store: Any) -> None:
    draft = core_draft(store, ["acme"], now=T0, impact="Pages served by 10.20.30.40 fail")
    with pytest.raises(review.ApprovalRefusedError) as refused:
        decide(store, draft.id)
    assert refused.value.exit_code == EXIT_FINDINGS
    assert "1 error-level lint finding(s): Leak.IPAddress" in str(refused.value)
    assert "--reason" in str(refused.value)
    assert store.reviews(draft.id) == []
    with pytest.raises(UsageError, match="needs a reason"):
        decide(store, draft.id, override_reason="  ")
    done = decide(store, draft.id, override_reason="the address is the customer's own VPN")
    assert done.blocking_rules == ("Leak.IPAddress",)
    assert store.get_draft(draft.id).state is DraftState.APPROVED
    assert event_data(store, draft.incident_ref, "review.findings-overridden") == [
        {
            "draft_id": draft.id,
            "revision": 1,
            "reviewer": "sam",
            "reason": "the address is the customer's own VPN",
            "rules": ["Leak.IPAddress"],
        }
    ]
    # The findings still block the send itself.
    assert any("Leak.IPAddress" in p for p in gate(store, draft.id).problems)


def test_a_request_for_changes_needs_no_reason_whatever_the_findings(store: Any) -> None:
    draft = core_draft(store, ["acme"], now=T0, impact="Pages served by 10.20.30.40 fail")
    done = decide(store, draft.id, decision="changes-requested", note="Remove the address")
    assert done.review.decision == "changes-requested"
    assert event_data(store, draft.incident_ref, "review.findings-overridden") == []


# -- what the gate keeps of a text it checked ---------------------------------------------


def test_a_redaction_in_place_is_checked_again(store: Any) -> None:
    """The checks are kept by content, never by draft and revision: a redaction rewrites
    a revision without a new number, and the gate must see the new text."""
    draft = core_draft(store, ["acme"], now=T0, impact="Pages served by 10.20.30.40 fail")
    assert any("Leak.IPAddress" in p for p in gate(store, draft.id).problems)
    assert any("Leak.IPAddress" in p for p in gate(store, draft.id).problems)  # kept
    revision = draft.revision
    store.redact_revision(
        draft.id,
        revision.number,
        subject=revision.subject,
        body=revision.body.replace("10.20.30.40", "[redacted]"),
        variables=revision.variables,
        actor="ana",
        now=T0,
        data={"reason": "an internal address"},
    )
    assert store.get_draft(draft.id).revision.number == revision.number
    assert not any("Leak.IPAddress" in p for p in gate(store, draft.id).problems)


def test_the_checks_follow_the_tenants_the_incident_and_the_lint_configuration(
    store: Any,
) -> None:
    from comms.lint.config import LintConfig

    draft = core_draft(
        store, ["acme"], now=T0, severity="S3", impact="As seen at Hooli, pages fail"
    )
    assert gate(store, draft.id).ok
    store.put_tenant(Tenant(id="hooli", name="Hooli"))  # a new tenant: its name is another's
    assert any("names another tenant (Hooli)" in p for p in gate(store, draft.id).problems)
    store.put_tenant(Tenant(id="hooli", name="Hooli XYZ"))  # renamed: no longer named
    assert gate(store, draft.id).ok

    leaky = core_draft(store, ["acme"], now=T0, severity="S3", impact="Host 10.20.30.40 fails")
    assert any("Leak.IPAddress" in p for p in gate(store, leaky.id).problems)
    # Another configuration object is another key, whatever it holds.
    quiet = LintConfig(rules={"Leak.IPAddress": "off"})
    assert not any("Leak.IPAddress" in p for p in gate(store, leaky.id, lint_config=quiet).problems)
    assert any("Leak.IPAddress" in p for p in gate(store, leaky.id, lint_config=None).problems)
    loud = LintConfig(rules={"Leak.IPAddress": "error"})
    assert any("Leak.IPAddress" in p for p in gate(store, leaky.id, lint_config=loud).problems)


def test_the_kept_checks_are_bounded_and_the_least_recently_used_go_first() -> None:
    kept = review._Kept(2)
    keys = [(review._Same(None), bytes([n])) for n in range(3)]
    checks = [review.TextChecks(({"rule": f"R{n}"},), ()) for n in range(3)]
    kept.put(keys[0], checks[0])
    kept.put(keys[1], checks[1])
    assert kept.get(keys[0]) is checks[0]  # now the most recently used
    kept.put(keys[2], checks[2])
    assert (kept.get(keys[0]), kept.get(keys[1]), kept.get(keys[2])) == (checks[0], None, checks[2])
    # A configuration is its own key, not one equal to it.
    from comms.lint.config import LintConfig

    config = LintConfig()
    assert config == LintConfig()
    assert review._Same(config) == review._Same(config)
    assert review._Same(config) != review._Same(LintConfig())
