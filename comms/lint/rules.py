"""Rules as data: load TOML packs and compile them into a few combined scanners.

A pack is a TOML file with a ``[pack]`` table and ``[[rule]]`` entries.  Rule kinds:

- ``existence``: ``tokens`` (literal words or phrases) and/or ``patterns`` (regexes).
- ``substitution``: ``swap`` table ``bad = "preferred"``; the fix replaces.
- ``pattern``: ``patterns`` plus a named ``validator`` (see validators.py) that decides.
- ``required``: for message ``kinds``, one of ``patterns`` must occur (optionally ``when``
  severity/status match).
- ``metric``: ``metric = "sentence_words"`` above ``max``.

Options: ``level`` (error | warning | suggestion), ``message`` (``{match}`` and
``{replacement}`` are filled in), ``ignorecase``, ``fix`` (none | strip | replace |
sentence | line: remove the whole sentence or line | delete: remove the characters and
tidy nothing), ``replacement``, ``mask`` (never
show the match), ``source`` (``roster``, ``tenants`` or ``vocabulary``: the
tokens come from the configuration at lint time), ``anchor = "line"`` (or
a pattern starting with ``^``: only at line starts), ``extend_left`` (a character class:
the match grows left over it before validation), ``shadow`` (a candidate its validator
allows still hides matches inside it, e.g. the path of an allow-listed URL), ``raw``
(matched on the text as written, when the normalised copy of ``shadow.py`` that every
other rule sees has left characters out: for the invisible characters it drops),
``fallback`` (not scanned for: tried only where an earlier rule's candidate was declined,
at that position, e.g. a third-party site where the internal-host rule declined).

The text is never scanned once per rule.  Word lists of every active pack share one trie
regex; patterns share one scanner per first character (``Pack.scanners``), tried in file
order.  Everything compiles lazily, and a short text compiles only the alternatives whose
necessary literals it contains: a process linting one draft pays for little of it.  With
a store of compiled patterns installed (compiled.py: `comms lint` keeps one in the user's
cache folder), the full scanners and phrase tries come from the store instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from comms.lint import compiled
from comms.lint.validators import VALIDATORS

# typing costs ~3 ms to import, and only type checkers need it here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LEVELS = ("suggestion", "warning", "error")
KINDS = ("existence", "substitution", "pattern", "required", "metric")
FIXES = ("none", "strip", "replace", "sentence", "line", "delete")
SCAN_KINDS = ("existence", "substitution", "pattern")
PACKS_DIR = os.path.join(os.path.dirname(__file__), "packs")
DEFAULT_PACKS = ("leak", "impact", "struct")


class PackError(ValueError):
    """A pack file is malformed; the message names the pack and the rule."""


_SWAP_MAPS: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


class Rule:
    """One rule of a pack, validated and ready to compile (read-only once built).

    A plain class rather than a dataclass: generating a dataclass's methods costs a few
    milliseconds per class at import, which every ``comms draft`` would pay.
    """

    __slots__ = (
        "anchor",
        "extend_left",
        "fallback",
        "fix",
        "id",
        "ignorecase",
        "kind",
        "kinds",
        "level",
        "mask",
        "max",
        "message",
        "metric",
        "pack",
        "patterns",
        "raw",
        "replacement",
        "shadow",
        "source",
        "swap",
        "tokens",
        "validator",
        "when",
    )

    def __init__(
        self,
        id: str,  # the rule id, as packs spell it
        pack: str,
        kind: str,
        level: str,
        message: str,
        *,
        patterns: tuple[str, ...] = (),
        tokens: tuple[str, ...] = (),
        swap: tuple[tuple[str, str], ...] = (),
        ignorecase: bool = True,
        validator: str | None = None,
        fix: str = "none",
        replacement: str | None = None,
        mask: bool = False,
        source: str | None = None,
        kinds: tuple[str, ...] = (),
        when: tuple[tuple[str, tuple[str, ...]], ...] = (),
        metric: str | None = None,
        max: int = 0,  # the metric's limit, as packs spell it
        anchor: str = "any",
        extend_left: str | None = None,
        shadow: bool = False,
        raw: bool = False,
        fallback: bool = False,
    ) -> None:
        self.id = id
        self.pack = pack
        self.kind = kind
        self.level = level
        self.message = message
        self.patterns = patterns
        self.tokens = tokens
        self.swap = swap
        self.ignorecase = ignorecase
        self.validator = validator
        self.fix = fix
        self.replacement = replacement
        self.mask = mask
        self.source = source
        self.kinds = kinds
        self.when = when
        self.metric = metric
        self.max = max
        self.anchor = anchor
        self.extend_left = extend_left
        self.shadow = shadow
        self.raw = raw
        self.fallback = fallback

    def __repr__(self) -> str:
        return f"Rule({self.id!r}, kind={self.kind!r}, level={self.level!r})"

    def swap_map(self) -> dict[str, str]:
        """The swap table keyed by the lower-cased bad phrase (built once per rule)."""
        cached = _SWAP_MAPS.get(self.swap)
        if cached is None:
            cached = {" ".join(bad.lower().split()): good for bad, good in self.swap}
            _SWAP_MAPS[self.swap] = cached
        return cached

    @property
    def words(self) -> tuple[str, ...]:
        """The literal words and phrases of the rule (tokens, expanded, and swap keys)."""
        return tuple(w for t in self.tokens for w in expand(t)) + tuple(b for b, _ in self.swap)


class Pack:
    """A named list of rules with its scanners, each compiled the first time a text needs it."""

    __slots__ = (
        "_alternatives",
        "_calls",
        "_later",
        "_plans",
        "_single",
        "name",
        "requires_kind",
        "rules",
    )

    def __init__(self, name: str, rules: tuple[Rule, ...], requires_kind: bool = False) -> None:
        self.name = name
        self.rules = rules
        self.requires_kind = requires_kind
        self._plans: dict[str, list[_Bucket]] = {}
        self._alternatives: list[tuple[int, Rule, str, frozenset[str] | None]] | None = None
        self._single: dict[str, re.Pattern[str]] = {}
        self._later: dict[tuple[int, str], list[tuple[Rule, str, bool]]] = {}
        self._calls = 0

    def __repr__(self) -> str:
        return f"Pack({self.name!r}, {len(self.rules)} rules)"

    def scanners(self, anchor: str = "any", text: str | None = None) -> list[Scanner]:
        """The compiled scanners of the pack's pattern rules with this anchor.

        Python's regex engine pays for every position times every alternative, and a pass
        that starts with a single literal character costs ~1 ms per MiB where a character
        class costs ~10 ms; so patterns are grouped by the character they start with, and
        each group becomes

            c(?<=(?=[b1](?P<g1>pattern1)|[b2](?P<g2>pattern2)|...)..)

        The literal lets the engine jump between occurrences of ``c``; the lookbehind steps
        back to the character before it and tries the alternatives there in file order,
        each behind a class that character must belong to (``[b1]``, from the pattern's
        lookbehinds, prechecks.py; ``.`` when there is none): the engine skips an
        alternative whose class does not fit with one comparison.  Such a scanner cannot
        match at offset 0; its third member (``_Start``) tries that offset.  Patterns that
        start with a digit share one ``[0-9]`` scanner (only at the start of a run of digits
        when every one of them requires that), capitals one ``[A-Z]`` scanner.  Line rules
        share one literal newline, their alternatives behind a class of their first
        character.  With ``text``, only the scanners whose first characters occur in it are
        returned (and compiled).  Groups map to (order in the pack, rule) so callers can
        resolve overlaps like a single leftmost-first alternation would.  The line scanner
        starts with the line break: run it over ``"\\n" + text`` so that it also sees the
        first line.

        With a short ``text``, a scanner holds only the alternatives whose necessary
        literals (see ``necessary``) occur in it, so a message of a few lines compiles a
        few small regexes, not all of them.
        """
        plan = self._plans.get(anchor)
        if plan is None:
            plan = self._plans[anchor] = _plan(self.rules, anchor)
        # For a long text, testing every literal would cost more than compiling everything;
        # a process that lints many texts compiles the full scanners once instead.
        short = text is not None and len(text) <= _SUBSET_UP_TO
        self._calls += 1
        # With a store of compiled patterns, the full scanners cost nothing to compile.
        stored = compiled.installed() is not None
        subset_of = text if short and self._calls <= _MAX_SUBSETS and not stored else None
        present = frozenset(text) if short and text is not None else None
        line_variant = "\r" if text is None or "\r" in text else "\n"
        out = []
        for bucket in plan:
            if text is not None and bucket.triggers:
                if present is not None:
                    if present.isdisjoint(bucket.triggers):
                        continue
                elif not any(c in text for c in bucket.triggers):
                    continue
            variant = line_variant if anchor == "line" else ""
            scanner = bucket.compiled(variant, subset_of)
            if scanner is not None:
                out.append(scanner)
        return out

    def alternatives(self) -> list[tuple[int, Rule, str, frozenset[str] | None]]:
        """Every scan pattern on its own, in file order (to retry after a rejection):
        (order, rule, pattern, first characters); compile one with ``single``."""
        if self._alternatives is None:
            out = []
            for order, rule in enumerate(self.rules):
                if (
                    rule.kind in SCAN_KINDS
                    and rule.source is None
                    and rule.anchor == "any"
                    and not rule.raw
                ):
                    for pattern in rule.patterns:
                        if pattern.startswith("^"):
                            continue
                        body = f"(?i:{pattern})" if rule.ignorecase else pattern
                        out.append((order, rule, body, first_chars(body)))
            self._alternatives = out
        return self._alternatives

    def later(self, order: int, ch: str) -> list[tuple[Rule, str, bool]]:
        """The alternatives after rule ``order`` that can start with ``ch``: (rule, pattern,
        same), in file order; ``same`` when the pattern is the only one of rule ``order``
        (a fallback rule's), so it matches exactly where the declined candidate did.  A
        declined candidate retries only these (a long text has thousands: times with a
        zone, file names, third-party sites)."""
        key = (order, ch)
        got = self._later.get(key)
        if got is None:
            alternatives = self.alternatives()
            own = [body for o, _, body, _ in alternatives if o == order]
            got = self._later[key] = [
                (rule, body, own == [body])
                for o, rule, body, starts in alternatives
                if o > order and (starts is None or ch in starts)
            ]
        return got

    def single(self, body: str) -> re.Pattern[str]:
        """One alternative compiled on its own (cached)."""
        regex = self._single.get(body)
        if regex is None:
            regex = self._single[body] = compiled.compile(body, re.MULTILINE)
        return regex


# A compiled scanner: its regex, its groups (name -> (order in the pack, rule)) and, for
# one that steps back to the character before a match, its test at offset 0.
Scanner = tuple[re.Pattern[str], dict[str, tuple[int, "Rule"]], "_Start | None"]


class _Bucket:
    """Alternatives that share a scanner: its trigger characters and its regex, built lazily.

    ``key`` is a single character, "digit", "upper", "*" or "line"; the scanner can only
    match where one of ``triggers`` occurs (empty: anywhere); ``alts`` are (group name,
    pattern, order, rule); ``guard`` is checked right after the first character.
    """

    __slots__ = ("_need", "_regex", "alts", "chars", "guard", "key", "triggers")

    def __init__(self, key: str, triggers: str) -> None:
        self.key = key
        self.triggers = triggers
        self.chars: set[str] = set()  # the first characters of a "digit" or "upper" bucket
        self.alts: list[tuple[str, str, int, Rule]] = []
        self._need: dict[str, frozenset[str] | None] = {}
        self.guard: str | None = ""
        self._regex: dict[tuple[str, ...], Scanner] = {}

    def _may_match(self, name: str, body: str, text: str) -> bool:
        """False when a literal every match needs is missing from ``text`` (see
        ``necessary``, worked out on first use)."""
        if name in self._need:
            need = self._need[name]
        else:
            need = self._need[name] = necessary(body)
        return need is None or any(lit in text for lit in need)

    def _guard(self) -> str:
        """After a literal first character: what may follow it in any alternative (the
        engine then tests one class at each occurrence instead of every alternative: "b"
        is common, "bug 1234567" is not).  Worked out on first use, for every alternative
        of the bucket, so a scanner for some of them uses the same guard."""
        if self.guard is None:
            following = [next_chars(alt[1]) for alt in self.alts]
            chars: set[str] = set()
            for f in following:
                chars |= f or set()
            known = all(f is not None for f in following)
            self.guard = "(?=" + _class_of(chars) + ")" if known and chars else ""
        return self.guard

    def compiled(self, variant: str = "", text: str | None = None) -> Scanner | None:
        """The scanner for all alternatives, or, with ``text``, for those that can match in
        it (None when none can); compiled once per distinct set."""
        alts = self.alts
        if text is not None:
            alts = [a for a in alts if self._may_match(a[0], a[1], text)]
            if not alts:
                return None
        key = (variant, *(a[0] for a in alts))
        got = self._regex.get(key)
        if got is None:
            groups = {name: (order, rule) for name, _, order, rule in alts}
            regex = compiled.compile(self._derived(variant, alts), re.MULTILINE | re.DOTALL)
            start = None
            if self.key not in ("*", "line"):
                start = _Start(self, variant, alts)
            got = self._regex[key] = (regex, groups, start)
        return got

    def _derived(
        self, variant: str, alts: list[tuple[str, str, int, Rule]], *, plain: bool = False
    ) -> str:
        """The scanner's source (``plain``: without the one-character tests of
        prechecks.py), kept in the store of compiled patterns when there is one."""
        # The source depends on every alternative of the bucket (the guard and the first
        # characters are worked out over all of them), and on the chosen ones.
        everything = "\x00".join(f"{a[0]}\x01{a[1]}" for a in self.alts)
        chosen = "\x00".join(a[0] for a in alts)
        return compiled.derive(
            # The kinds name the version of ``_source`` and ``_guard``: a store written
            # by an older one keeps its sources under the old names.
            "scanner/2" if plain else "scanner/prechecked/3",
            f"{variant}\x02{self.key}\x02{everything}\x02{chosen}",
            lambda: self._source(variant, alts, plain=plain),
        )

    def _source(
        self, variant: str, alts: list[tuple[str, str, int, Rule]], *, plain: bool = False
    ) -> str:
        """The scanner's regex source for these alternatives (see ``Pack.scanners``).

        Unless ``plain``, each alternative gets a one-character test in front where
        prechecks.py finds one (the engine then skips it with one comparison where that
        character does not fit): the first character of a line pattern, or the character
        before the match of another, which is why those scanners step back two characters
        (to the character before the match) instead of one, and cannot match at the very
        start of the text (``_Start``).
        """
        if plain or self.key == "*":
            joined = "|".join(f"(?P<{name}>{body})" for name, body, _, _ in alts)
        else:
            from comms.lint import prechecks

            tests = [
                (prechecks.first if variant else prechecks.before)(body) for _, body, _, _ in alts
            ]
            if variant:
                joined = "|".join(
                    f"(?P<{name}>{body})" if test is None else f"{test}(?<=(?=(?P<{name}>{body})).)"
                    for (name, body, _, _), test in zip(alts, tests, strict=True)
                )
            else:
                joined = "|".join(
                    f"{test or '.'}(?P<{name}>{prechecks.without_before(body, test)})"
                    for (name, body, _, _), test in zip(alts, tests, strict=True)
                )
        if variant == "\n":
            # A literal newline lets the engine jump between line starts; the alternatives
            # sit in a lookahead so that a block ending with its line break does not hide a
            # block starting on the next line.
            return f"\\n(?=(?:{joined}))"
        if variant == "\r":
            return f"[\\n\\r](?=(?:{joined}))"
        if self.key == "*":
            return f"(?=(?:{joined}))"
        if self.key in ("digit", "upper"):
            first = "[" + "".join(sorted(self.chars)) + "]"
        else:
            first = re.escape(self.key)
        if plain:
            return f"{first}{self._guard()}(?<=(?=(?:{joined})).)"
        # Two characters back: the one before the match, then the first one.
        return f"{first}{self._guard()}(?<=(?=(?:{joined}))..)"


class _Start:
    """A scanner's test for a match at the very start of the text, where there is no
    character before it to step back to: the scanner without one-character tests, tried
    there only (compiled when a text starts with one of the scanner's first characters)."""

    __slots__ = ("_regex", "alts", "bucket", "variant")

    def __init__(self, bucket: _Bucket, variant: str, alts: list[tuple[str, str, int, Rule]]):
        self.bucket = bucket
        self.variant = variant
        self.alts = alts
        self._regex: re.Pattern[str] | None = None

    def match(self, text: str) -> re.Match[str] | None:
        """The scanner's match at offset 0 of ``text``, if any."""
        if not text or (self.bucket.triggers and text[0] not in self.bucket.triggers):
            return None
        if self._regex is None:
            source = self.bucket._derived(self.variant, self.alts, plain=True)
            self._regex = compiled.compile(source, re.MULTILINE | re.DOTALL)
        return self._regex.match(text)


def _plan(rules: Iterable[Rule], anchor: str) -> list[_Bucket]:
    """Group the scan patterns of ``rules`` with this anchor into buckets (see Pack.scanners)."""
    buckets: dict[str, _Bucket] = {}
    n = 0
    for order, rule in enumerate(rules):
        if rule.kind not in SCAN_KINDS or rule.source is not None or rule.raw or rule.fallback:
            continue
        for pattern in rule.patterns:
            # A pattern written with a leading '^' (or a rule with anchor = "line") runs only
            # at line starts.
            line = rule.anchor == "line" or pattern.startswith("^")
            if line != (anchor == "line"):
                continue
            pattern = pattern[1:] if pattern.startswith("^") else pattern
            body = f"(?i:{pattern})" if rule.ignorecase else pattern
            alt = (f"g{n}", body, order, rule)
            n += 1
            first = None
            if line:
                keys = ["line"]
            else:
                first = first_chars(body)
                if first is None:
                    keys = ["*"]
                elif first <= _DIGITS:
                    keys = ["digit"]
                elif len(first) <= 3:
                    keys = sorted(first)
                elif first <= _UPPER:
                    keys = ["upper"]
                else:
                    keys = ["*"]
            for key in keys:
                bucket = buckets.get(key)
                if bucket is None:
                    triggers = {"digit": _DIGITS_STR, "upper": _UPPER_STR, "*": "", "line": ""}
                    bucket = buckets[key] = _Bucket(key, triggers.get(key, key))
                bucket.alts.append(alt)
                if key in ("digit", "upper") and first is not None:
                    bucket.chars |= first
    for key in ("digit", "upper"):
        if key in buckets:
            buckets[key].triggers = "".join(sorted(buckets[key].chars))
    for key, bucket in buckets.items():
        if len(key) == 1 or key == "upper":
            bucket.guard = None  # worked out when the bucket is first compiled
    digit = buckets.get("digit")
    if digit is not None and all(_run_start_only(alt[1]) for alt in digit.alts):
        # Inside a run of digits every alternative fails at once: skip the run in one test.
        digit.guard = "(?<![0-9].)"
    return list(buckets.values())


_DIGITS_STR = "0123456789"
_UPPER_STR = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS = frozenset(_DIGITS_STR)
_UPPER = frozenset(_UPPER_STR)


def _run_start_only(body: str) -> bool:
    """True when the pattern cannot match at a digit that follows an ASCII digit: it starts
    with \\d and a lookbehind that rejects a digit before it or requires a letter."""
    if body.startswith("\\d(?<!["):
        cls = body[len("\\d(?<![") : body.find("]", len("\\d(?<!["))]
        return "\\d" in cls or "\\w" in cls or "0-9" in cls
    return body.startswith(("\\d(?<=[a-z]\\d)", "\\d(?<=[A-Za-z]\\d)", "\\d(?<=[A-Fa-f]\\d)"))


def _class_of(chars: set[str]) -> str:
    return "[" + "".join("\\" + c if c in "\\]^-[" else c for c in sorted(chars)) + "]"


def next_chars(pattern: str) -> frozenset[str] | None:
    """The ASCII characters that can come right after the first one in a match of a pattern
    that starts with one literal character or class (lookbehinds after it are skipped), or
    None when that is not simple (see ``first_chars``)."""
    try:
        branches = _branches(pattern, 0, len(pattern))
        if len(branches) > 1:  # "a|b": any top-level branch may be the match
            chars: set[str] = set()
            for a, b in branches:
                got = next_chars(pattern[a:b])
                if got is None:
                    return None
                chars |= got
            return frozenset(chars)
        if pattern.startswith("(?i:") and _closing(pattern, 0) == len(pattern) - 1:
            got = next_chars(pattern[4:-1])
            return None if got is None else got | {c.swapcase() for c in got}
        if pattern.startswith("(?:"):
            # A choice of words (``(?:SELECT…|INSERT…)``): what may follow the first
            # character of any branch, the rest of the pattern after the group included.
            close = _closing(pattern, 0)
            if _optional(pattern, close + 1) or pattern.startswith(("{", "+"), close + 1):
                return None
            rest = pattern[close + 1 :]
            following: set[str] = set()
            for a, b in _branches(pattern, 3, close):
                got = next_chars(pattern[a:b] + rest)
                if got is None:
                    return None
                following |= got
            return frozenset(following)
        if pattern.startswith("["):
            i = _class_end(pattern, 0) + 1
        elif pattern.startswith("\\"):
            if pattern[1:2] in ("b", "B", "A", "Z"):
                return None  # zero-width: not a first character
            i = 2
        elif pattern[:1] and pattern[:1] not in ".^$|()*+?{":
            i = 1
        else:
            return None
        while True:
            if pattern.startswith(("(?<=", "(?<!"), i):
                i = _closing(pattern, i) + 1
            elif pattern.startswith("(?:(?<", i) and all(
                pattern.startswith(("(?<=", "(?<!"), a) and _closing(pattern, a) == b - 1
                for a, b in _branches(pattern, i + 3, _closing(pattern, i))
            ):
                i = _closing(pattern, i) + 1  # a choice of lookbehinds
            else:
                break
        if _optional(pattern, i) or pattern.startswith(("{", "+"), i):
            return None
        return first_chars(pattern[i:])
    except (IndexError, KeyError, ValueError):
        return None


def first_chars(pattern: str) -> frozenset[str] | None:
    """The ASCII characters a pattern can start with, or None when that is not simple.

    A small reader of the pattern text (literals, escapes, classes, groups and their
    branches); anything it does not understand, or a first element that may be skipped,
    gives None, which only costs the fast path.  Every process that lints reads every
    pattern of the packs this way (~1.5 ms): the answers are kept in the store of
    compiled patterns when there is one ("" for None).
    """
    got = compiled.derive("first", pattern, lambda: "".join(sorted(_first_chars(pattern) or ())))
    return frozenset(got) if got else None


def _first_chars(pattern: str) -> frozenset[str] | None:
    try:
        # Each top-level branch ("a|b") may start the match.
        got: set[str] = set()
        for a, b in _branches(pattern, 0, len(pattern)):
            part = _first(pattern, a, b, icase=False)
            if not part:
                return None
            got |= part
    except (IndexError, KeyError, ValueError):
        return None
    return frozenset(got) if got else None


def _first(p: str, i: int, end: int, *, icase: bool) -> set[str] | None:
    if i >= end:
        return None
    c = p[i]
    if c == "(":
        close = _closing(p, i)
        inner = i + 1
        if p.startswith("?", inner):
            flags = _flag_group(p, inner)
            if flags:
                inner, has_i = flags
                icase = icase or has_i
            elif p.startswith("?P<", inner):
                inner = p.index(">", inner) + 1
            else:
                return None  # lookaround, atomic group, comment, backreference
        if _optional(p, close + 1):
            return None
        out: set[str] = set()
        for a, b in _branches(p, inner, close):
            got = _first(p, a, b, icase=icase)
            if got is None:
                return None
            out |= got
        return out
    if c == "[":
        close = _class_end(p, i)
        chars = _class_chars(p[i + 1 : close])
        nxt = close + 1
    elif c == "\\":
        e = p[i + 1]
        chars = (
            set(_DIGITS_STR)
            if e == "d"
            else {"\n"}
            if e == "n"
            else {"\t"}
            if e == "t"
            else {e}
            if not e.isalnum()
            else None
        )
        nxt = i + 2
    elif c in ".^$|)*+?{":
        return None
    else:
        chars, nxt = {c}, i + 1
    if chars is None or _optional(p, nxt):
        return None
    if icase:
        chars |= {ch.swapcase() for ch in chars}
    return chars if all(ord(ch) < 128 for ch in chars) else None


def _flag_group(p: str, inner: int) -> tuple[int, bool] | None:
    """For '(?flags:' with p[inner] == '?': the index after ':' and whether 'i' is set."""
    j = inner + 1
    while j < len(p) and p[j] in "aiLmsux":
        j += 1
    if j < len(p) and p[j] == ":":
        return j + 1, "i" in p[inner + 1 : j]
    return None


def _optional(p: str, j: int) -> bool:
    return p[j : j + 1] in ("?", "*") or p.startswith(("{0", "{,"), j)


def _closing(p: str, i: int) -> int:
    """Index of the ')' that closes the group opened at ``i``."""
    return _structure(p)[0][i]


def _branches(p: str, a: int, b: int) -> list[tuple[int, int]]:
    """The top-level '|' branches of p[a:b], where b is the end of p or a group's ')'."""
    _, opens, bars = _structure(p)
    cuts = bars[opens.get(b, -1)] if b < len(p) else bars[-1]
    out = []
    start = a
    for bar in cuts:
        if a <= bar < b:
            out.append((start, bar))
            start = bar + 1
    out.append((start, b))
    return out


@lru_cache(maxsize=256)
def _structure(
    p: str,
) -> tuple[dict[int, int], dict[int, int], dict[int, list[int]]]:
    """One pass over a pattern: the ')' of each '(', the '(' of each ')', and the '|'
    positions directly inside each group (key -1: the top level).  Escapes and character
    classes are skipped; an unbalanced pattern raises ValueError."""
    closes: dict[int, int] = {}
    opens: dict[int, int] = {}
    bars: dict[int, list[int]] = {-1: []}
    stack = [-1]
    i = 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _class_end(p, i) + 1
            continue
        if c == "(":
            stack.append(i)
            bars[i] = []
        elif c == ")":
            if len(stack) == 1:
                raise ValueError("unbalanced ')'")
            o = stack.pop()
            closes[o] = i
            opens[i] = o
        elif c == "|":
            bars[stack[-1]].append(i)
        i += 1
    if len(stack) != 1:
        raise ValueError("unbalanced '('")
    return closes, opens, bars


def _class_end(p: str, i: int) -> int:
    """Index of the ']' that closes the class opened at ``i``."""
    j = i + 1
    if p.startswith("^", j):
        j += 1
    if p.startswith("]", j):
        j += 1
    while p[j] != "]":
        j += 2 if p[j] == "\\" else 1
    return j


def _class_chars(body: str) -> set[str] | None:
    if body.startswith("^"):
        return None
    out: set[str] = set()
    j = 0
    while j < len(body):
        ch = body[j]
        if ch == "\\":
            e = body[j + 1]
            if e == "d":
                out.update(_DIGITS_STR)
                j += 2
                continue
            if e == "x":
                ch, j = chr(int(body[j + 2 : j + 4], 16)), j + 4
            elif e in "nt":
                ch, j = ("\n" if e == "n" else "\t"), j + 2
            elif not e.isalnum():
                ch, j = e, j + 2
            else:
                return None  # \w, \s and friends: too wide to be worth it
        else:
            j += 1
        if body.startswith("-", j) and j + 1 < len(body):
            hi = body[j + 1]
            if hi == "\\":
                return None
            if ord(hi) - ord(ch) >= 128:
                return None
            out.update(chr(x) for x in range(ord(ch), ord(hi) + 1))
            j += 2
        else:
            out.add(ch)
    return out


def necessary(pattern: str) -> frozenset[str] | None:
    """Literals of which every match of ``pattern`` contains at least one, or None.

    Read from the pattern text like ``first_chars``: the mandatory literal runs, groups
    whose every branch has such a literal (lookaheads and lookbehinds included), and small
    character classes; the set with the longest shortest member wins.  Case-insensitive
    parts are skipped.  ``any(lit in text for lit in necessary(p))`` is then a cheap test
    that ``p`` cannot match in ``text`` when it fails.
    """
    try:
        parts = [
            _necessary(pattern, a, b, icase=False) for a, b in _branches(pattern, 0, len(pattern))
        ]
    except (IndexError, KeyError, ValueError):
        return None
    if not all(parts):
        return None
    return frozenset().union(*parts)  # type: ignore[arg-type]


def _necessary(p: str, i: int, end: int, *, icase: bool) -> set[str] | None:
    best: set[str] | None = None
    run = ""

    def consider(candidate: set[str] | None) -> None:
        nonlocal best
        if candidate and all(candidate) and (best is None or _rank(candidate) > _rank(best)):
            best = candidate

    while i < end:
        c = p[i]
        literal: str | None = None
        group: set[str] | None = None
        if c == "(":
            close = _closing(p, i)
            inner = i + 1
            keep = True
            if p.startswith("?", inner):
                flags = _flag_group(p, inner)
                if flags:
                    inner, has_i = flags
                    group_icase = icase or has_i
                elif p.startswith(("?=", "?<="), inner):
                    inner += 2 if p.startswith("?=", inner) else 3
                    group_icase = icase
                elif p.startswith("?P<", inner):
                    inner = p.index(">", inner) + 1
                    group_icase = icase
                else:
                    keep = False  # negative lookaround, atomic group, ...
                    group_icase = icase
            else:
                group_icase = icase
            if keep and not group_icase:
                parts = [_necessary(p, a, b, icase=False) for a, b in _branches(p, inner, close)]
                if all(parts):
                    group = set().union(*parts)  # type: ignore[arg-type]
            nxt = close + 1
        elif c == "[":
            close = _class_end(p, i)
            chars = _class_chars(p[i + 1 : close])
            if chars is not None and len(chars) == 1 and not icase:
                literal = next(iter(chars))
            elif chars is not None and len(chars) <= 3 and not icase:
                group = chars
            nxt = close + 1
        elif c == "\\":
            e = p[i + 1]
            nxt = i + 2
            if e == "x":
                literal, nxt = chr(int(p[i + 2 : i + 4], 16)), i + 4
            elif e in "nt":
                literal = "\n" if e == "n" else "\t"
            elif not e.isalnum():
                literal = e
            if icase:
                literal = None
        elif c in ".^$":
            nxt = i + 1
        elif c in "|)*+?{":
            return None  # not a plain sequence
        else:
            literal = None if icase else c
            nxt = i + 1
        # The quantifier after the element, if any.
        optional = _optional(p, nxt)
        repeated = False
        if nxt < end and p[nxt] in "*+?":
            repeated = p[nxt] != "?"
            nxt += 1
        elif p.startswith("{", nxt):
            repeated = True
            nxt = p.index("}", nxt) + 1
        if nxt < end and p[nxt] in "?+":
            nxt += 1  # lazy or possessive
        if literal is not None and not optional:
            run += literal
            if repeated:
                consider({run})
                run = ""
        else:
            if run:
                consider({run})
                run = ""
            if group is not None and not optional:
                consider(group)
        i = nxt
    if run:
        consider({run})
    return best


def _rank(candidate: set[str]) -> tuple[int, int]:
    return min(len(x) for x in candidate), -len(candidate)


def expand(token: str) -> list[str]:
    """'will (be |)done' -> ['will be done', 'will done']: every choice of each group."""
    if "(" not in token:
        return [" ".join(token.split())]
    m = _regex(r"\(([^()]*)\)").search(token)
    if m is None:
        return [" ".join(token.split())]
    return [
        w
        for choice in m.group(1).split("|")
        for w in expand(token[: m.start()] + choice + token[m.end() :])
    ]


def trie_regex(words: Iterable[str], *, lower: bool = True) -> str:
    """A regex matching any of the words, built as a trie so alternation never backtracks wide.

    Whitespace inside a phrase matches any run of whitespace; matching is on lower case
    (callers wrap the result in ``(?i:...)``).
    """
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        word = re.sub(r"\s+", " ", word.strip())
        for ch in word.lower() if lower else word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        alts = [
            (r"\s+" if ch == " " else re.escape(ch)) + emit(child)
            for ch, child in sorted(node.items())
            if ch
        ]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if "" in node:
            return f"(?:{body})?"
        return body

    return emit(trie)


def _tuple(value: Any, what: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PackError(f"{where}: '{what}' must be a string or a list of strings")
    return tuple(value)


def parse_pack(name: str, source: str, *, check_patterns: bool = True) -> Pack:
    """Validate a pack's TOML text into a Pack; raise PackError with the rule named.

    ``check_patterns`` compiles every pattern on its own to name the rule of a bad one;
    the shipped packs skip it (their tests compile every pattern), which keeps ~50
    compilations out of the first lint of every process.
    """
    import tomllib  # ~5 ms; only when a pack is read

    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise PackError(f"pack '{name}': {exc}") from exc
    return pack_from_data(name, data, check_patterns=check_patterns)


_RULE_ID = r"[A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9.]*"


@lru_cache(maxsize=16)
def _regex(pattern: str) -> re.Pattern[str]:
    """A small regex of this module, compiled on first use (through the store of compiled
    patterns when there is one: every process that lints reads the packs)."""
    return compiled.compile(pattern)


def pack_from_data(name: str, data: dict[str, Any], *, check_patterns: bool = True) -> Pack:
    """Validate a pack's parsed TOML tables into a Pack (see ``parse_pack``)."""
    meta = data.get("pack", {})
    name = str(meta.get("name", name))
    rules = []
    for raw in data.get("rule", []):
        rid = raw.get("id")
        where = f"pack '{name}' rule '{rid}'"
        if not isinstance(rid, str) or not _regex(_RULE_ID).fullmatch(rid):
            raise PackError(f"{where}: id must be dotted like 'Leak.IPAddress'")
        kind = raw.get("kind", "existence")
        level = raw.get("level", "warning")
        fix = raw.get("fix", "none")
        if kind not in KINDS or level not in LEVELS or fix not in FIXES:
            raise PackError(f"{where}: kind, level or fix not one of {KINDS} {LEVELS} {FIXES}")
        validator = raw.get("validator")
        if validator is not None and validator not in VALIDATORS:
            raise PackError(f"{where}: unknown validator '{validator}'")
        swap = raw.get("swap", {})
        if not isinstance(swap, Mapping):
            raise PackError(f"{where}: 'swap' must be a table")
        when = raw.get("when", {})
        rule = Rule(
            id=rid,
            pack=name,
            kind=kind,
            level=level,
            message=str(raw.get("message", rid)),
            patterns=_tuple(raw.get("patterns"), "patterns", where),
            tokens=_tuple(raw.get("tokens"), "tokens", where),
            swap=tuple((str(k), str(v)) for k, v in swap.items()),
            ignorecase=bool(
                raw.get("ignorecase", kind in ("existence", "substitution", "required"))
            ),
            validator=validator,
            fix="replace" if kind == "substitution" and fix == "none" else fix,
            replacement=raw.get("replacement"),
            mask=bool(raw.get("mask", False)),
            source=raw.get("source"),
            kinds=_tuple(raw.get("kinds"), "kinds", where),
            when=tuple((k, _tuple(v, k, where)) for k, v in when.items()),
            metric=raw.get("metric"),
            max=int(raw.get("max", 0)),
            anchor=str(raw.get("anchor", "any")),
            extend_left=raw.get("extend_left"),
            shadow=bool(raw.get("shadow", False)),
            raw=bool(raw.get("raw", False)),
            fallback=bool(raw.get("fallback", False)),
        )
        if rule.anchor not in ("any", "line"):
            raise PackError(f"{where}: anchor must be 'any' or 'line'")
        for pattern in rule.patterns if check_patterns else ():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PackError(f"{where}: bad pattern {pattern!r}: {exc}") from exc
        rules.append(rule)
    return Pack(name=name, rules=tuple(rules), requires_kind=bool(meta.get("requires_kind", False)))


@lru_cache(maxsize=32)
def load_pack_source(name: str, source: str, *, check_patterns: bool = True) -> Pack:
    """Parse and cache a pack by its text, so each pack is compiled once per process."""
    return parse_pack(name, source, check_patterns=check_patterns)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


@lru_cache(maxsize=1)
def default_packs() -> tuple[Pack, ...]:
    """The shipped packs: leak, impact, struct.

    The TOML files are the source.  packs.json holds them parsed, with a checksum of each
    file: importing and running tomllib costs ~10 ms of every `comms draft`, reading JSON
    ~1 ms.  A pack whose file no longer matches its checksum is parsed from the TOML (same
    result, slower); `python -m comms.lint.rules` writes packs.json again, and a test
    fails until it is fresh.
    """
    frozen = _frozen()
    packs = []
    for name in DEFAULT_PACKS:
        source = _read(os.path.join(PACKS_DIR, f"{name}.toml"))
        entry = frozen.get(name)
        if isinstance(entry, dict) and entry.get("crc32") == _checksum(source):
            packs.append(pack_from_data(name, entry["data"], check_patterns=False))
        else:
            packs.append(load_pack_source(name, source, check_patterns=False))
    return tuple(packs)


FROZEN_PACKS = os.path.join(os.path.dirname(__file__), "packs.json")


def _checksum(source: str) -> int:
    import zlib

    return zlib.crc32(source.encode("utf-8"))


def _frozen() -> dict[str, Any]:
    try:
        text = _read(FROZEN_PACKS)
    except OSError:
        return {}
    import json

    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def freeze_packs() -> str:
    """packs.json's text: every shipped pack parsed, with the checksum of its TOML."""
    import json
    import tomllib

    frozen = {}
    for name in DEFAULT_PACKS:
        source = _read(os.path.join(PACKS_DIR, f"{name}.toml"))
        frozen[name] = {"crc32": _checksum(source), "data": tomllib.loads(source)}
    return json.dumps(frozen, ensure_ascii=False, indent=1) + "\n"


class WordIndex:
    """Every word-list phrase of a set of packs, matched by trie regexes on lower-cased text.

    ``phrases`` maps a normalised phrase (lower case, single spaces) to the rules that list
    it, in pack order; a case-sensitive rule also needs the exact spelling.  ``by_first``
    maps the first word (``\\w+``) of each phrase to the phrases starting with it, so a
    short text compiles only the phrases whose first word it contains; ``always`` holds
    the phrases that do not start with a word character.
    """

    __slots__ = ("all_keys", "always", "by_first", "calls", "phrases")

    def __init__(
        self,
        phrases: dict[str, tuple[tuple[Rule, str], ...]],
        by_first: dict[str, tuple[str, ...]],
        always: tuple[str, ...],
    ) -> None:
        self.phrases = phrases
        self.by_first = by_first
        self.always = always
        self.all_keys = tuple(phrases)
        self.calls = 0

    def keys_for(self, low: str) -> tuple[str, ...]:
        """The phrases that can occur in the lower-cased text ``low`` (all for a long text,
        and all once a process has linted a few texts)."""
        self.calls += 1
        if len(low) > _SUBSET_UP_TO or self.calls > _MAX_SUBSETS or compiled.installed():
            return self.all_keys
        words = set(_regex(_WORDS).findall(low))
        keys = tuple(sorted(k for w in words & self.by_first.keys() for k in self.by_first[w]))
        return keys + self.always


# Up to this length a text is split into words to pick the phrases it can hold; beyond it,
# every phrase is matched (splitting a megabyte costs more than the one full regex).
_SUBSET_UP_TO = 20_000
# Texts linted with subset scanners (and phrase lists) before a process switches to the
# full ones: a one-shot `comms draft` compiles little, a batch does not compile per text.
_MAX_SUBSETS = 8
_WORDS = r"\w+"  # compiled on use, through the store of compiled patterns when there is one


@lru_cache(maxsize=8)
def word_index(packs: tuple[Pack, ...]) -> WordIndex:
    """Build (once per pack set) the word index over all existence/substitution word lists."""
    phrases: dict[str, list[tuple[Rule, str]]] = {}
    for pack in packs:
        for rule in pack.rules:
            if rule.kind in SCAN_KINDS and rule.source is None:
                for word in rule.words:
                    spelled = " ".join(word.split())
                    phrases.setdefault(spelled.lower(), []).append((rule, spelled))
    by_first: dict[str, list[str]] = {}
    always = []
    words = _regex(_WORDS)
    for key in phrases:
        first = words.match(key)
        if first is None:
            always.append(key)
        else:
            by_first.setdefault(first.group(), []).append(key)
    return WordIndex(
        phrases={k: tuple(v) for k, v in phrases.items()},
        by_first={k: tuple(v) for k, v in by_first.items()},
        always=tuple(always),
    )


@lru_cache(maxsize=256)
def phrase_regex(keys: tuple[str, ...], *, fast: bool = False) -> re.Pattern[str] | None:
    """A regex matching any of the phrases ``keys`` between word boundaries.

    ``\\b`` costs three times more when it must know Unicode letters.  With ``fast``, the
    ASCII ``\\b`` is used when every phrase starts and ends with an ASCII letter, digit or
    underscore (else None): it then accepts at least every boundary the Unicode one does,
    and the caller checks each of its matches against the Unicode rule, falling back to
    the Unicode regex if one fails.

    The ``fast`` regex does not start at every position (a pattern that starts with
    ``\\b`` is tried at each of them, ~30 ms a MiB): it walks from word to word itself and
    tries the phrases at the start of each, so one match covers the text up to the next
    phrase.  Group ``p`` is the phrase, unset in the last match (the rest of the text); a
    phrase can only start where an ASCII word starts, so it finds what ``\\b(?:…)\\b``
    finds, in the same order.
    """
    if fast:
        if not keys or not all(k[:1] in _ASCII_WORD and k[-1:] in _ASCII_WORD for k in keys):
            return None
        trie = _trie(keys)
        word, other = "[A-Za-z0-9_]", "[^A-Za-z0-9_]"
        return compiled.compile(
            f"(?:{other}*+(?!{trie}(?a:\\b)){word}++)*+{other}*+(?:(?P<p>{trie})(?a:\\b)|\\Z)"
        )
    return compiled.compile(r"\b" + _trie(keys) + r"\b")


def _trie(words: tuple[str, ...], *, lower: bool = True) -> str:
    """``trie_regex``, kept in the store of compiled patterns when there is one (a trie of
    the packs' 2,000 phrases takes ~8 ms to build)."""
    key = ("l" if lower else "c") + "\n".join(words)
    return compiled.derive("trie", key, lambda: trie_regex(words, lower=lower))


_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@lru_cache(maxsize=8)
def merged(packs: tuple[Pack, ...]) -> Pack:
    """All rules of the packs as one pack (in pack order), so each scanner runs once."""
    rules = tuple(rule for pack in packs for rule in pack.rules)
    return Pack(name="+".join(p.name for p in packs), rules=rules)


@lru_cache(maxsize=64)
def word_list_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """Compile a configured word list (roster, tenants) once per distinct list."""
    words = tuple(w for w in words if w.strip())
    if not words:
        return None
    return compiled.compile(r"(?i:(?<![\w@#/.-])" + _trie(words) + r"(?![\w@-]|\.\w))")


if __name__ == "__main__":  # python -m comms.lint.rules: refresh packs.json after editing a pack
    with open(FROZEN_PACKS, "w", encoding="utf-8") as out:
        out.write(freeze_packs())
    print(f"wrote {FROZEN_PACKS}")
