"""`player-sessions serve`: ensure the schema, then run the ASGI app under uvicorn."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys

from player_sessions.config import Settings
from player_sessions.store.errors import (
    SchemaError,
    SchemaVersionMismatch,
    StoreAuthFailed,
    StoreTlsFailed,
    StoreUnavailable,
)

SCHEMA_WAIT_S = 120.0
EXIT_SCHEMA_MISMATCH = 3  # the keyspace's schema is not this release's: run `player-sessions migrate`


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
    """Migrate the schema (off the event loop), waiting up to `wait_s` for Cassandra."""
    from player_sessions.services.schema import migrate_schema

    await asyncio.get_running_loop().run_in_executor(None, migrate_schema, settings, _quiet, wait_s)


def _quiet(_line: str) -> None:
    pass


def _say(line: str) -> None:
    print(line if line.startswith(("warning", "waiting")) else f"  {line}", file=sys.stderr, flush=True)


def prepare_schema(settings: Settings) -> int:
    """Migrate (default) or, with --no-migrate, check the recorded version. Returns an exit code."""
    from player_sessions.services.schema import check_schema, migrate_schema

    try:
        if settings.migrate:
            print(
                f"migrating keyspace {settings.keyspace} (--no-migrate to only check it):",
                file=sys.stderr,
                flush=True,
            )
            migrate_schema(settings, _say, SCHEMA_WAIT_S)
        else:
            state = check_schema(settings, _say, SCHEMA_WAIT_S)
            print(
                f"keyspace {settings.keyspace} is at schema version {state.version} "
                f"({state.replication.describe()})",
                file=sys.stderr,
                flush=True,
            )
    except (StoreAuthFailed, StoreTlsFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SchemaVersionMismatch as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SCHEMA_MISMATCH
    except StoreUnavailable as exc:
        print(
            f"error: {exc}: start Cassandra (`player-sessions db start`) or fix --contact-points",
            file=sys.stderr,
        )
        return 1
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


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
        log = logging.getLogger("player_sessions")
        log.info(
            "API keys on (%s): POST and DELETE need a key%s",
            ", ".join(keys.names),
            ", GET too" if settings.protect_reads else "",
        )
        if keys.unscoped:
            log.warning(
                "API keys without scopes may do everything (ingest, read, erase, metrics): %s; "
                "name each key's scopes in %s (README, API keys)",
                ", ".join(keys.unscoped),
                settings.api_keys_file,
            )
    status = prepare_schema(settings)
    if status != 0:
        return status
    if not settings.cursor_keys:
        # One key for every worker of this serve, so a page from one worker continues on another.
        settings = settings.model_copy(update={"cursor_keys": secrets.token_urlsafe(32)})
        logging.getLogger("player_sessions").info(
            "pagination cursors are signed with a key generated for this serve: they stop working "
            "when it restarts; set PLAYER_SESSIONS_CURSOR_KEYS when several serve processes answer "
            "the same clients"
        )
    settings_to_env(settings)
    base = f"http://{settings.host}:{settings.port}"
    print(
        f"player-sessions serving on {base}  (docs {base}/docs, OpenAPI {base}/openapi.json, "
        f"health {base}/health); keyspace {settings.keyspace} on {settings.contact_points}",
        flush=True,
    )
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
