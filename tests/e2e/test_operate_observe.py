"""GET /metrics (Prometheus, summed over `--workers 2` in multi-process mode) and the JSON request log."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clock import NOW
from tests.support.factories import iso, new_player, session_pair, start
from tests.support.service import ServiceProcess, start_service

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    r = httpx.get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def observed(
    cassandra_node: str, test_keyspace_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, Path]]:
    """`serve --workers 2 --log-format json` with PROMETHEUS_MULTIPROC_DIR holding a previous run's file."""
    folder = tmp_path_factory.mktemp("observe")
    metrics_dir = folder / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over by a previous run")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    try:
        service = start_service(
            f"{test_keyspace_name}_observe",
            folder,
            {"--clock": iso(NOW), "--workers": "2", "--log-format": "json"},
        )
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    yield service, metrics_dir
    service.stop()


def test_metrics_count_requests_events_and_cassandra_work_over_both_workers(
    observed: tuple[ServiceProcess, Path],
) -> None:
    service, metrics_dir = observed
    url = service.url
    assert not (metrics_dir / "counter_999999.db").exists()  # cleaned when serve started

    before = scrape(url)
    player = new_player()
    batch = [
        *session_pair(player, NOW - timedelta(hours=2)),
        start(player, str(uuid.uuid4()), NOW - timedelta(days=400)),  # expired
        start(player, "not-a-uuid", NOW - timedelta(hours=1)),  # rejected: session_id
        start(player, str(uuid.uuid4()), NOW - timedelta(hours=1), country="ZZ"),  # rejected: country
        start(player, str(uuid.uuid4()), NOW - timedelta(hours=1)),
    ]
    r = httpx.post(f"{url}/events", json=batch, timeout=30)
    assert r.json()["stored"] == 3
    for _ in range(12):  # a new connection each: the two workers share the load
        assert httpx.get(f"{url}/players/{player}/sessions", timeout=30).status_code == 200
    assert httpx.get(f"{url}/no/such/route", timeout=30).status_code == 404
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("player_sessions_http_requests_total", method="POST", route="/events", status="200") == 1
    assert (
        delta(
            "player_sessions_http_requests_total",
            method="GET",
            route="/players/{player_id}/sessions",
            status="200",
        )
        == 12
    )
    assert delta("player_sessions_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert (
        delta(
            "player_sessions_http_request_duration_seconds_count",
            method="GET",
            route="/players/{player_id}/sessions",
        )
        == 12
    )
    assert (
        delta(
            "player_sessions_http_request_duration_seconds_bucket", method="POST", route="/events", le="+Inf"
        )
        == 1
    )
    assert delta("player_sessions_events_total", outcome="stored") == 3
    assert delta("player_sessions_events_total", outcome="expired") == 1
    assert delta("player_sessions_events_total", outcome="rejected") == 2
    assert delta("player_sessions_events_rejected_total", field="session_id", rule="not a UUID") == 1
    assert (
        delta("player_sessions_events_rejected_total", field="country", rule="not an ISO 3166-1 alpha-2 code")
        == 1
    )
    assert delta("player_sessions_ingest_batch_events_count") == 1
    assert delta("player_sessions_ingest_batch_events_sum") == len(batch)
    assert delta("player_sessions_ingest_batch_events_bucket", le="10.0") == 1
    assert delta("player_sessions_cassandra_write_duration_seconds_count") >= 3  # rows, hour and day marks
    assert delta("player_sessions_cassandra_read_duration_seconds_count") >= 12
    # Summed over the live workers; a background rollup pass may have a write in flight at any one
    # scrape, so the gauge must come back to 0, not read 0 every time.
    deadline = time.monotonic() + 10
    while value(scrape(url), "player_sessions_cassandra_writes_in_flight") != 0:
        assert time.monotonic() < deadline, "writes in flight did not come back to 0 in 10 s"
        time.sleep(0.1)
    assert ("player_sessions_cassandra_errors_total", ()) not in after  # labelled only once one happens
    # Each worker's background rollup pass runs at startup, then every --rollup-interval.
    deadline = time.monotonic() + 30
    while value(scrape(url), "player_sessions_rollup_pass_duration_seconds_count") < 2:
        assert time.monotonic() < deadline, "no rollup pass of both workers in /metrics after 30 s"
        time.sleep(0.5)

    # Multi-process mode: each worker writes its own files and /metrics sums them (the counts above
    # are exact whichever worker served each request).
    pids = {
        m.group(1) for f in metrics_dir.iterdir() if (m := re.match(r"gauge_livesum_(\d+)\.db", f.name))
    }  # writes in flight, one per worker
    assert len(pids) == 2, sorted(f.name for f in metrics_dir.iterdir())


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_request_ids_are_echoed_and_every_request_is_one_json_log_line(
    observed: tuple[ServiceProcess, Path],
) -> None:
    service, _ = observed
    player = new_player()
    r = httpx.post(
        f"{service.url}/events",
        json=list(session_pair(player, NOW - timedelta(hours=1))),
        headers={"X-Request-ID": "trace-42.a"},
        timeout=30,
    )
    assert r.headers["x-request-id"] == "trace-42.a"
    generated = httpx.get(
        f"{service.url}/players/{player}/sessions",
        headers={"X-Request-ID": "has spaces\tand tabs"},
        timeout=30,
    )
    new_id = generated.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", new_id)
    bad = httpx.get(f"{service.url}/session-starts", params={"hours": -1}, timeout=30)
    assert bad.status_code == 400 and re.fullmatch(r"[0-9a-f]{32}", bad.headers["x-request-id"])

    wanted = {"trace-42.a", new_id, bad.headers["x-request-id"]}
    by_id: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 10
    while not wanted <= by_id.keys() and time.monotonic() < deadline:  # each worker writes its own lines
        time.sleep(0.1)
        by_id = {
            line["request_id"]: line
            for line in json_lines(service.log_path)
            if line["logger"] == "player_sessions.access"
        }
    post = by_id["trace-42.a"]
    assert post["method"] == "POST" and post["route"] == "/events" and post["status"] == 200
    assert post["events"] == 2 and post["level"] == "info" and isinstance(post["duration_ms"], float)
    assert post["key"] is None and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", post["ts"])
    get = by_id[new_id]
    assert get["route"] == "/players/{player_id}/sessions" and get["status"] == 200
    assert get["events"] is None
    assert player not in json.dumps(get)  # the route template, not the path with the player id
    assert by_id[bad.headers["x-request-id"]]["status"] == 400
