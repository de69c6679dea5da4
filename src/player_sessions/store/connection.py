"""Connecting to Cassandra. `open_cluster` is where the driver is configured (contact points and port,
TLS and login, load balancing, the execution profile, timeouts, reconnection, the protocol version)
for every Cluster the package builds (the store, schema work, the launcher's probes, the bench; tests
use it too); callers choose only what differs between them. `connect` opens the store's
session from its StoreConfig, and `connect_session` does the same for schema work with the failure to
connect already translated into the store's errors.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    LoadBalancingPolicy,
    TokenAwarePolicy,
    WhiteListRoundRobinPolicy,
)

from player_sessions.store import tls
from player_sessions.store.config import StoreConfig
from player_sessions.store.errors import StoreError, StoreUnavailable, raise_if_auth_failed
from player_sessions.store.rows import cached_named_tuple_factory

CQL_PORT = 9042
STATEMENT_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
# Pinned rather than negotiated: the driver checksums v5 frames in pure Python, client CPU on every
# request for nothing we use.
PROTOCOL_VERSION = 4


def open_cluster(
    contact_points: Sequence[str],
    port: int = CQL_PORT,
    *,
    datacenter: str = "",
    only_hosts: Sequence[str] | None = None,
    consistency: str = "LOCAL_ONE",
    username: str | None = None,
    password: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    request_timeout: float = STATEMENT_TIMEOUT_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> Cluster:
    """A driver Cluster, not connected yet: `cluster.connect()` it, and `cluster.shutdown()` it when done.

    Requests go token-aware to the nodes of `datacenter` (empty: the contact points' data centre, as
    the driver decides) or, with `only_hosts`, to those addresses and never another: a probe of one
    node, or a test cluster that must not reach the development node beside it. `consistency` is a
    ConsistencyLevel name (LOCAL_ONE, the driver's own default, when not chosen). A login is sent when
    `username` is set. `connect_timeout` bounds the first connection and the control connection's
    queries; `request_timeout` each statement that names no timeout of its own.
    """
    balancing: LoadBalancingPolicy
    if only_hosts is not None:
        balancing = WhiteListRoundRobinPolicy(list(only_hosts))
    else:
        balancing = TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=datacenter))
    profile = ExecutionProfile(
        load_balancing_policy=balancing,
        consistency_level=getattr(ConsistencyLevel, consistency),
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=request_timeout,
        row_factory=cached_named_tuple_factory,
    )
    auth = PlainTextAuthProvider(username, password or "") if username else None
    return Cluster(
        contact_points=list(contact_points),
        port=port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        auth_provider=auth,
        ssl_context=ssl_context,
        # Come back quickly after an outage: the service must recover by itself within seconds.
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=5.0),
        connect_timeout=connect_timeout,
        control_connection_timeout=connect_timeout,
        idle_heartbeat_interval=5,
        protocol_version=PROTOCOL_VERSION,
    )


def connect(config: StoreConfig) -> tuple[Cluster, Session]:
    """The store's cluster and session (blocking). A failure is the driver's: see `unreachable`."""
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    ssl_context = tls.client_context(config)
    cluster = open_cluster(
        config.contact_point_list,
        config.port,
        datacenter=config.datacenter,
        consistency=config.consistency,
        username=config.username,
        password=config.password,
        ssl_context=ssl_context,
    )
    return cluster, cluster.connect()


def unreachable(exc: NoHostAvailable, config: StoreConfig) -> StoreError:
    """What a failed first connection means: raises StoreAuthFailed (a refused login) or StoreTlsFailed
    (a failed handshake), which no retry mends; otherwise returns the StoreUnavailable to raise."""
    raise_if_auth_failed(exc, config)
    tls.raise_if_handshake_failed(getattr(exc, "errors", None), config)
    return StoreUnavailable(f"Cassandra at {config.contact_points} is not reachable: {exc}")


def connect_session(config: StoreConfig) -> tuple[Cluster, Session]:
    """A driver session for schema work (blocking), its connection failures translated. The driver's
    own report of a failed first connection (a logged traceback) is left out: the error says it."""
    driver_log = logging.getLogger("cassandra.cluster")
    level = driver_log.level
    driver_log.setLevel(logging.CRITICAL)
    try:
        return connect(config)
    except NoHostAvailable as exc:
        raise unreachable(exc, config) from exc
    finally:
        driver_log.setLevel(level)
