"""The incident.io adapter against the live fake: faults, an API that is down, settings."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from comms.adapters.incidentio import IncidentioConfig, IncidentioError, from_settings
from comms.errors import ConfigError
from tests.incidentio.conftest import TOKEN
from tests.incidentio.fake_incidentio import FakeIncidentio


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_down_is_one_operational_line_after_retries(client_for: Any, sleeps: list[float]) -> None:
    url = _closed_port()
    client = client_for(url, attempts=3)
    with pytest.raises(IncidentioError) as caught:
        client.incident("2291")

    message = str(caught.value)
    assert message == (
        f"cannot reach incident.io at {url} (ConnectError); check [incidentio] api_url and "
        "the network (gave up after 3 attempts)"
    )
    assert caught.value.exit_code == 3
    assert client.attempts == 3
    assert sleeps == [0.5, 1.0]


def test_timeouts_are_retried_then_reported(fake: FakeIncidentio, client_for: Any) -> None:
    fake.declare("Sign-in failures")
    fake.inject("slow", path="/v2/incidents/", times=2, delay=0.6)
    client = client_for(fake.url, attempts=2, timeout=0.2)
    with pytest.raises(
        IncidentioError,
        match=r"did not answer GET /v2/incidents/2291 in time \(gave up after 2 attempts\)",
    ):
        client.incident("2291")


@pytest.mark.parametrize("kind", ["500", "drop", "429"])
def test_one_failure_then_the_answer(fake: FakeIncidentio, client_for: Any, kind: str) -> None:
    fake.declare("Sign-in failures", severity="Critical")
    fake.inject(kind, path="/v2/incidents/2291")
    client = client_for(fake.url)

    assert client.incident("2291").severity.name == "Critical"
    assert client.attempts == 2


def test_a_bad_page_size_is_refused_before_asking(client: Any) -> None:
    with pytest.raises(ValueError, match="page_size must be from 1 to 250"):
        list(client.incident_pages(page_size=251))
    assert client.attempts == 0


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^no incident.io key: set COMMS_INCIDENTIO_TOKEN"):
        from_settings({}, {})


def test_from_settings_reads_the_table_and_the_environment(fake: FakeIncidentio) -> None:
    fake.declare("Sign-in failures")
    client = from_settings(
        {"api_url": "https://api.incident.io", "timeout_seconds": 5, "tenant_field": "Customers"},
        {"COMMS_INCIDENTIO_TOKEN": TOKEN, "COMMS_INCIDENTIO_URL": fake.url},
    )
    try:
        assert client.incident("2291").name == "Sign-in failures"
        assert fake.requests[-1] == ("GET", "/v2/incidents/2291", True)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"api_url": "api.incident.io"}, r"api_url must be an http\(s\) URL"),
        ({"timeout_seconds": 0}, "timeout_seconds must be a number of seconds from 0 to 300"),
        ({"max_attempts": 11}, "max_attempts must be a whole number from 1 to 10"),
        ({"api_key": "x"}, "unknown key 'api_key'"),
    ],
)
def test_bad_table(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        IncidentioConfig.from_table(table, {})
