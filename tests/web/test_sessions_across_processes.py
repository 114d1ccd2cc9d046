"""Sessions and trusted proxies with real ``comms serve`` processes (issue 9): signing out at
one server ends the session at every other server on the same database, which keeps no
session state of its own; and a server listening on ``::`` sees an IPv4 proxy as an
IPv4-mapped IPv6 peer, which ``--trusted-proxy 127.0.0.1`` must still trust."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path

import httpx
import pytest
from web_support import NOW, add_team, form_value, token

from comms.bootstrap import Runtime
from tests.contract.backends import postgres_schema

pytestmark = pytest.mark.slow


@contextmanager
def serving(*options: str) -> Iterator[str]:
    """A ``comms serve`` process on the test's ``COMMS_DATABASE_URL`` (a free port); its
    address, until the block ends and the process stops."""
    process = subprocess.Popen(
        [sys.executable, "-m", "comms", "serve", "--port", "0", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url, seen = "", []
        deadline = time.monotonic() + 30
        assert process.stderr is not None
        while time.monotonic() < deadline and not url:
            line = process.stderr.readline()
            seen.append(line)
            if not line and process.poll() is not None:
                break
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].split()[0]
        assert url, "".join(seen)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def _database(kind: str) -> AbstractContextManager[str | None]:
    if kind == "sqlite":
        return nullcontext(None)
    if not os.environ.get("COMMS_TEST_POSTGRES_URL"):
        pytest.skip("COMMS_TEST_POSTGRES_URL is not set")
    return postgres_schema()


def _sign_in(client: httpx.Client, name: str) -> None:
    csrf = form_value(client.get("/sign-in").text, "csrf")
    answer = client.post("/sign-in", data={"csrf": csrf, "token": token(name), "next": "/"})
    assert answer.status_code == 303, answer.text[:300]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_signing_out_at_one_server_ends_the_session_at_another(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(_database(kind))
        if url is not None:
            monkeypatch.setenv("COMMS_DATABASE_URL", url)
        with Runtime(clock=lambda: NOW) as rt:
            add_team(rt)
        first, second = stack.enter_context(serving()), stack.enter_context(serving())
        browser = stack.enter_context(httpx.Client(base_url=first, timeout=10))
        _sign_in(browser, "sam")
        cookie = browser.cookies["comms_session"]
        copy = stack.enter_context(httpx.Client(base_url=second, timeout=10))
        copy.cookies.set("comms_session", cookie)
        assert copy.get("/").status_code == 200
        csrf = form_value(browser.get("/").text, "csrf")
        assert browser.post("/sign-out", data={"csrf": csrf}).status_code == 303
        ended = copy.get("/")
        assert ended.status_code == 401
        assert "signed out" in ended.text


def test_a_server_on_ipv6_trusts_its_ipv4_proxy_seen_as_ipv4_mapped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    if not socket.has_dualstack_ipv6():
        pytest.skip("no dual-stack IPv6 here")
    with Runtime(clock=lambda: NOW) as rt:
        add_team(rt)
    options = ("--host", "::", "--trusted-proxy", "127.0.0.1", "--proxy-header", "X-WEBAUTH-USER")
    with serving(*options) as url:
        port = url.rsplit(":", 1)[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as proxy:
            page = proxy.get("/", headers={"X-WEBAUTH-USER": "sam"})
    assert page.status_code == 200, page.text[:300]
    assert ">sam<" in page.text
