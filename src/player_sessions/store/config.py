"""The store's own settings: where Cassandra is, how to log in, the keyspace and the shape a new one
gets, the consistency, and the back-pressure limits. The store reads nothing else, so it can be built
and tested without the service's Settings; `StoreConfig.from_settings` is the one place that maps
those (flags and PLAYER_SESSIONS_* variables) onto it, which keeps store/ free of the CLI's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from player_sessions.config import Settings


@dataclass(frozen=True, kw_only=True)
class StoreConfig:
    # Connection
    contact_points: str  # comma-separated, as configured: error messages name them as given
    port: int
    datacenter: str  # the local data centre: routing, and a new keyspace's replication
    username: str | None
    password: str | None = field(repr=False)
    tls: bool
    tls_ca_file: str | None
    tls_verify: bool
    # Keyspace
    keyspace: str
    consistency: str  # a ConsistencyLevel name, e.g. LOCAL_QUORUM
    create_keyspace: bool
    replication: str | None  # `3` or `dc1:3,dc2:3`; None: replication_factor in datacenter
    replication_factor: int
    # Back-pressure
    max_in_flight: int  # statements in flight per process
    max_in_flight_per_request: int
    max_ingest_in_flight: int  # batches of ingested rows in flight per process
    queue_timeout: float  # seconds a statement waits for a slot before StoreUnavailable

    @property
    def contact_point_list(self) -> list[str]:
        return [p.strip() for p in self.contact_points.split(",") if p.strip()]

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreConfig:
        return cls(
            contact_points=settings.contact_points,
            port=settings.cql_port,
            datacenter=settings.datacenter,
            username=settings.username,
            password=settings.password,
            tls=settings.tls,
            tls_ca_file=settings.tls_ca_file,
            tls_verify=settings.tls_verify,
            keyspace=settings.keyspace,
            consistency=settings.consistency,
            create_keyspace=settings.create_keyspace,
            replication=settings.replication,
            replication_factor=settings.replication_factor,
            max_in_flight=settings.max_in_flight,
            max_in_flight_per_request=settings.max_in_flight_per_request,
            max_ingest_in_flight=settings.max_ingest_in_flight,
            queue_timeout=settings.queue_timeout,
        )
