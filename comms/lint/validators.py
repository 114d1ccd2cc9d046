"""Named validators for ``pattern`` rules: a regex finds a candidate, a validator decides.

A validator is ``f(text, start, end, ctx) -> bool``: True keeps the candidate as a finding.
Packs name them (``validator = "ip"``), so a rule file never carries code.  They stay pure:
the context carries everything configured (public domains, support addresses, tenants).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from comms.lint.secrets import is_secret

# typing costs ~3 ms to import, and only type checkers need it here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

# hosts.py (and the word lists behind it) is imported by the validators that need it, on
# their first candidate: a draft without a dotted name or a machine number never loads it.
_HOSTS: list[ModuleType] = []


def _hosts() -> Any:
    if not _HOSTS:
        from comms.lint import hosts

        _HOSTS.append(hosts)
    return _HOSTS[0]


class _Lazy:
    """A regex compiled on first use: validators only run on candidates, and compiling the
    dozen regexes below at import would cost every process a few milliseconds."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags

    def __getattr__(self, name: str) -> Any:
        from comms.lint import compiled

        regex = compiled.compile(self.pattern, self.flags)
        # Bind the compiled methods on the instance: later calls skip __getattr__.
        for method in ("match", "search", "fullmatch"):
            setattr(self, method, getattr(regex, method))
        return getattr(regex, name)


_URL_HOST: Any = _Lazy(r"^[a-z][a-z0-9+.-]*://(?:[^/@\s]*@)?(\[[0-9a-f:.]+\]|[^/:?#\s]+)", re.I)
_HEX_COLOUR: Any = _Lazy(r"#(?:[0-9a-f]{3}|[0-9a-f]{6})", re.I)
# Jira-like keys that are public standards, not tickets.
_NOT_TICKETS = frozenset(
    [
        "COVID",
        "UTF",
        "SHA",
        "AES",
        "RSA",
        "ISO",
        "RFC",
        "CVE",
        "CWE",
        "GHSA",
        "HTTP",
        "TLS",
        "SSL",
        "IPV",
        "MPEG",
        "MP",
        "GPT",
        "PEP",
        "ECMA",
        "ES",
        "IEEE",
        "SOC",
        "PCI",
        "FIPS",
        "ANSI",
        "ASCII",
        "UTF8",
        "X",
        "AVX",
        "DDR",
        "LTE",
        "MD",
        "SHA1",
        "SHA2",
        "SHA3",
        "IE",
        "WCAG",
        "ID",
        "TOP",
        "EC",
        "US",
        "EU",
        "UK",
        "COVID19",
        "RAID",
        "SARS",
        "H",
    ]
)
_ZONE = (
    r"\s*(?:\(\s*)?(?:UTC|GMT|Z\b|[ECMPA][SD]T\b|[ECMA]E[SD]?T\b|BST|IST|JST|KST|SGT|HKT|"
    r"AEST|AEDT|ACST|NZST|NZDT|WIB|CST|CET|CEST|EET|EEST|WET|WEST|MSK|BRT|ART|"
    r"(?:UTC|GMT)?\s?[+\-−]\d{1,2}(?::?\d{2})?\b|[A-Z][a-z]+/[A-Z][A-Za-z_]+)"
)
_TIME_TAIL = (
    r"\s*(?:-|–|—|to|until|and|through)"
    r"\s*(?:[01]?\d|2[0-3])(?::[0-5]\d){1,2}(?:\s?[ap]\.?m\.?)?"
)
# A zone after a clock time, or after the end of the range it starts ("13:00-17:00 UTC"):
# the range's end, when there is one, is taken for good (atomic), as a match of its own
# would be, and the zone must follow it.
_ZONE_AFTER: Any = _Lazy(f"(?>(?i:{_TIME_TAIL})?){_ZONE}")
_HEDGE: Any = _Lazy(
    r"\b(?:expect|estimate|anticipate|approximately|around|about|aim|target|hope|ETA|"
    r"projected|likely)",
    re.IGNORECASE,
)


_DIGITS: Any = _Lazy(r"\d+")
_PROJECT_SLUG: Any = _Lazy(r"[a-z][a-z0-9_-]{2,}")
_JIRA_KEY: Any = _Lazy(r"[A-Z][A-Z0-9]{1,9}")


