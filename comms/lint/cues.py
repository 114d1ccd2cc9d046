"""Names a text gives away by where it writes them: people and clusters without a shape.

``Hellman`` (a Kubernetes cluster) or ``Audun`` (an engineer) look like any other word;
the text says what they are:

- **clusters and projects**: a capitalised name before ``cluster`` (``our Hellman
  Kubernetes cluster``), after it (``the Kubernetes cluster Hellman``), or before
  ``(Kubernetes cluster)``;
- **people**: the subject of a timeline entry that did what people do (``10:05 Audun
  evaluated …``, ``| 08:37 | Emil notified the team``), a name thanked (``thanks, Niels
  Lunn``), and the speakers of meeting notes (``Nailia: Would we have …``, two speakers
  or more, each saying a sentence).

A cue only nominates: a name is kept when it is no everyday English or product word
(lexicon.py), no well-known technology (``TECHNOLOGY``) and no abbreviation.  A first
name that is also a word (``John``, ``Ross``) counts only from a timeline or meeting-notes
cue, and only when the text never writes it in lower case.  The linter then flags the
name wherever the text writes it (Leak.NamedInText); ``comms lint learn`` uses the same
cues to learn names from internal documents.  Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

from comms.lint import compiled, lexicon


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Well-known technology that internal documents name beside "cluster", "host" or "on", and
# that is no secret: products, projects, services and components.  Lower case.
TECHNOLOGY = _set(
    """
    adfs adsync airflow akamai alb alcide alertmanager alpine amazon android ansible apache
    argo argocd artifactory atlantis aurora auth0 aws azure bamboo bigquery bitbucket
    buildkite calico cassandra ceph chef cilium circleci citus clickhouse cloudflare
    cloudfront cloudsql cloudwatch cockroachdb consul containerd coredns cortex couchbase
    crossplane datadog debian digicert django docker dockerhub dynamodb ec2 ecr ecs efs
    eks elasticache elasticsearch elb envoy etcd fastly filebeat flannel fluentbit fluentd
    flux gcp gcr gcs geo gitaly github gitlab gke gluster golang grafana graphql hadoop
    haproxy helm heroku hetzner iam influxdb ingress istio jaeger jenkins jira kafka karpenter
    kas keda keycloak kiam kibana kinesis kms kube kubectl kubelet kubernetes k8s lambda
    letsencrypt linkerd linode logstash loki mariadb memcached metabase mimir minio
    mongodb mysql nagios neo4j netlify newrelic nexus nginx nlb nodejs nomad npm okta
    openresty opensearch openshift opsgenie packer pagerduty patroni pgbouncer pgpool pingdom
    postgres postgresql posthog praefect prometheus puma pypi rabbitmq rails rds redash
    redis redshift route53 ruby s3 sentry sidekiq slack snowflake snyk solr spark splunk
    sqs sns statuspage switchboard teleport terraform thanos traefik travis ubuntu unicorn
    vagrant vault vercel victorops webpack workhorse zendesk zookeeper zoom
    kube-system kube-public kube-proxy kube-dns kube-state-metrics node-exporter
    cert-manager external-dns cluster-autoscaler metrics-server ingress-nginx aws-node
    vpc-cni ebs-csi
    """
)
# Subjects of a timeline entry that are no person: pronouns, teams and roles.
NOT_PEOPLE = _set(
    "we weve we've i ive i've you youve you've he hes he's she shes she's they theyve "
    "they've it its it's lets let's someone somebody everyone everybody nobody nothing one all "
    "team teams support engineering engineers engineer ops sre sres devops security "
    "customer customers user users client clients developer developers oncall on-call "
    "management leadership infra infrastructure platform network database monitoring "
    "alerting automation bot system systems service services product release deploy "
    "staff admin admins administrator administrators manager managers director lead"
)
# What people, not systems, do at the start of a timeline entry (past and present).
_DEEDS = (
    "was assigned|were assigned|took over|looked|evaluated|asked|said|noticed|decided|"
    "suggested|agreed|joined|replied|realised|realized|volunteered|investigated|discovered|"
    "spotted|confirmed|proposed|mentioned|explained|informed|notified|contacted|called|"
    "messaged|pinged|paged|reached|found|removed|reverted|fixed|checked|posted|wrote|shared|"
    "raised|escalated|acknowledged|reviewed|approved|merged|tested|verified|requested|"
    "responded|helped|tried|talked|spoke|phoned|emailed|e-mailed|identified|declared|"
    "restarted|rolled back|ran|deployed|started investigating|opened|filed|"
    "looks|evaluates|asks|says|notices|decides|suggests|agrees|joins|replies|realises|"
    "realizes|volunteers|investigates|discovers|spots|confirms|proposes|mentions|explains|"
    "informs|notifies|contacts|calls|messages|pings|pages|reaches|finds|removes|reverts|"
    "fixes|checks|posts|writes|shares|raises|escalates|acknowledges|reviews|approves|merges|"
    "tests|verifies|requests|responds|helps|tries|talks|identifies|declares|restarts|"
    "rolls back|runs|deploys|starts investigating|opens|files|"
    "is looking|is investigating|is working|is checking|is handling|is leading|"
    "is coordinating|is following up|was looking|was investigating|was working|"
    "was checking|was handling|was leading|was coordinating|"
    "will look|will check|will follow up|will investigate|will write|will handle|will lead|"
    "will own|will reach|will review|will draft|will coordinate|will drive|will schedule"
)
_PEOPLE_VERBS = _DEEDS.replace(" ", r"[ \t]+")
# After two names ("Henrik and Mette identify"): the plain form of the same deeds.
_PLURAL_DEEDS = (
    "look|evaluate|ask|say|notice|decide|suggest|agree|join|reply|realise|realize|"
    "investigate|discover|spot|confirm|propose|mention|explain|inform|notify|contact|call|"
    "ping|page|find|remove|revert|fix|check|post|write|share|raise|escalate|acknowledge|"
    "review|approve|merge|test|verify|request|respond|help|try|talk|identify|declare|"
    "restart|roll back|deploy|discuss|work on|start investigating"
)
# Possessive (``{2,}+``): what follows a name starts with a space or a tab, so giving back
# letters never finds a match, only costs the attempts.
_NAME = r"[A-Z][a-z]{2,}+(?:[ \t]+[A-Z][a-z]{2,}+)?"
TIMELINE = (
    r"(?:^|\|)[ \t]*(?:[-*][ \t]+)?(?:\d{4}-\d\d-\d\d[ T])?\d{1,2}[:h]\d\d(?::\d\d)?[ \t]*"
    r"(?:UTC|Z)?[ \t]*(?:[-–|:][ \t]*)?(?:\|[ \t]*)?"
    rf"({_NAME})(?:[ \t]+(?:and|&)[ \t]+({_NAME}))?[ \t]+(?:{_PEOPLE_VERBS})\b"
)
THANKS = (
    r"\b[Tt]hanks?(?:[ \t]+(?:to|goes[ \t]+to))?,?[ \t]+"
    r"([A-Z][a-zà-ÿ]+(?:[ \t]+[A-Z][a-zà-ÿ'’-]+)?)(?![\w@-])"
)
SPEAKER = r"^[ \t]*([A-Z][a-z]{2,}):[ \t]+[^\s:]+(?:[ \t]+[^\s]+){3,}"
# An action item's owner in parentheses: "(Rasmus call for meeting)", "(Willi to follow up)".
OWNER = (
    r"\(([A-Z][a-z]{2,}(?:[ \t]+[A-Z][a-z]{2,})?)[ \t]+(?:to|will|call|calls|owns|owner|"
    r"drives|driving|leads|follows?[ \t]+up|is[ \t]+(?:driving|looking|following))\b"
)
_FIELDS = (
    r"(?i:Authors?|Owners?|Reporter|Reported[ \t]+by|Assignees?|Assigned[ \t]+to|"
    r"Incident[ \t]+(?:Commander|Lead|Manager|Owner)|Commander|IC|Scribe|"
    r"Comms(?:[ \t]+Lead)?|Communications[ \t]+Lead|On-?call|Responders?|Participants|"
    r"Attendees|Present|Contributors|Reviewers?|Created[ \t]+By|Written[ \t]+by|"
    r"Facilitator|Note[ \t]*taker|Technical[ \t]+Lead|Tech[ \t]+Lead|Escalated[ \t]+to)"
)
# A people field ("Author: Jane Doe", "Attendees: alice, bob") and a heading over a list of
# people ("## Attendees").  Several fields may share a line ("Owner: A. Reviewers: B").
PEOPLE_FIELD = rf"^[ \t>*_|-]*{_FIELDS}\*{{0,2}}[ \t]*:\*{{0,2}}[ \t]*(.+)$"
_MORE_FIELDS = rf"(?:\.|;|\|)[ \t]+\**{_FIELDS}\*{{0,2}}[ \t]*:\*{{0,2}}[ \t]*"
PEOPLE_HEADING = (
    r"^#{1,6}[ \t]+(?:Attendees|Participants|People(?:[ \t]+involved)?|Responders|Present|"
    r"Authors?|Contributors|Incident[ \t]+(?:team|commander|responders))[ \t]*:?[ \t]*$"
)
# A given name in running text is the Leak.PersonName rule's (the pack's scanners find it
# in the same pass as the other patterns); its deeds and the words before an addressed
# name are these.
# (Not "Hi" or "Thanks,": a reply greets and thanks its customer by name.)
_ADDRESSING = (
    "by|by:|cc|cc:|Cc|CC|pinged|asked|paged|told|thanks to|Thanks to|assigned to|"
    "escalated to|handed to|reached out to"
)
# Slack's copy of a message: "Aiko Tanaka  10:41 AM", a name alone on its line before the
# time (found from the time's colon).
SLACK_HEADER = (
    r"^[ \t>]*((?:[A-Z][\w'’.-]*[ \t]){0,3}[A-Z][\w'’.-]*|[a-z][\w.-]{1,38})[ \t]{1,4}"
    r"\[?\d{1,2}:\d\d(?::\d\d)?(?:[ \t]?[AaPp]\.?[Mm]\.?)?\]?[ \t]*$"
)
# A clock time that ends its line: where a chat copy's header line may be.
_LINE_END_TIME = r":(?<=\d:)\d\d(?::\d\d)?+(?:[ \t]?[AaPp]\.?[Mm]\.?)?+\]?+[ \t]*+$"
# An event line of a copied GitHub or GitLab thread: "hlindqvist commented 2 hours ago".
EVENT_LINE = (
    r"^[ \t]*([A-Za-z0-9][\w.-]{1,38})[ \t]+(?:commented|reviewed|approved|requested[ \t]+"
    r"(?:changes|a[ \t]+review)|merged|closed|reopened|opened|pushed|force-pushed|"
    r"mentioned|referenced|self-assigned|assigned|unassigned|added|removed|changed|deleted)"
    r"\b[^\n]{0,60}?\bago\b"
)
# Capitalised words that are given names too, but name a month, a day or a thing far more
# often ("May", "August", "Will", "Grace" period).
_NOT_FIRST_NAMES = _set(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri "
    "sat sun monday tuesday wednesday thursday friday saturday sunday will can mark bill grant "
    "chase hope rich frank jack guy art don long young white black brown green gray grey "
    "king hall wood stone rose page price little best love star sky summer dawn case post "
    "lane field ward wells banks hill bell cook cash gold major sharp strong swift wise "
    "early rush fox hunter walker baker carter turner parker mason miller porter joy faith "
    "ray sun new north south east west still just even then over under after before also "
    "only ghost user bot grace ruby crystal jade amber iris ivy holly daisy lily violet "
    "autumn winter storm river rain sage sterling chance destiny harmony melody trinity "
    "liberty justice royal noble brook cliff dale glen heath forest rock flint bear wolf "
    "hawk robin wren penny pearl opal olive miles dean drew gene norm max sunny sandy "
    "rusty dusty misty buddy lucky happy angel august june april march patience prudence "
    "constance felicity verity charity mercy honor honour unity echo ocean sierra "
    "phoenix orion atlas apollo nova luna stella aurora electra iris cloud pages page "
    "git gist copilot actions ginger pepper cherry apple berry kitty candy honey sugar "
    "tiger lion eagle falcon raven sparrow dove swan crane"
)
_CLUSTER_NAME = r"[A-Z][A-Za-z0-9]*[a-z0-9][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"
_PLATFORM = r"(?:Kubernetes|K8s|k8s|EKS|GKE|AKS|OpenShift|ECS)"
CLUSTER = (
    rf"(?<![\w@#/.-])({_CLUSTER_NAME})[ \t]+(?:{_PLATFORM}[ \t]+)?[Cc]lusters?\b(?!-)",
    rf"\b(?:{_PLATFORM}[ \t]+)?[Cc]luster[ \t]*[:=]?[ \t]+[`'\"]?({_CLUSTER_NAME})"
    r"(?![\w@-]|\.\w)",
    rf"(?<![\w@#/.-])({_CLUSTER_NAME})[ \t]+\((?:the[ \t]+)?{_PLATFORM}?[ \t]*cluster\)",
)


@cache
def regex(source: str) -> re.Pattern[str]:
    """A cue's regex, compiled on first use (most texts need none of them)."""
    return compiled.compile(source, re.MULTILINE)


