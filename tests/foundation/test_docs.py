"""The README documents every command, and its first lines are the two set-up commands."""

from __future__ import annotations

import re

import pytest
from foundation_support import REPO

from comms.cli import COMMANDS

README = (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_in_readme(name: str) -> None:
    assert re.search(rf"\bcomms {re.escape(name)}\b", README), (
        f"README.md never mentions `comms {name}`"
    )


def test_readme_starts_with_the_two_commands() -> None:
    block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", README, re.S)
    assert block is not None
    assert README.index("```") < 200, "the set-up commands come first"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 2
    assert "pip install" in lines[0]
    assert "comms demo" in lines[0]
    assert "[test]" in lines[1]
    assert "pytest" in lines[1]


def test_ci_runs_exactly_the_readme_commands() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", README, re.S)
    assert block is not None
    for line in block.group(1).splitlines():
        if line.strip():
            assert line.strip() in ci, f".ci/run does not run: {line.strip()}"


def test_readme_exit_codes_match_the_error_tree() -> None:
    from comms.errors import ConfigError, StoreError, TemplateError, UsageError

    assert (UsageError.exit_code, TemplateError.exit_code) == (2, 2)
    assert (ConfigError.exit_code, StoreError.exit_code) == (3, 3)
    section = README[README.lower().index("exit code") :]
    for code in ("0", "1", "2", "3"):
        assert re.search(rf"\b{code}\b", section[:1500]), f"exit code {code} is not documented"
