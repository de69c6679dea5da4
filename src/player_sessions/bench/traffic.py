"""Scenario 4: the traffic users send, on the largest data set.

- **Batch sizes:** live events (the hour before the clock) in batches of 10, 100 and 1,000 from the
  same number of concurrent clients (closed loop), and batches of 10 again from twice as many: what
  many game servers sending small batches get, beside what a bulk sender gets.
- **Late events:** batches of 1,000 whose events spread over the last 30 days (each batch over the
  whole period, as late events from many clients arrive), the same clients.
- **Mixed:** the batch-1,000 live ingest again, while one client per query asks
  `GET /session-starts` (1, 24 and 720 hours) and `GET /players/{id}/sessions` (random players).
  The ingest rate with the queries running is compared with the batch-1,000 cell without them. It
  runs in two deployments: one process serving both, then split by role (`serve --role ingest`
  takes the batches, `serve --role query` the queries, as a proxy routing POST /events would send
  them). The targets are read on the split one, the deployment docs/operations.md recommends for
  ingest and queries at once.

Every cell runs on the service and keyspace of the query scenario's largest size, so counts are
recounted over real history. Re-sent events (a pool smaller than a cell's need) are idempotent upserts
and cost the service what new ones do.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Protocol

import orjson

from player_sessions.bench.httpload import LoadOutcome, LoadRun
from player_sessions.bench.procstat import TreeSampler
from player_sessions.bench.profile import ServiceProfiler
from player_sessions.bench.stats import Target
from player_sessions.domain.clock import try_parse_instant
from player_sessions.rollups import count_touches, level_marks
from player_sessions.service_process import ServiceProcess

__all__ = ["TRAFFIC_TARGETS", "TrafficHost", "rows_per_request", "run_traffic", "traffic_measurements"]

DAYS_365 = timedelta(days=365)  # any retention: only the rows are counted, not their TTLs
# Requests of a pool whose written rows are counted (rows_per_request): the pools are uniform.
ROW_SAMPLE_REQUESTS = 20

TRAFFIC_TARGETS = {
    "mixed_starts_p99": Target(
        "GET /session-starts p99 (1, 24, 720 h) during live ingest, roles split", "max", 50.0, "ms"
    ),
    "mixed_player_p99": Target(
        "GET /players/{id}/sessions p99 during live ingest, roles split", "max", 20.0, "ms"
    ),
    "mixed_ingest_rate": Target(
        "live ingest sustained at batch 1,000 with the queries running, roles split",
        "min",
        10_000.0,
        "events/s",
    ),
    "mixed_ingest_ratio": Target(
        "ingest flat out with the queries vs without them (batch 1,000), roles split", "min", 80.0, "%"
    ),
    "small_batch_ratio": Target(
        "10-event batches (best of 8 and 16 clients) vs 1,000-event batches, events/s", "min", 60.0, "%"
    ),
    "small_batch_p99": Target("POST /events of 10 events p99 in that cell", "max", 50.0, "ms"),
    "late_ratio": Target("batches of events spread over 30 days vs live events, events/s", "min", 80.0, "%"),
}
MIXED_QUERIES = ("starts hours=1", "starts hours=24", "starts hours=720", "player (random)")


class TrafficHost(Protocol):
    """What the scenario needs from the running benchmark."""

    def say(self, message: str) -> None: ...

    def ingest_requests(
        self, svc: ServiceProcess, events: int, batch: int, days: float, shuffled: bool = False
    ) -> tuple[list[bytes], list[int]]: ...

    def measure(self, svc: ServiceProcess, run: LoadRun) -> tuple[LoadOutcome, dict[str, Any]]: ...

    def profiler(self, svc: ServiceProcess, seconds: float, name: str) -> ServiceProfiler | None:
        """py-spy on the service for `seconds` (None when py-spy is missing or profiling is off)."""
        ...

    @property
    def cassandra_pid(self) -> int | None: ...


def _cell(
    outcome: LoadOutcome,
    resources: dict[str, Any],
    summarise: Callable[[LoadOutcome], dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    return {**extra, **summarise(outcome), **resources}


def rows_per_request(requests: Sequence[bytes]) -> dict[str, float]:
    """The rows the service writes for the average request of a pool, from the product's own rules:
    each event's row and each start's two raw rows, then the minute, hour (with their country_hours
    rows) and day marks `rollups.level_marks` makes of the request's starts."""
    sample = list(requests[:ROW_SAMPLE_REQUESTS])
    raw = marks = 0
    for request in sample:
        events = orjson.loads(request.partition(b"\r\n\r\n")[2])
        if isinstance(events, dict):
            events = events.get("events", [])
        starts = []
        for event in events:
            ts = try_parse_instant(str(event.get("ts", "")))
            if event.get("event") == "start" and event.get("country") and ts is not None:
                starts.append((str(event["country"]).upper(), ts))
        raw += len(events) + 2 * len(starts)
        if starts:
            level = level_marks(count_touches(starts, max(ts for _, ts in starts), DAYS_365))
            marks += len(level.minutes) + len(level.days)
            marks += sum(1 + len(hour.countries) for hour in level.hours)
    n = max(1, len(sample))
    return {"raw_rows": raw / n, "mark_rows": marks / n}


