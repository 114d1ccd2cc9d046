"""incident.io in the loop: import and follow incidents, take its webhooks, tell Slack.

Incidents are declared and run in incident.io (every Dedicated tenant but PubSec); this
module turns its records into comms incidents and keeps them in step.  Pure: it reads
incident.io through the :class:`IncidentSource` port (``comms.adapters.incidentio``), the
store through ``comms.ports``, and takes ``now``; it opens no socket and reads no setting.

    import_incident(ref|url) ─┐                      ┌─ store.create_incident + incident.linked
    sync_incident(ref) ───────┼─ apply_incident(io) ─┤
    handle_webhook(delivery) ─┘                      └─ service.set_incident (+ incidentio.synced)
    note_sent(drafts) → slack_note_for(draft) → SlackNote → SlackPoster (+ slack.noted)

The link (incident.io id, permalink, Slack channel) is the ``incident.linked`` event in the
incident's log, each applied state is logged as ``incidentio.synced`` and each note posted
as ``slack.noted``: no schema of their own.  What the webhook receiver remembers between
deliveries (ids seen, the newest state per incident) is the :class:`WebhookMemory` port.  A field follows incident.io when incident.io changes it; a change made in comms (a
customer-facing title, a status incident.io has no name for) stays until incident.io
changes that field again.  PubSec (Dedicated for Government) incidents never come from
incident.io nor go to Slack: tenants flagged pubsec are refused, and a comms incident that
is pubsec is neither fetched nor posted about.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from comms.errors import CommsError, ConfigError, NotFoundError, StoreError, UsageError
from comms.models import DraftState, Event, Incident, Severity, Status, Tenant
from comms.notice import slack_escape  # the review notices' escaping: one rule for Slack
from comms.times import format_time, from_iso, isoformat, utc

if TYPE_CHECKING:
    from comms.models import Revision
    from comms.ports import Store

SOURCE = "incident.io"  # the actor of webhook changes, and who "confirmed" a status
LINK_EVENT = "incident.linked"
SYNC_EVENT = "incidentio.synced"
NOTE_EVENT = "slack.noted"  # the Slack note of a sent revision was posted
TENANT_FIELD = "Affected tenants"
# Standard Webhooks: a delivery signed longer ago (or further ahead) than this is refused.
TOLERANCE = timedelta(minutes=5)
# How long a webhook memory keeps a delivery id (see WebhookMemory).
DELIVERY_IDS_KEPT = 2 * TOLERANCE
MAX_BODY_BYTES = 1024 * 1024

# incident.io's default severities, plus names that already say which comms severity.
DEFAULT_SEVERITIES: dict[str, Severity] = {
    "critical": Severity.S1,
    "major": Severity.S2,
    "minor": Severity.S3,
    **{f"{p}{s.value[1]}": s for s in Severity for p in ("s", "sev", "p")},
}
# Status names inside incident.io's "live" category (configurable per team) that say more
# than the category does.  Keys are lower case.
DEFAULT_STATUSES: dict[str, Status | None] = {
    "investigating": Status.INVESTIGATING,
    "identified": Status.IDENTIFIED,
    "fixing": Status.MITIGATING,
    "mitigating": Status.MITIGATING,
    "monitoring": Status.MONITORING,
}
# Status categories (fixed by incident.io) → comms status; None keeps the current one.
CATEGORY_STATUS: dict[str, Status | None] = {
    "triage": Status.INVESTIGATING,
    "live": Status.INVESTIGATING,
    "paused": None,
    "learning": Status.RESOLVED,  # "Post-incident": customer impact is over
    "closed": Status.RESOLVED,
    "declined": Status.RESOLVED,
    "canceled": Status.RESOLVED,
    "merged": Status.RESOLVED,
}
NOT_INCIDENTS = ("declined", "canceled", "merged")  # never imported: nothing happened
REAL_MODES = ("standard", "retrospective")  # test and tutorial incidents stay out


# -- what incident.io says, as our own records ----------------------------------------------


@dataclass(frozen=True, slots=True)
class IoSeverity:
    """An incident.io severity; a higher ``rank`` is more severe."""

    id: str
    name: str
    rank: int = 0


@dataclass(frozen=True, slots=True)
class IoStatus:
    """An incident.io status; ``category`` is triage, live, learning, closed, paused, …"""

    id: str
    name: str
    category: str


@dataclass(frozen=True, slots=True)
class IoValue:
    """One value of a custom field: an option's or catalog entry's name, or text."""

    label: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IoFieldEntry:
    """A custom field as set on one incident."""

    field_id: str
    field_name: str
    values: tuple[IoValue, ...] = ()


@dataclass(frozen=True, slots=True)
class IoCustomField:
    """A custom field of the organisation."""

    id: str
    name: str
    field_type: str


@dataclass(frozen=True, slots=True)
class IoIncident:
    """The parts of an incident.io incident comms uses (field names as in API v2)."""

    id: str
    reference: str
    name: str
    status: IoStatus
    severity: IoSeverity | None
    created_at: datetime
    updated_at: datetime
    mode: str = "standard"
    visibility: str = "public"
    permalink: str = ""
    slack_channel_id: str = ""
    custom_fields: tuple[IoFieldEntry, ...] = ()

    def entry(self, name: str) -> IoFieldEntry | None:
        """The custom field entry named ``name`` (case-insensitive), if set."""
        wanted = name.casefold()
        return next((e for e in self.custom_fields if e.field_name.casefold() == wanted), None)


class MalformedError(UsageError, ValueError):
    """Data from incident.io that is not in the documented shape."""


def _obj(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedError(f"{where} is not a JSON object")
    return data


def _str(data: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise MalformedError(f"{where}.{key} is missing or not a string")
    return value


def _time(data: dict[str, Any], key: str, where: str) -> datetime:
    text = _str(data, key, where)
    try:
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise MalformedError(f"{where}.{key} is not an ISO 8601 time with a zone") from None


def parse_severity(data: Any, where: str = "severity") -> IoSeverity:
    """A severity object (``id``, ``name``, ``rank``) as :class:`IoSeverity`."""
    obj = _obj(data, where)
    rank = obj.get("rank", 0)
    return IoSeverity(
        _str(obj, "id", where), _str(obj, "name", where), rank if isinstance(rank, int) else 0
    )


def parse_status(data: Any, where: str = "incident_status") -> IoStatus:
    """An incident status object (``id``, ``name``, ``category``) as :class:`IoStatus`."""
    obj = _obj(data, where)
    return IoStatus(_str(obj, "id", where), _str(obj, "name", where), _str(obj, "category", where))


def parse_custom_field(data: Any, where: str = "custom_field") -> IoCustomField:
    """A custom field object as :class:`IoCustomField`."""
    obj = _obj(data, where)
    return IoCustomField(
        _str(obj, "id", where), _str(obj, "name", where), _str(obj, "field_type", where, "")
    )


def _values(items: Any, where: str) -> tuple[IoValue, ...]:
    if not isinstance(items, list):
        raise MalformedError(f"{where} is not a list")
    found: list[IoValue] = []
    for n, raw in enumerate(items):
        item = _obj(raw, f"{where}[{n}]")
        option, entry = item.get("value_option"), item.get("value_catalog_entry")
        if isinstance(option, dict) and isinstance(option.get("value"), str):
            found.append(IoValue(option["value"]))
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            aliases = [a for a in entry.get("aliases") or [] if isinstance(a, str)]
            if isinstance(entry.get("external_id"), str):
                aliases.append(entry["external_id"])
            found.append(IoValue(entry["name"], tuple(aliases)))
        else:  # text fields hold a list typed by hand: "acme, initech"
            for key in ("value_text", "value_link", "value_numeric"):
                if isinstance(item.get(key), str):
                    found += [
                        IoValue(p.strip()) for p in re.split(r"[,;\n]", item[key]) if p.strip()
                    ]
    return tuple(found)


def parse_incident(data: Any, where: str = "incident") -> IoIncident:
    """An incident object of API v2 (or a webhook's) as :class:`IoIncident`;
    ``MalformedError`` names the first field that is not as documented."""
    obj = _obj(data, where)
    entries = obj.get("custom_field_entries") or []
    if not isinstance(entries, list):
        raise MalformedError(f"{where}.custom_field_entries is not a list")
    fields = []
    for n, raw in enumerate(entries):
        entry = _obj(raw, f"{where}.custom_field_entries[{n}]")
        info = _obj(entry.get("custom_field"), f"{where}.custom_field_entries[{n}].custom_field")
        fields.append(
            IoFieldEntry(
                _str(info, "id", "custom_field"),
                _str(info, "name", "custom_field"),
                _values(entry.get("values") or [], f"{where}.custom_field_entries[{n}].values"),
            )
        )
    severity = obj.get("severity")
    return IoIncident(
        id=_str(obj, "id", where),
        reference=_str(obj, "reference", where),
        name=_str(obj, "name", where),
        status=parse_status(obj.get("incident_status"), f"{where}.incident_status"),
        severity=None if severity is None else parse_severity(severity, f"{where}.severity"),
        created_at=_time(obj, "created_at", where),
        updated_at=_time(obj, "updated_at", where),
        mode=_str(obj, "mode", where, "standard"),
        visibility=_str(obj, "visibility", where, "public"),
        permalink=_str(obj, "permalink", where, ""),
        slack_channel_id=_str(obj, "slack_channel_id", where, ""),
        custom_fields=tuple(fields),
    )


# -- ports ------------------------------------------------------------------------------------


class IncidentSource(Protocol):
    """incident.io's incidents, read one at a time (``comms.adapters.incidentio``)."""

    def incident(self, key: str) -> IoIncident:
        """The incident whose id, or the numeric part of whose reference, is ``key``;
        ``NotFoundError`` when there is none, ``ConfigError`` for a refused key."""


class IncidentCatalog(Protocol):
    """What an incident.io organisation has configured."""

    def severities(self) -> list[IoSeverity]:
        """Every severity, least severe first."""

    def statuses(self) -> list[IoStatus]:
        """Every incident status."""

    def custom_fields(self) -> list[IoCustomField]:
        """Every custom field."""


class IncidentioAPI(IncidentSource, IncidentCatalog, Protocol):
    """Both, as the adapter's client offers them; closed when done."""

    def close(self) -> None:
        """Release the client's connections."""


# -- mapping ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """How incident.io's values become comms': the ``[incidentio]`` table, over defaults.

    ``severities`` and ``statuses`` are keyed by incident.io's names in lower case.
    """

    severities: dict[str, Severity] = field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    statuses: dict[str, Status | None] = field(default_factory=lambda: dict(DEFAULT_STATUSES))
    tenant_field: str = TENANT_FIELD

    def severity_for(self, io: IoIncident) -> Severity:
        """The comms severity of ``io``; ``UsageError`` with the line to add when unmapped."""
        if io.severity is None:
            raise UsageError(
                f"{io.reference} has no severity in incident.io yet; set one there, then "
                "import or sync it again"
            )
        found = self.severities.get(io.severity.name.strip().casefold())
        if found is None:
            raise UsageError(
                f"{io.reference}: incident.io severity '{io.severity.name}' has no comms "
                f"severity; add a line under [incidentio.severities] in comms.toml, e.g. "
                f'"{io.severity.name}" = "S2" (S1 most severe … S4)'
            )
        return found

    def status_for(self, status: IoStatus) -> Status | None:
        """The comms status of an incident.io status: by its name, else by its category;
        None when neither says (a paused incident, a live status of the team's own)."""
        named = status.name.strip().casefold()
        if named in self.statuses:
            return self.statuses[named]
        if status.category == "live":
            return None  # a live status of the team's own: not guessed
        return CATEGORY_STATUS.get(status.category)


def rules_from_table(table: Mapping[str, Any]) -> Rules:
    """:class:`Rules` from the ``[incidentio]`` table (``severities``, ``statuses``,
    ``tenant_field``; other keys are the adapter's); ``ConfigError`` names a bad entry."""
    severities = dict(DEFAULT_SEVERITIES)
    raw = table.get("severities", {})
    if not isinstance(raw, dict):
        raise ConfigError('incidentio.severities must be a table like { "Critical" = "S1" }')
    for name, value in raw.items():
        if value not in {s.value for s in Severity}:
            raise ConfigError(f'incidentio.severities."{name}" must be one of S1, S2, S3, S4')
        severities[name.strip().casefold()] = Severity(value)
    statuses = dict(DEFAULT_STATUSES)
    raw = table.get("statuses", {})
    if not isinstance(raw, dict):
        raise ConfigError('incidentio.statuses must be a table like { "Fixing" = "mitigating" }')
    known = [s.value for s in Status]
    for name, value in raw.items():
        if value not in (*known, "keep"):
            raise ConfigError(
                f'incidentio.statuses."{name}" must be one of {", ".join(known)} or keep'
            )
        statuses[name.strip().casefold()] = None if value == "keep" else Status(value)
    tenant_field = table.get("tenant_field", TENANT_FIELD)
    if not isinstance(tenant_field, str) or not tenant_field.strip():
        raise ConfigError(
            "incidentio.tenant_field must name a custom field, e.g. 'Affected tenants'"
        )
    return Rules(severities, statuses, tenant_field.strip())


def unmapped(catalog: IncidentCatalog, rules: Rules) -> list[str]:
    """What of the organisation's configuration these rules cannot map, one line each:
    severities, live statuses without a name mapping, a missing tenant field."""
    found = [
        f'severity "{s.name}": add it under [incidentio.severities]'
        for s in catalog.severities()
        if s.name.strip().casefold() not in rules.severities
    ]
    found += [
        f'status "{s.name}" (live) is kept as it is in comms; map it under [incidentio.statuses]'
        for s in catalog.statuses()
        if s.category == "live" and s.name.strip().casefold() not in rules.statuses
    ]
    names = {f.name.casefold() for f in catalog.custom_fields()}
    if rules.tenant_field.casefold() not in names:
        found.append(f"no custom field '{rules.tenant_field}': incidents import without tenants")
    return found


def incident_key(ref_or_url: str) -> str:
    """What the API's show endpoint takes for ``INC-2291``, ``2291``, an incident id, or an
    incident's URL (``https://app.incident.io/<org>/incidents/2291``)."""
    text = ref_or_url.strip()
    url = re.fullmatch(
        r"https?://[^/\s]+/(?:[^\s?#]*/)?incidents/([A-Za-z0-9-]+)/?(?:[?#]\S*)?", text
    )
    if url:
        text = url.group(1)
    ref = re.fullmatch(r"[A-Za-z]+-(\d+)", text)
    if ref:
        return ref.group(1)
    if re.fullmatch(r"\d+|[0-9A-HJKMNP-TV-Z]{26}", text, re.I):
        return text
    raise UsageError(
        f"'{ref_or_url[:80]}' is not an incident.io incident; give its reference (INC-2291) "
        "or its URL (https://app.incident.io/…/incidents/2291)"
    )


# -- the link and the state last applied -----------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A comms incident's incident.io counterpart, from its ``incident.linked`` event."""

    id: str
    reference: str
    permalink: str = ""
    slack_channel_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dataclasses.asdict(self)


def _state(io: IoIncident, tenants: Sequence[str]) -> dict[str, Any]:
    """What an applied incident.io state is remembered by (the data of the events)."""
    return {
        "id": io.id,
        "reference": io.reference,
        "name": io.name,
        "severity": io.severity.name if io.severity else None,
        "status": io.status.name,
        "category": io.status.category,
        "tenants": list(tenants),
        "updated_at": isoformat(io.updated_at),
    }


# The parts of the last applied state whose change is worth an ``incidentio.synced`` event.
_REMEMBERED = ("name", "severity", "status", "category", "slack_channel_id")


def _history(events: Sequence[Event]) -> tuple[Link | None, dict[str, Any]]:
    """The incident's link and the incident.io state last applied to it."""
    link: Link | None = None
    last: dict[str, Any] = {}
    for event in events:
        if event.type == LINK_EVENT:
            d = event.data
            link = Link(
                str(d.get("id", "")),
                str(d.get("reference", "")),
                str(d.get("permalink", "")),
                str(d.get("slack_channel_id", "")),
            )
            last = dict(d)
        elif event.type == SYNC_EVENT and link is not None:
            last = {**last, **event.data}
            if event.data.get("slack_channel_id"):
                link = dataclasses.replace(
                    link, slack_channel_id=str(event.data["slack_channel_id"])
                )
    return link, last


def link_of(store: Store, ref: str) -> Link | None:
    """The incident.io incident that comms incident ``ref`` is linked to, if any."""
    return _history(store.events(ref))[0]


# -- applying an incident.io state -----------------------------------------------------------

Action = Literal["imported", "synced", "unchanged", "stale"]


@dataclass(frozen=True)
class Applied:
    """What importing or syncing did: the comms incident as it now stands, the changes
    made (field → ``{from, to}``), and notes for the person (what did not map, what to do)."""

    incident: Incident
    action: Action
    link: Link
    changes: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "action": self.action,
            "incident": self.incident.to_dict(),
            "link": self.link.to_dict(),
            "changes": self.changes,
            "notes": list(self.notes),
        }


class PubsecError(UsageError):
    """A PubSec (Dedicated for Government) incident or tenant met incident.io or Slack."""


def _tenants(
    io: IoIncident, rules: Rules, known: Sequence[Tenant]
) -> tuple[list[Tenant], list[str], bool]:
    """The comms tenants the tenant field names, the values naming none, and whether the
    field is set at all."""
    entry = io.entry(rules.tenant_field)
    if entry is None or not entry.values:
        return [], [], False
    index: dict[str, Tenant] = {}
    for tenant in known:
        for name in (tenant.id, tenant.name, *tenant.aliases):
            index.setdefault(name.strip().casefold(), tenant)
    found: dict[str, Tenant] = {}
    unknown: list[str] = []
    for value in entry.values:
        hit = next(
            (
                index[n.strip().casefold()]
                for n in (value.label, *value.aliases)
                if n.strip().casefold() in index
            ),
            None,
        )
        if hit is None:
            unknown.append(value.label)
        else:
            found.setdefault(hit.id, hit)
    return list(found.values()), unknown, True


def _refuse_pubsec(io: IoIncident, tenants: Sequence[Tenant], rules: Rules) -> None:
    pubsec = [t.id for t in tenants if t.pubsec]
    if pubsec:
        names = ", ".join(pubsec)
        raise PubsecError(
            f"{io.reference}: incident.io names PubSec tenant {names} in '{rules.tenant_field}'; "
            "PubSec (Dedicated for Government) incidents are never run in incident.io or "
            "Slack, so nothing was imported. Remove it from the field in incident.io and open "
            f"the PubSec incident in comms: comms incident open --tenant {pubsec[0]} …"
        )


def _check_importable(io: IoIncident) -> None:
    if io.mode not in REAL_MODES:
        raise UsageError(
            f"{io.reference} is a {io.mode} incident in incident.io; comms imports real incidents only"
        )
    if io.status.category in NOT_INCIDENTS:
        raise UsageError(
            f"{io.reference} is {io.status.category} in incident.io ({io.status.name}); there is "
            "nothing to import"
        )


def _title(io: IoIncident) -> str:
    from comms.limits import check_size
    from comms.lint.secrets import refuse

    title = " ".join(check_size("the incident.io name", io.name).split())
    refuse(f"{io.reference}'s name in incident.io", title)
    if not title:
        raise UsageError(f"{io.reference} has no name in incident.io; name it there first")
    return title


def _notes(
    io: IoIncident,
    rules: Rules,
    ref: str,
    unknown: Sequence[str],
    field_set: bool,
    has_tenants: bool,
) -> list[str]:
    notes = []
    if unknown:
        values = ", ".join(f"'{v}'" for v in unknown)
        notes.append(
            f"{values} in '{rules.tenant_field}' name no comms tenant; add them (comms tenants "
            f"add ID --name … --alias …, or comms tenants sync), then comms incident sync {ref}"
        )
    if not has_tenants:
        where = "is empty" if not field_set else "names no known tenant"
        notes.append(
            f"no tenants: '{rules.tenant_field}' {where} in incident.io; add them with "
            f"comms incident set {ref} --add-tenant ID (or set the field there and run "
            f"comms incident sync {ref}) before drafting"
        )
    if rules.status_for(io.status) is None:
        notes.append(
            f"incident.io status '{io.status.name}' ({io.status.category}) has no comms status; "
            f'the comms status is kept; map it under [incidentio.statuses], e.g. "{io.status.name}" = "mitigating"'
        )
    return notes


def apply_incident(
    store: Store,
    io: IoIncident,
    *,
    rules: Rules,
    now: datetime,
    actor: str,
    adopt: bool = False,
    engaged: bool = True,
) -> Applied:
    """Bring incident.io's state ``io`` into comms: import it as a new incident (ref = its
    reference) or sync the linked one, in one transaction.  A new incident is opened with
    ``actor`` engaged as its GDCMOC unless ``engaged`` is False (a webhook: nobody is yet).

    A comms incident of that ref linked to another incident.io incident is a
    ``UsageError``; one not linked at all too, unless ``adopt`` (link it, then sync).
    PubSec tenants, an unmapped severity and test incidents are refused (``UsageError``).
    """
    with store.transaction():
        try:
            current = store.get_incident(io.reference)
        except NotFoundError:
            return _import(store, io, rules=rules, now=now, actor=actor, engaged=engaged)
        events = store.events(current.ref)
        link, last = _history(events)
        if link is None:
            if not adopt:
                raise UsageError(
                    f"comms already has an incident {current.ref} that is not linked to "
                    f"incident.io; if it is this one, link it with: comms incident import "
                    f"{io.reference} --adopt"
                )
            link = _link(store, current.ref, io, now=now, actor=actor, tenants=current.tenants)
            last = {}
        elif link.id != io.id:
            raise UsageError(
                f"comms incident {current.ref} is linked to another incident.io incident "
                f"({link.id}), not {io.id}; nothing was changed"
            )
        applied_at = last.get("updated_at")
        if isinstance(applied_at, str) and io.updated_at < from_iso(applied_at):
            # Deliveries come in any order: an older state never overwrites a newer one.
            note = f"incident.io state of {isoformat(io.updated_at)} is older than the one applied ({applied_at}); ignored"
            return Applied(current, "stale", link, {}, (note,))
        return _sync(store, current, io, link, last, rules=rules, now=now, actor=actor)


def _link(
    store: Store, ref: str, io: IoIncident, *, now: datetime, actor: str, tenants: Sequence[str]
) -> Link:
    link = Link(io.id, io.reference, io.permalink, io.slack_channel_id)
    data = {**_state(io, tenants), **link.to_dict(), "mode": io.mode, "visibility": io.visibility}
    store.append_event(ref, type=LINK_EVENT, actor=actor, now=now, data=data)
    return link


def _import(
    store: Store, io: IoIncident, *, rules: Rules, now: datetime, actor: str, engaged: bool
) -> Applied:
    from comms import service

    _check_importable(io)
    tenants, unknown, field_set = _tenants(io, rules, store.list_tenants())
    _refuse_pubsec(io, tenants, rules)
    severity = rules.severity_for(io)
    title = _title(io)
    ids = [t.id for t in tenants]
    # An incident that opened itself (a webhook) has no GDCMOC engaged yet: its
    # engagement clock runs; a person importing it is the GDCMOC, engaged now.
    created = store.create_incident(
        title=title,
        severity=severity,
        tenants=ids,
        started_at=min(io.created_at, utc(now)),  # the cadence clock starts at declaration
        now=now,
        actor=actor,
        ref=io.reference,
        engaged=engaged,
    )
    link = _link(store, created.ref, io, now=now, actor=actor, tenants=ids)
    status = rules.status_for(io.status)
    if status is not None and status is not created.status:
        created = service.set_incident(
            store, created.ref, now=now, actor=actor, status=status, confirmed_by=SOURCE
        )
    notes = _notes(io, rules, created.ref, unknown, field_set, bool(ids))
    return Applied(created, "imported", link, {}, tuple(notes))


def _sync(
    store: Store,
    current: Incident,
    io: IoIncident,
    link: Link,
    last: Mapping[str, Any],
    *,
    rules: Rules,
    now: datetime,
    actor: str,
) -> Applied:
    from comms import service

    if current.pubsec:
        raise PubsecError(
            f"{current.ref} is a PubSec incident in comms; it is never synced with incident.io"
        )
    tenants, unknown, field_set = _tenants(io, rules, store.list_tenants())
    _refuse_pubsec(io, tenants, rules)
    # Each field follows incident.io only when incident.io changed it since it was last
    # applied: a change made in comms (a customer-facing title, a severity raised for the
    # customers' sake) stays until then.
    changes: dict[str, Any] = {}
    title = _title(io) if io.name != last.get("name") else None
    if title and title != current.title:
        changes["title"] = {"from": current.title, "to": title}
    severity_name = io.severity.name if io.severity else None
    severity = rules.severity_for(io) if severity_name != last.get("severity") else None
    if severity is not None and severity is not current.severity:
        changes["severity"] = {"from": current.severity.value, "to": severity.value}
    status = rules.status_for(io.status) if io.status.name != last.get("status") else None
    if status is not None and status is not current.status:
        changes["status"] = {"from": current.status.value, "to": status.value}
    added = [t.id for t in tenants if t.id not in current.tenants]
    if added:
        changes["tenants_added"] = added
    if io.slack_channel_id and io.slack_channel_id != link.slack_channel_id:
        link = dataclasses.replace(link, slack_channel_id=io.slack_channel_id)
    all_tenants = [*current.tenants, *added]
    notes = _notes(io, rules, current.ref, unknown, field_set, bool(all_tenants))
    state = {**_state(io, all_tenants), "slack_channel_id": link.slack_channel_id}
    if not changes and all(last.get(k) == state[k] for k in _REMEMBERED):
        return Applied(current, "unchanged", link, {}, tuple(notes))
    updated = current
    if changes:
        back = status is not None and status.rank < current.status.rank
        updated = service.set_incident(
            store,
            current.ref,
            now=now,
            actor=actor,
            status=status if "status" in changes else None,
            confirmed_by=SOURCE,
            reason=f"moved back to '{io.status.name}' in incident.io" if back else None,
            severity=severity if "severity" in changes else None,
            title=title if "title" in changes else None,
            add_tenants=added,
        )
    store.append_event(
        current.ref, type=SYNC_EVENT, actor=actor, now=now, data={**state, "changes": changes}
    )
    return Applied(updated, "synced" if changes else "unchanged", link, changes, tuple(notes))


def import_incident(
    store: Store,
    source: IncidentSource,
    ref_or_url: str,
    *,
    rules: Rules,
    now: datetime,
    actor: str,
    adopt: bool = False,
) -> Applied:
    """Open the comms incident for an incident.io incident (``INC-2291`` or its URL) with
    its name, severity, status, declaration time and tenants, linked to it; an incident
    imported before is synced instead (re-import is idempotent).  See :func:`apply_incident`.
    """
    return apply_incident(
        store,
        source.incident(incident_key(ref_or_url)),
        rules=rules,
        now=now,
        actor=actor,
        adopt=adopt,
    )


def sync_incident(
    store: Store, source: IncidentSource, ref: str, *, rules: Rules, now: datetime, actor: str
) -> Applied:
    """Apply incident.io's current severity, status, name and tenants to linked incident
    ``ref`` through ``service.set_incident`` (events logged as for a CLI change).

    A PubSec comms incident is refused before incident.io is asked anything.
    """
    current = store.get_incident(ref)
    if current.pubsec:
        raise PubsecError(f"{ref} is a PubSec incident; it is never synced with incident.io")
    link = link_of(store, ref)
    if link is None:
        raise UsageError(
            f"{ref} is not linked to incident.io; link it with: comms incident import {ref} --adopt"
        )
    io = source.incident(link.id)
    return apply_incident(store, io, rules=rules, now=now, actor=actor)


@dataclass(frozen=True)
class SyncOutcome:
    """One linked incident's sync: what was applied, or why not."""

    ref: str
    applied: Applied | None = None
    error: str | None = None


def sync_open(
    store: Store, source: IncidentSource, *, rules: Rules, now: datetime, actor: str
) -> list[SyncOutcome]:
    """Sync every open, linked, non-PubSec incident; one refused incident does not stop
    the others (an unreachable incident.io does: its error is raised)."""
    outcomes = []
    for incident in store.list_incidents(open_only=True):
        if incident.pubsec or link_of(store, incident.ref) is None:
            continue
        try:
            applied = sync_incident(store, source, incident.ref, rules=rules, now=now, actor=actor)
        except UsageError as exc:
            outcomes.append(SyncOutcome(incident.ref, error=str(exc)))
        else:
            outcomes.append(SyncOutcome(incident.ref, applied))
    return outcomes


# -- webhooks ---------------------------------------------------------------------------------


class WebhookMemory(Protocol):
    """What the webhook receiver remembers between deliveries: the stores implement it
    (one memory per database, so that every ``comms serve`` on it shares it).

    Delivery ids are kept for :data:`DELIVERY_IDS_KEPT`, twice :data:`TOLERANCE` (a delivery
    signed earlier fails the timestamp check before its id is looked up); the newest state
    per incident for good.
    A retry the sender signs again later, after its id was forgotten, is still not applied
    twice: its state is not newer than the newest handled.
    """

    def webhook_seen(self, delivery_id: str) -> bool:
        """Whether delivery ``delivery_id`` (``webhook-id``) was handled already."""

    def webhook_newest(self, incident_id: str) -> datetime | None:
        """The ``updated_at`` of the newest state of incident.io incident ``incident_id``
        handled so far (applied or refused), or None."""

    def record_webhook(
        self,
        delivery_id: str,
        *,
        now: datetime,
        incident_id: str | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """Remember a handled delivery and, when given, that ``incident_id``'s state as of
        ``updated_at`` was handled (``webhook_newest`` never moves back); delivery ids older
        than twice :data:`TOLERANCE` may be forgotten."""


class LocalWebhookMemory:
    """A :class:`WebhookMemory` in this process's memory: for a store that keeps none, and
    the reference the stores' implementations are tested against."""

    def __init__(self) -> None:
        self.deliveries: dict[str, datetime] = {}
        self.states: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def webhook_seen(self, delivery_id: str) -> bool:
        """See :class:`WebhookMemory`."""
        with self._lock:
            return delivery_id in self.deliveries

    def webhook_newest(self, incident_id: str) -> datetime | None:
        """See :class:`WebhookMemory`."""
        with self._lock:
            return self.states.get(incident_id)

    def record_webhook(
        self,
        delivery_id: str,
        *,
        now: datetime,
        incident_id: str | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """See :class:`WebhookMemory`."""
        with self._lock:
            self.deliveries[delivery_id] = now
            horizon = now - DELIVERY_IDS_KEPT
            for old in [d for d, at in self.deliveries.items() if at < horizon]:
                del self.deliveries[old]
            if incident_id is not None and updated_at is not None:
                current = self.states.get(incident_id)
                if current is None or updated_at > current:
                    self.states[incident_id] = updated_at


@dataclass(frozen=True)
class WebhookResult:
    """The answer to one delivery: the HTTP status (200 applied, 204 acknowledged with
    nothing applied, 400 malformed, 401 not authentic or stale, 413 too large, 503 try
    again later) and a one-line reason for the log."""

    status: int
    reason: str
    ref: str | None = None
    applied: Applied | None = None


@dataclass(frozen=True)
class WebhookReceiver:
    """Everything :func:`handle_webhook` needs besides the delivery, the store and the time,
    set up once by the composition root for ``POST /hooks/incidentio``."""

    secret: str
    memory: WebhookMemory
    rules: Rules = field(default_factory=Rules)
    source: IncidentSource | None = None  # fetches private incidents, when a key is set
    actor: str = SOURCE

    def __post_init__(self) -> None:
        _verifier(self.secret)  # a secret that is not whsec_… fails here, at start

    def handle(
        self, headers: Mapping[str, str], body: bytes, *, store: Store, now: datetime
    ) -> WebhookResult:
        """:func:`handle_webhook` for one delivery."""
        return handle_webhook(
            headers,
            body,
            secret=self.secret,
            store=store,
            now=now,
            seen=self.memory,
            rules=self.rules,
            source=self.source,
            actor=self.actor,
        )


@functools.lru_cache(maxsize=4)
def _verifier(secret: str) -> Any:
    from standardwebhooks import Webhook

    try:
        return Webhook(secret)
    except Exception as exc:  # the library raises its own and binascii errors for a bad secret
        raise ConfigError(
            "the incident.io webhook signing secret is not a whsec_… secret; copy it from "
            "incident.io → Settings → Webhooks"
        ) from exc


def handle_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str,
    store: Store,
    now: datetime,
    seen: WebhookMemory,
    rules: Rules | None = None,
    source: IncidentSource | None = None,
    actor: str = SOURCE,
) -> WebhookResult:
    """Verify and apply one incident.io webhook delivery (Standard Webhooks / Svix).

    The signature is checked by ``standardwebhooks`` (which also compares the timestamp with
    the system clock); a timestamp more than :data:`TOLERANCE` from ``now`` is refused too.
    A delivery id seen before is acknowledged (204) and not applied again; a state older
    than the newest handled for that incident is acknowledged and ignored, so deliveries in
    any order end in incident.io's latest state.  ``incident_created_v2`` and
    ``incident_updated_v2`` go through :func:`apply_incident`; a private incident's event
    carries only its id, and is fetched through ``source`` when one is given.  A refusal
    (PubSec, an unmapped severity) is acknowledged with its reason: the sender retrying it
    would not help.  Only a store failure answers 503, so that the sender tries again.
    """
    from standardwebhooks import WebhookVerificationError

    lower = {k.lower(): v for k, v in headers.items()}
    if len(body) > MAX_BODY_BYTES:
        return WebhookResult(413, f"body over {MAX_BODY_BYTES} bytes")
    delivery, stamp = lower.get("webhook-id", ""), lower.get("webhook-timestamp", "")
    if not (delivery and stamp and lower.get("webhook-signature")):
        return WebhookResult(401, "missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = datetime.fromtimestamp(int(stamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return WebhookResult(400, "webhook-timestamp is not a Unix time")
    if abs(utc(now) - sent) > TOLERANCE:
        return WebhookResult(401, f"stale delivery: signed {isoformat(sent)}, now {isoformat(now)}")
    try:
        _verifier(secret).verify(body, dict(lower), json_parse=False)
    except (WebhookVerificationError, ValueError) as exc:
        return WebhookResult(401, f"signature not verified: {exc}")
    if seen.webhook_seen(delivery):
        return WebhookResult(204, f"replay of delivery {delivery}: already handled")
    try:
        payload = json.loads(body)
        event_type = _str(_obj(payload, "body"), "event_type", "body")
    except (ValueError, MalformedError) as exc:
        return WebhookResult(400, f"malformed body: {exc}")
    kind = event_type.partition(".")[2]
    if kind not in ("incident_created_v2", "incident_updated_v2"):
        seen.record_webhook(delivery, now=now)
        return WebhookResult(204, f"ignored event type {event_type}")
    try:
        io = _webhook_incident(payload, event_type, source)
    except MalformedError as exc:
        return WebhookResult(400, f"malformed body: {exc}")
    except UsageError as exc:  # a private incident without a source, or one gone
        seen.record_webhook(delivery, now=now)
        return WebhookResult(204, str(exc))
    except CommsError as exc:  # incident.io unreachable: let the sender retry
        return WebhookResult(503, str(exc))
    return _apply_delivery(
        store, io, delivery, seen=seen, rules=rules or Rules(), now=now, actor=actor
    )


def _webhook_incident(
    payload: dict[str, Any], event_type: str, source: IncidentSource | None
) -> IoIncident:
    data = _obj(payload.get(event_type), event_type)
    if event_type.startswith("private_incident."):
        incident_id = _str(data, "id", event_type)
        if source is None:
            raise UsageError(
                f"private incident {incident_id}: its event carries no details; import it "
                f"with comms incident import {incident_id}"
            )
        return source.incident(incident_id)
    return parse_incident(data, event_type)


def _apply_delivery(
    store: Store,
    io: IoIncident,
    delivery: str,
    *,
    seen: WebhookMemory,
    rules: Rules,
    now: datetime,
    actor: str,
) -> WebhookResult:
    newest = seen.webhook_newest(io.id)
    if newest is not None and io.updated_at <= newest:
        seen.record_webhook(delivery, now=now)
        return WebhookResult(
            204,
            f"{io.reference}: state of {isoformat(io.updated_at)} is not newer than {isoformat(newest)}",
            io.reference,
        )
    reason: str | None = None
    if io.mode not in REAL_MODES:
        reason = f"{io.reference}: {io.mode} incident ignored"
    elif io.status.category == "triage" or io.status.category in NOT_INCIDENTS:
        try:
            store.get_incident(io.reference)
        except NotFoundError:  # imported once accepted; never when declined
            reason = f"{io.reference}: {io.status.category} in incident.io, not imported"
    if reason is not None:
        seen.record_webhook(delivery, now=now, incident_id=io.id, updated_at=io.updated_at)
        return WebhookResult(204, reason, io.reference)
    try:
        applied = apply_incident(store, io, rules=rules, now=now, actor=actor, engaged=False)
    except StoreError as exc:
        return WebhookResult(
            503, f"{io.reference}: store unavailable ({exc}); retry later", io.reference
        )
    except UsageError as exc:
        seen.record_webhook(delivery, now=now, incident_id=io.id, updated_at=io.updated_at)
        return WebhookResult(204, f"not applied: {exc}", io.reference)
    seen.record_webhook(delivery, now=now, incident_id=io.id, updated_at=io.updated_at)
    if applied.action == "stale":
        return WebhookResult(204, f"{io.reference}: {applied.notes[0]}", io.reference)
    what = ", ".join(applied.changes) or "no change"
    return WebhookResult(
        200, f"{applied.incident.ref} {applied.action} ({what})", applied.incident.ref, applied
    )


# -- the Slack note on send ---------------------------------------------------------------

# Slack's limit on a section block's text; a message holds at most 50 blocks.
_SECTION_CHARS = 3000


@dataclass(frozen=True)
class SlackNote:
    """One ``chat.postMessage`` to an incident's channel: what customers were told."""

    channel: str
    text: str  # the notification line (Slack shows it where blocks cannot be)
    blocks: tuple[dict[str, Any], ...]

    def payload(self) -> dict[str, Any]:
        """The ``chat.postMessage`` arguments: no link previews, no mention parsing."""
        return {
            "channel": self.channel,
            "text": self.text,
            "blocks": [dict(b) for b in self.blocks],
            "unfurl_links": False,
            "unfurl_media": False,
            "link_names": False,
            "parse": "none",
        }


class SlackPoster(Protocol):
    """Posts notes to Slack (``comms.adapters.slack_web``)."""

    def post(self, note: SlackNote) -> str:
        """Post one note; return Slack's message timestamp; ``PublishError`` on failure."""


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack neither links channel names nor parses mentions in it
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def _quoted(text: str) -> list[dict[str, Any]]:
    """The exact text in as few sections as fit: a code block (shown as typed), or quoted
    lines when the text itself holds a code fence."""
    escaped = slack_escape(text.rstrip("\n"))
    fence = "```" not in escaped
    lines = (
        escaped.split("\n")
        if fence
        else [f">{' ' if line else ''}{line}" for line in escaped.split("\n")]
    )
    limit = _SECTION_CHARS - 8
    chunks: list[str] = []
    current = ""
    for line in lines:
        while len(line) > limit:  # one very long line: cut it
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        if current and len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    chunks.append(current)
    return [_mrkdwn(f"```{c}```" if fence else c) for c in chunks]


def build_slack_note(
    incident: Incident,
    revision: Revision,
    *,
    kind: str,
    channel_id: str,
    tenants: Sequence[Tenant],
    channels: Sequence[str],
    actor: str,
    sent_at: datetime,
    permalink: str = "",
) -> SlackNote:
    """The note for an update sent to customers: the exact text, the tenants and the
    channels, every piece of data escaped.  A PubSec incident is a :class:`PubsecError`:
    nothing about it is ever built for Slack."""
    if incident.pubsec:
        raise PubsecError(f"{incident.ref} is a PubSec incident: nothing about it goes to Slack")
    who = ", ".join(f"{t.name} ({t.id})" for t in tenants) or "none"
    via = ", ".join(channels) or "none"
    head = f"{incident.ref}: update sent to customers ({kind}, draft {revision.draft_id} r{revision.number})"
    about = f"*Tenants:* {slack_escape(who)}\n*Channels:* {slack_escape(via)}\n" + (
        f"*Sent by* {slack_escape(actor)} at {format_time(sent_at)}"
    )
    blocks = [
        _mrkdwn(f":outbox_tray: *{slack_escape(head)}*"),
        _mrkdwn(about),
        *_quoted(revision.text),
    ]
    if permalink.startswith("https://"):
        url = slack_escape(permalink).replace("|", "%7C")
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"<{url}|{slack_escape(incident.ref)} in incident.io>",
                    }
                ],
            }
        )
    text = slack_escape(f"{head} to {who} via {via}")
    return SlackNote(channel_id, text, tuple(blocks[:50]))


