"""Per-request observation, as a plain ASGI middleware (no response buffering, streaming untouched).

For every HTTP request: a request id (the client's `X-Request-ID` if it is a sane token, else a new
one) echoed in the response's `X-Request-ID` and attached to every log record made while handling it;
the request count and latency by method, route *template* and status; and one access log line:
request id, method, route, status, events (POST /events), duration, the API key's name (never the key).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from player_sessions import metrics
from player_sessions.logsetup import ACCESS_LOGGER, request_id_var

access_log = logging.getLogger(ACCESS_LOGGER)
REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}", re.ASCII)
UNMATCHED = "<unmatched>"


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = bytes(value).decode("latin-1").strip()
            if _CLIENT_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class ObserveMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        token = request_id_var.set(request_id)
        began = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - began
            method = scope.get("method", "")
            route = route_template(scope)
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(method, route).observe(elapsed)
            fields: dict[str, Any] = {
                # The route template, not the path: player ids stay out of the logs (erasure).
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "events": state.get("events"),
                "duration_ms": round(elapsed * 1000, 1),
                "key": state.get("api_key_name"),
            }
            access_log.info("%s %s %s", method, route, status, extra={"access": fields})
            request_id_var.reset(token)
