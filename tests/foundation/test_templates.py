"""The seven customer messages: rendered with minimal and full values, through the Renderer
and through `comms draft`, plus the process rules (next update, RCA promise) and overrides."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from foundation_support import (
    KINDS,
    MINIMAL,
    NOW,
    assert_customer_text,
    fails,
    full_values,
    invoke,
    ok,
)

from comms.errors import MissingVariablesError, TemplateError
from comms.models import Incident, Severity, Status
from comms.render import Renderer, automatic_context

INTERVALS = {"S1": 60, "S2": 120}


def make_incident(severity: str = "S1", status: str = "investigating", **extra: Any) -> Incident:
    started = NOW - timedelta(minutes=35)
    return Incident(
        ref="INC-7",
        title="Sign-in failures on the web interface",
        severity=Severity(severity),
        status=Status(status),
        tenants=["acme"],
        started_at=started,
        created_at=started,
        updated_at=NOW,
        **extra,
    )


def render(
    renderer: Renderer,
    kind: str,
    values: dict[str, str],
    incident: Incident | None = None,
    now: datetime = NOW,
) -> Any:
    incident = incident or make_incident()
    context = automatic_context(
        incident=incident, now=now, interval_minutes=INTERVALS.get(incident.severity.value)
    )
    return renderer.render(kind, values, context, now)


def test_seven_builtin_templates(renderer: Renderer) -> None:
    assert renderer.names() == sorted(KINDS)
    for kind in KINDS:
        spec = renderer.spec(kind)
        assert spec.source == "built-in"
        assert spec.title
        required = {v.name for v in spec.variables if v.required and not v.default}
        assert required == set(MINIMAL[kind]), kind


@pytest.mark.parametrize("kind", KINDS)
def test_minimal_values_render_clean(renderer: Renderer, kind: str) -> None:
    rendered = render(renderer, kind, MINIMAL[kind])
    assert_customer_text(rendered.subject, rendered.body)
    for value in MINIMAL[kind].values():
        if "T" not in value:  # times are shown formatted, not as typed
            assert value in rendered.body


@pytest.mark.parametrize("kind", KINDS)
def test_full_values_render_clean(renderer: Renderer, kind: str) -> None:
    spec = renderer.spec(kind)
    values = full_values(spec)
    rendered = render(renderer, kind, values)
    assert_customer_text(rendered.subject, rendered.body)
    text = rendered.subject + "\n" + rendered.body
    for var in spec.variables:
        if var.type == "text":
            assert values[var.name] in text, var.name
        elif var.type == "list":
            assert "Web UI, Git over SSH, CI pipelines" in rendered.body
    # Each declared time shows up formatted in UTC.
    for var in spec.variables:
        if var.type == "time":
            moment = datetime.fromisoformat(values[var.name].replace("Z", "+00:00"))
            assert moment.strftime("%Y-%m-%d %H:%M UTC") in rendered.body, var.name
    # Every value given is kept for the stored revision (and the next draft to start from).
    assert set(rendered.variables) == set(values)


@pytest.mark.parametrize(
    "kind", ["investigation-start", "update", "escalated-response", "mitigation-in-progress"]
)
def test_open_s1_states_next_update_now_plus_60(renderer: Renderer, kind: str) -> None:
    rendered = render(renderer, kind, MINIMAL[kind])
    assert "Next update: by 2026-11-27 15:30 UTC" in rendered.body


@pytest.mark.parametrize(
    "kind", ["investigation-start", "update", "escalated-response", "mitigation-in-progress"]
)
def test_explicit_next_update_wins(renderer: Renderer, kind: str) -> None:
    rendered = render(renderer, kind, {**MINIMAL[kind], "next_update": "+45m"})
    assert "Next update: by 2026-11-27 15:15 UTC" in rendered.body
    assert "15:30" not in rendered.body


@pytest.mark.parametrize(
    "kind", ["investigation-start", "update", "escalated-response", "mitigation-in-progress"]
)
def test_s3_has_no_default_next_update(renderer: Renderer, kind: str) -> None:
    rendered = render(renderer, kind, MINIMAL[kind], make_incident("S3"))
    assert "Next update" not in rendered.body
    assert_customer_text(rendered.subject, rendered.body)


def test_s2_default_interval_is_two_hours(renderer: Renderer) -> None:
    rendered = render(renderer, "update", MINIMAL["update"], make_incident("S2"))
    assert "Next update: by 2026-11-27 16:30 UTC" in rendered.body


def test_resolved_s1_promises_rca_within_a_week(renderer: Renderer) -> None:
    resolved_at = NOW - timedelta(hours=3)
    incident = make_incident("S1", "resolved", resolved_at=resolved_at, resolved_by="Sam")
    rendered = render(renderer, "resolved", MINIMAL["resolved"], incident)
    assert "root cause analysis" in rendered.body
    assert "by 2026-12-04" in rendered.body
    assert "End: 2026-11-27 11:30 UTC" in rendered.body
    assert "Next update" not in rendered.body


def test_resolved_rca_date_follows_resolution_not_drafting(renderer: Renderer) -> None:
    incident = make_incident(
        "S1", "resolved", resolved_at=datetime.fromisoformat("2026-11-20T23:50:00+00:00")
    )
    rendered = render(renderer, "resolved", MINIMAL["resolved"], incident)
    assert "by 2026-11-27." in rendered.body


@pytest.mark.parametrize("severity", ["S2", "S3", "S4"])
def test_resolved_below_s1_promises_no_rca(renderer: Renderer, severity: str) -> None:
    incident = make_incident(severity, "resolved", resolved_at=NOW)
    rendered = render(renderer, "resolved", MINIMAL["resolved"], incident)
    assert "root cause" not in rendered.body
    assert_customer_text(rendered.subject, rendered.body)


def test_missing_variables_all_listed(renderer: Renderer) -> None:
    with pytest.raises(MissingVariablesError) as caught:
        render(renderer, "maintenance-planned", {"impact": "x"})
    assert caught.value.missing == ["reason", "window_start", "window_end"]
    assert "--set reason=" in str(caught.value)


def test_blank_required_value_counts_as_missing(renderer: Renderer) -> None:
    with pytest.raises(MissingVariablesError) as caught:
        render(renderer, "update", {"impact": "   ", "actions": "x"})
    assert caught.value.missing == ["impact"]


def test_unknown_variable_and_template(renderer: Renderer) -> None:
    with pytest.raises(TemplateError, match="has no variable 'colour'"):
        render(renderer, "update", {**MINIMAL["update"], "colour": "blue"})
    with pytest.raises(TemplateError, match="unknown template 'nope'"):
        render(renderer, "nope", {})


def test_time_without_zone_is_refused(renderer: Renderer) -> None:
    with pytest.raises(TemplateError, match="no zone"):
        render(renderer, "update", {**MINIMAL["update"], "eta": "2026-11-27T15:00"})


def test_clock_time_for_a_past_moment_is_today_not_tomorrow(renderer: Renderer) -> None:
    """At 14:30, `started_at=14:10` means 14:10 today: a start in the future is nonsense."""
    rendered = render(
        renderer, "investigation-start", {**MINIMAL["investigation-start"], "started_at": "14:10"}
    )
    assert "Started: 2026-11-27 14:10 UTC" in rendered.body
    assert rendered.variables["started_at"] == "2026-11-27T14:10:00Z"
    rendered = render(renderer, "resolved", {**MINIMAL["resolved"], "resolved_at": "14:20"})
    assert "End: 2026-11-27 14:20 UTC" in rendered.body


def test_clock_time_for_a_future_moment_is_the_next_one(renderer: Renderer) -> None:
    rendered = render(renderer, "update", {**MINIMAL["update"], "next_update": "09:00"})
    assert "Next update: by 2026-11-28 09:00 UTC" in rendered.body


# -- through the CLI --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_cli_draft_minimal(s1: str, kind: str) -> None:
    args = ["draft", kind, "--incident", s1, "--format", "json"]
    for name, value in MINIMAL[kind].items():
        args += ["--set", f"{name}={value}"]
    data = json.loads(ok(args).stdout)
    assert data["kind"] == kind
    assert data["revision"] == 1
    assert data["state"] == "draft"
    assert_customer_text(data["subject"], data["body"])
    if kind in ("investigation-start", "update", "escalated-response", "mitigation-in-progress"):
        assert "Next update: by 2026-11-27 15:30 UTC" in data["body"]
    # The text output shows the same subject and body the customer will get.
    shown = ok(["drafts", "show", str(data["id"])]).stdout
    assert f"Subject: {data['subject']}\n\n{data['body']}" in shown


@pytest.mark.parametrize("kind", KINDS)
def test_cli_draft_full(s1: str, kind: str, renderer: Renderer) -> None:
    args = ["draft", kind, "--incident", s1, "--format", "json"]
    for name, value in full_values(renderer.spec(kind)).items():
        args += ["--set", f"{name}={value}"]
    data = json.loads(ok(args).stdout)
    assert_customer_text(data["subject"], data["body"])
    assert "Web UI, Git over SSH, CI pipelines" in data["body"] or kind in (
        "resolved",
        "maintenance-completed",
    )
    assert data["subject"].endswith("The summary in customer terms")


def test_cli_resolved_s1_after_resolution(s1: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(["incident", "set", s1, "--status", "resolved", "--confirmed-by", "Sam (IMOC)"])
    monkeypatch.setenv("COMMS_NOW", "2026-11-28T09:00:00Z")  # drafted the next morning
    data = json.loads(
        ok(
            [
                "draft",
                "resolved",
                "--incident",
                s1,
                "--set",
                "resolution=All good",
                "--format",
                "json",
            ]
        ).stdout
    )
    assert "within one week, by 2026-12-04." in data["body"]
    assert "End: 2026-11-27 14:30 UTC" in data["body"]
    assert "Next update" not in data["body"]


def test_cli_s3_draft_has_no_next_update(tenant: str) -> None:
    ok(["incident", "open", "--tenant", tenant, "--severity", "S3", "--title", "Slow pages"])
    data = json.loads(
        ok(
            [
                "draft",
                "update",
                "--incident",
                "INC-1",
                "--set",
                "impact=Slow pages",
                "--set",
                "actions=Tuning",
                "--format",
                "json",
            ]
        ).stdout
    )
    assert "Next update" not in data["body"]
    assert_customer_text(data["subject"], data["body"])


# -- overrides --------------------------------------------------------------------------


@pytest.fixture
def overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "team-templates"
    folder.mkdir()
    monkeypatch.setenv("COMMS_TEMPLATES_DIR", str(folder))
    return folder


def test_override_wins(s1: str, overrides: Path) -> None:
    (overrides / "update.txt.j2").write_text(
        '{#- comms\ntitle = "Team update"\n[variables]\nimpact = { required = true }\n-#}\n'
        "Subject: Team update: {{ title }}\n\nImpact now: {{ impact }}\n",
        encoding="utf-8",
    )
    data = json.loads(
        ok(["draft", "update", "--incident", s1, "--set", "impact=Slow", "--format", "json"]).stdout
    )
    assert data["subject"] == "Team update: Sign-in failures"
    assert data["body"] == "Impact now: Slow\n"
    listing = ok(["templates", "list"]).stdout
    assert f"override: {overrides / 'update.txt.j2'}" in listing
    # Built-ins without an override stay the fallback.
    data = json.loads(
        ok(
            [
                "draft",
                "investigation-start",
                "--incident",
                s1,
                "--set",
                "impact=Slow",
                "--format",
                "json",
            ]
        ).stdout
    )
    assert data["subject"] == "Investigating: Sign-in failures"


def test_override_extending_default_inherits_variables(s1: str, overrides: Path) -> None:
    (overrides / "update.txt.j2").write_text(
        '{% extends "default:update.txt.j2" %}\n', encoding="utf-8"
    )
    shown = json.loads(ok(["templates", "show", "update", "--format", "json"]).stdout)
    assert shown["source"] == str(overrides / "update.txt.j2")
    assert {v["name"] for v in shown["variables"] if v["required"]} == {"impact", "actions"}
    fails(["draft", "update", "--incident", s1], 2, "'impact'", "'actions'")
    data = json.loads(
        ok(
            [
                "draft",
                "update",
                "--incident",
                s1,
                "--set",
                "impact=Slow",
                "--set",
                "actions=Fixing",
                "--format",
                "json",
            ]
        ).stdout
    )
    assert data["subject"] == "Update: Sign-in failures"
    assert_customer_text(data["subject"], data["body"])


def test_override_extending_default_with_a_block(s1: str, overrides: Path, tmp_path: Path) -> None:
    (overrides / "resolved.txt.j2").write_text(
        '{% extends "default:resolved.txt.j2" %}\n', encoding="utf-8"
    )
    data = json.loads(
        ok(
            ["draft", "resolved", "--incident", s1, "--set", "resolution=Fine", "--format", "json"]
        ).stdout
    )
    assert data["subject"] == "Resolved: Sign-in failures"


def test_missing_override_folder_is_usage_error(
    s1: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_TEMPLATES_DIR", str(tmp_path / "nowhere"))
    fails(["templates", "list"], 2, "nowhere", "does not exist")
    fails(
        ["draft", "update", "--incident", s1, "--set", "impact=x", "--set", "actions=y"],
        2,
        "does not exist",
    )


def test_broken_override_names_file_and_line(s1: str, overrides: Path) -> None:
    path = overrides / "update.txt.j2"
    path.write_text('{% extends "default:update.txt.j2" %}\n\n{% if %}\n', encoding="utf-8")
    line = fails(
        ["draft", "update", "--incident", s1, "--set", "impact=x", "--set", "actions=y"], 2
    )
    assert f"{path}:3" in line
    # Nothing was stored by the failed command.
    assert json.loads(ok(["drafts", "list", "--format", "json"]).stdout) == []


def test_broken_override_header_is_usage_error(s1: str, overrides: Path) -> None:
    (overrides / "update.txt.j2").write_text(
        "{#- comms\ntitle = \n-#}\nSubject: x\n\nbody\n", encoding="utf-8"
    )
    fails(["templates", "show", "update"], 2, "update.txt.j2", "header")


def test_override_not_utf8_is_one_line(s1: str, overrides: Path) -> None:
    (overrides / "update.txt.j2").write_bytes(b"Subject: Caf\xe9\n\nbody\n")
    fails(["templates", "show", "update"], 2, "update.txt.j2", "UTF-8")
    fails(["templates", "list"], 2, "UTF-8")
    fails(
        ["draft", "update", "--incident", s1, "--set", "impact=x", "--set", "actions=y"], 2, "UTF-8"
    )


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("Subject: x\n\n{{ ''.__class__.__mro__[1].__subclasses__() }}\n", "unsafe"),
        ("Subject: x\n\n{{ impact.__init__.__globals__ }}\n", "unsafe"),
        ("Subject: x\n\n{{ no_such_variable }}\n", "'no_such_variable' is undefined"),
        ("Hello\n\n{{ impact }}\n", "must start with a 'Subject: …' line"),
        ('{% extends "default:nope.txt.j2" %}\n', "nope.txt.j2"),
        ('{% include "../../etc/passwd" %}\n', "passwd"),
    ],
)
def test_override_that_misbehaves_is_refused(
    s1: str, overrides: Path, source: str, needle: str
) -> None:
    """The sandbox holds for template authors too, and a broken override is a usage error."""
    (overrides / "update.txt.j2").write_text(source, encoding="utf-8")
    fails(
        ["draft", "update", "--incident", s1, "--set", "impact=x", "--set", "actions=y"], 2, needle
    )
    assert json.loads(ok(["drafts", "list", "--format", "json"]).stdout) == []


def test_override_filters_see_real_line_breaks(s1: str, overrides: Path) -> None:
    (overrides / "update.txt.j2").write_text(
        "Subject: {{ summary }}\n\n"
        'Impact: {{ impact|replace("\\n", " / ") }}\n'
        "Actions:\n  {{ actions|indent(2) }}\n",
        encoding="utf-8",
    )
    data = json.loads(
        ok(
            ["draft", "update", "--incident", s1, "--set", "impact=Sign-in fails\nPushes fail",
             "--set", "actions=Restarting\nThen watching", "--set", "summary=Two\nlines",
             "--format", "json"]
        ).stdout
    )  # fmt: skip
    assert data["subject"] == "Two lines"
    assert "Impact: Sign-in fails / Pushes fail\n" in data["body"]
    assert "Actions:\n  Restarting\n  Then watching\n" in data["body"]


def test_compiled_template_cache_is_used_and_never_required(
    s1: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    args = ["draft", "update", "--incident", s1, "--set", "impact=a", "--set", "actions=b"]
    first = ok([*args, "--format", "json"]).stdout
    assert list(cache.glob("comms/jinja-*/*.cache")), "no compiled templates were cached"
    again = ok([*args, "--format", "json"]).stdout
    assert json.loads(again)["body"] == json.loads(first)["body"]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    assert json.loads(ok([*args, "--format", "json"]).stdout)["body"] == json.loads(first)["body"]


def test_new_template_from_override_folder(s1: str, overrides: Path) -> None:
    (overrides / "customer-call.txt.j2").write_text(
        '{#- comms\ntitle = "Call invite"\n[variables]\n'
        'when = { type = "time", required = true }\n-#}\n'
        "Subject: Call about {{ title }}\n\nJoin us at {{ when|when }}.\n",
        encoding="utf-8",
    )
    names = [t["name"] for t in json.loads(ok(["templates", "list", "--format", "json"]).stdout)]
    assert "customer-call" in names
    assert set(KINDS) <= set(names)


# -- templates list / show --------------------------------------------------------------


def test_templates_list_text_and_json() -> None:
    text = ok(["templates", "list"]).stdout
    for kind in KINDS:
        assert kind in text
    assert "needs: impact, actions" in text
    data = json.loads(ok(["templates", "list", "--format", "json"]).stdout)
    assert [t["name"] for t in data] == sorted(KINDS)
    planned = next(t for t in data if t["name"] == "maintenance-planned")
    required = [v["name"] for v in planned["variables"] if v["required"]]
    assert required == ["reason", "impact", "window_start", "window_end"]
    assert all(t["source"] == "built-in" for t in data)


def test_templates_show() -> None:
    text = ok(["templates", "show", "resolved"]).stdout
    assert text.startswith("resolved: Incident resolved (built-in)")
    assert "resolution" in text
    assert "required" in text
    data = json.loads(ok(["templates", "show", "update", "--format", "json"]).stdout)
    assert data["name"] == "update"
    assert {v["name"]: v["type"] for v in data["variables"]}["next_update"] == "time"
    source = ok(["templates", "show", "update", "--source"]).stdout
    assert source.startswith("{#- comms")
    assert "Subject: Update:" in source
    fails(["templates", "show", "nope"], 2, "unknown template 'nope'", "update")


def test_templates_show_unknown_lists_choices() -> None:
    result = invoke(["templates", "show", "updates"])
    assert result.exit_code == 2
    assert "choose one of: escalated-response" in result.stderr
