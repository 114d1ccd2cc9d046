"""Fix: apply the findings' replacements, tidy what is left, and re-lint until stable.

Edits go right to left in one pass (built left to right, which is the same thing without
quadratic copying); overlapping fixes are resolved in favour of the longest span, then the
most severe level.  Tidying only touches the places where something was removed: spaces
and punctuation left behind, a connecting word left dangling ("see ."), empty brackets, and
a sentence, list item or line left with no meaning.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from comms.lint.engine import LEVEL_RANK, Finding, Setup, run, setup
from comms.lint.rules import Rule

if TYPE_CHECKING:
    from comms.lint.config import LintConfig

MAX_PASSES = 4
_SPACE = " \t"
_BLANK = " \t\r\n"  # what a blank line is made of
_PAIRS = {"()", "[]", "{}", "<>", "``", '""', "''", "“”", "‘’", "**", "__"}
_CLOSERS = ".,;:!?)]}"
_DANGLING = re.compile(
    r"(?:^|(?<=[\s(]))(?:see|in|on|at|via|from|to|by|with|cc|ping|pinged|per|and|or|the|a|an|"
    r"of|for|contact|ask|email|e-mail|including|like|e\.g\.|i\.e\.|host|node|server|channel|"
    r"address|ip|ticket|issue|user|handle|account|instance|pod|cluster|in\s+the|on\s+the)"
    r"[ \t]*$",
    re.IGNORECASE,
)
_FILLER = frozenset(
    [
        "see",
        "cc",
        "contact",
        "ping",
        "pinged",
        "ask",
        "email",
        "via",
        "check",
        "per",
        "by",
        "with",
        "to",
        "from",
        "and",
        "or",
        "the",
        "a",
        "an",
        "in",
        "on",
        "at",
        "for",
        "of",
        "please",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "details",
        "more",
        "info",
        "information",
        "here",
        "there",
        "this",
        "that",
        "it",
        "also",
        "too",
        "link",
        "url",
        "host",
        "node",
        "server",
        "channel",
        "ticket",
        "issue",
        "thanks",
        "thank",
        "you",
        "hi",
        "hey",
        "team",
        "all",
        "folks",
        "cc'd",
    ]
)
# Between two stripped details: nothing but list glue ("web-03 and db1001", "a, b or c").
_GLUE = re.compile(r"[ \t]*(?:(?:,|and|or|&|/|\+)[ \t]*)*", re.IGNORECASE)
# A preposition whose object is the stripped detail ("on web-03", "from db1001").
_PREPOSITION = re.compile(
    r"(?:(?<=[\s(])|^)(?:on|in|at|from|to|via|across|into|onto|through|behind|by|with|for|"
    r"of)[ \t]+$",
    re.IGNORECASE | re.MULTILINE,
)
# After the object of a preposition: punctuation, the line end, or a verb, conjunction or
# preposition, not a noun it would qualify.
_OBJECT_END = re.compile(
    r"[ \t]*(?:[.,;:!?)\]|]|\r|\n|$|(?:is|are|was|were|has|have|had|will|would|can|cannot|"
    r"can't|could|should|may|might|must|did|does|do|and|or|but|to|for|since|after|before|"
    r"until|when|while|because|so|then|which|that|with|from|in|on|at|by|as|due|went|"
    r"failed|crashed|ran|returned|became|started|stopped|keeps?|kept|remains?|remained|"
    r"seems?|appears?)\b)",
    re.IGNORECASE,
)
# What introduces a trailing reference: ", see", "; cc", " - tracked in", or just ",".
_CLAUSE_LEAD = re.compile(
    r"(?:[,;]|[ \t][-–—])[ \t]*(?:(?:please[ \t]+)?(?:see(?:[ \t]+also)?|cc|ping(?:ed)?|"
    r"ref|re|(?:tracked|details|more(?:[ \t]+details)?|discussed)(?:[ \t]+in)?|per|via|in|on|"
    r"at)[ \t]+)?$",
    re.IGNORECASE,
)
# The strip ends its sentence: only a full stop, a closing bracket or the line end follows.
_CLAUSE_END = re.compile(r"[ \t]*(?:[.!?;)\]]|\r?\n|\r|$)")
_SENTENCE_STOP = re.compile(r"[.!?](?=[ \t])")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|[\r\n]")
# What may precede a removal that took a sentence's subject: a list marker, a greeting.
_HEAD_FILLER = re.compile(
    r"[ \t]*+(?:[-*+>•][ \t]+|\d+[.)][ \t]+)?+(?:(?:hi|hey|hello|thanks|thank[ \t]+you|fyi|cc|"
    r"team|all|folks|note|update)\b[ \t,:;!-]*+)*+",
    re.IGNORECASE,
)
_CONJUNCTION = re.compile(r"[ \t]*(?:and|or|but|nor|plus|&)(?:[ \t]+|$)", re.IGNORECASE)
# A sentence that starts with its verb (an auxiliary, a common verb, a past tense), maybe
# after a conjunction and a short place phrase.
_NO_SUBJECT = re.compile(
    r"[ \t]*(?:(?:and|or|but|nor|plus|&)[ \t]+)?"
    r"(?:(?:in|on|at|from|for|since|during|across|with|via|inside|behind)[ \t]+"
    r"[^\s,.;:!?]+(?:[ \t]+[^\s,.;:!?]+){0,2}?[ \t]+)?"
    r"(?:is|are|was|were|has|have|had|will|would|can|cannot|can't|could|should|may|might|"
    r"must|keeps?|kept|went|seems?|seemed|appears?|appeared|failed|fails|crashed|crash(?:es)?|"
    r"ran|runs?|returned|returns|became|becomes?|started|starts|stopped|stops|did|does|do|"
    r"isn't|aren't|wasn't|weren't|hasn't|haven't|didn't|doesn't|won't|[a-z]{2,}ed)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_MARKER_ONLY = re.compile(r"^[ \t]*(?:[-*+>|•]|\d+[.)])?[ \t:|,;-]*$")
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class FixResult:
    """The fixed text, what was removed or replaced, and what is still there.

    ``removed`` holds the applied findings; the first pass's offsets index the input text,
    a later pass's (rare: a fix that exposed another) index the text of that pass.
    """

    text: str
    removed: list[Finding] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when fixing changed something."""
        return bool(self.removed)

    def summary(self) -> dict[str, int]:
        """How many fixes each rule made, for the 'what was removed' report."""
        return dict(sorted(Counter(f.rule for f in self.removed).items()))


