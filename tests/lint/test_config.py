"""The ``[lint]`` table without pydantic: the same checks, errors naming every wrong key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from comms.errors import ConfigError
from comms.lint import LintConfig, lint
from comms.lint.config import LintConfigError, validate
from comms.lint.engine import DEFAULT_PUBLIC_DOMAINS


def test_defaults() -> None:
    config = LintConfig()
    assert config.public_domains == list(DEFAULT_PUBLIC_DOMAINS)
    assert config.rules == {}
    assert config.fail_level == "error"
    assert config.vocabulary is None
    assert config.vocabulary_words() == ()
    assert config.pack_sources() == ()
    assert list(LintConfig.model_fields) == [
        "public_domains",
        "support_emails",
        "internal_url_prefixes",
        "roster",
        "tenants",
        "packs",
        "rules",
        "fail_level",
        "vocabulary",
    ]


def test_a_config_is_read_only_and_compares_by_value() -> None:
    config = LintConfig(roster=["Jane Doe"])
    with pytest.raises(AttributeError):
        config.roster = []  # type: ignore[misc]
    assert config == LintConfig.model_validate({"roster": ["Jane Doe"]})
    assert config != LintConfig()
    assert hash(config) == hash(LintConfig(roster=["Jane Doe"]))
    # Each config has its own lists.
    assert LintConfig().public_domains is not LintConfig().public_domains


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"roster": "Jane Doe"}, "roster"),
        ({"roster": [1, 2]}, "roster"),
        ({"public_domains": None}, "public_domains"),
        ({"rules": {"Impact.Jargon": "loud"}}, "rules"),
        ({"rules": ["Impact.Jargon"]}, "rules"),
        ({"fail_level": "fatal"}, "fail_level"),
        ({"vocabulary": 3}, "vocabulary"),
        ({"packs": ["missing.toml"]}, "packs"),
        ({"vocabulary": "missing.txt"}, "vocabulary"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_every_wrong_key_is_named(table: dict[str, object], key: str, tmp_path: Path) -> None:
    with pytest.raises(LintConfigError) as caught:
        LintConfig.model_validate(table, context={"base_dir": tmp_path})
    assert [k for k, _ in caught.value.problems] == [key]
    assert caught.value.errors()[0]["loc"] == (key,)
    with pytest.raises(ConfigError, match=rf"invalid \[lint\] configuration: lint\.{key}: "):
        validate(dict(table), base_dir=tmp_path)


def test_several_wrong_keys_at_once() -> None:
    with pytest.raises(LintConfigError) as caught:
        LintConfig.model_validate({"roster": 1, "fail_level": "x"})
    assert [k for k, _ in caught.value.problems] == ["roster", "fail_level"]
    assert isinstance(caught.value, ValueError)


def test_a_bad_pack_is_named_with_its_rule(tmp_path: Path) -> None:
    (tmp_path / "team.toml").write_text('[[rule]]\nid = "bad id"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"lint\.packs: pack 'team' rule 'bad id'"):
        validate({"packs": ["team.toml"]}, base_dir=tmp_path)


def test_packs_and_vocabulary_are_read_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "team.toml").write_text(
        '[pack]\nname = "team"\n\n[[rule]]\nid = "Team.Codename"\nkind = "existence"\n'
        'level = "error"\nmessage = "codename"\ntokens = ["bluebird"]\n',
        encoding="utf-8",
    )
    (tmp_path / "v.txt").write_text("Brannock\n", encoding="utf-8")
    config = validate({"packs": ["team.toml"], "vocabulary": "v.txt"}, base_dir=tmp_path)
    rules = {f.rule for f in lint("Bluebird on Brannock is down.", config=config)}
    assert {"Team.Codename", "Leak.Vocabulary"} <= rules


def test_a_team_pattern_with_a_top_level_choice_finds_every_branch(tmp_path: Path) -> None:
    # "foo1|bar2" starts with "f" or "b": the scanner of "f" alone missed "bar2".
    (tmp_path / "team.toml").write_text(
        '[pack]\nname = "team"\n\n[[rule]]\nid = "Team.Words"\nkind = "existence"\n'
        'level = "error"\nmessage = "team word"\nignorecase = false\n'
        'patterns = ["foo1|bar2"]\n',
        encoding="utf-8",
    )
    config = validate({"packs": ["team.toml"]}, base_dir=tmp_path)
    text = "We saw foo1 and bar2 here."
    found = [text[f.start : f.end] for f in lint(text, config=config) if f.rule == "Team.Words"]
    assert found == ["foo1", "bar2"]


def test_the_lint_path_never_imports_pydantic(tmp_path: Path) -> None:
    """`comms lint` with a [lint] table validates it without pydantic (45-60 ms)."""
    (tmp_path / "comms.toml").write_text(
        '[lint]\npublic_domains = ["gitlab.com"]\nfail_level = "warning"\n', encoding="utf-8"
    )
    (tmp_path / "note.txt").write_text("We are investigating.\n", encoding="utf-8")
    code = (
        "import sys\n"
        "from comms.cli import main\n"
        "sys.argv = ['comms', 'lint', 'note.txt']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('pydantic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "False", done.stdout + done.stderr
