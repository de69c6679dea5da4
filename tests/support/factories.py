"""Small factories for events in tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_player() -> str:
    return uuid.uuid4().hex


def start(player: str, session: str, ts: datetime, country: str = "FI", **extra: Any) -> dict[str, Any]:
    return {
        "event": "start",
        "player_id": player,
        "session_id": session,
        "country": country,
        "ts": iso(ts),
        **extra,
    }


def end(player: str, session: str, ts: datetime, **extra: Any) -> dict[str, Any]:
    return {"event": "end", "player_id": player, "session_id": session, "ts": iso(ts), **extra}


def session_pair(
    player: str, started: datetime, minutes: float = 10, country: str = "FI", session: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    sid = session or str(uuid.uuid4())
    return start(player, sid, started, country), end(player, sid, started + timedelta(minutes=minutes))
