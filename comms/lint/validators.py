"""Named validators for ``pattern`` rules: a regex finds a candidate, a validator decides.

A validator is ``f(text, start, end, ctx) -> bool``: True keeps the candidate as a finding.
Packs name them (``validator = "ip"``), so a rule file never carries code.  They stay pure:
the context carries everything configured (public domains, support addresses, tenants).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# typing costs ~3 ms to import, and only type checkers need it here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Lazy:
    """A regex compiled on first use: validators only run on candidates, and compiling the
    dozen regexes below at import would cost every process a few milliseconds."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags

    def __getattr__(self, name: str) -> Any:
        regex = re.compile(self.pattern, self.flags)
        # Bind the compiled methods on the instance: later calls skip __getattr__.
        for method in ("match", "search", "fullmatch"):
            setattr(self, method, getattr(regex, method))
        return getattr(regex, name)


# Public top-level domains worth recognising in prose; file extensions that are also
# country codes (md, py, sh, rs, pl) are left out so "README.md" is not a host.
_TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "io",
        "dev",
        "app",
        "cloud",
        "co",
        "ai",
        "edu",
        "gov",
        "mil",
        "int",
        "info",
        "biz",
        "me",
        "us",
        "uk",
        "de",
        "fr",
        "nl",
        "eu",
        "ca",
        "au",
        "jp",
        "cn",
        "in",
        "ru",
        "br",
        "es",
        "it",
        "se",
        "no",
        "fi",
        "dk",
        "ch",
        "at",
        "be",
        "pl",
        "cz",
        "ie",
        "nz",
        "sg",
        "hk",
        "kr",
        "tw",
        "za",
        "mx",
        "ar",
        "cl",
        "tech",
        "site",
        "online",
        "xyz",
        "page",
        "systems",
        "services",
        "host",
        "link",
        "live",
        "zone",
    ]
)
# Suffixes that only resolve inside a network: always internal.
_INTERNAL_SUFFIXES = (
    ".internal",
    ".local",
    ".localdomain",
    ".lan",
    ".corp",
    ".intranet",
    ".intra",
    ".private",
    ".svc",
    ".cluster.local",
    ".consul",
    ".home.arpa",
    ".test",
    ".localhost",
)
# Tracker, dashboard and chat paths that stay internal even on a public domain.
_INTERNAL_PATH: Any = _Lazy(
    r"/-/(?:issues|merge_requests|epics|incidents|work_items)/|/(?:issues|pull|merge_requests|"
    r"browse|tickets?|incidents?)/\d|/archives/[A-Z0-9]|/d/[\w-]+|/app/(?:kibana|discover)|"
    r"/runbooks?/|/(?:grafana|kibana|dashboards?)\b",
    re.IGNORECASE,
)
_INTERNAL_HOST_WORDS: Any = _Lazy(
    r"(?:^|[.-])(?:grafana|kibana|dashboards?|runbooks?|prometheus|thanos|alertmanager|"
    r"pagerduty|opsgenie|sentry|vault|jenkins|jira|atlassian|confluence|slack|zoom|ops|"
    r"console|admin|internal|intranet|staging|pre|corp)(?:[.-]|$)"
)
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
_NOT_BARE_HOSTS = frozenset(
    [
        "utf-8",
        "utf-16",
        "sha-1",
        "sha-256",
        "sha-512",
        "covid-19",
        "iso-8601",
        "iso-27001",
        "x-509",
        "aes-128",
        "aes-256",
        "mp-3",
        "mp-4",
        "top-10",
        "win-32",
        "log4j-2",
        "rfc-822",
        "pep-8",
        "ipv4",
        "ipv6",
        "http2",
        "http3",
        "sha256",
        "sha512",
        "sha384",
        "aes128",
        "aes256",
        "win32",
        "win64",
        "amd64",
        "arm64",
        "x86-64",
        "base64",
        "utf8",
        "utf16",
        "log4j",
        "iso8601",
        "rfc3339",
        "pm2019",
        "pm2020",
        "pm2021",
        "pm2022",
        "pm2023",
        "pm2024",
        "pm2025",
    ]
)
_HOST_ROLES = frozenset(
    [
        "db",
        "web",
        "api",
        "app",
        "git",
        "gitaly",
        "praefect",
        "redis",
        "patroni",
        "pgbouncer",
        "postgres",
        "pg",
        "sidekiq",
        "consul",
        "nfs",
        "file",
        "fe",
        "be",
        "lb",
        "haproxy",
        "worker",
        "runner",
        "console",
        "bastion",
        "deploy",
        "mon",
        "prometheus",
        "es",
        "elastic",
        "kafka",
        "zk",
        "etcd",
        "vault",
        "cache",
        "node",
        "k8s",
        "gke",
        "host",
        "srv",
        "server",
        "vm",
        "mx",
        "ns",
        "proxy",
        "ingress",
        "registry",
        "pages",
        "kas",
        "sentry",
        "logs",
        "backup",
        "jump",
        "stor",
        "storage",
        "replica",
        "primary",
        "secondary",
        "standby",
    ]
)
_ZONE: Any = _Lazy(
    r"\s*(?:\(\s*)?(?:UTC|GMT|Z\b|[ECMPA][SD]T\b|[ECMA]E[SD]?T\b|BST|IST|JST|KST|SGT|HKT|"
    r"AEST|AEDT|ACST|NZST|NZDT|WIB|CST|CET|CEST|EET|EEST|WET|WEST|MSK|BRT|ART|"
    r"(?:UTC|GMT)?\s?[+\-−]\d{1,2}(?::?\d{2})?\b|[A-Z][a-z]+/[A-Z][A-Za-z_]+)"
)
_TIME_TAIL: Any = _Lazy(
    r"\s*(?:-|–|—|to|until|and|through)"
    r"\s*(?:[01]?\d|2[0-3])(?::[0-5]\d){1,2}(?:\s?[ap]\.?m\.?)?",
    re.IGNORECASE,
)
_HEDGE: Any = _Lazy(
    r"\b(?:expect|estimate|anticipate|approximately|around|about|aim|target|hope|ETA|"
    r"projected|likely)",
    re.IGNORECASE,
)


