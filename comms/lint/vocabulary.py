"""A vocabulary of internal names (``[lint] vocabulary``): read, and matched as written.

The file is plain text, one name a line, written by ``comms lint learn`` and edited by
people: ``#`` starts a comment (at the start of a line, or after a space), blank lines are
ignored.  A name is matched case-sensitively as written, between word boundaries, with:

- a possessive or a plural after it: ``Hellman's``, ``Jones'``, ``k8s-prow-builds``;
- a capital first letter for a name written in lower case (a sentence may start with it);
- for an identifier written in lower case with a digit, dash, '_' or '.' (``k8s-prow``,
  ``alejandrox1``), the names made from it with more dash-separated parts
  (``k8s-prow-build``).

It never matches inside a handle, a channel, a path, a host name or an e-mail address
(``@cblecker`` is the handle rule's, ``cblecker.example.org`` a host's).
"""

from __future__ import annotations

import re
from functools import lru_cache

from comms.lint import compiled

# typing costs ~3 ms to import, and only type checkers need it here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_ENTRY = 100  # characters: a longer line is no name
_IDENTIFIER = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
_COMMENT = re.compile(r"(?:^|\s)#.*$")


class VocabularyError(ValueError):
    """A vocabulary file line that cannot be a name; the message gives the line."""


def parse(text: str) -> tuple[str, ...]:
    """The names of a vocabulary file, in file order, each once."""
    seen: dict[str, None] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        entry = " ".join(_COMMENT.sub("", raw).split())
        if not entry:
            continue
        if len(entry) < 2 or len(entry) > MAX_ENTRY or not any(c.isalnum() for c in entry):
            raise VocabularyError(
                f"line {number}: {entry[:40]!r} is not a name (2 to {MAX_ENTRY} characters, "
                "with a letter or digit)"
            )
        seen.setdefault(entry, None)
    return tuple(seen)


def _identifier(word: str) -> bool:
    """A lower-case identifier with a digit or a separator: it may grow more dash parts."""
    return bool(_IDENTIFIER.fullmatch(word)) and not word.isalpha()


class NameSearch:
    """The searches for a set of names (``vocabulary_regex``, ``names_regex``): see ``spans``.

    A name may start only after a character that is no letter or digit and none of
    ``_@#/.-`` or a backslash (or at the start of the text).  Rather than trying the names
    at every letter of a long text (~30 ms a MiB), each search steps to such a character
    and tries them after it: a space (a literal, which the engine jumps between), or any
    other one (a class).  Each search reports every name that starts after its character,
    in a lookahead: ``spans`` merges them, leftmost first, the way ``re.finditer`` would
    have taken them.
    """

    __slots__ = ("searches",)

    def __init__(self, searches: tuple[re.Pattern[str], ...]) -> None:
        self.searches = searches


def _searches(words: tuple[str, ...]) -> tuple[str, ...] | None:
    """The sources of a NameSearch: the name regex (see the module docstring) behind a
    space, and behind any other character a name may follow."""
    ends = _forms(words)
    if not ends:
        return None
    # A possessive ('s, or ' after an s) or a plural, then no more of a word, handle, path,
    # host or hyphenated compound.
    name = "(?:" + _trie(ends) + r")(?:['’]s|(?<=s)['’]|e?s)?(?![\w@-]|\.\w)"
    # The first characters, tested before the trie's alternatives (one test, not one each).
    first = "[" + "".join(sorted({re.escape(form[0]) for form in ends})) + "]"
    after = f"(?={first})(?=({name}))"
    return " " + after, _OTHER + after


# The characters but a space that a name may follow: no ASCII letter or digit, no '_',
# '@', '#', '/', '.', backslash or '-' (``spans`` drops the letters and digits beyond
# ASCII: a class of ASCII characters tests faster than one that asks Unicode of each).
_OTHER = r"[^A-Za-z0-9_@#/.\\\- ]"


@lru_cache(maxsize=8)
def vocabulary_regex(words: tuple[str, ...]) -> NameSearch | None:
    """The searches for all the names (compiled once per distinct vocabulary, and kept in
    the store of compiled patterns when there is one)."""
    sources = _searches(words)
    return None if sources is None else NameSearch(tuple(map(compiled.compile, sources)))


def names_regex(words: tuple[str, ...]) -> NameSearch | None:
    """``vocabulary_regex`` for names found in one text (never kept in the store)."""
    sources = _searches(words)
    return None if sources is None else NameSearch(tuple(map(re.compile, sources)))


def _forms(words: tuple[str, ...]) -> dict[str, bool]:
    """Each name as matched (whitespace as one space; a name in lower case also with a
    capital first letter) -> whether it may grow more dash parts (an identifier)."""
    ends: dict[str, bool] = {}
    for word in words:
        word = " ".join(word.split())
        if not word:
            continue
        identifier = _identifier(word)
        for form in {word, word[:1].upper() + word[1:]} if word[:1].islower() else {word}:
            ends[form] = ends.get(form, False) or identifier
    return ends


_MORE_PARTS = "(?:-[a-z0-9]+)*"


def _trie(ends: dict[str, bool]) -> str:
    """A trie regex of the names, matched as written (whitespace: any run of it); where an
    identifier ends, more dash-separated parts may follow."""
    root: dict[str, Any] = {}
    for name, identifier in ends.items():
        node = root
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = node.get("", False) or identifier

    def emit(node: dict[str, Any]) -> str:
        alts = [
            (r"\s+" if ch == " " else re.escape(ch)) + emit(child)
            for ch, child in sorted(node.items())
            if ch
        ]
        if "" not in node:
            return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        end = _MORE_PARTS if node[""] else ""
        if not alts:
            return end
        return "(?:" + "|".join(alts) + ("|" + end if end else "") + ")" + ("" if end else "?")

    return emit(root)


def spans(search: NameSearch, text: str) -> list[tuple[int, int]]:
    """The names of a ``vocabulary_regex`` in ``text`` that start a token (nothing of a word,
    handle, channel, path, host or address right before them), leftmost first and never
    overlapping: (start, end) pairs, in order."""
    spaced, other = search.searches
    # A space before the text lets the first search see a name at offset 0.
    found = [(m.start(1) - 1, m.end(1) - 1) for m in spaced.finditer(" " + text)]
    for m in other.finditer(text):
        start = m.start(1)
        if text[start - 1] >= "\x80" and text[start - 1].isalnum():
            continue  # after a letter or digit beyond ASCII: inside a word
        found.append((start, m.end(1)))
    found.sort()
    out = []
    covered = 0
    for start, end in found:
        if start >= covered:
            out.append((start, end))
            covered = max(end, start + 1)
    return out
