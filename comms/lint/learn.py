"""Learn a vocabulary of internal names from internal documents (``comms lint learn``).

Runbooks, incident issues, postmortems and chat exports name the people, user names,
hosts, clusters and projects that a customer must never read.  The pattern rules catch
what has a shape (``db1001``, ``@alice``, ``gke-…``); a name like ``Hellman`` (a cluster)
or ``cblecker`` (a user) has none, but the documents give it away by where it stands:

- **handles**: after ``@``; as the speaker of a chat line (``alice [1:26 PM]``,
  ``<alice>``, ``10:02 alice:``); in a people field (``Attendees:``, an attendee list,
  ``Owner: alice``); as the local part of a person's address (``Name <alice@…>``);
- **people**: the display name before a handle (``Jane Doe @jdoe``, as issue trackers
  print a comment), after ``Created/Opened/Edited … by``, in a people field or list, as a
  chat speaker, thanked (``thanks, Niels Lunn``), as an action item's owner
  (``(Rasmus to follow up)``), as a speaker of meeting notes, and as the subject of a
  timeline entry that did what people do (``10:05 Audun evaluated …``; see cues.py); the
  surname of a learned full name (``Newdigate``) too, when it is no everyday word.  A
  first name that is also a word (``John``) is learned only from what the person did or
  said (or as a user name or a chat speaker), and only when the documents never write it
  in lower case;
- **names** (hosts, services, clusters, projects): beside ``cluster``, ``namespace``,
  ``project``, ``host``, ``resource group`` … (``the Hellman Kubernetes cluster``,
  ``cluster prod-eu``), after ``on``/``to``/``from`` when shaped like an identifier, a
  GKE kube context's project, and a family of identifiers with a machine-like part that
  recurs (``k8s-prow``, ``k8s-prow-build``, ``k8s-prow-builds``).

Precision first, because a learned name is an error in every customer message: nothing
is learned that is an everyday English or product word (lexicon.py), a well-known
technology (``TECHNOLOGY`` below), a word the packs already know (a tool, a jargon term),
a shape the pattern rules already catch, a name under the configured public domains or a
tenant's name (``public``), or an all-capital abbreviation.  A name learned from a weak
cue needs to be seen twice.  Pure: the caller reads the files and writes the result.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from comms.lint import lexicon
from comms.lint.cues import (
    CLUSTER,
    NOT_PEOPLE,
    OWNER,
    SPEAKER,
    TECHNOLOGY,
    THANKS,
    TIMELINE,
    list_after,
)

HANDLE = "handle"
PERSON = "person"
NAME = "name"
CATEGORIES = (HANDLE, PERSON, NAME)
TITLES = {
    HANDLE: "user names (after @, or the speaker of a chat line)",
    PERSON: "people",
    NAME: "hosts, services, clusters and projects",
}
# Cues strong enough on their own; any other needs the name seen twice.
STRONG = frozenset(
    [
        "@mention",
        "chat speaker",
        "display name",
        "by-line",
        "people field",
        "e-mail",
        "gke",
        "person in running text",
    ]
)


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words around a name that are no part of it ("Thanks Jane Doe @jdoe").
_LEAD = _set(
    "thanks thank cc hi hey hello dear ping pinged by with from to and or fyi via per "
    "kudos shout shoutout congrats"
)
# Abbreviations with digits that are technology, not machines ("k8s", "ipv4", "e2e").
_TECH_ABBREVIATIONS = _set(
    "k8s k3s i18n l10n a11y e2e ipv4 ipv6 http2 http3 utf8 utf16 sha1 sha256 sha512 md5 "
    "x86 x64 amd64 arm64 aarch64 ec2 s3 gp2 gp3 io1 io2 log4j oauth2 h2 p50 p90 p95 p99 "
    "5xx 4xx 3xx 2xx 1xx 2fa mfa"
)
_BROADCAST = _set("here channel all everyone everybody room group team")
# Generic infrastructure words: environments, teams and roles, never a name on their own.
_GENERIC = _set(
    "prod nonprod preprod stg staging gprd gstg gpre dev qa uat test sandbox int ops infra "
    "sre devops oncall on-call non pre"
)

_MENTION = re.compile(r"(?<![\w@./:+-])@([A-Za-z0-9_](?:[A-Za-z0-9_-]|\.(?=[A-Za-z0-9_]))*)")
_CHAT = (
    re.compile(
        r"^[ \t>]*([A-Za-z][\w.-]{1,38}(?:[ \t][A-Z][\w'.-]{1,24}){0,2})[ \t]+"
        r"\[\d{1,2}:\d\d(?::\d\d)?(?:[ \t]?[AaPp]\.?[Mm]\.?)?\]",
        re.MULTILINE,
    ),
    re.compile(
        r"^[ \t>]*(?:\[?\d{1,2}:\d\d(?::\d\d)?\]?[ \t]+)?<[@+%]?([A-Za-z][\w.|^`-]{1,30})>[ \t]",
        re.MULTILINE,
    ),
    re.compile(
        r"^[ \t>]*\[?\d{1,2}:\d\d(?::\d\d)?(?:[ \t]?[AaPp][Mm])?\]?[ \t]+(?:-[ \t]+)?"
        r"([a-z][\w.-]{1,30}):[ \t]",
        re.MULTILINE,
    ),
)
_CAP = r"[A-Z][\w'’.-]*"
_DISPLAY = re.compile(
    rf"(?:^|(?<=[ \t]{{2}})|(?<=\())[ \t]*((?:{_CAP}[ \t]){{1,3}}{_CAP})[ \t]+"
    r"(?:[^\w\s@]{1,2}[ \t]+)?(?:\[[\w .-]{1,20}\][ \t]+)?\(?@([A-Za-z0-9_][\w.-]*[A-Za-z0-9_])",
    re.MULTILINE,
)
_BY_LINE = re.compile(
    r"\b(?:Created|Written|Authored|Opened|Edited|Closed|Reopened|Reported|Assigned|"
    r"Reviewed|Approved|Merged)(?:[ \t]+[\w ]{0,24}?)?[ \t]+by:?[ \t]+"
    r"((?:[A-Z][\w'’-]+[ \t]){0,2}[A-Z][\w'’-]+)(?:[ \t]+<([\w.+-]+)@[\w.-]+>)?"
)
_FIELD = re.compile(
    r"^[ \t>*_|-]*(?:Authors?|Owners?|Reporter|Assignees?|Incident[ \t]+(?:Commander|Lead|"
    r"Manager)|Commander|Scribe|Comms(?:[ \t]+Lead)?|Communications[ \t]+Lead|On-?call|"
    r"Responders?|Participants|Attendees|Present|Contributors|Reviewers?|Created[ \t]+By)"
    r"\*{0,2}[ \t]*:\*{0,2}[ \t]*(.+)$",
    re.MULTILINE | re.IGNORECASE,
)
_PEOPLE_HEADING = re.compile(
    r"^#{1,6}[ \t]+(?:Attendees|Participants|People(?:[ \t]+involved)?|Responders|Present|"
    r"Authors?|Contributors|Incident[ \t]+(?:team|commander|responders))[ \t]*:?[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_TIMELINE = re.compile(TIMELINE, re.MULTILINE)
_THANKS = re.compile(THANKS)
_SPEAKER = re.compile(SPEAKER, re.MULTILINE)
_OWNER = re.compile(OWNER)
_CLUSTER_PAREN = re.compile(CLUSTER[2])
# Cues that name a person by what the text says they did or said: a first name that is
# also an everyday word ("John") counts from these when the documents never write it in
# lower case.
_DEED_CUES = frozenset(["timeline subject", "meeting notes", "action owner"])
_NOUN = (
    r"(?:clusters?|namespaces?|projects?|resource[ \t]+groups?|environments?|accounts?|"
    r"buckets?|hosts?|servers?|node[ \t]+pools?|databases?|instances?|VPC|subnets?|"
    r"workspaces?|tenants?)"
)
_TOKEN = r"[A-Za-z][\w.-]*[A-Za-z0-9]"
_BEFORE_NOUN = re.compile(
    rf"(?<![\w@#/.-])({_TOKEN})[ \t]+(?:(?:Kubernetes|k8s|EKS|GKE|AKS|Elasticsearch|logging|"
    rf"production|staging|prod)[ \t]+)?{_NOUN}\b"
)
_AFTER_NOUN = re.compile(
    rf"\b(?:cluster|namespace|project|resource[ \t]+group|environment|account|bucket|host|"
    rf"server|node|database|instance|VPC|subnet|workspace)[ \t]*[:=]?[ \t]+[`'\"]?({_TOKEN})"
    r"(?![\w@-]|\.\w)"
)
_PREPOSITION = re.compile(
    r"\b(?:on|to|from|in|into|against)[ \t]+[`'\"]?([a-z][a-z0-9]*(?:[-_][a-z0-9]+)+)(?![\w@/-]|\.\w)"
)
_GKE = re.compile(r"\bgke_([a-z][a-z0-9-]{4,61})_[a-z]+-[a-z]+\d{1,2}(?:-[a-z])?_([a-z0-9][\w-]*)")
_FAMILY = re.compile(r"(?<![\w@#/.-])([a-z][a-z0-9]*(?:-[a-z0-9]+)+)(?![\w@-]|\.\w)")
_WHOLE = r"(?<![\w#/.-]){}(?![\w@-]|\.\w)"
_SHAPE_STANDARD = re.compile(
    r"(?:cve|cwe|ghsa|rfc|iso|pep|ecma|fips|nist|kb|sp|pm|utf|sha|x|v)[-_]?\d|"
    r"(?:us|eu|ap|sa|ca|me|af|asia|europe|northamerica|southamerica|australia)-[a-z]+-?\d|"
    r"\d{4}-\d\d|v?\d+(?:[.-]\d+)+",
    re.IGNORECASE,
)


@dataclass
class Entry:
    """A learned name: its category, how often the documents use it, and why it was learned."""

    text: str
    category: str
    count: int = 0
    documents: int = 0
    cues: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``comms lint learn --format json``)."""
        return {
            "entry": self.text,
            "category": self.category,
            "count": self.count,
            "documents": self.documents,
            "cues": dict(self.cues.most_common()),
        }