@dataclass(frozen=True)
class NotePlan:
    """The note to post after a send, or None and why not."""

    note: SlackNote | None
    reason: str


def slack_note_for(store: Store, draft_id: int, *, actor: str) -> NotePlan:
    """The Slack note for the latest revision of ``draft_id`` as delivered so far: the
    tenants and channels come from its delivered deliveries, the channel from the incident's
    incident.io link.  No note for an unlinked or PubSec incident, or before a delivery."""
    draft = store.get_draft(draft_id)
    incident = store.get_incident(draft.incident_ref)
    if incident.pubsec:
        return NotePlan(None, f"{incident.ref} is PubSec: nothing goes to Slack")
    link = link_of(store, incident.ref)
    if link is None or not link.slack_channel_id:
        return NotePlan(None, f"{incident.ref} has no incident.io Slack channel")
    revision = draft.revision
    done = [
        d
        for d in store.deliveries(draft_id=draft_id, states=["delivered"])
        if d.revision == revision.number
    ]
    if not done:
        return NotePlan(None, f"draft {draft_id} r{revision.number} was not delivered yet")
    tenants = [store.get_tenant(t) for t in dict.fromkeys(d.tenant for d in done)]
    channels = list(dict.fromkeys(d.channel for d in done))
    sent_at = max((d.receipt.delivered_at for d in done if d.receipt), default=draft.updated_at)
    note = build_slack_note(
        incident,
        revision,
        kind=draft.kind.value,
        channel_id=link.slack_channel_id,
        tenants=tenants,
        channels=channels,
        actor=actor,
        sent_at=sent_at,
        permalink=link.permalink,
    )
    return NotePlan(note, f"note for {incident.ref} to Slack channel {link.slack_channel_id}")