PERSON = "person"
CLUSTER_NAME = "cluster"


def known(word: str, public: frozenset[str] = frozenset()) -> bool:
    """An everyday or product word (or its plural or -ed/-ing form), a technology, or one
    of ``public`` (lower case)."""
    key = (word, public)
    got = _KNOWN.get(key)
    if got is None:
        if len(_KNOWN) >= _MAX_KNOWN:
            _KNOWN.clear()
        got = _KNOWN[key] = _known(word, public)
    return got


# Answers of ``known``: a long text asks about the same capitalised words again and again.
_KNOWN: dict[tuple[str, frozenset[str]], bool] = {}
_MAX_KNOWN = 20_000


def _known(word: str, public: frozenset[str]) -> bool:
    low = word.lower().strip("'’")
    if low in TECHNOLOGY or low in public or low in NOT_PEOPLE:
        return True
    forms = {low}
    for suffix in ("s", "es", "ed", "d", "ing", "er", "ers"):
        if low.endswith(suffix) and len(low) - len(suffix) >= 3:
            forms.add(low[: -len(suffix)])
    return any(lexicon.is_word(f) for f in forms)


def _abbreviation(word: str) -> bool:
    return len(word) > 1 and word.isupper()


# Words that qualify a cluster rather than name it ("our Production Kubernetes cluster").
_CLUSTER_WORDS = _set(
    "production staging shared main primary secondary legacy new old test testing dev "
    "development internal external public private managed regional global default customer "
    "customers tenant tenants dedicated hosted single multi central core edge backup "
    "disaster recovery dr the our your their a an this that each every same other first "
    "second third last next previous current affected entire whole"
)


