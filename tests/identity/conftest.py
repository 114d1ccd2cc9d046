"""Fixtures of the identity suite: a team store (SQLite file in token mode, or a
PostgreSQL schema of its own), the Switchboard stub, and no stray ``COMMS_TOKEN``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.identity.support import STUB_TOKEN, Team, write_toml


@pytest.fixture(autouse=True)
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test inherits the developer's COMMS_TOKEN (or reviewer)."""
    monkeypatch.delenv("COMMS_TOKEN", raising=False)


@pytest.fixture
def stub_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The Switchboard stub with its bundled tenants (acme, globex, …), comms pointed at it."""
    from comms.adapters.stub_server import serve_in_thread

    with ExitStack() as stack:
        url = stack.enter_context(serve_in_thread(tmp_path / "switchboard.db", token=STUB_TOKEN))
        monkeypatch.setenv("COMMS_SWITCHBOARD_URL", url)
        monkeypatch.setenv("COMMS_SWITCHBOARD_TOKEN", STUB_TOKEN)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def team(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Team]:
    """A store in token mode with no users yet: a SQLite file with ``[auth] mode =
    "token"``, or a migrated PostgreSQL schema of its own (token mode by default)."""
    if request.param == "sqlite":
        write_toml(tmp_path / "comms.toml", auth={"mode": "token"})
        url = str(tmp_path / "comms.db")
        monkeypatch.setenv("COMMS_DATABASE_URL", url)
        yield Team(url, tmp_path / "comms.toml")
        return
    if not os.environ.get("COMMS_TEST_POSTGRES_URL"):
        pytest.skip("COMMS_TEST_POSTGRES_URL is not set")
    from tests.contract.backends import postgres_schema

    write_toml(tmp_path / "comms.toml")
    with postgres_schema() as url:
        monkeypatch.setenv("COMMS_DATABASE_URL", url)
        yield Team(url, tmp_path / "comms.toml")
