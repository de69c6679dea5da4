"""When to retry and how long to wait: pure rules shared by the sync and async clients.

Retried: connection errors and timeouts, 429, 500, 502, 503 and 504. Every request the client makes
is safe to repeat (ingest is an idempotent upsert keyed by player, session and event kind; reads do
not change anything; erasing twice removes nothing more), so the only question is how long to wait:
the server's ``Retry-After`` when it gives one (plus a little jitter so that many clients do not come
back at the same instant), otherwise exponential backoff with jitter (a random delay in the upper half
of ``initial * 2**attempt``, capped at ``backoff_max``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts``: tries in all (None: no count limit); ``give_up_after``: seconds of continuous
    failure after which no further try starts (None: no time limit). At least one must be set."""

    attempts: int | None = 6
    give_up_after: float | None = 120.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts is None and self.give_up_after is None:
            raise ValueError("a retry policy needs attempts or give_up_after")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.give_up_after is not None and not self.give_up_after > 0:
            raise ValueError("give_up_after must be greater than 0")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError("need 0 < backoff_initial <= backoff_max")

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        if retry_after is not None:
            return retry_after + rng.uniform(0, min(1.0, retry_after / 4))
        ceiling = min(self.backoff_max, self.backoff_initial * 2**retry)
        return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """Told to ``on_retry`` before each wait."""

    request_id: str
    retry: int  # 1 for the first retry
    failure: str
    delay: float


class Attempts:
    """The failures of one request so far; ``next_delay`` says whether and when to try again."""

    def __init__(
        self, policy: RetryPolicy, rng: random.Random, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self.rng = rng
        self.clock = clock
        self.tries = 0
        self.first_failure: float | None = None

    @property
    def failing_for(self) -> float:
        return 0.0 if self.first_failure is None else self.clock() - self.first_failure

    def next_delay(self, retry_after: float | None) -> float | None:
        """Record a failed try; the seconds to wait before the next, or None to give up."""
        now = self.clock()
        if self.first_failure is None:
            self.first_failure = now
        self.tries += 1
        policy = self.policy
        if policy.attempts is not None and self.tries >= policy.attempts:
            return None
        delay = policy.delay(self.tries - 1, retry_after, self.rng)
        if policy.give_up_after is not None and now - self.first_failure + delay > policy.give_up_after:
            return None
        return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or garbled."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is garbled
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