class Context:
    """What a validator may know about the message and the configuration (read-only).

    ``internal_prefixes`` are (host, path) pairs, lower case, path '' or starting with '/'.
    """

    __slots__ = (
        "audience",
        "hosts",
        "internal_prefixes",
        "public_domains",
        "public_words",
        "support_emails",
    )

    def __init__(
        self,
        public_domains: tuple[str, ...] = (),
        support_emails: frozenset[str] = frozenset(),
        audience: str | None = None,
        internal_prefixes: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.public_domains = public_domains
        self.support_emails = support_emails
        self.audience = audience
        self.internal_prefixes = internal_prefixes
        # Names classified for this configuration: a long text names the same sites often,
        # and two rules (internal host, third-party site) ask about each.
        self.hosts: dict[tuple[str, bool], str | None] = {}
        # The words of the public domains (``_public_words``), worked out on first use.
        self.public_words: frozenset[str] | None = None


Validator = Callable[[str, int, int, Context], bool]


def is_public_host(host: str, ctx: Context) -> bool:
    """True for an allow-listed domain or any of its subdomains (acme.gitlab-dedicated.com)."""
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in ctx.public_domains)


def _ip(text: str, start: int, end: int, ctx: Context) -> bool:
    import ipaddress  # ~2 ms, only when a candidate shows up

    value = text[start:end]
    before = text[max(0, start - 12) : start].lower()
    # "version 1.2.3.4" and dotted numbers longer than an address are not addresses.
    if re.search(r"(?:version|v|release|build)\s*$", before) or text[end : end + 2].rstrip()[
        :2
    ] in {".0", ".1", ".2", ".3", ".4", ".5", ".6", ".7", ".8", ".9"}:
        return False
    if ":" in value and "::" not in value and value.count(":") != 7:
        return False  # clock times and ratios, not an IPv6 address
    if value.startswith(":") and not value.startswith("::"):
        return False
    try:
        ipaddress.ip_network(value, strict=False) if "/" in value else ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _classify(name: str, ctx: Context, prose: bool) -> str | None:
    key = (name, prose)
    got = ctx.hosts.get(key, "")
    if got == "":
        got = ctx.hosts[key] = _hosts().classify(
            name, ctx.public_domains, ctx.internal_prefixes, prose=prose
        )
    return got


def _host(text: str, start: int, end: int, ctx: Context) -> str | None:
    """How a dotted name found in running text classifies (see hosts.classify)."""
    if start > 0 and text[start - 1] in "@._:\\":
        return None  # part of an address, a longer dotted name or a Windows path
    return _classify(text[start:end], ctx, True)


def _fqdn(text: str, start: int, end: int, ctx: Context) -> bool:
    """An internal host name (with its port and path, if written)."""
    return _host(text, start, end, ctx) == "internal"


def _third_party(text: str, start: int, end: int, ctx: Context) -> bool:
    """A public site that is not allow-listed, written as a host name or a web link."""
    if "://" not in text[start:end]:
        return _host(text, start, end, ctx) == "third-party"
    return _link(text[start:end], ctx) == "third-party"


def _bare_host(text: str, start: int, end: int, ctx: Context) -> bool:
    """db1001, web-03, gitaly-01-stor, lb-fe2003, db2041:3306, web100[1-4]: a lower-case
    name with a machine number (hosts.machine_name)."""
    if start > 0 and text[start - 1] in "@._:#\\":
        return False
    name, colon, port = text[start:end].partition(":")
    if colon and len(port) >= 3 and name.islower() and any(c.isdigit() for c in name):
        return True  # a numbered name with a port (edge-fra-2:8443): nothing else is
    return bool(_hosts().machine_name(name))


def _user_at_host(text: str, start: int, end: int, ctx: Context) -> bool:
    """alice@deploy2002, the prefix of a chat or deploy log line: the part after '@' is a
    machine name."""
    host = text[start:end].rsplit("@", 1)[1].split(":", 1)[0]
    return host.islower() and bool(_hosts().machine_name(host))


_SCHEMES = frozenset(
    [
        "http",
        "https",
        "ftp",
        "ssh",
        "git",
        "s3",
        "gs",
        "redis",
        "postgres",
        "postgresql",
        "mysql",
        "mongodb",
        "amqp",
        "ldap",
    ]
)


def _secret(text: str, start: int, end: int, ctx: Context) -> bool:
    """Tokens are recognised by their own shape; key=value only for credential keys (the
    check lives in secrets.py, which the core uses at input without loading this module)."""
    return is_secret(text[start:end])


_WEB_SCHEMES = frozenset(["http", "https", "ftp"])


