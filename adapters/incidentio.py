"""The incident.io adapter: its public REST API on httpx, with the shared retry policy.

``IncidentioClient`` reads what comms needs, with incident.io's own paths, field names and
paging (api-docs.incident.io):

    GET /v2/incidents/{id}       one incident; ``id`` is its id or its reference's number
    GET /v2/incidents            ``page_size`` (at most 250) and ``after`` (the last id of
                                 the previous page, ``pagination_meta.after``)
    GET /v1/severities           ``{"severities": [...]}``
    GET /v1/incident_statuses    ``{"incident_statuses": [...]}``
    GET /v2/custom_fields        ``{"custom_fields": [...]}``

and returns the core's records (``comms.incidentio.records.IoIncident`` …), never JSON.  Every
request is a GET, so every uncertain failure is retried (``comms.adapters.retry``: backoff
with jitter, ``Retry-After`` on a 429; the API allows 1,200 requests a minute per key).
A 401 or 403 is a ``ConfigError`` naming ``COMMS_INCIDENTIO_TOKEN`` (exit 3); an API that
stays down or slow is an :class:`IncidentioError` (exit 3), one line each.  The key lives
only in the httpx client's headers: it is never logged or put in an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from comms.adapters.retry import RetryPolicy, retry_after_seconds
from comms.errors import ConfigError, NotFoundError, PublishError
from comms.incidentio.records import (
    IoCustomField,
    IoIncident,
    IoSeverity,
    IoStatus,
    MalformedError,
    parse_custom_field,
    parse_incident,
    parse_severity,
    parse_status,
)

T = TypeVar("T")

NAME = "incidentio"
TOKEN_ENV = "COMMS_INCIDENTIO_TOKEN"
URL_ENV = "COMMS_INCIDENTIO_URL"
DEFAULT_URL = "https://api.incident.io"
MAX_PAGE_SIZE = 250
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# The [incidentio] keys the core reads (comms.incidentio.mapping.rules_from_table), not this module.
MAPPING_KEYS = ("severities", "statuses", "tenant_field")


class IncidentioError(PublishError):
    """incident.io failed or could not be reached; ``retryable`` as for any channel."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, channel=NAME, **kwargs)


@dataclass(frozen=True)
class IncidentioConfig:
    """The adapter's part of ``[incidentio]``: where the API is, how long to wait."""

    api_url: str = DEFAULT_URL
    timeout_seconds: float = 10.0
    max_attempts: int = 4

    @classmethod
    def from_table(cls, table: Mapping[str, Any], environ: Mapping[str, str]) -> IncidentioConfig:
        """Validate the raw table; ``COMMS_INCIDENTIO_URL`` overrides ``api_url``."""
        known = ("api_url", "timeout_seconds", "max_attempts", *MAPPING_KEYS)
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise ConfigError(
                f"[incidentio]: unknown key '{unknown[0]}' (known: {', '.join(known)})"
            )
        url = environ.get(URL_ENV) or table.get("api_url", DEFAULT_URL)
        if (
            not isinstance(url, str)
            or urlsplit(url).scheme not in ("http", "https")
            or not urlsplit(url).hostname
        ):
            raise ConfigError(
                f'[incidentio]: api_url must be an http(s) URL, e.g. api_url = "{DEFAULT_URL}"'
            )
        timeout = table.get("timeout_seconds", 10.0)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= 300
        ):
            raise ConfigError(
                "[incidentio]: timeout_seconds must be a number of seconds from 0 to 300"
            )
        attempts = table.get("max_attempts", 4)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
            raise ConfigError("[incidentio]: max_attempts must be a whole number from 1 to 10")
        return cls(url.rstrip("/"), float(timeout), attempts)


def make_client(api_url: str, token: str, *, timeout: float = 10.0) -> httpx.Client:
    """An httpx client for the API at ``api_url`` sending ``token`` as a bearer key."""
    return httpx.Client(
        base_url=api_url,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=timeout,
        follow_redirects=False,
    )


