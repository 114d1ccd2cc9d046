"""The JSON API against its OpenAPI document: the routes and the document agree, and every
answer the tests get matches the schema of its status code."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.routing import Route
from web_support import (
    DOCUMENT,
    NOW,
    Web,
    add_team,
    bearer,
    check_answer,
    open_draft,
    redraft,
    seed_tenants,
)

from comms.bootstrap import Runtime
from comms.models import DraftState
from comms.web.app import create_app

WebClient = Callable[..., Web]
CLEAN = "Users cannot sign in to the web interface."
DRAFT = "/api/drafts/{draft_id}"


def _api_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith(("/api/", "/hooks/")):
            found |= {(m.lower(), route.path) for m in route.methods or () if m != "HEAD"}
    return found


def _documented() -> set[tuple[str, str]]:
    return {(m, path) for path, item in DOCUMENT["paths"].items() for m in item}


def test_the_routes_and_the_document_agree(rt: Runtime, web: WebClient) -> None:
    app = create_app(rt)
    assert _api_routes(app) == _documented()
    served = web(app).get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == DOCUMENT
    from jsonschema import Draft202012Validator

    # Each schema is valid JSON Schema, and each $ref resolves.
    for name, schema in DOCUMENT["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert name


def test_the_check_above_can_fail(rt: Runtime) -> None:
    app = create_app(rt)
    app.routes.append(Route("/api/undocumented", lambda request: None, methods=["GET"]))
    assert _api_routes(app) != _documented()


def test_the_queue(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    client = web()
    answer = client.get("/api/queue", headers=bearer("sia"))
    check_answer("GET", "/api/queue", answer)
    body = answer.json()
    assert body["now"] == "2026-11-27T14:30:00Z"
    (row,) = body["drafts"]
    assert row["id"] == draft.id
    assert row["severity"] == "S1"
    assert row["update_due_at"] == "2026-11-27T14:45:00Z"
    assert row["seconds_left"] == 15 * 60
    assert row["update_state"] == "due-soon"


def test_a_draft_and_approving_it(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, "Users probably cannot sign in.")
    client = web()
    shown = client.get(f"/api/drafts/{draft.id}", headers=bearer("sam"))
    check_answer("GET", DRAFT, shown)
    body = shown.json()
    assert body["text"].startswith("Subject: Investigating: Sign-in failures\n\n")
    assert [f["rule"] for f in body["findings"]] == ["Impact.Speculation"]
    assert body["needs"] == ["imoc"]
    assert body["recipients"][0]["contacts"] == ["ops@acme.example"]
    approved = client.post(
        f"/api/drafts/{draft.id}/approve",
        json={"revision": body["revision"], "note": "ok", "channels": ["switchboard"]},
        headers=bearer("sam"),
    )
    check_answer("POST", DRAFT + "/approve", approved)
    assert approved.json()["state"] == "approved"
    assert approved.json()["reviewer"] == "sam"
    after = client.get(f"/api/drafts/{draft.id}", headers=bearer("sam")).json()
    assert after["approved_by"] == {"imoc": "sam"}
    assert after["ready_to_send"] is True


def test_refusals_and_conflicts(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    client = web()
    path = DRAFT + "/approve"
    url = f"/api/drafts/{draft.id}/approve"
    cases: list[tuple[dict[str, Any], str, int, str]] = [
        ({"json": {"revision": 1}}, "gus", 403, "only an imoc"),
        ({"json": {"revision": 1, "role": "sirt"}}, "sam", 403, "not as sirt"),
        ({"json": {"revision": 0}}, "sam", 400, "revision"),
        ({"json": {"revision": 1, "colour": "red"}}, "sam", 400, "unknown field 'colour'"),
        ({"json": {"revision": 1, "channels": ["fax"]}}, "sam", 400, "unknown channel"),
        ({"json": [1]}, "sam", 400, "JSON object"),
        ({"content": b"revision=1"}, "sam", 415, "application/json"),
        ({"content": b"{" + b" " * 300_000 + b"}"}, "sam", 413, "too large"),
    ]
    for kwargs, who, status, needle in cases:
        headers = {**bearer(who)}
        if "content" in kwargs:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        answer = client.post(url, headers=headers, **kwargs)
        assert answer.status_code == status, (kwargs, answer.text)
        assert needle in answer.json()["detail"], answer.json()
        check_answer("POST", path, answer)
    redraft(rt, draft.incident_ref, "Users cannot sign in or reset passwords.")
    stale = client.post(url, json={"revision": 1}, headers=bearer("sam"))
    assert stale.status_code == 409
    check_answer("POST", path, stale)
    assert rt.raw_store.reviews(draft.id) == []
    changes = client.post(
        f"/api/drafts/{draft.id}/request-changes",
        json={"revision": 2, "note": "Name the features"},
        headers=bearer("sam"),
    )
    check_answer("POST", DRAFT + "/request-changes", changes)
    assert changes.json()["state"] == DraftState.CHANGES_REQUESTED.value
    missing = client.get("/api/drafts/12345", headers=bearer("sam"))
    assert missing.status_code == 404
    check_answer("GET", DRAFT, missing)


def test_bearer_tokens(rt: Runtime, web: WebClient) -> None:
    client = web()
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic c2FtOng="}):
        answer = client.get("/api/queue", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        check_answer("GET", "/api/queue", answer)
    wrong = client.get("/api/queue", headers={"Authorization": "Bearer comms_wrong"})
    assert wrong.status_code == 401
    assert "not a valid comms token" in wrong.json()["detail"]
    rt.raw_store.set_user_disabled("sam", disabled=True, now=NOW, actor="ana")
    disabled = client.get("/api/queue", headers=bearer("sam"))
    assert disabled.status_code == 401
    assert "disabled" in disabled.json()["detail"]


def test_the_incident(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    client = web()
    answer = client.get(f"/api/incidents/{draft.incident_ref}", headers=bearer("sam"))
    check_answer("GET", "/api/incidents/{ref}", answer)
    body = answer.json()
    assert body["incident"]["ref"] == draft.incident_ref
    assert next(e["type"] for e in body["events"]) == "incident.opened"
    assert {d["clock"] for d in body["deadlines"]} >= {"update"}
    assert body["drafts"][0]["id"] == draft.id
    missing = client.get("/api/incidents/INC-99", headers=bearer("sam"))
    assert missing.status_code == 404
    check_answer("GET", "/api/incidents/{ref}", missing)
    health = client.get("/api/health")
    check_answer("GET", "/api/health", health)


@pytest.fixture
def postgres_rt(monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    if not os.environ.get("COMMS_TEST_POSTGRES_URL"):
        pytest.skip("COMMS_TEST_POSTGRES_URL is not set (CI sets it)")
    from tests.contract.backends import postgres_schema

    with postgres_schema() as url:
        monkeypatch.setenv("COMMS_DATABASE_URL", url)
        with Runtime(clock=lambda: NOW) as runtime:
            add_team(runtime)
            seed_tenants(runtime, "acme")
            yield runtime


@pytest.mark.postgres
def test_on_postgresql_two_servers_share_sessions_and_decisions(postgres_rt: Runtime) -> None:
    draft = open_draft(postgres_rt, CLEAN)
    with Runtime(clock=lambda: NOW) as other:
        first, second = Web(create_app(postgres_rt)), Web(create_app(other))
        first.sign_in("sam")
        second.client.cookies.set("comms_session", first.client.cookies["comms_session"])
        page = second.get(f"/drafts/{draft.id}")
        assert page.status_code == 200
        assert "Investigating: Sign-in failures" in page.text
        from web_support import form_value

        answer = second.post(
            f"/drafts/{draft.id}/approve",
            data={"csrf": form_value(page.text, "csrf"), "revision": "1"},
        )
        assert answer.status_code == 303, answer.text
        queue = first.get("/api/queue", headers=bearer("sam"))
        assert queue.json()["drafts"] == []
        assert postgres_rt.raw_store.get_draft(draft.id).state is DraftState.APPROVED
        first.close()
        second.close()


def test_a_first_approval_leaves_the_draft_in_the_queue_of_who_must_still_approve(
    rt: Runtime, web: Any
) -> None:
    """Found in review: one approval took a draft out of the queue although the send gate
    still needed another (SIRT on a security incident, the IMOC when SIRT came first)."""
    security = open_draft(rt, CLEAN, security=True)
    plain = open_draft(rt, CLEAN, title="Slow pipelines")
    api = web()

    def queued() -> set[int]:
        return {row["id"] for row in api.get("/api/queue", headers=bearer("sam")).json()["drafts"]}

    first = api.post(
        f"/api/drafts/{security.id}/approve", json={"revision": 1}, headers=bearer("sam")
    )
    assert first.json()["state"] == "in-review"
    early = api.post(f"/api/drafts/{plain.id}/approve", json={"revision": 1}, headers=bearer("sia"))
    assert early.json()["state"] == "in-review"  # SIRT's approval is not the IMOC's
    assert queued() == {security.id, plain.id}
    api.post(f"/api/drafts/{security.id}/approve", json={"revision": 1}, headers=bearer("sia"))
    api.post(f"/api/drafts/{plain.id}/approve", json={"revision": 1}, headers=bearer("sam"))
    assert queued() == set()
    assert rt.raw_store.get_draft(security.id).state is DraftState.APPROVED
