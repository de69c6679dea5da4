"""The benchmark's pure parts: percentiles, summaries, targets, option parsing, report rendering."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from cassandra.protocol import ColumnMetadata
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType, BoundStatement, PreparedStatement

from player_sessions.bench import report
from player_sessions.bench.dataset import plan_tranches
from player_sessions.bench.direct import PATHS
from player_sessions.bench.options import LOAD_PATHS, BenchOptions, parse_int_list
from player_sessions.bench.rows import STATEMENTS, TouchState, partition_groups, phase_groups, raw_rows
from player_sessions.bench.stats import Target, evaluate, percentile, summarise
from player_sessions.domain.events import Event, EventKind
from player_sessions.domain.retention import ttl_seconds
from player_sessions.store.batching import replica_batches
from player_sessions.store.statements import Statements

# --- percentiles ---------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 90) == 90.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0) == 1.0


def test_percentile_with_few_samples_is_conservative() -> None:
    values = [1.0, 2.0, 3.0, 10.0]
    assert percentile(values, 99) == 10.0  # the maximum, never an interpolation below it
    assert percentile(values, 50) == 2.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_nan_and_range_is_checked() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarise_converts_seconds_to_milliseconds() -> None:
    stats = summarise([0.003, 0.001, 0.002, 0.010])  # unsorted on purpose
    assert stats.count == 4
    assert stats.p50_ms == pytest.approx(2.0)
    assert stats.p99_ms == pytest.approx(10.0)
    assert stats.max_ms == pytest.approx(10.0)
    assert stats.mean_ms == pytest.approx(4.0)
    assert summarise([]).count == 0 and math.isnan(summarise([]).p99_ms)


# --- targets -------------------------------------------------------------------------------------


def test_target_met_and_missed_by_how_much() -> None:
    latency = Target("p99", "max", 10.0, "ms")
    assert evaluate(latency, 9.9).met is True
    missed = evaluate(latency, 15.0)
    assert missed.met is False
    assert "5.0 ms" in missed.verdict and "50 % over" in missed.verdict
    ratio = Target("ratio", "min", 50.0, "%")
    assert evaluate(ratio, 50.0).met is True
    short = evaluate(ratio, 30.0)
    assert short.met is False and "20 percentage points" in short.verdict
    assert evaluate(ratio, None).met is None
    assert evaluate(ratio, math.nan).verdict == "not measured"


# --- options and data plan -------------------------------------------------------------------------


def test_parse_int_list_accepts_suffixes() -> None:
    assert parse_int_list("1000000,10000000") == (1_000_000, 10_000_000)
    assert parse_int_list("20k, 1.5M") == (20_000, 1_500_000)
    for bad in ("", "x", "-5", "1.5"):
        with pytest.raises(ValueError):
            parse_int_list(bad)


def test_options_validate_sizes_and_prefix() -> None:
    assert BenchOptions.quick_preset().quick
    with pytest.raises(ValueError):
        BenchOptions(sizes=(60_000, 20_000))
    with pytest.raises(ValueError):
        BenchOptions(keyspace_prefix="ps-bench")


def test_tranches_grow_and_put_whales_first() -> None:
    until = datetime(2016, 12, 1, tzinfo=UTC)
    tranches = plan_tranches([100_000, 300_000], until=until, seed=1, whales=2, whale_days=30)
    assert len(tranches) == 2
    assert tranches[0][0].whales and not any(s.whales for s in tranches[1])
    first = sum(s.expected_events for s in tranches[0])
    second = sum(s.expected_events for s in tranches[1])
    assert first == pytest.approx(100_000, rel=0.05)
    assert second == pytest.approx(200_000, rel=0.05)
    seeds = [s.seed for t in tranches for s in t]
    assert len(seeds) == len(set(seeds))
    # Deterministic: the same sizes give the same shards.
    assert plan_tranches([100_000, 300_000], until=until, seed=1, whales=2, whale_days=30) == tranches


# --- the raw rows ---------------------------------------------------------------------------------------


def test_raw_rows_write_one_event_row_each_and_touch_each_hour_once() -> None:
    now = datetime(2016, 12, 1, 12, tzinfo=UTC)
    retention = timedelta(days=365)
    sid = uuid.uuid4()
    other = uuid.uuid4()
    start = Event(EventKind.START, "p1", sid, now - timedelta(hours=2), "FI")
    second = Event(EventKind.START, "p1", other, now - timedelta(hours=2, minutes=-5), "FI")
    end = Event(EventKind.END, "p1", sid, now - timedelta(hours=1), None)
    state = TouchState()
    first_rows = raw_rows([start, second], now, retention, state)
    assert (
        set(first_rows.by_statement)
        == set(STATEMENTS)
        == {
            "put_event",
            "put_start",
            "put_minute_start",
            "put_country_hour",
            "touch_hour",
            "touch_minute",
            "touch_day",
        }
    )
    # The raw paths send the store's own prepared statements: every name is one of its fields.
    assert set(STATEMENTS) <= {f.name for f in dataclasses.fields(Statements)}
    assert first_rows.by_statement["put_event"][0] == (
        "p1",
        start.ts,
        sid,
        True,
        "FI",
        ttl_seconds(start.ts, now, retention),
    )
    assert len(first_rows.by_statement["put_event"]) == 2
    assert len(first_rows.by_statement["put_start"]) == len(first_rows.by_statement["put_minute_start"]) == 2
    assert len(first_rows.by_statement["touch_hour"]) == 1  # both starts in the same country-hour
    assert len(first_rows.by_statement["put_country_hour"]) == 1
    assert len(first_rows.by_statement["touch_day"]) == 1
    # One touch per minute of the call, with the minute's countries.
    assert sorted((p[2], p[3]) for p in first_rows.by_statement["touch_minute"]) == [
        (start.ts.replace(minute=0), start.ts),
        (start.ts.replace(minute=0), second.ts),
    ]
    later = raw_rows([end, start], now, retention, state)  # the start again: a duplicate, same row
    (end_row, again) = later.by_statement["put_event"]
    assert end_row[:4] == ("p1", end.ts, sid, False) and end_row[4] is UNSET_VALUE  # never a null
    assert again == first_rows.by_statement["put_event"][0]
    assert len(later.by_statement["put_start"]) == 1
    # Touched once per stream, across calls; a new stream touches afresh.
    assert later.by_statement["touch_hour"] == later.by_statement["touch_day"] == []
    assert later.by_statement["touch_minute"] == []
    assert later.by_statement["put_country_hour"] == []
    assert len(raw_rows([start], now, retention, TouchState()).by_statement["touch_hour"]) == 1


def test_partition_groups_cover_every_row_phase_by_phase() -> None:
    now = datetime(2016, 12, 1, 12, tzinfo=UTC)
    events = []
    for i in range(260):
        sid = uuid.uuid4()
        player = "whale" if i % 2 else f"p{i}"  # the whale's 130 sessions need two batches
        began = now - timedelta(hours=i % 30, minutes=i)
        events.append(Event(EventKind.START, player, sid, began, ("FI", "SE", "NO")[i % 3]))
        events.append(Event(EventKind.END, player, sid, began + timedelta(minutes=3), None))
    rows = raw_rows(events, now, timedelta(days=365), TouchState())
    groups = partition_groups(rows)
    flat = [row for group in groups for row in group]
    assert sorted(map(repr, flat)) == sorted(repr(row) for row in rows.ordered())
    assert all(1 <= len(g) <= 100 for g in groups)
    assert max(len(g) for g in groups) == 100
    for group in groups:  # one statement, one partition per group
        assert len({name for name, _ in group}) == 1
    assert all(len({p[0] for _, p in g}) == 1 for g in groups if g[0][0] == "put_event")
    assert all(len({p[:2] for _, p in g}) == 1 for g in groups if g[0][0] == "put_start")
    index = {name: [i for i, g in enumerate(groups) if g[0][0] == name] for name in STATEMENTS}
    raw = index["put_event"] + index["put_start"] + index["put_minute_start"]
    # The service's order (rollups.write_marks): raw rows, minutes, hours with their index, days.
    hours = index["touch_hour"] + index["put_country_hour"]
    assert max(raw) < min(index["touch_minute"])
    assert max(index["touch_minute"]) < min(hours)
    assert max(hours) < min(index["touch_day"])
    phases = phase_groups(rows)
    assert len(phases) == 4 and [g for phase in phases for g in phase] == groups
    assert [{name for g in phase for name, _ in g} for phase in phases] == [
        {"put_event", "put_start", "put_minute_start"},
        {"touch_minute"},
        {"touch_hour", "put_country_hour"},
        {"touch_day"},
    ]


# --- replica batches (what raw-grouped and the store send) ---------------------------------------------


class _Host:
    """Equal and hashed by endpoint, like the driver's Host."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Host) and other.endpoint == self.endpoint

    def __hash__(self) -> int:
        return hash(self.endpoint)