def run_traffic(
    host: TrafficHost,
    svc: ServiceProcess,
    queries: Sequence[tuple[str, list[bytes]]],
    *,
    batch_sizes: Sequence[int],
    clients: int,
    processes: int,
    seconds: float,
    events: int,
    late_days: float,
    mixed_rate: float,
    summarise: Callable[[LoadOutcome], dict[str, Any]],
) -> dict[str, Any]:
    """The batch-size, late and mixed cells, in that order; returns them JSON-able. The mixed cell
    runs twice: ingest paced at `mixed_rate` events/s (the queries' latency targets: a sustained
    rate, not a saturated machine), then as fast as the clients go (what the queries cost ingest)."""
    say = host.say
    say(
        f"scenario 4/4 the traffic users send: batches of {', '.join(f'{b:,}' for b in batch_sizes)} "
        f"x {clients} clients, late events, and queries during ingest ({seconds:g}s each)"
    )
    live_days = 1 / 24
    pools: dict[tuple[int, float], tuple[list[bytes], list[int]]] = {}

    def bodies(batch: int, days: float) -> tuple[list[bytes], list[int]]:
        if (batch, days) not in pools:
            # Late events arrive from anywhere in the period: each batch spreads over all of it.
            pools[(batch, days)] = host.ingest_requests(svc, events, batch, days, shuffled=days > live_days)
        return pools[(batch, days)]

    profiles: dict[str, Any] = {}

    def ingest_cell(batch: int, days: float, label: str, senders: int = clients) -> dict[str, Any]:
        requests, weights = bodies(batch, days)

        def load(duration: float) -> LoadRun:
            return LoadRun(
                svc.host,
                svc.port,
                requests,
                weights,
                concurrency=senders,
                processes=min(processes, senders),
                duration=duration,
            )

        name = f"{label} batch {batch:,} x {senders}"
        outcome, resources = host.measure(svc, load(seconds))
        # The smallest batches and the late ones are the cells with targets of their own: profiled
        # in a run of their own after the measured one, so the profiler's CPU is in no figure.
        if (batch == min(batch_sizes) and senders == clients) or days != live_days:
            profile_seconds = max(2.0, seconds / 2)
            profiler = host.profiler(svc, profile_seconds, name)
            if profiler is not None:
                again = load(profile_seconds)
                again.start()
                again.join()
                profiles[name] = _finish(profiler)
        cell = _cell(outcome, resources, summarise, batch_size=batch, clients=senders, events=label)
        cell["rows_per_request"] = rows_per_request(requests)
        lat = cell["latency"]
        say(
            f"  {label} events, batch {batch:>5,} x {senders}: {cell['events_per_second']:>8,.0f} events/s, "
            f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, service CPU "
            f"{resources['service']['cpu_percent_of_one_core']:.0f} %"
            + (f", errors {outcome.errors}" if outcome.errors else "")
        )
        return cell

    cells = [ingest_cell(batch, live_days, "live") for batch in batch_sizes]
    # Small batches come from many senders: the smallest size again with twice the clients.
    cells.append(ingest_cell(min(batch_sizes), live_days, "live", senders=2 * clients))
    late = ingest_cell(max(batch_sizes), late_days, f"{late_days:g}-day")
    live = bodies(max(batch_sizes), live_days)

    def mixed(
        ingest_svc: ServiceProcess, rate: float | None, query_svc: ServiceProcess | None = None
    ) -> dict[str, Any]:
        # Only the one-process paced cell is profiled: the split cells' figures carry no profiler.
        profiled = rate is not None and query_svc is None
        return _mixed(
            host,
            ingest_svc,
            queries,
            live,
            clients=clients,
            processes=processes,
            seconds=seconds,
            summarise=summarise,
            events_per_second=rate,
            profiles=profiles if profiled else None,
            query_svc=query_svc,
        )

    paced = mixed(svc, mixed_rate)
    flat_out = mixed(svc, None)
    with _role_service(svc, "ingest") as ingest_svc, _role_service(svc, "query") as query_svc:
        # The query process's first background pass recounts what the cells above left stale.
        query_svc.wait_for_rollup_pass()
        alone = _queries_alone(query_svc, queries, seconds=max(2.0, seconds / 2), summarise=summarise)
        split = {
            "split_queries_alone": alone,
            "split_mixed": mixed(ingest_svc, mixed_rate, query_svc),
            "split_mixed_flat_out": mixed(ingest_svc, None, query_svc),
        }
    return {
        "clients": clients,
        "seconds": seconds,
        "late_days": late_days,
        "cells": cells,
        "late": late,
        "mixed": paced,
        "mixed_flat_out": flat_out,
        **split,
        "profiles": profiles,
    }


