"""The delivery channels the publisher contract runs on, each against its far side.

A channel is a publisher plus what the test needs to ask the far side: how many messages
customers received (counted by the server, not the client), the conversations as the
customer reads them, and ways to make the server fail.  Switchboard runs against the stub
(``comms switchboard serve``), Zendesk against the Zendesk-compatible test server, both on
127.0.0.1 over real HTTP; ``FakePublisher`` is its own far side.  A new channel is one more
entry in ``CHANNELS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from comms.ports import Publisher
from tests.contract.fakes import FakePublisher
from tests.contract.support import NOW

TOKEN = "contract-token-5e1d"
AGENT = "comms-bot@example.com"


def no_wait(seconds: float) -> None:
    """Retries back off without sleeping."""


@dataclass
class Channel:
    """One channel under test and the view of its far side."""

    name: str
    publisher: Any  # a Publisher that also has close()
    delivered: Callable[[], int]  # messages customers received, counted by the far side
    threads: Callable[[], list[list[str]]]  # each conversation's messages, in order
    break_server: Callable[[], None]  # the far side answers 500 to what comes next
    refusing: Callable[[], Publisher]  # a publisher whose credentials the far side refuses
    replies_in_thread: bool  # a later update joins the conversation of ``previous``
    forget_keys: Callable[[], None]  # the far side forgets its idempotency keys, as it will
    # (table, environ) for the factory registered in comms.bootstrap.PUBLISHERS, if any
    settings: tuple[dict[str, Any], dict[str, str]] | None = field(default=None)


Opener = Callable[[Path, pytest.MonkeyPatch], AbstractContextManager[Channel]]


@contextmanager
def fake_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Channel]:
    """FakePublisher: it records what it sent."""
    fake = FakePublisher(now=lambda: NOW)

    def threads() -> list[list[str]]:
        conversations: dict[str, list[str]] = {}
        for sent in fake.sent:
            conversations.setdefault(sent.thread, []).append(sent.body)
        return list(conversations.values())

    def refusing() -> Publisher:
        other = FakePublisher(now=lambda: NOW)
        other.refuse(401)
        return other

    yield Channel(
        name="fake",
        publisher=fake,
        delivered=lambda: len(fake.sent),
        threads=threads,
        break_server=lambda: fake.fail_next(500, times=20),
        refusing=refusing,
        replies_in_thread=True,
        forget_keys=fake.forget_keys,
    )


@contextmanager
def switchboard_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Channel]:
    """SwitchboardPublisher against the stub, with its bundled tenants (acme among them)."""
    from comms.adapters.rest import SwitchboardPublisher, make_client
    from comms.adapters.stub_server import serve_in_thread

    with ExitStack() as stack:
        url = stack.enter_context(serve_in_thread(tmp_path / "switchboard.db", token=TOKEN))
        admin = stack.enter_context(
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        )

        def publisher(token: str) -> SwitchboardPublisher:
            built = SwitchboardPublisher(make_client(url, token), owns_client=True, sleep=no_wait)
            stack.callback(built.close)
            return built

        def threads() -> list[list[str]]:
            notes = admin.get("/api/v1/notifications", params={"limit": 100}).json()["data"]
            return [[n["message"]] for n in notes if n["status"] == "sent"]

        def break_server() -> None:
            rule = {"kind": "500", "match": "POST *", "times": 20}
            admin.post("/_admin/faults", json={"queue": [rule]}).raise_for_status()

        yield Channel(
            name="switchboard",
            publisher=publisher(TOKEN),
            delivered=lambda: int(admin.get("/_admin/sends").json()["total"]),
            threads=threads,
            break_server=break_server,
            refusing=lambda: publisher("not-the-token"),
            replies_in_thread=False,
            forget_keys=lambda: admin.post("/_admin/idempotency/expire").raise_for_status(),
            settings=({"base_url": url}, {"COMMS_SWITCHBOARD_TOKEN": TOKEN}),
        )


@contextmanager
def zendesk_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Channel]:
    """ZendeskPublisher (zenpy) against the Zendesk-compatible test server."""
    from comms.adapters.zendesk import ZendeskPublisher, connect
    from tests.zendesk.server import ZendeskServer

    with ZendeskServer(agent_email=AGENT, token=TOKEN) as server, ExitStack() as stack:
        monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
        monkeypatch.setenv("ZENPY_FORCE_NETLOC", server.netloc)
        state = server.state

        def publisher(token: str) -> ZendeskPublisher:
            client = connect(subdomain="gitlab", email=AGENT, token=token, timeout=5.0)
            built = ZendeskPublisher(client, rate_per_minute=0, sleep=no_wait, now=lambda: NOW)
            stack.callback(built.close)
            return built

        def threads() -> list[list[str]]:
            with state.lock:
                return [[c["body"] for c in state.public_comments(t)] for t in state.tickets]

        yield Channel(
            name="zendesk",
            publisher=publisher(TOKEN),
            delivered=lambda: sum(len(thread) for thread in threads()),
            threads=threads,
            break_server=lambda: server.inject("500", times=20),
            refusing=lambda: publisher("not-the-token"),
            replies_in_thread=True,
            forget_keys=server.forget_idempotency_keys,
            settings=({"subdomain": "gitlab", "email": AGENT}, {"COMMS_ZENDESK_TOKEN": TOKEN}),
        )


CHANNELS: dict[str, Opener] = {
    "fake": fake_channel,
    "switchboard": switchboard_channel,
    "zendesk": zendesk_channel,
}