def _link(url: str, ctx: Context) -> str | None:
    """How a URL classifies; a link to a machine (an address, localhost, a name without
    dots) or a connection string to a server that is not allow-listed is internal."""
    scheme = url.split(":", 1)[0].lower()
    if scheme not in _SCHEMES:
        return None
    m = _URL_HOST.match(url)
    if not m:
        return "internal"
    host = m.group(1).strip("[]").lower()
    if "." not in host or re.fullmatch(r"[\d.]+|[0-9a-f:]+", host):
        return "internal"
    got = _classify(host + url[m.end() :], ctx, False)
    if scheme not in _WEB_SCHEMES and got == "third-party":
        return "internal"  # a database, cache or bucket address
    return got


def _url(text: str, start: int, end: int, ctx: Context) -> bool:
    """An internal link: to a machine, an internal name, an internal tool, or a path under
    an internal prefix (a tracker word in the path of an allow-listed site is not one)."""
    return _link(text[start:end], ctx) == "internal"


def _email(text: str, start: int, end: int, ctx: Context) -> bool:
    return text[start:end].lower() not in ctx.support_emails


def _channel(text: str, start: int, end: int, ctx: Context) -> bool:
    return not _HEX_COLOUR.fullmatch(text[start:end])


def _account_id(text: str, start: int, end: int, ctx: Context) -> bool:
    return bool(re.search(r"(?i)\b(?:aws|account|acct)\b", text[max(0, start - 40) : start]))


def _luhn(text: str, start: int, end: int, ctx: Context) -> bool:
    digits = [int(c) for c in text[start:end] if c.isdigit()]
    if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_AWS_ID_PREFIXES = frozenset(
    [
        "i",
        "vol",
        "sg",
        "vpc",
        "subnet",
        "eni",
        "ami",
        "snap",
        "igw",
        "nat",
        "rtb",
        "acl",
        "eipalloc",
        "tgw",
        "lt",
        "vpce",
        "pcx",
        "db",
    ]
)


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# HTML elements: "<div> text" at a line start is markup, not an IRC speaker.
_HTML_TAGS = _set(
    "a abbr b blockquote body br caption code dd del details div dl dt em h1 h2 h3 h4 h5 h6 "
    "head hr html i img ins kbd li ol p pre q s samp small span strong sub summary sup table "
    "tbody td th thead tr u ul"
)


def _named_like_a_user(name: str) -> bool:
    """A user name or display name rather than words: some part is no everyday English or
    product word (digits, '_' or '.' inside, or letters the lexicon does not know)."""
    from comms.lint import lexicon

    for part in re.split(r"[ \t]+", name):
        if len(part) < 2:
            return False
        if any(ch.isdigit() or ch in "_." for ch in part):
            return True
        for piece in part.split("-"):
            if piece and not lexicon.is_word(piece.lower().strip("'")):
                return True
    return False


def _chat_user(text: str, start: int, end: int, ctx: Context) -> bool:
    """The speaker of a pasted chat line is named like a user ("cblecker [1:26 PM]",
    "<alice42>"), not an everyday word ("Update [10:30]") or an HTML tag."""
    value = text[start:end]
    if "<" in value:
        nick = value[value.index("<") + 1 : value.rindex(">")].lstrip("@+%")
        return nick.lower() not in _HTML_TAGS and _named_like_a_user(nick)
    body = value.lstrip(" \t>")
    if body.endswith(":"):
        name = body.split()[-1][:-1]  # "[10:02] alice:"
    else:
        name = body[: body.rindex("[")].strip()  # "alice [1:26 PM]"
        if re.fullmatch(r"[a-z0-9]+(?:[-_.][a-z0-9]+)+", name):
            return True  # a lower-case name joined by dashes before a time: "tony-yang"
        words = name.split()
        line_end = text.find("\n", end)
        rest = text[end : len(text) if line_end < 0 else line_end]
        if len(words) > 1 and not rest.strip() and not any(w in _HEADINGS for w in words):
            return True  # "Jane Doe [2:17 PM]" alone on its line: Slack's copy of a message
    return _named_like_a_user(name)


# Words of a status heading with a time ("Status Update [10:30 AM]"), never a speaker.
_HEADINGS = _set(
    "Update Updates Status Maintenance Incident Resolved Investigating Identified Monitoring "
    "Scheduled Notice Alert Outage Postmortem Summary Timeline Note Service Services "
    "Degraded Operational Partial Major Minor Final Initial Next Latest Current Planned"
)


