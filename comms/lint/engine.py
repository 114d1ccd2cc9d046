"""Lint: run the packs over a text and return findings.  Pure: no I/O beyond reading the
shipped packs and word lists once, no clock, no environment.

The rules see the text as it reads (``shadow.py``: no invisible characters, look-alike
letters as Latin ones); findings are reported at the offsets of the text as written.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import accumulate
from operator import attrgetter, itemgetter

from comms.lint import compiled
from comms.lint.rules import (
    LEVELS,
    Pack,
    Rule,
    WordIndex,
    default_packs,
    load_pack_source,
    merged,
    phrase_regex,
    word_index,
    word_list_regex,
)
from comms.lint.validators import VALIDATORS, Context

# typing costs ~3 ms to import, and only type checkers need it here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from comms.lint.config import LintConfig
    from comms.lint.shadow import Shadow
    from comms.lint.vocabulary import NameSearch

DEFAULT_PUBLIC_DOMAINS = (
    "gitlab.com",
    "about.gitlab.com",
    "docs.gitlab.com",
    "status.gitlab.com",
    "gitlab-dedicated.com",
)
DEFAULT_SUPPORT_EMAILS = ("support@gitlab.com",)
# Internal even on an allow-listed (or otherwise public) domain.  Host, or host and path;
# a host covers its sub-domains, a path what is below it.  gitlab-com is GitLab's company
# group (gl-infra/production, infrastructure, runbooks, security, support); the product is
# gitlab-org, whose issues are public.  gitlab.net is GitLab's operations domain (ops,
# dashboards, log.gprd, thanos, sentry); dev.gitlab.org its internal build instance.
DEFAULT_INTERNAL_URL_PREFIXES = ("gitlab.com/gitlab-com/", "gitlab.net", "dev.gitlab.org")
LEVEL_RANK = {level: i for i, level in enumerate(LEVELS)}
MAX_MATCH_SHOWN = 200
_LINE_BREAK = r"\r\n?|\n"
_SENTENCE = r"[^\s.!?][^.!?\n]*(?:[.!?]+|$)"  # a sentence, as the length metric counts
_OPEN_STATUSES = ("investigating", "identified", "mitigating", "monitoring")


class Finding:
    """One problem in a text (a read-only value: compare, hash, ``to_dict``).

    ``start``/``end`` are 0-based code-point offsets into the linted text; ``line`` and
    ``column`` are 1-based, in code points.  ``match`` is the matched text, masked for
    secrets and cut at 200 characters.  ``replacement`` is the fix: None for no automatic
    fix, "" to strip, else the text to put instead.

    A plain class with slots rather than a frozen dataclass: a long postmortem yields
    thousands of findings, and the line and column are only worked out when asked for.
    """

    __slots__ = (
        "_column",
        "_line",
        "_lines",
        "end",
        "level",
        "match",
        "message",
        "replacement",
        "rule",
        "start",
    )

    def __init__(
        self,
        rule: str,
        level: str,
        message: str,
        start: int,
        end: int,
        line: int = 0,
        column: int = 0,
        match: str = "",
        replacement: str | None = None,
        *,
        lines: _Lines | None = None,
    ) -> None:
        self.rule = rule
        self.level = level
        self.message = message
        self.start = start
        self.end = end
        self._line = line
        self._column = column
        self._lines = lines
        self.match = match
        self.replacement = replacement

    @property
    def line(self) -> int:
        """1-based line of ``start``."""
        if self._lines is not None:
            self._position()
        return self._line

    @property
    def column(self) -> int:
        """1-based column of ``start``, in code points."""
        if self._lines is not None:
            self._position()
        return self._column

    def _position(self) -> None:
        assert self._lines is not None
        self._line, self._column = self._lines.position(self.start)
        self._lines = None  # the line index of the text is not kept alive by its findings

    @property
    def fixable(self) -> bool:
        """True when ``fix`` can apply this finding on its own."""
        return self.replacement is not None

    def _key(self) -> tuple[Any, ...]:
        return (
            self.rule,
            self.level,
            self.message,
            self.start,
            self.end,
            self.line,
            self.column,
            self.match,
            self.replacement,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Finding):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ("rule", "level", "message", "start", "end", "line", "column", "match")
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in fields)
        return f"Finding({shown}, replacement={self.replacement!r})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field (the README documents the keys)."""
        return {
            "rule": self.rule,
            "level": self.level,
            "message": self.message,
            "start": self.start,
            "end": self.end,
            "line": self.line,
            "column": self.column,
            "match": self.match,
            "replacement": self.replacement,
        }


