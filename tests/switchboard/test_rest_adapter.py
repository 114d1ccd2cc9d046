"""The Switchboard REST adapter against the real stub over HTTP, with injected faults.

Every fault scenario ends with the server's own count: exactly one send, no duplicate.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from comms.adapters.rest import (
    Pacer,
    SwitchboardClient,
    SwitchboardConfig,
    SwitchboardError,
    SwitchboardPublisher,
    from_settings,
    make_client,
    template_for,
)
from comms.adapters.retry import RetryPolicy
from comms.errors import ConfigError, NotFoundError, PublishError
from comms.models import Incident, MessageKind, Severity, Status, Tenant
from comms.ports import Publisher, TenantDirectory

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
BODY = (
    "We are investigating errors when loading merge requests on your GitLab Dedicated "
    "instance. Next update by 15:00 UTC."
)


class Sleeps:
    """An injected sleep that records what the adapter asked for, and optionally sleeps."""

    def __init__(self, real: bool = False) -> None:
        self.calls: list[float] = []
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.real:
            time.sleep(seconds)


def _incident(ref: str = "INC-42", status: Status = Status.INVESTIGATING) -> Incident:
    return Incident(
        ref=ref,
        title="Merge requests fail to load",
        severity=Severity.S1,
        status=status,
        tenants=["acme"],
        started_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )


def _tenant(tenant_id: str = "acme") -> Tenant:
    return Tenant(id=tenant_id, name=tenant_id.title())


@pytest.fixture
def http(stub: Any) -> Any:
    with make_client(stub.url, stub.token, timeout=2.0, verify=stub.tls) as client:
        yield client


def _publisher(
    http: httpx.Client, sleeps: Sleeps | None = None, **options: Any
) -> SwitchboardPublisher:
    options.setdefault("backoff_base", 0.01)
    return SwitchboardPublisher(http, sleep=sleeps or Sleeps(), **options)


def _publish(publisher: SwitchboardPublisher, key: str = "d1-r1-acme", **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "tenant": _tenant(),
        "incident": _incident(),
        "subject": "Investigating",
        "body": BODY,
        "idempotency_key": key,
        "draft_id": 1,
        "revision": 1,
        "kind": MessageKind.INVESTIGATION_START,
    }
    args.update(overrides)
    return publisher.publish(**args)


def _find(publisher: SwitchboardPublisher, tenant: str, key: str) -> Any:
    return publisher.find_delivery(
        incident=_incident(), tenant=_tenant(tenant), idempotency_key=key, previous=None
    )


def _exactly_one_send(stub: Any, receipt: Any) -> None:
    counts = stub.sends()
    assert counts["total"] == 1, counts
    assert counts["duplicates"] == 0
    assert counts["sends"][0]["tenant_id"] == receipt.tenant
    note = stub.http.get(f"/api/v1/notifications/{receipt.external_id}").json()
    assert note["status"] == "sent"
    assert note["message"] == BODY


# ----------------------------------------------------------------------------- directory


def test_tenant_directory_follows_cursors_into_our_models(stub: Any, http: httpx.Client) -> None:
    publisher = SwitchboardPublisher(http)
    publisher.api.tenants(page_size=2)  # three pages, same answer
    tenants = {t.id: t for t in publisher.tenants()}
    assert sorted(tenants) == ["acme", "globex", "initech", "stark-federal", "umbrella"]
    assert tenants["stark-federal"].pubsec is True
    assert tenants["globex"].geo is True
    acme = tenants["acme"]
    assert [(c.role, c.email) for c in acme.contacts] == [
        ("operational", "platform-ops@acme.example"),
        ("operational", "gitlab-admins@acme.example"),
        ("csm", "dana.whitfield@csm.example"),
        ("ase", "ravi.menon@ase.example"),
    ]
    assert acme.contacts[2].name == "Dana Whitfield"
    assert acme.aliases == ["acme", "acme.gitlab-dedicated.com"]
    assert acme.url == "https://acme.gitlab-dedicated.com"
    with pytest.raises(NotFoundError, match="no tenant 'ghost'"):
        publisher.api.tenant("ghost")
    assert len(publisher.api.templates()) == 7


# ----------------------------------------------------------------------------- publish


def test_publish_returns_our_receipt(stub: Any, http: httpx.Client) -> None:
    receipt = _publish(_publisher(http), draft_id=7, revision=3)
    assert receipt.channel == "switchboard"
    assert receipt.tenant == "acme"
    assert (receipt.draft_id, receipt.revision) == (7, 3)
    assert receipt.idempotency_key == "d1-r1-acme"
    assert receipt.external_id.startswith("ntf_")
    assert receipt.text_sha256 == hashlib.sha256(BODY.encode()).hexdigest()
    assert receipt.delivered_at.tzinfo is not None
    assert receipt.detail["recipients"] == [
        "platform-ops@acme.example",
        "gitlab-admins@acme.example",
        "dana.whitfield@csm.example",
        "ravi.menon@ase.example",
    ]
    assert receipt.detail["template"] == "incident_investigation_start"
    assert receipt.detail["recovered"] is False
    _exactly_one_send(stub, receipt)
    assert stub.sends()["sends"][0]["idempotency_key"] == "d1-r1-acme:send"


def test_the_publisher_implements_the_ports(http: httpx.Client) -> None:
    publisher: Publisher = SwitchboardPublisher(http)
    directory: TenantDirectory = SwitchboardPublisher(http)
    assert publisher.name == "switchboard"
    assert callable(directory.tenants)


def test_previous_receipts_are_ignored(stub: Any, http: httpx.Client) -> None:
    publisher = _publisher(http)
    first = _publish(publisher, kind=MessageKind.UPDATE)
    # Switchboard has no threads: the next update is a new notification, whatever came before.
    second = _publish(publisher, key="d2-r1-acme", draft_id=2, previous=first)
    assert second.external_id != first.external_id
    assert second.detail["template"] == "incident_investigation_start"
    assert stub.sends()["total"] == 2


def test_publishing_twice_with_one_key_sends_once(stub: Any, http: httpx.Client) -> None:
    publisher = _publisher(http)
    first = _publish(publisher)
    second = _publish(publisher)
    assert second.external_id == first.external_id
    assert second.delivered_at == first.delivered_at
    _exactly_one_send(stub, first)


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("429", "POST /api/v1/notifications/*/send"),
        ("500", "POST /api/v1/notifications"),
        ("500", "POST /api/v1/notifications/*/send"),
        ("503", "POST /api/v1/notifications/*/send"),
        ("drop", "POST /api/v1/notifications/*/send"),
        ("reset", "POST /api/v1/notifications/*/send"),
        ("after_commit", "POST /api/v1/notifications"),
        ("after_commit", "POST /api/v1/notifications/*/send"),
        ("after_commit_500", "POST /api/v1/notifications/*/send"),
    ],
)
def test_each_fault_ends_in_exactly_one_send(
    stub: Any, http: httpx.Client, kind: str, match: str
) -> None:
    stub.faults(queue=[{"kind": kind, "match": match, "times": 2}], retry_after=0)
    sleeps = Sleeps()
    receipt = _publish(_publisher(http, sleeps))
    _exactly_one_send(stub, receipt)
    assert stub.stats()["faults"] == {kind: 2}
    assert len(sleeps.calls) == 2  # one backoff per failed attempt


def test_a_timeout_then_in_flight_409_then_replay_sends_once(stub: Any) -> None:
    # The send sleeps past the client's timeout; the retry finds the key in flight (409)
    # and backs off until the first request has finished, then gets its stored answer.
    stub.faults(
        queue=[{"kind": "slow", "match": "POST /api/v1/notifications/*/send"}], slow_seconds=0.5
    )
    sleeps = Sleeps(real=True)
    with make_client(stub.url, stub.token, timeout=0.15, verify=stub.tls) as impatient:
        receipt = _publish(
            SwitchboardPublisher(impatient, sleep=sleeps, backoff_base=0.1, max_attempts=8)
        )
    _exactly_one_send(stub, receipt)
    assert len(sleeps.calls) >= 2


def test_retry_after_is_honoured(stub: Any, http: httpx.Client) -> None:
    stub.faults(queue=[{"kind": "429", "match": "POST *"}], retry_after=3)
    sleeps = Sleeps()
    receipt = _publish(_publisher(http, sleeps))
    assert sleeps.calls == [3.0]
    _exactly_one_send(stub, receipt)


def test_a_retry_after_beyond_the_limit_is_raised_for_the_caller_to_schedule(
    stub: Any, http: httpx.Client
) -> None:
    stub.faults(queue=[{"kind": "503", "match": "POST *"}], retry_after=600)
    sleeps = Sleeps()
    with pytest.raises(PublishError) as caught:
        _publish(_publisher(http, sleeps, max_retry_after=60))
    assert caught.value.retryable is True
    assert caught.value.retry_after == 600
    assert caught.value.status == 503
    assert sleeps.calls == []
    assert stub.sends()["total"] == 0


def test_giving_up_is_a_retryable_publish_error(stub: Any, http: httpx.Client) -> None:
    stub.faults(queue=[{"kind": "drop", "match": "POST /api/v1/notifications/*/send", "times": 3}])
    with pytest.raises(PublishError, match="gave up after 3 attempts") as caught:
        _publish(_publisher(http, max_attempts=3))
    assert caught.value.channel == "switchboard"
    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert stub.sends()["total"] == 0
    # The caller tries again later with the same key: one send.
    receipt = _publish(_publisher(http))
    _exactly_one_send(stub, receipt)


def test_resume_after_the_server_forgot_its_keys_uses_find_delivery(
    stub: Any, http: httpx.Client
) -> None:
    # The send lands but the answer is lost, and every retry fails too.
    stub.faults(
        queue=[{"kind": "after_commit", "match": "POST /api/v1/notifications/*/send", "times": 2}]
    )
    with pytest.raises(PublishError, match="gave up"):
        _publish(_publisher(http, max_attempts=2))
    assert stub.http.post("/_admin/idempotency/expire").json()["expired"] >= 2
    publisher = _publisher(http)
    found = _find(publisher, "acme", "d1-r1-acme")
    assert found is not None
    assert found.detail["recovered"] is True
    assert found.text_sha256 == hashlib.sha256(BODY.encode()).hexdigest()
    assert (found.draft_id, found.revision) == (1, 1)
    # verify_first does the same inside publish.
    again = _publish(_publisher(http, verify_first=True))
    assert again.external_id == found.external_id
    _exactly_one_send(stub, found)


def test_a_refused_second_send_of_our_notification_is_recovered(
    stub: Any, http: httpx.Client
) -> None:
    publisher = _publisher(http)
    first = _publish(publisher)
    # Only the send keys expire: the create replays our draft, the send of it is refused
    # (409 already-sent), and the adapter reads the notification back instead of failing.
    assert stub.http.post("/_admin/idempotency/expire", json={"match": "*:send"}).json() == {
        "expired": 1
    }
    again = _publish(publisher)
    assert again.external_id == first.external_id
    assert again.detail["recovered"] is True
    assert again.text_sha256 == first.text_sha256
    with pytest.raises(SwitchboardError) as caught:
        publisher.api.send(first.external_id, idempotency_key="another-key")
    assert caught.value.status == 409
    assert caught.value.slug == "already-sent"
    assert caught.value.retryable is False
    _exactly_one_send(stub, first)


def test_find_delivery_ignores_drafts_and_other_keys(stub: Any, http: httpx.Client) -> None:
    publisher = _publisher(http)
    assert _find(publisher, "acme", "d1-r1-acme") is None
    publisher.api.create_notification(
        {
            "template": "incident_resolved",
            "tenant_ids": ["acme"],
            "incident_reference": "INC-42",
            "message": BODY,
        },
        idempotency_key="d1-r1-acme",
    )
    assert _find(publisher, "acme", "d1-r1-acme") is None
    _publish(publisher, key="d1-r2-acme")
    assert _find(publisher, "acme", "d1-r1-acme") is None
    assert _find(publisher, "acme", "d1-r2-acme") is not None
    assert _find(publisher, "globex", "d1-r2-acme") is None


# ----------------------------------------------------------------------------- errors


def test_a_wrong_token_is_not_retryable_and_never_shown(
    stub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with (
        make_client(stub.url, "wrong-secret-token", verify=stub.tls) as client,
        pytest.raises(PublishError) as caught,
    ):
        _publish(_publisher(client))
    assert caught.value.status == 401
    assert caught.value.retryable is False
    assert "check the Switchboard token" in str(caught.value)
    assert "wrong-secret-token" not in str(caught.value)
    assert "wrong-secret-token" not in caplog.text
    assert stub.token not in caplog.text


@pytest.mark.parametrize(
    ("body", "fragment"), [("   ", "may not be empty"), ("<p>Hi</p>", "plain text")]
)
def test_rejected_messages_are_not_retryable(
    stub: Any, http: httpx.Client, body: str, fragment: str
) -> None:
    with pytest.raises(PublishError, match=fragment) as caught:
        _publish(_publisher(http), body=body)
    assert caught.value.status == 422
    assert caught.value.retryable is False


def test_a_key_reused_for_another_text_is_a_clear_error(stub: Any, http: httpx.Client) -> None:
    publisher = _publisher(http)
    _publish(publisher)
    with pytest.raises(PublishError, match="key must change when the text changes") as caught:
        _publish(publisher, body=BODY + " Edited.")
    assert caught.value.status == 422
    assert stub.sends()["total"] == 1


def test_an_unreachable_server_is_a_retryable_error(stub: Any) -> None:
    with (
        socket_port() as port,
        make_client(f"http://127.0.0.1:{port}", "t", timeout=1.0, verify=stub.tls) as client,
    ):
        sleeps = Sleeps()
        with pytest.raises(PublishError, match="cannot reach Switchboard") as caught:
            _publish(_publisher(client, sleeps, max_attempts=2))
    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(sleeps.calls) == 1


class socket_port:  # noqa: N801 - reads like a function at the call site
    """A port on 127.0.0.1 that nothing listens on."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# ----------------------------------------------------------------------------- pacing


