"""Fixtures for the Zendesk adapter: the test server, zenpy pointed at it, tenants, vcr."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from comms.models import Contact, Incident, Receipt, Severity, Tenant
from tests.zendesk.server import ZendeskServer

AGENT = "comms-bot@example.com"
TOKEN = "s3cr3t-zendesk-token"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# Replays never reach a socket; this netloc is fixed so cassettes do not depend on a port.
CASSETTE_NETLOC = "127.0.0.1:1"
CASSETTE_DIR = Path(__file__).resolve().parents[1] / "cassettes" / "zendesk"
_LIVE_NETLOC = re.compile(rb"127\.0\.0\.1:\d+")


@pytest.fixture
def server() -> Iterator[ZendeskServer]:
    with ZendeskServer(agent_email=AGENT, token=TOKEN) as zendesk:
        yield zendesk


@pytest.fixture
def zenpy_at(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``zenpy_at(netloc, token=...)``: a zenpy client for that netloc, closed after the test."""
    from comms.adapters.zendesk import connect

    clients: list[Any] = []

    def make(netloc: str, *, token: str = TOKEN, timeout: float = 2.0) -> Any:
        monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
        monkeypatch.setenv("ZENPY_FORCE_NETLOC", netloc)
        client = connect(subdomain="gitlab", email=AGENT, token=token, timeout=timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.tickets.session.close()


@pytest.fixture
def sleeps() -> list[float]:
    """Every sleep the publisher asked for; nothing actually waits."""
    return []


@pytest.fixture
def publisher_for(sleeps: list[float]) -> Any:
    """``publisher_for(client, **options)``: a publisher that records sleeps instead of sleeping
    and backs off by known amounts."""
    from comms.adapters.zendesk import ZendeskPublisher

    def make(client: Any, **options: Any) -> ZendeskPublisher:
        options.setdefault("sleep", sleeps.append)
        # The top of the jitter window: every back-off is its full exponential value.
        options.setdefault("jitter", lambda: 1.0)
        options.setdefault("rate_per_minute", 0)  # pacing has its own test
        options.setdefault("now", lambda: NOW)
        return ZendeskPublisher(client, **options)

    return make


@pytest.fixture
def tenant() -> Tenant:
    return Tenant(
        id="acme",
        name="Acme Corp",
        contacts=[
            Contact(email="ops-lead@acme.example", name="Ops Lead", role="operational"),
            Contact(email="csm@gitlab.example", name="Casey CSM", role="csm"),
            Contact(email="oncall@acme.example", name="On Call", role="operational"),
            Contact(email="OPS-LEAD@acme.example", name="Duplicate", role="operational"),
            Contact(email="ase@gitlab.example", name="Alex ASE", role="ase"),
            Contact(email="billing@acme.example", name="Billing", role="billing"),
        ],
    )


@pytest.fixture
def incident() -> Incident:
    return Incident(
        ref="INC-12",
        title="Gitaly node file-03 disk full",
        severity=Severity.S1,
        tenants=["acme"],
        started_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )


def zendesk_receipt(ticket_id: int, *, channel: str = "zendesk") -> Receipt:
    """A receipt naming ``ticket_id``, as an earlier delivery would have stored it."""
    return Receipt(
        channel=channel,
        tenant="acme",
        draft_id=1,
        revision=1,
        idempotency_key="INC-12/acme/d1r1",
        external_id=str(ticket_id),
        delivered_at=NOW,
        text_sha256="0" * 64,
        detail={"action": "ticket", "ticket_id": ticket_id},
    )


def _scrub_request(request: Any) -> Any:
    """Cassettes keep no credentials and no live port."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(request.uri)
    request.uri = urlunsplit(parts._replace(netloc=CASSETTE_NETLOC))
    if request.body and TOKEN.encode() in request.body:
        request.body = request.body.replace(TOKEN.encode(), b"<TOKEN>")
    return request


def _same_idempotency_key(recorded: Any, replayed: Any) -> bool:
    return bool(recorded.headers.get("Idempotency-Key") == replayed.headers.get("Idempotency-Key"))


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """Replays also check the ``Idempotency-Key`` header each request carried."""
    vcr.register_matcher("idempotency_key", _same_idempotency_key)


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Links in recorded answers point at the fixed netloc too."""
    body = response.get("body", {}).get("string")
    if isinstance(body, bytes):
        response["body"]["string"] = _LIVE_NETLOC.sub(CASSETTE_NETLOC.encode(), body)
    return response


@pytest.fixture
def vcr_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Replay only (record mode ``none``) unless ``--record-mode`` says otherwise."""
    return {
        "record_mode": request.config.getoption("--record-mode") or "none",
        "filter_headers": ["authorization", "cookie", "set-cookie"],
        "filter_query_parameters": ["token", "access_token"],
        "before_record_request": _scrub_request,
        "before_record_response": _scrub_response,
        "match_on": ["method", "path", "query", "body", "idempotency_key"],
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTE_DIR)
