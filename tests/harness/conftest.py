"""Fixtures for the defect-finding harness: a port nobody answers on, an isolated process
environment for the CLI, and the two delivery servers (Switchboard stub, Zendesk test server)
for the fault campaign.

Nothing here talks to the network beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses every connection at once.

    The socket is bound but never listens: the kernel answers a connect with a reset, and no
    other process can take the port while the test runs (unlike a port merely closed again).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def isolated_env(root: Path, closed_port: int) -> dict[str, str | None]:
    """The environment of one comms process under test, for ``CliRunner.invoke(env=...)``.

    Every file comms may touch lives under ``root``; ``COMMS_CONFIG`` is unset; Switchboard,
    Zendesk, PagerDuty and any proxy-honouring client point at ``closed_port``, so a send or
    an alert fails fast instead of leaving the machine. ``None`` removes a variable.
    """
    dead = f"http://127.0.0.1:{closed_port}"
    return {
        "HOME": str(root / "home"),
        "XDG_DATA_HOME": str(root / "home" / "data"),
        "XDG_CONFIG_HOME": str(root / "home" / "config"),
        "XDG_CACHE_HOME": str(root / "home" / "cache"),
        "COMMS_DATABASE_URL": str(root / "comms.db"),
        "COMMS_CONFIG": None,
        "COMMS_TEMPLATES_DIR": None,
        "COMMS_AUTHOR": "fuzz-gdcmoc",
        "COMMS_REVIEWER": "fuzz-imoc",
        "COMMS_SWITCHBOARD_URL": dead,
        "COMMS_SWITCHBOARD_TOKEN": "fuzz-token",
        "COMMS_ZENDESK_TOKEN": "fuzz-token",
        "COMMS_PAGERDUTY_EVENTS_URL": f"{dead}/v2/enqueue",
        "ZENPY_FORCE_SCHEME": "http",
        "ZENPY_FORCE_NETLOC": f"127.0.0.1:{closed_port}",
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "ALL_PROXY": dead,
        "NO_PROXY": None,
        "EDITOR": None,
        "VISUAL": None,
    }


@pytest.fixture
def cli_env(closed_port: int) -> Callable[[Path], dict[str, str | None]]:
    """``cli_env(root)``: the isolated environment of a comms process rooted at ``root``."""
    return lambda root: isolated_env(root, closed_port)


# -- the two delivery servers, for the fault campaign ---------------------------------------

SWITCHBOARD_TOKEN = "harness-switchboard-token"
ZENDESK_TOKEN = "harness-zendesk-token"
ZENDESK_AGENT = "comms-bot@example.com"


@dataclass
class Switchboard:
    """A running Switchboard stub: base URL, its own SQLite file, an admin client."""

    url: str
    db_path: Path
    admin: httpx.Client

    def faults(self, **plan: Any) -> None:
        """Replace the fault plan (``queue=[...]``, ``slow_seconds=...``; empty: no faults)."""
        self.admin.post("/_admin/faults", json=plan).raise_for_status()

    def expire_keys(self) -> int:
        """Forget every completed Idempotency-Key, as the real API does after retention."""
        response = self.admin.post("/_admin/idempotency/expire", json={"match": "*"})
        response.raise_for_status()
        return int(response.json()["expired"])

    def requests(self) -> int:
        """API requests received so far (retries included)."""
        return int(self.admin.get("/_admin/stats").json()["requests"])

    def sends(self) -> list[tuple[str, str]]:
        """(tenant, sha256 of the message) of every send the stub recorded."""
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            rows = conn.execute("SELECT tenant_id, message_sha256 FROM sends ORDER BY seq")
            return [(str(t), str(h)) for t, h in rows.fetchall()]
        finally:
            conn.close()


def tenant_records(count: int) -> list[dict[str, Any]]:
    """Valid stub tenants whose ids and names appear in no message text."""
    return [
        {
            "id": f"fc{n:02d}",
            "name": f"Quokkaworks {n:02d}",
            "url": f"https://fc{n:02d}.dedicated.example",
            "gitlab_version": "17.5.2",
            "reference_architecture": "3k",
            "primary_region": "eu-west-1",
            "maintenance_window": "emea",
            "operational_emails": [f"ops@fc{n:02d}.example"],
            "csm": {"name": "Casey", "email": f"csm+fc{n:02d}@gitlab.example"},
            "ase": None,
        }
        for n in range(1, count + 1)
    ]


@pytest.fixture
def switchboard(tmp_path: Path) -> Iterator[Switchboard]:
    """The Switchboard stub on a free 127.0.0.1 port with ten generated tenants."""
    from comms.adapters.stub_server import serve_in_thread

    seed = tmp_path / "switchboard-seed.json"
    seed.write_text(json.dumps({"tenants": tenant_records(10)}), encoding="utf-8")
    db_path = tmp_path / "switchboard.db"
    with (
        serve_in_thread(db_path, token=SWITCHBOARD_TOKEN, seed=seed) as url,
        httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {SWITCHBOARD_TOKEN}"},
            timeout=10.0,
            trust_env=False,
        ) as admin,
    ):
        yield Switchboard(url=url, db_path=db_path, admin=admin)


@pytest.fixture
def zendesk() -> Iterator[Any]:
    """The Zendesk-compatible test server (tests/zendesk/server.py) on a free port."""
    from tests.zendesk.server import ZendeskServer

    with ZendeskServer(agent_email=ZENDESK_AGENT, token=ZENDESK_TOKEN) as server:
        yield server


@pytest.fixture
def campaign_env(tmp_path: Path, switchboard: Switchboard, zendesk: Any) -> dict[str, str]:
    """The environment of every `comms` process of the campaign (real processes and
    CliRunner alike): its own store, both servers, short timeouts in ./comms.toml."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "comms.toml").write_text(
        "[switchboard]\ntimeout_seconds = 0.5\nmax_attempts = 2\n\n"
        f'[zendesk]\nsubdomain = "gitlab"\nemail = "{ZENDESK_AGENT}"\n'
        "timeout = 0.5\nmax_attempts = 2\nrate_per_minute = 60000\n\n"
        "[send]\nconcurrency = 4\n",
        encoding="utf-8",
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COMMS_") and k.lower() not in PROXY_VARIABLES
    }
    env.update(
        {
            "HOME": str(work / "home"),
            "XDG_DATA_HOME": str(work / "home" / "data"),
            "XDG_CONFIG_HOME": str(work / "home" / "config"),
            "XDG_CACHE_HOME": str(work / "home" / "cache"),
            "COMMS_DATABASE_URL": str(work / "comms.db"),
            "COMMS_AUTHOR": "campaign-gdcmoc",
            "COMMS_SWITCHBOARD_URL": switchboard.url,
            "COMMS_SWITCHBOARD_TOKEN": SWITCHBOARD_TOKEN,
            "COMMS_ZENDESK_TOKEN": ZENDESK_TOKEN,
            "ZENPY_FORCE_SCHEME": "http",
            "ZENPY_FORCE_NETLOC": zendesk.netloc,
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    return env


PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
