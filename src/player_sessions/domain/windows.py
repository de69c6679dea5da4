"""Split a time window into whole days, whole hours and at most two partial pieces.

Per-country start counts are kept per hour and per day, so a window is answered by reading
pre-aggregated whole days, then whole hours, and scanning raw starts only in the ragged edges.

Stored timestamps have millisecond precision, so a window is the set of millisecond instants
``frm <= ts <= to`` and whole hour ``h`` means ``[h, h + 1h - 1ms]``. Internally the window is
handled half-open, ``[frm, to + 1ms)``, where hour and day boundaries line up without off-by-ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from player_sessions.domain.errors import InvalidRequest

__all__ = [
    "DAY",
    "HOUR",
    "MILLISECOND",
    "MINUTE",
    "WindowPlan",
    "day_floor",
    "hour_floor",
    "minute_floor",
    "parse_hours",
    "plan_window",
    "window_for",
]

MILLISECOND = timedelta(milliseconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is UTC:
        return ts
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC)


def minute_floor(ts: datetime) -> datetime:
    """The start of the UTC minute containing ``ts``."""
    return _utc(ts).replace(second=0, microsecond=0)


def hour_floor(ts: datetime) -> datetime:
    """The start of the UTC hour containing ``ts``."""
    return _utc(ts).replace(minute=0, second=0, microsecond=0)


def day_floor(ts: datetime) -> datetime:
    """The UTC midnight starting the day containing ``ts``."""
    return _utc(ts).replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil(ts: datetime, floor: datetime, step: timedelta) -> datetime:
    return floor if floor == ts else floor + step


def _ms_ceil(ts: datetime) -> datetime:
    rest = ts.microsecond % 1000
    return ts if rest == 0 else ts + timedelta(microseconds=1000 - rest)


def _ms_floor(ts: datetime) -> datetime:
    return ts.replace(microsecond=ts.microsecond - ts.microsecond % 1000)


@dataclass(frozen=True)
class WindowPlan:
    """Disjoint pieces whose union is exactly the window's millisecond instants.

    ``whole_days``: UTC midnights ``d`` with ``[d, d + 24h)`` inside the window, ascending.
    ``whole_hours``: hour starts ``h`` with ``[h, h + 1h)`` inside the window and outside every whole
    day, ascending. ``partial``: at most two inclusive ``(lo, hi)`` ranges, each within one hour,
    ascending; the left one ends just before an hour boundary, the right one starts on one.
    """

    whole_days: list[datetime] = field(default_factory=list)
    whole_hours: list[datetime] = field(default_factory=list)
    partial: list[tuple[datetime, datetime]] = field(default_factory=list)


def _steps(start: datetime, stop: datetime, step: timedelta) -> list[datetime]:
    out: list[datetime] = []
    current = start
    while current < stop:
        out.append(current)
        current += step
    return out


def plan_window(frm: datetime, to: datetime) -> WindowPlan:
    """Plan the inclusive window ``frm <= ts <= to`` (both aware; ``to >= frm``).

    Sub-millisecond bounds are rounded inwards (``frm`` up, ``to`` down) since no stored timestamp
    lies between; a window left with no millisecond in it yields an empty plan.
    """
    frm, to = _utc(frm), _utc(to)
    if to < frm:
        raise ValueError("window: to must not be before from")
    lo = _ms_ceil(frm)
    stop = _ms_floor(to) + MILLISECOND  # exclusive end
    if stop <= lo:
        return WindowPlan()

    first_hour = _ceil(lo, hour_floor(lo), HOUR)
    last_hour = hour_floor(stop)  # exclusive: whole hours end here
    if first_hour > last_hour:
        # No hour boundary inside the window at all: it is one piece within a single hour.
        return WindowPlan(partial=[(lo, stop - MILLISECOND)])

    partial: list[tuple[datetime, datetime]] = []
    if lo < first_hour:
        partial.append((lo, first_hour - MILLISECOND))
    if last_hour < stop:
        partial.append((last_hour, stop - MILLISECOND))

    first_day = _ceil(lo, day_floor(lo), DAY)
    last_day = day_floor(stop)
    if first_day < last_day:
        days = _steps(first_day, last_day, DAY)
        hours = _steps(first_hour, first_day, HOUR) + _steps(last_day, last_hour, HOUR)
    else:
        days = []
        hours = _steps(first_hour, last_hour, HOUR)
    return WindowPlan(whole_days=days, whole_hours=hours, partial=partial)


def parse_hours(hours: float, retention: timedelta) -> float:
    """A "last X hours" window's X, checked: positive, finite and within the retention."""
    limit = retention.total_seconds() / 3600
    if not math.isfinite(hours) or hours <= 0 or hours > limit:
        raise InvalidRequest("hours", f"must be a number > 0 and <= {limit:g} (the retention in hours)")
    return hours


def window_for(hours: float, now: datetime) -> tuple[datetime, datetime]:
    """The last `hours` hours up to `now`, at the milliseconds stored timestamps have."""
    to = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return to - timedelta(hours=hours), to