_BY_LINE_VERB: Any = _Lazy(r"(?:Opened|Edited|Closed|Reopened|Created|Authored)\b")
_BY: Any = _Lazy(r"[ \t][Bb]y:?[ \t]+")
_GREETING = _set("Thanks Thank Cc Hi Hey Hello Dear Ping Kudos")
_TIME_OR_MARKS: Any = _Lazy(r"\[[^\]]*\]|<|>|^\[?\d{1,2}:\d\d(?::\d\d)?\]?|[@+%]")


def _display_words(value: str) -> list[str]:
    """The words of a display name as the rule matched it (no verb, greeting or badge)."""
    if _BY_LINE_VERB.match(value):
        value = _BY.split(value, maxsplit=1)[-1]
        if value.startswith("["):
            value = value[1 : value.find("]")]  # a Markdown link: its text
    value = re.sub(r"\[[^\]]*\]", " ", value)
    words = [w for w in value.split() if w[:1].isalpha()]
    while words and words[0] in _GREETING:
        words = words[1:]
    return words


def _display_name(text: str, start: int, end: int, ctx: Context) -> bool:
    """A person's name: one to four capitalised words, none an abbreviation ("AWS")."""
    words = _display_words(text[start:end])
    return 1 <= len(words) <= 4 and not any(w.isupper() and len(w) > 1 for w in words)


def named(rule: str, value: str) -> list[str]:
    """The names a Leak.DisplayName or Leak.ChatUser match gives away, to look for
    elsewhere in the text: the name as written, and its parts that are no everyday word."""
    from comms.lint import lexicon

    if rule == "Leak.ChatUser":
        value = _TIME_OR_MARKS.sub(" ", value.strip().lstrip(">").strip()).strip().rstrip(":")
        words = value.split()
    elif rule == "Leak.PersonName":
        return _person_parts(value.split())
    elif rule == "Leak.ObjectName":
        parts = _object_parts(value)
        return [parts[1]] if parts else []
    else:
        words = _display_words(value)
    if not words:
        return []
    names = [" ".join(words)]
    if len(words) > 1:
        # Each part on its own, as written: in a text that prints "Nick Nguyen @nhx", a
        # later "Nick:" is that person.  Not a word sentences often start with ("Will").
        names += [
            w
            for w in words
            if len(w) >= 3
            and w.isalpha()
            and (w not in _SENTENCE_WORDS or not lexicon.is_word(w.lower()))
        ]
    return names


def _person_parts(words: list[str]) -> list[str]:
    """What a Leak.PersonName match names elsewhere in its text: the name as written, its
    given name and family name on their own (when no month or everyday sentence word), and
    a single name that is no word in lower case too (a chat nick: "lantao")."""
    from comms.lint import cues, lexicon

    names = [" ".join(words)]
    for w in words if len(words) > 1 else ():
        low = w.lower()
        if (
            len(w) >= 3
            and w[:1].isupper()
            and low not in cues._NOT_FIRST_NAMES
            and w not in _SENTENCE_WORDS
            and (not lexicon.is_word(low) or cues.first_name(w) or lexicon.is_surname(w))
        ):
            names.append(w)
    if len(words) == 1 and len(words[0]) >= 4 and not cues.known(words[0]):
        names.append(words[0].lower())  # a chat nick: "lantao" (not every family name)
    return names


# Capitalised words that start sentences or name months, and are first or last names too.
_SENTENCE_WORDS = _set(
    "Will May Can Mark Bill Grant Chase Hope Rich Frank Jack Guy Art Don Long Young White "
    "Black Brown Green Gray Grey King Hall Wood Stone Rose Page Price Little Best Love Star "
    "Sky Summer Dawn June April August March Case Post Lane Field Ward Wells Banks Hill "
    "Bell Cook Cash Gold Major Sharp Strong Swift Wise Early Rush Fox Hunter Walker Baker "
    "Carter Turner Parker Mason Miller Porter Joy Faith Ray Sun New North South East West "
    "Still Just Even Then Over Under After Before Also Only Ghost User Bot Team Support "
    "Status Service Services Security Engineering Operations Release Deploy Update"
)


def _person_name(text: str, start: int, end: int, ctx: Context) -> bool:
    """A person named in running text (the Leak.PersonName patterns): two words are a given
    name and a family name (cues._full_name); one word after a people word ("cc", "by",
    "asked") is a given name; one word before a deed is a given name or no everyday word
    ("Lantao is looking"), never a technology, a team or an abbreviation."""
    from comms.lint import cues

    public = _public_words(ctx)
    words = text[start:end].split()
    if len(words) > 1:
        return cues._full_name(words[0], " ".join(words[1:]), public)
    name = words[0]
    if cues.first_name(name, public):
        return True
    if _ADDRESSED_BEFORE.search(text, max(0, start - 20), start):
        return False  # after "by", "cc" …: only a given name ("by Cloudflare" is not one)
    low = name.lower()
    return (
        len(name) >= 3
        and low not in cues.NOT_PEOPLE
        and low not in cues._NOT_FIRST_NAMES
        and low not in public
        and not cues.known(name, public)
    )


