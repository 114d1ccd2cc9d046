"""Word lists the host rules decide with, shipped as data (lexicon.json) and read on first use.

- ``is_word(w)``: everyday English words and common product names.  A letters-and-digits
  token whose letters are not one of them (``mc104``, ``lvs1013``, ``ms-be1040``) is
  shaped like a machine name; ``deploy2002`` needs more digits to count.
- ``suffix_length(labels)``: the Public Suffix List's ICANN section.  A dotted name under
  a public suffix is a site on the internet; one whose suffix is not public
  (``api.svc.dc1.corpnet``) can only be an internal name.
- ``is_first_name(w)``, ``is_surname(w)``: given names and family names as people across
  the world write them in Latin letters (Faker's person data, every locale it has).  Many
  given names are everyday words too ("Mark", "Grace"), and wordfreq counts names as
  words ("marcus"): callers weigh both (cues.py).

All come from maintained packages at build time, never at lint time: importing
publicsuffixlist parses its list (~50 ms), wordfreq loads megabytes and Faker's person
data is spread over a hundred modules.  Regenerate after upgrading them (a test compares
the file with what they give):

    .venv/bin/pip install wordfreq publicsuffixlist faker
    .venv/bin/python -m comms.lint.lexicon
"""

from __future__ import annotations

import os
import re

DATA = os.path.join(os.path.dirname(__file__), "lexicon.json")
# Which parts have been read in this process (a test checks that a plain draft reads none).
_LOADED: set[str] = set()

# How common (Zipf frequency: log10 of uses per billion words) a word must be to count as
# everyday English, by length: nearly every pair of letters is somebody's abbreviation
# ("mc", "db" and "ms" are all above 3.7), so short words must be very common to count.
ZIPF_BY_LENGTH = {2: 5.0, 3: 4.3, 4: 3.6}
ZIPF_LONGER = 3.0
MAX_WORD = 20
# Names written with a version number glued on (ubuntu22, php8, ios17, python3): products,
# standards and calendar words that wordfreq ranks below the thresholds above.
PRODUCT_WORDS = (
    "aarch alma alpine amazonlinux amd android arm avx bionic bookworm bullseye buster "
    "centos chrome chromium clang cloudflare covid cuda cve cwe debian dotnet ecdsa ecma "
    "eks el erlang fedora fips firefox focal gcc gdpr gen ghsa gke golang gpt gtx hevc "
    "http https iis intel ios ipados ipv jammy java jdk jre jsx k kotlin kube llama llvm lts "
    "macos mariadb mssql mysql netbsd nginx nist nodejs noble npm nvme oauth openbsd "
    "openjdk openssh openssl opensuse oracle pcie pep perl php pixel playstation py "
    "python qt rfc rhel rockylinux rsa rtx ruby rust saml scala sha sles soc sql sqlite "
    "ssl swift tls tvos ubuntu utf vp vue watchos webpack win windows xbox xenial yarn "
    "zsh"
)


_DATA: dict[str, str] = {}


def _data() -> dict[str, str]:
    if not _DATA:
        import json

        with open(DATA, encoding="utf-8") as file:
            _DATA.update(json.load(file))
    return _DATA


class _Sorted:
    """One of lexicon.json's sorted, space-separated lists, asked ``word in list`` without
    being split: a set of 20,000 words costs ~3 ms to build, those of every list a tenth
    of a one-shot `comms lint` of a megabyte, which asks a few hundred words.  A word is
    searched in the stretch of the list that holds the words with its first character
    (found by bisection, once per character); answers are kept."""

    __slots__ = ("_bounds", "_known", "_text")

    def __init__(self, words: str) -> None:
        self._text = f" {words} "
        self._bounds: dict[str, tuple[int, int]] = {}
        self._known: dict[str, bool] = {}

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        known = self._known.get(word)
        if known is None:
            # A space would let a search run over two words of the list (which holds none).
            if not word or " " in word:
                known = False
            else:
                bounds = self._bounds.get(word[0])
                if bounds is None:
                    bounds = self._bounds[word[0]] = self._stretch(word[0])
                known = self._text.find(f" {word} ", *bounds) >= 0
            if len(self._known) >= _MAX_KNOWN:
                self._known.clear()  # a long-lived process asks about ever more words
            self._known[word] = known
        return known

    def _stretch(self, first: str) -> tuple[int, int]:
        """(start, end) of the part of the list whose words start with ``first``: from the
        space before the first of them to the space after the last."""
        return self._after(first, before=True), self._after(first, before=False) + 1

    def _after(self, first: str, *, before: bool) -> int:
        """Where the words that sort after ``first`` (``before``: from ``first`` on)
        start, less one: the offset of the space in front of them.  By bisection over
        offsets: the words are sorted, and a space belongs to the word after it."""
        text = self._text
        lo, hi = 0, len(text) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            key = text[text.rfind(" ", 0, mid + 1) + 1 : mid + 2][:1]  # the word's first
            if (key >= first) if before else (key > first):
                hi = mid
            else:
                lo = mid + 1
        return text.rfind(" ", 0, lo + 1)


_MAX_KNOWN = 50_000
_LISTS: dict[str, _Sorted] = {}


def _list(part: str) -> _Sorted:
    """One of lexicon.json's lists (read on first use)."""
    found = _LISTS.get(part)
    if found is None:
        found = _LISTS[part] = _Sorted(_data()[part])
    return found


