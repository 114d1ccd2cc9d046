"""ZendeskPublisher through zenpy over real HTTP against the Zendesk-compatible test server.

Every fault test asserts on the server's own state: one ticket, one comment, whatever the
client saw. Sleeps are recorded, not slept; only the ``timeout`` fault costs real time (the
server answers after 0.6 s, the client gives up after 0.3 s).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from zenpy.lib.exception import APIException, RatelimitBudgetExceeded, ZenpyException

from comms.adapters.zendesk import (
    CONTACT_REQUEST_TAG,
    ZendeskPublisher,
    _translate,
    delivery_tag,
    from_settings,
    recipients,
    ticket_subject,
)
from comms.errors import ConfigError, PublishError
from comms.models import Contact, Incident, MessageKind, Receipt, Tenant
from comms.ports import Publisher
from tests.zendesk.campaign import run_campaign
from tests.zendesk.conftest import AGENT, NOW, TOKEN, zendesk_receipt
from tests.zendesk.server import ZendeskServer

BODY = "We are investigating degraded performance on your GitLab Dedicated instance."
UPDATE = "Mitigation is in progress. Next update by 14:00 UTC."

# Faults a reply or a creation can meet; "timeout" and the "commit_then_*" ones are applied
# on the server although the client sees a failure.
FAULTS = ["429", "500", "drop", "timeout", "commit_then_drop", "commit_then_500"]


@pytest.fixture
def client(server: ZendeskServer, zenpy_at: Any) -> Any:
    return zenpy_at(server.netloc, timeout=0.3)


@pytest.fixture
def publisher(client: Any, publisher_for: Any) -> ZendeskPublisher:
    return publisher_for(client)


def open_ticket(
    publisher: ZendeskPublisher, tenant: Tenant, incident: Incident, key: str = "INC-12/acme/d1r1"
) -> Receipt:
    return publisher.publish(
        tenant=tenant,
        incident=incident,
        kind=MessageKind.INVESTIGATION_START,
        subject="Degraded performance",
        body=BODY,
        idempotency_key=key,
        draft_id=1,
        revision=1,
    )


def reply(
    publisher: ZendeskPublisher,
    tenant: Tenant,
    incident: Incident,
    previous: Receipt,
    *,
    key: str = "INC-12/acme/d2r1",
    body: str = UPDATE,
) -> Receipt:
    """The next update, given this channel's latest receipt for the incident and tenant."""
    return publisher.publish(
        tenant=tenant,
        incident=incident,
        kind=MessageKind.UPDATE,
        subject="Degraded performance",
        body=body,
        idempotency_key=key,
        draft_id=2,
        revision=1,
        previous=previous,
    )


def user_email(server: ZendeskServer, user_id: int) -> str:
    return str(server.state.users[user_id]["email"])