def fix(
    text: str,
    *,
    config: LintConfig | None = None,
    kind: str | None = None,
    audience: str | None = None,
    tenants: Sequence[str] = (),
    severity: str | None = None,
    status: str | None = None,
) -> FixResult:
    """Strip and replace every fixable finding, tidy, and re-lint.

    Idempotent (fixing the result changes nothing), leaves no fixable finding, and never
    adds a finding the input did not have: when dropping a sentence would (for example remove
    the only status line), it falls back to stripping the matched words alone, and a
    warning or suggestion whose fix took the only words a required check found is left
    as written.  (An error is always fixed: a leak goes even if it held those words.)
    """
    s = setup(
        config, kind=kind, audience=audience, tenants=tenants, severity=severity, status=status
    )
    before = run(text, s)
    result = _fix(text, before, s, conservative=False)
    if _introduces(before, result.remaining):
        result = _fix(text, before, s, conservative=True)
        keep = _evidence(before, result.remaining, s)
        if keep:
            result = _fix(text, before, s, conservative=True, keep=keep)
    return result


def _introduces(before: list[Finding], after: list[Finding]) -> bool:
    return bool(Counter(f.rule for f in after) - Counter(f.rule for f in before))


def _evidence(before: list[Finding], after: list[Finding], s: Setup) -> frozenset[str]:
    """The matched texts of non-error findings that hold what a newly missing required
    check looks for (lower case): fixing them would add that finding."""
    missing = Counter(f.rule for f in after) - Counter(f.rule for f in before)
    patterns = []
    for rule_id in missing:
        rule = s.rule(rule_id)
        if rule is not None and rule.kind == "required":
            flags = re.IGNORECASE if rule.ignorecase else 0
            patterns += [re.compile(p, flags) for p in rule.patterns]
    return frozenset(
        f.match.lower()
        for f in before
        if f.level != "error"
        and f.replacement is not None
        and any(p.search(f.match) for p in patterns)
    )


