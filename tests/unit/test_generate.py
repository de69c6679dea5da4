"""The event generator: determinism, anomaly shares, compressions, ground truth and bounded memory.

The checks re-derive everything from the generated lines with a deliberately simple validator and
pairing written here, so the truth file is compared against an independent recount.
"""

from __future__ import annotations

import argparse
import bz2
import dataclasses
import gzip
import io
import json
import re
import statistics
import subprocess
import sys
import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pycountry
import pytest

from player_sessions.datagen.commands import add_generate_arguments, run_generate_command
from player_sessions.datagen.generate import INVALID_KINDS, GenerateOptions, GenerateSummary, generate
from player_sessions.domain.clock import parse_instant
from tests.support.clock import NOW
from tests.support.truth import load_truth, shift_truth, starts_in_window

UNTIL = NOW
RETENTION = timedelta(days=365)
MAX_FUTURE = timedelta(minutes=5)
COUNTRY_CODES = frozenset(c.alpha_2 for c in pycountry.countries)
PLAYER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Exaggerated shares so ~20k events give tight enough statistics.
SHARES = {
    "duplicates": 0.05,
    "out_of_order": 0.10,
    "late": 0.03,
    "orphan_ends": 0.03,
    "open_starts": 0.04,
    "invalid": 0.02,
    "expired": 0.02,
}


def generate_bytes(options: GenerateOptions, truth: Path | None = None) -> tuple[bytes, GenerateSummary]:
    out = io.BytesIO()
    summary = generate(options, out, truth, quiet=True)
    return out.getvalue(), summary


@dataclass
class Event:
    position: int
    kind: str
    player_id: str
    session_id: str
    ts: datetime
    country: str | None


def classify(raw: Any, now: datetime) -> str:
    """ "valid", "expired" or "invalid", as the service's rules are described in the brief."""
    if not isinstance(raw, dict) or raw.get("event") not in ("start", "end"):
        return "invalid"
    pid, sid, country, ts = raw.get("player_id"), raw.get("session_id"), raw.get("country"), raw.get("ts")
    if not isinstance(pid, str) or not PLAYER_ID.fullmatch(pid):
        return "invalid"
    if not isinstance(sid, str) or not UUID.fullmatch(sid):
        return "invalid"
    if raw["event"] == "start" and country is None:
        return "invalid"
    if country is not None and country not in COUNTRY_CODES:
        return "invalid"
    if not isinstance(ts, str):
        return "invalid"
    try:
        when = parse_instant(ts)
    except ValueError:
        return "invalid"
    if when - now > MAX_FUTURE:
        return "invalid"
    return "expired" if when < now - RETENTION else "valid"


@dataclass
class Recount:
    lines: list[bytes]
    classes: Counter[str] = field(default_factory=Counter)
    events: list[Event] = field(default_factory=list)
    starts: dict[tuple[str, str], Event] = field(default_factory=dict)
    ends: dict[tuple[str, str], Event] = field(default_factory=dict)


def recount(data: bytes, now: datetime = UNTIL) -> Recount:
    lines = data.splitlines()
    result = Recount(lines)
    for position, line in enumerate(lines):
        raw = orjson.loads(line)
        verdict = classify(raw, now)
        result.classes[verdict] += 1
        if verdict != "valid":
            continue
        event = Event(
            position,
            raw["event"],
            raw["player_id"],
            raw["session_id"],
            parse_instant(raw["ts"]),
            raw.get("country"),
        )
        result.events.append(event)
        target = result.starts if event.kind == "start" else result.ends
        target.setdefault((event.player_id, event.session_id), event)
    return result


def sessions_by_player(counted: Recount) -> dict[str, list[dict[str, object]]]:
    """Complete sessions per player, newest start first, ties by session id."""
    players: dict[str, list[dict[str, object]]] = defaultdict(list)
    for key, start in counted.starts.items():
        end = counted.ends.get(key)
        if end is None:
            continue
        players[start.player_id].append(
            {
                "session_id": start.session_id,
                "country": start.country,
                "start": start.ts,
                "end": end.ts,
                "duration_seconds": max(0, int((end.ts - start.ts).total_seconds())),
            }
        )
    for sessions in players.values():
        sessions.sort(key=lambda s: (-s["start"].timestamp(), s["session_id"]))  # type: ignore[attr-defined]
    return players


