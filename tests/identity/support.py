"""Helpers of the identity suite: the real CLI in-process (CliRunner) and as a process,
and reads of the real databases, as another process would read them."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

STUB_TOKEN = "identity-test-switchboard-token"
COMMS = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "comms"


def write_toml(path: Path, **tables: dict[str, str | int]) -> Path:
    """comms.toml with patient Switchboard timeouts and ``tables`` (string values)."""
    lines = ["[switchboard]", "timeout_seconds = 10", "max_attempts = 6", ""]
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def invoke(
    args: Sequence[str], token: str | None = None, *, input: str | None = None, **env: str
) -> Result:
    """Run the real CLI in-process, presenting ``token`` (None: no COMMS_TOKEN)."""
    from comms.cli import cli

    environ: dict[str, str | None] = {"COMMS_TOKEN": token, **env}
    return CliRunner().invoke(cli, list(args), input=input, env=environ, catch_exceptions=False)


def ok(args: Sequence[str], token: str | None = None, **env: str) -> Result:
    """``invoke`` and insist on exit 0."""
    result = invoke(args, token, **env)
    assert result.exit_code == 0, (
        f"comms {' '.join(args)} exited {result.exit_code}:\n{result.output}"
    )
    return result


def fails(args: Sequence[str], code: int, needle: str, token: str | None = None, **env: str) -> str:
    """``invoke``; insist on exit ``code`` and one line of error output naming ``needle``."""
    result = invoke(args, token, **env)
    assert result.exit_code == code, (
        f"comms {' '.join(args)} exited {result.exit_code}, not {code}:\n{result.output}"
    )
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def run(
    args: Sequence[str], token: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``comms`` script (.venv/bin/comms) as a process of its own."""
    environ = {k: v for k, v in os.environ.items() if k != "COMMS_TOKEN"}
    if token is not None:
        environ["COMMS_TOKEN"] = token
    return subprocess.run(
        [str(COMMS), *args], env={**environ, **env}, capture_output=True, text=True, check=False
    )


@dataclass
class Team:
    """A store in token mode and the tokens of the users a test added, by name."""

    url: str
    toml: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def configure(self, **tables: dict[str, str | int]) -> None:
        """Rewrite comms.toml with ``tables`` (token mode kept on SQLite)."""
        if not self.postgres:
            tables = {"auth": {"mode": "token"}, **tables}
        write_toml(self.toml, **tables)

    @property
    def postgres(self) -> bool:
        return self.url.startswith("postgresql://")

    def add(self, name: str, role: str) -> str:
        """``comms users add NAME --role ROLE`` (as the first admin's token once there is
        one); remember and return the printed token."""
        admin = next(iter(self.tokens.values()), None)
        result = ok(["users", "add", name, "--role", role], admin)
        token = result.stdout.strip()
        self.tokens[name] = token
        return token

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a query on the database itself (SQLite file or PostgreSQL schema)."""
        if self.postgres:
            import psycopg

            with psycopg.connect(self.url) as db:
                return db.execute(sql).fetchall()
        with contextlib.closing(sqlite3.connect(self.url)) as db:
            return db.execute(sql).fetchall()

    def events(self) -> list[tuple[str, str]]:
        """(actor, type) of every event, in order."""
        return [
            (str(a), str(t)) for a, t in self.rows("SELECT actor, type FROM events ORDER BY id")
        ]
