"""Use cases: open and move incidents, compose and revise drafts, build the timeline.

Pure of I/O except through the ``Store`` port and the ``Renderer`` passed in; every
function takes an explicit ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from comms.errors import TransitionError, UsageError
from comms.limits import MAX_MESSAGE_BYTES, check_size
from comms.lint.secrets import refuse as refuse_secret
from comms.models import (
    Draft,
    DraftState,
    Event,
    Incident,
    MessageKind,
    Revision,
    Severity,
    Status,
    Tenant,
)
from comms.ports import Store, TenantDirectory
from comms.render import Rendered, Renderer, automatic_context
from comms.times import format_time, isoformat, utc

if TYPE_CHECKING:
    from comms.cadence import CadenceReport, Policy
    from comms.lint.config import LintConfig

# A checker lints rendered text: (text, kind, incident) -> findings as dicts.
Checker = Callable[[str, str, Incident], list[dict[str, Any]]]

# Statuses that need someone to confirm them, and the field recording who and when.
_CONFIRMED = {Status.MONITORING: "mitigated", Status.RESOLVED: "resolved"}
# Time variables that must be recomputed for every message rather than carried over.
_FRESH = {"next_update"}


def make_checker(config: LintConfig | None, known: Sequence[Tenant]) -> Checker:
    """The linter as a ``Checker``: lint the rendered text knowing the incident's audience.

    One text to several tenants must name none of them, so only a single-tenant message
    has an audience whose own names (and aliases) are allowed.
    """

    def check(text: str, kind: str, incident: Incident) -> list[dict[str, Any]]:
        from comms.lint import lint

        audience = [t for t in known if t.id in incident.tenants]
        own = audience[0] if len(audience) == 1 else None
        others = [n for t in known if t is not own for n in (t.name, *t.aliases) if n]
        findings = lint(
            text,
            config=config,
            kind=kind,
            audience=own.name if own else None,
            tenants=others,
            severity=incident.severity.value,
            status=incident.status.value,
        )
        return [f.to_dict() for f in findings]

    return check


def open_incident(
    store: Store,
    *,
    title: str,
    severity: Severity,
    tenants: Sequence[str],
    now: datetime,
    actor: str,
    started_at: datetime | None = None,
    security: bool = False,
    ref: str | None = None,
) -> Incident:
    """Open an incident for known tenants; pubsec follows the tenants' flags."""
    check_size("--title", title)
    title = " ".join(title.split())  # one line: it heads the timeline and the drafts' subjects
    refuse_secret("--title", title)
    if not title:
        raise UsageError("the incident needs a --title describing the customer impact")
    if not tenants:
        raise UsageError("name at least one affected tenant with --tenant")
    known = [store.get_tenant(t) for t in dict.fromkeys(tenants)]  # NotFoundError has a hint
    started = utc(started_at or now)
    if started > utc(now):
        raise UsageError(f"--started {format_time(started)} is in the future")
    return store.create_incident(
        title=title,
        severity=severity,
        tenants=[t.id for t in known],
        started_at=started,
        now=now,
        actor=actor,
        security=security,
        pubsec=any(t.pubsec for t in known),
        ref=ref,
    )


def change_status(
    store: Store,
    ref: str,
    to: Status,
    *,
    now: datetime,
    actor: str,
    reason: str | None = None,
    confirmed_by: str | None = None,
) -> Incident:
    """Move an incident along investigating → … → resolved.

    Moving forward may skip steps; moving back needs a ``reason``.  Reaching monitoring
    (mitigated) or resolved records who confirmed it.
    """
    incident = store.get_incident(ref)
    check_status_change(incident, to, reason=reason, confirmed_by=confirmed_by)
    current = incident.status
    changes: dict[str, Any] = {"status": to, "updated_at": utc(now)}
    data: dict[str, Any] = {"from": current.value, "to": to.value}
    if reason:
        data["reason"] = reason
    if to in _CONFIRMED:
        prefix = _CONFIRMED[to]
        changes[f"{prefix}_at"] = utc(now)
        changes[f"{prefix}_by"] = confirmed_by
        data["confirmed_by"] = confirmed_by
        if to is Status.RESOLVED and incident.mitigated_at is None:
            changes["mitigated_at"], changes["mitigated_by"] = utc(now), confirmed_by
    if to.rank < Status.RESOLVED.rank and incident.resolved_at is not None:
        changes["resolved_at"], changes["resolved_by"] = None, None  # reopened
    return store.update_incident(
        incident.replace(**changes), event="incident.status", actor=actor, data=data
    )


