"""The composition root: builds the clock, rules and store from Settings; nothing connects at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field

from player_sessions.config import Settings
from player_sessions.domain.clock import Clock
from player_sessions.domain.validation import ValidationRules
from player_sessions.rollups import MarkCoalescer, RecountFlights, refresh_forever
from player_sessions.store.base import SessionStore
from player_sessions.store.errors import StoreError, StoreUnavailable

log = logging.getLogger("player_sessions")
RECONNECT_DELAY_S = 2.0
# How long a process waits for its first connection before it serves requests anyway (with 503s
# until Cassandra answers): with `serve --workers N` each worker connects on its own, and one that
# took requests before connecting would answer them 503 while its siblings answer 200.
FIRST_CONNECT_WAIT_S = 15.0


@dataclass
class Runtime:
    """What a request handler needs. `store` is None until Cassandra has been reached once."""

    settings: Settings
    clock: Clock
    rules: ValidationRules
    cursor_keys: tuple[bytes, ...]  # the first signs pagination cursors, all verify
    store: SessionStore | None = None
    recounts: RecountFlights = field(default_factory=RecountFlights)
    marks: MarkCoalescer = field(default_factory=MarkCoalescer)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _connected: asyncio.Event = field(default_factory=asyncio.Event)

    def require_store(self) -> SessionStore:
        if self.store is None:
            raise StoreUnavailable("Cassandra has not been reached yet")
        return self.store


def build_runtime(settings: Settings) -> Runtime:
    cursor_keys = settings.cursor_key_list
    if not cursor_keys:
        # `serve` always sets a key shared by its workers; this is an app built some other way.
        log.warning(
            "no cursor keys set (PLAYER_SESSIONS_CURSOR_KEYS): this process signs pagination "
            "cursors with a key of its own, which no other process accepts"
        )
        cursor_keys = [secrets.token_bytes(32)]
    return Runtime(
        settings=settings,
        clock=settings.make_clock(),
        rules=ValidationRules(),
        cursor_keys=tuple(cursor_keys),
    )


async def start_runtime(
    runtime: Runtime, ensure_schema: bool = False, first_connect_wait_s: float = FIRST_CONNECT_WAIT_S
) -> None:
    """Connect (retrying in the background if Cassandra is down) and start the rollup refresher.

    Returns once connected, or after `first_connect_wait_s` if Cassandra does not answer by then.
    """
    runtime._tasks.append(asyncio.create_task(_connect_forever(runtime, ensure_schema)))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(first_connect_wait_s):
            await runtime._connected.wait()


async def stop_runtime(runtime: Runtime) -> None:
    for task in runtime._tasks:
        task.cancel()
    for task in runtime._tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    close = getattr(runtime.store, "close", None)
    if close is not None:
        await close()


async def _connect_forever(runtime: Runtime, ensure_schema: bool) -> None:
    from player_sessions.store.cassandra import CassandraStore
    from player_sessions.store.config import StoreConfig

    config = StoreConfig.from_settings(runtime.settings)
    while runtime.store is None:
        try:
            runtime.store = await CassandraStore.connect(config, ensure_schema=ensure_schema)
            runtime._connected.set()
            log.info("connected to Cassandra at %s", runtime.settings.contact_points)
        except StoreError as exc:
            log.warning("Cassandra not reachable yet (%s); retrying in %.0fs", exc, RECONNECT_DELAY_S)
            await asyncio.sleep(RECONNECT_DELAY_S)
    if runtime.settings.role == "ingest":
        return  # recounts are the query processes' work: this one's loop stays on batches
    await refresh_forever(
        runtime.store,
        runtime.clock,
        runtime.settings.retention,
        runtime.settings.rollup_interval,
        runtime.recounts,
    )