READS = "player_sessions_cassandra_read_duration_seconds"


def _reads(svc: ServiceProcess) -> tuple[float, float]:
    """(reads, seconds) the process's Cassandra reads have taken so far, from its /metrics."""
    return svc.metric(f"{READS}_count"), svc.metric(f"{READS}_sum")


def _read_latency(before: tuple[float, float], after: tuple[float, float]) -> dict[str, float | None]:
    reads = after[0] - before[0]
    return {"reads": reads, "mean_ms": (after[1] - before[1]) / reads * 1000 if reads else None}


def _queries_alone(
    svc: ServiceProcess,
    queries: Sequence[tuple[str, list[bytes]]],
    *,
    seconds: float,
    summarise: Callable[[LoadOutcome], dict[str, Any]],
) -> dict[str, Any]:
    """The mixed cells' query clients with no ingest running: what a Cassandra read costs the query
    process on a quiet node, beside what it costs during ingest."""
    runs = _query_clients(svc, queries, seconds)
    before = _reads(svc)
    for _, run in runs:
        run.start()
    outcomes = [(name, run.join(timeout=seconds + 600.0)) for name, run in runs]
    return {
        "queries": [{"query": name, **summarise(outcome)} for name, outcome in outcomes],
        "query_reads": _read_latency(before, _reads(svc)),
    }


def _query_clients(
    svc: ServiceProcess, queries: Sequence[tuple[str, list[bytes]]], seconds: float
) -> list[tuple[str, LoadRun]]:
    """One closed-loop client per mixed-cell query, asking `svc` for `seconds`."""
    return [
        (
            name,
            LoadRun(
                svc.host, svc.port, requests, concurrency=1, processes=1, duration=seconds, timeout=600.0
            ),
        )
        for name, requests in queries
        if name in MIXED_QUERIES
    ]


@contextmanager
def _role_service(svc: ServiceProcess, role: str) -> Iterator[ServiceProcess]:
    """Another `serve` of the same keyspace and settings, with `--role role`."""
    config = dataclasses.replace(svc.config, port=0, extra_args=(*svc.config.extra_args, "--role", role))
    with ServiceProcess(config, svc.log_path.with_name(f"{svc.log_path.stem}-{role}.log")) as started:
        yield started


def _finish(profiler: ServiceProfiler) -> dict[str, Any]:
    summary, why = profiler.finish()
    return {"summary": summary, "error": why}


