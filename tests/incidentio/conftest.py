"""Fixtures for incident.io in the loop: the fake API, a real SQLite store, tenants, vcr."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from comms.models import Tenant
from tests.incidentio.fake_incidentio import FakeIncidentio, Signer
from tests.incidentio.memory import MemoryWebhookMemory

TOKEN = "inc_test_key_5f2c9a"
# whsec_ + base64 of 24 bytes, as incident.io shows a signing secret
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CASSETTE_NETLOC = "127.0.0.1:1"  # replays never reach a socket; nothing listens here
CASSETTE_DIR = Path(__file__).resolve().parent / "cassettes"
_LIVE_NETLOC = re.compile(rb"127\.0\.0\.1:\d+")


@pytest.fixture
def fake() -> Iterator[FakeIncidentio]:
    with FakeIncidentio(token=TOKEN) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client_for(sleeps: list[float]) -> Iterator[Any]:
    """``client_for(url, token=TOKEN, attempts=4, timeout=2)``: the real adapter, sleeping
    into ``sleeps`` instead of waiting."""
    from comms.adapters.incidentio import IncidentioClient, make_client
    from comms.adapters.retry import RetryPolicy

    made: list[IncidentioClient] = []

    def make(url: str, *, token: str = TOKEN, attempts: int = 4, timeout: float = 2.0) -> Any:
        policy = RetryPolicy(max_attempts=attempts, sleep=sleeps.append, jitter=lambda: 1.0)
        client = IncidentioClient(
            make_client(url, token, timeout=timeout), policy=policy, owns_client=True
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(fake: FakeIncidentio, client_for: Any) -> Any:
    return client_for(fake.url)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    """A real SQLite store file."""
    from comms.adapters.sqlite_store import SqliteStore

    opened = SqliteStore(tmp_path / "incidentio.db")
    yield opened
    opened.close()


TENANTS = [
    Tenant(id="acme", name="Acme Corp", aliases=["ACME"]),
    Tenant(id="initech", name="Initech"),
    Tenant(id="globex", name="Globex Corporation", aliases=["globex-prod"]),
    Tenant(id="fedgov", name="Federal Agency", pubsec=True),
]


@pytest.fixture
def tenants(store: Any) -> list[Tenant]:
    for tenant in TENANTS:
        store.put_tenant(tenant)
    return TENANTS


@pytest.fixture
def memory() -> MemoryWebhookMemory:
    return MemoryWebhookMemory()


@pytest.fixture
def signer() -> Signer:
    return Signer(SECRET)


@pytest.fixture
def now() -> datetime:
    """The real time: the signature library checks timestamps against the system clock."""
    return datetime.now(UTC).replace(microsecond=0)


# -- vcr (pytest-recording) -------------------------------------------------------------------


def _scrub_request(request: Any) -> Any:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(request.uri)
    request.uri = urlunsplit(parts._replace(netloc=CASSETTE_NETLOC))
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    body = response.get("body", {}).get("string")
    if isinstance(body, bytes):
        response["body"]["string"] = _LIVE_NETLOC.sub(CASSETTE_NETLOC.encode(), body)
    return response


@pytest.fixture
def vcr_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Replay only (record mode ``none``) unless ``--record-mode`` says otherwise; the key
    is never recorded."""
    return {
        "record_mode": request.config.getoption("--record-mode") or "none",
        "filter_headers": ["authorization", "cookie", "set-cookie", "host"],
        "before_record_request": _scrub_request,
        "before_record_response": _scrub_response,
        "match_on": ["method", "path", "query"],
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTE_DIR)
