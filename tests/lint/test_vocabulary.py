"""The learned vocabulary: its file, its configuration, how it matches, and the fix."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from comms.errors import ConfigError
from comms.lint import LintConfig, fix, lint
from comms.lint.config import validate
from comms.lint.vocabulary import VocabularyError, names_regex, parse, spans, vocabulary_regex

FILE = """\
# comms lint vocabulary
# user names
cblecker      # 11x in 1 document: chat speaker
alejandrox1

# people
Jane Quorvik  # display name
Nailia

# names
Hellman
k8s-prow
Jones
cblecker      # listed twice: kept once
"""


def config(tmp_path: Path, text: str = FILE) -> LintConfig:
    (tmp_path / "vocab.txt").write_text(text, encoding="utf-8")
    return LintConfig.model_validate({"vocabulary": "vocab.txt"}, context={"base_dir": tmp_path})


def found(text: str, cfg: LintConfig) -> list[str]:
    return [f.match for f in lint(text, config=cfg) if f.rule == "Leak.Vocabulary"]


def test_the_file_is_one_name_a_line_with_comments() -> None:
    assert parse(FILE) == (
        "cblecker",
        "alejandrox1",
        "Jane Quorvik",
        "Nailia",
        "Hellman",
        "k8s-prow",
        "Jones",
    )
    assert parse("") == ()
    assert parse("  Jane   Quorvik  \n") == ("Jane Quorvik",)
    assert parse("ping#1\n") == ("ping#1",)  # '#' starts a comment only after a space


@pytest.mark.parametrize("bad", ["x\n", "--\n", "a" * 101 + "\n"])
def test_a_line_that_is_no_name_is_refused_with_its_number(bad: str) -> None:
    with pytest.raises(VocabularyError, match="line 2"):
        parse("Hellman\n" + bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Hellman cluster is slow.", ["Hellman"]),
        ("Hellman's nodes and the Hellmans.", ["Hellman's", "Hellmans"]),
        ("Mr Jones' car", ["Jones'"]),
        ("Ask Jane Quorvik, or Jane\nQuorvik.", ["Jane Quorvik", "Jane\nQuorvik"]),
        ("cblecker said so. Cblecker agreed.", ["cblecker", "Cblecker"]),
        (
            "Builds on k8s-prow, k8s-prow-build and k8s-prow-builds.",
            ["k8s-prow", "k8s-prow-build", "k8s-prow-builds"],
        ),
        ("'Hellman' and (Nailia)", ["Hellman", "Nailia"]),
    ],
)
def test_names_are_matched_as_written(text: str, expected: list[str], tmp_path: Path) -> None:
    assert found(text, config(tmp_path)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "the hellman cluster",  # case as written
        "HellmanX and Hellmann and Stanhellman",  # part of another word
        "@cblecker, #hellman, cblecker.example.org, /srv/Hellman, user cblecker@example.org",
        "Jane and Quorvik separately",
        "NAILIA in capitals",
        "k8s-prowler is another name",
    ],
)
def test_names_inside_other_tokens_or_other_cases_pass(text: str, tmp_path: Path) -> None:
    assert found(text, config(tmp_path)) == []


def test_the_fix_strips_a_name_with_its_preposition(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    result = fix("Builds on Hellman failed. Thanks to Jane Quorvik.", config=cfg)
    assert result.text == "Builds failed."
    # "Jane Quorvik" is a vocabulary name and a person's name in running text: both rules.
    assert list(dict.fromkeys(f.match for f in result.removed)) == ["Hellman", "Jane Quorvik"]
    assert {f.rule for f in result.removed} == {"Leak.Vocabulary", "Leak.PersonName"}


def test_no_vocabulary_no_findings_and_no_module_loaded(tmp_path: Path) -> None:
    assert vocabulary_regex(()) is None
    assert found("Hellman", LintConfig()) == []


def test_config_reads_the_file_relative_to_comms_toml(tmp_path: Path) -> None:
    (tmp_path / "lint").mkdir()
    (tmp_path / "lint" / "v.txt").write_text("Hellman\n", encoding="utf-8")
    cfg = validate({"vocabulary": "lint/v.txt"}, base_dir=tmp_path)
    assert cfg.vocabulary_words() == ("Hellman",)
    with pytest.raises(ConfigError, match=r"lint\.vocabulary.*not found"):
        validate({"vocabulary": "missing.txt"}, base_dir=tmp_path)
    (tmp_path / "bad.txt").write_text("Hellman\nx\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        validate({"vocabulary": "bad.txt"}, base_dir=tmp_path)
    (tmp_path / "latin1.txt").write_bytes(b"Hellm\xe4n\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        validate({"vocabulary": "latin1.txt"}, base_dir=tmp_path)


def test_a_rule_level_applies_to_the_vocabulary(tmp_path: Path) -> None:
    (tmp_path / "v.txt").write_text("Hellman\n", encoding="utf-8")
    cfg = validate(
        {"vocabulary": "v.txt", "rules": {"Leak.Vocabulary": "warning"}}, base_dir=tmp_path
    )
    assert [(f.rule, f.level) for f in lint("Hellman is down.", config=cfg)] == [
        ("Leak.Vocabulary", "warning")
    ]


def _reference_spans(words: tuple[str, ...], text: str) -> list[tuple[int, int]]:
    """What the searches replace: the name regex tried at every position, a match kept
    when nothing of a word, handle, channel, path, host or address is right before it."""
    from comms.lint.vocabulary import _forms, _trie

    name = re.compile("(?:" + _trie(_forms(words)) + r")(?:['’]s|(?<=s)['’]|e?s)?(?![\w@-]|\.\w)")
    out, pos = [], 0
    while (m := name.search(text, pos)) is not None:
        start = m.start()
        if start and (text[start - 1].isalnum() or text[start - 1] in "_@#/.\\-"):
            pos = start + 1
            continue
        out.append(m.span())
        pos = max(m.end(), start + 1)
    return out


NAMES = (
    "cblecker",
    "Hellman",
    "Jane Quorvik",
    "Jane",
    "Quorvik",
    "k8s-prow",
    "Jones",
    "Søren",
    "a1",
)
PIECES = [
    *NAMES,
    *"aZ09_@#/.\\- \t\n(<>:,'\"’–é\u00a0\u2003ツ",
    "'s",
    "’s",
    "es",
    "-build",
    "Jane  Quorvik",
    "Jane\nQuorvik",
]


def test_the_searches_find_what_the_name_regex_finds_at_token_starts() -> None:
    search = names_regex(NAMES)
    assert search is not None
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 30)))
        assert spans(search, text) == _reference_spans(NAMES, text), text
