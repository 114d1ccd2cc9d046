"""The CLI as real processes: the console script, `python -m comms`, light start-up,
one-line errors on stderr, and prompting for missing values on a real terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from foundation_support import NOW_ISO, REPO, VENV_BIN, run_comms

pytestmark = pytest.mark.slow


def test_console_script_and_python_m_help() -> None:
    script = run_comms(["--help"])
    assert script.returncode == 0, script.stderr
    assert "Commands:" in script.stdout
    assert "draft" in script.stdout
    module = subprocess.run(
        [sys.executable, "-m", "comms", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert module.returncode == 0, module.stderr
    assert module.stdout == script.stdout
    assert module.stderr == ""
    assert script.stderr == ""


def test_help_imports_nothing_heavy() -> None:
    """`comms --help` must stay fast: no Jinja, pydantic, SQLite, HTTP or subcommand module."""
    code = (
        "import sys\n"
        "from comms.cli import main\n"
        "sys.argv = ['comms', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ['jinja2', 'pydantic', 'sqlite3', 'httpx', 'zenpy', 'starlette', 'uvicorn',\n"
        "         'platformdirs', 'comms.render', 'comms.commands.core',\n"
        "         'comms.adapters.sqlite_store', 'comms.settings']\n"
        "print('LOADED', [m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("LOADED []"), result.stdout[-300:]


def test_a_session_as_processes(tmp_path: Path) -> None:
    env = {"COMMS_NOW": NOW_ISO}
    assert run_comms(["tenants", "add", "acme", "--name", "Acme Corp"], env=env).returncode == 0
    opened = run_comms(
        ["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "Sign-in failures"],
        env=env,
    )
    assert opened.returncode == 0
    assert opened.stdout.startswith("opened INC-1: S1 Sign-in failures (acme)\n")
    drafted = run_comms(
        [
            "draft",
            "investigation-start",
            "--incident",
            "INC-1",
            "--set",
            "impact=Users cannot sign in",
        ],
        env=env,
    )
    assert drafted.returncode == 0, drafted.stderr
    assert "Subject: Investigating: Sign-in failures\n" in drafted.stdout
    assert "Next update: by 2026-11-27 15:30 UTC" in drafted.stdout
    listed = run_comms(["drafts", "list", "--format", "json"], env=env)
    assert [d["kind"] for d in json.loads(listed.stdout)] == ["investigation-start"]


def test_errors_are_one_line_on_stderr(tmp_path: Path) -> None:
    missing = run_comms(["draft", "update", "--incident", "INC-1"])
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert missing.stderr.count("\n") == 1
    assert "no incident 'INC-1'" in missing.stderr
    db = tmp_path / "garbage.db"
    db.write_bytes(b"\x00garbage" * 512)
    corrupt = run_comms(["incident", "list"], env={"COMMS_DATABASE_URL": str(db)})
    assert corrupt.returncode == 3
    assert corrupt.stdout == ""
    assert corrupt.stderr.count("\n") == 1
    assert corrupt.stderr.startswith("Error: ")
    assert str(db) in corrupt.stderr
    (tmp_path / "comms.toml").write_text("[lint\n", encoding="utf-8")
    config = run_comms(["incident", "list"], cwd=tmp_path)
    assert config.returncode == 3
    assert config.stderr.count("\n") == 1
    assert "comms.toml:1" in config.stderr


def test_piped_stdin_does_not_prompt(tmp_path: Path) -> None:
    env = {"COMMS_NOW": NOW_ISO}
    run_comms(["tenants", "add", "acme", "--name", "Acme"], env=env)
    run_comms(["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "x"], env=env)
    result = subprocess.run(
        [str(VENV_BIN / "comms"), "draft", "update", "--incident", "INC-1"],
        input="typed\n",
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        timeout=30,
    )
    assert result.returncode == 2
    assert "'impact', 'actions'" in result.stderr


def _read_until(fd: int, needle: bytes, seen: bytearray, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while needle not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"waited for {needle!r}, got:\n{seen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"terminal closed before {needle!r}:\n{seen.decode(errors='replace')}"
            seen += chunk


def test_missing_values_are_prompted_on_a_terminal(tmp_path: Path) -> None:
    env = {**os.environ, "COMMS_NOW": NOW_ISO, "TERM": "dumb"}
    run_comms(["tenants", "add", "acme", "--name", "Acme"], env={"COMMS_NOW": NOW_ISO})
    run_comms(
        ["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "x"],
        env={"COMMS_NOW": NOW_ISO},
    )
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(VENV_BIN / "comms"), "draft", "update", "--incident", "INC-1"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    seen = bytearray()
    try:
        _read_until(leader, b"impact (", seen)
        os.write(leader, b"Users cannot sign in\n")
        _read_until(leader, b"actions (", seen)
        os.write(leader, b"We are restoring sign-in\n")
        _read_until(leader, b"or sooner if the situation changes.", seen)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    text = seen.decode().replace("\r\n", "\n")
    assert "What you may experience: Users cannot sign in" in text
    assert "What we are doing: We are restoring sign-in" in text
    stored = json.loads(run_comms(["drafts", "show", "1", "--format", "json"]).stdout)
    # The promised next update is stored even when it was the default (now + 60 min for
    # S1): the cadence tracker holds the next update to it.
    assert stored["variables"] == {
        "actions": "We are restoring sign-in",
        "impact": "Users cannot sign in",
        "next_update": "2026-11-27T15:30:00Z",
    }


def test_runs_from_any_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_comms(["templates", "list"], cwd=elsewhere)
    assert result.returncode == 0
    assert "maintenance-completed" in result.stdout
    assert elsewhere != REPO


def test_demo_runs_on_a_throw_away_store(tmp_path: Path) -> None:
    """The README's first command: the demo walks the pipeline and leaves nothing behind."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = run_comms(["demo"], env={"TMPDIR": str(scratch)}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.rstrip().endswith("demo complete")
    assert "Subject: Investigating:" in result.stdout
    assert "{{" not in result.stdout
    assert "{%" not in result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "comms.db").exists(), "the demo touched the user's store"
    assert list(scratch.iterdir()) == [], "the demo left its throw-away store behind"
