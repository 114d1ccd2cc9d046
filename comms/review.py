"""Review policy, approval binding, the reviewer's decisions and the send gate.

An approval is bound to the exact text, recipients and channels it was given for:
``approval_hash`` covers all three, so any edit, another tenant or another channel voids
it.  ``gate`` (built on ``send_problems``) is the one gate every channel passes through;
``submit`` and ``decide`` are the reviewer's side, with the four-eyes rule and (in team
mode) the reviewer's role inside.

Everything here takes its store (the ports), policy, lint configuration and ``now`` as
arguments and returns plain data: no printing, no environment, no settings.  The one thing
kept between calls is what the gate found in a text (its lint findings and the tenant
names in it), by the text's content and every other input of that check.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from comms.errors import (
    EXIT_FINDINGS,
    CommsError,
    ConfigError,
    RefusedError,
    TransitionError,
    UsageError,
)
from comms.models import Draft, DraftState, Event, Incident, Review, Severity, Tenant, User
from comms.ports import DraftStore, IncidentStore, ReviewStore, TenantStore

if TYPE_CHECKING:
    from comms.lint.config import LintConfig

ROLES = ("imoc", "sirt")


@dataclass(frozen=True)
class ReviewPolicy:
    """``[review]`` in comms.toml.

    ``required_for``: severities whose messages need an approval (default S1, S2).
    ``sirt_for_security``: security incidents also need an approval by the ``sirt`` role.
    ``s1_timeout_minutes``: for S1, a draft waiting this long in review may be sent without
    an answer, so that review never breaks the 60-minute cadence (off by default; the send
    is recorded and flagged for review afterwards).
    """

    required_for: frozenset[str] = frozenset({Severity.S1, Severity.S2})
    sirt_for_security: bool = True
    s1_timeout_minutes: int | None = None

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> ReviewPolicy:
        """Validate the raw ``[review]`` table."""
        unknown = set(table) - {"required_for", "sirt_for_security", "s1_timeout_minutes"}
        if unknown:
            raise ConfigError(
                f"[review]: unknown key '{sorted(unknown)[0]}' "
                "(known: required_for, sirt_for_security, s1_timeout_minutes)"
            )
        required = table.get("required_for", [Severity.S1.value, Severity.S2.value])
        if not isinstance(required, list) or not set(required) <= set(Severity):
            raise ConfigError(
                "[review]: required_for must be a list of severities like ['S1', 'S2']"
            )
        sirt = table.get("sirt_for_security", True)
        if not isinstance(sirt, bool):
            raise ConfigError("[review]: sirt_for_security must be true or false")
        timeout = table.get("s1_timeout_minutes")
        if timeout is not None and (
            not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0
        ):
            raise ConfigError(
                "[review]: s1_timeout_minutes must be a positive whole number (or absent: off)"
            )
        return cls(frozenset(required), sirt, timeout)


def approval_hash(subject: str, body: str, tenants: Iterable[str], channels: Iterable[str]) -> str:
    """SHA-256 over the exact text, the sorted recipients and the sorted channels."""
    payload = json.dumps(
        {
            "subject": subject,
            "body": body,
            "tenants": sorted(set(tenants)),
            "channels": sorted(set(channels)),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class ReviewStatus:
    """Which approvals a draft needs, which valid ones it has, and what is missing."""

    needed: tuple[str, ...]
    approved_by: dict[str, str] = field(default_factory=dict)  # role -> reviewer
    changes_requested: str | None = None
    timed_out: bool = False

    @property
    def missing(self) -> list[str]:
        """Roles still to approve."""
        return [role for role in self.needed if role not in self.approved_by]

    @property
    def ok(self) -> bool:
        """True when every needed approval is there (or S1 review timed out)."""
        return (not self.missing and self.changes_requested is None) or self.timed_out


def review_status(
    draft: Draft,
    incident: Incident,
    reviews: Sequence[Review],
    *,
    tenants: Sequence[str],
    channels: Sequence[str],
    policy: ReviewPolicy,
    now: datetime,
    submitted_at: datetime | None = None,
) -> ReviewStatus:
    """Evaluate the reviews of ``draft``'s latest revision against the policy.

    Only approvals of this revision with a matching ``approval_hash`` count; a request for
    changes on this revision blocks until a later approval of a new revision.
    """
    needed: list[str] = []
    if incident.severity.value in policy.required_for:
        needed.append("imoc")
    if incident.security and policy.sirt_for_security:
        needed.append("sirt")
    current = approval_hash(draft.revision.subject, draft.revision.body, tenants, channels)
    approved: dict[str, str] = {}
    changes: str | None = None
    for review in reviews:
        if review.revision != draft.revision.number:
            continue
        if review.decision == "changes-requested":
            changes, approved = (review.note or "changes requested"), {}
        elif review.decision == "approved" and review.approval_hash == current:
            approved[review.role] = review.reviewer
            changes = None
    timed_out = bool(
        policy.s1_timeout_minutes
        and incident.severity is Severity.S1
        and changes is None
        and "sirt" not in needed
        and submitted_at is not None
        and now - submitted_at >= timedelta(minutes=policy.s1_timeout_minutes)
    )
    return ReviewStatus(
        tuple(needed), approved, changes, timed_out and not set(needed) <= set(approved)
    )


def stale_approval(
    draft: Draft, reviews: Sequence[Review], tenants: Sequence[str], channels: Sequence[str]
) -> bool:
    """True when an approval exists for this revision but for other text, recipients or channels."""
    current = approval_hash(draft.revision.subject, draft.revision.body, tenants, channels)
    return any(
        r.decision == "approved"
        and r.revision == draft.revision.number
        and r.approval_hash != current
        for r in reviews
    )


def forbidden_names(audience: Sequence[Tenant], known: Sequence[Tenant]) -> list[str]:
    """Tenant names the text must not contain.

    Every tenant outside the audience; and when one text goes to several tenants, the
    audience's own names too, since each recipient would read the others'.
    """
    return forbidden_of([t.id for t in audience], {t.id: (t.name, *t.aliases) for t in known})


def forbidden_of(audience: Sequence[str], names: Mapping[str, Sequence[str]]) -> list[str]:
    """``forbidden_names`` from tenant ids and ``TenantStore.tenant_names`` (id → the
    tenant's name then its aliases), as the gate reads them."""
    allowed = {audience[0]} if len(audience) == 1 else set()
    found: list[str] = []
    for tenant_id, own in names.items():
        if tenant_id not in allowed:
            found += own
    return [n for n in found if n.strip()]


def named_tenants(text: str, names: Sequence[str]) -> list[str]:
    """Which of ``names`` appear in ``text`` as whole words (case-insensitive)."""
    # A substring test first: with hundreds of tenants (three names each) the regex per name
    # overflowed re's cache and recompiled every time, about 0.5 ms a name.  Case folding
    # is a superset of IGNORECASE's simple folding, so no name that matches is skipped.
    folded = text.casefold()
    found = []
    for name in names:
        if name.casefold() not in folded:
            continue
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE):
            found.append(name)
    return found


