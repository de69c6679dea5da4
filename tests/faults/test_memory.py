"""Eight clients post 100,000-event batches at once: the service's memory stays bounded.

Two bounds keep it so: the POST /events requests in progress in a process weigh at most
--ingest-budget-bytes of body together (default 16 MiB: one of these 12.8 MiB batches at a time; the others
wait --queue-timeout, then get 503 + Retry-After before their body is read), and at most
--max-in-flight Cassandra statements are outstanding. The clients retry as the
loader does, so every batch is stored in the end.

The service's RSS (VmRSS sampled every 50 ms, and the kernel's high-water mark VmHWM) must stay under
RSS_BOUND_MB. In CI each batch is 5,000 sessions sent 10 times (100,000 events parsed, validated and
written, but a tenth of the rows: Cassandra on 2 cores would need ~2 minutes for 800,000 distinct
events); `PS_FAULTS_SCALE=full` sends 100,000 distinct events per batch.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import orjson

from player_sessions.cassandra_local import LauncherConfig
from tests.faults.harness import FULL, fault_service, memory_kb, say
from tests.support.clock import NOW

CLIENTS = 8
EVENTS = 100_000
REPEATS = 1 if FULL else 10
RSS_BOUND_MB = 400
# For comparison runs only (docs/reliability.md): e.g. PS_FAULTS_INGEST_BUDGET=134217728 admits all
# eight at once; the bound is then reported, not asserted.
MAX_INGEST = os.environ.get("PS_FAULTS_INGEST_BUDGET")


def batch(seed: int) -> bytes:
    """EVENTS NDJSON events: EVENTS / 2 / REPEATS complete sessions, each sent REPEATS times."""
    rng = random.Random(seed)
    countries = ["FI", "SE", "US", "DE", "GB", "FR", "BR", "JP"]
    lines: list[bytes] = []
    for i in range(EVENTS // 2 // REPEATS):
        sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        player = f"mem-{seed}-{i % 2000}"
        began = NOW - timedelta(days=3) + timedelta(seconds=rng.randrange(0, 2 * 86400))
        lines.append(
            orjson.dumps(
                {
                    "event": "start",
                    "player_id": player,
                    "session_id": sid,
                    "country": rng.choice(countries),
                    "ts": began.isoformat(),
                }
            )
        )
        lines.append(
            orjson.dumps(
                {
                    "event": "end",
                    "player_id": player,
                    "session_id": sid,
                    "ts": (began + timedelta(seconds=rng.randrange(60, 3600))).isoformat(),
                }
            )
        )
    return b"\n".join(lines * REPEATS) + b"\n"


@dataclass
class Client:
    body: bytes
    attempts: int = 0
    unavailable: int = 0
    transport_errors: int = 0
    result: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def run(self, url: str, deadline: float) -> None:
        began = time.monotonic()
        with httpx.Client(base_url=url, timeout=120) as client:
            while time.monotonic() < deadline:
                self.attempts += 1
                try:
                    r = client.post(
                        "/events", content=self.body, headers={"content-type": "application/x-ndjson"}
                    )
                except httpx.TransportError:
                    self.transport_errors += 1
                    time.sleep(1)
                    continue
                if r.status_code == 503:
                    self.unavailable += 1
                    assert int(r.headers["retry-after"]) > 0
                    time.sleep(float(r.headers["retry-after"]) * random.uniform(0.5, 1.0))
                    continue
                if r.status_code != 200:
                    self.error = f"{r.status_code}: {r.text[:200]}"
                else:
                    self.result = r.json()
                break
        self.seconds = time.monotonic() - began


def test_eight_clients_posting_100k_event_batches_keep_rss_bounded(
    own_node: LauncherConfig,
    service_logs: Path,
    record_property: Callable[[str, object], None],
) -> None:
    bodies = [batch(seed) for seed in range(CLIENTS)]
    flags = {"--contact-points": own_node.address(1)}
    if MAX_INGEST:
        flags["--ingest-budget-bytes"] = MAX_INGEST
    service = fault_service(f"ps_faults_mem_{uuid.uuid4().hex[:8]}", service_logs, flags)
    service.start()
    try:
        base_rss, _ = memory_kb(service)
        clients = [Client(body) for body in bodies]
        samples: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(memory_kb(service)[0])
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.monotonic()
        deadline = began + (1500 if FULL else 600)  # full: 800,000 distinct events at ~1,500/s
        threads = [threading.Thread(target=c.run, args=(service.url, deadline), daemon=True) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(1.0, deadline - time.monotonic() + 20))
        elapsed = time.monotonic() - began
        done.set()
        sampler.join(5)
        rss, hwm = memory_kb(service)
        peak_sampled = max(samples)
        say(
            f"{CLIENTS} clients x {EVENTS:,} events ({len(bodies[0]) / 2**20:.1f} MiB each, sessions sent "
            f"{REPEATS}x) in {elapsed:.1f}s: attempts {[c.attempts for c in clients]}, "
            f"503s {sum(c.unavailable for c in clients)}, transport errors "
            f"{sum(c.transport_errors for c in clients)}; RSS before {base_rss / 1024:.0f} MiB, "
            f"peak sampled {peak_sampled / 1024:.0f} MiB, VmHWM {hwm / 1024:.0f} MiB, "
            f"after {rss / 1024:.0f} MiB"
        )
        for c in clients:
            assert c.error is None, c.error
            assert c.result.get("received") == EVENTS and c.result.get("stored") == EVENTS, c.result
        if not MAX_INGEST:
            assert hwm / 1024 < RSS_BOUND_MB, f"VmHWM {hwm / 1024:.0f} MiB over the {RSS_BOUND_MB} MiB bound"
        assert "Traceback" not in service.log_path.read_text(errors="replace")
        for name, value in (
            ("rss_before_kib", base_rss),
            ("rss_peak_sampled_kib", peak_sampled),
            ("vmhwm_kib", hwm),
            ("seconds", round(elapsed, 1)),
            ("unavailable_503", sum(c.unavailable for c in clients)),
        ):
            record_property(name, value)
    finally:
        service.stop()
