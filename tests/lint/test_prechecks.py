"""The one-character tests in front of scanner alternatives (prechecks.py) and the phrase
regex that walks from word to word: each must find exactly what the plain form finds."""

from __future__ import annotations

import random
import re

import pytest

from comms.lint import prechecks
from comms.lint.engine import setup
from comms.lint.rules import _plan, _trie, merged, phrase_regex, word_index

FLAGS = re.MULTILINE | re.DOTALL


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (r"-(?<=[a-z]-)[0-9a-f]{8}", "[a-z]"),
        (r"\d(?<![\d.:-]\d)\d{3}", r"[^\d\x2e\x3a\x2d]"),
        (r"-(?:(?<=\bk8s-)|(?<=\beks-))[a-z]+", "[s]"),
        (r"-(?<=\b(?:gke|aks)-)x", "[es]"),
        (r"(?:SELECT(?<!\wSELECT)\s|DROP(?<!\wDROP)\s)", r"[^\w]"),
        (r"[Bb](?<![\w-][Bb])ug", r"[^\w\x2d]"),
        (r":(?<=(?<![\w:.])\d:)\d\d", r"[\d]"),
    ],
)
def test_the_character_before_a_match_is_read_from_its_lookbehinds(
    body: str, expected: str
) -> None:
    assert prechecks.before(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        r"-[a-z0-9]{8,10}-[a-z0-9]{5}",  # no lookbehind
        r"(?i:-(?<=k-)x)",  # case-insensitive: left alone
        r"\d(?<![0-9]{2}\d)x",  # a negative lookbehind that reaches further back
        r"\d(?<![0-9][a-z])x",  # ... or whose rest is not the match's own start
        r"\d+(?<=[a-z]\d)",  # past a part of variable width
        r"-(?<=[a-z]-)|x",  # a branch without a lookbehind
    ],
)
def test_no_class_when_the_pattern_does_not_tell(body: str) -> None:
    assert prechecks.before(body) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (r"[ \t]*(?:```|~~~)x", r"[\x20\x09\x60\x7e]"),
        (r"(?:panic: |goroutine \d+ \[)", "[pg]"),
        (r"[ \t]*[$%][ \t]+\S", r"[\x20\x09\x24\x25]"),
        (r"(?=[^\n]*\n)[^\n]*\n", None),  # a negated class and a literal: no one class
        (r"[ \t]*", None),  # may match nothing
        (r"[ \t]*(?i:select)", None),
        (r".x", None),
    ],
)
def test_the_first_character_of_a_match(body: str, expected: str | None) -> None:
    assert prechecks.first(body) == expected


@pytest.mark.parametrize(
    ("body", "stripped"),
    [
        (r"\d(?<![\d.:-]\d)\d{3}", r"\d\d{3}"),
        (r"-(?<=[a-z0-9]-)[a-z]+", r"-[a-z]+"),
        (r"\.(?<=[A-Za-z]\.)x", r"\.x"),
        # Not the lookbehind the test comes from, or one that says more than the test:
        (r"x(?<=ab)y", r"x(?<=ab)y"),
        (r"\d(?<=[A-Za-z]\d)(?:(?<=\bINC\d)|x)", r"\d(?:(?<=\bINC\d)|x)"),
        (r"-(?<=\b(?:gke|aks)-)x", r"-(?<=\b(?:gke|aks)-)x"),
        (r"[Bb](?<![\w-][Bb])ug", r"[Bb]ug"),
        (r"a(?<![\w]b)c", r"a(?<![\w]b)c"),
    ],
)
def test_the_lookbehind_a_test_says_all_of_is_left_to_the_test(body: str, stripped: str) -> None:
    assert prechecks.without_before(body, prechecks.before(body)) == stripped
    assert prechecks.without_before(body, None) == body


# Characters and pieces that the packs' patterns look for, to build texts that reach deep
# into the alternatives.
PIECES = [
    *"abcdefklmnoprstxzABCDEFGIKLNOPRSTUZ0123456789",
    *" \t\n\n-.:/@#_=!`'\"()[]*,;?<>{}|$%",
    "é",
    "\u0131",
    "glpat-",
    "gke-",
    "eks-",
    "k8s-",
    "prod-",
    "staging-",
    "ip-10-",
    "db1001",
    "web-03",
    "INC",
    "CHG",
    "SELECT ",
    "DROP TABLE ",
    "Opened by ",
    "Bug ",
    "bug ",
    "bz#",
    "PD#",
    "T12345",
    "ZD-",
    "eyJ",
    "ghp_",
    "sk_live_",
    "xoxb-",
    "AKIA",
    "Bearer ",
    "token: ",
    "arn:",
    "level=",
    "https://",
    "10.0.0.1",
    "2019-01-23",
    "13:05",
    "12:00 UTC",
    "4111 1111 1111 1111",
    "deadbeef",
    "550e8400-e29b-41d4-a716-446655440000",
    "projects/",
    "subscriptions/",
    "@alice",
    "alice@example.com",
    "#ops",
    "```",
    "$ kubectl get pods",
    "Traceback (most recent call last):\n",
    "panic: ",
    "[10:05] bob: ",
    "<alice> ",
    "2019-01-23 10:00:00 ERROR ",
]


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 60))) for _ in range(count)]


def _found(regex: re.Pattern[str], text: str) -> list[tuple[int, str | None, tuple[int, int]]]:
    out = []
    for m in regex.finditer(text):
        name = m.lastgroup
        out.append((m.start(), name, m.span(name) if name else (-1, -1)))
    return out


@pytest.mark.parametrize("anchor", ["any", "line"])
def test_prechecked_scanners_find_what_plain_ones_find(anchor: str) -> None:
    pack = merged(setup(kind="update").packs)
    texts = [
        *_texts(400, seed=10),
        "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
        "1234",
        "-prod-a",
        "Opened by Jane Doe",
    ]
    checked = 0
    for bucket in _plan(pack.rules, anchor):
        for variant in ("\n", "\r") if anchor == "line" else ("",):
            plain = re.compile(bucket._source(variant, bucket.alts, plain=True), FLAGS)
            scanner = bucket.compiled(variant)
            assert scanner is not None
            regex, _, start = scanner
            for text in texts:
                scanned = "\n" + text if anchor == "line" else text
                want = _found(plain, scanned)
                got = _found(regex, scanned)
                if start is not None:
                    first = start.match(scanned)
                    if first is not None:
                        got.insert(0, (0, first.lastgroup, first.span(first.lastgroup or 0)))
                assert got == want, (bucket.key, text)
                checked += len(want)
    assert checked > 20  # the texts do reach the alternatives


def test_the_phrase_walk_finds_what_word_boundaries_find() -> None:
    index = word_index(setup(kind="update").packs)
    keys = index.all_keys
    fast = phrase_regex(keys, fast=True)
    assert fast is not None
    plain = re.compile(r"(?a:\b)" + _trie(keys) + r"(?a:\b)")
    words = [*list(keys)[:80], "the", "a", "an", "é", "x_y", "9", "not"]
    rng = random.Random(7)
    seps = [" ", "  ", "\n", "-", ".", ", ", "é", "_", "(", "'"]
    for _ in range(300):
        text = "".join(rng.choice(words) + rng.choice(seps) for _ in range(rng.randint(0, 25)))
        text = text.lower()
        want = [m.span() for m in plain.finditer(text)]
        got = [m.span("p") for m in fast.finditer(text) if m.start("p") >= 0]
        assert got == want, text
