"""Importing and syncing incidents from incident.io: one incident.io state applied to the
store, as a new comms incident or as the changes to the linked one.

    import_incident(ref|url) ─┐                      ┌─ store.create_incident + incident.linked
    sync_incident(ref) ───────┼─ apply_incident(io) ─┤
    sync_open() ──────────────┘                      └─ service.set_incident (+ incidentio.synced)

The link (incident.io id, permalink, Slack channel) is the ``incident.linked`` event in the
incident's log and each applied state is logged as ``incidentio.synced``: no schema of
their own.  A field follows incident.io when incident.io changes it; a change made in comms
(a customer-facing title, a status incident.io has no name for) stays until incident.io
changes that field again.  PubSec (Dedicated for Government) incidents never come from
incident.io: tenants flagged pubsec are refused, and a comms incident that is pubsec is
never fetched.  Pure: incident.io is read through the ``IncidentSource`` port, the store
through ``comms.ports``, and ``now`` is given.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from comms.errors import NotFoundError, UsageError
from comms.incidentio.mapping import Rules, incident_key
from comms.incidentio.records import IncidentSource, IoIncident
from comms.models import Event, Incident, Tenant
from comms.times import from_iso, isoformat, utc

if TYPE_CHECKING:
    from comms.ports import Store

SOURCE = "incident.io"  # the actor of webhook changes, and who "confirmed" a status
LINK_EVENT = "incident.linked"
SYNC_EVENT = "incidentio.synced"
NOT_INCIDENTS = ("declined", "canceled", "merged")  # never imported: nothing happened
REAL_MODES = ("standard", "retrospective")  # test and tutorial incidents stay out

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


def history(events: Sequence[Event]) -> tuple[Link | None, dict[str, Any]]:
    """From an incident's log ``events``: its link (None when not linked) and the
    incident.io state last applied to it (empty before the first)."""
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
    return history(store.events(ref))[0]


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

    Two imports of one incident at the same moment open it once: the one whose new
    incident finds the ref taken when it writes is rolled back and applied again, to the
    incident the other opened (a sync, as importing it again would be).
    """
    once = functools.partial(
        _apply_once, store, io, rules=rules, now=now, actor=actor, adopt=adopt, engaged=engaged
    )
    try:
        return once()
    except _RefTakenError:
        try:
            return once()
        except _RefTakenError as again:  # taken, yet not there to sync: say what the store said
            raise again.error from None


class _RefTakenError(Exception):
    """The ref was free when read and taken when written: another transaction opened it in
    between (PostgreSQL; SQLite and memory stores serialise whole transactions).  Nothing
    was written before, so applying again, the incident now there to sync, is safe."""

    def __init__(self, error: UsageError) -> None:
        super().__init__(str(error))
        self.error = error


def _apply_once(
    store: Store,
    io: IoIncident,
    *,
    rules: Rules,
    now: datetime,
    actor: str,
    adopt: bool,
    engaged: bool,
) -> Applied:
    with store.transaction():
        try:
            current = store.get_incident(io.reference)
        except NotFoundError:
            return _import(store, io, rules=rules, now=now, actor=actor, engaged=engaged)
        events = store.events(current.ref)
        link, last = history(events)
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
    try:
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
    except UsageError as exc:  # PostgreSQL: another import committed the ref since the read
        raise _RefTakenError(exc) from exc
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