def check_status_change(
    incident: Incident, to: Status, *, reason: str | None, confirmed_by: str | None
) -> None:
    """Raise ``TransitionError`` unless the process allows moving ``incident`` to ``to``."""
    ref, current = incident.ref, incident.status
    if to is current:
        raise TransitionError(f"{ref} is already {to.value}")
    if to.rank < current.rank and not reason:
        raise TransitionError(
            f"{ref} would move back from {current.value} to {to.value}; "
            "give the reason with --reason '…'"
        )
    if to in _CONFIRMED and not confirmed_by:
        raise TransitionError(
            f"moving {ref} to {to.value} needs who confirmed it: --confirmed-by NAME"
        )


def set_incident(
    store: Store,
    ref: str,
    *,
    now: datetime,
    actor: str,
    status: Status | None = None,
    confirmed_by: str | None = None,
    reason: str | None = None,
    severity: Severity | None = None,
    title: str | None = None,
    add_tenants: Sequence[str] = (),
    security: bool | None = None,
    rca_done: Sequence[str] = (),
) -> Incident:
    """Change any of an incident's fields, its status and its RCA clocks in one transaction.

    Everything is checked before anything is written, and written together: a refused
    status change leaves no severity or title change behind.  ``rca_done`` names the RCAs
    now published (``internal``, ``external``), which stops their clocks.
    """
    unknown = sorted(set(rca_done) - {"internal", "external"})
    if unknown:
        raise UsageError(f"unknown RCA '{unknown[0]}'; use internal or external")
    fields = severity is not None or title is not None or bool(add_tenants) or security is not None
    if status is None and not fields and not rca_done:
        raise UsageError(
            "nothing to change; pass --status, --severity, --title, --add-tenant, --security "
            "or --rca-internal-done/--rca-external-done"
        )
    with store.transaction():
        if status is not None:
            check_status_change(
                store.get_incident(ref), status, reason=reason, confirmed_by=confirmed_by
            )
        if fields:
            update_incident(
                store,
                ref,
                now=now,
                actor=actor,
                severity=severity,
                title=title,
                add_tenants=add_tenants,
                security=security,
            )
        if status is not None:
            change_status(
                store, ref, status, now=now, actor=actor, reason=reason, confirmed_by=confirmed_by
            )
        for which in dict.fromkeys(rca_done):
            store.record_clock(
                ref,
                column=f"rca_{which}_at",
                at=now,
                event=f"rca.{which}",
                actor=actor,
                data={"at": isoformat(now)},
            )
        return store.get_incident(ref)


def engage(store: Store, ref: str, *, now: datetime, actor: str) -> Incident:
    """Record that the GDCMOC (``actor``) is engaged on ``ref`` now; stops that clock."""
    incident = store.get_incident(ref)
    store.record_clock(
        ref, column="engaged_at", at=now, event="gdcmoc.engaged", actor=actor, data={"by": actor}
    )
    return incident


def sync_tenants(store: Store, directory: TenantDirectory) -> list[Tenant]:
    """Copy every tenant the directory knows into the store (insert or replace)."""
    found = directory.tenants()
    with store.transaction():
        for tenant in found:
            store.put_tenant(tenant)
    return found


