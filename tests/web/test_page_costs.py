"""What the pages cost and what they keep: the queue's rows are rendered once per distinct
content and kept (never stale, never another viewer's), the store is read a fixed number
of times whatever the queue's length, a draft page reads each thing once, and responses
are not held back by Nagle's algorithm.

The load test itself is ``benchmarks/serve_load.py``.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from web_support import NOW, Web, form_value, open_draft, redraft

from comms.bootstrap import Runtime
from comms.models import Severity
from comms.web.app import create_app
from comms.web.server import bind

WebClient = Callable[..., Web]
CLEAN = "Users cannot sign in to the web interface."
LEAKY = "Users on web-03 cannot sign in to the web interface."


class Counted:
    """The runtime's store, counting the calls of each of its methods."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.store, name)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return found(*args, **kwargs)

        return call


class CountedServices:
    """``rt`` as the server's services, over a ``Counted`` store."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.raw_store = Counted(rt.raw_store)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rt, name)


def _row(html: str, draft_id: int) -> str:
    found = re.search(
        rf'<tr class="row-[^"]*">(?:(?!</tr>).)*/drafts/{draft_id}".*?</tr>', html, re.S
    )
    assert found, f"no row of draft {draft_id}"
    return found.group(0)


def test_a_kept_queue_row_follows_every_change(rt: Runtime, web: WebClient) -> None:
    draft = open_draft(rt, CLEAN)
    clock = [NOW]
    with Runtime(clock=lambda: clock[0]) as moving:
        browser = web(create_app(moving))
        browser.sign_in("sam")
        row = _row(browser.get("/").text, draft.id)
        assert f"#{draft.id} r1" in row
        assert draft.revision.subject in row
        assert '<span class="muted">0</span>' in row  # no findings
        assert "in 15m" in row
        clock[0] = NOW + timedelta(minutes=20)
        assert "overdue by 5m" in _row(browser.get("/").text, draft.id)
        clock[0] = NOW

        again = redraft(rt, draft.incident_ref, LEAKY)
        row = _row(browser.get("/").text, draft.id)
        assert f"#{draft.id} r2" in row
        assert '<span class="count count-error" title="error-level findings">1</span>' in row

        # A redaction rewrites the revision in place: same draft, same number, new subject.
        rt.raw_store.redact_revision(
            draft.id,
            again.revision.number,
            subject="Investigating: [redacted]",
            body=again.revision.body,
            variables=again.revision.variables,
            actor="ana",
            now=NOW,
            data={"reason": "test"},
        )
        row = _row(browser.get("/").text, draft.id)
        assert "Investigating: [redacted]" in row
        assert again.revision.subject not in row

        incident = rt.raw_store.get_incident(draft.incident_ref)
        rt.raw_store.update_incident(
            incident.replace(title="Sign-in failures in the EU", severity=Severity.S2),
            event="incident.changed",
            actor="gus",
            data={},
        )
        row = _row(browser.get("/").text, draft.id)
        assert "Sign-in failures in the EU" in row
        assert ">S2<" in row


def test_the_queue_is_each_viewers_own(rt: Runtime, web: WebClient) -> None:
    open_draft(rt, CLEAN)
    app = create_app(rt)
    sam, sia = web(app), web(app)
    sam.sign_in("sam")
    sia.sign_in("sia")
    pages = {name: browser.get("/").text for name, browser in (("sam", sam), ("sia", sia))}
    again = sam.get("/").text
    assert '<span class="user">sam</span>' in pages["sam"]
    assert '<span class="user">sia</span>' in pages["sia"]
    assert '<span class="user">sam</span>' in again
    tokens = {name: form_value(html, "csrf") for name, html in pages.items()}
    assert tokens["sam"] != tokens["sia"]
    assert form_value(again, "csrf") == tokens["sam"]


def test_the_queue_reads_the_store_as_often_for_one_draft_as_for_many(
    rt: Runtime, web: WebClient
) -> None:
    services = CountedServices(rt)
    browser = web(create_app(services))
    browser.sign_in("sam")
    open_draft(rt, CLEAN)
    services.raw_store.calls.clear()
    assert browser.get("/").status_code == 200
    one = dict(services.raw_store.calls)
    for n in range(4):
        open_draft(rt, CLEAN, tenants=("globex",), title=f"Slow CI {n}")
    services.raw_store.calls.clear()
    html = browser.get("/").text
    assert html.count('<tr class="row-') == 5
    assert dict(services.raw_store.calls) == one
    assert "get_draft" not in one  # summaries: no draft's text is read
    assert "list_drafts" not in one


def test_a_draft_page_reads_tenants_and_reviews_once(rt: Runtime, web: WebClient) -> None:
    """The gate reads the tenants' names only (not every tenant whole), the recipients
    their own tenants, the reviews are read once, and all on one pinned connection."""
    draft = open_draft(rt, LEAKY, tenants=("acme", "globex"))
    services = CountedServices(rt)
    browser = web(create_app(services))
    browser.sign_in("sam")
    services.raw_store.calls.clear()
    page = browser.get(f"/drafts/{draft.id}")
    assert page.status_code == 200
    assert "ops@acme.example" in page.text
    assert "ops@globex.example" in page.text
    calls = services.raw_store.calls
    assert (calls["tenant_names"], calls["list_tenants"], calls["get_tenant"]) == (1, 0, 2)
    assert (calls["reviews"], calls["pinned"]) == (1, 1)


def test_bind_turns_nagle_off_for_every_connection() -> None:
    """Without TCP_NODELAY, a response's body waited for the client's delayed ACK (40 ms)
    on every request after the first of a kept-alive connection."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            seen.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen == [1]
