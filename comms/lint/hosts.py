"""Host names by structure: is a name internal, an allow-listed public site, or a third party?

A dotted name is decided by its shape, not by a list of top-level domains:

- under a special-use suffix (``.internal``, ``.local``, ``.svc``…): internal;
- allow-listed (the domain or a sub-domain of it): public, unless a label below the
  allow-listed domain looks like infrastructure (a machine name such as ``nfs-file-02``,
  an environment such as ``gprd``, ``stor`` or ``staging``), an internal URL prefix
  covers it, or the link is a numbered issue, merge request, epic or pull request of a
  project (``gitlab.com/gitlab-org/gitlab/-/issues/412345``): a tracker reference, as
  ``gitlab-org/gitlab#412345`` is (Leak.TicketRef), whatever the project's visibility.
  A customer update says what customers experience and what is being done, not where
  engineers track the cause and the fix; the site's own pages with a tracker word in the
  path (docs about issues, the status page's incidents) stay public.  A longer
  allow-listed entry wins (``nfs-file-02.stor.gitlab.com`` allowed);
- under a public suffix (the Public Suffix List, see lexicon.py): a third-party site,
  unless a sub-domain label looks like infrastructure, the site is an internal tool
  (chat, paging, tracker, dashboards), or the link goes into its issues, pull requests,
  source files, dashboards or shared documents: then internal;
- under no public suffix (``api.svc.dc1.corpnet``): internal, when it is written like a
  host (lower case, an infrastructure label, or three labels or more ending in a word that
  is no English word) rather than like a file, a code path or a sentence run together.

Bare machine names (``db2041``, ``lb-fe2003``, ``mc104``) are letters and a machine number:
a known role takes any number, letters that are no everyday English or product word take
two digits or more, and everyday words four (``deploy2002``), or three after a dash.
Written in capitals (``DB1``, ``NFS-08``), a known role of two letters or more.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from comms.lint import compiled, lexicon


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


INTERNAL = "internal"
PUBLIC = "public"
THIRD_PARTY = "third-party"

# Special-use and private-use suffixes (RFC 6761, 6762, 8375; ICANN's .internal) and the
# common private ones: names under them resolve only inside a network.
SPECIAL_USE = _set(
    "internal local localdomain localhost lan corp intranet intra private svc cluster.local "
    "consul home.arpa test"
)
# Extensions of files named in prose ("README.md", "gitlab.rb"): some are country codes
# (md, sh, rs, pl, py, so), none is how an incident names a host.
FILE_EXTENSIONS = _set(
    "bak bat bash bin bz2 c cc cfg cjs class conf cpp crt cs css csv deb der diff dll dmg "
    "doc docx env erb exe gem go gradle gz h haml hcl hpp htm html ini ipynb iso jar java "
    "jpeg jpg js json jsonl jsx key kt lock log lua md mjs mod msi out patch pdf pem php "
    "pid pl pm png pom properties proto ps1 pub py pyc rake rb repo rpm rs sass scss sh so "
    "sock sql sum svg swift tar tf tfvars tgz tmp toml ts tsx txt vue war whl xml xz yaml "
    "yml zip zsh"
)
# Cloud instance sizes: "db.r5.large" and "m5.xlarge" are instance classes, not hosts.
INSTANCE_SIZES = _set("nano micro small medium large xlarge metal")
# Labels that name infrastructure or an environment, below a registrable domain.
INFRA_LABELS = _set(
    "admin alertmanager bastion cluster consul console corp dashboard dashboards db dev "
    "etcd gitaly gpre gprd grafana gstg haproxy infra int internal intra intranet jenkins "
    "jump k8s kibana kube lb log metrics mgmt mon monitoring nfs ops patroni pg pgbouncer "
    "praefect pre preprod priv private prd prod production prometheus qa redis runbook "
    "runbooks sidekiq staging stg stor storage svc thanos uat vault vpn zk"
)
# Sites of internal tools (chat, paging, incident management, trackers, observability): a
# link to them never helps a customer.
TOOL_SITES = _set(
    "atlassian datadoghq firehydrant grafana incident linear opsgenie pagerduty rootly "
    "sentry service-now slack victorops zendesk zoom"
)
HOST_ROLES = _set(
    "api app backup bastion be broker cache cass cassandra ceph clickhouse console consul db "
    "deploy elastic elasticsearch es etcd fe file gitaly git gke host influx influxdb ingress "
    "jump k8s kafka kas lb haproxy logs mariadb master memcache memcached minio mon mongo "
    "mongodb mx mysql nats nfs node ns osd pages patroni pg pgbouncer postgres praefect "
    "primary prometheus proxy rabbitmq redis registry replica rmq runner secondary sentry "
    "server sidekiq srv standby stor storage vault vm web worker zk zookeeper"
)
# Tokens of letters and digits that are names of standards, encodings and architectures.
NOT_MACHINES = _set(
    "aes-128 aes-256 aes128 aes256 amd64 arm64 base64 covid-19 curve25519 ed25519 http2 "
    "http3 ipv4 ipv6 iso-27001 iso-8601 iso8601 lib32 lib64 log4j log4j-2 md5 mp-3 mp-4 "
    "pep-8 pm2019 pm2020 pm2021 pm2022 pm2023 pm2024 pm2025 rfc-822 rfc3339 sha-1 sha-256 "
    "sha-512 sha256 sha384 sha512 top-10 utf-16 utf-8 utf16 utf8 win-32 win32 win64 x-509 "
    "x25519 x86-64"
)
# Calendar words with a year or day glued on ("jan2024", "q3-2025", "fy24").
CALENDAR = _set(
    "jan feb mar apr may jun jul aug sep sept oct nov dec fy cy ytd summer winter spring "
    "autumn fall week day"
)


# Compiled on first use, like the validators' regexes: most texts never need them, and a
# `comms draft` should not pay for compiling them.
@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return compiled.compile(pattern)


_MACHINE = r"([a-z]{2,}(?:-[a-z]+)*?)-?(\d+)[a-z]?((?:-[a-z0-9]+)*)"
_STANDARD_ID = r"(?:cve|cwe|ghsa|rfc|iso|pep|ecma|fips|nist|kb|sp)-?\d"
_INFRA_SHAPE = (
    # A cloud region or zone: us-east-1, europe-west4a, asia-southeast1.
    r"(?:us|eu|ap|sa|ca|me|af|il|mx|cn|asia|europe|northamerica|southamerica|australia|"
    r"africa)-(?:east|west|north|south|central|northeast|northwest|southeast|southwest)"
    r"-?\d{1,2}[a-z]?"
    r"|(?:dc|az|zone|rack|pod|cell|site)-?\d+"  # a data centre, zone or rack
    r"|(?:[a-z0-9]+-)?\d{1,3}(?:-\d{1,3}){3}"  # an address in a name: ip-10-0-1-23
)
_GLOB = r"\[[^\]]*\]|\{[^}]*\}|\*"
# Paths into a third-party site's trackers, code review, source, dashboards, chat archives
# and shared documents: engineering references, not pages for customers.
_WORK_PATH = (
    r"/-/(?:issues|merge_requests|epics|incidents|work_items|pipelines|jobs|commit|blob|tree)/"
    r"|/(?:issues|pulls?|merge_requests|browse|tickets?|incidents?|commits?)/\w"
    r"|/(?:blob|tree|compare)/|/user-attachments/|/archives/[A-Z0-9]|/d/[\w-]+"
    r"|/app/(?:kibana|discover)|/runbooks?/|/(?:grafana|kibana|dashboards?)\b|show_bug\.cgi"
)
# A data centre or site code with its number: dc2, iad1, use1, fra2, sjc1b.
_SITE_CODE = r"[a-z]{2,5}\d{1,2}[a-z]?"
# A container image's repository path and its tag or digest (acme/api:2.14.1,
# acme/api@sha256:…), after a registry's host.
_IMAGE = r"/[a-z0-9][\w.-]*(?:/[a-z0-9][\w.-]*)*(?::[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})"
# A numbered issue, merge request, epic, work item or pull request of a project (two path
# segments or more before it: group and project, or owner and repository).
_TRACKER_PATH = (
    r"^/(?:[\w.~-]+/){2,}(?:-/)?(?:issues|merge_requests|epics|work_items|pull|pulls)/\d+"
    r"(?![\w.-])"
)
# Short labels that name a site or a tier in machine names (web-01-sv-gprd: "sv" service).
_SITE_LABELS = _set("sv db be fe lb cny")
# Roles that read as something else in capitals: ES6 (ECMAScript), PG13 (a version), VM1.
_CAPITAL_NOT_ROLES = _set("es pg vm be fe ns mx api app git host node file server")


def machine_name(token: str, *, strict: bool = False) -> bool:
    """True for a machine name: letters (dashes inside allowed) then a machine number,
    maybe a range or glob (``web100[1-4]``, ``cache300*``, ``app2101-app2140``).  Written
    with a capital (``File-13``, at the start of a sentence), it needs a role and a dash.

    ``strict`` (for a label of a public domain, where a customer's or tenant's name such as
    ``acme22`` is likelier than a machine): a role, or three digits after letters that are
    no word, or four digits."""
    value = token.lower()
    titled = value != token
    if titled and token.isupper():
        # DB1, NFS-08, REDIS-03: a role in capitals (not ES6 or PG13), one to four digits.
        m = _regex(_MACHINE).fullmatch(value)
        parts = m.group(1).split("-") if m else []
        return bool(
            m
            and not strict
            and len(m.group(2)) <= 4
            and all(_role(p) for p in parts)
            and any(p not in _CAPITAL_NOT_ROLES for p in parts)
        )
    if titled and not (token[:1].isupper() and token[1:] == value[1:] and "-" in token):
        return False
    if "[" in value or "{" in value or "*" in value:
        value = _regex(_GLOB).sub("", value)
    if value in NOT_MACHINES or _regex(_STANDARD_ID).match(value):
        return False
    m = _regex(_MACHINE).fullmatch(value)
    if not m:
        return False
    letters, digits, tail = m.group(1), m.group(2), m.group(3)
    parts = letters.split("-")
    if any(_role(p) for p in parts):
        return True
    if titled:
        return False
    labels = tail.split("-")[1:]
    if any(label in INFRA_LABELS or label in _SITE_LABELS for label in labels):
        return True  # gitlab-01-sv-gprd: an environment or a site after the number
    padded = (digits[:1] == "0" and len(digits) >= 2) or any(
        label[:1] == "0" and label.isdigit() and len(label) >= 2 for label in labels
    )
    if not strict and "-" in value and padded:
        return True  # frontend-01, cass-use1c-09: a zero-padded machine number
    if parts[-1] in CALENDAR and len(digits) in (2, 4):
        return False
    if not all(lexicon.is_word(p) for p in parts):
        return len(digits) >= (3 if strict else 2)
    return len(digits) >= 4 or (len(digits) >= 3 and "-" in value and not strict)


def _role(part: str) -> bool:
    """A machine role, also in the plural (``runners-cache``, ``shared-runners-manager``)."""
    return part in HOST_ROLES or (part.endswith("s") and part[:-1] in HOST_ROLES)


def infra_label(label: str, *, strict: bool = False) -> bool:
    """True for a label that names a machine, an environment, a region or a data centre."""
    return (
        label in INFRA_LABELS
        or bool(_regex(_INFRA_SHAPE).fullmatch(label))
        or machine_name(label, strict=strict)
    )


def split(name: str) -> tuple[str, str]:
    """'host:port/path' -> ('host', ':port/path')."""
    cut = min((i for i in (name.find(":"), name.find("/")) if i >= 0), default=-1)
    return (name, "") if cut < 0 else (name[:cut], name[cut:])


def _suffixes(labels: list[str]) -> list[str]:
    """'a.b.c' -> ['a.b.c', 'b.c', 'c']: the name and every domain it is under."""
    return [".".join(labels[i:]) for i in range(len(labels))]


@lru_cache(maxsize=16)
def _prefix_map(prefixes: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for host, path in prefixes:
        out[host] = (*out.get(host, ()), path)
    return out


def under_prefix(labels: list[str], rest: str, prefixes: tuple[tuple[str, str], ...]) -> bool:
    """True when host and path fall under one of the (host, path) prefixes: the host or a
    sub-domain of it, and the path from a segment boundary ("/gl-infra" covers
    "/gl-infra/production", not "/gl-infra-public")."""
    by_host = _prefix_map(prefixes)
    path = rest[rest.find("/") :].lower() if "/" in rest else ""
    for domain in _suffixes(labels):
        for p_path in by_host.get(domain, ()):
            if not p_path or p_path == "/":
                return True
            stem = p_path.rstrip("/")
            if path == stem or path.startswith(stem + "/") or path.startswith(stem + "?"):
                return True
    return False


@lru_cache(maxsize=16)
def _as_set(domains: tuple[str, ...]) -> frozenset[str]:
    return frozenset(domains)


def classify(
    name: str,
    public_domains: tuple[str, ...],
    prefixes: tuple[tuple[str, str], ...],
    *,
    prose: bool,
) -> str | None:
    """INTERNAL, PUBLIC (allow-listed), THIRD_PARTY, or None when ``name`` is no host name.

    ``name`` is 'host[:port][/path]' as written; ``prose``: found in running text rather
    than in a URL, so file names, code paths and sentences run together are told apart.
    """
    written, rest = split(name)
    written = written.rstrip(".")
    host = written.lower()
    labels = host.split(".")
    if len(labels) < 2 or not all(labels):
        return None
    last = labels[-1]
    if prose and not last.isalpha():
        # lb01.dc2, web-3.iad1: a machine under a site code; else a version or a number.
        site = _regex(_SITE_CODE).fullmatch(last) is not None
        return INTERNAL if site and machine_name(labels[0]) else None
    if prose and last in FILE_EXTENSIONS:
        return None  # a file
    if under_prefix(labels, rest, prefixes):
        return INTERNAL
    domains = _suffixes(labels)
    # The longest allow-listed domain the name is under decides which labels are below it.
    allowed = next((i for i, d in enumerate(domains) if d in _as_set(public_domains)), None)
    if allowed is not None:
        below = labels[:allowed]
        if any(infra_label(label, strict=True) for label in below):
            return INTERNAL
        if rest[:1] == "/" and _regex(_TRACKER_PATH).match(rest):
            return INTERNAL  # a tracker reference
        return PUBLIC
    if any(d in SPECIAL_USE for d in domains):
        return INTERNAL
    tail = written.split(".")
    if prose and len(tail[-1]) > 1 and tail[-1].istitle() and tail[-2].islower():
        return None  # "restored.Next": a full stop without its space
    public = lexicon.suffix_length(labels)
    if public == 0:
        if prose and rest[:1] == ":" and rest[1:2].isdigit():
            return INTERNAL  # a port: nothing but a host is written like that
        if prose and (
            written != host or last in INSTANCE_SIZES or lexicon.suffix_length(labels[:1]) == 1
        ):
            return None  # "Node.js", "java.lang.Error", "com.example.app": code, not hosts
        if any(infra_label(label) for label in labels[:-1]):
            return INTERNAL
        if len(labels) >= 3 and not lexicon.is_word(last):
            return INTERNAL  # db.eqiad.wmnet, but not os.path.join
        return None if prose else INTERNAL
    if public >= len(labels):
        return None  # a bare public suffix ("co.uk")
    registrable = len(labels) - public - 1
    if labels[registrable] in TOOL_SITES or any(
        infra_label(label, strict=True) for label in labels[:registrable]
    ):
        return INTERNAL
    if "/" in rest and _regex(_WORK_PATH).search(rest):
        return INTERNAL
    if prose and rest[:1] == "/" and _regex(_IMAGE).fullmatch(rest):
        return INTERNAL  # a container image with its tag or digest: a deployment detail
    return THIRD_PARTY
