"""The README documents every command, and its first lines are the two set-up commands."""

from __future__ import annotations

import re
from pathlib import Path

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


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _documented_tables() -> dict[str, str]:
    """Each ``[table]`` of the TOML examples in the Configuration section, with its lines."""
    tables: dict[str, list[str]] = {}
    for block in re.findall(r"```toml\n(.*?)```", _section("Configuration"), re.S):
        current = ""
        for line in block.splitlines():
            header = re.match(r"\s*#?\s*\[([\w.]+)\]", line)
            if header:
                current = header.group(1).split(".")[0]
            tables.setdefault(current, []).append(line)
    return {name: "\n".join(lines) for name, lines in tables.items()}


def test_every_config_key_the_code_accepts_is_documented() -> None:
    """Every ``[table] key`` that a table's validator accepts (read off the validator, see
    config_support) is in a TOML example of the README's Configuration section."""
    from config_support import accepted_keys

    from comms.bootstrap import TABLE_CHECKS

    documented = _documented_tables()
    missing = []
    for table in sorted(TABLE_CHECKS):
        block = documented.get(table, "")
        for key in accepted_keys(table):
            if not re.search(rf"^\s*#?\s*{re.escape(key)}\s*[=.]", block, re.M):
                missing.append(f"[{table}] {key}")
    assert missing == [], f"README.md's Configuration section does not show: {missing}"


def test_every_environment_variable_is_documented() -> None:
    """Every COMMS_* (and ZENPY_FORCE_*) variable the code reads is named in the README."""
    names: set[str] = set()
    for folder in ("comms", "adapters"):
        for path in (REPO / folder).rglob("*.py"):
            names |= set(
                re.findall(r"\b(?:COMMS|ZENPY_FORCE)_[A-Z0-9_]*[A-Z0-9]\b", path.read_text())
            )
    missing = sorted(name for name in names if name not in README)
    assert missing == [], f"README.md never mentions {missing}"


def _subcommands() -> list[str]:
    import click

    from comms.cli import cli

    found = []
    ctx = click.Context(cli)
    for name in sorted(COMMANDS):
        command = cli.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += [f"{name} {sub}" for sub in sorted(command.commands)]
    return found


@pytest.mark.parametrize("name", _subcommands())
def test_every_subcommand_in_readme(name: str) -> None:
    group, sub = name.split(" ")
    # `comms tenants add|import|list` names three at once.
    pattern = rf"\bcomms {re.escape(group)} (?:[\w-]+\\?\|)*{re.escape(sub)}\b"
    assert re.search(pattern, README), f"README.md never mentions `comms {name}`"


def test_the_configuration_example_passes_the_check(tmp_path: Path) -> None:
    """The README's comms.toml, as printed, is a file `comms config check` calls ok."""
    from foundation_support import invoke

    block = re.search(r"```toml\n(.*?)```", _section("Configuration"), re.S)
    assert block is not None
    (tmp_path / "comms.toml").write_text(block.group(1), encoding="utf-8")
    (tmp_path / "team-rules.toml").write_text('[pack]\nname = "team"\n', encoding="utf-8")
    (tmp_path / "lint-vocabulary.txt").write_text("bluebird\n", encoding="utf-8")
    (tmp_path / "templates").mkdir()
    result = invoke(["config", "check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "ok"