def _written_lower(text: str, words: set[str]) -> set[str]:
    """Which of ``words`` (lower case) the text writes as words of their own."""
    return {w for w in words if _standalone(text, w)}


def _standalone(text: str, word: str) -> bool:
    """True when ``word`` occurs in ``text`` with no letter, digit or '_' on either side:
    found with ``str.find`` (a common word's first occurrence usually is one); a word
    found often inside others ("ross" in "across") is settled by one regex pass."""
    pos = text.find(word)
    for _ in range(32):
        if pos < 0:
            return False
        end = pos + len(word)
        before = text[pos - 1] if pos else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before == "_" or after.isalnum() or after == "_"):
            return True
        pos = text.find(word, pos + 1)
    low = re.escape(word)
    return re.compile(rf"{low}(?<![\w]{low})(?![\w])").search(text, max(pos, 0)) is not None


def _lines_at(text: str, anchor: str, positions: Iterator[int] | None = None) -> list[str]:
    """The lines of ``text`` holding ``anchor`` (or the given positions), each once, in
    order: cues are looked for in these only, so a megabyte costs a few milliseconds."""
    seen: set[int] = set()
    out = []
    if positions is None:
        positions = (m.start() for m in regex(re.escape(anchor)).finditer(text))
    for pos in positions:
        start = text.rfind("\n", 0, pos) + 1
        if start in seen:
            continue
        seen.add(start)
        end = text.find("\n", pos)
        out.append(text[start : len(text) if end < 0 else end].rstrip("\r"))
    return out