def test_pacing_keeps_a_burst_under_the_server_limit(stub: Any, http: httpx.Client) -> None:
    stub.http.post("/_admin/rate-limit", json={"per_minute": 3000, "burst": 5})
    paced = SwitchboardClient(http, rate_per_minute=2700, max_attempts=1)
    started = time.monotonic()
    for _ in range(40):
        paced.request("GET", "/api/v1/notification-templates")
    elapsed = time.monotonic() - started
    assert stub.stats()["rate_limited"] == 0
    assert elapsed >= 39 / 45 * 0.95
    # The same burst unpaced hits the limit: the pacing is what kept us under it.
    unpaced = SwitchboardClient(http, max_attempts=1)

    def burst() -> None:
        for _ in range(40):
            unpaced.request("GET", "/api/v1/notification-templates")

    with pytest.raises(PublishError) as caught:
        burst()
    assert caught.value.status == 429
    assert caught.value.retry_after == 1.0


def test_the_pacer_reserves_slots_in_order() -> None:
    sleeps = Sleeps()
    pacer = Pacer(60, burst=2, clock=lambda: 100.0, sleep=sleeps)
    waits = [pacer.wait() for _ in range(5)]
    assert waits == [0.0, 0.0, 1.0, 2.0, 3.0]
    assert sleeps.calls == [1.0, 2.0, 3.0]


