"""The OpenAPI 3.1 document of the Switchboard API stub, written by hand as data.

Served at ``/openapi.json``; the schemathesis tests check the stub against it, so a change to
the stub's behaviour that this document does not describe fails the build.
"""

from __future__ import annotations

from typing import Any

PROBLEM = "application/problem+json"
TEMPLATE_IDS = [
    "incident_investigation_start",
    "incident_investigation_update",
    "incident_escalated_response",
    "incident_mitigation_in_progress",
    "incident_resolved",
    "emergency_maintenance_planned",
    "emergency_maintenance_completed",
]
TENANT_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"}
TIMESTAMP = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
HTML_TAG = r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": _ref("Problem")}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
    return response


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


COMMON_ERRORS: dict[str, Any] = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "429": {"$ref": "#/components/responses/TooManyRequests"},
    "500": {"$ref": "#/components/responses/ServerError"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}
IDEMPOTENT_ERRORS: dict[str, Any] = {
    "400": _problem("Malformed body or invalid Idempotency-Key header."),
    "409": _problem(
        "A request with this Idempotency-Key is still in flight, or the notification was "
        "already sent.",
        retry_after=True,
    ),
    "422": _problem("The body is invalid, or the Idempotency-Key was used for another request."),
}
LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
}
TENANT_PAGING = [
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "The next_cursor of the previous page (the last tenant id it held).",
        "schema": {"type": "string"},
    },
    LIMIT,
]
NOTIFICATION_PAGING = [
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "The next_cursor of the previous page.",
        "schema": {"type": "string", "pattern": "^[0-9]{0,12}$"},
    },
    LIMIT,
]
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes the POST safe to retry: a replay with the same key and body returns the stored "
        "response with 'Idempotent-Replayed: true'."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}
