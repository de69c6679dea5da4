"""Use cases of the schema: migrate it to the version this release needs, or check that it is there.

`player-sessions migrate` (and `serve`, unless --no-migrate) migrate; `serve --no-migrate` checks, so
production API processes need no DDL rights and never race each other on schema changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from player_sessions.config import Settings
from player_sessions.store import migrations
from player_sessions.store.config import StoreConfig
from player_sessions.store.errors import StoreUnavailable
from player_sessions.store.migrations import SchemaAdmin, SchemaState

Say = Callable[[str], None]
RETRY_S = 2.0


def migrate_schema(settings: Settings, say: Say, wait_s: float = 0.0) -> SchemaState:
    """Create or upgrade the keyspace and tables, wait for schema agreement, record the version."""
    config = StoreConfig.from_settings(settings)
    requested, default = migrations.replication_of(config)
    with _admin(config, say, wait_s) as admin:
        say(
            f"Cassandra {admin.release()} at {config.contact_points}: "
            + ", ".join(
                f"{n} node{'s' if n != 1 else ''} in {dc}"
                for dc, n in sorted(admin.nodes_per_datacenter().items())
            )
        )
        return migrations.migrate(admin, requested, default, config.create_keyspace, say)


def check_schema(settings: Settings, say: Say, wait_s: float = 0.0) -> SchemaState:
    """The recorded version is this release's (SchemaVersionMismatch otherwise); says the replication
    warnings, as migrate does."""
    with _admin(StoreConfig.from_settings(settings), say, wait_s) as admin:
        state = migrations.check(admin)
        for line in state.replication.advice(admin.nodes_per_datacenter()):
            say(f"warning: {line}")
        return state


@contextmanager
def _admin(config: StoreConfig, say: Say, wait_s: float) -> Iterator[SchemaAdmin]:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            admin = SchemaAdmin.open(config)
            break
        except StoreUnavailable as exc:
            if time.monotonic() + RETRY_S > deadline:
                raise
            say(f"waiting for Cassandra at {config.contact_points} ... ({exc.__class__.__name__})")
            time.sleep(RETRY_S)
    try:
        yield admin
    finally:
        admin.close()