def update_incident(
    store: Store,
    ref: str,
    *,
    now: datetime,
    actor: str,
    severity: Severity | None = None,
    title: str | None = None,
    add_tenants: Sequence[str] = (),
    security: bool | None = None,
) -> Incident:
    """Change severity, title, tenants or the security flag, logging what changed."""
    incident = store.get_incident(ref)
    changes: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if severity is not None and severity is not incident.severity:
        changes["severity"] = severity
        data["severity"] = {"from": incident.severity.value, "to": severity.value}
    title = " ".join(check_size("--title", title).split()) if title is not None else None
    if title:
        refuse_secret("--title", title)
    if title and title != incident.title:
        changes["title"] = title
        data["title"] = {"from": incident.title, "to": title}
    new = [t for t in add_tenants if t not in incident.tenants]
    if new:
        tenants = [store.get_tenant(t) for t in new]
        changes["tenants"] = [*incident.tenants, *(t.id for t in tenants)]
        changes["pubsec"] = incident.pubsec or any(t.pubsec for t in tenants)
        data["tenants_added"] = [t.id for t in tenants]
    if security is not None and security != incident.security:
        changes["security"] = security
        data["security"] = security
    if not changes:
        raise UsageError(
            f"nothing to change on {ref}; pass --severity, --title, --add-tenant or --security"
        )
    changes["updated_at"] = utc(now)
    event = "incident.severity" if list(data) == ["severity"] else "incident.updated"
    if event == "incident.severity":
        data = data["severity"]
    return store.update_incident(incident.replace(**changes), event=event, actor=actor, data=data)


@dataclass(frozen=True)
class Composed:
    """The outcome of composing: the stored draft and what was rendered."""

    draft: Draft
    rendered: Rendered
    carried: dict[str, str] = field(default_factory=dict)


def _open_draft(store: Store, ref: str, kind: MessageKind) -> Draft | None:
    candidates = [
        d
        for d in store.list_drafts(incident_ref=ref)
        if d.kind is kind and d.state is not DraftState.SENT
    ]
    return candidates[-1] if candidates else None


def carried_values(
    store: Store, ref: str, renderer: Renderer, kind: MessageKind, now: datetime
) -> dict[str, str]:
    """Values a new draft starts from: the last sent message's, else the latest draft's.

    Only variables the target template declares are kept; ``next_update`` is always
    recomputed, and a time already in the past is dropped.
    """
    drafts = store.list_drafts(incident_ref=ref)
    sent = [d for d in drafts if d.state is DraftState.SENT]
    source = (sent or drafts)[-1] if (sent or drafts) else None
    if source is None:
        return {}
    spec = renderer.spec(kind.value)
    kept: dict[str, str] = {}
    for name, value in source.revision.variables.items():
        var = spec.variable(name)
        if var is None or name in _FRESH:
            continue
        if var.type == "time" and name not in ("started_at",):
            from comms.times import from_iso

            try:
                if from_iso(value) < utc(now):
                    continue
            except ValueError:
                continue
        kept[name] = value
    return kept


def compose(
    store: Store,
    renderer: Renderer,
    *,
    ref: str,
    kind: MessageKind,
    values: dict[str, str],
    now: datetime,
    author: str,
    interval_minutes: int | None,
    check: Checker | None = None,
) -> Composed:
    """Render ``kind`` for incident ``ref`` and store it as a new revision.

    The draft continues the incident's open draft of the same kind if there is one
    (keeping its values), else starts from the last sent message's values.  Explicit
    ``values`` win.  Time values are stored normalised to ISO UTC.
    """
    incident = store.get_incident(ref)
    existing = _open_draft(store, ref, kind)
    if existing is not None:
        base = {k: v for k, v in existing.revision.variables.items() if k not in _FRESH}
        carried = {}
    else:
        base = carried_values(store, ref, renderer, kind, now)
        carried = {k: v for k, v in base.items() if k not in values}
    for name, value in values.items():
        check_size(f"the value of '{name}'", value)
        refuse_secret(f"--set {name}", value)
    merged = {**base, **values}
    context = automatic_context(incident=incident, now=now, interval_minutes=interval_minutes)
    rendered = renderer.render(kind.value, merged, context, now)
    check_size("the message", _text(rendered.subject, rendered.body), MAX_MESSAGE_BYTES)
    spec = renderer.spec(kind.value)
    normalised = _normalise(rendered.variables, spec, now)
    if spec.variable("next_update") and "next_update" not in normalised and context["next_update"]:
        # Keep the promised time even when it was the default: cadence holds us to it.
        normalised["next_update"] = isoformat(context["next_update"])
    if (
        kind is MessageKind.MAINTENANCE_PLANNED
        and "window_start" in normalised
        and "window_end" in normalised
    ):
        from comms.times import from_iso

        if from_iso(normalised["window_end"]) <= from_iso(normalised["window_start"]):
            raise UsageError("window_end must be after window_start; check both times (UTC)")
    findings = check(_text(rendered.subject, rendered.body), kind.value, incident) if check else []
    # The store picks the draft: the open one of this kind if there is one by now (another
    # writer may have started it, or sent ``existing``, since it was read), else a new one.
    draft = store.add_revision(
        incident_ref=ref,
        kind=kind,
        draft_id=None,
        subject=rendered.subject,
        body=rendered.body,
        variables=normalised,
        author=author,
        now=now,
        findings=findings,
    )
    return Composed(draft=draft, rendered=rendered, carried=carried)