def _mixed(
    host: TrafficHost,
    svc: ServiceProcess,
    queries: Sequence[tuple[str, list[bytes]]],
    ingest: tuple[list[bytes], list[int]],
    *,
    clients: int,
    processes: int,
    seconds: float,
    summarise: Callable[[LoadOutcome], dict[str, Any]],
    events_per_second: float | None,
    profiles: dict[str, Any] | None = None,
    query_svc: ServiceProcess | None = None,
) -> dict[str, Any]:
    """Ingest into `svc` while one client per query asks `query_svc` (default: the same process)."""
    asked = query_svc or svc
    requests, weights = ingest
    pace = events_per_second / max(weights) if events_per_second else None
    background = LoadRun(
        svc.host,
        svc.port,
        requests,
        weights,
        concurrency=clients,
        processes=min(processes, clients),
        pace_per_second=pace,
    )
    label = f"ingest paced at {events_per_second:,.0f} events/s" if events_per_second else "ingest flat out"
    if query_svc is not None:
        label += ", queries on a --role query process"
    sampler = TreeSampler(svc.pid).start()
    query_sampler = TreeSampler(query_svc.pid).start() if query_svc is not None else None
    cassandra = TreeSampler(host.cassandra_pid).start() if host.cassandra_pid else None
    runs: list[tuple[str, LoadRun]] = []
    profiler = None
    answered: dict[str, LoadOutcome] = {}
    reads_before = _reads(query_svc) if query_svc is not None else None
    background.start()
    try:
        time.sleep(1.0)  # let the ingest reach its pace
        runs += _query_clients(asked, queries, seconds)
        # All query clients start (and so measure) together: each start waits for its process.
        for _, run in runs:
            run.start()
        if profiles is not None:
            profiler = host.profiler(svc, max(1.0, seconds - 1.0), f"mixed, {label}")
        for name, run in runs:
            answered[name] = run.join(timeout=seconds + 600.0)
    finally:
        for _, run in runs:
            run.terminate()
        background.stop()
        bg = background.join(timeout=600.0)
        usage = sampler.stop()
        query_usage = query_sampler.stop() if query_sampler is not None else None
        cass = cassandra.stop() if cassandra is not None else None
        if profiler is not None and profiles is not None:
            profiles[f"mixed, {label}"] = _finish(profiler)
    out_queries = []
    for name, outcome in answered.items():
        cell = {"query": name, **summarise(outcome)}
        out_queries.append(cell)
        lat = cell["latency"]
        host.say(
            f"  mixed ({label}): {name:<18} {cell['requests_per_second']:>6,.0f} req/s, "
            f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms"
            + (f", errors {outcome.errors}" if outcome.errors else "")
        )
    ingest_cell = {
        "batch_size": max(weights),
        "clients": clients,
        "offered_events_per_second": events_per_second,
        **summarise(bg),
        "service": usage.as_dict(),
        "query_service": query_usage.as_dict() if query_usage is not None else None,
        "cassandra_cpu_percent": cass.cpu_percent if cass is not None else None,
    }
    host.say(
        f"  mixed ({label}): ingest {ingest_cell['events_per_second']:,.0f} events/s with the queries, "
        f"p99 {ingest_cell['latency']['p99_ms']:.0f} ms, service CPU "
        f"{usage.as_dict()['cpu_percent_of_one_core']:.0f} %"
        + (f", Cassandra CPU {cass.cpu_percent:.0f} %" if cass is not None else "")
    )
    result = {"queries": out_queries, "ingest": ingest_cell}
    if query_svc is not None and reads_before is not None:
        result["query_reads"] = _read_latency(reads_before, _reads(query_svc))
    return result


def traffic_measurements(traffic: dict[str, Any] | None) -> dict[str, float | None]:
    """The measured value of each TRAFFIC_TARGETS key (None where the scenario did not run)."""
    empty: dict[str, float | None] = dict.fromkeys(TRAFFIC_TARGETS)
    if not traffic:
        return empty
    by_batch = {c["batch_size"]: c for c in traffic["cells"] if c["clients"] == traffic["clients"]}
    largest = by_batch[max(by_batch)]
    rate = largest["events_per_second"] or None
    # The small-batch targets are read on the 10-event cell with the most events/s (8 or 16 clients).
    small_cells = [c for c in traffic["cells"] if c["batch_size"] == 10]
    # The split deployment when it ran (the one recommended for ingest and queries at once).
    mixed = traffic.get("split_mixed") or traffic["mixed"]
    flat_out = traffic.get("split_mixed_flat_out") or traffic.get("mixed_flat_out") or mixed
    starts = [q["latency"]["p99_ms"] for q in mixed["queries"] if q["query"].startswith("starts")]
    players = [q["latency"]["p99_ms"] for q in mixed["queries"] if q["query"].startswith("player")]
    mixed_rate = mixed["ingest"]["events_per_second"]
    flat_out_rate = flat_out["ingest"]["events_per_second"]
    small = max(small_cells, key=lambda c: c["events_per_second"]) if small_cells else None
    return {
        "mixed_starts_p99": max(starts) if starts else None,
        "mixed_player_p99": max(players) if players else None,
        "mixed_ingest_rate": mixed_rate,
        "mixed_ingest_ratio": flat_out_rate / rate * 100 if rate else None,
        "small_batch_ratio": small["events_per_second"] / rate * 100 if small and rate else None,
        "small_batch_p99": small["latency"]["p99_ms"] if small else None,
        "late_ratio": traffic["late"]["events_per_second"] / rate * 100 if rate else None,
    }