NOTIFICATION_ID = {
    "name": "notification_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
    },
    "Person": {
        "type": "object",
        "required": ["name", "email"],
        "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "email": {"type": "string", "format": "email"}},
    },
    "MaintenanceWindow": {
        "type": "object",
        "required": ["id", "region", "day", "start", "end", "description"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "enum": ["apac", "emea", "amer-1", "amer-2"]},
            "region": {"type": "string", "enum": ["APAC", "EMEA", "AMER"]},
            "day": {"type": "string"},
            "start": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
            "end": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
            "description": {"type": "string"},
        },
    },
    "Tenant": {
        "type": "object",
        "required": [
            "id",
            "name",
            "url",
            "status",
            "gitlab_version",
            "reference_architecture",
            "primary_region",
            "secondary_region",
            "geo",
            "pubsec",
            "maintenance_window",
            "operational_emails",
            "csm",
            "ase",
        ],
        "additionalProperties": False,
        "properties": {
            "id": TENANT_ID,
            "name": {"type": "string", "minLength": 1},
            "url": {"type": "string", "format": "uri"},
            "status": {
                "type": "string",
                "enum": ["normal", "degraded", "disruption"],
                "description": "degraded: degraded performance (S2); "
                "disruption: service disruption (S1).",
            },
            "gitlab_version": {"type": "string"},
            "reference_architecture": {"type": "string"},
            "primary_region": {"type": "string"},
            "secondary_region": {"type": ["string", "null"]},
            "geo": {"type": "boolean"},
            "pubsec": {"type": "boolean", "description": "US Dedicated for Government (FedRAMP)."},
            "maintenance_window": _ref("MaintenanceWindow"),
            "operational_emails": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "format": "email"},
            },
            "csm": {"oneOf": [_ref("Person"), {"type": "null"}]},
            "ase": {"oneOf": [_ref("Person"), {"type": "null"}]},
        },
    },
    "TenantPage": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "additionalProperties": False,
        "properties": {
            "data": {"type": "array", "items": _ref("Tenant")},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "Template": {
        "type": "object",
        "required": ["id", "name", "category", "editable", "structured_fields"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "enum": TEMPLATE_IDS},
            "name": {"type": "string"},
            "category": {"type": "string", "enum": ["incident", "maintenance"]},
            "editable": {
                "type": "string",
                "enum": ["body", "intro"],
                "description": "body: the whole message is editable; "
                "intro: only the intro paragraph.",
            },
            "structured_fields": {"type": "array", "items": {"type": "string"}},
        },
    },
    "TemplatePage": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "additionalProperties": False,
        "properties": {
            "data": {"type": "array", "items": _ref("Template")},
            "next_cursor": {"type": "null"},
        },
    },
    "NotificationCreate": {
        "type": "object",
        "required": ["template", "tenant_ids", "incident_reference", "message"],
        "additionalProperties": False,
        "properties": {
            "template": {"type": "string", "enum": TEMPLATE_IDS},
            "tenant_ids": {
                "type": "array",
                "minItems": 1,
                "maxItems": 500,
                "uniqueItems": True,
                "items": TENANT_ID,
            },
            "incident_reference": {"type": "string", "minLength": 1, "maxLength": 100},
            "message": {
                "type": "string",
                "maxLength": 20000,
                "description": "Plain text; not empty; no HTML markup.",
                "pattern": "\\S",
                "not": {"pattern": HTML_TAG},
            },
            "investigation_focus_area": {"type": ["string", "null"], "maxLength": 500},
            "affected_components": {
                "type": ["array", "null"],
                "maxItems": 50,
                "items": {"type": "string", "minLength": 1, "maxLength": 200},
            },
            "customer_reported_impact": {"type": ["string", "null"], "maxLength": 2000},
            "metadata": {
                "type": "object",
                "maxProperties": 20,
                "propertyNames": {"maxLength": 40},
                "additionalProperties": {"type": "string", "maxLength": 500},
            },
        },
    },
    "Recipient": {
        "type": "object",
        "required": ["tenant_id", "email", "name", "role"],
        "additionalProperties": False,
        "properties": {
            "tenant_id": TENANT_ID,
            "email": {"type": "string"},
            "name": {"type": "string"},
            "role": {"type": "string", "enum": ["operational", "csm", "ase"]},
        },
    },
    "Notification": {
        "type": "object",
        "required": [
            "id",
            "status",
            "template",
            "tenant_ids",
            "incident_reference",
            "message",
            "investigation_focus_area",
            "affected_components",
            "customer_reported_impact",
            "metadata",
            "idempotency_key",
            "created_at",
            "previewed_at",
            "sent_at",
            "recipients",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["draft", "sent"]},
            "template": {"type": "string", "enum": TEMPLATE_IDS},
            "tenant_ids": {"type": "array", "items": TENANT_ID},
            "incident_reference": {"type": "string"},
            "message": {"type": "string"},
            "investigation_focus_area": {"type": ["string", "null"]},
            "affected_components": {"type": ["array", "null"], "items": {"type": "string"}},
            "customer_reported_impact": {"type": ["string", "null"]},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "idempotency_key": {
                "type": ["string", "null"],
                "description": "The Idempotency-Key of the request that created it.",
            },
            "created_at": TIMESTAMP,
            "previewed_at": NULLABLE_TIMESTAMP,
            "sent_at": NULLABLE_TIMESTAMP,
            "recipients": {
                "type": "array",
                "items": _ref("Recipient"),
                "description": "Resolved at send; empty for a draft.",
            },
        },
    },
    "NotificationPage": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "additionalProperties": False,
        "properties": {
            "data": {"type": "array", "items": _ref("Notification")},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "Preview": {
        "type": "object",
        "required": ["notification_id", "status", "subject", "body", "recipients"],
        "additionalProperties": False,
        "properties": {
            "notification_id": {"type": "string"},
            "status": {"type": "string", "enum": ["draft", "sent"]},
            "subject": {"type": "string"},
            "body": {"type": "string", "description": "Exactly the plain text recipients get."},
            "recipients": {"type": "array", "items": _ref("Recipient")},
        },
    },
    "Delivery": {
        "type": "object",
        "required": [
            "notification_id",
            "status",
            "sent_at",
            "incident_reference",
            "tenant_ids",
            "recipients",
            "subject",
            "body",
            "body_sha256",
        ],
        "additionalProperties": False,
        "properties": {
            "notification_id": {"type": "string"},
            "status": {"type": "string", "enum": ["sent"]},
            "sent_at": TIMESTAMP,
            "incident_reference": {"type": "string"},
            "tenant_ids": {"type": "array", "items": TENANT_ID},
            "recipients": {"type": "array", "items": _ref("Recipient")},
            "subject": {"type": "string"},
            "body": {"type": "string"},
            "body_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``/api/v1`` (admin endpoints are not part of it)."""
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
        "paths": {
            "/api/v1/tenants": {
                "get": {
                    "operationId": "listTenants",
                    "summary": "List tenants by id, a page at a time.",
                    "parameters": TENANT_PAGING,
                    "responses": {
                        "200": _ok("TenantPage", "A page of tenants."),
                        "400": _problem("Invalid cursor or limit."),
                        **COMMON_ERRORS,
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
                        "200": _ok("Tenant", "The tenant."),
                        "404": _problem("No such tenant."),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/api/v1/notification-templates": {
                "get": {
                    "operationId": "listTemplates",
                    "summary": "The pre-approved notification templates.",
                    "responses": {"200": _ok("TemplatePage", "All templates."), **COMMON_ERRORS},
                }
            },
            "/api/v1/notifications": {
                "get": {
                    "operationId": "listNotifications",
                    "summary": "Notifications, oldest first; "
                    "filter them to check whether a delivery landed.",
                    "parameters": [
                        *NOTIFICATION_PAGING,
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
                            "schema": {"type": "string", "enum": ["draft", "sent"]},
                        },
                    ],
                    "responses": {
                        "200": _ok("NotificationPage", "A page of notifications."),
                        "400": _problem("Invalid cursor, limit or status."),
                        **COMMON_ERRORS,
                    },
                },
                "post": {
                    "operationId": "createNotification",
                    "summary": "Create a draft notification from a template.",
                    "parameters": [IDEMPOTENCY_HEADER],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("NotificationCreate")}},
                    },
                    "responses": {
                        "201": {
                            **_ok("Notification", "The draft."),
                            "headers": {"Location": {"schema": {"type": "string"}}},
                        },
                        **IDEMPOTENT_ERRORS,
                        **COMMON_ERRORS,
                    },
                },
            },
            "/api/v1/notifications/{notification_id}": {
                "get": {
                    "operationId": "getNotification",
                    "parameters": [NOTIFICATION_ID],
                    "responses": {
                        "200": _ok("Notification", "The notification."),
                        "404": _problem("No such notification."),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/api/v1/notifications/{notification_id}/preview": {
                "post": {
                    "operationId": "previewNotification",
                    "summary": "Render what the recipients will see.",
                    "parameters": [NOTIFICATION_ID, IDEMPOTENCY_HEADER],
                    "responses": {
                        "200": _ok("Preview", "The rendered notification."),
                        "404": _problem("No such notification."),
                        **IDEMPOTENT_ERRORS,
                        **COMMON_ERRORS,
                    },
                }
            },
            "/api/v1/notifications/{notification_id}/send": {
                "post": {
                    "operationId": "sendNotification",
                    "summary": "Send a draft; recipients are resolved now. "
                    "A sent notification is never sent again (409).",
                    "parameters": [NOTIFICATION_ID, IDEMPOTENCY_HEADER],
                    "responses": {
                        "200": _ok("Delivery", "The delivery record."),
                        "404": _problem("No such notification."),
                        **IDEMPOTENT_ERRORS,
                        **COMMON_ERRORS,
                    },
                }
            },
        },
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
            "schemas": SCHEMAS,
        },
    }