class _Learner:
    def __init__(self, public: Iterable[str]) -> None:
        self.public = {w.lower() for p in public for w in re.split(r"[\s.\-_]+", p) if w}
        self.cues: dict[tuple[str, str], Counter[str]] = {}
        self.families: Counter[str] = Counter()
        self.family_docs: dict[str, set[int]] = {}
        self.lower: set[str] = set()

    def add(self, text: str, category: str, cue: str) -> None:
        text = " ".join(text.split()).strip(".,;:!?\"'`()[]")
        if text:
            self.cues.setdefault((text, category), Counter())[cue] += 1

    # -- cues ----------------------------------------------------------------------------

    def read(self, number: int, doc: str) -> None:
        for m in _MENTION.finditer(doc):
            self.add(m.group(1), HANDLE, "@mention")
        for regex in _CHAT:
            for m in regex.finditer(doc):
                name = m.group(1)
                self.add(name, PERSON if " " in name else HANDLE, "chat speaker")
        for m in _DISPLAY.finditer(doc):
            self._person(m.group(1), "display name")
        for m in _BY_LINE.finditer(doc):
            self._person(m.group(1), "by-line")
            if m.group(2):
                self.add(m.group(2), HANDLE, "e-mail")
        for m in _FIELD.finditer(doc):
            self._people(m.group(1))
        for m in _PEOPLE_HEADING.finditer(doc):
            for line in list_after(doc[m.end() :].splitlines(), 0):
                self._people(line)
        for m in _TIMELINE.finditer(doc):
            for name in m.groups():
                if name:
                    self.add(name, PERSON, "timeline subject")
        for m in _THANKS.finditer(doc):
            self._person(m.group(1), "thanks")
        speakers = [m.group(1) for m in _SPEAKER.finditer(doc)]
        if len(set(speakers)) >= 2:
            for name in speakers:
                self.add(name, PERSON, "meeting notes")
        for m in _OWNER.finditer(doc):
            self.add(m.group(1), PERSON, "action owner")
        for m in _CLUSTER_PAREN.finditer(doc):
            self.add(m.group(1), NAME, "before a noun")
        for regex, cue in ((_BEFORE_NOUN, "before a noun"), (_AFTER_NOUN, "after a noun")):
            for m in regex.finditer(doc):
                self.add(m.group(1), NAME, cue)
        for m in _PREPOSITION.finditer(doc):
            self.add(m.group(1), NAME, "after a preposition")
        for m in _GKE.finditer(doc):
            self.add(m.group(1), NAME, "gke")
        for rule, name in _found_by_context(doc):
            if rule == "Leak.PersonName":
                self._person(name, "person in running text")
            else:
                self.add(name, NAME, "beside its kind")
        for m in _FAMILY.finditer(doc):
            parts = m.group(1).split("-")
            root = "-".join(parts[:2])
            self.families[root] += 1
            self.family_docs.setdefault(root, set()).add(number)

    def _person(self, name: str, cue: str) -> None:
        words = name.split()
        while words and words[0].lower() in _LEAD:
            words = words[1:]
        if words:
            self.add(" ".join(words), PERSON, cue)

    def _people(self, value: str) -> None:
        """A people field's value: names, handles or user names, separated by commas."""
        for item in re.split(r"[,;/]|[ \t]+(?:and|&)[ \t]+", value):
            item = re.sub(r"\([^)]*\)|<[^>]*>|\[[^\]]*\]", " ", item).strip(" \t*_-")
            if not item:
                continue
            if item.startswith("@"):
                self.add(item[1:].split()[0], HANDLE, "people field")
            elif re.fullmatch(r"(?:[A-Z][\w'’-]+[ \t]+){1,2}[A-Z][\w'’-]+", item):
                self._person(item, "people field")
            elif re.fullmatch(r"[A-Za-z][\w.-]+", item):
                category = HANDLE if item[:1].islower() or not item.isalpha() else PERSON
                self.add(item, category, "people field")

    # -- decisions -----------------------------------------------------------------------

    def entries(self, docs: Sequence[str]) -> list[Entry]:
        totals = _occurrences({text for text, _ in self.cues}, docs)
        self.lower = {w for doc in docs for w in re.findall(r"[a-z]+", doc)}
        chosen: dict[str, Entry] = {}
        for (text, category), cues in self.cues.items():
            if self._keep(text, category, cues, totals.get(text, 0)):
                entry = chosen.setdefault(text, Entry(text, category))
                entry.cues.update(cues)
        for text, entry in list(chosen.items()):
            if entry.category == PERSON and " " in text:
                # The surname on its own; a first name alone may be a customer's ("Hi
                # Michal,"), so it is learned only from a cue of its own.
                for part in text.split()[-1:]:
                    if (
                        re.fullmatch(r"[A-Z][a-z]{3,}", part)
                        and part not in chosen
                        and self._unknown(part)
                    ):
                        chosen[part] = Entry(part, PERSON, cues=Counter({f"part of {text}": 1}))
        for root, count in self.families.items():
            recurs = count >= 3 or len(self.family_docs[root]) >= 2
            if root not in chosen and recurs and self._family(root):
                chosen[root] = Entry(root, NAME, cues=Counter({"identifier family": count}))
        self._count(chosen, docs)
        kept = [e for e in chosen.values() if e.count and not _caught(e.text)]
        kept.sort(key=lambda e: (CATEGORIES.index(e.category), -e.count, e.text.lower()))
        return kept

    def _keep(self, text: str, category: str, cues: Counter[str], total: int) -> bool:
        strong = any(c in STRONG for c in cues)
        if not strong and sum(cues.values()) < 2 and total < 2:
            return False  # a weak cue once, for a name written once
        if set(cues) == {"after a preposition"} and cues["after a preposition"] < 2:
            return False  # "to node-ipc" once: as likely a package as a host
        if category == HANDLE:
            # "@Katharine": a first name as a user name, when never a word in lower case.
            return self._handle(text) or (strong and self._proper_name(text))
        if category == PERSON:
            deeds = strong or any(c in _DEED_CUES for c in cues)
            return self._person_name(text, strong) or (deeds and self._proper_name(text))
        return self._name(text)

    def _proper_name(self, text: str) -> bool:
        """A first name that is also a word ("John", "Ross"), named by what the person did
        or said (or as a user or chat speaker), and never written in lower case in the
        documents ("Will" is: "will")."""
        return (
            re.fullmatch(r"[A-Z][a-z]{2,}", text) is not None
            and text.lower() not in self.lower
            and text.lower() not in NOT_PEOPLE
            and text.lower() not in TECHNOLOGY
            and text.lower() not in self.public
        )

    def _known(self, word: str) -> bool:
        """An everyday or product word (or its plural or -ed/-ing form), a technology, a
        generic infrastructure word, or a public or tenant name."""
        low = word.lower().strip("'’")
        if (
            low in TECHNOLOGY
            or low in _TECH_ABBREVIATIONS
            or low in _GENERIC
            or low in self.public
            or low in _BROADCAST
        ):
            return True
        forms = {low}
        for suffix in ("s", "es", "ed", "d", "ing", "er", "ers"):
            if low.endswith(suffix) and len(low) - len(suffix) >= 3:
                forms.add(low[: -len(suffix)])
        return any(lexicon.is_word(f) for f in forms)

    def _unknown(self, word: str) -> bool:
        return len(word) >= 3 and not self._known(word)

    def _handle(self, text: str) -> bool:
        if len(text) < 3 or text.lower() in self.public or text.lower() in TECHNOLOGY:
            return False
        parts = [p for p in re.split(r"[-_.]", text) if p]
        # "omame-gitlab", a person's user name on the company's own site, is a name;
        # "gitlab-org" (no other part a name) is the company's.
        own = [p for p in parts if p.lower() not in self.public]
        if len(own) < len(parts) and not any(
            p.isalpha() and len(p) >= 4 and not self._known(p) for p in own
        ):
            return False
        parts = own
        if text.isdigit() or _SHAPE_STANDARD.fullmatch(text):
            return False
        # A user name: digits or separators in it, or letters that are no word.
        return any(ch.isdigit() for ch in text) or any(
            not self._known(p) for p in parts if p.isalpha()
        )

    def _person_name(self, text: str, strong: bool) -> bool:
        words = text.split()
        if not 1 <= len(words) <= 4 or any(not w[:1].isupper() for w in words):
            return False
        if any(w.isupper() and len(w) > 1 for w in words):
            return False  # an abbreviation: "GKE EngProd", "AWS Support"
        lows = [w.lower().strip("'’.") for w in words]
        if any(low in self.public or low in TECHNOLOGY or low in _LEAD for low in lows):
            return False
        if len(words) == 1:
            return self._unknown(words[0]) and words[0].isalpha()
        # Two everyday words are a name from a strong cue only ("John Jarvis @jarv").
        return strong or any(not self._known(w) for w in words)

    def _name(self, text: str) -> bool:
        if len(text) < 3 or len(text) > 63 or _SHAPE_STANDARD.fullmatch(text):
            return False
        if text.isupper() and not any(ch.isdigit() for ch in text):
            return False  # an abbreviation: ALB, EKS, KIAM
        if text.isalpha() and text.islower():
            return False  # a plain lower-case word may be English the lexicon lacks
        if "." in text or text.lower() in TECHNOLOGY:
            return False  # a file or a host (the host rules decide those), a technology
        parts = [p for p in re.split(r"[-_]", text) if p]
        if any(p.lower() in self.public for p in parts):
            return False
        # Some part is a name: no word, technology, generic word or abbreviation, three
        # letters or more or with a digit (the "DB1" of "DB1 host").
        return any(not self._known(p) and (len(p) >= 3 or not p.isalpha()) for p in parts)

    def _family(self, root: str) -> bool:
        """A recurring identifier family: a part mixing letters and digits (k8s), and a
        part that is a name (prow), neither a standard nor a region."""
        parts = root.split("-")
        if _SHAPE_STANDARD.match(root) or any(p in self.public for p in parts):
            return False
        mixed = any(re.fullmatch(r"[a-z]+\d[a-z0-9]*|\d+[a-z][a-z0-9]*", p) for p in parts)
        named = any(p.isalpha() and len(p) >= 3 and not self._known(p) for p in parts)
        return mixed and named

    def _count(self, chosen: dict[str, Entry], docs: Sequence[str]) -> None:
        for doc in docs:
            for text, n in _occurrences(set(chosen), [doc]).items():
                entry = chosen.get(text)
                if entry is not None:
                    entry.count += n
                    entry.documents += 1


