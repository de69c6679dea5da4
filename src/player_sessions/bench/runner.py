"""Runs the scenarios in order, collects a JSON-able result, and always cleans up after itself.

Everything this run creates is its own: keyspaces `<prefix>_<run id>_ingest` / `_data` (dropped at the
end unless `keep`), `serve` processes (stopped by their pid, also on Ctrl-C or SIGTERM), writer and
client processes (children, terminated). The running Cassandra node is only used, never managed.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from player_sessions.bench import report
from player_sessions.bench.dataset import (
    ShardSpec,
    api_bodies,
    generate_lines,
    plan_ingest_shards,
    plan_tranches,
)
from player_sessions.bench.direct import DbTarget, LoadResult, TrialResult, WritePath, WriterPool
from player_sessions.bench.gclog import pauses_between
from player_sessions.bench.httpload import Connection, LoadOutcome, LoadRun, get_request, post_request
from player_sessions.bench.machine import LocalNode, describe_machine, idle_cpu_percent, wait_until_quiet
from player_sessions.bench.options import BenchOptions
from player_sessions.bench.procstat import CpuMeter, TreeSampler
from player_sessions.bench.profile import ServiceProfiler, find_py_spy
from player_sessions.bench.stats import Target, evaluate, summarise
from player_sessions.bench.traffic import TRAFFIC_TARGETS, run_traffic, traffic_measurements
from player_sessions.domain.clock import parse_instant
from player_sessions.service_process import ServiceConfig, ServiceProcess

__all__ = ["Progress", "run_bench"]

COLD_TIMEOUT_S = 1800.0
TARGETS = {
    "ingest_ratio": Target("API ingest at batch 1,000 (best concurrency) vs the ceiling", "min", 50.0, "%"),
    "player_p99": Target("GET /players/{id}/sessions p99, random players and whales", "max", 10.0, "ms"),
    "starts_short_p99": Target("GET /session-starts p99 for hours <= 24", "max", 50.0, "ms"),
    "starts_year_p99": Target("GET /session-starts?hours=8760 p99", "max", 1000.0, "ms"),
    "low_load_p99": Target("POST /events of 10 events p99 at low load", "max", 20.0, "ms"),
    **TRAFFIC_TARGETS,
}


class Progress:
    """`[  12s] message` lines on stderr."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._started = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self._started
        self._stream.write(f"[{elapsed:5.0f}s] {message}\n")
        self._stream.flush()


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that every `finally` runs."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Admin:
    """A plain driver session in the parent: DDL (schema, drop) and Cassandra's version."""

    def __init__(self, options: BenchOptions) -> None:
        import logging

        from player_sessions.store.connection import open_cluster

        logging.getLogger("cassandra").setLevel(logging.ERROR)
        points = [p.strip() for p in options.contact_points.split(",") if p.strip()]
        self._cluster = open_cluster(points, options.cql_port)
        self._session = self._cluster.connect()

    def version(self) -> str:
        row = self._session.execute("SELECT release_version FROM system.local").one()
        return str(row[0]) if row else "unknown"

    def create_schema(self, options: BenchOptions, keyspace: str) -> None:
        import asyncio

        from player_sessions.config import Settings
        from player_sessions.serve import ensure_schema

        settings = Settings(
            contact_points=options.contact_points, cql_port=options.cql_port, keyspace=keyspace
        )
        asyncio.run(ensure_schema(settings, wait_s=60))

    def drop(self, keyspace: str) -> None:
        self._session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)

    def close(self) -> None:
        self._cluster.shutdown()


def _latency_dict(outcome: LoadOutcome) -> dict[str, Any]:
    return summarise(outcome.latencies).as_dict()


def _outcome_dict(outcome: LoadOutcome, weight_name: str = "events") -> dict[str, Any]:
    seconds = outcome.seconds
    return {
        "requests": outcome.requests,
        weight_name: outcome.weight,
        "seconds": seconds,
        "requests_per_second": outcome.requests / seconds if seconds > 0 else 0.0,
        f"{weight_name}_per_second": outcome.weight / seconds if seconds > 0 else 0.0,
        "latency": _latency_dict(outcome),
        "errors": dict(outcome.errors),
        "first_error": outcome.first_error,
        "wrapped": outcome.wrapped,
        "client_cpu_seconds": outcome.client_cpu_seconds,
    }


