"""Routes: parse the request, call one use case, shape the answer. No business rules here."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from player_sessions import metrics
from player_sessions.api.body import NDJSON_TYPES, IngestSlot, media_type, read_limited
from player_sessions.api.errors import Misdirected, error_body
from player_sessions.api.event_pieces import event_pieces
from player_sessions.api.models import (
    CountryStartsOut,
    ErasedPlayerOut,
    ErrorOut,
    HealthOut,
    IngestResultOut,
    PlayerSessionsOut,
    StartCountsOut,
)
from player_sessions.api.responses import JsonResponse
from player_sessions.bootstrap import Runtime
from player_sessions.services.counts import starts_per_country
from player_sessions.services.erase import erase_player
from player_sessions.services.ingest import ingest_pieces
from player_sessions.services.sessions import last_sessions
from player_sessions.services.starts import country_starts
from player_sessions.store.errors import StoreError, StoreUnavailable

router = APIRouter()
# Bodies larger than this (~100 events, ~5 ms of CPU to decode, validate and bind) are prepared in the
# decoding thread: on the event loop, every query waiting behind a few such bodies waited tens of ms.
OFFLOAD_BYTES = 16 * 1024

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "a parameter or the body breaks a rule"},
    421: {"model": ErrorOut, "description": "this process's --role does not serve the route (proxy routing)"},
    503: {"model": ErrorOut, "description": "Cassandra unavailable; retry (safe), see Retry-After"},
}


async def runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def served(rt: Runtime, role: str) -> None:
    """Refuse a route this process's --role leaves to others (its proxy sent it to the wrong pool)."""
    mine = rt.settings.role
    if mine != "all" and mine != role:
        raise Misdirected(
            "role",
            f"this process serves {mine} routes only (--role {mine}); send {role} requests to a "
            f"process started with --role {role} or --role all",
        )


def rfc3339(ts: datetime) -> str:
    """A UTC instant as `2016-11-22T20:37:47Z`, with milliseconds only when it has them. isoformat,
    not strftime: 1.4 µs instead of 2.1, forty times per answer of 20 sessions."""
    naive = ts.replace(tzinfo=None)
    return (naive.isoformat(timespec="milliseconds") if ts.microsecond else naive.isoformat()) + "Z"


_EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/EventIn"},
                            "minItems": 1,
                            "maxItems": 100_000,
                        },
                        {"$ref": "#/components/schemas/EventsIn"},
                    ]
                }
            },
            "application/x-ndjson": {"schema": {"type": "string", "description": "one JSON event per line"}},
        },
    }
}


@router.post(
    "/events",
    response_model=IngestResultOut,
    summary="Ingest a batch of 1 to 100,000 session events",
    openapi_extra=_EVENTS_BODY,
    responses={
        **ERRORS,
        408: {"model": ErrorOut, "description": "the body paused or arrived too slowly"},
        413: {"model": ErrorOut, "description": "too many events or too many bytes"},
        415: {"model": ErrorOut, "description": "content type is not JSON or NDJSON"},
    },
)
async def post_events(request: Request, rt: RuntimeDep, slot: IngestSlot) -> JsonResponse:
    served(rt, "ingest")
    settings = rt.settings
    kind = media_type(request.headers.get("content-type"))
    body = await read_limited(
        request.stream(),
        request.headers.get("content-length"),
        request.headers.get("content-encoding"),
        settings.max_body_bytes,
        max_decoded=settings.max_decoded_bytes,
        body_timeout=settings.body_timeout,
        min_rate=settings.body_min_rate,
    )
    slot.shrink_to(len(body))
    pieces = event_pieces(body, kind in NDJSON_TYPES, settings.max_events)
    in_thread = len(body) > OFFLOAD_BYTES
    del body  # the pieces hold it until they are decoded, not while the events are stored
    store = rt.require_store()
    try:
        result = await asyncio.wait_for(
            ingest_pieces(
                pieces, store, rt.clock, settings.retention, rt.rules, in_thread=in_thread, marks=rt.marks
            ),
            timeout=settings.request_timeout,
        )
    except TimeoutError as exc:
        raise StoreUnavailable(f"the batch was not acknowledged in {settings.request_timeout:.0f}s") from exc
    request.state.events = result.received  # for the access log line
    metrics.record_ingest(
        result.stored, result.expired, ((e.field, e.rule) for _, e in result.errors), result.received
    )
    return JsonResponse(
        {
            "received": result.received,
            "stored": result.stored,
            "expired": result.expired,
            "rejected": result.rejected,
            "errors": [{"index": i, "field": e.field, "error": e.message} for i, e in result.errors],
        }
    )


