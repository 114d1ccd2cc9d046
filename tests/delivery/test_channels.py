"""Both channels with one text (Switchboard stub + the Zendesk-compatible test server), and
fan-out of one update to many tenants."""

from __future__ import annotations

import hashlib
import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from delivery_support import (
    Stub,
    as_reviewer,
    comms_process,
    draft_state,
    ok,
    prepare,
    send_json,
    store_rows,
    wait_for,
    write_config,
    write_seed,
)

from tests.zendesk.server import ZendeskServer

AGENT = "comms-bot@example.com"
ZENDESK_TOKEN = "zendesk-delivery-token"


@pytest.fixture
def zendesk(tmp_path: Path, stub: Stub, monkeypatch: pytest.MonkeyPatch) -> Iterator[ZendeskServer]:
    """The Zendesk test server, with comms configured for it and for the stub."""
    with ZendeskServer(agent_email=AGENT, token=ZENDESK_TOKEN) as server:
        monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
        monkeypatch.setenv("ZENPY_FORCE_NETLOC", server.netloc)
        monkeypatch.setenv("COMMS_ZENDESK_TOKEN", ZENDESK_TOKEN)
        write_config(
            tmp_path / "comms.toml",
            switchboard={"timeout_seconds": 0.4},
            zendesk={
                "subdomain": "gitlab",
                "email": AGENT,
                "timeout": 0.5,
                "rate_per_minute": 6000,
            },
        )
        yield server


def _body(draft: int) -> tuple[str, str]:
    data = json.loads(ok(["drafts", "show", str(draft), "--format", "json"]).stdout)
    return data["subject"], data["body"]


def test_one_text_through_both_channels(stub: Stub, zendesk: ZendeskServer, store_db: Path) -> None:
    draft = prepare(["acme"])
    both = ["--via", "switchboard", "--via", "zendesk"]
    ok(["review", "approve", str(draft), *both], env=as_reviewer())
    result = send_json([str(draft), *both])
    subject, body = _body(draft)

    receipts = {r["channel"]: r for r in result["deliveries"]}
    assert set(receipts) == {"switchboard", "zendesk"}
    assert {r["status"] for r in receipts.values()} == {"delivered"}
    hashes = {r["text_sha256"] for r in receipts.values()}
    assert len(hashes) == 1
    # The approved text, byte for byte, on both sides.
    assert stub.messages("acme") == [body]
    (ticket,) = zendesk.state.tickets.values()
    assert ticket["subject"] == f"GitLab Dedicated Notice: {subject}"
    assert "dedicated_contacted_request" in ticket["tags"]
    assert [c["body"] for c in zendesk.state.public_comments(ticket["id"])] == [body]
    assert receipts["zendesk"]["external_id"] == str(ticket["id"])
    assert draft_state(store_db, draft) == "sent"
    sent = [
        json.loads(r[0])
        for r in store_rows(store_db, "SELECT data FROM events WHERE type = 'update.sent'")
    ]
    assert sent[0]["channels"] == ["switchboard", "zendesk"]
    assert len(sent[0]["text_sha256"]) == 1

    # The next update to the same tenant is a public reply on the same ticket.
    out = ok(
        [
            "draft",
            "update",
            "--incident",
            "INC-1",
            "--set",
            "impact=Merge requests load slowly",
            "--set",
            "actions=We added capacity",
            "--format",
            "json",
        ]
    ).stdout
    second = json.loads(out)["id"]
    ok(["review", "approve", str(second), "--via", "zendesk"], env=as_reviewer())
    reply = send_json([str(second), "--via", "zendesk"])
    _, second_body = _body(second)
    assert len(zendesk.state.tickets) == 1
    comments = zendesk.state.public_comments(ticket["id"])
    assert [c["body"] for c in comments] == [body, second_body]
    (receipt,) = reply["deliveries"]
    assert receipt["external_id"] == f"{ticket['id']}/{comments[1]['id']}"
    assert receipt["text_sha256"] != receipts["zendesk"]["text_sha256"]


def test_zendesk_reply_that_landed_before_the_connection_dropped_is_not_posted_again(
    stub: Stub,
    zendesk: ZendeskServer,
) -> None:
    first = prepare(["acme"], severity="S3")
    ok(["send", str(first), "--via", "zendesk"])
    (ticket_id,) = zendesk.state.tickets
    out = ok(
        [
            "draft",
            "update",
            "--incident",
            "INC-1",
            "--set",
            "impact=Slow pages",
            "--set",
            "actions=We added capacity",
            "--format",
            "json",
        ]
    ).stdout
    second = json.loads(out)["id"]
    zendesk.inject("commit_then_drop", method="PUT")
    result = send_json([str(second), "--via", "zendesk"])
    assert [r["status"] for r in result["deliveries"]] == ["delivered"]
    assert len(zendesk.state.public_comments(ticket_id)) == 2
    assert len(zendesk.requests_to("PUT", r"/tickets/\d+\.json")) == 1


