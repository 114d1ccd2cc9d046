"""Review policy, approval binding and the send gate: pure functions, no I/O.

An approval is bound to the exact text, recipients and channels it was given for:
``approval_hash`` covers all three, so any edit, another tenant or another channel voids
it.  ``send_problems`` is the one gate every channel passes through.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from comms.errors import ConfigError
from comms.models import Draft, DraftState, Incident, Review, Tenant

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

    required_for: frozenset[str] = frozenset({"S1", "S2"})
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
        required = table.get("required_for", ["S1", "S2"])
        if not isinstance(required, list) or not set(required) <= {"S1", "S2", "S3", "S4"}:
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
        and incident.severity.value == "S1"
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
    allowed = {audience[0].id} if len(audience) == 1 else set()
    names: list[str] = []
    for tenant in known:
        if tenant.id in allowed:
            continue
        names += [tenant.name, *tenant.aliases]
    return [n for n in names if n.strip()]


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