def _windows(text: str, anchor: str, width: int) -> list[str]:
    """The stretches of ``text`` around each ``anchor`` (``width`` characters either side,
    within its line), each once: a cue next to a word is looked for there only."""
    out = []
    for m in regex(re.escape(anchor)).finditer(text):
        start = max(text.rfind("\n", 0, m.start()) + 1, m.start() - width)
        end = text.find("\n", m.end())
        end = min(len(text) if end < 0 else end, m.end() + width)
        out.append(text[start:end])
    return list(dict.fromkeys(out))


def cluster_names(text: str, public: frozenset[str] = frozenset()) -> set[str]:
    """Names the text writes as a cluster's (see the module docstring).  With a platform
    word between ("our Oxygen Kubernetes cluster", "the Kubernetes cluster Oxygen"), an
    everyday word counts too when the text never writes it in lower case."""
    if "luster" not in text:
        return set()
    out = set()
    words: set[str] = set()
    for line in _windows(text, "luster", 80):
        for number, source in enumerate(CLUSTER):
            for m in regex(source).finditer(line):
                name = m.group(1)
                parts = [p for p in name.split("-") if p]
                if len(name) < 3 or _abbreviation(name) or name.lower() in TECHNOLOGY:
                    continue
                if any(p.lower() in public for p in parts):
                    continue
                if any(not known(p, public) and len(p) >= 3 for p in parts if p.isalpha()):
                    out.add(name)
                    continue
                platform = m.group(0)[len(name) :] if number != 1 else m.group(0)
                strong = number == 2 or regex(_PLATFORM).search(platform) is not None
                if strong and name.isalpha() and name.lower() not in _CLUSTER_WORDS:
                    words.add(name)  # an everyday word: kept if never in lower case
    lowered = _written_lower(text, {w.lower() for w in words})
    return out | {w for w in words if w.lower() not in lowered}


