from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from player_sessions.domain.retention import (
    CASSANDRA_MAX_TTL,
    is_expired,
    parse_duration,
    retention_horizon,
    ttl_seconds,
)
from tests.support.clock import NOW

WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("365d", timedelta(days=365)),
        ("90", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        ("0.5", timedelta(milliseconds=500)),
        (".5d", timedelta(hours=12)),
        (" 7d ", timedelta(days=7)),
        ("7 d", timedelta(days=7)),
    ],
)
def test_parse_duration_reads_number_and_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "d", "7w", "7D", "1M", "-1d", "+1d", "1e3", "1.", "inf", "nan", "7d7h", "\u00bdd"]
)
def test_parse_duration_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match=r"^retention: not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0", "0s", "0.0h", "0.0000001s"])
def test_parse_duration_rejects_zero(text: str) -> None:
    with pytest.raises(ValueError, match=r"^retention: must be greater than zero"):
        parse_duration(text)


def test_parse_duration_rejects_what_timedelta_cannot_hold() -> None:
    with pytest.raises(ValueError, match=r"^retention: too large"):
        parse_duration("9" * 400 + "d")


def test_retention_horizon_is_now_minus_retention() -> None:
    assert retention_horizon(NOW, WEEK) == datetime(2016, 11, 24, tzinfo=UTC)


def test_event_older_than_the_horizon_is_expired() -> None:
    assert is_expired(NOW - WEEK - timedelta(milliseconds=1), NOW, WEEK)


def test_event_exactly_at_the_horizon_is_kept() -> None:
    assert not is_expired(NOW - WEEK, NOW, WEEK)


def test_event_in_the_future_is_not_expired() -> None:
    assert not is_expired(NOW + timedelta(minutes=1), NOW, WEEK)


def test_ttl_of_an_event_now_is_the_whole_retention() -> None:
    assert ttl_seconds(NOW, NOW, WEEK) == 7 * 86400


def test_ttl_is_retention_minus_age() -> None:
    assert ttl_seconds(NOW - timedelta(days=1), NOW, WEEK) == 6 * 86400


def test_ttl_rounds_a_partial_second_up() -> None:
    assert ttl_seconds(NOW - timedelta(seconds=10, milliseconds=1), NOW, timedelta(seconds=20)) == 10
    assert ttl_seconds(NOW - timedelta(seconds=9, milliseconds=999), NOW, timedelta(seconds=20)) == 11


def test_ttl_is_at_least_one_second_at_and_past_the_horizon() -> None:
    # Cassandra reads a TTL of 0 as "never expire".
    assert ttl_seconds(NOW - WEEK, NOW, WEEK) == 1
    assert ttl_seconds(NOW - WEEK - timedelta(days=3), NOW, WEEK) == 1


def test_ttl_of_a_future_event_exceeds_retention_by_its_lead() -> None:
    assert ttl_seconds(NOW + timedelta(minutes=2), NOW, WEEK) == 7 * 86400 + 120


def test_ttl_is_capped_at_cassandras_maximum() -> None:
    assert ttl_seconds(NOW, NOW, timedelta(days=365 * 30)) == CASSANDRA_MAX_TTL == 630_720_000


@given(
    age=st.timedeltas(min_value=timedelta(days=-1), max_value=timedelta(days=30)),
    retention=st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=3650)),
)
def test_a_row_dies_within_a_second_after_its_event_leaves_retention(
    age: timedelta, retention: timedelta
) -> None:
    ts = NOW - age
    ttl = ttl_seconds(ts, NOW, retention)
    assert 1 <= ttl <= CASSANDRA_MAX_TTL
    if ts + retention > NOW:
        expires_at = NOW + timedelta(seconds=ttl)
        assert expires_at >= ts + retention
        assert expires_at - (ts + retention) < timedelta(seconds=1)
