"""Values are data: any text in any variable renders, literally and deterministically, and
nothing in a value (or in the incident's own fields) is ever evaluated as template code."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from foundation_support import KINDS, MINIMAL, NOW, assert_customer_text, ok
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from comms.models import Incident, Severity, Status
from comms.render import STATUS_TEXT, Renderer, automatic_context
from comms.times import format_time, from_iso, isoformat, parse_past_time, parse_time

PAYLOADS = [
    "{{ 7*7 }}",
    "{% for x in range(3) %}loop{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__ }}",
    "{{ config }}{{ self }}{{ lipsum.__globals__ }}",
    "{# comment #}",
    "{% raw %}{{ 7*7 }}{% endraw %}",
    "{%- if true -%}yes{%- endif -%}",
    "{{ impact }}",
]

RENDERER = Renderer()
SPECS = {kind: RENDERER.spec(kind) for kind in KINDS}
INCIDENT = Incident(
    ref="INC-7",
    title="Sign-in failures",
    severity=Severity.S1,
    status=Status.MITIGATING,
    tenants=["acme"],
    started_at=NOW - timedelta(minutes=40),
    created_at=NOW - timedelta(minutes=40),
    updated_at=NOW,
)
CONTEXT = automatic_context(incident=INCIDENT, now=NOW, interval_minutes=60)
_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def render(kind: str, values: dict[str, str], context: dict[str, Any] = CONTEXT) -> Any:
    return RENDERER.render(kind, values, context, NOW)


def base_values(kind: str) -> dict[str, str]:
    """Valid times for the time variables (their parsing is tested elsewhere)."""
    return {k: v for k, v in MINIMAL[kind].items() if SPECS[kind].variable(k).type == "time"}


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("kind", KINDS)
def test_template_code_in_values_is_rendered_literally(kind: str, payload: str) -> None:
    spec = SPECS[kind]
    values = base_values(kind)
    for var in spec.variables:
        if var.type == "text":
            values[var.name] = f"{var.name}: {payload}"
    rendered = render(kind, values)
    text = rendered.subject + "\n" + rendered.body
    for var in spec.variables:
        if var.type == "text":
            assert f"{var.name}: {payload}" in text
    assert "49" not in text
    assert "<class" not in text
    assert "loop" not in text.replace(payload, "")


def test_template_code_in_incident_title_is_literal(tenant: str) -> None:
    ok(
        [
            "incident",
            "open",
            "--tenant",
            tenant,
            "--severity",
            "S1",
            "--title",
            "{{ 7*7 }} {% if 1 %}x{% endif %}",
        ]
    )
    data = json.loads(
        ok(
            [
                "draft",
                "update",
                "--incident",
                "INC-1",
                "--set",
                "impact={{ ''.__class__ }}",
                "--set",
                "actions={% for a in [1] %}{{ a }}{% endfor %}",
                "--format",
                "json",
            ]
        ).stdout
    )
    assert data["subject"] == "Update: {{ 7*7 }} {% if 1 %}x{% endif %}"
    assert "What you may experience: {{ ''.__class__ }}" in data["body"]
    assert "What we are doing: {% for a in [1] %}{{ a }}{% endfor %}" in data["body"]
    # Stored and shown back exactly as typed.
    shown = json.loads(ok(["drafts", "show", str(data["id"]), "--format", "json"]).stdout)
    assert shown["variables"]["impact"] == "{{ ''.__class__ }}"


# Single-line text: anything but line breaks and the characters str.splitlines breaks on.
LINE = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=40
).filter(lambda s: s.strip())
ANY_TEXT = st.text(max_size=60)


@st.composite
def values_for(draw: st.DrawFn, text: st.SearchStrategy[str]) -> tuple[str, dict[str, str]]:
    kind = draw(st.sampled_from(KINDS))
    values = base_values(kind)
    for var in SPECS[kind].variables:
        if var.type == "time":
            continue
        value = draw(text)
        if var.required and not value.strip():
            value = "x" + value
        values[var.name] = value
    return kind, values


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(values_for(LINE))
def test_any_single_line_text_renders_literally(case: tuple[str, dict[str, str]]) -> None:
    kind, values = case
    rendered = render(kind, values)
    assert rendered.subject
    assert "\n" not in rendered.subject
    text = rendered.subject + "\n" + rendered.body
    for var in SPECS[kind].variables:
        if var.type == "text" and values[var.name].strip():
            assert values[var.name].strip() in text, var.name
    # The subject is the template's prefix and the summary, nothing more.
    assert rendered.subject.endswith(values["summary"].strip())
    assert render(kind, values) == rendered  # deterministic


@FAST
@given(values_for(ANY_TEXT))
def test_any_text_renders_deterministically(case: tuple[str, dict[str, str]]) -> None:
    kind, values = case
    rendered = render(kind, values)
    assert rendered.subject.strip()
    assert len(_BREAKS.split(rendered.subject)) == 1, "a value's line break split the subject"
    assert render(kind, values) == rendered
    for var in SPECS[kind].variables:
        value = values.get(var.name, "")
        if var.type == "text" and value.strip():
            lines = [line.strip() for line in _BREAKS.split(value.strip()) if line.strip()]
            text = rendered.subject + "\n" + rendered.body
            for line in lines:
                assert line in text, (var.name, line)


@FAST
@given(
    st.sampled_from(KINDS),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40),
)
@example("update", "\x00comms-line-break\x00")  # once the renderer's own break marker
def test_any_incident_title_gives_a_one_line_subject(kind: str, title: str) -> None:
    if not title.strip():
        title = "x" + title
    incident = Incident(
        ref="INC-7",
        title=title,
        severity=Severity.S2,
        status=Status.IDENTIFIED,
        tenants=["acme"],
        started_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    context = automatic_context(incident=incident, now=NOW, interval_minutes=120)
    values = dict(MINIMAL[kind])
    rendered = render(kind, values, context)
    assert len(_BREAKS.split(rendered.subject)) == 1
    first = next(line for line in _BREAKS.split(title) if line.strip()).strip()
    assert first in rendered.subject


def test_line_break_in_summary_stays_in_the_subject() -> None:
    rendered = render("update", {**MINIMAL["update"], "summary": "Sign-in\nfailures"})
    assert rendered.subject == "Update: Sign-in failures"
    assert rendered.body.startswith("This is an update on the issue")
    assert_customer_text(rendered.subject, rendered.body)


def test_line_breaks_inside_a_body_value_are_kept() -> None:
    rendered = render(
        "update", {**MINIMAL["update"], "impact": "Sign-in fails.\r\nPushes are slow."}
    )
    assert "What you may experience: Sign-in fails.\nPushes are slow.\n" in rendered.body
    assert "\r" not in rendered.body


# -- times: every time a person types is read in UTC, relative to an injected now -----------

NOWS = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; zone added below
    max_value=datetime(2035, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
CLOCKS = st.tuples(st.integers(0, 23), st.integers(0, 59))


@FAST
@given(NOWS, CLOCKS)
def test_clock_times_for_future_and_past(now: datetime, clock: tuple[int, int]) -> None:
    text = f"{clock[0]:02d}:{clock[1]:02d}"
    ahead = parse_time(text, now)
    behind = parse_past_time(text, now)
    assert (ahead.hour, ahead.minute) == clock == (behind.hour, behind.minute)
    floor = now.replace(second=0, microsecond=0)
    assert floor <= ahead < floor + timedelta(days=1)
    assert now - timedelta(days=1) < behind <= now
    assert format_time(ahead).endswith(" UTC")
    assert parse_time(f"{text} UTC", now) == ahead


@FAST
@given(NOWS, st.integers(0, 60 * 24 * 14), st.sampled_from(["m", "min", "minutes", "h", "d"]))
def test_offsets_are_after_now(now: datetime, amount: int, unit: str) -> None:
    moment = parse_time(f"+{amount}{unit}", now)
    assert moment >= now
    assert moment.tzinfo is not None
    assert from_iso(isoformat(moment)) == moment


@FAST
@given(NOWS)
def test_iso_round_trip_and_naive_refused(moment: datetime) -> None:
    assert parse_time(isoformat(moment), NOW) == moment
    naive = moment.replace(tzinfo=None).isoformat()
    with pytest.raises(ValueError, match="zone"):
        parse_time(naive, NOW)


@pytest.mark.parametrize("status", list(Status))
def test_status_sentence_for_every_status(status: Status) -> None:
    incident = Incident(
        ref="INC-7",
        title="t",
        severity=Severity.S1,
        status=status,
        tenants=["acme"],
        started_at=NOW,
        created_at=NOW,
        updated_at=NOW,
        resolved_at=NOW if status is Status.RESOLVED else None,
    )
    context = automatic_context(incident=incident, now=NOW, interval_minutes=60)
    rendered = render("update", MINIMAL["update"], context)
    assert f"Current status: {STATUS_TEXT[status.value]}" in rendered.body
    assert ("Next update" in rendered.body) is (status is not Status.RESOLVED)
    assert_customer_text(rendered.subject, rendered.body)


TIME_LIKE = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A[+]?\d{1,25}\s?(s|m|h|d|min|hours)\Z"),
    st.from_regex(r"\A\d{1,4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})\Z"),
    st.from_regex(r"\A\d{1,3}:\d{1,3}( UTC)?\Z"),
)


@FAST
@given(TIME_LIKE, NOWS)
def test_any_typed_time_parses_or_says_why(text: str, now: datetime) -> None:
    """Whatever a person types is a UTC time or a ValueError (a one-line usage error)."""
    for parse in (parse_time, parse_past_time):
        try:
            moment = parse(text, now)
        except ValueError as exc:
            message = str(exc)
            assert message, "a ValueError without a message"
        else:
            assert moment.utcoffset() == timedelta(0)


ANY_YEAR = st.from_regex(r"\A\d{1,4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])T\d{2}:\d{2}Z\Z")


@FAST
@given(st.one_of(TIME_LIKE, ANY_YEAR), NOWS)
def test_a_time_that_is_accepted_can_be_stored_and_read_back(text: str, now: datetime) -> None:
    """What a parser accepts lies in the years comms accepts and survives the store: a year
    typo (0026) or the end of the calendar (9999) is refused where it is typed, never
    written to become a row that nothing can read back."""
    from comms.times import ACCEPTED_YEARS

    for parse in (parse_time, parse_past_time):
        try:
            moment = parse(text, now)
        except ValueError:
            continue  # refused with a message: test_any_typed_time_parses_or_says_why
        assert moment.year in ACCEPTED_YEARS
        assert from_iso(isoformat(moment)) == moment
        assert format_time(moment).startswith(f"{moment.year:04d}-")


@pytest.mark.parametrize(
    "text", ["0026-11-30T03:52Z", "0001-01-01T00:00Z", "9999-12-31T23:59Z", "1999-12-31T23:59Z"]
)
def test_times_outside_the_accepted_years_are_refused_saying_which(text: str) -> None:
    from comms.times import ACCEPTED_YEARS

    first, last = ACCEPTED_YEARS[0], ACCEPTED_YEARS[-1]
    for parse in (parse_time, parse_past_time, lambda t, _now: from_iso(t)):
        with pytest.raises(ValueError, match=f"years {first}–{last}") as caught:
            parse(text, NOW)
        assert "2026-11-27T14:30Z" in str(caught.value)  # the accepted form, by example


def test_stored_text_has_four_digit_years_whatever_the_year() -> None:
    # strftime("%Y") writes year 26 as "26" on glibc: the root of rows nothing could read.
    early = datetime(26, 11, 30, 3, 52, tzinfo=UTC)
    assert isoformat(early) == "0026-11-30T03:52:00Z"
    assert format_time(early) == "0026-11-30 03:52 UTC"
