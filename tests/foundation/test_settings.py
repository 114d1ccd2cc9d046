"""Configuration: comms.toml (working folder, user config folder, COMMS_CONFIG) plus COMMS_*
variables, validated; a malformed file names the file, the line and the problem."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from config_support import accepted_keys
from foundation_support import fails, invoke, ok

from comms.bootstrap import Runtime
from comms.errors import ConfigError
from comms.settings import load_settings


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMS_DATABASE_URL")
    monkeypatch.delenv("COMMS_AUTHOR")
    settings = load_settings()
    assert settings.source is None
    # The default store lives in the user's data folder (XDG_DATA_HOME in the tests).
    assert settings.database_url == str(tmp_path / "home" / "data" / "comms" / "comms.db")
    assert settings.templates_dir is None
    assert settings.interval_for("S1") == 60
    assert settings.interval_for("S2") == 120
    assert settings.interval_for("S3") is None


def test_default_store_location_is_used_by_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMMS_DATABASE_URL")
    ok(["tenants", "add", "acme", "--name", "Acme"])
    assert (tmp_path / "home" / "data" / "comms" / "comms.db").is_file()


def test_working_folder_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMS_AUTHOR")
    (tmp_path / "comms.toml").write_text(
        'author = "Robin (GDCMOC)"\ntemplates_dir = "team"\n'
        "[updates]\ninterval_minutes = { S1 = 30, S3 = 240 }\n"
        '[lint]\nfail_level = "warning"\n',
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.source == Path("comms.toml")
    assert settings.author == "Robin (GDCMOC)"
    assert settings.templates_dir is not None
    assert settings.templates_dir.name == "team"
    assert settings.interval_for("S1") == 30
    assert settings.interval_for("S3") == 240
    assert settings.lint == {"fail_level": "warning"}


def test_user_config_folder_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMS_AUTHOR")
    folder = tmp_path / "home" / "config" / "comms"
    folder.mkdir(parents=True)
    (folder / "comms.toml").write_text('author = "from-user-folder"\n', encoding="utf-8")
    assert load_settings().author == "from-user-folder"
    (tmp_path / "comms.toml").write_text('author = "from-working-folder"\n', encoding="utf-8")
    assert load_settings().author == "from-working-folder"


def test_comms_config_and_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('author = "file-author"\ndatabase_url = "/from/file.db"\n', encoding="utf-8")
    (tmp_path / "comms.toml").write_text('author = "ignored"\n', encoding="utf-8")
    monkeypatch.setenv("COMMS_CONFIG", str(other))
    settings = load_settings()
    assert settings.source == other
    assert settings.author == "test-gdcmoc"  # COMMS_AUTHOR beats the file
    assert settings.database_url == str(tmp_path / "comms.db")  # so does COMMS_DATABASE_URL
    monkeypatch.delenv("COMMS_AUTHOR")
    assert load_settings().author == "file-author"


def test_interval_from_config_sets_the_next_update(tmp_path: Path, clock: object) -> None:
    (tmp_path / "comms.toml").write_text(
        "[updates]\ninterval_minutes = { S1 = 30, S3 = 90 }\n", encoding="utf-8"
    )
    ok(["tenants", "add", "acme", "--name", "Acme"])
    ok(["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "x"])
    ok(["incident", "open", "--tenant", "acme", "--severity", "S3", "--title", "y"])
    for ref, expected in (("INC-1", "15:00"), ("INC-2", "16:00")):
        data = json.loads(
            ok(
                [
                    "draft",
                    "update",
                    "--incident",
                    ref,
                    "--set",
                    "impact=a",
                    "--set",
                    "actions=b",
                    "--format",
                    "json",
                ]
            ).stdout
        )
        assert f"Next update: by 2026-11-27 {expected} UTC" in data["body"]


def test_malformed_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text(
        'author = "x"\n\n[lint\nfail_level = "error"\n', encoding="utf-8"
    )
    line = fails(["incident", "list"], 3, "comms.toml:3")
    assert "(at line" not in line  # said once, compiler style
    with pytest.raises(ConfigError, match=r"comms\.toml:3:\d+: "):
        load_settings()


def test_malformed_value_names_line(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text('author = "x"\nreviewer = \n', encoding="utf-8")
    fails(["templates", "list"], 3, "comms.toml:2")


def test_unknown_key_is_exit_3(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text(
        'author = "x"\ndatabse_url = "/tmp/typo.db"\n', encoding="utf-8"
    )
    fails(["incident", "list"], 3, "comms.toml", "unknown key 'databse_url'", "database_url")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("author = 3\n", "'author' must be a non-empty string"),
        ('author = ""\n', "'author' must be a non-empty string"),
        ('lint = "strict"\n', "'lint' must be a table"),
        ("[updates]\ninterval_minutes = { S9 = 10 }\n", "unknown severity 'S9'"),
        ("[updates]\ninterval_minutes = { S1 = 0 }\n", "positive whole number"),
        ("[updates]\ninterval_minutes = { S1 = true }\n", "positive whole number"),
        ("[updates]\ninterval_minutes = 60\n", "must be a table"),
        ("[updates]\nintervals_minutes = { S1 = 30 }\n", "unknown key 'updates.intervals_minutes'"),
    ],
)
def test_invalid_values_are_exit_3(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "comms.toml").write_text(content, encoding="utf-8")
    fails(["incident", "list"], 3, "comms.toml", needle)


def test_not_utf8_is_exit_3(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_bytes(b'author = "\xff\xfe"\n')
    fails(["incident", "list"], 3, "comms.toml", "UTF-8")


def test_comms_config_naming_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_CONFIG", str(tmp_path / "missing.toml"))
    fails(["incident", "list"], 3, "missing.toml", "does not exist")
    fails(["draft", "update", "--incident", "INC-1"], 3, "missing.toml")


def test_config_file_that_is_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf.d").mkdir()
    monkeypatch.setenv("COMMS_CONFIG", str(tmp_path / "conf.d"))
    fails(["incident", "list"], 3, "conf.d")


def test_templates_dir_from_config_is_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    (conf / "team").mkdir(parents=True)
    (conf / "team" / "update.txt.j2").write_text(
        '{% extends "default:update.txt.j2" %}\n', encoding="utf-8"
    )
    (conf / "comms.toml").write_text('templates_dir = "team"\n', encoding="utf-8")
    monkeypatch.setenv("COMMS_CONFIG", str(conf / "comms.toml"))
    data = json.loads(ok(["templates", "show", "update", "--format", "json"]).stdout)
    assert data["source"] == str(conf / "team" / "update.txt.j2")


# -- the whole file is checked at load, not when a table is first used -------------------


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        ('[send]\nconcurrency = "eight"\n', 2, "concurrency"),
        ("[send]\nconcurrency = 100\n", 2, "concurrency"),
        ('[send]\nchanels = ["zendesk"]\n', 2, "unknown key 'send.chanels'"),
        ('[send]\nchannels = ["pigeon"]\n', 2, "channels"),
        ('author = "x"\n[review]\nrequired_for = ["S9"]\n', 3, "required_for"),
        ("[review]\nsirt_for_security = 1\n", 2, "sirt_for_security"),
        ('[cadence]\nreminder_lead = "soon"\n', 2, "reminder_lead"),
        ("[cadence]\nreminder_lead = true\n", 2, "reminder_lead"),
        ('[cadence]\nquiet_hours = "late"\n', 2, "quiet_hours"),
        ('[alerts]\nsinks = "stdout"\n', 2, "sinks"),
        ('[alerts]\nsink = ["stdout"]\n', 2, "unknown key 'alerts.sink'"),
        ('[switchboard]\nbase_url = "http://x"\ntimeout_seconds = "10s"\n', 3, "timeout_seconds"),
        ("[switchboard]\nverify_first = 1\n", 2, "verify_first"),
        ('[zendesk]\nsubdomain = "acme"\nmax_attempts = "four"\n', 3, "max_attempts"),
        ('[zendesk]\nsubdomian = "acme"\n', 2, "unknown key 'zendesk.subdomian'"),
        ('[lint]\nrules = { "Impact.Jargn" = "off" }\n', 2, "Impact.Jargn"),
        ('[lint]\nrules = { "Impact.Jargon" = "loud" }\n', 2, "rules"),
        ('[lint]\nfail_level = "fatal"\n', 2, "fail_level"),
        ("[lint]\nroster = [1, 2]\n", 2, "roster"),
        ('lint.fail_level = "fatal"\n', 1, "fail_level"),
        ('[lint]\nrules."Impact.Jargn" = "off"\n', 2, "Impact.Jargn"),
    ],
)
def test_every_table_is_checked_at_load(
    tmp_path: Path, content: str, line: int, needle: str
) -> None:
    """A wrong type, an unknown key or an unknown rule id fails the first command that reads
    the file, naming the line, instead of passing until the table is used mid-incident."""
    (tmp_path / "comms.toml").write_text(content, encoding="utf-8")
    fails(["incident", "list"], 3, f"comms.toml:{line}: ", needle)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        Runtime().settings  # noqa: B018  (the library path checks the same)


def test_unknown_rule_id_suggests_the_known_one(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text(
        '[lint]\nrules = { "Impact.Jargn" = "off" }\n', encoding="utf-8"
    )
    fails(["lint", "-"], 3, "Impact.Jargn", "Impact.Jargon", input="We are investigating.\n")


def test_rule_ids_of_extra_packs_are_known(tmp_path: Path) -> None:
    (tmp_path / "team.toml").write_text(
        '[pack]\nname = "team"\n\n[[rule]]\nid = "Team.Codename"\nkind = "existence"\n'
        'level = "error"\nmessage = "internal codename"\ntokens = ["bluebird"]\n',
        encoding="utf-8",
    )
    (tmp_path / "comms.toml").write_text(
        '[lint]\npacks = ["team.toml"]\nrules = { "Team.Codename" = "warning" }\n',
        encoding="utf-8",
    )
    ok(["incident", "list"])
    result = invoke(["lint", "-"], input="Bluebird is down.\n")
    assert "warning Team.Codename" in result.stdout, result.output


def test_good_tables_still_load(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text(
        '[send]\nchannels = ["switchboard", "zendesk"]\nconcurrency = 4\n'
        '[review]\nrequired_for = ["S1"]\nsirt_for_security = false\ns1_timeout_minutes = 20\n'
        '[cadence]\nreminder_lead = "15m"\nrca_within = 10080\nquiet_hours = "22:00-07:00"\n'
        '[cadence.gap]\nS1 = "30m"\nS2 = { default = "2h", monitoring = "off" }\n'
        '[alerts]\nsinks = ["stdout"]\n'
        '[switchboard]\nbase_url = "http://127.0.0.1:1"\ntimeout_seconds = 2.5\nmax_attempts = 3\n'
        '[zendesk]\nsubdomain = "acme"\nemail = "a@acme.example"\nrate_per_minute = 100\n'
        '[lint]\nrules = { "Impact.Jargon" = "off" }\nfail_level = "warning"\n',
        encoding="utf-8",
    )
    ok(["incident", "list"])


@pytest.mark.parametrize("where", ["working", "user"])
def test_a_directory_named_comms_toml_is_an_error(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path if where == "working" else tmp_path / "home" / "config" / "comms"
    (folder / "comms.toml").mkdir(parents=True)
    line = fails(["incident", "list"], 3, "comms.toml", "is a directory")
    assert str(folder / "comms.toml") in line or where == "working"
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings()


def test_comms_config_naming_a_device_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMS_CONFIG", "/dev/zero")
    fails(["incident", "list"], 3, "/dev/zero", "not a regular file")


def test_a_huge_config_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text("# " + "x" * (2 * 1024 * 1024) + "\n", encoding="utf-8")
    fails(["incident", "list"], 3, "comms.toml", "1 MiB")


def test_the_load_time_schema_names_every_key_the_validators_accept() -> None:
    """settings.SCHEMA (the cheap type check every command runs) and the full checks in
    bootstrap.TABLE_CHECKS accept the same keys: neither can drift from the other."""
    from comms.bootstrap import TABLE_CHECKS
    from comms.settings import SCHEMA

    assert set(SCHEMA) == set(TABLE_CHECKS)
    for table in TABLE_CHECKS:
        assert sorted(SCHEMA[table]) == sorted(accepted_keys(table)), table