def _fix(
    text: str,
    findings: list[Finding],
    s: Setup,
    *,
    conservative: bool,
    keep: frozenset[str] = frozenset(),
) -> FixResult:
    removed: list[Finding] = []
    current = text
    for _ in range(MAX_PASSES):
        todo = [
            f
            for f in findings
            if f.replacement is not None
            and not (keep and f.level != "error" and f.match.lower() in keep)
        ]
        if not todo:
            break
        current, done = _apply(current, todo, s, conservative=conservative)
        removed.extend(done)
        findings = run(current, s)
    return FixResult(text=current, removed=removed, remaining=findings)


def _apply(
    text: str, todo: list[Finding], s: Setup, *, conservative: bool
) -> tuple[str, list[Finding]]:
    spans: list[tuple[int, int, Finding]] = []
    for f in todo:
        rule = s.rule(f.rule)
        start, end = f.start, f.end
        if rule is not None and rule.fix == "sentence" and not conservative:
            start, end = _sentence_bounds(text, start, end)
        elif rule is not None and rule.fix == "line":
            start, end = _line_bounds(text, start)[0], _line_bounds(text, end)[1]
            brk = _LINE_END.match(text, end)
            end = brk.end() if brk else end
        spans.append((start, end, f))
    chosen = _widen(text, _disjoint(spans), s)
    done = _inside(spans, chosen)
    pieces: list[str] = []
    markers: dict[int, bool] = {}  # where something was removed -> may a word dangle there
    pos = length = 0
    for start, end, f in chosen:
        pieces.append(text[pos:start])
        length += start - pos
        replacement = "" if (start, end) != (f.start, f.end) else (f.replacement or "")
        rule = s.rule(f.rule)
        if not replacement and not (rule is not None and rule.fix == "delete"):
            # A widened span already took the words that served it.
            markers[length] = markers.get(length, True) and start >= f.start
        pieces.append(replacement)
        length += len(replacement)
        pos = end
    pieces.append(text[pos:])
    out = "".join(pieces)
    low = len(out)
    for m in sorted(markers, reverse=True):
        at = min(m, low, len(out))
        out, low = _tidy(out, at, conservative=conservative, dangling=markers[m])
    done.sort(key=lambda f: (f.start, f.end, f.rule))
    return out, done


def _disjoint(spans: list[tuple[int, int, Finding]]) -> list[tuple[int, int, Finding]]:
    """The widest spans first (then the gravest), each kept unless it overlaps one kept
    already; in text order.  Only kept spans that start within the widest span's length
    before a span can reach into it, so those are found by bisect instead of checking
    every kept span: thousands of findings in a big text cost milliseconds, not seconds."""
    starts: list[int] = []
    kept: list[tuple[int, int, Finding]] = []
    widest = 0
    for span in sorted(spans, key=lambda x: (x[0] - x[1], -LEVEL_RANK[x[2].level], x[0])):
        start, end = span[0], span[1]
        near = kept[bisect_left(starts, start - widest) : bisect_left(starts, end)]
        if all(end <= c[0] or start >= c[1] for c in near):
            at = bisect_right(starts, start)
            starts.insert(at, start)
            kept.insert(at, span)
            widest = max(widest, end - start)
    return kept


