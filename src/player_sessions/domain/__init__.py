"""Plain values and pure functions: events, validation, sessions, retention/TTL, clock. No I/O."""
