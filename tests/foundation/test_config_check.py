"""`comms config check`: the whole of comms.toml, every table with its full validator,
each problem as ``file:line: problem``; exit 3 when there is any."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from foundation_support import fails, invoke, ok, run_comms

GOOD = """\
author = "Jane Doe"

[send]
channels = ["switchboard"]
concurrency = 8

[switchboard]
base_url = "http://127.0.0.1:8765"
"""

BAD = """\
author = "Jane Doe"

[send]
concurrency = "eight"

[switchboard]
base_url = "ftp://switchboard.example"
max_attempts = 0

[zendesk]
subdomain = "acme"
email = "not-an-address"

[lint]
packs = ["missing.toml"]
rules = { "Impact.Jargn" = "off" }

[alerts]
sinks = ["pigeon:coo"]
"""


def check(*args: str) -> tuple[int, list[str]]:
    result = invoke(["config", "check", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout.splitlines()


def test_a_good_file_is_ok(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text(GOOD, encoding="utf-8")
    code, lines = check()
    assert code == 0
    assert lines == [f"config: {tmp_path / 'comms.toml'}", "ok"]
    data = json.loads(ok(["config", "check", "--format", "json"]).stdout)
    assert data == {"file": str(tmp_path / "comms.toml"), "ok": True, "problems": []}


def test_no_file_means_the_defaults(tmp_path: Path) -> None:
    code, lines = check()
    assert code == 0
    assert lines[0].startswith("config: none found")
    assert lines[-1] == "ok"


def test_every_problem_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text(BAD, encoding="utf-8")
    code, lines = check()
    assert code == 3
    assert lines[0] == f"config: {tmp_path / 'comms.toml'}"
    problems = lines[1:]
    expected = {
        4: "concurrency",
        7: "base_url",
        8: "max_attempts",
        12: "email",
        15: "missing.toml",
        16: "Impact.Jargn",
        19: "pigeon",
    }
    found = {int(line.split(":")[1]): line for line in problems}
    assert sorted(found) == sorted(expected), "\n".join(problems)
    for number, needle in expected.items():
        assert found[number].startswith(f"comms.toml:{number}: "), found[number]
        assert needle in found[number], found[number]
    data = json.loads(invoke(["config", "check", "--format", "json"]).stdout)
    assert data["ok"] is False
    assert [p["line"] for p in data["problems"]] == sorted(expected)
    assert all(p["file"] == "comms.toml" for p in data["problems"])


def test_secrets_come_from_the_environment_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No token in the file is fine (COMMS_SWITCHBOARD_TOKEN at send time), and
    COMMS_SWITCHBOARD_URL stands in for base_url."""
    (tmp_path / "comms.toml").write_text(
        '[switchboard]\ntimeout_seconds = 3\n[zendesk]\nsubdomain = "acme"\nemail = "a@b.example"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("COMMS_SWITCHBOARD_URL", "http://127.0.0.1:9")
    assert check()[0] == 0
    monkeypatch.delenv("COMMS_SWITCHBOARD_URL")
    code, lines = check()
    assert code == 3
    assert "base_url" in lines[1]
    assert "COMMS_SWITCHBOARD_URL" in lines[1]


def test_a_table_missing_a_required_key(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text('\n[zendesk]\nemail = "a@b.example"\n', encoding="utf-8")
    code, lines = check()
    assert code == 3
    assert lines[1].startswith("comms.toml:2: ")
    assert "subdomain" in lines[1]


def test_malformed_toml(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text('author = "x"\n[send\n', encoding="utf-8")
    code, lines = check()
    assert code == 3
    assert lines[-1].startswith("comms.toml:2:")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: (p / "comms.toml").mkdir(), "is a directory"),
        (lambda p: (p / "comms.toml").write_bytes(b"\xff\xfe\x00"), "UTF-8"),
        (lambda p: (p / "comms.toml").symlink_to(p / "gone.toml"), "broken link"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_line(tmp_path: Path, make: object, needle: str) -> None:
    make(tmp_path)  # type: ignore[operator]
    code, lines = check()
    assert code == 3
    assert len(lines) == 1, lines
    assert lines[0].startswith("comms.toml")
    assert needle in lines[0]
    data = json.loads(invoke(["config", "check", "--format", "json"]).stdout)
    assert data["ok"] is False
    assert needle in data["problems"][0]["message"]


def test_comms_config_naming_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_CONFIG", str(tmp_path / "nope.toml"))
    code, lines = check()
    assert code == 3
    assert lines == [f"{tmp_path / 'nope.toml'}: does not exist; create it or unset COMMS_CONFIG"]


def test_config_option(tmp_path: Path) -> None:
    (tmp_path / "other.toml").write_text(GOOD, encoding="utf-8")
    assert check("--config", str(tmp_path / "other.toml")) == (
        0,
        [f"config: {tmp_path / 'other.toml'}", "ok"],
    )


def test_the_other_commands_stop_at_the_first_problem_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text(BAD, encoding="utf-8")
    fails(["incident", "list"], 3, "comms.toml:4: ", "concurrency", "comms config check")


def test_as_a_process_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text(BAD, encoding="utf-8")
    done = run_comms(["config", "check"], cwd=tmp_path)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert done.stdout.count("comms.toml:") == 7


def test_the_top_level_values(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text(
        'templates_dir = "nope"\ndatabase_url = "ftp://x"\nauthor = 3\n', encoding="utf-8"
    )
    code, lines = check()
    assert code == 3
    assert [line.split(": ", 1)[0] for line in lines[1:]] == [
        "comms.toml:1",
        "comms.toml:2",
        "comms.toml:3",
    ]
    assert "templates_dir" in lines[1]
    assert "ftp" in lines[2]
    assert "author" in lines[3]


def test_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """A path of undecodable bytes (as a shell may pass) is refused at the command line,
    like every argument that is not text: one usage line, never a crash."""
    name = b"\xff.toml".decode("utf-8", "surrogateescape")
    result = invoke(["config", "check", "--config", name])
    assert result.exit_code == 2, result.output
    assert "not valid UTF-8" in result.stderr
    assert "Traceback" not in result.output
