from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from player_sessions.domain.windows import (
    DAY,
    HOUR,
    MILLISECOND,
    WindowPlan,
    day_floor,
    hour_floor,
    plan_window,
)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, ms: int = 0, month: int = 12) -> datetime:
    return datetime(2016, month, day, hour, minute, second, ms * 1000, tzinfo=UTC)


def pieces(plan: WindowPlan) -> list[tuple[datetime, datetime]]:
    """Every piece as a half-open [start, stop) interval, sorted."""
    out = [(d, d + DAY) for d in plan.whole_days]
    out += [(h, h + HOUR) for h in plan.whole_hours]
    out += [(lo, hi + MILLISECOND) for lo, hi in plan.partial]
    return sorted(out)


def covering(plan: WindowPlan, ts: datetime) -> int:
    """How many pieces of the plan contain ts (brute force, straight from the field definitions)."""
    return (
        sum(d <= ts < d + DAY for d in plan.whole_days)
        + sum(h <= ts < h + HOUR for h in plan.whole_hours)
        + sum(lo <= ts <= hi for lo, hi in plan.partial)
    )


def assert_well_formed(frm: datetime, to: datetime, plan: WindowPlan) -> None:
    assert all(d == day_floor(d) for d in plan.whole_days)
    assert all(h == hour_floor(h) for h in plan.whole_hours)
    assert all(day_floor(h) not in plan.whole_days for h in plan.whole_hours)
    assert plan.whole_days == sorted(plan.whole_days)
    assert plan.whole_hours == sorted(plan.whole_hours)
    assert len(plan.partial) <= 2
    assert plan.partial == sorted(plan.partial)
    for lo, hi in plan.partial:
        assert lo <= hi
        assert hour_floor(lo) == hour_floor(hi)
        assert hi - lo < HOUR - MILLISECOND, "a whole hour left as a partial piece"
    # Maximal: any day fully inside the window is read as a day, never as 24 hours.
    for h in plan.whole_hours:
        d = day_floor(h)
        assert not (frm <= d and d + DAY - MILLISECOND <= to), "a whole day left as hours"
    # Sorted half-open pieces that each start where the previous stopped, from frm to just after
    # `to`, cover the window's millisecond instants exactly once and nothing else.
    intervals = pieces(plan)
    assert intervals[0][0] == frm
    assert intervals[-1][1] == to + MILLISECOND
    for (_, stop), (start, _) in pairwise(intervals):
        assert start == stop


# --- hour_floor / day_floor ------------------------------------------------------------------------


def test_hour_floor_drops_minutes_seconds_and_fractions() -> None:
    assert hour_floor(at(1, 10, 59, 59, 999)) == at(1, 10)


def test_hour_floor_of_an_hour_start_is_itself() -> None:
    assert hour_floor(at(1, 10)) == at(1, 10)


def test_day_floor_is_utc_midnight() -> None:
    assert day_floor(at(1, 23, 59, 59, 999)) == at(1)


def test_floors_work_in_utc_whatever_the_input_offset() -> None:
    local = datetime(2016, 12, 2, 1, 30, tzinfo=timezone(timedelta(hours=2)))  # 2016-12-01T23:30Z
    assert day_floor(local) == at(1)
    assert hour_floor(local) == at(1, 23)
    assert day_floor(local).tzinfo is UTC


def test_floors_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        hour_floor(datetime(2016, 12, 1))


# --- plan_window: explicit cases -------------------------------------------------------------------


def test_window_within_one_hour_is_a_single_partial_piece() -> None:
    plan = plan_window(at(1, 10, 15), at(1, 10, 45))
    assert plan == WindowPlan(partial=[(at(1, 10, 15), at(1, 10, 45))])


def test_single_instant_window_is_one_millisecond_piece() -> None:
    assert plan_window(at(1, 10, 15), at(1, 10, 15)) == WindowPlan(partial=[(at(1, 10, 15), at(1, 10, 15))])


def test_window_aligned_to_hours_is_whole_hours_only() -> None:
    plan = plan_window(at(1, 10), at(1, 12, 59, 59, 999))
    assert plan == WindowPlan(whole_hours=[at(1, 10), at(1, 11), at(1, 12)])


def test_window_ending_exactly_on_the_hour_keeps_that_instant_as_a_partial_piece() -> None:
    plan = plan_window(at(1, 10), at(1, 12))
    assert plan == WindowPlan(whole_hours=[at(1, 10), at(1, 11)], partial=[(at(1, 12), at(1, 12))])


def test_window_starting_just_before_the_hour_has_a_one_millisecond_left_piece() -> None:
    plan = plan_window(at(1, 9, 59, 59, 999), at(1, 10, 59, 59, 999))
    last_ms_before_ten = at(1, 9, 59, 59, 999)
    assert plan == WindowPlan(whole_hours=[at(1, 10)], partial=[(last_ms_before_ten, last_ms_before_ten)])


def test_window_crossing_one_hour_boundary_without_a_whole_hour_is_two_pieces() -> None:
    plan = plan_window(at(1, 10, 30), at(1, 11, 30))
    assert plan == WindowPlan(partial=[(at(1, 10, 30), at(1, 10, 59, 59, 999)), (at(1, 11), at(1, 11, 30))])


