"""Pure statistics for the benchmark: percentiles, latency summaries, rates, and targets.

Percentiles use the nearest-rank definition: p-th percentile = the smallest sample such that at least
p % of the samples are <= it. It never interpolates between samples, so a p99 is a latency some
request really had, and with fewer than 100 samples p99 is the maximum (conservative, not flattering).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

__all__ = [
    "LatencyStats",
    "Target",
    "TargetResult",
    "evaluate",
    "percentile",
    "rate",
    "summarise",
]


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values; NaN for no values."""
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    n = len(sorted_values)
    if n == 0:
        return math.nan
    rank = max(1, math.ceil(p / 100.0 * n))
    return float(sorted_values[rank - 1])


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Request latencies in milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def empty(cls) -> LatencyStats:
        return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)


def summarise(latencies_s: Iterable[float]) -> LatencyStats:
    """Summarise latencies given in seconds (as measured) into milliseconds."""
    values = sorted(latencies_s)
    if not values:
        return LatencyStats.empty()
    ms = 1000.0
    return LatencyStats(
        count=len(values),
        mean_ms=sum(values) / len(values) * ms,
        p50_ms=percentile(values, 50) * ms,
        p90_ms=percentile(values, 90) * ms,
        p99_ms=percentile(values, 99) * ms,
        max_ms=values[-1] * ms,
    )


def rate(count: float, seconds: float) -> float:
    """count per second; 0 when no time passed."""
    return count / seconds if seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Target:
    """A goal to report (never asserted): `measured` must be below (`max`) or above (`min`) `limit`."""

    name: str
    kind: Literal["max", "min"]
    limit: float
    unit: str


@dataclass(frozen=True, slots=True)
class TargetResult:
    target: Target
    measured: float | None  # None: the scenario did not run
    met: bool | None
    verdict: str

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.target.name,
            "kind": self.target.kind,
            "limit": self.target.limit,
            "unit": self.target.unit,
            "measured": self.measured,
            "met": self.met,
            "verdict": self.verdict,
        }


def _fmt_gap(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0f} percentage points"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.1f} {unit}"


def evaluate(target: Target, measured: float | None) -> TargetResult:
    """Met or missed, and by how much (absolute and relative to the limit)."""
    if measured is None or math.isnan(measured):
        return TargetResult(target, None, None, "not measured")
    if target.kind == "max":
        met = measured < target.limit
        gap = measured - target.limit
    else:
        met = measured >= target.limit
        gap = target.limit - measured
    if met:
        return TargetResult(target, measured, True, "met")
    relative = gap / target.limit * 100 if target.limit else math.inf
    if target.kind == "max":
        how = f"missed by {_fmt_gap(gap, target.unit)} ({relative:.0f} % over the limit)"
    else:
        how = f"missed by {_fmt_gap(gap, target.unit)} ({relative:.0f} % short of the limit)"
    return TargetResult(target, measured, False, how)
