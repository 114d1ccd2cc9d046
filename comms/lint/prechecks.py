"""One-character tests in front of a scanner's alternatives (see ``rules._Bucket``).

Python's regex engine tries the alternatives of an alternation one after another.  An
alternative that starts with a literal character or a character class is skipped after
one comparison when the character under the cursor does not fit it; any other costs a
full attempt (a saved state, its group's mark, its lookbehinds).  A scanner's alternatives
are named groups, so every one of them costs a full attempt at every occurrence of the
scanner's first character: ~1 µs for each of the 24,000 dashes of a MiB of incident text.

This module reads a pattern (parsed by ``re``'s own parser) and works out a class that
one character must belong to in every match:

- ``before(body)``: the character right before the match, from a lookbehind the pattern
  starts with or reaches at a fixed distance (``-(?<=[a-z]-)`` -> ``[a-z]``,
  ``\\d(?<![\\d.:-]\\d)`` -> ``[^\\d.:-]``, ``(?:SELECT(?<!\\wSELECT)…|…)`` -> ``[^\\w]``);
- ``first(body)``: the first character of the match (``[ \\t]*(?:```|~~~)`` ->
  ``[ \\t`~]``).

The scanner puts the class in front of the alternative's group, so the engine skips the
alternative with one comparison where the class does not fit.  A class is a necessary
condition only: where it fits, the alternative runs as written; so a scanner finds
exactly what it found without them.  Where the class says all that a lookbehind right
after the first character says (``\\d(?<![\\d.:-]\\d)``: the class is ``[^\\d.:-]``), the
scanner leaves that lookbehind out of the alternative (``without_before``): it would only
test the same character again.  None means "no such class": the alternative is left
as it is.  Only run when a scanner's source is built (kept in the store of compiled
patterns), never per text.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]

# typing costs ~3 ms to import, and only type checkers need it here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Cls = tuple[bool, tuple[tuple[Any, Any], ...]]  # (negated, items of an IN set)
    Cell = tuple[Any, Any] | None  # one character's element, None when not one simple test

# Flags that change what a class matches: such parts are left alone.
_BAD_FLAGS = re.IGNORECASE | re.ASCII | re.LOCALE
_CATEGORIES = {
    sre.CATEGORY_DIGIT: r"\d",
    sre.CATEGORY_NOT_DIGIT: r"\D",
    sre.CATEGORY_SPACE: r"\s",
    sre.CATEGORY_NOT_SPACE: r"\S",
    sre.CATEGORY_WORD: r"\w",
    sre.CATEGORY_NOT_WORD: r"\W",
}
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
_ZERO_WIDTH = (sre.AT, sre.ASSERT, sre.ASSERT_NOT)
_EMPTY: Cls = (False, ())


class _UnknownError(Exception):
    """The pattern holds something this reader does not follow."""


# Anything unexpected in a team's pattern only costs its alternative the test.
_SAFE = (_UnknownError, IndexError, KeyError, TypeError, ValueError, AttributeError)


def _parse(body: str) -> list[tuple[Any, Any]] | None:
    try:
        parsed = _parser.parse(body, 0)
    except (re.error, RecursionError, ValueError, TypeError):
        return None
    if parsed.state.flags & _BAD_FLAGS:
        return None
    return list(parsed.data)


def before(body: str) -> str | None:
    """A class the character before every match of ``body`` belongs to, or None."""
    seq = _parse(body)
    if seq is None:
        return None
    try:
        cls = _before(seq, [])
    except _SAFE:
        return None
    return None if cls is None else _source(cls)


# A first character (an escape, a class or a plain character), then a lookbehind that
# tests the character before it together with that same first character:
# "\\d(?<![\\d.:-]\\d)", "-(?<=[a-z0-9]-)".
_LEADING = (
    r"(\\.|\[(?:\\.|[^\]\\])+\]|[^\\\[\](){}|?*+.^$])\(\?<[=!]\[(?:\\.|[^\]\\])+\]\1\)(?![*+?{])"
)


def without_before(body: str, test: str | None) -> str:
    """``body`` without the lookbehind right after its first character when ``test`` (what
    ``before(body)`` found) is read from that lookbehind, and says all it does: given the
    first character, the lookbehind holds exactly when the character before fits
    ``test``.  The scanner tests that character in front of the alternative already, so
    testing it again costs every attempt a lookbehind for nothing."""
    if test is None:
        return body
    m = re.match(_LEADING, body)
    if m is None or before(m.group()) != test:
        return body
    return m.group(1) + body[m.end() :]


def first(body: str) -> str | None:
    """A class the first character of every match of ``body`` belongs to, or None (also
    when ``body`` may match the empty string)."""
    seq = _parse(body)
    if seq is None:
        return None
    try:
        cls, may_be_empty = _first(seq)
    except _SAFE:
        return None
    if may_be_empty or not cls[1]:
        return None
    return _source(cls)


def _class(cell: Cell) -> Cls | None:
    """The class of one character's element (None: any character, or not a class)."""
    if cell is None:
        return None
    op, av = cell
    if op is sre.LITERAL:
        return (False, ((sre.LITERAL, av),))
    if op is sre.NOT_LITERAL:
        return (True, ((sre.LITERAL, av),))
    if op is sre.IN:
        items = list(av)
        negated = bool(items) and items[0][0] is sre.NEGATE
        if negated:
            items = items[1:]
        for kind, value in items:
            if kind is sre.CATEGORY:
                if value not in _CATEGORIES:
                    return None
            elif kind not in (sre.LITERAL, sre.RANGE):
                return None
        return (negated, tuple(items))
    return None


