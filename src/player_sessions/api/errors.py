"""The one place where errors become HTTP responses.

Exception
 ├── HttpError (this module)          request-level problems found by the HTTP layer
 │    ├── BadRequest          400     body not JSON/NDJSON, empty batch, wrong top level
 │    ├── Unauthorized        401     API keys are on and no `Authorization: Bearer` was sent
 │    ├── Forbidden           403     a Bearer key that is not in --api-keys-file
 │    ├── RequestTimeout      408     the body paused or trickled (--body-timeout, --body-min-rate)
 │    ├── PayloadTooLarge     413     over max_events or max_body_bytes (also decompressed)
 │    ├── UnsupportedMedia    415     a content type other than JSON / NDJSON
 │    └── Busy                503     + Retry-After: every ingest slot stayed busy (--queue-timeout)
 ├── domain.errors.InvalidRequest 400 a query parameter breaks a rule (field + rule)
 ├── store.errors.StoreUnavailable 503 + Retry-After: Cassandra can't take it now; retry is safe
 ├── store.errors.StoreError      500 a bug of ours in CQL: logged with its detail
 └── RequestValidationError       400 FastAPI's own parameter checks, reworded as field: rule
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from player_sessions.api.responses import JsonResponse
from player_sessions.domain.errors import InvalidRequest
from player_sessions.store.errors import StoreError, StoreUnavailable

log = logging.getLogger("player_sessions.api")
RETRY_AFTER_S = 2


class HttpError(Exception):
    status = 400
    headers: dict[str, str] | None = None

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class BadRequest(HttpError):
    status = 400


class Unauthorized(HttpError):
    status = 401

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(field, rule)
        self.headers = {"WWW-Authenticate": 'Bearer realm="player-sessions"'}


class Forbidden(HttpError):
    status = 403


class Misdirected(HttpError):
    """The request reached a process whose --role does not serve its route: a proxy's routing error."""

    status = 421


class RequestTimeout(HttpError):
    status = 408

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(field, rule)
        # The client is too slow to be worth waiting for: close instead of reading the rest of its body.
        self.headers = {"Connection": "close"}


class PayloadTooLarge(HttpError):
    status = 413


class UnsupportedMedia(HttpError):
    status = 415


class Busy(HttpError):
    """Back-pressure: nothing was read or stored; the client retries after Retry-After."""

    status = 503

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(field, rule)
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


def error_body(message: str, field: str | None = None, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"error": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return body


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HttpError)
    async def _http_error(_: Request, exc: HttpError) -> JsonResponse:
        return JsonResponse(error_body(str(exc), exc.field), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(InvalidRequest)
    async def _invalid(_: Request, exc: InvalidRequest) -> JsonResponse:
        return JsonResponse(error_body(str(exc), exc.field), status_code=400)

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_: Request, exc: StoreUnavailable) -> JsonResponse:
        log.warning("503: %s", exc)
        return JsonResponse(
            error_body(
                "storage unavailable: Cassandra could not complete the request; nothing was "
                "acknowledged, retry the whole request"
            ),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError) -> JsonResponse:
        log.error("storage error: %s", exc)
        return JsonResponse(error_body("internal storage error"), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JsonResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body", "header")]
        field = ".".join(loc) or "request"
        rule = str(first.get("msg", "invalid")).lower()
        return JsonResponse(error_body(f"{field}: {rule}", field), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(_: Request, exc: StarletteHTTPException) -> JsonResponse:
        return JsonResponse(
            error_body(str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )
