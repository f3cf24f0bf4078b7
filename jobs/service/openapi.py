"""The worker API's OpenAPI 3.1 document, written by hand next to the routes it describes
(``pulsegate.jobs.service.admin_routes``, ``pulsegate.jobs.service.public_routes``, assembled by
``pulsegate.jobs.service.api``).

A test compares its paths and methods with the app's routes, so a route cannot be added without documenting it.
"""

from __future__ import annotations

from typing import Any

ADMIN_TAG = "admin"
PUBLIC_TAG = "public"
KEY_ACTIONS = ("reset", "disable", "enable")
#: What every admin operation has: its tag and the bearer token.
ADMIN: dict[str, Any] = {"tags": [ADMIN_TAG], "security": [{"bearerAuth": []}]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


ADMIN_ERRORS: dict[str, Any] = {
    "401": _error("Authorization header missing, malformed, or the token is wrong (`WWW-Authenticate: Bearer`)"),
    "503": _error("ADMIN_TOKEN is not set: the admin API is off; the message says how to enable it"),
}
BAD_INPUT: dict[str, Any] = {
    "400": _error("The body is not valid JSON, or the key label is ambiguous (names both providers)"),
    "413": _error("The body is larger than 64 KiB"),
    "422": _error("A field has a wrong value; `field` names it"),
}


def _param(name: str, where: str, description: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


PROVIDER_SCHEMA = {"type": "string", "enum": ["anthropic", "openai"]}
ID_PARAM = {"type": "integer", "minimum": 1}


def _key_command(with_provider: bool) -> dict[str, Any]:
    params = [
        _param("label", "path", "The key's label, e.g. `Primary`, `Backup 1`", {"type": "string"}, True),
        _param("action", "path", "What to do with the key", {"type": "string", "enum": list(KEY_ACTIONS)}, True),
    ]
    if with_provider:
        params.insert(0, _param("provider", "path", "The key's provider", PROVIDER_SCHEMA, True))
        summary = "Reset, disable or enable one provider's key"
    else:
        params.append(
            _param("provider", "query", "Required when both providers have this label", PROVIDER_SCHEMA, False)
        )
        summary = "Reset, disable or enable a key by label (the provider may go in the query or the body)"
    return {
        "post": {
            **ADMIN,
            "summary": summary,
            "description": "Issues a control command (`reset_key`, `disable_key`, `enable_key`) that every live "
            "instance applies on its next heartbeat; follow `status_url` for their acknowledgements.",
            "parameters": params,
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref("KeyCommandBody")}},
            },
            "responses": {
                "202": _json(_ref("CommandAccepted"), "Command issued"),
                "404": _error("Unknown provider, key label or action"),
                **BAD_INPUT,
                **ADMIN_ERRORS,
            },
        }
    }


def _admin_post(summary: str, description: str, body: str, accepted: str, what: str) -> dict[str, Any]:
    """An admin action with an optional JSON body, answered ``202`` with what it queued."""
    return {
        "post": {
            **ADMIN,
            "summary": summary,
            "description": description,
            "requestBody": {"required": False, "content": {"application/json": {"schema": _ref(body)}}},
            "responses": {"202": _json(_ref(accepted), what), **BAD_INPUT, **ADMIN_ERRORS},
        }
    }


