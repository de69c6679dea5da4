"""What the launcher needs to know, with defaults that work on a developer's machine and in CI."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CASSANDRA_VERSION = "5.0.9"  # the newest 5.0.x on Maven Central when pinned (5.0.10 is not published)
DEFAULT_CQL_PORT = 9042
STORAGE_PORT = 7000
FIRST_JMX_PORT = 7100  # node i gets 7100 + 100 * (i - 1): 7100, 7200, 7300 (+ first_address - 1)
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
MIN_FREE_DISK_BYTES = 2 * 1024**3
# Evenly spaced Murmur3 tokens for up to three single-token nodes (the recipe's values).
THREE_NODE_TOKENS = ("-9223372036854775808", "-3074457345618258603", "3074457345618258602")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "player-sessions"


@dataclass(frozen=True)
class LauncherConfig:
    """Where the node lives and how big it is. Every field is a `db` CLI flag too."""

    base_dir: Path = field(default_factory=lambda: Path(".cassandra"))
    cache_dir: Path = field(default_factory=default_cache_dir)
    version: str = CASSANDRA_VERSION
    nodes: int = 1
    heap: str = ""  # empty: 1g for one node, 512m per node for a cluster
    cql_port: int = DEFAULT_CQL_PORT
    ready_timeout_s: float = READY_TIMEOUT_S
    stop_timeout_s: float = STOP_TIMEOUT_S
    password_auth: bool = False
    tls: bool = False  # client encryption with a throw-away CA (cassandra_local/tls.py)
    cluster_name: str = "player-sessions-local"
    # Node i listens on 127.0.0.(first_address + i - 1): a second cluster (tests) can sit beside the
    # default one on other loopback addresses with the same ports.
    first_address: int = 1

    @property
    def heap_size(self) -> str:
        if self.heap:
            return self.heap
        return "1g" if self.nodes == 1 else "512m"

    @property
    def jar_dir(self) -> Path:
        return self.cache_dir / f"cassandra-{self.version}" / "lib"

    def address(self, index: int) -> str:
        """Node i (1-based) listens on 127.0.0.i by default: all of 127.0.0.0/8 is loopback on Linux."""
        return f"127.0.0.{self.first_address + index - 1}"

    def node_dir(self, index: int) -> Path:
        return self.base_dir.resolve() / f"node{index}"

    def jmx_port(self, index: int) -> int:
        # Local JMX always binds 127.0.0.1, so every node of every local cluster needs its own port:
        # node i of the cluster at first_address N gets 7100 + 100 * (i - 1) + (N - 1), e.g. 7110/7210/7310
        # for N=11. (It was 7100 * i + N - 1, which gave node 2 port 14200 and node 3 port 21300.)
        return FIRST_JMX_PORT + 100 * (index - 1) + self.first_address - 1

    def initial_token(self, index: int) -> str:
        return THREE_NODE_TOKENS[index - 1]
