"""Deadline maths: the update clock, the other clocks, the policy from config, holding updates."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from comms.cadence import (
    DEFAULT_POLICY,
    DIRECTOR,
    DUE_SOON,
    ENGAGE,
    OK,
    OVERDUE,
    RCA_EXTERNAL,
    RCA_INTERNAL,
    UPDATE,
    Policy,
    evaluate,
    evaluate_row,
    holding_variables,
    in_quiet_hours,
    next_due,
    policy_from_config,
    suggest_next_update,
)
from comms.errors import ConfigError

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def clocks(row, now, policy=DEFAULT_POLICY):
    return {d.clock: d for d in evaluate_row(row, policy, now)}


def test_first_s1_update_is_due_within_15_minutes_of_opening(row):
    update = clocks(row(), T0)[UPDATE]
    assert update.due_at == T0 + 15 * M
    assert update.reason == "first update within 15m of opening"
    assert update.state == DUE_SOON  # the reminder lead covers the whole first window


def test_s1_gap_is_60_minutes_after_the_last_update(row):
    update = clocks(row(last_update_at=T0 + 20 * M), T0 + 30 * M)[UPDATE]
    assert update.due_at == T0 + 80 * M
    assert update.state == OK
    assert update.reason == "S1 investigating: every 1h since the last update"


def test_states_follow_the_reminder_and_due_times(row):
    r = row(last_update_at=T0)
    assert clocks(r, T0 + 44 * M)[UPDATE].state == OK
    assert clocks(r, T0 + 45 * M)[UPDATE].state == DUE_SOON
    assert clocks(r, T0 + 59 * M)[UPDATE].state == DUE_SOON
    late = clocks(r, T0 + 74 * M)[UPDATE]
    assert late.state == OVERDUE
    assert late.delta == 14 * M


def test_a_promised_time_tightens_the_deadline_but_never_loosens_it(row):
    sooner = row(last_update_at=T0, promised_update_at=T0 + 30 * M)
    assert next_due(sooner) == T0 + 30 * M
    assert clocks(sooner, T0)[UPDATE].reason == "promised in the last update"
    later = row(last_update_at=T0, promised_update_at=T0 + 90 * M)
    assert next_due(later) == T0 + 60 * M


def test_a_promise_earlier_than_the_update_itself_is_clamped_to_the_update(row):
    assert next_due(row(last_update_at=T0, promised_update_at=T0 - 5 * M)) == T0


def test_a_stage_change_after_the_last_update_makes_one_due_soon(row):
    r = row(status="identified", last_update_at=T0, status_changed_at=T0 + 20 * M)
    update = clocks(r, T0 + 21 * M)[UPDATE]
    assert update.due_at == T0 + 35 * M
    assert update.reason == "status changed to identified: update within 15m"
    # A stage change already covered by a later update no longer counts.
    covered = row(status="identified", last_update_at=T0 + 25 * M, status_changed_at=T0 + 20 * M)
    assert next_due(covered) == T0 + 85 * M


def test_no_reminder_right_after_an_update(row):
    # Promised 12 minutes out: the 15-minute lead would remind at once; settle holds it back.
    r = row(last_update_at=T0, promised_update_at=T0 + 12 * M)
    assert clocks(r, T0 + 1 * M)[UPDATE].state == OK
    assert clocks(r, T0 + 10 * M)[UPDATE].state == DUE_SOON
    # Never held back past the deadline itself.
    tight = row(last_update_at=T0, promised_update_at=T0 + 5 * M)
    assert clocks(tight, T0 + 4 * M)[UPDATE].state == OK
    assert clocks(tight, T0 + 5 * M)[UPDATE].state == OVERDUE


def test_s2_defaults_to_two_hours_and_s3_has_no_update_clock(row):
    assert next_due(row(severity="S2", last_update_at=T0)) == T0 + 120 * M
    assert next_due(row(severity="S3")) is None
    assert UPDATE not in clocks(row(severity="S4"), T0)


def test_an_s3_promise_is_still_tracked(row):
    assert (
        next_due(row(severity="S3", last_update_at=T0, promised_update_at=T0 + 4 * 60 * M))
        == T0 + 240 * M
    )


def test_a_resolved_incident_owes_one_final_update_then_its_clock_stops(row):
    done = T0 + 60 * M
    owed = row(
        status="resolved", resolved_at=done, status_changed_at=done, last_update_at=T0 + 30 * M
    )
    final = clocks(owed, done + M)[UPDATE]
    assert (final.due_at, final.state) == (done + 15 * M, DUE_SOON)
    assert final.reason == "resolved: final update within 15m"
    assert UPDATE not in clocks(owed._replace(last_update_at=done + 5 * M), done + 6 * M)
    # Chased for a day, then left to the RCA.
    assert clocks(owed, done + timedelta(hours=23))[UPDATE].state == OVERDUE
    assert UPDATE not in clocks(owed, done + timedelta(hours=25))
    # No stage-change rule for S3: nothing owed.
    assert UPDATE not in clocks(owed._replace(severity="S3"), done + M)


def test_engage_clock_only_while_gdcmoc_is_not_engaged(row):
    assert ENGAGE not in clocks(row(), T0)
    pending = clocks(row(severity="S2", engaged_at=None), T0 + 11 * M)[ENGAGE]
    assert (pending.due_at, pending.state) == (T0 + 10 * M, OVERDUE)
    assert ENGAGE not in clocks(row(severity="S3", engaged_at=None), T0)


def test_director_clock_runs_until_a_mitigation_is_in_sight(row):
    director = clocks(row(), T0 + 61 * M)[DIRECTOR]
    assert (director.due_at, director.state) == (T0 + 60 * M, OVERDUE)
    assert clocks(row(), T0 + 50 * M)[DIRECTOR].state == DUE_SOON
    assert DIRECTOR not in clocks(
        row(status="mitigating", status_changed_at=T0 + 40 * M), T0 + 61 * M
    )
    assert DIRECTOR not in clocks(row(mitigated_at=T0 + 30 * M), T0 + 61 * M)
    assert DIRECTOR not in clocks(row(severity="S2"), T0 + 61 * M)


def test_s1_rca_clocks_run_for_a_week_after_resolution(row):
    done = T0 + 120 * M
    r = row(status="resolved", resolved_at=done, rca_internal_at=done + timedelta(days=2))
    found = clocks(r, done + timedelta(days=6, hours=1))
    assert RCA_INTERNAL not in found
    assert found[RCA_EXTERNAL].due_at == done + timedelta(days=7)
    assert found[RCA_EXTERNAL].state == DUE_SOON  # a day's notice
    assert clocks(r, done + timedelta(days=8))[RCA_EXTERNAL].state == OVERDUE
    finished = {
        "status": "resolved",
        "resolved_at": done,
        "status_changed_at": done,
        "last_update_at": done + 5 * M,
    }
    assert clocks(row(severity="S2", **finished), done + 6 * M) == {}


def test_evaluate_sorts_by_due_time_and_marks_restricted_incidents(row):
    rows = [
        row(ref="INC-1", last_update_at=T0 + 30 * M, mitigated_at=T0),
        row(ref="INC-2", pubsec=True, last_update_at=T0, mitigated_at=T0),
        row(ref="INC-3", security=True, last_update_at=T0 + 10 * M, mitigated_at=T0),
    ]
    found = evaluate(rows, DEFAULT_POLICY, T0 + 40 * M)
    assert [d.ref for d in found] == ["INC-2", "INC-3", "INC-1"]
    assert [d.restricted for d in found] == [True, True, False]


def test_quiet_hours_wrap_midnight():
    quiet = (time(22, 0), time(7, 0))
    assert in_quiet_hours(datetime(2026, 11, 27, 23, 30, tzinfo=UTC), quiet)
    assert in_quiet_hours(datetime(2026, 11, 27, 6, 59, tzinfo=UTC), quiet)
    assert not in_quiet_hours(datetime(2026, 11, 27, 7, 0, tzinfo=UTC), quiet)
    assert not in_quiet_hours(datetime(2026, 11, 27, 12, 0, tzinfo=UTC), None)
    assert in_quiet_hours(datetime(2026, 11, 27, 13, 0, tzinfo=UTC), (time(12, 0), time(14, 0)))


def test_policy_from_an_empty_table_uses_the_update_intervals():
    policy = policy_from_config({}, {"S1": 30, "S2": 90})
    assert policy.gap("S1", "monitoring") == 30 * M
    assert policy.gap("S2", "investigating") == 90 * M
    assert policy.gap("S3", "investigating") is None
    assert policy.on_status_change == DEFAULT_POLICY.on_status_change


def test_policy_table_by_severity_and_status():
    policy = policy_from_config(
        {
            "gap": {
                "S1": {"investigating": "30m", "monitoring": 90},
                "S2": {"default": "2h", "monitoring": "off"},
                "S3": "4h",
            },
            "on_status_change": {"S2": "off", "S3": "1h"},
            "reminder_lead": "10m",
            "quiet_after_update": "5m",
            "escalate_after": "1h",
            "realert_every": 20,
            "quiet_hours": "22:00-07:00",
            "rca_within": "5d",
        },
        {"S1": 60, "S2": 120},
    )
    assert policy.gap("S1", "investigating") == 30 * M
    assert policy.gap("S1", "identified") == 60 * M
    assert policy.gap("S1", "monitoring") == 90 * M
    assert policy.gap("S2", "identified") == 120 * M
    assert policy.gap("S2", "monitoring") is None
    assert policy.gap("S3", "mitigating") == 240 * M
    assert policy.on_status_change == {"S1": 15 * M, "S3": 60 * M}
    assert (policy.reminder_lead, policy.settle, policy.escalate_after, policy.realert_every) == (
        10 * M,
        5 * M,
        60 * M,
        20 * M,
    )
    assert policy.quiet_hours == (time(22, 0), time(7, 0))
    assert policy.rca_within == timedelta(days=5)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"gap": {"S1": "soon"}}, "cadence.gap.S1: 'soon' is not a duration"),
        ({"gap": {"S9": "1h"}}, "cadence.gap: unknown severity 'S9'"),
        ({"gap": {"S1": {"paused": "1h"}}}, "cadence.gap.S1: unknown status 'paused'"),
        ({"gap": "60m"}, "cadence.gap must be a table"),
        ({"reminder_lead": -5}, "cadence.reminder_lead: -5 is not a duration"),
        ({"reminder_lead": "off"}, "cadence.reminder_lead: 'off' is not a duration"),
        ({"quiet_hours": "late"}, "cadence.quiet_hours: 'late' is not a window"),
        ({"cadense": 1}, "cadence: unknown key 'cadense'"),
    ],
)
def test_a_malformed_policy_names_the_key(table, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        policy_from_config(table)


def test_quiet_hours_never_cover_s1_or_s2():
    assert Policy().quiet_severities == ("S3", "S4")


def test_suggest_next_update_is_a_round_time_within_the_gap():
    now = datetime(2026, 11, 27, 10, 7, 31, tzinfo=UTC)
    assert suggest_next_update("S1", "investigating", DEFAULT_POLICY, now) == datetime(
        2026, 11, 27, 11, 5, tzinfo=UTC
    )
    assert suggest_next_update("S3", "investigating", DEFAULT_POLICY, now) == datetime(
        2026, 11, 27, 11, 5, tzinfo=UTC
    )


def test_holding_variables_say_unchanged_continuing_and_when_next():
    last = {
        "impact": "Users cannot sign in to the web UI.",
        "actions": "We are restarting services.",
        "next_update": "2026-11-27 11:00 UTC",
        "eta": "12:00 UTC",
        "workaround": "Use the API.",
        "focus_area": "Sign-in",
        "affected_components": "Web UI",
    }
    out = holding_variables(last, now=T0, next_update_at=T0 + 60 * M)
    assert (
        out["impact"]
        == "The impact is unchanged since our last update. Users cannot sign in to the web UI."
    )
    assert "continues" in out["actions"]
    assert "restarting" not in out["actions"]
    assert out["next_update"] == "2026-11-27T11:00:00Z"
    assert (out["workaround"], out["focus_area"], out["affected_components"]) == (
        "Use the API.",
        "Sign-in",
        "Web UI",
    )
    assert out["eta"] == ""  # "12:00 UTC" is not a stored time: cleared, never guessed
    stored_eta = {**last, "eta": "2026-11-27T12:00:00Z"}
    assert holding_variables(stored_eta, now=T0, next_update_at=T0 + 60 * M)["eta"] == (
        "2026-11-27T12:00:00Z"
    )
    passed = holding_variables(stored_eta, now=T0 + 121 * M, next_update_at=T0 + 180 * M)
    assert passed["eta"] == ""  # a passed ETA is not repeated
    again = holding_variables(out, now=T0 + 60 * M, next_update_at=T0 + 120 * M)
    assert again["impact"] == out["impact"]  # no stacked "unchanged" sentences
    bare = holding_variables({}, now=T0, next_update_at=T0 + 30 * M)
    assert set(bare) == {"impact", "actions", "next_update", "eta"}
    assert bare["impact"] == "The impact is unchanged since our last update."
    with pytest.raises(ValueError, match="future"):
        holding_variables(last, now=T0, next_update_at=T0)