def _occurrences(names: set[str], docs: Sequence[str]) -> Counter[str]:
    """How often each name is written in the documents, as a whole token (a handle's '@'
    may come before it)."""
    from comms.lint.rules import trie_regex

    found: Counter[str] = Counter()
    # Single words apart from phrases: "Fenwright" counts inside "Odalys Fenwright" too.
    for group in ({n for n in names if n and " " not in n}, {n for n in names if " " in n}):
        if not group:
            continue
        regex = re.compile(_WHOLE.format("(" + trie_regex(sorted(group), lower=False) + ")"))
        for doc in docs:
            found.update(" ".join(m.group(1).split()) for m in regex.finditer(doc))
    return found


def _found_by_context(doc: str) -> list[tuple[str, str]]:
    """(rule, name) for each person or Kubernetes object the linter finds in ``doc`` by its
    context (Leak.PersonName, Leak.ObjectName): what it found in one document, the
    vocabulary then finds in every other."""
    from comms.lint.engine import lint
    from comms.lint.validators import named

    out = []
    for f in lint(doc):
        if f.rule in _BY_CONTEXT:
            names = named(f.rule, doc[f.start : f.end])
            for name in names[:1] if f.rule == "Leak.PersonName" else names:
                out.append((f.rule, name))
    return out