class _Metadata:
    """Two replica sets: even first bytes of the routing key on hosts a+b, odd ones on b+c."""

    def all_hosts(self) -> list[_Host]:
        return [_Host(h) for h in "abc"]  # 3 nodes; no keyspace metadata: replicas looked up per row

    def get_replicas(self, keyspace: str, routing_key: bytes) -> list[_Host]:
        assert keyspace == "ks"
        hosts = ("a", "b") if routing_key[-1] % 2 == 0 else ("c", "b")
        return [_Host(h) for h in hosts]


def _prepared(cql: str) -> PreparedStatement:
    columns = [ColumnMetadata("ks", "t", f"c{i}", _BytesType) for i in range(cql.count("?"))]
    return PreparedStatement(columns, hashlib.sha1(cql.encode()).digest(), [0], cql, "ks", 4, None, None)


class _BytesType:
    @staticmethod
    def serialize(value: object, protocol_version: int) -> bytes:
        return value if isinstance(value, bytes) else repr(value).encode()


def test_replica_batches_never_mix_replica_sets_and_keep_every_row_once() -> None:
    statement = _prepared("INSERT INTO ks.t (k, v) VALUES (?, ?)")
    rows = [(statement, (bytes([i % 256]), f"v{i}")) for i in range(450)]
    rows += [(statement, (bytes([7]), "x" * 1_500)) for _ in range(6)]  # wide values: cut by bytes
    metadata = _Metadata()
    sent = list(replica_batches(metadata, "ks", rows))
    seen: list[tuple[bytes, bytes]] = []
    for item in sent:
        bounds = [item] if isinstance(item, BoundStatement) else None
        if bounds is None:
            assert isinstance(item, BatchStatement) and item.batch_type == BatchType.UNLOGGED
            assert item.is_idempotent
            assert len(item._statements_and_parameters) <= 100
            values = [tuple(params) for _, _, params in item._statements_and_parameters]
            assert sum(len(v) for params in values for v in params) <= 4096
        else:
            values = [tuple(b.values) for b in bounds]
        assert len({key[-1] % 2 for key, _ in values}) == 1, "rows of two replica sets in one batch"
        seen += [(key, value) for key, value in values]
    expected = [(key, _BytesType.serialize(value, 4)) for _, (key, value) in rows]
    assert sorted(seen) == sorted(expected)
    assert len(sent) < len(rows) / 10


