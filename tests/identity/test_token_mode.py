"""Token mode end to end: every command that reads or writes the store authenticates with
COMMS_TOKEN, acts as that user whatever COMMS_AUTHOR / COMMS_REVIEWER say, and reviews
follow the roles and the four-eyes rule — on a SQLite file with ``[auth] mode = "token"``
and on PostgreSQL, through the real CLI against the Switchboard stub."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.identity.support import Team, fails, invoke, ok, run, write_toml

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def staff(team: Team) -> dict[str, str]:
    """An admin, a GDCMOC, an IMOC and SIRT; their tokens by name."""
    for name, role in (("ana", "admin"), ("gus", "gdcmoc"), ("ida", "imoc"), ("ria", "sirt")):
        team.add(name, role)
    return team.tokens


def draft_one(token: str, *, security: bool = False, **env: str) -> int:
    """As ``token``: sync tenants, open an S1 for acme, draft its first update."""
    ok(["tenants", "sync"], token, **env)
    args = [
        "incident",
        "open",
        "--tenant",
        "acme",
        "--severity",
        "S1",
        "--title",
        "Sign-in failures",
    ]
    ok([*args, *(["--security"] if security else [])], token, **env)
    out = ok(
        [
            "draft",
            "investigation-start",
            "--incident",
            "INC-1",
            "--set",
            "impact=Users cannot sign in to the web interface.",
            "--format",
            "json",
        ],
        token,
        **env,
    ).stdout
    return int(json.loads(out)["id"])


def test_commands_that_need_no_store_need_no_token(
    team: Team, tmp_path: Path, stub_url: str
) -> None:
    staff(team)
    assert "Commands:" in ok(["--help"]).stdout
    assert "investigation-start" in ok(["templates", "list"]).stdout
    ok(["templates", "show", "update"])
    (tmp_path / "note.txt").write_text("We are investigating.\n", encoding="utf-8")
    ok(["lint", str(tmp_path / "note.txt")])
    assert "Leak.IPAddress" in invoke(["lint", "-"], input="see 10.2.0.7\n").stdout
    assert "(current)" in ok(["db", "status"]).stdout
    ok(["db", "migrate"])
    assert ok(["config", "check"]).stdout.splitlines()[-1] == "ok"


def test_a_missing_wrong_or_disabled_token_is_exit_3_and_records_nothing(
    team: Team, stub_url: str
) -> None:
    tokens = staff(team)
    ok(["users", "disable", "gus"], tokens["ana"])
    open_s1 = ["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "Down"]
    for token, needle in (
        (None, "this store needs a token: set COMMS_TOKEN to yours"),
        ("comms_" + "w" * 43, "COMMS_TOKEN is not a valid token"),
        ("", "this store needs a token"),
        (tokens["gus"], "user gus is disabled"),
    ):
        for args in (["tenants", "sync"], open_s1, ["incident", "list"], ["cadence", "check"]):
            fails(args, 3, needle, token)
    assert team.rows("SELECT count(*) FROM incidents") == [(0,)]
    assert team.rows("SELECT count(*) FROM tenants") == [(0,)]
    assert team.events() == []


def test_the_authenticated_user_is_the_actor_whatever_the_environment_says(
    team: Team, stub_url: str
) -> None:
    tokens = staff(team)
    claims = {"COMMS_AUTHOR": "mallory", "COMMS_REVIEWER": "mallory"}
    draft = draft_one(tokens["gus"], **claims)
    ok(["review", "submit", str(draft)], tokens["gus"], **claims)
    approved = ok(["review", "approve", str(draft)], tokens["ida"], **claims).stdout
    assert approved.startswith(f"draft {draft} r1 approved by ida (imoc) for acme via switchboard")
    ok(["send", str(draft)], tokens["gus"], **claims)
    ok(["incident", "set", "INC-1", "--status", "identified"], tokens["gus"], **claims)
    ok(["incident", "engage", "INC-1"], tokens["gus"], **claims)
    assert team.rows("SELECT author FROM revisions") == [("gus",)]
    assert team.rows("SELECT reviewer, role FROM reviews") == [("ida", "imoc")]
    actors = dict(team.events())  # actor -> last type; every actor is an authenticated user
    assert set(actors) == {"gus", "ida"}
    timeline = json.loads(ok(["timeline", "INC-1", "--format", "json"], tokens["ria"]).stdout)
    rows = timeline["events"] if isinstance(timeline, dict) else timeline
    by_type = {e["type"]: e["actor"] for e in rows}
    assert by_type["review.approved"] == "ida"
    assert by_type["incident.opened"] == "gus"
    assert by_type["update.sent"] == "gus"
    assert "mallory" not in json.dumps(timeline)


def test_only_an_imoc_or_admin_approves_and_sirt_only_as_sirt(team: Team, stub_url: str) -> None:
    tokens = staff(team)
    draft = draft_one(tokens["gus"])
    fails(
        ["review", "approve", str(draft)],
        1,
        "gus is a gdcmoc: only an imoc (or admin) approves or sends back a draft",
        tokens["gus"],
    )
    fails(
        ["review", "request-changes", str(draft), "--note", "x"],
        1,
        "gus is a gdcmoc: only an imoc (or admin)",
        tokens["gus"],
    )
    fails(
        ["review", "approve", str(draft), "--role", "sirt"],
        1,
        "ida is an imoc and may review as imoc, not as sirt",
        tokens["ida"],
    )
    fails(
        ["review", "approve", str(draft), "--role", "imoc"],
        1,
        "ria is a sirt and may review as sirt, not as imoc",
        tokens["ria"],
    )
    assert team.rows("SELECT count(*) FROM reviews") == [(0,)]
    # SIRT's approval alone does not stand in for the incident manager's.
    assert "approved by ria (sirt)" in ok(["review", "approve", str(draft)], tokens["ria"]).stdout
    fails(["send", str(draft)], 1, "needs approval by an incident manager", tokens["gus"])
    assert "approved by ana (imoc)" in ok(["review", "approve", str(draft)], tokens["ana"]).stdout
    ok(["send", str(draft)], tokens["gus"])


def test_a_security_incident_needs_a_sirt_user_as_well(team: Team, stub_url: str) -> None:
    tokens = staff(team)
    draft = draft_one(tokens["gus"], security=True)
    ok(["review", "approve", str(draft)], tokens["ida"])
    fails(["send", str(draft)], 1, "needs approval by SIRT", tokens["gus"])
    ok(["review", "approve", str(draft)], tokens["ria"])  # ria's role picks sirt
    ok(["send", str(draft)], tokens["gus"])
    assert team.rows("SELECT reviewer, role FROM reviews ORDER BY id") == [
        ("ida", "imoc"),
        ("ria", "sirt"),
    ]


def test_the_author_of_a_revision_never_approves_it(team: Team, stub_url: str) -> None:
    tokens = staff(team)
    draft = draft_one(tokens["ida"])  # an incident manager drafting for once
    for args in (["approve", str(draft)], ["request-changes", str(draft), "--note", "x"]):
        fails(
            ["review", *args],
            1,
            f"four-eyes rule: ida wrote revision 1 of draft {draft}, so another person must "
            "review it",
            tokens["ida"],
        )
    assert team.rows("SELECT count(*) FROM reviews") == [(0,)]
    ok(["review", "approve", str(draft)], tokens["ana"])


def test_skipping_review_is_recorded_with_the_authenticated_name(team: Team, stub_url: str) -> None:
    tokens = staff(team)
    draft = draft_one(tokens["gus"])
    ok(
        ["send", str(draft), "--skip-review", "--reason", "IMOC unreachable"],
        tokens["gus"],
        COMMS_AUTHOR="mallory",
    )
    assert ("gus", "review.skipped") in team.events()
    assert not [actor for actor, _ in team.events() if actor != "gus"]


def test_the_s1_timed_fallback_is_recorded_with_the_authenticated_name(
    team: Team, stub_url: str
) -> None:
    team.configure(review={"s1_timeout_minutes": 10})
    tokens = staff(team)
    at = {"COMMS_NOW": iso(T0)}
    draft = draft_one(tokens["gus"], **at)
    ok(["review", "submit", str(draft)], tokens["gus"], **at)
    fails(
        ["send", str(draft)],
        1,
        "needs approval",
        tokens["gus"],
        COMMS_NOW=iso(T0 + timedelta(minutes=5)),
    )
    ok(["send", str(draft)], tokens["gus"], COMMS_NOW=iso(T0 + timedelta(minutes=11)))
    assert ("gus", "review.timed-out") in team.events()


def test_the_watcher_and_snoozes_authenticate_and_record_the_user(
    team: Team, stub_url: str
) -> None:
    tokens = staff(team)
    draft_one(tokens["gus"])
    fails(["cadence", "status"], 3, "this store needs a token")
    ok(["cadence", "status"], tokens["ida"])
    fails(["cadence", "snooze", "INC-1", "30m"], 3, "this store needs a token")
    ok(["cadence", "snooze", "INC-1", "30m"], tokens["ida"], COMMS_AUTHOR="mallory")
    assert team.rows("SELECT actor FROM cadence_snoozes") == [("ida",)]


def test_local_sqlite_without_auth_works_as_before(stub_url: str, tmp_path: Path) -> None:
    """No [auth] table, no users: no token needed, a stray COMMS_TOKEN is ignored, and the
    self-declared names are the actors; self-approval is still refused, with exit 1."""
    write_toml(tmp_path / "comms.toml")
    stray = "comms_" + "s" * 43
    draft = draft_one(stray)
    fails(
        ["review", "approve", str(draft)],
        1,
        f"four-eyes rule: test-gdcmoc wrote revision 1 of draft {draft}, so another person "
        "must review it (set COMMS_REVIEWER to the reviewer's name)",
        stray,
    )
    approved = ok(["review", "approve", str(draft)], stray, COMMS_REVIEWER="sam").stdout
    assert "approved by sam (imoc)" in approved
    ok(["review", "approve", str(draft), "--role", "sirt"], None, COMMS_REVIEWER="riley")
    ok(["send", str(draft)])
    rows = Team(str(tmp_path / "comms.db"), tmp_path / "comms.toml").events()
    assert {actor for actor, _ in rows} == {"test-gdcmoc", "sam", "riley"}


@pytest.mark.parametrize("team", ["postgresql"], indirect=True)
@pytest.mark.parametrize("mode", ["token", "none"])
def test_postgresql_is_always_token_mode(team: Team, mode: str) -> None:
    assert team.postgres
    fails(["incident", "list"], 3, "it has no users yet: make the first admin with comms users add")
    team.configure(auth={"mode": mode})
    if mode == "token":
        fails(["incident", "list"], 3, "no users yet")
        return
    line = fails(
        ["incident", "list"], 3, 'auth.mode = "none" is refused on a shared PostgreSQL store'
    )
    assert line.startswith("Error: comms.toml:6: ")
    report = invoke(["config", "check"])
    assert report.exit_code == 3
    assert 'auth.mode = "none" is refused' in report.stdout
    assert "(current)" in ok(["db", "status"]).stdout  # the schema check needs no token


def test_the_auth_table_is_checked(tmp_path: Path) -> None:
    write_toml(tmp_path / "comms.toml", auth={"mode": "sometimes"})
    fails(["incident", "list"], 3, 'auth.mode must be "token" or "none"')
    report = invoke(["config", "check"])
    assert report.exit_code == 3
    assert 'comms.toml:6: auth.mode must be "token" or "none"' in report.stdout
    write_toml(tmp_path / "comms.toml", auth={"mood": "token"})
    fails(["incident", "list"], 3, "unknown key 'auth.mood' (known: mode)")
    write_toml(tmp_path / "comms.toml", auth={"mode": "none"})
    ok(["incident", "list"])


def test_the_installed_script_bootstraps_and_authenticates(team: Team, stub_url: str) -> None:
    made = run(["users", "add", "ana", "--role", "admin"])
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert made.stdout == token + "\n"
    assert "store the token above now" in made.stderr
    refused = run(["incident", "list"], "comms_" + "r" * 43)
    assert refused.returncode == 3
    assert refused.stdout == ""
    assert refused.stderr == "Error: COMMS_TOKEN is not a valid token; ask an admin for a new one\n"
    assert run(["tenants", "sync"], token).returncode == 0
    opened = run(
        ["incident", "open", "--tenant", "acme", "--severity", "S2", "--title", "Slow CI"],
        token,
        COMMS_AUTHOR="mallory",
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.startswith("opened INC-1: S2 Slow CI (acme)")
    assert team.events() == [("ana", "incident.opened"), ("ana", "gdcmoc.engaged")]
    assert token not in opened.stdout + opened.stderr
