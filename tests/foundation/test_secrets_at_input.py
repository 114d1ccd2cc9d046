"""Leak safety: a secret is refused at input (never stored) and never echoed in an error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from foundation_support import NOW, fails, invoke, ok

TOKEN = "glpat-abcdefghij1234567890"
MASK = "[secret, 26 characters]"


def no_token(text: str) -> None:
    assert TOKEN not in text
    assert "abcdefghij1234567890" not in text


def test_find_secret_names_the_kind_and_shown_masks() -> None:
    from comms.lint.secrets import find_secret, masked, shown

    assert find_secret(TOKEN) == "GitLab personal access token"
    assert find_secret("Sign-in failures since 13:52 UTC") is None
    assert find_secret("see https://example.com/?id=12345678") is None
    assert shown(TOKEN) == MASK
    assert shown("INC-9") == "INC-9"
    assert masked(f"no incident '{TOKEN}'") == f"no incident '{MASK}'"


def test_secret_kinds_follow_the_pack() -> None:
    from comms.lint import secrets
    from comms.lint.rules import default_packs

    rule = next(r for p in default_packs() for r in p.rules if r.id == "Leak.Secret")
    assert len(rule.patterns) == len(secrets.SECRET_KINDS)


def test_open_refuses_a_secret_title(tenant: str) -> None:
    line = fails(
        ["incident", "open", "--tenant", tenant, "--severity", "S1", "--title", f"x {TOKEN}"],
        2,
        "--title contains a secret (GitLab personal access token, [secret, 26 characters])",
        "nothing was stored",
    )
    no_token(line)
    assert "INC-" not in ok(["incident", "list"]).stdout


def test_set_title_refuses_a_secret(s1: str) -> None:
    no_token(fails(["incident", "set", s1, "--title", f"token {TOKEN}"], 2, "--title", MASK))
    shown = json.loads(ok(["incident", "show", s1, "--format", "json"]).stdout)
    assert shown["title"] == "Sign-in failures"
    no_token(ok(["timeline", s1, "--format", "json"]).stdout)


def test_draft_value_with_a_secret_is_refused(s1: str) -> None:
    args = ["draft", "investigation-start", "--incident", s1, "--set", f"impact=Users {TOKEN}"]
    no_token(fails(args, 2, "--set impact contains a secret", MASK))
    assert "investigation-start" not in ok(["drafts", "list"]).stdout


def test_edited_text_with_a_secret_is_refused(
    s1: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys\np = sys.argv[1]\ntext = open(p).read()\n"
        f"open(p, 'w').write(text + 'token {TOKEN}\\n')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    args = ["draft", "investigation-start", "--incident", s1, "--set", "impact=Users", "--edit"]
    result = invoke(args)
    assert result.exit_code == 2
    assert "the edited message contains a secret" in result.output
    no_token(result.output)


def test_set_not_name_value_is_masked(s1: str) -> None:
    line = fails(["draft", "update", "--incident", s1, "--set", TOKEN], 2, "--set", MASK)
    no_token(line)


def test_started_parse_error_is_masked(tenant: str) -> None:
    args = ["incident", "open", "--tenant", tenant, "--severity", "S1", "--title", "x"]
    no_token(fails([*args, "--started", TOKEN], 2, "--started", MASK))


def test_unknown_incident_ref_is_masked(clock: object) -> None:
    no_token(fails(["incident", "show", TOKEN], 2, f"no incident '{MASK}'"))


def test_unknown_tenant_and_bad_choice_are_masked(clock: object) -> None:
    args = ["incident", "open", "--severity", "S1", "--title", "x"]
    no_token(fails([*args, "--tenant", TOKEN], 2, f"no tenant '{MASK}'"))
    no_token(fails(["incident", "open", "--severity", TOKEN, "--tenant", "a", "--title", "x"], 2))


def stored_with_a_secret() -> None:
    """Draft 1 of INC-1 with a token in its subject, body and a value (as stored before
    input was checked), revised once more without it."""
    import os

    from comms.adapters.sqlite_store import SqliteStore
    from comms.models import MessageKind

    with SqliteStore(os.environ["COMMS_DATABASE_URL"]) as store:
        for n, text in ((1, f"token {TOKEN}"), (2, "clean")):
            store.add_revision(
                incident_ref="INC-1",
                kind=MessageKind.UPDATE,
                draft_id=None if n == 1 else 1,
                subject=f"Update {text}",
                body=f"Body {text} and Bearer abcdefghijklmnopqrstuvwx\n",
                variables={"impact": text, "actions": "restoring"},
                author="gdcmoc",
                now=NOW,
            )


def test_drafts_redact_replaces_secrets_in_one_revision(s1: str) -> None:
    stored_with_a_secret()
    args = ["drafts", "redact", "1", "--revision", "1", "--reason", "token pasted in"]
    out = ok(args, env={"COMMS_AUTHOR": "sam"}).stdout
    assert "redacted 3 GitLab personal access token, 1 bearer token; rotate them" in out
    no_token(out)
    shown = json.loads(ok(["drafts", "show", "1", "--revision", "1", "--format", "json"]).stdout)
    no_token(json.dumps(shown))
    assert shown["subject"] == "Update token [redacted secret]"
    assert shown["variables"]["impact"] == "token [redacted secret]"
    assert "[redacted secret]" in shown["body"]
    latest = json.loads(ok(["drafts", "show", "1", "--format", "json"]).stdout)
    assert (latest["revision"], latest["subject"]) == (2, "Update clean")
    events = json.loads(ok(["timeline", s1, "--format", "json"]).stdout)["events"]
    event = next(e for e in events if e["type"] == "draft.redacted")
    assert event["actor"] == "sam"
    assert event["data"]["reason"] == "token pasted in"
    assert event["data"]["kinds"] == {"GitLab personal access token": 3, "bearer token": 1}
    markdown = ok(["timeline", s1]).stdout
    assert (
        "redacted draft 1 r1 (3 GitLab personal access token, 1 bearer token): token pasted in"
        in markdown
    )
    fails(args, 2, "holds no secret")
    fails(["drafts", "redact", "1", "--revision", "7", "--reason", "x"], 2, "no revision 7")
    fails(["drafts", "redact", "9", "--revision", "1", "--reason", "x"], 2, "no draft 9")


def test_tenant_name_with_a_secret_is_refused(clock: object) -> None:
    args = ["tenants", "add", "acme", "--name", f"Acme {TOKEN}"]
    no_token(fails(args, 2, "--name contains a secret", MASK))
    assert "acme" not in ok(["tenants", "list"]).stdout


@pytest.mark.parametrize(
    "hidden",
    [
        "glpat-abcdefghij\u200b1234567890",  # zero-width space inside the token
        "glpat-abcdefghij\u00ad1234567890",  # soft hyphen
        "glpat-abcdefghij\u04561234567890",  # Cyrillic U+0456 for Latin i
    ],
)
def test_a_secret_hidden_by_invisible_or_look_alike_characters_is_refused(
    tenant: str, hidden: str
) -> None:
    from comms.lint.secrets import find_secret

    assert find_secret(f"Login fails {hidden}") is not None
    line = fails(
        ["incident", "open", "--tenant", tenant, "--severity", "S1", "--title", f"x {hidden}"],
        2,
        "--title contains a secret",
    )
    assert hidden not in line
    assert "INC-" not in ok(["incident", "list"]).stdout
