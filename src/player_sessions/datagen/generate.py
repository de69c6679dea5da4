"""Synthetic session events (JSON lines) with realistic shape and deliberate anomalies, plus ground truth.

How the stream is produced, in bounded memory
---------------------------------------------
Every player is a sequence of non-overlapping sessions: a start, an end after a lognormal length,
a gap, the next start. The gap follows an inhomogeneous Poisson process (thinning) whose rate is the
player's activity times a daily rhythm in the player's home time zone, so starts cluster in the
local evening.

All players advance together through one heap of "next action" entries ``(ts, player, pending)``:
exactly one entry per active player (its next start, or the end of its open session). Popping the
smallest entry yields the events in exact timestamp order, so memory is O(players), never O(events);
10 million events need no more memory than 10 thousand for the same number of players.

The "emitted later" anomalies (duplicates, late events, a start held back behind its end) go through
a reorder buffer: a heap keyed by the output position at which the line is due, never more than
``reorder_window`` positions ahead. So the buffer holds at most about ``reorder_window * (late +
duplicates)`` lines, and the stream is in time order except for those deliberate displacements.

Anomaly shares
--------------
Session-level, as a share of sessions that end by ``until``: ``orphan_ends`` (the start is never
emitted), ``open_starts`` (the end is never emitted), ``out_of_order`` (the end is emitted before the
start). Sessions still running at ``until`` naturally have no end; they are counted as
``in_progress``, apart from ``open_starts``.

Event-level, as a probability per regular event: ``late`` (held back by window/2..window positions),
``duplicates`` (emitted again up to a window later, byte-identical), ``invalid`` (an invalid event is
injected after it; the kinds take turns), ``expired`` (about this share of the output is expired
events: a whole session older than the retention is injected, with probability ``expired / 2``).

Determinism: one ``random.Random(seed)`` drives everything, in a fixed order, so a seed gives
byte-identical output (gzip gets mtime 0 and no file name).

Ground truth
------------
With ``truth_path``, a JSON file is written with what the service must answer at now = ``until``
(``now``) with retention ``retention_days``; one JSON object:

``players``
    player id -> the newest ``sessions_per_player`` complete sessions (both a valid, non-expired start
    and end were emitted), newest start first, ties by session id ascending; each
    ``{"session_id", "country" (the start's), "start", "end", "duration_seconds"}``. Every player that
    has at least one session is listed, possibly with ``[]``.
``complete_sessions_per_player``
    player id -> how many complete sessions it has in total (the list above may be truncated).
``starts_per_country_hour``
    ``"YYYY-MM-DDTHH"`` (UTC) -> country -> number of distinct valid, non-expired starts that hour,
    counted once per session however often the start was sent. Starts of sessions that never end
    count; orphan ends have no start and do not.
``starts``
    every such start as ``[ts, country, session_id, player_id]`` sorted by ts, or null when not
    kept (``truth_starts``; on by default for players * days <= 100,000). Needed to answer windows
    that do not fall on whole hours.
``invalid``, ``expired``, ``events``, ``complete_sessions``, ``valid_starts``, ``summary``, ``options``
    counts from generation.

All timestamps are RFC 3339 in UTC with ``Z``. The tests read it with ``tests/support/truth.py``.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import math
import os
import random
import sys
import time
import uuid
from array import array
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

import orjson

from player_sessions.datagen._io import ByteSink, Progress, format_duration, open_output

__all__ = [
    "COUNTRIES",
    "INVALID_KINDS",
    "GenerateOptions",
    "GenerateSummary",
    "format_ts",
    "generate",
]

# (ISO code, relative share of players, UTC offset in hours). Fixed offsets: DST would shift the
# evening peak by an hour for part of the year, which no test can see.
COUNTRIES: Final[tuple[tuple[str, float, float], ...]] = (
    ("US", 20.0, -5),
    ("BR", 9.0, -3),
    ("DE", 7.0, 1),
    ("GB", 6.0, 0),
    ("FR", 5.0, 1),
    ("JP", 5.0, 9),
    ("CN", 4.0, 8),
    ("RU", 4.0, 3),
    ("KR", 3.0, 9),
    ("CA", 3.0, -5),
    ("MX", 3.0, -6),
    ("IN", 3.0, 5.5),
    ("IT", 2.5, 1),
    ("ES", 2.5, 1),
    ("ID", 2.0, 7),
    ("TR", 2.0, 3),
    ("PL", 2.0, 1),
    ("AU", 2.0, 10),
    ("NL", 1.5, 1),
    ("SE", 1.5, 1),
    ("FI", 1.2, 2),
    ("AR", 1.2, -3),
    ("PH", 1.2, 8),
    ("TH", 1.2, 7),
    ("VN", 1.0, 7),
    ("UA", 1.0, 2),
    ("NO", 0.8, 1),
    ("CL", 0.8, -4),
    ("CO", 0.8, -5),
    ("SA", 0.8, 3),
    ("DK", 0.7, 1),
    ("EG", 0.7, 2),
    ("BE", 0.7, 1),
    ("ZA", 0.6, 2),
    ("PT", 0.6, 0),
    ("AT", 0.6, 1),
    ("CH", 0.6, 1),
    ("CZ", 0.6, 1),
    ("NZ", 0.4, 12),
    ("IE", 0.4, 0),
)

# Relative rate of session starts by local hour: a trough before dawn, a peak 18-22.
_RHYTHM: Final = (
    0.50,
    0.35,
    0.25,
    0.18,
    0.15,
    0.15,
    0.20,
    0.30,
    0.40,
    0.50,
    0.55,
    0.60,
    0.65,
    0.65,
    0.65,
    0.70,
    0.80,
    0.90,
    1.00,
    1.00,
    1.00,
    0.95,
    0.85,
    0.70,
)
_ACCEPT: Final = tuple(r / max(_RHYTHM) for r in _RHYTHM)
# Thinning proposes at the peak rate; this scales a player's mean daily rate up to that peak.
_PEAK_OVER_MEAN: Final = max(_RHYTHM) / (sum(_RHYTHM) / len(_RHYTHM))

# Sessions per day: lognormal, median 0.2, so most players have a handful of sessions and a few
# hundreds; whales are drawn separately.
_RATE_MEDIAN: Final = 0.2
_RATE_SIGMA: Final = 1.5
_RATE_CAP: Final = 24.0
_WHALE_RATE: Final = (60.0, 150.0)
# Session length in seconds: lognormal, median 20 min (whales: 8 min), clamped to [1 min, 12 h].
_LENGTH_MU: Final = math.log(20 * 60)
_WHALE_LENGTH_MU: Final = math.log(8 * 60)
_LENGTH_SIGMA: Final = 1.0
_LENGTH_MIN: Final = 60
_LENGTH_MAX: Final = 12 * 3600
_TRAVEL: Final = 0.02  # share of sessions played from a country other than home
_END_COUNTRY: Final = 0.03  # share of ends that carry a country (optional on an end)
_END_OTHER_COUNTRY: Final = 0.2  # of those, the share naming another country than the start
_OOO_DELAY: Final = 20  # a start held behind its end is due within this many lines
_CHUNK_BYTES: Final = 1 << 20
_DUMPS: Final = orjson.dumps
_NEWLINE: Final = orjson.OPT_APPEND_NEWLINE

INVALID_KINDS: Final = (
    "bad_uuid",
    "missing_country",
    "bad_country",
    "bad_player_id",
    "non_string_player_id",
    "bad_ts",
    "future_ts",
    "unknown_event",
)
# Every value breaks the rule named by its kind and nothing else, whichever way the service reads
# ISO 8601, UUIDs and country codes: the service accepts 32 hex digits as a UUID and any letter case
# as a country, so those are not used here.
_BAD_UUIDS: Final = (
    "not-a-uuid",
    "4a0c43c9-c43a-42ff-ba55",
    "{4a0c43c9-c43a-42ff-ba55-67563dfa35d4}",
    "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
)
_BAD_COUNTRIES: Final = ("FIN", "F1", "XX", "Finland")
_BAD_PLAYER_IDS: Final = ("", "x" * 65, "player one", "pl\u00e4yer")
_NON_STRING_PLAYER_IDS: Final[tuple[object, ...]] = (12345, True, ["p1"], 1.5)
_BAD_TS: Final[tuple[object, ...]] = ("yesterday", "2016-13-01T00:00:00", "2016-11-31T10:00:00", 1480000000)
_UNKNOWN_EVENTS: Final = ("pause", "heartbeat", "START", "")

_ORPHAN: Final = 1
_OPEN: Final = 2
_OOO: Final = 3
_NORMAL: Final = 0


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    """What to generate; shares are described in the module docstring."""

    players: int = 10_000
    days: float = 30.0
    until: datetime = datetime(2016, 12, 1, tzinfo=UTC)
    seed: int = 1
    whales: float = 0.001
    duplicates: float = 0.02
    out_of_order: float = 0.05
    late: float = 0.01
    orphan_ends: float = 0.01
    open_starts: float = 0.02
    invalid: float = 0.005
    expired: float = 0.005
    reorder_window: int = 10_000
    retention_days: float = 365.0
    truth_sessions_per_player: int = 20
    # None: keep every valid start in the truth file only when players * days <= 100,000.
    truth_starts: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "until", _utc(self.until))
        if self.players < 1:
            raise ValueError("players must be at least 1")
        if not self.days > 0:
            raise ValueError("days must be greater than 0")
        for name in (
            "whales",
            "duplicates",
            "out_of_order",
            "late",
            "orphan_ends",
            "open_starts",
            "invalid",
            "expired",
        ):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {share}")
        if self.orphan_ends + self.open_starts + self.out_of_order > 1.0:
            raise ValueError("orphan_ends + open_starts + out_of_order must not exceed 1")
        if self.late + self.duplicates + self.invalid + self.expired / 2 > 1.0:
            raise ValueError("late + duplicates + invalid + expired/2 must not exceed 1")
        if self.reorder_window < 2:
            raise ValueError("reorder_window must be at least 2")
        if not self.retention_days > 0:
            raise ValueError("retention_days must be greater than 0")
        if self.truth_sessions_per_player < 1:
            raise ValueError("truth_sessions_per_player must be at least 1")

    @property
    def keep_truth_starts(self) -> bool:
        if self.truth_starts is None:
            return self.players * self.days <= 100_000
        return self.truth_starts

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["until"] = format_ts(int(self.until.timestamp())) + "Z"
        return out


@dataclass(slots=True)
class GenerateSummary:
    """Counts of what was written. ``events`` counts output lines, anomalies included."""

    events: int = 0
    regular_events: int = 0
    sessions: int = 0
    players: int = 0
    whales: int = 0
    complete_sessions: int = 0
    valid_starts: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    late: int = 0
    orphan_ends: int = 0
    open_starts: int = 0
    in_progress: int = 0
    invalid: int = 0
    expired: int = 0
    invalid_by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVALID_KINDS, 0))
    window_start: str = ""
    until: str = ""
    elapsed_seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def format(self) -> str:
        kinds = ", ".join(f"{k} {v:,}" for k, v in self.invalid_by_kind.items())
        return "\n".join(
            (
                f"generated {self.events:,} events in {format_duration(self.elapsed_seconds)} "
                f"({self.events_per_second:,.0f} events/s), {self.window_start} .. {self.until}",
                f"  players {self.players:,} (whales {self.whales:,}), sessions {self.sessions:,}, "
                f"complete sessions {self.complete_sessions:,}, valid starts {self.valid_starts:,}",
                f"  anomalies: duplicates {self.duplicates:,}, out of order {self.out_of_order:,}, "
                f"late {self.late:,}, orphan ends {self.orphan_ends:,}, open starts {self.open_starts:,}, "
                f"in progress at the end {self.in_progress:,}, expired {self.expired:,}",
                f"  invalid {self.invalid:,}: {kinds}",
            )
        )


_day_prefixes: dict[int, str] = {}


def format_ts(ts: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` (UTC, no offset) for epoch seconds; the hot path of generation."""
    day, secs = divmod(ts, 86400)
    prefix = _day_prefixes.get(day)
    if prefix is None:
        prefix = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%dT")
        if len(_day_prefixes) < 100_000:
            _day_prefixes[day] = prefix
    hours, rest = divmod(secs, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}"