class Setup:
    """Everything one lint call needs, resolved from the config and the keyword arguments."""

    __slots__ = (
        "_by_id",
        "ctx",
        "kind",
        "levels",
        "other_tenants",
        "packs",
        "roster",
        "severity",
        "status",
        "vocabulary",
    )

    def __init__(
        self,
        packs: tuple[Pack, ...],
        levels: dict[str, str],
        ctx: Context,
        roster: tuple[str, ...],
        other_tenants: tuple[str, ...],
        kind: str | None,
        severity: str | None,
        status: str | None,
        vocabulary: tuple[str, ...] = (),
    ) -> None:
        self.packs = packs
        self.levels = levels
        self.ctx = ctx
        self.roster = roster
        self.other_tenants = other_tenants
        self.kind = kind
        self.severity = severity
        self.status = status
        self.vocabulary = vocabulary
        self._by_id: dict[str, Rule] | None = None

    def rule(self, rule_id: str) -> Rule | None:
        """Look a rule up by id (for fix scopes); the first pack that defines it wins."""
        if self._by_id is None:
            by_id: dict[str, Rule] = {}
            for pack in self.packs:
                for rule in pack.rules:
                    by_id.setdefault(rule.id, rule)
            self._by_id = by_id
        return self._by_id.get(rule_id)


def setup(
    config: LintConfig | None = None,
    *,
    kind: str | None = None,
    audience: str | None = None,
    tenants: Sequence[str] = (),
    severity: str | None = None,
    status: str | None = None,
) -> Setup:
    """Resolve the config and the message facts into a Setup (cheap; packs are cached)."""
    packs = default_packs()
    levels: dict[str, str] = {}
    public: tuple[str, ...] = DEFAULT_PUBLIC_DOMAINS
    support: tuple[str, ...] = DEFAULT_SUPPORT_EMAILS
    prefixes: tuple[str, ...] = DEFAULT_INTERNAL_URL_PREFIXES
    roster: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()
    known = list(tenants)
    if config is not None:
        packs = packs + tuple(load_pack_source(n, s) for n, s in config.pack_sources())
        levels = dict(config.rules)
        public = tuple(config.public_domains)
        support = tuple(config.support_emails)
        prefixes = tuple(config.internal_url_prefixes)
        roster = tuple(config.roster)
        vocabulary = config.vocabulary_words()
        known += list(config.tenants)
    aud = (audience or "").strip().lower()
    # The audience's own name, and names that are part of it or contain it, stay allowed.
    others = tuple(
        sorted(
            {
                t.strip()
                for t in known
                if t.strip()
                and not (aud and (t.strip().lower() in aud or aud in t.strip().lower()))
            }
        )
    )
    ctx = Context(
        public_domains=tuple(d.lower().strip().lstrip("*.").rstrip(".") for d in public),
        support_emails=frozenset(e.lower().strip() for e in support),
        audience=audience,
        internal_prefixes=_prefixes(prefixes),
    )
    return Setup(
        packs=packs,
        levels=levels,
        ctx=ctx,
        roster=roster,
        other_tenants=others,
        kind=_kind_value(kind),
        severity=severity.upper() if severity else None,
        status=str(status).lower() if status else None,
        vocabulary=vocabulary,
    )