@pytest.fixture(scope="module")
def anomalous(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recount, GenerateSummary, Path]:
    truth_path = tmp_path_factory.mktemp("truth") / "truth.json"
    options = GenerateOptions(
        players=500, days=30, until=UNTIL, seed=7, reorder_window=2000, truth_starts=True, **SHARES
    )
    data, summary = generate_bytes(options, truth_path)
    return recount(data), summary, truth_path


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    options = GenerateOptions(players=150, days=10, until=UNTIL, seed=3)
    first = tmp_path / "a.jsonl.gz"
    second = tmp_path / "b.jsonl.gz"
    generate(options, first, quiet=True)
    generate(options, second, quiet=True)
    other, _ = generate_bytes(GenerateOptions(players=150, days=10, until=UNTIL, seed=4))

    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()) != other


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz", "events.jsonl.bz2"])
def test_each_output_compression_round_trips_to_the_same_lines(tmp_path: Path, name: str) -> None:
    options = GenerateOptions(players=100, days=5, until=UNTIL, seed=11)
    expected, summary = generate_bytes(options)
    path = tmp_path / name
    generate(options, path, quiet=True)

    raw = path.read_bytes()
    opener = {".gz": gzip.decompress, ".bz2": bz2.decompress}.get(path.suffix, lambda b: b)
    assert opener(raw) == expected
    assert len(expected.splitlines()) == summary.events > 0


def test_dash_writes_to_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    options = GenerateOptions(players=30, days=3, until=UNTIL, seed=5)
    expected, _ = generate_bytes(options)
    generate(options, "-", quiet=True)
    assert capsysbinary.readouterr().out == expected


def test_anomaly_counts_match_the_lines_actually_written(
    anomalous: tuple[Recount, GenerateSummary, Path],
) -> None:
    counted, summary, _ = anomalous
    copies = Counter(counted.lines)
    start_keys, end_keys = set(counted.starts), set(counted.ends)
    both = start_keys & end_keys
    ends_first = sum(1 for k in both if counted.ends[k].position < counted.starts[k].position)

    assert summary.events == len(counted.lines)
    assert sum(n - 1 for n in copies.values()) == summary.duplicates
    assert counted.classes["invalid"] == summary.invalid
    assert counted.classes["expired"] == summary.expired
    assert len(end_keys - start_keys) == summary.orphan_ends
    assert len(start_keys - end_keys) == summary.open_starts + summary.in_progress
    assert len(start_keys & end_keys) == summary.complete_sessions
    # Late starts land after their end too, so they may add to the deliberate out-of-order ones.
    assert summary.out_of_order <= ends_first <= summary.out_of_order + summary.late


def test_anomaly_shares_are_close_to_the_options(anomalous: tuple[Recount, GenerateSummary, Path]) -> None:
    _, s, _ = anomalous
    ended = s.sessions - s.in_progress
    observed = {
        "duplicates": s.duplicates / s.regular_events,
        "late": s.late / s.regular_events,
        "invalid": s.invalid / s.events,
        "expired": s.expired / s.events,
        "out_of_order": s.out_of_order / ended,
        "orphan_ends": s.orphan_ends / ended,
        "open_starts": s.open_starts / ended,
    }
    assert s.events > 15_000
    for name, share in SHARES.items():
        assert observed[name] == pytest.approx(share, rel=0.2), name


def test_invalid_events_cycle_through_every_kind(anomalous: tuple[Recount, GenerateSummary, Path]) -> None:
    _, summary, _ = anomalous
    counts = [summary.invalid_by_kind[kind] for kind in INVALID_KINDS]
    assert max(counts) - min(counts) <= 1
    assert min(counts) > 0


def test_timestamps_stay_inside_the_window_except_deliberate_ones(
    anomalous: tuple[Recount, GenerateSummary, Path],
) -> None:
    counted, _, _ = anomalous
    window_start = UNTIL - timedelta(days=30)
    assert all(window_start <= e.ts <= UNTIL for e in counted.events)
    future = expired = 0
    for line in counted.lines:
        raw = orjson.loads(line)
        ts = raw.get("ts")
        if not isinstance(ts, str):
            continue
        try:
            when = parse_instant(ts)
        except ValueError:
            continue
        future += when > UNTIL + MAX_FUTURE
        expired += when < UNTIL - RETENTION
    assert future == anomalous[1].invalid_by_kind["future_ts"]
    assert expired == anomalous[1].expired