def test_load_paths_match_the_writer_paths() -> None:
    assert set(LOAD_PATHS) == {"auto", *PATHS} and "raw-grouped" in PATHS
    assert BenchOptions(load_path="raw-grouped").load_path == "raw-grouped"
    with pytest.raises(ValueError):
        BenchOptions(load_path="raw-pairs")


# --- the report ----------------------------------------------------------------------------------------


def _latency(p99: float) -> dict[str, float]:
    return {
        "count": 100,
        "mean_ms": p99 / 3,
        "p50_ms": p99 / 4,
        "p90_ms": p99 / 2,
        "p99_ms": p99,
        "max_ms": p99 * 1.5,
    }


def _query(name: str, with_ingest: bool, p99: float) -> dict[str, Any]:
    return {
        "query": name,
        "with_ingest": with_ingest,
        "requests": 100,
        "requests_per_second": 50.0,
        "latency": _latency(p99),
        "errors": {},
    }


def _size(size: int, events: int, player_p99: float) -> dict[str, Any]:
    queries = [
        _query(n, w, player_p99 * (1 + 3 * w) * k)
        for w in (False, True)
        for n, k in (
            ("player (random)", 1),
            ("player (whale)", 1.2),
            ("starts hours=24", 5),
            ("starts hours=8760", 40),
        )
    ]
    return {
        "size": size,
        "events_total": events,
        "load": {
            "path": "raw-batched",
            "processes": 2,
            "concurrency": 64,
            "events": events,
            "stored": events,
            "expired": 0,
            "rejected": 0,
            "retries": 0,
            "seconds": events / 5_000,
            "events_per_second": 5_000.0,
            "players": 10,
            "whales": 2,
        },
        "disk": {"bytes": events * 150, "mib_per_million_events": 143.0, "method": "flushed"},
        "cold": [{"query": "starts hours=8760", "seconds": 12.5, "status": 200}],
        "queries": queries,
        "ingest_during_queries": {
            "events_per_second": 1_200.0,
            "batch_size": 1_000,
            "concurrency": 2,
            "latency": _latency(900.0),
            "errors": {},
        },
    }