def test_window_aligned_to_days_is_whole_days_only() -> None:
    plan = plan_window(at(1), at(2, 23, 59, 59, 999))
    assert plan == WindowPlan(whole_days=[at(1), at(2)])


def test_window_ending_exactly_at_midnight_keeps_that_instant() -> None:
    plan = plan_window(at(1), at(2))
    assert plan == WindowPlan(whole_days=[at(1)], partial=[(at(2), at(2))])


def test_twenty_four_hours_off_midnight_is_hours_not_a_day() -> None:
    plan = plan_window(at(1, 12), at(2, 11, 59, 59, 999))
    assert plan.whole_days == []
    assert plan.whole_hours == [at(1, 12) + HOUR * i for i in range(24)]
    assert plan.partial == []


def test_window_over_days_uses_days_in_the_middle_and_hours_and_pieces_at_the_edges() -> None:
    plan = plan_window(at(1, 22, 30), at(3, 1, 15))
    assert plan == WindowPlan(
        whole_days=[at(2)],
        whole_hours=[at(1, 23), at(3, 0)],
        partial=[(at(1, 22, 30), at(1, 22, 59, 59, 999)), (at(3, 1), at(3, 1, 15))],
    )


def test_window_across_new_year_within_an_hour_either_side() -> None:
    frm = datetime(2016, 12, 31, 23, 30, tzinfo=UTC)
    to = datetime(2017, 1, 1, 0, 30, tzinfo=UTC)
    last_ms_of_2016 = datetime(2016, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    new_year = datetime(2017, 1, 1, tzinfo=UTC)
    assert plan_window(frm, to) == WindowPlan(partial=[(frm, last_ms_of_2016), (new_year, to)])


def test_offset_bounds_are_planned_in_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    plan = plan_window(datetime(2016, 12, 1, 12, tzinfo=plus2), datetime(2016, 12, 1, 13, 30, tzinfo=plus2))
    assert plan == WindowPlan(whole_hours=[at(1, 10)], partial=[(at(1, 11), at(1, 11, 30))])


def test_sub_millisecond_bounds_are_rounded_inwards() -> None:
    frm = at(1, 10) + timedelta(microseconds=1)
    to = at(1, 10, 0, 0, 5) + timedelta(microseconds=999)
    assert plan_window(frm, to) == WindowPlan(partial=[(at(1, 10, 0, 0, 1), at(1, 10, 0, 0, 5))])


def test_window_holding_no_millisecond_instant_is_empty() -> None:
    frm = at(1, 10) + timedelta(microseconds=1)
    assert plan_window(frm, frm + timedelta(microseconds=500)) == WindowPlan()


def test_window_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        plan_window(at(1, 11), at(1, 10))


# --- plan_window: properties against brute force --------------------------------------------------

GRAINS = (timedelta(minutes=1), timedelta(seconds=1), MILLISECOND)
THREE_DAYS = timedelta(days=3)


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime]:
    grain = draw(st.sampled_from(GRAINS))
    anchor = draw(
        st.sampled_from([datetime(2016, 12, 29, tzinfo=UTC), datetime(2020, 12, 30, tzinfo=UTC)])  # new year
        | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
    )
    frm = anchor + draw(st.integers(0, THREE_DAYS // grain)) * grain
    frm -= (frm - datetime(2000, 1, 1, tzinfo=UTC)) % grain
    snap = draw(st.sampled_from(["none", "hour", "day"]))
    if snap == "hour":
        frm = hour_floor(frm)
    elif snap == "day":
        frm = day_floor(frm)
    if draw(st.booleans()):
        length = draw(st.integers(0, THREE_DAYS // grain)) * grain
    else:
        # Lengths of whole hours, and one millisecond either side, hit the boundaries directly.
        length = draw(st.integers(0, 72)) * HOUR + draw(
            st.sampled_from([-MILLISECOND, timedelta(0), MILLISECOND])
        )
    return frm, frm + max(length, timedelta(0))


@settings(max_examples=400)
@given(windows())
def test_plan_covers_exactly_the_window_once(window: tuple[datetime, datetime]) -> None:
    frm, to = window
    assert_well_formed(frm, to, plan_window(frm, to))


@settings(max_examples=300)
@given(windows(), st.data())
def test_each_instant_is_counted_once_inside_the_window_and_never_outside(
    window: tuple[datetime, datetime], data: st.DataObject
) -> None:
    frm, to = window
    plan = plan_window(frm, to)
    span_ms = (to - frm) // MILLISECOND
    offsets = data.draw(st.lists(st.integers(-3_600_000, span_ms + 3_600_000), min_size=20, max_size=20))
    samples = [frm + offset * MILLISECOND for offset in offsets] + [
        frm - MILLISECOND,
        frm,
        to,
        to + MILLISECOND,
    ]
    samples += [hour_floor(frm) + HOUR, hour_floor(to), day_floor(to), hour_floor(to) - MILLISECOND]
    for ts in samples:
        assert covering(plan, ts) == (1 if frm <= ts <= to else 0), ts