class _Truth:
    """What the service must answer, built while generating: O(players * K) plus hourly counts."""

    def __init__(self, keep: int, keep_starts: bool) -> None:
        self.keep = keep
        # Per player, complete sessions as (start, end, session_id, country index), trimmed to the
        # newest `keep` whenever the list doubles (a player's sessions arrive in start order).
        self.recent: dict[int, list[tuple[int, int, str, int]]] = {}
        self.complete: dict[int, int] = {}
        self.hourly: dict[int, list[int]] = {}
        self.starts: list[tuple[int, int, str, int]] | None = [] if keep_starts else None

    def start(self, player: int, ts: int, session_id: str, country: int) -> None:
        counts = self.hourly.get(ts // 3600)
        if counts is None:
            counts = self.hourly[ts // 3600] = [0] * len(COUNTRIES)
        counts[country] += 1
        if self.starts is not None:
            self.starts.append((ts, country, session_id, player))

    def session(self, player: int, start: int, end: int, session_id: str, country: int) -> None:
        sessions = self.recent.get(player)
        if sessions is None:
            sessions = self.recent[player] = []
        sessions.append((start, end, session_id, country))
        if len(sessions) >= 2 * self.keep:
            del sessions[: -self.keep]
        self.complete[player] = self.complete.get(player, 0) + 1

    def write(
        self,
        path: Path,
        options: GenerateOptions,
        summary: GenerateSummary,
        player_ids: list[str],
        active: bytearray,
    ) -> None:
        players: dict[str, list[dict[str, object]]] = {}
        complete: dict[str, int] = {}
        for index, pid in enumerate(player_ids):
            if not active[index]:
                continue
            newest = sorted(self.recent.get(index, ()), key=lambda s: (-s[0], s[2]))[: self.keep]
            players[pid] = [
                {
                    "session_id": sid,
                    "country": COUNTRIES[country][0],
                    "start": format_ts(start) + "Z",
                    "end": format_ts(end) + "Z",
                    "duration_seconds": max(0, end - start),
                }
                for start, end, sid, country in newest
            ]
            complete[pid] = self.complete.get(index, 0)
        codes = [code for code, _, _ in COUNTRIES]
        hourly = {
            format_ts(hour * 3600)[:13]: {code: n for code, n in sorted(zip(codes, counts, strict=True)) if n}
            for hour, counts in sorted(self.hourly.items())
        }
        starts = None
        if self.starts is not None:
            starts = [
                [format_ts(ts) + "Z", COUNTRIES[c][0], sid, player_ids[p]]
                for ts, c, sid, p in sorted(self.starts)
            ]
        document = {
            "format": 1,
            "now": summary.until,
            "retention_days": options.retention_days,
            "window_start": summary.window_start,
            "sessions_per_player": self.keep,
            "options": options.as_json(),
            # Without the timing, so a seed gives a byte-identical truth file too.
            "summary": {k: v for k, v in summary.as_dict().items() if k != "elapsed_seconds"},
            "events": summary.events,
            "complete_sessions": summary.complete_sessions,
            "valid_starts": summary.valid_starts,
            "invalid": summary.invalid,
            "expired": summary.expired,
            "players": players,
            "complete_sessions_per_player": complete,
            "starts_per_country_hour": hourly,
            "starts": starts,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 if len(players) <= 1000 else 0))
        os.replace(tmp, path)


class _Generator:
    def __init__(
        self, options: GenerateOptions, sink: ByteSink, truth: _Truth | None, progress: Progress
    ) -> None:
        self.o = options
        self.sink = sink
        self.truth = truth
        self.progress = progress
        self.rng = random.Random(options.seed)
        self.summary = GenerateSummary()
        self.until = math.floor(options.until.timestamp())
        self.window_start = self.until - round(options.days * 86400)
        self.expire_before = self.until - round(options.retention_days * 86400)
        # Lines are copied into a bytearray at once: orjson returns each line in a 4 KiB allocation,
        # so holding lines as objects would cost 4 KiB apiece.
        self.chunk = bytearray()
        self.pos = 0  # lines written so far, the clock of the reorder buffer
        self.buffer: list[tuple[int, int, bytes]] = []  # (due position, tie-break, line)
        self.buffer_seq = 0
        total = sum(w for _, w, _ in COUNTRIES)
        acc = 0.0
        self.cumulative: list[float] = []
        for _, weight, _ in COUNTRIES:
            acc += weight / total
            self.cumulative.append(acc)
        self.tz_seconds = [round(off * 3600) for _, _, off in COUNTRIES]
        self.codes = [code for code, _, _ in COUNTRIES]
        # Emission thresholds on one uniform draw per regular event (mutually exclusive outcomes).
        self.t_late = options.late
        self.t_dup = self.t_late + options.duplicates
        self.t_invalid = self.t_dup + options.invalid
        self.t_expired = self.t_invalid + options.expired / 2
        self.player_ids: list[str] = []
        self.home = bytearray()
        self.whale = bytearray()
        self.active = bytearray()
        self.rate = array("d")
        self.started = time.monotonic()

    # --- output ------------------------------------------------------------------------------

    def write(self, line: bytes) -> None:
        self.chunk += line
        self.pos += 1
        buffer = self.buffer
        while buffer and buffer[0][0] <= self.pos:
            self.chunk += heapq.heappop(buffer)[2]
            self.pos += 1
        if len(self.chunk) >= _CHUNK_BYTES:
            self.flush()

    def later(self, line: bytes, delay: int) -> None:
        self.buffer_seq += 1
        # A compact copy, see `chunk`.
        heapq.heappush(self.buffer, (self.pos + delay, self.buffer_seq, bytes(memoryview(line))))

    def flush(self) -> None:
        if self.chunk:
            self.sink.write(bytes(self.chunk))
            self.chunk = bytearray()

    def regular(self, line: bytes, ts: int, player: int) -> None:
        """Emit one event of a generated session, possibly displaced, duplicated or followed by noise."""
        s = self.summary
        s.regular_events += 1
        expired = ts < self.expire_before
        if expired:
            s.expired += 1
        u = self.rng.random()
        if u < self.t_late:
            s.late += 1
            w = self.o.reorder_window
            self.later(line, self.rng.randint(w // 2, w))
            return
        self.write(line)
        if u < self.t_dup:
            s.duplicates += 1
            s.expired += expired
            self.later(line, self.rng.randint(1, self.o.reorder_window))
        elif u < self.t_invalid:
            self.write(self.invalid_event(ts, player))
        elif u < self.t_expired:
            self.expired_session(player)

    # --- model ---------------------------------------------------------------------------------

    def country(self) -> int:
        return min(bisect.bisect_left(self.cumulative, self.rng.random()), len(COUNTRIES) - 1)

    def next_start(self, after: int, rate: float, tz: int) -> int | None:
        """The first accepted start after ``after`` (thinning of a Poisson process at peak rate)."""
        rng = self.rng
        t = float(after)
        while True:
            t += rng.expovariate(rate)
            if t > self.until:
                return None
            if rng.random() < _ACCEPT[int((t + tz) // 3600) % 24]:
                return int(t)

    def session_length(self, whale: bool) -> int:
        mu = _WHALE_LENGTH_MU if whale else _LENGTH_MU
        length = int(self.rng.lognormvariate(mu, _LENGTH_SIGMA))
        return min(max(length, _LENGTH_MIN), _LENGTH_MAX)

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def start_line(self, player_id: str, session_id: str, country: int, ts: int) -> bytes:
        return _DUMPS(
            {
                "event": "start",
                "country": self.codes[country],
                "player_id": player_id,
                "session_id": session_id,
                "ts": format_ts(ts),
            },
            option=_NEWLINE,
        )

    def end_line(self, player_id: str, session_id: str, country: int, ts: int) -> bytes:
        if self.rng.random() < _END_COUNTRY:
            if self.rng.random() < _END_OTHER_COUNTRY:
                country = self.country()
            return _DUMPS(
                {
                    "event": "end",
                    "country": self.codes[country],
                    "player_id": player_id,
                    "session_id": session_id,
                    "ts": format_ts(ts),
                },
                option=_NEWLINE,
            )
        return _DUMPS(
            {"event": "end", "player_id": player_id, "session_id": session_id, "ts": format_ts(ts)},
            option=_NEWLINE,
        )

    def invalid_event(self, ts: int, player: int) -> bytes:
        s = self.summary
        kind = INVALID_KINDS[s.invalid % len(INVALID_KINDS)]
        variant = (s.invalid // len(INVALID_KINDS)) % 4
        s.invalid += 1
        s.invalid_by_kind[kind] += 1
        rng = self.rng
        is_start = rng.random() < 0.5
        event: dict[str, object] = {"event": "start" if is_start else "end"}
        if is_start:
            event["country"] = self.codes[self.home[player]]
        event["player_id"] = self.player_ids[player]
        event["session_id"] = self.new_uuid()
        event["ts"] = format_ts(ts)
        if kind == "bad_uuid":
            event["session_id"] = _BAD_UUIDS[variant]
        elif kind in ("missing_country", "bad_country"):
            event = {"event": "start", **{k: v for k, v in event.items() if k != "event"}}
            if kind == "missing_country":
                event.pop("country", None)
            else:
                event["country"] = _BAD_COUNTRIES[variant]
        elif kind == "bad_player_id":
            event["player_id"] = _BAD_PLAYER_IDS[variant]
        elif kind == "non_string_player_id":
            event["player_id"] = _NON_STRING_PLAYER_IDS[variant]
        elif kind == "bad_ts":
            event["ts"] = _BAD_TS[variant]
        elif kind == "future_ts":
            event["ts"] = format_ts(self.until + rng.randint(3600, 2 * 86400))
        else:
            event["event"] = _UNKNOWN_EVENTS[variant]
        return _DUMPS(event, option=_NEWLINE)

    def expired_session(self, player: int) -> None:
        # Starts at least 13 h before the horizon so even a 12 h session ends before it.
        start = self.expire_before - self.rng.randint(13 * 3600, 60 * 86400)
        end = start + self.session_length(False)
        sid = self.new_uuid()
        home = self.home[player]
        pid = self.player_ids[player]
        self.write(self.start_line(pid, sid, home, start))
        self.write(self.end_line(pid, sid, home, end))
        self.summary.expired += 2

    # --- main loop -------------------------------------------------------------------------------

    def players(self) -> list[tuple[int, int, tuple[str, int, int] | None]]:
        o, rng = self.o, self.rng
        n = o.players
        self.player_ids = [f"{rng.getrandbits(128):032x}" for _ in range(n)]
        self.home = bytearray(self.country() for _ in range(n))
        whale_count = math.ceil(n * o.whales) if o.whales > 0 else 0
        self.whale = bytearray(n)
        for index in rng.sample(range(n), whale_count):
            self.whale[index] = 1
        self.summary.whales = whale_count
        self.rate = array(
            "d",
            (
                (
                    rng.uniform(*_WHALE_RATE)
                    if self.whale[i]
                    else min(_RATE_CAP, rng.lognormvariate(math.log(_RATE_MEDIAN), _RATE_SIGMA))
                )
                * _PEAK_OVER_MEAN
                / 86400
                for i in range(n)
            ),
        )
        self.active = bytearray(n)
        heap: list[tuple[int, int, tuple[str, int, int] | None]] = []
        for i in range(n):
            first = self.next_start(self.window_start, self.rate[i], self.tz_seconds[self.home[i]])
            if first is not None:
                heap.append((first, i, None))
                self.active[i] = 1
        heapq.heapify(heap)
        self.summary.players = len(heap)
        return heap

    def run(self) -> GenerateSummary:
        o, rng, s, truth = self.o, self.rng, self.summary, self.truth
        heap = self.players()
        p_orphan = o.orphan_ends
        p_open = p_orphan + o.open_starts
        p_ooo = p_open + o.out_of_order
        span = max(1, self.until - self.window_start)
        until, expire_before = self.until, self.expire_before
        pop, push = heapq.heappop, heapq.heappush
        player_ids, home, whale = self.player_ids, self.home, self.whale
        steps = 0
        while heap:
            ts, i, pending = pop(heap)
            pid = player_ids[i]
            if pending is None:
                s.sessions += 1
                sid = self.new_uuid()
                end = ts + self.session_length(bool(whale[i]))
                country = home[i] if rng.random() >= _TRAVEL else self.country()
                u = rng.random()
                start_stored = ts >= expire_before
                if end > until:
                    s.in_progress += 1
                    self.regular(self.start_line(pid, sid, country, ts), ts, i)
                    if truth is not None and start_stored:
                        truth.start(i, ts, sid, country)
                    s.valid_starts += start_stored
                    continue  # the player's last session: still playing at `until`
                if u < p_orphan:
                    kind = _ORPHAN
                    s.orphan_ends += 1
                else:
                    kind = _OPEN if u < p_open else _OOO if u < p_ooo else _NORMAL
                    if kind == _OOO:
                        s.out_of_order += 1
                        s.regular_events += 1
                        s.expired += not start_stored
                        self.regular(self.end_line(pid, sid, country, end), end, i)
                        self.later(self.start_line(pid, sid, country, ts), rng.randint(1, _OOO_DELAY))
                    else:
                        self.regular(self.start_line(pid, sid, country, ts), ts, i)
                    if start_stored:
                        s.valid_starts += 1
                        if truth is not None:
                            truth.start(i, ts, sid, country)
                    if kind == _OPEN:
                        s.open_starts += 1
                    elif start_stored and end >= expire_before:
                        s.complete_sessions += 1
                        if truth is not None:
                            truth.session(i, ts, end, sid, country)
                push(heap, (end, i, (sid, country, kind)))
            else:
                sid, country, kind = pending
                if kind in (_NORMAL, _ORPHAN):
                    self.regular(self.end_line(pid, sid, country, ts), ts, i)
                nxt = self.next_start(ts, self.rate[i], self.tz_seconds[home[i]])
                if nxt is not None:
                    push(heap, (nxt, i, None))
            steps += 1
            if steps & 0x1FFF == 0:
                self.progress.update(functools.partial(self._progress_text, ts, span))
        while self.buffer:
            self.chunk += heapq.heappop(self.buffer)[2]
            self.pos += 1
        self.flush()
        s.events = self.pos
        s.window_start = format_ts(self.window_start) + "Z"
        s.until = format_ts(self.until) + "Z"
        s.elapsed_seconds = time.monotonic() - self.started
        return s

    def _progress_text(self, ts: int, span: int) -> str:
        elapsed = time.monotonic() - self.started
        done = min(1.0, max(0.0, (ts - self.window_start) / span))
        eta = f", ETA {format_duration(elapsed * (1 - done) / done)}" if done > 0.01 else ""
        return (
            f"generate: {self.pos:,} events, {self.pos / max(elapsed, 1e-9):,.0f}/s, "
            f"{done:.0%} of the time range{eta}"
        )


def generate(
    options: GenerateOptions,
    out: str | os.PathLike[str] | ByteSink,
    truth_path: Path | None = None,
    *,
    progress: bool = False,
    quiet: bool = False,
    stderr: TextIO | None = None,
) -> GenerateSummary:
    """Write the events to ``out`` (a path: ``.jsonl``, ``.jsonl.gz``, ``.jsonl.bz2``, or ``-`` for
    stdout; or an open binary sink), optionally the ground truth to ``truth_path``, and return counts.

    The summary is printed to ``stderr`` unless ``quiet``; ``progress`` adds a live status line.
    """
    err = stderr if stderr is not None else sys.stderr
    bar = Progress(progress, err)
    truth = _Truth(options.truth_sessions_per_player, options.keep_truth_starts) if truth_path else None

    def run(sink: ByteSink) -> _Generator:
        generator = _Generator(options, sink, truth, bar)
        generator.run()
        return generator

    if isinstance(out, str | os.PathLike):
        with open_output(out) as sink:
            generator = run(sink)
        generator.summary.elapsed_seconds = time.monotonic() - generator.started
    else:
        generator = run(out)
    bar.finish()
    summary = generator.summary
    if truth is not None and truth_path is not None:
        truth.write(truth_path, options, summary, generator.player_ids, generator.active)
    if not quiet:
        err.write(summary.format() + "\n")
        err.flush()
    return summary