def _results() -> dict[str, Any]:
    trial = {
        "path": "raw-batched",
        "processes": 2,
        "concurrency": 64,
        "events": 10_000,
        "statements": 9_000,
        "retries": 0,
        "seconds": 2.0,
        "events_per_second": 5_000.0,
    }
    store = {**trial, "path": "store", "concurrency": 4, "statements": 0, "events_per_second": 2_500.0}
    grouped = {
        **trial,
        "path": "raw-grouped",
        "concurrency": 32,
        "statements": 400,
        "events_per_second": 4_000.0,
    }
    cell = {
        "batch_size": 1_000,
        "concurrency": 2,
        "requests": 10,
        "events_per_second": 1_500.0,
        "ratio_to_ceiling": 30.0,
        "latency": _latency(800.0),
        "errors": {"HTTP 503": 1},
        "service": {"cpu_percent_of_one_core": 95.0, "rss_peak_mb": 120.0},
        "cassandra_cpu_percent": 50.0,
        "machine_cpu_percent": 97.0,
        "client_cpu_percent": 2.0,
    }
    return {
        "format": 1,
        "quick": True,
        "command": "player-sessions bench --quick",
        "started_at": "2026-01-01T00:00:00Z",
        "duration_seconds": 170.0,
        "service_command": "python -m player_sessions.cli serve --port 1",
        "options": BenchOptions.quick_preset().as_dict(),
        "machine": {
            "cpu_model": "AMD EPYC",
            "cores": 2,
            "ram_gb": 23.5,
            "kernel": "Linux 6",
            "python": "CPython 3.11",
            "cassandra_version": "5.0.9",
            "cassandra_heap": "1g",
            "cassandra_local": True,
            "background_cpu_percent": 5.0,
        },
        "ceiling": {
            "trials": [store, trial, grouped],
            "best": trial,
            "best_by_path": {"store": store, "raw-batched": trial, "raw-grouped": grouped},
            "events_per_trial": 10_000,
        },
        "api_ingest": {
            "cells": [cell],
            "low_load": {"rate_per_second": 20.0, "requests": 60, "latency": _latency(25.0), "errors": {}},
        },
        "sizes": [_size(10_000, 10_500, 8.0), _size(30_000, 31_000, 12.0)],
        "targets": [
            evaluate(Target("player p99", "max", 10.0, "ms"), 12.0).as_dict(),
            evaluate(Target("ratio", "min", 50.0, "%"), 30.0).as_dict(),
        ],
        "notes": ["a note"],
    }


def test_report_renders_every_section() -> None:
    results = _results()
    text = report.render_markdown(results)
    for heading in (
        "# Performance",
        "## Summary: targets",
        "## Machine and command",
        "## 1. Ingest ceiling",
        "## 2. Ingest through the API",
        "## 3. Queries under data",
        "## 4. Growth",
        "## What limits throughput",
        "## Notes",
    ):
        assert heading in text
    assert "**Quick run**" in text
    assert "AMD EPYC, 2 cores" in text and "5.0.9, heap 1g" in text
    assert "player-sessions bench --quick" in text
    assert "raw-batched **(ceiling)**" in text
    assert "**missed**: missed by 2.0 ms" in text
    assert "HTTP 503: 1" in text
    assert "From 10k to 30k" in text and "player p99 x1.50" in text
    assert "service process is CPU-bound" in text
    assert "1 ingest requests were answered 503" in text
    assert "Concurrent ingest slowed" in text
    assert "`store_events` path was 2.0x slower than the fastest raw path (`raw-batched`)" in text
    assert "(`raw-grouped`, as the service sends them) were 1.2x slower than single-partition" in text
    assert "40 vs 900 requests per 1,000 events" in text
    assert "`raw-grouped` = the same rows in the store's replica-grouped" in text
    lowered = text.lower()
    assert not any(stale in lowered for stale in ("pair", "read-back", "halves", "sessions_by_player"))
    # Every table row has as many cells as its header.
    for block in text.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            assert len({row.count("|") for row in rows}) == 1, block