def is_word(word: str) -> bool:
    """True for an everyday English word or a product name (``word`` in lower case)."""
    _LOADED.add("words")
    return word.isalpha() and word in _list("words")


def is_first_name(word: str) -> bool:
    """True for a given name, capitalised as written (``Priya``, ``Wojciech``)."""
    _LOADED.add("names")
    return word in _list("first_names")


def is_surname(word: str) -> bool:
    """True for a family name, capitalised as written (``Lindqvist``, ``Okafor``)."""
    _LOADED.add("names")
    return word in _list("last_names")


_SUFFIXES: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = None


def _suffixes() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    # Sets: the suffix list is small, and not every item of it is a single sorted word.
    global _SUFFIXES
    if _SUFFIXES is None:
        data = _data()
        _SUFFIXES = (
            frozenset(data["suffixes"].split()),
            frozenset(data["wildcards"].split()),
            frozenset(data["exceptions"].split()),
        )
        _LOADED.add("suffixes")
    return _SUFFIXES


def suffix_length(labels: list[str]) -> int:
    """How many of the (lower-case) ``labels`` form the public suffix: 1 for
    ``www.debian.org``, 2 for ``bbc.co.uk``, 0 when the last label is no public top-level
    domain (an internal name).  The PSL algorithm: the longest matching rule wins, an
    exception rule ``!www.ck`` gives back one label, a wildcard ``*.ck`` takes any label."""
    rules, wildcards, exceptions = _suffixes()
    n = len(labels)
    for i in range(n):
        candidate = ".".join(labels[i:])
        if candidate in exceptions:
            return n - i - 1
        if candidate in rules:
            return n - i
        if i + 1 < n and ".".join(labels[i + 1 :]) in wildcards:
            return n - i
    return 0


def build() -> str:
    """lexicon.json's text, from wordfreq and publicsuffixlist (both must be installed)."""
    import json
    from importlib.metadata import version

    import publicsuffixlist
    from wordfreq import top_n_list, zipf_frequency

    first, last = person_names()

    everyday = {
        w
        for w in top_n_list("en", 200_000)
        if re.fullmatch("[a-z]+", w)
        and 2 <= len(w) <= MAX_WORD
        and zipf_frequency(w, "en") >= ZIPF_BY_LENGTH.get(len(w), ZIPF_LONGER)
    }
    everyday |= set(PRODUCT_WORDS.split())

    path = os.path.join(os.path.dirname(publicsuffixlist.__file__), "public_suffix_list.dat")
    with open(path, encoding="utf-8") as file:
        psl = file.read()
    icann = psl[psl.index("===BEGIN ICANN DOMAINS===") : psl.index("===END ICANN DOMAINS===")]
    rules, wildcards, exceptions = set(), set(), set()
    for line in icann.splitlines():
        rule = line.strip().lower()
        if not rule or rule.startswith("//"):
            continue
        try:
            # Host names are matched as ASCII: internationalised rules as punycode.
            rule = ".".join(
                part if part in ("*", "!") or part.isascii() else part.encode("idna").decode()
                for part in rule.split(".")
            )
        except UnicodeError:
            continue
        if rule.startswith("!"):
            exceptions.add(rule[1:])
        elif rule.startswith("*."):
            wildcards.add(rule[2:])
        else:
            rules.add(rule)
    data = {
        "about": (
            "Generated by `python -m comms.lint.lexicon`; do not edit. words: wordfreq "
            f"{version('wordfreq')} English, Zipf >= {ZIPF_BY_LENGTH} by length else "
            f"{ZIPF_LONGER}, plus product names; suffixes: the ICANN section of the Public "
            f"Suffix List in publicsuffixlist {version('publicsuffixlist')}; names: the given "
            f"and family names of every locale of Faker {version('faker')}, in Latin letters."
        ),
        "words": " ".join(sorted(everyday)),
        "suffixes": " ".join(sorted(rules)),
        "wildcards": " ".join(sorted(wildcards)),
        "exceptions": " ".join(sorted(exceptions)),
        "first_names": " ".join(sorted(first)),
        "last_names": " ".join(sorted(last)),
    }
    return json.dumps(data, ensure_ascii=True, indent=0) + "\n"


# A name as written: a capital, then letters (Latin, with accents), maybe an apostrophe
# or a dash inside (O'Brien, Lopez-Fernandez).
_NAME = r"[A-Z][A-Za-z\u00c0-\u024f'’-]*[a-z\u00c0-\u024f]"


def person_names() -> tuple[set[str], set[str]]:
    """Given names and family names of every locale of Faker's person provider (its
    ``first_name*`` and ``last_name*`` lists, romanised ones included), in Latin letters."""
    import importlib
    import pkgutil

    from faker.providers import person

    first: set[str] = set()
    last: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        for attr in dir(provider):
            if not attr.startswith(
                ("first_name", "last_name", "first_romanized", "last_romanized")
            ):
                continue
            value = getattr(provider, attr)
            if isinstance(value, str) or not hasattr(value, "__iter__"):
                continue
            into = first if attr.startswith("first") else last
            for name in value:
                if (
                    isinstance(name, str)
                    and 2 <= len(name) <= MAX_WORD
                    and re.fullmatch(_NAME, name)
                ):
                    into.add(name)
    return first, last


if __name__ == "__main__":  # python -m comms.lint.lexicon: regenerate lexicon.json
    with open(DATA, "w", encoding="utf-8") as out:
        out.write(build())
    print(f"wrote {DATA}")
