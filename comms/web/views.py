"""What the pages and the JSON API show, built from the core's answers.

No rule lives here: who may approve, what blocks a send, when an update is due, all come
from ``comms.review``, ``comms.identity`` and ``comms.cadence``.  This module arranges their
results for a person (findings marked in the text, the diff in lines, "due in 12m") and
for scripts (the same as JSON); it reads the store only through the core and the ports.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from comms.cadence import UPDATE, Deadline, Policy, evaluate, human_duration
from comms.delivery import body_sha256
from comms.errors import NotFoundError
from comms.models import Draft, DraftState, Event, Incident, Review, Tenant
from comms.review import WAITING, Inspection, promised_update
from comms.times import format_time, isoformat

if TYPE_CHECKING:
    from comms.ports import Store
    from comms.records import ClockRow, DraftSummary
    from comms.service import Timeline

LEVELS = ("error", "warning", "suggestion")
SEVERITY_ORDER = {"S1": 0, "S2": 1, "S3": 2, "S4": 3}
# A queue row names this many tenants, then "+N more".
TENANTS_SHOWN = 3


def _iso(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment is not None else None


def time_left(due_at: datetime | None, now: datetime) -> str:
    """``in 12m``, ``overdue by 1h 5m``, or ``—`` when nothing is due."""
    if due_at is None:
        return "—"
    return _left(int(abs((due_at - now).total_seconds())), due_at < now)


@lru_cache(maxsize=4096)
def _left(seconds: int, overdue: bool) -> str:
    # By whole seconds, as the words count them: the queue's hundred rows, shown again
    # within the second, are not worded again.
    words = human_duration(timedelta(seconds=seconds))
    return f"overdue by {words}" if overdue else f"in {words}"


def shown_time(moment: datetime | None) -> str:
    """A time as the pages show it, always with its zone."""
    return format_time(moment) if moment is not None else "—"


# -- clocks -------------------------------------------------------------------------------


def deadlines(store: Store, refs: set[str], policy: Policy, now: datetime) -> list[Deadline]:
    """Every pending clock of the incidents ``refs`` at ``now`` (``cadence.evaluate``),
    most urgent first."""
    if not refs:
        return []
    # A resolved incident is read too: its final update or RCA may still be owed.
    return evaluate(store.clock_rows(open_only=False, refs=sorted(refs)), policy, now)


def next_updates(found: Sequence[Deadline]) -> dict[str, Deadline]:
    """The earliest customer-update deadline of each incident."""
    earliest: dict[str, Deadline] = {}
    for deadline in found:
        if deadline.clock == UPDATE and (
            deadline.ref not in earliest or deadline.due_at < earliest[deadline.ref].due_at
        ):
            earliest[deadline.ref] = deadline
    return earliest


def deadline_dict(deadline: Deadline) -> dict[str, Any]:
    """A deadline as JSON: clock, state, due_at, reason and the tenants it is owed to."""
    return {
        "clock": deadline.clock,
        "state": deadline.state,
        "due_at": isoformat(deadline.due_at),
        "remind_at": isoformat(deadline.remind_at),
        "reason": deadline.reason,
        "tenants": list(deadline.tenants),
    }


# -- the queue ----------------------------------------------------------------------------


class Headline(NamedTuple):
    """What the queue shows of a draft's incident."""

    ref: str
    title: str
    severity: str
    security: bool
    tenants: tuple[str, ...]

    @classmethod
    def of(cls, incident: ClockRow | Incident) -> Headline:
        """From the incident's clock row, or the incident itself."""
        return cls(
            incident.ref,
            incident.title,
            str(incident.severity),
            incident.security,
            tuple(incident.tenants),
        )

    def tenants_shown(self) -> str:
        """The incident's tenants, the first few named."""
        if not self.tenants:  # imported from incident.io before its tenant field was set
            return "none yet"
        more = len(self.tenants) - TENANTS_SHOWN
        return ", ".join(self.tenants[:TENANTS_SHOWN]) + (f" +{more} more" if more > 0 else "")


class Shown(NamedTuple):
    """Everything a queue row shows at one moment: its deadline's state, the time left
    ("in 12m") and when it is due, the draft and its incident.  The row's HTML is a
    function of these alone, so it is rendered once per distinct value and kept
    (``comms.web.fragments``): a new revision, state, finding count or subject, a changed
    incident, or another minute left is another value."""

    state: str | None
    left: str | None
    due_at: datetime | None
    draft: DraftSummary
    incident: Headline