_ADDRESSED_BEFORE: Any = _Lazy(
    r"(?:\b(?:by:?|cc:?|hi|hey|thanks?,?|ping(?:ed)?|paged|asked|told|kudos|contacted|"
    r"notified|informed|to|from)[ \t])$",
    re.IGNORECASE,
)


def _public_words(ctx: Context) -> frozenset[str]:
    """The words of the allow-listed domains (cues._public_words), kept on the context:
    the person and object validators ask for them at every candidate."""
    words = ctx.public_words
    if words is None:
        from comms.lint.cues import _public_words as public

        words = ctx.public_words = public(ctx.public_domains, None)
    return words


_ENVIRONMENTS = _set("prod nonprod preprod stg staging gprd gstg gpre uat")
# Words a dash joins to an environment in prose: "prod-ready", "staging-like".
_ENV_PROSE = _set(
    "like ready grade level only quality safe facing specific wide related based parity ish non pre"
)


def _environment_name(text: str, start: int, end: int, ctx: Context) -> bool:
    """nonprod-log, gprd-redis-01, ExternalLBProd: an environment word joined to a name."""
    if start > 0 and text[start - 1] in "@#/._:\\":
        return False
    value = text[start:end]
    if value[:1] == "-" or (end < len(text) and text[end] in "/@"):
        return False
    if "-" in value:
        parts = value.lower().replace("non-prod", "nonprod").replace("pre-prod", "preprod")
        pieces = parts.split("-")
        if value != value.lower() or len(pieces) < 2:
            return False
        names = [p for p in pieces if p not in _ENVIRONMENTS]
        return bool(names) and not any(p in _ENV_PROSE for p in names)
    # CamelCase: a capitalised name before the environment (ExternalLBProd, not "NonProd").
    m = re.fullmatch(r"([A-Z][A-Za-z0-9]*?)(?:Non|Pre)?(Prod|Preprod|Staging|Stg)", value)
    return m is not None and len(m.group(1)) >= 3 and m.group(1) not in ("Non", "Pre")


# The characters Kubernetes draws generated name parts from (apimachinery's SafeEncodeString:
# no vowels, no 0, 1 or 3, so that no generated part spells a word).
_K8S_SAFE = frozenset("bcdfghjklmnpqrstvwxz2456789")


def _generated(part: str, *, digit: bool = True) -> bool:
    """A generated name part: a ReplicaSet's pod-template hash (``7d9f8b6c5d``; nine or ten
    digits before Kubernetes 1.8) or a pod's random suffix, drawn from the safe alphabet,
    with a letter (and, unless ``digit`` is False, a digit)."""
    if part.isdigit():
        return len(part) in (9, 10)
    return (
        set(part) <= _K8S_SAFE
        and any(c.isalpha() for c in part)
        and (not digit or any(c.isdigit() for c in part))
    )


def _pod(text: str, start: int, end: int, ctx: Context) -> bool:
    """A generated Kubernetes name, found from its last part: a Deployment's pod
    (name-<hash>-<5 characters>), a ReplicaSet (name-<hash>), a DaemonSet's, StatefulSet
    controller's or Job's pod (name-<5 characters>) and a CronJob's Job (name-<8 digits:
    its schedule time in minutes>, and its pods).  The name is lower case and starts with
    a letter; the generated parts come from Kubernetes's safe alphabet, so words
    ("-based", "-level") never pass."""
    if start > 0 and text[start - 1] in "@./_:#":
        return False
    value = text[start:end]
    parts = value.split("-")
    if len(parts) < 2 or not parts[0][:1].isalpha() or not value.islower() or "" in parts:
        return False
    last, before = parts[-1], parts[-2]
    if len(last) == 5:
        if (
            len(parts) >= 3
            and (_generated(before, digit=False) or _cron_time(before))
            and _generated(last, digit=False)
            and (_generated(before) or _generated(last) or _cron_time(before))
        ):
            return True  # name-<hash>-<suffix>: a digit in one of them (a word has none)
        if len(parts) >= 3 and before.isdigit() and len(before) in (9, 10) and last.isalnum():
            return True  # before Kubernetes 1.8: a decimal hash, any random suffix
        return _generated(last)  # name-<suffix>
    if _cron_time(last):
        return all(p.isalpha() for p in parts[:-1])
    return 6 <= len(last) <= 10 and _generated(last) and any(p.isalpha() for p in parts[:-1])