@router.get(
    "/players/{player_id}/sessions",
    response_model=PlayerSessionsOut,
    responses=ERRORS,
    summary="The player's last complete sessions, newest start first",
)
async def get_player_sessions(
    rt: RuntimeDep,
    player_id: Annotated[str, Path(max_length=64)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JsonResponse:
    served(rt, "query")
    found = await last_sessions(
        rt.require_store(),
        rt.clock,
        rt.settings.retention,
        player_id,
        limit,
        rt.settings.player_read_max_rows,
    )
    return JsonResponse(
        {
            "player_id": player_id,
            "sessions": [
                {
                    "session_id": str(s.session_id),
                    "country": s.country,
                    "start": rfc3339(s.start),
                    "end": rfc3339(s.end),
                    "duration_seconds": s.duration_seconds,
                }
                for s in found.sessions
            ],
            "truncated": found.truncated,
        }
    )


@router.delete(
    "/players/{player_id}",
    response_model=ErasedPlayerOut,
    status_code=202,
    responses=ERRORS,
    summary="Erase a player: their events and sessions from every table, and from the counts",
)
async def delete_player(rt: RuntimeDep, player_id: Annotated[str, Path(max_length=64)]) -> JsonResponse:
    served(rt, "query")
    erased = await erase_player(rt.require_store(), rt.clock, rt.settings.retention, player_id)
    return JsonResponse(
        {
            "player_id": erased.player_id,
            "removed": erased.removed,
            "sessions": erased.sessions,
            "rollups_marked_stale": erased.rollups_marked_stale,
        },
        status_code=202,
    )


@router.get(
    "/session-starts",
    response_model=StartCountsOut,
    responses=ERRORS,
    summary="Session starts per country in the last `hours` hours",
)
async def get_session_starts(rt: RuntimeDep, hours: Annotated[float, Query(gt=0)]) -> JsonResponse:
    served(rt, "query")
    counts = await starts_per_country(rt.require_store(), rt.clock, rt.settings.retention, hours, rt.recounts)
    return JsonResponse(
        {
            "from": rfc3339(counts.frm),
            "to": rfc3339(counts.to),
            "hours": counts.hours,
            "total": counts.total,
            "countries": counts.countries,
        }
    )


@router.get(
    "/session-starts/{country}",
    response_model=CountryStartsOut,
    responses=ERRORS,
    summary="One country's session starts in the window, newest first, paginated",
)
async def get_country_starts(
    rt: RuntimeDep,
    country: Annotated[str, Path(min_length=1, max_length=8)],
    hours: Annotated[float | None, Query(gt=0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> JsonResponse:
    served(rt, "query")
    page = await country_starts(
        rt.require_store(), rt.clock, rt.settings.retention, country, hours, limit, cursor, rt.cursor_keys
    )
    return JsonResponse(
        {
            "country": page.country,
            "starts": [
                {"session_id": str(s.session_id), "player_id": s.player_id, "ts": rfc3339(s.ts)}
                for s in page.starts
            ],
            "next": page.next,
        }
    )


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": ErrorOut}},
    summary="200 when Cassandra answers, 503 otherwise",
)
async def health(rt: RuntimeDep) -> JsonResponse:
    try:
        await asyncio.wait_for(rt.require_store().ping(), timeout=5)
    except (StoreError, TimeoutError):
        return JsonResponse(
            error_body("unavailable: Cassandra does not answer") | {"status": "unavailable"},
            status_code=503,
            headers={"Retry-After": "2"},
        )
    return JsonResponse({"status": "ok"})
