"""The incident.io adapter replayed from vcrpy cassettes (pytest-recording): no server.

The cassettes in ``tests/incidentio/cassettes/`` were recorded from the incident.io fake
(``fake_incidentio.py``, written from the public API reference).  They pin the requests the
adapter makes (method, path and query must match) and replay incident.io-shaped answers:
an incident by its reference's number, ``after``-cursor pages, the catalogue, a 404, a
refused key and a 429 with ``Retry-After``.  ``Authorization`` is filtered out and every URI
points at ``127.0.0.1:1``, where nothing listens.  CI replays only (record mode ``none``).

Re-record after changing what the adapter asks (this starts the fake for each test)::

    .venv/bin/python -m pytest tests/incidentio/test_adapter_cassettes.py -p no:cacheprovider \\
        --record-mode=rewrite

Live-server tests with faults are in ``test_adapter_live.py``; keep the two apart (vcrpy
patches httpx's transport).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from comms.errors import ConfigError, NotFoundError
from tests.incidentio.conftest import CASSETTE_NETLOC, TOKEN
from tests.incidentio.fake_incidentio import FakeIncidentio


def seed(fake: FakeIncidentio) -> None:
    """The same five incidents every recording: INC-2291 … INC-2295."""
    fake.declare("Sign-in failures", severity="Critical", tenants=["Acme Corp", "Initech"])
    fake.declare("Slow merge requests", severity="Minor", tenants=["globex-prod"], team="Gitaly")
    fake.declare("Registry errors", severity="Major", status="Fixing", tenants=[])
    fake.declare(
        "CI runners queueing", severity="Major", status="Monitoring", tenants=["Acme Corp"]
    )
    fake.declare("Webhooks delayed", severity=None, status="Triage")


@pytest.fixture
def api_url(record_mode: str | None) -> Iterator[tuple[str, FakeIncidentio | None]]:
    """Where the adapter connects: the live fake when recording, a dead port in replay."""
    if (record_mode or "none") == "none":
        yield f"http://{CASSETTE_NETLOC}", None
        return
    with FakeIncidentio(token=TOKEN) as fake:
        seed(fake)
        yield fake.url, fake


@pytest.mark.vcr
def test_show_incident_by_reference_number(api_url: Any, client_for: Any) -> None:
    found = client_for(api_url[0]).incident("2291")

    assert found.reference == "INC-2291"
    assert found.name == "Sign-in failures"
    assert (found.severity.name, found.severity.rank) == ("Critical", 3)
    assert (found.status.name, found.status.category) == ("Investigating", "live")
    assert found.permalink == "https://app.incident.io/gitlab/incidents/2291"
    assert found.slack_channel_id == "C02291"
    assert (found.mode, found.visibility) == ("standard", "public")
    entry = found.entry("affected TENANTS")
    assert entry is not None
    assert [v.label for v in entry.values] == ["Acme Corp", "Initech"]
    assert found.created_at.isoformat() == "2026-11-27T13:52:01+00:00"


@pytest.mark.vcr
def test_show_the_same_incident_by_its_id(api_url: Any, client_for: Any) -> None:
    client = client_for(api_url[0])
    by_number = client.incident("2292")
    by_id = client.incident(by_number.id)

    assert by_id == by_number
    team = by_id.entry("Affected Team")
    assert team is not None
    assert [v.label for v in team.values] == ["Gitaly"]


@pytest.mark.vcr
def test_list_follows_the_after_cursor(api_url: Any, client_for: Any) -> None:
    client = client_for(api_url[0])
    pages = list(client.incident_pages(page_size=2))

    assert [[i.reference for i in page] for page, _ in pages] == [
        ["INC-2295", "INC-2294"],
        ["INC-2293", "INC-2292"],
        ["INC-2291"],
    ]
    assert [cursor is None for _, cursor in pages] == [False, False, True]
    assert pages[0][1] == pages[0][0][-1].id  # the cursor is the last incident's id


@pytest.mark.vcr
def test_list_by_status_category(api_url: Any, client_for: Any) -> None:
    found = client_for(api_url[0]).incidents(page_size=250, status_category=["live"])

    assert [i.reference for i in found] == ["INC-2294", "INC-2293", "INC-2292", "INC-2291"]
    assert {i.status.category for i in found} == {"live"}


@pytest.mark.vcr
def test_catalogue(api_url: Any, client_for: Any) -> None:
    client = client_for(api_url[0])

    assert [(s.name, s.rank) for s in client.severities()] == [
        ("Minor", 1),
        ("Major", 2),
        ("Critical", 3),
    ]
    statuses = {s.name: s.category for s in client.statuses()}
    assert statuses["Fixing"] == "live"
    assert statuses["Documenting"] == "learning"
    assert [(f.name, f.field_type) for f in client.custom_fields()] == [
        ("Affected tenants", "multi_select"),
        ("Affected Team", "single_select"),
    ]


@pytest.mark.vcr
def test_unknown_incident_is_not_found(api_url: Any, client_for: Any) -> None:
    with pytest.raises(
        NotFoundError, match=r"incident.io has no incident '9999'.*Incident not found"
    ):
        client_for(api_url[0]).incident("9999")


@pytest.mark.vcr
def test_refused_key_is_one_config_line(api_url: Any, client_for: Any) -> None:
    client = client_for(api_url[0], token="inc_revoked")
    with pytest.raises(ConfigError) as caught:
        client.incident("2291")

    message = str(caught.value)
    assert message.startswith(
        "incident.io refused the key in COMMS_INCIDENTIO_TOKEN: The API key provided is not valid (401)"
    )
    assert "\n" not in message
    assert "inc_revoked" not in message
    assert caught.value.exit_code == 3
    assert client.attempts == 1  # a refused key is not retried


@pytest.mark.vcr
def test_rate_limit_waits_as_asked_then_reads(
    api_url: Any, client_for: Any, sleeps: list[float]
) -> None:
    if api_url[1] is not None:
        api_url[1].inject("429", path="/v1/severities", retry_after=7)
    client = client_for(api_url[0])

    assert [s.name for s in client.severities()] == ["Minor", "Major", "Critical"]
    assert client.attempts == 2
    assert sleeps == [7.0]  # Retry-After, longer than the backoff