def send_problems(
    draft: Draft,
    *,
    status: ReviewStatus | None,
    blocking_findings: Sequence[dict[str, Any]],
    other_tenants_named: Sequence[str],
    override_reason: str | None,
) -> list[str]:
    """Everything that stops ``draft`` from being sent; empty means it may go.

    ``status`` None means review is not required for this incident.  An override
    (``--skip-review --reason``) replaces the approval only; findings, other tenants'
    names and an empty text still block.
    """
    problems: list[str] = []
    if draft.state is DraftState.SENT:
        problems.append(f"draft {draft.id} was already sent")
    if not draft.revision.body.strip() or not draft.revision.subject.strip():
        problems.append("the message is empty")
    if status is not None and not status.ok and not override_reason:
        if status.changes_requested:
            problems.append(f"changes were requested: {status.changes_requested}")
        else:
            roles = " and ".join(
                {"imoc": "an incident manager", "sirt": "SIRT"}[r] for r in status.missing
            )
            problems.append(
                f"needs approval by {roles} (comms review approve {draft.id}), "
                "or --skip-review --reason '…'"
            )
    if blocking_findings:
        rules = sorted({str(f.get("rule")) for f in blocking_findings})
        problems.append(
            f"{len(blocking_findings)} error-level lint finding(s): {', '.join(rules)}; "
            f"fix them (comms lint --fix) and draft again"
        )
    if other_tenants_named:
        problems.append(
            f"the text names another tenant ({', '.join(other_tenants_named)}); "
            "a message must name no tenant but its audience"
        )
    return problems


