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

from comms.lint.rules import trie_regex

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
    """One regex for all the names (compiled once per distinct vocabulary)."""
    names: set[str] = set()
    identifiers: set[str] = set()
    for word in words:
        word = " ".join(word.split())
        if not word:
            continue
        bucket = identifiers if _identifier(word) else names
        bucket.add(word)
        if word[:1].islower():
            bucket.add(word[:1].upper() + word[1:])
    alternatives = []
    if names:
        alternatives.append(trie_regex(sorted(names), lower=False))
    if identifiers:
        alternatives.append(
            "(?:" + trie_regex(sorted(identifiers), lower=False) + ")(?:-[a-z0-9]+)*"
        )
    if not alternatives:
        return None
    body = "|".join(f"(?:{a})" for a in alternatives)
    # A possessive ('s, or ' after an s) or a plural, then no more of a word, handle, path,
    # host or hyphenated compound.
    return re.compile(r"(?<![\w@#/.\\-])(?:" + body + r")(?:['’]s|(?<=s)['’]|e?s)?(?![\w@-]|\.\w)")
