"""`player-sessions serve`: ensure the schema, then run the ASGI app under uvicorn."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from player_sessions.config import Settings
from player_sessions.store.errors import SchemaError, StoreUnavailable

SCHEMA_WAIT_S = 120.0


def settings_to_env(settings: Settings) -> None:
    """Workers build their own app from the environment: hand every setting down that way."""
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if name == "retention":
            value = f"{int(value.total_seconds())}s"
        elif name == "clock":
            value = value.isoformat()
        os.environ[f"PLAYER_SESSIONS_{name.upper()}"] = str(value)


async def ensure_schema(settings: Settings, wait_s: float = SCHEMA_WAIT_S) -> None:
    from player_sessions.store.cassandra import CassandraStore

    deadline = time.monotonic() + wait_s
    while True:
        try:
            store = await CassandraStore.connect(settings, ensure_schema=True)
            await store.close()
            return
        except StoreUnavailable as exc:
            if time.monotonic() > deadline:
                raise
            print(f"waiting for Cassandra at {settings.contact_points} ... ({exc.__class__.__name__})",
                  file=sys.stderr, flush=True)
            await asyncio.sleep(2)


def run_server(settings: Settings) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(ensure_schema(settings))
    except (StoreUnavailable, SchemaError) as exc:
        print(f"error: {exc}: start Cassandra (`player-sessions db start`) or fix --contact-points",
              file=sys.stderr)
        return 1
    settings_to_env(settings)
    base = f"http://{settings.host}:{settings.port}"
    print(f"player-sessions serving on {base}  (docs {base}/docs, OpenAPI {base}/openapi.json, "
          f"health {base}/health); keyspace {settings.keyspace} on {settings.contact_points}", flush=True)
    uvicorn.run(
        "player_sessions.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    return 0