def _object_parts(value: str) -> tuple[str, str, bool, bool] | None:
    """(kind, name, quoted, name written before the kind) of a Leak.ObjectName match."""
    words = value.replace("=", " ").split()
    if len(words) < 2:
        return None
    if words[0] in ("-n", "--namespace"):
        return "-n", words[-1].strip("`'\""), False, False
    first = words[0].rstrip(":=")
    if (first[:1].isalpha() and first.lower().rstrip("s").rstrip(":") in _OBJECT_KINDS) or (
        first.lower() in ("helm", "node") and len(words) >= 3
    ):
        name = words[-1].lstrip(":=")
        kind = " ".join(words[:-1]).lower()
        before = False
    else:
        name, kind, before = words[0], " ".join(words[1:]).lower(), True
    quoted = name[:1] in "`'\"" and name[-1:] in "`'\"" and len(name) > 2
    return kind, name.strip("`'\""), quoted, before


_KUBE_TOOLS: Any = _Lazy(
    r"\b(?:kubectl|helm|flux|oc|k9s|kubens|stern|argocd|istioctl|velero|linkerd)\b"
)
_OBJECT_KINDS = _set(
    "namespace deployment daemonset statefulset replicaset cronjob configmap cluster "
    "helmrelease kustomization pod pvc ingres ingresse ingress nodepool ns"
)


def _object_name(text: str, start: int, end: int, ctx: Context) -> bool:
    """A Kubernetes object named beside its kind (cues._object_name decides the name)."""
    if start > 0 and text[start - 1] in "@#/._:\\":
        return False
    parts = _object_parts(text[start:end])
    if parts is None:
        return False
    kind, name, quoted, before = parts
    from comms.lint import cues

    if kind == "-n":
        # kubectl's (or helm's, flux's …) namespace flag, not head's or grep's "-n".
        line_start = text.rfind("\n", 0, start) + 1
        if not _KUBE_TOOLS.search(text, line_start, start):
            return False

    public = _public_words(ctx)
    if cues._object_name(name, quoted, kind, public, before=before):
        return True
    # "in namespace payments": a plain word after "in/to/from the namespace".
    return (
        kind.startswith("namespace")
        and not before
        and name.isalpha()
        and name not in cues._NOT_OBJECTS
        and _IN_NAMESPACE.search(text, max(0, start - 12), start) is not None
    )


_IN_NAMESPACE: Any = _Lazy(r"\b(?:in|into|to|from|of)(?:[ \t]+the)?[ \t]+$", re.IGNORECASE)


def _cron_time(part: str) -> bool:
    """A CronJob's Job suffix: its scheduled time in minutes since 1970 (eight digits from
    1990 to 2160)."""
    return len(part) == 8 and part.isdigit() and part[0] in "123"


_KINDS_ANY = _set(
    "clusterrole clusterrolebinding configmap configmaps crd cronjob cronjobs "
    "customresourcedefinition daemonset daemonsets deploy deployment deployments helmrelease "
    "helmreleases horizontalpodautoscaler hpa ingress ingresses kustomization kustomizations "
    "netpol networkpolicy pdb persistentvolume persistentvolumeclaim persistentvolumeclaims "
    "persistentvolumes poddisruptionbudget pvc replicaset replicasets rolebinding "
    "serviceaccount serviceaccounts statefulset statefulsets sts svc"
)
# Kinds whose names are also words or abbreviations in prose ("no/yes", "cm/s", "job/task"):
# the name needs a dash, digit or dot (``pod/web-0``, not ``rollout/annotation``).
_KINDS_NAMED = _set(
    "application certificate cj clusterissuer cm ds endpoints ep gateway gitrepository "
    "helmrepository hr ing issuer job jobs ks namespace namespaces no node nodes ns po pod "
    "podmonitor pods prometheusrule pv role rollout rollouts rs sa secret secrets service "
    "servicemonitor services virtualservice"
)


def _kube_object(text: str, start: int, end: int, ctx: Context) -> bool:
    """kind/name as kubectl writes an object (``deployment/api``, ``pod/web-7d9f…``,
    ``svc/web``, ``deployment.apps/web``, ``ReplicaSet/web-5f7b8c9d4``)."""
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "/.-_@:\\"):
        return False
    kind, _, name = text[start:end].partition("/")
    base = kind.split(".", 1)[0].lower()
    if base in _KINDS_ANY:
        return len(name) >= 2
    return base in _KINDS_NAMED and any(c.isdigit() or c in "-." for c in name)