def test_the_pacer_is_shared_safely_between_threads() -> None:
    pacer = Pacer(6000, burst=1)
    started = time.monotonic()
    workers = [threading.Thread(target=lambda: [pacer.wait() for _ in range(10)]) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert time.monotonic() - started >= 39 / 100 * 0.95


# ------------------------------------------------------------------ retry policy (MockTransport)


def _mock(handler: Any) -> httpx.Client:
    return httpx.Client(base_url="http://switchboard.test", transport=httpx.MockTransport(handler))


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    with _mock(lambda request: httpx.Response(200)) as client:
        low = SwitchboardClient(client, backoff_base=0.5, backoff_cap=4.0, jitter=lambda: 0.0)
        high = SwitchboardClient(client, backoff_base=0.5, backoff_cap=4.0, jitter=lambda: 0.999)
    assert [low.policy.backoff(n, None) for n in range(1, 6)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [round(high.policy.backoff(n, None), 2) for n in range(1, 6)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        4.0,
    ]
    assert low.policy.backoff(1, 9.0) == 9.0


def test_the_client_retries_with_the_shared_policy() -> None:
    answers = [
        httpx.Response(503, headers={"Retry-After": "2"}),
        httpx.Response(502),
        httpx.Response(200, json={"data": [], "next_cursor": None}),
    ]
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=3, backoff_base=4.0, sleep=sleeps, jitter=lambda: 0.5)
    with _mock(lambda request: answers.pop(0)) as client:
        api = SwitchboardClient(client, policy=policy, max_attempts=1)  # the policy wins
        assert api.tenants() == []
    # 503: Retry-After 2 s is less than the backoff (3 s), which wins; 502: the backoff, 6 s.
    assert sleeps.calls == [3.0, 6.0]
    assert api.attempts == 3


def test_retry_after_as_an_http_date() -> None:
    answers = [
        httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}),
        httpx.Response(200, json={"data": [], "next_cursor": None}),
    ]
    with _mock(lambda request: answers.pop(0)) as client, pytest.raises(PublishError) as caught:
        SwitchboardClient(client, sleep=Sleeps(), max_retry_after=60).request(
            "GET", "/api/v1/tenants"
        )
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 60


