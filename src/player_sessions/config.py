"""One Settings object: `PLAYER_SESSIONS_*` environment variables, overridden by CLI flags."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from player_sessions.domain.clock import Clock, FixedClock, SystemClock, parse_instant
from player_sessions.domain.retention import parse_duration

Consistency = Literal["ONE", "TWO", "THREE", "QUORUM", "LOCAL_QUORUM", "LOCAL_ONE", "EACH_QUORUM", "ALL"]


class Settings(BaseSettings):
    """Everything `serve` needs. Each field is `PLAYER_SESSIONS_<NAME>` and `--<name>`."""

    model_config = SettingsConfigDict(env_prefix="PLAYER_SESSIONS_", extra="ignore")

    # HTTP
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=1, le=65535, description="port to listen on")
    workers: int = Field(1, ge=1, le=64, description="API worker processes (one per core is typical)")
    role: Literal["all", "ingest", "query"] = Field(
        "all",
        description="what this process serves: `ingest` (POST /events), `query` (reads and erasure) or "
        "`all`; a proxy that sends POST /events to ingest processes keeps queries off the processes "
        "that parse batches (docs/operations.md)",
    )
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="largest request body accepted")
    max_events: int = Field(100_000, ge=1, description="most events in one request")
    # 100,000 of the longest valid events, pretty-printed, take 23.8 MB (a typical batch: 14 MB).
    max_decoded_bytes: int = Field(
        24 * 1024 * 1024,
        ge=1024,
        description="largest request body once decompressed: the JSON that is parsed (a plain body too)",
    )
    request_timeout: float = Field(120.0, gt=0, description="seconds a request may take before 503")
    # Limits and back-pressure (docs/reliability.md)
    body_timeout: float = Field(
        30.0,
        gt=0,
        description="seconds a request body may pause, and the grace "
        "before --body-min-rate applies; 408 after",
    )
    body_min_rate: float = Field(
        16_384,
        ge=0,
        description="bytes/s a request body must average after --body-timeout seconds (0: no minimum)",
    )
    max_ingest_requests: int = Field(
        64, ge=1, le=10_000, description="POST /events requests read, parsed and stored at once per process"
    )
    ingest_budget_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="sum of the body sizes of the "
        "POST /events requests in progress per process (bounds memory; a "
        "compressed or chunked body weighs what it may decompress to)",
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        description="seconds a connection may take to send a request's headers; then 408 and closed",
    )
    max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        description="largest request head (request line and headers); 431 and closed above it",
    )
    max_connections: int = Field(
        2048,
        ge=1,
        description="open connections per worker; more are answered "
        "503 and closed (keep under the open-files limit, ulimit -n)",
    )
    queue_timeout: float = Field(
        5.0,
        gt=0,
        description="seconds a request waits for an ingest slot or a "
        "Cassandra write slot before 503 + Retry-After",
    )

    # Cassandra
    contact_points: str = Field("127.0.0.1", description="comma-separated Cassandra addresses")
    cql_port: int = Field(9042, ge=1, le=65535, description="Cassandra's CQL port")
    keyspace: str = Field(
        "player_sessions", pattern=r"^[a-zA-Z][a-zA-Z0-9_]{0,47}$", description="keyspace for our tables"
    )
    replication_factor: int = Field(1, ge=1, le=10, description="replicas per data centre")
    datacenter: str = Field("datacenter1", description="local data centre (replication and routing)")
    consistency: Consistency = Field("LOCAL_QUORUM", description="consistency of reads and writes")
    username: str | None = Field(None, description="Cassandra user (PasswordAuthenticator)")
    password: str | None = Field(
        None,
        description="Cassandra password (prefer the environment variable: a flag shows in the process list)",
    )
    tls: bool = Field(False, description="connect to Cassandra over TLS")
    tls_ca_file: str | None = Field(None, description="CA bundle that signs Cassandra's certificate")
    tls_verify: bool = Field(
        True, description="verify Cassandra's certificate and host name (off for testing only)"
    )
    create_keyspace: bool = Field(
        True,
        description="create the keyspace if missing (off for managed "
        "services where keyspaces are made in their console)",
    )
    replication: str | None = Field(
        None,
        description="keyspace replication: `3` (SimpleStrategy) or "
        "`dc1:3,dc2:3` (NetworkTopologyStrategy); default --datacenter:"
        "--replication-factor for a new keyspace, unchanged for an existing one",
    )
    migrate: bool = Field(
        True,
        description="create/upgrade the schema at start-up; off: only check that "
        "its recorded version is this release's (run `player-sessions migrate` first)",
    )
    max_in_flight: int = Field(
        256, ge=1, le=10_000, description="Cassandra statements in flight per process (back-pressure)"
    )
    max_in_flight_per_request: int = Field(
        32,
        ge=1,
        le=10_000,
        description="Cassandra statements one request keeps in flight (under --max-in-flight): a large batch "
        "then leaves the event loop to other requests between its writes",
    )
    max_ingest_in_flight: int = Field(
        32,
        ge=1,
        le=10_000,
        description="batches of ingested rows in flight per process (under --max-in-flight): a query's reads "
        "then wait behind at most this many writes on the node, not behind every request's",
    )

    # Domain
    retention: timedelta = Field(timedelta(days=365), description="how long data is kept: 365d, 7d, 2h, 30s")
    clock: datetime | None = Field(
        None, description="freeze 'now' at this instant, e.g. 2016-12-01T00:00:00Z (replay old data)"
    )
    player_read_max_rows: int = Field(
        20_000,
        ge=1,
        description="most of a player's events one read of "
        "their sessions goes through; past it the answer is `truncated`",
    )
    rollup_interval: float = Field(10.0, gt=0, description="seconds between background recounts")

    # Operations: logs and API keys
    log_format: Literal["text", "json"] = Field("text", description="log lines as readable text or JSON")
    api_keys_file: str | None = Field(
        None,
        description="file of `name:key` lines; when set, POST and DELETE need `Authorization: Bearer <key>`",
    )
    protect_reads: bool = Field(False, description="with --api-keys-file, GET routes need a key too")
    cursor_keys: str | None = Field(
        None,
        description="comma-separated keys (16+ characters each) that "
        "sign and verify pagination cursors: the first signs, all verify; "
        "`serve` generates one for its workers when unset (prefer the "
        "environment variable: a flag shows in the process list)",
    )
    protect_metrics: bool = Field(
        False,
        description="with --api-keys-file, GET /metrics needs a key "
        "with the `metrics` scope even without --protect-reads",
    )

    @field_validator("retention", mode="before")
    @classmethod
    def _parse_retention(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("replication")
    @classmethod
    def _check_replication(cls, value: str | None) -> str | None:
        from player_sessions.store.replication import Replication

        if value is not None:
            Replication.parse(value)  # a ValueError names the rule
        return value

    @field_validator("clock", mode="before")
    @classmethod
    def _parse_clock(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_instant(value) if value.strip() else None
        return value

    @field_validator("cursor_keys")
    @classmethod
    def _check_cursor_keys(cls, value: str | None) -> str | None:
        if value is not None and any(len(k.strip()) < 16 for k in value.split(",")):
            raise ValueError("each cursor key needs at least 16 characters (comma-separated, no empty key)")
        return value

    @property
    def cursor_key_list(self) -> list[bytes]:
        return [k.strip().encode() for k in (self.cursor_keys or "").split(",") if k.strip()]

    def make_clock(self) -> Clock:
        return FixedClock(self.clock) if self.clock is not None else SystemClock()
