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
from collections.abc import Iterator
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


@lru_cache(maxsize=8)
def vocabulary_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for all the names (compiled once per distinct vocabulary, and kept in the
    store of compiled patterns when there is one)."""
    source = vocabulary_source(words)
    return None if source is None else compiled.compile(source)


def names_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """``vocabulary_regex`` for names found in one text (never kept in the store)."""
    source = vocabulary_source(words)
    return None if source is None else re.compile(source)


def vocabulary_source(words: tuple[str, ...]) -> str | None:
    """The regex source for the names (see the module docstring), or None for none.

    One trie over every name, so that the pattern starts with a choice of first letters:
    the engine then jumps between them instead of trying each position of a long text.
    What may come before a name is checked by ``finditer``.
    """
    ends: dict[str, bool] = {}  # name -> may grow more dash parts (an identifier)
    for word in words:
        word = " ".join(word.split())
        if not word:
            continue
        identifier = _identifier(word)
        for form in {word, word[:1].upper() + word[1:]} if word[:1].islower() else {word}:
            ends[form] = ends.get(form, False) or identifier
    if not ends:
        return None
    # A possessive ('s, or ' after an s) or a plural, then no more of a word, handle, path,
    # host or hyphenated compound.
    return "(?:" + _trie(ends) + r")(?:['’]s|(?<=s)['’]|e?s)?(?![\w@-]|\.\w)"


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


def finditer(regex: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """The matches of a ``vocabulary_regex`` that start a token: nothing of a word, handle,
    channel, path, host or address right before them."""
    search = regex.search
    pos = 0
    while True:
        m = search(text, pos)
        if m is None:
            return
        start = m.start()
        if start and (text[start - 1].isalnum() or text[start - 1] in _NOT_BEFORE):
            pos = start + 1  # inside a longer token: a name may still start further on
            continue
        yield m
        pos = max(m.end(), start + 1)


_NOT_BEFORE = frozenset("_@#/.\\-")
