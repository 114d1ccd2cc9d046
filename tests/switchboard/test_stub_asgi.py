"""The stub in-process through ``httpx.ASGITransport``: fast checks of routing and errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from comms.adapters.stub_server import (
    ROUTES,
    ConnectionDroppedError,
    FaultPlan,
    create_app,
    parse_fault_spec,
)
from comms.adapters.switchboard_openapi import openapi_document

Check = Callable[[httpx.AsyncClient], Awaitable[None]]


def _run(tmp_path: Path, check: Check, **options: Any) -> None:
    app = create_app(tmp_path / "sb.db", token="t", **options)

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://switchboard.test",
            headers={"Authorization": "Bearer t"},
        ) as client:
            await check(client)

    try:
        asyncio.run(main())
    finally:
        app.state.close()


def test_unknown_paths_and_methods_are_problems(tmp_path: Path) -> None:
    async def check(client: httpx.AsyncClient) -> None:
        missing = await client.get("/api/v1/nothing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        wrong = await client.delete("/api/v1/notifications")
        assert wrong.status_code == 405
        assert wrong.json()["type"].endswith("/method-not-allowed")
        assert set(wrong.headers["allow"].split(", ")) >= {"GET", "POST"}
        extra = await client.get("/api/v1/tenants", params={"tenant": "acme"})
        assert extra.status_code == 400
        assert "unknown query parameter 'tenant'" in extra.json()["detail"]

    _run(tmp_path, check)


def test_a_dropped_connection_in_process_is_an_exception_not_a_500(tmp_path: Path) -> None:
    async def check(client: httpx.AsyncClient) -> None:
        with pytest.raises(ConnectionDroppedError):
            await client.get("/api/v1/tenants")
        assert (await client.get("/api/v1/tenants")).status_code == 200

    _run(tmp_path, check, faults=FaultPlan(queue=[{"kind": "drop", "match": "*", "times": 1}]))


def test_the_rate_limit_refills(tmp_path: Path) -> None:
    async def check(client: httpx.AsyncClient) -> None:
        first = await client.get("/api/v1/notification-templates")
        second = await client.get("/api/v1/notification-templates")
        assert (first.status_code, second.status_code) == (200, 429)
        await asyncio.sleep(0.06)
        assert (await client.get("/api/v1/notification-templates")).status_code == 200

    _run(tmp_path, check, rate_limit=1200, burst=1)


def test_the_document_describes_exactly_the_api_routes() -> None:
    documented = {
        (path, method.upper())
        for path, ops in openapi_document()["paths"].items()
        for method in ops
    }
    served = {
        (route.path, method)
        for route in ROUTES
        if isinstance(route, Route) and route.path.startswith("/api/")
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert documented == served


def test_fault_specs_parse() -> None:
    assert parse_fault_spec("429:0.2, 500:0.1,slow:0.1,drop:0.05,after-commit:0.05") == {
        "429": 0.2,
        "500": 0.1,
        "slow": 0.1,
        "drop": 0.05,
        "after_commit": 0.05,
    }
    with pytest.raises(ValueError, match="not a probability"):
        parse_fault_spec("500:lots")
    with pytest.raises(ValueError, match="between 0 and 1"):
        parse_fault_spec("500:1.5")


def test_seeded_random_faults_repeat() -> None:
    def draws(seed: int) -> list[str | None]:
        plan = FaultPlan.from_config({"rates": {"500": 0.3, "drop": 0.2}, "seed": seed})
        return [plan.pick("GET", "/api/v1/tenants") for _ in range(200)]

    first = draws(7)
    assert first == draws(7)
    assert 40 <= first.count("500") <= 80
    assert 20 <= first.count("drop") <= 60
