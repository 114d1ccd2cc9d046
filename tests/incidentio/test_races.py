"""incident.io work done twice at the same moment, from two handles on one store (two
connections, as two processes or machines would have), on every backend, many rounds:

- two people importing one incident open it once, and the later one syncs it;
- two copies of one signed webhook delivery apply it once;
- two ``comms send`` runs finishing one draft post its Slack note once.

Each round starts both calls together (a barrier); what the core decides must hold however
the two interleave.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from comms.bootstrap import open_store, webhook_memory
from comms.errors import CommsError
from comms.incidentio.mapping import Rules
from comms.incidentio.slack import NoteResult, note_sent
from comms.incidentio.sync import import_incident
from comms.incidentio.webhooks import handle_webhook
from comms.ports import Store
from tests.contract.backends import BACKENDS
from tests.incidentio.conftest import SECRET, TENANTS
from tests.incidentio.drafting import sent_update
from tests.incidentio.fake_incidentio import FakeIncidentio, Signer
from tests.incidentio.fake_slack import FakeSlack

ROUNDS = 20
NOTE_ROUNDS = 5  # each waits for the slow Slack fake
BOT = "xoxb-test-bot-token"


@pytest.fixture(params=sorted(BACKENDS))
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each backend (one that needs a server only where it is set),
    holding the test tenants."""
    env = BACKENDS[request.param].env
    if env is not None and not os.environ.get(env):
        pytest.skip(f"{env} is not set")
    with BACKENDS[request.param].fresh(tmp_path) as made:
        store = open_store(made)
        for tenant in TENANTS:
            store.put_tenant(tenant)
        store.close()
        yield made


@pytest.fixture
def handles(url: str) -> Iterator[tuple[Store, Store]]:
    """Two handles on the database (closed after the test)."""
    with ExitStack() as stack:
        first, second = open_store(url), open_store(url)
        stack.callback(first.close)
        stack.callback(second.close)
        yield first, second


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads released together; each one's result or its
    ``CommsError``."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(n: int) -> None:
        start.wait(10)
        try:
            results[n] = calls[n]()
        except CommsError as exc:
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_two_imports_of_one_incident_open_it_once_and_the_later_syncs(
    fake: FakeIncidentio, client_for: Any, handles: tuple[Store, Store], now: datetime
) -> None:
    clients = [client_for(fake.url), client_for(fake.url)]
    for n in range(ROUNDS):
        declared = fake.declare(f"Sign-in failures {n}", severity="Critical", tenants=["acme"])
        ref = declared["reference"]
        results = at_once(
            [
                partial(import_incident, store, client, ref, rules=Rules(), now=now, actor=who)
                for store, client, who in zip(handles, clients, ("ana", "bob"), strict=True)
            ]
        )
        assert sorted(getattr(r, "action", repr(r)) for r in results) == [
            "imported",
            "unchanged",
        ], (n, results)
        types = [e.type for e in handles[0].events(ref)]
        assert (types.count("incident.opened"), types.count("incident.linked")) == (1, 1)


def test_two_copies_of_one_delivery_at_once_apply_it_once(
    fake: FakeIncidentio, signer: Signer, handles: tuple[Store, Store], now: datetime
) -> None:
    """The sender retrying a delivery while the first attempt is still being handled (or two
    ``comms serve`` behind a load balancer each given a copy): one applies, one is a replay."""
    for n in range(ROUNDS):
        fake.declare(f"Sign-in failures {n}", severity="Critical", tenants=["acme"])
        _, body = fake.outbox[-1]
        headers = signer.headers(body, at=now)
        results = at_once(
            [
                partial(
                    handle_webhook,
                    headers,
                    body,
                    secret=SECRET,
                    store=store,
                    now=now,
                    seen=webhook_memory(store),
                )
                for store in handles
            ]
        )
        assert sorted(r.status for r in results) == [200, 204], (n, results)
        replay = next(r for r in results if r.status == 204)
        assert replay.reason == f"replay of delivery {headers['webhook-id']}: already handled"


def test_two_sends_finishing_one_draft_at_once_post_its_note_once(
    fake: FakeIncidentio, client: Any, handles: tuple[Store, Store], now: datetime
) -> None:
    """Both see the draft sent and no ``slack.noted`` yet; Slack answers slowly, so both
    would post if the note were not claimed first."""
    from comms.adapters.slack_web import from_settings

    with FakeSlack(token=BOT) as slack:
        slack.delay = 0.2
        poster = partial(from_settings, {"base_url": slack.url}, {"COMMS_SLACK_BOT_TOKEN": BOT})
        for n in range(NOTE_ROUNDS):
            declared = fake.declare(f"Sign-in failures {n}", severity="Critical", tenants=["acme"])
            slack.channels.add(declared["slack_channel_id"])
            import_incident(
                handles[0], client, declared["reference"], rules=Rules(), now=now, actor="jane"
            )
            draft = sent_update(handles[0], declared["reference"], now)
            before = len(slack.posts)

            results = at_once(
                [
                    partial(note_sent, store, [draft], poster=poster, actor=who, now=now)
                    for store, who in zip(handles, ("ana", "bob"), strict=True)
                ]
            )

            assert len(slack.posts) == before + 1, (n, results)
            notes: list[NoteResult] = [r for (r,) in results]
            assert sorted(r.posted for r in notes) == [False, True], (n, notes)
            assert not any(r.failed for r in notes)
            types = [e.type for e in handles[1].events(declared["reference"])]
            assert types.count("slack.noted") == 1


def test_a_note_slack_did_not_answer_in_time_is_not_posted_again(
    fake: FakeIncidentio, client: Any, handles: tuple[Store, Store], now: datetime
) -> None:
    """Slack may have posted a note it did not answer in time: the claim stays, so the
    next send does not post it a second time; a note Slack refused outright is retried."""
    from comms.adapters.slack_web import from_settings

    with FakeSlack(token=BOT) as slack:
        slow = {"base_url": slack.url, "timeout_seconds": 1}
        poster = partial(from_settings, slow, {"COMMS_SLACK_BOT_TOKEN": BOT})
        declared = fake.declare("Sign-in failures", severity="Critical", tenants=["acme"])
        slack.channels.add(declared["slack_channel_id"])
        import_incident(
            handles[0], client, declared["reference"], rules=Rules(), now=now, actor="jane"
        )
        draft = sent_update(handles[0], declared["reference"], now)

        slack.delay = 1.5
        (first,) = note_sent(handles[0], [draft], poster=poster, actor="ana", now=now)
        slack.delay = 0.0
        (second,) = note_sent(handles[1], [draft], poster=poster, actor="bob", now=now)

        assert first.failed, first
        assert "may have been posted" in first.reason
        assert not second.posted, second
        assert "taken its Slack note" in second.reason
        deadline = time.monotonic() + 5
        while not slack.posts and time.monotonic() < deadline:
            time.sleep(0.05)  # the slow answer's post lands after the client gave up
        time.sleep(0.2)
        assert len(slack.posts) == 1
