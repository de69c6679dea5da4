from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from player_sessions.domain.sessions import (
    MAX_END_BEFORE_START,
    LatestSessions,
    Session,
    StoredEvent,
    epoch_ms,
    from_epoch_ms,
)

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


# --- Session.duration_seconds ----------------------------------------------------------------------


def test_duration_is_whole_seconds_between_start_and_end() -> None:
    assert session(end=T0 + timedelta(minutes=2, seconds=5)).duration_seconds == 125


def test_duration_drops_the_partial_second() -> None:
    assert session(end=T0 + timedelta(seconds=2, milliseconds=999)).duration_seconds == 2


def test_end_before_start_gives_duration_zero() -> None:
    assert session(end=T0 - timedelta(seconds=3)).duration_seconds == 0


def test_end_equal_to_start_gives_duration_zero() -> None:
    assert session(end=T0).duration_seconds == 0


# --- LatestSessions ------------------------------------------------------------------------------


def stored(session_id: uuid.UUID, ts: datetime, is_start: bool, country: str | None = "FI") -> StoredEvent:
    return StoredEvent.of(ts, session_id, is_start, country if is_start else None)


def newest_order(events: list[StoredEvent]) -> list[StoredEvent]:
    # The store's read order: ts, session_id, is_start all descending.
    return sorted(events, key=lambda e: (e.ts_ms, e.session_id, e.is_start), reverse=True)


def latest(events: list[StoredEvent], limit: int = 20) -> list[Session]:
    pairing = LatestSessions("p1", limit)
    pairing.add(newest_order(events))
    return pairing.newest()


def test_a_start_and_its_end_make_a_session_with_the_start_country() -> None:
    five = T0 + timedelta(minutes=5)
    assert latest([stored(S1, T0, True, "SE"), stored(S1, five, False)]) == [
        Session(S1, "p1", "SE", T0, five)
    ]


@pytest.mark.parametrize("only_start", [True, False])
def test_a_lone_half_is_no_session(only_start: bool) -> None:
    assert latest([stored(S1, T0, only_start)]) == []


def test_an_end_slightly_before_its_start_still_pairs_with_duration_zero() -> None:
    (paired,) = latest([stored(S1, T0, True), stored(S1, T0 - timedelta(minutes=59), False)])
    assert paired.duration_seconds == 0


def test_an_end_more_than_the_bound_before_its_start_does_not_pair() -> None:
    early = T0 - MAX_END_BEFORE_START - timedelta(seconds=1)
    assert latest([stored(S1, T0, True), stored(S1, early, False)]) == []


def test_the_newest_start_and_end_win_over_resent_ones() -> None:
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=9)
    events = [
        stored(S1, T0, True, "FI"),
        stored(S1, t1, True, "SE"),
        stored(S1, t1, False),
        stored(S1, t2, False),
    ]
    assert latest(events) == [Session(S1, "p1", "SE", t1, t2)]


def test_sessions_come_newest_start_first_and_cut_to_the_limit() -> None:
    events = []
    for minute, sid in ((0, S1), (10, S2), (20, S3)):
        events += [
            stored(sid, T0 + timedelta(minutes=minute), True),
            stored(sid, T0 + timedelta(minutes=minute + 1), False),
        ]
    assert [s.session_id for s in latest(events, limit=2)] == [S3, S2]


def test_sessions_starting_at_the_same_instant_come_by_session_id_text_ascending() -> None:
    ids = [
        uuid.UUID("a0000000-0000-0000-0000-000000000000"),
        S3,
        S1,
        uuid.UUID("0f000000-0000-0000-0000-000000000000"),
        S2,
    ]
    end = T0 + timedelta(minutes=1)
    events = [e for sid in ids for e in (stored(sid, T0, True), stored(sid, end, False))]
    assert [s.session_id for s in latest(events)] == sorted(ids, key=str)


def test_settled_only_once_every_event_that_could_change_the_answer_is_read() -> None:
    pairing = LatestSessions("p1", limit=1)
    pairing.add([stored(S1, T0 + timedelta(minutes=5), False), stored(S1, T0, True)])
    # An end of a session starting at T0 may lie up to MAX_END_BEFORE_START before it.
    assert not pairing.settled(epoch_ms(T0 - timedelta(minutes=30)))
    assert not pairing.settled(epoch_ms(T0 - MAX_END_BEFORE_START))
    assert pairing.settled(epoch_ms(T0 - MAX_END_BEFORE_START - timedelta(milliseconds=1)))


def test_not_settled_with_fewer_complete_sessions_than_the_limit() -> None:
    pairing = LatestSessions("p1", limit=2)
    pairing.add([stored(S1, T0 + timedelta(minutes=5), False), stored(S1, T0, True)])
    assert not pairing.settled(epoch_ms(T0 - timedelta(days=30)))


def test_a_later_page_can_still_complete_a_session_seen_on_an_earlier_one() -> None:
    pairing = LatestSessions("p1", limit=1)
    pairing.add([stored(S1, T0 + timedelta(hours=2), False)])
    assert pairing.newest() == []
    pairing.add([stored(S1, T0, True)])
    assert pairing.newest() == [Session(S1, "p1", "FI", T0, T0 + timedelta(hours=2))]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        LatestSessions("p1", 0)


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (datetime(2016, 11, 22, 20, 37, 47, tzinfo=UTC), "2016-11-22T20:37:47Z"),
        (datetime(2016, 11, 22, 20, 37, 47, 5000, tzinfo=UTC), "2016-11-22T20:37:47.005Z"),
        (
            datetime(2016, 11, 22, 20, 37, 47, 999999, tzinfo=UTC),
            "2016-11-22T20:37:47.999Z",
        ),  # cut, not rounded
        (
            from_epoch_ms(epoch_ms(datetime(2016, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))),
            "2016-01-02T03:04:05.678Z",
        ),
    ],
)
def test_answers_write_instants_as_rfc3339_utc_with_milliseconds_only_when_present(
    ts: datetime, text: str
) -> None:
    from player_sessions.api.routes import rfc3339

    assert rfc3339(ts) == text
