"""What the client raises. Every error is a ``ClientError``:

    ClientError
     ├── ApiError            the service answered with a status retrying cannot fix (400, 401, 403,
     │                       404, 413, 415, ...), or with a body that is not its contract
     ├── RetriesExhausted    a retryable failure (connection error, timeout, 429, 5xx) outlived the
     │                       retry policy; ``last_failure`` names the last one
     └── QueueFull           ``Batcher.add`` with ``block=False`` found the queue full

A ``send`` that split its events into several requests attaches what was acknowledged before the
failure (``partial``, ``acknowledged``): every event before ``acknowledged`` is stored (or counted
as expired or rejected); sending the whole sequence again is safe because ingest is idempotent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from player_sessions.client.models import IngestResult


class ClientError(Exception):
    """Base of every error the client raises."""

    partial: IngestResult | None = None
    acknowledged: int = 0


class ApiError(ClientError):
    """The service refused the request; ``error``/``field`` are its own words."""

    def __init__(
        self, status: int, error: str, field: str | None = None, request_id: str | None = None
    ) -> None:
        where = f" ({field})" if field else ""
        super().__init__(f"HTTP {status}{where}: {error}")
        self.status = status
        self.error = error
        self.field = field
        self.request_id = request_id


class RetriesExhausted(ClientError):
    """Every try of one request failed with a retryable error."""

    def __init__(
        self, attempts: int, failing_for: float, last_failure: str, last_status: int | None, request_id: str
    ) -> None:
        super().__init__(
            f"gave up after {attempts} attempts in {failing_for:.1f}s of failures "
            f"(request id {request_id}), last: {last_failure}"
        )
        self.attempts = attempts
        self.failing_for = failing_for
        self.last_failure = last_failure
        self.last_status = last_status
        self.request_id = request_id


class QueueFull(ClientError):
    """The batcher's queue holds ``queue_size`` events not yet sent."""
