"""The Python client of the player-sessions service: batching, gzip, retries, typed answers.

    from player_sessions.client import Client, Event

    with Client("http://127.0.0.1:8000", api_key=KEY) as client:
        result = client.send([Event.start("p1", sid, "FI", now), Event.end("p1", sid, later)])
        with client.batcher(max_events=1000, max_seconds=1.0) as batcher:
            batcher.add(event)                       # a background thread sends the batches
        client.sessions("p1")                        # -> list[Session]

Needs only httpx (``pip install 'player-sessions[client]'``): nothing of the server is imported.
See docs/client.md.
"""

from player_sessions.client.aio import AsyncBatcher, AsyncClient
from player_sessions.client.errors import ApiError, ClientError, QueueFull, RetriesExhausted
from player_sessions.client.models import (
    ErasedPlayer,
    Event,
    EventError,
    IngestResult,
    Session,
    Start,
    StartCounts,
)
from player_sessions.client.retry import RetryNotice, RetryPolicy
from player_sessions.client.sync import Batcher, Client

__all__ = [
    "ApiError",
    "AsyncBatcher",
    "AsyncClient",
    "Batcher",
    "Client",
    "ClientError",
    "ErasedPlayer",
    "Event",
    "EventError",
    "IngestResult",
    "QueueFull",
    "RetriesExhausted",
    "RetryNotice",
    "RetryPolicy",
    "Session",
    "Start",
    "StartCounts",
]
