"""The alert state machine: a whole S1 incident replayed minute by minute on the real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from comms.adapters.sqlite_alerts import SqliteAlerts
from comms.alerts import RESTRICTED_FIELDS, payload, plan, simulate
from comms.cadence import DEFAULT_POLICY, Policy, evaluate
from comms.errors import PublishError
from comms.models import DraftState, MessageKind, Severity, Status
from comms.times import isoformat
from comms.watch import tick

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def at(hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return T0.replace(hour=hour, minute=minute)


class RecordingSink:
    """Records what it is sent; fails the first ``fail`` sends."""

    name = "recording"

    def __init__(self, fail: int = 0) -> None:
        self.sent: list[Any] = []
        self.fail = fail

    def send(self, action: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise PublishError(
                "recording: refused", channel="recording", status=503, retryable=True
            )
        self.sent.append(action)


def send_update(store: Any, ref: str, now: datetime, promise: datetime | None) -> None:
    draft = store.add_revision(
        incident_ref=ref,
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="s",
        body="b",
        variables={},
        author="gdcmoc",
        now=now,
    )
    store.set_draft_state(
        draft.id,
        DraftState.SENT,
        now=now,
        actor="gdcmoc",
        event="update.sent",
        data={
            "revision": 1,
            "kind": "update",
            "channel": "switchboard",
            "tenants": ["acme"],
            "sent_at": isoformat(now),
            "next_update_at": isoformat(promise) if promise else None,
        },
    )


def set_status(store: Any, ref: str, now: datetime, status: Status) -> None:
    incident = store.get_incident(ref)
    changes: dict[str, Any] = {"status": status, "updated_at": now}
    if status is Status.MITIGATING:
        changes["mitigated_at"] = now
    if status is Status.RESOLVED:
        changes["resolved_at"] = now
    store.update_incident(
        incident.replace(**changes),
        event="incident.status",
        actor="imoc",
        data={"from": incident.status.value, "to": status.value},
    )


# What happens to the incident, minute by minute.
SCRIPT = {
    "10:50": lambda s: send_update(s, "INC-1", at("10:50"), at("11:30")),
    "11:10": lambda s: set_status(s, "INC-1", at("11:10"), Status.MITIGATING),
    "11:20": lambda s: send_update(s, "INC-1", at("11:20"), at("12:20")),
    "12:30": lambda s: SqliteAlerts(s.path).snooze(
        "INC-1", at("13:00"), actor="gdcmoc", now=at("12:30")
    ),
    "13:10": lambda s: send_update(s, "INC-1", at("13:10"), at("14:10")),
    "13:15": lambda s: set_status(s, "INC-1", at("13:15"), Status.RESOLVED),
    "13:25": lambda s: send_update(s, "INC-1", at("13:25"), None),  # the resolved notice
}

EXPECTED = [
    ("10:00", "remind", "update"),
    ("10:15", "alert", "update"),
    ("10:30", "re-alert", "update"),
    ("10:45", "escalate", "update"),
    ("10:45", "remind", "director"),
    ("10:50", "resolve", "update"),
    ("11:00", "alert", "director"),
    ("11:10", "resolve", "director"),
    ("11:10", "remind", "update"),
    # 11:20: the update answers the reminder; nothing was alerted, so nothing to resolve.
    ("12:05", "remind", "update"),
    ("12:20", "alert", "update"),
    # 12:30-13:00 snoozed: the 12:35 re-alert and 12:50 escalation wait for the snooze.
    ("13:00", "escalate", "update"),
    ("13:10", "resolve", "update"),
    # 13:15 resolved: the final update is due by 13:30 (reminded once the 13:10 one settles).
    ("13:20", "remind", "update"),
]


def replay(
    store: Any, sink: RecordingSink, *, restart_every_tick: bool
) -> list[tuple[str, str, str]]:
    store.create_incident(
        title="Web UI unavailable",
        severity=Severity.S1,
        tenants=["acme"],
        started_at=T0,
        now=T0,
        actor="gdcmoc",
    )
    db = SqliteAlerts(store.path)
    warnings: list[str] = []
    now = T0
    while now <= at("13:40"):
        hhmm = now.strftime("%H:%M")
        if hhmm in SCRIPT:
            SCRIPT[hhmm](store)
        if restart_every_tick:
            db.close()
            db = SqliteAlerts(store.path)
        tick(db, [sink], DEFAULT_POLICY, now, warn=warnings.append)
        now += M
    db.close()
    assert warnings == []
    return [(a.at.strftime("%H:%M"), a.kind, a.clock) for a in sink.sent]


def test_a_whole_s1_incident_replayed_sends_every_action_in_order(store):
    sink = RecordingSink()
    assert replay(store, sink, restart_every_tick=False) == EXPECTED
    # One dedup key per episode: the first update deadline's alert chain shares it.
    first = [a.dedup_key for a in sink.sent[:4]] + [sink.sent[5].dedup_key]
    assert set(first) == {"comms/INC-1/update/20261127T1015Z"}
    assert sink.sent[4].dedup_key != sink.sent[0].dedup_key
    # The log of sent actions lands in the database, for the record.
    with SqliteAlerts(store.path) as db:
        assert [(row[0].strftime("%H:%M"), row[3], row[2]) for row in db.log("INC-1")] == EXPECTED


def test_a_watcher_restarted_every_minute_neither_repeats_nor_loses_alerts(store):
    assert replay(store, RecordingSink(), restart_every_tick=True) == EXPECTED


def test_an_action_a_sink_refused_is_retried_at_the_next_tick_not_lost(store):
    store.create_incident(
        title="t", severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="gdcmoc"
    )
    sink = RecordingSink(fail=2)
    warnings: list[str] = []
    with SqliteAlerts(store.path) as db:
        first = tick(db, [sink], DEFAULT_POLICY, at("10:15"), warn=warnings.append)
        assert (first.sent, first.failed) == ([], ["recording"])
        assert tick(db, [sink], DEFAULT_POLICY, at("10:16"), warn=warnings.append).sent == []
        third = tick(db, [sink], DEFAULT_POLICY, at("10:17"), warn=warnings.append)
        assert ([a.kind for a in third.sent], third.failed) == (["alert"], [])
        assert tick(db, [sink], DEFAULT_POLICY, at("10:18"), warn=warnings.append).sent == []
    assert [(a.at, a.kind) for a in sink.sent] == [(at("10:17"), "alert")]
    assert warnings == ["warning: alert INC-1 update: recording: refused"] * 2


def test_alerts_skip_the_reminder_when_the_deadline_is_already_past(row):
    now = T0 + 20 * M
    result = plan(evaluate([row()], DEFAULT_POLICY, now), {}, now, DEFAULT_POLICY)
    assert [(a.kind, a.clock) for a in result.actions] == [("alert", "update")]


def test_a_tightened_deadline_keeps_its_episode(row):
    first = T0 + 10 * M
    r = row(last_update_at=T0, promised_update_at=T0 + 30 * M)
    state = plan(evaluate([r], DEFAULT_POLICY, first), {}, first, DEFAULT_POLICY).states
    assert state == {}  # settle: no reminder 10 minutes after an update due at 10:30
    mid = T0 + 16 * M
    state = plan(evaluate([r], DEFAULT_POLICY, mid), {}, mid, DEFAULT_POLICY).states
    key = ("INC-1", "update")
    assert state[key].stage == "reminded"
    # A stage change pulls the deadline earlier: same episode, same key, new due time.
    tighter = r._replace(status="identified", status_changed_at=T0 + 17 * M)
    now = T0 + 18 * M
    result = plan(evaluate([tighter], DEFAULT_POLICY, now), state, now, DEFAULT_POLICY)
    assert result.actions == []
    assert result.states[key].due_at == T0 + 30 * M
    assert result.states[key].dedup_key == state[key].dedup_key


def test_quiet_hours_hold_s3_nudges_but_never_s1(row):
    policy = Policy(quiet_hours=(time(22, 0), time(7, 0)))
    night = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
    rows = [
        row(
            ref="INC-1",
            created_at=night - 30 * M,
            status_changed_at=night - 30 * M,
            started_at=night - 30 * M,
        ),
        row(
            ref="INC-3",
            severity="S3",
            created_at=night - 90 * M,
            status_changed_at=night - 90 * M,
            started_at=night - 90 * M,
            last_update_at=night - 90 * M,
            promised_update_at=night - 30 * M,
        ),
    ]
    result = plan(evaluate(rows, policy, night), {}, night, policy)
    assert [(a.ref, a.kind) for a in result.actions] == [("INC-1", "alert")]
    morning = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    later = plan(evaluate(rows, policy, morning), result.states, morning, policy)
    assert ("INC-3", "alert") in [(a.ref, a.kind) for a in later.actions]


def test_a_pubsec_payload_carries_only_ref_severity_and_deadline(row):
    now = T0 + 20 * M
    secret = row(
        ref="INC-7", title="Acme Federal login outage", tenants=("acme-federal",), pubsec=True
    )
    open_row = row(ref="INC-8", title="Beta login outage", tenants=("beta",))
    actions = plan(
        evaluate([secret, open_row], DEFAULT_POLICY, now), {}, now, DEFAULT_POLICY
    ).actions
    restricted = payload(next(a for a in actions if a.ref == "INC-7"))
    assert tuple(sorted(restricted)) == tuple(sorted(RESTRICTED_FIELDS))
    text = json.dumps(restricted).lower()
    assert "acme" not in text
    assert "federal" not in text
    assert "outage" not in text
    assert restricted["ref"] == "INC-7"
    assert restricted["severity"] == "S1"
    assert restricted["due_at"] == "2026-11-27T10:15:00Z"
    # The same kind of alert for an ordinary tenant does carry the title and the command.
    ordinary = payload(next(a for a in actions if a.ref == "INC-8"))
    assert ordinary["title"] == "Beta login outage"
    assert ordinary["tenants"] == ["beta"]
    assert "comms draft update --incident INC-8 --holding" in ordinary["text"]


def test_security_incidents_are_restricted_like_pubsec(row):
    now = T0 + 20 * M
    actions = plan(
        evaluate([row(security=True)], DEFAULT_POLICY, now), {}, now, DEFAULT_POLICY
    ).actions
    assert "title" not in payload(actions[0])


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        ("update", "comms draft update --incident INC-1"),
        ("engage", "comms incident engage INC-1"),
        ("rca-internal", "comms incident set INC-1 --rca-internal-done"),
    ],
)
def test_reminders_name_the_command_to_run(row, clock, expected):
    from comms.alerts import commands

    assert commands("INC-1", clock)[0] == expected


def run_plan(rows, times, policy=DEFAULT_POLICY):
    return [(a.at, a.kind, a.clock) for a in simulate(rows, policy, times)]


def test_the_director_clock_alerts_once_and_never_repeats(row):
    mitigated_update = row(mitigated_at=None, last_update_at=T0 + 5 * M)
    times = [T0 + m * M for m in range(0, 240, 5)]
    director = [s for s in run_plan([mitigated_update], times) if s[2] == "director"]
    assert director == [(T0 + 45 * M, "remind", "director"), (T0 + 60 * M, "alert", "director")]


def test_rca_clocks_repeat_and_escalate_by_the_day(row):
    done = T0 + 120 * M
    resolved = row(
        status="resolved",
        resolved_at=done,
        status_changed_at=done,
        mitigated_at=done,
        last_update_at=done,
        rca_internal_at=done,
    )
    day = timedelta(days=1)
    times = [done + timedelta(hours=h) for h in range(0, 24 * 10, 6)]
    assert run_plan([resolved], times) == [
        (done + 6 * day, "remind", "rca-external"),
        (done + 7 * day, "alert", "rca-external"),
        (done + 8 * day, "escalate", "rca-external"),
        (done + 9 * day, "re-alert", "rca-external"),
    ]


def test_a_failing_sink_sits_out_the_tick_and_the_others_never_get_a_repeat(store):
    for title in ("a", "b", "c"):
        store.create_incident(
            title=title, severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="g"
        )
    flaky = RecordingSink(fail=1)
    steady = RecordingSink()
    warnings: list[str] = []
    with SqliteAlerts(store.path) as db:
        first = tick(db, [flaky, steady], DEFAULT_POLICY, at("10:15"), warn=warnings.append)
        assert (first.sent, first.failed) == ([], ["recording"])
        assert len(warnings) == 2
        assert warnings[1] == "warning: 2 more for recording wait for the next check"
        assert len(db.partial()) == 3  # the steady sink took all three
    # A restarted watcher retries on the sink that missed them, and only there.
    with SqliteAlerts(store.path) as db:
        again = tick(db, [flaky, steady], DEFAULT_POLICY, at("10:16"), warn=warnings.append)
        assert [a.ref for a in again.sent] == ["INC-1", "INC-2", "INC-3"]
        assert db.partial() == set()
    assert [a.ref for a in flaky.sent] == ["INC-1", "INC-2", "INC-3"]
    assert [a.ref for a in steady.sent] == ["INC-1", "INC-2", "INC-3"]
    assert [(a.at, a.kind) for a in steady.sent] == [(at("10:15"), "alert")] * 3


def test_a_resolve_names_no_reason_of_the_next_deadline(row):
    first = plan(evaluate([row()], DEFAULT_POLICY, T0 + 16 * M), {}, T0 + 16 * M, DEFAULT_POLICY)
    answered = row(last_update_at=T0 + 20 * M, promised_update_at=T0 + 31 * M)
    later = T0 + 30 * M
    result = plan(evaluate([answered], DEFAULT_POLICY, later), first.states, later, DEFAULT_POLICY)
    assert [(a.kind, a.due_at) for a in result.actions] == [
        ("resolve", T0 + 15 * M),
        ("remind", T0 + 31 * M),
    ]
    resolved = payload(result.actions[0])
    assert resolved["reason"] is None
    assert resolved["commands"] == []
    assert resolved["summary"] == (
        "INC-1 (S1): customer update due 2026-11-27 10:15 UTC is done; alert resolved"
    )
