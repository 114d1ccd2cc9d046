"""Substitutions (jargon to customer wording): a replacement fits the sentence it lands in.

Found by fuzzing: "Failed over to slave." became "Switched to standby systems to slave."
(the replacement named its own object before the one the text gave), and the fix took the
only word the impact check had found, adding a Struct.Impact warning.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from comms.lint import LintConfig, fix, lint
from comms.lint.rules import Rule, default_packs

FUZZED = "2010-10-28 05:40:00 - Failed over to slave. All systems go. Investigating root cause."
_ENDS_WITH_OBJECT = re.compile(r"\b(?:to|from)\s+\w+(?:\s+\w+)?$")


def _swaps() -> list[tuple[str, str]]:
    return [
        (bad, good) for pack in default_packs() for rule in pack.rules for bad, good in rule.swap
    ]


def _required() -> list[Rule]:
    return [rule for pack in default_packs() for rule in pack.rules if rule.kind == "required"]


def test_the_fuzzed_update_is_fixed_without_a_dangling_object_or_a_new_warning() -> None:
    kw = {"kind": "investigation-start", "status": "mitigating"}
    result = fix(FUZZED, **kw)
    assert result.text == (
        "2010-10-28 05:40:00 - Switched to slave. All systems go. Investigating root cause."
    )
    before = Counter(f.rule for f in lint(FUZZED, **kw))
    assert Counter(f.rule for f in result.remaining) - before == Counter()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The database failed over to the replica.", "The database switched to the replica."),
        ("The cluster failed over.", "The cluster switched to standby systems."),
        (
            "We will fail over from the primary to the secondary.",
            "We will switch from the primary to the secondary.",
        ),
        ("Failover to the DR site completed.", "Switch to the DR site completed."),
        ("A failover of the database", "A switch to standby systems for the database"),
    ],
)
def test_failover_phrases_take_the_object_they_are_given(text: str, expected: str) -> None:
    assert fix(text).text == expected


@pytest.mark.parametrize(
    ("bad", "good"), [s for s in _swaps() if _ENDS_WITH_OBJECT.search(s[1])], ids=str
)
@pytest.mark.parametrize("obj", ["to the replica", "from the primary"])
def test_a_replacement_with_its_own_object_never_precedes_the_written_one(
    bad: str, good: str, obj: str
) -> None:
    fixed = fix(f"Yesterday the service {bad} {obj}.").text
    own = _ENDS_WITH_OBJECT.search(good)
    assert own is not None
    assert f"{own.group()} {obj}" not in fixed, fixed


@pytest.mark.parametrize(("bad", "good"), _swaps(), ids=str)
def test_customer_wording_keeps_what_a_required_check_looks_for(bad: str, good: str) -> None:
    for rule in _required():
        flags = re.IGNORECASE if rule.ignorecase else 0
        if any(re.search(p, bad, flags) for p in rule.patterns):
            assert any(re.search(p, good, flags) for p in rule.patterns), (rule.id, bad, good)


@pytest.mark.parametrize(
    "text", ["We failed over. Investigating.", "We will fail\n    over. Investigating."]
)
def test_a_failover_is_not_impact(text: str) -> None:
    assert "Struct.Impact" in {f.rule for f in lint(text, kind="update")}
    # So fixing its jargon (however it is spaced) neither adds the warning nor keeps it.
    result = fix(text, kind="update")
    assert not [f for f in result.remaining if f.fixable]


def test_a_warning_fix_that_would_remove_the_only_impact_words_is_left(tmp_path: Path) -> None:
    # A team pack whose wording drops the word the impact check needs: the fix keeps it.
    (tmp_path / "house.toml").write_text(
        '[pack]\nname = "house"\n[[rule]]\nid = "House.Word"\nkind = "substitution"\n'
        'level = "suggestion"\nmessage = "say {replacement}"\n'
        '[rule.swap]\n"outage" = "event"\n"Zephyr" = "the job scheduler"\n',
        encoding="utf-8",
    )
    config = LintConfig.model_validate({"packs": ["house.toml"]}, context={"base_dir": tmp_path})
    text = "We are investigating an outage in Zephyr."
    result = fix(text, config=config, kind="update")
    assert result.text == "We are investigating an outage in the job scheduler."
    before = Counter(f.rule for f in lint(text, config=config, kind="update"))
    assert Counter(f.rule for f in result.remaining) - before == Counter()