def _inside(
    spans: list[tuple[int, int, Finding]], chosen: list[tuple[int, int, Finding]]
) -> list[Finding]:
    """The findings of ``spans`` that lie inside one of ``chosen`` (in text order; widened
    spans may overlap): the widest end among the chosen spans starting at or before a
    span's start tells, found by bisect."""
    starts = [c[0] for c in chosen]
    reach: list[int] = []
    for c in chosen:
        reach.append(max(reach[-1], c[1]) if reach else c[1])
    done = []
    for start, end, f in spans:
        at = bisect_right(starts, start)
        if at and reach[at - 1] >= end:
            done.append(f)
    return done


def _widen(
    text: str, chosen: list[tuple[int, int, Finding]], s: Setup
) -> list[tuple[int, int, Finding]]:
    """Grow stripped spans over the words that only served them.

    Neighbouring strips joined by a comma or a conjunction go as one ("web-03 and db1001");
    a preposition right before a strip goes with it ("Users on web-03 cannot" -> "Users
    cannot"); and a strip that ends its sentence takes the clause that introduced it
    (", see #inc-1" or " - cc @alice").  Replacements are never widened.
    """
    out: list[tuple[int, int, Finding]] = []
    for start, end, f in chosen:
        rule = s.rule(f.rule)
        strip = f.replacement == "" and rule is not None and rule.fix == "strip"
        strip = strip and (start, end) == (f.start, f.end)
        if (
            out
            and strip
            and out[-1][2].replacement == ""
            and _GLUE.fullmatch(text, out[-1][1], start)
        ):
            prev = out[-1]
            prev_rule = s.rule(prev[2].rule)
            if prev_rule is not None and prev_rule.fix == "strip":
                out[-1] = (prev[0], end, prev[2])
                continue
        if strip and rule is not None and (_identifier(rule) or _OBJECT_END.match(text, end)):
            # An address, id or handle is the whole object of its preposition; a name from
            # a word list may only qualify a noun ("at the Grafana dashboard": "at" stays).
            floor = out[-1][1] if out else 0
            lead = _PREPOSITION.search(text, max(floor, start - 24), start)
            if lead is not None:
                start = lead.start()
        out.append((start, end, f))
    # Clauses last: the merged span decides whether the strip ends its sentence.
    for k, (start, end, f) in enumerate(out):
        rule = s.rule(f.rule)
        if f.replacement != "" or rule is None or rule.fix != "strip":
            continue
        if not _CLAUSE_END.match(text, end):
            continue
        floor = out[k - 1][1] if k else 0
        lead = _CLAUSE_LEAD.search(text, max(floor, start - 40), start)
        if lead is not None:
            out[k] = (lead.start(), end, f)
    return out


