"""`player-sessions serve`: ensure the schema, then run the ASGI app under uvicorn."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from player_sessions.config import Settings
from player_sessions.store.errors import SchemaError, StoreAuthFailed, StoreUnavailable

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
    from player_sessions import logsetup, metrics

    logsetup.configure(settings.log_format)
    # Before anything imports prometheus_client (the store does): with --workers N it then runs in
    # multi-process mode here and in every worker, which inherit the variable.
    metrics_dir = metrics.prepare_multiprocess_dir(settings.workers)
    try:
        return _run(settings)
    finally:
        metrics.remove_multiprocess_dir(metrics_dir)


def _run(settings: Settings) -> int:
    import uvicorn

    from player_sessions import logsetup
    from player_sessions.api import connections
    from player_sessions.api.auth import ApiKeysError, load_api_keys

    if settings.api_keys_file:
        try:
            keys = load_api_keys(settings.api_keys_file)
        except ApiKeysError as exc:
            print(f"error: --api-keys-file: {exc}", file=sys.stderr)
            return 1
        logging.getLogger("player_sessions").info(
            "API keys on (%s): POST and DELETE need a key%s", ", ".join(keys.names),
            ", GET too" if settings.protect_reads else "")
    try:
        asyncio.run(ensure_schema(settings))
    except StoreAuthFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
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
        http=connections.PROTOCOL,  # httptools, with header deadline, header size and connection caps
        log_level="warning",
        timeout_graceful_shutdown=10,
        log_config=logsetup.log_config(settings.log_format),
    )
    return 0