def _cloud_resource(text: str, start: int, end: int, ctx: Context) -> bool:
    value = text[start:end]
    if value.startswith(("arn:", "gke-", "gke_", "aks-", "eks-", "ip-", "projects/", "/sub")):
        return True
    prefix, _, ident = value.partition("-")
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_-./"):
        return False
    return prefix in _AWS_ID_PREFIXES and any(ch.isdigit() for ch in ident)


def _ticket_ref(text: str, start: int, end: int, ctx: Context) -> bool:
    """#1234, !123, &12 (an epic), group/project#12, JIRA-123, INC-2023-0412 (not public
    standards like COVID-19); a short #12 or !12 only where a tracker word or a commit
    title's parentheses say it is one ("fixes #12", "(#12)", "MR !45")."""
    value = text[start:end]
    if "#" not in value and "!" not in value and "&" not in value:
        if _DATED_KEY.fullmatch(value):
            # KEY-YEAR-NUMBER (INC-2023-0412): an incident or change record.
            return value.split("-", 1)[0] not in _NOT_TICKETS and _token_start(text, start)
        # Found at the dash of KEY-123: the key is the word before the dash, not part of a
        # longer hyphenated word.
        dash = value.rfind("-")
        key_start = dash
        while key_start > 0 and (value[key_start - 1].isalnum() or value[key_start - 1] == "_"):
            key_start -= 1
        before = value[key_start - 1] if key_start > 0 else ""
        if not _JIRA_KEY.fullmatch(value, key_start, dash) or before == "-":
            return False
    if value[:1].isupper() and "-" in value and "#" not in value and "!" not in value:
        return value.split("-", 1)[0].upper() not in _NOT_TICKETS and _token_start(text, start)
    mark = max(value.rfind("#"), value.rfind("!"), value.rfind("&"))
    qualifier, digits = value[:mark], value[mark + 1 :]
    if qualifier:
        if "/" in qualifier:
            return not qualifier.startswith(("/", "."))
        # GitLab's short form within a group: production#243, on-call-handovers!12.
        return len(digits) >= 2 and bool(_PROJECT_SLUG.fullmatch(qualifier))
    if len(digits) >= 3:
        return True
    if value[0] == "&":
        return len(digits) >= 2 and _token_start(text, start)  # an epic: "&42"
    return bool(_SHORT_REF.search(text, max(0, start - 40), start)) or (
        start > 0 and text[start - 1] == "(" and text[end : end + 1] == ")"
    )


def _token_start(text: str, start: int) -> bool:
    return start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "-_/.")


_DATED_KEY: Any = _Lazy(r"[A-Z][A-Z0-9]{1,9}-(?:19|20)\d\d-\d{1,6}")
# Words before a short issue or merge-request number: "fixes #12", "MR !45", "see #9".
_SHORT_REF: Any = _Lazy(
    r"(?i)\b(?:issues?|bugs?|tickets?|PRs?|MRs?|pull[ \t]+requests?|merge[ \t]+requests?|"
    r"epics?|fix(?:es|ed)?|close[sd]?|resolve[sd]?|see|refs?|related(?:[ \t]+to)?|"
    r"duplicate[sd]?(?:[ \t]+of)?|reverts?|reverted|follow-?up(?:[ \t]+(?:to|in|of))?)"
    r"[ \t]*:?[ \t]*$"
)


_HEXDIGITS = frozenset("0123456789abcdefABCDEF-")


def _opaque_id(text: str, start: int, end: int, ctx: Context) -> bool:
    """16 to 64 hex digits with letters and digits both, or a UUID; a whole token."""
    value = text[start:end]
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_-./"):
        return False
    if value.startswith("-") or not set(value) <= _HEXDIGITS:
        return False
    if "-" in value:
        return bool(_UUID.fullmatch(value))
    return 16 <= len(value) <= 64 and any(c.isdigit() for c in value) and not value.isdigit()


