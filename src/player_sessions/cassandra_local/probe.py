"""Ask a node a real CQL question: an open port is not a ready node."""

from __future__ import annotations

import logging
import ssl
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class CqlAnswer:
    release_version: str
    peers_listed: int  # rows in this node's system.peers_v2 (system.peers before 4.0): the ring drivers see


def _quiet_driver() -> None:
    # Connection refusals while a node boots are expected; the driver would log each one as an error.
    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module="cassandra")


def ask_cql(
    address: str,
    port: int,
    timeout: float = 3.0,
    username: str | None = None,
    password: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> CqlAnswer | None:
    """`SELECT release_version FROM system.local` on exactly this node; None if it does not answer."""
    _quiet_driver()
    from cassandra import InvalidRequest

    from player_sessions.store.connection import open_cluster

    cluster = open_cluster(
        [address],
        port,
        only_hosts=[address],
        username=username,
        password=password,
        ssl_context=ssl_context,
        request_timeout=timeout,
        connect_timeout=timeout,
    )
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local").one()
        try:
            peers = session.execute("SELECT peer FROM system.peers_v2").all()
        except InvalidRequest:  # a Cassandra older than 4.0 (only as a foreign node on the port)
            peers = session.execute("SELECT peer FROM system.peers").all()
        return CqlAnswer(release_version=str(row.release_version), peers_listed=len(peers))
    except Exception:  # any failure means "not answering yet"
        return None
    finally:
        cluster.shutdown()


def set_password(
    address: str,
    port: int,
    username: str,
    old_password: str,
    new_password: str,
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """`ALTER ROLE <username> WITH PASSWORD = ...` logged in as that role; raises if it fails."""
    _quiet_driver()
    from player_sessions.store.connection import open_cluster

    cluster = open_cluster(
        [address],
        port,
        only_hosts=[address],
        username=username,
        password=old_password,
        ssl_context=ssl_context,
        request_timeout=timeout,
        connect_timeout=timeout,
    )
    try:
        session = cluster.connect()
        # A role name cannot be a bind marker; ours is a constant of the launcher, quoted.
        session.execute(f'ALTER ROLE "{username}" WITH PASSWORD = %s', (new_password,))
    finally:
        cluster.shutdown()
