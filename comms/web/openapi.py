"""The OpenAPI 3.1 document of the review server's JSON API, served at ``/openapi.json``.

Written by hand, as JSON Schema, next to the routes it describes; ``tests/web`` fails when a
route under ``/api`` and this document disagree, and checks every answer the tests get
against the schema of its status code.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "1.0.0"

_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_TEXTS = {"type": "array", "items": {"type": "string"}}
_SEVERITY = {"type": "string", "enum": ["S1", "S2", "S3", "S4"]}
_STATE = {
    "type": "string",
    "enum": ["draft", "in-review", "approved", "changes-requested", "sent"],
}
_ROLE = {"type": "string", "enum": ["imoc", "sirt"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
    }


def _schemas() -> dict[str, Any]:
    finding = _object(
        {
            "rule": {"type": "string"},
            "level": {"type": "string", "enum": ["error", "warning", "suggestion"]},
            "message": {"type": "string"},
            "match": {"type": "string"},
            "line": {"type": "integer"},
            "column": {"type": "integer"},
            "start": {"type": "integer", "minimum": 0},
            "end": {"type": "integer", "minimum": 0},
        }
    )
    review = _object(
        {
            "revision": {"type": "integer"},
            "reviewer": {"type": "string"},
            "role": _ROLE,
            "decision": {"type": "string", "enum": ["approved", "changes-requested"]},
            "note": {"type": "string"},
            "at": _TIME,
        }
    )
    queue_row = _object(
        {
            "id": {"type": "integer"},
            "revision": {"type": "integer"},
            "state": _STATE,
            "kind": {"type": "string"},
            "author": {"type": "string"},
            "subject": {"type": "string"},
            "incident": {"type": "string"},
            "title": {"type": "string"},
            "severity": _SEVERITY,
            "security": {"type": "boolean"},
            "tenants": _TEXTS,
            "findings": {"type": "integer", "minimum": 0},
            "errors": {"type": "integer", "minimum": 0},
            "update_due_at": _TIME_OR_NULL,
            "update_state": {
                "type": ["string", "null"],
                "enum": ["ok", "due-soon", "overdue", None],
            },
            "seconds_left": {
                "type": ["integer", "null"],
                "description": "Until the next customer update is due; negative: overdue.",
            },
            "updated_at": _TIME,
        }
    )
    draft = _object(
        {
            "id": {"type": "integer"},
            "revision": {"type": "integer"},
            "state": _STATE,
            "kind": {"type": "string"},
            "author": {"type": "string"},
            "incident": {"type": "string"},
            "title": {"type": "string"},
            "severity": _SEVERITY,
            "security": {"type": "boolean"},
            "tenants": _TEXTS,
            "channels": _TEXTS,
            "subject": {"type": "string"},
            "text": {"type": "string", "description": "Exactly what each recipient gets."},
            "findings": {"type": "array", "items": _ref("Finding")},
            "diff_to_last_sent": {"type": "string"},
            "approved_by": {"type": "object", "additionalProperties": {"type": "string"}},
            "needs": {"type": "array", "items": _ROLE},
            "changes_requested": {"type": ["string", "null"]},
            "send_problems": _TEXTS,
            "ready_to_send": {"type": "boolean"},
            "promised_update_at": _TIME_OR_NULL,
            "update_due_at": _TIME_OR_NULL,
            "reviews": {"type": "array", "items": _ref("Review")},
            "recipients": {
                "type": "array",
                "items": _object(
                    {
                        "tenant": {"type": "string"},
                        "name": {"type": "string"},
                        "channel": {"type": "string"},
                        "contacts": _TEXTS,
                        "delivery": {"type": ["string", "null"]},
                        "text_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    }
                ),
            },
        }
    )
    decision = _object(
        {
            "draft": {"type": "integer"},
            "revision": {"type": "integer"},
            "decision": {"type": "string", "enum": ["approved", "changes-requested"]},
            "reviewer": {"type": "string"},
            "role": _ROLE,
            "note": {"type": "string"},
            "state": _STATE,
            "tenants": _TEXTS,
            "channels": _TEXTS,
            "approved_over": {
                "description": "Error-level rules approved over (with a reason); they still "
                "block the send.",
                **_TEXTS,
            },
        }
    )
    approve = {
        **_object(
            {
                "revision": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "The revision read; another is the latest: 409.",
                },
                "role": _ROLE,
                "note": {"type": "string", "maxLength": 65536},
                "reason": {
                    "type": ["string", "null"],
                    "maxLength": 65536,
                    "description": "Approve over error-level findings: why (recorded).",
                },
                "tenants": {**_TEXTS, "description": "Default: every tenant of the incident."},
                "channels": {**_TEXTS, "description": "Default: [send] channels."},
            },
            optional=("role", "note", "reason", "tenants", "channels"),
        ),
        "additionalProperties": False,
    }
    request_changes = {
        **_object(
            {
                "revision": {"type": "integer", "minimum": 1},
                "note": {"type": "string", "minLength": 1, "maxLength": 65536},
                "role": _ROLE,
            },
            optional=("role",),
        ),
        "additionalProperties": False,
    }
    incident = _object(
        {
            "incident": _object(
                {
                    "ref": {"type": "string"},
                    "title": {"type": "string"},
                    "severity": _SEVERITY,
                    "status": {"type": "string"},
                    "tenants": _TEXTS,
                    "security": {"type": "boolean"},
                    "pubsec": {"type": "boolean"},
                    "started_at": _TIME,
                },
            ),
            "events": {
                "type": "array",
                "items": _object(
                    {
                        "id": {"type": "integer"},
                        "at": _TIME,
                        "actor": {"type": "string"},
                        "type": {"type": "string"},
                        "data": {"type": "object"},
                    }
                ),
            },
            "messages": {"type": "array", "items": {"type": "object"}},
            "cadence": _object(
                {
                    "summary": {"type": "string"},
                    "updates": {"type": "array", "items": {"type": "object"}},
                    "clocks": {"type": "array", "items": {"type": "object"}},
                }
            ),
            "deadlines": {
                "type": "array",
                "items": _object(
                    {
                        "clock": {"type": "string"},
                        "state": {"type": "string", "enum": ["ok", "due-soon", "overdue"]},
                        "due_at": _TIME,
                        "remind_at": _TIME,
                        "reason": {"type": "string"},
                        "tenants": _TEXTS,
                    }
                ),
            },
            "drafts": {
                "type": "array",
                "items": _object(
                    {
                        "id": {"type": "integer"},
                        "kind": {"type": "string"},
                        "state": _STATE,
                        "revision": {"type": "integer"},
                        "subject": {"type": "string"},
                        "updated_at": _TIME,
                    }
                ),
            },
        }
    )
    problem = _object(
        {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
        }
    )
    return {
        "Finding": finding,
        "Review": review,
        "QueueRow": queue_row,
        "Queue": _object({"now": _TIME, "drafts": {"type": "array", "items": _ref("QueueRow")}}),
        "Draft": draft,
        "Decision": decision,
        "ApproveRequest": approve,
        "RequestChangesRequest": request_changes,
        "Incident": incident,
        "Problem": problem,
        "WebhookApplied": _object(
            {
                "ref": {"type": "string", "description": "The comms incident."},
                "action": {"type": "string", "enum": ["imported", "synced", "unchanged"]},
                "reason": {"type": "string", "description": "What was applied, one line."},
            }
        ),
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _problems(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/{_NAMES[code]}"} for code in codes}


_NAMES = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "413": "TooLarge",
    "415": "UnsupportedMediaType",
    "429": "TooManyRequests",
    "503": "Unavailable",
}


def _decision(operation: str, summary: str, body: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation,
            "summary": summary,
            "parameters": [{"$ref": "#/components/parameters/DraftId"}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(body)}},
            },
            "responses": {
                "200": _json("Decision", "Recorded."),
                **_problems("400", "401", "403", "404", "409", "413", "415", "429"),
            },
        }
    }


def _incidentio_hook() -> dict[str, Any]:
    signed = [
        {
            "name": name,
            "in": "header",
            "required": True,
            "description": description,
            "schema": {"type": "string"},
        }
        for name, description in (
            ("webhook-id", "The delivery's id; a repeated one is acknowledged, not applied."),
            ("webhook-timestamp", "Unix seconds when signed; more than 5 minutes off is 401."),
            ("webhook-signature", "v1,<base64 HMAC-SHA256> under the endpoint's secret."),
        )
    ]
    return {
        "post": {
            "operationId": "incidentioWebhook",
            "summary": (
                "incident.io's webhook (Standard Webhooks): incident created and updated "
                "events open and sync comms incidents. The signature is the authentication."
            ),
            "security": [],
            "parameters": signed,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": _json("WebhookApplied", "Applied."),
                "204": {
                    "description": (
                        "Acknowledged, nothing applied: a replay, a state older than one "
                        "applied, an event or incident comms does not take, or a refusal "
                        "a retry would not change."
                    )
                },
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {
                    "description": "Not signed with the endpoint's secret, or stale.",
                    "content": {"application/problem+json": {"schema": _ref("Problem")}},
                },
                "413": {
                    "description": "The delivery is over 1 MiB.",
                    "content": {"application/problem+json": {"schema": _ref("Problem")}},
                },
                **_problems("503"),
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document, built afresh on each call."""
    problem_content = {"application/problem+json": {"schema": _ref("Problem")}}
    responses = {
        name: {"description": description, "content": problem_content}
        for name, description in (
            ("BadRequest", "The request is malformed or asks for something impossible."),
            ("Unauthorized", "No bearer token, a wrong one, or a disabled user's."),
            ("Forbidden", "A rule of the review process refused it; detail names the rule."),
            ("NotFound", "No such draft or incident."),
            ("Conflict", "The revision read is no longer the latest: nothing was approved."),
            ("TooLarge", "The request body is over 64 KiB."),
            ("UnsupportedMediaType", "The body is not application/json."),
            ("TooManyRequests", "Too many wrong bearer tokens from this address lately."),
            ("Unavailable", "Not set up, or the store failed: try again later."),
        )
    }
    # Retry-After: the seconds until the address may try again (any token, right or not).
    responses["TooManyRequests"]["headers"] = {
        "Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 1}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "comms review server",
            "version": API_VERSION,
            "description": (
                "Drafts waiting for review, a draft with its lint findings and the diff to "
                "the last update sent, approve or request changes, an incident's timeline "
                "and clocks. Authenticate with `Authorization: Bearer <token>` (a token "
                "from `comms users add`); session cookies are for the pages only. "
                "`/hooks/incidentio` takes incident.io's signed webhooks instead. Errors "
                "are RFC 9457 problem details."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/queue": {
                "get": {
                    "operationId": "getQueue",
                    "summary": "Drafts waiting for review, most urgent first.",
                    "responses": {
                        "200": _json("Queue", "The queue."),
                        **_problems("401", "429"),
                    },
                }
            },
            "/api/drafts/{draft_id}": {
                "get": {
                    "operationId": "getDraft",
                    "summary": "A draft as its reviewer sees it.",
                    "parameters": [{"$ref": "#/components/parameters/DraftId"}],
                    "responses": {
                        "200": _json("Draft", "The draft."),
                        **_problems("401", "404", "429"),
                    },
                }
            },
            "/api/drafts/{draft_id}/approve": _decision(
                "approveDraft",
                "Approve the draft's latest revision, which must be the one named.",
                "ApproveRequest",
            ),
            "/api/drafts/{draft_id}/request-changes": _decision(
                "requestChanges",
                "Send the draft back with a note (the communications manager is told).",
                "RequestChangesRequest",
            ),
            "/api/incidents/{ref}": {
                "get": {
                    "operationId": "getIncident",
                    "summary": "An incident's timeline, cadence report, pending clocks, drafts.",
                    "parameters": [
                        {
                            "name": "ref",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
                        }
                    ],
                    "responses": {
                        "200": _json("Incident", "The incident."),
                        **_problems("401", "404", "429"),
                    },
                }
            },
            "/api/health": {
                "get": {
                    "operationId": "getHealth",
                    "summary": "Liveness and the store's reachability; no authentication.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Serving.",
                            "content": {
                                "application/json": {"schema": _object({"status": {"const": "ok"}})}
                            },
                        }
                    },
                }
            },
            "/hooks/incidentio": _incidentio_hook(),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "DraftId": {
                    "name": "draft_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                }
            },
            "responses": responses,
            "schemas": _schemas(),
        },
    }