def test_a_post_without_a_key_is_not_repeated_after_an_uncertain_failure() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("idempotency-key", "-"))
        return httpx.Response(
            500,
            json={"type": "x/boom", "title": "Boom", "status": 500, "detail": "boom"},
            headers={"content-type": "application/problem+json"},
        )

    with _mock(handler) as client:
        api = SwitchboardClient(client, sleep=Sleeps(), max_attempts=3)
        with pytest.raises(PublishError, match="boom") as caught:
            api.request("POST", "/api/v1/notifications", json={})
        assert caught.value.retryable is False
        assert seen == ["-"]
        with pytest.raises(PublishError, match="gave up after 3 attempts"):
            api.request("POST", "/api/v1/notifications", json={}, idempotency_key="k")
        assert seen == ["-", "k", "k", "k"]


@pytest.mark.parametrize("status", [429, 503])
def test_a_post_without_a_key_is_repeated_when_it_was_not_processed(status: int) -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(status)
        return httpx.Response(status if len(seen) == 1 else 200, json={})

    sleeps = Sleeps()
    with _mock(handler) as client:
        SwitchboardClient(client, sleep=sleeps, max_attempts=3).request(
            "POST", "/api/v1/notifications", json={}
        )
    assert len(seen) == 2
    assert len(sleeps.calls) == 1


