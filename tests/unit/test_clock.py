from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from player_sessions.domain.clock import Clock, FixedClock, SystemClock, parse_instant, try_parse_instant

INSTANT = datetime(2016, 12, 1, tzinfo=UTC)


def read(clock: Clock) -> datetime:
    """Uses the Protocol as callers do, so mypy checks both clocks satisfy it."""
    return clock.now()


def test_system_clock_returns_current_aware_utc_time() -> None:
    before = datetime.now(UTC)
    now = read(SystemClock())
    after = datetime.now(UTC)
    assert now.tzinfo is UTC
    assert before <= now <= after


def test_fixed_clock_always_returns_its_instant() -> None:
    clock = FixedClock(INSTANT)
    assert read(clock) == INSTANT
    assert read(clock) == INSTANT


def test_fixed_clock_converts_an_offset_instant_to_utc() -> None:
    now = FixedClock(datetime(2016, 12, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))).now()
    assert now == INSTANT
    assert now.tzinfo is UTC


def test_fixed_clock_refuses_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2016, 12, 1))


def test_parse_instant_reads_utc_z() -> None:
    parsed = parse_instant("2016-12-01T00:00:00Z")
    assert parsed == INSTANT
    assert parsed.tzinfo is UTC


def test_parse_instant_converts_offsets_to_utc() -> None:
    assert parse_instant("2016-12-01T01:00:00+01:00") == INSTANT
    assert parse_instant("2016-12-01T01:00:00+01:00").tzinfo is UTC


def test_parse_instant_takes_a_missing_offset_as_utc() -> None:
    assert parse_instant("2016-12-01T00:00:00") == INSTANT


def test_parse_instant_keeps_microseconds_and_drops_finer_digits() -> None:
    assert parse_instant("2016-12-01T00:00:00.123456789Z").microsecond == 123456


def test_parse_instant_rejects_a_date_alone_with_a_message_naming_the_input() -> None:
    with pytest.raises(ValueError, match=r"not an ISO 8601 date-time .*'2016-12-01'"):
        parse_instant("2016-12-01")


def test_parse_instant_error_message_stays_short_for_huge_input() -> None:
    with pytest.raises(ValueError) as caught:
        parse_instant("x" * 1_000_000)
    assert len(str(caught.value)) < 200


# Whole-minute offsets only: the grammar has no seconds in offsets (historic LMT zones do).
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.datetimes(timezones=offsets | st.just(UTC)))
def test_isoformat_of_any_aware_datetime_parses_back_to_the_same_instant(value: datetime) -> None:
    try:
        expected = value.astimezone(UTC)
    except OverflowError:
        # Instants at the edge of the datetime range have no UTC representation to compare with.
        assert try_parse_instant(value.isoformat()) is None
        return
    assert try_parse_instant(value.isoformat()) == expected


@given(st.text())
def test_try_parse_instant_never_raises(text: str) -> None:
    parsed = try_parse_instant(text)
    assert parsed is None or parsed.tzinfo is UTC
