"""How ingest through `serve` spreads writes over the nodes of a local 3-node cluster (RF 1, so every
partition lives on exactly one node): per-node local write counts of each table (`nodetool
tablestats`), before and after loading generated events with `player-sessions load`, and each node's
ratio to the mean. Prints a Markdown table (docs/hot-partitions.md).

    .venv/bin/python scripts/write_spread.py --events 200000 --batch-size 1000

Uses the launcher, `serve`, `generate` and `load` as they are; the cluster (127.0.0.91-93 by default)
is started if it is not running and stopped (wiped) at the end unless --keep-cluster.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from pathlib import Path

from player_sessions.cassandra_local import LauncherConfig, start, stop
from player_sessions.cassandra_local.node import Node, nodetool
from player_sessions.service_process import ServiceConfig, ServiceProcess

CLOCK = "2016-12-01T00:00:00Z"
EVENTS_PER_PLAYER_DAY = 1.26  # what `generate` makes per player and day (measured on its output)


def write_counts(node: Node, keyspace: str) -> dict[str, int]:
    """Local write count per table of the keyspace on this node."""
    out = nodetool(node, "tablestats", keyspace, timeout_s=120)
    if out.returncode != 0:
        raise SystemExit(f"nodetool tablestats on node {node.index} failed: {out.stdout}{out.stderr}")
    counts: dict[str, int] = {}
    table = ""
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("Table: "):
            table = line.removeprefix("Table: ")
        elif line.startswith("Local write count: ") and table:
            counts[table] = int(line.removeprefix("Local write count: "))
    return counts


def snapshot(nodes: list[Node], keyspace: str) -> dict[int, dict[str, int]]:
    return {node.index: write_counts(node, keyspace) for node in nodes}


def report(before: dict[int, dict[str, int]], after: dict[int, dict[str, int]]) -> str:
    indexes = sorted(after)
    tables = sorted({t for counts in after.values() for t in counts})
    lines = [
        "| table | " + " | ".join(f"node {i}" for i in indexes) + " | max / mean |",
        "| --- | " + " | ".join("---:" for _ in indexes) + " | ---: |",
    ]
    totals = dict.fromkeys(indexes, 0)
    for table in [*tables, "all tables"]:
        if table == "all tables":
            delta = totals
        else:
            delta = {i: after[i].get(table, 0) - before[i].get(table, 0) for i in indexes}
            for i in indexes:
                totals[i] += delta[i]
        mean = sum(delta.values()) / len(indexes)
        ratio = max(delta.values()) / mean if mean else 0.0
        cells = " | ".join(f"{delta[i]:,}" for i in indexes)
        lines.append(f"| {table} | {cells} | {ratio:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000, help="about this many generated events")
    parser.add_argument(
        "--days", type=float, default=1.0, help="the events span the last DAYS before the clock"
    )
    parser.add_argument("--batch-size", type=int, default=1000, help="events per POST /events")
    parser.add_argument("--first-address", type=int, default=91, help="the cluster's 127.0.0.N")
    parser.add_argument("--base-dir", type=Path, default=Path("/tmp/ps-write-spread"), help="cluster files")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the cluster running")
    args = parser.parse_args()

    config = LauncherConfig(
        base_dir=args.base_dir, nodes=3, first_address=args.first_address, heap="512m", ready_timeout_s=400
    )
    nodes = [Node(i, config) for i in (1, 2, 3)]
    keyspace = f"ps_spread_{uuid.uuid4().hex[:8]}"
    events_file = args.base_dir / "events.jsonl"
    try:
        start(config)
        args.base_dir.mkdir(parents=True, exist_ok=True)
        players = max(1, round(args.events / (EVENTS_PER_PLAYER_DAY * args.days)))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "player_sessions.cli",
                "generate",
                "-o",
                str(events_file),
                "--players",
                str(players),
                "--days",
                str(args.days),
                "--until",
                CLOCK,
                "--no-progress",
            ],
            check=True,
        )
        service = ServiceConfig(
            keyspace=keyspace,
            clock=CLOCK,
            contact_points=",".join(n.address for n in nodes),
            extra_args=("--replication-factor", "1"),
        )
        with ServiceProcess(service, args.base_dir / "serve.log") as svc:
            before = snapshot(nodes, keyspace)
            began = time.monotonic()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "player_sessions.cli",
                    "load",
                    str(events_file),
                    "--url",
                    f"http://{svc.host}:{svc.port}",
                    "--batch-size",
                    str(args.batch_size),
                    "--no-progress",
                ],
                check=True,
            )
            loaded_s = time.monotonic() - began
            after = snapshot(nodes, keyspace)
        print(
            f"\n{events_file.stat().st_size:,} bytes of events in batches of {args.batch_size}, loaded in "
            f"{loaded_s:.0f}s; keyspace {keyspace}, RF 1, nodes "
            f"{', '.join(n.address for n in nodes)}; local write counts (nodetool tablestats):\n"
        )
        print(report(before, after))
    finally:
        if not args.keep_cluster:
            stop(config, wipe=True, say=lambda line: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