def test_a_post_without_a_key_is_repeated_when_the_connection_was_refused() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={})

    with _mock(handler) as client:
        SwitchboardClient(client, sleep=Sleeps()).request("POST", "/api/v1/notifications")
    assert calls == ["POST", "POST"]


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")]
)
def test_a_post_without_a_key_is_not_repeated_after_a_lost_answer(
    failure: httpx.TransportError,
) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise failure

    with _mock(handler) as client, pytest.raises(PublishError) as caught:
        SwitchboardClient(client, sleep=Sleeps()).request("POST", "/api/v1/notifications")
    assert caught.value.retryable is False
    assert calls == ["POST"]


# ----------------------------------------------------------------------------- templates, config


def test_template_for_kind_and_fallback_by_status() -> None:
    assert template_for(MessageKind.RESOLVED, _incident()) == "incident_resolved"
    assert template_for("mitigation-in-progress", _incident()) == "incident_mitigation_in_progress"
    assert template_for(None, _incident(status=Status.RESOLVED)) == "incident_resolved"
    assert (
        template_for(None, _incident(status=Status.MONITORING)) == "incident_mitigation_in_progress"
    )
    assert template_for(None, _incident()) == "incident_investigation_update"


def test_config_from_table() -> None:
    config = SwitchboardConfig.from_table(
        {"base_url": "http://127.0.0.1:8765/", "token": "from-file", "rate_limit_per_minute": 5700},
        environ={"COMMS_SWITCHBOARD_TOKEN": "from-env"},
    )
    assert config.base_url == "http://127.0.0.1:8765"
    assert config.token == "from-env"
    assert config.rate_limit_per_minute == 5700.0
    assert "from-env" not in repr(config)


