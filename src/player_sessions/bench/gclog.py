"""Cassandra's stop-the-world GC pauses in a time range, read from the node's gc.log.

The launcher starts every node with `-Xlog:gc:file=<node>/logs/gc.log:time,uptime` (cassandra_local/node.py);
each pause is one line such as `[2026-12-02T10:50:01.123+0000][430.936s] GC(397) Pause Young (Normal)
(G1 Evacuation Pause) 873M->474M(1024M) 92.488ms` (one line in the file).
A query's tail latency includes every pause of the node that served it, so the benchmark reports them
beside the latencies of each cell.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from player_sessions.domain.clock import try_parse_instant

__all__ = ["GcPauses", "pauses_between", "read_pauses"]

_PAUSE = re.compile(r"^\[(?P<ts>[^\]]+)\](?:\[[^\]]*\])* GC\(\d+\) Pause (?P<kind>.+?) (?P<ms>[\d.]+)ms\s*$")


@dataclass(frozen=True)
class GcPauses:
    count: int = 0
    max_ms: float = 0.0
    total_ms: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"count": self.count, "max_ms": round(self.max_ms, 1), "total_ms": round(self.total_ms, 1)}


def read_pauses(lines: Iterable[str]) -> list[tuple[datetime, float]]:
    """(when the pause was logged, its length in ms) for every pause line."""
    pauses: list[tuple[datetime, float]] = []
    for line in lines:
        match = _PAUSE.match(line)
        if match is None:
            continue
        when = try_parse_instant(match.group("ts"))
        if when is not None:
            pauses.append((when, float(match.group("ms"))))
    return pauses


def pauses_between(log: Path, start: datetime, end: datetime) -> GcPauses | None:
    """The pauses logged in [start, end] (aware datetimes); None when the node keeps no gc.log."""
    files = sorted(log.parent.glob(log.name + "*"))  # gc.log and its rotated gc.log.N
    if not files:
        return None
    found: list[float] = []
    for path in files:
        try:
            with path.open(encoding="utf-8", errors="replace") as lines:
                found += [ms for when, ms in read_pauses(lines) if start <= when <= end]
        except OSError:
            continue
    if not found:
        return GcPauses()
    return GcPauses(len(found), max(found), sum(found))