def _cell(cls: Cls) -> Cell:
    """A class as a one-character element."""
    negated, items = cls
    return (sre.IN, [(sre.NEGATE, None), *items] if negated else list(items))


def _union(classes: list[Cls | None]) -> Cls | None:
    """One class for "any of these" (a negated class only when they are all the same)."""
    if classes and classes[0] is not None and all(c == classes[0] for c in classes):
        return classes[0]
    items: list[tuple[Any, Any]] = []
    for cls in classes:
        if cls is None or cls[0]:
            return None
        items += cls[1]
    return (False, tuple(items))


def _sub(av: Any) -> list[tuple[Any, Any]]:
    """The items of a SUBPATTERN (raising for flags that change classes) or ATOMIC_GROUP."""
    if isinstance(av, tuple):
        _group, add, _delete, sub = av
        if add & _BAD_FLAGS:
            raise _UnknownError
        return list(sub)
    return list(av)


def _cells(seq: list[tuple[Any, Any]]) -> tuple[list[Cell], bool]:
    """A fixed-width sequence as one entry per character (its one-character element, or
    None where it is part of something longer), and whether it holds zero-width tests.
    Raises _UnknownError when the width is not fixed."""
    cells: list[Cell] = []
    zero = False
    for op, av in seq:
        if op in _ZERO_WIDTH:
            zero = True
        elif op in (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY):
            cells.append((op, av))
        elif op is sre.SUBPATTERN or op is sre.ATOMIC_GROUP:
            inner, inner_zero = _cells(_sub(av))
            cells += inner
            zero = zero or inner_zero
        elif op in _REPEATS:
            low, high, sub = av
            if low != high:
                raise _UnknownError
            inner, inner_zero = _cells(list(sub))
            cells += inner * low
            zero = zero or inner_zero
        elif op is sre.BRANCH:
            branches = []
            for branch in av[1]:
                inner, inner_zero = _cells(list(branch))
                branches.append(inner)
                zero = zero or inner_zero
            if len({len(b) for b in branches}) != 1:
                raise _UnknownError
            # A class per character: any of the branches'.
            for column in zip(*branches, strict=True):
                cls = _union([_class(cell) for cell in column])
                cells.append(None if cls is None else _cell(cls))
        else:
            raise _UnknownError
    return cells, zero