@dataclass(frozen=True)
class QueueRow:
    """One draft waiting for review, with its incident and the next update it must meet."""

    draft: DraftSummary
    incident: Headline
    due: Deadline | None

    @property
    def errors(self) -> int:
        """Error-level findings stored with the latest revision."""
        return self.draft.errors

    @property
    def warnings(self) -> int:
        """Findings below error level stored with the latest revision."""
        return self.draft.findings - self.draft.errors

    def tenants_shown(self) -> str:
        """The incident's tenants, the first few named."""
        return self.incident.tenants_shown()

    def shown(self, now: datetime) -> Shown:
        """Everything the row shows at ``now``."""
        due = self.due
        if due is None:
            return Shown(None, None, None, self.draft, self.incident)
        return Shown(due.state, time_left(due.due_at, now), due.due_at, self.draft, self.incident)

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """The row as ``/api/queue`` gives it."""
        draft, due = self.draft, self.due
        return {
            "id": draft.id,
            "revision": draft.revision,
            "state": draft.state,
            "kind": draft.kind,
            "author": draft.author,
            "subject": draft.subject,
            "incident": self.incident.ref,
            "title": self.incident.title,
            "severity": self.incident.severity,
            "security": self.incident.security,
            "tenants": list(self.incident.tenants),
            "findings": draft.findings,
            "errors": draft.errors,
            "update_due_at": _iso(due.due_at) if due else None,
            "update_state": due.state if due else None,
            "seconds_left": round((due.due_at - now).total_seconds()) if due else None,
            "updated_at": isoformat(draft.updated_at),
        }


def queue(store: Store, policy: Policy, now: datetime) -> list[QueueRow]:
    """Drafts waiting for review (in a ``review.WAITING`` state), the most urgent first: the
    earliest customer update due, then severity, then the oldest draft."""
    # Summaries: the queue shows no message text, so none is read.
    drafts = store.draft_summaries(states=WAITING)
    refs = {d.incident_ref for d in drafts}
    # One read of the drafts' incidents serves both their deadlines and what the rows
    # show.  An incident the store could not read as a clock row (it skips those) is read
    # on its own, so that its error, if any, is the page's.
    clocks = store.clock_rows(open_only=False, refs=sorted(refs)) if refs else []
    shown = {row.ref: Headline.of(row) for row in clocks}
    for ref in sorted(refs - shown.keys()):
        shown[ref] = Headline.of(store.get_incident(ref))
    due = next_updates(evaluate(clocks, policy, now))
    rows = [QueueRow(d, shown[d.incident_ref], due.get(d.incident_ref)) for d in drafts]
    rows.sort(
        key=lambda r: (
            r.due is None,
            r.due.due_at if r.due else now,
            SEVERITY_ORDER.get(r.incident.severity, 9),
            r.draft.id,
        )
    )
    return rows


# -- a draft ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """One finding as the page numbers and explains it."""

    number: int
    rule: str
    level: str
    message: str
    match: str
    line: int
    column: int
    start: int
    end: int


@dataclass(frozen=True)
class Segment:
    """A run of text covered by the same findings; ``level`` is the worst of them."""

    text: str
    level: str | None = None
    marks: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()  # findings whose span (on this line) ends here


@dataclass(frozen=True)
class Line:
    """One line of the message: its segments, and the findings that start on it."""

    number: int
    segments: list[Segment]
    notes: list[Mark] = field(default_factory=list)


def _worst(levels: Sequence[str]) -> str:
    return min(levels, key=lambda level: LEVELS.index(level) if level in LEVELS else 9)


def marks(findings: Sequence[dict[str, Any]], length: int) -> list[Mark]:
    """The stored findings in text order, numbered from 1, spans clipped to the text."""
    ordered = sorted(
        findings, key=lambda f: (int(f.get("start", 0)), int(f.get("end", 0)), str(f.get("rule")))
    )
    found = []
    for number, f in enumerate(ordered, 1):
        start = max(0, min(int(f.get("start", 0)), length))
        found.append(
            Mark(
                number=number,
                rule=str(f.get("rule", "")),
                level=str(f.get("level", "warning")),
                message=str(f.get("message", "")),
                match=str(f.get("match", "")),
                line=int(f.get("line", 1)),
                column=int(f.get("column", 1)),
                start=start,
                end=max(start, min(int(f.get("end", start)), length)),
            )
        )
    return found