def test_report_tolerates_missing_scenarios_and_round_trips_json() -> None:
    results = _results()
    for key in ("ceiling", "api_ingest", "sizes"):
        results.pop(key)
    text = report.render_markdown(results)
    assert "## 1. Ingest ceiling" not in text and "## 4. Growth" not in text
    assert orjson.loads(report.to_json(_results()))["sizes"][1]["size"] == 30_000


def test_feasibility_note_projects_ten_million() -> None:
    notes = report.feasibility_notes(_results())
    assert len(notes) == 1 and "10M events would take ~33 min" in notes[0]


# --- the service profile ---------------------------------------------------------------------------------


def test_folded_stacks_are_summarised_by_the_innermost_frame() -> None:
    from player_sessions.bench.profile import summarise_folded
    from player_sessions.bench.report import _profile_observations

    folded = "\n".join(
        [
            'process 1:"serve";main (player_sessions/cli.py:1);bind (cassandra/query.py:10) 6',
            'process 1:"serve";main (player_sessions/cli.py:1);'
            "validate_event (player_sessions/domain/validation.py:5) 3",
            'process 1:"serve";run (asyncio/base_events.py:1) 1',
            "not a stack line",
        ]
    )
    summary = summarise_folded(folded)
    assert summary["samples"] == 10
    assert summary["areas"] == [
        ("Cassandra driver", 60.0),
        ("validation and domain rules (ours)", 30.0),
        ("event loop (asyncio)", 10.0),
    ]
    assert summary["functions"][0] == ("bind (cassandra/query.py)", 60.0)
    lines = _profile_observations({"batch_size": 1000, "concurrency": 8, "summary": summary, "error": ""})
    assert "Cassandra driver 60 %" in lines[0] and "`bind (cassandra/query.py)` 60 %" in lines[1]
    failed = _profile_observations({"batch_size": 1000, "concurrency": 8, "summary": None, "error": "denied"})
    assert failed == ["The py-spy profile of the service (batch 1,000 x 8 clients) failed: denied."]


def test_one_replica_set_when_every_node_holds_every_row() -> None:
    from types import SimpleNamespace

    from player_sessions.store.batching import one_replica_set

    def metadata(dcs: list[str], strategy: object) -> object:
        hosts = [SimpleNamespace(datacenter=dc) for dc in dcs]
        return SimpleNamespace(
            all_hosts=lambda: hosts, keyspaces={"ks": SimpleNamespace(replication_strategy=strategy)}
        )

    nts = SimpleNamespace(dc_replication_factors={"dc1": 3})
    assert one_replica_set(metadata(["dc1"], None), "ks")  # one node
    assert one_replica_set(metadata(["dc1"] * 3, nts), "ks")  # 3 nodes, RF 3
    assert not one_replica_set(metadata(["dc1"] * 4, nts), "ks")  # 4 nodes, RF 3
    assert one_replica_set(metadata(["dc1"] * 2, SimpleNamespace(replication_factor=2)), "ks")
    assert not one_replica_set(metadata(["dc1"] * 2, None), "ks")  # keyspace unknown: look up per row
    assert not one_replica_set(_Metadata(), "ks")


def test_rows_per_request_counts_the_marks_late_starts_make() -> None:
    """Two starts in one minute of one country: one mark per level and one country_hours row. The same
    two starts a week apart: a minute, an hour with its country and a day each."""
    from player_sessions.bench.httpload import post_request
    from player_sessions.bench.traffic import rows_per_request

    def request(*stamps: str) -> bytes:
        events = [
            {"event": "start", "country": "fi", "player_id": "p", "session_id": str(uuid.uuid4()), "ts": ts}
            for ts in stamps
        ]
        events.append({"event": "end", "player_id": "p", "session_id": str(uuid.uuid4()), "ts": stamps[0]})
        return post_request("127.0.0.1", 1, "/events", json.dumps(events).encode())

    live = rows_per_request([request("2016-12-01T11:00:01Z", "2016-12-01T11:00:30Z")])
    assert live == {"raw_rows": 3 + 2 * 2, "mark_rows": 1 + (1 + 1) + 1}
    late = rows_per_request([request("2016-12-01T11:00:01Z", "2016-11-24T03:10:00Z")])
    assert late == {"raw_rows": 3 + 2 * 2, "mark_rows": 2 + 2 * (1 + 1) + 2}