class IncidentioClient:
    """incident.io's API as the core's ports ``IncidentSource`` and ``IncidentCatalog``.

    ``http`` carries the base URL, the key and timeouts; with ``owns_client`` this object
    closes it.  ``policy`` (default: 4 attempts) retries what failed uncertainly.
    """

    def __init__(
        self, http: httpx.Client, *, policy: RetryPolicy | None = None, owns_client: bool = False
    ) -> None:
        self.http = http
        self.policy = policy or RetryPolicy(max_attempts=4)
        self.owns_client = owns_client
        self.attempts = 0  # every HTTP attempt made, for tests

    def close(self) -> None:
        """Close the httpx client if this object made it."""
        if self.owns_client:
            self.http.close()

    # ------------------------------------------------------------------ transport

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET ``path`` and return its JSON object, retrying what may succeed next time."""
        where = str(self.http.base_url).rstrip("/")

        def attempt() -> httpx.Response:
            self.attempts += 1
            try:
                response = self.http.get(path, params=dict(params or {}))
            except httpx.TimeoutException as exc:
                raise IncidentioError(
                    f"incident.io at {where} did not answer GET {path} in time", retryable=True
                ) from exc
            except httpx.TransportError as exc:
                raise IncidentioError(
                    f"cannot reach incident.io at {where} ({type(exc).__name__}); check "
                    "[incidentio] api_url and the network",
                    retryable=True,
                ) from exc
            if response.is_success:
                return response
            raise self._error(response, path)

        response = self.policy.call(attempt)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise IncidentioError(f"incident.io answered GET {path} with something not JSON")
        return data

    def _error(self, response: httpx.Response, path: str) -> Exception:
        status = response.status_code
        detail = _detail(response)
        if status in (401, 403):
            return ConfigError(
                f"incident.io refused the key in {TOKEN_ENV}: {detail} ({status}); create a "
                "key with read access in incident.io → Settings → API keys"
            )
        if status == 404:
            return NotFoundError(f"incident.io has no {_what(path)}: {detail}")
        return IncidentioError(
            f"incident.io answered {status} to GET {path}: {detail}",
            status=status,
            retryable=status in RETRYABLE_STATUS,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )

    # ------------------------------------------------------------------ resources

    def incident(self, key: str) -> IoIncident:
        """One incident by its id or its reference's number (``2291`` for INC-2291)."""
        data = self.get(f"/v2/incidents/{quote(key, safe='')}")
        return _parsed(parse_incident, data.get("incident"), "incident")

    def incident_pages(
        self, *, page_size: int = 100, after: str | None = None, status_category: Sequence[str] = ()
    ) -> Iterator[tuple[list[IoIncident], str | None]]:
        """Pages of incidents as the API orders them, each with the ``after`` cursor of the
        next page (None on the last); ``status_category`` keeps those categories only."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be from 1 to {MAX_PAGE_SIZE}")
        cursor = after
        while True:
            params: dict[str, Any] = {"page_size": page_size}
            if cursor:
                params["after"] = cursor
            if status_category:
                params["status_category[one_of]"] = list(status_category)
            data = self.get("/v2/incidents", params)
            items = data.get("incidents")
            if not isinstance(items, list):
                raise IncidentioError("incident.io answered GET /v2/incidents without incidents")
            page = [_parsed(parse_incident, item, "incidents[]") for item in items]
            meta = data.get("pagination_meta") or {}
            cursor = meta.get("after") if isinstance(meta, dict) else None
            cursor = cursor if isinstance(cursor, str) and cursor and page else None
            yield page, cursor
            if cursor is None:
                return

    def incidents(
        self, *, page_size: int = 100, status_category: Sequence[str] = ()
    ) -> list[IoIncident]:
        """Every incident (standard and retrospective, as the API defaults), following
        ``after`` cursors."""
        return [
            i
            for page, _ in self.incident_pages(page_size=page_size, status_category=status_category)
            for i in page
        ]

    def severities(self) -> list[IoSeverity]:
        """Every severity, least severe first (by ``rank``)."""
        found = [
            _parsed(parse_severity, s, "severities[]")
            for s in _list(self.get("/v1/severities"), "severities")
        ]
        return sorted(found, key=lambda s: s.rank)

    def statuses(self) -> list[IoStatus]:
        """Every incident status."""
        data = self.get("/v1/incident_statuses")
        return [
            _parsed(parse_status, s, "incident_statuses[]")
            for s in _list(data, "incident_statuses")
        ]

    def custom_fields(self) -> list[IoCustomField]:
        """Every custom field."""
        data = self.get("/v2/custom_fields")
        return [
            _parsed(parse_custom_field, f, "custom_fields[]") for f in _list(data, "custom_fields")
        ]


def _detail(response: httpx.Response) -> str:
    """incident.io's error body (``{"type", "status", "request_id", "errors": [{"code",
    "message"}]}``) as one line, else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = errors[0].get("message") or errors[0].get("code")
            if isinstance(message, str) and message:
                return " ".join(message.split())[:200]
        if isinstance(body.get("type"), str):
            return str(body["type"])
    return response.reason_phrase or "error"


def _what(path: str) -> str:
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[1] == "incidents":
        return f"incident '{parts[2]}' (check the reference, and that the key may see it)"
    return path


def _list(data: dict[str, Any], key: str) -> list[Any]:
    items = data.get(key)
    if not isinstance(items, list):
        raise IncidentioError(f"incident.io answered without '{key}'")
    return items


def _parsed(parse: Callable[[Any, str], T], data: Any, where: str) -> T:
    try:
        return parse(data, where)
    except MalformedError as exc:
        raise IncidentioError(
            f"incident.io answered in a shape comms does not know: {exc}"
        ) from None


def from_settings(
    table: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> IncidentioClient:
    """The client for the raw ``[incidentio]`` table and ``COMMS_INCIDENTIO_TOKEN``;
    ``ConfigError`` without a key or with a bad table.  The caller closes it."""
    env = os.environ if environ is None else environ
    config = IncidentioConfig.from_table(table, env)
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(
            f"no incident.io key: set {TOKEN_ENV} (incident.io → Settings → API keys, a key "
            "that may view incidents)"
        )
    return IncidentioClient(
        make_client(config.api_url, token, timeout=config.timeout_seconds),
        policy=RetryPolicy(max_attempts=config.max_attempts),
        owns_client=True,
    )