def test_from_settings_builds_a_publisher_that_owns_its_client(stub: Any) -> None:
    publisher = from_settings(
        {"base_url": "http://127.0.0.1:9/", "rate_limit_per_minute": 6000, "max_attempts": 2},
        {"COMMS_SWITCHBOARD_URL": stub.url, "COMMS_SWITCHBOARD_TOKEN": stub.token},
    )
    try:
        assert publisher.owns_client is True
        assert str(publisher.api.http.base_url).rstrip("/") == stub.url.rstrip("/")
        assert publisher.api.policy.max_attempts == 2
        assert publisher.api.pacer is not None
        receipt = _publish(publisher)
    finally:
        publisher.close()
    assert publisher.api.http.is_closed
    publisher.close()  # twice is harmless
    _exactly_one_send(stub, receipt)


def test_close_leaves_a_callers_client_open(http: httpx.Client) -> None:
    publisher = SwitchboardPublisher(http)
    publisher.close()
    assert not http.is_closed


def test_from_settings_takes_the_token_from_the_environment() -> None:
    publisher = from_settings(
        {"base_url": "http://127.0.0.1:8765", "token": "from-file"},
        {"COMMS_SWITCHBOARD_TOKEN": "from-env"},
    )
    try:
        assert publisher.api.http.headers["Authorization"] == "Bearer from-env"
    finally:
        publisher.close()


@pytest.mark.parametrize(
    ("table", "environ", "fragment"),
    [
        (
            {},
            {},
            r"^no \[switchboard\] base_url configured; add it to comms.toml "
            r"\(for a local stub: comms switchboard serve\)$",
        ),
        (
            {"rate_limit_per_minute": 60},
            {"COMMS_SWITCHBOARD_TOKEN": "t"},
            "comms switchboard serve",
        ),
        ({}, {"COMMS_SWITCHBOARD_URL": "http://x"}, "no token"),
        ({"base_url": "ftp://x"}, {"COMMS_SWITCHBOARD_TOKEN": "t"}, "base_url must be an http"),
        ({"base_url": "http://x", "token": "t", "colour": 1}, {}, "unknown key 'colour'"),
    ],
)
def test_from_settings_refuses_an_unusable_table(
    table: dict[str, Any], environ: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        from_settings(table, environ)


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({}, "base_url"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": "http://x"}, "no token"),
        ({"base_url": "http://x", "token": "t", "max_attempts": 0}, "max_attempts"),
        ({"base_url": "http://x", "token": "t", "timeout_seconds": "fast"}, "timeout_seconds"),
        ({"base_url": "http://x", "token": "t", "colour": 1}, "unknown key 'colour'"),
    ],
)
def test_bad_config_is_a_config_error(table: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        SwitchboardConfig.from_table(table, environ={})


def test_an_answer_without_the_apis_fields_is_a_retryable_publish_error() -> None:
    # A proxy answering 200 with its own page: whether the send happened is unknown.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/send"):
            return httpx.Response(200, text="<html>maintenance</html>")
        return httpx.Response(201, json={"id": "ntf_1", "status": "draft"})

    with httpx.Client(base_url="http://sb.test", transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(PublishError) as caught:
            _publish(_publisher(http, max_attempts=1))
        assert caught.value.retryable is True
        assert "cannot read" in str(caught.value)
        with pytest.raises(PublishError, match="cannot read"):
            _find(_publisher(http, max_attempts=1), "acme", "d1-r1-acme")