_DIGITS: Any = _Lazy(r"\d+")
_JIRA_KEY: Any = _Lazy(r"[A-Z][A-Z0-9]{1,9}")


class Context:
    """What a validator may know about the message and the configuration (read-only)."""

    __slots__ = ("audience", "public_domains", "support_emails")

    def __init__(
        self,
        public_domains: tuple[str, ...] = (),
        support_emails: frozenset[str] = frozenset(),
        audience: str | None = None,
    ) -> None:
        self.public_domains = public_domains
        self.support_emails = support_emails
        self.audience = audience


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


def _fqdn(text: str, start: int, end: int, ctx: Context) -> bool:
    if start > 0 and text[start - 1] in "@./_:\\":
        return False  # part of an address, a path or a longer dotted name
    host = text[start:end].lower().rstrip(".")
    if is_public_host(host, ctx):
        return False
    if any(host.endswith(s) for s in _INTERNAL_SUFFIXES):
        return True
    labels = host.split(".")
    if len(labels) < 2 or labels[-1] not in _TLDS:
        return False
    # A capitalised prose word before the dot ("Node.js", "Vue.js") is not a host.
    return not (text[start].isupper() and len(labels) == 2 and labels[-1] in {"js", "io"})


def _bare_host(text: str, start: int, end: int, ctx: Context) -> bool:
    """db1001, web-03, gitaly-01-stor: a lower-case name with a machine number."""
    value = text[start:end]
    if (
        (start > 0 and text[start - 1] in "@./_:#\\")
        or value.lower() in _NOT_BARE_HOSTS
        or text[end : end + 1] == ":"
    ):
        return False
    m = re.fullmatch(r"([a-z]{2,})(?:-[a-z0-9]+)*?-?(\d+)[a-z]?(?:-[a-z0-9]+)*", value)
    if not m:
        return False
    # Plain words with a number ("sha256", "top-10") need a known machine role or 3+ digits.
    return (
        m.group(1) in _HOST_ROLES or (len(m.group(2)) >= 3 and "-" in value) or len(m.group(2)) >= 4
    )


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
_CREDENTIAL_KEYS: Any = _Lazy(
    r"[\"']?(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|"
    r"client[_-]?secret|aws_?secret_?access_?key|private[_-]token|x-api-key|x-auth-token|"
    r"secret[_-]?key|token)[\"']?",
    re.IGNORECASE,
)