_UUID: Any = _Lazy(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")
_PLATFORMS = frozenset(["k8s", "k3s", "gke", "eks", "aks"])


def _cluster_name(text: str, start: int, end: int, ctx: Context) -> bool:
    """k8s-prow, gke-prow-builds: a platform and a part that is a name (no everyday word,
    technology or generic infrastructure word, three letters or more)."""
    if start > 0 and text[start - 1] in "@#/._:\\":
        return False
    parts = text[start:end].split("-")
    if not _PLATFORMS & set(parts) or len(parts) < 2:
        return False
    from comms.lint.cues import known

    return any(
        p.isalpha() and len(p) >= 3 and p not in _PLATFORMS and not known(p) and p not in _GENERIC
        for p in parts
    )


_GENERIC = _set(
    "prod nonprod preprod stg staging gprd gstg gpre dev qa uat test sandbox int ops infra "
    "sre devops oncall non pre"
)
_TRACKER_WORDS: Any = _Lazy(
    r"(?i)\b(?:issue|ticket|case|incident|request|task|change|problem|story|bug|"
    r"support[ \t]+(?:case|ticket|request)|pull[ \t]+request|merge[ \t]+request|PR|MR)"
    r"(?:[ \t]+(?P<mark>nr|no|num|number|id|ref)\.?)?[ \t]*(?P<sign>[:#])?[ \t]*$"
)


_TRACKER_CUES = (
    "issue",
    "ticket",
    "case",
    "incident",
    "request",
    "task",
    "change",
    "problem",
    "story",
    "bug",
    "pr",
    "mr",
)


def _tracker_number(text: str, start: int, end: int, ctx: Context) -> bool:
    """A number right after a tracker word: with "nr", "no.", "number", "id", "#" or ":",
    four digits or more; after the bare word ("case 01234567"), six or more."""
    before = text[max(0, start - 40) : start].lower()
    if not any(cue in before for cue in _TRACKER_CUES):
        return False  # most numbers: no tracker word anywhere before them
    m = _TRACKER_WORDS.search(text, max(0, start - 40), start)
    if m is None or m.end() != start:
        return False
    marked = m.group("mark") or m.group("sign")
    return end - start >= (4 if marked else 6)


def _no_zone(text: str, start: int, end: int, ctx: Context) -> bool:
    """A clock time is a finding unless a zone follows it (also after a range '13:00-17:00 UTC')."""
    hour = _DIGITS.match(text, start, end)
    if not hour or int(hour.group()) > 24:
        return False
    return not _ZONE_AFTER.match(text, end)


def _not_hedged(text: str, start: int, end: int, ctx: Context) -> bool:
    sentence_start = max(text.rfind(".", 0, start), text.rfind("\n", 0, start), 0)
    return not _HEDGE.search(text, sentence_start, start)


_AFTER_FIX_TIME: Any = _Lazy(r"\s+(?:\d|the\s+next|an?\s+hour)", re.IGNORECASE)


def _fix_time(text: str, start: int, end: int, ctx: Context) -> bool:
    """'will be fixed by 14:00' without an estimate word before it."""
    return bool(_AFTER_FIX_TIME.match(text, end)) and _not_hedged(text, start, end, ctx)


_JOINERS = frozenset("\u200c\u200d")


def _invisible(text: str, start: int, end: int, ctx: Context) -> bool:
    """Format characters, except a joiner inside an emoji sequence or a word of a script that
    needs one (both neighbours non-ASCII, not spaces), and a byte-order mark that opens a
    file (neither is seen, nor hides anything)."""
    value = text[start:end]
    if start == 0 and value == "\ufeff":
        return False
    if set(value) <= _JOINERS and start > 0 and end < len(text):
        before, after = text[start - 1], text[end]
        if not (before.isascii() or after.isascii() or before.isspace() or after.isspace()):
            return False
    return True


def _not_public(text: str, start: int, end: int, ctx: Context) -> bool:
    return not is_public_host(text[start:end], ctx)


VALIDATORS: dict[str, Validator] = {
    "account_id": _account_id,
    "bare_host": _bare_host,
    "cluster_name": _cluster_name,
    "channel": _channel,
    "chat_user": _chat_user,
    "email": _email,
    "environment_name": _environment_name,
    "fix_time": _fix_time,
    "fqdn": _fqdn,
    "invisible": _invisible,
    "third_party": _third_party,
    "user_at_host": _user_at_host,
    "cloud_resource": _cloud_resource,
    "display_name": _display_name,
    "ip": _ip,
    "luhn": _luhn,
    "no_zone": _no_zone,
    "not_hedged": _not_hedged,
    "not_public": _not_public,
    "opaque_id": _opaque_id,
    "kube_object": _kube_object,
    "object_name": _object_name,
    "person_name": _person_name,
    "pod": _pod,
    "secret": _secret,
    "ticket_ref": _ticket_ref,
    "tracker_number": _tracker_number,
    "url": _url,
}
