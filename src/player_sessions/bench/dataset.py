"""The benchmark's events, made by `player_sessions.datagen.generate` (realistic shape and anomalies).

A data set of N events is cut into *shards*: independent `generate` runs with their own seed and a
slice of the players, each covering the whole time range (a year by default), so that

- writer processes can generate and load shards in parallel without talking to each other;
- every size is a superset of the smaller one (size 2 = the shards of size 1 + more shards), so the
  larger size is reached by loading only the difference;
- the result is deterministic for a given seed and list of sizes, whatever the number of processes.

Whales (players with 60-150 sessions a day, `datagen`'s whale model) are one extra shard in the first
size: over 365 days each has ~16,000 sessions (~32,000 events).

The event count of a shard is only known after generating it: players are sized with a measured
~370 events per ordinary player-year, so sizes land within a few % of the request; the report shows
the actual counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from player_sessions.datagen.generate import GenerateOptions, generate

__all__ = [
    "EVENTS_PER_PLAYER_DAY",
    "ShardSpec",
    "api_bodies",
    "generate_lines",
    "iter_line_chunks",
    "plan_ingest_shards",
    "plan_tranches",
]

# Measured with datagen's defaults: ~370 events per ordinary player over 365 days (lognormal rates).
EVENTS_PER_PLAYER_DAY = 370 / 365
# A shard of ~50,000 events takes ~0.4 s to generate; big enough to amortise, small enough to balance.
SHARD_EVENTS = 50_000


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """One `generate` run: `players` players (all whales if `whales`) over `days` days up to `until`."""

    seed: int
    players: int
    days: float
    until: datetime
    whales: bool = False
    expected_events: int = 0

    def options(self) -> GenerateOptions:
        return GenerateOptions(
            players=self.players,
            days=self.days,
            until=self.until,
            seed=self.seed,
            whales=1.0 if self.whales else 0.0,
        )


def _players_for(events: float, days: float) -> int:
    return max(1, round(events / (EVENTS_PER_PLAYER_DAY * days)))


def plan_tranches(
    sizes: list[int],
    *,
    until: datetime,
    seed: int,
    days: float = 365.0,
    whales: int = 3,
    whale_days: float = 365.0,
    shard_events: int = SHARD_EVENTS,
) -> list[list[ShardSpec]]:
    """For increasing `sizes`, the shards to load to go from the previous size to each size.

    The whale shard (if any) belongs to the first tranche and counts towards its size.
    """
    if sorted(sizes) != sizes or len(set(sizes)) != len(sizes) or not sizes or sizes[0] <= 0:
        raise ValueError("sizes must be positive and strictly increasing")
    whale_events = round(whales * 2 * 60 * whale_days * 0.75) if whales else 0  # ~datagen's whale output
    tranches: list[list[ShardSpec]] = []
    previous = 0
    for index, size in enumerate(sizes):
        shards: list[ShardSpec] = []
        want = size - previous
        if index == 0 and whales:
            shards.append(
                ShardSpec(seed * 1_000_003 + 999_999, whales, whale_days, until, True, whale_events)
            )
            want = max(0, want - whale_events)
        count = max(1, math.ceil(want / shard_events)) if want > 0 else 0
        for shard in range(count):
            events = want / count
            shards.append(
                ShardSpec(
                    seed * 1_000_003 + index * 10_000 + shard,
                    _players_for(events, days),
                    days,
                    until,
                    False,
                    round(events),
                )
            )
        tranches.append(shards)
        previous = size
    return tranches


def plan_ingest_shards(
    events: int, *, until: datetime, seed: int, days: float, parts: int = 1
) -> list[ShardSpec]:
    """`parts` shards totalling ~`events` events over the last `days` days (for API ingest runs)."""
    parts = max(1, parts)
    return [
        ShardSpec(
            seed * 7_919 + part, _players_for(events / parts, days), days, until, False, round(events / parts)
        )
        for part in range(parts)
    ]


class _ChunkSink:
    """A datagen sink handing every written chunk (whole lines) to a callback."""

    def __init__(self, on_chunk: Callable[[bytes], None]) -> None:
        self._on_chunk = on_chunk

    def write(self, data: bytes, /) -> int:
        self._on_chunk(data)
        return len(data)


def iter_line_chunks(spec: ShardSpec, on_chunk: Callable[[bytes], None]) -> int:
    """Generate a shard, calling `on_chunk` with each chunk of NDJSON lines; returns the event count."""
    summary = generate(spec.options(), _ChunkSink(on_chunk), quiet=True)
    return summary.events


def generate_lines(spec: ShardSpec) -> list[bytes]:
    """A shard's events as NDJSON lines (without the newline), in memory."""
    lines: list[bytes] = []

    def add(chunk: bytes) -> None:
        lines.extend(chunk.splitlines())

    iter_line_chunks(spec, add)
    return lines


def api_bodies(lines: list[bytes], batch_size: int) -> Iterator[tuple[bytes, int]]:
    """JSON-array request bodies of `batch_size` consecutive events, with their event counts."""
    for start in range(0, len(lines), batch_size):
        chunk = lines[start : start + batch_size]
        yield b"[" + b",".join(chunk) + b"]", len(chunk)