def _secret(text: str, start: int, end: int, ctx: Context) -> bool:
    """Tokens are recognised by their own shape; key=value only for credential keys."""
    value = text[start:end]
    head = re.match(r"[\w\"'-]*?(?=[:=])", value)
    if head is None or value[len(head.group()) :][:1] not in (":", "="):
        return True
    key = head.group()
    if re.fullmatch(r"gl[a-z]+|gh[pousr]|sk", key.split("-")[0].split("_")[0]) and not re.search(
        r"[:=]", value[: len(key)]
    ):
        return True
    return bool(_CREDENTIAL_KEYS.fullmatch(key))


def _url(text: str, start: int, end: int, ctx: Context) -> bool:
    url = text[start:end]
    if url.split(":", 1)[0].lower() not in _SCHEMES:
        return False
    m = _URL_HOST.match(url)
    if not m:
        return True
    host = m.group(1).strip("[]").lower()
    if host in {"localhost"} or re.fullmatch(r"[\d.]+|[0-9a-f:]+", host):
        return True
    if not is_public_host(host, ctx):
        return True
    path = url[m.end() :]
    # An allow-listed domain can still host a tracker, a dashboard or a runbook.
    return bool(_INTERNAL_PATH.search(path)) or bool(
        _INTERNAL_HOST_WORDS.search(host.split(".", 1)[0])
    )


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


def _pod(text: str, start: int, end: int, ctx: Context) -> bool:
    """name-<replicaset hash>-<5 chars>: the generated parts carry digits, the name letters."""
    if start > 0 and text[start - 1] in "@./_:#":
        return False
    parts = text[start:end].split("-")
    if len(parts) < 3 or not parts[0][:1].isalpha():
        return False
    return any(ch.isdigit() for ch in parts[-2] + parts[-1])


def _cloud_resource(text: str, start: int, end: int, ctx: Context) -> bool:
    value = text[start:end]
    if value.startswith(("arn:", "gke-", "aks-", "eks-", "ip-")):
        return True
    prefix, _, ident = value.partition("-")
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_-./"):
        return False
    return prefix in _AWS_ID_PREFIXES and any(ch.isdigit() for ch in ident)


def _ticket_ref(text: str, start: int, end: int, ctx: Context) -> bool:
    """#1234, !123, group/project#12, JIRA-123 (not public standards like COVID-19)."""
    value = text[start:end]
    if "#" not in value and "!" not in value:
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
        return value.split("-", 1)[0].upper() not in _NOT_TICKETS and (
            start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "-_/.")
        )
    mark = max(value.rfind("#"), value.rfind("!"))
    qualifier, digits = value[:mark], value[mark + 1 :]
    if qualifier:
        return "/" in qualifier and not qualifier.startswith(("/", "."))
    return len(digits) >= 3


def _no_zone(text: str, start: int, end: int, ctx: Context) -> bool:
    """A clock time is a finding unless a zone follows it (also after a range '13:00-17:00 UTC')."""
    value = text[start:end]
    hour = _DIGITS.match(value)
    if not hour or int(hour.group()) > 24:
        return False
    after = end
    tail = _TIME_TAIL.match(text, after)
    if tail:
        after = tail.end()
    return not _ZONE.match(text, after)


def _not_hedged(text: str, start: int, end: int, ctx: Context) -> bool:
    sentence_start = max(text.rfind(".", 0, start), text.rfind("\n", 0, start), 0)
    return not _HEDGE.search(text, sentence_start, start)


_AFTER_FIX_TIME: Any = _Lazy(r"\s+(?:\d|the\s+next|an?\s+hour)", re.IGNORECASE)


def _fix_time(text: str, start: int, end: int, ctx: Context) -> bool:
    """'will be fixed by 14:00' without an estimate word before it."""
    return bool(_AFTER_FIX_TIME.match(text, end)) and _not_hedged(text, start, end, ctx)


def _not_public(text: str, start: int, end: int, ctx: Context) -> bool:
    return not is_public_host(text[start:end], ctx)


VALIDATORS: dict[str, Validator] = {
    "account_id": _account_id,
    "bare_host": _bare_host,
    "channel": _channel,
    "email": _email,
    "fix_time": _fix_time,
    "fqdn": _fqdn,
    "cloud_resource": _cloud_resource,
    "ip": _ip,
    "luhn": _luhn,
    "no_zone": _no_zone,
    "not_hedged": _not_hedged,
    "not_public": _not_public,
    "pod": _pod,
    "secret": _secret,
    "ticket_ref": _ticket_ref,
    "url": _url,
}
