"""The capacity model: pure functions from a load and its assumptions to a plan (no I/O).

Costs per event come from `constants`; everything the model cannot measure here (cores per node,
how busy a core may run, disk per node, how full a disk may get, the busiest country's share) is an
input with a stated default, so a plan names its assumptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from player_sessions.capacity import constants as c
from player_sessions.store.schema import MINUTE_SHARDS

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Assumptions:
    events_per_second: float
    replication: int = 3  # replicas per data centre
    datacenters: int = 1
    retention_days: float = 365.0
    cores_per_node: int = 8
    disk_per_node_gb: float = 2_000.0
    cpu_target: float = 0.5  # share of a core's time a plan may use: room for peaks, repair, a lost node
    disk_fill: float = 0.5  # share of a disk data may fill: compaction rewrites need free space
    peak_factor: float = 1.0  # peak rate / the given rate
    top_country_share: float = 0.2  # the busiest country's share of starts
    api_cpu_us: float = c.API_CPU_US_PER_EVENT.value
    cassandra_cpu_us: float = c.CASSANDRA_CPU_US_PER_EVENT_REPLICA.value
    disk_bytes_per_event: float = c.DISK_BYTES_PER_EVENT_REPLICA.value

    def __post_init__(self) -> None:
        if self.events_per_second <= 0:
            raise ValueError("events per second must be > 0")
        if self.replication < 1 or self.datacenters < 1 or self.cores_per_node < 1:
            raise ValueError("replication, data centres and cores per node must be >= 1")
        if not (0 < self.cpu_target <= 1 and 0 < self.disk_fill <= 1 and 0 < self.top_country_share <= 1):
            raise ValueError("--cpu-target, --disk-fill and --top-country-share must be in (0, 1]")
        if self.retention_days <= 0 or self.disk_per_node_gb <= 0 or self.peak_factor < 1:
            raise ValueError("retention and disk must be > 0, the peak factor >= 1")


@dataclass(frozen=True)
class PartitionCheck:
    table: str
    rows: int  # rows of the largest partition
    megabytes: float
    over_limit: bool


@dataclass(frozen=True)
class Plan:
    assumptions: Assumptions
    events_per_day: float
    events_retained: float
    disk_tb_per_dc: float  # data of one data centre: every replica, compressed
    nodes_for_cpu: int  # per data centre
    nodes_for_disk: int
    nodes_per_dc: int
    api_processes: int  # per data centre that takes writes
    compaction_windows: int
    window_gb_per_node: float  # one TWCS window of one node: what a window's compaction rewrites
    partitions: tuple[PartitionCheck, ...]


def events_per_day(events_per_second: float) -> float:
    return events_per_second * SECONDS_PER_DAY


def disk_bytes(events: float, replication: int, bytes_per_event: float) -> float:
    """Compressed bytes on disk for `events` kept on `replication` replicas."""
    return events * bytes_per_event * replication


def cores_needed(events_per_second: float, cpu_us_per_event: float, cpu_target: float) -> float:
    """Cores that run `events_per_second` at `cpu_us_per_event` each, each core busy `cpu_target`."""
    return events_per_second * cpu_us_per_event / 1e6 / cpu_target


def round_up_to(value: float, multiple: int) -> int:
    return max(multiple, math.ceil(value / multiple) * multiple)


def compaction_windows(retention_days: float, window_days: int = c.COMPACTION_WINDOW_DAYS) -> int:
    return math.ceil(retention_days / window_days)


def largest_partitions(starts_per_second: float, top_country_share: float) -> tuple[PartitionCheck, ...]:
    """Rows of the busiest raw-start partitions: one country's hour, and one minute's shard."""
    row_bytes = c.START_ROW_BYTES.value

    def check(table: str, rows: float) -> PartitionCheck:
        whole = math.ceil(rows)
        return PartitionCheck(table, whole, whole * row_bytes / 1e6, whole > c.PARTITION_ROW_LIMIT)

    return (
        check("starts_by_country_hour", starts_per_second * top_country_share * 3_600),
        check("starts_by_minute", starts_per_second * 60 / MINUTE_SHARDS),
    )


def plan(a: Assumptions) -> Plan:
    """Nodes per data centre (enough cores and disk, a multiple of the RF so every rack holds a full
    copy), API processes (one core each) and what compaction and partitions look like."""
    peak = a.events_per_second * a.peak_factor
    per_day = events_per_day(a.events_per_second)
    retained = per_day * a.retention_days
    disk = disk_bytes(retained, a.replication, a.disk_bytes_per_event)
    # Every data centre holds `replication` copies and every write reaches each of them.
    cassandra_cores = cores_needed(peak * a.replication, a.cassandra_cpu_us, a.cpu_target)
    nodes_cpu = math.ceil(cassandra_cores / a.cores_per_node)
    nodes_disk = math.ceil(disk / (a.disk_per_node_gb * 1e9 * a.disk_fill))
    nodes = round_up_to(max(nodes_cpu, nodes_disk, a.replication), a.replication)
    windows = compaction_windows(a.retention_days)
    return Plan(
        assumptions=a,
        events_per_day=per_day,
        events_retained=retained,
        disk_tb_per_dc=disk / 1e12,
        nodes_for_cpu=nodes_cpu,
        nodes_for_disk=nodes_disk,
        nodes_per_dc=nodes,
        api_processes=max(2, math.ceil(cores_needed(peak, a.api_cpu_us, a.cpu_target))),
        compaction_windows=windows,
        window_gb_per_node=disk / nodes / windows / 1e9,
        partitions=largest_partitions(peak * c.START_SHARE.value, a.top_country_share),
    )
