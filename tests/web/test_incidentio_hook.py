"""``POST /hooks/incidentio`` in ``comms serve``: incident.io's signed webhooks over HTTP.

The app runs over the test's SQLite store with the real clock (the signature library checks
timestamps against it); deliveries are what the incident.io fake sends, signed as incident.io's
sender signs them.  Most tests talk HTTP to the app in process (``web_support.Web``, httpx
over ASGI; Starlette's ``Web`` now wants httpx2); one starts a real ``comms serve``
and posts to it over a socket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_support import Web, add_team, check_answer

from comms.bootstrap import Runtime
from comms.errors import ConfigError
from comms.models import Severity, Status
from comms.web.app import create_app
from tests.incidentio.burst import TENANTS as BURST_TENANTS
from tests.incidentio.burst import make_burst
from tests.incidentio.conftest import SECRET, TENANTS, TOKEN
from tests.incidentio.fake_incidentio import FakeIncidentio, Signer

HOOK = "/hooks/incidentio"

Post = Callable[..., httpx.Response]


@pytest.fixture
def rt(monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The runtime of the test's store, the signing secret in its environment, tenants."""
    monkeypatch.setenv("COMMS_INCIDENTIO_WEBHOOK_SECRET", SECRET)
    monkeypatch.delenv("COMMS_NOW", raising=False)
    with Runtime() as runtime:
        for tenant in TENANTS:
            runtime.raw_store.put_tenant(tenant)
        yield runtime


@pytest.fixture
def client(rt: Runtime) -> Iterator[Web]:
    web = Web(create_app(rt, incidentio=rt.incidentio_receiver()))
    yield web
    web.close()


@pytest.fixture
def incidentio() -> FakeIncidentio:
    """The fake's data and outbox (no server: deliveries are posted by the test)."""
    return FakeIncidentio(token=TOKEN)


@pytest.fixture
def post(client: Web) -> Post:
    """``post(body, at=now, delivery_id=None, headers=None)``: sign and post one body."""
    signer = Signer(SECRET)

    def go(
        body: bytes,
        *,
        at: datetime | None = None,
        delivery_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        signed = signer.headers(body, at=at or datetime.now(UTC), delivery_id=delivery_id)
        answer = client.post(HOOK, content=body, headers={**signed, **(headers or {})})
        check_answer("POST", HOOK, answer)
        return answer

    return go


def _events(rt: Runtime, ref: str) -> list[str]:
    return [e.type for e in rt.raw_store.events(ref)]


def test_a_signed_delivery_is_applied(rt: Runtime, incidentio: FakeIncidentio, post: Post) -> None:
    incidentio.declare("Sign-in failures", severity="Critical", tenants=["Acme Corp"])
    (_, body) = incidentio.outbox[0]

    answer = post(body)

    assert answer.status_code == 200
    assert answer.json() == {
        "ref": "INC-2291",
        "action": "imported",
        "reason": "INC-2291 imported (no change)",
    }
    found = rt.raw_store.get_incident("INC-2291")
    assert (found.title, found.severity, found.tenants) == (
        "Sign-in failures",
        Severity.S1,
        ["acme"],
    )
    assert "incident.linked" in _events(rt, "INC-2291")


def test_no_session_no_csrf_the_signature_is_the_authentication(
    rt: Runtime, incidentio: FakeIncidentio, client: Web
) -> None:
    """Pages need a session and a CSRF token; the hook takes neither, and a cookie or a
    bearer token does not stand in for the signature."""
    add_team(rt)
    incidentio.declare("Sign-in failures", tenants=["acme"])
    (_, body) = incidentio.outbox[0]
    unsigned = client.post(
        HOOK,
        content=body,
        headers={"Authorization": "Bearer comms_web-test-token-of-sam-the-imoc-00000000000"},
    )
    assert unsigned.status_code == 401
    assert unsigned.headers["content-type"] == "application/problem+json"
    assert "missing webhook-id" in unsigned.json()["detail"]
    assert client.client.cookies.get("comms_session") is None
    assert rt.raw_store.list_incidents() == []


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: ({**h, "webhook-signature": "v1,Zm9yZ2Vk"}, b), id="signature"),
        pytest.param(lambda h, b: (h, b.replace(b"Major", b"Minor")), id="body"),
        pytest.param(lambda h, b: ({**h, "webhook-id": "msg_other"}, b), id="delivery-id"),
    ],
)
def test_a_bad_signature_is_401_and_nothing_applied(
    rt: Runtime, incidentio: FakeIncidentio, client: Web, tamper: Any
) -> None:
    incidentio.declare("Sign-in failures", tenants=["acme"])
    (_, body) = incidentio.outbox[0]
    headers, sent = tamper(Signer(SECRET).headers(body, at=datetime.now(UTC)), body)

    answer = client.post(HOOK, content=sent, headers=headers)

    check_answer("POST", HOOK, answer)
    assert answer.status_code == 401
    assert answer.json()["detail"].startswith("signature not verified")
    assert rt.raw_store.list_incidents() == []
    # The genuine delivery, arriving later, is applied: the forgery left no trace.
    genuine = client.post(
        HOOK, content=body, headers=Signer(SECRET).headers(body, at=datetime.now(UTC))
    )
    assert genuine.status_code == 200


