"""Configuration: comms.toml (working folder, user config folder, COMMS_CONFIG) plus COMMS_*
variables, validated; a malformed file names the file, the line and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from foundation_support import fails, ok

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