def _identifier(rule: Rule) -> bool:
    """Rules that find identifiers (hosts, addresses, handles, ids, staff names)."""
    return rule.kind == "pattern" or rule.source is not None


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence around [start, end): from after the previous '. ' or line break to the
    next sentence end, with the spaces after it."""
    line_start = max(text.rfind("\n", 0, start), text.rfind("\r", 0, start)) + 1
    s = line_start
    for m in re.finditer(r"[.!?](?=[ \t])", text[line_start:start]):
        s = line_start + m.end()
    while s < start and text[s] in _SPACE:
        s += 1
    stop = re.compile(r"[.!?](?=\s|$)|(?=[\r\n])|$").search(text, end)
    e = stop.end() if stop else len(text)
    while e < len(text) and text[e] in _SPACE:
        e += 1
    return s, e


def _line_bounds(t: str, m: int) -> tuple[int, int]:
    start = max(t.rfind("\n", 0, m), t.rfind("\r", 0, m)) + 1
    found = _LINE_END.search(t, m)
    return start, found.start() if found else len(t)


def _tidy(t: str, m: int, *, conservative: bool, dangling: bool = True) -> tuple[str, int]:
    """Clean up around a removal at ``m``; return the text and the lowest index touched.

    ``dangling``: a connecting word left right before the removal may go ("see ." -> ".");
    never once punctuation has been taken away, or "sign in, see #1" would lose its "in".
    """
    low = m
    for _ in range(6):
        i = m
        while i > 0 and t[i - 1] in _SPACE:
            i -= 1
        j = m
        while j < len(t) and t[j] in _SPACE:
            j += 1
        at_line_end = j == len(t) or t[j] in "\r\n"
        # Empty brackets or quotes around the removal, and a Markdown link left as "[text]".
        if i > 0 and j < len(t) and t[i - 1] + t[j] in _PAIRS:
            pair = t[i - 1] + t[j]
            t = t[: i - 1] + t[j + 1 :]
            m = low = min(low, i - 1)
            if pair == "()" and m > 0 and t[m - 1] == "]":
                open_at = t.rfind("[", max(0, m - 200), m - 1)
                if open_at >= 0 and "\n" not in t[open_at:m]:
                    t = t[:open_at] + t[open_at + 1 : m - 1] + t[m:]
                    m = low = min(low, open_at)
            continue
        # A connecting word left before punctuation or the end of the line: "see ." -> ".".
        if dangling and (at_line_end or t[j] in _CLOSERS):
            d = _DANGLING.search(t, max(0, i - 16), i)
            if d and d.end() == i and d.start() < i:
                t = t[: d.start()] + t[i:]
                m = low = min(low, d.start())
                continue
        # Punctuation left doubled or leading: "a, , b" -> "a, b"; ", ." -> "."
        if i > 0 and t[i - 1] in ",;:" and (at_line_end or t[j] in _CLOSERS):
            t = t[: i - 1] + t[i:]
            m = low = min(low, i - 1)
            dangling = False
            continue
        if i > 0 and t[i - 1] in ".!?" and j < len(t) and t[j] in ".,;:" and t[j : j + 3] != "...":
            t = t[:j] + t[j + 1 :]
            continue
        if j < len(t) and t[j] in ",;:":
            left = _back_over(t, i, _SPACE)
            if not left or t[left - 1] in "\r\n([" or t[left - 1] in ".!?":
                t = t[:j] + t[j + 1 :]
                continue
        # Spaces: none before a closer or a line end, none after an opener, at most one.
        if j > i:
            if at_line_end or t[j] in _CLOSERS or (i > 0 and t[i - 1] in "([{"):
                t = t[:i] + t[j:]
                m = low = min(low, i)
                continue
            if i == 0 or t[i - 1] in "\r\n":
                if j - i == 1 or m == i:
                    t = t[:i] + t[j:]
                    m = low = min(low, i)
                    continue
            elif j - i > 1:
                t = t[:i] + " " + t[j:]
                m = low = min(low, i)
                continue
        break
    lost = False
    if _sentence_head(t, m):
        # The removal took the start of the sentence: a conjunction left first goes, and a
        # sentence left starting with its verb ("is down", "in us-east-1 are failing") has
        # lost its subject and goes as a whole (unless fixing conservatively).
        lost = not conservative and bool(_NO_SUBJECT.match(t, m)) and not _question(t, m)
        conj = _CONJUNCTION.match(t, m)
        if conj and not lost:
            t = t[:m] + t[conj.end() :]
    if not conservative:
        t, low = _drop_empty(t, m, low, lost_subject=lost)
    t = _capitalise(t, m)
    return t, low


def _back_over(t: str, end: int, chars: str) -> int:
    """Where the run of ``chars`` ending at ``end`` starts: ``len(t[:end].rstrip(chars))``
    without copying the text before it (a fix makes thousands of these calls)."""
    while end and t[end - 1] in chars:
        end -= 1
    return end


def _question(t: str, m: int) -> bool:
    """True when the sentence around ``m`` ends with '?' ("is that enough?" has a subject)."""
    stop = _SENTENCE_END.search(t, m)
    return stop is not None and stop.group() == "?"


def _sentence_head(t: str, m: int) -> bool:
    """True when only a list marker, a greeting or punctuation precedes ``m`` in its sentence."""
    ls = max(t.rfind("\n", 0, m), t.rfind("\r", 0, m)) + 1
    return bool(_HEAD_FILLER.fullmatch(t, _sentence_start(t, ls, m), m))


def _sentence_start(t: str, ls: int, m: int) -> int:
    """Where the sentence holding ``m`` starts, its line starting at ``ls``.  A full stop
    right before ``m`` counts when a space follows it (the removal's own space)."""
    s = ls
    for found in _SENTENCE_STOP.finditer(t, ls, min(len(t), m + 1)):
        if found.start() < m:
            s = found.end()
    while s < m and t[s] in _SPACE:
        s += 1
    return s


def _drop_empty(t: str, m: int, low: int, *, lost_subject: bool = False) -> tuple[str, int]:
    """Drop the sentence around ``m`` if only filler words are left (or it lost its
    subject), then an emptied line."""
    ls, le = _line_bounds(t, m)
    s = _sentence_start(t, ls, m)
    stop = re.compile(r"[.!?](?=[ \t]|$)").search(t, m, le)
    e = stop.end() if stop else le
    while s < e and t[s] in _SPACE:
        s += 1  # the space before the sentence belongs to the one before it
    sentence = t[s:e]
    words = [w.lower() for w in _WORD.findall(sentence)]
    meaningless = lost_subject or all(w in _FILLER for w in words)
    if sentence.strip() and meaningless and not _MARKER_ONLY.match(sentence):
        while e < le and t[e] in _SPACE:
            e += 1
        while s > ls and t[s - 1] in _SPACE and e == le:
            s -= 1
        t = t[:s] + t[e:]
        low = min(low, s)
        ls, le = _line_bounds(t, s)
    if _MARKER_ONLY.match(t[ls:le]) and (ls > 0 or le < len(t)):
        # The line is now empty or a bare list marker: remove it with its line break.
        brk = _LINE_END.match(t, le)
        if brk:
            t = t[:ls] + t[brk.end() :]
        else:
            prev = re.search(r"(?:\r\n|\r|\n)$", t[max(0, ls - 4) : ls])
            cut = max(0, ls - 4) + prev.start() if prev else ls
            t = t[:cut]
            ls = cut
        low = min(low, ls)
        # Do not leave two blank lines where there was one.
        tail = t[_back_over(t, ls, _BLANK) : ls]  # where a match of the search can be
        if re.search(r"(?:\r?\n|\r)[ \t]*(?:\r?\n|\r)[ \t]*$", tail) and re.match(
            r"[ \t]*(?:\r?\n|\r|$)", t[ls:]
        ):
            brk2 = _LINE_END.search(t, ls)
            if brk2:
                t = t[:ls] + t[brk2.end() :]
    return t, low


def _capitalise(t: str, m: int) -> str:
    """Start a sentence with a capital when the removal took its first word."""
    j = m
    while j < len(t) and t[j] in _SPACE:
        j += 1
    if j >= len(t) or not t[j].islower():
        return t
    b = _back_over(t, m, _SPACE)  # t[:b] is the text before, trailing spaces stripped
    if b and t[b - 1] in "\r\n":
        # After a line break only a paragraph start or a finished sentence starts a sentence.
        r = b
        while r and t[r - 1].isspace():
            r -= 1
        if (
            r
            and t[r - 1] not in ".!?:"
            and not re.search(r"(?:\r?\n|\r)[ \t]*(?:\r?\n|\r)$", t[_back_over(t, b, _BLANK) : b])
        ):
            return t
    elif b and t[b - 1] not in ".!?":
        return t
    word = _WORD.match(t, j)
    if (
        not word
        or any(ch.isupper() for ch in word.group()[1:])
        or t[word.end() : word.end() + 1] in (":", "/", ".", "@", "_")
    ):
        return t  # "iPhone", "eBay", "https://", "file.txt": leave the word's own casing alone
    return t[:j] + t[j].upper() + t[j + 1 :]
