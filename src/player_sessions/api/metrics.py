"""`GET /metrics`: Prometheus exposition of every metric in `player_sessions.metrics`."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from player_sessions import metrics

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def get_metrics() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
