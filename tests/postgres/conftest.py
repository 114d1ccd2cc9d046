"""Fixtures of the PostgreSQL suite: a schema of its own per test, the Switchboard stub,
and ``comms`` run as real processes against both.

Every test here needs the server named by ``COMMS_TEST_POSTGRES_URL`` and is skipped
without it (CI sets it in ``.ci/run``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract.backends import postgres_schema
from tests.delivery.delivery_support import TOKEN, Stub, write_config, write_seed

ENV = "COMMS_TEST_POSTGRES_URL"
StartStub = Callable[..., Stub]

# A shared store authenticates every command (team mode): the team each test's schema
# starts with, name -> (role, API token).  Commands run as the GDCMOC unless a test
# passes another COMMS_TOKEN.
TEAM = {
    "ana": ("admin", "comms_test-token-of-ana-the-admin"),
    "gus": ("gdcmoc", "comms_test-token-of-gus-the-gdcmoc"),
    "sam-imoc": ("imoc", "comms_test-token-of-sam-the-imoc"),
}


def token(name: str) -> dict[str, str]:
    """The environment that makes a comms process act as ``name`` of ``TEAM``."""
    return {"COMMS_TOKEN": TEAM[name][1]}


def add_team(url: str) -> None:
    """Store ``TEAM`` (only the tokens' hashes) in the database at ``url``."""
    from datetime import UTC, datetime

    from comms.adapters.postgres_store import PostgresStore
    from comms.identity import hash_token
    from comms.models import Role

    with PostgresStore(url) as store:
        for name, (role, secret) in TEAM.items():
            store.add_user(
                name=name,
                role=Role(role),
                token_hash=hash_token(secret),
                now=datetime.now(UTC),
                actor="ana",
            )


def server() -> tuple[str, int, str]:
    """(host, port, database) of the test server, as comms names them in messages."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(os.environ[ENV])
    host = str(params.get("host") or "localhost")
    return host, int(params.get("port") or 5432), str(params.get("dbname") or "")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``postgres``, and skip it when there is no server."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.postgres)
            if not os.environ.get(ENV):
                item.add_marker(pytest.mark.skip(reason=f"{ENV} is not set"))


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated schema of its own with ``TEAM`` in it, as ``COMMS_DATABASE_URL`` for every
    comms run, which acts as gus (the GDCMOC) unless told otherwise."""
    with postgres_schema() as url:
        add_team(url)
        monkeypatch.setenv("COMMS_DATABASE_URL", url)
        monkeypatch.setenv("COMMS_TOKEN", TEAM["gus"][1])
        yield url


@pytest.fixture
def empty_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A schema of its own that ``comms db migrate`` has not been run on."""
    with postgres_schema(migrate=False) as url:
        monkeypatch.setenv("COMMS_DATABASE_URL", url)
        yield url


@pytest.fixture
def start_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StartStub]:
    """``start_stub(tenants=N)``: the Switchboard stub on a free port with N generated
    tenants (``zq001`` …), comms pointed at it, and comms.toml with patient timeouts."""
    from comms.adapters.stub_server import serve_in_thread

    write_config(tmp_path / "comms.toml", switchboard={"timeout_seconds": 10, "max_attempts": 6})
    with ExitStack() as stack:

        def start(tenants: int = 3, **options: Any) -> Stub:
            seed = write_seed(tmp_path / "seed.json", tenants)
            db_path = tmp_path / "switchboard.db"
            url = stack.enter_context(serve_in_thread(db_path, token=TOKEN, seed=seed, **options))
            http = stack.enter_context(
                httpx.Client(
                    base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10.0
                )
            )
            monkeypatch.setenv("COMMS_SWITCHBOARD_URL", url)
            monkeypatch.setenv("COMMS_SWITCHBOARD_TOKEN", TOKEN)
            return Stub(url=url, db_path=db_path, http=http)

        yield start


def start_comms(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m comms ARGS`` as a process of its own, with this test's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "comms", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def comms(*args: str, code: int = 0, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Run ``comms ARGS`` to the end; insist on exit ``code``; return (stdout, stderr)."""
    process = start_comms(*args, env=env)
    out, err = process.communicate(timeout=120)
    assert process.returncode == code, (
        f"comms {' '.join(args)} exited {process.returncode}, not {code}:\n{out}\n{err}"
    )
    assert "Traceback" not in out + err
    return out, err
