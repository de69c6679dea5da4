"""player-sessions: a player session service for games on Apache Cassandra."""

__version__ = "0.1.0"
