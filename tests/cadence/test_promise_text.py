"""The promise the customer got is the one in the sent text, not the ``next_update`` variable:
``promise_in_text`` reads it, and the cadence report measures against it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comms.cadence import DEFAULT_POLICY, cadence_report, promise_in_text
from comms.models import DraftState, MessageKind, Severity
from comms.render import Renderer, automatic_context
from comms.times import format_time, isoformat

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


@pytest.mark.parametrize("kind", ["investigation-start", "update", "mitigation-in-progress"])
def test_the_promise_every_template_prints_is_read_back(kind):
    incident = SimpleNamespace(
        ref="INC-1",
        title="Sign-in failures",
        severity=Severity.S1,
        status=SimpleNamespace(value="investigating"),
        is_open=True,
        security=False,
        started_at=T0,
        resolved_at=None,
    )
    context = automatic_context(incident=incident, now=T0 + 10 * M, interval_minutes=60)
    values = {"impact": "Users cannot sign in.", "actions": "We are restarting the service."}
    spec = {v.name for v in Renderer().spec(kind).variables}
    values = {k: v for k, v in values.items() if k in spec}
    values["next_update"] = "2026-11-27T10:55Z"
    rendered = Renderer().render(kind, values, context, T0 + 10 * M)
    assert "Next update: by 2026-11-27 10:55 UTC" in rendered.body
    assert promise_in_text(rendered.body, T0 + 10 * M) == T0 + 55 * M


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Next update: by 2026-11-27 11:30 UTC, or sooner if the situation changes.", 90),
        ("next update: by 11:30 UTC.", 90),  # a clock time: the next one after sending
        ("Next update by 09:30 UTC", 24 * 60 - 30),  # already past today: tomorrow
        ("Next update: 2026-11-27T11:30Z", 90),
        ("Next update: by 2026-11-27T12:30+01:00", 90),
        ("Next update: by 2026-11-27 11:30 GMT", 90),
        # Two promises: the customer holds us to the earlier one.
        ("Next update: by 12:00 UTC.\n\nNext update: by 11:30 UTC.", 90),
        ("Next update: by 2026-11-27 11:30, or sooner.", None),  # no zone: never guessed
        ("Next update: soon.", None),
        ("We will update you by 11:30 UTC.", None),  # only the promise line counts
        ("Next update: by 2026-13-45 99:99 UTC", None),
        ("", None),
    ],
)
def test_promises_as_written_are_read_or_ignored_never_guessed(text, expected):
    found = promise_in_text(text, T0)
    assert found == (None if expected is None else T0 + expected * M)


@given(st.text(max_size=300))
def test_any_text_is_read_without_an_error(text):
    found = promise_in_text(text, T0)
    assert found is None or found.tzinfo is not None


@given(st.integers(min_value=0, max_value=60 * 24 * 30))
def test_what_format_time_prints_reads_back_exactly(minutes):
    moment = T0 + minutes * M
    assert promise_in_text(f"Next update: by {format_time(moment)}, or sooner.", T0) == moment


def test_the_report_measures_against_the_promise_in_the_sent_text(store):
    store.create_incident(
        title="t", severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="g"
    )
    # The variable said 11:10; the GDCMOC edited the text to promise 10:30.
    edited = "We are investigating.\n\nNext update: by 2026-11-27 10:30 UTC, or sooner.\n"
    draft = store.add_revision(
        incident_ref="INC-1",
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="s",
        body=edited,
        variables={"next_update": "2026-11-27T11:10:00Z"},
        author="g",
        now=T0 + 9 * M,
        edited=True,
    )
    store.set_draft_state(
        draft.id,
        DraftState.SENT,
        now=T0 + 10 * M,
        actor="g",
        event="update.sent",
        data={
            "revision": 1,
            "tenants": ["acme"],
            "next_update_at": "2026-11-27T11:10:00Z",
        },
    )
    texts = {(draft.id, 1): f"Subject: s\n\n{edited}"}
    incident, events = store.get_incident("INC-1"), store.events("INC-1")
    report = cadence_report(incident, events, DEFAULT_POLICY, T0 + 40 * M, texts=texts)
    missing = [u for u in report.updates if u.sent_at is None]
    assert [(u.due_at, u.reason) for u in missing] == [(T0 + 30 * M, "promised in the last update")]
    # Without the text the report can only go by what the event recorded.
    assert [
        u
        for u in cadence_report(incident, events, DEFAULT_POLICY, T0 + 40 * M).updates
        if u.sent_at is None
    ] == []


def test_a_promise_recorded_from_the_text_drives_the_live_clock(store):
    """What delivery records in ``next_update_at`` (``promise_in_text`` of the sent text) is
    what the store's clock rows and the cadence check read."""
    store.create_incident(
        title="t", severity=Severity.S1, tenants=["acme"], started_at=T0, now=T0, actor="g"
    )
    draft = store.add_revision(
        incident_ref="INC-1",
        kind=MessageKind.UPDATE,
        draft_id=None,
        subject="s",
        body="b",
        variables={},
        author="g",
        now=T0 + 9 * M,
    )
    promise = promise_in_text("Next update: by 2026-11-27 10:30 UTC.", T0 + 10 * M)
    assert promise is not None
    store.set_draft_state(
        draft.id,
        DraftState.SENT,
        now=T0 + 10 * M,
        actor="g",
        event="update.sent",
        data={"tenants": ["acme"], "next_update_at": isoformat(promise)},
    )
    (row,) = store.clock_rows()
    assert row.promised_update_at == T0 + 30 * M
