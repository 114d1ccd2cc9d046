"""Helpers for the review server's tests: a synchronous client of the app (through
``httpx.ASGITransport``, from any client address), a team of users, incidents and drafts
made through the core, and the OpenAPI document's schemas for checking answers."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from starlette.applications import Starlette

from comms import service
from comms.bootstrap import Runtime
from comms.identity import hash_token
from comms.models import Contact, Draft, MessageKind, Role, Severity, Tenant
from comms.web.openapi import openapi_document

NOW = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
NOW_ISO = "2026-11-27T14:30:00Z"
AUTHOR = "gus"
# name -> (role, token): tokens look like real ones, so that a leak test can search for them.
TEAM: dict[str, tuple[Role, str]] = {
    "ana": (Role.ADMIN, "comms_web-test-token-of-ana-the-admin-0000000000"),
    "gus": (Role.GDCMOC, "comms_web-test-token-of-gus-the-gdcmoc-000000000"),
    "sam": (Role.IMOC, "comms_web-test-token-of-sam-the-imoc-00000000000"),
    "sia": (Role.SIRT, "comms_web-test-token-of-sia-the-sirt-00000000000"),
}
ORIGIN = "http://comms.test"


def token(name: str) -> str:
    """``name``'s API token."""
    return TEAM[name][1]


def bearer(name: str) -> dict[str, str]:
    """The API's authentication header for ``name``."""
    return {"Authorization": f"Bearer {token(name)}"}


def add_team(rt: Runtime) -> None:
    """Store ``TEAM`` (the tokens' hashes only)."""
    for name, (role, secret) in TEAM.items():
        rt.raw_store.add_user(
            name=name, role=role, token_hash=hash_token(secret), now=NOW, actor="ana"
        )


def seed_tenants(rt: Runtime, *ids: str) -> None:
    """Tenants with a contact each."""
    for tid in ids:
        rt.raw_store.put_tenant(
            Tenant(
                id=tid,
                name=f"{tid.capitalize()} Corp",
                url=f"https://{tid}.gitlab-dedicated.com",
                contacts=[Contact(email=f"ops@{tid}.example")],
            )
        )


def open_draft(
    rt: Runtime,
    impact: str,
    *,
    tenants: tuple[str, ...] = ("acme",),
    severity: Severity = Severity.S1,
    title: str = "Sign-in failures",
    now: datetime = NOW,
    security: bool = False,
) -> Draft:
    """Open an incident for ``tenants`` and draft its first update, as the GDCMOC."""
    store = rt.raw_store
    incident = service.open_incident(
        store,
        title=title,
        severity=severity,
        tenants=tenants,
        now=now,
        actor=AUTHOR,
        security=security,
    )
    return redraft(rt, incident.ref, impact, now=now)


def redraft(rt: Runtime, ref: str, impact: str, *, now: datetime = NOW) -> Draft:
    """A new revision of the incident's investigation-start draft."""
    store = rt.raw_store
    return service.compose(
        store,
        rt.renderer(),
        ref=ref,
        kind=MessageKind.INVESTIGATION_START,
        values={"impact": impact},
        now=now,
        author=AUTHOR,
        interval_minutes=60,
        check=service.make_checker(rt.lint_config(), store.list_tenants()),
    ).draft


class Web:
    """A synchronous client of an ASGI app, as one browser or script at ``address``.

    Cookies persist between requests, as in a browser; redirects are not followed."""

    def __init__(self, app: Starlette, address: str = "127.0.0.1", origin: str = ORIGIN) -> None:
        self.runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=app, client=(address, 51234))
        self.client = httpx.AsyncClient(transport=transport, base_url=origin)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request; the answer with its body read."""
        return self.runner.run(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.close()

    # -- as a person at the pages -----------------------------------------------------------

    def csrf(self, url: str) -> str:
        """The CSRF token of the forms on the page at ``url``."""
        page = self.get(url)
        assert page.status_code == 200, (page.status_code, page.text[:300])
        return form_value(page.text, "csrf")

    def sign_in(self, name: str | None = None, *, secret: str | None = None) -> httpx.Response:
        """Sign in with ``name``'s token (or ``secret``) through the form."""
        csrf = self.csrf("/sign-in")
        return self.post(
            "/sign-in", data={"csrf": csrf, "token": secret or token(name or "sam"), "next": "/"}
        )


def form_value(html: str, name: str) -> str:
    """The value of the first ``<input name=…>`` of a page."""
    found = re.search(rf'<input type="hidden" name="{re.escape(name)}" value="([^"]*)"', html)
    assert found, f"no input {name} in the page"
    return found.group(1)


# -- the OpenAPI document as a checker ------------------------------------------------------

DOCUMENT = openapi_document()


def check_answer(method: str, path: str, response: httpx.Response) -> None:
    """Fail unless ``response`` matches what the document says ``method path`` answers
    with its status: documented status, content type and body schema."""
    operation = DOCUMENT["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path}: {status} is not documented"
    spec = operation["responses"][status]
    if "$ref" in spec:
        spec = DOCUMENT["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    if "content" not in spec:
        assert response.content == b"", f"{method} {path}: {status} has no documented body"
        return
    ((content_type, media),) = spec["content"].items()
    assert response.headers["content-type"].split(";")[0] == content_type
    schema = {**media["schema"], "components": DOCUMENT["components"]}
    Draft202012Validator(schema).validate(response.json())
