"""Review notices: the Slack message that tells the IMOC a draft waits for them, and the
GDCMOC that it came back with changes requested.

Pure: the notice is built from the draft, its incident and who acted; an adapter
(``comms.adapters.alert_sinks.SlackReviewNotifier``) posts it.  Restricted incidents
(PubSec, security) carry only their reference, severity, the draft's number and the link:
no title, tenants, customer text or reviewer's comment leaves comms for them, as alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from comms.errors import CommsError
from comms.models import Draft, Incident

SUBMITTED: Final = "submitted"
CHANGES_REQUESTED: Final = "changes-requested"
NoticeEvent = Literal["submitted", "changes-requested"]

# A reviewer's comment is cut to this many characters in the notice; the page has it whole.
NOTE_CHARS = 300


def slack_escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as Slack's entities: Slack reads them as markup, so a title
    ``CI & runners <!channel>`` would otherwise ping the channel.

    Per https://api.slack.com/reference/surfaces/formatting#escaping; only these three are
    control characters, and only they may be entity-encoded.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class ReviewNotice:
    """What a review notice says; ``restricted`` notices hold no title, tenants or note."""

    event: NoticeEvent
    ref: str
    severity: str
    draft_id: int
    revision: int
    kind: str
    actor: str
    link: str | None
    restricted: bool
    title: str | None = None
    tenants: tuple[str, ...] = ()
    note: str | None = None


class ReviewNotifier(Protocol):
    """Somewhere review notices go (a Slack incoming webhook)."""

    name: str

    def notify(self, notice: ReviewNotice) -> None:
        """Deliver one notice; raise ``PublishError`` when it was not taken."""


def announce(
    notifier: ReviewNotifier | None,
    draft: Draft,
    incident: Incident,
    *,
    event: NoticeEvent,
    actor: str,
    public_url: str | None,
    note: str = "",
) -> str | None:
    """Send the review notice for ``event``; None when it went (or no notifier is set up),
    else one line saying it did not, for the caller to show: a review is recorded whether
    or not Slack took the notice, so a failed notice never fails the review."""
    if notifier is None:
        return None
    notice = review_notice(
        draft, incident, event=event, actor=actor, public_url=public_url, note=note
    )
    try:
        notifier.notify(notice)
    except CommsError as exc:
        return f"the review notice was not sent ({exc}); tell the reviewer yourself"
    return None


def draft_link(public_url: str | None, draft_id: int) -> str | None:
    """The draft's review page under ``comms serve``'s public URL (None when unknown)."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/drafts/{draft_id}"


def review_notice(
    draft: Draft,
    incident: Incident,
    *,
    event: NoticeEvent,
    actor: str,
    public_url: str | None,
    note: str = "",
) -> ReviewNotice:
    """The notice for ``event`` on ``draft`` (its latest revision) by ``actor``."""
    restricted = incident.pubsec or incident.security
    return ReviewNotice(
        event=event,
        ref=incident.ref,
        severity=incident.severity.value,
        draft_id=draft.id,
        revision=draft.revision.number,
        kind=draft.kind.value,
        actor=actor,
        link=draft_link(public_url, draft.id),
        restricted=restricted,
        title=None if restricted else incident.title,
        tenants=() if restricted else tuple(incident.tenants),
        note=None if restricted or not note.strip() else _cut(note.strip()),
    )


def _cut(text: str) -> str:
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 1] + "…"


def slack_message(notice: ReviewNotice) -> dict[str, Any]:
    """The incoming-webhook body: ``text`` (notifications) and ``blocks`` (what clients
    show).  Every piece built from data is escaped; only the icon, bold markup and the
    link's ``<url|label>`` are ours."""
    draft = f"draft {notice.draft_id} r{notice.revision} ({notice.kind})"
    if notice.event == SUBMITTED:
        icon = ":memo:"
        headline = f"{notice.ref} {notice.severity}: {draft} waits for review"
        byline = f"submitted by {notice.actor}"
    else:
        icon = ":leftwards_arrow_with_hook:"
        headline = f"{notice.ref} {notice.severity}: changes requested on {draft}"
        byline = f"by {notice.actor}"
    text = f"{icon} {slack_escape(headline)} ({slack_escape(byline)})"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{icon} *{slack_escape(headline)}*"},
        }
    ]
    about = [byline]
    if notice.title:
        about.append(notice.title)
    if notice.tenants:
        about.append("tenants: " + ", ".join(notice.tenants))
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": slack_escape(" · ".join(about))}],
        }
    )
    if notice.note:
        quoted = "\n".join("> " + slack_escape(line) for line in notice.note.splitlines())
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quoted}})
    if notice.link:
        # A URL cannot hold | or >; an escaped & stays a valid link in Slack.
        url = slack_escape(notice.link).replace("|", "%7C")
        label = "Open the draft" if notice.event == CHANGES_REQUESTED else "Review the draft"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{url}|{label}>"}})
        text += f" {url}"
    else:
        command = f"comms review show {notice.draft_id}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"`{command}`"}})
    return {"text": text, "blocks": blocks}
