"""``comms users``: the first admin, tokens printed once and stored only as hashes, who may
manage whom, disabling and rotating — through the real CLI on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from tests.identity.support import Team, fails, invoke, ok

TOKEN_LINE = re.compile(r"comms_[A-Za-z0-9_-]{43}\n")


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_the_first_user_needs_no_token_but_must_be_an_admin(team: Team) -> None:
    fails(
        ["users", "add", "sam", "--role", "imoc"],
        2,
        "the first user must be an admin, who then adds the others: "
        "comms users add sam --role admin",
    )
    assert team.rows("SELECT name FROM users") == []
    result = ok(["users", "add", "ana", "--role", "admin"])
    assert TOKEN_LINE.fullmatch(result.stdout)
    assert result.stderr == (
        "user ana (admin) added: store the token above now, it is not shown again; "
        "ana sets it as COMMS_TOKEN\n"
    )
    assert team.rows("SELECT name, role, created_by, disabled FROM users") == [
        ("ana", "admin", "ana", False if team.postgres else 0)
    ]


def test_the_token_is_printed_once_and_only_its_hash_is_stored(team: Team, tmp_path: Path) -> None:
    admin = team.add("ana", "admin")
    sam = team.add("sam", "imoc")
    assert admin != sam
    stored = dict(team.rows("SELECT name, token_hash FROM users"))
    assert stored == {"ana": sha256(admin), "sam": sha256(sam)}
    if not team.postgres:
        # Every byte SQLite wrote (the file, its WAL): the hash is there, the token nowhere.
        written = b"".join(p.read_bytes() for p in tmp_path.glob("comms.db*"))
        assert sha256(sam).encode() in written
        assert sam.encode() not in written
        assert admin.encode() not in written
    listing = ok(["users", "list", "--format", "json"], admin).stdout
    assert sam not in listing
    assert sha256(sam) not in listing
    assert [sorted(row) for row in json.loads(listing)] == [
        ["created_at", "created_by", "disabled", "name", "role", "token_changed_at"]
    ] * 2


def test_only_an_admin_adds_users_and_a_refusal_adds_nobody(team: Team) -> None:
    team.add("ana", "admin")
    sam = team.add("sam", "imoc")
    fails(
        ["users", "add", "eve", "--role", "admin"], 3, "this store needs a token: set COMMS_TOKEN"
    )
    fails(
        ["users", "add", "eve", "--role", "admin"],
        3,
        "COMMS_TOKEN is not a valid token",
        "comms_" + "x" * 43,
    )
    fails(
        ["users", "add", "eve", "--role", "admin"],
        1,
        "sam is an imoc; only admin may add users",
        sam,
    )
    assert [name for (name,) in team.rows("SELECT name FROM users ORDER BY name")] == ["ana", "sam"]


def test_a_taken_name_and_an_unknown_role_are_refused(team: Team) -> None:
    admin = team.add("ana", "admin")
    team.add("sam", "imoc")
    fails(["users", "add", "sam", "--role", "sirt"], 2, "user 'sam' exists already", admin)
    result = invoke(["users", "add", "ria", "--role", "boss"], admin)
    assert result.exit_code == 2
    assert "'boss' is not one of 'gdcmoc', 'imoc', 'sirt', 'admin'" in result.stderr
    fails(["users", "add", "bad\tname", "--role", "sirt"], 2, "user name", admin)


def test_list_shows_names_roles_and_state_to_any_user(team: Team) -> None:
    assert ok(["users", "list"]).stdout == (
        "no users yet; add the first admin: comms users add NAME --role admin\n"
    )
    admin = team.add("ana", "admin")
    gus = team.add("gus", "gdcmoc")
    ok(["users", "disable", "gus"], admin)
    fails(["users", "list"], 3, "this store needs a token")
    fails(["users", "list"], 3, "user gus is disabled", gus)
    lines = ok(["users", "list"], admin).stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["ana", "admin", "active"],
        ["gus", "gdcmoc", "disabled"],
    ]
    assert "by ana" in lines[1]


def test_a_disabled_user_is_refused_at_once_and_enabled_again(team: Team) -> None:
    admin = team.add("ana", "admin")
    sam = team.add("sam", "imoc")
    fails(["users", "disable", "ana"], 1, "sam is an imoc; only admin may disable or enable", sam)
    assert ok(["users", "disable", "sam"], admin).stdout == (
        "user sam disabled: their token is refused from now on, and their review-server "
        "sessions have ended\n"
    )
    fails(["incident", "list"], 3, "user sam is disabled; ask an admin", sam)
    fails(["users", "rotate", "sam"], 3, "user sam is disabled", sam)
    assert ok(["users", "enable", "sam"], admin).stdout == (
        "user sam enabled: their token works again; they sign in to the review server "
        "afresh (sessions from before stay ended)\n"
    )
    ok(["incident", "list"], sam)
    # Each moved sam's session epoch on: no cookie from before the disable works again.
    assert team.rows("SELECT session_epoch FROM users WHERE name = 'sam'") == [(2,)]


def test_the_last_active_admin_is_never_disabled(team: Team) -> None:
    admin = team.add("ana", "admin")
    fails(["users", "disable", "ana"], 1, "ana is the last active admin; add another admin", admin)
    other = team.add("bea", "admin")
    ok(["users", "disable", "ana"], other)
    fails(["users", "list"], 3, "user ana is disabled", admin)


def test_rotate_prints_a_new_token_once_and_the_old_one_stops_at_once(team: Team) -> None:
    admin = team.add("ana", "admin")
    sam = team.add("sam", "imoc")
    result = ok(["users", "rotate", "sam"], sam)
    new = result.stdout.strip()
    assert TOKEN_LINE.fullmatch(result.stdout)
    assert result.stderr == (
        "new token for sam: the old one no longer works; store the token above now, "
        "it is not shown again\n"
    )
    fails(["incident", "list"], 3, "COMMS_TOKEN is not a valid token", sam)
    ok(["incident", "list"], new)
    assert team.rows("SELECT token_hash FROM users WHERE name = 'sam'") == [(sha256(new),)]
    fails(["users", "rotate", "ana"], 1, "sam is an imoc; only admin may rotate another", new)
    again = ok(["users", "rotate", "sam"], admin).stdout.strip()
    fails(["incident", "list"], 3, "not a valid token", new)
    ok(["incident", "list"], again)
    fails(
        ["users", "rotate", "nobody"], 2, "no user 'nobody'; see them with: comms users list", admin
    )


def test_the_user_log_says_who_did_what_when_and_never_holds_a_token(team: Team) -> None:
    admin = team.add("ana", "admin")
    sam = team.add("sam", "imoc")
    new = ok(["users", "rotate", "sam"], sam).stdout.strip()
    ok(["users", "disable", "sam"], admin)
    ok(["users", "enable", "sam"], admin)
    rows = team.rows("SELECT actor, user_name, action, role FROM user_log ORDER BY id")
    assert rows == [
        ("ana", "ana", "user.added", "admin"),
        ("ana", "sam", "user.added", "imoc"),
        ("sam", "sam", "user.token-rotated", "imoc"),
        ("ana", "sam", "user.disabled", "imoc"),
        ("ana", "sam", "user.enabled", "imoc"),
    ]
    everything = repr(team.rows("SELECT * FROM user_log"))
    for secret in (admin, sam, new, sha256(admin), sha256(sam), sha256(new)):
        assert secret not in everything
    assert len(team.rows("SELECT at FROM user_log WHERE at IS NOT NULL")) == 5


def test_no_error_ever_shows_the_token_it_was_given(team: Team) -> None:
    team.add("ana", "admin")
    wrong = "comms_" + "Q" * 43
    for args in (["incident", "list"], ["users", "list"], ["users", "rotate", "ana"]):
        result = invoke(args, wrong)
        assert result.exit_code == 3
        assert wrong not in result.output
        assert "Q" * 10 not in result.output


def test_users_commands_authenticate_on_a_store_without_token_mode(tmp_path: Path) -> None:
    """Plain local SQLite (no [auth] table): the other commands need no token, but once the
    store has users, managing them does."""
    admin = ok(["users", "add", "ana", "--role", "admin"]).stdout.strip()
    fails(["users", "add", "eve", "--role", "admin"], 3, "this store needs a token")
    ok(["users", "add", "sam", "--role", "imoc"], admin)
    ok(["incident", "list"])  # everything else: no token, as before