def test_stream_is_in_time_order_apart_from_displaced_events(
    anomalous: tuple[Recount, GenerateSummary, Path],
) -> None:
    counted, _, _ = anomalous
    ordered = sum(1 for a, b in zip(counted.events, counted.events[1:], strict=False) if a.ts <= b.ts)
    assert ordered / (len(counted.events) - 1) > 0.8


def test_truth_agrees_with_an_independent_recount(anomalous: tuple[Recount, GenerateSummary, Path]) -> None:
    counted, summary, truth_path = anomalous
    truth = load_truth(truth_path)
    expected = sessions_by_player(counted)

    assert truth.now == UNTIL
    assert truth.invalid == counted.classes["invalid"]
    assert truth.expired == counted.classes["expired"]
    assert sum(truth.complete_sessions_per_player.values()) == sum(len(v) for v in expected.values())
    for pid, sessions in truth.players.items():
        assert truth.complete_sessions_per_player[pid] == len(expected.get(pid, []))
        got = [
            {
                "session_id": s.session_id,
                "country": s.country,
                "start": s.start,
                "end": s.end,
                "duration_seconds": s.duration_seconds,
            }
            for s in sessions
        ]
        assert got == expected.get(pid, [])[: truth.sessions_per_player], pid
    assert set(expected) <= set(truth.players)

    hourly: Counter[tuple[datetime, str]] = Counter()
    for start in counted.starts.values():
        assert start.country is not None
        hourly[(start.ts.replace(minute=0, second=0), start.country)] += 1
    truth_hourly = Counter(
        {(hour, c): n for hour, per in truth.starts_per_country_hour.items() for c, n in per.items()}
    )
    assert truth_hourly == hourly
    assert truth.starts is not None
    assert sorted((s.ts, s.country, s.session_id, s.player_id) for s in truth.starts) == sorted(
        (e.ts, e.country, e.session_id, e.player_id) for e in counted.starts.values()
    )
    assert truth.valid_starts == len(counted.starts) == summary.valid_starts


def test_truth_lists_are_capped_per_player_and_newest_first(
    anomalous: tuple[Recount, GenerateSummary, Path],
) -> None:
    _, _, truth_path = anomalous
    truth = load_truth(truth_path)
    longest = max(truth.complete_sessions_per_player.values())
    assert longest > truth.sessions_per_player == 20
    for sessions in truth.players.values():
        assert len(sessions) <= 20
        assert [s.start for s in sessions] == sorted((s.start for s in sessions), reverse=True)


def test_starts_in_window_counts_arbitrary_and_whole_hour_windows(
    anomalous: tuple[Recount, GenerateSummary, Path],
) -> None:
    counted, _, truth_path = anomalous
    truth = load_truth(truth_path)
    frm, to = datetime(2016, 11, 20, 13, 17, 5, tzinfo=UTC), datetime(2016, 11, 21, 2, 3, tzinfo=UTC)
    expected = Counter(s.country for s in counted.starts.values() if frm <= s.ts < to)
    assert starts_in_window(truth, frm, to) == dict(expected)

    hour_from, hour_to = datetime(2016, 11, 20, 13, tzinfo=UTC), datetime(2016, 11, 21, 2, tzinfo=UTC)
    without_list = dataclasses.replace(truth, starts=None)
    assert starts_in_window(without_list, hour_from, hour_to) == starts_in_window(truth, hour_from, hour_to)
    with pytest.raises(ValueError, match="hourly bucket"):
        starts_in_window(without_list, frm, to)


def test_shifted_truth_answers_shifted_windows_identically(
    anomalous: tuple[Recount, GenerateSummary, Path],
) -> None:
    _, _, truth_path = anomalous
    truth = load_truth(truth_path)
    offset = timedelta(days=2900, hours=3, minutes=17, seconds=4)
    shifted = shift_truth(truth, offset)
    frm, to = datetime(2016, 11, 20, 13, tzinfo=UTC), datetime(2016, 11, 23, 2, tzinfo=UTC)

    assert shifted.now == UNTIL + offset
    assert starts_in_window(shifted, frm + offset, to + offset) == starts_in_window(truth, frm, to)
    hourly_only = dataclasses.replace(shifted, starts=None)
    assert starts_in_window(hourly_only, frm + offset, to + offset) == starts_in_window(truth, frm, to)
    some_player = next(pid for pid, sessions in truth.players.items() if sessions)
    original = [s.start for s in truth.players[some_player]]
    assert [s.start - offset for s in shifted.players[some_player]] == original


