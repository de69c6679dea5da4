"""bench.gclog: Cassandra's GC pauses in a time range, from the node's gc.log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from player_sessions.bench.gclog import GcPauses, pauses_between

LOG = """\
[2026-12-02T10:50:00.100+0000][430.100s] Using G1
[2026-12-02T10:50:01.123+0000][430.936s] GC(397) Pause Young (Normal) (G1) 873M->474M(1024M) 92.488ms
[2026-12-02T10:50:02.000+0000][431.802s] GC(398) Pause Young (Concurrent Start) 772M->487M(1024M) 18.919ms
[2026-12-02T10:50:02.500+0000][431.900s] GC(398) Concurrent Mark Cycle 40.1ms
[2026-12-02T10:50:03.000+0000][432.963s] GC(399) Pause Remark 510M->483M(1024M) 36.004ms
[2026-12-02T10:50:09.000+0000][438.000s] GC(400) Pause Young (Normal) (G1) 878M->504M(1024M) 5.000ms
"""


def at(second: float) -> datetime:
    return datetime(2026, 12, 2, 10, 50, tzinfo=UTC) + timedelta(seconds=second)


def test_counts_only_stop_the_world_pauses_inside_the_range(tmp_path: Path) -> None:
    log = tmp_path / "gc.log"
    log.write_text(LOG)
    found = pauses_between(log, at(1), at(3.5))
    assert found == GcPauses(3, 92.488, 92.488 + 18.919 + 36.004)  # not the concurrent phase, not 10:50:09
    assert pauses_between(log, at(4), at(8)) == GcPauses()


def test_rotated_files_are_read_and_a_missing_log_is_none(tmp_path: Path) -> None:
    (tmp_path / "gc.log.0").write_text(LOG)
    (tmp_path / "gc.log").write_text("")
    assert pauses_between(tmp_path / "gc.log", at(0), at(10)).count == 4  # type: ignore[union-attr]
    assert pauses_between(tmp_path / "none" / "gc.log", at(0), at(10)) is None
