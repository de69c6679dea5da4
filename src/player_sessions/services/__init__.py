"""Use cases as short functions that receive their ports (store, clock, settings)."""
