"""Fixtures of the review server's tests: a runtime on the test's SQLite file (the root
conftest points COMMS_DATABASE_URL at it) with the team, and clients of the app."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_support import NOW, NOW_ISO, Web, add_team, seed_tenants

from comms.bootstrap import Runtime
from comms.web.app import create_app
from comms.web.config import ServeConfig

MakeApp = Callable[..., Any]


@pytest.fixture
def rt(monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The runtime of the test's store, with the team and tenants acme and globex; the
    clock pinned (COMMS_NOW) for the CLI too."""
    monkeypatch.setenv("COMMS_NOW", NOW_ISO)
    with Runtime(clock=lambda: NOW) as runtime:
        add_team(runtime)
        seed_tenants(runtime, "acme", "globex")
        yield runtime


@pytest.fixture
def make_app(rt: Runtime) -> MakeApp:
    """``make_app(config=..., notify=..., limiter=...)``: the app over the test's store."""

    def make(config: ServeConfig | None = None, **options: Any) -> Any:
        return create_app(rt, config, channels=("switchboard", "zendesk"), **options)

    return make


@pytest.fixture
def web(make_app: MakeApp) -> Iterator[Callable[..., Web]]:
    """``web(app=None, address="127.0.0.1")``: a client (a browser, a script) of the app."""
    made: list[Web] = []

    def client(app: Any = None, address: str = "127.0.0.1", **options: Any) -> Web:
        made.append(Web(app or make_app(), address, **options))
        return made[-1]

    yield client
    for each in made:
        each.close()
