"""The Slack note on send: what customers were told, posted to the incident's channel.

    note_sent(drafts) → slack_note_for(draft) → build_slack_note → SlackNote → SlackPoster

The channel comes from the incident's incident.io link (``comms.incidentio.sync``); each
note is claimed in the store before it is posted (``comms.ports.NoteLedger``) and logged
as ``slack.noted`` after, once per sent revision.  Every piece of data in
a note is escaped for Slack, and nothing about a PubSec incident is ever built or posted.
Pure: Slack is reached through the :class:`SlackPoster` port
(``comms.adapters.slack_web``), the store through ``comms.ports``, and ``now`` is given.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from comms.errors import CommsError, PublishError
from comms.incidentio.sync import PubsecError, history, link_of
from comms.models import DraftState, Event, Incident, Tenant
from comms.notice import slack_escape  # the review notices' escaping: one rule for Slack
from comms.times import format_time

if TYPE_CHECKING:
    from comms.models import Revision
    from comms.ports import Store

NOTE_EVENT = "slack.noted"  # the Slack note of a sent revision was posted

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
    (:func:`slack_note_for`), once per revision: the note is claimed in the store
    (``NoteLedger.claim_note``) before it is posted and logged as ``slack.noted`` after,
    so neither a repeated ``comms send`` or ``--resume`` nor two sends finishing the draft
    at the same moment post it twice.

    Only a draft whose revision is sent in full is noted; an unlinked or PubSec incident
    never is, and ``poster`` (None: no Slack bot configured) is called only when a note is
    due.  A failed post is a result, never an exception: the send stands, the claim is
    given back, and the next run tries the note again.  A post Slack did not answer in time
    (``PublishError.maybe_sent``) and a run stopped in the middle of a post keep their
    claim: the note may have been posted, and is not posted again.
    """
    results = []
    owner = uuid.uuid4().hex  # this run's claims: only it gives them back
    made: list[SlackPoster] = []  # the poster, built once, when the first note is due
    for draft_id in dict.fromkeys(draft_ids):
        draft = store.get_draft(draft_id)
        revision = draft.revision.number
        if draft.state is not DraftState.SENT:
            results.append(NoteResult(draft_id, f"draft {draft_id} r{revision} is not sent yet"))
            continue
        events = store.events(draft.incident_ref)
        link = history(events)[0]
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
        if not store.claim_note(draft_id, revision, owner=owner, now=now):
            reason = f"draft {draft_id} r{revision}: another comms send has taken its Slack note"
            results.append(NoteResult(draft_id, reason))
            continue
        try:
            made = made or [poster()]
            ts = made[0].post(plan.note)
        except CommsError as exc:
            if not (isinstance(exc, PublishError) and exc.maybe_sent):
                store.release_note(draft_id, revision, owner=owner)  # the next run tries again
            reason = f"the Slack note for draft {draft_id} was not posted: {exc}"
            results.append(NoteResult(draft_id, reason, failed=True))
            continue
        data = {"draft_id": draft_id, "revision": revision, "channel": plan.note.channel, "ts": ts}
        store.append_event(draft.incident_ref, type=NOTE_EVENT, actor=actor, now=now, data=data)
        where = f"Slack channel {plan.note.channel}"
        results.append(NoteResult(draft_id, f"draft {draft_id} r{revision} noted in {where}", True))
    return results