def _normalise(values: dict[str, str], spec: Any, now: datetime) -> dict[str, str]:
    from comms.times import parse_time

    out = {}
    for name, value in values.items():
        var = spec.variable(name)
        out[name] = (
            isoformat(parse_time(value, now)) if var is not None and var.type == "time" else value
        )
    return out


def _text(subject: str, body: str) -> str:
    return f"Subject: {subject}\n\n{body}"


def split_edited(text: str) -> tuple[str, str]:
    """Split an edited ``Subject: …`` + blank line + body text back into its parts."""
    head, _, body = text.lstrip("\n").partition("\n")
    if not head.startswith("Subject:"):
        raise UsageError("the edited text must keep its first line 'Subject: …'")
    subject = head[len("Subject:") :].strip()
    body = body.strip("\n")
    if not subject or not body.strip():
        raise UsageError("the edited message needs a subject and a body; nothing was saved")
    return subject, body + "\n"


def edit(
    store: Store,
    draft_id: int,
    text: str,
    *,
    now: datetime,
    author: str,
    check: Checker | None = None,
) -> Draft | None:
    """Store hand-edited text as a new revision; None when nothing changed."""
    draft = store.get_draft(draft_id)
    if draft.state is DraftState.SENT:
        raise TransitionError(f"draft {draft_id} was already sent; draft the next message instead")
    check_size("the edited message", text, MAX_MESSAGE_BYTES)
    refuse_secret("the edited message", text)
    subject, body = split_edited(text)
    if subject == draft.revision.subject and body == draft.revision.body:
        return None
    incident = store.get_incident(draft.incident_ref)
    findings = check(_text(subject, body), draft.kind.value, incident) if check else []
    return store.add_revision(
        incident_ref=draft.incident_ref,
        kind=draft.kind,
        draft_id=draft_id,
        subject=subject,
        body=body,
        variables=dict(draft.revision.variables),
        author=author,
        now=now,
        edited=True,
        findings=findings,
    )


@dataclass(frozen=True)
class Redacted:
    """A revision with its secrets replaced, and how many of each kind were."""

    revision: Revision
    kinds: dict[str, int]


def redact(
    store: Store, draft_id: int, number: int, *, reason: str, now: datetime, actor: str
) -> Redacted:
    """Replace every secret in one stored revision (subject, body, variables) with a marker,
    logging ``draft.redacted`` with who, why and the kinds counted (never the secrets)."""
    from comms.lint.secrets import redact as strip

    reason = " ".join(check_size("--reason", reason).split())
    if not reason:
        raise UsageError("say why with --reason '…'; it is recorded")
    refuse_secret("--reason", reason)
    rev = revision(store, draft_id, number)
    kinds: dict[str, int] = {}

    def clean(text: str) -> str:
        out, found = strip(text)
        for kind, count in found.items():
            kinds[kind] = kinds.get(kind, 0) + count
        return out

    subject, body = clean(rev.subject), clean(rev.body)
    variables = {name: clean(value) for name, value in rev.variables.items()}
    if not kinds:
        raise UsageError(f"draft {draft_id} revision {number} holds no secret; nothing changed")
    data = {"reason": reason, "kinds": kinds, "count": sum(kinds.values())}
    stored = store.redact_revision(
        draft_id,
        number,
        subject=subject,
        body=body,
        variables=variables,
        actor=actor,
        now=now,
        data=data,
    )
    return Redacted(revision=stored, kinds=kinds)


def message_text(draft: Draft) -> str:
    """The draft's latest text as the customer sees it, subject line first."""
    return draft.revision.text


