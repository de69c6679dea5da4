"""What a benchmark run does: one options object, with the `--quick` and default presets."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_SIZES", "LOAD_PATHS", "QUICK_SIZES", "SCENARIOS", "BenchOptions", "parse_int_list"]

# 1M and 10M events: the default run takes ~21 min on the 2-core reference machine (docs/performance.md).
DEFAULT_SIZES = (1_000_000, 10_000_000)
QUICK_SIZES = (10_000, 30_000)
SCENARIOS = ("ceiling", "api", "queries", "traffic")
# "auto" (the fastest path of the ceiling trials), then the paths of bench.direct (its PATHS).
LOAD_PATHS = ("auto", "store", "raw", "raw-batched", "raw-grouped")
_KEYSPACE_PREFIX = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,31}$")


def parse_int_list(text: str) -> tuple[int, ...]:
    """`1000000,10000000`, `1e6,1e7`, `1M,10M` or `20k` → integers."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip().replace("_", "").lower()
        if not part:
            continue
        scale = 1
        if part.endswith("k"):
            scale, part = 1_000, part[:-1]
        elif part.endswith("m"):
            scale, part = 1_000_000, part[:-1]
        try:
            value = float(part) * scale
        except ValueError:
            raise ValueError(f"not a number: {part!r}") from None
        if value <= 0 or value != int(value):
            raise ValueError(f"must be a positive whole number: {part!r}")
        values.append(int(value))
    if not values:
        raise ValueError("empty list")
    return tuple(values)


@dataclass(frozen=True)
class BenchOptions:
    quick: bool = False
    sizes: tuple[int, ...] = DEFAULT_SIZES
    out: Path = Path("docs/performance.md")
    json_path: Path | None = Path("docs/bench-results.json")
    keyspace_prefix: str = "ps_bench"
    keep: bool = False
    scenarios: tuple[str, ...] = SCENARIOS
    # Cassandra
    contact_points: str = "127.0.0.1"
    cql_port: int = 9042
    base_dir: Path = Path(".cassandra")  # the local node's files: heap, flush, disk use
    cache_dir: Path | None = None  # Cassandra jars (for nodetool); default ~/.cache/player-sessions
    flush: bool = True
    # The service
    clock: str = "2016-12-01T12:34:56Z"
    service_workers: int = 1
    serve_args: tuple[str, ...] = ()  # extra `serve` flags for every service the bench starts
    # Scenario 1: the ceiling
    ceiling_events: int = 50_000
    ceiling_processes: tuple[int, ...] = (1, 2)
    ceiling_store_concurrency: tuple[int, ...] = (2, 8)  # batches of 1,000 in flight per process
    # Statements in flight per process, for raw-batched and raw-grouped each.
    ceiling_raw_concurrency: tuple[int, ...] = (32, 128)
    ceiling_raw_rows: bool = True  # also one trial of one statement per row (no batches)
    # Scenario 2: ingest through the API
    batch_sizes: tuple[int, ...] = (10, 1_000, 10_000)
    concurrencies: tuple[int, ...] = (2, 8)
    client_processes: int = 2
    max_events_in_flight: int | None = None  # skip API cells with batch x clients above this
    ingest_seconds: float = 15.0
    ingest_days: float = 2.0  # "live" events: the last 2 days before the clock, in time order
    low_load_seconds: float = 15.0
    low_load_rate: float = 20.0  # requests/s of 10 events, one connection
    # The low-load cell's events: the last 10 minutes before the clock (live traffic: sessions starting
    # now); then again spread over ingest_days (a replay of late events into the ceiling's hours).
    low_load_minutes: float = 10.0
    profile: bool = True  # py-spy the service during the batch-1,000 cell with the most clients
    quiet_timeout_s: float = 120.0  # longest wait for the machine to go quiet before a measurement
    # Scenario 3-4: queries on data
    query_seconds: float = 10.0
    query_concurrency: int = 4
    query_players: int = 2_000  # random players sampled for GET /players/{id}/sessions
    hours: tuple[float, ...] = (1, 24, 720, 8760)
    loaders: int = 2
    load_path: str = "auto"  # one of LOAD_PATHS: auto = the fastest ceiling path
    whales: int = 3
    whale_days: float = 365.0
    background_batch: int = 1_000
    background_concurrency: int = 2
    background_days: float = 1 / 24  # ingest during queries: events of the last hour, like live traffic
    background_events: int = 50_000  # generated once per size, re-sent (idempotently) if used up
    # Scenario 4: the traffic users send (bench.traffic), on the largest size's data
    traffic_batch_sizes: tuple[int, ...] = (10, 100, 1_000)
    traffic_clients: int = 8
    traffic_seconds: float = 10.0
    traffic_events: int = 150_000  # per pool (live, late); re-sent (idempotently) if used up
    traffic_late_days: float = 30.0
    traffic_mixed_rate: float = 12_000.0  # events/s offered by the paced mixed cell (target: >= 10,000)
    seed: int = 1
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _KEYSPACE_PREFIX.match(self.keyspace_prefix):
            raise ValueError("keyspace prefix: a letter, then up to 31 letters, digits or _")
        if list(self.sizes) != sorted(set(self.sizes)):
            raise ValueError("sizes must be strictly increasing")
        unknown = set(self.scenarios) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenarios: {', '.join(sorted(unknown))}")
        if self.load_path not in LOAD_PATHS:
            raise ValueError(f"load path: one of {', '.join(LOAD_PATHS)}")

    @classmethod
    def quick_preset(cls, **overrides: Any) -> BenchOptions:
        """Small and short: proves every scenario works in well under 3 minutes; numbers are noisy."""
        base = cls(
            quick=True,
            sizes=QUICK_SIZES,
            ceiling_events=8_000,
            ceiling_processes=(1, 2),
            ceiling_store_concurrency=(4,),
            ceiling_raw_concurrency=(64,),
            ceiling_raw_rows=False,
            max_events_in_flight=10_000,
            concurrencies=(1, 2),
            ingest_seconds=2.5,
            low_load_seconds=2.0,
            query_seconds=1.0,
            query_players=500,
            whales=2,
            whale_days=10.0,
            background_events=8_000,
            quiet_timeout_s=15.0,
            traffic_seconds=2.0,
            traffic_events=20_000,
        )
        return replace(base, **overrides)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
            elif isinstance(value, tuple):
                out[key] = list(value)
        return out