# -- the send gate and the reviewer's side, over the store ports ---------------------------

DECISIONS = ("approved", "changes-requested")
# Drafts in these states still wait for a reviewer.
WAITING = (DraftState.DRAFT, DraftState.IN_REVIEW, DraftState.CHANGES_REQUESTED)


class GateStore(TenantStore, IncidentStore, DraftStore, ReviewStore, Protocol):
    """What the gate and the reviewer's side read and write: tenants, incidents and their
    event log, drafts and reviews, several changes at once in one transaction."""

    def transaction(self) -> AbstractContextManager[None]:
        """Join the changes made inside into one transaction (see ``comms.ports.Store``)."""


class StaleRevisionError(TransitionError):
    """A decision on a revision that is no longer the draft's latest (someone drafted
    meanwhile): nothing is recorded; HTTP 409 in the review server."""


class ApprovalRefusedError(CommsError):
    """An approval of a draft with error-level findings, without a reason: exit 1."""

    exit_code = EXIT_FINDINGS


def no_tenants(incident: Incident) -> str:
    """Why a message of an incident without tenants (imported from incident.io before its
    tenant field was set) can be neither approved nor sent, and what to do."""
    return (
        f"{incident.ref} has no tenants yet; add them first: "
        f"comms incident set {incident.ref} --add-tenant ID"
    )


def audience(incident: Incident, tenant_ids: Sequence[str]) -> list[str]:
    """The recipients of one send: ``tenant_ids`` in order without repeats, or every tenant
    of the incident when none are named.

    A tenant the incident does not affect is a ``UsageError``: a message goes only to
    tenants on the incident record.
    """
    chosen = list(dict.fromkeys(tenant_ids)) or list(incident.tenants)
    if not chosen:
        raise UsageError(no_tenants(incident))
    strangers = [t for t in chosen if t not in incident.tenants]
    if strangers:
        raise UsageError(
            f"tenant '{strangers[0]}' is not affected by {incident.ref}; add it first: "
            f"comms incident set {incident.ref} --add-tenant {strangers[0]}"
        )
    return chosen


# The events ``submitted_at`` reads.
SUBMITTED = ("review.submitted",)


def submitted_at(events: Sequence[Event], draft: Draft) -> datetime | None:
    """When ``draft``'s latest revision was last submitted for review, or None (``events``:
    the incident's, or its ``SUBMITTED`` ones)."""
    for event in reversed(events):
        if (
            event.type == "review.submitted"
            and event.data.get("draft_id") == draft.id
            and event.data.get("revision") == draft.revision.number
        ):
            return event.at
    return None


def promised_update(draft: Draft) -> datetime | None:
    """When the latest revision tells the customer the next update will come, or None.

    Read from the text itself, as the customer will read it (an edit by hand may have
    changed or removed the ``next_update`` the template printed).  A bare clock time
    counts from when the revision was written, not from now: read at send time,
    "by 15:00 UTC" would always be in the future.
    """
    from comms.cadence import promise_in_text

    return promise_in_text(draft.revision.body, draft.revision.created_at)