# The first step of each person cue: found fast over the whole text (a clock time's colon
# before a name and a verb, a colon, "hank", "(", a heading); the cue's own regex then
# reads that line only.  (A time written "10h05" is left to the learner.)
# (Possessive where giving back cannot help: the spaces before what must be a letter or a
# separator, the seconds before what must be a space, a separator or a name.  Not the
# zone: "10:05 Zed evaluated" needs the "Z" back.)
_DEED = (
    r":(?<=\d:)\d\d(?::\d\d)?+[ \t]*+(?:UTC|Z)?[ \t]*+(?:[-–|:][ \t]*+)?(?:\|[ \t]*+)?"
    rf"{_NAME}(?:[ \t]+(?:and|&)[ \t]+{_NAME})?[ \t]++(?:{_PEOPLE_VERBS})\b"
)


def first_name(word: str, public: frozenset[str] = frozenset()) -> bool:
    """A given name as written ("Priya", "Henrik"), and not one that more often names a
    month, a day or a thing ("May", "Grace"), a technology or a public name."""
    low = word.lower()
    return (
        low not in _NOT_FIRST_NAMES
        and low not in NOT_PEOPLE
        and low not in TECHNOLOGY
        and low not in public
        and lexicon.is_first_name(word)
    )


def _full_name(first: str, last: str, public: frozenset[str]) -> bool:
    """A given name, then a family name: one the name data knows, or a capitalised word
    that is no everyday word ("Oyelaran")."""
    if not first_name(first.split("-")[0], public) or _abbreviation(last):
        return False
    family = last.split()[-1]
    low = family.lower()
    if low in TECHNOLOGY or low in public or low in NOT_PEOPLE or low in _NOT_FIRST_NAMES:
        return False
    if not known(family, public):
        return True
    # Both words the word list knows (it counts "sanjay" and "patel" as words): a family name
    # the name data knows, after a given name ("Sanjay Patel"; "Grant Access" is neither).
    return lexicon.is_surname(family)


