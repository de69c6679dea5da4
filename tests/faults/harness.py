"""What the fault tests share: the real `serve` as a process we can SIGKILL and restart on its port, a
recording transport for the loader, datasets with their truth, and the checks that the answers equal
the generator's truth and that acknowledged events are in Cassandra. Their fixtures (a Cassandra node
of their own, a folder for service logs) are in conftest.py.

Sizes: `PS_FAULTS_SCALE=full` (the `make faults` run) uses the sizes of docs/reliability.md; the
default keeps the whole `faults` marker within a few minutes of CI.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from player_sessions.datagen.generate import GenerateOptions, generate
from player_sessions.datagen.load import LoadOptions, LoadSummary, run_load
from player_sessions.domain.clock import parse_instant
from player_sessions.domain.events import EventKind, InvalidEvent
from player_sessions.domain.retention import is_expired
from player_sessions.domain.validation import validate_event
from player_sessions.domain.windows import MILLISECOND
from player_sessions.store.connection import open_cluster
from tests.support.clock import NOW, NOW_TEXT
from tests.support.service import ServiceProcess, service_process
from tests.support.truth import Truth, load_truth, starts_in_window

FULL = os.environ.get("PS_FAULTS_SCALE", "ci") == "full"
RETENTION = timedelta(days=365)


def say(message: str) -> None:
    """Progress lines, visible with `pytest -s` and in the captured output of a failure."""
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the service as a process we can kill -----------------------------------------------------------


def fault_service(keyspace: str, log_dir: Path, flags: dict[str, str] | None = None) -> ServiceProcess:
    """`serve` with the frozen clock, not started yet: a test starts it, may SIGKILL it (`kill()`) and
    start it again on the same port."""
    return service_process(keyspace, log_dir, {"--clock": NOW_TEXT, **(flags or {})})


def memory_kb(service: ServiceProcess) -> tuple[int, int]:
    """(VmRSS, VmHWM) of the service process, in KiB."""
    values = {}
    for line in Path(f"/proc/{service.pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


# --- recording what the loader sent and got ------------------------------------------------------


@dataclass
class Exchange:
    began: float
    seconds: float
    method: str
    path: str
    status: int | None
    error: str | None = None
    retry_after: str | None = None
    body: bytes | None = None  # the request body of an acknowledged POST /events


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps the loader's HTTP transport: every exchange, and the body of every acknowledged batch."""

    exchanges: list[Exchange] = field(default_factory=list)
    _inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Seconds each POST waits before it is sent: clients sending at a steady rate, so that a load
    # lasts long enough for a fault to happen in its middle however fast the service is.
    pace_s: float = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.pace_s and request.method == "POST":
            await asyncio.sleep(self.pace_s)
        began = time.monotonic()
        try:
            response = await self._inner.handle_async_request(request)
            await response.aread()
        except Exception as exc:
            self._add(
                Exchange(
                    began,
                    time.monotonic() - began,
                    request.method,
                    request.url.path,
                    None,
                    error=type(exc).__name__,
                )
            )
            raise
        acked = request.method == "POST" and response.status_code == 200
        self._add(
            Exchange(
                began,
                time.monotonic() - began,
                request.method,
                request.url.path,
                response.status_code,
                retry_after=response.headers.get("retry-after"),
                body=request.content if acked else None,
            )
        )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _add(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def acknowledged(self) -> int:
        return sum(1 for e in self.snapshot() if e.body is not None)

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.snapshot():
            key = str(e.status) if e.status is not None else e.error or "error"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


class BackgroundLoad:
    """`run_load` of a file into a URL, in a thread, through a RecordingTransport."""

    def __init__(
        self,
        events: Path,
        url: str,
        batch_size: int = 1000,
        concurrency: int = 4,
        timeout: float = 60.0,
        lasting_s: float | None = None,
        batches: int | None = None,
    ) -> None:
        """With `lasting_s` (and the number of `batches`), requests are paced so that the whole load
        takes about that long: a fault injected at a third of it then meets a running load."""
        pace = lasting_s * concurrency / batches if lasting_s and batches else 0.0
        self.transport = RecordingTransport(pace_s=pace)
        self.options = LoadOptions(
            input=events,
            url=url,
            batch_size=batch_size,
            concurrency=concurrency,
            progress=False,
            quiet=True,
            handle_sigint=False,
            give_up_after=240,
            backoff_initial=0.2,
            backoff_max=2.0,
            timeout=timeout,
            transport=self.transport,
        )
        self.summary: LoadSummary | None = None
        self.error: BaseException | None = None
        self.began = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="fault-load", daemon=True)

    def _run(self) -> None:
        try:
            self.summary = run_load(self.options)
        except BaseException as exc:
            self.error = exc

    def start(self) -> BackgroundLoad:
        self.began = time.monotonic()
        self.thread.start()
        return self

    def wait_acknowledged(self, batches: int, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.transport.acknowledged() < batches:
            assert self.thread.is_alive() or self.transport.acknowledged() >= batches, (
                f"the load ended early: {self.summary} {self.error}"
            )
            assert time.monotonic() < deadline, f"fewer than {batches} batches acknowledged in {timeout}s"
            time.sleep(0.05)

    def join(self, timeout: float = 600.0) -> LoadSummary:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the load did not finish in {timeout}s"
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


# --- datasets and truth ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    events: Path
    truth: Truth
    lines: int
    generate_seconds: float


def make_dataset(folder: Path, players: int, days: float, seed: int) -> Dataset:
    folder.mkdir(parents=True, exist_ok=True)
    events, truth_path = folder / "events.jsonl", folder / "truth.json"
    began = time.monotonic()
    options = GenerateOptions(players=players, days=days, until=NOW, seed=seed, truth_starts=True)
    summary = generate(options, events, truth_path, quiet=True)
    return Dataset(events, load_truth(truth_path), summary.events, time.monotonic() - began)


def windows(truth: Truth) -> list[float]:
    span_hours = (truth.now - truth.window_start) / timedelta(hours=1)
    return [1, 6.5, 24, 100, span_hours, 8760]


def assert_load_matches_truth(summary: LoadSummary, dataset: Dataset) -> None:
    truth = dataset.truth
    assert summary.complete, summary.format()
    assert summary.not_json == 0
    assert summary.sent == truth.events == dataset.lines
    assert summary.rejected == truth.invalid
    assert summary.expired == truth.expired
    assert summary.stored + summary.expired + summary.rejected == summary.sent


@dataclass
class TruthCheck:
    players: int = 0
    windows: int = 0
    retried_503: int = 0
    seconds: float = 0.0


def assert_answers_equal_truth(url: str, truth: Truth, concurrency: int = 8) -> TruthCheck:
    """Every player's last 20 sessions and the starts per country of several windows equal the truth.

    A 503 (Cassandra busy or a node just lost) is retried, as a client would; anything else fails.
    """
    check = TruthCheck()
    began = time.monotonic()

    async def get(client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None) -> Any:
        for _ in range(30):
            r = await client.get(path, params=params)
            if r.status_code != 503:
                assert r.status_code == 200, f"GET {path} {params}: {r.status_code} {r.text[:300]}"
                return r.json()
            check.retried_503 += 1
            await asyncio.sleep(1)
        raise AssertionError(f"GET {path}: still 503 after 30 tries")

    async def main() -> list[str]:
        wrong: list[str] = []
        slots = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:

            async def player(pid: str) -> None:
                async with slots:
                    got = (await get(client, f"/players/{pid}/sessions"))["sessions"]
                expected = truth.players[pid][:20]
                mine = [
                    (
                        s["session_id"],
                        s["country"],
                        parse_instant(s["start"]),
                        parse_instant(s["end"]),
                        s["duration_seconds"],
                    )
                    for s in got
                ]
                theirs = [(s.session_id, s.country, s.start, s.end, s.duration_seconds) for s in expected]
                if mine != theirs:
                    wrong.append(f"player {pid}: got {mine[:3]}..., expected {theirs[:3]}...")

            async def starts_differ(hours: float) -> str | None:
                frm = truth.now - timedelta(hours=hours)
                expected = {
                    c: n for c, n in starts_in_window(truth, frm, truth.now + MILLISECOND).items() if n
                }
                got = await get(client, "/session-starts", {"hours": hours})
                if got["countries"] == expected and got["total"] == sum(expected.values()):
                    return None
                off = {
                    c: got["countries"].get(c, 0) - n
                    for c, n in expected.items()
                    if got["countries"].get(c, 0) != n
                }
                return f"got {got['total']}, expected {sum(expected.values())} (got - expected: {off})"

            await asyncio.gather(*(player(pid) for pid in truth.players))
            failed: list[float] = []
            for hours in windows(truth):
                differ = await starts_differ(hours)
                if differ:
                    failed.append(hours)
                    wrong.append(f"starts in {hours}h: {differ}")
            if failed:
                # Where, and for how long: the first whole-day window that differs (the day the missing
                # or extra starts are in), and the first failing window again once the background
                # recounts (every --rollup-interval) have had time to run.
                for days in range(1, 366):  # up to the retention (8760 h)
                    differ = await starts_differ(24 * days)
                    if differ:
                        wrong.append(f"first differing window: {24 * days}h ({differ})")
                        break
                await asyncio.sleep(3)
                wrong.append(f"{failed[0]}h again after 3 s: {await starts_differ(failed[0]) or 'equal'}")
        return wrong

    wrong = asyncio.run(main())
    assert not wrong, f"{len(wrong)} answers differ from the truth, e.g. {wrong[:5] + wrong[5:][-2:]}"
    check.players = len(truth.players)
    check.windows = len(windows(truth))
    check.seconds = time.monotonic() - began
    return check


def rollup_diagnosis(
    contact_points: list[str], keyspace: str, truth: Truth, consistency: str = "ALL", limit: int = 12
) -> list[str]:
    """Where a wrong window's starts went, read straight from Cassandra: for every day and hour of the
    truth, the truth's count against the raw rows (count(*) per country-hour partition), the hour
    rollup (and whether it is fresh: counted == touched) and, per day, the day rollup and the sum of
    its hour rollups. Returns the rows that disagree, or why it could not tell."""
    cluster = open_cluster(
        contact_points, only_hosts=contact_points, consistency=consistency, request_timeout=30
    )
    found: list[str] = []
    try:
        session = cluster.connect(keyspace)
        raw = session.prepare(
            "SELECT count(*) AS n FROM starts_by_country_hour WHERE country = ? AND hour = ?"
        )
        hours_of = session.prepare(
            "SELECT hour, counts_json, touched, counted, countries FROM hour_starts WHERE day = ?"
        )
        day_of = session.prepare(
            "SELECT counts_json, touched, counted FROM day_starts WHERE year = ? AND day = ?"
        )
        by_day: dict[datetime, dict[datetime, dict[str, int]]] = {}
        for hour, per_country in truth.starts_per_country_hour.items():
            if per_country and hour >= truth.now - RETENTION:
                by_day.setdefault(hour.replace(hour=0), {})[hour] = per_country
        for day in sorted(by_day):
            hour_rows = {r.hour.replace(tzinfo=UTC): r for r in session.execute(hours_of, (day,))}
            hour_sum = 0
            for hour, per_country in sorted(by_day[day].items()):
                row = hour_rows.get(hour)
                rolled = _counts_json(row)
                hour_sum += sum(rolled.values())
                countries = set(per_country) | set(row.countries or () if row is not None else ())
                for country in sorted(countries):
                    expected = per_country.get(country, 0)
                    stored = session.execute(raw, (country, hour)).one().n
                    got = rolled.get(country, 0)
                    if expected != stored or expected != got:
                        fresh = row is not None and row.touched == row.counted
                        listed = row is not None and country in (row.countries or ())
                        found.append(
                            f"{hour:%m-%d %H}h {country}: truth {expected}, raw {stored}, "
                            f"hour rollup {got} (fresh {fresh}, country listed {listed})"
                        )
            day_row = session.execute(day_of, (day.year, day)).one()
            day_counts = _counts_json(day_row)
            expected_day = sum(sum(c.values()) for c in by_day[day].values())
            if sum(day_counts.values()) != expected_day or hour_sum != expected_day:
                fresh = day_row is not None and day_row.touched == day_row.counted
                found.append(
                    f"day {day:%m-%d}: truth {expected_day}, day rollup {sum(day_counts.values())} "
                    f"(fresh {fresh}), its hour rollups {hour_sum}"
                )
    except Exception as exc:  # a diagnosis must not hide the failure it explains
        found.append(f"diagnosis at {consistency} failed: {type(exc).__name__}: {exc}")
    finally:
        cluster.shutdown()
    return found[:limit] or [f"rollups at {consistency}: every day and hour agrees with the truth"]


def _counts_json(row: Any) -> dict[str, int]:
    counts: dict[str, int] = orjson.loads(row.counts_json) if row is not None and row.counts_json else {}
    return counts


# --- acknowledged means stored ------------------------------------------------------------------------


def stored_check(
    contact_points: list[str], keyspace: str, bodies: Iterable[bytes], consistency: str = "ONE"
) -> tuple[int, list[str]]:
    """Reads back, straight from Cassandra, every valid in-retention event of the given acknowledged
    request bodies: its row of `player_events` must be there. Returns (events checked, missing)."""
    from cassandra.concurrent import execute_concurrent_with_args

    wanted: dict[str, set[tuple[datetime, Any, bool]]] = {}
    for body in bodies:
        for line in body.splitlines():
            try:
                event = validate_event(orjson.loads(line), NOW)
            except (orjson.JSONDecodeError, InvalidEvent):
                continue
            if is_expired(event.ts, NOW, RETENTION):
                continue
            wanted.setdefault(event.player_id, set()).add(
                (event.ts, event.session_id, event.kind is EventKind.START)
            )
    cluster = open_cluster(
        contact_points, only_hosts=contact_points, consistency=consistency, request_timeout=30
    )
    try:
        session = cluster.connect()
        select = session.prepare(
            f"SELECT ts, session_id, is_start FROM {keyspace}.player_events WHERE player_id = ?"
        )
        select.fetch_size = None
        players = list(wanted)
        results = execute_concurrent_with_args(
            session, select, [(p,) for p in players], concurrency=64, raise_on_first_error=True
        )
        missing: list[str] = []
        checked = 0
        for player, (ok, rows) in zip(players, results, strict=True):
            found = {(r.ts.replace(tzinfo=UTC), r.session_id, r.is_start) for r in rows} if ok else set()
            for key in sorted(wanted[player], key=str):
                checked += 1
                if key not in found:
                    ts, session_id, is_start = key
                    missing.append(f"{player} {session_id} {'start' if is_start else 'end'} {ts.isoformat()}")
        return checked, missing
    finally:
        cluster.shutdown()


def bodies_acknowledged_between(transport: RecordingTransport, frm: float, to: float) -> list[bytes]:
    return [e.body for e in transport.snapshot() if e.body is not None and frm <= e.began + e.seconds <= to]


def all_bodies(transport: RecordingTransport) -> list[bytes]:
    return [e.body for e in transport.snapshot() if e.body is not None]


def wait_until(predicate: Callable[[], bool], what: str, timeout: float, interval: float = 0.2) -> float:
    began = time.monotonic()
    while not predicate():
        assert time.monotonic() - began < timeout, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(interval)
    return time.monotonic() - began


def health(url: str) -> int:
    try:
        return httpx.get(f"{url}/health", timeout=10).status_code
    except httpx.HTTPError:
        return 0
