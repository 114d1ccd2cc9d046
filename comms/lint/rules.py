"""Rules as data: load TOML packs and compile each into one combined regex.

A pack is a TOML file with a ``[pack]`` table and ``[[rule]]`` entries.  Rule kinds:

- ``existence``: ``tokens`` (literal words or phrases) and/or ``patterns`` (regexes).
- ``substitution``: ``swap`` table ``bad = "preferred"``; the fix replaces.
- ``pattern``: ``patterns`` plus a named ``validator`` (see validators.py) that decides.
- ``required``: for message ``kinds``, one of ``patterns`` must occur (optionally ``when``
  severity/status match).
- ``metric``: ``metric = "sentence_words"`` above ``max``.

Options: ``level`` (error | warning | suggestion), ``message`` (``{match}`` and
``{replacement}`` are filled in), ``ignorecase``, ``fix`` (none | strip | replace |
sentence | line: remove the whole sentence or line), ``replacement``, ``mask`` (never
show the match), ``source`` (``roster`` or ``tenants``: the tokens come from the
configuration at lint time), ``anchor = "line"`` (or
a pattern starting with ``^``: only at line starts), ``extend_left`` (a character class:
the match grows left over it before validation), ``shadow`` (a candidate its validator
allows still hides matches inside it, e.g. the path of an allow-listed URL).

Every ``existence``/``substitution``/``pattern`` rule of a pack becomes one alternative of a
single regex, tried in file order, so the text is scanned once per pack and not once per rule.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from comms.lint.validators import VALIDATORS

LEVELS = ("suggestion", "warning", "error")
KINDS = ("existence", "substitution", "pattern", "required", "metric")
FIXES = ("none", "strip", "replace", "sentence", "line")
SCAN_KINDS = ("existence", "substitution", "pattern")
PACKS_DIR = Path(__file__).parent / "packs"
DEFAULT_PACKS = ("leak", "impact", "struct")


class PackError(ValueError):
    """A pack file is malformed; the message names the pack and the rule."""


_SWAP_MAPS: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a pack, validated and ready to compile."""

    id: str
    pack: str
    kind: str
    level: str
    message: str
    patterns: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    swap: tuple[tuple[str, str], ...] = ()
    ignorecase: bool = True
    validator: str | None = None
    fix: str = "none"
    replacement: str | None = None
    mask: bool = False
    source: str | None = None
    kinds: tuple[str, ...] = ()
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    metric: str | None = None
    max: int = 0
    anchor: str = "any"
    extend_left: str | None = None
    shadow: bool = False

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


@dataclass(slots=True, eq=False)
class Pack:
    """A named list of rules with its combined scanner, compiled on first use."""

    name: str
    rules: tuple[Rule, ...]
    requires_kind: bool = False
    _compiled: dict[str, list[tuple[re.Pattern[str], dict[str, tuple[int, Rule]]]]] = field(
        default_factory=dict, repr=False
    )
    _alternatives: list[tuple[int, Rule, re.Pattern[str], frozenset[str] | None]] = field(
        default_factory=list, repr=False
    )

    def scanners(
        self, anchor: str = "any"
    ) -> list[tuple[re.Pattern[str], dict[str, tuple[int, Rule]]]]:
        """The compiled scanners of the pack's pattern rules with this anchor.

        Python's regex engine pays for every position times every alternative, so patterns
        are grouped by the characters they can start with, and each group becomes

            [first chars](?<=(?=(?P<g1>pattern1)|(?P<g2>pattern2)|...).)

        The leading class lets the engine skip every other position in C; the lookbehind
        steps back one character and tries the alternatives there in file order.  A match
        is one character long; the named group that matched gives the rule and its span.
        Line rules instead share one literal newline (fast search) and a ``^`` for the start.
        Groups map to (order in the pack, rule) so callers can resolve overlaps like a
        single leftmost-first alternation would.
        """
        if anchor not in self._compiled:
            buckets: dict[frozenset[str], list[tuple[str, str, int, Rule]]] = {}
            n = 0
            for order, rule in enumerate(self.rules):
                if rule.kind not in SCAN_KINDS or rule.source is not None:
                    continue
                for pattern in rule.patterns:
                    # A pattern written with a leading '^' (or a rule with anchor = "line")
                    # runs only at line starts.
                    line = rule.anchor == "line" or pattern.startswith("^")
                    if line != (anchor == "line"):
                        continue
                    pattern = pattern[1:] if pattern.startswith("^") else pattern
                    body = f"(?i:{pattern})" if rule.ignorecase else pattern
                    first = first_chars(body) if anchor == "any" else frozenset()
                    # Patterns starting with punctuation share one scanner (each pass costs
                    # ~10 ms per MiB even when it skips); letters and digits get their own,
                    # as they occur too often to share.
                    key = frozenset(_char_kind(c) for c in first) if first else frozenset({"*"})
                    buckets.setdefault(key, []).append((f"g{n}", body, order, rule))
                    n += 1
            compiled = []
            for key, alts in buckets.items():
                groups = {name: (order, rule) for name, _, order, rule in alts}
                joined = "|".join(f"(?P<{name}>{body})" for name, body, _, _ in alts)
                if anchor == "line":
                    # A literal newline lets the engine jump between line starts; the first
                    # line is tried separately by the caller with .match at 0.
                    regex = re.compile(f"[\\n\\r](?:{joined})", re.MULTILINE)
                    compiled.append((re.compile(f"(?:{joined})", re.MULTILINE), groups))
                elif "*" in key:
                    regex = re.compile(f"(?=(?:{joined}))", re.MULTILINE)
                else:
                    chars = set().union(*(first_chars(b) or set() for _, b, _, _ in alts))
                    cls = "".join(re.escape(c) for c in sorted(chars))
                    regex = re.compile(f"[{cls}](?<=(?=(?:{joined})).)", re.MULTILINE | re.DOTALL)
                compiled.append((regex, groups))
            self._compiled[anchor] = compiled
        return self._compiled[anchor]

    def alternatives(self) -> list[tuple[int, Rule, re.Pattern[str], frozenset[str] | None]]:
        """Every scan pattern on its own, in file order (to retry after a rejection)."""
        if "alternatives" not in self._compiled:
            out = []
            for order, rule in enumerate(self.rules):
                if rule.kind in SCAN_KINDS and rule.source is None and rule.anchor == "any":
                    for pattern in rule.patterns:
                        if pattern.startswith("^"):
                            continue
                        body = f"(?i:{pattern})" if rule.ignorecase else pattern
                        out.append((order, rule, re.compile(body, re.MULTILINE), first_chars(body)))
            self._alternatives = out
            self._compiled["alternatives"] = []
        return self._alternatives