def person_names(text: str, public: frozenset[str] = frozenset()) -> set[str]:
    """Names the text writes as a person's (see the module docstring)."""
    out: set[str] = set()
    alone: set[str] = set()
    pending: list[tuple[str, list[str]]] = []

    def person(name: str, *, word_names: bool) -> None:
        words = name.split()
        if not words or any(_abbreviation(w) for w in words):
            return
        lows = [w.lower() for w in words]
        if any(
            low in TECHNOLOGY or low in public or low in NOT_PEOPLE or low in _NOT_FIRST_NAMES
            for low in lows
        ):
            return
        if any(not known(w, public) for w in words):
            out.add(name)
            if len(words) == 1:
                alone.add(name)
            # Each part that is no word on its own too: "Niels Lunn", then "Niels"; and a
            # given name that is a word ("Marcus") when the text never writes it lower case.
            for w in words if len(words) > 1 else ():
                if not known(w, public):
                    out.add(w)
                elif first_name(w, public) or lexicon.is_surname(w):
                    pending.append((w, [w.lower()]))
        elif (
            word_names
            and first_name(words[0], public)
            and (len(words) == 1 or lexicon.is_surname(words[-1]))
        ):
            # "John evaluated" (kept if "john" is nowhere); two words, a given name and a
            # family name ("Will Chase" only if neither is written in lower case).
            pending.append((name, lows))

    def given(name: str) -> None:
        """A single capitalised word a cue puts where a person stands: a given name, or a
        word that is no everyday word."""
        if first_name(name, public) or not known(name, public):
            person(name, word_names=True)

    deeds = (m.start() for m in regex(_DEED).finditer(text))
    for line in _lines_at(text, "", deeds):
        for m in regex(TIMELINE).finditer(line):
            for name in m.groups():
                if name:
                    person(name, word_names=True)
    speakers: set[str] = set()
    values: list[str] = []
    if ":" in text:
        colons = (m.start() for m in regex(r":[ \t*]").finditer(text))
        for line in _lines_at(text, "", colons):
            field = regex(PEOPLE_FIELD).match(line)
            if field:
                values += regex(_MORE_FIELDS).split(field.group(1))
                continue
            speaker = regex(SPEAKER).match(line)
            if speaker:
                speakers.add(speaker.group(1))
    if len(speakers) >= 2:
        for name in speakers:
            person(name, word_names=True)
    if "hank" in text:
        for line in _lines_at(text, "hank"):
            for m in regex(THANKS).finditer(line):
                person(m.group(1), word_names=False)  # "Thanks, Michal": maybe a customer
    if "(" in text:
        for m in regex(OWNER).finditer(text):
            person(m.group(1), word_names=True)
    if "#" in text:
        starts = [0] if text[:1] == "#" else []
        starts += [m.start() + 1 for m in regex(r"\n#").finditer(text)]
        for start in starts:
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            if regex(PEOPLE_HEADING).match(text[start:end].rstrip("\r")):
                values += list_after(text[end : end + 4000].splitlines(), 0)
    for item in people_items(values):
        if item[:1].isupper() and " " in item:
            person(item, word_names=True)
        elif (
            len(item) >= 3
            and not _abbreviation(item)
            and item.lower() not in NOT_PEOPLE
            and item.lower() not in TECHNOLOGY
            and item.lower() not in public
        ):
            out.add(item)  # a user name or a first name, listed as a person
    if ":" in text:
        times = (m.start() for m in regex(_LINE_END_TIME).finditer(text))
        for line in _lines_at(text, "", times):
            header = regex(SLACK_HEADER).match(line)
            if header is None:
                continue
            name = header.group(1).strip()
            if name[:1].islower():
                out.add(name)  # a user name
            elif not any(w in _HEADINGS for w in name.split()):
                person(name, word_names=True)
    if " ago" in text:
        for line in _lines_at(text, " ago"):
            event = regex(EVENT_LINE).match(line)
            if (
                event
                and not known(event.group(1), public)
                and event.group(1).lower() not in NOT_PEOPLE
            ):
                out.add(event.group(1))
    lowered = _written_lower(text, {low for _, lows in pending for low in lows})
    out.update(name for name, lows in pending if not lowered.intersection(lows))
    # A name found on its own that is no word is a person's in lower case too (a chat
    # nick: "lantao"); not every part of a full name (that would cost every search).
    out.update(n.lower() for n in alone if n in out and len(n) >= 4 and not known(n, public))
    return out


# Words of a status heading with a time ("Update  10:30 AM"), never a speaker.
_HEADINGS = _set(
    "Update Updates Status Maintenance Incident Resolved Investigating Identified Monitoring "
    "Scheduled Notice Alert Outage Postmortem Summary Timeline Note Service Services "
    "Degraded Operational Partial Major Minor Final Initial Next Latest Current Planned "
    "Time Date Start End Started Ended Today Yesterday Tomorrow"
)


def people_items(values: list[str]) -> list[str]:
    """The names in the values of people fields and the lines of people lists."""
    out = []
    for value in values:
        for item in re.split(r"[,;/]|[ \t]+(?:and|&)[ \t]+", value):
            item = re.sub(r"\([^)]*\)|<[^>]*>|\[[^\]]*\]", " ", item).strip(" \t*_-@")
            if re.fullmatch(r"(?:[A-Z][\w'’-]+[ \t]+){1,2}[A-Z][\w'’-]+|[A-Za-z][\w.-]+", item):
                out.append(item)
    return out


def list_after(lines: list[str], heading: int) -> list[str]:
    """The list items (or plain lines) under the heading at ``lines[heading]``, up to the
    next heading or gap."""
    found: list[str] = []
    for line in lines[heading + 1 : heading + 40]:
        stripped = line.strip()
        if not stripped:
            if found:
                break
            continue
        if stripped.startswith("#"):
            break
        found.append(re.sub(r"^[-*+][ \t]+", "", stripped))
    return found


