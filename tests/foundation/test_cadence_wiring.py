"""The cadence pieces wired into the foundation commands: --holding, timeline, engage, RCA."""

from __future__ import annotations

import json
import os
from datetime import timedelta

from foundation_support import NOW, fails, invoke, ok


def _mark_sent(draft_id: int, minutes: int) -> None:
    """Record the draft as sent, as `comms send` does when every delivery has landed."""
    from comms.adapters.sqlite_store import SqliteStore
    from comms.models import DraftState

    store = SqliteStore(os.environ["COMMS_DATABASE_URL"])
    draft = store.get_draft(draft_id)
    store.set_draft_state(
        draft_id,
        DraftState.SENT,
        now=NOW + timedelta(minutes=minutes),
        actor="test",
        event="update.sent",
        data={
            "revision": draft.revision.number,
            "kind": draft.kind.value,
            "channel": "switchboard",
            "tenants": ["acme"],
            "next_update_at": draft.revision.variables.get("next_update"),
        },
    )
    store.close()


def test_default_next_update_is_stored_as_the_promise(s1: str) -> None:
    out = json.loads(
        ok(
            [
                "draft",
                "investigation-start",
                "--incident",
                s1,
                "--set",
                "impact=Users cannot sign in",
                "--format",
                "json",
            ]
        ).output
    )
    assert out["variables"]["next_update"] == "2026-11-27T15:30:00Z"


def test_holding_update_repeats_impact_and_promises_the_next_time(s1: str) -> None:
    ok(
        [
            "draft",
            "update",
            "--incident",
            s1,
            "--set",
            "impact=Users cannot sign in",
            "--set",
            "actions=We are restoring the sign-in service",
            "--set",
            "eta=14:50",
        ]
    )
    _mark_sent(1, 0)
    out = json.loads(
        ok(["draft", "update", "--incident", s1, "--holding", "--format", "json"]).output
    )
    body = out["body"]
    assert "Users cannot sign in" in body
    assert "Next update: by 2026-11-27 15:30 UTC" in body
    assert "Expected restoration" in body  # the ETA (14:50) is still ahead of 14:30
    assert out["findings"] == [] or all(f["level"] != "error" for f in out["findings"])
    assert out["id"] == 2  # a new draft: the sent one is closed


def test_holding_needs_a_sent_update_and_the_update_kind(s1: str) -> None:
    fails(["draft", "update", "--incident", s1, "--holding"], 2, "nothing was sent")
    fails(["draft", "resolved", "--incident", s1, "--holding"], 2, "update message only")


def test_timeline_ends_with_the_cadence_report(s1: str) -> None:
    ok(["draft", "investigation-start", "--incident", s1, "--set", "impact=Users cannot sign in"])
    _mark_sent(1, 5)
    text = ok(["timeline", s1]).output
    assert "## Update cadence" in text
    assert "S1 updates on time: 1 of 1" in text
    data = json.loads(ok(["timeline", s1, "--format", "json"]).output)
    assert data["cadence"]["summary"].startswith("S1 updates on time: 1 of 1")
    assert data["cadence"]["updates"][0]["on_time"] is True
    assert {c["clock"] for c in data["cadence"]["clocks"]} >= {"engage", "director"}


def test_engage_and_rca_flags_are_logged_and_stop_their_clocks(s1: str) -> None:
    ok(["incident", "engage", s1])
    ok(["incident", "set", s1, "--status", "resolved", "--confirmed-by", "Sam"])
    ok(["incident", "set", s1, "--rca-internal-done", "--rca-external-done"])
    events = json.loads(ok(["timeline", s1, "--format", "json"]).output)["events"]
    types = [e["type"] for e in events]
    assert types.count("gdcmoc.engaged") == 2
    assert "rca.internal" in types
    assert "rca.external" in types
    clocks = json.loads(ok(["timeline", s1, "--format", "json"]).output)["cadence"]["clocks"]
    rca = [c for c in clocks if c["clock"].startswith("rca")]
    assert len(rca) == 2
    assert all(c["met_at"] for c in rca)


def test_set_with_nothing_names_the_rca_flags(s1: str) -> None:
    result = invoke(["incident", "set", s1])
    assert result.exit_code == 2
    assert "--rca-internal-done" in result.stderr
