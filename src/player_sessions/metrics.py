"""Prometheus metrics (the official `prometheus-client`), shared by the API, the services and the store.

Every metric is defined once here. With `serve --workers N` each worker process writes its values to
memory-mapped files in `PROMETHEUS_MULTIPROC_DIR` (set up by `serve`, see `prepare_multiprocess_dir`)
and `GET /metrics` sums the files of every worker; with one worker the values live in the process.
Which mode applies is fixed when `prometheus_client` is first imported, so `serve` sets the variable
before the workers start.

Label values are bounded sets: route *templates* (never raw paths), status codes, outcome names, the
validation rules' fixed (field, rule) texts and driver exception class names.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CQL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 10, 100, 500, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000)

HTTP_REQUESTS = Counter(
    "player_sessions_http_requests",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "player_sessions_http_request_duration_seconds",
    "Time from request to last response byte",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
EVENTS = Counter(
    "player_sessions_events",
    "Events received by POST /events, by outcome (stored, expired, rejected)",
    ["outcome"],
)
EVENTS_REJECTED = Counter(
    "player_sessions_events_rejected",
    "Rejected events by the field and the rule they broke",
    ["field", "rule"],
)
BATCH_SIZE = Histogram(
    "player_sessions_ingest_batch_events", "Events per POST /events request", buckets=BATCH_BUCKETS
)
CQL_ERRORS = Counter(
    "player_sessions_cassandra_errors", "Failed Cassandra requests by driver error", ["error", "kind"]
)
CQL_WRITE_LATENCY = Histogram(
    "player_sessions_cassandra_write_duration_seconds",
    "Cassandra write latency (statement or single-partition batch, sent to acknowledged)",
    buckets=CQL_BUCKETS,
)
CQL_READ_LATENCY = Histogram(
    "player_sessions_cassandra_read_duration_seconds",
    "Cassandra read latency (sent to first page)",
    buckets=CQL_BUCKETS,
)
CQL_WRITES_IN_FLIGHT = Gauge(
    "player_sessions_cassandra_writes_in_flight",
    "Cassandra writes sent and not yet acknowledged",
    multiprocess_mode="livesum",
)
ROLLUP_PASSES = Histogram(
    "player_sessions_rollup_pass_duration_seconds",
    "Background rollup passes (yesterday and today, then stale days before them): time each took",
    buckets=LATENCY_BUCKETS,
)
ROLLUP_BACKLOG_DAYS = Counter(
    "player_sessions_rollup_backlog_days",
    "Stale day rollups before yesterday recounted by the background pass",
)
ERASED_ROWS = Counter(
    "player_sessions_erased_rows", "Rows removed by DELETE /players/{player_id}, by table", ["table"]
)


def record_ingest(
    stored: int, expired: int, rejected_rules: Iterable[tuple[str, str]], received: int
) -> None:
    """One POST /events: its size, its outcomes, and each rejection's (field, rule)."""
    BATCH_SIZE.observe(received)
    rejected = Tally(rejected_rules)
    EVENTS.labels("stored").inc(stored)
    EVENTS.labels("expired").inc(expired)
    EVENTS.labels("rejected").inc(sum(rejected.values()))
    for (field, rule), n in rejected.items():
        EVENTS_REJECTED.labels(field, rule).inc(n)


# --- Cassandra: every request the driver sends, observed through its request-init hook --------------

_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")


def _is_write(query: Any) -> bool:
    if type(query).__name__ == "BatchStatement":
        return True
    prepared = getattr(query, "prepared_statement", None)
    text = getattr(prepared if prepared is not None else query, "query_string", "") or ""
    return text.lstrip()[:6].upper() in _WRITE_VERBS


def _on_request(future: Any) -> None:
    # Runs on the thread that sends the request; the callbacks run on the driver's I/O thread.
    write = _is_write(getattr(future, "query", None))
    began = time.perf_counter()
    if write:
        CQL_WRITES_IN_FLIGHT.inc()

    def done(_: Any) -> None:
        elapsed = time.perf_counter() - began
        if write:
            CQL_WRITES_IN_FLIGHT.dec()
            CQL_WRITE_LATENCY.observe(elapsed)
        else:
            CQL_READ_LATENCY.observe(elapsed)

    def failed(exc: BaseException) -> None:
        if write:
            CQL_WRITES_IN_FLIGHT.dec()
        CQL_ERRORS.labels(type(exc).__name__, "write" if write else "read").inc()

    future.add_callbacks(done, failed)


def instrument_session(session: Any) -> None:
    """Observe every request of a driver Session: latency, writes in flight, errors by type."""
    session.add_request_init_listener(_on_request)


# --- exposition and multi-process bookkeeping ---------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render() -> tuple[bytes, str]:
    """The exposition text of every metric (summed over the worker processes in multi-process mode)."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def prepare_multiprocess_dir(workers: int) -> str | None:
    """Called by `serve` before the workers start. Uses `$PROMETHEUS_MULTIPROC_DIR` if set (emptied of
    a previous run's files), else a new temporary directory when there is more than one worker.
    Returns the directory `serve` created (to remove at exit), or None."""
    existing = multiprocess_dir()
    if existing is not None:
        os.makedirs(existing, exist_ok=True)
        for stale in glob.glob(os.path.join(existing, "*.db")):
            os.remove(stale)
        return None
    if workers <= 1:
        return None
    created = tempfile.mkdtemp(prefix="player-sessions-metrics-")
    os.environ[MULTIPROC_ENV] = created
    return created


def remove_multiprocess_dir(path: str | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def process_exiting() -> None:
    """A worker stops: drop its live gauges (writes in flight) from the sums."""
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]