def test_another_secret_is_401(rt: Runtime, incidentio: FakeIncidentio, client: Web) -> None:
    incidentio.declare("Sign-in failures", tenants=["acme"])
    (_, body) = incidentio.outbox[0]
    other = Signer("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")
    answer = client.post(HOOK, content=body, headers=other.headers(body, at=datetime.now(UTC)))
    assert answer.status_code == 401
    assert rt.raw_store.list_incidents() == []


def test_a_stale_timestamp_is_401(rt: Runtime, incidentio: FakeIncidentio, post: Post) -> None:
    incidentio.declare("Sign-in failures", tenants=["acme"])
    (_, body) = incidentio.outbox[0]

    old = post(body, at=datetime.now(UTC) - timedelta(minutes=10))
    ahead = post(body, at=datetime.now(UTC) + timedelta(minutes=10))

    assert (old.status_code, ahead.status_code) == (401, 401)
    assert old.json()["detail"].startswith("stale delivery: signed ")
    assert rt.raw_store.list_incidents() == []


def test_a_replay_is_acknowledged_not_applied_twice(
    rt: Runtime, incidentio: FakeIncidentio, post: Post
) -> None:
    declared = incidentio.declare("Sign-in failures", severity="Major", tenants=["acme"])
    incidentio.update(declared["id"], severity="Critical")
    created, raised = (body for _, body in incidentio.outbox)

    first = post(created, delivery_id="msg_created")
    second = post(raised, delivery_id="msg_raised")
    logged = _events(rt, "INC-2291")
    again = [post(created, delivery_id="msg_created"), post(raised, delivery_id="msg_raised")]

    assert (first.status_code, second.status_code) == (200, 200)
    assert [a.status_code for a in again] == [204, 204]
    assert [a.content for a in again] == [b"", b""]
    assert _events(rt, "INC-2291") == logged
    assert rt.raw_store.get_incident("INC-2291").severity is Severity.S1


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "malformed body: "),
        (b"[]", "malformed body: body is not a JSON object"),
        (b'{"event_type": 7}', "malformed body: body.event_type is missing or not a string"),
        (
            b'{"event_type": "public_incident.incident_created_v2", '
            b'"public_incident.incident_created_v2": {"id": "x"}}',
            "malformed body: public_incident.incident_created_v2.reference is missing",
        ),
    ],
)
def test_a_malformed_body_is_400(rt: Runtime, post: Post, body: bytes, detail: str) -> None:
    answer = post(body)
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(detail)
    assert rt.raw_store.list_incidents() == []


def test_an_older_update_arriving_late_is_ignored(
    rt: Runtime, incidentio: FakeIncidentio, post: Post
) -> None:
    declared = incidentio.declare("Sign-in failures", severity="Major", tenants=["acme"])
    incidentio.update(declared["id"], status="Fixing")
    incidentio.update(declared["id"], status="Monitoring", severity="Critical")
    created, fixing, monitoring = (body for _, body in incidentio.outbox)

    answers = [post(created), post(monitoring), post(fixing)]

    assert [a.status_code for a in answers] == [200, 200, 204]
    found = rt.raw_store.get_incident("INC-2291")
    assert (found.status, found.severity) == (Status.MONITORING, Severity.S1)
    assert "incident.status" in _events(rt, "INC-2291")


def test_an_event_comms_does_not_use_is_acknowledged(post: Post) -> None:
    body = json.dumps(
        {
            "event_type": "public_incident.follow_up_created_v1",
            "public_incident.follow_up_created_v1": {},
        }
    ).encode()
    assert post(body).status_code == 204


def test_a_body_over_1_mib_is_413(rt: Runtime, client: Web) -> None:
    body = b'{"event_type": "' + b"x" * (1024 * 1024) + b'"}'
    answer = client.post(
        HOOK, content=body, headers=Signer(SECRET).headers(b"{}", at=datetime.now(UTC))
    )
    check_answer("POST", HOOK, answer)
    assert answer.status_code == 413


