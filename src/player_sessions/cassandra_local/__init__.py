"""A local Apache Cassandra without Docker, from the Maven Central jars.

config -> resolve jars -> write node files -> start JVMs -> wait until CQL answers -> stop.
"""

from player_sessions.cassandra_local.config import LauncherConfig
from player_sessions.cassandra_local.errors import LauncherError
from player_sessions.cassandra_local.launcher import logs, start, status, stop

__all__ = ["LauncherConfig", "LauncherError", "logs", "start", "status", "stop"]
