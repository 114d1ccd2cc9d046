"""The Switchboard stub over real HTTP: uvicorn on a free 127.0.0.1 port, in a thread."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from comms.adapters.stub_server import load_seed, serve_in_thread

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    doc = response.json()
    assert doc["status"] == status
    assert doc["type"].endswith("/" + slug)
    assert doc["title"]
    assert doc["detail"]
    return dict(doc)


# ----------------------------------------------------------------------------- tenants


def test_tenant_list_follows_cursors_over_every_seed_tenant(shared_stub: Any) -> None:
    ids, pages, cursor = [], 0, None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = shared_stub.http.get("/api/v1/tenants", params=params).json()
        pages += 1
        assert len(page["data"]) <= 2
        ids += [t["id"] for t in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert ids == ["acme", "globex", "initech", "stark-federal", "umbrella"]
    assert pages == 3


def test_tenant_records_carry_the_switchboard_facts(shared_stub: Any) -> None:
    pubsec = shared_stub.http.get("/api/v1/tenants/stark-federal").json()
    assert pubsec["pubsec"] is True
    assert pubsec["maintenance_window"]["id"] == "amer-2"
    assert pubsec["maintenance_window"]["start"] == "21:00"
    geo = shared_stub.http.get("/api/v1/tenants/globex").json()
    assert geo["geo"] is True
    assert geo["secondary_region"] == "us-west-2"
    assert geo["ase"] is None
    acme = shared_stub.http.get("/api/v1/tenants/acme").json()
    assert acme["csm"]["email"] == "dana.whitfield@csm.example"
    assert acme["operational_emails"][0] == "platform-ops@acme.example"
    assert acme["status"] in ("normal", "degraded", "disruption")


def test_unknown_tenant_is_a_404_problem(shared_stub: Any) -> None:
    _problem(shared_stub.http.get("/api/v1/tenants/nobody"), 404, "not-found")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/tenants?limit=0",
        "/api/v1/tenants?limit=101",
        "/api/v1/tenants?limit=ten",
        "/api/v1/notifications?cursor=x",
        "/api/v1/notifications?cursor=-1",
    ],
)
def test_bad_paging_parameters_are_400_problems(shared_stub: Any, url: str) -> None:
    response = shared_stub.http.get(url)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM


def test_templates_are_the_seven_switchboard_templates(shared_stub: Any) -> None:
    data = shared_stub.http.get("/api/v1/notification-templates").json()["data"]
    names = [t["name"] for t in data]
    assert names == [
        "Incident investigation start",
        "Incident investigation update",
        "Incident escalated response",
        "Incident mitigation in progress",
        "Incident resolved",
        "Emergency maintenance planned",
        "Emergency maintenance completed",
    ]
    editable = {t["id"]: t["editable"] for t in data}
    assert editable["incident_investigation_start"] == "body"
    assert editable["incident_escalated_response"] == "intro"


# ----------------------------------------------------------------------------- auth


def test_requests_without_or_with_a_wrong_token_are_401_problems(shared_stub: Any) -> None:
    with httpx.Client(base_url=shared_stub.url, verify=shared_stub.tls) as anonymous:
        missing = anonymous.get("/api/v1/tenants")
        wrong = anonymous.get("/api/v1/tenants", headers={"Authorization": "Bearer nope"})
        basic = anonymous.get(
            "/api/v1/tenants", headers={"Authorization": f"Basic {shared_stub.token}"}
        )
        admin = anonymous.get("/_admin/sends")
        spec = anonymous.get("/openapi.json")
    for response in (missing, wrong, basic, admin):
        _problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert shared_stub.token not in response.text
    assert spec.status_code == 200
    assert spec.json()["openapi"].startswith("3.")


# ----------------------------------------------------------------------------- notifications


def test_draft_preview_send_resolves_recipients_at_send(stub: Any, make_body: Any) -> None:
    created = stub.http.post(
        "/api/v1/notifications",
        json=make_body(
            template="incident_investigation_update",
            tenant_ids=["acme", "initech"],
            investigation_focus_area="Web UI",
            affected_components=["Web UI", "API"],
            customer_reported_impact="Pages time out",
        ),
    )
    assert created.status_code == 201
    note = created.json()
    assert created.headers["location"] == f"/api/v1/notifications/{note['id']}"
    assert note["status"] == "draft"
    assert note["recipients"] == []
    assert note["sent_at"] is None

    preview = stub.http.post(f"/api/v1/notifications/{note['id']}/preview").json()
    assert preview["subject"] == "GitLab Dedicated: Incident investigation update"
    assert preview["body"].startswith(make_body()["message"] + "\n\n")
    assert "Affected components: Web UI, API\n" in preview["body"]
    assert "Investigation focus area: Web UI\n" in preview["body"]
    assert "Customer reported impact: Pages time out\n" in preview["body"]
    assert "<" not in preview["body"]

    delivery = stub.http.post(f"/api/v1/notifications/{note['id']}/send").json()
    assert delivery["status"] == "sent"
    assert delivery["body"] == preview["body"]
    emails = {(r["tenant_id"], r["email"], r["role"]) for r in delivery["recipients"]}
    assert ("acme", "platform-ops@acme.example", "operational") in emails
    assert ("acme", "dana.whitfield@csm.example", "csm") in emails
    assert ("acme", "ravi.menon@ase.example", "ase") in emails
    assert ("initech", "cto-office@initech.example", "operational") in emails
    assert len(emails) == 2 + 2 + 3 + 2

    stored = stub.http.get(f"/api/v1/notifications/{note['id']}").json()
    assert stored["status"] == "sent"
    assert stored["sent_at"] == delivery["sent_at"]
    assert stored["recipients"] == delivery["recipients"]


def test_a_sent_notification_is_never_sent_again(stub: Any, make_body: Any) -> None:
    note = stub.http.post("/api/v1/notifications", json=make_body()).json()
    assert stub.http.post(f"/api/v1/notifications/{note['id']}/send").status_code == 200
    _problem(stub.http.post(f"/api/v1/notifications/{note['id']}/send"), 409, "already-sent")
    counts = stub.sends()
    assert counts["total"] == 1
    assert counts["duplicates"] == 0


def test_a_second_notification_with_the_same_text_counts_as_a_duplicate(
    stub: Any, make_body: Any
) -> None:
    for key in ("k-1", "k-2"):
        note = stub.http.post("/api/v1/notifications", json=make_body()).json()
        stub.http.post(f"/api/v1/notifications/{note['id']}/send", headers={"Idempotency-Key": key})
    counts = stub.sends(incident_reference="INC-7")
    assert [(s["idempotency_key"], s["count"]) for s in counts["sends"]] == [("k-1", 1), ("k-2", 1)]
    assert counts["duplicates"] == 1


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"message": ""}, "may not be empty"),
        ({"message": "  \n\t "}, "may not be empty"),
        ({"message": "Hello <b>world</b>"}, "plain text"),
        ({"tenant_ids": ["acme", "ghost"]}, "unknown tenant 'ghost'"),
        ({"tenant_ids": []}, "tenant_ids"),
        ({"template": "freeform"}, "template"),
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"affected_components": "Web UI"}, "affected_components"),
        # The first failing field is named, unknown fields before all others.
        ({"template": "freeform", "colour": "red"}, "unknown field 'colour'"),
        ({"tenant_ids": ["acme", "acme"], "message": ""}, "distinct tenant ids"),
        ({"message": "x" * 20001}, "'message' must be a string of at most 20000"),
        ({"investigation_focus_area": "x" * 501}, "'investigation_focus_area'"),
        ({"metadata": {"severity": 1}}, "'metadata'"),
    ],
)
def test_invalid_notifications_are_422_problems(
    shared_stub: Any, make_body: Any, change: dict[str, Any], fragment: str
) -> None:
    doc = _problem(
        shared_stub.http.post("/api/v1/notifications", json=make_body(**change)),
        422,
        "validation-error",
    )
    assert fragment in doc["detail"]


def test_optional_fields_may_be_null(stub: Any, make_body: Any) -> None:
    optional = ("investigation_focus_area", "affected_components", "customer_reported_impact")
    body = make_body(metadata=None, **dict.fromkeys(optional))
    created = stub.http.post("/api/v1/notifications", json=body)
    assert created.status_code == 201
    note = created.json()
    assert note["metadata"] == {}
    assert [note[name] for name in optional] == [None, None, None]


def test_malformed_json_is_a_400_problem(shared_stub: Any) -> None:
    response = shared_stub.http.post(
        "/api/v1/notifications", content=b"{not json", headers={"content-type": "application/json"}
    )
    _problem(response, 400, "invalid-json")


def test_notifications_filter_by_incident_and_tenant_with_cursors(
    stub: Any, make_body: Any
) -> None:
    for ref, tenants in [
        ("INC-1", ["acme"]),
        ("INC-1", ["globex"]),
        ("INC-2", ["acme"]),
        ("INC-1", ["acme", "globex"]),
        ("INC-1", ["acme"]),
    ]:
        stub.http.post(
            "/api/v1/notifications", json=make_body(incident_reference=ref, tenant_ids=tenants)
        )
    seen, cursor = [], None
    while True:
        page = stub.http.get(
            "/api/v1/notifications",
            params={
                "incident_reference": "INC-1",
                "tenant_id": "acme",
                "limit": 2,
                **({"cursor": cursor} if cursor else {}),
            },
        ).json()
        seen += [(n["incident_reference"], tuple(n["tenant_ids"])) for n in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [("INC-1", ("acme",)), ("INC-1", ("acme", "globex")), ("INC-1", ("acme",))]
    assert stub.http.get("/api/v1/notifications", params={"status": "sent"}).json()["data"] == []
    _problem(
        stub.http.get("/api/v1/notifications", params={"status": "lost"}), 400, "invalid-parameter"
    )


# ----------------------------------------------------------------------------- idempotency


def test_replay_with_the_same_key_returns_the_stored_response(stub: Any, make_body: Any) -> None:
    headers = {"Idempotency-Key": "draft-3-r1-acme"}
    first = stub.http.post("/api/v1/notifications", json=make_body(), headers=headers)
    # Same JSON, keys in another order: the same request.
    reordered = json.dumps(dict(reversed(list(make_body().items()))))
    second = stub.http.post(
        "/api/v1/notifications",
        content=reordered,
        headers={**headers, "content-type": "application/json"},
    )
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert second.headers["location"] == first.headers["location"]
    assert len(stub.http.get("/api/v1/notifications").json()["data"]) == 1

    send_headers = {"Idempotency-Key": "draft-3-r1-acme:send"}
    sent = stub.http.post(f"/api/v1/notifications/{first.json()['id']}/send", headers=send_headers)
    again = stub.http.post(f"/api/v1/notifications/{first.json()['id']}/send", headers=send_headers)
    assert sent.status_code == again.status_code == 200
    assert again.json() == sent.json()
    assert stub.sends()["total"] == 1


def test_a_replayed_error_is_the_stored_error(stub: Any, make_body: Any) -> None:
    headers = {"Idempotency-Key": "bad-1"}
    first = stub.http.post("/api/v1/notifications", json=make_body(message=" "), headers=headers)
    second = stub.http.post("/api/v1/notifications", json=make_body(message=" "), headers=headers)
    assert first.status_code == second.status_code == 422
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == PROBLEM


def test_the_same_key_with_another_body_is_422(stub: Any, make_body: Any) -> None:
    headers = {"Idempotency-Key": "k-conflict"}
    assert (
        stub.http.post("/api/v1/notifications", json=make_body(), headers=headers).status_code
        == 201
    )
    other = stub.http.post(
        "/api/v1/notifications", json=make_body(message="Another text."), headers=headers
    )
    _problem(other, 422, "idempotency-key-reused")
    note_id = stub.http.get("/api/v1/notifications").json()["data"][0]["id"]
    # The same key on another endpoint is another request too.
    _problem(
        stub.http.post(f"/api/v1/notifications/{note_id}/send", headers=headers),
        422,
        "idempotency-key-reused",
    )


def test_an_invalid_key_is_a_400_problem(shared_stub: Any, make_body: Any) -> None:
    response = shared_stub.http.post(
        "/api/v1/notifications", json=make_body(), headers={"Idempotency-Key": "a b"}
    )
    _problem(response, 400, "invalid-idempotency-key")


def test_a_key_still_in_flight_is_409_then_replays(stub: Any, make_body: Any) -> None:
    stub.faults(queue=[{"kind": "slow", "match": "POST /api/v1/notifications"}], slow_seconds=1.0)
    headers = {"Idempotency-Key": "k-slow"}
    results: dict[str, httpx.Response] = {}

    def first() -> None:
        results["first"] = stub.http.post(
            "/api/v1/notifications", json=make_body(), headers=headers
        )

    worker = threading.Thread(target=first)
    worker.start()
    # Wait until the first request holds the key (it took the slow fault), then collide.
    while stub.stats()["faults"].get("slow") != 1:
        time.sleep(0.01)
    time.sleep(0.05)
    conflict = None
    deadline = time.monotonic() + 5
    while conflict is None and time.monotonic() < deadline:
        response = stub.http.post("/api/v1/notifications", json=make_body(), headers=headers)
        if response.status_code == 409:
            conflict = response
        else:
            time.sleep(0.02)
    worker.join()
    assert conflict is not None
    _problem(conflict, 409, "idempotency-in-flight")
    assert conflict.headers["retry-after"] == "1"
    assert results["first"].status_code == 201
    replay = stub.http.post("/api/v1/notifications", json=make_body(), headers=headers)
    assert replay.json()["id"] == results["first"].json()["id"]
    assert replay.headers["idempotent-replayed"] == "true"


def test_expired_keys_are_forgotten(stub: Any, make_body: Any) -> None:
    headers = {"Idempotency-Key": "k-old"}
    first = stub.http.post("/api/v1/notifications", json=make_body(), headers=headers).json()
    assert stub.http.post("/_admin/idempotency/expire").json() == {"expired": 1}
    second = stub.http.post("/api/v1/notifications", json=make_body(), headers=headers)
    assert second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first["id"]


# ----------------------------------------------------------------------------- rate limit


def test_rate_limit_answers_429_with_retry_after(stub: Any) -> None:
    assert (
        stub.http.post("/_admin/rate-limit", json={"per_minute": 60, "burst": 2}).status_code == 200
    )
    statuses = [stub.http.get("/api/v1/notification-templates") for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    limited = _problem(statuses[2], 429, "rate-limited")
    assert "60 requests a minute" in limited["detail"]
    assert statuses[2].headers["retry-after"] == "1"
    # Admin endpoints are outside the limit.
    assert stub.stats()["rate_limited"] == 1
    stub.http.post("/_admin/rate-limit", json={"per_minute": None})
    assert stub.http.get("/api/v1/notification-templates").status_code == 200


# ----------------------------------------------------------------------------- faults


@pytest.mark.parametrize(("kind", "status"), [("429", 429), ("500", 500), ("503", 503)])
def test_status_faults(stub: Any, kind: str, status: int) -> None:
    stub.faults(queue=[kind], retry_after=7)
    response = stub.http.get("/api/v1/tenants")
    _problem(response, status, "injected-fault")
    if status != 500:
        assert response.headers["retry-after"] == "7"
    assert stub.http.get("/api/v1/tenants").status_code == 200
    assert stub.stats()["faults"] == {kind: 1}


def test_drop_closes_the_connection_without_a_response(stub: Any) -> None:
    stub.faults(queue=["drop"])
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        stub.http.get("/api/v1/tenants")
    assert stub.http.get("/api/v1/tenants").status_code == 200


def test_reset_resets_the_connection(stub: Any) -> None:
    stub.faults(queue=["reset"])
    with pytest.raises(httpx.ReadError):
        stub.http.get("/api/v1/tenants")
    assert stub.http.get("/api/v1/tenants").status_code == 200


def test_slow_lands_after_the_client_gave_up(stub: Any, make_body: Any) -> None:
    stub.faults(queue=[{"kind": "slow", "match": "POST *"}], slow_seconds=0.6)
    with (
        httpx.Client(
            base_url=stub.url,
            headers={"Authorization": f"Bearer {stub.token}"},
            timeout=0.15,
            verify=stub.tls,
        ) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post("/api/v1/notifications", json=make_body())
    deadline = time.monotonic() + 5
    while not stub.http.get("/api/v1/notifications").json()["data"]:
        assert time.monotonic() < deadline, "the slow request never landed"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("kind", "error"), [("after_commit", httpx.RemoteProtocolError), ("after_commit_500", None)]
)
def test_after_commit_faults_record_the_send_but_fail_the_answer(
    stub: Any, make_body: Any, kind: str, error: type[Exception] | None
) -> None:
    note = stub.http.post("/api/v1/notifications", json=make_body()).json()
    stub.faults(queue=[{"kind": kind, "match": "POST /api/v1/notifications/*/send"}])
    headers = {"Idempotency-Key": "k-commit:send"}
    if error is None:
        _problem(
            stub.http.post(f"/api/v1/notifications/{note['id']}/send", headers=headers),
            500,
            "injected-fault",
        )
    else:
        with pytest.raises(error):
            stub.http.post(f"/api/v1/notifications/{note['id']}/send", headers=headers)
    assert stub.http.get(f"/api/v1/notifications/{note['id']}").json()["status"] == "sent"
    # The retry with the same key gets the stored answer; nothing is sent twice.
    retry = stub.http.post(f"/api/v1/notifications/{note['id']}/send", headers=headers)
    assert retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert stub.sends()["sends"] == [
        {
            "tenant_id": "acme",
            "incident_reference": "INC-7",
            "idempotency_key": "k-commit:send",
            "count": 1,
        }
    ]


def test_random_faults_follow_rates_and_match(stub: Any) -> None:
    stub.faults(rates={"500": 1.0}, match="GET /api/v1/tenants*", seed=3)
    assert stub.http.get("/api/v1/tenants").status_code == 500
    assert stub.http.get("/api/v1/tenants/acme").status_code == 500
    assert stub.http.get("/api/v1/notification-templates").status_code == 200
    assert stub.stats()["faults"] == {"500": 2}
    stub.faults()
    assert stub.http.get("/api/v1/tenants").status_code == 200


def test_bad_fault_configuration_is_a_422_problem(stub: Any) -> None:
    response = stub.http.post("/_admin/faults", json={"rates": {"500": 0.8, "429": 0.5}})
    assert "more than 1" in _problem(response, 422, "validation-error")["detail"]
    response = stub.http.post("/_admin/faults", json={"queue": ["explode"]})
    assert "kind" in _problem(response, 422, "validation-error")["detail"]


# ----------------------------------------------------------------------------- persistence, seeds


def test_state_survives_a_restart_on_the_same_file(tmp_path: Path, make_body: Any) -> None:
    db_path = tmp_path / "sb.db"
    auth = {"Authorization": "Bearer t"}
    with (
        serve_in_thread(db_path, token="t") as url,
        httpx.Client(base_url=url, headers=auth) as http,
    ):
        note = http.post(
            "/api/v1/notifications", json=make_body(), headers={"Idempotency-Key": "k"}
        ).json()
        http.post(f"/api/v1/notifications/{note['id']}/send")
    with (
        serve_in_thread(db_path, token="t") as url,
        httpx.Client(base_url=url, headers=auth) as http,
    ):
        assert http.get(f"/api/v1/notifications/{note['id']}").json()["status"] == "sent"
        assert len(http.get("/api/v1/tenants").json()["data"]) == 5
        replay = http.post(
            "/api/v1/notifications", json=make_body(), headers={"Idempotency-Key": "k"}
        )
        assert replay.headers["idempotent-replayed"] == "true"


def test_a_seed_file_loads_its_tenants(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {
                "tenants": [
                    {
                        "id": "solo",
                        "name": "Solo Ltd",
                        "url": "https://solo.gitlab-dedicated.com",
                        "gitlab_version": "17.5.0",
                        "reference_architecture": "1k",
                        "primary_region": "eu-west-2",
                        "maintenance_window": "apac",
                        "operational_emails": ["ops@solo.example"],
                    }
                ]
            }
        )
    )
    with (
        serve_in_thread(tmp_path / "sb.db", token="t", seed=seed) as url,
        httpx.Client(base_url=url, headers={"Authorization": "Bearer t"}) as http,
    ):
        tenants = http.get("/api/v1/tenants").json()["data"]
    assert [t["id"] for t in tenants] == ["solo"]
    assert tenants[0]["maintenance_window"]["description"] == "APAC: Wednesday 13:00-17:00 UTC"
    assert tenants[0]["csm"] is None


def test_the_bundled_seed_has_a_pubsec_and_a_geo_tenant() -> None:
    from comms.adapters.stub_server import DEFAULT_SEED

    tenants = load_seed(DEFAULT_SEED)
    assert 4 <= len(tenants) <= 5
    assert any(t["pubsec"] for t in tenants)
    assert any(t["geo"] for t in tenants)
    assert {t["maintenance_window"]["id"] for t in tenants} == {"apac", "emea", "amer-1", "amer-2"}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{", "seed.json:1:2"),
        ('{"tenants": {}}', "'tenants' list"),
        ('{"tenants": [{"id": "x y"}]}', "tenant id"),
        (
            '{"tenants": [{"id": "x", "name": "X", "url": "u", "gitlab_version": "1", '
            '"reference_architecture": "1k", "primary_region": "r", "maintenance_window": "mars", '
            '"operational_emails": ["a@b.c"]}]}',
            "maintenance_window",
        ),
    ],
)
def test_bad_seed_files_say_what_is_wrong(tmp_path: Path, content: str, fragment: str) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(content)
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        load_seed(seed)


def test_admin_bulk_tenants_for_benchmarks(stub: Any) -> None:
    tenants = [
        {
            "id": f"bench-{n:03d}",
            "name": f"Bench {n}",
            "url": f"https://bench-{n:03d}.example",
            "gitlab_version": "17.5.0",
            "reference_architecture": "1k",
            "primary_region": "us-east-1",
            "maintenance_window": "amer-1",
            "operational_emails": [f"ops@bench-{n:03d}.example"],
        }
        for n in range(120)
    ]
    assert stub.http.post("/_admin/tenants", json={"tenants": tenants}).json() == {
        "stored": 120,
        "total": 125,
    }
    bad = stub.http.post("/_admin/tenants", json={"tenants": [{"id": "?"}]})
    _problem(bad, 422, "validation-error")