@lru_cache(maxsize=16)
def _prefixes(prefixes: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """'https://Example.org/Ops/' -> ('example.org', '/ops/'): host, and path or ''."""
    out = []
    for prefix in prefixes:
        p = prefix.strip().lower()
        p = p.split("://", 1)[1] if "://" in p else p
        host, slash, path = p.partition("/")
        host = host.rstrip(".")
        if host:
            out.append((host, "/" + path if slash else ""))
    return tuple(out)


def _kind_value(kind: str | None) -> str | None:
    if kind is None:
        return None
    return str(kind).strip().lower().replace("_", "-").replace(" ", "-")


@lru_cache(maxsize=1)
def _line_break() -> re.Pattern[str]:
    return compiled.compile(_LINE_BREAK)


class _Lines:
    """Maps an offset to (line, column), both 1-based, counting CRLF, CR and LF as breaks.

    The line starts are found on the first question: most findings are never asked.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts: list[int] | None = None

    def _starts(self) -> list[int]:
        text = self.text
        if "\r" in text:
            starts = [0] + [m.end() for m in _line_break().finditer(text)]
        else:
            # The common case, without a regex match object (or a Python step) per line:
            # each line's start is the sum of the lengths of the lines before it, plus one
            # for each of their breaks (the last sum, the end of the text + 1, is dropped).
            starts = list(accumulate(map((1).__add__, map(len, text.split("\n"))), initial=0))
            starts.pop()
        self.starts = starts
        return starts

    def position(self, offset: int) -> tuple[int, int]:
        starts = self.starts if self.starts is not None else self._starts()
        line = bisect_right(starts, offset)
        return line, offset - starts[line - 1] + 1


def locate(findings: Iterable[Finding]) -> None:
    """Work out ``line`` and ``column`` of the findings now, all in one loop: what a
    command printing thousands of them would otherwise pay per finding and property."""
    for f in findings:
        lines = f._lines
        if lines is None:
            continue
        starts = lines.starts if lines.starts is not None else lines._starts()
        line = bisect_right(starts, f.start)
        f._line = line
        f._column = f.start - starts[line - 1] + 1
        f._lines = None


def mask(value: str) -> str:
    """Hide a secret: only its length is shown."""
    return f"[secret, {len(value)} characters]"


def _shown(rule: Rule, value: str) -> str:
    if rule.mask:
        return mask(value)
    value = value if len(value) <= MAX_MATCH_SHOWN else value[:MAX_MATCH_SHOWN] + "…"
    if value.isascii():
        return value
    from comms.lint.shadow import escape_invisible

    return escape_invisible(value)


def _sentence_start(text: str, start: int) -> bool:
    before = text[max(0, start - 40) : start].rstrip()
    return not before or before[-1] in ".!?:\n\r-*>#"


def _replacement(rule: Rule, value: str, at_start: bool) -> str | None:
    if rule.fix in ("strip", "sentence", "line", "delete"):
        return ""
    if rule.fix != "replace":
        return None
    if rule.kind == "substitution":
        key = value.lower()
        if not key.isalnum():
            key = " ".join(key.split())
        good = rule.swap_map().get(key)
        if good is None:
            return None
        # Keep a capital at the start of a sentence.
        return good[:1].upper() + good[1:] if at_start and value[:1].isupper() else good
    return rule.replacement


def _message(rule: Rule, shown: str, replacement: str | None) -> str:
    if "{" not in rule.message:
        return rule.message
    # A printable match holds no line break (the common case: no list of its lines).
    short = shown[:60] if shown.isprintable() else shown.splitlines()[0][:60]
    return rule.message.replace("{match}", short).replace("{replacement}", replacement or "")


def _make(
    rule: Rule,
    level: str,
    text: str,
    start: int,
    end: int,
    lines: _Lines,
    *,
    escape: bool = False,
) -> Finding:
    value = text[start:end]
    # ``lines`` indexes the text as written; ``text`` may be its normalised copy with the
    # same offsets (one-for-one changes only).  Format characters, the only ones shown
    # escaped, are never in a text scanned here; ``escape`` is for the raw rules.
    written = value if lines.text is text else lines.text[start:end]
    if rule.mask or escape or len(value) > MAX_MATCH_SHOWN:
        shown = _shown(rule, written)
    else:
        shown = written
    if rule.fix == "none":
        replacement = None
    elif rule.fix in ("strip", "sentence", "line", "delete"):
        replacement = ""
    else:
        replacement = _replacement(rule, value, _sentence_start(text, start))
    message = rule.message if "{" not in rule.message else _message(rule, shown, replacement)
    return Finding(rule.id, level, message, start, end, 0, 0, shown, replacement, lines=lines)


def _applies(rule: Rule, s: Setup) -> bool:
    if rule.kinds and s.kind not in rule.kinds:
        return False
    for key, allowed in rule.when:
        value = s.severity if key == "severity" else s.status if key == "status" else None
        if value is None:
            return False
        if key == "status" and "open" in allowed:
            if value not in _OPEN_STATUSES:
                return False
        elif value not in {a.lower() if key == "status" else a.upper() for a in allowed}:
            return False
    return True


def _boundary_ok(text: str, start: int, end: int) -> bool:
    """Word-list matches must not sit inside a handle, channel, path, host or hyphenation."""
    if start > 0 and text[start - 1] in "@#/.-_":
        return False
    if end < len(text) and text[end] in "@-_/":
        return False
    return not (end + 1 < len(text) and text[end] == "." and (text[end + 1].isalnum()))


def _scan_words(
    text: str, s: Setup, packs: tuple[Pack, ...], lines: _Lines, found: list[Finding]
) -> None:
    index = word_index(packs)
    if not index.phrases:
        return
    low = _lower(text)
    if len(low) != len(text):
        # A few characters change length when lower-cased ("İ"); keep offsets exact instead.
        low = text
        uni = phrase_regex(tuple(index.phrases))
        assert uni is not None
        spans = [m.span() for m in re.finditer(uni.pattern, text, re.IGNORECASE)]
    else:
        keys = index.keys_for(low)
        if not keys:
            return
        regex = phrase_regex(keys, fast=True)
        spans = []
        if regex is not None:
            # Each match runs up to the next phrase (group "p"); the last one has none.
            spans = [span for m in regex.finditer(low) if (span := m.span("p"))[0] >= 0]
        if regex is None or not all(_word_edges(low, a, b) for a, b in spans):
            uni = phrase_regex(keys)
            assert uni is not None
            spans = [m.span() for m in uni.finditer(low)]
    _found_phrases(text, low, spans, s, index, lines, found)


def _lower(text: str) -> str:
    """``text.lower()``, in blocks for a long text: a block without a character beyond
    ASCII is copied as ASCII and lower-cased on the ASCII path, ~4x faster than the whole
    text on the Unicode one.  Only a capital sigma lower-cases by what is around it
    (final sigma): a text with one is lower-cased whole."""
    if len(text) <= _LOWER_BLOCK or text.isascii() or "\u03a3" in text:
        return text.lower()
    step = _LOWER_BLOCK
    return "".join([text[i : i + step].lower() for i in range(0, len(text), step)])


_LOWER_BLOCK = 2048


def _found_phrases(
    text: str,
    low: str,
    spans: list[tuple[int, int]],
    s: Setup,
    index: WordIndex,
    lines: _Lines,
    found: list[Finding],
) -> None:
    """The findings of the phrase matches at ``spans``, found in ``low`` (the text
    lower-cased, or the text itself when lower-casing changed its length)."""
    for start, end in spans:
        if not _boundary_ok(text, start, end):
            continue
        key = low[start:end].lower()
        if not key.isalnum():
            key = " ".join(key.split())
        for rule, spelled in index.phrases.get(key, ()):
            level = s.levels.get(rule.id, rule.level)
            if level == "off":
                continue
            if not rule.ignorecase and re.sub(r"\s+", " ", text[start:end]) != spelled:
                continue
            if rule.validator and not VALIDATORS[rule.validator](text, start, end, s.ctx):
                continue
            found.append(_make(rule, level, text, start, end, lines))
            break


def _word_edges(low: str, start: int, end: int) -> bool:
    """True when [start, end) has Unicode word boundaries (no letter, digit or '_' beside it)."""
    before = low[start - 1] if start else " "
    after = low[end] if end < len(low) else " "
    return not (before.isalnum() or before == "_" or after.isalnum() or after == "_")


def _scan(
    text: str, s: Setup, pack: Pack, anchor: str, lines: _Lines, found: list[Finding]
) -> None:
    # Candidates from every scanner, resolved like one leftmost-first alternation: at a
    # position the earliest rule wins, and a candidate (even one its validator rejects, such
    # as an allow-listed URL) hides whatever starts inside it.
    candidates: list[tuple[int, int, int, Rule]] = []
    scanners = pack.scanners(anchor, text)
    # The line scanners start with a line break; one in front lets them see the first line.
    scanned, shift = ("\n" + text, 1) if anchor == "line" and scanners else (text, 0)
    append = candidates.append
    for scanner, groups, at_start in scanners:
        if at_start is not None:
            # The scanner steps back to the character before a match: offset 0 apart.
            m = at_start.match(text)
            if m is not None:
                name = m.lastgroup or ""
                order, rule = groups[name]
                start, end = m.span(name)
                if end > start:
                    append((start, order, end, rule))
        for m in scanner.finditer(scanned):
            name = m.lastgroup or ""
            order, rule = groups[name]
            start, end = m.span(name)
            if end > start:
                append((start - shift, order, end - shift, rule))
    if not candidates:
        return
    candidates.sort(key=_BY_POSITION)
    covered = 0
    levels = s.levels
    for anchor_at, order, end, rule in candidates:
        if anchor_at < covered:
            continue  # inside an earlier candidate
        level = levels.get(rule.id, rule.level)
        hit = None if level == "off" else _accept(text, s, rule, anchor_at, end)
        if hit is None and anchor_at < len(text):
            # A scanner reports only the first alternative that matched here; after a
            # rejection the later ones get their chance, as in a plain alternation.
            for alt_rule, body, same in pack.later(order, text[anchor_at]):
                if same:
                    alt_end = end
                else:
                    again = pack.single(body).match(text, anchor_at)
                    if again is None or again.end() <= anchor_at:
                        continue
                    alt_end = again.end()
                level = levels.get(alt_rule.id, alt_rule.level)
                if level == "off":
                    continue
                hit = _accept(text, s, alt_rule, anchor_at, alt_end)
                if hit is not None:
                    rule, end = alt_rule, alt_end
                    break
        if hit is None:
            if rule.shadow:
                covered = max(covered, end)
            continue
        covered = max(covered, end)
        found.append(_make(rule, level, text, hit, end, lines))


# (start, order): the sort key of a candidate; (start, end, rule) of a finding.  Taken in
# C: a megabyte has thousands of each.
_BY_POSITION = itemgetter(0, 1)
_BY_SPAN = attrgetter("start", "end", "rule")


def _accept(text: str, s: Setup, rule: Rule, start: int, end: int) -> int | None:
    """The start of the finding when the candidate is one: extended left, then validated."""
    if rule.extend_left:
        # Patterns anchor on a rare character ('@', '.', '-') for speed; the part of the
        # token before it is taken back here.
        ascii_chars, ext = _EXTENDERS.get(rule.extend_left) or _extender(rule.extend_left)
        while start > 0:
            # The class's ASCII members are stripped in C, a window at a time; a character
            # beyond ASCII is asked of the class itself.
            low = max(0, start - 64)
            kept = text[low:start].rstrip(ascii_chars)
            start = low + len(kept)
            if kept:
                if kept[-1] >= "\x80" and ext.match(kept[-1]):
                    start -= 1
                    continue
                break
    if rule.validator and not VALIDATORS[rule.validator](text, start, end, s.ctx):
        return None
    return start


def _extender(cls: str) -> tuple[str, re.Pattern[str]]:
    """The class's ASCII members (for ``str.rstrip``: cheaper than a regex call a
    character), and the class compiled, for the rest (kept in ``_EXTENDERS``)."""
    regex = compiled.compile(cls)
    got = _EXTENDERS[cls] = "".join(ch for ch in map(chr, range(128)) if regex.match(ch)), regex
    return got


# A plain dict, not lru_cache: asked once per candidate, thousands of times a megabyte.
_EXTENDERS: dict[str, tuple[str, re.Pattern[str]]] = {}


def run(text: str, s: Setup) -> list[Finding]:
    """Lint ``text`` with a resolved Setup (``lint`` resolves it for you)."""
    lines = _Lines(text)
    if text.isascii():
        return _run(text, s, lines)  # the common case reads as written
    from comms.lint.shadow import shadow

    copy = shadow(text)
    if copy is None:
        return _run(text, s, lines)
    if copy.same_length:
        # One character for one: offsets are those of the text as written already.
        found = _run(copy.text, s, lines)
    else:
        found = _remap(_run(copy.text, s, _Lines(copy.text)), copy, text, s, lines)
    raw = _raw(text, s, lines) if copy.dropped else []
    if not raw:
        return found
    found += raw
    found.sort(key=_BY_SPAN)
    return _dedupe(found)


def _remap(found: list[Finding], copy: Shadow, text: str, s: Setup, lines: _Lines) -> list[Finding]:
    """The findings on the normalised copy, at the offsets of the text as written."""
    out = []
    for f in found:
        start, end = copy.span(f.start, f.end)
        rule = s.rule(f.rule)
        shown = _shown(rule, text[start:end]) if rule is not None else f.match
        out.append(
            Finding(f.rule, f.level, f.message, start, end, 0, 0, shown, f.replacement, lines=lines)
        )
    return out


def _raw(text: str, s: Setup, lines: _Lines) -> list[Finding]:
    """Findings of the ``raw`` rules: matched on the text as written (the characters they
    look for are not in the normalised copy)."""
    found: list[Finding] = []
    for pack in s.packs:
        if pack.requires_kind and s.kind is None:
            continue
        for rule in pack.rules:
            if not rule.raw:
                continue
            level = s.levels.get(rule.id, rule.level)
            if level == "off":
                continue
            for pattern in rule.patterns:
                body = f"(?i:{pattern})" if rule.ignorecase else pattern
                for m in pack.single(body).finditer(text):
                    start, end = m.span()
                    if end > start and (
                        not rule.validator or VALIDATORS[rule.validator](text, start, end, s.ctx)
                    ):
                        found.append(_make(rule, level, text, start, end, lines, escape=True))
    return found


def _run(text: str, s: Setup, lines: _Lines) -> list[Finding]:
    found: list[Finding] = []
    packs = tuple(p for p in s.packs if not (p.requires_kind and s.kind is None))
    _scan_words(text, s, packs, lines, found)
    # One set of scanners for all active packs: each pass over the text has a fixed cost.
    everything = merged(packs)
    _scan(text, s, everything, "line", lines, found)
    _scan(text, s, everything, "any", lines, found)
    naming: list[tuple[Rule, str]] = []
    for pack in packs:
        for rule in pack.rules:
            level = s.levels.get(rule.id, rule.level)
            if level == "off":
                continue
            if rule.source is not None:
                if rule.source == "vocabulary":
                    search = _vocabulary_regex(s.vocabulary)
                    if search is not None:
                        from comms.lint.vocabulary import spans

                        for start, end in spans(search, text):
                            found.append(_make(rule, level, text, start, end, lines))
                    continue
                if rule.source == "named":
                    naming.append((rule, level))  # last: it skips what others found
                    continue
                words = s.roster if rule.source == "roster" else s.other_tenants
                regex = word_list_regex(words)
                if regex is not None:
                    for m in regex.finditer(text):
                        found.append(_make(rule, level, text, *m.span(), lines))
            elif rule.kind == "required" and _applies(rule, s):
                flags = re.IGNORECASE if rule.ignorecase else 0
                if not any(compiled.compile(p, flags).search(text) for p in rule.patterns):
                    found.append(_make(rule, level, text, 0, 0, lines))
            elif rule.kind == "metric" and rule.metric == "sentence_words":
                for m in _long_sentences(rule.max).finditer(text):
                    start, end = m.span("s")
                    if end - start > rule.max * 2 and _words_over(text[start:end], rule.max):
                        found.append(_make(rule, level, text, start, end, lines))
    for rule, level in naming:
        _named_in_text(text, s, rule, level, lines, found)
    found.sort(key=_BY_SPAN)
    return _dedupe(found)


_NAMING_RULES = ("Leak.DisplayName", "Leak.ChatUser", "Leak.PersonName", "Leak.ObjectName")


def _named_in_text(
    text: str, s: Setup, rule: Rule, level: str, lines: _Lines, found: list[Finding]
) -> None:
    """Where the text names again a person or user its own tracker or chat lines gave away
    (found by the rules in ``_NAMING_RULES``), or a person or cluster its cues give away
    (cues.py), outside the findings there already are."""
    from comms.lint.cues import names

    words = names(text, s.ctx.public_domains, s.ctx.audience)
    naming = [f for f in found if f.rule in _NAMING_RULES]
    if naming:
        from comms.lint.validators import named

        words |= {w for f in naming for w in named(f.rule, text[f.start : f.end])}
    if not words:
        return
    from comms.lint.vocabulary import names_regex, spans

    search = names_regex(tuple(sorted(words)))
    if search is None:
        return

    taken = sorted((f.start, f.end) for f in found if f.end > f.start)
    for start, end in spans(search, text):
        i = bisect_right(taken, (start, len(text) + 1)) - 1
        if i >= 0 and taken[i][0] <= start and end <= taken[i][1]:
            continue  # inside a finding already (the display name itself)
        found.append(_make(rule, level, text, start, end, lines))


def _vocabulary_regex(words: tuple[str, ...]) -> NameSearch | None:
    """The learned vocabulary's regex (its module loads only when there is one)."""
    if not words:
        return None
    from comms.lint.vocabulary import vocabulary_regex

    return vocabulary_regex(words)


