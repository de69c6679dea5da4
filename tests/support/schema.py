"""`player-sessions migrate` as a process, and a keyspace as the release before versioned migrations
left it: the migrate tests and the `serve --no-migrate` tests both need them."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

PREVIOUS_SCHEMA = Path(__file__).with_name("previous_schema.cql")


def migrate_command(cassandra_node: str, keyspace: str, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "player_sessions.cli",
        "migrate",
        "--contact-points",
        cassandra_node,
        "--keyspace",
        keyspace,
        *flags,
    ]


def clean_env() -> dict[str, str]:
    """This environment without PLAYER_SESSIONS_* variables: a child's settings come from its flags."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PLAYER_SESSIONS_")}


def create_previous_schema(cql: Any, keyspace: str) -> None:
    """The tables of previous_schema.cql in `keyspace`, through the driver session `cql`."""
    for statement in PREVIOUS_SCHEMA.read_text().split(";"):
        lines = [line for line in statement.splitlines() if not line.startswith("--")]
        if "".join(lines).strip():
            cql.execute("\n".join(lines).replace("{ks}", keyspace), timeout=60)
