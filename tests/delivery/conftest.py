"""Fixtures for the review and delivery suite; the helpers live in delivery_support.py."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from delivery_support import TOKEN, Stub, write_config

# Short timeouts keep fault tests fast: the client gives up on a slow answer after 0.4 s.
SWITCHBOARD = {"timeout_seconds": 0.4, "max_attempts": 6}


@pytest.fixture
def start_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Stub]]:
    """``start_stub(seed=..., rate_limit=...)``: the stub on a free 127.0.0.1 port, with
    comms pointed at it (COMMS_SWITCHBOARD_URL and the token in the environment)."""
    from comms.adapters.stub_server import serve_in_thread

    numbers = itertools.count(1)
    with ExitStack() as stack:

        def start(**options: Any) -> Stub:
            db_path = tmp_path / f"switchboard-{next(numbers)}.db"
            url = stack.enter_context(serve_in_thread(db_path, token=TOKEN, **options))
            http = stack.enter_context(
                httpx.Client(
                    base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10.0
                )
            )
            monkeypatch.setenv("COMMS_SWITCHBOARD_URL", url)
            monkeypatch.setenv("COMMS_SWITCHBOARD_TOKEN", TOKEN)
            return Stub(url=url, db_path=db_path, http=http)

        yield start


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """comms.toml in the test's working directory: short Switchboard timeouts."""
    return write_config(tmp_path / "comms.toml", switchboard=dict(SWITCHBOARD))


@pytest.fixture
def stub(start_stub: Callable[..., Stub], config: Path) -> Stub:
    """A fresh stub with the bundled example tenants (acme, globex, initech, ...)."""
    return start_stub()


@pytest.fixture
def store_db(tmp_path: Path) -> Path:
    """The test's comms store (set by the root conftest)."""
    return tmp_path / "comms.db"
