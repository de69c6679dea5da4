"""Rows to requests: bind (statement, values) rows lazily and cut them into unlogged batches of rows
that share their replicas, each under Cassandra's batch size warning. The store sends what this
yields for every multi-row write (ingest, marks, saved counts, an erase's deletions); the bench's
raw-grouped path sends the same batches. Batches of one row go as the bound statement itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from cassandra.query import PreparedStatement

from player_sessions.store.binding import RowEncoder, encoder_of, unlogged_batch

# An unlogged batch of rows sharing their replicas (see replica_batches): cut before its estimated size
# passes 4.5 KiB, under Cassandra's default batch_size_warn_threshold (5 KiB, checked on batches of
# several partitions), or at 100 rows. Cassandra sizes a row as its values plus ~46 bytes (timestamps,
# TTL and liveness of its cells: 100 player_events rows with 6,300 bytes of values measured 10.6 KiB).
BATCH_BYTES = 4608
BATCH_ROW_OVERHEAD_BYTES = 64
BATCH_ROWS = 100

Encoded = tuple[RowEncoder, list[Any], Sequence[Any]]  # a row: its encoder, values and params


def replica_batches(
    metadata: Any, keyspace: str, rows: Iterable[tuple[PreparedStatement, Sequence[Any]]]
) -> Iterator[Any]:
    """Bind rows lazily (store.binding: the driver's bytes, cheaper) and yield them as unlogged
    batches of rows that share their replicas.

    The Python driver's cost is per request, not per row, and a realistic batch of events touches
    about as many player partitions as it has events: one request per partition was most of ingest's
    CPU. Rows are grouped by the set of nodes that own them (the grouping the Spark connector uses by
    default), so a batch costs the cluster what its rows would one by one (the token-aware coordinator
    is a replica of every row) but costs the client one request. A batch is cut before its estimated
    size passes BATCH_BYTES, under Cassandra's default 5 KiB batch_size_warn_threshold. Writes are
    idempotent upserts, so a batch that fails is retried whole with its request.

    `metadata` is the driver's `Cluster.metadata` (`get_replicas(keyspace, routing_key)`).
    """
    # Where every node holds every row (one node; RF >= nodes in each DC) there is one group, and the
    # per-row replica lookup (a token hash and a ring search: a third of ingest's CPU) is skipped.
    one_group = one_replica_set(metadata, keyspace)
    replicas_of: dict[bytes | None, frozenset[Any]] = {}
    pending: dict[frozenset[Any] | None, tuple[list[Encoded], list[int]]] = {}
    for statement, params in rows:
        encoder = encoder_of(statement)
        values = encoder.values(params)
        size = BATCH_ROW_OVERHEAD_BYTES
        for value in values:
            if value.__class__ is bytes:
                size += len(value)
        group_key: frozenset[Any] | None = None
        if not one_group:
            routing_key = encoder.routing_key(values)
            group_key = replicas_of.get(routing_key)
            if group_key is None:
                group_key = replicas_of[routing_key] = frozenset(metadata.get_replicas(keyspace, routing_key))
        group = pending.get(group_key)
        if group is None:
            group = pending[group_key] = ([], [0])
        encoded, used = group
        if encoded and (used[0] + size > BATCH_BYTES or len(encoded) >= BATCH_ROWS):
            yield _batch_of(encoded)
            encoded.clear()
            used[0] = 0
        encoded.append((encoder, values, params))
        used[0] += size
    for encoded, _ in pending.values():
        if encoded:
            yield _batch_of(encoded)


def one_replica_set(metadata: Any, keyspace: str) -> bool:
    """True when every row of the keyspace has the same replicas: one node, or a replication factor
    at least the number of nodes in each of its datacenters."""
    all_hosts = getattr(metadata, "all_hosts", None)
    if all_hosts is None:
        return False
    hosts = all_hosts()
    if len(hosts) <= 1:
        return True
    keyspaces = getattr(metadata, "keyspaces", None) or {}
    strategy = getattr(keyspaces.get(keyspace), "replication_strategy", None)
    factors = getattr(strategy, "dc_replication_factors", None)  # NetworkTopologyStrategy
    if factors:
        return all(sum(1 for h in hosts if h.datacenter == dc) <= int(rf) for dc, rf in factors.items())
    factor = getattr(strategy, "replication_factor", None)  # SimpleStrategy
    return factor is not None and len(hosts) <= int(factor)


def _batch_of(encoded: list[Encoded]) -> Any:
    if len(encoded) == 1:
        encoder, values, params = encoded[0]
        return encoder.bound(values, params)
    return unlogged_batch([(encoder, values) for encoder, values, _ in encoded])