def _char_kind(c: str) -> str:
    if c.isdigit():
        return "digit"
    return "upper" if c.isupper() else "lower" if c.islower() else "punct"


def first_chars(pattern: str) -> frozenset[str] | None:
    """The ASCII characters a pattern can start with, or None when that is not simple."""
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]

    def first(sub: Any, icase: bool) -> set[str] | None:
        if not sub.data:
            return None
        op, av = sub.data[0]
        if op is c.LITERAL:
            out = {chr(av)}
        elif op is c.IN:
            out = set()
            for iop, iav in av:
                if iop is c.LITERAL:
                    out.add(chr(iav))
                elif iop is c.RANGE and iav[1] - iav[0] < 128:
                    out.update(chr(x) for x in range(iav[0], iav[1] + 1))
                elif iop is c.CATEGORY and iav is c.CATEGORY_DIGIT:
                    out.update("0123456789")
                else:
                    return None
        elif op is c.BRANCH:
            out = set()
            for branch in av[1]:
                got = first(branch, icase)
                if got is None:
                    return None
                out |= got
        elif op is c.SUBPATTERN:
            return first(av[3], icase or bool(av[1] & re.IGNORECASE))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
            return first(av[2], icase)
        else:
            return None
        if icase:
            out |= {ch.swapcase() for ch in out}
        return out if all(ord(ch) < 128 for ch in out) else None

    try:
        got = first(_parser.parse(pattern), False)
    except Exception:  # an unusual pattern only loses the fast path
        return None
    return frozenset(got) if got else None


def expand(token: str) -> list[str]:
    """'will (be |)done' -> ['will be done', 'will done']: every choice of each group."""
    m = re.search(r"\(([^()]*)\)", token)
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


def parse_pack(name: str, source: str) -> Pack:
    """Validate a pack's TOML text into a Pack; raise PackError with the rule named."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise PackError(f"pack '{name}': {exc}") from exc
    meta = data.get("pack", {})
    name = str(meta.get("name", name))
    rules = []
    for raw in data.get("rule", []):
        rid = raw.get("id")
        where = f"pack '{name}' rule '{rid}'"
        if not isinstance(rid, str) or not re.fullmatch(
            r"[A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9.]*", rid
        ):
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
        )
        if rule.anchor not in ("any", "line"):
            raise PackError(f"{where}: anchor must be 'any' or 'line'")
        for pattern in rule.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PackError(f"{where}: bad pattern {pattern!r}: {exc}") from exc
        rules.append(rule)
    return Pack(name=name, rules=tuple(rules), requires_kind=bool(meta.get("requires_kind", False)))


@lru_cache(maxsize=32)
def load_pack_source(name: str, source: str) -> Pack:
    """Parse and cache a pack by its text, so each pack is compiled once per process."""
    return parse_pack(name, source)


@lru_cache(maxsize=1)
def default_packs() -> tuple[Pack, ...]:
    """The shipped packs: leak, impact, struct."""
    return tuple(
        load_pack_source(name, (PACKS_DIR / f"{name}.toml").read_text(encoding="utf-8"))
        for name in DEFAULT_PACKS
    )


@dataclass(frozen=True, slots=True)
class WordIndex:
    """Every word-list phrase of a set of packs in one trie regex, run on lower-cased text.

    ``phrases`` maps a normalised phrase (lower case, single spaces) to the rules that list
    it, in pack order; a case-sensitive rule also needs the exact spelling.
    """

    regex: re.Pattern[str] | None
    phrases: dict[str, tuple[tuple[Rule, str], ...]]


@lru_cache(maxsize=8)
def word_index(packs: tuple[Pack, ...]) -> WordIndex:
    """Build (once per pack set) the word index over all existence/substitution word lists."""
    phrases: dict[str, list[tuple[Rule, str]]] = {}
    for pack in packs:
        for rule in pack.rules:
            if rule.kind in SCAN_KINDS and rule.source is None:
                for word in rule.words:
                    spelled = re.sub(r"\s+", " ", word.strip())
                    phrases.setdefault(spelled.lower(), []).append((rule, spelled))
    regex = re.compile(r"\b" + trie_regex(phrases) + r"\b") if phrases else None
    return WordIndex(regex=regex, phrases={k: tuple(v) for k, v in phrases.items()})


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
    return re.compile(r"(?i:(?<![\w@#/.-])" + trie_regex(words) + r"(?![\w@-]|\.\w))")
