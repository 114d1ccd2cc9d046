"""The OpenAPI 3.1 document of the Switchboard API stub.

Paths, operations, parameters and responses are declared here; every body schema is generated
from the pydantic models in :mod:`comms.adapters.switchboard_model` that the stub validates its
requests and responses with, so the document and the stub cannot disagree about a body.  The
stub serves the document at ``/openapi.json`` (built on the first request); the schemathesis
tests check the stub against it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core import CoreSchema, core_schema

from .switchboard_model import (
    NOTIFICATION_STATUSES,
    PAGE_LIMIT,
    Delivery,
    Notification,
    NotificationCreate,
    NotificationPage,
    Preview,
    Problem,
    TemplatePage,
    Tenant,
    TenantPage,
)

PROBLEM = "application/problem+json"
REF_TEMPLATE = "#/components/schemas/{model}"
REQUEST_MODELS: tuple[type[BaseModel], ...] = (NotificationCreate,)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Problem,
    TenantPage,
    Tenant,
    TemplatePage,
    NotificationPage,
    Notification,
    Preview,
    Delivery,
)


class _SchemaGenerator(GenerateJsonSchema):
    """pydantic's generator without the titles it derives from class and field names."""

    def field_title_should_be_set(self, schema: CoreSchema | core_schema.DataclassField) -> bool:
        return False

    def model_schema(self, schema: core_schema.ModelSchema) -> dict[str, Any]:
        generated = super().model_schema(schema)
        generated.pop("title", None)
        return generated


def component_schemas() -> dict[str, Any]:
    """The ``components/schemas`` of the document: every body model and the models they use,
    requests as pydantic validates them, responses as the stub dumps them."""
    inputs: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in REQUEST_MODELS),
        *((model, "serialization") for model in RESPONSE_MODELS),
    ]
    _, document = models_json_schema(
        inputs, ref_template=REF_TEMPLATE, schema_generator=_SchemaGenerator
    )
    schemas: dict[str, Any] = document["$defs"]
    return schemas


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": _ref(Problem)}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
    return response


def _ok(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _operations() -> dict[str, Any]:
    common_errors: dict[str, Any] = {
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "429": {"$ref": "#/components/responses/TooManyRequests"},
        "500": {"$ref": "#/components/responses/ServerError"},
        "503": {"$ref": "#/components/responses/Unavailable"},
    }
    idempotent_errors: dict[str, Any] = {
        "400": _problem("Malformed body or invalid Idempotency-Key header."),
        "409": _problem(
            "A request with this Idempotency-Key is still in flight, or the notification was "
            "already sent.",
            retry_after=True,
        ),
        "422": _problem(
            "The body is invalid, or the Idempotency-Key was used for another request."
        ),
    }
    low, high, default = PAGE_LIMIT
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": low, "maximum": high, "default": default},
    }
    idempotency_header = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": (
            "Makes the POST safe to retry: a replay with the same key and body returns the "
            "stored response with 'Idempotent-Replayed: true'."
        ),
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": "^[\\x21-\\x7e]+$",
        },
    }
    notification_id = {
        "name": "notification_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    }
    return {
        "/api/v1/tenants": {
            "get": {
                "operationId": "listTenants",
                "summary": "List tenants by id, a page at a time.",
                "parameters": [
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": (
                            "The next_cursor of the previous page (the last tenant id it held)."
                        ),
                        "schema": {"type": "string"},
                    },
                    limit,
                ],
                "responses": {
                    "200": _ok(TenantPage, "A page of tenants."),
                    "400": _problem("Invalid cursor or limit."),
                    **common_errors,
                },
            }
        },
        "/api/v1/tenants/{tenant_id}": {
            "get": {
                "operationId": "getTenant",
                "parameters": [
                    {
                        "name": "tenant_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    }
                ],
                "responses": {
                    "200": _ok(Tenant, "The tenant."),
                    "404": _problem("No such tenant."),
                    **common_errors,
                },
            }
        },
        "/api/v1/notification-templates": {
            "get": {
                "operationId": "listTemplates",
                "summary": "The pre-approved notification templates.",
                "responses": {"200": _ok(TemplatePage, "All templates."), **common_errors},
            }
        },
        "/api/v1/notifications": {
            "get": {
                "operationId": "listNotifications",
                "summary": "Notifications, oldest first; "
                "filter them to check whether a delivery landed.",
                "parameters": [
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": "The next_cursor of the previous page.",
                        "schema": {"type": "string", "pattern": "^[0-9]{0,12}$"},
                    },
                    limit,
                    {
                        "name": "incident_reference",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "tenant_id",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(NOTIFICATION_STATUSES)},
                    },
                ],
                "responses": {
                    "200": _ok(NotificationPage, "A page of notifications."),
                    "400": _problem("Invalid cursor, limit or status."),
                    **common_errors,
                },
            },
            "post": {
                "operationId": "createNotification",
                "summary": "Create a draft notification from a template.",
                "parameters": [idempotency_header],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(NotificationCreate)}},
                },
                "responses": {
                    "201": {
                        **_ok(Notification, "The draft."),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    **idempotent_errors,
                    **common_errors,
                },
            },
        },
        "/api/v1/notifications/{notification_id}": {
            "get": {
                "operationId": "getNotification",
                "parameters": [notification_id],
                "responses": {
                    "200": _ok(Notification, "The notification."),
                    "404": _problem("No such notification."),
                    **common_errors,
                },
            }
        },
        "/api/v1/notifications/{notification_id}/preview": {
            "post": {
                "operationId": "previewNotification",
                "summary": "Render what the recipients will see.",
                "parameters": [notification_id, idempotency_header],
                "responses": {
                    "200": _ok(Preview, "The rendered notification."),
                    "404": _problem("No such notification."),
                    **idempotent_errors,
                    **common_errors,
                },
            }
        },
        "/api/v1/notifications/{notification_id}/send": {
            "post": {
                "operationId": "sendNotification",
                "summary": "Send a draft; recipients are resolved now. "
                "A sent notification is never sent again (409).",
                "parameters": [notification_id, idempotency_header],
                "responses": {
                    "200": _ok(Delivery, "The delivery record."),
                    "404": _problem("No such notification."),
                    **idempotent_errors,
                    **common_errors,
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``/api/v1`` (admin endpoints are not part of it), built
    afresh on each call; the stub caches the one it serves."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard API (comms stub)",
            "version": "1.0.0",
            "description": (
                "Tenant directory and one-way customer notifications for GitLab Dedicated. "
                "Errors are RFC 9457 problem details. Every POST accepts an Idempotency-Key."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _operations(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "headers": {
                "RetryAfter": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer", "minimum": 0},
                }
            },
            "responses": {
                "Unauthorized": _problem("Missing or wrong bearer token."),
                "TooManyRequests": _problem("Rate limit exceeded.", retry_after=True),
                "ServerError": _problem("The server failed."),
                "Unavailable": _problem("Temporarily unavailable.", retry_after=True),
            },
            "schemas": component_schemas(),
        },
    }
