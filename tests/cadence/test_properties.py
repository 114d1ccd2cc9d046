"""Hypothesis properties of the deadline maths and the alert state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from comms.alerts import ALERT, REMIND, RESOLVE, AlertState, Key, plan
from comms.cadence import (
    DEFAULT_POLICY,
    DUE_SOON,
    OK,
    OPEN_STATUSES,
    OVERDUE,
    UPDATE,
    evaluate_row,
    next_due,
)
from comms.records import ClockRow

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ORDER = {OK: 0, DUE_SOON: 1, OVERDUE: 2}

minutes = st.integers(min_value=0, max_value=24 * 60).map(lambda m: timedelta(minutes=m))


@st.composite
def rows(draw):
    created = T0 + draw(minutes)
    started = created - draw(minutes)
    changed = created + draw(minutes)
    last = draw(st.none() | minutes.map(lambda d: created + d))
    promised = None
    if last is not None:
        promised = draw(
            st.none() | st.integers(-120, 600).map(lambda m: last + timedelta(minutes=m))
        )
    return ClockRow(
        ref="INC-1",
        title="t",
        severity=draw(st.sampled_from(["S1", "S2", "S3", "S4"])),
        status=draw(st.sampled_from(OPEN_STATUSES)),
        tenants=("acme",),
        pubsec=False,
        security=False,
        started_at=started,
        created_at=created,
        engaged_at=draw(st.none() | st.just(created)),
        status_changed_at=changed,
        mitigated_at=draw(st.none() | st.just(changed)),
        resolved_at=None,
        last_update_at=last,
        promised_update_at=promised,
        rca_internal_at=None,
        rca_external_at=None,
    )


@given(rows())
def test_a_deadline_never_falls_before_the_last_update(row):
    due = next_due(row)
    if due is not None and row.last_update_at is not None:
        assert due >= row.last_update_at
    for deadline in evaluate_row(row, DEFAULT_POLICY, T0):
        if deadline.clock == UPDATE and row.last_update_at is not None:
            assert deadline.due_at >= row.last_update_at
            assert deadline.remind_at <= deadline.due_at


@given(rows(), st.lists(minutes, min_size=2, max_size=8))
def test_states_only_move_forward_and_next_due_never_decreases_as_time_passes(row, offsets):
    previous: dict[str, tuple[int, datetime]] = {}
    for offset in sorted(offsets):
        now = T0 + offset
        for deadline in evaluate_row(row, DEFAULT_POLICY, now):
            rank = ORDER[deadline.state]
            if deadline.clock in previous:
                old_rank, old_due = previous[deadline.clock]
                assert rank >= old_rank
                assert deadline.due_at >= old_due
            previous[deadline.clock] = (rank, deadline.due_at)


@given(rows(), minutes, minutes)
def test_sending_an_update_moves_the_update_deadline_later(row, wait, gap):
    before = next_due(row)
    sent_at = max(row.created_at, row.status_changed_at, row.last_update_at or T0) + wait
    after = next_due(row._replace(last_update_at=sent_at, promised_update_at=None))
    if before is not None and after is not None:
        assert after >= min(before, sent_at)
        assert after > sent_at


@settings(max_examples=50)
@given(rows(), st.lists(minutes, min_size=1, max_size=12))
def test_the_alert_machine_never_repeats_a_first_action_within_an_episode(row, offsets):
    states: dict[Key, AlertState] = {}
    seen: list[tuple[str, str]] = []
    for offset in sorted(set(offsets)):
        now = T0 + offset
        result = plan(evaluate_row(row, DEFAULT_POLICY, now), states, now, DEFAULT_POLICY)
        states = result.states
        seen.extend((a.clock, a.kind) for a in result.actions)
    for clock in {c for c, _ in seen}:
        kinds = [k for c, k in seen if c == clock]
        # The row never changes, so one episode per clock: at most one reminder and one alert,
        # the reminder before the alert, and nothing to resolve.
        assert kinds.count(REMIND) <= 1
        assert kinds.count(ALERT) <= 1
        assert RESOLVE not in kinds
        if REMIND in kinds and ALERT in kinds:
            assert kinds.index(REMIND) < kinds.index(ALERT)
