"""Who may see and do what: sign-in, session cookies, CSRF, the trusted proxy, rate limits,
security headers, and that no token ever leaves in a page, a header or a log line."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from web_support import NOW, TEAM, Web, bearer, check_answer, form_value, open_draft, token

from comms.bootstrap import Runtime
from comms.identity import hash_token
from comms.web.app import create_app
from comms.web.config import ServeConfig, parse_networks
from comms.web.security import RateLimiter

WebClient = Callable[..., Web]
MakeApp = Callable[..., Any]
CLEAN = "Users cannot sign in to the web interface."


def _cookie(response: Any) -> str:
    return response.headers.get("set-cookie", "")


def test_signing_in_sets_a_locked_down_session_cookie(rt: Runtime, web: WebClient) -> None:
    browser = web()
    answer = browser.sign_in("sam")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    cookie = _cookie(answer)
    assert cookie.startswith("comms_session=v1.")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    assert browser.get("/").status_code == 200


def test_over_https_the_cookie_is_secure_and_host_only(
    rt: Runtime, web: WebClient, make_app: MakeApp
) -> None:
    app = make_app(ServeConfig(public_url="https://comms.example.com"))
    browser = web(app, origin="https://comms.example.com")
    answer = browser.sign_in("sam")
    cookie = _cookie(answer)
    assert cookie.startswith("__Host-comms_session=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "Path=/" in cookie
    assert "strict-transport-security" in answer.headers
    assert browser.get("/").status_code == 200
    # Forwarded as HTTPS by a trusted proxy: Secure too, without a public URL; the same
    # header from anyone else changes nothing.
    proxied = make_app(ServeConfig(trusted_proxies=parse_networks(["10.0.0.5"])))
    https = {"X-Forwarded-Proto": "https"}
    behind = web(proxied, "10.0.0.5").get("/sign-in", headers=https)
    assert _cookie(behind).startswith("__Host-comms_session=")
    assert "Secure" in _cookie(behind)
    direct = web(proxied, "10.0.0.6").get("/sign-in", headers=https)
    assert _cookie(direct).startswith("comms_session=")
    assert "Secure" not in _cookie(direct)


def test_a_wrong_token_is_401_and_starts_no_session(rt: Runtime, web: WebClient) -> None:
    browser = web()
    answer = browser.sign_in(secret="comms_not-a-token-of-anyone")
    assert answer.status_code == 401
    assert "that token is not a valid comms token" in answer.text
    assert "comms_not-a-token-of-anyone" not in answer.text
    assert browser.get("/").status_code == 303


def test_pages_without_a_session_go_to_sign_in(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    answer = web().get(f"/drafts/{draft.id}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/sign-in?next=/drafts/{draft.id}"
    # After signing in, back to where it was going; never to another site.
    browser = web()
    csrf = browser.csrf(f"/sign-in?next=/drafts/{draft.id}")
    back = browser.post(
        "/sign-in", data={"csrf": csrf, "token": token("sam"), "next": f"/drafts/{draft.id}"}
    )
    assert back.headers["location"] == f"/drafts/{draft.id}"
    other = web()
    csrf = other.csrf("/sign-in")
    away = other.post(
        "/sign-in", data={"csrf": csrf, "token": token("sam"), "next": "//evil.example/x"}
    )
    assert away.headers["location"] == "/"
    from comms.web.context import safe_next

    for target in ("/\t/evil.example", "/\\evil.example", "https://evil.example", "x", ""):
        assert safe_next(target) == "/", target
    assert safe_next("/drafts/3") == "/drafts/3"


def test_a_forged_cookie_is_403(rt: Runtime, web: WebClient) -> None:
    browser = web()
    browser.sign_in("sam")
    genuine = browser.client.cookies["comms_session"]
    version, payload, signature = genuine.split(".")
    import base64
    import json

    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    fields["u"] = "ana"  # promote oneself to admin
    forged_payload = (
        base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode("ascii")
    )
    for forged in (f"{version}.{forged_payload}.{signature}", "v1.e30.bad", "garbage"):
        attacker = web()
        attacker.client.cookies.set("comms_session", forged)
        answer = attacker.get("/")
        assert answer.status_code == 403, forged
        assert "not one this server made" in answer.text
        assert "comms_session=" in _cookie(answer)  # dropped
        # The API does not read cookies at all: no bearer token, 401.
        assert attacker.get("/api/queue").status_code == 401


def test_forms_without_their_csrf_token_are_403(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    browser = web()
    browser.sign_in("sam")
    for data in (
        {"revision": "1"},
        {"revision": "1", "csrf": ""},
        {"revision": "1", "csrf": "x" * 43},
    ):
        answer = browser.post(f"/drafts/{draft.id}/approve", data=data)
        assert answer.status_code == 403, data
        assert "security token" in answer.text
    # Another session's token is not this one's.
    other = web()
    other.sign_in("ana")
    theirs = other.csrf(f"/drafts/{draft.id}")
    assert (
        browser.post(
            f"/drafts/{draft.id}/approve", data={"revision": "1", "csrf": theirs}
        ).status_code
        == 403
    )
    # The sign-in form too (no login CSRF), and signing out.
    fresh = web()
    assert fresh.post("/sign-in", data={"token": token("sam")}).status_code == 403
    assert browser.post("/sign-out", data={}).status_code == 403
    assert rt.raw_store.reviews(draft.id) == []


def test_signing_out_ends_the_session(rt: Runtime, web: WebClient) -> None:
    browser = web()
    browser.sign_in("sam")
    csrf = browser.csrf("/")
    out = browser.post("/sign-out", data={"csrf": csrf})
    assert out.status_code == 303
    assert browser.get("/").status_code == 303


def test_a_rotated_token_or_disabled_user_ends_sessions_at_once(
    rt: Runtime, web: WebClient
) -> None:
    sam, ana = web(), web()
    sam.sign_in("sam")
    ana.sign_in("ana")
    later = NOW.replace(minute=45)
    rt.raw_store.set_user_token("sam", token_hash=hash_token("comms_new"), now=later, actor="sam")
    ended = sam.get("/")
    assert ended.status_code == 401
    assert "token was changed" in ended.text
    rt.raw_store.set_user_disabled("ana", disabled=True, now=later, actor="ana")
    gone = ana.get("/")
    assert gone.status_code == 401
    assert "disabled" in gone.text
    assert web().sign_in(secret="comms_new").status_code == 303


def test_sessions_expire(rt: Runtime, web: WebClient, make_app: MakeApp) -> None:
    clock = [1_000_000.0]
    browser = web(make_app(wall=lambda: clock[0]))
    browser.sign_in("sam")
    clock[0] += 11 * 3600
    assert browser.get("/").status_code == 200
    clock[0] += 2 * 3600
    assert browser.get("/").status_code == 401


def test_two_servers_on_one_database_serve_the_same_sessions(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    with Runtime(clock=lambda: NOW) as other_process:
        first, second = create_app(rt), create_app(other_process)
        browser = web(first)
        browser.sign_in("sam")
        csrf = browser.csrf(f"/drafts/{draft.id}")
        moved = web(second)
        moved.client.cookies.set("comms_session", browser.client.cookies["comms_session"])
        assert moved.get("/").status_code == 200
        # The CSRF token one server put in the form is good at the other.
        answer = moved.post(
            f"/drafts/{draft.id}/approve",
            data={"csrf": csrf, "revision": "1", "channel": "switchboard"},
        )
        assert answer.status_code == 303, answer.text


def test_the_proxy_header_counts_only_from_trusted_proxies(
    rt: Runtime, web: WebClient, make_app: MakeApp
) -> None:
    app = make_app(
        ServeConfig(trusted_proxies=parse_networks(["10.0.0.0/24"]), proxy_header="X-WEBAUTH-USER")
    )
    named = {"X-WEBAUTH-USER": "sam"}
    stranger = web(app, "203.0.113.9")
    ignored = stranger.get("/", headers=named)
    assert ignored.status_code == 303  # to the sign-in page: the header was not believed
    # Not even with the proxy's address claimed in X-Forwarded-For.
    spoofed = stranger.get("/", headers={**named, "X-Forwarded-For": "10.0.0.7"})
    assert spoofed.status_code == 303
    proxy = web(app, "10.0.0.7")
    page = proxy.get("/", headers=named)
    assert page.status_code == 200
    assert ">sam<" in page.text
    # The forms work behind the proxy too (their CSRF token is the user's).
    draft = open_draft(rt, CLEAN)
    csrf = form_value(proxy.get(f"/drafts/{draft.id}", headers=named).text, "csrf")
    done = proxy.post(
        f"/drafts/{draft.id}/approve",
        data={"csrf": csrf, "revision": "1", "channel": "switchboard"},
        headers=named,
    )
    assert done.status_code == 303, done.text
    unknown = proxy.get("/", headers={"X-WEBAUTH-USER": "mallory"})
    assert unknown.status_code == 401
    # A custom header name, and no proxy configured: never believed.
    custom = make_app(
        ServeConfig(trusted_proxies=parse_networks(["10.0.0.7"]), proxy_header="X-Forwarded-User")
    )
    assert web(custom, "10.0.0.7").get("/", headers={"X-Forwarded-User": "sam"}).status_code == 200
    assert web(make_app(), "10.0.0.7").get("/", headers=named).status_code == 303


def test_a_trusted_proxy_names_nobody_unless_sign_in_by_header_is_on(
    web: WebClient, make_app: MakeApp
) -> None:
    """Trusting a TLS-terminating proxy for addresses must not let every client that
    sends X-WEBAUTH-USER through it act as that user (found in review: admin by header)."""
    app = make_app(ServeConfig(trusted_proxies=parse_networks(["10.0.0.7"])))
    proxy = web(app, "10.0.0.7")
    for header in ("X-WEBAUTH-USER", "x-webauth-user"):
        assert proxy.get("/", headers={header: "ana"}).status_code == 303


def test_sign_in_attempts_are_rate_limited_per_address(
    rt: Runtime, web: WebClient, make_app: MakeApp
) -> None:
    clock = [0.0]
    app = make_app(limiter=RateLimiter(limit=10, window=60, clock=lambda: clock[0]))
    guesser = web(app, "198.51.100.4")
    csrf = guesser.csrf("/sign-in")
    for attempt in range(10):
        answer = guesser.post("/sign-in", data={"csrf": csrf, "token": f"comms_guess{attempt}"})
        assert answer.status_code == 401
    blocked = guesser.post("/sign-in", data={"csrf": csrf, "token": token("sam")})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) == 60
    assert "too many sign-in attempts" in blocked.text
    # Another address is not held up; the first is let in again after the window.
    assert web(app, "198.51.100.5").sign_in("sam").status_code == 303
    clock[0] += 61
    assert guesser.post("/sign-in", data={"csrf": csrf, "token": token("sam")}).status_code == 303


def test_signing_out_ends_the_session_everywhere(rt: Runtime, web: WebClient) -> None:
    """A copied cookie is refused after sign-out, by this server and by another one on the
    same database (issue 9: the browser forgot the cookie, the server did not)."""
    browser, laptop, ana = web(), web(), web()
    browser.sign_in("sam")
    laptop.sign_in("sam")
    ana.sign_in("ana")
    copied = browser.client.cookies["comms_session"]
    with Runtime(clock=lambda: NOW) as other_process:
        elsewhere = web(create_app(other_process))
        elsewhere.client.cookies.set("comms_session", copied)
        assert elsewhere.get("/").status_code == 200
        assert "Sign out everywhere" in browser.get("/").text  # what the button does
        out = browser.post("/sign-out", data={"csrf": browser.csrf("/")})
        assert out.status_code == 303
        thief = web()
        thief.client.cookies.set("comms_session", copied)
        for client in (thief, elsewhere, laptop):
            ended = client.get("/")
            assert ended.status_code == 401, ended.text[:300]
            assert "signed out" in ended.text
        # Only sam's sessions: ana stays signed in; sam signs in again, anywhere.
        assert ana.get("/").status_code == 200
        assert browser.sign_in("sam").status_code == 303
        assert browser.get("/").status_code == 200
        assert elsewhere.sign_in("sam").status_code == 303
        assert browser.get("/").status_code == 200


def test_disabling_and_enabling_a_user_does_not_bring_their_sessions_back(
    rt: Runtime, web: WebClient
) -> None:
    sam = web()
    sam.sign_in("sam")
    copied = sam.client.cookies["comms_session"]
    rt.raw_store.set_user_disabled("sam", disabled=True, now=NOW, actor="ana")
    assert sam.get("/").status_code == 401
    rt.raw_store.set_user_disabled("sam", disabled=False, now=NOW, actor="ana")
    again = web()
    again.client.cookies.set("comms_session", copied)
    ended = again.get("/")
    assert ended.status_code == 401
    assert "sign in again" in ended.text
    # Enabled, sam signs in afresh.
    assert again.sign_in("sam").status_code == 303
    assert again.get("/").status_code == 200


def test_failed_bearer_tokens_are_rate_limited_per_address(
    rt: Runtime, web: WebClient, make_app: MakeApp
) -> None:
    clock = [0.0]
    app = make_app(limiter=RateLimiter(limit=10, window=60, clock=lambda: clock[0]))
    guesser = web(app, "198.51.100.4")
    # Requests with the right token are never counted, however many.
    for _ in range(25):
        assert guesser.get("/api/queue", headers=bearer("sam")).status_code == 200
    for attempt in range(10):
        wrong = {"Authorization": f"Bearer comms_guess{attempt}"}
        assert guesser.get("/api/queue", headers=wrong).status_code == 401
    blocked = guesser.get("/api/queue", headers=bearer("sam"))
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) == 60
    assert blocked.json()["detail"] == (
        "too many wrong bearer tokens from your address; wait 60 seconds"
    )
    check_answer("GET", "/api/queue", blocked)
    posted = guesser.post(
        "/api/drafts/1/approve", json={"revision": 1}, headers={"Authorization": "Bearer x"}
    )
    assert posted.status_code == 429
    # No token at all is a plain 401, not an attempt; another address is not held up; the
    # sign-in form keeps its own count; after the window the first is let in again.
    assert web(app, "198.51.100.4").get("/api/queue").status_code == 401
    assert web(app, "198.51.100.5").get("/api/queue", headers=bearer("sam")).status_code == 200
    assert web(app, "198.51.100.4").sign_in("sam").status_code == 303
    clock[0] += 61
    assert guesser.get("/api/queue", headers=bearer("sam")).status_code == 200


def test_an_ipv4_client_is_one_address_however_the_server_sees_it(
    web: WebClient, make_app: MakeApp
) -> None:
    """A server on ``::`` sees an IPv4 client as ``::ffff:a.b.c.d``: both forms count as
    one address, so switching forms does not reset the count."""
    app = make_app(limiter=RateLimiter(limit=10, window=60, clock=lambda: 0.0))
    for attempt in range(10):
        seen_as = "203.0.113.9" if attempt % 2 else "::ffff:203.0.113.9"
        wrong = {"Authorization": f"Bearer comms_guess{attempt}"}
        assert web(app, seen_as).get("/api/queue", headers=wrong).status_code == 401
    assert web(app, "203.0.113.9").get("/api/queue", headers=bearer("sam")).status_code == 429
    assert (
        web(app, "::ffff:203.0.113.9").get("/api/queue", headers=bearer("sam")).status_code == 429
    )


@pytest.mark.parametrize(
    ("trusted", "peer", "hop"),
    [
        ("127.0.0.1", "::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("127.0.0.1", "127.0.0.1", "::ffff:127.0.0.1"),
        ("127.0.0.0/8", "::ffff:127.0.0.1", "127.0.0.2"),
        ("10.0.0.0/24", "::ffff:10.0.0.7", "::ffff:10.0.0.8"),
        ("::ffff:10.0.0.7", "10.0.0.7", "10.0.0.7"),
        ("::ffff:10.0.0.0/120", "10.0.0.7", "::ffff:10.0.0.8"),
        ("::ffff:10.0.0.0/120", "::ffff:10.0.0.7", "10.0.0.8"),
    ],
)
def test_an_ipv4_proxy_is_trusted_whether_seen_as_ipv4_or_ipv4_mapped_ipv6(
    web: WebClient,
    make_app: MakeApp,
    caplog: pytest.LogCaptureFixture,
    trusted: str,
    peer: str,
    hop: str,
) -> None:
    """A server listening on ``::`` sees an IPv4 proxy as ``::ffff:a.b.c.d`` (issue 9)."""
    caplog.set_level(logging.INFO, logger="comms.web.access")
    config = ServeConfig(trusted_proxies=parse_networks([trusted]), proxy_header="X-WEBAUTH-USER")
    app = make_app(config)
    named = {"X-WEBAUTH-USER": "sam"}
    page = web(app, peer).get("/", headers=named)
    assert page.status_code == 200, page.text[:300]
    assert ">sam<" in page.text
    # The client is the nearest hop the proxies did not add, whichever form they wrote.
    caplog.clear()
    forwarded = {**named, "X-Forwarded-For": f"203.0.113.9, {hop}"}
    assert web(app, peer).get("/", headers=forwarded).status_code == 200
    assert [r.getMessage().split()[0] for r in caplog.records] == ["203.0.113.9"]
    # Anyone else's header is still ignored, in either form.
    for stranger in ("203.0.113.9", "::ffff:203.0.113.9", "::ffff:10.0.1.7"):
        assert web(app, stranger).get("/", headers=named).status_code == 303, stranger


@pytest.mark.parametrize(
    "path", ["/", "/sign-in", "/api/queue", "/api/health", "/openapi.json", "/nowhere"]
)
def test_every_answer_has_the_security_headers(rt: Runtime, web: WebClient, path: str) -> None:
    answer = web().get(path)
    csp = answer.headers["content-security-policy"]
    for directive in (
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert "script-src" not in csp  # no script at all
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "no-store"


def test_the_stylesheet_is_served_and_cacheable(rt: Runtime, web: WebClient) -> None:
    css = web().get("/static/comms.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "max-age" in css.headers["cache-control"]
    assert "@import" not in css.text
    assert "url(http" not in css.text


def test_a_path_cannot_write_a_log_line_of_its_own(
    web: WebClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="comms.web")
    forged = "/nope%0A2026-11-30 10:20:21,295 INFO comms.web.access: 10.9.9.9 approved"
    web().get(forged)
    lines = [r.getMessage() for r in caplog.records]
    assert any("/nope\\x0a2026-11-30" in line for line in lines), lines
    assert not any("\n" in line for line in lines)


def test_no_token_in_any_answer_or_log_line(
    rt: Runtime, web: WebClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="comms.web")
    draft = open_draft(rt, "Users on web-03 cannot sign in.")
    answers = []
    browser = web()
    answers.append(browser.get("/sign-in?next=/"))
    answers.append(browser.sign_in(secret="comms_wrong-token-0123456789"))
    answers.append(browser.sign_in("sam"))
    for path in ("/", f"/drafts/{draft.id}", f"/incidents/{draft.incident_ref}"):
        answers.append(browser.get(path))
    api = web()
    for path in ("/api/queue", f"/api/drafts/{draft.id}", f"/api/incidents/{draft.incident_ref}"):
        answers.append(api.get(path, headers=bearer("sam")))
    answers.append(api.get("/api/queue", headers={"Authorization": "Bearer comms_wrong-42"}))
    secrets = [t for _, t in TEAM.values()] + ["comms_wrong-token-0123456789", "comms_wrong-42"]
    secrets += [hash_token(t) for t in secrets]
    for answer in answers:
        shown = answer.text + repr(dict(answer.headers))
        for secret in secrets:
            assert secret not in shown, (answer.request.url, secret)
    lines = [r.getMessage() for r in caplog.records]
    assert any('"GET /api/queue" 200' in line and line.endswith(" sam") for line in lines)
    assert any('"GET /sign-in" 200' in line for line in lines)
    for line in lines:
        assert "?" not in line  # no query string
        for secret in secrets:
            assert secret not in line
