"""ZendeskPublisher replayed from vcrpy cassettes (pytest-recording), no server, no network.

The cassettes in ``tests/cassettes/zendesk/`` were recorded from the Zendesk-compatible test
server (``tests/zendesk/server.py``). They pin the exact requests the adapter sends through
zenpy (method, path, query and JSON body must match) and replay Zendesk-shaped answers,
including a ``x-idempotency-lookup: hit`` and a 500 behind which the reply was applied.
``Authorization`` is filtered and every URI is rewritten to ``127.0.0.1:1`` (nothing listens
there), so a replay depends on no port and holds no credential. CI replays only: record mode
``none`` unless ``--record-mode`` is given.

Re-record after changing what the adapter sends (this starts the test server for each test)::

    .venv/bin/python -m pytest tests/zendesk/test_zendesk_cassettes.py -p no:cacheprovider \\
        --record-mode=rewrite

then review the YAML diff and commit it with the adapter change. Live-server tests with fault
injection live in ``test_zendesk_live.py``; keep the two apart (vcrpy patches the transport).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest

from comms.adapters.zendesk import ZendeskPublisher
from comms.models import Incident, MessageKind, Receipt, Tenant
from tests.zendesk.conftest import AGENT, CASSETTE_DIR, CASSETTE_NETLOC, TOKEN
from tests.zendesk.server import ZendeskServer

BODY = "We are investigating degraded performance on your GitLab Dedicated instance."
UPDATE = "Mitigation is in progress. Next update by 14:00 UTC."


@pytest.fixture
def netloc(record_mode: str | None) -> Iterator[tuple[str, ZendeskServer | None]]:
    """Where zenpy connects: the live test server when recording, a dead port in replay."""
    if (record_mode or "none") == "none":
        yield CASSETTE_NETLOC, None
        return
    with ZendeskServer(agent_email=AGENT, token=TOKEN) as server:
        yield server.netloc, server


@pytest.fixture
def publisher(netloc: tuple[str, ZendeskServer | None], zenpy_at: Any, publisher_for: Any) -> Any:
    return publisher_for(zenpy_at(netloc[0]))


def send(
    publisher: ZendeskPublisher,
    tenant: Tenant,
    incident: Incident,
    *,
    key: str,
    body: str,
    previous: Receipt | None = None,
) -> Receipt:
    return publisher.publish(
        tenant=tenant,
        incident=incident,
        kind=MessageKind.UPDATE if previous else MessageKind.INVESTIGATION_START,
        subject="Degraded performance",
        body=body,
        idempotency_key=key,
        draft_id=1,
        revision=1,
        previous=previous,
    )


@pytest.mark.vcr
def test_ticket_then_reply_then_repeats(
    publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = send(publisher, tenant, incident, key="INC-12/acme/d1r1", body=BODY)
    ticket_id = opened.detail["ticket_id"]
    again = send(publisher, tenant, incident, key="INC-12/acme/d1r1", body=BODY)
    replied = send(publisher, tenant, incident, key="INC-12/acme/d2r1", body=UPDATE, previous=again)
    repeated = send(
        publisher, tenant, incident, key="INC-12/acme/d2r1", body=UPDATE, previous=replied
    )

    assert opened.external_id == again.external_id == str(ticket_id)
    assert again.detail["already_delivered"] is True  # x-idempotency-lookup: hit
    assert opened.detail["subject"] == "GitLab Dedicated Notice: Degraded performance"
    assert opened.detail["requester"] == "ops-lead@acme.example"
    assert replied.external_id == f"{ticket_id}/{replied.detail['comment_id']}"
    assert replied.detail["already_delivered"] is False
    assert repeated.external_id == replied.external_id
    assert repeated.detail["already_delivered"] is True
    assert replied.detail["ticket_id"] == repeated.detail["ticket_id"] == ticket_id


@pytest.mark.vcr
def test_a_reply_applied_behind_a_500_is_found_not_reposted(
    netloc: tuple[str, ZendeskServer | None],
    publisher: ZendeskPublisher,
    tenant: Tenant,
    incident: Incident,
    sleeps: list[float],
) -> None:
    opened = send(publisher, tenant, incident, key="INC-12/acme/d1r1", body=BODY)
    ticket_id = opened.detail["ticket_id"]
    server = netloc[1]
    if server is not None:  # recording: the server applies the reply, then answers 500
        server.inject("commit_then_500", method="PUT")

    receipt = send(
        publisher, tenant, incident, key="INC-12/acme/d2r1", body=UPDATE, previous=opened
    )

    assert receipt.detail["already_delivered"] is True
    assert receipt.detail["comment_id"] is not None
    assert sleeps == [1.0]  # one back-off before looking
    if server is not None:
        assert [c["body"] for c in server.state.comments[ticket_id]] == [BODY, UPDATE]


def test_cassettes_hold_no_credentials_and_no_live_port() -> None:
    cassettes = sorted(CASSETTE_DIR.glob("*.yaml"))
    assert {p.stem for p in cassettes} >= {
        "test_ticket_then_reply_then_repeats",
        "test_a_reply_applied_behind_a_500_is_found_not_reposted",
    }
    basic = base64.b64encode(f"{AGENT}/token:{TOKEN}".encode()).decode()
    for path in cassettes:
        text = path.read_text(encoding="utf-8")
        assert TOKEN not in text, path
        assert basic not in text, path
        assert "authorization" not in text.lower(), path
        uris = [line.split("uri:", 1)[1].strip() for line in text.splitlines() if "uri:" in line]
        assert uris, path
        assert all(uri.startswith(f"http://{CASSETTE_NETLOC}/api/v2/") for uri in uris), path
        assert set(re.findall(r"127\.0\.0\.1:\d+", text)) == {CASSETTE_NETLOC}, path
