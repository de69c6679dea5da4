"""The OpenAPI document, made to tell the truth about what the service answers.

FastAPI's generated document is reshaped here, in one pass, so that a client generator can trust it:

- readable operation ids (``ingestEvents``, ``getPlayerSessions``) and one tag per area;
- every status a route really gives, each with the body it really sends: parameters are checked by
  the service and refused with ``400`` and its own ``{"error", "field"}`` body, so FastAPI's ``422
  HTTPValidationError`` is removed; ``500`` is the storage error a bug of ours would cause;
- the headers: ``X-Request-ID`` on every answer, ``Retry-After`` on every ``503``,
  ``WWW-Authenticate`` on ``401``;
- the API key is optional in the document (it is enforced only with ``--api-keys-file``) and
  ``/health`` needs none;
- examples for every answer.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from fastapi.routing import APIRoute

# route function name -> (operation id, tag)
OPERATIONS: Final[dict[str, tuple[str, str]]] = {
    "post_events": ("ingestEvents", "ingest"),
    "get_player_sessions": ("getPlayerSessions", "players"),
    "delete_player": ("erasePlayer", "players"),
    "get_session_starts": ("getSessionStarts", "session starts"),
    "get_country_starts": ("getCountryStarts", "session starts"),
    "health": ("getHealth", "health"),
    "live": ("getLiveness", "health"),
    "ready": ("getReadiness", "health"),
}
TAGS: Final = [
    {"name": "ingest", "description": "Send session events (batches of 1 to 100,000)."},
    {"name": "players", "description": "A player's last complete sessions; erasing a player."},
    {"name": "session starts", "description": "Session starts per country over a window of hours."},
    {"name": "health", "description": "For load balancers: open, never needs a key."},
]
OPEN_PATH_PREFIX: Final = "/health"
BEARER: Final = "HTTPBearer"

HEADERS: Final[dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: the client's own `X-Request-ID` when it sent a sane one "
        "(1-128 of `A-Za-z0-9._:/+=@-`), else a new one. Logged with the request.",
        "required": True,
        "schema": {"type": "string"},
        "example": "3f1c2a9e0b7d4c55a1e2f3d4c5b6a798",
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying; retrying the same request is safe.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
        "example": 2,
    },
    "WWW-Authenticate": {
        "description": "The scheme to use: a Bearer API key.",
        "required": True,
        "schema": {"type": "string"},
        "example": 'Bearer realm="player-sessions"',
    },
}
STATUS_HEADERS: Final[dict[str, list[str]]] = {"401": ["WWW-Authenticate"], "503": ["Retry-After"]}

ERROR_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "400": {"error": "hours: input should be greater than 0", "field": "hours"},
    "401": {"error": "authorization: send `Authorization: Bearer <api key>`", "field": "authorization"},
    "403": {"error": "authorization: the API key is not valid", "field": "authorization"},
    "408": {
        "error": "body: arrived too slowly (65536 bytes in 30.0s): no pause over 30s, at least "
        "16384 bytes/s after the first 30s",
        "field": "body",
    },
    "421": {
        "error": "role: this process serves query routes only (--role query); send ingest requests to a "
        "process started with --role ingest or --role all",
        "field": "role",
    },
    "413": {"error": "body: 100001 events: at most 100000 per request", "field": "body"},
    "415": {
        "error": 'content-type: text/plain: send application/json (an array or {"events": [...]}) '
        "or application/x-ndjson (one event per line)",
        "field": "content-type",
    },
    "500": {"error": "internal storage error"},
    "503": {
        "error": "storage unavailable: Cassandra could not complete the request; nothing was "
        "acknowledged, retry the whole request"
    },
}
EXAMPLES: Final[dict[tuple[str, str], Any]] = {
    ("ingestEvents", "200"): {
        "received": 3,
        "stored": 2,
        "expired": 0,
        "rejected": 1,
        "errors": [{"index": 2, "field": "session_id", "error": "session_id: not a UUID"}],
    },
    ("ingestEvents", "400"): {"error": "body: no events: send 1 to 100000 events", "field": "body"},
    ("getPlayerSessions", "200"): {
        "player_id": "p1",
        "sessions": [
            {
                "session_id": "4a0c43c9-c43a-42ff-ba55-67563dfa35d4",
                "country": "FI",
                "start": "2016-11-06T02:35:22Z",
                "end": "2016-11-06T02:43:23Z",
                "duration_seconds": 481,
            }
        ],
    },
    ("erasePlayer", "202"): {
        "player_id": "p1",
        "removed": {"player_events": 6, "starts_by_country_hour": 3},
        "sessions": 3,
        "rollups_marked_stale": 3,
    },
    ("getSessionStarts", "200"): {
        "from": "2016-11-30T00:00:00Z",
        "to": "2016-12-01T00:00:00Z",
        "hours": 24.0,
        "total": 1234,
        "countries": {"US": 800, "FI": 434},
    },
    ("getCountryStarts", "200"): {
        "country": "FI",
        "starts": [
            {
                "session_id": "4a0c43c9-c43a-42ff-ba55-67563dfa35d4",
                "player_id": "p1",
                "ts": "2016-11-30T23:59:58Z",
            }
        ],
        "next": "eyJ0cyI6MTQ4MDU0OTk5ODAwMH0",
    },
    ("getHealth", "200"): {"status": "ok"},
    ("getHealth", "503"): {"error": "unavailable: Cassandra does not answer", "status": "unavailable"},
    ("getLiveness", "200"): {"status": "ok"},
    ("getReadiness", "200"): {"status": "ok"},
    ("getReadiness", "503"): {
        "error": "not ready: Cassandra does not answer at LOCAL_QUORUM",
        "status": "unavailable",
    },
}
STORE_ERROR: Final = {
    "description": "internal storage error (a bug of ours, logged with its detail)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
}


def operation_id(route: APIRoute) -> str:
    """FastAPI's ``generate_unique_id_function``: the readable id, or the function name in camelCase."""
    known = OPERATIONS.get(route.name)
    if known is not None:
        return known[0]
    head, *rest = route.name.split("_")
    return head + "".join(part.title() for part in rest)