@dataclass(frozen=True)
class NoteResult:
    """What became of the Slack note for one sent draft: ``posted``, or why not (``failed``
    when Slack was asked and said no, which the caller reports as a warning only)."""

    draft_id: int
    reason: str
    posted: bool = False
    failed: bool = False


def _noted(events: Sequence[Event], draft_id: int, revision: int) -> bool:
    return any(
        e.type == NOTE_EVENT
        and e.data.get("draft_id") == draft_id
        and e.data.get("revision") == revision
        for e in events
    )


def note_sent(
    store: Store,
    draft_ids: Sequence[int],
    *,
    poster: Callable[[], SlackPoster] | None,
    actor: str,
    now: datetime,
) -> list[NoteResult]:
    """Tell each sent draft's incident channel in Slack what customers were told
    (:func:`slack_note_for`), once per revision: the post is logged as ``slack.noted``,
    so a repeated ``comms send`` or ``--resume`` never posts it twice.

    Only a draft whose revision is sent in full is noted; an unlinked or PubSec incident
    never is, and ``poster`` (None: no Slack bot configured) is called only when a note is
    due.  A failed post is a result, never an exception: the send stands, and the next
    run tries the note again.
    """
    results = []
    made: list[SlackPoster] = []  # the poster, built once, when the first note is due
    for draft_id in dict.fromkeys(draft_ids):
        draft = store.get_draft(draft_id)
        revision = draft.revision.number
        if draft.state is not DraftState.SENT:
            results.append(NoteResult(draft_id, f"draft {draft_id} r{revision} is not sent yet"))
            continue
        events = store.events(draft.incident_ref)
        link = _history(events)[0]
        if link is None or not link.slack_channel_id:  # most incidents: no store reads more
            results.append(NoteResult(draft_id, f"{draft.incident_ref} has no Slack channel"))
            continue
        if _noted(events, draft_id, revision):
            results.append(NoteResult(draft_id, f"draft {draft_id} r{revision} noted already"))
            continue
        plan = slack_note_for(store, draft_id, actor=actor)
        if plan.note is None:
            results.append(NoteResult(draft_id, plan.reason))
            continue
        if poster is None:
            results.append(NoteResult(draft_id, "no Slack bot token: the note was not posted"))
            continue
        try:
            made = made or [poster()]
            ts = made[0].post(plan.note)
        except CommsError as exc:
            reason = f"the Slack note for draft {draft_id} was not posted: {exc}"
            results.append(NoteResult(draft_id, reason, failed=True))
            continue
        data = {"draft_id": draft_id, "revision": revision, "channel": plan.note.channel, "ts": ts}
        store.append_event(draft.incident_ref, type=NOTE_EVENT, actor=actor, now=now, data=data)
        where = f"Slack channel {plan.note.channel}"
        results.append(NoteResult(draft_id, f"draft {draft_id} r{revision} noted in {where}", True))
    return results
