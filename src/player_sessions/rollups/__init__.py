"""Rollups: the per-country start counts of each minute, hour and day, exact at every moment.

A query reads rollup rows instead of counting raw starts; a rollup is used only while it is fresh, and
this package holds every rule that makes that safe:
- touches.py: what a touch is (the rollups that stored or erased starts make stale);
- marks.py: the order their marks are written in, and the group commit of concurrent requests' marks;
- recount.py: reading a window's rollups and recounting the stale ones from the level below;
- flights.py: recounts shared between the queries and passes of one process;
- refresh.py: the background passes that recount before queries need it.

Why a stale rollup can't be taken for fresh: ingest (and erase) acknowledges raw rows before it writes
new `touched` tokens, and each level's tokens before the next level's (minutes, then hours, then
days); a recount reads `touched` before it reads the level below, and writes its count with the token
it read (`counted`). A count that missed a raw row, or a fresher row below it, was therefore written
with a token older than that row's touch, and reads as stale.
"""

from player_sessions.rollups.flights import RecountFlights
from player_sessions.rollups.marks import MarkCoalescer, write_marks
from player_sessions.rollups.recount import Recount, count_window
from player_sessions.rollups.refresh import refresh_backlog, refresh_forever, refresh_recent
from player_sessions.rollups.touches import CountTouch, LevelMarks, count_touches, level_marks

__all__ = [
    "CountTouch",
    "LevelMarks",
    "MarkCoalescer",
    "Recount",
    "RecountFlights",
    "count_touches",
    "count_window",
    "level_marks",
    "refresh_backlog",
    "refresh_forever",
    "refresh_recent",
    "write_marks",
]