_TAG_OF: Final = {operation: tag for operation, tag in OPERATIONS.values()}


def _tag(operation: str, path: str) -> str:
    return _TAG_OF.get(operation) or path.strip("/").split("/")[0].replace("-", " ") or "service"


def describe(schema: dict[str, Any]) -> dict[str, Any]:
    """Reshape FastAPI's document in place (see the module docstring)."""
    components = schema.setdefault("components", {})
    components.setdefault("headers", {}).update(copy.deepcopy(HEADERS))
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    schema["tags"] = TAGS
    for path, operations in schema.get("paths", {}).items():
        for op in operations.values():
            _describe_operation(op, path)
    return schema


def _describe_operation(op: dict[str, Any], path: str) -> None:
    op["tags"] = [_tag(op.get("operationId", ""), path)]
    responses: dict[str, Any] = op["responses"]
    responses.pop("422", None)
    if path.startswith(OPEN_PATH_PREFIX):
        op["security"] = []
        responses.pop("401", None)
        responses.pop("403", None)
    else:
        # Keys are enforced only with --api-keys-file: sending none is also a valid way to call.
        op["security"] = [{}, {BEARER: []}]
        responses.setdefault("500", copy.deepcopy(STORE_ERROR))
    if op.get("parameters") and "400" not in responses:
        responses["400"] = {
            "description": "a parameter breaks a rule",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        }
    for status, response in responses.items():
        headers = response.setdefault("headers", {})
        for name in ["X-Request-ID", *STATUS_HEADERS.get(status, [])]:
            headers[name] = {"$ref": f"#/components/headers/{name}"}
        media = response.get("content", {}).get("application/json")
        example = EXAMPLES.get((op.get("operationId", ""), status), ERROR_EXAMPLES.get(status))
        if media is not None and example is not None:
            media["example"] = example
