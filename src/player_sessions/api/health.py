"""Probes for orchestrators, open even when API keys are on.

- `/health/live`: the process answers. It never touches Cassandra, so a database blip does not make a
  liveness probe restart healthy API processes.
- `/health/ready`: Cassandra answers a read of our keyspace at the configured consistency, so a
  readiness probe takes the process out of the load balancer while its requests would get 503s.
- `/health` (routes.py): Cassandra answers at all.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from player_sessions.api.errors import error_body
from player_sessions.api.models import ErrorOut, HealthOut
from player_sessions.api.responses import JsonResponse
from player_sessions.bootstrap import Runtime
from player_sessions.store.errors import StoreError

router = APIRouter()
READY_TIMEOUT_S = 5.0


@router.get(
    "/health/live",
    response_model=HealthOut,
    summary="200 while the process answers; never touches Cassandra (liveness probe)",
)
async def live() -> JsonResponse:
    return JsonResponse({"status": "ok"})


@router.get(
    "/health/ready",
    response_model=HealthOut,
    responses={503: {"model": ErrorOut}},
    summary="200 when Cassandra answers a read at the configured consistency, 503 otherwise "
    "(readiness probe)",
)
async def ready(request: Request) -> JsonResponse:
    rt: Runtime = request.app.state.runtime
    try:
        await asyncio.wait_for(rt.require_store().ready(), timeout=READY_TIMEOUT_S)
    except (StoreError, TimeoutError):
        body = error_body(f"not ready: Cassandra does not answer at {rt.settings.consistency}")
        return JsonResponse(body | {"status": "unavailable"}, status_code=503, headers={"Retry-After": "2"})
    return JsonResponse({"status": "ok"})