def marked_lines(text: str, found: Sequence[Mark]) -> list[Line]:
    """``text`` line by line, each finding's span marked and its note on the line where it
    starts.  Findings without a span (a missing part of the message) are not in the lines:
    the page lists them above the text."""
    spans = [m for m in found if m.end > m.start]
    starts: list[int] = []
    offset = 0
    raw = text.split("\n")
    for line in raw:
        starts.append(offset)
        offset += len(line) + 1
    notes: dict[int, list[Mark]] = {}
    for mark in spans:
        notes.setdefault(bisect.bisect_right(starts, mark.start) - 1, []).append(mark)
    lines = []
    for index, content in enumerate(raw):
        begin, finish = starts[index], starts[index] + len(content)
        covering = [m for m in spans if m.start < finish and m.end > begin]
        cuts = sorted(
            {begin, finish}
            | {m.start for m in covering if begin < m.start < finish}
            | {m.end for m in covering if begin < m.end < finish}
        )
        segments = []
        for left, right in itertools.pairwise(cuts):
            over = [m for m in covering if m.start < right and m.end > left]
            segments.append(
                Segment(
                    text[left:right],
                    _worst([m.level for m in over]) if over else None,
                    tuple(m.number for m in over),
                    tuple(m.number for m in over if min(m.end, finish) == right),
                )
            )
        lines.append(Line(index + 1, segments, notes.get(index, [])))
    if text.endswith("\n") and len(lines) > 1 and not lines[-1].segments:
        lines.pop()  # the empty "line" after the final newline
    return lines


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff: ``kind`` is head, hunk, add, del or same."""

    kind: str
    text: str


def diff_lines(diff: str) -> list[DiffLine]:
    """A unified diff (``Inspection.diff``) as classified lines."""
    found = []
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        found.append(DiffLine(kind, line))
    return found


@dataclass(frozen=True)
class Recipient:
    """One delivery the draft makes: a tenant on a channel, who reads it, and how far its
    delivery got (``None``: not planned yet)."""

    tenant: str
    name: str
    channel: str
    contacts: tuple[str, ...]
    state: str | None
    text_sha256: str  # of the text this delivery carries, as ``comms send`` prints it


@dataclass(frozen=True)
class DraftView:
    """Everything the draft page and ``/api/drafts/{id}`` show."""

    seen: Inspection
    marks: list[Mark]
    lines: list[Line]
    general: list[Mark]
    diff: list[DiffLine]
    recipients: list[Recipient]
    reviews: list[Review]
    promised: datetime | None
    due: Deadline | None
    now: datetime

    @property
    def draft(self) -> Draft:
        """The draft, with its latest revision."""
        return self.seen.gate.draft

    @property
    def incident(self) -> Incident:
        """The draft's incident."""
        return self.seen.gate.incident

    @property
    def reviewable(self) -> bool:
        """Whether a reviewer can still decide on it (not sent, not yet approved)."""
        return self.draft.state in WAITING

    @property
    def errors(self) -> int:
        """Error-level findings on the latest revision."""
        return sum(1 for m in self.marks if m.level == "error")

    def to_dict(self) -> dict[str, Any]:
        """The draft as ``/api/drafts/{id}`` gives it."""
        draft, incident, status = self.draft, self.incident, self.seen.gate.status
        return {
            "id": draft.id,
            "revision": draft.revision.number,
            "state": draft.state.value,
            "kind": draft.kind.value,
            "author": draft.revision.author,
            "incident": incident.ref,
            "title": incident.title,
            "severity": incident.severity.value,
            "security": incident.security,
            "tenants": list(self.seen.gate.audience),
            "channels": list(self.seen.channels),
            "subject": draft.revision.subject,
            "text": self.seen.text,
            "findings": [
                {k: v for k, v in m.__dict__.items() if k != "number"} for m in self.marks
            ],
            "diff_to_last_sent": self.seen.diff,
            "approved_by": dict(status.approved_by) if status else {},
            "needs": status.missing if status else [],
            "changes_requested": status.changes_requested if status else None,
            "send_problems": list(self.seen.gate.problems),
            "ready_to_send": self.seen.gate.ok,
            "promised_update_at": _iso(self.promised),
            "update_due_at": _iso(self.due.due_at) if self.due else None,
            "reviews": [review_dict(r) for r in self.reviews],
            "recipients": [
                {
                    "tenant": r.tenant,
                    "name": r.name,
                    "channel": r.channel,
                    "contacts": list(r.contacts),
                    "delivery": r.state,
                    "text_sha256": r.text_sha256,
                }
                for r in self.recipients
            ],
        }


