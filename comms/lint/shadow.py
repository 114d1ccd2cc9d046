"""The text as a reader sees it: the copy the rules are matched on.

A token with a zero-width space inside, an address with a joiner in it, a host name with a
soft hyphen or a key with a Cyrillic letter reads like the plain token and must be found
like it.  ``shadow(text)`` returns a copy where

- format characters (Unicode category Cf: zero-width spaces and joiners, the soft hyphen,
  bidi embeddings, overrides and isolates, the byte-order mark, tag characters) are removed;
- characters whose NFKC form is a single ASCII character (full-width letters and digits,
  mathematical letters, superscript digits, no-break and other spaces) and the Latin
  ligatures take that form (NFKC forms that are not ASCII do not help matching, and
  "…" stays one character);
- Cyrillic and Greek letters that look like Latin ones become those, inside a token that
  also holds an ASCII letter or digit ("glрat-", "АKIA"): a word written wholly in another
  script is left alone;

with a map from offsets in the copy back to the original, so that findings (and what
``fix`` strips) are spans of the original text, invisible characters included.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import cache

# Look-alikes seen in homograph attacks (Unicode's confusables.txt, the common Cyrillic and
# Greek entries): letter -> the Latin letter it passes for.
CONFUSABLES = {
    "\u0430": "a",  # cyrillic small letter a
    "\u0435": "e",  # cyrillic small letter ie
    "\u0456": "i",  # cyrillic small letter byelorussian-ukrainian i
    "\u0458": "j",  # cyrillic small letter je
    "\u043e": "o",  # cyrillic small letter o
    "\u0440": "p",  # cyrillic small letter er
    "\u0441": "c",  # cyrillic small letter es
    "\u0443": "y",  # cyrillic small letter u
    "\u0445": "x",  # cyrillic small letter ha
    "\u0455": "s",  # cyrillic small letter dze
    "\u0501": "d",  # cyrillic small letter komi de
    "\u051b": "q",  # cyrillic small letter qa
    "\u051d": "w",  # cyrillic small letter we
    "\u04bb": "h",  # cyrillic small letter shha
    "\u04cf": "l",  # cyrillic small letter palochka
    "\u04af": "y",  # cyrillic small letter straight u
    "\u043a": "k",  # cyrillic small letter ka
    "\u0410": "A",  # cyrillic capital letter a
    "\u0412": "B",  # cyrillic capital letter ve
    "\u0415": "E",  # cyrillic capital letter ie
    "\u0406": "I",  # cyrillic capital letter byelorussian-ukrainian i
    "\u0408": "J",  # cyrillic capital letter je
    "\u041a": "K",  # cyrillic capital letter ka
    "\u041c": "M",  # cyrillic capital letter em
    "\u041d": "H",  # cyrillic capital letter en
    "\u041e": "O",  # cyrillic capital letter o
    "\u0420": "P",  # cyrillic capital letter er
    "\u0421": "C",  # cyrillic capital letter es
    "\u0422": "T",  # cyrillic capital letter te
    "\u0423": "Y",  # cyrillic capital letter u
    "\u0425": "X",  # cyrillic capital letter ha
    "\u0405": "S",  # cyrillic capital letter dze
    "\u051a": "Q",  # cyrillic capital letter qa
    "\u051c": "W",  # cyrillic capital letter we
    "\u04ae": "Y",  # cyrillic capital letter straight u
    "\u04c0": "I",  # cyrillic letter palochka
    "\u03b1": "a",  # greek small letter alpha
    "\u03bf": "o",  # greek small letter omicron
    "\u03bd": "v",  # greek small letter nu
    "\u03c1": "p",  # greek small letter rho
    "\u03b9": "i",  # greek small letter iota
    "\u03ba": "k",  # greek small letter kappa
    "\u03c5": "u",  # greek small letter upsilon
    "\u03c7": "x",  # greek small letter chi
    "\u03f2": "c",  # greek lunate sigma symbol
    "\u0391": "A",  # greek capital letter alpha
    "\u0392": "B",  # greek capital letter beta
    "\u0395": "E",  # greek capital letter epsilon
    "\u0396": "Z",  # greek capital letter zeta
    "\u0397": "H",  # greek capital letter eta
    "\u0399": "I",  # greek capital letter iota
    "\u039a": "K",  # greek capital letter kappa
    "\u039c": "M",  # greek capital letter mu
    "\u039d": "N",  # greek capital letter nu
    "\u039f": "O",  # greek capital letter omicron
    "\u03a1": "P",  # greek capital letter rho
    "\u03a4": "T",  # greek capital letter tau
    "\u03a5": "Y",  # greek capital letter upsilon
    "\u03a7": "X",  # greek capital letter chi
    "\u03f9": "C",  # greek capital lunate sigma symbol
    "\u0131": "i",  # latin small letter dotless i
    "\u0251": "a",  # latin small letter alpha
}
_BLOCK = 1024  # the text is checked for non-ASCII characters a block at a time
_NON_ASCII = r"[^\x00-\x7f]"
_CACHE: dict[str, str | None] = {}
_DROP = ""  # the replacement of a character the copy leaves out


def _replacement(ch: str) -> str | None:
    """What the copy has for a non-ASCII character: None (itself), "" (dropped), or text.
    Look-alikes are returned as themselves here (they depend on the token)."""
    got = _CACHE.get(ch, ch)
    if got is not ch:
        return got
    import unicodedata  # only for texts with non-ASCII characters

    if unicodedata.category(ch) == "Cf":
        got = _DROP
    else:
        norm = unicodedata.normalize("NFKC", ch)
        if norm != ch and norm.isascii() and (len(norm) == 1 or 0xFB00 <= ord(ch) <= 0xFB06):
            got = norm
        else:
            got = None
    _CACHE[ch] = got
    return got


def _in_latin_token(text: str, i: int) -> bool:
    """True when the token around ``i`` (letters, digits, '-', '_', '.') has an ASCII
    letter or digit, so a look-alike at ``i`` is posing as a Latin letter."""
    lo = max(0, i - 64)
    j = i - 1
    while j >= lo and (text[j].isalnum() or text[j] in "-_."):
        if text[j].isascii() and text[j].isalnum():
            return True
        j -= 1
    hi = min(len(text), i + 64)
    j = i + 1
    while j < hi and (text[j].isalnum() or text[j] in "-_." or ord(text[j]) > 127):
        if text[j].isascii() and text[j].isalnum():
            return True
        j += 1
    return False


class Shadow:
    """A normalised copy of a text and the way back to the original's offsets.

    ``same_length`` is True when every change replaced one character by one: offsets are
    then the same in both texts.  Otherwise ``span`` maps a span of the copy to the span of
    the original it was made from.
    """

    __slots__ = ("_i", "_k", "_s", "dropped", "same_length", "text")

    def __init__(self, text: str, seg_s: list[int], seg_k: list[int], seg_i: list[int]) -> None:
        self.text = text
        self._s = seg_s  # where each changed character's replacement starts in the copy
        self._k = seg_k  # its length there (0: dropped)
        self._i = seg_i  # the changed character's offset in the original
        self.same_length = all(k == 1 for k in seg_k)
        self.dropped = 0 in seg_k  # characters were left out (for the raw rules)

    def _char(self, x: int) -> tuple[int, int]:
        """The original span of the character at offset ``x`` of the copy."""
        j = bisect_right(self._s, x) - 1
        if j < 0:
            return x, x + 1
        s, k, i = self._s[j], self._k[j], self._i[j]
        if x < s + k:
            return i, i + 1
        o = i + 1 + (x - s - k)
        return o, o + 1

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original for [start, end) of the copy.  Characters dropped
        inside the span belong to it; those at its edges do not."""
        if self.same_length:
            return start, end
        if start >= len(self.text):
            n = len(self.text)
            tail = self._char(n - 1)[1] if n else 0
            return tail, tail
        a = self._char(start)[0]
        if end <= start:
            return a, a
        return a, self._char(end - 1)[1]