def test_first_update_opens_a_contact_request_ticket(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    receipt = open_ticket(publisher, tenant, incident)

    [ticket] = server.state.tickets.values()
    assert ticket["subject"] == "GitLab Dedicated Notice: Degraded performance"
    assert user_email(server, ticket["requester_id"]) == "ops-lead@acme.example"
    assert [user_email(server, i) for i in ticket["email_cc_ids"]] == [
        "oncall@acme.example",
        "csm@gitlab.example",
        "ase@gitlab.example",
    ]
    assert ticket["tags"] == [CONTACT_REQUEST_TAG, delivery_tag("INC-12/acme/d1r1")]
    [comment] = server.state.comments[ticket["id"]]
    assert comment["body"] == BODY
    assert comment["public"] is True
    [post] = server.requests_to("POST", r"/tickets\.json$")
    assert post.idempotency_key == "INC-12/acme/d1r1"
    assert post.idempotency_lookup == "miss"

    assert receipt.channel == "zendesk"
    assert receipt.external_id == str(ticket["id"])
    assert receipt.detail["ticket_id"] == ticket["id"]
    assert receipt.detail["comment_id"] == comment["id"]
    assert receipt.text_sha256 == hashlib.sha256(BODY.encode()).hexdigest()
    assert receipt.delivered_at == NOW
    assert (receipt.tenant, receipt.draft_id, receipt.revision) == ("acme", 1, 1)


def test_the_same_key_opens_the_same_ticket_again(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    first = open_ticket(publisher, tenant, incident)
    second = open_ticket(publisher, tenant, incident)

    assert len(server.state.tickets) == 1
    assert second.external_id == first.external_id
    assert (first.detail["already_delivered"], second.detail["already_delivered"]) == (False, True)
    assert [r.idempotency_lookup for r in server.requests_to("POST", r"/tickets\.json$")] == [
        "miss",
        "hit",
    ]


def test_later_updates_are_public_replies_on_the_ticket(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]

    receipt = reply(publisher, tenant, incident, opened)

    assert len(server.state.tickets) == 1
    _, second = server.state.comments[ticket_id]
    assert (second["body"], second["public"]) == (UPDATE, True)
    [put] = server.requests_to("PUT", rf"/tickets/{ticket_id}\.json$")
    assert put.body["ticket"]["comment"] == {"body": UPDATE, "public": True}
    assert put.body["ticket"]["additional_tags"] == [delivery_tag("INC-12/acme/d2r1")]
    assert "tags" not in put.body["ticket"]  # tags would replace the agents' tags
    assert put.idempotency_key is None  # Zendesk honours the key on creation only
    assert receipt.external_id == f"{ticket_id}/{second['id']}"
    assert receipt.detail == {
        "action": "comment",
        "ticket_id": ticket_id,
        "comment_id": second["id"],
        "already_delivered": False,
        "marker": delivery_tag("INC-12/acme/d2r1"),
    }


def test_a_repeated_reply_is_found_and_not_posted_again(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    first = reply(publisher, tenant, incident, opened)

    again = reply(publisher, tenant, incident, first)

    assert [c["body"] for c in server.state.comments[ticket_id]] == [BODY, UPDATE]
    assert len(server.requests_to("PUT", r"/tickets/")) == 1
    assert again.external_id == first.external_id
    assert again.detail["already_delivered"] is True


# -- finding a delivery whose key Zendesk forgot ---------------------------------------------


def find(
    publisher: ZendeskPublisher,
    tenant: Tenant,
    incident: Incident,
    key: str,
    previous: Receipt | None = None,
) -> Receipt | None:
    return publisher.find_delivery(
        incident=incident, tenant=tenant, idempotency_key=key, previous=previous
    )


def test_a_reply_is_found_on_the_ticket_of_previous_without_a_search(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    replied = reply(publisher, tenant, incident, opened)
    found = find(publisher, tenant, incident, "INC-12/acme/d2r1", opened)
    assert found is not None
    assert (found.external_id, found.text_sha256) == (replied.external_id, replied.text_sha256)
    assert found.detail["action"] == "comment"
    assert found.detail["ticket_id"] == opened.detail["ticket_id"]
    assert found.detail["recovered"] is True
    assert server.requests_to("GET", r"/search\.json") == []


def test_a_ticket_opened_under_a_forgotten_key_is_found_by_its_tag(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    server.forget_idempotency_keys()
    found = find(publisher, tenant, incident, "INC-12/acme/d1r1")
    assert found is not None
    assert (found.external_id, found.detail["action"]) == (opened.external_id, "ticket")
    assert found.detail["comment_id"] == opened.detail["comment_id"]
    [search] = server.requests_to("GET", r"/search\.json")
    assert f"tags%3A{delivery_tag('INC-12/acme/d1r1')}" in search.query
    # Without looking first, the same key would now open a second ticket.
    open_ticket(publisher, tenant, incident)
    assert len(server.state.tickets) == 2


def test_a_reply_not_on_the_ticket_of_previous_is_looked_for_everywhere(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    assert find(publisher, tenant, incident, "INC-12/acme/d2r1", opened) is None
    assert len(server.requests_to("GET", r"/search\.json")) == 1
    # A previous ticket that is gone: nothing can have landed on it; the search still runs.
    gone = zendesk_receipt(999)
    assert find(publisher, tenant, incident, "INC-12/acme/d1r1", gone) is not None
    assert len(server.state.comments[opened.detail["ticket_id"]]) == 1


def test_the_publisher_implements_the_port(publisher: ZendeskPublisher) -> None:
    port: Publisher = publisher
    assert port.name == "zendesk"


def test_a_previous_receipt_from_elsewhere_or_without_a_ticket_opens_a_ticket(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    other_channel = zendesk_receipt(ticket_id, channel="switchboard")
    no_ticket = dataclasses.replace(opened, detail={"action": "ticket"})

    first = reply(publisher, tenant, incident, other_channel, key="k-elsewhere")
    second = reply(publisher, tenant, incident, no_ticket, key="k-no-ticket")

    assert (first.detail["action"], second.detail["action"]) == ("ticket", "ticket")
    assert len(server.state.tickets) == 3
    assert len(server.state.comments[ticket_id]) == 1
    assert len(server.requests_to("PUT", r"/tickets/")) == 0


def test_a_ticket_id_stored_as_text_is_replied_on(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    stored = dataclasses.replace(opened, detail={**opened.detail, "ticket_id": str(ticket_id)})

    receipt = reply(publisher, tenant, incident, stored)

    assert receipt.detail["ticket_id"] == ticket_id
    assert [c["body"] for c in server.state.comments[ticket_id]] == [BODY, UPDATE]


def test_a_previous_receipt_with_an_unreadable_ticket_is_refused(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    broken = dataclasses.replace(zendesk_receipt(1), detail={"ticket_id": "twelve"})

    with pytest.raises(PublishError, match="no usable ticket") as caught:
        reply(publisher, tenant, incident, broken)

    assert caught.value.retryable is False
    assert server.state.requests == []


def test_the_same_text_under_a_new_key_is_a_new_reply(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    one = reply(publisher, tenant, incident, opened, key="k-one")
    two = reply(publisher, tenant, incident, one, key="k-two")

    assert [c["body"] for c in server.state.comments[ticket_id]] == [BODY, UPDATE, UPDATE]
    assert one.external_id != two.external_id


@pytest.mark.parametrize("fault", FAULTS)
def test_a_reply_meeting_a_fault_lands_exactly_once(
    fault: str,
    server: ZendeskServer,
    publisher: ZendeskPublisher,
    tenant: Tenant,
    incident: Incident,
    sleeps: list[float],
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    server.inject(fault, method="PUT", delay=0.6)

    receipt = reply(publisher, tenant, incident, opened)

    comments = server.state.comments[ticket_id]
    assert [c["body"] for c in comments] == [BODY, UPDATE]
    assert receipt.external_id == f"{ticket_id}/{comments[1]['id']}"
    puts = server.requests_to("PUT", r"/tickets/")
    applied_on_failure = fault in ("timeout", "commit_then_drop", "commit_then_500")
    # A change applied behind a failure is found by the check, never posted again.
    assert len(puts) == (1 if applied_on_failure else 2)
    assert receipt.detail["already_delivered"] is applied_on_failure
    assert sleeps  # every retry waited first


@pytest.mark.parametrize("fault", FAULTS)
def test_a_ticket_creation_meeting_a_fault_opens_exactly_one_ticket(
    fault: str,
    server: ZendeskServer,
    publisher: ZendeskPublisher,
    tenant: Tenant,
    incident: Incident,
) -> None:
    server.inject(fault, method="POST", delay=0.6)

    receipt = open_ticket(publisher, tenant, incident)

    [ticket] = server.state.tickets.values()
    assert len(server.state.comments[ticket["id"]]) == 1
    assert receipt.external_id == str(ticket["id"])
    posts = server.requests_to("POST", r"/tickets\.json$")
    assert len(posts) == 2
    assert {p.idempotency_key for p in posts} == {"INC-12/acme/d1r1"}
    applied_on_failure = fault in ("timeout", "commit_then_drop", "commit_then_500")
    assert posts[1].idempotency_lookup == ("hit" if applied_on_failure else "miss")
    assert receipt.detail["already_delivered"] is applied_on_failure


def test_a_reply_landed_beyond_the_first_page_of_comments_is_found(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    for n in range(120):  # agents' and customers' comments, straight into the server
        server.handle(
            "PUT",
            f"/api/v2/tickets/{ticket_id}.json",
            {},
            {"ticket": {"comment": {"body": f"note {n}", "public": n % 2 == 0}}},
            None,
        )
    server.inject("commit_then_drop", method="PUT")

    receipt = reply(publisher, tenant, incident, opened)

    comments = server.state.comments[ticket_id]
    assert len(comments) == 122
    assert [c["body"] for c in comments].count(UPDATE) == 1
    assert receipt.detail["comment_id"] == comments[-1]["id"]
    assert len(server.requests_to("GET", r"/comments\.json$")) == 2  # two pages read


def test_a_429_waits_for_retry_after(
    server: ZendeskServer,
    publisher: ZendeskPublisher,
    tenant: Tenant,
    incident: Incident,
    sleeps: list[float],
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    server.inject("429", method="PUT", retry_after=7, times=2)

    reply(publisher, tenant, incident, opened)

    assert sleeps == [7.0, 7.0]
    assert len(server.state.comments[ticket_id]) == 2
    assert publisher.transport.rate_limited == 2


def test_429s_past_the_bound_fail_retryable_and_post_nothing(
    server: ZendeskServer, client: Any, publisher_for: Any, tenant: Tenant, incident: Incident
) -> None:
    publisher = publisher_for(client, max_attempts=2, max_429_retries=1)
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    server.inject("429", method="PUT", retry_after=3, times=100)

    with pytest.raises(PublishError) as caught:
        reply(publisher, tenant, incident, opened)

    assert (caught.value.channel, caught.value.status) == ("zendesk", 429)
    assert caught.value.retryable is True
    assert caught.value.retry_after == 3.0
    assert caught.value.__cause__ is not None
    assert len(server.state.comments[ticket_id]) == 1


def test_a_retry_after_beyond_the_limit_is_not_waited_for(
    server: ZendeskServer,
    client: Any,
    publisher_for: Any,
    tenant: Tenant,
    incident: Incident,
    sleeps: list[float],
) -> None:
    publisher = publisher_for(client, max_attempts=3, max_retry_after=30)
    server.inject("429", method="POST", retry_after=600)

    with pytest.raises(PublishError) as caught:
        open_ticket(publisher, tenant, incident)

    assert caught.value.retry_after == 600.0
    assert caught.value.retryable is True
    assert sleeps == []
    assert len(server.state.requests) == 1
    assert server.state.tickets == {}


def test_a_429_without_a_wait_backs_off_with_jitter(
    server: ZendeskServer,
    client: Any,
    publisher_for: Any,
    tenant: Tenant,
    incident: Incident,
    sleeps: list[float],
) -> None:
    publisher = publisher_for(client, jitter=lambda: 0.5)
    server.inject("429", method="POST", retry_after=0, times=2)

    open_ticket(publisher, tenant, incident)

    # Retry-After: 0 asks for no wait; the shared policy still backs off, 1 s then 2 s,
    # each at the middle of its jitter window [half, full].
    assert sleeps == [0.75, 1.5]
    assert len(server.state.tickets) == 1


def test_the_server_rate_limit_is_met_with_a_retryable_error(
    zenpy_at: Any, publisher_for: Any, tenant: Tenant, incident: Incident
) -> None:
    with ZendeskServer(agent_email=AGENT, token=TOKEN, rate_limit=2) as limited:
        publisher = publisher_for(
            zenpy_at(limited.netloc), max_attempts=1, max_429_retries=0, max_retry_after=1
        )
        opened = open_ticket(publisher, tenant, incident)
        ticket_id = opened.detail["ticket_id"]

        with pytest.raises(PublishError) as caught:
            reply(publisher, tenant, incident, opened)  # GET ok, PUT answered 429

        assert caught.value.status == 429
        assert caught.value.retry_after is not None
        assert caught.value.retry_after > 1
        assert len(limited.state.comments[ticket_id]) == 1


def test_requests_are_paced_under_the_budget(
    server: ZendeskServer, client: Any, publisher_for: Any, tenant: Tenant, incident: Incident
) -> None:
    clock = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    publisher = publisher_for(client, rate_per_minute=120, sleep=sleep, clock=lambda: clock[0])
    opened = open_ticket(publisher, tenant, incident)
    latest = opened
    for n in range(3):
        latest = reply(publisher, tenant, incident, latest, key=f"k{n}", body=f"{UPDATE} ({n})")

    sent = len(server.state.requests)
    assert sent == 1 + 3 * 2  # a create, then a check and a reply per update
    assert waits == [pytest.approx(0.5)] * (sent - 1)
    assert clock[0] - 1000.0 == pytest.approx(0.5 * (sent - 1))


def test_wrong_credentials_are_refused_without_retry_or_leak(
    server: ZendeskServer, zenpy_at: Any, publisher_for: Any, tenant: Tenant, incident: Incident
) -> None:
    publisher = publisher_for(zenpy_at(server.netloc, token="wrong-token-value"))

    with pytest.raises(PublishError) as caught:
        open_ticket(publisher, tenant, incident)

    assert caught.value.status == 401
    assert caught.value.retryable is False
    assert "COMMS_ZENDESK_TOKEN" in str(caught.value)
    assert "wrong-token-value" not in str(caught.value)
    assert server.state.tickets == {}
    assert [r.authenticated for r in server.state.requests] == [False]


def test_a_missing_ticket_is_not_retried(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    with pytest.raises(PublishError) as caught:
        reply(publisher, tenant, incident, zendesk_receipt(999_999))

    assert (caught.value.status, caught.value.retryable) == (404, False)
    assert len(server.state.requests) == 1


def test_a_closed_ticket_refuses_the_reply(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    server.state.tickets[ticket_id]["status"] = "closed"

    with pytest.raises(PublishError) as caught:
        reply(publisher, tenant, incident, opened)

    assert (caught.value.status, caught.value.retryable) == (422, False)
    assert "closed prevents ticket update" in str(caught.value)


def test_a_reused_key_with_other_recipients_is_refused(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    open_ticket(publisher, tenant, incident)
    changed = dataclasses.replace(tenant, contacts=tenant.contacts[:1])

    with pytest.raises(PublishError) as caught:
        open_ticket(publisher, changed, incident)

    assert (caught.value.status, caught.value.retryable) == (400, False)
    assert "IdempotentRequestError" in str(caught.value)
    assert len(server.state.tickets) == 1


def test_nothing_is_posted_while_the_ticket_cannot_be_read(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    server.inject("500", method="GET", times=100)

    with pytest.raises(PublishError) as caught:
        reply(publisher, tenant, incident, opened)

    assert (caught.value.status, caught.value.retryable) == (500, True)
    assert server.requests_to("PUT", r"/tickets/") == []
    assert len(server.state.comments[ticket_id]) == 1


def test_a_failed_check_after_an_uncertain_reply_is_retryable_and_a_resume_posts_once(
    server: ZendeskServer, client: Any, publisher_for: Any, tenant: Tenant, incident: Incident
) -> None:
    publisher = publisher_for(client, max_attempts=2)
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    # The reply lands but the client sees a dropped connection; every later read fails.
    server.inject("commit_then_drop", method="PUT")
    server.inject("500", method="GET", skip=1, times=100)

    with pytest.raises(PublishError) as caught:
        reply(publisher, tenant, incident, opened)
    assert caught.value.retryable is True
    assert "could not check whether it landed" in str(caught.value)
    assert len(server.state.comments[ticket_id]) == 2

    # `comms send` resumes once Zendesk answers again: the reply is found, not posted again.
    server.state.faults.clear()
    receipt = reply(publisher, tenant, incident, opened)
    assert receipt.detail["already_delivered"] is True
    assert [c["body"] for c in server.state.comments[ticket_id]] == [BODY, UPDATE]
    assert len(server.requests_to("PUT", r"/tickets/")) == 1


def test_no_operational_contact_means_no_request(
    server: ZendeskServer, publisher: ZendeskPublisher, incident: Incident
) -> None:
    lonely = Tenant(id="solo", name="Solo", contacts=[Contact(email="csm@x.example", role="csm")])

    with pytest.raises(PublishError, match="no operational contact"):
        open_ticket(publisher, lonely, incident)
    assert server.state.requests == []


def test_an_empty_body_is_refused(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    with pytest.raises(PublishError, match="empty"):
        reply(publisher, tenant, incident, zendesk_receipt(1), body="  \n")
    assert server.state.requests == []


def test_the_token_never_reaches_the_logs(
    server: ZendeskServer,
    publisher: ZendeskPublisher,
    tenant: Tenant,
    incident: Incident,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    opened = open_ticket(publisher, tenant, incident)
    server.inject("500", method="PUT")
    reply(publisher, tenant, incident, opened)

    assert caplog.records  # zenpy and urllib3 did log at DEBUG
    assert TOKEN not in caplog.text
    assert "token:" not in caplog.text.lower()


def test_a_fault_campaign_delivers_every_update_exactly_once(
    server: ZendeskServer, client: Any, publisher_for: Any
) -> None:
    figures = run_campaign(server, publisher_for(client), tenants=3, updates=6, seed=11)

    assert figures["faults_hit"] >= 10
    assert figures["faults_hit"] + figures["faults_left_unused"] == figures["faults_injected"]
    assert figures["resumed_after_error"] >= 1  # some bursts outlasted the attempts
    assert figures["tickets_on_server"] == 3
    assert figures["posts_on_server"] == figures["sends"] == 18
    assert (figures["duplicates"], figures["lost"]) == (0, 0)


def test_concurrent_sends_share_one_publisher_safely(
    server: ZendeskServer, publisher: ZendeskPublisher, incident: Incident
) -> None:
    tenants = [
        Tenant(id=f"t{n}", name=f"T{n}", contacts=[Contact(email=f"ops@t{n}.example")])
        for n in range(8)
    ]

    def first_then_reply(tenant: Tenant) -> tuple[Receipt, Receipt]:
        opened = open_ticket(publisher, tenant, incident, key=f"{tenant.id}/first")
        replied = reply(publisher, tenant, incident, opened, key=f"{tenant.id}/second")
        return opened, replied

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(first_then_reply, tenants))

    assert len(server.state.tickets) == 8
    for tenant, (opened, replied) in zip(tenants, results, strict=True):
        ticket = server.state.tickets[opened.detail["ticket_id"]]
        assert user_email(server, ticket["requester_id"]) == f"ops@{tenant.id}.example"
        assert [c["body"] for c in server.state.comments[ticket["id"]]] == [BODY, UPDATE]
        assert replied.detail["ticket_id"] == ticket["id"]
    # Each creation carried its own thread's key, and no other request carried one.
    for post in server.requests_to("POST", r"/tickets\.json$"):
        requester = post.body["ticket"]["requester"]["email"]
        assert post.idempotency_key == f"{requester.split('@')[1].split('.')[0]}/first"
    assert all(r.idempotency_key is None for r in server.state.requests if r.method != "POST")


def test_a_killed_sender_resumed_with_the_same_key_posts_once(
    server: ZendeskServer, publisher: ZendeskPublisher, tenant: Tenant, incident: Incident
) -> None:
    opened = open_ticket(publisher, tenant, incident)
    ticket_id = opened.detail["ticket_id"]
    # The reply is stored, then the answer hangs: the sender is killed while it waits.
    server.inject("timeout", method="PUT", delay=3.0)
    script = textwrap.dedent(
        f"""
        from datetime import UTC, datetime
        from comms.adapters.zendesk import ZendeskPublisher, connect
        from comms.models import Contact, Incident, MessageKind, Receipt, Severity, Tenant
        from comms.models import validate_json
        now = datetime.now(UTC)
        client = connect(subdomain="gitlab", email={AGENT!r}, token={TOKEN!r}, timeout=30)
        ZendeskPublisher(client, rate_per_minute=0).publish(
            tenant=Tenant(id="acme", name="Acme", contacts=[Contact(email="ops@acme.example")]),
            incident=Incident(ref="INC-12", title="t", severity=Severity.S1, tenants=["acme"],
                              started_at=now, created_at=now, updated_at=now),
            kind=MessageKind.UPDATE, subject="s", body={UPDATE!r},
            idempotency_key="INC-12/acme/d2r1", draft_id=2, revision=1,
            previous=validate_json(Receipt, {json.dumps(opened.to_dict())!r}),
        )
        """
    )
    env = {**os.environ, "ZENPY_FORCE_SCHEME": "http", "ZENPY_FORCE_NETLOC": server.netloc}
    sender = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 20
        while len(server.state.comments[ticket_id]) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(server.state.comments[ticket_id]) == 2
    finally:
        sender.send_signal(signal.SIGKILL)
        sender.wait()
    assert sender.returncode == -signal.SIGKILL

    receipt = reply(publisher, tenant, incident, opened)  # `comms send` resuming

    assert receipt.detail["already_delivered"] is True
    assert [c["body"] for c in server.state.comments[ticket_id]] == [BODY, UPDATE]
    assert len(server.requests_to("PUT", r"/tickets/")) == 1


# -- pure helpers and configuration -------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "retryable"),
    [
        (RatelimitBudgetExceeded("Rate limit budget exceeded!"), 429, True),
        (ZenpyException("Could not handle response: <html>"), None, True),
        (requests.exceptions.ConnectTimeout("connect timed out"), None, True),
        (requests.exceptions.ReadTimeout("read timed out"), None, True),
        (requests.exceptions.ConnectionError("reset by peer"), None, True),
        (APIException('{"error": "RecordInvalid", "description": "bad"}'), None, True),
    ],
)
def test_vendor_errors_without_an_answer_translate_to_publish_errors(
    exc: Exception, status: int | None, retryable: bool
) -> None:
    error = _translate(exc, "reply on Zendesk ticket 1")
    assert (error.channel, error.status, error.retryable) == ("zendesk", status, retryable)
    assert "reply on Zendesk ticket 1" in str(error)
    assert "\n" not in str(error)


def test_recipients_put_the_first_operational_email_first_and_dedupe(tenant: Tenant) -> None:
    requester, ccs = recipients(tenant)
    assert requester.email == "ops-lead@acme.example"
    assert [c.email for c in ccs] == [
        "oncall@acme.example",
        "csm@gitlab.example",
        "ase@gitlab.example",
    ]


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Degraded performance", "GitLab Dedicated Notice: Degraded performance"),
        ("GitLab Dedicated Notice: Outage", "GitLab Dedicated Notice: Outage"),
        ("  Two   spaces ", "GitLab Dedicated Notice: Two spaces"),
        ("", "GitLab Dedicated Notice: Gitaly node file-03 disk full"),
    ],
)
def test_ticket_subject(subject: str, expected: str, incident: Incident) -> None:
    assert ticket_subject(incident, subject) == expected


def test_delivery_tags_are_stable_lowercase_and_distinct() -> None:
    tag = delivery_tag("INC-12/acme/d2r1")
    assert tag == delivery_tag("INC-12/acme/d2r1")
    assert tag != delivery_tag("INC-12/acme/d2r2")
    assert tag.startswith("comms_")
    assert tag == tag.lower()
    assert len(tag) == 22


def test_config_needs_a_token_and_names_bad_fields() -> None:
    with pytest.raises(ConfigError, match="COMMS_ZENDESK_TOKEN"):
        from_settings({"subdomain": "gitlab", "email": AGENT}, {})
    with pytest.raises(ConfigError, match=r"zendesk\.subdomain") as caught:
        from_settings({"subdomain": "Not A Host", "email": AGENT, "token": "abc-secret"}, {})
    assert "abc-secret" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"zendesk\.colour"):
        from_settings({"subdomain": "gitlab", "email": AGENT, "colour": 1}, {})


def test_config_builds_a_working_publisher(
    server: ZendeskServer, monkeypatch: pytest.MonkeyPatch, tenant: Tenant, incident: Incident
) -> None:
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", server.netloc)
    publisher = from_settings(
        {"subdomain": "gitlab", "email": AGENT, "rate_per_minute": 6000, "max_attempts": 2},
        {"COMMS_ZENDESK_TOKEN": TOKEN},
    )
    try:
        assert publisher.policy.max_attempts == 2
        receipt = open_ticket(publisher, tenant, incident)
    finally:
        publisher.close()
    assert receipt.external_id in {str(i) for i in server.state.tickets}
