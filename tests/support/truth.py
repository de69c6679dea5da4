"""Reading the ground-truth file written by ``generate(..., truth_path=...)`` (``generate --truth``).

Its format is described in ``player_sessions.datagen.generate``. The tests compare the service's answers
with it: a player's newest sessions, and the starts per country of any window (``starts_in_window``),
also after ``load --rebase-to-now`` moved every event (``shift_truth``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from player_sessions.domain.clock import parse_instant
from player_sessions.domain.windows import HOUR

__all__ = [
    "Truth",
    "TruthSession",
    "TruthStart",
    "load_truth",
    "shift_truth",
    "starts_in_window",
]


@dataclass(frozen=True, slots=True)
class TruthSession:
    session_id: str
    country: str
    start: datetime
    end: datetime
    duration_seconds: int


@dataclass(frozen=True, slots=True)
class TruthStart:
    ts: datetime
    country: str
    session_id: str
    player_id: str


@dataclass(frozen=True, slots=True)
class Truth:
    now: datetime
    retention: timedelta
    window_start: datetime
    sessions_per_player: int
    players: dict[str, list[TruthSession]]
    complete_sessions_per_player: dict[str, int]
    starts_per_country_hour: dict[datetime, dict[str, int]]
    starts: list[TruthStart] | None
    invalid: int
    expired: int
    events: int
    complete_sessions: int
    valid_starts: int
    raw: dict[str, Any]


def load_truth(path: Path) -> Truth:
    doc: dict[str, Any] = orjson.loads(path.read_bytes())
    players = {
        pid: [
            TruthSession(
                s["session_id"],
                s["country"],
                parse_instant(s["start"]),
                parse_instant(s["end"]),
                s["duration_seconds"],
            )
            for s in sessions
        ]
        for pid, sessions in doc["players"].items()
    }
    hourly = {
        parse_instant(hour + ":00:00Z"): counts for hour, counts in doc["starts_per_country_hour"].items()
    }
    starts = None
    if doc.get("starts") is not None:
        starts = [TruthStart(parse_instant(ts), country, sid, pid) for ts, country, sid, pid in doc["starts"]]
    return Truth(
        now=parse_instant(doc["now"]),
        retention=timedelta(days=doc["retention_days"]),
        window_start=parse_instant(doc["window_start"]),
        sessions_per_player=doc["sessions_per_player"],
        players=players,
        complete_sessions_per_player=doc["complete_sessions_per_player"],
        starts_per_country_hour=hourly,
        starts=starts,
        invalid=doc["invalid"],
        expired=doc["expired"],
        events=doc["events"],
        complete_sessions=doc["complete_sessions"],
        valid_starts=doc["valid_starts"],
        raw=doc,
    )


def starts_in_window(truth: Truth, frm: datetime, to: datetime) -> dict[str, int]:
    """Valid starts per country with ``frm <= ts < to``, by brute force over ``truth.starts``.

    Without the start list only whole-hour bounds can be answered (from the hourly counts); any
    other window raises ``ValueError``.
    """
    frm, to = frm.astimezone(UTC), to.astimezone(UTC)
    counts: Counter[str] = Counter()
    if truth.starts is not None:
        for start in truth.starts:
            if frm <= start.ts < to:
                counts[start.country] += 1
        return dict(sorted(counts.items()))
    buckets = truth.starts_per_country_hour
    # Buckets are whole UTC hours, or whole hours shifted by a rebase offset (`shift_truth`).
    phase = next(iter(buckets), frm)
    if (frm - phase) % HOUR or (to - phase) % HOUR:
        raise ValueError(
            "this truth file has no start list (generate with --truth-starts); "
            "only windows on the hourly bucket boundaries can be answered"
        )
    for hour, per_country in buckets.items():
        if frm <= hour < to:
            counts.update(per_country)
    return dict(sorted(counts.items()))


def shift_truth(truth: Truth, offset: timedelta) -> Truth:
    """The truth with every instant moved by ``offset``.

    That is what the service must answer after ``load --rebase-to-now`` moved every event by the
    same offset (``LoadSummary.rebase_offset_seconds``): pairing, ordering and counts do not change.
    Hourly buckets move too, so they stay exact but start at the shifted phase.
    """
    hourly = {hour + offset: counts for hour, counts in truth.starts_per_country_hour.items()}
    starts = None
    if truth.starts is not None:
        starts = [dataclasses.replace(s, ts=s.ts + offset) for s in truth.starts]
    return dataclasses.replace(
        truth,
        now=truth.now + offset,
        window_start=truth.window_start + offset,
        players={
            pid: [dataclasses.replace(s, start=s.start + offset, end=s.end + offset) for s in sessions]
            for pid, sessions in truth.players.items()
        },
        starts_per_country_hour=hourly,
        starts=starts,
    )