def _admin_get_by_id(summary: str, id_description: str, schema: str, what: str, missing: str) -> dict[str, Any]:
    """An admin read of one numbered thing (a probe request, a command)."""
    return {
        "get": {
            **ADMIN,
            "summary": summary,
            "parameters": [_param("id", "path", id_description, ID_PARAM, True)],
            "responses": {
                "200": _json(_ref(schema), what),
                "404": _error(missing),
                "422": _error("`id` is not a positive integer"),
                **ADMIN_ERRORS,
            },
        }
    }


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI document served at ``/openapi.json``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pulsegate worker API",
            "version": "1",
            "description": "Admin actions and health of the Pulsegate worker. Admin routes need "
            "`Authorization: Bearer $ADMIN_TOKEN`; `/healthz`, `/metrics`, `/openapi.json` and `/docs` do not.",
        },
        "paths": {
            "/api/admin/ai-health": {
                "get": {
                    **ADMIN,
                    "summary": "The health report (the original spec's JSON plus `details`)",
                    "parameters": [
                        _param(
                            "window",
                            "query",
                            "Statistics window: seconds, or a number with s/m/h/d (1 min to 400 d; default 24h)",
                            {"type": "string", "examples": ["24h", "30m", "3600"]},
                            False,
                        )
                    ],
                    "responses": {
                        "200": _json(_ref("HealthReport"), "Status `ok` or `degraded`"),
                        "503": _json(
                            {"oneOf": [_ref("HealthReport"), _ref("Error")]},
                            "Status `down` (a health report), or ADMIN_TOKEN unset (an error)",
                        ),
                        "401": ADMIN_ERRORS["401"],
                        "422": _error("`window` is not a duration in range"),
                    },
                }
            },
            "/api/admin/probe": _admin_post(
                "Ask the worker to probe keys now (all, one provider's, or one key)",
                "Queues a probe request; the leading worker claims it within a second or two. "
                "Poll `status_url` for the results.",
                "ProbeBody",
                "ProbeAccepted",
                "Probe request queued",
            ),
            "/api/admin/probe/{id}": _admin_get_by_id(
                "A probe request's status and results",
                "The id POST /api/admin/probe returned",
                "ProbeStatus",
                "The request",
                "No probe request with this id",
            ),
            "/api/admin/queue/clear": _admin_post(
                "Clear the priority queues (one provider's, or all) on every live instance",
                "The original spec's `clearQueue()`: waiting calls fail with `cancelled`.",
                "QueueClearBody",
                "CommandAccepted",
                "Command issued",
            ),
            "/api/admin/keys/{label}/{action}": _key_command(with_provider=False),
            "/api/admin/keys/{provider}/{label}/{action}": _key_command(with_provider=True),
            "/api/admin/commands/{id}": _admin_get_by_id(
                "A control command and every instance's acknowledgement",
                "The command id",
                "CommandStatus",
                "The command",
                "No command with this id",
            ),
            "/healthz": {
                "get": {
                    "tags": [PUBLIC_TAG],
                    "summary": "Liveness: role (leader / standby), leader, last run of each job",
                    "responses": {
                        "200": _json({"type": "object"}, "The worker's status"),
                        "503": _error("The worker cannot report its status"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "tags": [PUBLIC_TAG],
                    "summary": "Prometheus metrics (text format 0.0.4, or OpenMetrics when asked for)",
                    "responses": {"200": {"description": "Metrics", "content": {"text/plain": {}}}},
                }
            },
            "/openapi.json": {
                "get": {
                    "tags": [PUBLIC_TAG],
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                }
            },
            "/docs": {
                "get": {
                    "tags": [PUBLIC_TAG],
                    "summary": "A one-page list of the routes",
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "status"],
                    "properties": {
                        "error": {"type": "string", "description": "What is wrong, naming the field"},
                        "status": {"type": "integer"},
                        "field": {"type": "string", "description": "The field, parameter or header at fault"},
                    },
                },
                "HealthReport": {
                    "type": "object",
                    "required": ["status", "services", "statistics", "details"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
                        "services": {"type": "object"},
                        "statistics": {
                            "type": "object",
                            "properties": {
                                "totalRequests": {"type": "integer"},
                                "successRate": {"type": ["number", "null"]},
                                "avgResponseTime": {"type": ["integer", "null"]},
                            },
                        },
                        "details": {"type": "object"},
                    },
                },
                "ProbeBody": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "provider": PROVIDER_SCHEMA,
                        "key": {"type": "string", "maxLength": 64, "description": "A key label, e.g. `Primary`"},
                        "model": {"type": "string", "maxLength": 128, "description": "Default: the probe model"},
                    },
                },
                "QueueClearBody": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"provider": PROVIDER_SCHEMA},
                },
                "KeyCommandBody": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"provider": PROVIDER_SCHEMA},
                },
                "ProbeAccepted": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "status": {"type": "string"},
                        "targets": {"type": "array", "items": {"type": "object"}},
                        "status_url": {"type": "string"},
                    },
                },
                "CommandAccepted": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "command": {
                            "type": "string",
                            "enum": ["clear_queue", "reset_key", "disable_key", "enable_key"],
                        },
                        "provider": {"type": ["string", "null"]},
                        "key": {"type": ["string", "null"]},
                        "expires_at": {"type": "string", "format": "date-time"},
                        "status_url": {"type": "string"},
                    },
                },
                "ProbeStatus": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "status": {"type": "string", "enum": ["pending", "running", "done", "failed"]},
                        "results": {"type": "array", "items": {"type": "object"}},
                        "error": {"type": ["string", "null"]},
                    },
                },
                "CommandStatus": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "command": {"type": "string"},
                        "acks": {"type": "array", "items": {"type": "object"}},
                        "acked": {"type": "integer"},
                        "failed": {"type": "integer"},
                        "expired": {"type": "boolean"},
                    },
                },
            },
        },
    }