def review_dict(review: Review) -> dict[str, Any]:
    """A review as JSON."""
    return {
        "revision": review.revision,
        "reviewer": review.reviewer,
        "role": review.role,
        "decision": review.decision,
        "note": review.note,
        "at": isoformat(review.at),
    }


def _recipients(store: Store, seen: Inspection) -> list[Recipient]:
    draft = seen.gate.draft
    tenants: dict[str, Tenant | None] = {}
    for tenant_id in seen.gate.audience:
        try:
            tenants[tenant_id] = store.get_tenant(tenant_id)
        except NotFoundError:
            tenants[tenant_id] = None
    digest = body_sha256(draft.revision.body)
    states = {
        (d.tenant, d.channel): d.state
        for d in store.deliveries(draft_id=draft.id)
        if d.revision == draft.revision.number
    }
    found = []
    for channel in seen.channels:
        for tenant_id, tenant in tenants.items():
            found.append(
                Recipient(
                    tenant=tenant_id,
                    name=tenant.name if tenant else "(unknown tenant)",
                    channel=channel,
                    contacts=tuple(c.email for c in tenant.contacts) if tenant else (),
                    state=states.get((tenant_id, channel)),
                    text_sha256=digest,
                )
            )
    return found


def draft_view(
    store: Store, seen: Inspection, policy: Policy, now: datetime, *, recipients: bool = True
) -> DraftView:
    """The draft page's content for the inspection ``seen`` (``review.inspect_draft``)."""
    draft = seen.gate.draft
    found = marks(draft.revision.findings, len(seen.text))
    due = next_updates(deadlines(store, {draft.incident_ref}, policy, now)).get(draft.incident_ref)
    return DraftView(
        seen=seen,
        marks=found,
        lines=marked_lines(seen.text, found),
        general=[m for m in found if m.end == m.start],
        diff=diff_lines(seen.diff),
        recipients=_recipients(store, seen) if recipients else [],
        reviews=store.reviews(draft.id),
        promised=promised_update(draft),
        due=due,
        now=now,
    )


# -- an incident --------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    """One line of the timeline."""

    at: datetime
    actor: str
    type: str
    text: str


@dataclass(frozen=True)
class IncidentView:
    """The incident page: the timeline, the clocks pending now, and the drafts."""

    timeline: Timeline
    events: list[EventRow]
    deadlines: list[Deadline]
    drafts: list[Draft]
    now: datetime

    @property
    def incident(self) -> Incident:
        """The incident."""
        return self.timeline.incident

    def to_dict(self) -> dict[str, Any]:
        """The incident as ``/api/incidents/{ref}`` gives it: ``comms timeline --format
        json``, the clocks pending now, and the drafts."""
        data = self.timeline.to_dict()
        data["deadlines"] = [deadline_dict(d) for d in self.deadlines]
        data["drafts"] = [
            {
                "id": d.id,
                "kind": d.kind.value,
                "state": d.state.value,
                "revision": d.revision.number,
                "subject": d.revision.subject,
                "updated_at": isoformat(d.updated_at),
            }
            for d in self.drafts
        ]
        return data


def incident_view(store: Store, timeline: Timeline, policy: Policy, now: datetime) -> IncidentView:
    """The incident page's content for ``timeline`` (``service.timeline``)."""
    # The sentence ``comms timeline`` writes for each event, without its Markdown escape.
    from comms.service import _describe

    def describe_event(event: Event) -> str:
        return _describe(event).replace("\\|", "|")

    ref = timeline.incident.ref
    return IncidentView(
        timeline=timeline,
        events=[EventRow(e.at, e.actor, e.type, describe_event(e)) for e in timeline.events],
        deadlines=deadlines(store, {ref}, policy, now),
        drafts=list(store.list_drafts(incident_ref=ref, newest_first=True)),
        now=now,
    )


def draft_state_label(state: DraftState | str) -> str:
    """A draft's state (or its value) as the pages say it."""
    return str(state).replace("-", " ")
