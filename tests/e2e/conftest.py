"""End-to-end fixtures: the real `player-sessions serve` in a subprocess, against the real Cassandra.

Each distinct configuration (keyspace, clock, retention) gets its own server process, started once per
test run by `service_factory` (tests/support/service.py) and reused by every test that asks for the
same configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.clock import NOW_TEXT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of a module with ``RUNS_LAST = True`` run after every other test of the run."""
    last = [item for item in items if getattr(getattr(item, "module", None), "RUNS_LAST", False)]
    if last:
        items[:] = [item for item in items if item not in last] + last


@pytest.fixture(scope="session")
def service(service_factory: Callable[..., str]) -> str:
    """The default service: clock frozen at tests.support.clock.NOW, one-year retention."""
    return service_factory("main", clock=NOW_TEXT)


@pytest.fixture()
def client(service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service, timeout=120) as c:
        yield c