def _before(seq: list[tuple[Any, Any]], consumed: list[Cell]) -> Cls | None:
    """The class of the character before the match, from the first lookbehind of ``seq``
    that tells it; ``consumed``: the elements matched from the start of the match up to
    ``seq``, one per character.  Raises _UnknownError past a part of variable width."""
    consumed = list(consumed)
    for op, av in seq:
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            if av[0] == -1:  # a lookbehind
                try:
                    cls = _lookbehind(op is sre.ASSERT_NOT, list(av[1]), consumed)
                except _UnknownError:
                    cls = None
                if cls is not None:
                    return cls
            continue
        if op is sre.AT:
            continue
        if op is sre.BRANCH:
            found = []
            for branch in av[1]:
                try:
                    found.append(_before(list(branch), consumed))
                except _UnknownError:
                    found.append(None)
            cls = _union(found)
            if cls is not None:
                return cls
        elif op is sre.SUBPATTERN or op is sre.ATOMIC_GROUP:
            cls = _before(_sub(av), consumed)
            if cls is not None:
                return cls
        consumed += _cells([(op, av)])[0]
    return None


def _lookbehind(negative: bool, sub: list[tuple[Any, Any]], consumed: list[Cell]) -> Cls | None:
    """What a lookbehind at ``len(consumed)`` characters into the match says of the
    character before the match."""
    cells, zero = _cells(sub)
    at = len(cells) - len(consumed) - 1  # that character's index in the lookbehind
    if at < 0:
        return None
    cls = _class(cells[at])
    if cls is None:
        return None
    if not negative:
        return cls
    # A negative lookbehind rules the character out only when the rest of it is sure to
    # match: nothing before that character, no zero-width test, and the very elements the
    # match consumed after it.
    rest = cells[at + 1 :]
    if at != 0 or zero or None in rest or rest != consumed:
        return None
    return (not cls[0], cls[1])


def _first(seq: list[tuple[Any, Any]]) -> tuple[Cls, bool]:
    """The class of the first character of a match of ``seq``, and whether ``seq`` may
    match the empty string.  Raises _UnknownError when that is not a simple class."""
    acc: Cls = _EMPTY
    for op, av in seq:
        if op in _ZERO_WIDTH:
            continue
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.IN):
            return _joined(acc, _class((op, av))), False
        if op in _REPEATS:
            low, _high, sub = av
            cls, empty = _first(list(sub))
        elif op is sre.SUBPATTERN or op is sre.ATOMIC_GROUP:
            low = 1
            cls, empty = _first(_sub(av))
        elif op is sre.BRANCH:
            low = 1
            cls, empty = _EMPTY, False
            for branch in av[1]:
                got, got_empty = _first(list(branch))
                cls = _joined(cls, got)
                empty = empty or got_empty
        else:
            raise _UnknownError  # any character, a back-reference, ...
        acc = _joined(acc, cls)
        if low and not empty:
            return acc, False
    return acc, True


def _joined(a: Cls, b: Cls | None) -> Cls:
    if b is None:
        raise _UnknownError
    if not a[1]:
        return b
    if not b[1]:
        return a
    got = _union([a, b])
    if got is None:
        raise _UnknownError
    return got


def _source(cls: Cls) -> str:
    negated, items = cls
    parts = []
    for kind, value in items:
        if kind is sre.LITERAL:
            parts.append(_escape(value))
        elif kind is sre.RANGE:
            parts.append(_escape(value[0]) + "-" + _escape(value[1]))
        else:
            parts.append(_CATEGORIES[value])
    return "[" + ("^" if negated else "") + "".join(parts) + "]"


def _escape(code: int) -> str:
    ch = chr(code)
    if ch.isascii() and ch.isalnum():
        return ch
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