def late_promise(draft: Draft, now: datetime) -> str | None:
    """The problem with sending ``draft`` at ``now`` when the next-update time it promises
    is already past (the customer would read a deadline we missed), else None."""
    from comms.times import format_time

    promise = promised_update(draft)
    if promise is None or promise > now:
        return None
    return (
        f"the message promises the next update by {format_time(promise)}, which has passed; "
        f"draft it again for a new time: comms draft {draft.kind.value} "
        f"--incident {draft.incident_ref}"
    )


@dataclass(frozen=True)
class Gate:
    """The send gate's verdict on one draft for one set of recipients and channels.

    ``problems`` empty means the draft may go.  ``status`` is None when the incident needs
    no review and nobody has reviewed the draft.  ``late`` is the problem of a promised
    next-update time already past (also in ``problems``): unlike the others it stops even
    a repeated send, since time, not the text or its approval, made it wrong.
    """

    draft: Draft
    incident: Incident
    audience: tuple[str, ...]
    problems: tuple[str, ...]
    status: ReviewStatus | None
    late: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing stops the send."""
        return not self.problems


class _Same:
    """A lint configuration compared by identity (its own ``==`` compares every setting),
    held while a checked text keyed by it is kept, so its id is never another's."""

    __slots__ = ("config",)

    def __init__(self, config: LintConfig | None) -> None:
        self.config = config

    def __hash__(self) -> int:
        return id(self.config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.config is self.config


class _Kept:
    """A bounded, thread-safe LRU of the gate's text checks (see ``_text_checks``)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[_Same, bytes], TextChecks] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[_Same, bytes]) -> TextChecks | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[_Same, bytes], value: TextChecks) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class TextChecks:
    """What the gate finds in a text itself: its error-level lint findings (as dicts) and
    the forbidden tenant names it contains."""

    blocking: tuple[dict[str, Any], ...]
    named: tuple[str, ...]


# Texts checked, kept by content: a review page viewed again, or by another reviewer,
# lints nothing.  The key is every input of the check (a revision's number is not one:
# a redaction rewrites a revision in place), hashed, so a kept entry holds no text.
CHECKS_KEPT = 2048
_checked = _Kept(CHECKS_KEPT)


def _text_checks(
    text: str,
    draft: Draft,
    incident: Incident,
    forbidden: Sequence[str],
    config: LintConfig | None,
) -> TextChecks:
    """``TextChecks`` of ``text`` for this draft's kind and incident, ``forbidden`` names
    and lint ``config``: linted once per distinct input, then kept (``CHECKS_KEPT``)."""
    kind, severity, status = draft.kind.value, incident.severity.value, incident.status.value
    digest = hashlib.sha256(
        json.dumps([text, kind, severity, status, list(forbidden)]).encode()
    ).digest()
    key = (_Same(config), digest)
    found = _checked.get(key)
    if found is None:
        # The text is linted again rather than trusting the stored findings: the lint
        # configuration or the tenant list may have changed since it was drafted.
        from comms.lint import blocking, lint

        findings = lint(
            text,
            config=config,
            kind=kind,
            audience=None,
            tenants=list(forbidden),
            severity=severity,
            status=status,
        )
        found = TextChecks(
            tuple(f.to_dict() for f in blocking(findings)),
            tuple(named_tenants(text, forbidden)),
        )
        _checked.put(key, found)
    return found


def _blocking_findings(
    text: str,
    draft: Draft,
    incident: Incident,
    forbidden: Sequence[str],
    config: LintConfig | None,
) -> list[dict[str, Any]]:
    found = _text_checks(text, draft, incident, forbidden, config).blocking
    return [dict(f) for f in found]  # copies: the kept ones are shared


def gate(
    store: GateStore,
    draft_id: int,
    *,
    tenants: Sequence[str],
    channels: Sequence[str],
    override_reason: str | None,
    policy: ReviewPolicy,
    lint_config: LintConfig | None,
    now: datetime,
) -> Gate:
    """Decide whether draft ``draft_id`` may be sent to ``tenants`` (none: the incident's)
    through ``channels``, at ``now``; reads the store and writes nothing.

    Refused, with one problem per reason: an incident without tenants yet, a draft already
    sent, an empty message, a missing or stale approval (``override_reason`` replaces the
    approval only), error-level lint findings, another tenant named, or a promised
    next-update time already past at ``now``.
    An unknown or unaffected tenant is a ``UsageError``.
    """
    draft = store.get_draft(draft_id)
    incident = store.get_incident(draft.incident_ref)
    # No tenants at all is one more problem (a reviewer still reads the draft); a named
    # tenant the incident does not affect is a mistake in the command.
    chosen = audience(incident, tenants) if tenants or incident.tenants else []
    names = store.tenant_names()
    missing = [t for t in chosen if t not in names]
    if missing:
        raise UsageError(
            f"tenant '{missing[0]}' is unknown here; run comms tenants sync or comms tenants add"
        )
    forbidden = forbidden_of(chosen, names)
    reviews = store.reviews(draft.id)
    status = None
    if (
        incident.severity.value in policy.required_for
        or (incident.security and policy.sirt_for_security)
        or reviews
    ):
        status = review_status(
            draft,
            incident,
            reviews,
            tenants=chosen,
            channels=channels,
            policy=policy,
            now=now,
            submitted_at=submitted_at(store.events(incident.ref, types=SUBMITTED), draft),
        )
    checked = _text_checks(draft.revision.text, draft, incident, forbidden, lint_config)
    problems = send_problems(
        draft,
        status=status,
        blocking_findings=checked.blocking,
        other_tenants_named=checked.named,
        override_reason=override_reason,
    )
    if status is not None and not status.ok and stale_approval(draft, reviews, chosen, channels):
        problems.append(
            "the approval was given for other recipients or channels; ask for a new review"
        )
    late = late_promise(draft, now) if draft.state is not DraftState.SENT else None
    if late is not None:
        problems.append(late)
    if not chosen:
        problems.insert(0, no_tenants(incident))
    return Gate(draft, incident, tuple(chosen), tuple(problems), status, late)


@dataclass(frozen=True)
class Inspection:
    """A draft as its reviewer sees it: the gate's verdict for these channels, the text,
    and the unified diff to the last update sent for the incident ("" when none was)."""

    gate: Gate
    channels: tuple[str, ...]
    text: str
    diff: str


def _last_sent(store: DraftStore, ref: str, exclude: int) -> Draft | None:
    sent = [
        d for d in store.list_drafts(incident_ref=ref, state=DraftState.SENT) if d.id != exclude
    ]
    return max(sent, key=lambda d: d.updated_at) if sent else None


def inspect_draft(
    store: GateStore,
    draft_id: int,
    *,
    tenants: Sequence[str],
    channels: Sequence[str],
    policy: ReviewPolicy,
    lint_config: LintConfig | None,
    now: datetime,
) -> Inspection:
    """What ``comms review show`` and a review page present: ``gate`` without an override,
    plus the text and its diff to the incident's last sent update.  Writes nothing."""
    verdict = gate(
        store,
        draft_id,
        tenants=tenants,
        channels=channels,
        override_reason=None,
        policy=policy,
        lint_config=lint_config,
        now=now,
    )
    draft = verdict.draft
    text = draft.revision.text
    last = _last_sent(store, draft.incident_ref, draft.id)
    diff = ""
    if last is not None:
        import difflib

        diff = "".join(
            difflib.unified_diff(
                last.revision.text.splitlines(True),
                text.splitlines(True),
                f"last sent (draft {last.id} r{last.revision.number})",
                f"draft {draft.id} r{draft.revision.number}",
            )
        )
    return Inspection(verdict, tuple(channels), text, diff)


def waiting(store: DraftStore, *, incident_ref: str | None = None) -> list[Draft]:
    """Drafts waiting for review (drafted, in review or sent back; not approved or sent),
    oldest first, of one incident or of all.

    One listing per waiting state: the store reads only those drafts, not every draft ever
    sent (the review queue of a store with years of incidents stays fast)."""
    found = [
        d for state in WAITING for d in store.list_drafts(incident_ref=incident_ref, state=state)
    ]
    return sorted(found, key=lambda d: (d.created_at, d.id))


def submit(store: DraftStore, draft_id: int, *, actor: str, now: datetime) -> Draft:
    """Put a draft's latest revision in review and log ``review.submitted`` (its time
    starts the S1 review timeout).  A draft already sent is a ``UsageError``."""
    draft = store.get_draft(draft_id)
    if draft.state is DraftState.SENT:
        raise UsageError(f"draft {draft_id} was already sent")
    return store.set_draft_state(
        draft_id,
        DraftState.IN_REVIEW,
        now=now,
        actor=actor,
        event="review.submitted",
        data={"revision": draft.revision.number},
    )


@dataclass(frozen=True)
class Decision:
    """A recorded review: the draft as it was reviewed, the stored review, and the
    recipients and channels an approval covers.  ``blocking_rules`` are the error-level
    lint rules an approval was given over (with a reason); they still block the send."""

    draft: Draft
    review: Review
    audience: tuple[str, ...]
    channels: tuple[str, ...]
    blocking_rules: tuple[str, ...] = ()
    pending: bool = False  # an approval recorded, another still needed (stays in review)

    @property
    def error_count(self) -> int:
        """Error-level findings on the reviewed revision: they still block the send."""
        return sum(1 for f in self.draft.revision.findings if f.get("level") == "error")


def decide(
    store: GateStore,
    draft_id: int,
    *,
    decision: str,
    note: str,
    tenants: Sequence[str],
    channels: Sequence[str],
    now: datetime,
    role: str | None = None,
    reviewer: str = "",
    user: User | None = None,
    override_reason: str | None = None,
    lint_config: LintConfig | None = None,
    revision: int | None = None,
    policy: ReviewPolicy | None = None,
) -> Decision:
    """Record a reviewer's ``decision`` ("approved" or "changes-requested") as ``role`` on
    the draft's latest revision, and move the draft to approved or changes-requested.

    Who reviews: the authenticated ``user`` (team mode), who reviews only in the role
    theirs allows (``identity.review_role``: an imoc or admin as imoc, sirt as sirt;
    ``role`` None picks it, another is a ``RefusedError``) and is recorded by name; or,
    without a user, the self-declared ``reviewer`` as ``role`` (default imoc).

    An approval is bound to the text, ``tenants`` (none: the incident's) and ``channels``.
    The revision's author never reviews it (the four-eyes rule: ``RefusedError``), and a
    sent draft is not reviewed again (``UsageError``).  A text with error-level lint
    findings (linted as the send gate lints it, with ``lint_config``) is approved only
    with an ``override_reason``, logged with the rules as ``review.findings-overridden``;
    else ``ApprovalRefusedError``.  With ``revision`` (the number the reviewer read), a
    draft revised since is a ``StaleRevisionError`` and nothing is recorded.

    With ``policy``, an approval moves the draft to approved only once every approval the
    policy needs is there (a security incident's first approval leaves it in review, in
    the queue of whoever must still approve; a sirt approval of an incident that needs an
    imoc's leaves it there too).
    """
    if override_reason is not None and not override_reason.strip():
        raise UsageError("approving over error-level findings needs a reason; it is recorded")
    if decision not in DECISIONS:
        raise UsageError(f"unknown decision '{decision}' (known: {', '.join(DECISIONS)})")
    if role is not None and role not in ROLES:
        raise UsageError(f"unknown review role '{role}' (known: {', '.join(ROLES)})")
    if user is not None:
        from comms.identity import review_role

        role, reviewer = review_role(user, role), user.name
    role = role or ROLES[0]
    if not reviewer.strip():
        raise UsageError("a review needs the reviewer's name")
    draft = store.get_draft(draft_id)
    _check_current(draft, revision)
    if draft.state is DraftState.SENT:
        raise UsageError(f"draft {draft_id} was already sent; review the next draft instead")
    if reviewer == draft.revision.author:
        raise RefusedError(
            f"four-eyes rule: {reviewer} wrote revision {draft.revision.number} of draft "
            f"{draft.id}, so another person must review it"
            + ("" if user is not None else " (set COMMS_REVIEWER to the reviewer's name)")
        )
    if decision == "approved" and not channels:
        raise UsageError("an approval must name the channels it covers")
    incident = store.get_incident(draft.incident_ref)
    chosen = audience(incident, tenants)
    found = (
        _approval_blockers(store, draft, incident, chosen, lint_config)
        if decision == "approved"
        else []
    )
    rules = tuple(sorted({str(f.get("rule")) for f in found}))
    if rules and not override_reason:
        raise ApprovalRefusedError(
            f"draft {draft.id} r{draft.revision.number} has {len(found)} error-level lint "
            f"finding(s): {', '.join(rules)}; fix them (comms lint --fix) and draft again, or "
            "approve anyway with --reason '…' (recorded; they still block sending)"
        )
    review = Review(
        draft_id=draft.id,
        revision=draft.revision.number,
        reviewer=reviewer,
        role=role,
        decision=decision,
        approval_hash=approval_hash(draft.revision.subject, draft.revision.body, chosen, channels),
        at=now,
        note=note,
    )
    with store.transaction():
        # Read again inside the transaction: a revision drafted since the checks above
        # must not receive this decision.
        _check_current(store.get_draft(draft_id), draft.revision.number)
        state = _state_after(store, draft, incident, review, policy, chosen, channels, now)
        if rules:
            store.append_event(
                incident.ref,
                type="review.findings-overridden",
                actor=reviewer,
                now=now,
                data={
                    "draft_id": draft.id,
                    "revision": draft.revision.number,
                    "reviewer": reviewer,
                    "reason": override_reason,
                    "rules": list(rules),
                },
            )
        saved = store.add_review(review, incident_ref=incident.ref, state=state)
    pending = decision == "approved" and state is DraftState.IN_REVIEW
    return Decision(draft, saved, tuple(chosen), tuple(channels), rules, pending)


def _state_after(
    store: GateStore,
    draft: Draft,
    incident: Incident,
    review: Review,
    policy: ReviewPolicy | None,
    chosen: Sequence[str],
    channels: Sequence[str],
    now: datetime,
) -> DraftState:
    """The draft's state once ``review`` is recorded (see ``decide``)."""
    if review.decision != "approved":
        return DraftState.CHANGES_REQUESTED
    if policy is None:
        return DraftState.APPROVED
    status = review_status(
        draft,
        incident,
        [*store.reviews(draft.id), review],
        tenants=chosen,
        channels=channels,
        policy=policy,
        now=now,
    )
    return DraftState.APPROVED if not status.missing else DraftState.IN_REVIEW


def _check_current(draft: Draft, revision: int | None) -> None:
    if revision is not None and draft.revision.number != revision:
        raise StaleRevisionError(
            f"draft {draft.id} is at revision {draft.revision.number} now, not {revision} "
            "that you read; nothing was recorded: read it again"
        )


def _approval_blockers(
    store: GateStore,
    draft: Draft,
    incident: Incident,
    chosen: Sequence[str],
    config: LintConfig | None,
) -> list[dict[str, Any]]:
    """The error-level findings the send gate would find in ``draft`` for ``chosen``."""
    names = store.tenant_names()
    forbidden = forbidden_of([t for t in chosen if t in names], names)
    return _blocking_findings(draft.revision.text, draft, incident, forbidden, config)