def holding_values(
    store: Store, incident: Incident, kind: MessageKind, *, policy: Policy, now: datetime
) -> dict[str, str]:
    """Variables for a holding update: the last sent update's impact, "work continues", and
    the next update time the cadence policy asks for."""
    from comms.cadence import holding_variables, suggest_next_update

    if kind is not MessageKind.UPDATE:
        raise UsageError(
            "--holding works with the update message only: comms draft update --holding"
        )
    sent = store.list_drafts(incident_ref=incident.ref, state=DraftState.SENT)
    if not sent:
        raise UsageError(
            f"nothing was sent for {incident.ref} yet; a holding update repeats the last sent update"
        )
    last = max(sent, key=lambda d: d.updated_at)
    next_at = suggest_next_update(incident.severity.value, incident.status.value, policy, now)
    return holding_variables(last.revision.variables, now=now, next_update_at=next_at)


def revision(store: Store, draft_id: int, number: int | None = None) -> Revision:
    """Revision ``number`` of a draft (default the latest); ``UsageError`` if there is none."""
    revisions = store.revisions(draft_id)
    if number is None and revisions:
        return revisions[-1]
    for rev in revisions:
        if rev.number == number:
            return rev
    raise UsageError(f"no revision {number}; this draft has revisions 1–{len(revisions)}")


@dataclass(frozen=True)
class Timeline:
    """Everything said and decided for an incident: the RCA's raw material."""

    incident: Incident
    events: list[Event]
    texts: dict[tuple[int, int], str]  # (draft, revision) -> the text customers got
    report: CadenceReport

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the incident, its events, the sent texts and the cadence report."""
        report = self.report
        return {
            "incident": self.incident.to_dict(),
            "events": [e.to_dict() for e in self.events],
            "messages": [
                {"draft_id": k[0], "revision": k[1], "text": v} for k, v in self.texts.items()
            ],
            "cadence": {
                "summary": report.summary,
                "updates": [
                    {
                        "tenant": u.tenant,
                        "sent_at": u.sent_at.isoformat() if u.sent_at else None,
                        "due_at": u.due_at.isoformat() if u.due_at else None,
                        "reason": u.reason,
                        "on_time": u.on_time,
                        "late_minutes": round(u.late_by.total_seconds() / 60) if u.late_by else 0,
                    }
                    for u in report.updates
                ],
                "clocks": [
                    {
                        "clock": c.clock,
                        "due_at": c.due_at.isoformat(),
                        "met_at": c.met_at.isoformat() if c.met_at else None,
                        "on_time": c.on_time,
                    }
                    for c in report.clocks
                ],
            },
        }

    def markdown(self) -> str:
        """The event log, the sent texts and the cadence report as Markdown."""
        from comms.cadence import report_markdown

        return (
            timeline_markdown(self.incident, self.events, self.texts)
            + "\n"
            + report_markdown(self.report)
        )


def timeline(store: Store, ref: str, *, policy: Policy, now: datetime) -> Timeline:
    """The incident's events in order, each sent text, and the cadence report at ``now``."""
    from comms.cadence import cadence_report

    incident = store.get_incident(ref)
    events = store.events(ref)
    texts: dict[tuple[int, int], str] = {}
    for event in events:
        if event.type == "update.sent":
            key = (int(event.data.get("draft_id", 0)), int(event.data.get("revision", 0)))
            rev = revision(store, key[0], key[1])
            texts[key] = rev.text
    report = cadence_report(incident, events, policy, now, texts=texts)
    return Timeline(incident, events, texts, report)