def test_without_the_secret_the_hook_is_503_and_applies_nothing(
    rt: Runtime, incidentio: FakeIncidentio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMMS_INCIDENTIO_WEBHOOK_SECRET")
    assert rt.incidentio_receiver() is None
    incidentio.declare("Sign-in failures", tenants=["acme"])
    (_, body) = incidentio.outbox[0]
    web = Web(create_app(rt))
    try:
        answer = web.post(
            HOOK, content=body, headers=Signer(SECRET).headers(body, at=datetime.now(UTC))
        )
    finally:
        web.close()
    check_answer("POST", HOOK, answer)
    assert answer.status_code == 503
    assert "COMMS_INCIDENTIO_WEBHOOK_SECRET" in answer.json()["detail"]
    assert rt.raw_store.list_incidents() == []


def test_a_secret_that_is_not_whsec_is_a_config_error(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_INCIDENTIO_WEBHOOK_SECRET", "whsec_not base64!")
    with pytest.raises(ConfigError, match=r"^COMMS_INCIDENTIO_WEBHOOK_SECRET: .*whsec_"):
        rt.incidentio_receiver()


def test_a_shuffled_burst_ends_in_each_incident_s_last_state(
    rt: Runtime, incidentio: FakeIncidentio, client: Web
) -> None:
    from comms.models import Tenant

    for name in BURST_TENANTS:
        rt.raw_store.put_tenant(Tenant(id=name, name=f"Tenant {name[-3:]}"))
    burst = make_burst(
        incidentio, Signer(SECRET), now=datetime.now(UTC), incidents=20, deliveries=100
    )

    answers = [client.post(HOOK, content=b, headers=h).status_code for h, b in burst.deliveries]

    assert set(answers) <= {200, 204}
    assert answers.count(204) >= burst.replays
    held = {
        i.ref: (i.title, i.severity, i.status, i.tenants) for i in rt.raw_store.list_incidents()
    }
    assert held == burst.expected


@pytest.mark.slow
def test_a_real_comms_serve_takes_webhooks(tmp_path: Path) -> None:
    with Runtime() as rt:
        add_team(rt)
        for tenant in TENANTS:
            rt.raw_store.put_tenant(tenant)
    (tmp_path / "comms.toml").write_text('[serve]\nport = 0\nhost = "127.0.0.1"\n')
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COMMS_INCIDENTIO_WEBHOOK_SECRET": SECRET}
    env.pop("COMMS_NOW", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "comms", "serve", "--log-level", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    incidentio = FakeIncidentio(token=TOKEN)
    declared = incidentio.declare("Sign-in failures", severity="Major", tenants=["acme"])
    incidentio.update(declared["id"], severity="Critical")
    created, raised = (body for _, body in incidentio.outbox)
    signer = Signer(SECRET)
    try:
        url, lines = "", []
        deadline = time.monotonic() + 30
        assert process.stderr is not None
        while time.monotonic() < deadline and not url:
            line = process.stderr.readline()
            lines.append(line)
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:"), lines
        assert "incident.io webhooks: POST /hooks/incidentio\n" in lines
        with httpx.Client(base_url=url, timeout=10) as http:

            def post(body: bytes, delivery_id: str, secret_signer: Signer = signer) -> int:
                headers = secret_signer.headers(body, at=datetime.now(UTC), delivery_id=delivery_id)
                return http.post(HOOK, content=body, headers=headers).status_code

            forged = Signer("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")
            statuses = [
                post(created, "msg_a", forged),
                post(raised, "msg_b"),
                post(created, "msg_a"),
                post(created, "msg_a"),
                post(b"{", "msg_c"),
            ]
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    # forged: 401; the update first, then the older created event (ignored); a replay; junk
    assert statuses == [401, 200, 204, 204, 400]
    with Runtime() as rt:
        found = rt.raw_store.get_incident("INC-2291")
        assert (found.title, found.severity) == ("Sign-in failures", Severity.S1)
    assert '"POST /hooks/incidentio" 200' in err
    assert "incident.io delivery msg_b: 200 INC-2291 imported" in err
    assert SECRET not in err


def test_comms_serve_refuses_a_secret_that_is_not_whsec(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from comms.cli import cli

    add_team(rt)
    monkeypatch.setenv("COMMS_INCIDENTIO_WEBHOOK_SECRET", "not-a-signing-secret")
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 3
    assert result.output.startswith(
        "Error: COMMS_INCIDENTIO_WEBHOOK_SECRET: the incident.io webhook signing secret is "
        "not a whsec_… secret"
    )
