"""/health/live and /health/ready: open with API keys on; ready reads at the configured consistency."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from player_sessions.config import Settings
from player_sessions.store.cassandra import CassandraStore
from player_sessions.store.config import StoreConfig
from player_sessions.store.errors import StoreUnavailable
from tests.support.service import start_service


def test_probes_answer_without_a_key_when_every_route_is_protected(
    test_keyspace_name: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"ops:{uuid.uuid4().hex}\n")
    service = start_service(
        f"{test_keyspace_name}_probes", tmp_path, {"--api-keys-file": str(keys), "--protect-reads": ""}
    )
    try:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            assert client.get("/session-starts", params={"hours": 1}).status_code == 401
            for path in ("/health", "/health/live", "/health/ready"):
                r = client.get(path)
                assert (r.status_code, r.json()) == (200, {"status": "ok"}), path
            assert {"/health/live", "/health/ready"} <= set(client.get("/openapi.json").json()["paths"])
    finally:
        service.stop()


@pytest.fixture()
async def store_at_all(
    cassandra_node: str, test_keyspace_name: str, cql: Any
) -> AsyncIterator[CassandraStore]:
    """A keyspace with two replicas on the one local node, read at ALL: two replicas must answer."""
    keyspace = f"{test_keyspace_name}_ready_all"
    store = await CassandraStore.connect(
        StoreConfig.from_settings(Settings(contact_points=cassandra_node, keyspace=keyspace))
    )
    await store.close()
    cql.execute(
        f"ALTER KEYSPACE {keyspace} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 2}",
        timeout=60,
    )
    store = await CassandraStore.connect(
        StoreConfig.from_settings(
            Settings(contact_points=cassandra_node, keyspace=keyspace, consistency="ALL")
        ),
        ensure_schema=False,
    )
    yield store
    await store.close()
    cql.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)


async def test_ready_needs_the_configured_consistency_where_health_needs_an_answer(
    store_at_all: CassandraStore,
) -> None:
    await store_at_all.ping()  # /health: Cassandra answers
    with pytest.raises(StoreUnavailable, match="ALL"):
        await store_at_all.ready()  # /health/ready: one replica of two cannot answer at ALL
