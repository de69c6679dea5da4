"""The wire format both clients share: NDJSON bodies cut to the server's limits, gzip, headers, and
what an answer means (success, retry, or refusal)."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx

from player_sessions import __version__
from player_sessions.client.errors import ApiError
from player_sessions.client.models import Event, rfc3339
from player_sessions.client.retry import RETRY_STATUSES

NDJSON: Final = "application/x-ndjson"
# The service's defaults (--max-events, --max-body-bytes); the body limit applies to the
# decompressed size as well, so cutting on the uncompressed size is what keeps a request under it.
SERVER_MAX_EVENTS: Final = 100_000
SERVER_MAX_BYTES: Final = 64 * 1024 * 1024
USER_AGENT: Final = f"player-sessions-client/{__version__}"

EventLike = Event | Mapping[str, Any]
T = TypeVar("T")


def _default(value: object) -> object:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"cannot send a {type(value).__name__} in an event")


def encode_event(event: EventLike) -> bytes:
    """One NDJSON line (no newline). UUIDs and datetimes in a dict are written as the service reads them."""
    body = event.to_json() if isinstance(event, Event) else event
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=_default).encode()


def split(lines: Sequence[bytes], max_events: int, max_bytes: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges of ``lines`` whose bodies hold at most ``max_events`` lines and
    ``max_bytes`` bytes (a newline after each). A single line over ``max_bytes`` goes alone, and the
    service says 413 about it."""
    start, size = 0, 0
    for i, line in enumerate(lines):
        cost = len(line) + 1
        if i > start and (i - start >= max_events or size + cost > max_bytes):
            yield start, i
            start, size = i, 0
        size += cost
    if start < len(lines):
        yield start, len(lines)


def ndjson(lines: Sequence[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def events_request(body: bytes, request_id: str, compress: int | None) -> tuple[bytes, dict[str, str]]:
    """The content and headers of a POST /events; ``compress`` is a gzip level or None."""
    headers = {"Content-Type": NDJSON, "X-Request-ID": request_id}
    if compress is not None:
        # mtime=0: the same batch gives the same bytes on every retry.
        body = gzip.compress(body, compresslevel=compress, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return body, headers


def new_request_id() -> str:
    return uuid.uuid4().hex


def part_id(request_id: str | None, n: int, parts: int) -> str | None:
    """The request id of part ``n`` of a split send: the caller's id, suffixed when there are several."""
    if request_id is None or parts == 1:
        return request_id
    return f"{request_id}.{n + 1}"


def base_headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def player_path(player_id: str, tail: str = "") -> str:
    return f"/players/{quote(player_id, safe='')}{tail}"


def transport_failure(exc: httpx.TransportError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def is_retryable(status: int) -> bool:
    return status in RETRY_STATUSES


def refusal(response: httpx.Response) -> ApiError:
    """The service's error body (``{"error", "field"}``) as an ``ApiError``."""
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        field = body.get("field")
        return ApiError(
            response.status_code, body["error"], field if isinstance(field, str) else None, request_id
        )
    return ApiError(
        response.status_code, response.text[:300].strip() or response.reason_phrase, None, request_id
    )


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ApiError(
            response.status_code,
            f"the answer is not JSON: {response.text[:200]!r}",
            None,
            response.headers.get("x-request-id"),
        ) from exc


def parse_with(response: httpx.Response, parse: Callable[[Any], T]) -> T:
    """``parse(json)``, turning a body that is not the contract into an ``ApiError``."""
    body = json_body(response)
    try:
        return parse(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ApiError(
            response.status_code,
            f"unexpected answer: {str(body)[:200]}",
            None,
            response.headers.get("x-request-id"),
        ) from exc
