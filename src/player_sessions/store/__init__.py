"""Storage: the Protocol the services use, and its Cassandra implementation (the only CQL)."""