def test_zendesk_ticket_creation_that_timed_out_is_not_opened_twice(
    stub: Stub, zendesk: ZendeskServer
) -> None:
    draft = prepare(["acme"], severity="S3")
    zendesk.inject("timeout", method="POST", delay=1.0)
    result = send_json([str(draft), "--via", "zendesk"])
    assert [r["status"] for r in result["deliveries"]] == ["delivered"]
    assert len(zendesk.state.tickets) == 1
    posts = zendesk.requests_to("POST", r"/tickets\.json")
    assert len(posts) == 2
    assert posts[0].idempotency_key == posts[1].idempotency_key


def test_zendesk_ticket_opened_by_a_killed_sender_is_found_after_its_key_expired(
    stub: Stub, zendesk: ZendeskServer, tmp_path: Path, store_db: Path
) -> None:
    write_config(
        tmp_path / "comms.toml",
        zendesk={"subdomain": "gitlab", "email": AGENT, "timeout": 10, "rate_per_minute": 6000},
    )
    draft = prepare(["acme", "globex"], severity="S3")
    # The tickets are opened, then the answers hang until the sender is killed.
    zendesk.inject("timeout", method="POST", delay=5.0, times=2)
    sender = comms_process(["send", str(draft), "--via", "zendesk"], cwd=tmp_path)
    try:
        wait_for(lambda: len(zendesk.state.tickets) == 2, what="both tickets to be opened")
        sender.send_signal(signal.SIGKILL)
    finally:
        sender.communicate(timeout=10)
    zendesk.forget_idempotency_keys()

    result = send_json(["--resume"])
    assert {r["status"] for r in result["deliveries"]} == {"delivered"}
    assert len(zendesk.state.tickets) == 2  # found by their tag, not opened again
    ids = {r["tenant"]: r["external_id"] for r in result["deliveries"]}
    by_requester = {
        zendesk.state.users[t["requester_id"]]["email"]: str(t["id"])
        for t in zendesk.state.tickets.values()
    }
    assert sorted(ids.values()) == sorted(by_requester.values())
    assert draft_state(store_db, draft) == "sent"
    searches = zendesk.requests_to("GET", r"/search\.json")
    assert len(searches) == 2
    assert all("tags%3Acomms_" in s.query for s in searches)


# -- fan-out ------------------------------------------------------------------------------


@pytest.fixture
def many(start_stub: Callable[..., Stub], config: Path, tmp_path: Path) -> tuple[Stub, list[str]]:
    """A stub seeded with 24 tenants."""
    stub = start_stub(seed=write_seed(tmp_path / "seed.json", 24))
    return stub, [f"zq{i:03d}" for i in range(1, 25)]


def test_fan_out_serves_every_tenant_once_with_a_receipt_each(
    many: tuple[Stub, list[str]], store_db: Path
) -> None:
    stub, tenants = many
    draft = prepare(tenants)
    ok(["review", "approve", str(draft)], env=as_reviewer())
    stub.faults(rates={"500": 0.1, "after_commit": 0.1}, match="POST *", retry_after=0, seed=3)
    result = send_json([str(draft), "--concurrency", "8"])
    assert result["sent"] is True
    rows = result["deliveries"]
    assert [r["tenant"] for r in rows] == tenants
    assert {r["status"] for r in rows} == {"delivered"}
    assert len({r["external_id"] for r in rows}) == 24
    _, body = _body(draft)
    assert {r["text_sha256"] for r in rows} == {hashlib.sha256(body.encode()).hexdigest()}
    assert stub.per_tenant() == dict.fromkeys(tenants, 1)
    assert stub.sends()["duplicates"] == 0
    assert sum(stub.stats()["faults"].values()) > 0
    assert draft_state(store_db, draft) == "sent"
    # Sending again serves nobody twice.
    again = send_json([str(draft)])
    assert {r["status"] for r in again["deliveries"]} == {"already-delivered"}
    assert stub.per_tenant() == dict.fromkeys(tenants, 1)


def test_fan_out_respects_the_client_pacing(many: tuple[Stub, list[str]], tmp_path: Path) -> None:
    stub, tenants = many
    # 20 requests a second at the server (a burst of 4 absorbs scheduling jitter), the client
    # paced at 18: no 429 at all.
    write_config(
        tmp_path / "comms.toml", switchboard={"timeout_seconds": 2, "rate_limit_per_minute": 1080}
    )
    stub.http.post("/_admin/rate-limit", json={"per_minute": 1200, "burst": 4}).raise_for_status()
    draft = prepare(tenants[:10], severity="S3")
    stub.http.delete("/_admin/stats").raise_for_status()
    result = send_json([str(draft), "--concurrency", "8"])
    assert {r["status"] for r in result["deliveries"]} == {"delivered"}
    stats = stub.stats()
    assert stats["rate_limited"] == 0
    assert stats["requests"] == 20