@lru_cache(maxsize=8)
def _long_sentences(words: int) -> re.Pattern[str]:
    """Sentences (as ``_SENTENCE`` splits them) long enough to hold more than ``words`` words.

    A sentence of more than n words has at least 2n characters before its full stop (the
    stop itself may be the last "word" after a space).
    Shorter sentences are skipped inside the match (group ``s`` is the long sentence, None
    at the end of the text), so they cost no match object each.
    """
    if words < 1:
        return compiled.compile(f"(?P<s>{_SENTENCE})", re.MULTILINE)
    short = f"[^\\s.!?][^.!?\\n]{{0,{2 * words - 2}}}+(?:[.!?]+|$)"
    long = f"[^\\s.!?][^.!?\\n]{{{2 * words - 1},}}(?:[.!?]+|$)"
    return compiled.compile(f"(?:[\\s.!?]*+{short})*+[\\s.!?]*+(?:(?P<s>{long})|\\Z)", re.MULTILINE)


def _words_over(sentence: str, words: int) -> bool:
    """``len(sentence.split()) > words``, without splitting most sentences: a sentence
    with fewer than ``words`` spaces and no other whitespace (the space is the one
    whitespace character ``isprintable`` accepts) has at most ``words`` words."""
    if sentence.count(" ") < words and sentence.isprintable():
        return False
    return len(sentence.split()) > words


