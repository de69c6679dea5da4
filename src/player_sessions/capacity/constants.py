"""What one event costs, measured on the reference machine; `docs/capacity.md` has the runs.

Every figure is a cost per event (CPU time, bytes), not a rate: the reference machine has 2 cores
shared with other work, so rates measured there depend on what else ran, while the CPU time and the
bytes an event costs do not (much). The model scales these costs to the machines of a plan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    value: float
    source: str


# One `serve` worker (one process, one core at most): CPU per event at batches of 1,000. 1,001,879
# generated events (82 days, 10,000 players) posted by `player-sessions load --batch-size 1000
# --concurrency 8` to one `serve` on one node: 59.9 CPU-s in the service = 59.8 µs per event.
API_CPU_US_PER_EVENT = Measured(59.8, "serve on 1 node, RF 1: 59.9 CPU-s for 1,001,879 events")

# Cassandra CPU per event per replica (RF 1 on one node: each event written once). The same load:
# 64.6 CPU-s in the node = 64.5 µs per event. It includes the rollup marks, their recounts by the
# service's background pass and the compactions that ran during the load.
CASSANDRA_CPU_US_PER_EVENT_REPLICA = Measured(
    64.5, "1 node, RF 1: 64.6 CPU-s of Cassandra for 1,001,879 events"
)

# The same cost on three local nodes sharing the 2 cores, CPU summed over the three JVMs. At RF 3
# (LOCAL_QUORUM): 102.8 CPU-s for 302,930 events = 113 µs per event and replica. At RF 1 on the same
# nodes: 96.3 CPU-s for the same events = 318 µs per event: three JVMs on two cores cost about the
# same per event whatever the RF, so the excess over one node is oversubscription (executor threads
# spinning, three GCs, context switches), not replication. An upper bound for nodes on their own
# machines. A run while the machine was overloaded (load average 50) cost 331 µs per replica.
CASSANDRA_CPU_US_PER_EVENT_REPLICA_RF3 = Measured(
    113.0, "3 nodes on 2 cores, RF 3: 102.8 CPU-s of Cassandra for 302,930 events"
)
CASSANDRA_CPU_US_PER_EVENT_3_NODES_RF1 = Measured(
    318.0, "3 nodes on 2 cores, RF 1: 96.3 CPU-s of Cassandra for 302,930 events"
)

# Disk per event per replica, compressed (LZ4, Cassandra's default), after `nodetool flush` and
# `nodetool compact`: 96,768,046 bytes under data/<keyspace> for 1,001,879 events, every table.
DISK_BYTES_PER_EVENT_REPLICA = Measured(96.6, "1 node, RF 1: 96.8 MB for 1,001,879 events")

# Share of events that are starts (each start also writes a row to starts_by_country_hour and one to
# starts_by_minute): 489,332 valid starts among 1,001,879 generated events.
START_SHARE = Measured(0.49, "datagen: 489,332 starts of 1,001,879 events")

# Bytes per raw start row before compression (tablestats' compacted partition mean / rows per
# partition): starts_by_country_hour 609 bytes for ~7.1 rows, starts_by_minute 110 bytes for ~1.6 rows.
START_ROW_BYTES = Measured(86.0, "tablestats: starts_by_country_hour, 609 B mean partition, 7.1 rows")

# Design rule: a partition stays well under 100,000 rows (and 100 MB).
PARTITION_ROW_LIMIT = 100_000

# TimeWindowCompactionStrategy window of the event tables (store.schema.TWCS).
COMPACTION_WINDOW_DAYS = 7
