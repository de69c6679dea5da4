"""Fault-test fixtures: a Cassandra node of their own (127.0.0.51; the 3-node tests start their clusters
themselves) and a folder for a test's service logs. What the tests share besides is in harness.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from player_sessions.cassandra_local import LauncherConfig, start, stop
from tests.faults.harness import say

OWN_NODE_FIRST_ADDRESS = 51  # 127.0.0.51, JMX 7150: beside the dev node and the other tests' nodes


@pytest.fixture()
def service_logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def own_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LauncherConfig]:
    """A single node on 127.0.0.51 that the fault tests may stop and start (never the dev node)."""
    config = LauncherConfig(
        base_dir=tmp_path_factory.mktemp("faults-node") / "cassandra",
        first_address=OWN_NODE_FIRST_ADDRESS,
        heap="768m",
    )
    try:
        result = start(config, say=lambda line: say(f"node: {line}"))
        # A Cassandra that some other run left on this address would be "used", and stopping it would
        # then do nothing: the fault would silently not happen.
        assert result.started, f"something else already answers on {config.address(1)}: stop it first"
        say(f"own node 127.0.0.{OWN_NODE_FIRST_ADDRESS} up in {result.seconds:.1f}s")
        yield config
    finally:
        stop(config, wipe=True, say=lambda line: None)