def _caught(text: str) -> bool:
    """True when the packs already find the whole name by themselves (a machine name, a
    tool, a jargon word): learning it again would only duplicate (or harden) that."""
    from comms.lint.engine import lint

    # A person's or an object's name is found by its context (a given name, a deed, a kind
    # beside it); the vocabulary finds it where nothing says what it is.
    return any(
        f.start == 0 and f.end >= len(text) and f.rule not in _BY_CONTEXT for f in lint(text)
    )


_BY_CONTEXT = frozenset(["Leak.PersonName", "Leak.ObjectName"])


def learn(documents: Iterable[str], *, public: Iterable[str] = ()) -> list[Entry]:
    """The internal names of ``documents`` (their texts), handles first, then people, then
    names, each the most used first.  ``public``: names never to learn (the allow-listed
    domains' names, the tenants' names), each matched by its words."""
    docs = list(documents)
    learner = _Learner(public)
    for number, doc in enumerate(docs):
        learner.read(number, doc)
    return learner.entries(docs)


def render(entries: Sequence[Entry], *, documents: int) -> str:
    """The vocabulary file's text: a header, then the entries by category, each with a
    comment saying how often and why (people may delete lines; comments are ignored)."""
    out = [
        "# comms lint vocabulary: internal names that must never reach a customer.",
        f"# Learned by `comms lint learn` from {documents} document(s); review it: delete a",
        "# line to stop flagging that name, add one to flag another.  One name a line,",
        "# matched case-sensitively as written (also with 's or a plural s); '#' starts a",
        '# comment.  Load it with `[lint] vocabulary = "<this file>"` in comms.toml.',
    ]
    for category in CATEGORIES:
        group = [e for e in entries if e.category == category]
        if not group:
            continue
        out += ["", f"# {TITLES[category]}"]
        width = min(40, max(len(e.text) for e in group))
        for e in group:
            why = ", ".join(cue for cue, _ in e.cues.most_common(3))
            places = f"{e.count}x in {e.documents} document{'s' if e.documents != 1 else ''}"
            out.append(f"{e.text:<{width}}  # {places}: {why}")
    return "\n".join(out) + "\n"