def test_players_are_heavy_tailed_with_whales_and_mostly_in_one_country() -> None:
    data, summary = generate_bytes(GenerateOptions(players=800, days=30, until=UNTIL, seed=2, whales=0.002))
    counted = recount(data)
    per_player = Counter(s.player_id for s in counted.starts.values())
    sizes = sorted(per_player.values())
    countries_per_player: dict[str, Counter[str | None]] = defaultdict(Counter)
    for s in counted.starts.values():
        countries_per_player[s.player_id][s.country] += 1
    home_share = sum(c.most_common(1)[0][1] for c in countries_per_player.values()) / len(counted.starts)

    assert summary.whales == 2
    assert statistics.median(sizes) < 20
    assert sum(1 for n in sizes if n >= 1000) == 2
    assert home_share > 0.95
    assert len({s.country for s in counted.starts.values()}) >= 30


def test_starts_peak_in_the_local_evening() -> None:
    data, _ = generate_bytes(GenerateOptions(players=800, days=30, until=UNTIL, seed=9, whales=0))
    counted = recount(data)
    # US players are at UTC-5 in the model: local 19-22 is 00-03 UTC, local 03-06 is 08-11 UTC.
    us_hours = Counter(s.ts.hour for s in counted.starts.values() if s.country == "US")
    evening = sum(us_hours[h] for h in (0, 1, 2))
    early_morning = sum(us_hours[h] for h in (8, 9, 10))
    assert evening > 3 * early_morning


def test_session_lengths_are_long_tailed_and_capped() -> None:
    data, _ = generate_bytes(GenerateOptions(players=400, days=20, until=UNTIL, seed=4, whales=0))
    counted = recount(data)
    lengths = sorted(
        (counted.ends[k].ts - s.ts).total_seconds() for k, s in counted.starts.items() if k in counted.ends
    )
    median = statistics.median(lengths)
    assert 10 * 60 < median < 40 * 60
    assert lengths[int(len(lengths) * 0.99)] > 3 * median
    assert lengths[0] >= 60
    assert lengths[-1] <= 12 * 3600


def test_memory_stays_bounded_while_streaming_300k_events() -> None:
    # A fresh interpreter, so the peak RSS belongs to this generation alone (tracemalloc would work
    # too but slows generation down five-fold).
    script = textwrap.dedent("""
        import json, resource
        from datetime import UTC, datetime
        from player_sessions.datagen.generate import GenerateOptions, generate

        class NullSink:
            bytes = 0
            def write(self, data):
                NullSink.bytes += len(data)

        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        options = GenerateOptions(players=8_200, days=30, until=datetime(2016, 12, 1, tzinfo=UTC), seed=1)
        summary = generate(options, NullSink(), quiet=True)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"growth": (peak - base) * 1024, "events": summary.events, "bytes": NullSink.bytes}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True, timeout=120)
    result = json.loads(done.stdout)
    assert result["events"] > 280_000
    # Holding the events would need at least their serialised size (~40 MB); the generator keeps
    # per-player state, the reorder window and one output chunk.
    assert result["growth"] < result["bytes"] / 4
    assert result["growth"] < 10 * 1024 * 1024


def test_cli_arguments_reach_the_generator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    out, truth = tmp_path / "events.jsonl.bz2", tmp_path / "truth.json"
    args = parser.parse_args(
        [
            "--players",
            "40",
            "--days",
            "3",
            "--until",
            "2016-12-01T00:00:00Z",
            "--seed",
            "5",
            "--duplicates",
            "0",
            "--invalid",
            "0.1",
            "-o",
            str(out),
            "--truth",
            str(truth),
            "--no-progress",
        ]
    )
    assert run_generate_command(args) == 0

    expected, summary = generate_bytes(
        GenerateOptions(players=40, days=3, until=UNTIL, seed=5, duplicates=0, invalid=0.1)
    )
    assert bz2.decompress(out.read_bytes()) == expected
    assert load_truth(truth).invalid == summary.invalid > 0
    assert f"generated {summary.events:,} events" in capsys.readouterr().err


def test_cli_rejects_impossible_options(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    args = parser.parse_args(["-o", "-", "--orphan-ends", "0.6", "--open-starts", "0.6"])
    assert run_generate_command(args) == 2
    assert "must not exceed 1" in capsys.readouterr().err
