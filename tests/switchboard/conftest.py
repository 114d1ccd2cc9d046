"""Fixtures: the Switchboard stub on a free 127.0.0.1 port in a background thread."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from comms.adapters.stub_server import serve_in_thread

TOKEN = "test-token-7f3a"
# httpx builds a TLS context per client (~50 ms of loading CA certificates); the stub is plain
# HTTP, but share one verifying context so that per-test clients stay cheap.
TLS = ssl.create_default_context()


@dataclass
class Stub:
    """A running stub: its URL, its database file, and clients with the token."""

    url: str
    db_path: Path
    token: str
    http: httpx.Client
    tls: ssl.SSLContext

    def faults(self, **config: Any) -> dict[str, Any]:
        """Replace the fault plan (``queue=[...]``, ``rates={...}``, ``slow_seconds=...``)."""
        response = self.http.post("/_admin/faults", json=config)
        response.raise_for_status()
        return dict(response.json())

    def sends(self, **params: str) -> dict[str, Any]:
        """Sends the server recorded, per (tenant, incident, key), and duplicates."""
        return dict(self.http.get("/_admin/sends", params=params).json())

    def stats(self) -> dict[str, Any]:
        """Requests, rate-limited answers, faults injected, sends."""
        return dict(self.http.get("/_admin/stats").json())


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[Stub]:
    """A fresh stub with the bundled example tenants."""
    db_path = tmp_path / "switchboard.db"
    with (
        serve_in_thread(db_path, token=TOKEN) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5.0, verify=TLS
        ) as http,
    ):
        yield Stub(url=url, db_path=db_path, token=TOKEN, http=http, tls=TLS)


@pytest.fixture(scope="module")
def shared_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stub]:
    """One stub for a module's tests that only read, or that the stub refuses (4xx)."""
    db_path = tmp_path_factory.mktemp("shared") / "switchboard.db"
    with (
        serve_in_thread(db_path, token=TOKEN) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5.0, verify=TLS
        ) as http,
    ):
        yield Stub(url=url, db_path=db_path, token=TOKEN, http=http, tls=TLS)


def create_body(**overrides: Any) -> dict[str, Any]:
    """A valid create-notification body for tenant acme."""
    body: dict[str, Any] = {
        "template": "incident_investigation_start",
        "tenant_ids": ["acme"],
        "incident_reference": "INC-7",
        "message": "We are investigating slow page loads on your GitLab instance. "
        "Next update by 14:30 UTC.",
    }
    body.update(overrides)
    return body


@pytest.fixture
def make_body() -> Any:
    """``make_body(**overrides)``: a valid create-notification body (test modules cannot
    import conftest under --import-mode=importlib)."""
    return create_body