# --- the traffic section: one process and roles split ---------------------------------------------


def _ingest_cell(batch: int, rate: float, clients: int = 8, **extra: Any) -> dict[str, Any]:
    return {
        "batch_size": batch,
        "clients": clients,
        "events_per_second": rate,
        "requests_per_second": rate / batch,
        "latency": _latency(40.0),
        "errors": {},
        "service": {"cpu_percent_of_one_core": 70.0},
        "cassandra_cpu_percent": 60.0,
        "machine_cpu_percent": 80.0,
        "rows_per_request": {"raw_rows": 2.0 * batch, "mark_rows": batch / 10},
        **extra,
    }


def _mixed_run(player_p99: float, starts_p99: float, rate: float, split: bool) -> dict[str, Any]:
    queries = [
        _query("player (random)", True, player_p99),
        *(_query(f"starts hours={h}", True, starts_p99) for h in (1, 24, 720)),
    ]
    run: dict[str, Any] = {
        "queries": queries,
        "ingest": _ingest_cell(
            1_000,
            rate,
            offered_events_per_second=12_000.0,
            query_service={"cpu_percent_of_one_core": 30.0} if split else None,
        ),
    }
    if split:
        run["query_reads"] = {"reads": 800.0, "mean_ms": 20.0}
    return run


def test_the_traffic_targets_are_read_on_the_split_cells_and_both_deployments_are_reported() -> None:
    traffic = {
        "clients": 8,
        "seconds": 10.0,
        "late_days": 30.0,
        "cells": [_ingest_cell(10, 4_000.0), _ingest_cell(1_000, 16_000.0), _ingest_cell(10, 5_000.0, 16)],
        "late": _ingest_cell(1_000, 12_000.0),
        "mixed": _mixed_run(600.0, 5_000.0, 11_000.0, split=False),
        "mixed_flat_out": _mixed_run(500.0, 1_000.0, 14_000.0, split=False),
        "split_mixed": _mixed_run(90.0, 400.0, 11_500.0, split=True),
        "split_mixed_flat_out": _mixed_run(80.0, 300.0, 13_600.0, split=True),
        "split_queries_alone": {
            "queries": [_query("player (random)", False, 30.0), _query("starts hours=1", False, 45.0)],
            "query_reads": {"reads": 400.0, "mean_ms": 8.0},
        },
        "profiles": {},
    }
    from player_sessions.bench.traffic import traffic_measurements

    measured = traffic_measurements(traffic)
    assert measured["mixed_starts_p99"] == 400.0 and measured["mixed_player_p99"] == 90.0
    assert measured["mixed_ingest_rate"] == 11_500.0
    assert measured["mixed_ingest_ratio"] == pytest.approx(13_600 / 16_000 * 100)
    assert measured["small_batch_ratio"] == pytest.approx(5_000 / 16_000 * 100)
    assert measured["late_ratio"] == pytest.approx(75.0)

    # A query that only failed has no latency: NaN when measured, null once saved as JSON.
    failed = _query("starts hours=48", True, 1.0)
    failed["latency"] = dict.fromkeys(failed["latency"])
    failed["errors"] = {"HTTP 503": 1}
    traffic["mixed"]["queries"].append(failed)
    results = {"traffic": traffic, "machine": {"cores": 2}}
    section = "\n".join(report._traffic(results))
    for label in ("one process", "roles split"):
        assert f"live, paced (12,000 offered), with queries, {label}" in section
        assert f"Queries during the live ingest, paced, {label}, one client each" in section
    assert "with no ingest running" in section
    account = " ".join(report._traffic_observations(results))
    # 4 query clients x 100 answers each made 800 reads: 2 per query, 20 ms each, against 8 ms alone.
    assert "made 2.0 Cassandra reads, which took 20.0 ms each" in account
    assert "2.0 reads of 8.00 ms" in account
    assert "each read took 2.5x as long as without ingest" in account and "made more of them" not in account