def _dedupe(found: list[Finding]) -> list[Finding]:
    """One finding per rule and span (a phrase listed twice, a block seen by two scans)."""
    out: list[Finding] = []
    seen: set[tuple[str, int, int]] = set()
    for f in found:
        key = (f.rule, f.start, f.end)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def lint(
    text: str,
    *,
    config: LintConfig | None = None,
    kind: str | None = None,
    audience: str | None = None,
    tenants: Sequence[str] = (),
    severity: str | None = None,
    status: str | None = None,
) -> list[Finding]:
    """Return the findings for ``text``, sorted by position.

    ``kind`` is a MessageKind value ("update", ...): the struct pack runs only when it is
    given.  ``audience`` is the tenant the message is for; every other name in ``tenants``
    (and in ``config.tenants``) is flagged.  ``severity``/``status`` decide whether a
    next-update time is required (open S1).  Never raises on any text.
    """
    return run(
        text,
        setup(
            config, kind=kind, audience=audience, tenants=tenants, severity=severity, status=status
        ),
    )


def blocking(findings: Sequence[Finding]) -> list[Finding]:
    """The findings that stop a send: the error-level ones."""
    return [f for f in findings if f.level == "error"]


def at_or_above(findings: Sequence[Finding], level: str) -> list[Finding]:
    """Findings whose level is ``level`` or more severe."""
    floor = LEVEL_RANK[level]
    return [f for f in findings if LEVEL_RANK.get(f.level, 0) >= floor]
