"""`player-sessions capacity`: print a plan for a load from the measured costs (docs/capacity.md)."""

from __future__ import annotations

import argparse
import sys

from player_sessions.capacity import constants as c
from player_sessions.capacity.model import Assumptions, Plan, plan

HELP = "print nodes, API processes and disk for an event rate, from the measured costs"
DESCRIPTION = (
    "Plan a deployment for a sustained ingest rate: Cassandra nodes per data centre (enough cores and "
    "disk, a multiple of the replication factor), API processes (one core each), disk per data centre "
    "over the retention, TimeWindowCompactionStrategy windows, and the largest raw-start partitions. "
    "Costs per event are the ones measured in docs/capacity.md; every other input is an assumption "
    "you can change with a flag. Example: player-sessions capacity --events-per-second 100000 "
    "--replication 3 --datacenters 2"
)


def _replication(text: str) -> int:
    # `3`, or per-datacentre RFs like `dc1:3,dc2:3` (as `migrate --replication` takes them): the plan
    # is per data centre, so it needs the one RF they share.
    if text.isdigit():
        return int(text)
    rfs = {part.split(":", 1)[1].strip() for part in text.split(",") if ":" in part}
    if len(rfs) != 1 or not next(iter(rfs)).isdigit():
        raise argparse.ArgumentTypeError("a number, or dc:rf pairs with one RF, e.g. dc1:3,dc2:3")
    return int(rfs.pop())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--events-per-second",
        type=float,
        required=True,
        metavar="N",
        help="sustained ingest rate (100000 = 8.64 billion events a day)",
    )
    add(
        "--replication",
        type=_replication,
        default=3,
        metavar="RF",
        help="replicas per data centre: 3, or dc1:3,dc2:3 (the same RF in each)",
    )
    add("--datacenters", type=int, default=1, help="data centres, each with a full copy")
    add("--retention-days", type=float, default=365.0, help="days an event is kept")
    add("--cores-per-node", type=int, default=8, help="cores of one Cassandra node")
    add("--disk-per-node-gb", type=float, default=2000.0, help="data disk of one Cassandra node, GB")
    add(
        "--cpu-target",
        type=float,
        default=0.5,
        help="share of each core a plan may use (room for peaks, repair, compaction, a lost node)",
    )
    add(
        "--disk-fill",
        type=float,
        default=0.5,
        help="share of a disk the data may fill (compaction writes new SSTables before it drops old)",
    )
    add("--peak-factor", type=float, default=1.0, help="peak rate / --events-per-second")
    add("--top-country-share", type=float, default=0.2, help="the busiest country's share of starts")
    add(
        "--api-cpu-us",
        type=float,
        default=c.API_CPU_US_PER_EVENT.value,
        help=f"API CPU µs per event (measured: {c.API_CPU_US_PER_EVENT.source})",
    )
    add(
        "--cassandra-cpu-us",
        type=float,
        default=c.CASSANDRA_CPU_US_PER_EVENT_REPLICA.value,
        help=f"Cassandra CPU µs per event and replica (measured: "
        f"{c.CASSANDRA_CPU_US_PER_EVENT_REPLICA.source}; an upper bound: "
        f"{c.CASSANDRA_CPU_US_PER_EVENT_REPLICA_RF3.value:g}, three local nodes sharing 2 cores at RF 3)",
    )
    add(
        "--disk-bytes-per-event",
        type=float,
        default=c.DISK_BYTES_PER_EVENT_REPLICA.value,
        help=f"compressed bytes per event and replica (measured: {c.DISK_BYTES_PER_EVENT_REPLICA.source})",
    )


def render(p: Plan) -> str:
    a = p.assumptions
    dcs = a.datacenters
    lines = [
        f"Load: {a.events_per_second:,.0f} events/s = {p.events_per_day / 1e9:,.2f} billion a day "
        f"(peak x{a.peak_factor:g}); {a.retention_days:g} days kept = {p.events_retained / 1e12:,.2f} "
        f"trillion events",
        f"Replication: RF {a.replication} in each of {dcs} data centre(s)",
        "",
        f"Cassandra nodes per data centre: {p.nodes_per_dc} ({p.nodes_per_dc * dcs} in all)",
        f"  for CPU: {p.nodes_for_cpu} nodes of {a.cores_per_node} cores at {a.cpu_target:.0%} busy "
        f"({a.cassandra_cpu_us:g} µs per event and replica)",
        f"  for disk: {p.nodes_for_disk} nodes of {a.disk_per_node_gb:,.0f} GB filled to {a.disk_fill:.0%} "
        f"({a.disk_bytes_per_event:g} bytes per event and replica)",
        "  rounded up to a multiple of the RF (one full copy per rack)",
        f"Disk per data centre: {p.disk_tb_per_dc:,.1f} TB of data "
        f"({p.disk_tb_per_dc * 1e3 / p.nodes_per_dc:,.0f} GB per node)",
        f"API processes (one core each) in a data centre taking all writes: {p.api_processes} "
        f"({a.api_cpu_us:g} µs per event at {a.cpu_target:.0%} busy)",
        f"Compaction: TimeWindowCompactionStrategy, {c.COMPACTION_WINDOW_DAYS}-day windows = "
        f"{p.compaction_windows} windows per retention; one window of one node ~ "
        f"{p.window_gb_per_node:,.1f} GB",
        "",
        f"Largest raw-start partitions (limit {c.PARTITION_ROW_LIMIT:,} rows; busiest country "
        f"{a.top_country_share:.0%} of starts):",
    ]
    for part in p.partitions:
        verdict = "OVER the limit: shard it before this rate" if part.over_limit else "ok"
        lines.append(f"  {part.table}: {part.rows:,} rows, ~{part.megabytes:,.1f} MB: {verdict}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        assumptions = Assumptions(
            events_per_second=args.events_per_second,
            replication=args.replication,
            datacenters=args.datacenters,
            retention_days=args.retention_days,
            cores_per_node=args.cores_per_node,
            disk_per_node_gb=args.disk_per_node_gb,
            cpu_target=args.cpu_target,
            disk_fill=args.disk_fill,
            peak_factor=args.peak_factor,
            top_country_share=args.top_country_share,
            api_cpu_us=args.api_cpu_us,
            cassandra_cpu_us=args.cassandra_cpu_us,
            disk_bytes_per_event=args.disk_bytes_per_event,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render(plan(assumptions)))
    return 0
