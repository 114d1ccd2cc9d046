"""The lint/fix API: findings, positions, masking, configuration, and the fix contract."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comms.lint import Finding, FixResult, LintConfig, blocking, fix, lint
from comms.lint.engine import locate
from comms.lint.rules import PackError, parse_pack
from comms.lint.shadow import escape_invisible

NOTE = (
    "Hi team, @alice says db1001 and web-03.prod.internal (10.0.0.12) are down.\n"
    "See https://grafana.gitlab.net/d/abc and #incident-1234; tracked in INFRA-123.\n"
    "Customers may experience errors. We are investigating.\n"
)
TOKEN = "glpat-AbCdEfGhIjKlMnOpQrStUv"


def test_finding_fields_and_positions() -> None:
    findings = lint(NOTE)
    by_rule = {f.rule: f for f in findings}
    handle = by_rule["Leak.Handle"]
    assert (handle.line, handle.column, handle.match) == (1, 10, "@alice")
    assert NOTE[handle.start : handle.end] == "@alice"
    channel = by_rule["Leak.Channel"]
    assert channel.line == 2
    assert NOTE[channel.start : channel.end] == "#incident-1234"
    assert channel.column == NOTE[: channel.start].split("\n")[-1].__len__() + 1
    assert handle.level == "error"
    assert handle.replacement == ""
    assert handle.fixable
    data = handle.to_dict()
    assert set(data) == {
        "rule",
        "level",
        "message",
        "start",
        "end",
        "line",
        "column",
        "match",
        "replacement",
    }
    json.dumps(data)


def test_columns_count_code_points_and_crlf_lines() -> None:
    text = "😀 é\r\nping @bob now"
    [f] = [f for f in lint(text) if f.rule == "Leak.Handle"]
    assert (f.line, f.column) == (2, 6)
    assert text[f.start : f.end] == "@bob"


def test_locate_gives_the_lines_and_columns_the_properties_give() -> None:
    text = "😀 é\r\nping @bob now\n\n#ops and @alice\rcall @carol"
    lazy = [(f.line, f.column) for f in lint(text)]
    findings = lint(text)
    locate(findings)
    assert [(f.line, f.column) for f in findings] == lazy
    assert len(lazy) >= 4


@pytest.mark.parametrize("seed", range(4))
def test_lower_casing_in_blocks_is_lower_casing(seed: int) -> None:
    import random

    from comms.lint.engine import _lower

    rng = random.Random(seed)
    chars = "aAzZ ΣσςİIıΑΓßẞÉé😀\n."
    for _ in range(200):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 9000)))
        assert _lower(text) == text.lower()
        assert _lower(text.replace("Σ", "")) == text.replace("Σ", "").lower()


def test_secrets_are_masked_everywhere() -> None:
    findings = lint(f"token {TOKEN} here")
    [f] = [f for f in findings if f.rule == "Leak.Secret"]
    assert TOKEN not in json.dumps(f.to_dict())
    assert TOKEN not in f.message
    assert f.match.startswith("[secret")


def test_blocking_is_the_error_level() -> None:
    findings = lint("It was probably a blip. Ping @alice.")
    assert {f.rule for f in blocking(findings)} == {"Leak.Handle"}
    assert all(f.level == "error" for f in blocking(findings))


def test_config_overrides_levels_and_turns_rules_off() -> None:
    config = LintConfig(rules={"Leak.Handle": "off", "Impact.Speculation": "error"})
    rules = {f.rule: f.level for f in lint("Ping @alice, it is probably fine.", config=config)}
    assert "Leak.Handle" not in rules
    assert rules["Impact.Speculation"] == "error"


def test_config_allow_lists() -> None:
    config = LintConfig(public_domains=["example.org"], support_emails=["help@example.org"])
    text = "Write to help@example.org or see https://status.example.org/x."
    assert [f.rule for f in lint(text, config=config)] == []
    assert "Leak.Email" in {f.rule for f in lint("Write to help@example.org.")}
    # The configured list replaces the defaults.
    # A public domain that is not allow-listed is a third-party site: a warning.
    assert [(f.rule, f.level) for f in lint("See gitlab.com.", config=config)] == [
        ("Leak.ThirdPartySite", "warning")
    ]


def test_extra_pack_from_config(tmp_path: Path) -> None:
    (tmp_path / "house.toml").write_text(
        '[pack]\nname = "house"\n[[rule]]\nid = "House.Codename"\nkind = "existence"\n'
        'level = "error"\nfix = "strip"\nmessage = "codename"\ntokens = ["Project Falcon"]\n',
        encoding="utf-8",
    )
    config = LintConfig.model_validate({"packs": ["house.toml"]}, context={"base_dir": tmp_path})
    assert [f.rule for f in lint("Project Falcon is late.", config=config)] == ["House.Codename"]


def test_bad_pack_is_reported_with_the_rule() -> None:
    with pytest.raises(PackError, match=r"Bad\.Rule"):
        parse_pack("x", '[[rule]]\nid = "Bad.Rule"\nkind = "pattern"\npatterns = ["("]\n')
    with pytest.raises(PackError, match="dotted"):
        parse_pack("x", '[[rule]]\nid = "nodots"\n')


def test_other_tenants_but_not_the_audience() -> None:
    text = "Acme Corp and Globex are affected."
    rules = [f.match for f in lint(text, audience="Acme Corp", tenants=["Acme Corp", "Globex"])]
    assert rules == ["Globex"]
    fixed = fix(
        text + " We are investigating.", audience="Acme Corp", tenants=["Acme Corp", "Globex"]
    )
    assert fixed.text == "We are investigating."


def test_next_update_only_for_open_s1() -> None:
    text = "We are investigating errors when pushing."
    assert "Struct.NextUpdate" in {
        f.rule for f in lint(text, kind="update", severity="S1", status="identified")
    }
    assert "Struct.NextUpdate" not in {
        f.rule for f in lint(text, kind="update", severity="S2", status="identified")
    }
    assert "Struct.NextUpdate" not in {
        f.rule for f in lint(text, kind="update", severity="S1", status="resolved")
    }
    assert "Struct.NextUpdate" not in {f.rule for f in lint(text)}  # struct needs a kind


def test_fix_strips_internal_details_and_reports_them() -> None:
    result = fix(NOTE)
    assert isinstance(result, FixResult)
    for leaked in (
        "@alice",
        "db1001",
        "10.0.0.12",
        "grafana",
        "#incident-1234",
        "INFRA-123",
        "web-03",
    ):
        assert leaked not in result.text
    assert "Customers may experience errors. We are investigating." in result.text
    assert result.summary()["Leak.Handle"] == 1
    assert not [f for f in result.remaining if f.fixable]
    assert all(isinstance(f, Finding) for f in result.removed)


def test_fix_tidies_punctuation_and_drops_empty_sentences() -> None:
    assert fix("Errors on db1001. We are investigating.").text == "Errors. We are investigating."
    assert fix("Contact @alice. We are investigating.").text == "We are investigating."
    assert fix("Read [the graph](https://grafana.internal/d/1) now.").text == "Read the graph now."
    assert fix("- @bob\n- Pushes fail\n").text == "- Pushes fail\n"
    assert fix("It was just a minor blip.").text == "It was a disruption."


# Should-fix examples: input -> exact fixed text.  Stripping must take the words that only
# served the detail, and leave sentences that still say something.
SHOULD_FIX = [
    # A host in a prepositional phrase takes its preposition; empty brackets go; a
    # trailing ", see #..." clause goes as a whole, and "in" of "sign in" stays.
    (
        "Users on web-03 (10.2.0.7) cannot sign in, see #inc-2291\n",
        "Users cannot sign in\n",
    ),
    # The subject (two hosts joined by "and") is gone: the sentence has lost its meaning.
    ("web-03 and db1001 in us-east-1 are OOMing since the 13:40 deploy, see #inc-2291.", ""),
    (
        "Requests from db1001 and web-03 time out. We are investigating.",
        "Requests time out. We are investigating.",
    ),
    ("Users on web-03 cannot sign in.", "Users cannot sign in."),
    ("On web-03, the disk filled up.", "The disk filled up."),
    ("Thanks to @alice for the quick fix.", "Thanks for the quick fix."),
    # A conjunction left at the start of a sentence that still has a subject goes.
    ("web-03 and some pushes failed.", "Some pushes failed."),
    (
        "Pushes fail for users on gitaly-01.gprd.gitlab.net, tracked in INFRA-123.",
        "Pushes fail for users.",
    ),
    ("Sign-in works again; details in #inc-2291.", "Sign-in works again."),
    ("Errors on db1001 (see #incident-12).", "Errors."),
    ("Hi @alice, db1001 is down. We are investigating.", "We are investigating."),
    # Mid-paragraph: only the sentence that lost its subject goes, spaces stay right.
    ("Done. @bob is on it. We are investigating.", "Done. We are investigating."),
    ("Errors. @alice restarted web-03. More soon.", "Errors. More soon."),
    # A question starts with its verb: it keeps its subject.
    ("@bob is that enough?", "Is that enough?"),
    # A tool name that qualifies a noun leaves the preposition to the noun.
    ("We saw errors at the Grafana dashboard.", "We saw errors at the dashboard."),
]


@pytest.mark.parametrize(("text", "expected"), SHOULD_FIX)
def test_should_fix(text: str, expected: str) -> None:
    result = fix(text)
    assert result.text == expected
    assert fix(result.text).text == result.text
    before = Counter(f.rule for f in lint(text))
    assert Counter(f.rule for f in result.remaining) - before == Counter()


def test_fix_never_leaks_a_secret_into_the_report() -> None:
    result = fix(f"Use {TOKEN} now.")
    assert TOKEN not in result.text
    assert all(TOKEN not in json.dumps(f.to_dict()) for f in result.removed + result.remaining)


def test_import_is_light() -> None:
    code = (
        "import sys, comms.lint; "
        "print('pydantic' in sys.modules, 'comms.lint.engine' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


# Text that looks like incident notes: words, leaks, punctuation, odd Unicode.
_PIECES = st.sampled_from(
    [
        "We are investigating",
        "errors",
        "db1001",
        "@alice",
        "#incident-12",
        "10.0.0.1",
        "INFRA-9",
        "https://grafana.internal/d/x",
        "support@gitlab.com",
        "bob@example.com",
        "probably",
        "just",
        "pods",
        "OOM",
        "the",
        "see",
        "and",
        "(",
        ")",
        "[",
        "]",
        ",",
        ".",
        ";",
        ":",
        "-",
        "\n",
        "\r\n",
        "\n\n",
        "  ",
        "\t",
        "😀",
        "e\u0301",
        "\u05e9\u05dc\u05d5\u05dd",
        "\x00",
        "İ",
        "ß",
        "`",
        "```",
        "- ",
        "> ",
        "14:00",
        "UTC",
        "glpat-AbCdEfGhIjKlMnOpQrStUv",
        "Acme",
        "Globex",
        "web-03",
    ]
)
_TEXTS = st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=30).map(" ".join) | st.text(
    max_size=200
)
_FIX_KW = {"audience": "Acme", "tenants": ["Acme", "Globex"]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
def test_offsets_index_the_input_and_lint_never_raises(text: str) -> None:
    for f in lint(text, kind="update", **_FIX_KW):
        assert 0 <= f.start <= f.end <= len(text)
        before = text[: f.start]
        line_start = max(before.rfind("\n"), before.rfind("\r")) + 1
        assert f.column == f.start - line_start + 1
        if f.end > f.start and not f.match.startswith("[secret") and len(f.match) < 200:
            # Invisible characters are shown by code point, never raw.
            assert escape_invisible(text[f.start : f.end]) == f.match


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
def test_fix_is_idempotent_and_leaves_nothing_fixable(text: str) -> None:
    once = fix(text, **_FIX_KW)
    assert not [f for f in once.remaining if f.fixable]
    twice = fix(once.text, **_FIX_KW)
    assert twice.text == once.text
    assert twice.removed == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
def test_fix_never_introduces_a_finding(text: str) -> None:
    # Without a kind: with one, stripping a pasted block that held the only status sentence
    # rightly leaves "no status" behind (see test_fix_keeps_required_content_it_can).
    before = Counter(f.rule for f in lint(text, **_FIX_KW))
    after = Counter(f.rule for f in fix(text, **_FIX_KW).remaining)
    assert after - before == Counter()


def test_fix_keeps_required_content_it_can() -> None:
    # Dropping the sentence that names another tenant would remove the status; fix falls
    # back to stripping the name alone.
    text = "Globex and Acme are investigating errors."
    result = fix(text, kind="update", **_FIX_KW)
    assert "Struct.Status" not in {f.rule for f in result.remaining}
    assert "Globex" not in result.text
    assert "investigating errors" in result.text


def test_one_megabyte_line() -> None:
    text = ("word " * 200_000) + "db1001 @alice"
    findings = lint(text, kind="update")
    assert [f.rule for f in findings if f.rule.startswith("Leak")] == [
        "Leak.BareHost",
        "Leak.Handle",
    ]
    assert findings[-1].line == 1
    assert text[findings[-1].start : findings[-1].end] == "@alice"
    assert fix(text).text.endswith("word")


# -- the fast paths must not change what is found ---------------------------------------


def test_every_shipped_pattern_compiles() -> None:
    # The shipped packs skip the per-pattern check at load time (it costs every process
    # ~50 compilations); this is that check.
    import re

    from comms.lint.rules import default_packs

    for pack in default_packs():
        for rule in pack.rules:
            for pattern in rule.patterns:
                re.compile(pattern)


def test_frozen_packs_are_fresh() -> None:
    # packs.json spares every process tomllib; it must say what the TOML files say.
    from pathlib import Path

    from comms.lint.rules import FROZEN_PACKS, freeze_packs

    assert Path(FROZEN_PACKS).read_text(encoding="utf-8") == freeze_packs(), (
        "comms/lint/packs.json is stale: run .venv/bin/python -m comms.lint.rules"
    )


def test_first_lint_needs_neither_tomllib_nor_typing() -> None:
    code = (
        "import sys; from comms.lint import lint; lint('Users cannot sign in.', kind='update'); "
        "print('tomllib' in sys.modules, 'typing' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_a_stale_frozen_pack_falls_back_to_its_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import comms.lint.rules as rules

    frozen = json.loads(Path(rules.FROZEN_PACKS).read_text(encoding="utf-8"))
    frozen["impact"]["crc32"] += 1  # as if impact.toml had been edited since
    frozen["impact"]["data"]["rule"] = []
    stale = tmp_path / "packs.json"
    stale.write_text(json.dumps(frozen), encoding="utf-8")
    monkeypatch.setattr(rules, "FROZEN_PACKS", str(stale))
    rules.default_packs.cache_clear()
    try:
        impact = next(p for p in rules.default_packs() if p.name == "impact")
        assert [r.id for r in impact.rules][:2] == ["Impact.Blame", "Impact.Speculation"]
    finally:
        rules.default_packs.cache_clear()


def test_necessary_literals_are_in_every_match() -> None:
    import re

    from comms.lint.rules import _plan, default_packs, merged, necessary
    from tests.lint.test_rules import EXAMPLES

    texts = [t for flag, passing, _ in EXAMPLES.values() for t in flag + passing] + [NOTE]
    pack = merged(default_packs())
    checked = 0
    for anchor in ("any", "line"):
        for bucket in _plan(pack.rules, anchor):
            for _, body, _, _ in bucket.alts:
                need = necessary(body)
                regex = re.compile(body, re.MULTILINE | re.DOTALL)
                for text in texts:
                    if need is not None and regex.search(text):
                        checked += 1
                        assert any(lit in text for lit in need), (body, text)
    assert checked > 30
    assert necessary("ab(?:cde|efg)h") == frozenset({"cde", "efg"})
    assert necessary("ab(?:cd|efg)h") == frozenset({"ab"})
    assert necessary("x?y") == frozenset({"y"})
    assert necessary("(?i:abc)") is None
    assert necessary("(?!abc)d") == frozenset({"d"})


def test_first_chars_reads_the_pattern() -> None:
    from comms.lint.rules import first_chars

    assert first_chars(r"\d(?<!x)") == frozenset("0123456789")
    assert first_chars(r"(?:ab|[#!]c)") == frozenset("a#!")
    assert first_chars(r"(?i:ab)") == frozenset("aA")
    assert first_chars(r"a?b") is None
    assert first_chars(r"(?=a)b") is None
    assert first_chars(r"[\w]") is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \t\xa0\u2028\u200b\x1cab.", max_size=40), st.integers(0, 10))
def test_words_over_counts_like_split(sentence: str, words: int) -> None:
    from comms.lint.engine import _words_over

    assert _words_over(sentence, words) == (len(sentence.split()) > words)


def test_next_chars_reads_the_pattern() -> None:
    from comms.lint.rules import next_chars

    assert next_chars(r"a(?<!x)[bc]") == frozenset("bc")
    # A choice of words: the second character of each, the rest after the group included.
    assert next_chars(r"(?:SELECT(?<!\wSELECT)\s|DROP\s)") == frozenset("ER")
    assert next_chars(r"(?:a|b)c") == frozenset("c")
    assert next_chars(r"(?:a|bc)") is None  # "a" alone has no second character
    assert next_chars(r"(?:ab|cd)?e") is None
    assert next_chars(r"(?:ab|cd)+") is None
    assert next_chars(r"(?:a|b)?c") is None
    assert next_chars(r"\b(?:ab|cd)") is None  # \b is no first character


def test_next_chars_holds_for_every_match_of_the_shipped_patterns() -> None:
    # The scanners' guards test the character after the first against next_chars: every
    # match of a shipped pattern, in the rule examples, must have it.
    from comms.lint.rules import default_packs, first_chars, next_chars
    from tests.lint.test_rules import EXAMPLES

    texts = [t for flag, passing, _ in EXAMPLES.values() for t in flag + passing]
    checked = 0
    for pack in default_packs():
        for rule in pack.rules:
            for pattern in rule.patterns:
                body = f"(?i:{pattern})" if rule.ignorecase else pattern
                following = next_chars(body)
                if following is None or first_chars(body) is None:
                    continue
                regex = re.compile(body, re.MULTILINE)
                for text in texts:
                    for m in regex.finditer(text):
                        if m.end() > m.start() + 1 and text[m.start() + 1].isascii():
                            assert text[m.start() + 1] in following, (rule.id, m.group())
                            checked += 1
    assert checked > 50


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
def test_short_text_scanners_find_what_the_full_ones_find(text: str) -> None:
    # A short text compiles only the alternatives and phrases it can hold; with that
    # shortcut off, every alternative and phrase runs: the findings must be the same.
    import comms.lint.rules as rules

    saved = rules._SUBSET_UP_TO, rules._MAX_SUBSETS
    try:
        # A process switches to the full scanners after a few texts; keep the shortcut on.
        rules._MAX_SUBSETS = 10**9
        short = lint(text, kind="update", **_FIX_KW)
        rules._SUBSET_UP_TO = -1
        full = lint(text, kind="update", **_FIX_KW)
    finally:
        rules._SUBSET_UP_TO, rules._MAX_SUBSETS = saved
    assert short == full


def test_a_block_right_after_a_block_is_found() -> None:
    # Line rules match whole blocks, line break included; the next line is still a start.
    text = 'Seen:\njava.lang.Exception: x\n    at a.b(C.java:1)\n{"level":"error"}\n'
    assert [f.rule for f in lint(text)] == ["Leak.StackTrace", "Leak.LogLine"]


def test_word_lists_keep_unicode_word_boundaries() -> None:
    # The word lists run with an ASCII \b; a letter like 'é' next to a phrase must still
    # count as part of the word.
    text = "épods podsé xpods pods."
    assert [(f.rule, f.start) for f in lint(text)] == [("Impact.Jargon", 18)]
    assert [f.match for f in lint("Ünd OOM, café OOM")] == ["OOM", "OOM"]
