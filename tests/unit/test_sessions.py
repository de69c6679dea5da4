from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from player_sessions.domain.events import Event, EventKind
from player_sessions.domain.sessions import Session, SessionHalves, newest_first, pair, pair_in_batch

T0 = datetime(2016, 12, 1, tzinfo=UTC)
S1 = uuid.UUID("00000000-0000-0000-0000-000000000001")
S2 = uuid.UUID("00000000-0000-0000-0000-000000000002")
S3 = uuid.UUID("00000000-0000-0000-0000-00000000000a")


def session(
    session_id: uuid.UUID = S1,
    start: datetime = T0,
    end: datetime | None = None,
    player_id: str = "p1",
    country: str | None = "FI",
) -> Session:
    finish = end if end is not None else start + timedelta(hours=1)
    return Session(session_id, player_id, country, start, finish)


def start(session_id: uuid.UUID = S1, ts: datetime = T0, player_id: str = "p1", country: str = "FI") -> Event:
    return Event(EventKind.START, player_id, session_id, ts, country)


def end(
    session_id: uuid.UUID = S1, ts: datetime = T0, player_id: str = "p1", country: str | None = None
) -> Event:
    return Event(EventKind.END, player_id, session_id, ts, country)


# --- Session.duration_seconds ----------------------------------------------------------------------


def test_duration_is_whole_seconds_between_start_and_end() -> None:
    assert session(end=T0 + timedelta(minutes=2, seconds=5)).duration_seconds == 125


def test_duration_drops_the_partial_second() -> None:
    assert session(end=T0 + timedelta(seconds=2, milliseconds=999)).duration_seconds == 2


def test_end_before_start_gives_duration_zero() -> None:
    assert session(end=T0 - timedelta(seconds=3)).duration_seconds == 0


def test_end_equal_to_start_gives_duration_zero() -> None:
    assert session(end=T0).duration_seconds == 0


# --- newest_first ----------------------------------------------------------------------------------


def test_newest_first_orders_by_start_descending() -> None:
    old, mid, new = (session(s, T0 + timedelta(hours=h)) for s, h in ((S1, 0), (S2, 1), (S3, 2)))
    assert newest_first([mid, old, new], 10) == [new, mid, old]


def test_newest_first_breaks_start_ties_by_session_id_ascending() -> None:
    a, b, c = session(S3), session(S1), session(S2)
    assert [s.session_id for s in newest_first([a, b, c], 10)] == [S1, S2, S3]


def test_newest_first_keeps_only_the_first_of_duplicate_session_ids() -> None:
    newer = session(S1, T0 + timedelta(hours=1), player_id="from-batch")
    older = session(S1, T0, player_id="from-storage")
    assert newest_first([older, newer], 10) == [newer]


def test_newest_first_cuts_to_limit_after_removing_duplicates() -> None:
    a = session(S1, T0 + timedelta(hours=3))
    b = session(S2, T0 + timedelta(hours=2))
    c = session(S3, T0 + timedelta(hours=1))
    assert newest_first([a, a, b, c], 2) == [a, b]


def test_newest_first_with_limit_zero_is_empty() -> None:
    assert newest_first([session()], 0) == []


def test_newest_first_refuses_a_negative_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        newest_first([session()], -1)


def test_newest_first_accepts_any_iterable() -> None:
    assert newest_first((session(s) for s in (S2, S1)), 5) == [session(S1), session(S2)]


# --- pair ------------------------------------------------------------------------------------------


def test_pair_with_both_halves_gives_the_session() -> None:
    halves = SessionHalves(start=T0, end=T0 + timedelta(minutes=5), country="SE")
    assert pair("p1", S1, halves) == Session(S1, "p1", "SE", T0, T0 + timedelta(minutes=5))


@pytest.mark.parametrize(
    "halves", [SessionHalves(T0, None, "SE"), SessionHalves(None, T0, None), SessionHalves(None, None, None)]
)
def test_pair_with_a_missing_half_gives_none(halves: SessionHalves) -> None:
    assert pair("p1", S1, halves) is None


# --- pair_in_batch ---------------------------------------------------------------------------------


def test_start_and_end_in_one_batch_are_merged() -> None:
    later = T0 + timedelta(minutes=30)
    assert pair_in_batch([end(ts=later), start(ts=T0, country="SE")]) == {
        ("p1", S1): SessionHalves(T0, later, "SE")
    }


def test_lone_halves_in_a_batch_are_kept_with_the_other_half_missing() -> None:
    assert pair_in_batch([start(S1), end(S2, ts=T0)]) == {
        ("p1", S1): SessionHalves(T0, None, "FI"),
        ("p1", S2): SessionHalves(None, T0, None),
    }


def test_later_duplicate_of_the_same_kind_overwrites_the_earlier() -> None:
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    merged = pair_in_batch([start(ts=T0, country="FI"), end(ts=t2), start(ts=t1, country="SE"), end(ts=t1)])
    assert merged == {("p1", S1): SessionHalves(t1, t1, "SE")}


def test_same_session_id_for_different_players_is_two_sessions() -> None:
    merged = pair_in_batch([start(player_id="a"), end(player_id="b", ts=T0)])
    assert merged == {("a", S1): SessionHalves(T0, None, "FI"), ("b", S1): SessionHalves(None, T0, None)}


def test_country_comes_from_the_start_not_the_end() -> None:
    merged = pair_in_batch([start(country="FI"), end(ts=T0, country="SE")])
    assert merged[("p1", S1)].country == "FI"


def test_empty_batch_pairs_nothing() -> None:
    assert pair_in_batch([]) == {}


def test_batch_halves_pair_into_sessions() -> None:
    merged = pair_in_batch([start(S1), end(S1, ts=T0 + timedelta(seconds=42)), start(S2)])
    paired = [pair(p, s, h) for (p, s), h in merged.items()]
    assert [s.duration_seconds for s in paired if s is not None] == [42]
