"""The stub in-process through ``httpx.ASGITransport``: fast checks of routing and errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Route

from comms.adapters.stub_server import (
    DEFAULT_SEED,
    ConnectionDroppedError,
    FaultPlan,
    Gateway,
    create_app,
    load_seed,
    parse_fault_spec,
)
from comms.adapters.switchboard_model import (
    MAINTENANCE_WINDOWS,
    TEMPLATES,
    TemplateId,
    WindowId,
)
from comms.adapters.switchboard_openapi import openapi_document

Check = Callable[[httpx.AsyncClient], Awaitable[None]]


def _run(tmp_path: Path, check: Check, **options: Any) -> None:
    app = create_app(tmp_path / "sb.db", token="t", **options)
    try:
        _serve(app, check)
    finally:
        app.state.close()


def _serve(app: Gateway, check: Check) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://switchboard.test",
            headers={"Authorization": "Bearer t"},
        ) as client:
            await check(client)

    asyncio.run(main())


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


def test_the_rate_limit_refills_on_its_clock(tmp_path: Path) -> None:
    now = [1000.0]

    async def check(client: httpx.AsyncClient) -> None:
        async def attempt() -> tuple[int, str | None]:
            response = await client.get("/api/v1/notification-templates")
            return response.status_code, response.headers.get("retry-after")

        # 30 a minute with a burst of 1: one token every 2 s.
        assert await attempt() == (200, None)
        assert await attempt() == (429, "2")
        now[0] += 1.0
        assert await attempt() == (429, "1")
        now[0] += 1.0
        assert await attempt() == (200, None)
        assert await attempt() == (429, "2")
        # A limit set through the admin endpoint runs on the same clock.
        limit = await client.post("/_admin/rate-limit", json={"per_minute": 60, "burst": 1})
        assert limit.json() == {"per_minute": 60, "burst": 1}
        assert await attempt() == (200, None)
        assert await attempt() == (429, "1")
        now[0] += 1.0
        assert await attempt() == (200, None)

    _run(tmp_path, check, rate_limit=30, burst=1, monotonic=lambda: now[0])


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Gateway]:
    """A stub app that is only inspected, not served."""
    built = create_app(tmp_path / "sb.db", token="t")
    yield built
    built.state.close()


def test_the_document_names_exactly_the_routes_of_the_app(app: Gateway) -> None:
    document = openapi_document()
    documented = {
        (path, method.upper()): {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }
    routes = [route for route in app.app.routes if isinstance(route, Route)]
    assert len(routes) == len(app.app.routes)
    served = {
        (route.path, method): set(route.param_convertors)
        for route in routes
        for method in (route.methods or set()) - {"HEAD"}
    }
    # Outside the documented API by design: the document itself and the admin endpoints.
    undocumented = {
        key for key in served if key[0] == "/openapi.json" or key[0].startswith("/_admin/")
    }
    assert undocumented >= {("/openapi.json", "GET"), ("/_admin/faults", "POST")}
    assert documented == {key: served[key] for key in served.keys() - undocumented}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves_and_every_schema_is_used() -> None:
    document = openapi_document()
    refs = set(_refs(document))
    for ref in refs:
        assert ref.startswith("#/components/"), ref
        target: Any = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
    schemas = document["components"]["schemas"]
    assert {f"#/components/schemas/{name}" for name in schemas} <= refs
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)


def test_the_stub_is_served_with_a_document_built_on_first_request(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import comms.adapters.stub_server\n"
        "print(sorted(m for m in sys.modules if m.endswith('switchboard_openapi')))\n"
    )
    imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert imported.stdout == "[]\n"

    async def check(client: httpx.AsyncClient) -> None:
        first = await client.get("/openapi.json", headers={"Authorization": ""})
        second = await client.get("/openapi.json")
        assert first.status_code == 200
        assert first.headers["content-type"] == "application/json"
        assert first.content == second.content
        assert first.json() == openapi_document()

    _run(tmp_path, check)


def test_the_literals_name_every_template_and_window() -> None:
    assert list(get_args(TemplateId)) == [t["id"] for t in TEMPLATES]
    assert list(get_args(WindowId)) == list(MAINTENANCE_WINDOWS)


def test_a_response_that_does_not_fit_its_model_is_a_500(app: Gateway) -> None:
    tenant = load_seed(DEFAULT_SEED)[0]
    app.state.db.put_tenants([{**tenant, "id": "odd", "status": "unknown"}])

    async def check(client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/tenants/odd")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/internal-error")

    _serve(app, check)


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
