"""What a hurried or hostile user types never gets a traceback or breaks the store for others:
year typos, the end of the calendar, ids past 64 bits, rows an old version wrote."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from foundation_support import NOW_ISO, fails, invoke, ok

ODD_YEARS = ["0026-11-30T03:52Z", "0001-01-01T00:00Z", "9999-12-31T23:59Z", "1999-12-31T23:59Z"]
HUGE_IDS = ["9223372036854775808", "99999999999999999999", "-9223372036854775809"]


def still_usable(ref: str) -> None:
    """Every listing and the cadence still work after a refused input."""
    assert [i["ref"] for i in json.loads(ok(["incident", "list", "--format", "json"]).stdout)] == [
        ref
    ]
    ok(["incident", "show", ref])
    ok(["cadence", "status"])
    invoke(["cadence", "check"])  # exit 1 when something is overdue; never a traceback


# -- 1. years ------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ODD_YEARS)
def test_a_start_in_an_odd_year_is_refused_at_input(s1: str, when: str) -> None:
    fails(
        [
            "incident",
            "open",
            "--tenant",
            "acme",
            "--severity",
            "S1",
            "--title",
            "x",
            "--started",
            when,
        ],
        2,
        "--started",
        "2000–2199",
        "2026-11-27T14:30Z",
    )
    still_usable(s1)


@pytest.mark.parametrize("when", ODD_YEARS)
def test_a_next_update_in_an_odd_year_is_refused_at_input(s1: str, when: str) -> None:
    base = ["draft", "update", "--incident", s1, "--set", "impact=a", "--set", "actions=b"]
    fails([*base, "--set", f"next_update={when}"], 2, "next_update", "2000–2199")
    assert json.loads(ok(["drafts", "list", "--format", "json"]).stdout) == []
    still_usable(s1)


@pytest.mark.parametrize("when", ["9999-12-31T23:59Z", "0026-11-30T03:52Z", "2300-01-01T00:00Z"])
def test_a_pinned_clock_in_an_odd_year_is_refused(
    s1: str, when: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_NOW", when)
    fails(
        ["draft", "investigation-start", "--incident", s1, "--set", "impact=x"],
        2,
        "COMMS_NOW",
        "2000–2199",
    )
    monkeypatch.setenv("COMMS_NOW", NOW_ISO)
    still_usable(s1)


def test_cadence_at_in_an_odd_year_is_refused(s1: str) -> None:
    fails(["cadence", "status", "--at", "9999-12-31T23:59Z"], 2, "--at", "2000–2199")


# -- unreadable rows -------------------------------------------------------------------------


def corrupt(path: Path, sql: str, *params: object) -> None:
    """Change the database by hand, as an old version or a person with sqlite3 might."""
    db = sqlite3.connect(path)
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


def test_an_unreadable_incident_is_skipped_and_named_once(
    s1: str, env_setup: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ok(["incident", "open", "--tenant", "acme", "--severity", "S2", "--title", "Second"])
    ok(["draft", "investigation-start", "--incident", "INC-2", "--set", "impact=x"])
    # What the previous version wrote for --started 0026-11-30T03:52Z.
    corrupt(
        env_setup / "comms.db",
        "UPDATE incidents SET started_at = ? WHERE ref = ?",
        "26-11-30T03:52:00Z",
        s1,
    )
    listed = ok(["incident", "list"])
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["INC-2"]
    warnings = [line for line in listed.stderr.splitlines() if line]
    assert len(warnings) == 1
    assert "INC-1" in warnings[0]
    assert "cannot read" in warnings[0]
    as_json = ok(["incident", "list", "--format", "json"])
    assert [i["ref"] for i in json.loads(as_json.stdout)] == ["INC-2"]
    assert "INC-1" in as_json.stderr
    ok(["incident", "show", "INC-2"])
    line = fails(["incident", "show", s1], 3, s1)
    assert "cannot be read" in line
    assert "Traceback" not in invoke(["cadence", "status"]).output
    assert "Traceback" not in invoke(["cadence", "check"]).output


def test_an_unreadable_draft_is_skipped_and_named_once(s1: str, env_setup: Path) -> None:
    ok(["draft", "investigation-start", "--incident", s1, "--set", "impact=x"])
    ok(["draft", "update", "--incident", s1, "--set", "impact=x", "--set", "actions=y"])
    corrupt(env_setup / "comms.db", "UPDATE drafts SET created_at = 'yesterday' WHERE id = 1")
    listed = ok(["drafts", "list"])
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["2"]
    assert [line for line in listed.stderr.splitlines() if line] == [
        "warning: skipped draft 1: stored in a form this comms cannot read"
    ]
    shown = ok(["incident", "show", s1])
    assert "draft 2:" in shown.stdout
    assert "draft 1" in shown.stderr


# -- 4. ids past 64 bits -----------------------------------------------------------------------


@pytest.mark.parametrize("number", HUGE_IDS)
@pytest.mark.parametrize(
    "command",
    [
        ["drafts", "show"],
        ["drafts", "diff"],
        ["send"],
        ["review", "show"],
        ["review", "approve"],
        ["review", "request-changes", "--note", "x"],
        ["review", "submit"],
    ],
)
def test_ids_past_64_bits_are_usage_errors(s1: str, command: list[str], number: str) -> None:
    result = invoke([*command, "--", number] if number.startswith("-") else [*command, number])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error")]) == 1


def test_a_huge_revision_is_a_usage_error(s1: str) -> None:
    ok(["draft", "investigation-start", "--incident", s1, "--set", "impact=x"])
    fails(["drafts", "show", "1", "--revision", "99999999999999999999"], 2, "--revision")
    fails(["drafts", "diff", "1", "1", "99999999999999999999"], 2)


# -- arguments the operating system or the encoding refuses -----------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["incident", "engage", "\udc80abc"],  # what `$'\x80abc'` becomes on a UTF-8 terminal
        ["timeline", "\udc80"],
        ["review", "request-changes", "1", "--note", "caf\udce9"],
    ],
)
def test_bytes_that_are_not_utf8_are_one_usage_line(s1: str, args: list[str]) -> None:
    fails(args, 2, "not valid UTF-8")
    still_usable(s1)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["templates", "show", "x" * 300], 2),
        (["lint", "--config", "x" * 300, "/dev/null"], 2),
        (["config", "check", "--config", "x" * 300], 3),  # a config problem: exit 3
    ],
)
def test_a_name_too_long_for_the_file_system_is_one_line(
    s1: str, args: list[str], code: int
) -> None:
    result = invoke(args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    said = [line for line in result.output.splitlines() if "File name too long" in line]
    assert len(said) == 1, result.output
    still_usable(s1)
