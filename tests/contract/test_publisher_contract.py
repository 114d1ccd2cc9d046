"""The publisher contract: every channel keeps the promises of ``comms.ports.Publisher``.

Each test runs once per channel in ``channels.CHANNELS``, the real ones over HTTP against
their local servers; what was delivered is counted on the server's side.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from comms import bootstrap
from comms.delivery import body_sha256
from comms.errors import PublishError
from comms.models import Contact, Incident, MessageKind, Receipt, Severity, Tenant
from tests.contract.channels import CHANNELS, Channel
from tests.contract.support import NOW

TENANT = Tenant(
    id="acme",
    name="Acme Corp",
    contacts=[
        Contact(email="ops@acme.example", name="Ops Lead"),
        Contact(email="csm@gitlab.example", name="Casey", role="csm"),
    ],
)
INCIDENT = Incident(
    ref="INC-12",
    title="Sign-in failures",
    severity=Severity.S1,
    tenants=["acme"],
    started_at=NOW,
    created_at=NOW,
    updated_at=NOW,
)
FIRST = "We are investigating failed sign-ins to your GitLab Dedicated instance.\n"
SECOND = "Sign-in works again for most users; we are watching it closely.\n"


@pytest.fixture(params=sorted(CHANNELS))
def channel(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Channel]:
    """Each channel, its far side running."""
    with CHANNELS[request.param](tmp_path, monkeypatch) as opened:
        yield opened


def publish(
    publisher: Any,
    body: str = FIRST,
    *,
    key: str = "comms-3-1-aaaa",
    kind: MessageKind = MessageKind.INVESTIGATION_START,
    previous: Receipt | None = None,
) -> Receipt:
    """Publish with the port's exact keyword signature."""
    receipt: Receipt = publisher.publish(
        tenant=TENANT,
        incident=INCIDENT,
        kind=kind,
        subject="Investigating: sign-in failures",
        body=body,
        idempotency_key=key,
        draft_id=3,
        revision=1 if previous is None else 2,
        previous=previous,
    )
    return receipt


def test_a_message_is_delivered_once_with_a_receipt_of_its_text(channel: Channel) -> None:
    receipt = publish(channel.publisher)
    assert (receipt.channel, receipt.tenant, receipt.idempotency_key) == (
        channel.publisher.name,
        "acme",
        "comms-3-1-aaaa",
    )
    assert receipt.channel == channel.name
    assert (receipt.draft_id, receipt.revision) == (3, 1)
    assert receipt.text_sha256 == body_sha256(FIRST)
    assert receipt.external_id
    assert receipt.delivered_at.tzinfo is not None
    assert channel.delivered() == 1
    assert channel.threads() == [[FIRST]]


def test_the_same_key_twice_posts_once(channel: Channel) -> None:
    first = publish(channel.publisher)
    again = publish(channel.publisher)
    assert channel.delivered() == 1
    assert again.external_id == first.external_id
    assert again.text_sha256 == first.text_sha256
    assert channel.threads() == [[FIRST]]


def test_a_later_update_follows_the_first(channel: Channel) -> None:
    first = publish(channel.publisher)
    second = publish(
        channel.publisher, SECOND, key="comms-4-1-bbbb", kind=MessageKind.UPDATE, previous=first
    )
    assert second.external_id != first.external_id
    assert (second.idempotency_key, second.revision) == ("comms-4-1-bbbb", 2)
    assert second.text_sha256 == body_sha256(SECOND)
    assert channel.delivered() == 2
    threads = channel.threads()
    assert [body for thread in threads for body in thread] == [FIRST, SECOND]
    assert len(threads) == (1 if channel.replies_in_thread else 2)


def test_a_server_error_is_a_retryable_publish_error(channel: Channel) -> None:
    channel.break_server()
    with pytest.raises(PublishError) as caught:
        publish(channel.publisher)
    error = caught.value
    assert (error.channel, error.status, error.retryable) == (channel.name, 500, True)
    assert channel.delivered() == 0


def test_refused_credentials_are_a_final_publish_error(channel: Channel) -> None:
    with pytest.raises(PublishError) as caught:
        publish(channel.refusing())
    error = caught.value
    assert (error.channel, error.status, error.retryable) == (channel.name, 401, False)
    assert "not-the-token" not in str(error)
    assert channel.delivered() == 0


def test_a_publisher_can_be_closed_twice(channel: Channel) -> None:
    channel.publisher.close()
    channel.publisher.close()


@pytest.mark.parametrize("name", sorted(bootstrap.PUBLISHERS))
def test_each_registered_channel_builds_from_its_settings_and_delivers(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert name in CHANNELS, f"channel '{name}' has no far side in tests/contract/channels.py"
    module, _, factory = bootstrap.PUBLISHERS[name].partition(":")
    with CHANNELS[name](tmp_path, monkeypatch) as channel:
        assert channel.settings is not None
        table, environ = channel.settings
        publisher = getattr(importlib.import_module(module), factory)(table, environ)
        try:
            assert publisher.name == name
            assert publish(publisher).channel == name
        finally:
            publisher.close()
        assert channel.delivered() == 1


def find(publisher: Any, *, key: str = "comms-3-1-aaaa", previous: Receipt | None = None) -> Any:
    """``find_delivery`` with the port's exact keyword signature."""
    return publisher.find_delivery(
        tenant=TENANT, incident=INCIDENT, idempotency_key=key, previous=previous
    )


def test_a_delivery_is_found_by_its_key_after_the_far_side_forgot_the_key(
    channel: Channel,
) -> None:
    assert find(channel.publisher) is None  # nothing was sent under it
    first = publish(channel.publisher)
    channel.forget_keys()
    found = find(channel.publisher)
    assert found is not None
    assert (found.channel, found.tenant, found.idempotency_key) == (
        channel.name,
        "acme",
        "comms-3-1-aaaa",
    )
    assert (found.external_id, found.text_sha256) == (first.external_id, first.text_sha256)
    assert found.delivered_at.tzinfo is not None
    assert find(channel.publisher, key="comms-9-1-ffff") is None
    # A later update, on the conversation of the first where the channel has one.
    second = publish(
        channel.publisher, SECOND, key="comms-4-1-bbbb", kind=MessageKind.UPDATE, previous=first
    )
    channel.forget_keys()
    again = find(channel.publisher, key="comms-4-1-bbbb", previous=first)
    assert again is not None
    assert (again.external_id, again.text_sha256) == (second.external_id, second.text_sha256)
    assert find(channel.publisher, key="comms-9-1-ffff", previous=first) is None
    assert channel.delivered() == 2  # looking posts nothing


def test_looking_with_refused_credentials_is_a_final_publish_error(channel: Channel) -> None:
    with pytest.raises(PublishError) as caught:
        find(channel.refusing())
    assert (caught.value.channel, caught.value.status, caught.value.retryable) == (
        channel.name,
        401,
        False,
    )