def shadow(text: str) -> Shadow | None:
    """The copy of ``text`` that the rules see, or None when it reads exactly as written
    (always for ASCII text; checking costs ~1 ms per MiB of mostly ASCII text)."""
    if text.isascii():
        return None
    changed: list[tuple[int, str]] = []
    n = len(text)
    for a in range(0, n, _BLOCK):
        if text[a : a + _BLOCK].isascii():
            continue
        for m in _compiled(_NON_ASCII).finditer(text, a, min(n, a + _BLOCK)):
            i = m.start()
            ch = text[i]
            rep = _replacement(ch)
            if rep is None:
                latin = CONFUSABLES.get(ch)
                if latin is None or not _in_latin_token(text, i):
                    continue
                rep = latin
            changed.append((i, rep))
    if not changed:
        return None
    pieces: list[str] = []
    seg_s: list[int] = []
    seg_k: list[int] = []
    seg_i: list[int] = []
    pos = length = 0
    for i, rep in changed:
        pieces.append(text[pos:i])
        length += i - pos
        seg_s.append(length)
        seg_k.append(len(rep))
        seg_i.append(i)
        pieces.append(rep)
        length += len(rep)
        pos = i + 1
    pieces.append(text[pos:])
    return Shadow("".join(pieces), seg_s, seg_k, seg_i)


# The format characters (category Cf) of Unicode 15, as Leak.InvisibleCharacter lists them.
_FORMAT = (
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)


def escape_invisible(value: str) -> str:
    """``value`` with its format characters written as <U+200B>, for showing a match
    without letting a bidi override or a zero-width space act on the reader's screen."""
    if value.isascii():
        return value
    return _compiled(_FORMAT).sub(lambda m: f"<U+{ord(m.group()):04X}>", value)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """Compiled on first use: ASCII texts, the common case, never need these (kept in the
    store of compiled patterns when there is one)."""
    from comms.lint import compiled

    return compiled.compile(pattern)
