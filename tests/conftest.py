"""Shared fixtures: one local Cassandra for the whole run, started through the project's launcher, and
the `serve` processes the e2e and browser tests share (`service_factory`, from tests/support/service.py).

If a Cassandra already answers (e.g. `make test` started it), it is reused and left running.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from player_sessions.cassandra_local import LauncherConfig, start, stop
from tests.support import ROOT
from tests.support.service import service_factory  # noqa: F401  (a fixture: e2e and browser tests share it)

CONTACT_POINT = os.environ.get("PLAYER_SESSIONS_CONTACT_POINTS", "127.0.0.1").split(",")[0]
TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "e2e", "browser", "faults")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test carries the marker of its tier, the directory it is in, so that `-m e2e` selects the
    whole tier and a new module cannot be left out of it."""
    for item in items:
        path = item.path.resolve()
        if path.is_relative_to(TESTS) and (tier := path.relative_to(TESTS).parts[0]) in TIERS:
            item.add_marker(tier)


@pytest.fixture(scope="session")
def cassandra_node() -> Iterator[str]:
    """The contact point of a running local Cassandra (started here if none answers)."""
    config = LauncherConfig(base_dir=ROOT / ".cassandra")
    result = start(config)
    yield CONTACT_POINT
    if result.started:
        stop(config)


@pytest.fixture(scope="session")
def test_keyspace_name() -> str:
    """A keyspace per test run, so runs never see each other's rows and nothing needs truncating."""
    return f"ps_test_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def cql(cassandra_node: str) -> Iterator[object]:
    """A plain driver session, for tests that look at what is physically in Cassandra."""
    from player_sessions.store.connection import open_cluster

    cluster = open_cluster([cassandra_node])
    session = cluster.connect()
    yield session
    cluster.shutdown()