def timeline_markdown(
    incident: Incident, events: Sequence[Event], texts: dict[tuple[int, int], str]
) -> str:
    """The event log as Markdown for the RCA; ``texts`` maps (draft, revision) to sent text."""
    lines = [
        f"# Timeline of {incident.ref}: {incident.title}",
        "",
        f"Severity {incident.severity.value}, status {incident.status.value}, tenants "
        f"{', '.join(incident.tenants) or 'none yet'}. Started {format_time(incident.started_at)}"
        + (f", resolved {format_time(incident.resolved_at)}." if incident.resolved_at else "."),
        "",
        "| time (UTC) | who | what |",
        "|---|---|---|",
    ]
    for event in events:
        lines.append(f"| {format_time(event.at)} | {event.actor} | {_describe(event)} |")
    sent = [e for e in events if e.type == "update.sent"]
    if sent:
        lines += ["", "## Updates sent to customers", ""]
        for event in sent:
            key = (int(event.data.get("draft_id", 0)), int(event.data.get("revision", 0)))
            lines += [f"### {format_time(event.at)} via {event.data.get('channel', '?')}", ""]
            lines += ["> " + line if line else ">" for line in texts.get(key, "").splitlines()]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _describe_sync(d: Mapping[str, Any]) -> str:
    """An ``incidentio.synced`` event: what incident.io changed, or that nothing did."""
    changes = d.get("changes") or {}
    parts = [
        f"{name} {change.get('from')} → {change.get('to')}"
        for name, change in changes.items()
        if isinstance(change, dict)
    ]
    if changes.get("tenants_added"):
        parts.append("tenants added: " + ", ".join(changes["tenants_added"]))
    what = "; ".join(parts) or (
        f"nothing to change in comms (incident.io: {d.get('status')}, {d.get('severity')})"
    )
    return f"synced from incident.io {d.get('reference')}: {what}"


def _describe(event: Event) -> str:
    d = event.data
    match event.type:
        case "incident.opened":
            tenants = ", ".join(d.get("tenants", [])) or "no tenants yet"
            text = f"opened {d.get('severity')} incident '{d.get('title')}' for {tenants}"
        case "incident.status":
            text = f"status {d.get('from')} → {d.get('to')}"
            if d.get("confirmed_by"):
                text += f", confirmed by {d['confirmed_by']}"
            if d.get("reason"):
                text += f" (reason: {d['reason']})"
        case "incident.severity":
            text = f"severity {d.get('from')} → {d.get('to')}"
        case "draft.revised":
            text = f"draft {d.get('draft_id')} ({d.get('kind')}) revision {d.get('revision')}" + (
                " edited by hand" if d.get("edited") else ""
            )
        case "update.sent":
            text = f"sent draft {d.get('draft_id')} revision {d.get('revision')} ({d.get('kind')}) via {d.get('channel')}"
        case "delivery.planned":
            text = f"planned delivery of draft {d.get('draft_id')} r{d.get('revision')} to {d.get('tenant')} via {d.get('channel')}"
        case "delivery.delivered":
            text = f"delivered to {d.get('tenant')} via {d.get('channel')} ({d.get('external_id')})"
        case "delivery.retry" | "delivery.failed":
            text = f"delivery to {d.get('tenant')} via {d.get('channel')} {event.type.split('.')[1]}: {d.get('error')}"
        case "review.approved" | "review.changes-requested":
            text = (
                f"{event.type.split('.')[1]} draft {d.get('draft_id')} r{d.get('revision')} as {d.get('role')}"
                + (f": {d['note']}" if d.get("note") else "")
            )
        case "review.skipped":
            text = f"review skipped for draft {d.get('draft_id')} r{d.get('revision')}: {d.get('reason')}"
        case "draft.redacted":
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(d.get("kinds", {}).items()))
            text = f"redacted draft {d.get('draft_id')} r{d.get('revision')} ({kinds}): {d.get('reason')}"
        case "gdcmoc.engaged":
            text = f"GDCMOC engaged ({d.get('by')})"
        case "director.engaged":
            text = f"escalated to the Dedicated Director ({d.get('by', event.actor)})"
        case "incident.linked":
            text = f"linked to incident.io {d.get('reference')}" + (
                f" ({d['permalink']})" if d.get("permalink") else ""
            )
            text += f": {d.get('severity')}, {d.get('status')}"
        case "incidentio.synced":
            text = _describe_sync(d)
        case "slack.noted":
            text = (
                f"told Slack channel {d.get('channel')} what draft {d.get('draft_id')} "
                f"r{d.get('revision')} said to customers"
            )
        case _:
            extra = ", ".join(f"{k}={v}" for k, v in d.items())
            text = f"{event.type}" + (f": {extra}" if extra else "")
    return text.replace("|", "\\|").replace("\n", " ")