class _Bench:
    def __init__(self, options: BenchOptions, progress: Callable[[str], None]) -> None:
        self.o = options
        self._progress = progress
        self.run_id = secrets.token_hex(3)
        self.ingest_ks = f"{options.keyspace_prefix}_{self.run_id}_ingest"
        self.data_ks = f"{options.keyspace_prefix}_{self.run_id}_data"
        self.now = parse_instant(options.clock)
        self.node = LocalNode(options.base_dir, options.cache_dir)
        self.cassandra_pid = self.node.pid
        self.results: dict[str, Any] = {"format": 1, "notes": []}
        self.rng = random.Random(options.seed)
        self.log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"player-sessions-bench-{self.run_id}"
        self._seed = options.seed * 1_000

    def next_seed(self) -> int:
        self._seed += 1
        return self._seed

    def note(self, text: str) -> None:
        self.results["notes"].append(text)

    # --- helpers ---------------------------------------------------------------------------------

    def _service(self, keyspace: str) -> ServiceProcess:
        config = ServiceConfig(
            keyspace=keyspace,
            clock=self.o.clock,
            contact_points=self.o.contact_points,
            cql_port=self.o.cql_port,
            workers=self.o.service_workers,
            extra_args=self.o.serve_args,
        )
        return ServiceProcess(config, self.log_dir / f"serve-{keyspace}.log")

    def say(self, message: str) -> None:
        self._progress(message)

    def measure(self, svc: ServiceProcess, run: LoadRun) -> tuple[LoadOutcome, dict[str, Any]]:
        """Run the load while sampling the service tree, Cassandra and the whole machine."""
        service = TreeSampler(svc.pid).start()
        cassandra = TreeSampler(self.cassandra_pid).start() if self.cassandra_pid else None
        machine = CpuMeter()
        began = datetime.now(UTC)
        try:
            run.start()
            outcome = run.join()
        finally:
            usage = service.stop()
            cass = cassandra.stop() if cassandra is not None else None
        gc = pauses_between(self.node.node.gc_log, began, datetime.now(UTC)) if self.node.present else None
        resources = {
            "cassandra_gc": gc.as_dict() if gc is not None else None,
            "service": usage.as_dict(),
            "cassandra_cpu_percent": cass.cpu_percent if cass is not None else None,
            "machine_cpu_percent": machine.percent(),
            "client_cpu_percent": outcome.client_cpu_seconds / usage.wall_seconds * 100
            if usage.wall_seconds > 0
            else 0.0,
        }
        return outcome, resources

    def ingest_requests(
        self, svc: ServiceProcess, events: int, batch: int, days: float, shuffled: bool = False
    ) -> tuple[list[bytes], list[int]]:
        """Request bodies of `batch` events of the last `days` days: in time order (each batch a
        slice of time), or `shuffled` (each batch's events spread over all the days: late events)."""
        lines: list[bytes] = []
        parts = max(1, math.ceil(events / 200_000))
        for spec in plan_ingest_shards(events, until=self.now, seed=self.next_seed(), days=days, parts=parts):
            lines.extend(generate_lines(spec))
        # Shards are each in time order; interleave them as one time-ordered stream would be.
        if shuffled:
            random.Random(self.next_seed()).shuffle(lines)
        elif parts > 1:
            lines.sort(key=_line_ts)
        requests: list[bytes] = []
        weights: list[int] = []
        for body, n in api_bodies(lines, batch):
            requests.append(post_request(svc.host, svc.port, "/events", body))
            weights.append(n)
        return requests, weights

    def _low_load(
        self, svc: ServiceProcess, days: float, events: str, waited: float, busy: float
    ) -> dict[str, Any]:
        """One connection posting 10 events `low_load_rate` times a second, events of the last `days`."""
        o = self.o
        self.say(
            f"  low load (events from {events}): 10-event batches at {o.low_load_rate:g}/s on one "
            f"connection for {o.low_load_seconds:g}s (after {waited:.0f}s for the machine to go quiet: "
            f"{busy:.0f} % busy)"
        )
        count = int(o.low_load_rate * o.low_load_seconds)
        requests, weights = self.ingest_requests(svc, max(10 * count, 1_000), 10, days)
        run = LoadRun(
            svc.host,
            svc.port,
            requests,
            weights,
            concurrency=1,
            processes=1,
            duration=o.low_load_seconds,
            pace_per_second=o.low_load_rate,
        )
        outcome, resources = self.measure(svc, run)
        low = {
            "batch_size": 10,
            "rate_per_second": o.low_load_rate,
            "event_times": events,
            **_outcome_dict(outcome),
            **resources,
            "quiet_wait_seconds": round(waited, 1),
            "machine_busy_before_percent": round(busy, 1),
        }
        lat = low["latency"]
        self.say(f"  low load (events from {events}): p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms")
        return low

    # --- scenario 1 --------------------------------------------------------------------------------

    def ceiling(self) -> None:
        o = self.o
        trials: list[TrialResult] = []
        grid: list[tuple[WritePath, int, int]] = []
        for processes in o.ceiling_processes:
            grid += [("store", processes, c) for c in o.ceiling_store_concurrency]
            grid += [("raw-batched", processes, c) for c in o.ceiling_raw_concurrency]
            grid += [("raw-grouped", processes, c) for c in o.ceiling_raw_concurrency]
        if o.ceiling_raw_rows:
            grid.append(("raw", max(o.ceiling_processes), max(o.ceiling_raw_concurrency) * 2))
        self.say(
            f"scenario 1/4 ingest ceiling: {len(grid)} trials of ~{o.ceiling_events:,} events "
            f"(keyspace {self.ingest_ks})"
        )
        with WriterPool(self._target(self.ingest_ks), max(o.ceiling_processes)) as pool:
            pool.connect(["store", "raw"])
            for number, (path, processes, concurrency) in enumerate(grid, 1):
                per_process = [
                    plan_ingest_shards(
                        o.ceiling_events // processes,
                        until=self.now,
                        seed=self.next_seed(),
                        days=o.ingest_days,
                    )
                    for _ in range(processes)
                ]
                trial = pool.trial(path, processes, concurrency, per_process)
                trials.append(trial)
                self.say(
                    f"  trial {number}/{len(grid)}: {path:<11} {processes} process(es) x "
                    f"concurrency {concurrency:<4} {trial.events:>8,} events in {trial.seconds:5.1f}s = "
                    f"{trial.events_per_second:,.0f} events/s"
                )
        best = max(trials, key=lambda t: t.events_per_second)
        by_path: dict[str, dict[str, object]] = {}
        for trial in trials:
            current = by_path.get(trial.path)
            if current is None or trial.events_per_second > float(current["events_per_second"]):  # type: ignore[arg-type]
                by_path[trial.path] = trial.as_dict()
        self.results["ceiling"] = {
            "trials": [t.as_dict() for t in trials],
            "best": best.as_dict(),
            "best_by_path": by_path,
            "events_per_trial": o.ceiling_events,
        }

    def _target(self, keyspace: str) -> DbTarget:
        return DbTarget(self.o.contact_points, self.o.cql_port, keyspace, self.now)

    def _ceiling_rate(self) -> float | None:
        ceiling = self.results.get("ceiling")
        return float(ceiling["best"]["events_per_second"]) if ceiling else None

    # --- scenario 2 --------------------------------------------------------------------------------

    def api_ingest(self) -> None:
        o = self.o
        cells: list[dict[str, Any]] = []
        ceiling = self._ceiling_rate()
        estimate = ceiling or 5_000.0
        grid = [
            (b, c)
            for b in o.batch_sizes
            for c in o.concurrencies
            if o.max_events_in_flight is None or b * c <= o.max_events_in_flight
        ]
        skipped = len(o.batch_sizes) * len(o.concurrencies) - len(grid)
        if skipped:
            self.note(
                f"{skipped} API cell(s) skipped: batch x clients above {o.max_events_in_flight:,} "
                "events in flight (a --quick limit)."
            )
        self.say(
            f"scenario 2/4 ingest through the API: {len(grid)} cells of {o.ingest_seconds:g}s "
            f"(service --workers {o.service_workers}, keyspace {self.ingest_ks})"
        )
        with self._service(self.ingest_ks) as svc:
            self.results["service_command"] = svc.command_line
            # Low load first, on a quiet machine: after heavy writes Cassandra compacts what they
            # wrote for minutes, and the service's first rollup pass recounts it: not "low load".
            waited = svc.wait_for_rollup_pass(timeout=o.quiet_timeout_s)
            quiet, busy = wait_until_quiet(timeout_s=o.quiet_timeout_s)
            waited += quiet
            low = self._low_load(
                svc,
                o.low_load_minutes / 1440,
                f"the last {o.low_load_minutes:g} minutes before the clock",
                waited,
                busy,
            )
            # The same rate replaying late events over the last days (into the hours the ceiling
            # trials filled): what the background recounts cost when every hour keeps changing.
            replay = self._low_load(
                svc,
                o.ingest_days,
                f"the last {o.ingest_days:g} days",
                *wait_until_quiet(timeout_s=o.quiet_timeout_s),
            )
            for number, (batch, concurrency) in enumerate(grid, 1):
                events = int(max(batch * concurrency * 3, estimate * o.ingest_seconds * 1.5))
                requests, weights = self.ingest_requests(svc, events, batch, o.ingest_days)
                run = LoadRun(
                    svc.host,
                    svc.port,
                    requests,
                    weights,
                    concurrency=concurrency,
                    processes=o.client_processes,
                    duration=o.ingest_seconds,
                )
                profiler = self._profiler(svc, batch, concurrency)
                outcome, resources = self.measure(svc, run)
                if profiler is not None:
                    summary, why = profiler.finish()
                    self.results["service_profile"] = {
                        "batch_size": batch,
                        "concurrency": concurrency,
                        "summary": summary,
                        "error": why,
                    }
                ratio = (
                    outcome.weight / outcome.seconds / ceiling * 100
                    if ceiling and outcome.seconds > 0
                    else None
                )
                cell = {
                    "batch_size": batch,
                    "concurrency": concurrency,
                    **_outcome_dict(outcome),
                    **resources,
                    "ratio_to_ceiling": ratio,
                }
                cells.append(cell)
                lat = cell["latency"]
                cpu = resources["service"]["cpu_percent_of_one_core"]
                self.say(
                    f"  cell {number}/{len(grid)}: batch {batch:>6,} x {concurrency} clients: "
                    f"{cell['events_per_second']:>8,.0f} events/s, p50 {lat['p50_ms']:.0f} ms, "
                    f"p99 {lat['p99_ms']:.0f} ms, service CPU {cpu:.0f} %"
                    + (f", errors {outcome.errors}" if outcome.errors else "")
                )
        self.results["api_ingest"] = {
            "cells": cells,
            "low_load": low,
            "low_load_replay": replay,
            "events_days": o.ingest_days,
        }

    def profiler(self, svc: ServiceProcess, seconds: float, name: str) -> ServiceProfiler | None:
        """py-spy on the service for `seconds`; None when profiling is off or py-spy is missing."""
        if not self.o.profile:
            return None
        py_spy = find_py_spy()
        if py_spy is None:
            note = "The service was not profiled: py-spy is not installed (`pip install py-spy`)."
            if note not in self.results["notes"]:
                self.note(note)
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        slug = "".join(c if c.isalnum() else "-" for c in name)
        return ServiceProfiler(py_spy, svc.pid, seconds, self.log_dir / f"profile-{slug}.txt").start()

    def _profiler(self, svc: ServiceProcess, batch: int, concurrency: int) -> ServiceProfiler | None:
        """py-spy on the service for the batch-1,000 cell with the most clients (the target's cell)."""
        if batch != 1_000 or concurrency != max(self.o.concurrencies):
            return None
        return self.profiler(svc, self.o.ingest_seconds, f"{batch}x{concurrency}")

    # --- scenarios 3 and 4 ---------------------------------------------------------------------------

    def _load_path(self) -> WritePath:
        if self.o.load_path != "auto":
            return self.o.load_path  # type: ignore[return-value]
        ceiling = self.results.get("ceiling")
        if ceiling:
            return str(ceiling["best"]["path"])  # type: ignore[return-value]
        return "raw-grouped"  # the store's own batching: the fewest requests per event

    def queries(self) -> None:
        o = self.o
        tranches = plan_tranches(
            list(o.sizes), until=self.now, seed=o.seed, whales=o.whales, whale_days=o.whale_days
        )
        path = self._load_path()
        concurrency = self._load_concurrency(path)
        sizes: list[dict[str, Any]] = []
        players: list[str] = []
        whales: list[str] = []
        loaded = 0
        self.say(
            f"scenario 3/4 queries under data: sizes {', '.join(f'{s:,}' for s in o.sizes)} "
            f"(keyspace {self.data_ks}; bulk load path {path}, {o.loaders} processes x {concurrency})"
        )
        with self._service(self.data_ks) as svc:
            for index, (size, shards) in enumerate(zip(o.sizes, tranches, strict=True), 1):
                more = size - (o.sizes[index - 2] if index > 1 else 0)
                self.say(
                    f"  size {index}/{len(o.sizes)}: loading {more:,} more events ({len(shards)} shards)"
                )
                load = self._bulk_load(shards, path, concurrency)
                loaded += load.lines
                players += load.players
                whales += load.whales
                entry: dict[str, Any] = {
                    "size": size,
                    "events_total": loaded,
                    "load": load.as_dict(),
                    "whales_in_keyspace": len(whales),
                }
                entry["disk"] = self._disk(loaded)
                entry.update(self._query_size(svc, players, whales))
                entry["events_total_after"] = loaded + entry["ingest_during_queries"].get(
                    "distinct_events", 0
                )
                loaded = entry["events_total_after"]
                sizes.append(entry)
            self.results["sizes"] = sizes
            if "traffic" in o.scenarios:
                self.traffic(svc, players, whales)

    def traffic(self, svc: ServiceProcess, players: list[str], whales: list[str]) -> None:
        o = self.o
        waited, busy = wait_until_quiet(timeout_s=o.quiet_timeout_s)
        self.say(f"  waited {waited:.0f}s for the machine to go quiet ({busy:.0f} % busy)")
        queries = self._query_requests(svc, players, whales, hours=(1, 24, 720))
        self.results["traffic"] = run_traffic(
            self,
            svc,
            queries,
            batch_sizes=o.traffic_batch_sizes,
            clients=o.traffic_clients,
            processes=o.client_processes,
            seconds=o.traffic_seconds,
            events=o.traffic_events,
            late_days=o.traffic_late_days,
            mixed_rate=o.traffic_mixed_rate,
            summarise=_outcome_dict,
        )

    def _load_concurrency(self, path: WritePath) -> int:
        ceiling = self.results.get("ceiling")
        if ceiling and path in ceiling["best_by_path"]:
            return int(ceiling["best_by_path"][path]["concurrency"])
        # Without a ceiling run (--scenarios queries): the best concurrencies of the ceiling trials in
        # docs/performance.md (raw-grouped at 16 loaded at half the rate of 128).
        return {"store": 8, "raw": 256, "raw-batched": 128, "raw-grouped": 128}[path]

    def _bulk_load(self, shards: Sequence[ShardSpec], path: WritePath, concurrency: int) -> LoadResult:
        expected = sum(s.expected_events for s in shards)

        def report_progress(done: int, elapsed: float) -> None:
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = max(0.0, expected - done) / rate if rate > 0 else math.inf
            self.say(
                f"    load: {done:,} / ~{expected:,} events, {rate:,.0f} events/s"
                + (f", ~{eta:.0f}s left" if math.isfinite(eta) else "")
            )

        with WriterPool(self._target(self.data_ks), self.o.loaders) as pool:
            pool.connect([path])
            load = pool.load(shards, path, concurrency, report_progress)
        self.say(
            f"    loaded {load.lines:,} events ({load.stored:,} stored) in {load.seconds:.1f}s = "
            f"{load.events_per_second:,.0f} events/s incl. generation; {len(load.players):,} players, "
            f"{len(load.whales)} whales"
        )
        return load

    def _disk(self, events_total: int) -> dict[str, Any]:
        if not self.node.present:
            return {"bytes": None, "method": "no local node under --base-dir: disk use not measured"}
        method = "sum of file sizes under data/<keyspace> after `nodetool flush <keyspace>`"
        if self.o.flush:
            started = time.monotonic()
            ok, error = self.node.flush(self.data_ks)
            if not ok:
                method = f"sum of file sizes under data/<keyspace>, NOT flushed ({error})"
            self.say(f"    flush: {'ok' if ok else error} in {time.monotonic() - started:.1f}s")
        else:
            method = (
                "sum of file sizes under data/<keyspace>, not flushed (--no-flush): memtables not counted"
            )
        size = self.node.disk_bytes(self.data_ks)
        per_million = size / events_total * 1_000_000 if events_total else None
        self.say(
            f"    disk: {size / 2**20:,.1f} MiB = {(per_million or 0) / 2**20:,.1f} MiB per million events"
        )
        return {
            "bytes": size,
            "bytes_per_event": size / events_total if events_total else None,
            "mib_per_million_events": per_million / 2**20 if per_million else None,
            "method": method,
        }

    def _query_requests(
        self, svc: ServiceProcess, players: list[str], whales: list[str], hours: Sequence[float] | None = None
    ) -> list[tuple[str, list[bytes]]]:
        o = self.o
        sample = self.rng.sample(players, min(len(players), o.query_players)) if players else []
        kinds: list[tuple[str, list[bytes]]] = []
        if sample:
            kinds.append(
                (
                    "player (random)",
                    [get_request(svc.host, svc.port, f"/players/{p}/sessions") for p in sample],
                )
            )
        if whales:
            kinds.append(
                (
                    "player (whale)",
                    [get_request(svc.host, svc.port, f"/players/{p}/sessions") for p in whales],
                )
            )
        for window in o.hours if hours is None else hours:
            kinds.append(
                (
                    f"starts hours={window:g}",
                    [get_request(svc.host, svc.port, f"/session-starts?hours={window:g}")],
                )
            )
        return kinds

    def _query_size(self, svc: ServiceProcess, players: list[str], whales: list[str]) -> dict[str, Any]:
        o = self.o
        kinds = self._query_requests(svc, players, whales)
        cold: list[dict[str, Any]] = []
        for name, requests in kinds:
            if not name.startswith("starts"):
                continue
            conn = Connection(svc.host, svc.port, timeout=COLD_TIMEOUT_S)
            started = time.perf_counter()
            try:
                status, _ = conn.request(requests[0])
            finally:
                conn.close()
            seconds = time.perf_counter() - started
            cold.append({"query": name, "seconds": seconds, "status": status})
            self.say(
                f"    cold {name}: {seconds:.2f}s (HTTP {status}; recounts the rollups the load left stale)"
            )
        # Cassandra compacts a bulk load for minutes afterwards; measure the steady state, not that.
        waited, busy = wait_until_quiet(timeout_s=self.o.quiet_timeout_s)
        self.say(f"    waited {waited:.0f}s for compactions to settle (machine {busy:.0f} % busy)")
        results: list[dict[str, Any]] = []
        ingest: dict[str, Any] = {}
        for with_ingest in (False, True):
            background: LoadRun | None = None
            sampler: TreeSampler | None = None
            pool = 0
            if with_ingest:
                bodies, weights = self.ingest_requests(
                    svc, o.background_events, o.background_batch, o.background_days
                )
                pool = sum(weights)
                background = LoadRun(
                    svc.host, svc.port, bodies, weights, concurrency=o.background_concurrency, processes=1
                )
                sampler = TreeSampler(svc.pid).start()
                background.start()
                time.sleep(1.0)  # let the ingest reach its pace
            try:
                for name, requests in kinds:
                    run = LoadRun(
                        svc.host,
                        svc.port,
                        requests,
                        concurrency=o.query_concurrency,
                        processes=min(o.client_processes, o.query_concurrency),
                        duration=o.query_seconds,
                        timeout=COLD_TIMEOUT_S,
                    )
                    outcome, resources = self.measure(svc, run)
                    cell = {
                        "query": name,
                        "with_ingest": with_ingest,
                        **_outcome_dict(outcome, weight_name="answers"),
                        **resources,
                    }
                    results.append(cell)
                    lat = cell["latency"]
                    self.say(
                        f"    {name:<20} {'with' if with_ingest else 'without'} ingest: "
                        f"{cell['requests_per_second']:>7,.0f} req/s, p50 {lat['p50_ms']:.1f} ms, "
                        f"p90 {lat['p90_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms"
                        + (f", errors {outcome.errors}" if outcome.errors else "")
                    )
            finally:
                if background is not None:
                    background.stop()
                    bg = background.join(timeout=COLD_TIMEOUT_S)
                    usage = sampler.stop() if sampler is not None else None
                    ingest = {
                        **_outcome_dict(bg),
                        "batch_size": o.background_batch,
                        "concurrency": o.background_concurrency,
                        "distinct_events": min(bg.weight, pool),
                        "service": usage.as_dict() if usage is not None else None,
                    }
                    self.say(
                        f"    ingest during the queries: {ingest['events_per_second']:,.0f} events/s, "
                        f"p99 {ingest['latency']['p99_ms']:.0f} ms"
                    )
        return {
            "cold": cold,
            "queries": results,
            "ingest_during_queries": ingest,
            "quiet_wait_seconds": round(waited, 1),
            "machine_busy_before_percent": round(busy, 1),
        }

    # --- targets --------------------------------------------------------------------------------------

    def targets(self) -> None:
        api = self.results.get("api_ingest")
        ratio = None
        if api:
            ratios = [
                c["ratio_to_ceiling"]
                for c in api["cells"]
                if c["batch_size"] == 1_000 and c["ratio_to_ceiling"] is not None
            ]
            ratio = max(ratios) if ratios else None
        low = api["low_load"]["latency"]["p99_ms"] if api else None
        player = starts_short = starts_year = None
        if self.results.get("sizes"):
            largest = self.results["sizes"][-1]
            plain = [q for q in largest["queries"] if not q["with_ingest"]]
            players = [q["latency"]["p99_ms"] for q in plain if q["query"].startswith("player")]
            short = [
                q["latency"]["p99_ms"] for q in plain if q["query"] in ("starts hours=1", "starts hours=24")
            ]
            year = [q["latency"]["p99_ms"] for q in plain if q["query"] == "starts hours=8760"]
            player = max(players) if players else None
            starts_short = max(short) if short else None
            starts_year = max(year) if year else None
        measured = {
            "ingest_ratio": ratio,
            "player_p99": player,
            "starts_short_p99": starts_short,
            "starts_year_p99": starts_year,
            "low_load_p99": low,
            **traffic_measurements(self.results.get("traffic")),
        }
        self.results["targets"] = [evaluate(TARGETS[k], v).as_dict() for k, v in measured.items()]

    # --- the whole run ----------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        o = self.o
        started = time.monotonic()
        self.results.update(
            {
                "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "command": o.command,
                "quick": o.quick,
                "options": o.as_dict(),
                "run_id": self.run_id,
                "keyspaces": [self.ingest_ks, self.data_ks],
            }
        )
        self.say(
            f"bench {self.run_id}: {'quick' if o.quick else 'full'} run, scenarios "
            f"{', '.join(o.scenarios)}; logs in {self.log_dir}"
        )
        background = idle_cpu_percent(2.0)
        admin = _Admin(o)
        created: list[str] = []
        try:
            self.results["machine"] = describe_machine(admin.version(), self.node, background).as_dict()
            if background > 25:
                self.note(
                    f"The machine was already {background:.0f} % busy (all cores) before the bench "
                    "started: other work shares the CPU, so figures are pessimistic and noisy."
                )
            for keyspace in (self.ingest_ks, self.data_ks):
                created.append(keyspace)
                admin.create_schema(o, keyspace)
            if "ceiling" in o.scenarios:
                self.ceiling()
            if "api" in o.scenarios:
                self.api_ingest()
            if "queries" in o.scenarios:
                self.queries()
            elif "traffic" in o.scenarios:
                with self._service(self.data_ks) as svc:
                    self.traffic(svc, [], [])
        finally:
            if o.keep:
                self.say(f"keeping keyspaces {', '.join(created)} (--keep)")
            else:
                for keyspace in created:
                    with contextlib.suppress(Exception):
                        admin.drop(keyspace)
                        self.node.remove_empty_dirs(keyspace)
                if created:
                    self.say(f"dropped keyspaces {', '.join(created)}")
            admin.close()
        self.targets()
        self.results["duration_seconds"] = time.monotonic() - started
        self.results["notes"].extend(report.feasibility_notes(self.results))
        return self.results


def _line_ts(line: bytes) -> bytes:
    at = line.find(b'"ts":"')
    return line[at + 6 : at + 25] if at >= 0 else b""


def run_bench(options: BenchOptions, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark, write the Markdown report and the JSON; returns the results."""
    say = progress or Progress()
    with _sigterm_raises():
        results = _Bench(options, say).run()
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(report.render_markdown(results))
    say(f"wrote {options.out}")
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(report.to_json(results))
        say(f"wrote {options.json_path}")
    return results