# Kubernetes objects named beside their kind (Leak.ObjectName finds them; this decides the
# name): "namespace payments", "statefulset redis-cart", "the kafka-exporter pod".  Names
# that are Kubernetes's own or no name are left alone.
_NOT_OBJECTS = _set(
    "default kube-system kube-public kube-node-lease default-pool flux-system istio-system "
    "gatekeeper-system cattle-system calico-system tigera-operator the a an and or is are was were be been "
    "for in of to on at by with from into that this these those it its their our your each "
    "every all any some no not one two per same new old other which whole level scoped wide "
    "isolation quota quotas label labels annotation annotations name names deletion creation "
    "configuration config policy policies resource resources scope selector selectors "
    "controller controllers object objects owner owners admin admins limit limits "
    "termination finalizer finalizers lifecycle manifest manifests template templates spec "
    "status state events event logs log settings setting field fields version versions "
    "upgrade upgrades update updates rollout rollouts restart restarts status-code "
    "autoscaler autoscaling capacity size sizes count was-not did does do has have had will "
    "would could should can may might must then than so as if when where while after before "
    "up down out over under again also only just still yet instead rather either neither "
    "namespace namespaces pod pods deployment deployments cluster clusters node nodes "
    "service services statefulset statefulsets daemonset daemonsets replicaset replicasets "
    "cronjob cronjobs job jobs container containers ingress helm chart charts release "
    "releases kustomization kustomizations configmap configmaps secret secrets pvc pvcs "
    "rollback rollbacks redeploy redeploys failover hotfix crashloop crashlooping "
    "crashloopbackoff oomkilled evicted pending terminating running ready notready "
    "healthy unhealthy degraded restarting"
)


def _object_name(
    name: str, quoted: bool, kind: str, public: frozenset[str], *, before: bool
) -> bool:
    """Whether ``name`` beside ``kind`` (written ``before`` it, or after it; ``quoted``)
    names a Kubernetes object: in quotes or after kubectl's "-n", any name; with a dash or a
    digit, one that is no English compound ("anti-affinity", "100-node"); a plain word only
    after "namespace", or when it is no word at all (not before a kind: "fileserver
    cluster")."""
    if name in _NOT_OBJECTS or name in TECHNOLOGY or name in public or len(name) < 3:
        return False
    if not any(c.isalpha() for c in name) or regex(_VERSION).fullmatch(name):
        return False
    if quoted or kind.startswith("-"):
        return True
    if "-" in name or any(c.isdigit() for c in name):
        parts = name.split("-")
        if parts[0] in _COMPOUND_HEADS or all(p.isdigit() for p in parts[:1]):
            return False  # "anti-affinity", "100-node": English, not a name
        # Before the kind, an adjective is as likely ("smaller-disk cluster"): some part
        # must be no word ("prod-europe-west1", "web1-pool").
        return not before or any(
            not p.isalpha() or not known(p, public) for p in parts if p not in TECHNOLOGY
        )
    if before or kind.startswith("cluster"):
        return False  # "fileserver cluster": a plain word before a kind is a description
    return len(name) >= 4 and not known(name, public)  # "HelmRelease podinfo"


# First parts of hyphenated English words after or before a kind ("pod anti-affinity").
_COMPOUND_HEADS = _set(
    "anti auto re multi non pre co self in out add read write roll well single double "
    "high low long short full half cross inter intra sub super over under up down on off "
    "one two three four five ten hundred zero per post mid semi de un ill crash"
)
_VERSION = r"v?\d+(?:[.-]\d+)*[a-z]?\d*|[a-z]{1,3}\d{1,2}"


@cache
def _public_words(domains: tuple[str, ...], audience: str | None) -> frozenset[str]:
    words = {w for d in domains for w in regex(r"[.\-_]+").split(d.lower()) if w}
    if audience:
        words |= {w for w in regex(r"[\s.\-_]+").split(audience.lower()) if w}
    return frozenset(words)


def names(text: str, public_domains: tuple[str, ...] = (), audience: str | None = None) -> set[str]:
    """Every name the text gives away by a cue: people and clusters; never a word of the
    allow-listed domains or of the audience's name."""
    public = _public_words(public_domains, audience)
    return person_names(text, public) | cluster_names(text, public)
